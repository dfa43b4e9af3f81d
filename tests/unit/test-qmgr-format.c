/* Unit tests of qmgr/format.c: PBS texts, parameters, ids and specs. */
#include <stdlib.h>

#include "lib/mem.h"
#include "qmgr/qmgr.h"
#include "tests/unit/unit.h"

static void
test_exec_vnode(void)
{
    struct vnode_part parts[] = {
        {"node1", 2, 1073741824LL, 0},
        {"node2", 1, 0, 0},
        {"node3", 4, 1000, 2},
    };
    struct dv_buf b;

    dv_buf_init(&b);
    fmt_exec_vnode(parts, 1, &b);
    CHECK_STR(dv_buf_str(&b), "(node1:ncpus=2:mem=1048576kb)");
    dv_buf_reset(&b);
    fmt_exec_vnode(parts, 3, &b);
    CHECK_STR(dv_buf_str(&b), "(node1:ncpus=2:mem=1048576kb)+(node2:ncpus=1)"
                              "+(node3:ncpus=4:mem=1kb:ngpus=2)");
    dv_buf_reset(&b);
    fmt_exec_vnode(parts, 0, &b);
    CHECK_STR(dv_buf_str(&b), "");
    dv_buf_cleanup(&b);
}

static void
test_end_comment(void)
{
    char *s;

    s = fmt_end_comment("Job run at Mon Jan 04 at 10:00 on (node1:ncpus=2)", 0,
                        "finished");
    CHECK_STR(s, "Job run at Mon Jan 04 at 10:00 on (node1:ncpus=2) and "
                 "finished");
    free(s);
    s = fmt_end_comment(NULL, 0, "terminated");
    CHECK_STR(s, "Job terminated");
    free(s);
    s = fmt_end_comment("Not Running: no node has room", 1700000000, "failed");
    CHECK(s != NULL && strncmp(s, "Job run at ", 11) == 0);
    CHECK(s != NULL && strstr(s, " and failed") != NULL);
    free(s);

    CHECK_STR(fmt_end_how("complete", NULL, 0), "finished");
    CHECK_STR(fmt_end_how("failed", "exit 1", 0), "failed");
    CHECK_STR(fmt_end_how("failed", "exceeded resource walltime", 0),
              "exceeded resource walltime");
    CHECK_STR(fmt_end_how("failed", NULL, 1), "terminated");
    CHECK_STR(fmt_end_how("complete", NULL, 1), "terminated");
}

static void
test_hold_types(void)
{
    unsigned m = 0;
    char buf[4];

    CHECK_INT(hold_types_parse("u", &m), 0);
    CHECK_INT(m, 1);
    CHECK_INT(hold_types_parse("sou", &m), 0);
    CHECK_INT(m, 7);
    hold_types_format(m, buf);
    CHECK_STR(buf, "uos");
    hold_types_format(4, buf);
    CHECK_STR(buf, "s");
    hold_types_format(0, buf);
    CHECK_STR(buf, "");
    CHECK_INT(hold_types_parse("", &m), -1);
    CHECK_INT(hold_types_parse("x", &m), -1);
    CHECK_INT(hold_types_parse("uuuu", &m), -1);
    CHECK_INT(hold_types_parse(NULL, &m), -1);
}

static void
test_state_list(void)
{
    unsigned m = 0;
    char buf[80];

    CHECK_INT(state_list_parse("queued,held", &m), 0);
    CHECK_INT(m, (1u << DV_JOB_QUEUED) | (1u << DV_JOB_HELD));
    state_list_array(m, buf, sizeof(buf));
    CHECK_STR(buf, "{queued,held}");
    CHECK_INT(state_list_parse("R,f", &m), 0);
    CHECK_INT(m, (1u << DV_JOB_RUNNING) | (1u << DV_JOB_FINISHED));
    state_list_array(0x1f, buf, sizeof(buf));
    CHECK_STR(buf, "{queued,held,running,exiting,finished}");
    CHECK_INT(state_list_parse("", &m), -1);
    CHECK_INT(state_list_parse("queued,", &m), -1);
    CHECK_INT(state_list_parse(",queued", &m), -1);
    CHECK_INT(state_list_parse("bogus", &m), -1);
    CHECK_INT(state_list_parse("X", &m), -1);
    /* W: waiting for its execution time */
    CHECK_INT(state_list_parse("W,waiting", &m), 0);
    CHECK_INT(m, 1u << DV_JOB_WAITING);
    state_list_array(m, buf, sizeof(buf));
    CHECK_STR(buf, "{waiting}");
}

static void
test_wait(void)
{
    double d = -1;

    CHECK_INT(parse_wait("30s", &d), 0);
    CHECK(d == 30.0);
    CHECK_INT(parse_wait("5m", &d), 0);
    CHECK(d == 300.0);
    CHECK_INT(parse_wait("1h", &d), 0);
    CHECK(d == QMGR_MAX_WAIT);
    CHECK_INT(parse_wait("250ms", &d), 0);
    CHECK(d > 0.24 && d < 0.26);
    CHECK_INT(parse_wait("abc", &d), -1);
    CHECK_INT(parse_wait("-1s", &d), -1);
    CHECK_INT(parse_wait(NULL, &d), -1);
}

static void
test_id_lists(void)
{
    int64_t ids[] = {1, 22, 333};
    int64_t *out = NULL;
    struct dv_buf b;

    dv_buf_init(&b);
    fmt_id_list(ids, 3, &b);
    CHECK_STR(dv_buf_str(&b), "1,22,333");
    dv_buf_reset(&b);
    fmt_id_array(ids, 3, &b);
    CHECK_STR(dv_buf_str(&b), "{1,22,333}");
    dv_buf_reset(&b);
    fmt_id_array(ids, 0, &b);
    CHECK_STR(dv_buf_str(&b), "{}");
    dv_buf_cleanup(&b);

    CHECK_INT(parse_id_list("1,22,333", &out), 3);
    CHECK(out != NULL && out[0] == 1 && out[1] == 22 && out[2] == 333);
    free(out);
    CHECK_INT(parse_id_list("", &out), 0);
    CHECK(out == NULL);
    CHECK_INT(parse_id_list(NULL, &out), 0);
    CHECK_INT(parse_id_list("1,,2", &out), -1);
    CHECK(out == NULL);
    CHECK_INT(parse_id_list("1,x", &out), -1);
    CHECK_INT(parse_id_list("1,", &out), -1);
    CHECK_INT(parse_id_list("-3", &out), -1);
}

static void
test_keys(void)
{
    char a[33], b[33];
    char longkey[200];

    CHECK(idempotency_key_valid("abc-123"));
    CHECK(idempotency_key_valid("with space"));
    CHECK(!idempotency_key_valid(""));
    CHECK(!idempotency_key_valid(NULL));
    CHECK(!idempotency_key_valid("tab\there"));
    memset(longkey, 'k', sizeof(longkey));
    longkey[128] = '\0';
    CHECK(idempotency_key_valid(longkey));
    longkey[128] = 'k';
    longkey[129] = '\0';
    CHECK(!idempotency_key_valid(longkey));

    CHECK_INT(random_key(a), 0);
    CHECK_INT(random_key(b), 0);
    CHECK_INT(strlen(a), 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(strspn(a, "0123456789abcdef") == 32);
}

static void
test_may_change(void)
{
    CHECK(may_change_job("alice", "alice", 0));
    CHECK(!may_change_job("alice", "bob", 0));
    CHECK(may_change_job("alice", "root", 1));
    CHECK(!may_change_job("alice", NULL, 0));
    CHECK(may_change_job("alice", NULL, 1));
}

static void
test_node_names(void)
{
    CHECK(node_name_valid("node1"));
    CHECK(node_name_valid("n1.example.com"));
    CHECK(node_name_valid("rack_2-node-7"));
    CHECK(!node_name_valid(""));
    CHECK(!node_name_valid(NULL));
    CHECK(!node_name_valid("bad name"));
    CHECK(!node_name_valid("a/b"));
}

static void
test_stored_spec(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    json_t *j;

    dv_job_spec_init(&s);
    s.owner = dv_xstrdup("alice");
    s.name = dv_xstrdup("hello");
    s.script = dv_xstrdup("echo hi\n");
    s.workdir = dv_xstrdup("/home/alice/run");
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    j = stored_spec_json(&s, "workq", 12);
    CHECK_STR(json_string_value(json_object_get(j, "queue")), "workq");
    CHECK_STR(json_string_value(json_object_get(j, "stdout")),
              "/home/alice/run/hello.o12");
    CHECK_STR(json_string_value(json_object_get(j, "stderr")),
              "/home/alice/run/hello.e12");
    CHECK(json_object_get(j, "resource_list") != NULL);
    {
        json_t *env = json_object_get(j, "env");
        CHECK_STR(json_string_value(
                      json_array_get(env, json_array_size(env) - 1)),
                  "PBS_O_QUEUE=workq");
    }
    json_decref(j);

    /* Given paths are kept; no workdir means no default. */
    free(s.workdir);
    s.workdir = dv_xstrdup("/scratch/");
    s.stdout_path = dv_xstrdup("/tmp/out");
    j = stored_spec_json(&s, "big", 3);
    CHECK_STR(json_string_value(json_object_get(j, "stdout")), "/tmp/out");
    CHECK_STR(json_string_value(json_object_get(j, "stderr")),
              "/scratch/hello.e3");
    json_decref(j);
    free(s.workdir);
    s.workdir = NULL;
    free(s.stdout_path);
    s.stdout_path = NULL;
    j = stored_spec_json(&s, "big", 3);
    CHECK(json_object_get(j, "stdout") == NULL);
    CHECK(json_object_get(j, "stderr") == NULL);
    json_decref(j);
    dv_job_spec_cleanup(&s);
}

/* A native spec is stored with its queue and derived objects, and none of
 * the PBS defaults (no env, no output paths). */
static void
test_stored_native_spec(void)
{
    static const char text[] =
        "{\"name\": \"web\", \"owner\": \"alice\", \"type\": \"service\", "
        "\"groups\": [{\"name\": \"g\", \"count\": 2, \"tasks\": "
        "[{\"name\": \"t\", \"command\": \"/bin/true\"}]}]}";
    struct dv_job_spec s;
    struct dv_err err;
    json_t *in = json_loads(text, 0, NULL), *j;

    dv_job_spec_init(&s);
    CHECK_INT(dv_job_spec_from_json(in, &s, &err), 0);
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    j = stored_spec_json(&s, "workq", 12);
    CHECK_STR(json_string_value(json_object_get(j, "queue")), "workq");
    CHECK(json_object_get(j, "env") == NULL);
    CHECK(json_object_get(j, "stdout") == NULL);
    CHECK(json_object_get(j, "script") == NULL);
    CHECK_INT(
        json_integer_value(json_object_get(
            json_array_get(
                json_object_get(json_object_get(j, "placement"), "groups"), 0),
            "count")),
        2);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(j, "resource_list"), "nodect")),
              "2");
    json_decref(j);
    json_decref(in);
    dv_job_spec_cleanup(&s);
}

int
main(void)
{
    RUN(test_exec_vnode);
    RUN(test_end_comment);
    RUN(test_hold_types);
    RUN(test_state_list);
    RUN(test_wait);
    RUN(test_id_lists);
    RUN(test_keys);
    RUN(test_may_change);
    RUN(test_node_names);
    RUN(test_stored_spec);
    RUN(test_stored_native_spec);
    return unit_done();
}
