/*
 * Real sites' job attributes at run time: the execution-time timer that
 * makes waiting (W, qsub -a) jobs queued, and the mail PBS sends when a
 * job begins, ends or is aborted (qsub -m / -M).
 *
 * The timer is armed at the earliest execution time in the database: read
 * when qmgr starts and after each pass, and moved earlier on the loop
 * thread when a job starts waiting for an earlier time: the transaction
 * that makes a job W sends NOTIFY waiting with its time, which every qmgr
 * listens to (longpoll.c), and the qmgr that made it also arms its own
 * timer when it answers (site_waiting_hint). A pass runs on a worker (one
 * at a time): the due jobs become queued with their evaluation in one
 * transaction (db_release_waiting, conditional on the state, so that
 * several qmgrs may race), which also reads the next time. No polling:
 * between passes nothing runs.
 *
 * Mail is sent after the transaction that made the event committed, from
 * the worker that ran it: the local sendmail (--sendmail) is started with
 * the message on its standard input, or, without one, the message is
 * logged at info level. Mail is best effort, as PBS's is: a qmgr that dies
 * between the commit and the mail sends nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/resources.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

extern char **environ;

/* Retry of a pass that failed (database away), in real seconds. */
#define SITE_RETRY 5.0
/* Longest wait for the sendmail program (real seconds). */
#define SITE_MAIL_WAIT 10

struct site {
    struct pool_work work; /* first */
    struct qmgr *q;
    ev_timer timer;
    double armed; /* Drover time the timer is armed for; 0: not armed */
    int busy;
    int again; /* a hint arrived while a pass ran: run another */
    int stopped;
    /* the pass's results (worker -> loop) */
    int ok;
    int released;
    double next;
    struct dv_err err;
};

static void
site_run(struct pool_work *w, struct dv_db *db)
{
    struct site *s = (struct site *)w;

    dv_err_clear(&s->err);
    s->ok = 0;
    s->released = 0;
    s->next = 0;
    if (server_name_ensure(s->q, db, &s->err) < 0 ||
        db_release_waiting(db, dv_now(), &s->released, &s->next, &s->err) < 0) {
        return;
    }
    s->ok = 1;
    if (s->released > 0) {
        log_notice("%d job%s reached %s execution time: queued", s->released,
                   s->released == 1 ? "" : "s",
                   s->released == 1 ? "its" : "their");
    }
}

static void
site_arm(struct site *s, double when)
{
    double delay;

    ev_timer_stop(s->q->loop, &s->timer);
    s->armed = when;
    if (when <= 0) {
        return;
    }
    ev_now_update(s->q->loop); /* the timer counts from the loop's now */
    delay = dv_clock_real_span(when - dv_now());
    if (delay < 0) {
        delay = 0;
    }
    /* Just past the time, so that the pass finds the job due (a pass run
     * too early finds it not due and re-arms for it). */
    ev_timer_set(&s->timer, delay + 0.001, 0.);
    ev_timer_start(s->q->loop, &s->timer);
}

static void
site_pass(struct site *s)
{
    if (s->stopped) {
        return;
    }
    if (s->busy) {
        s->again = 1;
        return;
    }
    ev_timer_stop(s->q->loop, &s->timer);
    s->armed = 0;
    s->busy = 1;
    s->again = 0;
    pool_submit(s->q->pool, &s->work);
}

static void
site_done(struct pool_work *w)
{
    struct site *s = (struct site *)w;

    s->busy = 0;
    if (s->stopped || w->skipped) {
        return;
    }
    if (!s->ok) {
        log_warn("could not queue jobs whose execution time came: %s",
                 s->err.msg);
        ev_timer_stop(s->q->loop, &s->timer);
        ev_timer_set(&s->timer, SITE_RETRY, 0.);
        ev_timer_start(s->q->loop, &s->timer);
        s->armed = dv_now();
        return;
    }
    if (s->again || s->released >= QMGR_WAITING_BATCH) {
        site_pass(s);
        return;
    }
    site_arm(s, s->next);
}

static void
site_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    site_pass(t->data);
}

struct site *
site_new(struct qmgr *q)
{
    struct site *s = dv_xcalloc(1, sizeof(*s));

    s->q = q;
    s->work.run = site_run;
    s->work.done = site_done;
    ev_timer_init(&s->timer, site_timer_cb, 0., 0.);
    s->timer.data = s;
    site_pass(s); /* W jobs survive a restart: read the earliest time */
    return s;
}

void
site_waiting_hint(struct qmgr *q, double when)
{
    struct site *s = q->site;

    if (s == NULL || s->stopped) {
        return;
    }
    if (s->busy) {
        s->again = 1;
        return;
    }
    if (s->armed == 0 || when < s->armed) {
        site_arm(s, when);
    }
}

void
site_waiting_notified(struct qmgr *q, const char *payload)
{
    double when = 0;
    char *end = NULL;

    if (payload != NULL) {
        errno = 0;
        when = strtod(payload, &end);
        if (errno != 0 || end == payload || *end != '\0') {
            when = 0;
        }
    }
    if (!(when > 0)) {
        when = dv_now(); /* unknown: read the earliest time again */
    }
    site_waiting_hint(q, when);
}

void
site_stop(struct site *s)
{
    if (s == NULL) {
        return;
    }
    s->stopped = 1;
    ev_timer_stop(s->q->loop, &s->timer);
}

int
site_busy(const struct site *s)
{
    return s != NULL && s->busy;
}

void
site_free(struct site *s)
{
    if (s == NULL) {
        return;
    }
    ev_timer_stop(s->q->loop, &s->timer);
    free(s);
}

/* --- mail --- */

/* What a job's event means for mail: 'b' begun, 'e' ended, 'a' aborted;
 * 0: nothing. */
static char
mail_point(const char *event, const PGresult *res, int row)
{
    const char *comment = dv_db_get(res, row, "comment");
    int has_exit = !dv_db_is_null(res, row, "exit_status");
    int64_t exit_status = dv_db_get_i64(res, row, "exit_status", 0);

    if (strcmp(event, "running") == 0) {
        return 'b';
    }
    if (strcmp(event, "finished") != 0) {
        return 0;
    }
    if (!has_exit || exit_status < 0 ||
        (comment != NULL && (strstr(comment, "terminated") != NULL ||
                             strstr(comment, "deleted") != NULL))) {
        return 'a';
    }
    return 'e';
}

void
site_mail_format(char point, const char *jid, const char *name, const char *to,
                 const char *from, const char *comment, int has_exit,
                 int64_t exit_status, int64_t cput, int64_t walltime,
                 int64_t mem, struct dv_buf *out)
{
    char t1[32], t2[32], sz[32];

    dv_buf_printf(out, "From: %s\nTo: %s\nSubject: PBS JOB %s\n\n", from, to,
                  jid);
    dv_buf_printf(out, "PBS Job Id: %s\nJob Name:   %s\n", jid, name);
    switch (point) {
    case 'b':
        dv_buf_puts(out, "Begun execution\n");
        break;
    case 'e':
        dv_format_hms(cput, t1, sizeof(t1));
        dv_format_hms(walltime, t2, sizeof(t2));
        dv_format_size(mem > 0 ? mem : 0, sz, sizeof(sz));
        dv_buf_printf(out,
                      "Execution terminated\nExit_status=%lld\n"
                      "resources_used.cput=%s\nresources_used.mem=%s\n"
                      "resources_used.walltime=%s\n",
                      (long long)exit_status, t1, sz, t2);
        break;
    default:
        dv_buf_puts(out, "Aborted by PBS Server \n");
        if (comment != NULL) {
            dv_buf_printf(out, "%s\n", comment);
        }
        if (has_exit) {
            dv_buf_printf(out, "Exit_status=%lld\n", (long long)exit_status);
        }
        break;
    }
}

/* Waits for the sendmail child at most SITE_MAIL_WAIT seconds (a worker
 * must not hang on it), then kills it. The loop thread's SIGCHLD watcher
 * (libev reaps every child) may have reaped it first: then its status is
 * unknown. */
static void
mail_wait(const char *path, pid_t pid)
{
    const struct timespec tick = {0, 10 * 1000 * 1000};
    int status = 0;

    for (int i = 0; i < SITE_MAIL_WAIT * 100; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
                log_warn("%s exited with status %d", path, WEXITSTATUS(status));
            } else if (WIFSIGNALED(status)) {
                log_warn("%s was killed by signal %d", path, WTERMSIG(status));
            }
            return;
        }
        if (r < 0 && errno != EINTR) {
            return; /* reaped by the loop thread */
        }
        nanosleep(&tick, NULL);
    }
    log_warn("%s did not finish in %d s: killed", path, SITE_MAIL_WAIT);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

/* Starts sendmail -f from rcpt... with msg on its standard input and
 * waits for it. Returns 0 or -1 (logged). */
static int
run_sendmail(const char *path, const char *from, const char *to,
             const char *msg, size_t len)
{
    char *rcpts = dv_xstrdup(to);
    char **argv = NULL;
    int argc = 0, fds[2] = {-1, -1}, rc = -1;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    size_t off = 0;
    char *save = NULL;

    argv = dv_xcalloc(strlen(to) + 5, sizeof(char *));
    argv[argc++] = (char *)path;
    argv[argc++] = (char *)"-f";
    argv[argc++] = (char *)from;
    for (char *r = strtok_r(rcpts, ",", &save); r != NULL;
         r = strtok_r(NULL, ",", &save)) {
        argv[argc++] = r;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        log_warn("could not send mail with %s: pipe: %s", path,
                 strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[0]);
    fds[0] = -1;
    if (rc != 0) {
        log_warn("could not send mail with %s: %s", path, strerror(rc));
        rc = -1;
        goto out;
    }
    while (off < len) {
        ssize_t k = write(fds[1], msg + off, len - off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            log_warn("could not send mail with %s: write: %s", path,
                     strerror(errno));
            break;
        }
        off += (size_t)k;
    }
    close(fds[1]);
    fds[1] = -1;
    mail_wait(path, pid);
    rc = off == len ? 0 : -1;
out:
    if (fds[0] >= 0) {
        close(fds[0]);
    }
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    free(argv);
    free(rcpts);
    return rc;
}

void
site_mail(struct qmgr *q, struct dv_db *db, const struct job_event *ev, int n)
{
    const char *server = server_name(q);
    int64_t *ids;
    int nids = 0;
    PGresult *res = NULL;
    struct dv_err err;

    /* Without sendmail the mail is only logged at info level: nothing to
     * read when that level is off (bulk runs stay one statement cheaper). */
    if (n == 0 || (q->sendmail == NULL && DV_LOG_INFO < dv_log_threshold)) {
        return;
    }
    ids = dv_xcalloc((size_t)n, sizeof(*ids));
    for (int i = 0; i < n; i++) {
        if (strcmp(ev[i].state, "running") == 0 ||
            strcmp(ev[i].state, "finished") == 0) {
            ids[nids++] = ev[i].job_id;
        }
    }
    dv_err_clear(&err);
    if (nids == 0 || db_mail_jobs(db, ids, nids, &res, &err) < 0) {
        if (nids > 0) {
            log_warn("could not read the jobs to send mail about: %s", err.msg);
        }
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int row = -1;
        char point, jid[300];
        const char *to, *points;
        struct dv_buf msg;

        for (int r = 0; r < PQntuples(res); r++) {
            if (dv_db_get_i64(res, r, "id", 0) == ev[i].job_id) {
                row = r;
            }
        }
        if (row < 0) {
            continue;
        }
        point = mail_point(ev[i].state, res, row);
        points = dv_db_get(res, row, "mail_points");
        if (point == 0 || points == NULL || strchr(points, point) == NULL) {
            continue;
        }
        to = dv_db_get(res, row, "mail_users");
        if (dv_str_empty(to)) {
            to = dv_db_get(res, row, "owner");
        }
        dv_job_id_format((long long)ev[i].job_id, server, jid, sizeof(jid));
        dv_buf_init(&msg);
        site_mail_format(point, jid, dv_db_get(res, row, "name"), to,
                         q->mail_from, dv_db_get(res, row, "comment"),
                         !dv_db_is_null(res, row, "exit_status"),
                         dv_db_get_i64(res, row, "exit_status", 0),
                         dv_db_get_i64(res, row, "used_cput", 0),
                         dv_db_get_i64(res, row, "used_walltime", 0),
                         dv_db_get_i64(res, row, "used_mem", 0), &msg);
        if (q->sendmail != NULL) {
            if (run_sendmail(q->sendmail, q->mail_from, to, dv_buf_str(&msg),
                             msg.len) == 0) {
                log_info("job %s: mail (%c) sent to %s", jid, point, to);
            }
        } else {
            log_info("job %s: mail (%c) to %s (no sendmail configured): %s",
                     jid, point, to,
                     point == 'b'   ? "Begun execution"
                     : point == 'e' ? "Execution terminated"
                                    : "Aborted by PBS Server");
        }
        dv_buf_cleanup(&msg);
    }
out:
    PQclear(res);
    free(ids);
}
