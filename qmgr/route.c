/*
 * The API's paths: matching a method and a path to a route, with the id the
 * path carries. Pure, so that it is unit-tested (tests/unit/test-qmgr-*).
 */
#include <string.h>

#include "lib/job.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

#define ROUTE_MAX_SEGS 6

/* Splits path into at most max segments (copied into buf). Returns the
 * count, or -1 when there are too many. A trailing slash is ignored. */
static int
split_path(const char *path, char *buf, size_t size, char **segs, int max)
{
    size_t len = strlen(path);
    int n = 0;
    char *p;

    if (len == 0 || path[0] != '/' || len >= size) {
        return -1;
    }
    memcpy(buf, path + 1, len);
    len--;
    if (len > 0 && buf[len - 1] == '/') {
        buf[len - 1] = '\0';
    }
    if (buf[0] == '\0') {
        return 0;
    }
    p = buf;
    for (;;) {
        char *slash = strchr(p, '/');

        if (n >= max) {
            return -1;
        }
        segs[n++] = p;
        if (slash == NULL) {
            break;
        }
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

struct route_def {
    const char *method;
    enum route_id id;
};

/* Picks the route for method among the ones a path takes; fills allow. */
static int
pick(const char *method, const struct route_def *defs, int n,
     struct route_match *m, const char *path, struct dv_err *err)
{
    m->allow[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(method, defs[i].method) == 0 ||
            (strcmp(method, "HEAD") == 0 &&
             strcmp(defs[i].method, "GET") == 0)) {
            m->id = defs[i].id;
            return 0;
        }
    }
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            strncat(m->allow, ", ", sizeof(m->allow) - strlen(m->allow) - 1);
        }
        strncat(m->allow, defs[i].method,
                sizeof(m->allow) - strlen(m->allow) - 1);
    }
    dv_err_set(err, DV_EINVAL, "method_not_allowed",
               "method %s is not allowed for %s", method, path);
    return -1;
}

static int
not_found(const char *path, struct dv_err *err)
{
    dv_err_set(err, DV_ENOTFOUND, "not_found", "no such path: %.200s", path);
    return -1;
}

/* A node of a path named by id (digits) or by name; the routes that only
 * node daemons call take ids only. */
static int
node_ref(const char *seg, int ids_only, struct route_match *m,
         struct dv_err *err)
{
    int64_t nid;

    if (seg[strspn(seg, "0123456789")] == '\0') {
        if (dv_parse_i64(seg, 1, INT64_MAX, &nid) < 0) {
            dv_err_set(err, DV_EINVAL, "invalid_request",
                       "invalid node id: %.64s", seg);
            return -1;
        }
        m->num = nid;
        return 0;
    }
    if (ids_only) {
        dv_err_set(err, DV_EINVAL, "invalid_request", "invalid node id: %.64s",
                   seg);
        return -1;
    }
    if (!node_name_valid(seg)) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "invalid node id or name: %.64s (a name is 1 to 255 of "
                   "A-Z a-z 0-9 . _ -)",
                   seg);
        return -1;
    }
    dv_strlcpy(m->name, seg, sizeof(m->name));
    return 0;
}

/* /v1/nodes... (s[1] is "nodes"). */
static int
nodes_route(const char *method, const char *path, char **s, int n,
            struct route_match *m, struct dv_err *err)
{
    static const struct route_def nodes[] = {{"GET", ROUTE_NODES_LIST}};
    static const struct route_def node[] = {{"GET", ROUTE_NODE_GET}};
    static const struct route_def reg[] = {{"POST", ROUTE_NODE_REGISTER}};
    static const struct route_def hb[] = {{"PUT", ROUTE_NODE_HEARTBEAT}};
    static const struct route_def allocs[] = {{"GET", ROUTE_NODE_ALLOCS}};
    static const struct route_def astatus[] = {
        {"POST", ROUTE_NODE_ALLOC_STATUS}};
    static const struct route_def elig[] = {{"POST", ROUTE_NODE_ELIGIBILITY}};
    static const struct route_def drain[] = {{"POST", ROUTE_NODE_DRAIN}};
    static const struct route_def tstatus[] = {
        {"POST", ROUTE_NODE_TASK_STATUS}};

    if (n == 2) {
        return pick(method, nodes, 1, m, path, err);
    }
    if (n == 3 && strcmp(s[2], "register") == 0) {
        return pick(method, reg, 1, m, path, err);
    }
    if (n == 3) {
        return node_ref(s[2], 0, m, err) < 0
                   ? -1
                   : pick(method, node, 1, m, path, err);
    }
    if (n == 4 &&
        (strcmp(s[3], "eligibility") == 0 || strcmp(s[3], "drain") == 0)) {
        if (node_ref(s[2], 0, m, err) < 0) {
            return -1;
        }
        return strcmp(s[3], "drain") == 0 ? pick(method, drain, 1, m, path, err)
                                          : pick(method, elig, 1, m, path, err);
    }
    if (n == 4 && strcmp(s[3], "heartbeat") != 0 &&
        strcmp(s[3], "allocations") != 0) {
        return not_found(path, err);
    }
    if (n == 5 && strcmp(s[3], "tasks") == 0 && strcmp(s[4], "status") == 0) {
        return node_ref(s[2], 1, m, err) < 0
                   ? -1
                   : pick(method, tstatus, 1, m, path, err);
    }
    if (n == 5 &&
        (strcmp(s[3], "allocations") != 0 || strcmp(s[4], "status") != 0)) {
        return not_found(path, err);
    }
    if (n < 4 || n > 5) {
        return not_found(path, err);
    }
    if (node_ref(s[2], 1, m, err) < 0) {
        return -1;
    }
    if (n == 5) {
        return pick(method, astatus, 1, m, path, err);
    }
    if (strcmp(s[3], "heartbeat") == 0) {
        return pick(method, hb, 1, m, path, err);
    }
    return pick(method, allocs, 1, m, path, err);
}

/* /v1/resources and /v1/resources/:name (custom resources). */
static int
resources_route(const char *method, const char *path, char **s, int n,
                struct route_match *m, struct dv_err *err)
{
    static const struct route_def list[] = {{"GET", ROUTE_RESOURCES_LIST},
                                            {"POST", ROUTE_RESOURCES_CREATE}};
    static const struct route_def one[] = {{"DELETE", ROUTE_RESOURCE_DELETE}};

    if (n == 2) {
        return pick(method, list, 2, m, path, err);
    }
    if (n != 3) {
        return not_found(path, err);
    }
    if (!resource_name_valid(s[2])) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "invalid resource name: %.64s", s[2]);
        return -1;
    }
    dv_strlcpy(m->name, s[2], sizeof(m->name));
    return pick(method, one, 1, m, path, err);
}

/* /v1/queues and /v1/queues/:name. */
static int
queues_route(const char *method, const char *path, char **s, int n,
             struct route_match *m, struct dv_err *err)
{
    static const struct route_def queues[] = {{"GET", ROUTE_QUEUES_LIST},
                                              {"POST", ROUTE_QUEUES_CREATE}};
    static const struct route_def queue[] = {{"GET", ROUTE_QUEUE_GET},
                                             {"PUT", ROUTE_QUEUE_CHANGE},
                                             {"PATCH", ROUTE_QUEUE_CHANGE},
                                             {"DELETE", ROUTE_QUEUE_DELETE}};

    if (n == 2) {
        return pick(method, queues, 2, m, path, err);
    }
    if (n != 3) {
        return not_found(path, err);
    }
    if (!dv_queue_name_valid(s[2])) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "invalid queue name: %.64s (1 to 15 of A-Z a-z 0-9 _ -, "
                   "starting with a letter or digit)",
                   s[2]);
        return -1;
    }
    dv_strlcpy(m->name, s[2], sizeof(m->name));
    return pick(method, queue, 4, m, path, err);
}

int
route_find(const char *method, const char *path, struct route_match *m,
           struct dv_err *err)
{
    static const struct route_def status[] = {{"GET", ROUTE_STATUS}};
    static const struct route_def server[] = {{"GET", ROUTE_SERVER_GET},
                                              {"PUT", ROUTE_SERVER_CHANGE},
                                              {"PATCH", ROUTE_SERVER_CHANGE}};
    static const struct route_def jobs[] = {{"GET", ROUTE_JOBS_LIST},
                                            {"POST", ROUTE_JOBS_SUBMIT}};
    static const struct route_def job[] = {{"GET", ROUTE_JOB_GET},
                                           {"DELETE", ROUTE_JOB_DELETE}};
    static const struct route_def hold[] = {{"POST", ROUTE_JOB_HOLD}};
    static const struct route_def release[] = {{"POST", ROUTE_JOB_RELEASE}};
    static const struct route_def jallocs[] = {{"GET", ROUTE_JOB_ALLOCS}};
    static const struct route_def admin[][1] = {{{"POST", ROUTE_JOB_SIGNAL}},
                                                {{"POST", ROUTE_JOB_RERUN}},
                                                {{"POST", ROUTE_JOB_MOVE}},
                                                {{"POST", ROUTE_JOB_ALTER}}};
    static const char *const admin_words[] = {"signal", "rerun", "move",
                                              "alter"};
    int admin_i = -1;
    static const struct route_def jtasks[] = {{"GET", ROUTE_JOB_TASKS_GET},
                                              {"POST", ROUTE_JOB_TASKS_CREATE}};
    char buf[512];
    char *s[ROUTE_MAX_SEGS];
    int n;
    long long id;

    memset(m, 0, sizeof(*m));
    n = split_path(path, buf, sizeof(buf), s, ROUTE_MAX_SEGS);
    if (n < 2 || strcmp(s[0], "v1") != 0) {
        return not_found(path, err);
    }
    if (strcmp(s[1], "status") == 0 && n == 2) {
        return pick(method, status, 1, m, path, err);
    }
    if (strcmp(s[1], "server") == 0 && n == 2) {
        return pick(method, server, 3, m, path, err);
    }
    if (strcmp(s[1], "jobs") == 0) {
        if (n == 2) {
            return pick(method, jobs, 2, m, path, err);
        }
        for (int i = 0; n == 4 && i < 4; i++) {
            if (strcmp(s[3], admin_words[i]) == 0) {
                admin_i = i;
            }
        }
        if (n > 4 || (n == 4 && admin_i < 0 && strcmp(s[3], "hold") != 0 &&
                      strcmp(s[3], "release") != 0 &&
                      strcmp(s[3], "allocations") != 0 &&
                      strcmp(s[3], "tasks") != 0)) {
            return not_found(path, err);
        }
        if (dv_job_id_parse(s[2], &id) < 0) {
            dv_err_set(err, DV_EINVAL, "invalid_request",
                       "illegally formed job identifier: %.128s", s[2]);
            return -1;
        }
        m->num = (int64_t)id;
        if (n == 3) {
            return pick(method, job, 2, m, path, err);
        }
        if (admin_i >= 0) {
            return pick(method, admin[admin_i], 1, m, path, err);
        }
        if (strcmp(s[3], "hold") == 0) {
            return pick(method, hold, 1, m, path, err);
        }
        if (strcmp(s[3], "allocations") == 0) {
            return pick(method, jallocs, 1, m, path, err);
        }
        if (strcmp(s[3], "tasks") == 0) {
            return pick(method, jtasks, 2, m, path, err);
        }
        return pick(method, release, 1, m, path, err);
    }
    if (strcmp(s[1], "nodes") == 0) {
        return nodes_route(method, path, s, n, m, err);
    }
    if (strcmp(s[1], "resources") == 0) {
        return resources_route(method, path, s, n, m, err);
    }
    if (strcmp(s[1], "queues") == 0) {
        return queues_route(method, path, s, n, m, err);
    }
    return not_found(path, err);
}
