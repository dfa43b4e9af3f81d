/* Unit tests: lib/jobspec.c (the native job format, its validation errors,
 * defaults by type, totals, encoding) and the derived placement object of
 * native and PBS specs, compared with golden JSON. */
#include <stdlib.h>

#include "lib/job.h"
#include "lib/jobspec.h"
#include "unit.h"

#define TASK "{\"name\": \"t\", \"command\": \"/bin/true\"}"
#define GROUP(extra) "{\"name\": \"g\", " extra "\"tasks\": [" TASK "]}"
#define JOB(groups) "{\"name\": \"j\", \"groups\": [" groups "]}"

/* Decodes and normalises text as alice's job. Returns 0 or -1 (err set);
 * -2 when text is not JSON. */
static int
load(const char *text, struct dv_job_spec *s, struct dv_err *err)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    int rc;

    dv_err_clear(err);
    if (j == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", jerr.text, text);
        return -2;
    }
    if (json_object_get(j, "owner") == NULL) {
        json_object_set_new(j, "owner", json_string("alice"));
    }
    rc = dv_job_spec_from_json(j, s, err);
    json_decref(j);
    if (rc == 0) {
        rc = dv_job_spec_normalize(s, err);
    }
    return rc;
}

/* Checks that text fails with code and exactly msg. */
static void
expect_error(const char *text, const char *code, const char *msg)
{
    struct dv_job_spec s;
    struct dv_err err;

    dv_job_spec_init(&s);
    CHECK_INT(load(text, &s, &err), -1);
    CHECK_STR(err.code, code);
    CHECK_STR(err.msg, msg);
    if (err.code == NULL || strcmp(err.msg, msg) != 0) {
        fprintf(stderr, "    for %s\n", text);
    }
    dv_job_spec_cleanup(&s);
}

/* Checks that text fails with a message starting with prefix. */
static void
expect_prefix(const char *text, const char *prefix)
{
    struct dv_job_spec s;
    struct dv_err err;

    dv_job_spec_init(&s);
    CHECK_INT(load(text, &s, &err), -1);
    CHECK(strncmp(err.msg, prefix, strlen(prefix)) == 0);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "    got \"%s\" for %s\n", err.msg, text);
    }
    dv_job_spec_cleanup(&s);
}

static void
check_json_equal(json_t *got, const char *golden)
{
    json_error_t jerr;
    json_t *want = json_loads(golden, 0, &jerr);

    CHECK(want != NULL);
    CHECK(json_equal(got, want));
    if (want == NULL || !json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        fprintf(stderr, "    got:  %s\n", g);
        if (want == NULL) {
            fprintf(stderr, "    golden does not parse: %s\n", jerr.text);
        }
        free(g);
    }
    json_decref(want);
}

static void
test_minimal_defaults(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    const struct dv_group *g;

    dv_job_spec_init(&s);
    CHECK_INT(load(JOB(GROUP("")), &s, &err), 0);
    CHECK(s.native != NULL);
    CHECK_STR(s.type, "batch");
    CHECK_STR(s.native->node_pool, "default");
    CHECK_INT(s.native->ngroups, 1);
    g = &s.native->groups[0];
    CHECK_INT(g->count, 1);
    CHECK_INT(g->cores, 1);
    CHECK_INT(g->memory, 0);
    CHECK_INT(g->numa, DV_NUMA_PREFER);
    CHECK_INT(g->walltime, 0);
    CHECK_STR(g->tasks[0].user, "alice");
    /* Nomad's batch defaults. */
    CHECK_INT(g->restart.attempts, 3);
    CHECK_INT(g->restart.interval, 86400);
    CHECK_INT(g->restart.delay, 15);
    CHECK_INT(g->restart.mode, DV_RESTART_FAIL);
    CHECK_INT(g->reschedule.attempts, 1);
    CHECK_INT(g->reschedule.interval, 86400);
    CHECK_INT(g->reschedule.delay, 5);
    CHECK_INT(g->reschedule.unlimited, 0);
    CHECK_INT(s.req.ncpus, 1);
    CHECK_INT(s.req.nodect, 1);
    CHECK_INT(s.req.nkinds, 0);
    dv_job_spec_cleanup(&s);
}

static void
test_service_and_system_defaults(void)
{
    struct dv_job_spec s;
    struct dv_err err;

    dv_job_spec_init(&s);
    CHECK_INT(load("{\"name\": \"w\", \"type\": \"service\", \"groups\": "
                   "[" GROUP("\"count\": 3, \"resources\": {\"cores\": 2, "
                             "\"memory\": \"1gb\"},") "]}",
                   &s, &err),
              0);
    CHECK_INT(s.native->groups[0].reschedule.unlimited, 1);
    CHECK_INT(s.native->groups[0].reschedule.delay, 30);
    CHECK_INT(s.native->groups[0].restart.attempts, 2);
    CHECK_INT(s.native->groups[0].restart.interval, 1800);
    CHECK_INT(s.req.ncpus, 6);
    CHECK_INT(s.req.mem, 3LL << 30);
    CHECK_INT(s.req.nodect, 3);
    dv_job_spec_cleanup(&s);

    /* Attempts given alone make a limited policy. */
    dv_job_spec_init(&s);
    CHECK_INT(load("{\"name\": \"w\", \"type\": \"service\", \"groups\": "
                   "[" GROUP("\"reschedule\": {\"attempts\": 4},") "]}",
                   &s, &err),
              0);
    CHECK_INT(s.native->groups[0].reschedule.unlimited, 0);
    CHECK_INT(s.native->groups[0].reschedule.attempts, 4);
    dv_job_spec_cleanup(&s);

    /* System: one instance per node whatever the count; nodect 0. */
    dv_job_spec_init(&s);
    CHECK_INT(load("{\"name\": \"a\", \"type\": \"system\", \"groups\": "
                   "[" GROUP("\"count\": 7, \"resources\": {\"cores\": 2, "
                             "\"gpus\": 1},") "]}",
                   &s, &err),
              0);
    CHECK_INT(s.native->groups[0].count, 1);
    CHECK_INT(s.req.ncpus, 2);
    CHECK_INT(s.req.ngpus, 1);
    CHECK_INT(s.req.nodect, 0);
    dv_job_spec_cleanup(&s);

    /* Count 0 everywhere: accepted (the server finishes it at once). */
    dv_job_spec_init(&s);
    CHECK_INT(load(JOB(GROUP("\"count\": 0,")), &s, &err), 0);
    CHECK_INT(s.req.nodect, 0);
    CHECK_INT(s.req.ncpus, 0);
    dv_job_spec_cleanup(&s);
}

static void
test_errors(void)
{
    static const struct {
        const char *json;
        const char *code;
        const char *msg;
    } cases[] = {
        /* the job */
        {"{\"groups\": [" GROUP("") "]}", "invalid_job", "name: is required"},
        {"{\"name\": \"a b\", \"groups\": [" GROUP("") "]}", "invalid_job",
         "name: must be 1 to 236 characters without blanks, '/', '@' or ':'"},
        {"{\"name\": \"j\", \"type\": \"daemon\", \"groups\": [" GROUP("") "]}",
         "invalid_job",
         "type: must be \"batch\", \"service\" or \"system\" (not "
         "\"daemon\")"},
        {"{\"name\": \"j\", \"groups\": []}", "invalid_job",
         "groups: a native job needs at least one group"},
        {"{\"name\": \"j\", \"groups\": {}}", "invalid_job",
         "groups: must be an array"},
        {"{\"name\": \"j\", \"datacenters\": [\"dc1\"]}", "invalid_job",
         "groups: a native job needs at least one group"},
        {"{\"name\": \"j\", \"script\": \"echo\", \"groups\": [" GROUP("") "]}",
         "invalid_job",
         "script: a job is either PBS-style (\"script\" or \"argv\") or "
         "native (\"groups\"), not both"},
        {"{\"name\": \"j\", \"resources\": {}, \"meta\": {}}", "invalid_job",
         "resources: a job is either PBS-style (\"script\" or \"argv\") or "
         "native (\"groups\"), not both"},
        {"{\"name\": \"j\", \"type\": \"service\", \"script\": \"echo\"}",
         "invalid_job",
         "job type \"service\" needs the native job format (\"groups\", "
         "docs/jobspec.md): PBS-style jobs are batch jobs"},
        {"{\"name\": \"j\", \"datacenters\": [\"a,b\"], \"groups\": "
         "[" GROUP("") "]}",
         "invalid_job",
         "datacenters[0]: must be a datacenter name (no blanks or commas)"},
        {"{\"name\": \"j\", \"datacenters\": \"dc1\", \"groups\": "
         "[" GROUP("") "]}",
         "invalid_job", "datacenters: must be an array"},
        {"{\"name\": \"j\", \"node_pool\": \"a/b\", \"groups\": [" GROUP(
             "") "]}",
         "invalid_job",
         "node_pool: must be 1 to 64 letters, digits, '_', '-' or '.'"},
        {"{\"name\": \"j\", \"meta\": {\"k\": 1}, \"groups\": [" GROUP("") "]}",
         "invalid_job", "meta.k: must be a string"},
        {"{\"name\": \"j\", \"meta\": {\"drover.runtime\": \"1s\"}, "
         "\"groups\": [" GROUP("") "]}",
         "invalid_job",
         "meta.drover.runtime: unknown drover.* key (known: "
         "drover.sim_runtime)"},
        {"{\"name\": \"j\", \"meta\": {\"drover.sim_runtime\": \"soon\"}, "
         "\"groups\": [" GROUP("") "]}",
         "invalid_job",
         "meta.drover.sim_runtime: must be a duration: seconds, \"1h30m\" "
         "(units d h m s) or \"HH:MM:SS\""},
        /* groups */
        {JOB("{\"tasks\": [" TASK "]}"), "invalid_job",
         "groups[0].name: is required"},
        {JOB("{\"name\": \"a b\", \"tasks\": [" TASK "]}"), "invalid_job",
         "groups[0].name: must be 1 to 64 letters, digits, '_', '-' or '.'"},
        {JOB(GROUP("") ", " GROUP("")), "invalid_job",
         "groups[1].name: group \"g\" is given twice"},
        {JOB("{\"name\": \"g\"}"), "invalid_job",
         "groups[0].tasks: a group needs at least one task"},
        {JOB(GROUP("\"size\": 1,")), "invalid_job",
         "groups[0].size: unknown field"},
        {JOB(GROUP("\"count\": -1,")), "invalid_job",
         "groups[0].count: must be an integer >= 0"},
        {JOB(GROUP("\"count\": \"2\",")), "invalid_job",
         "groups[0].count: must be an integer >= 0"},
        {JOB(GROUP("\"count\": 100001,")), "too_large",
         "groups[0].count: must be at most 100000"},
        {JOB(GROUP("\"walltime\": \"1x\",")), "invalid_job",
         "groups[0].walltime: must be a duration: seconds, \"1h30m\" (units "
         "d h m s) or \"HH:MM:SS\""},
        {JOB(GROUP("\"walltime\": -5,")), "invalid_job",
         "groups[0].walltime: must be a duration: seconds, \"1h30m\" (units "
         "d h m s) or \"HH:MM:SS\""},
        /* resources */
        {JOB(GROUP("") ", {\"name\": \"h\", \"resources\": {\"cores\": 0}, "
                       "\"tasks\": [" TASK "]}"),
         "invalid_job", "groups[1].resources.cores: must be an integer >= 1"},
        {JOB(GROUP("\"resources\": {\"cores\": 1.5},")), "invalid_job",
         "groups[0].resources.cores: must be an integer >= 1"},
        {JOB(GROUP("\"resources\": {\"cores\": 70000},")), "too_large",
         "groups[0].resources.cores: must be at most 65536"},
        {JOB(GROUP("\"resources\": {\"cpus\": 1},")), "invalid_job",
         "groups[0].resources.cpus: unknown field"},
        {JOB(GROUP("\"resources\": {\"memory\": \"lots\"},")), "invalid_job",
         "groups[0].resources.memory: must be a size: bytes, or a number "
         "with a unit such as \"512mb\" or \"2gb\""},
        {JOB(GROUP("\"resources\": {\"memory\": \"2pb\"},")), "too_large",
         "groups[0].resources.memory: must be at most 1pb"},
        {JOB(GROUP("\"resources\": {\"gpus\": -1},")), "invalid_job",
         "groups[0].resources.gpus: must be an integer >= 0"},
        {JOB(GROUP("\"resources\": {\"disk\": true},")), "invalid_job",
         "groups[0].resources.disk: must be a size: bytes, or a number with "
         "a unit such as \"512mb\" or \"2gb\""},
        {JOB(GROUP("\"resources\": {\"numa\": \"strict\"},")), "invalid_job",
         "groups[0].resources.numa: must be \"none\", \"prefer\" or "
         "\"require\""},
        {JOB(GROUP("\"count\": 100000, \"resources\": {\"memory\": "
                   "\"1pb\"},")),
         "too_large",
         "groups[0].resources.memory: count times memory is too large"},
        /* policies */
        {JOB(GROUP("\"restart\": {\"mode\": \"retry\"},")), "invalid_job",
         "groups[0].restart.mode: must be \"fail\" or \"delay\""},
        {JOB(GROUP("\"restart\": {\"interval\": \"0s\"},")), "invalid_job",
         "groups[0].restart.interval: must be a duration > 0"},
        {JOB(GROUP("\"restart\": {\"attempts\": 1001},")), "too_large",
         "groups[0].restart.attempts: must be at most 1000"},
        {JOB(GROUP("\"restart\": {\"tries\": 1},")), "invalid_job",
         "groups[0].restart.tries: unknown field"},
        {JOB(GROUP("\"reschedule\": {\"unlimited\": \"yes\"},")), "invalid_job",
         "groups[0].reschedule.unlimited: must be true or false"},
        {JOB(GROUP("\"reschedule\": {\"delay\": \"5\"}, \"restart\": 3,")),
         "invalid_job", "groups[0].restart: must be an object"},
        {JOB(GROUP("\"reschedule\": {\"max_delay\": \"1h\"},")), "invalid_job",
         "groups[0].reschedule.max_delay: unknown field"},
        /* tasks */
        {JOB("{\"name\": \"g\", \"tasks\": [{\"name\": \"t\"}]}"),
         "invalid_job", "groups[0].tasks[0].command: is required"},
        {JOB("{\"name\": \"g\", \"tasks\": [{\"command\": \"x\"}]}"),
         "invalid_job", "groups[0].tasks[0].name: is required"},
        {JOB("{\"name\": \"g\", \"tasks\": [" TASK ", " TASK "]}"),
         "invalid_job", "groups[0].tasks[1].name: task \"t\" is given twice"},
        {JOB("{\"name\": \"g\", \"tasks\": [{\"name\": \"t\", \"command\": "
             "\"x\", \"env\": {\"1X\": \"a\"}}]}"),
         "invalid_job",
         "groups[0].tasks[0].env.1X: not a variable name (letters, digits "
         "and _, not starting with a digit)"},
        {JOB("{\"name\": \"g\", \"tasks\": [{\"name\": \"t\", \"command\": "
             "\"x\", \"env\": [\"A=1\"]}]}"),
         "invalid_job", "groups[0].tasks[0].env: must be an object"},
        {JOB("{\"name\": \"g\", \"tasks\": [{\"name\": \"t\", \"command\": "
             "\"x\", \"args\": [1]}]}"),
         "invalid_job", "groups[0].tasks[0].args[0]: must be a string"},
        {JOB("{\"name\": \"g\", \"tasks\": [{\"name\": \"t\", \"command\": "
             "\"x\", \"user\": \"-x\"}]}"),
         "invalid_job",
         "groups[0].tasks[0].user: \"-x\" is not a valid user name"},
        {JOB("{\"name\": \"g\", \"tasks\": [{\"name\": \"t\", \"command\": "
             "\"x\", \"driver\": \"exec\"}]}"),
         "invalid_job", "groups[0].tasks[0].driver: unknown field"},
        /* constraints */
        {"{\"name\": \"j\", \"constraints\": [{\"attribute\": "
         "\"${attr.arch}\", \"operator\": \"~\", \"value\": \"x\"}], "
         "\"groups\": [" GROUP("") "]}",
         "invalid_job",
         "constraints[0].operator: unknown operator \"~\" (= != < <= > >= "
         "regexp version set_contains distinct_hosts is_set is_not_set)"},
        {"{\"name\": \"j\", \"constraints\": [{\"attribute\": \"arch\", "
         "\"value\": \"x\"}], \"groups\": [" GROUP("") "]}",
         "invalid_job",
         "constraints[0].attribute: must be ${attr.<name>}, ${meta.<name>} "
         "or ${node.name|datacenter|pool|class|id}"},
        {"{\"name\": \"j\", \"constraints\": [{\"attribute\": "
         "\"${node.rack}\", \"value\": \"x\"}], \"groups\": [" GROUP("") "]}",
         "invalid_job",
         "constraints[0].attribute: must be ${attr.<name>}, ${meta.<name>} "
         "or ${node.name|datacenter|pool|class|id}"},
        {"{\"name\": \"j\", \"constraints\": [{\"value\": \"x\"}], "
         "\"groups\": [" GROUP("") "]}",
         "invalid_job", "constraints[0].attribute: is required"},
        {"{\"name\": \"j\", \"constraints\": [{\"attribute\": "
         "\"${attr.arch}\"}], \"groups\": [" GROUP("") "]}",
         "invalid_job", "constraints[0].value: is required for operator ="},
        {JOB(GROUP("\"constraints\": [{\"attribute\": \"${attr.k}\", "
                   "\"operator\": \"version\", \"value\": \">= 1.2, <\"}],")),
         "invalid_job",
         "groups[0].constraints[0].value: not a version constraint such as "
         "\">= 1.2, < 2.0\""},
        {JOB(GROUP("\"constraints\": [{\"attribute\": \"${attr.k}\", "
                   "\"operator\": \"set_contains\", \"value\": \"a,,b\"}],")),
         "invalid_job",
         "groups[0].constraints[0].value: must be a comma-separated list of "
         "non-empty items"},
        {JOB(GROUP("\"constraints\": [{\"operator\": \"distinct_hosts\", "
                   "\"value\": \"true\"}],")),
         "invalid_job",
         "groups[0].constraints[0].value: distinct_hosts takes no value"},
        {JOB(GROUP("\"constraints\": [{\"operator\": \"distinct_hosts\", "
                   "\"attribute\": \"${node.name}\"}],")),
         "invalid_job",
         "groups[0].constraints[0].attribute: distinct_hosts takes no "
         "attribute"},
        {JOB(GROUP("\"constraints\": [{\"operator\": \"is_set\", "
                   "\"attribute\": \"${meta.a}\", \"value\": \"x\"}],")),
         "invalid_job",
         "groups[0].constraints[0].value: is_set takes no value"},
        {JOB(GROUP("\"constraints\": [{\"attribute\": \"${meta.a}\", "
                   "\"value\": \"x\", \"weight\": 5}],")),
         "invalid_job", "groups[0].constraints[0].weight: unknown field"},
        /* affinities */
        {JOB(GROUP("\"affinities\": [{\"attribute\": \"${meta.a}\", "
                   "\"value\": \"x\", \"weight\": 0}],")),
         "invalid_job", "groups[0].affinities[0].weight: must not be 0"},
        {JOB(GROUP("\"affinities\": [{\"attribute\": \"${meta.a}\", "
                   "\"value\": \"x\", \"weight\": 101}],")),
         "invalid_job",
         "groups[0].affinities[0].weight: must be an integer from -100 to "
         "100"},
        {JOB(GROUP("\"affinities\": [{\"operator\": \"distinct_hosts\"}],")),
         "invalid_job",
         "groups[0].affinities[0].operator: distinct_hosts is not an affinity "
         "operator"},
        /* spread */
        {JOB(GROUP("\"spread\": [{\"weight\": 10}],")), "invalid_job",
         "groups[0].spread[0].attribute: is required"},
        {JOB(GROUP("\"spread\": [{\"attribute\": \"${node.datacenter}\", "
                   "\"weight\": 101}],")),
         "invalid_job",
         "groups[0].spread[0].weight: must be an integer from 0 to 100"},
        {JOB(GROUP("\"spread\": [{\"attribute\": \"${node.datacenter}\", "
                   "\"targets\": [{\"value\": \"a\", \"percent\": 60}, "
                   "{\"value\": \"b\", \"percent\": 50}]}],")),
         "invalid_job",
         "groups[0].spread[0].targets: percentages add up to 110, more than "
         "100"},
        {JOB(GROUP("\"spread\": [{\"attribute\": \"${node.datacenter}\", "
                   "\"targets\": [{\"value\": \"a\", \"percent\": 10}, "
                   "{\"value\": \"a\", \"percent\": 10}]}],")),
         "invalid_job",
         "groups[0].spread[0].targets: target \"a\" is given twice"},
        {JOB(GROUP("\"spread\": [{\"attribute\": \"${node.datacenter}\", "
                   "\"targets\": [{\"value\": \"a\"}]}],")),
         "invalid_job", "groups[0].spread[0].targets[0].percent: is required"},
        {JOB(GROUP("\"spread\": [{\"attribute\": \"${node.datacenter}\", "
                   "\"targets\": [{\"percent\": 5}]}],")),
         "invalid_job", "groups[0].spread[0].targets[0].value: is required"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_error(cases[i].json, cases[i].code, cases[i].msg);
    }
    /* regcomp's own words follow the prefix. */
    expect_prefix("{\"name\": \"j\", \"constraints\": [{\"attribute\": "
                  "\"${attr.arch}\", \"operator\": \"regexp\", \"value\": "
                  "\"(x\"}], \"groups\": [" GROUP("") "]}",
                  "constraints[0].value: not a valid regular expression: ");
}

static void
test_limits(void)
{
    json_t *j = json_pack("{s:s, s:s, s:[]}", "name", "big", "owner", "alice",
                          "groups");
    json_t *groups = json_object_get(j, "groups");
    struct dv_job_spec s;
    struct dv_err err;
    char *text;

    /* 11 groups of 100000: more than a million instances in all. */
    for (int i = 0; i < 11; i++) {
        char name[16];
        snprintf(name, sizeof(name), "g%d", i);
        json_array_append_new(groups,
                              json_pack("{s:s, s:i, s:[{s:s, s:s}]}", "name",
                                        name, "count", 100000, "tasks", "name",
                                        "t", "command", "/bin/true"));
    }
    text = json_dumps(j, 0);
    dv_job_spec_init(&s);
    CHECK_INT(load(text, &s, &err), -1);
    CHECK_STR(err.code, "too_large");
    CHECK_STR(err.msg,
              "groups: the job has more than 1000000 instances in all");
    dv_job_spec_cleanup(&s);
    free(text);

    /* 65 groups. */
    for (int i = 11; i < 65; i++) {
        char name[16];
        snprintf(name, sizeof(name), "g%d", i);
        json_array_append_new(groups, json_pack("{s:s, s:[{s:s, s:s}]}", "name",
                                                name, "tasks", "name", "t",
                                                "command", "/bin/true"));
    }
    text = json_dumps(j, 0);
    dv_job_spec_init(&s);
    CHECK_INT(load(text, &s, &err), -1);
    CHECK_STR(err.code, "too_large");
    CHECK_STR(err.msg, "groups: has more than 64 entries");
    dv_job_spec_cleanup(&s);
    free(text);
    json_decref(j);
}

static void
test_users(void)
{
    struct dv_job_spec s;
    struct dv_err err;

    dv_job_spec_init(&s);
    CHECK_INT(load(JOB("{\"name\": \"g\", \"tasks\": [" TASK ", {\"name\": "
                       "\"u\", \"command\": \"x\", \"user\": \"bob\"}]}"),
                   &s, &err),
              0);
    CHECK_INT(dv_jobspec_check_users(s.native, "alice", &err), -1);
    CHECK_STR(err.code, "forbidden");
    CHECK_STR(err.msg, "groups[0].tasks[1].user: a task may run only as the "
                       "job's owner \"alice\" unless root submits it");
    CHECK_INT(dv_jobspec_check_users(s.native, "bob", &err), -1);
    dv_job_spec_cleanup(&s);

    dv_job_spec_init(&s);
    CHECK_INT(load(JOB(GROUP("")), &s, &err), 0);
    CHECK_INT(dv_jobspec_check_users(s.native, "alice", &err), 0);
    dv_job_spec_cleanup(&s);
}

static void
test_durations_versions(void)
{
    static const struct {
        const char *text;
        int64_t secs;
    } ok[] = {
        {"0", 0},        {"90", 90},        {"90s", 90},    {"5m", 300},
        {"1h30m", 5400}, {"24h", 86400},    {"2d", 172800}, {"1:00:00", 3600},
        {"10:05", 605},  {"1h0m30s", 3630},
    };
    static const char *const bad[] = {
        "", "1x", "h", "1h30", "-5", "1.5h", "99999999999", "1 h", "1:xx",
    };
    static const char *const vok[] = {
        "1.2", ">= 1.2", ">= 1.2, < 2.0", "~> 3.10.1", "= 1.0.0-rc1+b5",
        "!=2", "  > 4 ",
    };
    static const char *const vbad[] = {
        "", ">=", ">= 1.2,", "1..2", ">> 1", "1.2-", "x1", ">= 1.2 < 2",
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        CHECK_INT(dv_jobspec_parse_duration(ok[i].text, &v), 0);
        CHECK_INT(v, ok[i].secs);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v;
        CHECK_INT(dv_jobspec_parse_duration(bad[i], &v), -1);
        if (dv_jobspec_parse_duration(bad[i], &v) == 0) {
            fprintf(stderr, "    \"%s\" parsed\n", bad[i]);
        }
    }
    dv_jobspec_format_duration(0, buf, sizeof(buf));
    CHECK_STR(buf, "0s");
    dv_jobspec_format_duration(86400, buf, sizeof(buf));
    CHECK_STR(buf, "24h");
    dv_jobspec_format_duration(5430, buf, sizeof(buf));
    CHECK_STR(buf, "1h30m30s");
    dv_jobspec_format_duration(45, buf, sizeof(buf));
    CHECK_STR(buf, "45s");
    for (size_t i = 0; i < sizeof(vok) / sizeof(vok[0]); i++) {
        CHECK_INT(dv_version_constraint_check(vok[i]), 0);
    }
    for (size_t i = 0; i < sizeof(vbad) / sizeof(vbad[0]); i++) {
        CHECK_INT(dv_version_constraint_check(vbad[i]), -1);
        if (dv_version_constraint_check(vbad[i]) == 0) {
            fprintf(stderr, "    \"%s\" accepted\n", vbad[i]);
        }
    }
}

static const char native_spec[] =
    "{\"name\": \"solver\", \"type\": \"batch\", \"datacenters\": [\"dc1\", "
    "\"dc2\"], \"node_pool\": \"gpu\", \"meta\": {\"team\": \"cfd\"}, "
    "\"constraints\": [{\"attribute\": \"${attr.kernel.name}\", \"value\": "
    "\"linux\"}], "
    "\"affinities\": [{\"attribute\": \"${node.datacenter}\", \"operator\": "
    "\"=\", \"value\": \"dc1\", \"weight\": 50}], "
    "\"spread\": [{\"attribute\": \"${node.datacenter}\", \"targets\": "
    "[{\"value\": \"dc1\", \"percent\": 70}]}], "
    "\"groups\": [{\"name\": \"ranks\", \"count\": 3, \"constraints\": "
    "[{\"operator\": \"distinct_hosts\"}], \"affinities\": [{\"attribute\": "
    "\"${meta.rack}\", \"operator\": \"set_contains\", \"value\": \"r1,r2\", "
    "\"weight\": -10}], \"resources\": {\"cores\": 4, \"memory\": \"2gb\", "
    "\"gpus\": 1, \"disk\": \"10gb\", \"numa\": \"require\"}, \"walltime\": "
    "\"2h\", \"tasks\": [{\"name\": \"solve\", \"command\": \"/opt/solve\", "
    "\"args\": [\"-n\", \"3\"], \"env\": {\"OMP_NUM_THREADS\": \"4\"}}]}, "
    "{\"name\": \"io\", \"tasks\": [{\"name\": \"copy\", \"command\": "
    "\"/bin/cp\"}]}]}";

static const char native_placement[] =
    "{\"gang\": false, \"place\": \"free\", \"exclusive\": false, "
    "\"datacenters\": [\"dc1\", \"dc2\"], \"pool\": \"gpu\", \"groups\": ["
    "{\"name\": \"ranks\", \"count\": 3, \"cores\": 4, \"memory\": "
    "2147483648, \"gpus\": 1, \"disk\": 10737418240, \"numa\": \"require\", "
    "\"walltime\": 7200, "
    "\"constraints\": [{\"attribute\": \"${attr.kernel.name}\", "
    "\"operator\": \"=\", \"value\": \"linux\"}, {\"operator\": "
    "\"distinct_hosts\"}], "
    "\"affinities\": [{\"attribute\": \"${node.datacenter}\", \"operator\": "
    "\"=\", \"value\": \"dc1\", \"weight\": 50}, {\"attribute\": "
    "\"${meta.rack}\", \"operator\": \"set_contains\", \"value\": \"r1,r2\", "
    "\"weight\": -10}], "
    "\"spread\": [{\"attribute\": \"${node.datacenter}\", \"weight\": 50, "
    "\"targets\": [{\"value\": \"dc1\", \"percent\": 70}]}], "
    "\"reschedule\": {\"attempts\": 1, \"interval\": 86400, \"delay\": 5, "
    "\"unlimited\": false}}, "
    "{\"name\": \"io\", \"count\": 1, \"cores\": 1, \"memory\": 0, \"gpus\": "
    "0, \"disk\": 0, \"numa\": \"prefer\", \"walltime\": 0, "
    "\"constraints\": [{\"attribute\": \"${attr.kernel.name}\", "
    "\"operator\": \"=\", \"value\": \"linux\"}], "
    "\"affinities\": [{\"attribute\": \"${node.datacenter}\", \"operator\": "
    "\"=\", \"value\": \"dc1\", \"weight\": 50}], "
    "\"spread\": [{\"attribute\": \"${node.datacenter}\", \"weight\": 50, "
    "\"targets\": [{\"value\": \"dc1\", \"percent\": 70}]}], "
    "\"reschedule\": {\"attempts\": 1, \"interval\": 86400, \"delay\": 5, "
    "\"unlimited\": false}}]}";

static void
test_native_placement(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    json_t *out;

    dv_job_spec_init(&s);
    CHECK_INT(load(native_spec, &s, &err), 0);
    out = dv_job_spec_to_json(&s);
    check_json_equal(json_object_get(out, "placement"), native_placement);
    check_json_equal(json_object_get(out, "resource_list"),
                     "{\"mem\": \"6gb\", \"ncpus\": \"13\", \"ngpus\": \"3\", "
                     "\"nodect\": \"4\", \"walltime\": \"02:00:00\"}");
    CHECK(json_object_get(out, "chunks") == NULL);
    CHECK(json_object_get(out, "script") == NULL);
    CHECK(json_object_get(out, "env") == NULL);
    CHECK_INT(s.req.walltime, 7200);
    json_decref(out);
    dv_job_spec_cleanup(&s);

    /* node_pool "all": any pool (null). */
    dv_job_spec_init(&s);
    CHECK_INT(load("{\"name\": \"a\", \"type\": \"system\", \"node_pool\": "
                   "\"all\", \"groups\": [" GROUP("") "]}",
                   &s, &err),
              0);
    out = dv_job_spec_to_json(&s);
    CHECK(json_is_null(
        json_object_get(json_object_get(out, "placement"), "pool")));
    check_json_equal(json_object_get(out, "resource_list"),
                     "{\"ncpus\": \"1\", \"nodect\": \"0\"}");
    json_decref(out);
    dv_job_spec_cleanup(&s);
}

static void
test_pbs_placement(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    json_t *out;

    dv_job_spec_init(&s);
    CHECK_INT(load("{\"script\": \"echo\", \"resources\": {\"select\": "
                   "\"2:ncpus=4:mem=1gb+1:ncpus=1:ngpus=1\", \"place\": "
                   "\"scatter:excl\", \"walltime\": \"1:00:00\"}}",
                   &s, &err),
              0);
    out = dv_job_spec_to_json(&s);
    check_json_equal(
        json_object_get(out, "placement"),
        "{\"gang\": true, \"place\": \"scatter\", \"exclusive\": true, "
        "\"datacenters\": [], \"pool\": null, \"groups\": ["
        "{\"name\": \"chunk0\", \"count\": 2, \"cores\": 4, \"memory\": "
        "1073741824, \"gpus\": 0, \"disk\": 0, \"numa\": \"prefer\", "
        "\"walltime\": 3600, \"constraints\": [], \"affinities\": [], "
        "\"spread\": []}, "
        "{\"name\": \"chunk1\", \"count\": 1, \"cores\": 1, \"memory\": 0, "
        "\"gpus\": 1, \"disk\": 0, \"numa\": \"prefer\", \"walltime\": 3600, "
        "\"constraints\": [], \"affinities\": [], \"spread\": []}]}");
    /* resource_list stays as it was; "chunks" is gone. */
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(out, "resource_list"), "select")),
              "2:ncpus=4:mem=1gb+1:ncpus=1:ngpus=1");
    CHECK(json_object_get(out, "chunks") == NULL);
    json_decref(out);
    dv_job_spec_cleanup(&s);

    /* The old job-wide resources: one chunk, place=pack, no walltime. */
    dv_job_spec_init(&s);
    CHECK_INT(load("{\"argv\": [\"/bin/true\"], \"resources\": {\"ncpus\": "
                   "2, \"mem\": \"512mb\"}}",
                   &s, &err),
              0);
    out = dv_job_spec_to_json(&s);
    check_json_equal(
        json_object_get(out, "placement"),
        "{\"gang\": true, \"place\": \"pack\", \"exclusive\": false, "
        "\"datacenters\": [], \"pool\": null, \"groups\": ["
        "{\"name\": \"chunk0\", \"count\": 1, \"cores\": 2, \"memory\": "
        "536870912, \"gpus\": 0, \"disk\": 0, \"numa\": \"prefer\", "
        "\"walltime\": 0, \"constraints\": [], \"affinities\": [], "
        "\"spread\": []}]}");
    json_decref(out);
    dv_job_spec_cleanup(&s);
}

/* Encodes text's spec, decodes and normalises the result, and checks the
 * second encoding equals the first. */
static void
round_trip(const char *text)
{
    struct dv_job_spec a, b;
    struct dv_err err;
    json_t *ja, *jb;
    char *t;

    dv_job_spec_init(&a);
    dv_job_spec_init(&b);
    CHECK_INT(load(text, &a, &err), 0);
    ja = dv_job_spec_to_json(&a);
    t = json_dumps(ja, 0);
    CHECK_INT(load(t, &b, &err), 0);
    jb = dv_job_spec_to_json(&b);
    CHECK(json_equal(ja, jb));
    if (!json_equal(ja, jb)) {
        char *u = json_dumps(jb, 0);
        fprintf(stderr, "    first:  %s\n    second: %s\n", t, u);
        free(u);
    }
    free(t);
    json_decref(ja);
    json_decref(jb);
    dv_job_spec_cleanup(&a);
    dv_job_spec_cleanup(&b);
}

static void
test_round_trip(void)
{
    round_trip(native_spec);
    round_trip(JOB(GROUP("")));
    round_trip("{\"name\": \"w\", \"type\": \"service\", \"groups\": "
               "[" GROUP("\"restart\": {\"mode\": \"delay\"}, \"reschedule\": "
                         "{\"attempts\": 2},") "]}");
    round_trip("{\"script\": \"echo\", \"resources\": {\"select\": "
               "\"2:ncpus=2\"}}");
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    struct dv_buf b;
    char chunk[4096];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    dv_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        dv_buf_append(&b, chunk, n);
    }
    fclose(f);
    return dv_buf_steal(&b);
}

static void
test_examples(void)
{
    static const struct {
        const char *file;
        const char *type;
        int ncpus;
        int nodect;
    } ex[] = {
        {"examples/jobs/batch.json", "batch", 4, 4},
        {"examples/jobs/service.json", "service", 2, 2},
        {"examples/jobs/system.json", "system", 1, 0},
        {"examples/jobs/constraints.json", "batch", 4, 2},
    };

    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        char *text = read_file(ex[i].file);
        struct dv_job_spec s;
        struct dv_err err;

        CHECK(text != NULL);
        if (text == NULL) {
            fprintf(stderr, "    cannot read %s (run from the top)\n",
                    ex[i].file);
            continue;
        }
        dv_job_spec_init(&s);
        CHECK_INT(load(text, &s, &err), 0);
        if (s.normalized == 0) {
            fprintf(stderr, "    %s: %s\n", ex[i].file, err.msg);
        } else {
            CHECK_STR(s.type, ex[i].type);
            CHECK_INT(s.req.ncpus, ex[i].ncpus);
            CHECK_INT(s.req.nodect, ex[i].nodect);
            round_trip(text);
        }
        dv_job_spec_cleanup(&s);
        free(text);
    }
}

int
main(void)
{
    RUN(test_minimal_defaults);
    RUN(test_service_and_system_defaults);
    RUN(test_errors);
    RUN(test_limits);
    RUN(test_users);
    RUN(test_durations_versions);
    RUN(test_native_placement);
    RUN(test_pbs_placement);
    RUN(test_round_trip);
    RUN(test_examples);
    return unit_done();
}
