/*
 * drover-qmgr internals, grouped by file. One libev loop on the main thread
 * owns the HTTP servers, the LISTEN connection and the timers; database work
 * runs on a pool of worker threads, each with its own connection, and comes
 * back to the loop through an ev_async. docs/internals/qmgr.md has the
 * picture (threads, request flow, blocking queries, liveness, lock order).
 */
#ifndef QMGR_H
#define QMGR_H

#include <ev.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/db.h"
#include "lib/err.h"
#include "lib/http-server.h"
#include "lib/job.h"
#include "lib/mem.h"
#include "lib/queue.h"

/* Longest wait of a blocking query, and the default when only index is
 * given (seconds). */
#define QMGR_MAX_WAIT 300.0
/* Re-check of every parked blocking query (real seconds): notifications
 * are hints. */
#define QMGR_LONGPOLL_FALLBACK 5.0
/* Client-side bound on one statement, commits included (seconds). */
#define QMGR_DB_TIMEOUT 30.0
/* Attempts of one transaction for an API request (dv_db_tx). */
#define QMGR_TX_ATTEMPTS 4
/* Most waiting jobs queued by one execution-time pass. */
#define QMGR_WAITING_BATCH 1000
/* Advisory lock key of the node-liveness duty ("drvl"). */
#define QMGR_LIVENESS_LOCK 1685222764LL
/* Most status updates in one batch, most nodes marked down per pass. */
#define QMGR_MAX_UPDATES 1000
#define QMGR_LIVENESS_BATCH 500
/* Longest payload we NOTIFY; a longer id list is sent empty ("recheck
 * everything"), as PostgreSQL refuses payloads of 8000 bytes. */
#define QMGR_NOTIFY_MAX 7000

/* ------------------------------------------------------------------ */
/* main.c */

struct qmgr_config {
    char *listen;
    char *socket;
    char *database;
    char *server_name;
    int64_t workers;
    double node_ttl;
    double liveness_interval;
    char *tls_cert;
    char *tls_key;
    char *tls_client_ca;
    int64_t max_body;
    char *log_level;
    char *log_file;
    int64_t node_uid;           /* besides root, may call node routes on the
                                   Unix socket; -1: nobody else */
    int64_t max_heartbeat_rate; /* heartbeats/s the TTL is scaled for; 0:
                                   no scaling */
    char *sendmail;  /* job mail through this program; NULL: logged */
    char *mail_from; /* the sender of job mail */
};

/* ------------------------------------------------------------------ */
/* pool.c: worker threads, each with its own database connection. */

struct pool_work;
/* Runs on a worker thread with that worker's connection. */
typedef void (*pool_run_fn)(struct pool_work *w, struct dv_db *db);
/* Runs on the loop thread once run has returned (or was skipped because
 * the work was cancelled or the pool is stopping). */
typedef void (*pool_done_fn)(struct pool_work *w);

/* Embed in the object that owns the work; the pool borrows it from
 * pool_submit until done is called. */
struct pool_work {
    pool_run_fn run;
    pool_done_fn done;
    struct pool_work *next;
    int cancelled; /* atomic: skip run (the client left) */
    int skipped;   /* set by the pool when run did not run */
};

struct pool;

/* Starts n workers connecting to conninfo (borrowed; copied). Returns a
 * new pool (caller frees with pool_free). */
struct pool *pool_new(struct ev_loop *loop, const char *conninfo, int n);
/* Queues w; its done callback will run on the loop thread. */
void pool_submit(struct pool *p, struct pool_work *w);
/* Marks w so that a worker that has not started it skips it. Thread-safe. */
void pool_cancel(struct pool_work *w);
/* Number of works queued or running or waiting for their done callback. */
int pool_outstanding(const struct pool *p);
/* Stops the workers once they finish what they run (queued work is
 * skipped), joins them, runs every pending done callback, closes the
 * connections and frees p. pool_free(NULL) does nothing. */
void pool_free(struct pool *p);

/* ------------------------------------------------------------------ */
/* server.c: the process context, requests and routing. */

enum qreq_state {
    QREQ_LOOP,    /* on the loop thread: being decoded or answered */
    QREQ_POOL,    /* handed to the pool: queued, running, or its result
                     not yet picked up */
    QREQ_WAITING, /* a blocking query parked in the long-poll table */
};

enum lp_kind {
    LP_NONE = 0,
    LP_NODE_ALLOCS, /* key: node id; index: max allocation modify_index */
    LP_JOB,         /* key: job id; index: the job's modify_index */
};

struct qmgr;

/*
 * One HTTP request: owns what is decoded for it (ctx) and its answer.
 * Freed on the loop thread, exactly once: after the answer, or when the
 * client left and no worker holds it.
 */
struct qreq {
    struct pool_work work; /* first: the pool hands it back */
    struct qmgr *q;
    struct dv_http_request *req; /* NULL once the client left */
    enum qreq_state state;
    char method[8];
    char *path;

    /* Who asks (docs/api.md "Identity"). */
    char *user; /* NULL when unknown */
    int root;
    int unix_peer;
    uid_t peer_uid; /* on the Unix socket */
    char *node_cn;  /* node routes over mutual TLS: the certificate's CN,
                       which must be the node's name; NULL: not checked */
    int64_t id;     /* the job or node id of the path */

    /* The work: run on a worker, then done on the loop (NULL: answer). */
    int (*run)(struct qreq *qr, struct dv_db *db);
    void (*done)(struct qreq *qr);
    void *ctx;
    void (*ctx_free)(void *ctx);

    /* The answer. */
    int status;
    char *body;     /* JSON text */
    int64_t index;  /* X-Drover-Index; -1: none */
    char *location; /* Location header or NULL */
    int failed;     /* err holds the answer */
    struct dv_err err;

    /* Blocking queries (longpoll.c). */
    enum lp_kind lp_kind;
    int64_t lp_key;
    int64_t lp_min_index; /* answer once the index is past it; -1: now */
    int lp_moved;         /* the last run found the index past it */
    int lp_renotified;    /* a hint arrived while a run was in flight */
    int lp_expired;       /* the wait is over: answer with what there is */
    ev_tstamp lp_deadline;
    ev_timer lp_timer;
    struct qreq *lp_next; /* bucket chain */
    struct qreq *lp_prev;
    struct qreq *lp_all_next; /* every waiter, for the fallback pass */
    struct qreq *lp_all_prev;
    struct qreq *lp_batch_next; /* node waiters: the pending queue or the
                                   batch that checks them */
    struct qreq *lp_batch_prev; /* the pending queue only */
    int lp_queued;              /* in the pending queue */
};

struct longpoll;
struct liveness;
struct site;

struct qmgr {
    struct ev_loop *loop;
    struct qmgr_config *cfg; /* loop thread only; rebuilt by SIGHUP */
    int argc;
    char **argv;
    const char *config_path;

    /* Copies for other threads (never changed after start). */
    char *conninfo;
    double node_ttl;
    double max_heartbeat_rate;
    int ready_nodes;       /* atomic: counted by each liveness pass */
    char *fallback_server; /* --server-name or the short host name */

    struct dv_http_server *tcp;
    struct dv_http_server *unix_srv;
    struct pool *pool;
    struct longpoll *lp;
    struct liveness *live;
    struct site *site;
    char *sendmail;  /* copies for the workers (NULL: mail is logged) */
    char *mail_from;

    /* The cluster's name, read once from the database by whichever thread
     * needs it first. */
    pthread_mutex_t server_lock;
    int server_known; /* atomic */
    char server[256];

    int nreqs; /* live struct qreq */
    int stopping;
    ev_signal sig_term;
    ev_signal sig_int;
    ev_signal sig_hup;
    ev_timer drain_timer;
    ev_tstamp drain_deadline;
};

/* Sets up q (loop, config, copies); starts nothing. */
void server_init(struct qmgr *q, struct ev_loop *loop, struct qmgr_config *cfg);
/* Starts the pool, the listeners, long polls and liveness. Returns 0 or -1
 * with err set (address in use, bad certificate...). */
int server_start(struct qmgr *q, struct dv_err *err);
/* Begins a graceful stop: no new connections; the loop ends once in-flight
 * work is answered (or after a grace period). */
void server_shutdown(struct qmgr *q);
/* Frees everything server_start made (after the loop ended). */
void server_cleanup(struct qmgr *q);
/* The cluster's name; reads it with db the first time. Returns 0 or -1. */
int server_name_ensure(struct qmgr *q, struct dv_db *db, struct dv_err *err);
/* The cluster's name once known, else the fallback (borrowed). */
const char *server_name(struct qmgr *q);

/* Hands qr to the pool; its run callback runs on a worker. */
void qreq_submit(struct qreq *qr);
/* Answers qr (or drops it when the client left) and frees it. */
void qreq_finish(struct qreq *qr);
/* Answers qr with an error at once and frees it. */
void qreq_fail(struct qreq *qr, enum dv_err_kind kind, const char *code,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sets qr's answer: status and body (takes ownership of body, encodes it
 * compactly). */
void qreq_set_json(struct qreq *qr, int status, json_t *body);
/* Parses qr's body as a JSON value; NULL (and qr answered with 400
 * invalid_json) when it is not. An empty body gives NULL without an answer
 * when allow_empty is set (*empty set to 1). */
json_t *qreq_body_json(struct qreq *qr, int allow_empty, int *empty);

/* route.c: pure path matching (unit-tested). */
enum route_id {
    ROUTE_STATUS,
    ROUTE_JOBS_LIST,
    ROUTE_JOBS_SUBMIT,
    ROUTE_JOB_GET,
    ROUTE_JOB_DELETE,
    ROUTE_JOB_HOLD,
    ROUTE_JOB_RELEASE,
    ROUTE_JOB_ALLOCS,
    ROUTE_JOB_SIGNAL,
    ROUTE_JOB_RERUN,
    ROUTE_JOB_MOVE,
    ROUTE_JOB_ALTER,
    ROUTE_JOB_TASKS_CREATE,
    ROUTE_JOB_TASKS_GET,
    ROUTE_NODE_TASK_STATUS,
    ROUTE_NODES_LIST,
    ROUTE_NODE_REGISTER,
    ROUTE_NODE_HEARTBEAT,
    ROUTE_NODE_ALLOCS,
    ROUTE_NODE_ALLOC_STATUS,
    ROUTE_NODE_GET,
    ROUTE_NODE_ELIGIBILITY,
    ROUTE_NODE_DRAIN,
    ROUTE_RESOURCES_LIST,
    ROUTE_RESOURCES_CREATE,
    ROUTE_RESOURCE_DELETE,
    ROUTE_QUEUES_LIST,
    ROUTE_QUEUES_CREATE,
    ROUTE_QUEUE_GET,
    ROUTE_QUEUE_CHANGE,
    ROUTE_QUEUE_DELETE,
    ROUTE_SERVER_GET,
    ROUTE_SERVER_CHANGE,
};

struct route_match {
    enum route_id id;
    int64_t num;    /* the job or node id of the path; 0: a node name */
    char name[256]; /* the node or queue name of the path ("" when by id) */
    char allow[32]; /* 405: the methods the path takes ("GET, POST") */
};

/* Matches method and path. Returns 0, or -1 with err set: 404 not_found
 * (no such path), 405 method_not_allowed (m->allow filled), 400
 * invalid_request (a malformed id). HEAD matches as GET. A node of
 * /v1/nodes/:id, .../eligibility and .../drain is an id (digits) or a name
 * (m->name); the routes of node daemons take ids only. */
int route_find(const char *method, const char *path, struct route_match *m,
               struct dv_err *err);

/* ------------------------------------------------------------------ */
/* format.c: pure helpers (unit-tested). */

/* One allocation of a job, for exec_vnode and PBS_NODEFILE. */
struct vnode_part {
    const char *host;
    int ncpus;
    int64_t mem;
    int ngpus;
};

/* "(node1:ncpus=2:mem=1048576kb)+(node2:ncpus=1)"; appends to out. */
void fmt_exec_vnode(const struct vnode_part *parts, int n, struct dv_buf *out);
/* The comment of a job that ended: the scheduler's "Job run at ... on ..."
 * followed by " and <how>"; without one, "Job run at <stime> and <how>"
 * (or "Job <how>" when it never started). Returns a new string. */
char *fmt_end_comment(const char *run_comment, double stime, const char *how);
/* The PBS-style end words for a chunk-0 exit: "terminated" (deleted),
 * "exceeded resource walltime" (message says so), "finished" (complete)
 * or "failed". */
const char *fmt_end_how(const char *client_status, const char *message,
                        int deleted);
/* Hold type letters "uos": parses into a mask (bit 0 u, 1 o, 2 s); "" or
 * other letters are errors. Returns 0 or -1. */
int hold_types_parse(const char *s, unsigned *mask);
/* Formats a mask as letters in the order u o s; buf of 4 bytes. */
void hold_types_format(unsigned mask, char buf[4]);
/* Job states by bit (1 << enum dv_job_state). Parses "queued,held" (names,
 * or PBS letters Q H R E F). Returns 0 or -1. */
int state_list_parse(const char *s, unsigned *mask);
/* "{queued,held}" for a text[] parameter. */
void state_list_array(unsigned mask, char *buf, size_t size);
/* A blocking query's wait: a duration ("30s", "5m", "90"), capped at
 * QMGR_MAX_WAIT. Returns 0 or -1. */
int parse_wait(const char *s, double *out);
/* "1,2,3" from ids; appends to out. */
void fmt_id_list(const int64_t *ids, int n, struct dv_buf *out);
/* "{1,2,3}" for a bigint[] parameter; appends to out. */
void fmt_id_array(const int64_t *ids, int n, struct dv_buf *out);
/* Parses "1,2,3" (empty: none); *ids is new (caller frees). Returns the
 * count, or -1 on garbage. */
int parse_id_list(const char *s, int64_t **ids);
/* True when s is 1-128 printable ASCII characters (Idempotency-Key). */
int idempotency_key_valid(const char *s);
/* 32 hex characters of fresh randomness into out (33 bytes). Returns 0 or
 * -1. */
int random_key(char out[33]);
/* True when user may change a job of owner. */
int may_change_job(const char *owner, const char *user, int root);
/* The stored form of a normalised spec for job id: the queue filled in,
 * stdout/stderr defaulted to <workdir>/<name>.o<id> / .e<id> when workdir
 * is set. Returns a new reference. */
json_t *stored_spec_json(const struct dv_job_spec *s, const char *queue,
                         long long id);
/* Replaces the values of spec's custom resources in a stored spec's
 * "resources" and "resource_list" with canon (spec->custom order; NULL:
 * keep them). */
void stored_spec_custom(json_t *stored, const struct dv_job_spec *spec,
                        char **canon);
/* True when s is a usable node name (1-255 of [A-Za-z0-9._-]). */
int node_name_valid(const char *s);

/* ------------------------------------------------------------------ */
/* decode.c: strict decoding of request bodies into C structs (pure; errors
 * are DV_EINVAL "invalid_request" naming the field, or DV_ETOOLARGE). */

struct alloc_update;
struct db_node_reg;

/* {"updates": [...]} of POST /v1/nodes/:id/allocations/status. On success
 * *u is a new array of *n updates (free with decode_updates_free). */
int decode_alloc_updates(const json_t *body, struct alloc_update **u, int *n,
                         struct dv_err *err);
void decode_updates_free(struct alloc_update *u, int n);
/* The JSON objects of a register body, as new compact texts (NULL when
 * absent). */
struct node_reg_json {
    char *topology;
    char *attributes;
    char *meta; /* operator labels: {"rack": "r1"}, string values only */
};
void node_reg_json_free(struct node_reg_json *t);
/* The body of POST /v1/nodes/register into r. Strings in r are borrowed
 * from body; the objects go into *t (caller frees with node_reg_json_free,
 * also after a failure). */
int decode_node_register(const json_t *body, struct db_node_reg *r,
                         struct node_reg_json *t, struct dv_err *err);
/* The optional body of hold/release ({"hold_types": "uos"}); body may be
 * NULL. Sets *mask (default u). Errors: bad_attribute_value. */
int decode_hold_body(const json_t *body, unsigned *mask, struct dv_err *err);

/* The most bytes of a node's comment. */
#define QMGR_NODE_COMMENT_MAX 1024

/* The body of POST /v1/nodes/:id/eligibility or /drain: {key: bool,
 * "comment": "..." | null} with key "eligible" or "drain" (required).
 * body may be NULL (no body: an error). Sets *value, and *set_comment
 * when "comment" is present: *comment is then borrowed from body, or NULL
 * (null or "": clear it). */
int decode_node_flag(const json_t *body, const char *key, int *value,
                     int *set_comment, const char **comment,
                     struct dv_err *err);

/* ------------------------------------------------------------------ */
/* db.c, db-jobs.c, db-nodes.c: every SQL statement of qmgr, and the
 * transactions around them. */

/* What a transaction wants to NOTIFY at its end (once per channel). */
struct notify_set {
    int64_t *nodes; /* allocs channel */
    int nnodes;
    int capnodes;
    int64_t *jobs; /* jobs channel */
    int njobs;
    int capjobs;
    int evals;
    int capacity;
};

void notify_add_node(struct notify_set *n, int64_t id);
void notify_add_job(struct notify_set *n, int64_t id);
void notify_reset(struct notify_set *n);
void notify_cleanup(struct notify_set *n);

/* Jobs read for an answer: rows of JOB_COLUMNS (with "spec" when full)
 * and their current allocations for exec_vnode (job_id, host, ncpus, mem,
 * ngpus; ordered by job_id, chunk_index). */
struct db_jobs {
    PGresult *jobs;
    PGresult *vnodes;
    int64_t next_after; /* lists: the next page's after; -1 on the last */
    /* Array jobs among jobs (arrays.c, array_load): their array rows, and
     * their subjob rows as asked by subjobs_want (kept by db_jobs_clear):
     * DB_SUBJOBS_NONE, _ALL, or _ONE (subjob_index only). */
    PGresult *arrays;
    PGresult *subjobs;
    int subjobs_want;
    int subjob_index;
};

#define DB_SUBJOBS_NONE 0
#define DB_SUBJOBS_ALL 1
#define DB_SUBJOBS_ONE 2

void db_jobs_clear(struct db_jobs *r);

struct db_submit {
    struct dv_job_spec *spec; /* normalised, owner set; the queue's
                                 resource defaults are added to it */
    const char *key;                /* idempotency key (never NULL) */
    double now;
    struct db_jobs out;
    int replay; /* 1: the key named a job submitted before */
    char *queue_used;
    double waiting_until; /* the job waits (W) until then; 0: it does not */
};

/* Stores a new job (and its evaluation when not held) or finds the one
 * submitted before with the same key. Errors: unknown_queue,
 * no_default_queue, queue_disabled, queue_denied (ACL), over_limits
 * (resources_max/min), the normaliser's, database ones. */
int db_job_submit(struct dv_db *db, struct db_submit *s, struct dv_err *err);

struct db_job_list {
    unsigned states;
    const char *owner;
    const char *queue;
    int64_t after;
    int limit;
    int full;
};

int db_job_list(struct dv_db *db, const struct db_job_list *f,
                struct db_jobs *out, struct dv_err *err);

/* Reads one job with its spec. *moved is 1 when its modify_index is past
 * min_index (always when min_index < 0); the rows are read only then.
 * 404 job_not_found with the PBS message when there is no such job. */
int db_job_get(struct dv_db *db, const char *server, int64_t id,
               int64_t min_index, struct db_jobs *out, int *moved,
               int64_t *index, struct dv_err *err);

enum job_op {
    JOB_OP_DELETE,
    JOB_OP_HOLD,
    JOB_OP_RELEASE,
};

struct db_job_change {
    enum job_op op;
    int64_t id;
    const char *user;
    int root;
    unsigned hold_mask;
    int array_part; /* enum dv_array_part: qdel of subjobs array_lo..hi */
    int array_lo;
    int array_hi;
    double now;
    const char *server;
    /* out */
    struct db_jobs out;
    char old_state[16];
    char new_state[16];
    double waiting_until; /* qrls made it waiting (W) until then */
};

/* qdel, qhold, qrls as docs/api.md says (qdel of a native job stops it).
 * A qdel whose commit lost its answer is looked up, not rerun. */
int db_job_change(struct dv_db *db, struct db_job_change *c,
                  struct dv_err *err);

/* db-job-admin.c: qsig, qrerun, qmove, qalter. */
enum job_admin_op {
    JOB_ADMIN_SIGNAL,
    JOB_ADMIN_RERUN,
    JOB_ADMIN_MOVE,
    JOB_ADMIN_ALTER,
};

/* What qalter changes (NULL / has_ 0: unchanged); borrowed strings. */
struct job_alter {
    struct dv_kv *resources; /* name -> PBS text, merged into the job's */
    int nresources;
    const char *name;
    const char *stdout_path;
    const char *stderr_path;
    const char *join;
    const char *depend; /* "" clears */
    int has_priority;
    int priority;
    int has_rerunnable;
    int rerunnable;
    unsigned hold_mask; /* holds to add (qalter -h), 0: none */
};

struct db_job_admin {
    enum job_admin_op op;
    int64_t id;
    const char *user;
    int root;
    double now;
    const char *server;
    const char *signal; /* SIGNAL: a signal number, "suspend" or "resume" */
    const char *queue;  /* MOVE: the destination */
    struct job_alter alter;
    /* out */
    struct db_jobs out;
    char what[160]; /* for the log: what changed, "" when nothing did */
};

/* Applies a to its job in one transaction. Errors carry PBS's texts:
 * bad_state, job_finished, not_rerunnable, modify_running, unknown_queue,
 * queue_disabled, forbidden (qrerun is root's), and qsub's resource
 * errors for qalter. */
int db_job_admin(struct dv_db *db, struct db_job_admin *a, struct dv_err *err);
void db_job_admin_clear(struct db_job_admin *a);

/* GET /v1/jobs/:id/allocations: one page, newest first. */
struct db_job_allocs {
    const char *server;
    int64_t id;
    int64_t after; /* cursor: allocations older than this id; 0: newest */
    int limit;
    /* out */
    PGresult *allocs;   /* up to limit + 1 rows (the extra one is not shown) */
    int64_t next_after; /* the next page's after; -1 on the last page */
};

void db_job_allocs_clear(struct db_job_allocs *a);
/* 404 job_not_found when there is no such job. */
int db_job_allocs(struct dv_db *db, struct db_job_allocs *a,
                  struct dv_err *err);

struct db_node_reg {
    const char *name;
    const char *datacenter;
    const char *pool;
    const char *address;
    const char *node_class; /* NULL: none */
    int64_t cores;
    int64_t memory;
    int64_t gpus;
    int64_t disk;           /* bytes for allocations' ephemeral disk */
    const char *topology;   /* JSON text */
    const char *attributes; /* JSON text */
    const char *meta;       /* JSON text */
    double ttl;
    double now;
    /* out */
    int64_t node_id;
    int created;
    int system_evals; /* evaluations made for system jobs */
    char old_status[16];
};

/* Upserts the node by name, recomputes its free capacity from its active
 * allocations, and makes an evaluation for every queued or running system
 * job so that they reach the node. */
int db_node_register(struct dv_db *db, struct db_node_reg *r,
                     struct dv_err *err);
/* Pushes the deadline of a ready node. 404 node_not_found when there is no
 * such node or it is down (a down node registers again); 403 forbidden
 * when cn is not NULL and is not the node's name. */
int db_node_heartbeat(struct dv_db *db, int64_t id, const char *cn, double ttl,
                      double now, struct dv_err *err);

/* One node long poll of a batch (longpoll.c). */
struct db_node_poll {
    int64_t node_id;
    int64_t since; /* the client's index; 0: the full list */
    int force;     /* answer even when nothing moved (the wait is over) */
    /* out */
    int found;     /* the node exists */
    char *name;    /* its name (owned) */
    int64_t index; /* highest alloc_modify_index of its allocations */
    int answer;    /* answer now: moved, forced, or the client is ahead */
    int full;      /* the answer lists every active allocation */
    int first_row; /* its rows in allocs */
    int nrows;
};

/* Many node long polls read in one transaction: one statement for the
 * indexes, one for the allocations of the polls to answer, one for the
 * specs of the jobs they may start, one for PBS_NODEFILE hosts. */
struct db_node_polls {
    struct db_node_poll *p;
    int n;
    /* out */
    PGresult *allocs;  /* ord, the allocation, queue, native, walltime;
                          ordered by ord, id */
    PGresult *jobs;    /* id, spec (text); ordered by id */
    PGresult *hosts;   /* job_id, host, ncpus; ordered by job_id, chunk */
    int64_t *job_ids;  /* jobs' ids, for bsearch */
    int64_t *host_ids; /* hosts' job ids, for bsearch */
    PGresult *tasks;   /* pending pbsdsh tasks: alloc_id, task (JSON text);
                          ordered by alloc_id, id */
    int64_t *task_allocs; /* tasks' allocation ids, for bsearch */
};

void db_node_polls_clear(struct db_node_polls *b);
int db_node_polls(struct dv_db *db, struct db_node_polls *b,
                  struct dv_err *err);

struct alloc_update {
    int64_t id;
    char status[12]; /* running complete failed lost */
    double time;     /* 0: now */
    int has_exit;
    int exit_status;
    char *message;
    int has_used;
    int64_t used_cput;
    int64_t used_walltime;
    int64_t used_mem;
    int bad;             /* could not be decoded: error says why */
    struct dv_err error; /* bad ones */
};

/* An update of a batch that was not applied (answered in "errors"). */
struct update_error {
    int pos;    /* in the batch */
    int64_t id; /* -1 when unknown */
    const char *code;
    char message[256];
};

/* A job state change made by a transaction, for the notice log. */
struct job_event {
    int64_t job_id;
    char state[16];
    int has_exit;
    int exit_status;
};

struct db_alloc_status {
    int64_t node_id;
    const char *cn; /* the node's name must be this; NULL: not checked */
    const struct alloc_update *u;
    int n;
    double now;
    /* out */
    int64_t index;
    int applied;
    struct job_event *events;
    int nevents;
    struct update_error *errors; /* updates skipped (bad, or failing) */
    int nerrors;
};

void db_alloc_status_clear(struct db_alloc_status *s);
/* Applies a node's status batch in one transaction: all at once, or, when
 * that fails with a database error, each update in its own savepoint so
 * that one bad update cannot block the rest (it is reported in errors).
 * 404 node_not_found, 403 forbidden (cn). */
int db_alloc_status(struct dv_db *db, struct db_alloc_status *s,
                    struct dv_err *err);

/* Nodes (DB_NODE_COLUMNS) with the jobs on them and how many active
 * allocations each job has there (GET /v1/nodes). */
int db_node_list(struct dv_db *db, PGresult **nodes, PGresult **jobs,
                 struct dv_err *err);
/* db-node-admin.c: one node as operators see it, and their changes. A
 * node is named by id (id > 0) or by name (id 0). */

struct db_node_view {
    PGresult *node;   /* one row of DB_NODE_COLUMNS */
    PGresult *allocs; /* its active allocations: id, job_id, array_index
                         (-1: no subjob), ncpus, mem, ngpus, client_status,
                         desired_status; id order */
};

void db_node_view_clear(struct db_node_view *v);
/* Reads one node and its active allocations. 404 node_not_found. */
int db_node_get(struct dv_db *db, int64_t id, const char *name,
                struct db_node_view *out, struct dv_err *err);

enum node_flag {
    NODE_FLAG_ELIGIBLE, /* nodes.eligible */
    NODE_FLAG_DRAIN,    /* nodes.drain */
};

struct db_node_set {
    int64_t id;       /* or 0 and name */
    const char *name; /* borrowed */
    enum node_flag flag;
    int value;
    int set_comment;     /* change the comment */
    const char *comment; /* NULL: clear it */
    double now;
    /* out */
    struct db_node_view view; /* the node after the change */
    int64_t node_id;
    char node_name[256];
    int old_value;
    int usable_again; /* was not eligible or drained, now both fine */
    int system_evals; /* evaluations made for system jobs */
};

/* Sets a node's eligible or drain flag (and comment) under its row lock
 * (FOR UPDATE), stamping modify_index. A node that becomes usable again
 * (eligible and not drained; the trigger moves capacity_index and
 * shape_index) gets an evaluation for every queued or running system job,
 * and the transaction NOTIFYs capacity (and evals). 404 node_not_found.
 * Clear s->view with db_node_view_clear. */
int db_node_set(struct dv_db *db, struct db_node_set *s, struct dv_err *err);

/* Counts for GET /v1/status: one row, columns named like the answer. */
int db_status(struct dv_db *db, PGresult **res, struct dv_err *err);

struct down_node {
    int64_t id;
    char *name;
    int lost;
};

struct db_liveness {
    double now;
    int grace; /* push deadlines out by one TTL instead of marking down */
    /* out */
    int extended;
    int got_lock;
    int ready_nodes; /* nodes ready now (every pass, lock or not) */
    struct down_node *down;
    int ndown;
    struct job_event *events;
    int nevents;
};

void db_liveness_clear(struct db_liveness *l);
/* One pass of the liveness duty (under the advisory lock). */
int db_liveness(struct dv_db *db, struct db_liveness *l, struct dv_err *err);

/* Current indexes of many blocking-query keys (the fallback pass). Fills
 * node_idx[i] for node_ids[i] and job_idx[i] for job_ids[i] (-1 when the
 * job is gone). */
int db_indexes(struct dv_db *db, const int64_t *node_ids, int nn,
               int64_t *node_idx, const int64_t *job_ids, int nj,
               int64_t *job_idx, struct dv_err *err);
/* The cluster's name (*name new, caller frees; NULL when no row). */
int db_cluster_name(struct dv_db *db, char **name, struct dv_err *err);
/* Inserts the cluster row when there is none (migrate). */
int db_cluster_init(struct dv_db *db, const char *name, struct dv_err *err);

/* db.c: pieces shared by db-jobs.c and db-nodes.c. */

/* Columns of a job as the API shows it (rendered by api_job_json). */
#define DB_JOB_COLUMNS                                                         \
    "j.id, j.name, j.owner, j.queue, j.type, j.priority, j.state, "            \
    "j.hold_types, j.rerunnable, j.exit_status, j.exec_host, j.comment, "      \
    "floor(extract(epoch FROM j.submit_time))::bigint AS ctime, "              \
    "floor(extract(epoch FROM j.queue_time))::bigint AS qtime, "               \
    "floor(extract(epoch FROM j.start_time))::bigint AS stime, "               \
    "floor(extract(epoch FROM greatest(j.submit_time, j.queue_time, "          \
    "j.start_time, j.end_time, j.alter_time)))::bigint AS mtime, "             \
    "floor(extract(epoch FROM j.end_time))::bigint AS end_time, "              \
    "floor(extract(epoch FROM j.estimated_start_time))::bigint AS est_start, " \
    "j.run_count, j.used_cput, j.used_walltime, j.used_mem, "                  \
    "j.modify_index, j.spec->'resource_list' AS resource_list"

/* Columns of a node as the API shows it (rendered by api_node_json). */
#define DB_NODE_COLUMNS                                                        \
    "n.id, n.name, n.status, n.eligible, n.drain, n.comment, n.datacenter, "   \
    "n.pool, n.address, n.total_cores, n.free_cores, n.total_mem, "            \
    "n.free_mem, n.total_gpus, n.free_gpus, n.free_cpuset, n.heartbeat_ttl, "  \
    "floor(extract(epoch FROM n.heartbeat_deadline))::bigint "                 \
    "AS heartbeat_deadline, n.modify_index, n.node_class, n.meta"

/* The allocation states that hold resources. */
#define DB_ACTIVE "('pending', 'running')"

enum end_kind {
    END_EXIT, /* complete or failed: the job's script ended */
    END_LOST, /* the allocation was lost (node down, daemon lost it) */
};

struct job_end {
    int64_t job_id;
    int64_t alloc_id;
    enum end_kind kind;
    const char *client_status;
    const char *message;
    int has_exit;
    int exit_status;
    int has_used;
    int64_t used_cput;
    int64_t used_walltime;
    int64_t used_mem;
    double when;
    double now;
    const char *lost_how; /* comment words for a lost job that ends */
};

int db_notify_send(struct dv_db *db, const struct notify_set *n,
                   struct dv_err *err);
void db_job_not_found(const char *server, int64_t id, struct dv_err *err);
void db_node_not_found(int64_t id, struct dv_err *err);
/* The caller of a node request is node id: name is the node's (NULL: no
 * such node, 404 node_not_found) and must be cn, the client certificate's
 * name, when there is one (403 forbidden). Returns 0 or -1. */
int db_node_identity(int64_t id, const char *name, const char *cn,
                     struct dv_err *err);
void db_add_event(struct job_event **ev, int *n, int64_t job_id,
                  const char *state, int has_exit, int exit_status);
/* Reads the vnodes of r->jobs' rows that ran (exec_vnode). */
int db_load_vnodes(struct dv_db *db, struct db_jobs *r, struct dv_err *err);
/* Reads one job (with its spec when full). Returns 1, 0 (no such job) or
 * -1. */
int db_load_job(struct dv_db *db, int64_t id, int full, struct db_jobs *r,
                struct dv_err *err);
int db_cancel_evals(struct dv_db *db, int64_t id, const char *why,
                    struct dv_err *err);
int db_insert_eval(struct dv_db *db, int64_t job_id, const char *why,
                   int priority, double now, struct dv_err *err);
/* An evaluation for every queued or running system job (a node joined,
 * came back or became usable again). Returns how many, or -1. */
int db_system_evals(struct dv_db *db, double now, struct dv_err *err);
/* Asks a job's active allocations but skip to stop; returns how many. */
int db_stop_allocs(struct dv_db *db, int64_t job_id, int64_t skip,
                   const char *why, struct notify_set *ns, struct dv_err *err);
/* The same for the allocations of one subjob (array_index -1: all). */
int db_stop_subjob_allocs(struct dv_db *db, int64_t job_id, int array_index,
                          int64_t skip, const char *why, struct notify_set *ns,
                          struct dv_err *err);
int db_count_active(struct dv_db *db, int64_t job_id, struct dv_err *err);
/* Ends, requeues or leaves alone the (locked) job of an allocation that
 * became terminal; desired is the allocation's desired_status. */
int db_job_end(struct dv_db *db, const struct job_end *e, const char *desired,
               struct notify_set *ns, struct job_event **ev, int *nev,
               struct dv_err *err);
/* What an allocation's end says of its job (or subjob) that ran since
 * stime: the Exit_status (-20 when lost), the walltime used and PBS's end
 * words for the comment (static). */
void db_end_outcome(const struct job_end *e, int exiting, double stime,
                    int *exit_status, int64_t *walltime, const char **how);
/* The indexes of set below cores (a new string), NULL with err set. */
char *db_clip_cpuset(const char *set, int64_t cores, struct dv_err *err);

/* db-depend.c: a new job's -W depend list, in its submission transaction
 * (its row inserted, not held by the user's -h alone). Locks the targets;
 * unknown ones are job_not_found, array syntax and bad before types
 * bad_depend, another owner's before target forbidden. Returns 1 when the
 * job must not get an evaluation (it waits, held with hold type 's', or was
 * deleted at once because a dependency on a finished job can never be
 * met), 0 when nothing is left to wait for, or -1. */
int db_depend_submit(struct dv_db *db, int64_t id,
                     const struct dv_job_spec *spec, double now,
                     struct notify_set *ns, struct dv_err *err);

/* ------------------------------------------------------------------ */
/* lifecycle.c: what happens to a job when one of its allocations reaches
 * a terminal state (docs/jobspec.md, "Life of a native job"). */

/* The allocation e->alloc_id of job e->job_id has just become terminal
 * (complete, failed or lost) in the caller's transaction, which holds its
 * node row and its job row locked (lock order: nodes, jobs, allocations).
 * PBS jobs: chunk 0 ending finishes the job with its exit status and stops
 * the other chunks; chunk 0 lost, or any chunk lost with its node (down),
 * requeues a rerunnable job (db_job_end).
 * Native jobs: a failed or lost allocation is rescheduled when the group's
 * policy allows (an 'alloc-failed' or 'alloc-lost' evaluation with
 * wait_until); a batch job finishes when nothing runs and nothing is left
 * to place; an exiting (stopped) job finishes when its last allocation
 * ends. Job state changes are appended to *ev. Returns 0 or -1. */
int lifecycle_alloc_ended(struct dv_db *db, const struct job_end *e,
                          struct notify_set *ns, struct job_event **ev,
                          int *nev, struct dv_err *err);

/* A custom resource name: a letter, then up to 63 of A-Z a-z 0-9 _ . -
 * (format.c). */
int resource_name_valid(const char *s);

/* ------------------------------------------------------------------ */
/* db-site.c: custom resources, execution times, mail (docs/internals/
 * qmgr.md "Sites' attributes"). */

/* The canonical values of a spec's custom resources (spec->custom order). */
struct db_custom {
    char **canon;
    int n;
};

void db_custom_clear(struct db_custom *c);
/* In the caller's transaction: checks every custom resource of spec
 * against resource_defs. 400 unknown_resource "Unknown resource
 * Resource_List.X" (undeclared), 400 bad_resource_value (not of its type).
 * Fills out (clear it with db_custom_clear). Returns 0 or -1. */
int db_custom_check(struct dv_db *db, const struct dv_job_spec *spec,
                    struct db_custom *out, struct dv_err *err);

enum resource_op_kind {
    RESOURCE_OP_CREATE,
    RESOURCE_OP_DELETE,
    RESOURCE_OP_LIST,
};

struct db_resource_op {
    enum resource_op_kind kind;
    const char *name; /* borrowed */
    const char *type;
    const char *flags;
    double now;
    /* out */
    PGresult *list; /* RESOURCE_OP_LIST: name, type, flags, create_time */
    int64_t busy_job;
};

/* Creates (409 resource_exists), deletes (404 unknown_resource, 409
 * resource_busy while an unfinished job requests it) or lists the custom
 * resources. The caller PQclears op->list. Returns 0 or -1. */
int db_resource_op(struct dv_db *db, struct db_resource_op *op,
                   struct dv_err *err);
/* One execution-time pass: at most QMGR_WAITING_BATCH waiting jobs whose
 * time is <= now become queued (queue_time now) with a 'job-eligible'
 * evaluation; *next is the earliest execution time still waiting (0:
 * none). */
int db_release_waiting(struct dv_db *db, double now, int *released,
                       double *next, struct dv_err *err);
/* The jobs among ids that mail may be about (PBS jobs whose Mail_Points is
 * not n): id, name, owner, state, exit_status, comment, mail_points,
 * mail_users, submit_host, used_*. Caller PQclears *out. */
int db_mail_jobs(struct dv_db *db, const int64_t *ids, int n, PGresult **out,
                 struct dv_err *err);

/* ------------------------------------------------------------------ */
/* site.c: the execution-time timer and job mail. */

/* Starts the timer's first pass (reads the earliest execution time). */
struct site *site_new(struct qmgr *q);
/* Loop thread: a job now waits for when (Drover time); arms the timer
 * earlier if needed. */
void site_waiting_hint(struct qmgr *q, double when);
/* Loop thread: a NOTIFY waiting arrived (payload: the Drover time, NULL or
 * unreadable: read the earliest time again). */
void site_waiting_notified(struct qmgr *q, const char *payload);
/* In the caller's transaction: NOTIFY waiting with when, so that every
 * qmgr arms its timer. */
int db_notify_waiting(struct dv_db *db, double when, struct dv_err *err);
void site_stop(struct site *s);
int site_busy(const struct site *s);
void site_free(struct site *s);
/* Worker thread, after the transaction that made the events committed:
 * sends (or logs) the mail that the jobs' Mail_Points ask for: "running"
 * events are 'b' (begun), "finished" ones 'a' (aborted: deleted, killed by
 * the system, exit status < 0) or 'e' (ended). */
void site_mail(struct qmgr *q, struct dv_db *db, const struct job_event *ev,
               int n);
/* The message (headers and body) of one mail; pure (unit-tested). */
void site_mail_format(char point, const char *jid, const char *name,
                      const char *to, const char *from, const char *comment,
                      int has_exit, int64_t exit_status, int64_t cput,
                      int64_t walltime, int64_t mem, struct dv_buf *out);

/* ------------------------------------------------------------------ */
/* api-resources.c: custom resources (docs/api.md "Resources"). */

void api_resources_list(struct qreq *qr);
void api_resources_create(struct qreq *qr);
void api_resources_delete(struct qreq *qr, const char *name);

/* ------------------------------------------------------------------ */
/* arrays.c: array jobs (qsub -J) in the caller's transaction, the job row
 * locked (docs/internals/qmgr.md, "Arrays"). */

/* The job_arrays row of a new array job ("X-Y[:Z][%max]"). */
int array_insert(struct dv_db *db, int64_t job_id, const char *text,
                 struct dv_err *err);
/* An allocation of subjob idx became terminal (chunk 0, or any chunk lost
 * with its node): the subjob finishes, or is requeued when lost or
 * preempted; the array finishes with its last subjob. */
int array_alloc_ended(struct dv_db *db, const struct job_end *e, int idx,
                      const char *desired, struct notify_set *ns,
                      struct job_event **ev, int *nev, struct dv_err *err);
/* Hook: subjob idx of array job_id has just finished with exit_status
 * (0 for a deleted queued one), in the transaction that finished it.
 * Called exactly once per subjob end. */
int array_subjob_ended(struct dv_db *db, int64_t job_id, int idx,
                       int exit_status, struct notify_set *ns,
                       struct dv_err *err);
/* Hook: array job_id has just finished (state finished), in the
 * transaction that finished it: with its PBS Exit_status (0, 1 or 2) when
 * has_exit, or deleted by qdel 124[] with no exit status (has_exit 0:
 * before it began, or with nothing running). Called exactly once. */
int array_ended(struct dv_db *db, int64_t job_id, int has_exit,
                int exit_status, struct notify_set *ns, struct dv_err *err);
/* qdel 124[] just finished the array at once (job_delete): closes its
 * subjob rows and calls array_ended. */
int array_deleted(struct dv_db *db, int64_t job_id, double now,
                  struct notify_set *ns, struct dv_err *err);
/* True when the locked job row (state, is_array) is an array that has
 * begun (B). */
int array_begun(const PGresult *job);
/* qhold / qrls of an array that has begun: the hold (c->hold_mask) is on
 * its queued remainder; running subjobs go on. A released array gets an
 * evaluation. */
int array_hold(struct dv_db *db, struct db_job_change *c, PGresult *job,
               struct notify_set *ns, struct dv_err *err);
/* Reads the array rows (and subjobs, per r->subjobs_want) of the array
 * jobs in r->jobs; called by db_load_vnodes. Returns 0 or -1. */
int array_load(struct dv_db *db, struct db_jobs *r, struct dv_err *err);
/* When job id of r is an array: sets o's "job_id" to "124[].srv" and adds
 * "array" (docs/api.md). Returns 1 when it is an array, else 0. */
int array_json_add(const struct db_jobs *r, int64_t id, const char *server,
                   json_t *o);
/* qdel 124[7] / 124[1-5] (c->array_lo..array_hi); job is the locked row
 * (state, priority). */
int array_delete_subjobs(struct dv_db *db, struct db_job_change *c,
                         PGresult *job, struct notify_set *ns,
                         struct dv_err *err);
/* db-tasks.c: pbsdsh tasks (sql/0010-chunks.sql) */

struct db_tasks {
    /* in */
    int64_t job_id;
    const char *server;
    const char *user; /* who asks: the job's owner, unless root */
    int root;
    char **argv; /* create: the command (borrowed) */
    int argc;
    int node;          /* create: this chunk only; -1: every chunk */
    double now;        /* create */
    int64_t min_index; /* get: answer once the job moved past it; -1: now */
    int64_t *ids;      /* get: these tasks only (borrowed); nids 0: all */
    int nids;
    /* out */
    PGresult *tasks; /* id, node_index, host, tasknum, state, exit_status,
                        stdout, stderr, message; ordered by id */
    int64_t index;   /* the job's modify_index */
    int moved;       /* get: past min_index (tasks read) */
    char job_state[16];
};

void db_tasks_clear(struct db_tasks *t);
/* Starts argv on the job's live chunks (or chunk t->node): one task per
 * chunk, their nodes' long polls woken. Errors: job_not_found,
 * forbidden (not the owner), job_not_running, bad_node_index. Returns 0
 * or -1. */
int db_tasks_create(struct dv_db *db, struct db_tasks *t, struct dv_err *err);
/* Reads the job's tasks when its modify_index is past t->min_index. */
int db_tasks_get(struct dv_db *db, struct db_tasks *t, struct dv_err *err);

/* One task end reported by a node. */
struct task_end {
    int64_t id;
    int exit_status;
    char *out; /* captured output, or NULL */
    char *err;
    char *message;
};

struct db_task_ended {
    int64_t node_id;
    const char *cn; /* the node's name must be this; NULL: not checked */
    const struct task_end *ends;
    int n;
    double now;
    int64_t index; /* out */
};

/* Records the ends (conditionally: a batch sent again changes nothing)
 * and moves the jobs' modify_index. Returns 0 or -1. */
int db_tasks_ended(struct dv_db *db, struct db_task_ended *s,
                   struct dv_err *err);

/* api-tasks.c */

/* POST /v1/jobs/:id/tasks: {"argv": [...], "node": N}. */
void api_tasks_create(struct qreq *qr, int64_t id);
/* GET /v1/jobs/:id/tasks?ids=1,2&index=N&wait=D (blocking). */
void api_tasks_get(struct qreq *qr, int64_t id);
/* POST /v1/nodes/:id/tasks/status: {"updates": [{"id", "exit_status",
 * "stdout", "stderr", "message"}]}. */
void api_tasks_status(struct qreq *qr, int64_t id);

/* ------------------------------------------------------------------ */
/* api-jobs.c */

void api_jobs_submit(struct qreq *qr);
void api_jobs_list(struct qreq *qr);
void api_jobs_get(struct qreq *qr, int64_t id);
void api_jobs_change(struct qreq *qr, int64_t id, enum job_op op);
/* api-job-admin.c: POST /v1/jobs/:id/signal|rerun|move|alter. */
void api_jobs_admin(struct qreq *qr, int64_t id, enum job_admin_op op);
/* qsig's signal names (PBS: a number, a name with or without "SIG", NULL,
 * suspend, resume; admin-suspend/admin-resume set *privileged) into out:
 * the number as text, or "suspend"/"resume". Returns 0 or -1. */
int api_signal_parse(const char *s, char out[16], int *privileged);
/* GET /v1/jobs/:id/allocations (?after=ID&limit=N). */
void api_jobs_allocs(struct qreq *qr, int64_t id);
/* The job object of docs/api.md for row of r->jobs; vrow is a cursor into
 * r->vnodes (rows ordered by job id, advanced past this job's). */
json_t *api_job_json(const struct db_jobs *r, int row, int *vrow,
                     const char *server, int full);

/* api-nodes.c */

void api_nodes_register(struct qreq *qr);
void api_nodes_heartbeat(struct qreq *qr, int64_t id);
void api_nodes_allocs(struct qreq *qr, int64_t id);
void api_nodes_alloc_status(struct qreq *qr, int64_t id);
void api_nodes_list(struct qreq *qr);
/* GET /v1/nodes/:id (name NULL or "" when by id). */
void api_nodes_get(struct qreq *qr, int64_t id, const char *name);
/* POST /v1/nodes/:id/eligibility or /drain: root only. */
void api_nodes_set(struct qreq *qr, int64_t id, const char *name,
                   enum node_flag flag);
/* The node object of docs/api.md for row of nodes (DB_NODE_COLUMNS): takes
 * ownership of jobs (an array of job id strings); nallocs is the count of
 * its active allocations. Returns a new reference. */
json_t *api_node_json(const PGresult *nodes, int row, json_t *jobs,
                      int64_t nallocs);
/* The answer to poll i of b (docs/api.md, "a node's work") as JSON text:
 * each allocation once, each job spec it may need once. Returns a new
 * string (caller frees). */
char *api_nodes_poll_json(const struct db_node_polls *b, int i,
                          const char *server);
/* 0 when qr may call a node route; else qr is answered 403 and -1
 * returned: on the Unix socket only root and --node-uid may. */
int api_nodes_allowed(struct qreq *qr);
/* The heartbeat TTL given to nodes now: --node-ttl, raised so that the
 * ready nodes heartbeat (every TTL/3) at most --max-heartbeat-rate times
 * a second in all. */
double api_nodes_ttl(struct qmgr *q);

/* api-queues.c: GET/POST /v1/queues, GET/PUT/PATCH/DELETE
 * /v1/queues/:name (changes: root only). */

void api_queues_list(struct qreq *qr, const char *name);
void api_queues_create(struct qreq *qr);
void api_queues_change(struct qreq *qr, const char *name);
void api_queues_delete(struct qreq *qr, const char *name);
/* GET /v1/server (anyone), PATCH|PUT /v1/server (root): the default queue
 * and fair share. */
void api_server_get(struct qreq *qr);
void api_server_change(struct qreq *qr);

/* db-queues.c */

/* One change of a queue: set (op) or unset an attribute (borrowed). */
struct queue_op {
    const char *attr;
    enum dv_queue_op op;
    const char *value;
    int unset;
};

struct db_queue_change {
    const char *name;
    int create; /* insert it first (queue_exists when it is there) */
    const struct queue_op *ops;
    int nops;
    int woken; /* evaluations woken (waiting for the queue) */
};

/* Creates or changes a queue under its lock (lib/queue.h errors, 404
 * unknown_queue, 409 queue_exists); a change wakes every evaluation
 * waiting for the queue. */
int db_queue_change(struct dv_db *db, struct db_queue_change *c,
                    struct dv_err *err);
/* Deletes a queue: 404 unknown_queue, 409 queue_busy while it has jobs
 * that are not finished. */
int db_queue_delete(struct dv_db *db, const char *name, struct dv_err *err);

struct db_queues {
    const char *name; /* NULL: every queue */
    PGresult *queues; /* QUEUE_COLUMNS rows */
    PGresult *counts; /* queue, state, n: active jobs */
};

/* Reads the queues (or the named one: 404 unknown_queue) and their job
 * counts in one snapshot. */
int db_queues_read(struct dv_db *db, struct db_queues *out,
                   struct dv_err *err);
void db_queues_clear(struct db_queues *out);
/* The queue of a row of db_queues_read or db_queue_for_submit. */
void db_queue_from_row(const PGresult *res, int row, struct dv_queue *q);
/* The named queue (NULL: the default one), locked against deletion for
 * the caller's transaction. Returns 1, 0 when there is none, or -1. */
int db_queue_for_submit(struct dv_db *db, const char *name,
                        struct dv_queue *q, struct dv_err *err);

/* The server-wide settings that belong to queues: the default queue and
 * fair share (its half-life and each user's decayed usage now). */
struct db_server {
    double now;
    PGresult *settings; /* name, fairshare_half_life, default_queue */
    PGresult *usage;    /* owner, core_seconds, usage (decayed, now) */
};

int db_server_read(struct dv_db *db, struct db_server *out,
                   struct dv_err *err);
void db_server_clear(struct db_server *out);

struct db_server_change {
    const char *default_queue; /* NULL: unchanged */
    double half_life;          /* seconds; 0: unchanged */
    double now;
};

/* Sets the default queue (404 unknown_queue) and the fair-share
 * half-life (stored usage rescaled so that nobody's usage changes). */
int db_server_change(struct dv_db *db, struct db_server_change *c,
                     struct dv_err *err);

/* api-status.c */

void api_status(struct qreq *qr);
/* Maps an error to the API's codes (database errors -> 503
 * database_unavailable, other database failures -> 500 internal_error). */
int api_error_status(const struct dv_err *err, const char **code);

/* ------------------------------------------------------------------ */
/* longpoll.c: parked blocking queries woken by LISTEN/NOTIFY. */

struct longpoll *longpoll_new(struct qmgr *q);
/* Stops watching and answers nothing (waiters are answered by
 * longpoll_expire_all first). longpoll_free(NULL) does nothing. */
void longpoll_free(struct longpoll *lp);
/* Starts a blocking query: qr has lp_kind, lp_key, lp_min_index (and, for
 * job waiters, run) set; wait is the longest wait in seconds, 0 to answer
 * at once. Node waiters are read in batches (one transaction for many
 * nodes, db_node_polls) and answered with api_nodes_poll_json. */
void longpoll_start(struct qreq *qr, double wait);
/* The client left: forget qr (freed by the caller when not in the pool). */
void longpoll_forget(struct qreq *qr);
/* Ends every wait now (shutdown): each is answered with what there is. */
void longpoll_expire_all(struct longpoll *lp);
/* Number of parked or running blocking queries. */
int longpoll_count(const struct longpoll *lp);

/* ------------------------------------------------------------------ */
/* liveness.c: the node-down duty. */

struct liveness *liveness_new(struct qmgr *q, double interval);
void liveness_stop(struct liveness *l);
/* 1 while a pass is in flight. */
int liveness_busy(const struct liveness *l);
void liveness_free(struct liveness *l);

#endif
