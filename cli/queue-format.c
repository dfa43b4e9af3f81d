/*
 * Queues as PBS prints them (pbs-cli.md sections 3.6 and 6): qmgr's
 * "list queue" and "print queue", and qstat -Q, -Qf and -Qf -F json. The
 * input is the API's queue object (docs/api.md, "Queues"), whose
 * "attributes" array lists the set attributes in PBS's order. Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"

static const char *
qname(const json_t *q)
{
    const char *s = json_string_value(json_object_get(q, "name"));
    return s != NULL ? s : "";
}

static json_int_t
count(const json_t *q, const char *state)
{
    return json_integer_value(
        json_object_get(json_object_get(q, "state_count"), state));
}

static void
state_count_text(const json_t *q, char *buf, size_t size)
{
    snprintf(buf, size,
             "Transit:%lld Queued:%lld Held:%lld Waiting:%lld Running:%lld "
             "Exiting:%lld Begun:%lld ",
             (long long)count(q, "Transit"), (long long)count(q, "Queued"),
             (long long)count(q, "Held"), (long long)count(q, "Waiting"),
             (long long)count(q, "Running"), (long long)count(q, "Exiting"),
             (long long)count(q, "Begun"));
}

/* The attributes as [name, value] pairs with total_jobs and state_count
 * after queue_type and Priority, as PBS lists them. Calls fn for each. */
static void
each_attr(const json_t *q,
          void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    const json_t *attrs = json_object_get(q, "attributes");
    char total[32], sc[256];
    int counts_done = 0;
    size_t i;
    json_t *pair;

    snprintf(total, sizeof(total), "%lld",
             (long long)json_integer_value(json_object_get(q, "total_jobs")));
    state_count_text(q, sc, sizeof(sc));
    json_array_foreach (attrs, i, pair) {
        const char *name = json_string_value(json_array_get(pair, 0));
        const char *value = json_string_value(json_array_get(pair, 1));
        if (name == NULL || value == NULL) {
            continue;
        }
        if (!counts_done && strcmp(name, "queue_type") != 0 &&
            strcmp(name, "Priority") != 0) {
            fn(arg, "total_jobs", total);
            fn(arg, "state_count", sc);
            counts_done = 1;
        }
        fn(arg, name, value);
    }
    if (!counts_done) {
        fn(arg, "total_jobs", total);
        fn(arg, "state_count", sc);
    }
}

/* --- qmgr list --- */

static void
list_one(void *arg, const char *name, const char *value)
{
    struct dv_buf *out = arg;
    size_t len = 4 + strlen(name) + 3;
    const char *p = value;
    int first = 1;

    dv_buf_printf(out, "    %s = ", name);
    /* Once a line reaches 80 columns, every later comma piece starts on a
     * new line after a tab. */
    while (*p != '\0' || first) {
        size_t n = strcspn(p, ",");
        if (!first) {
            if (len >= 80) {
                dv_buf_puts(out, ",\n\t");
                len = 8;
            } else {
                dv_buf_putc(out, ',');
                len++;
            }
        }
        dv_buf_append(out, p, n);
        len += n;
        first = 0;
        p += n;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                break;
            }
        } else {
            break;
        }
    }
    dv_buf_putc(out, '\n');
}

void
queue_list_text(struct dv_buf *out, const json_t *q)
{
    dv_buf_printf(out, "Queue %s\n", qname(q));
    each_attr(q, list_one, out);
    dv_buf_putc(out, '\n');
}

/* --- qmgr print --- */

struct print_ctx {
    struct dv_buf *out;
    const char *queue;
};

static int
needs_quotes(const char *v)
{
    return v[strcspn(v, " \t,\"'#")] != '\0';
}

static void
print_one(void *arg, const char *name, const char *value)
{
    struct print_ctx *c = arg;
    int list =
        strcmp(name, "acl_users") == 0 || strcmp(name, "acl_groups") == 0;
    const char *p = value;
    int first = 1;

    if (strcmp(name, "total_jobs") == 0 || strcmp(name, "state_count") == 0) {
        return; /* read-only */
    }
    if (!list) {
        if (needs_quotes(value)) {
            dv_buf_printf(c->out, "set queue %s %s = \"%s\"\n", c->queue, name,
                          value);
        } else {
            dv_buf_printf(c->out, "set queue %s %s = %s\n", c->queue, name,
                          value);
        }
        return;
    }
    /* Lists: "= a" then "+= b" per entry. */
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        dv_buf_printf(c->out, "set queue %s %s %s %.*s\n", c->queue, name,
                      first ? "=" : "+=", (int)n, p);
        first = 0;
        p += n;
        if (*p == ',') {
            p++;
        }
    }
}

void
queue_print_text(struct dv_buf *out, const json_t *q)
{
    struct print_ctx c = {out, qname(q)};

    dv_buf_printf(out, "#\n# Create and define queue %s\n#\n", c.queue);
    dv_buf_printf(out, "create queue %s\n", c.queue);
    each_attr(q, print_one, &c);
}

/* --- qstat -Q --- */

void
qstat_queue_header(struct dv_buf *out)
{
    dv_buf_puts(out, "Queue              Max   Tot Ena Str   Que   Run   Hld "
                     "  Wat   Trn   Ext Type\n"
                     "---------------- ----- ----- --- --- ----- ----- ----- "
                     "----- ----- ----- ----\n");
}

static void
cut(const char *s, size_t width, char *buf, size_t size)
{
    if (strlen(s) > width) {
        snprintf(buf, size, "%.*s*", (int)(width - 1), s);
    } else {
        snprintf(buf, size, "%s", s);
    }
}

void
qstat_queue_row(struct dv_buf *out, const json_t *q)
{
    const json_t *mr = json_object_get(q, "max_running");
    char name[32], type[8], num[8][24];
    long long v[8];
    const char *type_s = json_string_value(json_object_get(q, "queue_type"));

    cut(qname(q), 16, name, sizeof(name));
    cut(type_s != NULL ? type_s : "Execution", 4, type, sizeof(type));
    v[0] = json_is_integer(mr) ? (long long)json_integer_value(mr) : 0;
    v[1] = (long long)json_integer_value(json_object_get(q, "total_jobs"));
    v[2] = (long long)count(q, "Queued");
    v[3] = (long long)count(q, "Running");
    v[4] = (long long)count(q, "Held");
    v[5] = (long long)count(q, "Waiting");
    v[6] = (long long)count(q, "Transit");
    v[7] = (long long)count(q, "Exiting");
    for (int i = 0; i < 8; i++) {
        snprintf(num[i], sizeof(num[i]), "%lld", v[i]);
    }
    dv_buf_printf(out, "%-16s %5s %5s %3s %3s %5s %5s %5s %5s %5s %5s %-4s\n",
                  name, num[0], num[1],
                  json_is_true(json_object_get(q, "enabled")) ? "yes" : "no",
                  json_is_true(json_object_get(q, "started")) ? "yes" : "no",
                  num[2], num[3], num[4], num[5], num[6], num[7], type);
}

static void
full_one(void *arg, const char *name, const char *value)
{
    struct dv_buf *out = arg;
    const char *dot = strchr(name, '.');

    if (dot != NULL) {
        char *base = dv_xstrndup(name, (size_t)(dot - name));
        qstat_prt_attr(out, base, dot + 1, value, 0);
        free(base);
    } else {
        qstat_prt_attr(out, name, NULL, value, 0);
    }
    dv_buf_putc(out, '\n');
}

void
qstat_queue_full(struct dv_buf *out, const json_t *q)
{
    dv_buf_printf(out, "Queue: %s\n", qname(q));
    each_attr(q, full_one, out);
    dv_buf_putc(out, '\n');
}

static void
dsv_one(void *arg, const char *name, const char *value)
{
    struct qstat_attrs *a = arg;
    const char *dot = strchr(name, '.');

    if (dot != NULL) {
        char *base = dv_xstrndup(name, (size_t)(dot - name));
        qstat_attrs_add(a, base, dot + 1, value);
        free(base);
    } else {
        qstat_attrs_add(a, name, NULL, value);
    }
}

void
qstat_queue_dsv(struct dv_buf *out, const json_t *q, const char *delim)
{
    struct qstat_attrs a;

    memset(&a, 0, sizeof(a));
    each_attr(q, dsv_one, &a);
    qstat_full_dsv_as(out, "Queue", qname(q), &a, delim);
    qstat_attrs_cleanup(&a);
}

static void
json_one(void *arg, const char *name, const char *value)
{
    json_t *o = arg;
    const char *dot = strchr(name, '.');

    if (dot != NULL) {
        char *base = dv_xstrndup(name, (size_t)(dot - name));
        json_t *sub = json_object_get(o, base);
        if (sub == NULL) {
            sub = json_object();
            json_object_set_new(o, base, sub);
        }
        json_object_set_new(sub, dot + 1, cli_json_auto(value));
        free(base);
    } else {
        json_object_set_new(o, name, cli_json_auto(value));
    }
}

json_t *
qstat_queue_json(const json_t *q)
{
    json_t *o = json_object();

    each_attr(q, json_one, o);
    return o;
}
