/*
 * Allocation lifecycle: start what qmgr assigns (a PBS chunk 0 runs the
 * job's script, other PBS chunks hold their cores; a native allocation
 * runs every task of its group, restarted per the group's policy), enforce
 * walltime, stop on request with SIGTERM then SIGKILL, reap with wait4 for
 * exit statuses and rusage, and queue status updates. The states are in
 * noded.h (enum alloc_state, enum task_state); docs/internals/noded.md
 * draws the machine. Simulated nodes hand these calls to sim.c.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define JOB_EXEC_FAIL1 (-1)
#define JOB_EXEC_KILL_MEM (-27)
#define JOB_EXEC_KILL_WALLTIME (-29)
/* qdel of an allocation that never started: as if SIGTERM had ended it. */
#define ALLOC_STATUS_DELETED (256 + SIGTERM)

static void alloc_task_ended(struct alloc *a, struct alloc_task *t,
                             int wstatus);

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

    if (nd->sim != NULL) {
        return sim_active_count(nd);
    }
    for (const struct alloc *a = nd->allocs; a != NULL; a = a->next) {
        if (a->state != ALLOC_DONE) {
            n++;
        }
    }
    return n;
}

const char *
alloc_job(const struct alloc *a)
{
    return a->job_id_str != NULL ? a->job_id_str : "?";
}

static void
task_close_report(struct alloc_task *t)
{
    if (t->report_fd >= 0) {
        ev_io_stop(t->a->nd->loop, &t->report_w);
        close(t->report_fd);
        t->report_fd = -1;
    }
}

void
alloc_task_cleanup(struct alloc_task *t)
{
    ev_timer_stop(t->a->nd->loop, &t->restart_w);
    task_close_report(t);
    free(t->name);
    env_free(t->argv);
    env_free(t->env);
    env_free(t->cands);
    free(t->out_path);
    free(t->err_path);
    free(t->cwd);
    free(t->groups);
}

static void
alloc_free(struct alloc *a)
{
    if (a == NULL) {
        return;
    }
    ev_timer_stop(a->nd->loop, &a->walltime_w);
    ev_timer_stop(a->nd->loop, &a->kill_w);
    memlimit_cleanup(a);
    for (int i = 0; i < a->ntasks; i++) {
        alloc_task_cleanup(&a->tasks[i]);
    }
    free(a->tasks);
    dsh_free(a);
    if (a->pus != NULL) {
        hwloc_bitmap_free(a->pus);
    }
    free(a->job_id_str);
    free(a->array_id);
    free(a->cpuset);
    free(a->gpus);
    free(a->dir);
    free(a);
}

void
alloc_free_all(struct noded *nd)
{
    if (nd->sim != NULL) {
        sim_free_node(nd);
        return;
    }
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
    a->array_index = d->array_index;
    a->array_id = d->array_id != NULL ? dv_xstrdup(d->array_id) : NULL;
    a->group_index = d->group_index;
    a->instance = d->instance;
    a->ncpus = d->ncpus;
    a->cpuset = dv_xstrdup(d->cpuset != NULL ? d->cpuset : "");
    a->gpus = dv_xstrdup(d->gpus != NULL ? d->gpus : "");
    a->walltime = d->walltime;
    a->mem = d->mem;
    a->signal_seq = d->signal_seq; /* signals before it started are moot */
    a->state = ALLOC_RUNNING;
    a->failed_task = -1;
    a->start_time = dv_now();
    ev_init(&a->walltime_w, NULL);
    ev_init(&a->kill_w, NULL);
    ev_init(&a->mem_w, NULL);
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
    memlimit_stop(a);
    for (int i = 0; i < a->ntasks; i++) {
        ev_timer_stop(a->nd->loop, &a->tasks[i].restart_w);
    }
    dsh_signal(a, SIGKILL);
    a->state = ALLOC_DONE;
    a->final_queued = 1;
    /* Not sent yet: the terminal update says it all. */
    client_drop_update(a->nd, a->run_u);
    a->run_u = NULL;
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
    a->run_u = u;
    client_queue_update(a->nd, u);
}

void
alloc_update_gone(struct noded *nd, const struct status_update *u)
{
    struct alloc *a;

    if (nd->sim != NULL) {
        sim_update_gone(nd, u);
        return;
    }
    a = alloc_find(nd, u->alloc_id);
    if (a != NULL && a->run_u == u) {
        a->run_u = NULL;
    }
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
    if (reason == ALLOC_STOP_MEM) {
        snprintf(msg, size, "exceeded resource mem");
        *client_status = "failed";
        return JOB_EXEC_KILL_MEM;
    }
    status = spawn_wait_status(wstatus);
    if (reason == ALLOC_STOP_SHUTDOWN) {
        snprintf(msg, size, "stopped by drover-noded shutting down");
    } else if (reason == ALLOC_STOP_MISSING) {
        snprintf(msg, size, "stopped: no longer assigned to this node");
    } else if (reason == ALLOC_STOP_FENCED) {
        snprintf(msg, size,
                 "stopped: no heartbeat reached the servers for a TTL");
    }
    *client_status = status == 0 ? "complete" : "failed";
    return status;
}

/* ---- signals ------------------------------------------------------------ */

/* Signals the task's process group; before the child's setsid the group
 * does not exist yet, so the child itself gets it (its signals are
 * blocked until its handlers are reset, so it is not lost). */
static int
task_signal(struct alloc_task *t, int sig)
{
    if (t->pid <= 0) {
        return 0;
    }
    if (killpg(t->pid, sig) == 0) {
        return 0;
    }
    if (errno == ESRCH) {
        return kill(t->pid, sig) == 0 || errno == ESRCH ? 0 : -1;
    }
    return -1;
}

static int
alloc_running_tasks(const struct alloc *a)
{
    int n = 0;

    for (int i = 0; i < a->ntasks; i++) {
        n += a->tasks[i].state == TASK_RUNNING && a->tasks[i].pid > 0;
    }
    return n;
}

static void
alloc_kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct alloc *a =
        (struct alloc *)((char *)w - offsetof(struct alloc, kill_w));

    (void)loop;
    (void)revents;
    if (a->state != ALLOC_STOPPING) {
        return;
    }
    for (int i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];

        if (t->state != TASK_RUNNING || t->pid <= 0) {
            continue;
        }
        log_notice("allocation %lld of job %s did not stop within %gs: "
                   "sending SIGKILL to process group %d",
                   a->id, alloc_job(a), a->nd->cfg->kill_grace, (int)t->pid);
        if (task_signal(t, SIGKILL) < 0) {
            log_warn("could not kill process group %d of allocation %lld: %s",
                     (int)t->pid, a->id, strerror(errno));
        }
    }
    alloc_reap(a->nd); /* in case SIGCHLD was missed */
}

static const char *
stop_words(enum alloc_stop reason)
{
    switch (reason) {
    case ALLOC_STOP_WALLTIME:
        return "walltime exceeded";
    case ALLOC_STOP_SHUTDOWN:
        return "shutdown";
    case ALLOC_STOP_MISSING:
        return "no longer assigned";
    case ALLOC_STOP_FENCED:
        return "fenced: heartbeats failed for a TTL";
    case ALLOC_STOP_FAILED:
        return "a task failed";
    case ALLOC_STOP_MEM:
        return "memory exceeded";
    default:
        return "stop requested";
    }
}

/* The final update of a native allocation once no task runs. */
static void
alloc_native_done(struct alloc *a)
{
    struct rusage ru;
    char msg[512];
    const struct alloc_task *bad = NULL;

    memset(&ru, 0, sizeof(ru));
    for (int i = 0; i < a->ntasks; i++) {
        const struct rusage *r = &a->tasks[i].ru;

        ru.ru_utime.tv_sec += r->ru_utime.tv_sec;
        ru.ru_utime.tv_usec += r->ru_utime.tv_usec;
        ru.ru_stime.tv_sec += r->ru_stime.tv_sec;
        ru.ru_stime.tv_usec += r->ru_stime.tv_usec;
        if (r->ru_maxrss > ru.ru_maxrss) {
            ru.ru_maxrss = r->ru_maxrss;
        }
        if (bad == NULL && a->tasks[i].status != 0) {
            bad = &a->tasks[i];
        }
    }
    if (a->reason == ALLOC_STOP_FAILED && a->failed_task >= 0) {
        bad = &a->tasks[a->failed_task];
    }
    msg[0] = '\0';
    if (a->reason == ALLOC_STOP_WALLTIME) {
        alloc_finish(a, "failed", 1, JOB_EXEC_KILL_WALLTIME,
                     "exceeded resource walltime", &ru);
        return;
    }
    if (a->reason == ALLOC_STOP_DESIRED) {
        /* The servers asked: the allocation is complete whatever the
         * tasks answered to SIGTERM. */
        alloc_finish(a, "complete", 1, bad != NULL ? bad->status : 0,
                     "stopped on request", &ru);
        return;
    }
    if (bad == NULL) {
        alloc_finish(
            a, "complete", 1, 0,
            a->reason != ALLOC_STOP_NONE ? stop_words(a->reason) : NULL, &ru);
        return;
    }
    if (bad->have_fail && bad->fail.fatal) {
        snprintf(msg, sizeof(msg), "task %s: %s: %s", bad->name,
                 spawn_stage_text(bad->fail.stage), strerror(bad->fail.errnum));
    } else if (a->reason == ALLOC_STOP_FAILED || a->reason == ALLOC_STOP_NONE) {
        snprintf(msg, sizeof(msg), "task %s failed: exit status %d", bad->name,
                 bad->status);
    } else {
        snprintf(msg, sizeof(msg), "stopped (%s); task %s: exit status %d",
                 stop_words(a->reason), bad->name, bad->status);
    }
    alloc_finish(a, "failed", 1, bad->status, msg, &ru);
}

/* Asks a to stop: every running task gets SIGTERM now and SIGKILL after
 * the grace period; tasks waiting to restart will not; an allocation
 * without a running process ends at once. */
static void
alloc_stop(struct alloc *a, enum alloc_stop reason)
{
    if (a->state != ALLOC_RUNNING) {
        return;
    }
    a->reason = reason;
    dsh_signal(a, SIGTERM); /* pbsdsh tasks end with the job */
    for (int i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];

        if (t->state == TASK_WAITING) {
            ev_timer_stop(a->nd->loop, &t->restart_w);
            t->state = TASK_EXITED;
        }
    }
    if (alloc_running_tasks(a) == 0) {
        if (a->native) {
            log_notice("allocation %lld of job %s stopped (%s)", a->id,
                       alloc_job(a), stop_words(reason));
            a->state = ALLOC_STOPPING;
            alloc_native_done(a);
        } else {
            log_notice("allocation %lld of job %s (chunk %d) released", a->id,
                       alloc_job(a), a->chunk_index);
            alloc_finish(a, "complete", 1, 0, NULL, NULL);
        }
        return;
    }
    log_notice("stopping allocation %lld of job %s (%s): SIGTERM to %d "
               "task%s",
               a->id, alloc_job(a), stop_words(reason), alloc_running_tasks(a),
               alloc_running_tasks(a) == 1 ? "" : "s");
    a->state = ALLOC_STOPPING;
    for (int i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];

        if (t->state != TASK_RUNNING || t->pid <= 0) {
            continue;
        }
        if (task_signal(t, SIGTERM) < 0) {
            log_warn("could not signal process group %d of allocation %lld: "
                     "%s",
                     (int)t->pid, a->id, strerror(errno));
        }
        task_signal(t, SIGCONT); /* a stopped job must see the SIGTERM */
    }
    ev_timer_init(&a->kill_w, alloc_kill_cb,
                  dv_clock_real_span(a->nd->cfg->kill_grace), 0.);
    ev_timer_start(a->nd->loop, &a->kill_w);
}

void
alloc_stop_mem(struct alloc *a)
{
    alloc_stop(a, ALLOC_STOP_MEM);
}

void
alloc_stop_all(struct noded *nd, enum alloc_stop reason)
{
    struct alloc *a = nd->allocs, *next;

    if (nd->sim != NULL) {
        sim_stop_all(nd, reason);
        return;
    }
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

/* qsig's signal name as a number: SIGSTOP for suspend, SIGCONT for
 * resume; -1 when unknown. */
static int
signal_number(const char *s)
{
    int n;

    if (strcmp(s, "suspend") == 0) {
        return SIGSTOP;
    }
    if (strcmp(s, "resume") == 0) {
        return SIGCONT;
    }
    return dv_parse_int(s, 0, 64, &n) == 0 ? n : -1;
}

/* A running allocation the servers changed: a new qsig request, a new
 * walltime (qalter). */
static void
alloc_update(struct alloc *a, const struct alloc_desc *d)
{
    if (a->state != ALLOC_RUNNING) {
        return;
    }
    if (d->signal != NULL && d->signal_seq > a->signal_seq) {
        int sig = signal_number(d->signal);

        a->signal_seq = d->signal_seq;
        if (sig < 0) {
            log_warn("allocation %lld of job %s: unknown signal \"%s\"", a->id,
                     alloc_job(a), d->signal);
        } else if (sig > 0) {
            log_notice("allocation %lld of job %s: signal %d to %d task%s "
                       "(qsig)",
                       a->id, alloc_job(a), sig, alloc_running_tasks(a),
                       alloc_running_tasks(a) == 1 ? "" : "s");
            for (int i = 0; i < a->ntasks; i++) {
                struct alloc_task *t = &a->tasks[i];

                if (t->state == TASK_RUNNING && t->pid > 0 &&
                    task_signal(t, sig) < 0) {
                    log_warn("could not signal process group %d of "
                             "allocation %lld: %s",
                             (int)t->pid, a->id, strerror(errno));
                }
            }
        }
    }
    if (!a->native && a->ntasks > 0 && d->walltime != a->walltime) {
        double left = (double)d->walltime - (dv_now() - a->start_time);

        log_notice("allocation %lld of job %s: walltime %llds (was %llds)",
                   a->id, alloc_job(a), (long long)d->walltime,
                   (long long)a->walltime);
        a->walltime = d->walltime;
        ev_timer_stop(a->nd->loop, &a->walltime_w);
        if (a->walltime > 0) {
            ev_timer_init(&a->walltime_w, alloc_walltime_cb,
                          dv_clock_real_span(left > 0 ? left : 0), 0.);
            ev_timer_start(a->nd->loop, &a->walltime_w);
        }
    }
}

/* ---- task processes ----------------------------------------------------- */

static void
task_read_reports(struct alloc_task *t)
{
    struct spawn_report r[8];
    int eof = 0, n;

    while (t->report_fd >= 0) {
        n = spawn_read_reports(t->report_fd, r, 8, &eof);
        for (int i = 0; i < n; i++) {
            if (r[i].fatal) {
                t->fail = r[i];
                t->have_fail = 1;
            } else {
                log_warn("allocation %lld of job %s, task %s: %s: %s "
                         "(continuing)",
                         t->a->id, alloc_job(t->a), t->name,
                         spawn_stage_text(r[i].stage), strerror(r[i].errnum));
            }
        }
        if (eof || n < 0) {
            task_close_report(t);
        }
        if (n < 8) {
            break;
        }
    }
}

static void
task_report_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct alloc_task *t =
        (struct alloc_task *)((char *)w -
                              offsetof(struct alloc_task, report_w));

    (void)loop;
    (void)revents;
    task_read_reports(t);
}

/* Records the allocation's process groups for alloc_kill_leftover: one
 * "pid starttime" line per running task. */
static void
alloc_write_pids(struct alloc *a)
{
    struct dv_buf b;
    char *path, *tmp;
    struct dv_err err;

    if (a->dir == NULL) {
        return;
    }
    dv_buf_init(&b);
    for (int i = 0; i < a->ntasks; i++) {
        unsigned long long start = 0;

        if (a->tasks[i].pid > 0 &&
            spawn_proc_starttime(a->tasks[i].pid, &start) == 0) {
            dv_buf_printf(&b, "%d %llu\n", (int)a->tasks[i].pid, start);
        }
    }
    path = dv_xasprintf("%s/pid", a->dir);
    tmp = dv_xasprintf("%s/pid.new", a->dir);
    unlink(tmp);
    if (allocdir_write(tmp, dv_buf_str(&b), 0644, 0, 0, 0, &err) < 0 ||
        rename(tmp, path) < 0) {
        log_warn("allocation %lld: could not record its processes: %s", a->id,
                 err.msg);
        unlink(tmp);
    }
    free(tmp);
    free(path);
    dv_buf_cleanup(&b);
}

int
alloc_task_launch(struct alloc_task *t, int append, char *msg, size_t size)
{
    struct alloc *a = t->a;
    struct noded *nd = a->nd;
    struct spawn_req req;
    struct dv_err err;
    int report_fd = -1;
    pid_t pid = 0;

    memset(&req, 0, sizeof(req));
    req.candidates = t->cands;
    req.argv = t->argv;
    req.envp = t->env;
    req.stdout_path = t->out_path;
    req.stderr_path = t->err_path;
    req.join = t->join;
    req.cwd = t->cwd;
    req.cwd_fallback = a->dir;
    req.set_identity = t->switch_user;
    req.uid = t->uid;
    req.gid = t->gid;
    req.groups = t->groups;
    req.ngroups = t->ngroups;
    req.topo = a->pus != NULL ? nd->topo->topo : NULL;
    req.cpuset = a->pus;
    req.umask = 077;
    req.append = append;
    if (spawn_child(&req, &pid, &report_fd, &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        return -1;
    }
    t->pid = pid;
    t->state = TASK_RUNNING;
    t->have_fail = 0;
    t->report_fd = report_fd;
    ev_io_init(&t->report_w, task_report_cb, report_fd, EV_READ);
    ev_io_start(nd->loop, &t->report_w);
    return 0;
}

static void
task_restart_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct alloc_task *t =
        (struct alloc_task *)((char *)w -
                              offsetof(struct alloc_task, restart_w));
    struct alloc *a = t->a;
    char msg[512];

    (void)loop;
    (void)revents;
    if (a->state != ALLOC_RUNNING || t->state != TASK_WAITING) {
        return;
    }
    log_notice("allocation %lld of job %s: restarting task %s (restart %d)",
               a->id, alloc_job(a), t->name, t->rs.restarts);
    if (alloc_task_launch(t, 1, msg, sizeof(msg)) < 0) {
        log_error("allocation %lld: could not restart task %s: %s", a->id,
                  t->name, msg);
        t->state = TASK_EXITED;
        t->status = JOB_EXEC_FAIL1;
        a->failed_task = (int)(t - a->tasks);
        alloc_stop(a, ALLOC_STOP_FAILED);
        return;
    }
    alloc_write_pids(a);
}

static void
add_rusage(struct rusage *to, const struct rusage *r)
{
    to->ru_utime.tv_sec += r->ru_utime.tv_sec;
    to->ru_utime.tv_usec += r->ru_utime.tv_usec;
    to->ru_stime.tv_sec += r->ru_stime.tv_sec;
    to->ru_stime.tv_usec += r->ru_stime.tv_usec;
    if (r->ru_maxrss > to->ru_maxrss) {
        to->ru_maxrss = r->ru_maxrss;
    }
}

void
alloc_task_reaped(struct alloc_task *t)
{
    task_read_reports(t);
    task_close_report(t);
}

/* t's process ended with wstatus and ru. */
static void
task_exited(struct alloc_task *t, int wstatus, const struct rusage *ru)
{
    /* Whatever the task left behind in its session goes too (PBS does the
     * same at the end of a job). */
    killpg(t->pid, SIGKILL);
    task_read_reports(t);
    task_close_report(t);
    if (ru != NULL) {
        add_rusage(&t->ru, ru);
    }
    t->pid = 0;
    t->state = TASK_EXITED;
    alloc_task_ended(t->a, t, wstatus);
}

/* Decides what a task's end means for its allocation. */
static void
alloc_task_ended(struct alloc *a, struct alloc_task *t, int wstatus)
{
    const char *cs = "failed";
    char msg[512];
    double delay = 0;

    if (!a->native) {
        /* The kernel may have killed the script itself for its memory. */
        int status = alloc_exit_status(
            memlimit_exceeded(a) ? ALLOC_STOP_MEM : a->reason, wstatus,
            t->have_fail ? &t->fail : NULL, &cs, msg, sizeof(msg));

        log_notice("allocation %lld of job %s ended: exit status %d%s%s", a->id,
                   alloc_job(a), status, msg[0] != '\0' ? ": " : "", msg);
        alloc_finish(a, cs, 1, status, msg, &t->ru);
        return;
    }
    t->status = alloc_exit_status(ALLOC_STOP_NONE, wstatus,
                                  t->have_fail ? &t->fail : NULL, &cs, msg,
                                  sizeof(msg));
    log_notice("allocation %lld of job %s: task %s ended: exit status %d%s%s",
               a->id, alloc_job(a), t->name, t->status,
               msg[0] != '\0' ? ": " : "", msg);
    if (a->state == ALLOC_RUNNING && t->status != 0) {
        if (native_restart_decide(&a->restart, &t->rs, dv_now(), &delay)) {
            log_notice("allocation %lld: task %s restarts in %gs (restart %d "
                       "of %d in %llds)",
                       a->id, t->name, delay, t->rs.restarts,
                       a->restart.attempts, (long long)a->restart.interval);
            t->state = TASK_WAITING;
            ev_timer_set(&t->restart_w, dv_clock_real_span(delay), 0.);
            ev_timer_start(a->nd->loop, &t->restart_w);
            return;
        }
        log_notice("allocation %lld: task %s failed beyond its restart "
                   "policy",
                   a->id, t->name);
        a->failed_task = (int)(t - a->tasks);
        alloc_stop(a, ALLOC_STOP_FAILED);
        return;
    }
    if (alloc_running_tasks(a) > 0) {
        return;
    }
    for (int i = 0; i < a->ntasks; i++) {
        if (a->tasks[i].state == TASK_WAITING) {
            return;
        }
    }
    alloc_native_done(a);
}

void
alloc_reap(struct noded *nd)
{
    struct alloc *a, *next;
    int st;
    pid_t p;

    dsh_reap(nd);
    for (a = nd->allocs; a != NULL; a = next) {
        next = a->next;
        if (a->state == ALLOC_DONE) {
            continue;
        }
        for (int i = 0; i < a->ntasks && a->state != ALLOC_DONE; i++) {
            struct alloc_task *t = &a->tasks[i];
            struct rusage ru;

            if (t->pid <= 0 || t->state != TASK_RUNNING) {
                continue;
            }
            memset(&ru, 0, sizeof(ru));
            do {
                p = wait4(t->pid, &st, WNOHANG, &ru);
            } while (p < 0 && errno == EINTR);
            if (p == t->pid) {
                task_exited(t, st, &ru);
            } else if (p < 0 && errno == ECHILD) {
                log_error("allocation %lld of job %s: process %d vanished",
                          a->id, alloc_job(a), (int)t->pid);
                task_exited(t, W_EXITCODE(0, SIGKILL), NULL);
            }
        }
    }
    /* No waitpid(-1) here: finishing an allocation may re-enter the
     * client and start another whose process exits at once; reaping it
     * here would leave its own wait4 with ECHILD. Only task processes are
     * ever forked, and each is reaped by its own pid above. */
}

/* An earlier run of the daemon (killed without stopping its jobs) may have
 * left allocation id's process groups running: the pid file written at
 * start says which, their start times prove they are still those
 * processes. Kill them, so that a requeued job never runs twice. */
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
    while (fscanf(f, "%d %llu", &pid, &start) == 2) {
        if (pid > 1 && spawn_proc_starttime((pid_t)pid, &now_start) == 0 &&
            now_start == start) {
            log_notice("allocation %lld: killing process group %d left "
                       "running by an earlier drover-noded",
                       id, pid);
            if (killpg((pid_t)pid, SIGKILL) < 0 && errno == ESRCH) {
                kill((pid_t)pid, SIGKILL);
            }
        }
    }
    fclose(f);
    free(path);
}

/* ---- starting ----------------------------------------------------------- */

int
alloc_task_identity(struct alloc_task *t, const char *name, struct env_user *u,
                    char *msg, size_t size)
{
    struct dv_err err;

    if (env_user_lookup(name, u, &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        return -1;
    }
    if (u->uid == 0 && !t->a->nd->cfg->allow_root) {
        snprintf(msg, size,
                 "cannot run a job owned by root: drover-noded was not "
                 "started with --allow-root");
        return -1;
    }
    t->switch_user = u->uid != geteuid();
    if (t->switch_user && geteuid() != 0) {
        snprintf(msg, size,
                 "cannot run a job of user %s: drover-noded runs as uid %d, "
                 "not as root",
                 u->name, (int)geteuid());
        return -1;
    }
    t->uid = u->uid;
    t->gid = u->gid;
    t->groups = dv_xcalloc((size_t)u->ngroups + 1, sizeof(gid_t));
    memcpy(t->groups, u->groups, sizeof(gid_t) * (size_t)u->ngroups);
    t->ngroups = u->ngroups;
    return 0;
}

int
alloc_prepare(struct alloc *a, const struct env_user *u, char *msg, size_t size)
{
    struct noded *nd = a->nd;
    struct dv_err err;
    int chown_to = u->uid != geteuid();

    a->pus = topology_cores_pus(nd->topo, a->cpuset, &err);
    if (a->pus == NULL) {
        log_warn("allocation %lld of job %s: %s: running unbound", a->id,
                 alloc_job(a), err.msg);
    } else if (hwloc_bitmap_iszero(a->pus)) {
        hwloc_bitmap_free(a->pus);
        a->pus = NULL;
    }
    alloc_kill_leftover(nd, a->id);
    a->dir = allocdir_create(nd->cfg->data_dir, a->id, chown_to, u->uid, u->gid,
                             &err);
    if (a->dir == NULL) {
        snprintf(msg, size, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Prepares and forks the script of a PBS chunk 0. Returns 0, or -1 with
 * msg set. */
static int
alloc_launch_pbs(struct alloc *a, const struct alloc_desc *d,
                 const struct dv_job_spec *s, char *msg, size_t size)
{
    struct noded *nd = a->nd;
    struct env_user u;
    struct env_info info;
    struct alloc_host *hosts = NULL;
    struct alloc_task *t;
    struct dv_err err;
    char *nodefile = NULL, *nodefile_path = NULL, *script = NULL;
    const char *shell, *wd;
    char *chosen = NULL;
    int nhosts = 0, rc = -1;

    memset(&u, 0, sizeof(u));
    a->tasks = dv_xcalloc(1, sizeof(*a->tasks));
    a->ntasks = 1;
    t = &a->tasks[0];
    t->a = a;
    t->report_fd = -1;
    t->name = dv_xstrdup("job");
    ev_init(&t->restart_w, task_restart_cb);
    if (alloc_task_identity(t, s->owner, &u, msg, size) < 0 ||
        alloc_prepare(a, &u, msg, size) < 0) {
        goto out;
    }
    if (json_is_array(d->hosts)) {
        size_t i;
        json_t *h;

        hosts = dv_xcalloc(json_array_size(d->hosts) + 1, sizeof(*hosts));
        json_array_foreach (d->hosts, i, h) {
            const char *name = NULL;
            json_int_t nc = 0, chunk = (json_int_t)i;
            const struct dv_chunk *kind;

            if (json_unpack(h, "{s:s, s:I, s?I}", "host", &name, "ncpus", &nc,
                            "chunk", &chunk) < 0 ||
                nc < 0 || nc > DV_MAX_NCPUS) {
                snprintf(msg, size, "malformed hosts of allocation %lld",
                         a->id);
                goto out;
            }
            kind = dv_resreq_chunk(&s->req, (int)chunk);
            hosts[nhosts].host = (char *)name;
            hosts[nhosts].ncpus = (int)nc;
            hosts[nhosts].mpiprocs = kind != NULL ? kind->mpiprocs : 0;
            nhosts++;
        }
    }
    nodefile = env_nodefile(hosts, nhosts, nd->name, a->ncpus);
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
    {
        const struct dv_chunk *kind = dv_resreq_chunk(&s->req, 0);
        info.ompthreads = kind != NULL ? kind->ompthreads : 0;
    }
    info.cpuset = a->cpuset;
    info.alloc_dir = a->dir;
    info.nodefile = nodefile_path;
    info.server = nd->cfg->server;
    info.node_name = nd->name;
    info.gpus = a->gpus;
    info.array_index = a->array_index;
    info.array_id = a->array_id;
    t->env = env_build(&info);

    if (s->script != NULL) {
        script = dv_xasprintf("%s/job.sh", a->dir);
        if (allocdir_write(script, s->script, 0700, t->switch_user, u.uid,
                           u.gid, &err) < 0) {
            snprintf(msg, size, "%s", err.msg);
            goto out;
        }
        /* qsub -S path[@host],...: this node's entry, else the default */
        chosen = dv_job_shell_for_host(s, nd->name);
        shell = !dv_str_empty(chosen) ? chosen : u.shell;
        t->argv = dv_xcalloc(3, sizeof(char *));
        t->argv[0] = dv_xstrdup(shell);
        t->argv[1] = dv_xstrdup(script);
        t->cands = env_exec_candidates(shell, env_get(t->env, "PATH"));
        free(chosen);
    } else if (s->argc > 0) {
        t->argv = dv_xcalloc((size_t)s->argc + 1, sizeof(char *));
        for (int i = 0; i < s->argc; i++) {
            t->argv[i] = dv_xstrdup(s->argv[i]);
        }
        t->cands = env_exec_candidates(t->argv[0], env_get(t->env, "PATH"));
    } else {
        snprintf(msg, size, "the job has neither a script nor a command");
        goto out;
    }
    wd = env_get(t->env, "PBS_O_WORKDIR");
    t->out_path =
        env_output_path(s->stdout_path, wd, u.home, s->name, a->job_id, 'o');
    t->err_path =
        env_output_path(s->stderr_path, wd, u.home, s->name, a->job_id, 'e');
    if (a->array_index >= 0) {
        env_array_path(&t->out_path, a->array_index);
        env_array_path(&t->err_path, a->array_index);
    }
    t->join = s->join == NULL              ? SPAWN_JOIN_NONE
              : strcmp(s->join, "oe") == 0 ? SPAWN_JOIN_OE
              : strcmp(s->join, "eo") == 0 ? SPAWN_JOIN_EO
                                           : SPAWN_JOIN_NONE;
    t->cwd = dv_xstrdup(u.home);
    if (alloc_task_launch(t, 0, msg, size) < 0) {
        goto out;
    }
    alloc_write_pids(a);
    memlimit_start(a, t->pid);
    log_notice("started allocation %lld of job %s as %s: pid %d, cores %s, "
               "output %s",
               a->id, alloc_job(a), u.name, (int)t->pid,
               a->cpuset[0] != '\0' ? a->cpuset : "(none)",
               t->join == SPAWN_JOIN_EO ? t->err_path : t->out_path);
    rc = 0;
out:
    free(hosts);
    free(nodefile);
    free(nodefile_path);
    free(script);
    env_user_cleanup(&u);
    return rc;
}

/* A file name for a task's output: its name, unless that could escape the
 * directory. */
static char *
task_file(const char *dir, const char *name, int i, const char *ext)
{
    if (dv_str_empty(name) || strchr(name, '/') != NULL || name[0] == '.') {
        return dv_xasprintf("%s/task%d.%s", dir, i, ext);
    }
    return dv_xasprintf("%s/%s.%s", dir, name, ext);
}

/* Prepares and forks every task of a native allocation's group. Returns
 * 0, or -1 with msg set. */
static int
alloc_launch_native(struct alloc *a, const struct dv_job_spec *s, char *msg,
                    size_t size)
{
    struct noded *nd = a->nd;
    const struct dv_group *g;
    struct env_user u;
    struct dv_err err;
    char *shared = NULL;
    int rc = -1;

    memset(&u, 0, sizeof(u));
    g = native_group(s, a->group_index, msg, size);
    if (g == NULL) {
        goto out;
    }
    if (env_user_lookup(s->owner, &u, &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        goto out;
    }
    if (alloc_prepare(a, &u, msg, size) < 0) {
        goto out;
    }
    a->restart = g->restart;
    /* alloc/ is shared by the group's tasks. */
    shared = dv_xasprintf("%s/alloc", a->dir);
    if (mkdir(shared, 0770) < 0 || chmod(shared, 0770) < 0 ||
        (u.uid != geteuid() && chown(shared, u.uid, u.gid) < 0)) {
        snprintf(msg, size, "could not create directory \"%s\": %s", shared,
                 strerror(errno));
        goto out;
    }
    a->tasks = dv_xcalloc((size_t)g->ntasks + 1, sizeof(*a->tasks));
    for (int i = 0; i < g->ntasks; i++) {
        const struct dv_task *dt = &g->tasks[i];
        struct alloc_task *t = &a->tasks[i];
        struct env_task_info info;
        struct env_user tu;
        int bad;

        t->a = a;
        t->report_fd = -1;
        t->name = dv_xstrdup(dt->name != NULL ? dt->name : "task");
        ev_init(&t->restart_w, task_restart_cb);
        a->ntasks++;
        memset(&tu, 0, sizeof(tu));
        bad =
            alloc_task_identity(t, dv_str_empty(dt->user) ? s->owner : dt->user,
                                &tu, msg, size) < 0;
        memset(&info, 0, sizeof(info));
        info.task = dt;
        info.user = &tu;
        info.job_name = s->name;
        info.job_id = a->job_id;
        info.job_id_str = a->job_id_str;
        info.alloc_id = a->id;
        info.instance = a->instance;
        info.group = g->name;
        info.cpuset = a->cpuset;
        info.gpus = a->gpus;
        info.ncpus = a->ncpus;
        info.mem = g->memory;
        info.alloc_dir = a->dir;
        info.node_name = nd->name;
        if (!bad) {
            t->env = env_build_task(&info);
        }
        env_user_cleanup(&tu);
        if (bad) {
            goto out;
        }
        if (dv_str_empty(dt->command)) {
            snprintf(msg, size, "task %s has no command", t->name);
            goto out;
        }
        t->argv = dv_xcalloc((size_t)dt->nargs + 2, sizeof(char *));
        t->argv[0] = dv_xstrdup(dt->command);
        for (int k = 0; k < dt->nargs; k++) {
            t->argv[k + 1] = dv_xstrdup(dt->args[k]);
        }
        t->cands = env_exec_candidates(dt->command, env_get(t->env, "PATH"));
        t->out_path = task_file(a->dir, dt->name, i, "stdout");
        t->err_path = task_file(a->dir, dt->name, i, "stderr");
        t->join = SPAWN_JOIN_NONE;
        t->cwd = dv_xasprintf("%s/local", a->dir);
        /* The directory is the daemon's: the files are made here for
         * the owner, who opens them (appending across restarts). */
        if (allocdir_write(t->out_path, "", 0600, t->switch_user, t->uid,
                           t->gid, &err) < 0 ||
            allocdir_write(t->err_path, "", 0600, t->switch_user, t->uid,
                           t->gid, &err) < 0) {
            snprintf(msg, size, "%s", err.msg);
            goto out;
        }
    }
    for (int i = 0; i < a->ntasks; i++) {
        if (alloc_task_launch(&a->tasks[i], 1, msg, size) < 0) {
            /* The ones started are stopped (and reaped); the allocation
             * fails with this task. */
            log_error("allocation %lld: could not start task %s: %s", a->id,
                      a->tasks[i].name, msg);
            a->tasks[i].state = TASK_EXITED;
            a->tasks[i].status = JOB_EXEC_FAIL1;
            a->failed_task = i;
            break;
        }
    }
    alloc_write_pids(a);
    log_notice("started allocation %lld of job %s (group %s, instance %d) as "
               "%s: %d task%s, cores %s%s%s",
               a->id, alloc_job(a), g->name != NULL ? g->name : "?",
               a->instance, u.name, a->ntasks, a->ntasks == 1 ? "" : "s",
               a->cpuset[0] != '\0' ? a->cpuset : "(none)",
               a->gpus[0] != '\0' ? ", GPUs " : "", a->gpus);
    rc = 0;
out:
    free(shared);
    env_user_cleanup(&u);
    return rc;
}

/* A new allocation that should run. */
static void
alloc_start(struct noded *nd, const struct alloc_desc *d)
{
    struct alloc *a = alloc_new(nd, d);
    struct dv_job_spec spec;
    struct dv_err serr;
    char msg[512];
    int native = d->job != NULL && native_spec_is(d->job);

    if (!native && a->chunk_index != 0) {
        log_notice("allocation %lld of job %s (chunk %d) holds cores %s", a->id,
                   alloc_job(a), a->chunk_index, a->cpuset);
        alloc_queue_running(a);
        return;
    }
    if (d->job == NULL) {
        alloc_start_failed(a, "cannot read the job: the answer carries no "
                              "job spec");
        return;
    }
    dv_job_spec_init(&spec);
    if (dv_job_spec_from_json(d->job, &spec, &serr) < 0 ||
        dv_job_spec_normalize(&spec, &serr) < 0) {
        snprintf(msg, sizeof(msg), "cannot read the job: %s", serr.msg);
        dv_job_spec_cleanup(&spec);
        alloc_start_failed(a, msg);
        return;
    }
    a->native = spec.native != NULL;
    if ((a->native ? alloc_launch_native(a, &spec, msg, sizeof(msg))
                   : alloc_launch_pbs(a, d, &spec, msg, sizeof(msg))) < 0) {
        dv_job_spec_cleanup(&spec);
        alloc_start_failed(a, msg);
        return;
    }
    dv_job_spec_cleanup(&spec);
    alloc_queue_running(a);
    if (a->failed_task >= 0) {
        alloc_stop(a, ALLOC_STOP_FAILED);
        return;
    }
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
    int native = d->job != NULL && native_spec_is(d->job);

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
    } else if (a->chunk_index == 0 && !native) {
        log_notice("allocation %lld of job %s was stopped before it started",
                   a->id, alloc_job(a));
        alloc_finish(a, "failed", 1, ALLOC_STATUS_DELETED,
                     "deleted before it started", NULL);
    } else {
        alloc_finish(a, "complete", 1, 0, "stopped before it started", NULL);
    }
}

void
alloc_final_acked(struct noded *nd, long long id)
{
    struct alloc *a;

    if (nd->sim != NULL) {
        sim_final_acked(nd, id);
        return;
    }
    a = alloc_find(nd, id);
    if (a == NULL || a->state != ALLOC_DONE) {
        return;
    }
    a->final_acked = 1;
    /* An answer to the poll in flight may still list it: forget it once a
     * later poll answers. */
    a->ack_gen = nd->poll_gen;
}

static int
is_terminal(const char *cs)
{
    return cs != NULL && (strcmp(cs, "complete") == 0 ||
                          strcmp(cs, "failed") == 0 || strcmp(cs, "lost") == 0);
}

static int
cmp_ll(const void *x, const void *y)
{
    long long a = *(const long long *)x, b = *(const long long *)y;

    return a < b ? -1 : a > b;
}

void
alloc_reconcile(struct noded *nd, const struct poll_answer *ans,
                unsigned long gen)
{
    struct alloc *a, *next;
    long long *listed = NULL;

    if (nd->sim != NULL) {
        sim_reconcile(nd, ans, gen);
        return;
    }
    /* Finished and acknowledged before this poll was sent: no answer
     * from now on can list them as active. */
    for (a = nd->allocs; a != NULL; a = next) {
        next = a->next;
        if (a->state == ALLOC_DONE && a->final_acked && a->ack_gen < gen &&
            !dsh_busy(a)) {
            alloc_forget(a);
        }
    }
    for (int i = 0; i < ans->n; i++) {
        const struct alloc_desc *d = &ans->descs[i];

        a = alloc_find(nd, d->id);
        if (a != NULL) {
            if (is_terminal(d->client_status)) {
                alloc_stop(a, ALLOC_STOP_MISSING); /* lost: its node down */
            } else if (!d->desired_run) {
                alloc_stop(a, ALLOC_STOP_DESIRED);
            } else {
                alloc_update(a, d);
            }
            dsh_start(a, d);
            continue;
        }
        if (nd->state == NODED_STOPPING || d->client_status == NULL ||
            is_terminal(d->client_status)) {
            continue;
        }
        if (d->desired_run && strcmp(d->client_status, "pending") == 0) {
            alloc_start(nd, d);
            a = alloc_find(nd, d->id);
            if (a != NULL) {
                dsh_start(a, d);
            }
        } else {
            alloc_adopt_unknown(nd, d);
        }
    }
    if (!ans->full) {
        return;
    }
    /* A full list: what it leaves out is no longer this node's. */
    listed = dv_xcalloc((size_t)ans->n + 1, sizeof(*listed));
    for (int i = 0; i < ans->n; i++) {
        listed[i] = ans->descs[i].id;
    }
    qsort(listed, (size_t)ans->n, sizeof(*listed), cmp_ll);
    for (a = nd->allocs; a != NULL; a = next) {
        next = a->next;
        if (a->state == ALLOC_RUNNING &&
            bsearch(&a->id, listed, (size_t)ans->n, sizeof(*listed), cmp_ll) ==
                NULL) {
            alloc_stop(a, ALLOC_STOP_MISSING);
        }
    }
    free(listed);
}
