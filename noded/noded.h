/*
 * drover-noded internals, grouped by file. The daemon fingerprints its host
 * with hwloc, registers with qmgr, long-polls for its allocations and runs
 * them (fork/exec as the job owner, bound to the granted cores: a PBS
 * script, or every task of a native group) on one libev loop. With
 * --simulate N the same client code drives N virtual nodes whose
 * allocations are timers (sim.c). docs/internals/noded.md explains the
 * state machines.
 */
#ifndef DV_NODED_H
#define DV_NODED_H

#include <ev.h>
#include <hwloc.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "lib/err.h"
#include "lib/job.h"
#include "lib/mem.h"

struct dv_http_async;
struct noded;

/* ---- main.c / config ---------------------------------------------------- */

struct noded_config {
    char *server;   /* qmgr base address */
    char *name;     /* node name; NULL: short host name */
    char *data_dir; /* <data_dir>/alloc/<id>/ per allocation */
    char *datacenter;
    char *pool;
    char *node_class; /* NULL: none */
    char *meta;       /* "key=value,key=value": labels for constraints */
    char *topology_xml;       /* load this hwloc XML instead of the host */
    char *topology_synthetic; /* or this hwloc synthetic description */
    int64_t memory;           /* bytes; 0: what hwloc found */
    int allow_root;           /* run root-owned jobs as root */
    double kill_grace;        /* Drover seconds from SIGTERM to SIGKILL */
    int memory_cgroup;        /* enforce job memory with cgroups if usable */
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    char *log_level;
    char *log_file;
    int64_t disk;     /* bytes offered for ephemeral disk; 0: free space of
                         data_dir */
    int64_t simulate; /* virtual nodes; 0: this host */
    char *simulate_topology; /* their hwloc synthetic topology */
    int simulate_mix;        /* heterogeneous sizes, some with GPUs */
    int simulate_running;    /* report "running" (else only the end) */
};

/* ---- topology.c: the hwloc fingerprint ---------------------------------- */

struct topology_core {
    int index;   /* hwloc logical core index: what allocations' cpusets use */
    int numa;    /* logical index of its NUMA node; -1: none */
    int package; /* logical index of its package; -1: none */
    char *pus;   /* OS indexes of its PUs, hwloc list syntax ("0,8") */
};

struct topology_numa {
    int index; /* logical index */
    unsigned os_index;
    uint64_t memory; /* bytes; 0 when the topology does not say */
    char *cores;     /* logical core indexes in hwloc list syntax */
};

struct topology_package {
    int index;
    char *cores;
    char *cpu_model; /* the CPUModel info, or NULL */
};

struct topology_gpu {
    int index;   /* 0..ngpus-1 in topology order */
    char *name;  /* OS device name ("nvml0", "cuda0"), or the PCI bus id */
    char *pci;   /* "0000:34:00.0", or NULL */
    char *model; /* GPUModel or PCIDevice info, or NULL */
    int numa;    /* logical index of the nearest NUMA node; -1: unknown */
    int package; /* -1: unknown */
};

struct topology {
    hwloc_topology_t topo;
    int is_thissystem; /* 0 for XML and synthetic topologies */
    int npackages, nnuma, ncores, npus, ngpus;
    uint64_t memory; /* total bytes (or the --memory override) */
    struct topology_package *packages;
    struct topology_numa *numa;
    struct topology_core *cores;
    struct topology_gpu *gpus;
    hwloc_obj_t *core_objs; /* by logical core index; PUs when the
                               topology has no core objects */
    char *cpu_model;        /* the first package's CPUModel, or NULL */
};

/* Loads the host's topology, or xml (a file) or synthetic (hwloc's
 * synthetic syntax) when not NULL, and fingerprints it. memory > 0
 * replaces the total memory. Returns a new topology (caller frees with
 * topology_free), or NULL with err set. */
struct topology *topology_load(const char *xml, const char *synthetic,
                               int64_t memory, struct dv_err *err);
void topology_free(struct topology *t);
/* The union of the PU sets of the given logical cores ("0-1,4"). Returns a
 * new bitmap (caller frees with hwloc_bitmap_free), or NULL with err set
 * when cores does not parse or names a core the topology lacks. */
hwloc_bitmap_t topology_cores_pus(const struct topology *t, const char *cores,
                                  struct dv_err *err);
/* The same as an hwloc list of PU OS indexes; new string, caller frees. */
char *topology_cores_pus_text(const struct topology *t, const char *cores,
                              struct dv_err *err);
/* {"resources": ..., "topology": ..., "attributes": ...} as docs/api.md's
 * register body wants them (the caller adds name, datacenter, pool and
 * address, and resources.disk). hostname is the value of the "hostname"
 * attribute. Returns a new reference. */
json_t *topology_fingerprint_json(const struct topology *t,
                                  const char *hostname);
/* Gives t n made-up GPUs (simulated nodes: synthetic topologies have
 * none), spread over its NUMA nodes. */
void topology_fake_gpus(struct topology *t, int n);

/* ---- env.c: the job's environment, nodefile and output paths ------------ */

/* The job owner as the password database knows them. */
struct env_user {
    char *name;
    uid_t uid;
    gid_t gid;
    char *home;  /* "/" when empty */
    char *shell; /* "/bin/sh" when empty */
    gid_t *groups;
    int ngroups;
};

/* Looks up name (getpwnam_r, getgrouplist). Returns 0, or -1 with err set
 * (DV_ENOTFOUND when the user does not exist). Cleanup with
 * env_user_cleanup even on failure. */
int env_user_lookup(const char *name, struct env_user *u, struct dv_err *err);
void env_user_cleanup(struct env_user *u);

/* What the environment of chunk 0 is made from; all borrowed. */
struct env_info {
    const struct dv_job_spec *spec;
    const struct env_user *user;
    const char *job_id_str; /* "12.srv" */
    long long job_id;
    long long alloc_id;
    const char *queue;
    int ncpus;
    int ompthreads;     /* the chunk's ompthreads; 0: ncpus */
    const char *cpuset; /* granted logical cores */
    const char *alloc_dir;
    const char *nodefile;
    const char *node_name;
    const char *gpus; /* granted GPU indexes, or NULL */
    int array_index;  /* a subjob's PBS_ARRAY_INDEX */
    const char *array_id; /* PBS_ARRAY_ID ("124[].srv"); NULL: no subjob */
    const char *server; /* qmgr's address: DROVER_ADDR (pbsdsh), or NULL */
};

/* What a native task's environment is made from; all borrowed. */
struct env_task_info {
    const struct dv_task *task;
    const struct env_user *user;
    const char *job_name;
    long long job_id;
    const char *job_id_str;
    long long alloc_id;
    int instance; /* the group instance: DROVER_ALLOC_INDEX */
    const char *group;
    const char *cpuset;
    const char *gpus;
    int ncpus;
    int64_t mem;
    const char *alloc_dir;
    const char *node_name;
};

/* Builds the job's environment: the spec's env list, then (replacing
 * entries of the same name) HOME LOGNAME USER SHELL PATH PBS_* NCPUS
 * OMP_NUM_THREADS TMPDIR DROVER_*. Returns a new NULL-terminated array
 * (caller frees with env_free). */
char **env_build(const struct env_info *in);
void env_free(char **env);
/* A native task's environment: its env (name -> value), then HOME
 * LOGNAME USER SHELL PATH TMPDIR, DROVER_* (JOB_ID ALLOC_ID ALLOC_INDEX
 * GROUP TASK CPUSET ...), NOMAD_* (ALLOC_INDEX ALLOC_ID ALLOC_DIR
 * TASK_NAME GROUP_NAME JOB_NAME ...) and CUDA_VISIBLE_DEVICES. New array
 * (free with env_free). */
char **env_build_task(const struct env_task_info *in);
/* The value of name in env, or NULL; borrowed. */
const char *env_get(char *const *env, const char *name);
/* Sets name=value in *env (a NULL-terminated array from env_build),
 * replacing an entry of the same name. */
void env_set(char ***env, const char *name, const char *value);

struct alloc_host {
    char *host;
    int ncpus;
    int mpiprocs; /* the chunk's mpiprocs; 0: one line per core */
};

/* PBS_NODEFILE's content: each host repeated mpiprocs times (ncpus times
 * when it has none), one per line, in chunk order. With no hosts, self
 * repeated ncpus times. New string; caller frees. */
char *env_nodefile(const struct alloc_host *hosts, int nhosts, const char *self,
                   int ncpus);
/* The path of an output file: spec_path without a leading "host:", made
 * absolute against dir when relative; when spec_path is NULL,
 * "<home>/<name>.<kind><seq>" (kind 'o' or 'e'). New string; caller frees. */
char *env_output_path(const char *spec_path, const char *dir, const char *home,
                      const char *name, long long seq, char kind);
/* Replaces every "^array_index^" (DV_ARRAY_INDEX_TOKEN) in *path with
 * index (PBS's subjob output names); *path is replaced. */
void env_array_path(char **path, int index);
/* The paths execvp would try for cmd with search path path (cmd itself
 * when it holds a slash). New NULL-terminated array; free with env_free. */
char **env_exec_candidates(const char *cmd, const char *path);

/* ---- spawn.c: fork/exec of a job's process ------------------------------ */

enum spawn_join {
    SPAWN_JOIN_NONE = 0, /* separate stdout and stderr files */
    SPAWN_JOIN_OE,       /* stderr into the stdout file */
    SPAWN_JOIN_EO,       /* stdout into the stderr file */
};

/* Everything the child needs, prepared by the parent (the child makes
 * system calls only). All borrowed. */
struct spawn_req {
    char **candidates; /* paths to execve, tried in order (PATH search) */
    char **argv;       /* NULL-terminated */
    char **envp;       /* NULL-terminated; the whole environment */
    const char *stdout_path;
    const char *stderr_path;
    enum spawn_join join;
    const char *cwd;          /* chdir here... */
    const char *cwd_fallback; /* ...or here when that fails */
    int set_identity;         /* switch to uid/gid/groups (needs root) */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int ngroups;
    hwloc_topology_t topo; /* with cpuset: bind to these PUs */
    hwloc_const_bitmap_t cpuset;
    mode_t umask;
    int append; /* open the outputs for appending (restarted tasks) */
};

/* What the child reports through the close-on-exec pipe. */
enum spawn_stage {
    SPAWN_STAGE_SETSID = 1,
    SPAWN_STAGE_BIND, /* a warning: the job runs unbound */
    SPAWN_STAGE_GROUPS,
    SPAWN_STAGE_SETGID,
    SPAWN_STAGE_SETUID,
    SPAWN_STAGE_STDIN,
    SPAWN_STAGE_STDOUT,
    SPAWN_STAGE_STDERR,
    SPAWN_STAGE_CHDIR, /* a warning: the fallback directory is used */
    SPAWN_STAGE_EXEC,
};

struct spawn_report {
    int32_t stage;  /* enum spawn_stage */
    int32_t errnum; /* errno */
    int32_t fatal;  /* 1: the child exits 127 without running the job */
};

/* Forks and execs req in a new session. On success *pid is the child (and
 * its process group) and *report_fd the read end of the report pipe
 * (non-blocking, close-on-exec; caller closes). Returns 0, or -1 with err
 * set (nothing was started). */
int spawn_child(const struct spawn_req *req, pid_t *pid, int *report_fd,
                struct dv_err *err);
/* Reads whole reports available on fd into out (at most max). Returns the
 * number read, 0 at end of file or when nothing is there, -1 on a read
 * error; *eof is set at end of file. */
int spawn_read_reports(int fd, struct spawn_report *out, int max, int *eof);
/* "could not open output file" and the like for a stage. */
const char *spawn_stage_text(int stage);
/* The start time of process pid (field 22 of /proc/<pid>/stat, clock ticks
 * since boot), which tells a process from a later one with the same pid.
 * Returns 0 or -1. */
int spawn_proc_starttime(pid_t pid, unsigned long long *start);
/* PBS's exit status for a wait status: the exit code 0-255, 256+N for a
 * signal N. */
int spawn_wait_status(int wstatus);

/* ---- allocdir.c: the allocation's directory ----------------------------- */

/* Creates <data_dir>/alloc/ when missing and checks that the daemon can
 * write there. Returns 0 or -1 with err set. */
int allocdir_init(const char *data_dir, struct dv_err *err);
/* Creates <data_dir>/alloc/<id>/ (root-owned 0755 when root) with local/,
 * tmp/, secrets/ (0700, owned by uid/gid when chown is set), removing an
 * older one first. Returns the new path (caller frees), or NULL with err
 * set. */
char *allocdir_create(const char *data_dir, long long id, int chown_to,
                      uid_t uid, gid_t gid, struct dv_err *err);
/* Writes a file at path with content and mode (O_EXCL, O_NOFOLLOW),
 * chowned when chown_to is set. Returns 0 or -1 with err set. */
int allocdir_write(const char *path, const char *content, mode_t mode,
                   int chown_to, uid_t uid, gid_t gid, struct dv_err *err);
/* Removes path and everything under it without following symbolic links.
 * A missing path is not an error. Returns 0 or -1 with err set. */
int allocdir_remove(const char *path, struct dv_err *err);

/* ---- native.c: native task groups (docs/jobspec.md) -------------------- */

/* Where a task is in its restart policy (restart { attempts, interval,
 * delay, mode }). */
struct restart_state {
    int restarts;        /* within the current interval */
    double window_start; /* Drover seconds; 0: no failure yet */
};

/* A task failed at now: 1 with *delay (Drover seconds) when it is to be
 * restarted after *delay, 0 when the allocation fails (mode fail, attempts
 * used up). Mode delay waits for the interval to end, then starts a new
 * one. Pure. */
int native_restart_decide(const struct dv_restart *policy,
                          struct restart_state *st, double now, double *delay);
/* The group of a decoded native spec for an allocation's group_index, or
 * NULL with msg set (size bytes). Borrowed from spec. */
const struct dv_group *native_group(const struct dv_job_spec *spec,
                                    int group_index, char *msg, size_t size);
/* Whether a job spec (JSON, as the long poll sends it) is native. */
int native_spec_is(const json_t *spec);

/* ---- alloc.c: allocation lifecycle -------------------------------------- */

/* An allocation as the long poll describes it (decoded by client.c). The
 * strings and JSON values are borrowed from the answer (struct
 * poll_answer), which outlives the reconcile. */
struct alloc_desc {
    long long id;
    long long job_id;
    const char *job_id_str;
    int group_index;
    int instance;
    int chunk_index;
    int array_index;           /* a subjob's index; -1: not an array job */
    const char *array_id;      /* "124[].srv" for subjobs, else NULL */
    int desired_run;           /* desired_status "run" (else "stop") */
    const char *client_status; /* pending running complete failed lost */
    int ncpus;
    int64_t mem;
    const char *gpus; /* granted GPU indexes ("0-1"), "" when none */
    int64_t disk;
    const char *cpuset;
    int64_t walltime; /* seconds; 0: none */
    const char *queue;
    const char *signal; /* qsig: a number, "suspend" or "resume"; or NULL */
    int signal_seq;     /* how many signals were requested */
    json_t *job;        /* the job's spec ("jobs" of the answer), or NULL: only
                           sent for allocations to start */
    json_t *hosts; /* PBS chunk 0: the job's hosts (PBS_NODEFILE), or NULL */
    json_t *tasks; /* pbsdsh tasks to start here (dsh.c), or NULL */
};

/* A decoded long-poll answer. */
struct poll_answer {
    json_t *root; /* owns everything the descs borrow */
    long long index;
    int full; /* lists every active allocation (else: changes only) */
    struct alloc_desc *descs;
    int n;
};

void poll_answer_cleanup(struct poll_answer *ans);

enum alloc_state {
    ALLOC_RUNNING,  /* its tasks run (or wait to restart), or the chunk
                       holds its resources (PBS chunks other than 0) */
    ALLOC_STOPPING, /* SIGTERM sent (qdel, walltime, shutdown, dropped by
                       qmgr, fenced); SIGKILL when the grace period ends */
    ALLOC_DONE,     /* ended; its final status is queued or delivered. Kept
                       until an answer newer than the acknowledgement, so
                       that it is never run twice nor reported lost */
};

enum alloc_stop {
    ALLOC_STOP_NONE = 0,
    ALLOC_STOP_DESIRED,  /* desired_status stop (qdel, job ended) */
    ALLOC_STOP_MISSING,  /* no longer listed by qmgr, or listed lost */
    ALLOC_STOP_WALLTIME, /* walltime exceeded: exit -29 */
    ALLOC_STOP_SHUTDOWN, /* the daemon is stopping */
    ALLOC_STOP_FENCED,   /* heartbeats failed for longer than the TTL */
    ALLOC_STOP_FAILED,   /* a native task failed beyond its restart policy */
    ALLOC_STOP_MEM,      /* the job exceeded its memory: exit -27 */
};

enum task_state {
    TASK_RUNNING, /* its process runs */
    TASK_WAITING, /* failed; restarts when restart_w fires */
    TASK_EXITED,  /* ended for good */
};

/* One process of an allocation: the PBS script, or a native task. What
 * its (re)starts need is kept with it. */
struct alloc_task {
    struct alloc *a;
    char *name;
    char **argv;
    char **env;
    char **cands; /* PATH candidates for argv[0] */
    char *out_path;
    char *err_path;
    char *cwd;
    enum spawn_join join;
    enum task_state state;
    pid_t pid;     /* 0: none */
    int report_fd; /* -1 once closed */
    ev_io report_w;
    struct spawn_report fail; /* fatal report from the child */
    int have_fail;
    int status; /* PBS exit status of its last run */
    struct restart_state rs;
    ev_timer restart_w;
    struct rusage ru; /* summed over its runs */
    uid_t uid;        /* who it runs as (the task's user, or the owner) */
    gid_t gid;
    gid_t *groups;
    int ngroups;
    int switch_user;
};

struct dsh_task;

struct alloc {
    struct alloc *next;
    struct noded *nd;
    long long id;
    long long job_id;
    char *job_id_str;
    int chunk_index;
    int group_index;
    int instance;
    int array_index; /* -1: not a subjob */
    char *array_id;
    int native;
    int ncpus;
    char *cpuset;
    char *gpus;
    int64_t walltime;
    int signal_seq;   /* qsig requests delivered (or older than the start) */
    int64_t mem;      /* bytes requested; 0: no limit */
    int mem_exceeded; /* the memory limit was crossed (JOB_EXEC_KILL_MEM) */
    char *cgroup;     /* the task's memory cgroup directory, or NULL */
    int cgroup_v2;    /* ... in the v2 hierarchy (else v1) */
    ev_timer mem_w;   /* samples the task tree's RSS (no cgroup) */
    enum alloc_state state;
    enum alloc_stop reason;
    char *dir; /* <data_dir>/alloc/<id>, or NULL */
    double start_time;
    struct alloc_task *tasks; /* none for PBS chunks other than 0 */
    int ntasks;
    struct dv_restart restart; /* native: the group's policy */
    int failed_task;           /* ALLOC_STOP_FAILED: which, else -1 */
    hwloc_bitmap_t pus;        /* bind the tasks here, or NULL */
    ev_timer walltime_w;
    ev_timer kill_w;
    int final_queued;            /* the terminal update is queued */
    int final_acked;             /* ... and qmgr acknowledged it */
    unsigned long ack_gen;       /* the poll in flight when it was */
    struct status_update *run_u; /* its queued "running" update */
    struct dsh_task *dsh;        /* pbsdsh tasks started in it (dsh.c) */
};

/* Brings the allocations in line with a long-poll answer to the poll of
 * generation gen: starts new ones that should run, stops ones to stop,
 * lost, or (full answers) no longer listed, reports ones listed as running
 * that this daemon does not own as lost, forgets finished ones whose
 * acknowledgement is older than the poll. */
void alloc_reconcile(struct noded *nd, const struct poll_answer *ans,
                     unsigned long gen);
/* Stops a for exceeding its memory (memlimit.c). */
void alloc_stop_mem(struct alloc *a);

/* memlimit.c: the memory limit of a PBS job's script. */
/* Puts pid into a cgroup limited to a->mem (v1, or v2 where delegated),
 * else warns once; starts the sampling timer that stops a when it
 * exceeds its memory. Does nothing when a->mem is 0. */
void memlimit_start(struct alloc *a, pid_t pid);
/* 1 when a exceeded its memory (sampled, or an OOM kill in its cgroup). */
int memlimit_exceeded(struct alloc *a);
/* Stops the sampling timer. */
void memlimit_stop(struct alloc *a);
/* Stops the timer and removes the cgroup. */
void memlimit_cleanup(struct alloc *a);
/* The RSS in bytes of the processes of session sid. */
long long memlimit_session_rss(pid_t sid);

/* Looks an allocation up by id; borrowed, or NULL. */
struct alloc *alloc_find(struct noded *nd, long long id);
/* "12.srv" (or "?"); borrowed. */
const char *alloc_job(const struct alloc *a);
/* Looks user name up for task t: who it runs as. Returns 0, or -1 with
 * msg set (unknown user, root refused, not root ourselves). */
int alloc_task_identity(struct alloc_task *t, const char *name,
                        struct env_user *u, char *msg, size_t size);
/* The binding of a's tasks and its directory, owned (inside) by u.
 * Returns 0, or -1 with msg set. */
int alloc_prepare(struct alloc *a, const struct env_user *u, char *msg,
                  size_t size);
/* Forks t (its argv, env, files and identity set). Returns 0, or -1 with
 * msg set. */
int alloc_task_launch(struct alloc_task *t, int append, char *msg, size_t size);
/* t's process was reaped: reads the child's last reports, closes the
 * pipe. */
void alloc_task_reaped(struct alloc_task *t);
/* Frees what t owns (watchers stopped). */
void alloc_task_cleanup(struct alloc_task *t);
/* Stops every allocation (SIGTERM, SIGKILL after the grace period). */
void alloc_stop_all(struct noded *nd, enum alloc_stop reason);
/* Reaps ended task processes with wait4 (SIGCHLD). */
void alloc_reap(struct noded *nd);
/* Allocations not yet DONE. */
int alloc_active_count(const struct noded *nd);
/* qmgr acknowledged the terminal update of allocation id. */
void alloc_final_acked(struct noded *nd, long long id);
/* The "running" update u leaves the queue (sent or dropped): the
 * allocation must not point at it any more. */
void alloc_update_gone(struct noded *nd, const struct status_update *u);
/* Stops every watcher and frees every allocation (processes are left
 * alone). */
void alloc_free_all(struct noded *nd);
/* The final exit status, client status ("complete", "failed") and message
 * (empty when none) of a PBS script from how it ended: the stop reason, the
 * wait status and a fatal report from the child (or NULL). */
int alloc_exit_status(enum alloc_stop reason, int wstatus,
                      const struct spawn_report *fail,
                      const char **client_status, char *msg, size_t size);

/* ---- dsh.c: pbsdsh tasks ------------------------------------------------- */

/* One pbsdsh task: a command qmgr asked this node to run in one of a
 * job's allocations, as the job's owner, with the job's environment. */
struct dsh_task {
    struct dsh_task *next;
    long long id;
    int node_index; /* PBS_NODENUM */
    int tasknum;    /* PBS_TASKNUM */
    struct alloc_task t;
    int started;  /* t.pid was forked (else: could not start) */
    int done;     /* ended: t.status holds the PBS exit status */
    int sending;  /* its end is in the POST in flight */
    int reported; /* qmgr acknowledged its end */
    char *message;
};

/* Starts the tasks of d->tasks that a does not know yet (d->job: the
 * job's spec). Tasks that cannot start are reported failed (-1). */
void dsh_start(struct alloc *a, const struct alloc_desc *d);
/* Reaps ended task processes of every allocation (SIGCHLD). */
void dsh_reap(struct noded *nd);
/* Signals the process group of every running task of a. */
void dsh_signal(struct alloc *a, int sig);
/* Tasks of a still running or not yet reported. */
int dsh_busy(const struct alloc *a);
/* Frees a's tasks (their processes are killed). */
void dsh_free(struct alloc *a);
/* Initialises and stops the report timer (noded_init, noded_cleanup). */
void dsh_init(struct noded *nd);
void dsh_cleanup(struct noded *nd);
/* Makes text fit a JSON string and a PostgreSQL text value: NUL bytes
 * and invalid UTF-8 become '?'. In place. */
void dsh_sanitize(char *text, size_t len);

/* ---- client.c: talking to qmgr ------------------------------------------ */

/* One allocation status update, queued until qmgr acknowledges it. */
struct status_update {
    struct status_update *next;
    long long alloc_id;
    const char *client_status; /* static: "running", "complete", ... */
    double time;
    int has_exit;
    int exit_status;
    char *message; /* or NULL; owned */
    int has_used;
    int64_t cput;     /* seconds */
    int64_t walltime; /* seconds */
    int64_t mem;      /* bytes */
    int dropped;      /* superseded ("running" of an allocation that ended
                         before it was sent): skipped when sending */
    int sent;         /* in the POST in flight */
};

/* Returns a new zeroed update for alloc id (caller queues or frees). */
struct status_update *status_update_new(long long alloc_id,
                                        const char *client_status);
void status_update_free(struct status_update *u);
/* Queues u (takes ownership) and schedules a batched POST. */
void client_queue_update(struct noded *nd, struct status_update *u);
/* A queued update not yet sent is no longer needed: it will not be sent
 * (the terminal update that follows says it all). Borrowed u. */
void client_drop_update(struct noded *nd, struct status_update *u);
/* Encodes up to n updates from u on (dropped ones skipped): {"updates":
 * [...]}. Returns a new reference. */
json_t *client_updates_json(const struct status_update *u, int n);
/* Decodes a long-poll answer body ({"index", "full", "allocations",
 * "jobs"}). Returns 0, or -1 with err set (nothing to clean up). */
int client_decode_allocations(const char *body, struct poll_answer *ans,
                              struct dv_err *err);
/* Initialises the client's watchers (noded_init calls it). */
void client_init(struct noded *nd);
/* Starts the HTTP client (or uses nd->http when set: simulated nodes
 * share one), registers after delay seconds and, once registered,
 * heartbeats and long-polls. Returns 0, or -1 with err set. */
int client_start(struct noded *nd, double delay, struct dv_err *err);
/* Stops polling and heartbeats; queued updates keep being sent. */
void client_stop_polling(struct noded *nd);
/* Stops every watcher of the client and frees the HTTP client (when this
 * node owns it) and the queue. */
void client_cleanup(struct noded *nd);
/* The register body of nd (fingerprint, name, pool, class, meta, address,
 * disk). New reference. */
json_t *client_register_body(struct noded *nd);
/* --meta "key=value,key=value" as a JSON object of strings ("" or NULL:
 * empty). NULL with err set (invalid_config) when an item has no key. */
json_t *noded_meta_parse(const char *text, struct dv_err *err);

/* ---- sim.c: simulated nodes (--simulate N) ------------------------------ */

struct sim;

/* Builds the N virtual nodes of cfg (names <name>-<i>, topologies from
 * --simulate-topology or the --simulate-mix set, one HTTP client) on loop.
 * Returns a new simulation (caller frees with sim_free), or NULL with err
 * set. */
struct sim *sim_new(struct ev_loop *loop, const struct noded_config *cfg,
                    struct dv_err *err);
/* Registers every node (spread over a few seconds) and starts the signal
 * watchers. Returns 0 or -1 with err set. */
int sim_start(struct sim *s, struct dv_err *err);
/* The exit status once the loop ended. */
int sim_exit_status(const struct sim *s);
/* SIGHUP calls cb with the first node. */
void sim_set_reload(struct sim *s, void (*cb)(struct noded *nd));
void sim_free(struct sim *s);
/* Hooks of alloc.c for a simulated node. */
void sim_reconcile(struct noded *nd, const struct poll_answer *ans,
                   unsigned long gen);
void sim_stop_all(struct noded *nd, enum alloc_stop reason);
int sim_active_count(const struct noded *nd);
void sim_final_acked(struct noded *nd, long long id);
void sim_update_gone(struct noded *nd, const struct status_update *u);
void sim_free_node(struct noded *nd);
int sim_known(struct noded *nd, long long id);
/* A simulated node finished its orderly stop. */
void sim_node_done(struct noded *nd);
/* How long an allocation of job spec runs (Drover seconds): the job's
 * meta "drover.sim_runtime" (or a PBS job's DROVER_SIM_RUNTIME variable),
 * else walltime; -1: until stopped (an explicit 0 ends the allocation at
 * the next tick of the wheel). *over is set when the runtime is cut
 * by the walltime (the allocation then fails with -29). Pure. */
double sim_runtime(const json_t *spec, int64_t walltime, int *over);

/* ---- daemon.c: the daemon as a whole ------------------------------------ */

enum noded_state {
    NODED_RUNNING,  /* registering or registered, polling */
    NODED_STOPPING, /* SIGTERM: jobs are being stopped, updates flushed */
};

/* Retry delay: 0.5 s doubling to 10 s, reset on success. */
struct backoff {
    double cur;
};

struct sim_node;

struct noded {
    struct ev_loop *loop;
    const struct noded_config *cfg; /* borrowed */
    struct topology *topo;          /* borrowed */
    char *name;                     /* node name (owned) */
    char *hostname;                 /* full host name */
    int64_t disk;                   /* bytes offered */
    enum noded_state state;
    struct alloc *allocs;
    struct sim *sim;          /* simulated: the simulation (borrowed) */
    struct sim_node *simnode; /* ... and this node's part of it (owned) */

    /* client.c */
    struct dv_http_async *http; /* NULL: updates are only queued (tests) */
    int owns_http;              /* frees http at cleanup */
    long long node_id;          /* 0: never registered */
    int registered;             /* node_id is valid now */
    double ttl;                 /* Drover seconds */
    long long index;            /* long-poll index */
    unsigned long poll_gen;     /* long polls sent; the one in flight */
    int registering;            /* a register request is in flight */
    int polling;                /* a long poll is in flight */
    int heartbeating;
    double hb_sent;     /* real time the heartbeat in flight was sent */
    double hb_ok;       /* real time of the last accepted one's sending */
    int fenced;         /* jobs stopped: no heartbeat got through for a TTL */
    int posting;        /* a status POST is in flight */
    int post_count;     /* how many queued updates it covers */
    int post_live;      /* ... of which not dropped */
    int post_isolate;   /* updates left to send one per POST (a batch was
                           rejected as invalid) */
    int stop_poll;      /* no more long polls (shutting down) */
    int hb_failing;     /* the last heartbeat failed (warn once) */
    int poll_failing;   /* the last long poll failed (warn once) */
    int post_failing;   /* the last status POST failed (warn once) */
    double batch_delay; /* real seconds to gather updates into one POST */
    double hb_phase;    /* first heartbeat after this part of TTL/3 */
    struct backoff register_bo, poll_bo, post_bo;
    struct status_update *updates; /* queue, oldest first */
    struct status_update **updates_tail;
    int nupdates;
    ev_timer register_w;
    ev_timer heartbeat_w;
    ev_timer fence_w;
    ev_timer poll_w;
    ev_timer post_w;
    ev_timer dsh_w; /* dsh.c: sends task ends, retries */
    int dsh_posting;
    int dsh_failing;

    /* daemon.c */
    ev_signal sigchld_w; /* reaps jobs with wait4 (see alloc_reap) */
    ev_signal sigterm_w, sigint_w, sighup_w;
    ev_timer shutdown_w;                 /* bounds the final flush */
    void (*reload_cb)(struct noded *nd); /* SIGHUP */
    void *reload_arg;
    int exit_status;
};

/* Initialises nd on loop (name: cfg->name). The loop must not be libev's
 * default loop, whose own SIGCHLD watcher reaps every child without
 * rusage (docs/internals/noded.md). cfg and topo are borrowed and must
 * outlive nd. A real node starts its SIGCHLD watcher. */
void noded_init(struct noded *nd, struct ev_loop *loop,
                const struct noded_config *cfg, struct topology *topo);
void noded_cleanup(struct noded *nd);
/* Starts the signal watchers (SIGTERM, SIGINT: stop; SIGHUP: reload). */
void noded_start_signals(struct noded *nd);
/* Begins the orderly stop: no more polling, SIGTERM to every job, SIGKILL
 * after the grace period, final updates flushed, then the loop ends. */
void noded_shutdown(struct noded *nd);
/* Called when an allocation ends or the update queue drains: ends the loop
 * (or tells the simulation) once a stopping daemon has nothing left. */
void noded_check_done(struct noded *nd);
/* The free space under path in bytes (statvfs), 0 when unknown. */
int64_t noded_disk_space(const char *path);
/* Raises RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
long noded_raise_nofile(void);

double backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

#endif
