/* Unit tests of the node object (qmgr/api-nodes.c, api_node_json): rows as
 * db-nodes.c and db-node-admin.c read them (DB_NODE_COLUMNS), compared with
 * golden JSON. The rows are made without a server (PQmakeEmptyPGresult). */
#include <stdlib.h>
#include <string.h>

#include "qmgr/qmgr.h"
#include "tests/unit/unit.h"

static const char *const columns[] = {
    "id",           "name",          "status",
    "eligible",     "drain",         "comment",
    "datacenter",   "pool",          "address",
    "total_cores",  "free_cores",    "total_mem",
    "free_mem",     "total_gpus",    "free_gpus",
    "free_cpuset",  "heartbeat_ttl", "heartbeat_deadline",
    "modify_index", "node_class",    "meta",
};
#define NCOLUMNS ((int)(sizeof(columns) / sizeof(columns[0])))

/* One row of DB_NODE_COLUMNS; values in the order of columns, NULL for
 * SQL NULL. */
static PGresult *
node_row(const char *const values[NCOLUMNS])
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[NCOLUMNS];

    memset(att, 0, sizeof(att));
    for (int i = 0; i < NCOLUMNS; i++) {
        att[i].name = (char *)columns[i];
        att[i].format = 0;
    }
    CHECK(PQsetResultAttrs(res, NCOLUMNS, att) != 0);
    for (int i = 0; i < NCOLUMNS; i++) {
        CHECK(PQsetvalue(res, 0, i, (char *)values[i],
                         values[i] != NULL ? (int)strlen(values[i]) : -1) != 0);
    }
    return res;
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
test_node_json(void)
{
    static const char *const drained[NCOLUMNS] = {
        "5",         "node1",       "ready",       "t",        "t",
        "disk swap", "dc1",         "default",     "10.0.0.5", "8",
        "6",         "34359738368", "32212254720", "2",        "1",
        "2-7",       "10",          "1700000010",  "1239",     "gpu-a",
        "{\"rack\": \"r7\"}",
    };
    static const char *const fresh[NCOLUMNS] = {
        "6", "node2", "down", "f", "f", NULL,  "dc2", "gpu", NULL, "4",
        "4", "1024",  "1024", "0", "0", "0-3", "3.5", "0",   "7",
        NULL, "{}",
    };
    PGresult *res = node_row(drained);
    json_t *jobs = json_pack("[s, s]", "12.srv", "13.srv");
    json_t *o = api_node_json(res, 0, jobs, 3);

    check_json_equal(
        o, "{\"id\": 5, \"name\": \"node1\", \"status\": \"ready\", "
           "\"eligible\": true, \"drain\": true, \"comment\": \"disk swap\", "
           "\"datacenter\": \"dc1\", \"pool\": \"default\", \"address\": "
           "\"10.0.0.5\", \"total_cores\": 8, \"free_cores\": 6, "
           "\"total_mem\": 34359738368, \"free_mem\": 32212254720, "
           "\"total_gpus\": 2, \"free_gpus\": 1, \"free_cpuset\": \"2-7\", "
           "\"jobs\": [\"12.srv\", \"13.srv\"], \"allocation_count\": 3, "
           "\"heartbeat_ttl\": 10.0, \"heartbeat_deadline\": 1700000010, "
           "\"modify_index\": 1239, \"node_class\": \"gpu-a\", "
           "\"meta\": {\"rack\": \"r7\"}}");
    json_decref(o);
    PQclear(res);

    res = node_row(fresh);
    o = api_node_json(res, 0, json_array(), 0);
    check_json_equal(
        o, "{\"id\": 6, \"name\": \"node2\", \"status\": \"down\", "
           "\"eligible\": false, \"drain\": false, \"comment\": null, "
           "\"datacenter\": \"dc2\", \"pool\": \"gpu\", \"address\": null, "
           "\"total_cores\": 4, \"free_cores\": 4, \"total_mem\": 1024, "
           "\"free_mem\": 1024, \"total_gpus\": 0, \"free_gpus\": 0, "
           "\"free_cpuset\": \"0-3\", \"jobs\": [], \"allocation_count\": 0, "
           "\"heartbeat_ttl\": 3.5, \"heartbeat_deadline\": 0, "
           "\"modify_index\": 7, \"node_class\": null, \"meta\": {}}");
    json_decref(o);
    PQclear(res);
}

int
main(void)
{
    RUN(test_node_json);
    return unit_done();
}
