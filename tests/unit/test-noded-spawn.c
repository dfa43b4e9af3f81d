/* Unit tests: noded/spawn.c and the allocation lifecycle of noded/alloc.c
 * with real processes (tiny shell scripts run as the current user, and as
 * "nobody" when the test runs as root), driven through the daemon's loop
 * with long-poll answers decoded by noded/client.c. No qmgr: updates are
 * only queued (nd.http is NULL). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/mem.h"
#include "lib/strutil.h"
#include "noded/noded.h"
#include "unit.h"

static char tmpdir[256];
static struct ev_loop *loop;
static struct topology *topo;
static struct noded_config cfg;
static struct noded nd;
static char owner[256];

static double
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    struct dv_buf b;
    char buf[4096];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    dv_buf_init(&b);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        dv_buf_append(&b, buf, n);
    }
    fclose(f);
    return dv_buf_steal(&b);
}

static int
contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

/* ---- raw spawn_child ---------------------------------------------------- */

static int
wait_child(pid_t pid, int fd, struct spawn_report *rep, int *nrep)
{
    int st = 0, eof = 0, n;

    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    *nrep = 0;
    n = spawn_read_reports(fd, rep, 4, &eof);
    if (n > 0) {
        *nrep = n;
    }
    close(fd);
    return st;
}

static void
test_spawn_basic(void)
{
    char *out = dv_xasprintf("%s/basic.out", tmpdir);
    char *errp = dv_xasprintf("%s/basic.err", tmpdir);
    char *argv[] = {(char *)"sh", (char *)"-c",
                    (char *)"echo out $A; echo err >&2; env; pwd; exit 3",
                    NULL};
    char *envp[] = {(char *)"A=1", (char *)"PATH=/usr/bin:/bin", NULL};
    char *cands[] = {(char *)"/bin/sh", NULL};
    struct spawn_req req;
    struct spawn_report rep[4];
    struct dv_err err;
    struct stat st;
    pid_t pid;
    int fd, status, nrep;
    char *o, *e;

    setenv("DROVER_TEST_SECRET", "leak", 1);
    memset(&req, 0, sizeof(req));
    req.candidates = cands;
    req.argv = argv;
    req.envp = envp;
    req.stdout_path = out;
    req.stderr_path = errp;
    req.cwd = tmpdir;
    req.umask = 077;
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    status = wait_child(pid, fd, rep, &nrep);
    CHECK_INT(spawn_wait_status(status), 3);
    CHECK_INT(nrep, 0);
    o = slurp(out);
    e = slurp(errp);
    CHECK(contains(o, "out 1\n"));
    CHECK(contains(o, "A=1\n"));
    CHECK(!contains(o, "DROVER_TEST_SECRET"));
    CHECK(contains(o, tmpdir));
    CHECK_STR(e, "err\n");
    CHECK_INT(stat(out, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    free(o);
    free(e);

    /* Joined: stderr into stdout, the file truncated first. */
    req.join = SPAWN_JOIN_OE;
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    status = wait_child(pid, fd, rep, &nrep);
    CHECK_INT(spawn_wait_status(status), 3);
    o = slurp(out);
    CHECK(contains(o, "out 1\nerr\n"));
    CHECK(o != NULL && strstr(o, "out 1") == strstr(o, "out 1\nerr"));
    free(o);

    /* chdir failure falls back, with a warning. */
    req.cwd = "/nonexistent-drover";
    req.cwd_fallback = "/";
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    status = wait_child(pid, fd, rep, &nrep);
    CHECK_INT(spawn_wait_status(status), 3);
    CHECK_INT(nrep, 1);
    CHECK_INT(rep[0].stage, SPAWN_STAGE_CHDIR);
    CHECK_INT(rep[0].fatal, 0);
    o = slurp(out);
    CHECK(contains(o, "\n/\n"));
    free(o);

    unsetenv("DROVER_TEST_SECRET");
    free(out);
    free(errp);
}

static void
test_spawn_failures(void)
{
    char *out = dv_xasprintf("%s/fail.out", tmpdir);
    char *bad = dv_xasprintf("%s/no/such/dir/x.out", tmpdir);
    char *argv[] = {(char *)"nothing", NULL};
    char *envp[] = {NULL};
    char *cands[] = {(char *)"/nonexistent/a", (char *)"/nonexistent/b", NULL};
    struct spawn_req req;
    struct spawn_report rep[4];
    struct dv_err err;
    pid_t pid;
    int fd, status, nrep;

    memset(&req, 0, sizeof(req));
    req.candidates = cands;
    req.argv = argv;
    req.envp = envp;
    req.stdout_path = out;
    req.join = SPAWN_JOIN_OE;
    req.cwd = "/";
    req.umask = 077;
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    status = wait_child(pid, fd, rep, &nrep);
    CHECK_INT(spawn_wait_status(status), 127);
    CHECK_INT(nrep, 1);
    CHECK_INT(rep[0].stage, SPAWN_STAGE_EXEC);
    CHECK_INT(rep[0].errnum, ENOENT);
    CHECK_INT(rep[0].fatal, 1);

    /* Not executable: EACCES is remembered past later misses. */
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    close(fd);
    chmod(out, 0644);
    cands[0] = out;
    req.stdout_path = "/dev/null";
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    status = wait_child(pid, fd, rep, &nrep);
    CHECK_INT(spawn_wait_status(status), 127);
    CHECK_INT(nrep, 1);
    CHECK_INT(rep[0].errnum, EACCES);

    req.stdout_path = bad;
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    status = wait_child(pid, fd, rep, &nrep);
    CHECK_INT(spawn_wait_status(status), 127);
    CHECK_INT(nrep, 1);
    CHECK_INT(rep[0].stage, SPAWN_STAGE_STDOUT);
    CHECK_INT(rep[0].errnum, ENOENT);
    free(out);
    free(bad);
}

/* Binding on the real host: the child runs on the PUs of core 0 only. */
static void
test_spawn_bind(void)
{
    struct dv_err err;
    struct topology *host = topology_load(NULL, NULL, 0, &err);
    char *out = dv_xasprintf("%s/bind.out", tmpdir);
    char *argv[] = {(char *)"sh", (char *)"-c",
                    (char *)"grep Cpus_allowed_list /proc/self/status", NULL};
    char *envp[] = {NULL};
    char *cands[] = {(char *)"/bin/sh", NULL};
    struct spawn_req req;
    struct spawn_report rep[4];
    hwloc_bitmap_t pus;
    char *want, *o, *line;
    pid_t pid;
    int fd, nrep;

    CHECK(host != NULL);
    if (host == NULL) {
        free(out);
        return;
    }
    pus = topology_cores_pus(host, "0", &err);
    want = topology_cores_pus_text(host, "0", &err);
    memset(&req, 0, sizeof(req));
    req.candidates = cands;
    req.argv = argv;
    req.envp = envp;
    req.stdout_path = out;
    req.join = SPAWN_JOIN_OE;
    req.cwd = "/";
    req.topo = host->topo;
    req.cpuset = pus;
    CHECK_INT(spawn_child(&req, &pid, &fd, &err), 0);
    CHECK_INT(spawn_wait_status(wait_child(pid, fd, rep, &nrep)), 0);
    CHECK_INT(nrep, 0);
    o = slurp(out);
    line = dv_xasprintf("Cpus_allowed_list:\t%s\n", want);
    CHECK_STR(o, line);
    free(line);
    free(o);
    free(want);
    hwloc_bitmap_free(pus);
    topology_free(host);
    free(out);
}

/* ---- allocations through the loop --------------------------------------- */

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

static struct status_update *
find_update(long long id, const char *status)
{
    for (struct status_update *u = nd.updates; u != NULL; u = u->next) {
        if (u->alloc_id != id) {
            continue;
        }
        if (status != NULL ? strcmp(u->client_status, status) == 0
                           : strcmp(u->client_status, "running") != 0) {
            return u;
        }
    }
    return NULL;
}

/* Runs the loop until allocation id has a terminal update queued. */
static struct status_update *
wait_final(long long id, double timeout)
{
    ev_timer tick;
    double end = mono() + timeout;

    ev_timer_init(&tick, tick_cb, 0.02, 0.02);
    ev_timer_start(loop, &tick);
    while (find_update(id, NULL) == NULL && mono() < end) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    return find_update(id, NULL);
}

/* Runs the loop for secs seconds. */
static void
run_for(double secs)
{
    ev_timer tick;
    double end = mono() + secs;

    ev_timer_init(&tick, tick_cb, 0.02, 0.02);
    ev_timer_start(loop, &tick);
    while (mono() < end) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
}

static void
setup(void)
{
    noded_init(&nd, loop, &cfg, topo);
}

/* The process of an allocation's (first) task; 0 when none. */
static pid_t
alloc_pid(const struct alloc *a)
{
    return a != NULL && a->ntasks > 0 ? a->tasks[0].pid : 0;
}

static void
teardown(void)
{
    /* Kill whatever a failed test left running. */
    for (struct alloc *a = nd.allocs; a != NULL; a = a->next) {
        for (int i = 0; i < a->ntasks; i++) {
            if (a->tasks[i].pid > 0) {
                killpg(a->tasks[i].pid, SIGKILL);
                waitpid(a->tasks[i].pid, NULL, 0);
            }
        }
    }
    noded_cleanup(&nd);
}

/* One allocation in long-poll form; job is a spec (stolen). */
static json_t *
alloc_json(long long id, const char *desired, const char *client_status,
           int chunk, const char *cpuset, long long walltime, json_t *job)
{
    json_t *a = json_pack(
        "{s:I, s:I, s:s, s:i, s:s, s:s, s:i, s:I, s:s, s:I, s:I, s:s, "
        "s:[{s:s, s:i}, {s:s, s:i}]}",
        "id", (json_int_t)id, "job_id", (json_int_t)12, "job_id_str", "12.srv",
        "chunk_index", chunk, "desired_status", desired, "client_status",
        client_status, "ncpus", 2, "mem", (json_int_t)1073741824, "cpuset",
        cpuset, "modify_index", (json_int_t)100, "walltime",
        (json_int_t)walltime, "queue", "workq", "hosts", "host", "node1",
        "ncpus", 2, "host", "node2", "ncpus", 1);
    if (job != NULL) {
        json_object_set_new(a, "job", job);
    }
    return a;
}

static json_t *
script_job(const char *user, const char *script, const char *out)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:[s, s], s:s}", "name",
                          "hello", "owner", user, "script", script, "shell",
                          "/bin/sh", "env", "PBS_O_PATH=/usr/bin:/bin",
                          "PBS_O_WORKDIR=/tmp", "join", "oe");
    if (out != NULL) {
        json_object_set_new(j, "stdout", json_string(out));
    }
    return j;
}

/* Feeds the full answer {"index": index, "allocations": allocs, "jobs":
 * ...} to the poll of generation index (the specs given with allocs move
 * to "jobs", as qmgr sends them); the next poll is then in flight. */
static void
poll_answer(long long index, json_t *allocs)
{
    json_t *jobs = json_object(), *a;
    json_t *root;
    char *text;
    struct poll_answer ans;
    struct dv_err err;
    size_t i;

    json_array_foreach (allocs, i, a) {
        json_t *job = json_object_get(a, "job");

        if (job != NULL) {
            json_object_set(jobs, "12", job);
            json_object_del(a, "job");
        }
    }
    root = json_pack("{s:I, s:b, s:o, s:o}", "index", (json_int_t)index, "full",
                     1, "allocations", allocs, "jobs", jobs);
    text = json_dumps(root, JSON_COMPACT);
    CHECK_INT(client_decode_allocations(text, &ans, &err), 0);
    CHECK_INT(ans.index, index);
    nd.index = ans.index;
    nd.poll_gen = (unsigned long)index;
    alloc_reconcile(&nd, &ans, (unsigned long)index);
    nd.poll_gen = (unsigned long)index + 1;
    poll_answer_cleanup(&ans);
    free(text);
    json_decref(root);
}

static void
test_alloc_run(void)
{
    char *out = dv_xasprintf("%s/run.o12", tmpdir);
    char *hostout = dv_xasprintf("login1:%s", out);
    const char *script = "echo \"hello from $PBS_JOBID\"\n"
                         "echo 'err line' >&2\n"
                         "env | sort\n"
                         "echo nodes:; cat \"$PBS_NODEFILE\"\n"
                         "ls -ld \"$TMPDIR\"\n"
                         "exit 0\n";
    struct status_update *u;
    struct alloc *a;
    struct stat st;
    char *o, *p, *dir;

    setup();
    poll_answer(
        5, json_pack("[o]", alloc_json(77, "run", "pending", 0, "1-2", 0,
                                       script_job(owner, script, hostout))));
    a = alloc_find(&nd, 77);
    CHECK(a != NULL && a->state == ALLOC_RUNNING && alloc_pid(a) > 0);
    u = find_update(77, "running");
    CHECK(u != NULL);
    /* While it runs, a repeated answer changes nothing. */
    poll_answer(6, json_pack("[o]", alloc_json(77, "run", "running", 0, "1-2",
                                               0, NULL)));
    u = wait_final(77, 10);
    CHECK(u != NULL);
    if (u == NULL) {
        goto out;
    }
    CHECK_STR(u->client_status, "complete");
    CHECK_INT(u->has_exit, 1);
    CHECK_INT(u->exit_status, 0);
    CHECK_INT(u->has_used, 1);
    CHECK(u->mem > 0);
    CHECK(u->cput >= 0 && u->walltime >= 0 && u->walltime < 10);
    CHECK(u->message == NULL);
    CHECK_INT(alloc_active_count(&nd), 0);

    o = slurp(out);
    CHECK(contains(o, "hello from 12.srv\n"));
    CHECK(contains(o, "err line\n"));
    CHECK(contains(o, "PBS_NODENUM=0\n"));
    CHECK(contains(o, "PBS_JOBNAME=hello\n"));
    CHECK(contains(o, "PBS_QUEUE=workq\n"));
    CHECK(contains(o, "PBS_O_WORKDIR=/tmp\n"));
    CHECK(contains(o, "PATH=/usr/bin:/bin\n"));
    CHECK(contains(o, "NCPUS=2\n"));
    CHECK(contains(o, "DROVER_CPUSET=1-2\n"));
    CHECK(contains(o, "DROVER_ALLOC_ID=77\n"));
    CHECK(contains(o, "DROVER_NODE_NAME=node1\n"));
    CHECK(contains(o, "nodes:\nnode1\nnode1\nnode2\n"));
    CHECK(contains(o, "drwx------"));
    free(o);

    dir = dv_xasprintf("%s/alloc/77", cfg.data_dir);
    p = dv_xasprintf("%s/job.sh", dir);
    CHECK_INT(stat(p, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0700);
    o = slurp(p);
    CHECK_STR(o, script);
    free(o);
    free(p);
    p = dv_xasprintf("%s/secrets", dir);
    CHECK_INT(stat(p, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0700);
    free(p);

    /* Still listed before the update is acknowledged: kept, not rerun. */
    poll_answer(7, json_pack("[o]", alloc_json(77, "run", "running", 0, "1-2",
                                               0, NULL)));
    CHECK(alloc_find(&nd, 77) != NULL);
    CHECK_INT(alloc_active_count(&nd), 0);
    /* Acknowledged while poll 8 is in flight: its answer (maybe read
     * before the update committed) does not forget it, the answer to the
     * next poll does (and removes the directory). */
    alloc_final_acked(&nd, 77);
    poll_answer(8, json_array());
    CHECK(alloc_find(&nd, 77) != NULL);
    poll_answer(9, json_array());
    CHECK(alloc_find(&nd, 77) == NULL);
    CHECK(stat(dir, &st) < 0 && errno == ENOENT);
    free(dir);

    /* Not acknowledged: kept whatever the answers say. */
    poll_answer(10, json_pack("[o]", alloc_json(78, "run", "running", 0, "0", 0,
                                                NULL)));
    CHECK(find_update(78, "lost") != NULL);
    poll_answer(11, json_array());
    poll_answer(12, json_array());
    CHECK(alloc_find(&nd, 78) != NULL);
    alloc_final_acked(&nd, 78);
    poll_answer(13, json_array());
    CHECK(alloc_find(&nd, 78) != NULL);
    poll_answer(14, json_array());
    CHECK(alloc_find(&nd, 78) == NULL);
out:
    teardown();
    free(out);
    free(hostout);
}

static void
test_alloc_exit_codes(void)
{
    char *out = dv_xasprintf("%s/codes.out", tmpdir);
    json_t *argv_job;
    struct status_update *u;
    char *o;

    setup();
    poll_answer(
        1, json_pack("[o]", alloc_json(80, "run", "pending", 0, "0", 0,
                                       script_job(owner, "exit 3\n", out))));
    u = wait_final(80, 10);
    CHECK(u != NULL && u->exit_status == 3);
    CHECK(u != NULL && strcmp(u->client_status, "failed") == 0);

    /* An argv job runs through the job's PATH. */
    argv_job = json_pack("{s:s, s:s, s:[s, s, s, s], s:s, s:s, s:[s]}", "name",
                         "argv", "owner", owner, "argv", "printf", "%s-%s\\n",
                         "a", "b", "stdout", out, "join", "oe", "env",
                         "PBS_O_PATH=/nonexistent:/usr/bin:/bin");
    poll_answer(2, json_pack("[o]", alloc_json(81, "run", "pending", 0, "0", 0,
                                               argv_job)));
    u = wait_final(81, 10);
    CHECK(u != NULL && u->exit_status == 0);
    o = slurp(out);
    CHECK_STR(o, "a-b\n");
    free(o);

    argv_job = json_pack("{s:s, s:s, s:[s], s:s, s:s}", "name", "argv", "owner",
                         owner, "argv", "no-such-command-drover", "stdout", out,
                         "join", "oe");
    poll_answer(3, json_pack("[o]", alloc_json(82, "run", "pending", 0, "0", 0,
                                               argv_job)));
    u = wait_final(82, 10);
    CHECK(u != NULL && u->exit_status == 127);
    CHECK(u != NULL && u->message != NULL &&
          strcmp(u->message, "could not execute the job: No such file or "
                             "directory") == 0);

    /* Killed by a signal of its own. */
    poll_answer(
        4, json_pack("[o]",
                     alloc_json(83, "run", "pending", 0, "0", 0,
                                script_job(owner, "kill -SEGV $$\n", out))));
    u = wait_final(83, 10);
    CHECK(u != NULL && u->exit_status == 256 + SIGSEGV);
    teardown();
    free(out);
}

static void
test_alloc_refused(void)
{
    char *out = dv_xasprintf("%s/refused.out", tmpdir);
    struct status_update *u;

    setup();
    poll_answer(1, json_pack("[o]", alloc_json(90, "run", "pending", 0, "0", 0,
                                               script_job("no-such-user-drover",
                                                          "true\n", out))));
    u = wait_final(90, 1);
    CHECK(u != NULL);
    if (u != NULL) {
        CHECK_STR(u->client_status, "failed");
        CHECK_INT(u->exit_status, -1);
        CHECK_STR(u->message, "No Password Entry for User no-such-user-drover");
        CHECK_INT(u->has_used, 0);
    }
    CHECK(find_update(90, "running") == NULL);

    cfg.allow_root = 0;
    poll_answer(
        2, json_pack("[o]", alloc_json(91, "run", "pending", 0, "0", 0,
                                       script_job("root", "true\n", out))));
    u = wait_final(91, 1);
    CHECK(u != NULL && u->exit_status == -1);
    CHECK(u != NULL && contains(u->message, "--allow-root"));
    cfg.allow_root = 1;

    /* A spec that does not decode fails the allocation, not the poll. */
    poll_answer(3, json_pack("[o]", alloc_json(92, "run", "pending", 0, "0", 0,
                                               json_pack("{s:s, s:i}", "owner",
                                                         owner, "bogus", 1))));
    u = wait_final(92, 1);
    CHECK(u != NULL && u->exit_status == -1);
    CHECK(u != NULL && contains(u->message, "cannot read the job"));
    teardown();
    free(out);
}

static void
test_alloc_walltime(void)
{
    char *out = dv_xasprintf("%s/wall.out", tmpdir);
    struct status_update *u;
    double t0 = mono();

    setup();
    poll_answer(
        1, json_pack("[o]", alloc_json(100, "run", "pending", 0, "0", 1,
                                       script_job(owner, "sleep 30\n", out))));
    u = wait_final(100, 10);
    CHECK(u != NULL);
    if (u != NULL) {
        CHECK_STR(u->client_status, "failed");
        CHECK_INT(u->exit_status, -29);
        CHECK_STR(u->message, "exceeded resource walltime");
        CHECK(u->walltime >= 1 && u->walltime <= 3);
    }
    CHECK(mono() - t0 < 5);
    teardown();
    free(out);
}

static void
test_alloc_qdel(void)
{
    char *out = dv_xasprintf("%s/qdel.out", tmpdir);
    struct status_update *u;
    double t0;

    setup();
    poll_answer(
        1, json_pack("[o]", alloc_json(110, "run", "pending", 0, "0", 0,
                                       script_job(owner, "sleep 30\n", out))));
    run_for(0.2);
    t0 = mono();
    poll_answer(2, json_pack("[o]", alloc_json(110, "stop", "running", 0, "0",
                                               0, NULL)));
    CHECK(alloc_find(&nd, 110)->state == ALLOC_STOPPING);
    u = wait_final(110, 10);
    CHECK(u != NULL && u->exit_status == 271);
    CHECK(u != NULL && strcmp(u->client_status, "failed") == 0);
    CHECK(u != NULL && u->message == NULL);
    CHECK(mono() - t0 < 0.4); /* SIGTERM did it, not SIGKILL */

    /* A job that ignores SIGTERM gets SIGKILL after the grace period. */
    poll_answer(3, json_pack("[o]", alloc_json(111, "run", "pending", 0, "0", 0,
                                               script_job(owner,
                                                          "trap '' TERM\n"
                                                          "sleep 30\n",
                                                          out))));
    run_for(0.2);
    t0 = mono();
    poll_answer(4, json_pack("[o]", alloc_json(111, "stop", "running", 0, "0",
                                               0, NULL)));
    u = wait_final(111, 10);
    CHECK(u != NULL && u->exit_status == 256 + SIGKILL);
    CHECK(mono() - t0 >= 0.4);

    /* Dropped from the list (qmgr marked it lost): stopped too. */
    poll_answer(
        5, json_pack("[o]", alloc_json(112, "run", "pending", 0, "0", 0,
                                       script_job(owner, "sleep 30\n", out))));
    run_for(0.2);
    poll_answer(6, json_array());
    u = wait_final(112, 10);
    CHECK(u != NULL && u->exit_status == 271);
    CHECK(u != NULL && contains(u->message, "no longer assigned"));
    teardown();
    free(out);
}

static void
test_alloc_chunks_and_lost(void)
{
    struct status_update *u;

    setup();
    /* Chunk 1 holds its cores until told to stop. */
    poll_answer(1, json_pack("[o]", alloc_json(120, "run", "pending", 1, "3", 0,
                                               NULL)));
    CHECK(find_update(120, "running") != NULL);
    CHECK_INT(alloc_active_count(&nd), 1);
    CHECK(alloc_pid(alloc_find(&nd, 120)) == 0);
    poll_answer(2, json_pack("[o]", alloc_json(120, "stop", "running", 1, "3",
                                               0, NULL)));
    u = find_update(120, NULL);
    CHECK(u != NULL && strcmp(u->client_status, "complete") == 0 &&
          u->exit_status == 0);

    /* Running according to qmgr, unknown here: lost, reported once. */
    poll_answer(3, json_pack("[o]", alloc_json(121, "run", "running", 0, "0", 0,
                                               NULL)));
    u = find_update(121, NULL);
    CHECK(u != NULL && strcmp(u->client_status, "lost") == 0);
    CHECK(u != NULL && u->has_exit == 0);
    poll_answer(4, json_pack("[o]", alloc_json(121, "run", "running", 0, "0", 0,
                                               NULL)));
    CHECK_INT(nd.nupdates, 3);

    /* Deleted while pending: never started. */
    poll_answer(5, json_pack("[o]", alloc_json(122, "stop", "pending", 0, "0",
                                               0, NULL)));
    u = find_update(122, NULL);
    CHECK(u != NULL && strcmp(u->client_status, "failed") == 0 &&
          u->exit_status == 271);
    CHECK(find_update(122, "running") == NULL);

    /* The batch encodes in order; the "running" of 120, not sent before
     * it ended, is left out. */
    {
        json_t *j = client_updates_json(nd.updates, nd.nupdates);
        json_t *arr = json_object_get(j, "updates");

        CHECK_INT(nd.nupdates, 4);
        CHECK_INT(json_array_size(arr), 3);
        CHECK_STR(json_string_value(
                      json_object_get(json_array_get(arr, 0), "client_status")),
                  "complete");
        CHECK_INT(json_integer_value(
                      json_object_get(json_array_get(arr, 0), "exit_status")),
                  0);
        CHECK_STR(json_string_value(
                      json_object_get(json_array_get(arr, 1), "client_status")),
                  "lost");
        CHECK(json_object_get(json_array_get(arr, 1), "exit_status") == NULL);
        json_decref(j);
    }
    teardown();
}

static void
test_decode_errors(void)
{
    struct poll_answer ans;
    struct dv_err err;

    setup();
    CHECK_INT(client_decode_allocations("nope", &ans, &err), -1);
    CHECK_INT(client_decode_allocations("{\"allocations\": []}", &ans, &err),
              -1);
    CHECK_INT(
        client_decode_allocations(
            "{\"index\": 3, \"allocations\": [{\"id\": \"x\"}]}", &ans, &err),
        -1);
    CHECK(ans.descs == NULL && ans.root == NULL);
    CHECK_INT(
        client_decode_allocations(
            "{\"index\": 3, \"allocations\": [], \"jobs\": []}", &ans, &err),
        -1);
    CHECK_INT(client_decode_allocations("{\"index\": 3, \"allocations\": []}",
                                        &ans, &err),
              0);
    CHECK_INT(ans.n, 0);
    CHECK_INT(ans.index, 3);
    poll_answer_cleanup(&ans);
    teardown();
}

static void
test_alloc_as_nobody(void)
{
    struct passwd *pw = getpwnam("nobody");
    char *out = dv_xasprintf("%s/nobody.out", tmpdir);
    struct status_update *u;
    struct stat st;
    char *o, *want;
    uid_t uid;

    if (geteuid() != 0 || pw == NULL) {
        free(out);
        return; /* needs root to switch users */
    }
    uid = pw->pw_uid;
    setup();
    poll_answer(1, json_pack("[o]", alloc_json(130, "run", "pending", 0, "0", 0,
                                               script_job("nobody",
                                                          "id -u; pwd; ls -ld "
                                                          "\"$TMPDIR\"\n",
                                                          out))));
    u = wait_final(130, 10);
    CHECK(u != NULL && u->exit_status == 0);
    CHECK_INT(stat(out, &st), 0);
    CHECK_INT(st.st_uid, uid);
    CHECK_INT(st.st_mode & 0777, 0600);
    o = slurp(out);
    want = dv_xasprintf("%d\n", (int)uid);
    CHECK(o != NULL && strncmp(o, want, strlen(want)) == 0);
    CHECK(contains(o, "nobody"));
    free(want);
    free(o);

    /* nobody cannot write into a root-only directory. */
    free(out);
    out = dv_xasprintf("%s/alloc/x.out", cfg.data_dir);
    poll_answer(
        2, json_pack("[o]", alloc_json(131, "run", "pending", 0, "0", 0,
                                       script_job("nobody", "true\n", out))));
    u = wait_final(131, 10);
    CHECK(u != NULL && u->exit_status == -1);
    CHECK(u != NULL &&
          contains(u->message,
                   "could not open the output file: Permission denied"));
    teardown();
    free(out);
}

static void
stop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(l, EVBREAK_ALL);
}

static void
test_shutdown(void)
{
    char *out = dv_xasprintf("%s/shutdown.out", tmpdir);
    struct status_update *u;
    ev_timer guard;

    setup();
    poll_answer(
        1, json_pack("[o]", alloc_json(140, "run", "pending", 0, "0", 0,
                                       script_job(owner, "sleep 30\n", out))));
    poll_answer(1,
                json_pack("[o, o]",
                          alloc_json(140, "run", "pending", 0, "0", 0, NULL),
                          alloc_json(141, "run", "pending", 1, "1", 0, NULL)));
    run_for(0.2);
    noded_shutdown(&nd);
    CHECK(nd.stop_poll);
    ev_timer_init(&guard, stop_cb, 10., 0.);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0); /* returns when every job is reported */
    ev_timer_stop(loop, &guard);
    u = find_update(140, NULL);
    CHECK(u != NULL && u->exit_status == 271);
    CHECK(u != NULL && contains(u->message, "shutting down"));
    u = find_update(141, NULL);
    CHECK(u != NULL && strcmp(u->client_status, "complete") == 0);
    CHECK_INT(alloc_active_count(&nd), 0);
    /* A stopping daemon starts nothing new. */
    poll_answer(2,
                json_pack("[o]", alloc_json(142, "run", "pending", 0, "0", 0,
                                            script_job(owner, "true\n", out))));
    CHECK(alloc_find(&nd, 142) == NULL);
    teardown();
    free(out);
}

/* A daemon killed without stopping its jobs leaves them running; the next
 * one reports them lost and kills what it finds by the pid file. */
static void
test_leftover_killed(void)
{
    char *out = dv_xasprintf("%s/leftover.out", tmpdir);
    unsigned long long st1 = 0, st2 = 0;
    struct status_update *u;
    struct alloc *a;
    pid_t pid;
    int status = 0;

    CHECK_INT(spawn_proc_starttime(getpid(), &st1), 0);
    CHECK(st1 > 0);
    CHECK_INT(spawn_proc_starttime(getpid(), &st2), 0);
    CHECK(st1 == st2);
    setup();
    poll_answer(
        1, json_pack("[o]", alloc_json(150, "run", "pending", 0, "0", 0,
                                       script_job(owner, "sleep 30\n", out))));
    a = alloc_find(&nd, 150);
    CHECK(a != NULL && alloc_pid(a) > 0);
    if (a == NULL || alloc_pid(a) <= 0) {
        teardown();
        free(out);
        return;
    }
    pid = alloc_pid(a);
    noded_cleanup(&nd); /* "killed": the job keeps running */
    CHECK_INT(kill(pid, 0), 0);
    setup();
    poll_answer(2, json_pack("[o]", alloc_json(150, "run", "running", 0, "0", 0,
                                               NULL)));
    u = find_update(150, NULL);
    CHECK(u != NULL && strcmp(u->client_status, "lost") == 0);
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    teardown();
    free(out);
}

static void
test_allocdir(void)
{
    char *data = dv_xasprintf("%s/dirs", tmpdir);
    char *dir, *p, *link;
    struct dv_err err;
    struct stat st;
    int fd;

    CHECK_INT(allocdir_init(data, &err), 0);
    dir = allocdir_create(data, 5, 0, 0, 0, &err);
    CHECK(dir != NULL);
    if (dir == NULL) {
        free(data);
        return;
    }
    /* A planted link to a file outside is removed, its target kept. */
    p = dv_xasprintf("%s/outside", tmpdir);
    fd = open(p, O_WRONLY | O_CREAT, 0600);
    close(fd);
    link = dv_xasprintf("%s/tmp/link", dir);
    CHECK_INT(symlink(tmpdir, link), 0);
    free(link);
    link = dv_xasprintf("%s/local/a/b/c", dir);
    {
        char *a = dv_xasprintf("%s/local/a", dir);
        char *b = dv_xasprintf("%s/local/a/b", dir);
        mkdir(a, 0700);
        mkdir(b, 0700);
        free(a);
        free(b);
    }
    fd = open(link, O_WRONLY | O_CREAT, 0600);
    close(fd);
    CHECK_INT(allocdir_write(link, "x", 0600, 0, 0, 0, &err), -1); /* EXCL */
    free(link);
    /* Creating it again starts from scratch. */
    free(dir);
    dir = allocdir_create(data, 5, 0, 0, 0, &err);
    CHECK(dir != NULL);
    link = dv_xasprintf("%s/local/a", dir);
    CHECK(stat(link, &st) < 0);
    free(link);
    CHECK_INT(allocdir_remove(dir, &err), 0);
    CHECK(stat(dir, &st) < 0 && errno == ENOENT);
    CHECK_INT(stat(p, &st), 0);
    CHECK_INT(stat(tmpdir, &st), 0);
    CHECK_INT(allocdir_remove(dir, &err), 0); /* already gone */
    free(p);
    free(dir);
    free(data);
}

int
main(void)
{
    struct dv_err err;
    struct passwd *pw = getpwuid(geteuid());
    char *data;
    int rc;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drover-noded-test.XXXXXX");
    if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0777) < 0 || pw == NULL) {
        perror("setup");
        return 1;
    }
    dv_strlcpy(owner, pw->pw_name, sizeof(owner));
    data = dv_xasprintf("%s/data", tmpdir);
    cfg.data_dir = data;
    cfg.name = (char *)"node1";
    cfg.server = (char *)"http://127.0.0.1:1";
    cfg.allow_root = 1;
    cfg.kill_grace = 0.5;
    topo = topology_load(NULL, "pack:1 numa:2 core:2 pu:1", 0, &err);
    loop = ev_loop_new(EVFLAG_AUTO);
    if (topo == NULL || loop == NULL || allocdir_init(data, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }

    RUN(test_spawn_basic);
    RUN(test_spawn_failures);
    RUN(test_spawn_bind);
    RUN(test_alloc_run);
    RUN(test_alloc_exit_codes);
    RUN(test_alloc_refused);
    RUN(test_alloc_walltime);
    RUN(test_alloc_qdel);
    RUN(test_alloc_chunks_and_lost);
    RUN(test_decode_errors);
    RUN(test_alloc_as_nobody);
    RUN(test_shutdown);
    RUN(test_leftover_killed);
    RUN(test_allocdir);

    rc = unit_done();
    {
        struct dv_err e;
        if (allocdir_remove(tmpdir, &e) < 0) {
            fprintf(stderr, "cleanup: %s\n", e.msg);
        }
    }
    ev_loop_destroy(loop);
    topology_free(topo);
    free(data);
    return rc;
}
