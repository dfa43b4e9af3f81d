/* Unit tests: lib/queue.c (queue attributes, defaults, limits, ACLs). */
#include <stdlib.h>

#include "lib/queue.h"
#include "unit.h"

static const char *
attr_value(const json_t *attrs, const char *name)
{
    size_t i;
    json_t *pair;

    json_array_foreach (attrs, i, pair) {
        if (strcmp(json_string_value(json_array_get(pair, 0)), name) == 0) {
            return json_string_value(json_array_get(pair, 1));
        }
    }
    return NULL;
}

static void
test_names(void)
{
    CHECK(dv_queue_name_valid("workq"));
    CHECK(dv_queue_name_valid("q_1-a"));
    CHECK(dv_queue_name_valid("123456789012345"));
    CHECK(!dv_queue_name_valid("1234567890123456"));
    CHECK(!dv_queue_name_valid(""));
    CHECK(!dv_queue_name_valid(NULL));
    CHECK(!dv_queue_name_valid("_q"));
    CHECK(!dv_queue_name_valid("a b"));
    CHECK(!dv_queue_name_valid("a/b"));
}

static void
test_set_values(void)
{
    struct dv_queue q;
    struct dv_err err;
    json_t *a;
    char *mr;

    dv_queue_init(&q);
    CHECK(!q.enabled && !q.started && q.max_running == -1);
    CHECK_INT(dv_queue_set(&q, "priority", DV_QUEUE_SET, "10", &err), 0);
    CHECK_INT(q.priority, 10);
    CHECK_INT(dv_queue_set(&q, "Priority", DV_QUEUE_ADD, "5", &err), 0);
    CHECK_INT(q.priority, 15);
    CHECK_INT(dv_queue_set(&q, "Priority", DV_QUEUE_SET, "2000", &err), -1);
    CHECK_STR(err.code, "bad_attribute_value");
    CHECK_STR(err.msg, "Illegal attribute or resource value Priority");
    CHECK_INT(q.priority, 15);
    CHECK_INT(dv_queue_set(&q, "enabled", DV_QUEUE_SET, "T", &err), 0);
    CHECK_INT(dv_queue_set(&q, "started", DV_QUEUE_SET, "True", &err), 0);
    CHECK(q.enabled && q.started);
    CHECK_INT(dv_queue_set(&q, "started", DV_QUEUE_SET, "maybe", &err), -1);
    CHECK_INT(dv_queue_set(&q, "queue_type", DV_QUEUE_SET, "e", &err), 0);
    CHECK_INT(dv_queue_set(&q, "queue_type", DV_QUEUE_SET, "Route", &err), -1);
    CHECK_INT(dv_queue_set(&q, "max_running", DV_QUEUE_SET, "4", &err), 0);
    CHECK_INT(dv_queue_set(&q, "max_user_run", DV_QUEUE_SET, "-1", &err), -1);
    CHECK_INT(
        dv_queue_set(&q, "max_run", DV_QUEUE_SET, "[u:PBS_GENERIC=2]", &err),
        0);
    CHECK_INT(q.max_run_user, 2);
    CHECK_INT(q.max_run_all, -1);
    CHECK_INT(dv_queue_set(&q, "max_run", DV_QUEUE_SET,
                           "[o:PBS_ALL=8], [u:PBS_GENERIC=3]", &err),
              0);
    mr = dv_queue_max_run_text(&q);
    CHECK_STR(mr, "[o:PBS_ALL=8],[u:PBS_GENERIC=3]");
    free(mr);
    CHECK_INT(dv_queue_set(&q, "max_run", DV_QUEUE_SET, "[u:alice=3]", &err),
              -1);
    CHECK_INT(dv_queue_set(&q, "max_run", DV_QUEUE_SET, "3", &err), -1);
    /* resources: canonical text */
    CHECK_INT(
        dv_queue_set(&q, "resources_max.walltime", DV_QUEUE_SET, "90", &err),
        0);
    CHECK_INT(dv_queue_set(&q, "resources_max.mem", DV_QUEUE_SET, "2GB", &err),
              0);
    CHECK_INT(dv_queue_set(&q, "resources_max.foo", DV_QUEUE_SET, "1", &err),
              -1);
    CHECK_STR(err.code, "unknown_resource");
    CHECK_STR(err.msg, "Unknown resource resources_max.foo");
    CHECK_INT(dv_queue_set(&q, "resources_max", DV_QUEUE_SET, "1", &err), -1);
    CHECK_INT(dv_queue_set(&q, "resources_min.ncpus", DV_QUEUE_SET, "x", &err),
              -1);
    CHECK_INT(dv_queue_set(&q, "bogus", DV_QUEUE_SET, "1", &err), -1);
    CHECK_STR(err.code, "unknown_attribute");
    CHECK_STR(err.msg, "Undefined attribute bogus");
    CHECK_INT(dv_queue_set(&q, "total_jobs", DV_QUEUE_SET, "1", &err), -1);
    CHECK_STR(err.code, "attribute_read_only");
    /* lists */
    CHECK_INT(
        dv_queue_set(&q, "acl_users", DV_QUEUE_SET, "bob, carol@h1", &err), 0);
    CHECK_INT(dv_queue_set(&q, "acl_users", DV_QUEUE_ADD, "dave", &err), 0);
    CHECK_INT(dv_queue_set(&q, "acl_users", DV_QUEUE_REMOVE, "bob", &err), 0);
    CHECK_INT(q.nacl_users, 2);
    CHECK_INT(dv_queue_set(&q, "acl_users", DV_QUEUE_SET, "a b", &err), -1);
    CHECK_INT(q.nacl_users, 2);

    a = dv_queue_attrs_json(&q);
    CHECK_STR(attr_value(a, "queue_type"), "Execution");
    CHECK_STR(attr_value(a, "Priority"), "15");
    CHECK_STR(attr_value(a, "resources_max.walltime"), "00:01:30");
    CHECK_STR(attr_value(a, "resources_max.mem"), "2gb");
    CHECK_STR(attr_value(a, "acl_users"), "carol@h1,dave");
    CHECK_STR(attr_value(a, "enabled"), "True");
    CHECK_STR(attr_value(a, "max_run"), "[o:PBS_ALL=8],[u:PBS_GENERIC=3]");
    CHECK(attr_value(a, "acl_groups") == NULL);
    json_decref(a);

    CHECK_INT(dv_queue_unset(&q, "max_run", &err), 0);
    CHECK_INT(dv_queue_unset(&q, "resources_max.mem", &err), 0);
    CHECK_INT(q.max_run_all, -1);
    CHECK_INT(q.nrmax, 1);
    CHECK_INT(dv_queue_unset(&q, "nothing", &err), -1);
    dv_queue_cleanup(&q);
}

static void
test_storage_round_trip(void)
{
    struct dv_queue q;
    struct dv_err err;
    json_t *r;
    char *text, *list;

    dv_queue_init(&q);
    CHECK_INT(dv_queue_set(&q, "resources_default.walltime", DV_QUEUE_SET,
                           "1:00:00", &err),
              0);
    r = dv_queue_resources_json(q.rdefault, q.nrdefault);
    text = json_dumps(r, JSON_COMPACT);
    CHECK_STR(text, "{\"walltime\":\"01:00:00\"}");
    CHECK_INT(dv_queue_resources_parse("{\"mem\":\"1gb\"}", &q.rdefault,
                                       &q.nrdefault),
              0);
    CHECK_INT(q.nrdefault, 1);
    CHECK_STR(q.rdefault[0].key, "mem");
    free(text);
    json_decref(r);

    CHECK_INT(dv_queue_set(&q, "acl_groups", DV_QUEUE_SET, "staff,a\"b", &err),
              -1);
    CHECK_INT(dv_queue_set(&q, "acl_groups", DV_QUEUE_SET, "staff,wheel", &err),
              0);
    list = dv_queue_list_text(q.acl_groups, q.nacl_groups);
    CHECK_STR(list, "{\"staff\",\"wheel\"}");
    CHECK_INT(dv_queue_list_parse(list, &q.acl_groups, &q.nacl_groups), 0);
    CHECK_INT(q.nacl_groups, 2);
    CHECK_STR(q.acl_groups[1], "wheel");
    CHECK_INT(dv_queue_list_parse("{a,\"b c\"}", &q.acl_groups, &q.nacl_groups),
              0);
    CHECK_STR(q.acl_groups[1], "b c");
    CHECK_INT(dv_queue_list_parse("{}", &q.acl_groups, &q.nacl_groups), 0);
    CHECK_INT(q.nacl_groups, 0);
    free(list);
    dv_queue_cleanup(&q);
}

static void
test_submission_rules(void)
{
    struct dv_queue q;
    struct dv_job_spec s;
    struct dv_err err;
    int changed = 0;

    dv_queue_init(&q);
    dv_queue_set(&q, "resources_default.walltime", DV_QUEUE_SET, "10:00", &err);
    dv_queue_set(&q, "resources_default.ncpus", DV_QUEUE_SET, "2", &err);
    dv_queue_set(&q, "resources_max.walltime", DV_QUEUE_SET, "1:00:00", &err);
    dv_queue_set(&q, "resources_max.ncpus", DV_QUEUE_SET, "4", &err);
    dv_queue_set(&q, "resources_min.ncpus", DV_QUEUE_SET, "2", &err);

    /* a job with nothing requested gets both defaults */
    dv_job_spec_init(&s);
    s.owner = strdup("alice");
    s.script = strdup("true\n");
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    CHECK_INT(s.req.walltime, 0);
    CHECK_INT(dv_queue_apply_defaults(&q, &s, &changed, &err), 0);
    CHECK(changed);
    CHECK_INT(s.req.walltime, 600);
    CHECK_INT(s.req.ncpus, 2);
    CHECK_INT(dv_queue_check_limits(&q, &s.req, &err), 0);
    dv_job_spec_cleanup(&s);

    /* select: only walltime is defaulted; over and under the limits */
    dv_job_spec_init(&s);
    s.owner = strdup("alice");
    s.script = strdup("true\n");
    dv_job_spec_set_resource(&s, "select", "2:ncpus=3");
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    CHECK_INT(dv_queue_apply_defaults(&q, &s, &changed, &err), 0);
    CHECK_INT(s.req.walltime, 600);
    CHECK_INT(s.req.ncpus, 6);
    CHECK_INT(dv_queue_check_limits(&q, &s.req, &err), -1);
    CHECK_STR(err.code, "over_limits");
    CHECK_STR(err.msg, "Job violates queue and/or server resource limits");
    s.req.ncpus = 1;
    CHECK_INT(dv_queue_check_limits(&q, &s.req, &err), -1); /* under min */
    s.req.ncpus = 4;
    s.req.walltime = 3601;
    CHECK_INT(dv_queue_check_limits(&q, &s.req, &err), -1);
    s.req.walltime = 3600;
    CHECK_INT(dv_queue_check_limits(&q, &s.req, &err), 0);
    dv_job_spec_cleanup(&s);

    /* ACLs */
    CHECK(dv_queue_acl_allows(&q, "alice", NULL));
    dv_queue_set(&q, "acl_user_enable", DV_QUEUE_SET, "True", &err);
    CHECK(!dv_queue_acl_allows(&q, "alice", NULL));
    dv_queue_set(&q, "acl_users", DV_QUEUE_SET, "alice@login1,bob", &err);
    CHECK(dv_queue_acl_allows(&q, "alice", NULL));
    CHECK(dv_queue_acl_allows(&q, "bob", "users"));
    CHECK(!dv_queue_acl_allows(&q, "ali", NULL));
    dv_queue_set(&q, "acl_group_enable", DV_QUEUE_SET, "1", &err);
    dv_queue_set(&q, "acl_groups", DV_QUEUE_SET, "hpc", &err);
    CHECK(!dv_queue_acl_allows(&q, "bob", "users"));
    CHECK(dv_queue_acl_allows(&q, "bob", "hpc"));
    CHECK(!dv_queue_acl_allows(&q, "bob", NULL));
    dv_queue_cleanup(&q);
}

int
main(void)
{
    RUN(test_names);
    RUN(test_set_values);
    RUN(test_storage_round_trip);
    RUN(test_submission_rules);
    return unit_done();
}
