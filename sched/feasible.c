/*
 * Feasibility that does not depend on free capacity: node readiness
 * (status, eligibility, drain), datacenter, pool, and constraints on node
 * attributes and fingerprinted facts (= != < <= > >= regexp version
 * set_contains is_set is_not_set). Capacity and distinct_hosts are checked
 * while placing (place.c), because they change as the plan fills nodes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "sched/sched.h"

/* The next dotted part of *s ("1" of "1.10.2"), advancing *s; "0" once s
 * is used up, so that "1.2" == "1.2.0". */
static size_t
next_part(const char **s, const char **part)
{
    size_t n;

    if (**s == '\0') {
        *part = "0";
        return 1;
    }
    n = strcspn(*s, ".-+");
    *part = *s;
    *s += n;
    if (**s != '\0') {
        (*s)++;
    }
    return n;
}

static int
all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) {
            return 0;
        }
    }
    return n > 0;
}

int
version_cmp(const char *a, const char *b)
{
    /* Numeric parts compare as numbers, others as text; a leading "v" is
     * ignored. */
    if (*a == 'v') {
        a++;
    }
    if (*b == 'v') {
        b++;
    }
    while (*a != '\0' || *b != '\0') {
        const char *pa, *pb;
        size_t na = next_part(&a, &pa), nb = next_part(&b, &pb);
        int c;

        if (all_digits(pa, na) && all_digits(pb, nb)) {
            while (na > 1 && *pa == '0') {
                pa++;
                na--;
            }
            while (nb > 1 && *pb == '0') {
                pb++;
                nb--;
            }
            if (na != nb) {
                return na < nb ? -1 : 1;
            }
        }
        c = strncmp(pa, pb, na < nb ? na : nb);
        if (c != 0) {
            return c < 0 ? -1 : 1;
        }
        if (na != nb) {
            return na < nb ? -1 : 1;
        }
    }
    return 0;
}

int
version_satisfies(const char *version, const char *constraint)
{
    char *copy = dv_xstrdup(constraint), *part, *save = NULL;
    int rc = 1, any = 0;

    for (part = strtok_r(copy, ",", &save); part != NULL;
         part = strtok_r(NULL, ",", &save)) {
        char op[3] = "";
        int c;

        while (isspace((unsigned char)*part)) {
            part++;
        }
        for (int i = 0; i < 2 && strchr("<>=!~", *part) != NULL && *part;
             i++) {
            op[i] = *part++;
        }
        while (isspace((unsigned char)*part)) {
            part++;
        }
        for (char *e = part + strlen(part); e > part && isspace((unsigned char)e[-1]);) {
            *--e = '\0';
        }
        if (*part == '\0') {
            rc = -1;
            break;
        }
        any = 1;
        c = version_cmp(version, part);
        if (op[0] == '\0' || strcmp(op, "=") == 0 || strcmp(op, "==") == 0) {
            rc &= c == 0;
        } else if (strcmp(op, "!=") == 0) {
            rc &= c != 0;
        } else if (strcmp(op, "<") == 0) {
            rc &= c < 0;
        } else if (strcmp(op, "<=") == 0) {
            rc &= c <= 0;
        } else if (strcmp(op, ">") == 0) {
            rc &= c > 0;
        } else if (strcmp(op, ">=") == 0) {
            rc &= c >= 0;
        } else {
            rc = -1;
            break;
        }
    }
    free(copy);
    return any ? rc : -1;
}

/* Compares numerically when both parse as numbers, else as text. */
static int
order_cmp(const char *a, const char *b)
{
    char *ea = NULL, *eb = NULL;
    double x, y;

    errno = 0;
    x = strtod(a, &ea);
    y = strtod(b, &eb);
    if (errno == 0 && ea != a && *ea == '\0' && eb != b && *eb == '\0') {
        return x < y ? -1 : x > y;
    }
    return strcmp(a, b);
}

static int
set_contains(const char *have, const char *want)
{
    char *w = dv_xstrdup(want), *item, *save = NULL;
    int ok = 1;

    for (item = strtok_r(w, ",", &save); item != NULL && ok;
         item = strtok_r(NULL, ",", &save)) {
        const char *p = have;
        size_t n;
        int found = 0;

        while (isspace((unsigned char)*item)) {
            item++;
        }
        n = strlen(item);
        while (n > 0 && isspace((unsigned char)item[n - 1])) {
            item[--n] = '\0';
        }
        while (*p != '\0') {
            size_t len;
            while (*p == ',' || isspace((unsigned char)*p)) {
                p++;
            }
            len = strcspn(p, ",");
            while (len > 0 && isspace((unsigned char)p[len - 1])) {
                len--;
            }
            if (len == n && strncmp(p, item, n) == 0) {
                found = 1;
                break;
            }
            p += strcspn(p, ",");
        }
        ok = found;
    }
    free(w);
    return ok;
}

int
rule_matches(const struct sched_rule *r, const struct snap_node *n)
{
    const char *v = r->attr != NULL ? snap_node_attr(n, r->attr) : NULL;

    switch (r->op) {
    case OP_IS_SET:
        return v != NULL;
    case OP_IS_NOT_SET:
        return v == NULL;
    case OP_DISTINCT_HOSTS:
        return 1; /* checked while placing */
    default:
        break;
    }
    if (v == NULL || r->value == NULL) {
        /* An unset attribute only satisfies "!=". */
        return r->op == OP_NE && v == NULL;
    }
    switch (r->op) {
    case OP_EQ:
        return strcmp(v, r->value) == 0;
    case OP_NE:
        return strcmp(v, r->value) != 0;
    case OP_LT:
        return order_cmp(v, r->value) < 0;
    case OP_LE:
        return order_cmp(v, r->value) <= 0;
    case OP_GT:
        return order_cmp(v, r->value) > 0;
    case OP_GE:
        return order_cmp(v, r->value) >= 0;
    case OP_REGEXP:
        return r->have_re && regexec(&r->re, v, 0, NULL, 0) == 0;
    case OP_VERSION:
        return version_satisfies(v, r->value) == 1;
    case OP_SET_CONTAINS:
        return set_contains(v, r->value);
    default:
        return 0;
    }
}

int
feasible_static(const struct sched_job *job, const struct sched_group *g,
                const struct snap_node *n)
{
    if (!n->ready) {
        return 0;
    }
    if (job->pool != NULL && strcmp(job->pool, n->pool) != 0) {
        return 0;
    }
    if (job->ndatacenters > 0) {
        int ok = 0;
        for (int i = 0; i < job->ndatacenters && !ok; i++) {
            ok = strcmp(job->datacenters[i], n->datacenter) == 0;
        }
        if (!ok) {
            return 0;
        }
    }
    /* A node that could never hold one instance, even empty. */
    if (n->total_cores < g->cores || n->total_mem < g->mem ||
        n->total_gpus < g->gpus || (g->disk > 0 && n->total_disk < g->disk)) {
        return 0;
    }
    for (int i = 0; i < g->nconstraints; i++) {
        if (!rule_matches(&g->constraints[i], n)) {
            return 0;
        }
    }
    return 1;
}
