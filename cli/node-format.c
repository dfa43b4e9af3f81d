/*
 * drover node, the pure part: its arguments (Nomad-style single-dash long
 * options: -enable, -disable, -comment TEXT), byte sizes for people, the
 * node table and one node's details, rendered from the API's node objects
 * (docs/api.md "Nodes"). Unit-tested in tests/unit/test-cli-node.c.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

/* The longest node name the table widens its first column for. */
#define NODE_NAME_WIDTH_MAX 40

/* "-x", "--x" and "-x=v" / "--x=v": the option's name (after the dashes)
 * into name, its "=value" part (or NULL) into *value. Returns 0, or -1
 * when arg is not an option. */
static int
split_option(const char *arg, char *name, size_t size, const char **value)
{
    const char *p = arg;
    const char *eq;
    size_t len;

    if (p[0] != '-' || p[1] == '\0') {
        return -1;
    }
    p += p[1] == '-' ? 2 : 1;
    eq = strchr(p, '=');
    len = eq != NULL ? (size_t)(eq - p) : strlen(p);
    if (len >= size) {
        len = size - 1;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    *value = eq != NULL ? eq + 1 : NULL;
    return 0;
}

int
node_opts_parse(const char *prog, int argc, char **argv, int flags,
                struct node_opts *o, struct dv_buf *errs)
{
    int options = 1;

    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *value;
        char name[32];

        if (options && strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (!options || split_option(a, name, sizeof(name), &value) < 0) {
            if (o->node != NULL) {
                dv_buf_printf(errs,
                              "%s: only one node may be given (\"%s\" "
                              "and \"%s\")\n",
                              prog, o->node, a);
                return -1;
            }
            o->node = a;
            continue;
        }
        if ((flags & NODE_OPT_FLAGS) &&
            (strcmp(name, "enable") == 0 || strcmp(name, "disable") == 0)) {
            if (value != NULL) {
                dv_buf_printf(errs, "%s: option -%s takes no value\n", prog,
                              name);
                return -1;
            }
            if (name[0] == 'e') {
                o->enable = 1;
            } else {
                o->disable = 1;
            }
            continue;
        }
        if ((flags & NODE_OPT_FLAGS) && strcmp(name, "comment") == 0) {
            if (value == NULL) {
                if (i + 1 >= argc) {
                    dv_buf_printf(
                        errs, "%s: option -comment needs an argument\n", prog);
                    return -1;
                }
                value = argv[++i];
            }
            o->comment = value;
            o->has_comment = 1;
            continue;
        }
        dv_buf_printf(errs, "%s: unknown option \"%s\"\n", prog, a);
        return -1;
    }
    if (o->enable && o->disable) {
        dv_buf_printf(errs,
                      "%s: -enable and -disable cannot be used "
                      "together\n",
                      prog);
        return -1;
    }
    if ((flags & NODE_OPT_ONE_OF) && !o->enable && !o->disable) {
        dv_buf_printf(errs, "%s: one of -enable and -disable is required\n",
                      prog);
        return -1;
    }
    if ((flags & NODE_OPT_NODE) && o->node == NULL) {
        dv_buf_printf(errs, "%s: a node (name or id) is required\n", prog);
        return -1;
    }
    return 0;
}

void
node_fmt_bytes(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"b", "kb", "mb", "gb", "tb", "pb"};
    int64_t tenths;
    int u = 0;
    double v = (double)bytes;

    if (bytes < 1024) {
        snprintf(buf, size, "%lld%s", (long long)(bytes > 0 ? bytes : 0),
                 units[0]);
        return;
    }
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    tenths = (int64_t)(v * 10.0 + 0.5);
    if (tenths >= 10240 && u < 5) {
        tenths = (int64_t)(v / 1024.0 * 10.0 + 0.5);
        u++;
    }
    if (tenths % 10 == 0) {
        snprintf(buf, size, "%lld%s", (long long)(tenths / 10), units[u]);
    } else {
        snprintf(buf, size, "%lld.%lld%s", (long long)(tenths / 10),
                 (long long)(tenths % 10), units[u]);
    }
}

static long long
int_of(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static const char *
str_of(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : def;
}

static const char *
yes_no(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

/* "free/total" of two integer fields. */
static void
free_total(const json_t *n, const char *free_key, const char *total_key,
           char *buf, size_t size)
{
    snprintf(buf, size, "%lld/%lld", int_of(n, free_key), int_of(n, total_key));
}

static void
free_total_bytes(const json_t *n, char *buf, size_t size)
{
    char f[32], t[32];

    node_fmt_bytes((int64_t)int_of(n, "free_mem"), f, sizeof(f));
    node_fmt_bytes((int64_t)int_of(n, "total_mem"), t, sizeof(t));
    snprintf(buf, size, "%s/%s", f, t);
}

/* A node's count of active allocations: allocation_count, else the length
 * of its allocations. */
static long long
alloc_count(const json_t *n)
{
    const json_t *c = json_object_get(n, "allocation_count");

    if (json_is_integer(c)) {
        return (long long)json_integer_value(c);
    }
    return (long long)json_array_size(json_object_get(n, "allocations"));
}

void
node_format_table(struct dv_buf *out, const json_t *nodes)
{
    int width = 4;
    size_t i;
    json_t *n;

    json_array_foreach (nodes, i, n) {
        int len = (int)strlen(str_of(n, "name", "-"));

        if (len > width) {
            width = len < NODE_NAME_WIDTH_MAX ? len : NODE_NAME_WIDTH_MAX;
        }
    }
    dv_buf_printf(out, "%-*s %-6s %-6s %-8s %-5s %-9s %-17s %-7s %s\n", width,
                  "Name", "ID", "Status", "Eligible", "Drain", "Cores",
                  "Memory", "GPUs", "Allocs");
    json_array_foreach (nodes, i, n) {
        char cores[48], mem[80], gpus[48];

        free_total(n, "free_cores", "total_cores", cores, sizeof(cores));
        free_total_bytes(n, mem, sizeof(mem));
        free_total(n, "free_gpus", "total_gpus", gpus, sizeof(gpus));
        dv_buf_printf(out, "%-*s %-6lld %-6s %-8s %-5s %-9s %-17s %-7s %lld\n",
                      width, str_of(n, "name", "-"), int_of(n, "id"),
                      str_of(n, "status", "-"), yes_no(n, "eligible"),
                      yes_no(n, "drain"), cores, mem, gpus, alloc_count(n));
    }
}

void
node_format_details(struct dv_buf *out, const json_t *n)
{
    const json_t *allocs = json_object_get(n, "allocations");
    const json_t *deadline = json_object_get(n, "heartbeat_deadline");
    char buf[80];
    size_t i;
    json_t *a;

    dv_buf_printf(out, "Name:        %s\n", str_of(n, "name", "-"));
    dv_buf_printf(out, "ID:          %lld\n", int_of(n, "id"));
    dv_buf_printf(out, "Status:      %s\n", str_of(n, "status", "-"));
    dv_buf_printf(out, "Eligible:    %s\n", yes_no(n, "eligible"));
    dv_buf_printf(out, "Drain:       %s\n", yes_no(n, "drain"));
    dv_buf_printf(out, "Comment:     %s\n", str_of(n, "comment", "-"));
    dv_buf_printf(out, "Datacenter:  %s\n", str_of(n, "datacenter", "-"));
    dv_buf_printf(out, "Pool:        %s\n", str_of(n, "pool", "-"));
    dv_buf_printf(out, "Address:     %s\n", str_of(n, "address", "-"));
    free_total(n, "free_cores", "total_cores", buf, sizeof(buf));
    dv_buf_printf(out, "Cores:       %s free (free cores: %s)\n", buf,
                  dv_str_empty(str_of(n, "free_cpuset", ""))
                      ? "none"
                      : str_of(n, "free_cpuset", ""));
    free_total_bytes(n, buf, sizeof(buf));
    dv_buf_printf(out, "Memory:      %s free\n", buf);
    free_total(n, "free_gpus", "total_gpus", buf, sizeof(buf));
    dv_buf_printf(out, "GPUs:        %s free\n", buf);
    if (json_is_integer(deadline)) {
        time_t t = (time_t)json_integer_value(deadline);
        struct tm tm;

        localtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
        dv_buf_printf(out, "Heartbeat:   due by %s\n", buf);
    }
    dv_buf_printf(out, "\nAllocations\n%-10s %-20s %-6s %-9s %-5s %-8s %s\n",
                  "ID", "Job", "Cores", "Memory", "GPUs", "Desired", "Status");
    json_array_foreach (allocs, i, a) {
        char mem[32];

        node_fmt_bytes((int64_t)int_of(a, "memory"), mem, sizeof(mem));
        dv_buf_printf(out, "%-10lld %-20s %-6lld %-9s %-5lld %-8s %s\n",
                      int_of(a, "id"), str_of(a, "job_id", "-"),
                      int_of(a, "cores"), mem, int_of(a, "gpus"),
                      str_of(a, "desired_status", "-"),
                      str_of(a, "state", "-"));
    }
    if (json_array_size(allocs) == 0) {
        dv_buf_puts(out, "(none)\n");
    }
}

void
node_format_change(struct dv_buf *out, const json_t *n, int drain_cmd)
{
    const char *name = str_of(n, "name", "?");
    long long running = alloc_count(n);

    if (drain_cmd && json_is_true(json_object_get(n, "drain"))) {
        dv_buf_printf(out, "Node \"%s\" drained: no new work is placed on it",
                      name);
    } else if (drain_cmd) {
        dv_buf_printf(out, "Node \"%s\" undrained", name);
    } else if (json_is_true(json_object_get(n, "eligible"))) {
        dv_buf_printf(out, "Node \"%s\" eligible", name);
    } else {
        dv_buf_printf(out,
                      "Node \"%s\" ineligible: no new work is placed on "
                      "it",
                      name);
    }
    if ((drain_cmd ? json_is_true(json_object_get(n, "drain"))
                   : !json_is_true(json_object_get(n, "eligible"))) &&
        running > 0) {
        dv_buf_printf(out, " (%lld allocation%s still running)", running,
                      running == 1 ? "" : "s");
    }
    dv_buf_putc(out, '\n');
}
