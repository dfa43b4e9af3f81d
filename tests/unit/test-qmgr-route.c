/* Unit tests of qmgr/route.c: paths, methods and the ids they carry. */
#include "qmgr/qmgr.h"
#include "tests/unit/unit.h"

static int
match(const char *method, const char *path, struct route_match *m,
      struct dv_err *err)
{
    dv_err_clear(err);
    return route_find(method, path, m, err);
}

static void
test_routes(void)
{
    struct route_match m;
    struct dv_err err;

    CHECK_INT(match("GET", "/v1/status", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_STATUS);
    CHECK_INT(match("GET", "/v1/jobs", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOBS_LIST);
    CHECK_INT(match("POST", "/v1/jobs/", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOBS_SUBMIT);
    CHECK_INT(match("GET", "/v1/jobs/12", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_GET);
    CHECK_INT(m.num, 12);
    CHECK_INT(match("DELETE", "/v1/jobs/12.srv", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_DELETE);
    CHECK_INT(m.num, 12);
    CHECK_INT(match("POST", "/v1/jobs/7.srv.example.com/hold", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_HOLD);
    CHECK_INT(m.num, 7);
    CHECK_INT(match("POST", "/v1/jobs/7/release", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_RELEASE);
    CHECK_INT(match("GET", "/v1/jobs/7.srv/allocations", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_ALLOCS);
    CHECK_INT(m.num, 7);
    CHECK_INT(match("POST", "/v1/jobs/7/allocations", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
    CHECK_INT(match("GET", "/v1/nodes", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODES_LIST);
    CHECK_INT(match("POST", "/v1/nodes/register", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_REGISTER);
    CHECK_INT(match("PUT", "/v1/nodes/5/heartbeat", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_HEARTBEAT);
    CHECK_INT(m.num, 5);
    CHECK_INT(match("GET", "/v1/nodes/5/allocations", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_ALLOCS);
    CHECK_INT(match("POST", "/v1/nodes/5/allocations/status", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_ALLOC_STATUS);
    CHECK_INT(match("HEAD", "/v1/status", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_STATUS);
    /* pbsdsh tasks */
    CHECK_INT(match("POST", "/v1/jobs/9.srv/tasks", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_TASKS_CREATE);
    CHECK_INT(m.num, 9);
    CHECK_INT(match("GET", "/v1/jobs/9/tasks", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_JOB_TASKS_GET);
    CHECK_INT(match("DELETE", "/v1/jobs/9/tasks", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
    CHECK_INT(match("POST", "/v1/nodes/5/tasks/status", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_TASK_STATUS);
    CHECK_INT(m.num, 5);
    CHECK_INT(match("GET", "/v1/nodes/5/tasks/status", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
    CHECK_INT(match("POST", "/v1/nodes/5/tasks/x", &m, &err), -1);
}

static void
test_not_found(void)
{
    static const char *const paths[] = {
        "/",
        "",
        "/v1",
        "/v2/jobs",
        "/v1/job",
        "/v1/jobs/1/frobnicate",
        "/v1/jobs/1/hold/x",
        "/v1/nodes/5/frobnicate",
        "/v1/nodes/node1/drain/x",
        "/v1/nodes/5/allocations/x",
        "/v1/nodes/5/heartbeat/x",
        "/v1/nodes/5/tasks",
        "/v1/jobs/1/tasks/x",
        "/v1/a/b/c/d/e/f/g/h",
        "/v1/statusx",
    };
    struct route_match m;
    struct dv_err err;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        CHECK_INT(match("GET", paths[i], &m, &err), -1);
        CHECK_STR(err.code, "not_found");
        CHECK_INT(err.kind, DV_ENOTFOUND);
    }
}

static void
test_node_routes(void)
{
    struct route_match m;
    struct dv_err err;

    CHECK_INT(match("GET", "/v1/nodes/5", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_GET);
    CHECK_INT(m.num, 5);
    CHECK_STR(m.name, "");
    CHECK_INT(match("GET", "/v1/nodes/node-1.example_x", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_GET);
    CHECK_INT(m.num, 0);
    CHECK_STR(m.name, "node-1.example_x");
    CHECK_INT(match("POST", "/v1/nodes/node1/drain", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_DRAIN);
    CHECK_STR(m.name, "node1");
    CHECK_INT(match("POST", "/v1/nodes/7/drain/", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_DRAIN);
    CHECK_INT(m.num, 7);
    CHECK_INT(match("POST", "/v1/nodes/node1/eligibility", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_NODE_ELIGIBILITY);
    CHECK_STR(m.name, "node1");
    CHECK_INT(match("GET", "/v1/nodes/node1/drain", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
    CHECK_STR(m.allow, "POST");
    CHECK_INT(match("DELETE", "/v1/nodes/node1", &m, &err), -1);
    CHECK_STR(m.allow, "GET");
    /* "register" is the registration route, never a node's name */
    CHECK_INT(match("GET", "/v1/nodes/register", &m, &err), -1);
    CHECK_STR(m.allow, "POST");
    /* names that cannot be a node's */
    CHECK_INT(match("GET", "/v1/nodes/a%20b", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("POST", "/v1/nodes/a:b/drain", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("GET", "/v1/nodes/0", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    /* node daemons' routes take ids only */
    CHECK_INT(match("PUT", "/v1/nodes/node1/heartbeat", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("GET", "/v1/nodes/node1/allocations", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
}

static void
test_resource_routes(void)
{
    struct route_match m;
    struct dv_err err;

    CHECK_INT(match("GET", "/v1/resources", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_RESOURCES_LIST);
    CHECK_INT(match("POST", "/v1/resources/", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_RESOURCES_CREATE);
    CHECK_INT(match("DELETE", "/v1/resources/software", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_RESOURCE_DELETE);
    CHECK_STR(m.name, "software");
    CHECK_INT(match("GET", "/v1/resources/software", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
    CHECK_STR(m.allow, "DELETE");
    CHECK_INT(match("DELETE", "/v1/resources", &m, &err), -1);
    CHECK_STR(m.allow, "GET, POST");
    CHECK_INT(match("DELETE", "/v1/resources/1abc", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("DELETE", "/v1/resources/a/b", &m, &err), -1);
    CHECK_STR(err.code, "not_found");
}

static void
test_bad_method(void)
{
    struct route_match m;
    struct dv_err err;

    CHECK_INT(match("PUT", "/v1/jobs/1", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
    CHECK_STR(m.allow, "GET, DELETE");
    CHECK_INT(match("DELETE", "/v1/jobs", &m, &err), -1);
    CHECK_STR(m.allow, "GET, POST");
    CHECK_INT(match("GET", "/v1/nodes/register", &m, &err), -1);
    CHECK_STR(m.allow, "POST");
    CHECK_INT(match("POST", "/v1/status", &m, &err), -1);
    CHECK_STR(err.code, "method_not_allowed");
}

static void
test_bad_ids(void)
{
    struct route_match m;
    struct dv_err err;

    CHECK_INT(match("GET", "/v1/jobs/abc", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("GET", "/v1/jobs/12[]", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("GET", "/v1/jobs/-1", &m, &err), -1);
    CHECK_INT(match("PUT", "/v1/nodes/0/heartbeat", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("PUT", "/v1/nodes/x/heartbeat", &m, &err), -1);
    CHECK_INT(
        match("PUT", "/v1/nodes/99999999999999999999/heartbeat", &m, &err), -1);
}

static void
test_queue_routes(void)
{
    struct route_match m;
    struct dv_err err;

    CHECK_INT(match("GET", "/v1/queues", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_QUEUES_LIST);
    CHECK_INT(match("POST", "/v1/queues/", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_QUEUES_CREATE);
    CHECK_INT(match("GET", "/v1/queues/workq", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_QUEUE_GET);
    CHECK_STR(m.name, "workq");
    CHECK_INT(match("PUT", "/v1/queues/workq", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_QUEUE_CHANGE);
    CHECK_INT(match("PATCH", "/v1/queues/workq", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_QUEUE_CHANGE);
    CHECK_INT(match("DELETE", "/v1/queues/workq", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_QUEUE_DELETE);
    CHECK_INT(match("POST", "/v1/queues/workq", &m, &err), -1);
    CHECK_STR(m.allow, "GET, PUT, PATCH, DELETE");
    CHECK_INT(match("DELETE", "/v1/queues", &m, &err), -1);
    CHECK_STR(m.allow, "GET, POST");
    CHECK_INT(match("GET", "/v1/queues/a%20b", &m, &err), -1);
    CHECK_STR(err.code, "invalid_request");
    CHECK_INT(match("GET", "/v1/queues/workq/jobs", &m, &err), -1);
    CHECK_STR(err.code, "not_found");
    CHECK_INT(match("GET", "/v1/server", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_SERVER_GET);
    CHECK_INT(match("PATCH", "/v1/server", &m, &err), 0);
    CHECK_INT(m.id, ROUTE_SERVER_CHANGE);
    CHECK_INT(match("DELETE", "/v1/server", &m, &err), -1);
    CHECK_STR(m.allow, "GET, PUT, PATCH");
}

int
main(void)
{
    RUN(test_routes);
    RUN(test_not_found);
    RUN(test_node_routes);
    RUN(test_resource_routes);
    RUN(test_bad_method);
    RUN(test_bad_ids);
    RUN(test_queue_routes);
    return unit_done();
}
