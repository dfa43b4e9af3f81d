/* Unit tests of qmgr/decode.c: strict request bodies. */
#include <stdlib.h>
#include <string.h>

#include "qmgr/qmgr.h"
#include "tests/unit/unit.h"

static json_t *
parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    CHECK(j != NULL);
    return j;
}

static int
updates(const char *text, struct alloc_update **u, int *n, struct dv_err *err)
{
    json_t *j = parse(text);
    int rc;

    dv_err_clear(err);
    rc = decode_alloc_updates(j, u, n, err);
    json_decref(j);
    return rc;
}

static void
test_updates_ok(void)
{
    struct alloc_update *u = NULL;
    struct dv_err err;
    int n = 0;

    CHECK_INT(updates("{\"updates\": [{\"id\": 77, \"client_status\": "
                      "\"running\", \"time\": 1700000004}, {\"id\": 78, "
                      "\"client_status\": \"failed\", \"exit_status\": -29, "
                      "\"time\": 1700000610.5, \"message\": \"exceeded "
                      "resource walltime\", \"resources_used\": {\"cput\": "
                      "598, \"walltime\": 600, \"mem\": 10485760}}]}",
                      &u, &n, &err),
              0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(u[0].id, 77);
        CHECK_STR(u[0].status, "running");
        CHECK(u[0].time == 1700000004.0);
        CHECK_INT(u[0].has_exit, 0);
        CHECK_INT(u[0].has_used, 0);
        CHECK_INT(u[1].id, 78);
        CHECK_STR(u[1].status, "failed");
        CHECK_INT(u[1].has_exit, 1);
        CHECK_INT(u[1].exit_status, -29);
        CHECK_STR(u[1].message, "exceeded resource walltime");
        CHECK_INT(u[1].has_used, 1);
        CHECK_INT(u[1].used_cput, 598);
        CHECK_INT(u[1].used_walltime, 600);
        CHECK_INT(u[1].used_mem, 10485760);
    }
    decode_updates_free(u, n);

    CHECK_INT(updates("{\"updates\": []}", &u, &n, &err), 0);
    CHECK_INT(n, 0);
    decode_updates_free(u, n);
    CHECK_INT(updates("{\"updates\": [{\"id\": 1, \"client_status\": "
                      "\"lost\", \"exit_status\": null, \"message\": null}]}",
                      &u, &n, &err),
              0);
    CHECK_INT(n, 1);
    CHECK_INT(u != NULL && u[0].has_exit, 0);
    decode_updates_free(u, n);
}

static void
test_updates_bad(void)
{
    /* The body itself is wrong: the whole request is refused. */
    static const char *const bad_body[] = {
        "[]",
        "{}",
        "{\"updates\": {}}",
        "{\"updates\": [], \"extra\": 1}",
    };
    /* One update is wrong: it alone is marked, with its error, so that
     * it cannot block the others of its batch. */
    static const char *const bad[] = {
        "{\"updates\": [1]}",
        "{\"updates\": [{\"client_status\": \"running\"}]}",
        "{\"updates\": [{\"id\": 1}]}",
        "{\"updates\": [{\"id\": 0, \"client_status\": \"running\"}]}",
        "{\"updates\": [{\"id\": \"1\", \"client_status\": \"running\"}]}",
        "{\"updates\": [{\"id\": 1, \"client_status\": \"pending\"}]}",
        "{\"updates\": [{\"id\": 1, \"client_status\": \"running\", "
        "\"time\": \"now\"}]}",
        "{\"updates\": [{\"id\": 1, \"client_status\": \"running\", "
        "\"bogus\": 1}]}",
        "{\"updates\": [{\"id\": 1, \"client_status\": \"failed\", "
        "\"message\": \"m\", \"resources_used\": {\"gpu\": 1}}]}",
        "{\"updates\": [{\"id\": 1, \"client_status\": \"failed\", "
        "\"resources_used\": {\"cput\": -1}}]}",
    };
    struct alloc_update *u = NULL;
    struct dv_err err;
    int n = 0;

    for (size_t i = 0; i < sizeof(bad_body) / sizeof(bad_body[0]); i++) {
        CHECK_INT(updates(bad_body[i], &u, &n, &err), -1);
        CHECK(u == NULL);
        CHECK_STR(err.code, "invalid_request");
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(updates(bad[i], &u, &n, &err), 0);
        CHECK_INT(n, 1);
        CHECK(u != NULL && u[0].bad);
        CHECK(u != NULL && u[0].error.code != NULL &&
              strcmp(u[0].error.code, "invalid_request") == 0);
        decode_updates_free(u, n);
    }
    /* A good update next to a bad one stays good. */
    CHECK_INT(updates("{\"updates\": [{\"id\": 1, \"client_status\": "
                      "\"pending\"}, {\"id\": 2, \"client_status\": "
                      "\"running\"}]}",
                      &u, &n, &err),
              0);
    CHECK_INT(n, 2);
    CHECK(u != NULL && u[0].bad && !u[1].bad && u[1].id == 2);
    decode_updates_free(u, n);
}

static void
test_updates_too_many(void)
{
    json_t *j = json_object(), *a = json_array();
    struct alloc_update *u = NULL;
    struct dv_err err;
    int n = 0;

    for (int i = 0; i <= QMGR_MAX_UPDATES; i++) {
        json_array_append_new(a, json_pack("{s:i, s:s}", "id", i + 1,
                                           "client_status", "running"));
    }
    json_object_set_new(j, "updates", a);
    CHECK_INT(decode_alloc_updates(j, &u, &n, &err), -1);
    CHECK_STR(err.code, "too_large");
    CHECK_INT(err.kind, DV_ETOOLARGE);
    json_decref(j);
}

static int
reg(const char *text, struct db_node_reg *r, struct node_reg_json *t,
    struct dv_err *err, json_t **keep)
{
    *keep = parse(text);
    dv_err_clear(err);
    memset(r, 0, sizeof(*r));
    return decode_node_register(*keep, r, t, err);
}

static void
test_register(void)
{
    struct db_node_reg r;
    struct dv_err err;
    struct node_reg_json t;
    json_t *j;

    CHECK_INT(reg("{\"name\": \"node1\", \"datacenter\": \"dc2\", \"pool\": "
                  "\"gpu\", \"address\": \"10.0.0.5\", \"resources\": "
                  "{\"cores\": 8, \"pus\": 16, \"memory\": 33554432000, "
                  "\"numa_nodes\": 2, \"packages\": 1, \"gpus\": 2}, "
                  "\"topology\": {\"numa\": []}, \"attributes\": {\"arch\": "
                  "\"x86_64\"}}",
                  &r, &t, &err, &j),
              0);
    CHECK_STR(r.name, "node1");
    CHECK_STR(r.datacenter, "dc2");
    CHECK_STR(r.pool, "gpu");
    CHECK_STR(r.address, "10.0.0.5");
    CHECK_INT(r.cores, 8);
    CHECK_INT(r.memory, 33554432000LL);
    CHECK_INT(r.gpus, 2);
    CHECK_STR(t.topology, "{\"numa\":[]}");
    CHECK_STR(t.attributes, "{\"arch\":\"x86_64\"}");
    CHECK(t.meta == NULL && r.node_class == NULL);
    node_reg_json_free(&t);
    json_decref(j);

    CHECK_INT(reg("{\"name\": \"n3\", \"node_class\": \"gpu-a\", \"meta\": "
                  "{\"rack\": \"r7\", \"os\": \"rhel\"}, \"resources\": "
                  "{\"cores\": 1, \"memory\": 1}}",
                  &r, &t, &err, &j),
              0);
    CHECK_STR(r.node_class, "gpu-a");
    CHECK_STR(t.meta, "{\"os\":\"rhel\",\"rack\":\"r7\"}");
    node_reg_json_free(&t);
    json_decref(j);

    CHECK_INT(reg("{\"name\": \"n2\", \"resources\": {\"cores\": 1, "
                  "\"memory\": 0}}",
                  &r, &t, &err, &j),
              0);
    CHECK_STR(r.datacenter, "dc1");
    CHECK_STR(r.pool, "default");
    CHECK(r.address == NULL);
    CHECK(t.topology == NULL && t.attributes == NULL && t.meta == NULL);
    json_decref(j);
}

static void
test_register_bad(void)
{
    static const char *const bad[] = {
        "[]",
        "{\"resources\": {\"cores\": 1, \"memory\": 1}}",
        "{\"name\": \"bad name\", \"resources\": {\"cores\": 1, \"memory\": "
        "1}}",
        "{\"name\": \"n\"}",
        "{\"name\": \"n\", \"resources\": {\"cores\": 1}}",
        "{\"name\": \"n\", \"resources\": {\"cores\": -1, \"memory\": 1}}",
        "{\"name\": \"n\", \"resources\": {\"cores\": 1, \"memory\": 1, "
        "\"disks\": 3}}",
        "{\"name\": \"n\", \"resources\": {\"cores\": 1, \"memory\": 1}, "
        "\"topology\": []}",
        "{\"name\": \"n\", \"resources\": {\"cores\": 1, \"memory\": 1}, "
        "\"colour\": \"red\"}",
        "{\"name\": 5, \"resources\": {\"cores\": 1, \"memory\": 1}}",
        "{\"name\": \"n\", \"pool\": \"\", \"resources\": {\"cores\": 1, "
        "\"memory\": 1}}",
        "{\"name\": \"n\", \"meta\": {\"rack\": 7}, \"resources\": "
        "{\"cores\": 1, \"memory\": 1}}",
        "{\"name\": \"n\", \"meta\": [\"rack\"], \"resources\": "
        "{\"cores\": 1, \"memory\": 1}}",
        "{\"name\": \"n\", \"meta\": {\"\": \"x\"}, \"resources\": "
        "{\"cores\": 1, \"memory\": 1}}",
        "{\"name\": \"n\", \"node_class\": 3, \"resources\": "
        "{\"cores\": 1, \"memory\": 1}}",
    };
    struct db_node_reg r;
    struct dv_err err;
    struct node_reg_json t;
    json_t *j;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(reg(bad[i], &r, &t, &err, &j), -1);
        CHECK_STR(err.code, "invalid_request");
        CHECK(t.topology == NULL && t.attributes == NULL && t.meta == NULL);
        json_decref(j);
    }
    /* The topology is freed when a later field is bad. */
    CHECK_INT(reg("{\"topology\": {\"a\": 1}, \"name\": \"n\", \"x\": 1}", &r,
                  &t, &err, &j),
              -1);
    CHECK(t.topology == NULL);
    json_decref(j);
}

static void
test_hold_body(void)
{
    struct dv_err err;
    unsigned m = 0;
    json_t *j;

    CHECK_INT(decode_hold_body(NULL, &m, &err), 0);
    CHECK_INT(m, 1);
    j = parse("{\"hold_types\": \"os\"}");
    CHECK_INT(decode_hold_body(j, &m, &err), 0);
    CHECK_INT(m, 6);
    json_decref(j);
    j = parse("{\"hold_types\": \"x\"}");
    CHECK_INT(decode_hold_body(j, &m, &err), -1);
    CHECK_STR(err.code, "bad_attribute_value");
    CHECK_STR(err.msg, "Illegal attribute or resource value Hold_Types");
    json_decref(j);
    j = parse("{\"hold\": \"u\"}");
    CHECK_INT(decode_hold_body(j, &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    json_decref(j);
    j = parse("[\"u\"]");
    CHECK_INT(decode_hold_body(j, &m, &err), -1);
    json_decref(j);
}

/* decode_node_flag on text (NULL: no body). */
static int
node_flag(const char *text, const char *key, int *value, int *set_comment,
          const char **comment, struct dv_err *err, json_t **keep)
{
    json_t *j = text != NULL ? parse(text) : NULL;

    dv_err_clear(err);
    *keep = j;
    return decode_node_flag(j, key, value, set_comment, comment, err);
}

static void
test_node_flag(void)
{
    const char *comment = NULL;
    struct dv_err err;
    int value = -1, set = -1;
    json_t *j = NULL;

    CHECK_INT(node_flag("{\"drain\": true, \"comment\": \"disk swap\"}",
                        "drain", &value, &set, &comment, &err, &j),
              0);
    CHECK_INT(value, 1);
    CHECK_INT(set, 1);
    CHECK_STR(comment, "disk swap");
    json_decref(j);
    CHECK_INT(node_flag("{\"eligible\": false}", "eligible", &value, &set,
                        &comment, &err, &j),
              0);
    CHECK_INT(value, 0);
    CHECK_INT(set, 0);
    CHECK(comment == NULL);
    json_decref(j);
    /* null and "" clear the comment */
    CHECK_INT(node_flag("{\"comment\": null, \"drain\": false}", "drain",
                        &value, &set, &comment, &err, &j),
              0);
    CHECK_INT(set, 1);
    CHECK(comment == NULL);
    json_decref(j);
    CHECK_INT(node_flag("{\"drain\": false, \"comment\": \"\"}", "drain",
                        &value, &set, &comment, &err, &j),
              0);
    CHECK_INT(set, 1);
    CHECK(comment == NULL);
    json_decref(j);
}

static void
test_node_flag_bad(void)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {NULL, "a body {\"drain\": true|false} is required"},
        {"[true]", "the body must be a JSON object"},
        {"{}", "field \"drain\" is required (true or false)"},
        {"{\"comment\": \"x\"}", "field \"drain\" is required (true or false)"},
        {"{\"drain\": 1}", "field \"drain\" must be true or false"},
        {"{\"drain\": \"true\"}", "field \"drain\" must be true or false"},
        {"{\"drain\": null}", "field \"drain\" must be true or false"},
        {"{\"eligible\": true}", "unknown field \"eligible\""},
        {"{\"drain\": true, \"comment\": 5}",
         "field \"comment\" must be a string"},
        {"{\"drain\": true, \"comment\": \"a\\nb\"}",
         "field \"comment\" must not contain control characters"},
        {"{\"drain\": true, \"comment\": \"a\\u0000b\"}",
         "field \"comment\" must be a string of at most 1024 bytes"},
    };
    const char *comment;
    struct dv_err err;
    int value, set;
    json_t *j;
    char *big;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        j = NULL;
        if (cases[i].text != NULL) {
            j = json_loads(cases[i].text, JSON_ALLOW_NUL, NULL);
            CHECK(j != NULL);
        }
        dv_err_clear(&err);
        CHECK_INT(decode_node_flag(j, "drain", &value, &set, &comment, &err),
                  -1);
        CHECK_STR(err.code, "invalid_request");
        CHECK_STR(err.msg, cases[i].msg);
        json_decref(j);
    }
    big = calloc(QMGR_NODE_COMMENT_MAX + 2, 1);
    memset(big, 'x', QMGR_NODE_COMMENT_MAX + 1);
    j = json_pack("{s:b, s:s}", "drain", 1, "comment", big);
    CHECK_INT(decode_node_flag(j, "drain", &value, &set, &comment, &err), -1);
    CHECK_STR(err.msg, "field \"comment\" must be a string of at most 1024 "
                       "bytes");
    json_decref(j);
    big[QMGR_NODE_COMMENT_MAX] = '\0';
    j = json_pack("{s:b, s:s}", "drain", 1, "comment", big);
    CHECK_INT(decode_node_flag(j, "drain", &value, &set, &comment, &err), 0);
    json_decref(j);
    free(big);
}

int
main(void)
{
    RUN(test_updates_ok);
    RUN(test_updates_bad);
    RUN(test_updates_too_many);
    RUN(test_register);
    RUN(test_register_bad);
    RUN(test_hold_body);
    RUN(test_node_flag);
    RUN(test_node_flag_bad);
    return unit_done();
}
