/*
 * drover resource: the operator's custom resources (PBS's `qmgr -c 'create
 * resource NAME type=T,flag=F'`), which jobs may then request with -l.
 *   drover resource create NAME --type TYPE [--flag FLAGS]
 *   drover resource list
 *   drover resource delete NAME
 * TYPE: string long float size boolean string_array; FLAGS: letters of
 * fhimnqr (stored and shown; Drover schedules no consumable custom
 * resources yet: docs/cli.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

static int
resource_usage(FILE *f)
{
    fputs("usage: drover resource create NAME --type "
          "string|long|float|size|boolean|string_array [--flag FLAGS]\n"
          "       drover resource list\n"
          "       drover resource delete NAME\n",
          f);
    return 2;
}

void
resource_format_list(struct dv_buf *out, const json_t *list)
{
    size_t i;
    json_t *r;

    dv_buf_puts(out, "Name             Type         Flag\n"
                     "---------------- ------------ ----\n");
    json_array_foreach (list, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *type = json_string_value(json_object_get(r, "type"));
        const char *flag = json_string_value(json_object_get(r, "flag"));

        if (dv_str_empty(flag)) {
            dv_buf_printf(out, "%-16s %s\n", name != NULL ? name : "",
                          type != NULL ? type : "");
        } else {
            dv_buf_printf(out, "%-16s %-12s %s\n", name != NULL ? name : "",
                          type != NULL ? type : "", flag);
        }
    }
}

/* Reads "--type T", "--type=T", "--flag F", "--flag=F". Returns 0 or -1. */
static int
create_opts(int argc, char **argv, const char **type, const char **flag)
{
    for (int i = 0; i < argc; i++) {
        const char **dst = NULL;
        const char *v = NULL;

        if (strcmp(argv[i], "--type") == 0 || strcmp(argv[i], "-type") == 0) {
            dst = type;
        } else if (strcmp(argv[i], "--flag") == 0 ||
                   strcmp(argv[i], "-flag") == 0) {
            dst = flag;
        } else if (strncmp(argv[i], "--type=", 7) == 0) {
            *type = argv[i] + 7;
            continue;
        } else if (strncmp(argv[i], "--flag=", 7) == 0) {
            *flag = argv[i] + 7;
            continue;
        } else {
            fprintf(stderr, "drover resource create: unknown option \"%s\"\n",
                    argv[i]);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "drover resource create: %s needs a value\n",
                    argv[i]);
            return -1;
        }
        v = argv[++i];
        *dst = v;
    }
    if (*type == NULL) {
        fprintf(stderr, "drover resource create: --type is required\n");
        return -1;
    }
    return 0;
}

int
cmd_resource(int argc, char **argv)
{
    struct cli_client *c = NULL;
    struct cli_reply r;
    struct dv_buf path, out;
    struct dv_err err;
    json_t *body = NULL;
    const char *type = NULL, *flag = NULL;
    int status;

    if (argc < 2) {
        return resource_usage(stderr);
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        resource_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "list") == 0) {
        if (argc != 2) {
            return resource_usage(stderr);
        }
    } else if (strcmp(argv[1], "create") == 0) {
        if (argc < 3 || argv[2][0] == '-' ||
            create_opts(argc - 3, argv + 3, &type, &flag) < 0) {
            return resource_usage(stderr);
        }
        body = json_pack("{s:s, s:s}", "name", argv[2], "type", type);
        if (flag != NULL) {
            json_object_set_new(body, "flag", json_string(flag));
        }
    } else if (strcmp(argv[1], "delete") == 0) {
        if (argc != 3) {
            return resource_usage(stderr);
        }
    } else {
        fprintf(stderr, "drover resource: unknown command \"%s\"\n", argv[1]);
        return resource_usage(stderr);
    }
    dv_err_clear(&err);
    c = cli_client_new("drover resource", &err);
    if (c == NULL) {
        fprintf(stderr, "drover resource: %s\n", err.msg);
        json_decref(body);
        return 1;
    }
    memset(&r, 0, sizeof(r));
    dv_buf_init(&path);
    dv_buf_init(&out);
    if (strcmp(argv[1], "list") == 0) {
        status = cli_client_call_ok(c, "GET", "/v1/resources", NULL, &r);
        if (status == 0) {
            resource_format_list(&out, json_object_get(r.body, "resources"));
        }
    } else if (strcmp(argv[1], "create") == 0) {
        status = cli_client_call_ok(c, "POST", "/v1/resources", body, &r);
    } else {
        dv_buf_puts(&path, "/v1/resources/");
        cli_urlencode(&path, argv[2]);
        status = cli_client_call_ok(c, "DELETE", dv_buf_str(&path), NULL, &r);
    }
    fputs(dv_buf_str(&out), stdout);
    cli_reply_cleanup(&r);
    dv_buf_cleanup(&path);
    dv_buf_cleanup(&out);
    json_decref(body);
    cli_client_free(c);
    return status;
}
