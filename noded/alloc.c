/*
 * Allocation lifecycle: start what qmgr assigns (chunk 0 runs the job,
 * other chunks hold their cores), enforce walltime, stop on request with
 * SIGTERM then SIGKILL, reap with wait4 for the exit status and rusage,
 * and queue status updates. The states are in noded.h (enum alloc_state);
 * docs/internals/noded.md draws the machine.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define JOB_EXEC_FAIL1 (-1)
#define JOB_EXEC_KILL_WALLTIME (-29)
/* qdel of an allocation that never started: as if SIGTERM had ended it. */
#define ALLOC_STATUS_DELETED (256 + SIGTERM)

void
alloc_desc_init(struct alloc_desc *d)
{
    memset(d, 0, sizeof(*d));
    dv_job_spec_init(&d->spec);
}

void
alloc_desc_cleanup(struct alloc_desc *d)
{
    free(d->job_id_str);
    free(d->client_status);
    free(d->cpuset);
    free(d->queue);
    free(d->spec_error);
    dv_job_spec_cleanup(&d->spec);
    for (int i = 0; i < d->nhosts; i++) {
        free(d->hosts[i].host);
    }
    free(d->hosts);
    memset(d, 0, sizeof(*d));
}

struct alloc *
alloc_find(struct noded *nd, long long id)
{
    for (struct alloc *a = nd->allocs; a != NULL; a = a->next) {
        if (a->id == id) {
            return a;
        }
    }
    return NULL;
}

int
alloc_active_count(const struct noded *nd)
{
    int n = 0;

    for (const struct alloc *a = nd->allocs; a != NULL; a = a->next) {
        if (a->state != ALLOC_DONE) {
            n++;
        }
    }
    return n;
}

static const char *
alloc_job(const struct alloc *a)
{
    return a->job_id_str != NULL ? a->job_id_str : "?";
}

static void
alloc_close_report(struct alloc *a)
{
    if (a->report_fd >= 0) {
        ev_io_stop(a->nd->loop, &a->report_w);
        close(a->report_fd);
        a->report_fd = -1;
    }
}

static void
alloc_free(struct alloc *a)
{
    if (a == NULL) {
        return;
    }
    ev_timer_stop(a->nd->loop, &a->walltime_w);
    ev_timer_stop(a->nd->loop, &a->kill_w);
    alloc_close_report(a);
    free(a->job_id_str);
    free(a->cpuset);
    free(a->dir);
    free(a);
}

void
alloc_free_all(struct noded *nd)
{
    while (nd->allocs != NULL) {
        struct alloc *a = nd->allocs;

        nd->allocs = a->next;
        alloc_free(a);
    }
}

/* Drops a from the list and frees it with its directory. */
static void
alloc_forget(struct alloc *a)
{
    struct noded *nd = a->nd;
    struct dv_err err;

    for (struct alloc **pp = &nd->allocs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    if (a->dir != NULL && allocdir_remove(a->dir, &err) < 0) {
        log_warn("allocation %lld: %s", a->id, err.msg);
    }
    log_debug("allocation %lld of job %s forgotten", a->id, alloc_job(a));
    alloc_free(a);
}

static struct alloc *
alloc_new(struct noded *nd, const struct alloc_desc *d)
{
    struct alloc *a = dv_xcalloc(1, sizeof(*a));
    struct alloc **pp = &nd->allocs;

    a->nd = nd;
    a->id = d->id;
    a->job_id = d->job_id;
    a->job_id_str = dv_xstrdup(d->job_id_str);
    if (a->job_id_str == NULL) {
        a->job_id_str = dv_xasprintf("%lld", d->job_id);
    }
    a->chunk_index = d->chunk_index;
    a->ncpus = d->ncpus;
    a->cpuset = dv_xstrdup(d->cpuset != NULL ? d->cpuset : "");
    a->walltime = d->walltime;
    a->state = ALLOC_RUNNING;
    a->listed = 1; /* made from a long-poll answer */
    a->report_fd = -1;
    a->start_time = dv_now();
    ev_init(&a->walltime_w, NULL);
    ev_init(&a->kill_w, NULL);
    ev_init(&a->report_w, NULL);
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = a;
    return a;
}

/* Queues a's terminal update and marks it DONE. */
static void
alloc_finish(struct alloc *a, const char *client_status, int has_exit,
             int exit_status, const char *msg, const struct rusage *ru)
{
    struct status_update *u = status_update_new(a->id, client_status);

    u->time = dv_now();
    u->has_exit = has_exit;
    u->exit_status = exit_status;
    u->message = dv_str_empty(msg) ? NULL : dv_xstrdup(msg);
    if (ru != NULL) {
        double cput =
            (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
            (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
        double wall = u->time - a->start_time;

        u->has_used = 1;
        u->cput = (int64_t)llround(cput);
        u->walltime = wall > 0 ? (int64_t)llround(wall) : 0;
        u->mem = (int64_t)ru->ru_maxrss * 1024;
    }
    ev_timer_stop(a->nd->loop, &a->walltime_w);
    ev_timer_stop(a->nd->loop, &a->kill_w);
    a->state = ALLOC_DONE;
    a->final_queued = 1;
    client_queue_update(a->nd, u);
    noded_check_done(a->nd);
}

static void
alloc_start_failed(struct alloc *a, const char *msg)
{
    log_error("could not start allocation %lld of job %s: %s", a->id,
              alloc_job(a), msg);
    alloc_finish(a, "failed", 1, JOB_EXEC_FAIL1, msg, NULL);
}

static void
alloc_queue_running(struct alloc *a)
{
    struct status_update *u = status_update_new(a->id, "running");

    u->time = a->start_time;
    client_queue_update(a->nd, u);
}

int
alloc_exit_status(enum alloc_stop reason, int wstatus,
                  const struct spawn_report *fail, const char **client_status,
                  char *msg, size_t size)
{
    int status;

    msg[0] = '\0';
    if (fail != NULL && fail->fatal) {
        if (fail->stage == SPAWN_STAGE_EXEC) {
            /* As a shell would: 127 not found, 126 not executable. */
            status = fail->errnum == ENOENT ? 127 : 126;
        } else {
            status = JOB_EXEC_FAIL1;
        }
        snprintf(msg, size, "%s: %s", spawn_stage_text(fail->stage),
                 strerror(fail->errnum));
        *client_status = "failed";
        return status;
    }
    if (reason == ALLOC_STOP_WALLTIME) {
        snprintf(msg, size, "exceeded resource walltime");
        *client_status = "failed";
        return JOB_EXEC_KILL_WALLTIME;
    }
    status = spawn_wait_status(wstatus);
    if (reason == ALLOC_STOP_SHUTDOWN) {
        snprintf(msg, size, "stopped by drover-noded shutting down");
    } else if (reason == ALLOC_STOP_MISSING) {
        snprintf(msg, size, "stopped: no longer assigned to this node");
    }
    *client_status = status == 0 ? "complete" : "failed";
    return status;
}

/* Signals the job's process group; before the child's setsid the group
 * does not exist yet, so the child itself gets it (its signals are
 * blocked until its handlers are reset, so it is not lost). */
static int
alloc_signal(struct alloc *a, int sig)
{
    if (killpg(a->pid, sig) == 0) {
        return 0;
    }
    if (errno == ESRCH) {
        return kill(a->pid, sig) == 0 || errno == ESRCH ? 0 : -1;
    }
    return -1;
}

static void
alloc_kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct alloc *a =
        (struct alloc *)((char *)w - offsetof(struct alloc, kill_w));

    (void)loop;
    (void)revents;
    if (a->state != ALLOC_STOPPING || a->pid <= 0) {
        return;
    }
    log_notice("allocation %lld of job %s did not stop within %gs: sending "
               "SIGKILL to process group %d",
               a->id, alloc_job(a), a->nd->cfg->kill_grace, (int)a->pid);
    if (alloc_signal(a, SIGKILL) < 0) {
        log_warn("could not kill process group %d of allocation %lld: %s",
                 (int)a->pid, a->id, strerror(errno));
    }
    alloc_reap(a->nd); /* in case SIGCHLD was missed */
}

/* Asks a to stop: chunk 0 gets SIGTERM now and SIGKILL after the grace
 * period; other chunks and allocations without a process end at once. */
static void
alloc_stop(struct alloc *a, enum alloc_stop reason)
{
    if (a->state != ALLOC_RUNNING) {
        return;
    }
    a->reason = reason;
    if (a->pid <= 0) {
        log_notice("allocation %lld of job %s (chunk %d) released", a->id,
                   alloc_job(a), a->chunk_index);
        alloc_finish(a, "complete", 1, 0, NULL, NULL);
        return;
    }
    log_notice("stopping allocation %lld of job %s (%s): SIGTERM to process "
               "group %d",
               a->id, alloc_job(a),
               reason == ALLOC_STOP_WALLTIME   ? "walltime exceeded"
               : reason == ALLOC_STOP_SHUTDOWN ? "shutdown"
               : reason == ALLOC_STOP_MISSING  ? "no longer assigned"
                                               : "stop requested",
               (int)a->pid);
    a->state = ALLOC_STOPPING;
    if (alloc_signal(a, SIGTERM) < 0) {
        log_warn("could not signal process group %d of allocation %lld: %s",
                 (int)a->pid, a->id, strerror(errno));
    }
    alloc_signal(a, SIGCONT); /* a stopped job must see the SIGTERM */
    ev_timer_init(&a->kill_w, alloc_kill_cb,
                  dv_clock_real_span(a->nd->cfg->kill_grace), 0.);
    ev_timer_start(a->nd->loop, &a->kill_w);
}

void
alloc_stop_all(struct noded *nd, enum alloc_stop reason)
{
    struct alloc *a = nd->allocs, *next;

    for (; a != NULL; a = next) {
        next = a->next; /* alloc_stop never frees, but be safe */
        alloc_stop(a, reason);
    }
}

static void
alloc_walltime_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct alloc *a =
        (struct alloc *)((char *)w - offsetof(struct alloc, walltime_w));

    (void)loop;
    (void)revents;
    log_notice("allocation %lld of job %s exceeded its walltime of %llds",
               a->id, alloc_job(a), (long long)a->walltime);
    alloc_stop(a, ALLOC_STOP_WALLTIME);
}

static void
alloc_read_reports(struct alloc *a)
{
    struct spawn_report r[8];
    int eof = 0, n;

    while (a->report_fd >= 0) {
        n = spawn_read_reports(a->report_fd, r, 8, &eof);
        for (int i = 0; i < n; i++) {
            if (r[i].fatal) {
                a->fail = r[i];
                a->have_fail = 1;
            } else {
                log_warn("allocation %lld of job %s: %s: %s (continuing)",
                         a->id, alloc_job(a), spawn_stage_text(r[i].stage),
                         strerror(r[i].errnum));
            }
        }
        if (eof || n < 0) {
            alloc_close_report(a);
        }
        if (n < 8) {
            break;
        }
    }
}

static void
alloc_report_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct alloc *a =
        (struct alloc *)((char *)w - offsetof(struct alloc, report_w));

    (void)loop;
    (void)revents;
    alloc_read_reports(a);
}

/* The job's process ended with wstatus and ru. */
static void
alloc_exited(struct alloc *a, int wstatus, const struct rusage *ru)
{
    const char *cs = "failed";
    char msg[512];
    int status;

    /* Whatever the job left behind in its session goes too (PBS does the
     * same at the end of a job). */
    killpg(a->pid, SIGKILL);
    alloc_read_reports(a);
    alloc_close_report(a);
    status =
        alloc_exit_status(a->reason, wstatus, a->have_fail ? &a->fail : NULL,
                          &cs, msg, sizeof(msg));
    log_notice("allocation %lld of job %s ended: exit status %d%s%s", a->id,
               alloc_job(a), status, msg[0] != '\0' ? ": " : "", msg);
    a->pid = 0;
    alloc_finish(a, cs, 1, status, msg, ru);
}

void
alloc_reap(struct noded *nd)
{
    struct alloc *a, *next;
    int st;
    pid_t p;

    for (a = nd->allocs; a != NULL; a = next) {
        struct rusage ru;

        next = a->next;
        if (a->pid <= 0 || a->state == ALLOC_DONE) {
            continue;
        }
        memset(&ru, 0, sizeof(ru));
        do {
            p = wait4(a->pid, &st, WNOHANG, &ru);
        } while (p < 0 && errno == EINTR);
        if (p == a->pid) {
            alloc_exited(a, st, &ru);
        } else if (p < 0 && errno == ECHILD) {
            log_error("allocation %lld of job %s: process %d vanished", a->id,
                      alloc_job(a), (int)a->pid);
            alloc_exited(a, W_EXITCODE(0, SIGKILL), NULL);
        }
    }
    /* No waitpid(-1) here: finishing an allocation may re-enter the
     * client and start another whose process exits at once; reaping it
     * here would leave its own wait4 with ECHILD. Only job processes are
     * ever forked, and each is reaped by its own pid above. */
}

/* An earlier run of the daemon (killed without stopping its jobs) may have
 * left allocation id's process group running: the pid file written at
 * start says which, its start time proves it is still that process. Kill
 * it, so that a requeued job never runs twice. */
static void
alloc_kill_leftover(struct noded *nd, long long id)
{
    char *path = dv_xasprintf("%s/alloc/%lld/pid", nd->cfg->data_dir, id);
    FILE *f = fopen(path, "re");
    unsigned long long start = 0, now_start = 0;
    int pid = 0;

    if (f == NULL) {
        free(path);
        return;
    }
    if (fscanf(f, "%d %llu", &pid, &start) == 2 && pid > 1 &&
        spawn_proc_starttime((pid_t)pid, &now_start) == 0 &&
        now_start == start) {
        log_notice("allocation %lld: killing process group %d left running "
                   "by an earlier drover-noded",
                   id, pid);
        if (killpg((pid_t)pid, SIGKILL) < 0 && errno == ESRCH) {
            kill((pid_t)pid, SIGKILL);
        }
    }
    fclose(f);
    free(path);
}

/* Records the job's process group for alloc_kill_leftover. */
static void
alloc_write_pid(struct alloc *a)
{
    unsigned long long start = 0;
    char *path, *text;
    struct dv_err err;

    if (spawn_proc_starttime(a->pid, &start) < 0) {
        return;
    }
    path = dv_xasprintf("%s/pid", a->dir);
    text = dv_xasprintf("%d %llu\n", (int)a->pid, start);
    if (allocdir_write(path, text, 0644, 0, 0, 0, &err) < 0) {
        log_warn("allocation %lld: %s", a->id, err.msg);
    }
    free(text);
    free(path);
}

/* Prepares and forks chunk 0. Returns 0, or -1 with msg set. */
static int
alloc_launch(struct alloc *a, const struct alloc_desc *d, char *msg,
             size_t size)
{
    struct noded *nd = a->nd;
    const struct dv_job_spec *s = &d->spec;
    struct env_user u;
    struct env_info info;
    struct spawn_req req;
    struct dv_err err;
    hwloc_bitmap_t pus = NULL;
    char **env = NULL, **cands = NULL, **argv = NULL;
    char *nodefile = NULL, *nodefile_path = NULL, *script = NULL;
    char *out = NULL, *errp = NULL;
    const char *shell, *wd;
    int as_root = geteuid() == 0, switch_user, rc = -1, report_fd = -1;
    pid_t pid = 0;

    if (env_user_lookup(s->owner, &u, &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        goto out;
    }
    if (u.uid == 0 && !nd->cfg->allow_root) {
        snprintf(msg, size,
                 "cannot run a job owned by root: drover-noded was not "
                 "started with --allow-root");
        goto out;
    }
    switch_user = u.uid != geteuid();
    if (switch_user && !as_root) {
        snprintf(msg, size,
                 "cannot run a job of user %s: drover-noded runs as uid %d, "
                 "not as root",
                 u.name, (int)geteuid());
        goto out;
    }
    pus = topology_cores_pus(nd->topo, a->cpuset, &err);
    if (pus == NULL) {
        log_warn("allocation %lld of job %s: %s: running unbound", a->id,
                 alloc_job(a), err.msg);
    } else if (hwloc_bitmap_iszero(pus)) {
        hwloc_bitmap_free(pus);
        pus = NULL;
    }
    alloc_kill_leftover(nd, a->id);
    a->dir = allocdir_create(nd->cfg->data_dir, a->id, switch_user, u.uid,
                             u.gid, &err);
    if (a->dir == NULL) {
        snprintf(msg, size, "%s", err.msg);
        goto out;
    }
    nodefile = env_nodefile(d->hosts, d->nhosts, nd->cfg->name, a->ncpus);
    nodefile_path = dv_xasprintf("%s/nodefile", a->dir);
    if (allocdir_write(nodefile_path, nodefile, 0644, 0, 0, 0, &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        goto out;
    }

    memset(&info, 0, sizeof(info));
    info.spec = s;
    info.user = &u;
    info.job_id_str = a->job_id_str;
    info.job_id = a->job_id;
    info.alloc_id = a->id;
    info.queue = d->queue;
    info.ncpus = a->ncpus;
    info.cpuset = a->cpuset;
    info.alloc_dir = a->dir;
    info.nodefile = nodefile_path;
    info.node_name = nd->cfg->name;
    env = env_build(&info);

    if (s->script != NULL) {
        script = dv_xasprintf("%s/job.sh", a->dir);
        if (allocdir_write(script, s->script, 0700, switch_user, u.uid, u.gid,
                           &err) < 0) {
            snprintf(msg, size, "%s", err.msg);
            goto out;
        }
        shell = !dv_str_empty(s->shell) ? s->shell : u.shell;
        argv = dv_xcalloc(3, sizeof(char *));
        argv[0] = dv_xstrdup(shell);
        argv[1] = dv_xstrdup(script);
        cands = env_exec_candidates(shell, env_get(env, "PATH"));
    } else if (s->argc > 0) {
        argv = dv_xcalloc((size_t)s->argc + 1, sizeof(char *));
        for (int i = 0; i < s->argc; i++) {
            argv[i] = dv_xstrdup(s->argv[i]);
        }
        cands = env_exec_candidates(argv[0], env_get(env, "PATH"));
    } else {
        snprintf(msg, size, "the job has neither a script nor a command");
        goto out;
    }

    wd = env_get(env, "PBS_O_WORKDIR");
    out = env_output_path(s->stdout_path, wd, u.home, s->name, a->job_id, 'o');
    errp = env_output_path(s->stderr_path, wd, u.home, s->name, a->job_id, 'e');

    memset(&req, 0, sizeof(req));
    req.candidates = cands;
    req.argv = argv;
    req.envp = env;
    req.stdout_path = out;
    req.stderr_path = errp;
    req.join = s->join == NULL              ? SPAWN_JOIN_NONE
               : strcmp(s->join, "oe") == 0 ? SPAWN_JOIN_OE
               : strcmp(s->join, "eo") == 0 ? SPAWN_JOIN_EO
                                            : SPAWN_JOIN_NONE;
    req.cwd = u.home;
    req.cwd_fallback = a->dir;
    req.set_identity = switch_user;
    req.uid = u.uid;
    req.gid = u.gid;
    req.groups = u.groups;
    req.ngroups = u.ngroups;
    req.topo = pus != NULL ? nd->topo->topo : NULL;
    req.cpuset = pus;
    req.umask = 077;
    if (spawn_child(&req, &pid, &report_fd, &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        goto out;
    }
    a->pid = pid;
    alloc_write_pid(a);
    a->report_fd = report_fd;
    ev_io_init(&a->report_w, alloc_report_cb, report_fd, EV_READ);
    ev_io_start(nd->loop, &a->report_w);
    log_notice("started allocation %lld of job %s as %s: pid %d, cores %s, "
               "output %s",
               a->id, alloc_job(a), u.name, (int)pid,
               a->cpuset[0] != '\0' ? a->cpuset : "(none)",
               req.join == SPAWN_JOIN_EO ? errp : out);
    rc = 0;
out:
    if (pus != NULL) {
        hwloc_bitmap_free(pus);
    }
    env_free(env);
    env_free(cands);
    env_free(argv);
    free(nodefile);
    free(nodefile_path);
    free(script);
    free(out);
    free(errp);
    env_user_cleanup(&u);
    return rc;
}

/* A new allocation that should run. */
static void
alloc_start(struct noded *nd, const struct alloc_desc *d)
{
    struct alloc *a = alloc_new(nd, d);
    char msg[512];

    if (a->chunk_index != 0) {
        log_notice("allocation %lld of job %s (chunk %d) holds cores %s", a->id,
                   alloc_job(a), a->chunk_index, a->cpuset);
        alloc_queue_running(a);
        return;
    }
    if (!d->have_spec) {
        snprintf(msg, sizeof(msg), "cannot read the job: %s",
                 d->spec_error != NULL ? d->spec_error : "no job spec");
        alloc_start_failed(a, msg);
        return;
    }
    if (alloc_launch(a, d, msg, sizeof(msg)) < 0) {
        alloc_start_failed(a, msg);
        return;
    }
    alloc_queue_running(a);
    if (a->walltime > 0) {
        ev_timer_init(&a->walltime_w, alloc_walltime_cb,
                      dv_clock_real_span((double)a->walltime), 0.);
        ev_timer_start(nd->loop, &a->walltime_w);
    }
}

/* An allocation qmgr lists that this daemon never ran. */
static void
alloc_adopt_unknown(struct noded *nd, const struct alloc_desc *d)
{
    struct alloc *a = alloc_new(nd, d);

    /* A directory left by an earlier run of the daemon goes when this
     * allocation is forgotten. */
    a->dir = dv_xasprintf("%s/alloc/%lld", nd->cfg->data_dir, a->id);
    alloc_kill_leftover(nd, a->id);
    if (strcmp(d->client_status, "running") == 0) {
        log_notice("allocation %lld of job %s is running according to qmgr "
                   "but not here: reporting it lost",
                   a->id, alloc_job(a));
        alloc_finish(a, "lost", 0, 0,
                     "drover-noded does not run it (restarted?)", NULL);
    } else if (a->chunk_index == 0) {
        log_notice("allocation %lld of job %s was stopped before it started",
                   a->id, alloc_job(a));
        alloc_finish(a, "failed", 1, ALLOC_STATUS_DELETED,
                     "deleted before it started", NULL);
    } else {
        alloc_finish(a, "complete", 1, 0, NULL, NULL);
    }
}

void
alloc_final_acked(struct noded *nd, long long id, long long index)
{
    struct alloc *a = alloc_find(nd, id);

    if (a == NULL || a->state != ALLOC_DONE) {
        return;
    }
    a->final_acked = 1;
    a->final_ack_index = index;
    /* The last answer may already have left it out (qmgr woke the long
     * poll before answering the update). */
    if (!a->listed && nd->index >= index) {
        alloc_forget(a);
    }
}

static int
desc_listed(const struct alloc_desc *descs, int n, long long id)
{
    for (int i = 0; i < n; i++) {
        if (descs[i].id == id) {
            return 1;
        }
    }
    return 0;
}

void
alloc_reconcile(struct noded *nd, struct alloc_desc *descs, int n,
                long long index)
{
    struct alloc *a, *next;

    for (int i = 0; i < n; i++) {
        const struct alloc_desc *d = &descs[i];

        a = alloc_find(nd, d->id);
        if (a != NULL) {
            if (!d->desired_run) {
                alloc_stop(a, ALLOC_STOP_DESIRED);
            }
            continue;
        }
        if (nd->state == NODED_STOPPING) {
            continue;
        }
        if (d->desired_run && d->client_status != NULL &&
            strcmp(d->client_status, "pending") == 0) {
            alloc_start(nd, d);
        } else if (d->client_status != NULL) {
            alloc_adopt_unknown(nd, d);
        }
    }
    for (a = nd->allocs; a != NULL; a = next) {
        next = a->next;
        a->listed = desc_listed(descs, n, a->id);
        if (a->listed) {
            continue;
        }
        if (a->state == ALLOC_RUNNING) {
            alloc_stop(a, ALLOC_STOP_MISSING);
        } else if (a->state == ALLOC_DONE && a->final_acked &&
                   index >= a->final_ack_index) {
            alloc_forget(a);
        }
    }
}
