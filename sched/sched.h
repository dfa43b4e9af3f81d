/*
 * drover-sched internals, grouped by file. Workers lease evaluations,
 * reconcile each job's groups with its allocations, place what is missing
 * on a shared in-memory snapshot of the nodes (feasibility, then scoring
 * over a bounded sample), and commit each plan in one transaction that
 * re-checks every node under its row lock (docs/internals/sched.md).
 */
#ifndef SCHED_H
#define SCHED_H

#include <hwloc.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lib/db.h"
#include "lib/err.h"

struct sched_config {
    char *database;
    int64_t workers;
    char *name;
    double lease;
    int64_t batch;
    double poll_interval;
    int64_t max_attempts;
    int64_t sample;
    int64_t sample_threshold;
    double full_refresh;
    char *metrics_listen;
    double stats_interval;
    char *log_level;
    char *log_file;
    int64_t backfill_depth; /* jobs that get reservations; 0: none */
    int backfill;           /* 0: strict order (the top job holds all) */
};

/* ---- snapshot.c: the nodes as this process last saw them ---- */

struct snap_attr {
    char *key; /* "attr.kernel.name", "meta.rack", "node.datacenter"... */
    char *value;
};

enum resv_kind {
    RESV_PREEMPTION = 0, /* held now for a preemptor */
    RESV_BACKFILL,       /* held from start on for a top job (EASY) */
    RESV_FIFO,           /* backfill off: nothing ranked lower starts */
};

/* Capacity held on a node for a job (a preemptor, or a waiting job ranked
 * among the top --backfill-depth, from start on). */
struct snap_resv {
    int64_t job_id;
    int priority;
    /* the holder's other rank keys, captured when the reservation was
     * made (struct sched_rank) */
    int queue_priority;
    double fairshare;
    enum resv_kind kind;
    double start; /* Drover time; 0: from now */
    int cores;
    int64_t mem;
    int gpus;
    /* what running allocations on the node still hold at start (their
     * start + walltime is later), read with the reservation */
    int busy_cores;
    int64_t busy_mem;
    int busy_gpus;
};

struct snap_node {
    int64_t id;
    char *name;
    char *datacenter;
    char *pool;
    char *node_class;
    int ready; /* status ready, eligible and not drained */
    int total_cores;
    int64_t total_mem;
    int total_gpus;
    int64_t total_disk;
    /* Effective free capacity: the database's minus what plans of this
     * process hold while they commit. */
    hwloc_bitmap_t free_cores; /* core indexes */
    int nfree_cores;
    int64_t free_mem;
    hwloc_bitmap_t free_gpus; /* GPU indexes */
    int64_t free_disk;
    hwloc_bitmap_t db_cores; /* as last read from the database */
    int64_t db_mem;
    hwloc_bitmap_t db_gpus;
    int64_t db_disk;
    hwloc_bitmap_t pend_cores; /* held by plans in flight */
    int64_t pend_mem;
    hwloc_bitmap_t pend_gpus;
    int64_t pend_disk;
    int nnuma;
    hwloc_bitmap_t *numa_cores; /* the cores of each NUMA node */
    int npkg;
    hwloc_bitmap_t *pkg_cores;
    int ngpu_numa;
    int *gpu_numa; /* NUMA node of GPU i, -1 unknown */
    struct snap_attr *attrs; /* sorted by key */
    int nattrs;
    int64_t capacity_index;
    int64_t modify_index;
    double register_time;
    struct snap_resv *resv;
    int nresv;
    int64_t excl_job; /* place=excl: the job holding it whole; 0: none */
};

/* Nothing runs on n and nothing is held there by plans in flight (what a
 * place=excl job needs). */
int snap_node_empty(const struct snap_node *n);

/* Recomputes n's effective free capacity from db_* and pend_*. */
void snap_node_recompute(struct snap_node *n);
/* Adds (sign 1) or removes (sign -1) the plan's placements to/from the
 * held capacity of the snapshot's nodes; caller holds the write lock. */
struct plan;
struct snapshot;
void snapshot_hold(struct snapshot *s, const struct plan *plan, int sign);

struct snapshot {
    pthread_rwlock_t lock;
    struct snap_node **nodes; /* sorted by id */
    int n;
    int cap;
    int64_t last_index;     /* highest modify_index read */
    int64_t capacity_index; /* highest capacity_index read */
    double last_full;       /* Drover time of the last full read */
    int want_full;          /* the next refresh reads every node */
};

/* Reads a reservation row (job_id, priority, kind, start, cores, mem,
 * gpus, busy_cores, busy_mem, busy_gpus). */
void snap_resv_read(const PGresult *res, int row, struct snap_resv *r);
void snapshot_init(struct snapshot *s);
void snapshot_cleanup(struct snapshot *s);
/* Reads the nodes whose modify_index moved past what was seen (all of
 * them when full), with their topology and labels when they registered
 * again. Takes the write lock. Returns 0 or -1. */
int snapshot_refresh(struct snapshot *s, struct dv_db *db, int full,
                     struct dv_err *err);
/* Caller holds the lock. NULL when unknown. */
struct snap_node *snapshot_find(const struct snapshot *s, int64_t id);
/* The value of an attribute ("attr.arch", "node.datacenter"...), NULL when
 * unset. */
const char *snap_node_attr(const struct snap_node *n, const char *key);
/* Builds a node from values, for tests: topology JSON as noded sends it
 * ({"numa": [{"cores": "0-3"}], "packages": [...], "gpus": [...]}). */
struct snap_node *snap_node_new(int64_t id, const char *name, int cores,
                                int64_t mem, int gpus, const char *topology);
void snap_node_free(struct snap_node *n);
/* A copy that outlives the snapshot lock (without labels): plans carry
 * these into their commit. */
struct snap_node *snap_node_clone(const struct snap_node *n);
void snap_node_set_attr(struct snap_node *n, const char *key,
                        const char *value);
/* Adds (or replaces) a node; caller holds the write lock. Takes
 * ownership. */
void snapshot_put(struct snapshot *s, struct snap_node *n);

/* ---- spec.c: a job as the scheduler reads it (lib/job.h placement) ---- */

enum sched_op {
    OP_EQ = 0,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_REGEXP,
    OP_VERSION,
    OP_SET_CONTAINS,
    OP_DISTINCT_HOSTS,
    OP_IS_SET,
    OP_IS_NOT_SET,
};

struct sched_rule {
    char *attr; /* resolved key, "attr.kernel.name"; NULL: distinct_hosts */
    enum sched_op op;
    char *value;
    int weight; /* affinities: -100..100 */
    regex_t re;
    int have_re;
};

struct sched_spread_target {
    char *value;
    int percent;
};

struct sched_spread {
    char *attr;
    int weight;
    struct sched_spread_target *targets;
    int ntargets;
};

enum sched_numa {
    NUMA_NONE = 0,
    NUMA_PREFER,
    NUMA_REQUIRE,
};

struct sched_group {
    char *name;
    int count;
    int cores;
    int64_t mem;
    int gpus;
    int64_t disk;
    enum sched_numa numa;
    struct sched_rule *constraints;
    int nconstraints;
    int distinct_hosts;
    struct sched_rule *affinities;
    int naffinities;
    struct sched_spread *spreads;
    int nspreads;
    int resched_attempts;
    int resched_unlimited;
};

enum sched_place {
    PLACE_FREE = 0,
    PLACE_PACK,
    PLACE_SCATTER,
};

/* An array job (qsub -J): which subjobs this evaluation may place. Read
 * without locks, as a hint; the commit re-checks under the job's row
 * lock (sched/array.c). */
struct sched_array {
    int max_run; /* 0: no cap */
    int running; /* subjobs running or exiting */
    int chunks;  /* chunks per subjob (the job's instances) */
    int *cand;   /* subjob indexes to place now, ascending */
    int ncand;
};

struct sched_job {
    int64_t id;
    char *name;
    char *type; /* batch, service, system */
    char *state;
    int pbs; /* a PBS job: its groups are chunks, placed together once */
    int priority;
    int gang;
    enum sched_place place;
    int exclusive;
    char **datacenters;
    int ndatacenters;
    char *pool; /* NULL: any */
    struct sched_group *groups;
    int ngroups;
    int can_preempt; /* the job's queue allows preemption */
    struct sched_array *array; /* NULL: not an array job */
    char *alter_time;          /* jobs.alter_time as loaded (qalter, qmove) */
    double walltime; /* seconds; 0: none (runs for ever as backfill sees) */
    /* the rest of its place in the order of work, from the evaluation
     * being planned (struct sched_rank) */
    int queue_priority;
    double fairshare;
};

/* A job's place in the order of work, one definition for leasing and
 * backfill: queue priority (higher first), job priority (higher first),
 * fair share (log2 of the owner's decayed usage, lower first; -inf: no
 * usage), then the job id (older first). */
struct sched_rank {
    int queue_priority;
    int priority;
    double fairshare;
    int64_t id;
};

/* <0 when a ranks above b, >0 when below, 0 the same. */
int sched_rank_cmp(const struct sched_rank *a, const struct sched_rank *b);
/* The job's rank (its queue_priority, priority, fairshare and id). */
struct sched_rank sched_job_rank(const struct sched_job *job);

/* Parses a stored spec's "placement" object. Returns 0, or -1 with err set
 * (a malformed stored spec is a bug upstream, not retryable). */
int sched_job_parse_placement(struct sched_job *job, const char *json,
                              struct dv_err *err);
void sched_job_cleanup(struct sched_job *job);
/* Parses "${attr.kernel.name}" into "attr.kernel.name"; new string or NULL
 * when the syntax is wrong. */
char *sched_attr_key(const char *text);

/* ---- array.c: array jobs (qsub -J), one subjob at a time ---- */

/* Most subjobs one plan places. */
#define ARRAY_PLAN_MAX 256

/* Reads the array's cap, running count and the next subjobs to place
 * (requeued ones first, then unplaced indexes in order) into job->array;
 * a job whose spec has no "array" is left alone. Returns 0 or -1. */
int db_load_array(struct dv_db *db, struct sched_job *job, struct dv_err *err);
void sched_array_free(struct sched_array *a);
/* Wants for the candidate subjobs: each subjob's chunks in order. */
struct reconcile_result;
void reconcile_array(const struct sched_job *job, struct reconcile_result *out);

/* An array's state as the commit sees it under the job's row lock: the
 * cap (-1: nothing may be placed, the array is held or gone), the subjobs
 * running now, and which of the plan's subjobs are no longer unplaced
 * (placed by another worker, or deleted). */
struct array_check {
    int max_run;
    int running;
    int *taken;
    int ntaken;
    int *accepted; /* subjobs this commit places, ascending */
    int naccepted;
    int queue_room; /* subjobs the queue's limits let start; -1: any */
};

struct plan;
/* Reads ac for plan's subjobs (the caller holds the job's row lock).
 * Returns 0 or -1. */
int array_check_load(struct dv_db *db, const struct plan *plan,
                     struct array_check *ac, struct dv_err *err);
/* May a chunk of subjob idx be placed: unplaced, within %max and within
 * the queue's room? */
int array_admits(const struct array_check *ac, int idx);
/* A chunk of subjob idx was granted. */
void array_took(struct array_check *ac, int idx);
/* Writes the placed subjobs (ac->accepted): their rows running with
 * exec_host and comment, the array begun, the cursor moved on. accepted
 * and cpusets are per placement of plan. Returns 0 or -1. */
int array_commit_write(struct dv_db *db, const struct plan *plan,
                       const struct array_check *ac, const int *accepted,
                       char **cpusets, double now, int64_t index,
                       struct dv_err *err);
void array_check_cleanup(struct array_check *ac);

/* ---- feasible.c: can this node hold an instance of this group? ---- */

/* Static checks that do not depend on free capacity: ready, datacenter,
 * pool, constraints (distinct_hosts excepted). */
int feasible_static(const struct sched_job *job, const struct sched_group *g,
                    const struct snap_node *n);
int rule_matches(const struct sched_rule *r, const struct snap_node *n);
/* Compares versions "1.10.2" and "1.9" numerically by dotted parts: <0,
 * 0, >0. */
int version_cmp(const char *a, const char *b);
/* Checks a version against a constraint like ">= 1.2, < 2.0". 1 when it
 * satisfies it, 0 when not, -1 on a syntax error. */
int version_satisfies(const char *version, const char *constraint);

/* ---- backfill.c: reservations in time (pure functions) ---- */

struct bf_amount {
    int cores;
    int64_t mem;
    int gpus;
};

/* A live allocation and when it should end (start + walltime; INFINITY
 * without walltime). */
struct bf_running {
    int64_t node_id;
    double end;
    int cores;
    int64_t mem;
    int gpus;
};

/* What a reservation takes on one node. */
struct bf_slot {
    int64_t node_id;
    struct bf_amount a;
};

/* "preemption", "backfill", "fifo" as stored; unknown: preemption. */
enum resv_kind sched_resv_kind(const char *text);
/* Does reservation r hold capacity against the job of rank job?
 * Backfill and fifo reservations bind jobs ranked lower in the order of
 * work (sched_rank_cmp against the holder's rank as stored); preemption
 * ones jobs of lower or equal job priority (PBS's preemption levels);
 * never the holder itself. */
int backfill_binds(const struct snap_resv *r, const struct sched_rank *job);
/* May the job (of rank job; ending at end, INFINITY without
 * walltime) hold use (its whole share of the node, this placement
 * included) on a node with these totals and free capacity (before any of
 * the job's placements) given the node's reservations? 1 or 0. */
int backfill_allows(const struct snap_resv *resv, int nresv,
                    const struct bf_amount *total, const struct bf_amount *free,
                    const struct bf_amount *use, const struct sched_rank *job,
                    double now, double end);
/* The earliest time, from now, at which instances of the given groups
 * (one entry per wanted instance) fit on snap's ready nodes that pass the
 * job's static checks, given running work (run) and the reservations in
 * the snapshot that bind the job, for the job's whole walltime. Fills
 * slots (new array; caller frees) and returns the time, or -1 when they
 * never fit. Caller holds the snapshot's read lock. */
double backfill_earliest(const struct snapshot *snap,
                         const struct sched_job *job, const int *groups,
                         int nwanted, const struct bf_running *run, int nrun,
                         double now, struct bf_slot **slots, int *nslots);

/* ---- cores.c: which exact cores and GPUs ---- */

/* Chooses ncores cores from free (a subset of n's cores): from one NUMA
 * node when one can hold them (the fullest that fits), else from one
 * package NUMA node by NUMA node, else anywhere, lowest indexes first
 * within each; with NUMA_REQUIRE only from one NUMA node. out is filled.
 * Returns 0, or -1 when they do not fit. */
int cores_pick(const struct snap_node *n, hwloc_const_bitmap_t free,
               int ncores, enum sched_numa numa, hwloc_bitmap_t out);
/* Chooses ngpus GPUs from free, preferring those on the NUMA nodes of
 * cores. Returns 0 or -1. */
int gpus_pick(const struct snap_node *n, hwloc_const_bitmap_t free, int ngpus,
              hwloc_const_bitmap_t cores, hwloc_bitmap_t out);

/* ---- reconcile.c: what a job needs now ---- */

struct sched_alloc {
    int64_t id;
    int64_t node_id;
    int group;
    int instance;
    int active;   /* client pending or running and desired run */
    int complete; /* client complete */
    int failed;   /* client failed */
    int lost;     /* client lost (node down, daemon restarted) */
    int stopping; /* desired stop, not yet terminal */
    int reschedule_count;
};

struct sched_want {
    int group;
    int instance;
    int64_t previous_alloc; /* 0: none */
    int reschedule_count;
    int64_t node_id; /* system jobs: this node only; 0: any */
    int sub;         /* 1: a chunk of subjob array_index of an array */
    int array_index;
    int chunk; /* the chunk's position within its subjob */
};

struct sched_stop {
    int64_t alloc_id;
    int64_t node_id;
    const char *why; /* static */
};

struct reconcile_result {
    struct sched_want *wants;
    int nwants;
    struct sched_stop *stops;
    int nstops;
};

/* Compares the job's groups with its allocations (and, for system jobs,
 * with the ready nodes of snap that pass the static checks; caller holds
 * the snapshot lock). */
void reconcile(const struct sched_job *job, const struct sched_alloc *allocs,
               int nallocs, const struct snapshot *snap,
               struct reconcile_result *out);
void reconcile_cleanup(struct reconcile_result *r);

/* ---- place.c: choosing nodes ---- */

/* A node as this plan sees it: the snapshot's free capacity minus what the
 * plan already put there. */
struct plan_node {
    struct snap_node *node; /* a clone, owned */
    hwloc_bitmap_t free_cores;
    int nfree_cores;
    int64_t free_mem;
    hwloc_bitmap_t free_gpus;
    int64_t free_disk;
    int used; /* placements of this plan on it */
};

struct placement {
    int want; /* index into the reconcile wants */
    struct plan_node *pn;
    hwloc_bitmap_t cores;
    hwloc_bitmap_t gpus;
    int64_t mem;
    int64_t disk;
};

struct plan {
    const struct sched_job *job;
    const struct reconcile_result *rec;
    struct plan_node **nodes; /* touched nodes */
    int nnodes;
    struct placement *placements;
    int nplacements;
    int *unplaced; /* want indexes that found no node */
    int nunplaced;
    char why[512]; /* PBS-style reason for the first unplaced want */
    int never;     /* no ready node could ever hold it */
    /* for blocking: every node of the snapshot, its capacity_index, and
     * whether it passed the static checks for some group */
    int64_t *node_ids;
    int64_t *node_ci;
    char *node_feasible;
    int nnodes_seen;
    int64_t *feasible_ids; /* the feasible ones (preemption victims) */
    int nfeasible;
    int64_t max_node_id;
    /* the smallest instance, for waking blocked work */
    int need_cores;
    int64_t need_mem;
    int need_gpus;
};

struct planner {
    int64_t sample;           /* nodes scored per placement on big clusters */
    int64_t sample_threshold; /* feasible sets up to this are scored whole */
    unsigned int seed;
    double now; /* the plan's time for tests; 0: dv_now() */
};

/* Places every want of rec on snap (caller holds its read lock). Gang jobs
 * place all or nothing. plan->placements may cover only some wants; the
 * rest are in plan->unplaced with plan->why. Caller frees with
 * plan_cleanup. */
void plan_job(struct planner *p, const struct snapshot *snap,
              const struct sched_job *job, const struct sched_alloc *allocs,
              int nallocs, const struct reconcile_result *rec,
              struct plan *plan);
void plan_cleanup(struct plan *plan);
/* The best-fit score of placing (cores, mem) on pn: Nomad's
 * 20 - (10^free_cpu + 10^free_mem), scaled to 0..1 (1 = fullest). */
double score_binpack(const struct plan_node *pn, int cores, int64_t mem);

/* ---- preempt.c ---- */

struct victim {
    int64_t alloc_id;
    int64_t node_id;
    int64_t job_id;
    int priority;
    int cores;
    int64_t mem;
    int gpus;
};

/* From candidates (allocations of lower-priority jobs on feasible nodes),
 * picks the node where evicting the fewest, then lowest-priority, victims
 * frees room for one instance of g. Returns how many victims went into
 * out (0: none would do). */
int preempt_choose(const struct snapshot *snap, const struct sched_group *g,
                   const struct victim *cands, int ncands, struct victim *out,
                   int max);

/* ---- commit.c ---- */

struct node_after {
    int64_t id;
    char *free_cpuset;
    char *free_gpuset;
    int64_t free_mem;
    int64_t free_disk;
    int64_t capacity_index;
    int64_t modify_index;
    int64_t excl_job;
};

enum commit_outcome {
    COMMIT_DONE = 0,   /* what fitted was written (maybe nothing) */
    COMMIT_JOB_GONE,   /* the job no longer wants placing */
    COMMIT_LEASE_LOST, /* the evaluation is no longer ours: nothing written */
    COMMIT_QUEUE_WAIT, /* the job's queue is stopped or at a running-job
                        * limit: nothing placed, the evaluation blocked
                        * waiting for a slot (sql/0006-queues.sql) */
    COMMIT_ALTERED,    /* qalter/qmove since the plan: nothing written */
};

struct commit_result {
    enum commit_outcome outcome;
    int placed;
    int refused;      /* placements that no longer fitted */
    int *refused_idx; /* their indexes in plan->placements */
    int stopped;
    int released; /* the job held reservations, dropped as it was placed */
    struct node_after *after; /* the locked nodes as committed */
    int nafter;
    double seconds;
    char why[160]; /* COMMIT_QUEUE_WAIT: the job's new comment */
};

/* Commits plan (and its stops) in one transaction: node rows locked in id
 * order and re-checked, exact cores/GPUs granted, allocations inserted,
 * nodes updated, the job marked running, the evaluation finished when
 * finish is set. A gang plan commits whole or not at all. */
int commit_plan(struct dv_db *db, const char *owner, int64_t eval_id,
                const struct plan *plan, int finish, double lease,
                struct commit_result *r, struct dv_err *err);
void commit_result_cleanup(struct commit_result *r);
/* PBS's "Job run at ... on (...)" for the accepted placements of plan. */
struct dv_buf;
void commit_run_comment(const struct plan *plan, double now,
                        const int *accepted, struct dv_buf *out);
/* Appends "s" (quoted) to a PostgreSQL text[] literal being built. */
void commit_text_elem(struct dv_buf *b, const char *s, int first);

/* ---- db.c: the other statements ---- */

struct sched_eval {
    int64_t id;
    int64_t job_id;
    int priority;       /* the job's (-p) */
    int queue_priority; /* its queue's */
    double fairshare;   /* log2 of its owner's decayed usage (-inf: none) */
    char *triggered_by;
};

/* The order of work, one definition for every planner (leasing here,
 * backfill's reservations): queue priority, then job priority, then fair
 * share (lower decayed usage first), then age. SCHED_EVAL_ORDER is the
 * same order over evaluations' columns, served by the partial index
 * evaluations_pending_order (sql/0006-queues.sql, which stamps the columns
 * whenever an evaluation becomes pending). */
#define SCHED_EVAL_ORDER "queue_priority DESC, priority DESC, fairshare, id"
/* The same order over jobs (backfill's top jobs and wake order, over
 * evaluations' columns): the job's id is its age. Between rows, SQL
 * compares with drover_ranks_above (sql/0014-rank.sql), C with
 * sched_rank_cmp. */
#define SCHED_JOB_ORDER \
    "queue_priority DESC, priority DESC, fairshare, job_id"
int sched_eval_order_cmp(const struct sched_eval *a,
                         const struct sched_eval *b);

int db_lease_evals(struct dv_db *db, const char *owner, double deadline,
                   int batch, struct sched_eval **evals, int *n,
                   struct dv_err *err);
void db_evals_free(struct sched_eval *evals, int n);
/* Returns 1 and fills job, 0 when the job is gone, -1 on error. */
int db_load_job(struct dv_db *db, int64_t id, struct sched_job *job,
                struct dv_err *err);
int db_load_allocs(struct dv_db *db, int64_t job_id, struct sched_alloc **out,
                   int *n, struct dv_err *err);
/* Lower-priority active allocations on the given nodes. */
int db_load_victims(struct dv_db *db, const int64_t *node_ids, int n,
                    int priority, struct victim **out, int *nout,
                    struct dv_err *err);
/* Marks the evaluation blocked, or pending again when one of the plan's
 * feasible nodes gained capacity since the snapshot (then *woken = 1). */
int db_block_eval(struct dv_db *db, const char *owner, int64_t eval_id,
                  int64_t job_id, const struct plan *plan, int *woken,
                  struct dv_err *err);
int db_finish_eval(struct dv_db *db, const char *owner, int64_t eval_id,
                   const char *status, const char *description,
                   struct dv_err *err);
/* Asks victims to stop (desired stop, "preempted") and blocks the
 * evaluation until their capacity frees. */
int db_preempt(struct dv_db *db, const char *owner, int64_t eval_id,
               const struct plan *plan, const struct victim *victims, int n,
               struct dv_err *err);
/* Wakes blocked evaluations that capacity freed since could place (with
 * strict, --backfill=false, only the best-ranked waiting job's), and those
 * of the top depth waiting batch jobs that hold no backfill reservation.
 * Returns how many, or -1. */
int db_unblock(struct dv_db *db, int strict, int depth, struct dv_err *err);
/* How many waiting batch jobs rank above the job (the order of work,
 * drover_ranked_above), counting up to depth; -1 on error. */
int db_ranked_above(struct dv_db *db, const struct sched_rank *rank, int depth,
                    struct dv_err *err);

int db_reap_leases(struct dv_db *db, double now, struct dv_err *err);
int db_expire_reservations(struct dv_db *db, double now, struct dv_err *err);
/* Extends a lease; 1 when it is still ours, 0 when not, -1 on error. */
int db_renew_lease(struct dv_db *db, const char *owner, int64_t eval_id,
                   double deadline, struct dv_err *err);
/* Wakes blocked work that could use these nodes (drover_wake_nodes). */
int db_wake_nodes(struct dv_db *db, const int64_t *ids, int n,
                  struct dv_err *err);
/* The live allocations on these nodes and their estimated ends. Caller
 * frees *out. */
int db_load_running(struct dv_db *db, const int64_t *node_ids, int n,
                    struct bf_running **out, int *nout, struct dv_err *err);
/* Makes (or moves) the job's reservation of kind "backfill" or "fifo":
 * slots from start on, until expire, when fewer than depth jobs ranked
 * above it hold one (then *made = 1 and the job's estimated start time is
 * set); holders pushed beyond depth let go. With nslots 0 or no room in
 * the top, drops the job's own. Under an advisory lock, one transaction. */
int db_reserve(struct dv_db *db, const struct sched_rank *rank, double start,
               double expire, const struct bf_slot *slots, int nslots,
               const char *kind, int depth, int *made, struct dv_err *err);
/* 1 when the job holds a live preemption reservation (backfill: a
 * backfill or fifo one), 0 when not, -1 on error. */
int db_holds_reservation(struct dv_db *db, int64_t job_id, int backfill,
                         struct dv_err *err);

/* ---- metrics.c ---- */

#define METRIC_BUCKETS 12

struct histogram {
    _Atomic uint64_t buckets[METRIC_BUCKETS]; /* cumulative le bounds */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_micro; /* sum in millionths */
};

struct sched_metrics {
    _Atomic uint64_t evals;
    _Atomic uint64_t placements;
    _Atomic uint64_t plans;
    _Atomic uint64_t conflicts; /* placements refused at commit */
    _Atomic uint64_t retries;   /* re-plans after refusals */
    _Atomic uint64_t blocked;
    _Atomic uint64_t stops;
    _Atomic uint64_t preemptions;
    _Atomic uint64_t errors;
    struct histogram plan_size;
    struct histogram commit_seconds;
    struct histogram plan_seconds;
};

void histogram_observe(struct histogram *h, const double *bounds,
                       double value);
extern const double metric_size_bounds[METRIC_BUCKETS];
extern const double metric_seconds_bounds[METRIC_BUCKETS];
/* Appends the Prometheus text exposition of m. */
struct dv_buf;
void metrics_format(const struct sched_metrics *m, const char *scheduler,
                    struct dv_buf *out);

/* ---- worker.c ---- */

struct sched_shared {
    const struct sched_config *cfg;
    struct snapshot snap;
    struct sched_metrics metrics;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t generation; /* bumped on every wake-up hint */
    int stopping;
};

struct sched_worker {
    struct sched_shared *shared;
    int index;
    char owner[128];
    struct planner planner;
    pthread_t thread;
};

void *worker_main(void *arg);
/* Whether a batch's lease, due at deadline, must be renewed before one more
 * evaluation of the batch is handled at now: when less than half of the
 * lease is left. A lease that has not expired cannot have been taken over
 * (only expired ones are reaped), and the commit checks it again under the
 * job's lock, so a fresh one needs no write. Pure. */
int worker_lease_stale(double deadline, double now, double lease);
/* Handles one leased evaluation. */
void worker_process(struct sched_worker *w, struct dv_db *db,
                    const struct sched_eval *ev);
void shared_wake(struct sched_shared *shared);

#endif
