/*
 * Queue attributes: parsing and canonical text of PBS's queue attributes,
 * and what a queue does to a job at submission (defaults, limits, ACLs).
 * lib/queue.h has the list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mem.h"
#include "lib/queue.h"
#include "lib/strutil.h"

#define QERR_UNKNOWN "Undefined attribute "
#define QERR_BADVAL "Illegal attribute or resource value"

void
dv_queue_init(struct dv_queue *q)
{
    memset(q, 0, sizeof(*q));
    q->max_running = q->max_user_run = -1;
    q->max_run_all = q->max_run_user = -1;
}

static void
kv_free(struct dv_kv *r, int n)
{
    for (int i = 0; i < n; i++) {
        free(r[i].key);
        free(r[i].value);
    }
    free(r);
}

static void
strv_free(char **v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void
dv_queue_cleanup(struct dv_queue *q)
{
    if (q == NULL) {
        return;
    }
    strv_free(q->acl_users, q->nacl_users);
    strv_free(q->acl_groups, q->nacl_groups);
    kv_free(q->rdefault, q->nrdefault);
    kv_free(q->rmax, q->nrmax);
    kv_free(q->rmin, q->nrmin);
    dv_queue_init(q);
}

int
dv_queue_name_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > DV_QUEUE_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-'))) {
            return 0;
        }
    }
    return 1;
}

/* --- resource lists --- */

static const char *const queue_resources[] = {"walltime", "ncpus", "mem",
                                              "ngpus", "nodect"};

/* Canonical text of a queue resource value into buf; -1 when illegal. */
static int
resource_canon(const char *name, const char *value, char *buf, size_t size)
{
    int64_t v;

    if (strcmp(name, "walltime") == 0) {
        if (dv_parse_walltime(value, &v) < 0) {
            return -1;
        }
        dv_format_hms(v, buf, size);
        return 0;
    }
    if (strcmp(name, "mem") == 0) {
        if (dv_parse_size(value, &v) < 0 || v > DV_MAX_MEM) {
            return -1;
        }
        dv_format_size(v, buf, size);
        return 0;
    }
    if (dv_parse_i64(value, 0, DV_MAX_NCPUS, &v) < 0) {
        return -1;
    }
    snprintf(buf, size, "%lld", (long long)v);
    return 0;
}

/* The numeric value of a canonical resource text (seconds, bytes,
 * count). */
static int64_t
resource_value(const char *name, const char *text)
{
    int64_t v = 0;

    if (strcmp(name, "walltime") == 0) {
        dv_parse_walltime(text, &v);
    } else if (strcmp(name, "mem") == 0) {
        dv_parse_size(text, &v);
    } else {
        dv_parse_i64(text, 0, INT64_MAX, &v);
    }
    return v;
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct dv_kv *)a)->key,
                      ((const struct dv_kv *)b)->key);
}

static void
kv_put(struct dv_kv **r, int *n, const char *key, const char *value)
{
    for (int i = 0; i < *n; i++) {
        if (strcmp((*r)[i].key, key) == 0) {
            free((*r)[i].value);
            (*r)[i].value = dv_xstrdup(value);
            return;
        }
    }
    *r = dv_xrealloc(*r, sizeof(**r) * (size_t)(*n + 1));
    (*r)[*n].key = dv_xstrdup(key);
    (*r)[*n].value = dv_xstrdup(value);
    (*n)++;
    qsort(*r, (size_t)*n, sizeof(**r), kv_cmp);
}

static void
kv_del(struct dv_kv *r, int *n, const char *key)
{
    for (int i = 0; i < *n; i++) {
        if (strcmp(r[i].key, key) == 0) {
            free(r[i].key);
            free(r[i].value);
            memmove(&r[i], &r[i + 1], sizeof(*r) * (size_t)(*n - i - 1));
            (*n)--;
            return;
        }
    }
}

json_t *
dv_queue_resources_json(const struct dv_kv *r, int n)
{
    json_t *o = json_object();

    for (int i = 0; i < n; i++) {
        json_object_set_new(o, r[i].key, json_string(r[i].value));
    }
    return o;
}

int
dv_queue_resources_parse(const char *text, struct dv_kv **r, int *n)
{
    json_t *o = json_loads(text != NULL ? text : "{}", 0, NULL);
    const char *k;
    json_t *v;

    kv_free(*r, *n);
    *r = NULL;
    *n = 0;
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    json_object_foreach (o, k, v) {
        if (json_is_string(v)) {
            kv_put(r, n, k, json_string_value(v));
        }
    }
    json_decref(o);
    return 0;
}

/* --- name lists --- */

int
dv_queue_list_parse(const char *text, char ***out, int *n)
{
    const char *p = text;

    strv_free(*out, *n);
    *out = NULL;
    *n = 0;
    if (p == NULL || *p != '{') {
        return p == NULL ? 0 : -1;
    }
    p++;
    while (*p != '\0' && *p != '}') {
        struct dv_buf b;
        dv_buf_init(&b);
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0') {
                    p++;
                }
                dv_buf_putc(&b, *p);
            }
            if (*p == '"') {
                p++;
            }
        } else {
            for (; *p != '\0' && *p != ',' && *p != '}'; p++) {
                dv_buf_putc(&b, *p);
            }
        }
        *out = dv_xrealloc(*out, sizeof(char *) * (size_t)(*n + 1));
        (*out)[(*n)++] = dv_buf_steal(&b);
        dv_buf_cleanup(&b);
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

char *
dv_queue_list_text(char *const *v, int n)
{
    struct dv_buf b;

    dv_buf_init(&b);
    dv_buf_putc(&b, '{');
    for (int i = 0; i < n; i++) {
        dv_buf_printf(&b, "%s\"", i > 0 ? "," : "");
        for (const char *p = v[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\') {
                dv_buf_putc(&b, '\\');
            }
            dv_buf_putc(&b, *p);
        }
        dv_buf_putc(&b, '"');
    }
    dv_buf_putc(&b, '}');
    return dv_buf_steal(&b);
}

/* A user or group name of an ACL: 1 to 256 of A-Z a-z 0-9 . _ - $ with an
 * optional @host. */
static int
acl_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 256) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || strchr("._-$@*", *p) != NULL)) {
            return 0;
        }
    }
    return 1;
}

static int
list_has(char *const *v, int n, const char *s)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Applies "a,b,c" to a list with op. Returns 0 or -1 (a bad name). */
static int
list_apply(char ***v, int *n, enum dv_queue_op op, const char *value)
{
    char **items = NULL;
    int nitems = 0, rc = -1;
    const char *p = value;

    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        char *item;
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        item = dv_xstrndup(p, len);
        items = dv_xrealloc(items, sizeof(char *) * (size_t)(nitems + 1));
        items[nitems++] = item;
        if (!acl_name_valid(item) || nitems > DV_QUEUE_MAX_ACL) {
            goto out;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    if (nitems == 0) {
        goto out;
    }
    if (op == DV_QUEUE_SET) {
        strv_free(*v, *n);
        *v = NULL;
        *n = 0;
    }
    for (int i = 0; i < nitems; i++) {
        if (op == DV_QUEUE_REMOVE) {
            for (int k = 0; k < *n; k++) {
                if (strcmp((*v)[k], items[i]) == 0) {
                    free((*v)[k]);
                    memmove(&(*v)[k], &(*v)[k + 1],
                            sizeof(char *) * (size_t)(*n - k - 1));
                    (*n)--;
                    break;
                }
            }
        } else if (!list_has(*v, *n, items[i])) {
            if (*n >= DV_QUEUE_MAX_ACL) {
                goto out;
            }
            *v = dv_xrealloc(*v, sizeof(char *) * (size_t)(*n + 1));
            (*v)[(*n)++] = dv_xstrdup(items[i]);
        }
    }
    rc = 0;
out:
    strv_free(items, nitems);
    return rc;
}

/* --- max_run --- */

/* "[o:PBS_ALL=4],[u:PBS_GENERIC=2]" into its two parts (-1: absent). */
static int
max_run_parse(const char *value, int *all, int *user)
{
    const char *p = value;

    *all = *user = -1;
    while (*p != '\0') {
        const char *close;
        char part[128], *eq;
        int n;

        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        if (*p != '[' || (close = strchr(p, ']')) == NULL ||
            (size_t)(close - p) >= sizeof(part)) {
            return -1;
        }
        memcpy(part, p + 1, (size_t)(close - p - 1));
        part[close - p - 1] = '\0';
        eq = strchr(part, '=');
        if (eq == NULL) {
            return -1;
        }
        *eq = '\0';
        if (dv_parse_int(eq + 1, 0, 1000000000, &n) < 0) {
            return -1;
        }
        if (strcmp(part, "o:PBS_ALL") == 0) {
            *all = n;
        } else if (strcmp(part, "u:PBS_GENERIC") == 0) {
            *user = n;
        } else {
            return -1; /* named users, groups, projects: not supported */
        }
        p = close + 1;
    }
    return *all < 0 && *user < 0 ? -1 : 0;
}

char *
dv_queue_max_run_text(const struct dv_queue *q)
{
    if (q->max_run_all >= 0 && q->max_run_user >= 0) {
        return dv_xasprintf("[o:PBS_ALL=%d],[u:PBS_GENERIC=%d]", q->max_run_all,
                            q->max_run_user);
    }
    if (q->max_run_all >= 0) {
        return dv_xasprintf("[o:PBS_ALL=%d]", q->max_run_all);
    }
    if (q->max_run_user >= 0) {
        return dv_xasprintf("[u:PBS_GENERIC=%d]", q->max_run_user);
    }
    return NULL;
}

/* --- set and unset --- */

enum attr_kind {
    A_TYPE,
    A_PRIORITY,
    A_BOOL,
    A_COUNT,
    A_MAX_RUN,
    A_LIST,
    A_RESOURCES,
    A_READ_ONLY,
};

struct attr_def {
    const char *name;
    enum attr_kind kind;
};

static const struct attr_def attr_defs[] = {
    {"queue_type", A_TYPE},
    {"Priority", A_PRIORITY},
    {"enabled", A_BOOL},
    {"started", A_BOOL},
    {"preemption", A_BOOL},
    {"acl_user_enable", A_BOOL},
    {"acl_group_enable", A_BOOL},
    {"max_running", A_COUNT},
    {"max_user_run", A_COUNT},
    {"max_run", A_MAX_RUN},
    {"acl_users", A_LIST},
    {"acl_groups", A_LIST},
    {"resources_default", A_RESOURCES},
    {"resources_max", A_RESOURCES},
    {"resources_min", A_RESOURCES},
    {"total_jobs", A_READ_ONLY},
    {"state_count", A_READ_ONLY},
    {"resources_assigned", A_READ_ONLY},
    {"hasnodes", A_READ_ONLY},
};

static int *
bool_field(struct dv_queue *q, const char *name)
{
    if (strcmp(name, "enabled") == 0) {
        return &q->enabled;
    }
    if (strcmp(name, "started") == 0) {
        return &q->started;
    }
    if (strcmp(name, "preemption") == 0) {
        return &q->preemption;
    }
    if (strcmp(name, "acl_user_enable") == 0) {
        return &q->acl_user_enable;
    }
    return &q->acl_group_enable;
}

/* Finds attr ("resources_max.walltime": *resc = "walltime"). */
static const struct attr_def *
attr_find(const char *attr, char *base, size_t size, const char **resc)
{
    const char *dot = strchr(attr, '.');
    size_t n = dot != NULL ? (size_t)(dot - attr) : strlen(attr);

    *resc = dot != NULL ? dot + 1 : NULL;
    if (n >= size) {
        return NULL;
    }
    memcpy(base, attr, n);
    base[n] = '\0';
    for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++) {
        if (strcasecmp(attr_defs[i].name, base) == 0) {
            return &attr_defs[i];
        }
    }
    return NULL;
}

static struct dv_kv **
res_list(struct dv_queue *q, const char *name, int **n)
{
    if (strcmp(name, "resources_default") == 0) {
        *n = &q->nrdefault;
        return &q->rdefault;
    }
    if (strcmp(name, "resources_max") == 0) {
        *n = &q->nrmax;
        return &q->rmax;
    }
    *n = &q->nrmin;
    return &q->rmin;
}

static int
resource_known(const char *r)
{
    for (size_t i = 0; i < sizeof(queue_resources) / sizeof(queue_resources[0]);
         i++) {
        if (strcmp(queue_resources[i], r) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Checks the attribute's shape; fills *def and *resc. */
static int
attr_lookup(const char *attr, const struct attr_def **def, const char **resc,
            struct dv_err *err)
{
    char base[64];

    *def = attr_find(attr, base, sizeof(base), resc);
    if (*def == NULL ||
        ((*def)->kind == A_RESOURCES) != (*resc != NULL && **resc != '\0')) {
        if (*def != NULL && (*def)->kind == A_RESOURCES) {
            dv_err_set(err, DV_EINVAL, "unknown_resource",
                       "Unknown resource %.64s", attr);
            return -1;
        }
        dv_err_set(err, DV_EINVAL, "unknown_attribute", QERR_UNKNOWN "%.64s",
                   attr);
        return -1;
    }
    if ((*def)->kind == A_RESOURCES && !resource_known(*resc)) {
        dv_err_set(err, DV_EINVAL, "unknown_resource", "Unknown resource %.64s",
                   attr);
        return -1;
    }
    if ((*def)->kind == A_READ_ONLY) {
        dv_err_set(err, DV_EINVAL, "attribute_read_only",
                   "Cannot set attribute, read only or insufficient "
                   "permission %.64s",
                   attr);
        return -1;
    }
    return 0;
}

static int
bad_value(const char *attr, struct dv_err *err)
{
    dv_err_set(err, DV_EINVAL, "bad_attribute_value", QERR_BADVAL " %.64s",
               attr);
    return -1;
}

int
dv_queue_set(struct dv_queue *q, const char *attr, enum dv_queue_op op,
             const char *value, struct dv_err *err)
{
    const struct attr_def *def;
    const char *resc;
    int b, n;

    if (attr_lookup(attr, &def, &resc, err) < 0) {
        return -1;
    }
    if (value == NULL || (op != DV_QUEUE_SET && def->kind != A_LIST &&
                          def->kind != A_PRIORITY && def->kind != A_COUNT)) {
        return bad_value(attr, err);
    }
    switch (def->kind) {
    case A_TYPE:
        if (strcasecmp(value, "Execution") != 0 &&
            strcasecmp(value, "E") != 0) {
            return bad_value(attr, err);
        }
        return 0;
    case A_PRIORITY:
    case A_COUNT: {
        int *field = def->kind == A_PRIORITY                 ? &q->priority
                     : strcmp(def->name, "max_running") == 0 ? &q->max_running
                                                             : &q->max_user_run;
        int lo = def->kind == A_PRIORITY ? -1024 : 0;
        int hi = def->kind == A_PRIORITY ? 1023 : 1000000000;
        int cur = *field < 0 && def->kind == A_COUNT ? 0 : *field;
        long long v;
        if (dv_parse_int(value, -1000000000, 1000000000, &n) < 0) {
            return bad_value(attr, err);
        }
        v = op == DV_QUEUE_SET   ? n
            : op == DV_QUEUE_ADD ? (long long)cur + n
                                 : (long long)cur - n;
        if (v < lo || v > hi) {
            return bad_value(attr, err);
        }
        *field = (int)v;
        return 0;
    }
    case A_BOOL:
        /* PBS's booleans: True|T|Y|1|False|F|N|0, any case. */
        if (strcasecmp(value, "on") == 0 || strcasecmp(value, "off") == 0 ||
            dv_parse_bool(value, &b) < 0) {
            return bad_value(attr, err);
        }
        *bool_field(q, def->name) = b;
        return 0;
    case A_MAX_RUN: {
        int all, user;
        if (max_run_parse(value, &all, &user) < 0) {
            return bad_value(attr, err);
        }
        q->max_run_all = all;
        q->max_run_user = user;
        return 0;
    }
    case A_LIST: {
        char ***v = strcmp(def->name, "acl_users") == 0 ? &q->acl_users
                                                        : &q->acl_groups;
        int *nv = strcmp(def->name, "acl_users") == 0 ? &q->nacl_users
                                                      : &q->nacl_groups;
        char **copy = NULL;
        int ncopy = 0;
        for (int i = 0; i < *nv; i++) {
            copy = dv_xrealloc(copy, sizeof(char *) * (size_t)(ncopy + 1));
            copy[ncopy++] = dv_xstrdup((*v)[i]);
        }
        if (list_apply(&copy, &ncopy, op, value) < 0) {
            strv_free(copy, ncopy);
            return bad_value(attr, err);
        }
        strv_free(*v, *nv);
        *v = copy;
        *nv = ncopy;
        return 0;
    }
    case A_RESOURCES: {
        char canon[64];
        int *nr;
        struct dv_kv **r = res_list(q, def->name, &nr);
        if (resource_canon(resc, value, canon, sizeof(canon)) < 0) {
            return bad_value(attr, err);
        }
        kv_put(r, nr, resc, canon);
        return 0;
    }
    case A_READ_ONLY:
        break;
    }
    return bad_value(attr, err);
}

int
dv_queue_unset(struct dv_queue *q, const char *attr, struct dv_err *err)
{
    const struct attr_def *def;
    const char *resc;

    if (attr_lookup(attr, &def, &resc, err) < 0) {
        return -1;
    }
    switch (def->kind) {
    case A_TYPE:
        return 0;
    case A_PRIORITY:
        q->priority = 0;
        return 0;
    case A_COUNT:
        *(strcmp(def->name, "max_running") == 0 ? &q->max_running
                                                : &q->max_user_run) = -1;
        return 0;
    case A_BOOL:
        *bool_field(q, def->name) = 0;
        return 0;
    case A_MAX_RUN:
        q->max_run_all = q->max_run_user = -1;
        return 0;
    case A_LIST:
        if (strcmp(def->name, "acl_users") == 0) {
            strv_free(q->acl_users, q->nacl_users);
            q->acl_users = NULL;
            q->nacl_users = 0;
        } else {
            strv_free(q->acl_groups, q->nacl_groups);
            q->acl_groups = NULL;
            q->nacl_groups = 0;
        }
        return 0;
    case A_RESOURCES: {
        int *nr;
        struct dv_kv **r = res_list(q, def->name, &nr);
        kv_del(*r, nr, resc);
        return 0;
    }
    case A_READ_ONLY:
        break;
    }
    return bad_value(attr, err);
}

/* --- listing --- */

static void
pair(json_t *a, const char *name, json_t *value)
{
    json_array_append_new(a, json_pack("[s, o]", name, value));
}

static void
pair_list(json_t *a, const char *name, char *const *v, int n)
{
    struct dv_buf b;

    if (n == 0) {
        return;
    }
    dv_buf_init(&b);
    for (int i = 0; i < n; i++) {
        dv_buf_printf(&b, "%s%s", i > 0 ? "," : "", v[i]);
    }
    pair(a, name, json_string(dv_buf_str(&b)));
    dv_buf_cleanup(&b);
}

static void
pair_resources(json_t *a, const char *prefix, const struct dv_kv *r, int n)
{
    for (int i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%s.%s", prefix, r[i].key);
        pair(a, name, json_string(r[i].value));
    }
}

static json_t *
pbs_bool(int b)
{
    return json_string(b ? "True" : "False");
}

json_t *
dv_queue_attrs_json(const struct dv_queue *q)
{
    json_t *a = json_array();
    char num[24];
    char *mr;

    pair(a, "queue_type", json_string("Execution"));
    if (q->priority != 0) {
        snprintf(num, sizeof(num), "%d", q->priority);
        pair(a, "Priority", json_string(num));
    }
    if (q->max_running >= 0) {
        snprintf(num, sizeof(num), "%d", q->max_running);
        pair(a, "max_running", json_string(num));
    }
    if (q->max_user_run >= 0) {
        snprintf(num, sizeof(num), "%d", q->max_user_run);
        pair(a, "max_user_run", json_string(num));
    }
    pair_resources(a, "resources_max", q->rmax, q->nrmax);
    pair_resources(a, "resources_min", q->rmin, q->nrmin);
    pair_resources(a, "resources_default", q->rdefault, q->nrdefault);
    if (q->acl_user_enable) {
        pair(a, "acl_user_enable", pbs_bool(1));
    }
    pair_list(a, "acl_users", q->acl_users, q->nacl_users);
    if (q->acl_group_enable) {
        pair(a, "acl_group_enable", pbs_bool(1));
    }
    pair_list(a, "acl_groups", q->acl_groups, q->nacl_groups);
    if (q->preemption) {
        pair(a, "preemption", pbs_bool(1));
    }
    pair(a, "enabled", pbs_bool(q->enabled));
    pair(a, "started", pbs_bool(q->started));
    mr = dv_queue_max_run_text(q);
    if (mr != NULL) {
        pair(a, "max_run", json_string(mr));
        free(mr);
    }
    return a;
}

/* --- submission --- */

/* name, or the part of an ACL entry before '@', equals who. */
static int
acl_match(char *const *v, int n, const char *who)
{
    size_t len = strlen(who);

    for (int i = 0; i < n; i++) {
        const char *at = strchr(v[i], '@');
        size_t el = at != NULL ? (size_t)(at - v[i]) : strlen(v[i]);
        if ((el == len && strncmp(v[i], who, len) == 0) ||
            strcmp(v[i], "*") == 0) {
            return 1;
        }
    }
    return 0;
}

int
dv_queue_acl_allows(const struct dv_queue *q, const char *user,
                    const char *group)
{
    if (q->acl_user_enable &&
        (user == NULL || !acl_match(q->acl_users, q->nacl_users, user))) {
        return 0;
    }
    if (q->acl_group_enable &&
        (group == NULL || !acl_match(q->acl_groups, q->nacl_groups, group))) {
        return 0;
    }
    return 1;
}

static int
spec_has(const struct dv_job_spec *s, const char *name)
{
    for (int i = 0; i < s->nresources; i++) {
        if (strcmp(s->resources[i].key, name) == 0) {
            return 1;
        }
    }
    return 0;
}

int
dv_queue_apply_defaults(const struct dv_queue *q, struct dv_job_spec *s,
                        int *changed, struct dv_err *err)
{
    int chunked = spec_has(s, "select") || spec_has(s, "nodes");

    *changed = 0;
    if (s->native != NULL) {
        return 0;
    }
    for (int i = 0; i < q->nrdefault; i++) {
        const char *k = q->rdefault[i].key;
        if (spec_has(s, k) || strcmp(k, "nodect") == 0 ||
            (chunked && strcmp(k, "walltime") != 0)) {
            continue;
        }
        dv_job_spec_set_resource(s, k, q->rdefault[i].value);
        *changed = 1;
    }
    if (*changed) {
        return dv_job_spec_normalize(s, err);
    }
    return 0;
}

static int64_t
request_value(const struct dv_resreq *rr, const char *name)
{
    if (strcmp(name, "walltime") == 0) {
        return rr->walltime;
    }
    if (strcmp(name, "mem") == 0) {
        return rr->mem;
    }
    if (strcmp(name, "ngpus") == 0) {
        return rr->ngpus;
    }
    if (strcmp(name, "nodect") == 0) {
        return rr->nodect;
    }
    return rr->ncpus;
}

int
dv_queue_check_limits(const struct dv_queue *q, const struct dv_resreq *rr,
                      struct dv_err *err)
{
    for (int i = 0; i < q->nrmax; i++) {
        const char *k = q->rmax[i].key;
        int64_t want = request_value(rr, k);
        if (strcmp(k, "walltime") == 0 && want == 0) {
            continue; /* no walltime requested: nothing to compare */
        }
        if (want > resource_value(k, q->rmax[i].value)) {
            goto over;
        }
    }
    for (int i = 0; i < q->nrmin; i++) {
        const char *k = q->rmin[i].key;
        int64_t want = request_value(rr, k);
        if ((strcmp(k, "walltime") == 0 || strcmp(k, "mem") == 0) &&
            want == 0) {
            continue;
        }
        if (want < resource_value(k, q->rmin[i].value)) {
            goto over;
        }
    }
    return 0;
over:
    dv_err_set(err, DV_EINVAL, "over_limits",
               "Job violates queue and/or server resource limits");
    return -1;
}
