/*
 * drover node: operators' view of the nodes and their changes to them.
 *   drover node status [NODE]          the node table, or one node
 *   drover node drain NODE [-disable] [-comment TEXT]
 *   drover node eligibility NODE -enable|-disable [-comment TEXT]
 * NODE is a node's name or id. Drain and eligibility only stop new
 * placements; running work runs to completion (docs/cli.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

static int
node_usage(FILE *f)
{
    fputs("usage: drover node status [NODE]\n"
          "       drover node drain NODE [-disable] [-comment TEXT]\n"
          "       drover node eligibility NODE -enable|-disable "
          "[-comment TEXT]\n",
          f);
    return 2;
}

/* "/v1/nodes/<node>[/<what>]" with the node escaped. */
static void
node_path(struct dv_buf *b, const char *node, const char *what)
{
    dv_buf_puts(b, "/v1/nodes/");
    cli_urlencode(b, node);
    if (what != NULL) {
        dv_buf_printf(b, "/%s", what);
    }
}

static int
node_status(struct cli_client *c, const struct node_opts *o)
{
    struct cli_reply r;
    struct dv_buf path, out;
    int status;

    memset(&r, 0, sizeof(r));
    dv_buf_init(&path);
    dv_buf_init(&out);
    if (o->node != NULL) {
        node_path(&path, o->node, NULL);
    } else {
        dv_buf_puts(&path, "/v1/nodes");
    }
    status = cli_client_call_ok(c, "GET", dv_buf_str(&path), NULL, &r);
    if (status != 0) {
        goto out;
    }
    if (o->node != NULL) {
        node_format_details(&out, r.body);
    } else if (json_array_size(json_object_get(r.body, "nodes")) == 0) {
        dv_buf_puts(&out, "No nodes registered\n");
    } else {
        node_format_table(&out, json_object_get(r.body, "nodes"));
    }
    fputs(dv_buf_str(&out), stdout);
out:
    cli_reply_cleanup(&r);
    dv_buf_cleanup(&path);
    dv_buf_cleanup(&out);
    return status;
}

/* drain (drain_cmd) or eligibility. */
static int
node_change(struct cli_client *c, const struct node_opts *o, int drain_cmd)
{
    struct cli_reply r;
    struct dv_buf path, out;
    json_t *body;
    int status;

    memset(&r, 0, sizeof(r));
    dv_buf_init(&path);
    dv_buf_init(&out);
    node_path(&path, o->node, drain_cmd ? "drain" : "eligibility");
    body = json_object();
    json_object_set_new(body, drain_cmd ? "drain" : "eligible",
                        json_boolean(drain_cmd ? !o->disable : o->enable));
    if (o->has_comment) {
        /* An empty comment clears the node's. */
        json_object_set_new(body, "comment",
                            o->comment[0] != '\0' ? json_string(o->comment)
                                                  : json_null());
    }
    status = cli_client_call_ok(c, "POST", dv_buf_str(&path), body, &r);
    if (status == 0) {
        node_format_change(&out, r.body, drain_cmd);
        fputs(dv_buf_str(&out), stdout);
    }
    json_decref(body);
    cli_reply_cleanup(&r);
    dv_buf_cleanup(&path);
    dv_buf_cleanup(&out);
    return status;
}

int
cmd_node(int argc, char **argv)
{
    static const struct {
        const char *name;
        const char *prog;
        int flags;
    } subs[] = {
        {"status", "drover node status", 0},
        {"drain", "drover node drain", NODE_OPT_FLAGS | NODE_OPT_NODE},
        {"eligibility", "drover node eligibility",
         NODE_OPT_FLAGS | NODE_OPT_NODE | NODE_OPT_ONE_OF},
    };
    struct cli_client *c = NULL;
    struct node_opts o;
    struct dv_buf errs;
    struct dv_err err;
    int k = -1, status;

    if (argc < 2) {
        return node_usage(stderr);
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        node_usage(stdout);
        return 0;
    }
    for (int i = 0; i < (int)(sizeof(subs) / sizeof(subs[0])); i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            k = i;
        }
    }
    if (k < 0) {
        fprintf(stderr, "drover node: unknown command \"%s\"\n", argv[1]);
        return node_usage(stderr);
    }
    dv_buf_init(&errs);
    if (node_opts_parse(subs[k].prog, argc - 2, argv + 2, subs[k].flags, &o,
                        &errs) < 0) {
        fputs(dv_buf_str(&errs), stderr);
        dv_buf_cleanup(&errs);
        return node_usage(stderr);
    }
    dv_buf_cleanup(&errs);
    dv_err_clear(&err);
    c = cli_client_new(subs[k].prog, &err);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", subs[k].prog, err.msg);
        return 1;
    }
    if (k == 0) {
        status = node_status(c, &o);
    } else {
        status = node_change(c, &o, k == 1);
    }
    cli_client_free(c);
    return status;
}
