/*
 * pbsnodes (PBS's node command, pbs-cli.md section 5) over the node admin
 * API: -a lists every node as PBS does (text, or -F json), -l lists the
 * down and offline ones, -o marks nodes offline (POST .../eligibility
 * {"eligible": false}: no new work), -r clears it, -C sets the comment.
 * PBS's "offline" is Drover's ineligible (or drained) node: one
 * mechanism, two spellings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"
#include "lib/version.h"

static int
json_int(const json_t *o, const char *key)
{
    return (int)json_integer_value(json_object_get(o, key));
}

void
pbsnodes_state(const json_t *node, char *buf, size_t size)
{
    const char *status = json_string_value(json_object_get(node, "status"));
    int offline = !json_is_true(json_object_get(node, "eligible")) ||
                  json_is_true(json_object_get(node, "drain"));
    int total = json_int(node, "total_cores");
    int free_cores = json_int(node, "free_cores");

    buf[0] = '\0';
    if (status != NULL && strcmp(status, "down") == 0) {
        dv_strlcpy(buf, "down", size);
    }
    if (offline) {
        snprintf(buf + strlen(buf), size - strlen(buf), "%soffline",
                 buf[0] != '\0' ? "," : "");
    }
    if (buf[0] == '\0') {
        dv_strlcpy(buf, total > 0 && free_cores == 0 ? "job-busy" : "free",
                   size);
    }
}

/* "jobs = 12.srv/0, 12.srv/1": one entry per core each job holds. */
static void
jobs_slots(const json_t *allocs, struct dv_buf *out)
{
    size_t i;
    json_t *a;
    int slot = 0;

    json_array_foreach (allocs, i, a) {
        const char *jid = json_string_value(json_object_get(a, "job_id"));
        int cores = json_int(a, "cores");

        if (jid == NULL) {
            continue;
        }
        for (int k = 0; k < cores; k++) {
            dv_buf_printf(out, "%s%s/%d", slot > 0 ? ", " : "", jid, slot);
            slot++;
        }
    }
}

static void
attr(struct dv_buf *out, const char *name, const char *value)
{
    dv_buf_printf(out, "     %s = %s\n", name, value);
}

void
pbsnodes_format_node(struct dv_buf *out, const json_t *node)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *comment = json_string_value(json_object_get(node, "comment"));
    int total = json_int(node, "total_cores");
    int gpus = json_int(node, "total_gpus");
    long long mem =
        (long long)json_integer_value(json_object_get(node, "total_mem"));
    long long fmem =
        (long long)json_integer_value(json_object_get(node, "free_mem"));
    char state[64], v[64];
    struct dv_buf jobs;

    dv_buf_init(&jobs);
    pbsnodes_state(node, state, sizeof(state));
    dv_buf_printf(out, "%s\n", name != NULL ? name : "");
    attr(out, "Mom", name != NULL ? name : "");
    attr(out, "pbs_version", DV_VERSION);
    attr(out, "ntype", "PBS");
    attr(out, "state", state);
    snprintf(v, sizeof(v), "%d", total);
    attr(out, "pcpus", v);
    jobs_slots(json_object_get(node, "allocations"), &jobs);
    if (jobs.len > 0) {
        attr(out, "jobs", dv_buf_str(&jobs));
    }
    attr(out, "resources_available.host", name != NULL ? name : "");
    snprintf(v, sizeof(v), "%lldkb", mem / 1024);
    attr(out, "resources_available.mem", v);
    snprintf(v, sizeof(v), "%d", total);
    attr(out, "resources_available.ncpus", v);
    if (gpus > 0) {
        snprintf(v, sizeof(v), "%d", gpus);
        attr(out, "resources_available.ngpus", v);
    }
    attr(out, "resources_available.vnode", name != NULL ? name : "");
    snprintf(v, sizeof(v), "%lldkb", (mem - fmem) / 1024);
    attr(out, "resources_assigned.mem", v);
    snprintf(v, sizeof(v), "%d", total - json_int(node, "free_cores"));
    attr(out, "resources_assigned.ncpus", v);
    if (gpus > 0) {
        snprintf(v, sizeof(v), "%d", gpus - json_int(node, "free_gpus"));
        attr(out, "resources_assigned.ngpus", v);
    }
    attr(out, "resv_enable", "True");
    attr(out, "sharing", "default_shared");
    if (comment != NULL && *comment != '\0') {
        attr(out, "comment", comment);
    }
    dv_buf_puts(out, "\n");
    dv_buf_cleanup(&jobs);
}

json_t *
pbsnodes_node_json(const json_t *node)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *comment = json_string_value(json_object_get(node, "comment"));
    int total = json_int(node, "total_cores");
    int gpus = json_int(node, "total_gpus");
    long long mem =
        (long long)json_integer_value(json_object_get(node, "total_mem"));
    long long used =
        mem - (long long)json_integer_value(json_object_get(node, "free_mem"));
    int ucores = total - json_int(node, "free_cores");
    int ugpus = gpus - json_int(node, "free_gpus");
    json_t *o = json_object(), *ra = json_object(), *rs = json_object();
    json_t *jobs = json_array(), *j;
    char state[64], v[64];
    size_t i;

    pbsnodes_state(node, state, sizeof(state));
    json_object_set_new(o, "Mom", json_string(name != NULL ? name : ""));
    json_object_set_new(o, "pbs_version", json_string(DV_VERSION));
    json_object_set_new(o, "ntype", json_string("PBS"));
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "pcpus", json_integer(total));
    /* Unique job ids, no "/N" (PBS's JSON). */
    json_array_foreach (json_object_get(node, "jobs"), i, j) {
        if (json_is_string(j)) {
            json_array_append(jobs, j);
        }
    }
    if (json_array_size(jobs) > 0) {
        json_object_set_new(o, "jobs", jobs);
    } else {
        json_decref(jobs);
    }
    json_object_set_new(ra, "host", json_string(name != NULL ? name : ""));
    snprintf(v, sizeof(v), "%lldkb", mem / 1024);
    json_object_set_new(ra, "mem", json_string(v));
    json_object_set_new(ra, "ncpus", json_integer(total));
    if (gpus > 0) {
        json_object_set_new(ra, "ngpus", json_integer(gpus));
    }
    json_object_set_new(ra, "vnode", json_string(name != NULL ? name : ""));
    json_object_set_new(o, "resources_available", ra);
    /* resources_assigned leaves zeros out. */
    if (used > 0) {
        snprintf(v, sizeof(v), "%lldkb", used / 1024);
        json_object_set_new(rs, "mem", json_string(v));
    }
    if (ucores > 0) {
        json_object_set_new(rs, "ncpus", json_integer(ucores));
    }
    if (ugpus > 0) {
        json_object_set_new(rs, "ngpus", json_integer(ugpus));
    }
    json_object_set_new(o, "resources_assigned", rs);
    json_object_set_new(o, "resv_enable", json_string("True"));
    json_object_set_new(o, "sharing", json_string("default_shared"));
    if (comment != NULL && *comment != '\0') {
        json_object_set_new(o, "comment", json_string(comment));
    }
    return o;
}

void
pbsnodes_format_list_line(struct dv_buf *out, const json_t *node)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *comment = json_string_value(json_object_get(node, "comment"));
    char state[64];

    pbsnodes_state(node, state, sizeof(state));
    dv_buf_printf(out, "%-20s %s %s\n", name != NULL ? name : "", state,
                  comment != NULL ? comment : "");
}

static int
usage(void)
{
    fputs("usage:\n"
          "\tpbsnodes [-o|-r] [-s server] [-C comment] host host ...\n"
          "\tpbsnodes -l [-s server]\n"
          "\tpbsnodes -a [-F json] [-s server]\n"
          "\tpbsnodes --version\n",
          stderr);
    return 1;
}

/* GET path; returns the body (new reference) or NULL after printing. */
static json_t *
get(struct cli_client *c, const char *path, int *status)
{
    struct cli_reply r;
    struct dv_err err;
    json_t *body = NULL;

    dv_err_clear(&err);
    if (cli_client_call(c, "GET", path, NULL, NULL, 0, &r, &err) < 0) {
        *status = cli_client_report_transport(c, &err);
        return NULL;
    }
    if (r.status != 200 || r.body == NULL) {
        fprintf(stderr, "pbsnodes: %s\n",
                r.message[0] != '\0' ? r.message : "no answer");
        *status = 1;
    } else {
        body = json_incref(r.body);
    }
    cli_reply_cleanup(&r);
    return body;
}

static int
list_all(struct cli_client *c, int mode, int json_out)
{
    json_t *list;
    struct dv_buf out;
    json_t *nodes_json = json_object();
    size_t i;
    json_t *n;
    int status = 0;

    list = get(c, "/v1/nodes", &status);
    if (list == NULL) {
        json_decref(nodes_json);
        return status;
    }
    dv_buf_init(&out);
    json_array_foreach (json_object_get(list, "nodes"), i, n) {
        if (mode == 'l') {
            char state[64];

            pbsnodes_state(n, state, sizeof(state));
            if (strstr(state, "down") != NULL ||
                strstr(state, "offline") != NULL) {
                pbsnodes_format_list_line(&out, n);
            }
        } else if (json_out) {
            json_object_set_new(nodes_json,
                                json_string_value(json_object_get(n, "name")),
                                pbsnodes_node_json(n));
        } else {
            /* The allocations (jobs = id/slot) are the node's own view. */
            char path[64];
            json_t *one;

            snprintf(path, sizeof(path), "/v1/nodes/%lld",
                     (long long)json_integer_value(json_object_get(n, "id")));
            one = get(c, path, &status);
            pbsnodes_format_node(&out, one != NULL ? one : n);
            json_decref(one);
        }
    }
    if (json_out && mode == 'a') {
        json_t *top = json_object();

        json_object_set_new(top, "timestamp",
                            json_integer((json_int_t)time(NULL)));
        json_object_set_new(top, "pbs_version", json_string(DV_VERSION));
        json_object_set_new(top, "pbs_server",
                            json_string(cli_client_server_name(c)));
        json_object_set_new(top, "nodes", nodes_json);
        nodes_json = NULL;
        cli_json_print(&out, top);
        dv_buf_puts(&out, "\n");
        json_decref(top);
    }
    fputs(dv_buf_str(&out), stdout);
    dv_buf_cleanup(&out);
    json_decref(nodes_json);
    json_decref(list);
    return status;
}

/* -o, -r, -C on each node: the eligibility route, with the comment. */
static int
change(struct cli_client *c, int mode, const char *comment, int n, char **nodes)
{
    int status = 0;

    for (int i = 0; i < n; i++) {
        struct cli_reply r;
        struct dv_err err;
        struct dv_buf path;
        json_t *body = json_object();
        int eligible;

        dv_buf_init(&path);
        if (mode == 'o' || mode == 'r') {
            eligible = mode == 'r';
        } else {
            /* -C alone: keep the node's eligibility. */
            json_t *cur;
            int st = 0;

            dv_buf_puts(&path, "/v1/nodes/");
            cli_urlencode(&path, nodes[i]);
            cur = get(c, dv_buf_str(&path), &st);
            dv_buf_reset(&path);
            if (cur == NULL) {
                fprintf(stderr, "Node: %s,  Error: Unknown node \n", nodes[i]);
                json_decref(body);
                dv_buf_cleanup(&path);
                status = 1;
                continue;
            }
            eligible = json_is_true(json_object_get(cur, "eligible"));
            json_decref(cur);
        }
        json_object_set_new(body, "eligible", json_boolean(eligible));
        if (comment != NULL) {
            json_object_set_new(body, "comment", json_string(comment));
        }
        dv_buf_puts(&path, "/v1/nodes/");
        cli_urlencode(&path, nodes[i]);
        dv_buf_puts(&path, "/eligibility");
        dv_err_clear(&err);
        if (cli_client_call(c, "POST", dv_buf_str(&path), body, NULL, 0, &r,
                            &err) < 0) {
            status = cli_client_report_transport(c, &err);
        } else {
            if (r.status == 404) {
                fprintf(stderr, "Node: %s,  Error: Unknown node \n", nodes[i]);
                status = 1;
            } else if (r.status < 200 || r.status >= 300) {
                fprintf(stderr, "Error marking node %s - %s\n", nodes[i],
                        r.message);
                status = 1;
            }
            cli_reply_cleanup(&r);
        }
        json_decref(body);
        dv_buf_cleanup(&path);
    }
    return status;
}

int
cmd_pbsnodes(int argc, char **argv)
{
    struct cli_getopt g;
    struct dv_buf errs;
    struct cli_client *c = NULL;
    struct dv_err err;
    const char *comment = NULL;
    int mode = 0, json_out = 0, errflg = 0, status = 1, ch;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    dv_buf_init(&errs);
    cli_getopt_init(&g, argc, argv, "aloqrs:C:F:", "pbsnodes");
    g.errors = &errs;
    while ((ch = cli_getopt_next(&g)) != -1) {
        switch (ch) {
        case 'a':
        case 'l':
        case 'o':
        case 'r':
            if (mode != 0 && mode != ch) {
                errflg++;
            }
            mode = ch;
            break;
        case 'C':
            comment = g.optarg;
            break;
        case 'F':
            if (strcmp(g.optarg, "json") != 0) {
                errflg++;
            }
            json_out = 1;
            break;
        case 's':
        case 'q':
            break; /* one server: DROVER_ADDR */
        default:
            errflg++;
        }
    }
    fputs(dv_buf_str(&errs), stderr);
    if (mode == 0 && comment != NULL) {
        mode = 'C';
    }
    if (errflg > 0 || mode == 0 || (json_out && mode != 'a') ||
        ((mode == 'a' || mode == 'l') &&
         (g.noperands > 0 || comment != NULL)) ||
        ((mode == 'o' || mode == 'r' || mode == 'C') && g.noperands == 0)) {
        status = usage();
        goto out;
    }
    dv_err_clear(&err);
    c = cli_client_new("pbsnodes", &err);
    if (c == NULL) {
        fprintf(stderr, "pbsnodes: %s\n", err.msg);
        goto out;
    }
    if (mode == 'a' || mode == 'l') {
        status = list_all(c, mode, json_out);
    } else {
        status = change(c, mode, comment, g.noperands, g.operands);
    }
out:
    cli_client_free(c);
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    return status;
}
