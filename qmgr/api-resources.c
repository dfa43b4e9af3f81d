/*
 * The custom resources API (docs/api.md "Resources"): the operator declares
 * site resources (`drover resource create software --type string`), which
 * jobs may then request (-l software=X). Listing is open to every caller;
 * creating and deleting are root's (the administrator's), like PBS's
 * `qmgr -c 'create resource ...'`.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/resources.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

struct res_ctx {
    struct db_resource_op op;
    char name[80];
    char type[16];
    char flags[16];
};

static void
res_ctx_free(void *arg)
{
    struct res_ctx *c = arg;

    PQclear(c->op.list);
    free(c);
}

static json_t *
resource_json(const PGresult *res, int row)
{
    return json_pack(
        "{s:s, s:s, s:s, s:I}", "name", dv_db_get(res, row, "name"), "type",
        dv_db_get(res, row, "type"), "flag", dv_db_get(res, row, "flags"),
        "create_time", (json_int_t)dv_db_get_i64(res, row, "create_time", 0));
}

static int
res_run(struct qreq *qr, struct dv_db *db)
{
    struct res_ctx *c = qr->ctx;

    c->op.now = dv_now();
    if (db_resource_op(db, &c->op, &qr->err) < 0) {
        if (c->op.busy_job > 0) {
            char jid[300];
            dv_job_id_format((long long)c->op.busy_job, server_name(qr->q), jid,
                             sizeof(jid));
            dv_err_set(&qr->err, DV_ECONFLICT, "resource_busy",
                       "Resource busy on job %s", jid);
        }
        return -1;
    }
    switch (c->op.kind) {
    case RESOURCE_OP_LIST: {
        json_t *list = json_array();
        for (int i = 0; i < PQntuples(c->op.list); i++) {
            json_array_append_new(list, resource_json(c->op.list, i));
        }
        qreq_set_json(qr, 200, json_pack("{s:o}", "resources", list));
        break;
    }
    case RESOURCE_OP_CREATE:
        log_notice("resource %s created (type %s%s%s) by %s", c->name, c->type,
                   c->flags[0] != '\0' ? ", flag " : "", c->flags,
                   qr->user != NULL ? qr->user : "?");
        qreq_set_json(qr, 201,
                      json_pack("{s:s, s:s, s:s}", "name", c->name, "type",
                                c->type, "flag", c->flags));
        break;
    case RESOURCE_OP_DELETE:
        log_notice("resource %s deleted by %s", c->name,
                   qr->user != NULL ? qr->user : "?");
        qreq_set_json(qr, 200, json_pack("{s:s}", "name", c->name));
        break;
    }
    return 0;
}

static struct res_ctx *
res_ctx_new(struct qreq *qr, enum resource_op_kind kind)
{
    struct res_ctx *c = dv_xcalloc(1, sizeof(*c));

    c->op.kind = kind;
    c->op.name = c->name;
    c->op.type = c->type;
    c->op.flags = c->flags;
    qr->ctx = c;
    qr->ctx_free = res_ctx_free;
    qr->run = res_run;
    return c;
}

void
api_resources_list(struct qreq *qr)
{
    res_ctx_new(qr, RESOURCE_OP_LIST);
    qreq_submit(qr);
}

/* Checks a declaration; 0, or -1 with qr answered. */
static int
check_declaration(struct qreq *qr, const char *name, const char *type,
                  const char *flags)
{
    if (!qr->root) {
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        return -1;
    }
    if (!resource_name_valid(name)) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid resource name \"%.64s\": a letter, then up to 63 "
                  "of A-Z a-z 0-9 _ . -",
                  name);
        return -1;
    }
    if (dv_resource_is_builtin(name)) {
        qreq_fail(qr, DV_ECONFLICT, "resource_exists",
                  "Duplicate entry in list : %s is a built-in resource", name);
        return -1;
    }
    if (!dv_resource_type_valid(type)) {
        qreq_fail(qr, DV_EINVAL, "bad_attribute_value",
                  "Illegal attribute or resource value type: %.32s (string, "
                  "long, float, size, boolean or string_array)",
                  type);
        return -1;
    }
    if (strlen(flags) >= 8 || !dv_resource_flags_valid(flags)) {
        qreq_fail(qr, DV_EINVAL, "bad_attribute_value",
                  "Illegal attribute or resource value flag: %.32s (letters "
                  "of fhimnqr)",
                  flags);
        return -1;
    }
    return 0;
}

void
api_resources_create(struct qreq *qr)
{
    json_t *j = qreq_body_json(qr, 0, NULL);
    const char *name = NULL, *type = NULL, *flags = "";
    json_error_t jerr;
    struct res_ctx *c;

    if (j == NULL) {
        return;
    }
    if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s, s:s, s?:s}", "name", &name,
                       "type", &type, "flag", &flags) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "a resource is {\"name\": ..., \"type\": ..., \"flag\": "
                  "...}: %s",
                  jerr.text);
        json_decref(j);
        return;
    }
    /* name, type and flags are borrowed from j until it is freed. */
    if (check_declaration(qr, name, type, flags) < 0) {
        json_decref(j);
        return;
    }
    c = res_ctx_new(qr, RESOURCE_OP_CREATE);
    dv_strlcpy(c->name, name, sizeof(c->name));
    dv_strlcpy(c->type, type, sizeof(c->type));
    dv_strlcpy(c->flags, flags, sizeof(c->flags));
    json_decref(j);
    qreq_submit(qr);
}

void
api_resources_delete(struct qreq *qr, const char *name)
{
    struct res_ctx *c;

    if (!qr->root) {
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        return;
    }
    c = res_ctx_new(qr, RESOURCE_OP_DELETE);
    dv_strlcpy(c->name, name, sizeof(c->name));
    qreq_submit(qr);
}
