/*
 * pbsdsh tasks (docs/internals/noded.md "pbsdsh tasks"): commands qmgr
 * lists with one of this node's allocations in the long-poll answer. Each
 * runs once, as the job's owner, in the allocation's cores and directory,
 * with the job's environment plus PBS_NODENUM, PBS_TASKNUM and
 * PBS_VNODENUM; its stdout and stderr go to files in the allocation
 * directory and come back to qmgr with its exit status (at most
 * DSH_MAX_OUTPUT bytes of each), so that pbsdsh can relay them. Tasks die
 * with their allocation. Ends are sent in batches to
 * POST /v1/nodes/:id/tasks/status and retried until acknowledged.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/http-client.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/resources.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define DSH_MAX_OUTPUT (64 * 1024)
#define DSH_MAX_BATCH 8
#define DSH_RETRY 1.0 /* real seconds */
#define DSH_TIMEOUT 30.0

static void dsh_post(struct noded *nd);

static struct dsh_task *
dsh_find(const struct alloc *a, long long id)
{
    for (struct dsh_task *k = a->dsh; k != NULL; k = k->next) {
        if (k->id == id) {
            return k;
        }
    }
    return NULL;
}

void
dsh_sanitize(char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80         ? 1
                   : (c >> 5) == 6  ? 2
                   : (c >> 4) == 14 ? 3
                   : (c >> 3) == 30 ? 4
                                    : 0;
        size_t k;

        if (c == 0 || n == 0 || i + n > len) {
            s[i++] = '?';
            continue;
        }
        for (k = 1; k < n && ((unsigned char)s[i + k] >> 6) == 2; k++) {
        }
        if (k < n) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

/* The first DSH_MAX_OUTPUT bytes of path, made JSON-safe; NULL when
 * empty or unreadable. */
static char *
read_output(const char *path)
{
    char *buf;
    ssize_t n;
    size_t got = 0;
    int fd;

    if (path == NULL) {
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return NULL;
    }
    buf = dv_xmalloc(DSH_MAX_OUTPUT + 1);
    while (got < DSH_MAX_OUTPUT) {
        n = read(fd, buf + got, DSH_MAX_OUTPUT - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (got == 0) {
        free(buf);
        return NULL;
    }
    dsh_sanitize(buf, got);
    buf[got] = '\0';
    return buf;
}

static void
dsh_ended(struct dsh_task *k)
{
    struct noded *nd = k->t.a->nd;

    k->done = 1;
    log_notice("allocation %lld of job %s: pbsdsh task %lld ended: exit "
               "status %d%s%s",
               k->t.a->id, alloc_job(k->t.a), k->id, k->t.status,
               k->message != NULL ? ": " : "",
               k->message != NULL ? k->message : "");
    dsh_post(nd);
}

static void
dsh_start_failed(struct dsh_task *k, const char *msg)
{
    log_error("allocation %lld of job %s: could not start pbsdsh task %lld: "
              "%s",
              k->t.a->id, alloc_job(k->t.a), k->id, msg);
    k->t.status = -1; /* JOB_EXEC_FAIL1 */
    free(k->message);
    k->message = dv_xstrdup(msg);
    dsh_ended(k);
}

/* Prepares and forks one task. Returns 0, or -1 with msg set. */
static int
dsh_launch(struct dsh_task *k, const struct alloc_desc *d,
           const struct dv_job_spec *s, json_t *argv, char *msg, size_t size)
{
    struct alloc *a = k->t.a;
    struct alloc_task *t = &k->t;
    struct env_user u;
    struct env_info info;
    struct dv_err err;
    char *nodefile = NULL, num[32];
    const struct dv_chunk *kind;
    size_t i;
    json_t *v;
    int rc = -1;

    memset(&u, 0, sizeof(u));
    if (alloc_task_identity(t, s->owner, &u, msg, size) < 0) {
        goto out;
    }
    /* A sister chunk ran nothing so far: its directory is made now. */
    if (a->dir == NULL && alloc_prepare(a, &u, msg, size) < 0) {
        goto out;
    }
    t->argv = dv_xcalloc(json_array_size(argv) + 1, sizeof(char *));
    json_array_foreach (argv, i, v) {
        if (!json_is_string(v)) {
            snprintf(msg, size, "malformed argv");
            goto out;
        }
        t->argv[i] = dv_xstrdup(json_string_value(v));
    }
    if (t->argv[0] == NULL) {
        snprintf(msg, size, "empty argv");
        goto out;
    }
    nodefile = dv_xasprintf("%s/nodefile", a->dir);
    memset(&info, 0, sizeof(info));
    info.spec = s;
    info.user = &u;
    info.job_id_str = a->job_id_str;
    info.job_id = a->job_id;
    info.alloc_id = a->id;
    info.queue = d->queue;
    info.ncpus = a->ncpus;
    kind = dv_resreq_chunk(&s->req, a->chunk_index);
    info.ompthreads = kind != NULL ? kind->ompthreads : 0;
    info.cpuset = a->cpuset;
    info.alloc_dir = a->dir;
    info.nodefile = nodefile;
    info.server = a->nd->cfg->server;
    info.node_name = a->nd->name;
    info.gpus = a->gpus;
    t->env = env_build(&info);
    snprintf(num, sizeof(num), "%d", k->node_index);
    env_set(&t->env, "PBS_NODENUM", num);
    env_set(&t->env, "PBS_VNODENUM", num);
    snprintf(num, sizeof(num), "%d", k->tasknum);
    env_set(&t->env, "PBS_TASKNUM", num);
    t->cands = env_exec_candidates(t->argv[0], env_get(t->env, "PATH"));
    t->out_path = dv_xasprintf("%s/task-%lld.stdout", a->dir, k->id);
    t->err_path = dv_xasprintf("%s/task-%lld.stderr", a->dir, k->id);
    t->join = SPAWN_JOIN_NONE;
    t->cwd = dv_xstrdup(u.home);
    /* The directory is the daemon's: the files are made for the owner. */
    if (allocdir_write(t->out_path, "", 0600, t->switch_user, t->uid, t->gid,
                       &err) < 0 ||
        allocdir_write(t->err_path, "", 0600, t->switch_user, t->uid, t->gid,
                       &err) < 0) {
        snprintf(msg, size, "%s", err.msg);
        goto out;
    }
    if (alloc_task_launch(t, 1, msg, size) < 0) {
        goto out;
    }
    k->started = 1;
    log_notice("allocation %lld of job %s: started pbsdsh task %lld (node "
               "%d, task %d) as %s: pid %d, %s",
               a->id, alloc_job(a), k->id, k->node_index, k->tasknum, u.name,
               (int)t->pid, t->argv[0]);
    rc = 0;
out:
    free(nodefile);
    env_user_cleanup(&u);
    return rc;
}

void
dsh_start(struct alloc *a, const struct alloc_desc *d)
{
    struct dv_job_spec spec;
    struct dv_err serr;
    int have_spec = 0;
    size_t i;
    json_t *o;

    if (!json_is_array(d->tasks) || json_array_size(d->tasks) == 0) {
        return;
    }
    dv_job_spec_init(&spec);
    json_array_foreach (d->tasks, i, o) {
        json_int_t id = 0, node = 0, num = 0;
        json_t *argv = NULL;
        struct dsh_task *k;
        char msg[512];

        if (json_unpack(o, "{s:I, s:I, s:I, s:o}", "id", &id, "node_index",
                        &node, "tasknum", &num, "argv", &argv) < 0 ||
            id <= 0 || !json_is_array(argv) || dsh_find(a, id) != NULL) {
            continue; /* malformed, or started already */
        }
        k = dv_xcalloc(1, sizeof(*k));
        k->id = id;
        k->node_index = (int)node;
        k->tasknum = (int)num;
        k->t.a = a;
        k->t.report_fd = -1;
        k->t.name = dv_xasprintf("dsh%lld", (long long)id);
        ev_init(&k->t.restart_w, NULL);
        k->next = a->dsh;
        a->dsh = k;
        if (a->state != ALLOC_RUNNING) {
            dsh_start_failed(k, "the job's allocation is ending");
            continue;
        }
        if (!have_spec) {
            if (d->job == NULL ||
                dv_job_spec_from_json(d->job, &spec, &serr) < 0 ||
                dv_job_spec_normalize(&spec, &serr) < 0) {
                snprintf(msg, sizeof(msg), "cannot read the job: %s",
                         d->job == NULL ? "no spec in the answer" : serr.msg);
                dsh_start_failed(k, msg);
                continue;
            }
            have_spec = 1;
        }
        if (dsh_launch(k, d, &spec, argv, msg, sizeof(msg)) < 0) {
            dsh_start_failed(k, msg);
        }
    }
    dv_job_spec_cleanup(&spec);
}

static void
dsh_exited(struct dsh_task *k, int wstatus)
{
    const char *cs = NULL;
    char msg[512];

    alloc_task_reaped(&k->t);
    killpg(k->t.pid, SIGKILL); /* what it left in its session */
    k->t.pid = 0;
    k->t.state = TASK_EXITED;
    k->t.status = alloc_exit_status(ALLOC_STOP_NONE, wstatus,
                                    k->t.have_fail ? &k->t.fail : NULL, &cs,
                                    msg, sizeof(msg));
    if (msg[0] != '\0') {
        free(k->message);
        k->message = dv_xstrdup(msg);
    }
    dsh_ended(k);
}

void
dsh_reap(struct noded *nd)
{
    for (struct alloc *a = nd->allocs; a != NULL; a = a->next) {
        for (struct dsh_task *k = a->dsh; k != NULL; k = k->next) {
            struct rusage ru;
            int st = 0;
            pid_t p;

            if (k->t.pid <= 0 || k->done) {
                continue;
            }
            do {
                p = wait4(k->t.pid, &st, WNOHANG, &ru);
            } while (p < 0 && errno == EINTR);
            if (p == k->t.pid) {
                dsh_exited(k, st);
            } else if (p < 0 && errno == ECHILD) {
                dsh_exited(k, W_EXITCODE(0, SIGKILL));
            }
        }
    }
}

void
dsh_signal(struct alloc *a, int sig)
{
    for (struct dsh_task *k = a->dsh; k != NULL; k = k->next) {
        if (k->t.pid > 0 && !k->done) {
            if (killpg(k->t.pid, sig) < 0 && errno == ESRCH) {
                kill(k->t.pid, sig);
            }
            if (sig == SIGTERM) {
                killpg(k->t.pid, SIGCONT);
            }
        }
    }
}

int
dsh_busy(const struct alloc *a)
{
    int n = 0;

    for (const struct dsh_task *k = a->dsh; k != NULL; k = k->next) {
        n += !k->reported;
    }
    return n;
}

void
dsh_free(struct alloc *a)
{
    while (a->dsh != NULL) {
        struct dsh_task *k = a->dsh;

        a->dsh = k->next;
        if (k->t.pid > 0 && !k->done) {
            int st;

            killpg(k->t.pid, SIGKILL);
            kill(k->t.pid, SIGKILL);
            while (waitpid(k->t.pid, &st, 0) < 0 && errno == EINTR) {
            }
        }
        alloc_task_cleanup(&k->t);
        free(k->message);
        free(k);
    }
}

/* ---- reporting ends ----------------------------------------------------- */

static void
dsh_post_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
                 void *arg)
{
    struct noded *nd = arg;
    int ok = resp != NULL && resp->status == 200;
    /* A batch refused as invalid can never apply: drop it. */
    int drop = resp != NULL && (resp->status == 400 || resp->status == 413);

    nd->dsh_posting = 0;
    for (struct alloc *a = nd->allocs; a != NULL; a = a->next) {
        for (struct dsh_task *k = a->dsh; k != NULL; k = k->next) {
            if (k->sending) {
                k->sending = 0;
                k->reported = ok || drop;
            }
        }
    }
    if (!ok) {
        if (!nd->dsh_failing || drop) {
            log_warn("node %s: could not report pbsdsh task ends: %s%s",
                     nd->name,
                     resp != NULL  ? "HTTP error"
                     : err != NULL ? err->msg
                                   : "no response",
                     drop ? " (dropped)" : " (retrying)");
        }
        nd->dsh_failing = !drop;
        if (!drop) {
            ev_timer_stop(nd->loop, &nd->dsh_w);
            ev_timer_set(&nd->dsh_w, DSH_RETRY, 0.);
            ev_timer_start(nd->loop, &nd->dsh_w);
            return;
        }
    } else {
        nd->dsh_failing = 0;
    }
    dsh_post(nd);
}

static json_t *
str_or_null(char *s)
{
    json_t *v = s != NULL ? json_string(s) : json_null();

    free(s);
    return v != NULL ? v : json_null();
}

/* Sends the ends not yet reported (one POST at a time). */
static void
dsh_post(struct noded *nd)
{
    json_t *updates;
    char path[96], *text;
    struct dv_err err;
    int n = 0;

    if (nd->dsh_posting || nd->http == NULL || ev_is_active(&nd->dsh_w)) {
        return;
    }
    if (!nd->registered) {
        ev_timer_set(&nd->dsh_w, DSH_RETRY, 0.);
        ev_timer_start(nd->loop, &nd->dsh_w);
        return;
    }
    updates = json_array();
    for (struct alloc *a = nd->allocs; a != NULL && n < DSH_MAX_BATCH;
         a = a->next) {
        for (struct dsh_task *k = a->dsh; k != NULL && n < DSH_MAX_BATCH;
             k = k->next) {
            json_t *o;

            if (!k->done || k->reported || k->sending) {
                continue;
            }
            o = json_pack("{s:I, s:i}", "id", (json_int_t)k->id, "exit_status",
                          k->t.status);
            json_object_set_new(o, "stdout",
                                str_or_null(read_output(k->t.out_path)));
            json_object_set_new(o, "stderr",
                                str_or_null(read_output(k->t.err_path)));
            if (k->message != NULL) {
                char *m = dv_xstrdup(k->message);
                dsh_sanitize(m, strlen(m));
                json_object_set_new(o, "message", str_or_null(m));
            }
            json_array_append_new(updates, o);
            k->sending = 1;
            n++;
        }
    }
    if (n == 0) {
        json_decref(updates);
        return;
    }
    {
        json_t *body = json_pack("{s:o}", "updates", updates);
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    snprintf(path, sizeof(path), "/v1/nodes/%lld/tasks/status", nd->node_id);
    if (text == NULL ||
        dv_http_async_send(nd->http, "POST", path, text, strlen(text), NULL, 0,
                           DSH_TIMEOUT, dsh_post_done_cb, nd, &err) < 0) {
        free(text);
        dsh_post_done_cb(NULL, NULL, nd);
        return;
    }
    free(text);
    nd->dsh_posting = 1;
}

static void
dsh_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;

    (void)loop;
    (void)revents;
    dsh_post(nd);
}

void
dsh_init(struct noded *nd)
{
    ev_timer_init(&nd->dsh_w, dsh_timer_cb, 0., 0.);
    nd->dsh_w.data = nd;
}

void
dsh_cleanup(struct noded *nd)
{
    ev_timer_stop(nd->loop, &nd->dsh_w);
}
