/*
 * Job dependencies: parsing PBS's -W depend lists, their qstat text, and
 * the rule deciding what a target's start or end means for a dependent
 * (lib/depend.h; the database's copy of the rule is drover_depend_resolve
 * in sql/0005-depend.sql).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/depend.h"
#include "lib/job.h"
#include "lib/mem.h"
#include "lib/strutil.h"

static const char *const type_names[] = {
    "after",  "afterok",  "afternotok",  "afterany",
    "before", "beforeok", "beforenotok", "beforeany",
};

const char *
dv_depend_type_name(enum dv_depend_type type)
{
    if ((int)type < 0 || (int)type > DV_DEPEND_BEFOREANY) {
        return "unknown";
    }
    return type_names[type];
}

int
dv_depend_type_parse(const char *name)
{
    for (int i = 0; i <= DV_DEPEND_BEFOREANY; i++) {
        if (strcmp(name, type_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int
dv_depend_is_before(enum dv_depend_type type)
{
    return type >= DV_DEPEND_BEFORE;
}

enum dv_depend_type
dv_depend_reverse(enum dv_depend_type type)
{
    return dv_depend_is_before(type)
               ? (enum dv_depend_type)(type - DV_DEPEND_BEFORE)
               : type;
}

enum dv_depend_outcome
dv_depend_outcome(enum dv_depend_type type, enum dv_depend_event event,
                  int has_exit, int exit_status)
{
    type = dv_depend_reverse(type);
    if (event == DV_DEPEND_DELETED) {
        /* Deleted before it ran: nothing of it will ever start or end. */
        return DV_DEPEND_UNMET;
    }
    if (event == DV_DEPEND_STARTED) {
        return type == DV_DEPEND_AFTER ? DV_DEPEND_MET : DV_DEPEND_WAIT;
    }
    switch (type) {
    case DV_DEPEND_AFTER:
    case DV_DEPEND_AFTERANY:
        return DV_DEPEND_MET;
    case DV_DEPEND_AFTEROK:
        return has_exit && exit_status == 0 ? DV_DEPEND_MET : DV_DEPEND_UNMET;
    case DV_DEPEND_AFTERNOTOK:
        /* An end without a status (stopped, lost) is not a success. */
        return has_exit && exit_status == 0 ? DV_DEPEND_UNMET : DV_DEPEND_MET;
    default:
        return DV_DEPEND_WAIT;
    }
}

void
dv_depend_cleanup(struct dv_depend *d)
{
    free(d->edges);
    d->edges = NULL;
    d->nedges = 0;
    d->on = 0;
}

/* "12", "12.srv", "12@srv", "124[]", "124[7].srv": the number, and the
 * array part. Returns 0 or -1. */
static int
parse_id(const char *s, struct dv_depend_edge *e)
{
    const char *open = strchr(s, '['), *close;
    char *plain;
    int rc;

    e->array = 0;
    e->index = -1;
    if (open == NULL) {
        return dv_job_id_parse(s, &e->id);
    }
    close = strchr(open, ']');
    /* "124[1-3]" (a range) is refused, as PBS refuses it. */
    if (close == NULL || open == s || !isdigit((unsigned char)open[-1]) ||
        (close[1] != '\0' && close[1] != '.' && close[1] != '@')) {
        return -1;
    }
    if (close > open + 1) {
        char ix[16];
        int64_t v;

        if ((size_t)(close - open - 1) >= sizeof(ix)) {
            return -1;
        }
        memcpy(ix, open + 1, (size_t)(close - open - 1));
        ix[close - open - 1] = '\0';
        if (dv_parse_i64(ix, 0, 99999999, &v) < 0) {
            return -1;
        }
        e->index = (int)v;
    }
    e->array = 1;
    /* The id without its brackets: "124[7].srv" -> "124.srv". */
    plain = dv_xstrdup(s);
    memmove(plain + (open - s), close + 1, strlen(close + 1) + 1);
    rc = dv_job_id_parse(plain, &e->id);
    free(plain);
    return rc;
}

/* Appends e unless the list has it already ("afterok:1:1" is one edge). */
static void
add_edge(struct dv_depend *d, int *cap, const struct dv_depend_edge *e)
{
    for (int i = 0; i < d->nedges; i++) {
        if (d->edges[i].type == e->type && d->edges[i].id == e->id &&
            d->edges[i].array == e->array && d->edges[i].index == e->index) {
            return;
        }
    }
    if (d->nedges == *cap) {
        *cap = *cap == 0 ? 8 : *cap * 2;
        d->edges = dv_xrealloc(d->edges, sizeof(*d->edges) * (size_t)*cap);
    }
    d->edges[d->nedges++] = *e;
}

int
dv_depend_parse(const char *text, struct dv_depend *out, struct dv_err *err)
{
    char *copy = NULL, *item, *next_item;
    int cap = 0, rc = -1;

    memset(out, 0, sizeof(*out));
    if (dv_str_empty(text) || strlen(text) > 64 * 1024) {
        goto bad;
    }
    copy = dv_xstrdup(text);
    for (item = copy; item != NULL; item = next_item) {
        char *colon, *arg, *next_arg;
        int type;

        next_item = strchr(item, ',');
        if (next_item != NULL) {
            *next_item++ = '\0';
        }
        colon = strchr(item, ':');
        if (colon == NULL || colon[1] == '\0') {
            goto bad;
        }
        *colon = '\0';
        if (strcmp(item, "on") == 0) {
            int64_t n;
            if (out->on != 0 || dv_parse_i64(colon + 1, 1, 1000000, &n) < 0) {
                goto bad;
            }
            out->on = (int)n;
            continue;
        }
        type = dv_depend_type_parse(item);
        if (type < 0) {
            goto bad;
        }
        for (arg = colon + 1; arg != NULL; arg = next_arg) {
            struct dv_depend_edge e;

            next_arg = strchr(arg, ':');
            if (next_arg != NULL) {
                *next_arg++ = '\0';
            }
            if (parse_id(arg, &e) < 0 || out->nedges >= DV_DEPEND_MAX_EDGES) {
                goto bad;
            }
            e.type = (enum dv_depend_type)type;
            add_edge(out, &cap, &e);
        }
    }
    rc = 0;
    goto out;
bad:
    dv_depend_cleanup(out);
    dv_err_set(err, DV_EINVAL, "bad_depend", "Invalid Job Dependency");
out:
    free(copy);
    return rc;
}

char *
dv_depend_format(const struct dv_depend *d, const char *server)
{
    struct dv_buf b;
    unsigned done = 0;
    int groups = 0;

    dv_buf_init(&b);
    for (int i = 0; i < d->nedges; i++) {
        enum dv_depend_type t = d->edges[i].type;

        if (done & (1u << t)) {
            continue;
        }
        done |= 1u << t;
        dv_buf_printf(&b, "%s%s", groups++ > 0 ? "," : "",
                      dv_depend_type_name(t));
        for (int j = i; j < d->nedges; j++) {
            const struct dv_depend_edge *e = &d->edges[j];

            if (e->type != t) {
                continue;
            }
            dv_buf_printf(&b, ":%lld", e->id);
            if (e->array && e->index >= 0) {
                dv_buf_printf(&b, "[%d]", e->index);
            } else if (e->array) {
                dv_buf_puts(&b, "[]");
            }
            if (server != NULL && *server != '\0') {
                dv_buf_printf(&b, ".%s@%s", server, server);
            }
        }
    }
    if (d->on > 0) {
        dv_buf_printf(&b, "%son:%d", groups > 0 ? "," : "", d->on);
    }
    return dv_buf_steal(&b);
}
