/*
 * drover-sched internals. Workers lease pending evaluations, plan each job
 * against a snapshot of the nodes, and commit the plan in one transaction
 * that re-checks every node under its row lock (docs/internals/sched.md).
 */
#ifndef SCHED_H
#define SCHED_H

#include <pthread.h>
#include <stdint.h>

#include "lib/db.h"
#include "lib/err.h"
#include "lib/resources.h"

struct sched_config {
    char *database;
    int64_t workers;
    char *name;
    double lease;
    int64_t batch;
    double poll_interval;
    int64_t max_attempts;
    char *log_level;
    char *log_file;
};

/* plan.c: placement decisions, no I/O. */
struct sched_node {
    int64_t id;
    char *name;
    int ready; /* status ready and eligible */
    int free_cores;
    int64_t free_mem;
    char *free_cpuset;
    int total_cores;
    int64_t total_mem;
};

struct sched_snapshot {
    struct sched_node *nodes;
    int n;
    int64_t capacity_index; /* max(nodes.capacity_index) when read */
};

struct sched_job {
    int64_t id;
    char *name;
    char *state;
    int priority;
    struct dv_resreq req; /* chunks and place from the stored spec */
};

struct plan_alloc {
    int node;        /* index into the snapshot */
    int chunk_index; /* 0 runs the script */
    int ncpus;
    int64_t mem;
};

struct plan {
    struct plan_alloc *allocs;
    int n;
};

enum plan_result {
    PLAN_PLACED = 0,
    PLAN_NO_FIT,    /* not now: blocked until capacity frees */
    PLAN_NEVER_FIT, /* no ready node could ever hold it as it stands */
};

/* Places every chunk of job on snap's ready nodes (best fit: the node left
 * with the fewest free cores, then least free memory, then lowest id),
 * honouring place=pack|scatter|free. On PLAN_PLACED plan holds one entry
 * per chunk instance (caller frees with plan_cleanup); otherwise why gets a
 * PBS-style comment. snap is not changed. */
enum plan_result plan_job(const struct sched_snapshot *snap,
                          const struct sched_job *job, struct plan *plan,
                          char *why, size_t whylen);
void plan_cleanup(struct plan *plan);
void snapshot_cleanup(struct sched_snapshot *snap);
void sched_job_cleanup(struct sched_job *job);
/* Builds PBS's exec_host ("node1/0*2+node2/4*1") from the plan and the
 * cores granted (cpusets[i] for plan->allocs[i]). Returns a new string. */
char *plan_exec_host(const struct sched_snapshot *snap, const struct plan *plan,
                     char *const *cpusets);

/* db.c: every SQL statement of the scheduler. */
struct sched_eval {
    int64_t id;
    int64_t job_id;
    int priority;
};

int db_lease_evals(struct dv_db *db, const char *owner, double deadline,
                   int batch, struct sched_eval **evals, int *n,
                   struct dv_err *err);
/* Returns 1 and fills job, 0 when the job is gone, -1 on error. */
int db_load_job(struct dv_db *db, int64_t id, struct sched_job *job,
                struct dv_err *err);
int db_load_snapshot(struct dv_db *db, struct sched_snapshot *snap,
                     struct dv_err *err);

enum commit_outcome {
    COMMIT_PLACED = 0,
    COMMIT_STALE,    /* a node no longer had room: re-plan */
    COMMIT_JOB_GONE, /* the job is no longer queued */
};

int db_commit_plan(struct dv_db *db, const char *owner, int64_t eval_id,
                   const struct sched_job *job,
                   const struct sched_snapshot *snap, const struct plan *plan,
                   enum commit_outcome *outcome, struct dv_err *err);
/* Marks the evaluation blocked (or pending again when capacity freed
 * since snap_index) and sets the job's comment. *woken is set to 1 when it
 * went back to pending. */
int db_block_eval(struct dv_db *db, const char *owner, int64_t eval_id,
                  int64_t job_id, int64_t snap_index, const char *why,
                  int *woken, struct dv_err *err);
/* Finishes an evaluation with status ("complete", "pending" to give it
 * back) and a description. */
int db_finish_eval(struct dv_db *db, const char *owner, int64_t eval_id,
                   const char *status, const char *description,
                   struct dv_err *err);
/* Wakes blocked evaluations that freed capacity could now fit; returns how
 * many, or -1. Notifies "evals" when any. */
int db_unblock(struct dv_db *db, struct dv_err *err);
/* Returns expired leases to pending; returns how many, or -1. */
int db_reap_leases(struct dv_db *db, double now, struct dv_err *err);

/* worker.c */
struct sched_shared {
    const struct sched_config *cfg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t generation; /* bumped on every wake-up hint */
    int stopping;
    /* counters, under lock */
    uint64_t placed;
    uint64_t blocked;
    uint64_t conflicts;
};

struct sched_worker {
    struct sched_shared *shared;
    int index;
    char owner[128];
    pthread_t thread;
};

void *worker_main(void *arg);
/* Handles one leased evaluation. */
void worker_process(struct sched_worker *w, struct dv_db *db,
                    const struct sched_eval *ev);
void shared_wake(struct sched_shared *shared);

#endif
