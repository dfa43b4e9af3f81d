/* Unit tests: noded/env.c (job environment, nodefile, output paths, PATH
 * search, user lookup) and the exit-status mapping of noded/alloc.c and
 * noded/spawn.c. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "noded/noded.h"
#include "unit.h"

static void
fake_user(struct env_user *u)
{
    memset(u, 0, sizeof(*u));
    u->name = (char *)"alice";
    u->uid = 1000;
    u->gid = 1000;
    u->home = (char *)"/home/alice";
    u->shell = (char *)"/bin/bash";
}

static void
fake_info(struct env_info *in, const struct dv_job_spec *s,
          const struct env_user *u)
{
    memset(in, 0, sizeof(*in));
    in->spec = s;
    in->user = u;
    in->job_id_str = "12.srv";
    in->job_id = 12;
    in->alloc_id = 77;
    in->queue = "workq";
    in->ncpus = 2;
    in->cpuset = "2-3";
    in->alloc_dir = "/var/lib/drover/noded/alloc/77";
    in->nodefile = "/var/lib/drover/noded/alloc/77/nodefile";
    in->node_name = "node1";
}

static void
test_env_build(void)
{
    struct dv_job_spec s;
    struct env_user u;
    struct env_info in;
    char **env;

    dv_job_spec_init(&s);
    s.name = dv_xstrdup("hello");
    dv_job_spec_setenv(&s, "PBS_O_HOME", "/home/alice");
    dv_job_spec_setenv(&s, "PBS_O_PATH", "/opt/bin:/usr/bin");
    dv_job_spec_setenv(&s, "PBS_O_WORKDIR", "/home/alice/run");
    dv_job_spec_setenv(&s, "PBS_O_QUEUE", "workq");
    dv_job_spec_setenv(&s, "MYVAR", "a,b=c");
    dv_job_spec_setenv(&s, "HOME", "/not/home"); /* -v HOME=...: replaced */
    fake_user(&u);
    fake_info(&in, &s, &u);
    env = env_build(&in);

    CHECK_STR(env_get(env, "PBS_O_HOME"), "/home/alice");
    CHECK_STR(env_get(env, "MYVAR"), "a,b=c");
    CHECK_STR(env_get(env, "HOME"), "/home/alice");
    CHECK_STR(env_get(env, "LOGNAME"), "alice");
    CHECK_STR(env_get(env, "USER"), "alice");
    CHECK_STR(env_get(env, "SHELL"), "/bin/bash");
    CHECK_STR(env_get(env, "PATH"), "/opt/bin:/usr/bin");
    CHECK_STR(env_get(env, "PBS_JOBID"), "12.srv");
    CHECK_STR(env_get(env, "PBS_JOBNAME"), "hello");
    CHECK_STR(env_get(env, "PBS_QUEUE"), "workq");
    CHECK_STR(env_get(env, "PBS_O_WORKDIR"), "/home/alice/run");
    CHECK_STR(env_get(env, "PBS_NODEFILE"),
              "/var/lib/drover/noded/alloc/77/nodefile");
    CHECK_STR(env_get(env, "PBS_NODENUM"), "0");
    CHECK_STR(env_get(env, "PBS_TASKNUM"), "1");
    CHECK_STR(env_get(env, "PBS_ENVIRONMENT"), "PBS_BATCH");
    CHECK_STR(env_get(env, "ENVIRONMENT"), "BATCH");
    CHECK_STR(env_get(env, "NCPUS"), "2");
    CHECK_STR(env_get(env, "OMP_NUM_THREADS"), "2");
    CHECK_STR(env_get(env, "TMPDIR"), "/var/lib/drover/noded/alloc/77/tmp");
    CHECK_STR(env_get(env, "PBS_JOBDIR"), "/home/alice");
    CHECK_STR(env_get(env, "DROVER_ALLOC_ID"), "77");
    CHECK_STR(env_get(env, "DROVER_ALLOC_DIR"),
              "/var/lib/drover/noded/alloc/77");
    CHECK_STR(env_get(env, "DROVER_JOB_ID"), "12");
    CHECK_STR(env_get(env, "DROVER_NODE_NAME"), "node1");
    CHECK_STR(env_get(env, "DROVER_CPUSET"), "2-3");
    CHECK(env_get(env, "PBS_ARRAY_INDEX") == NULL);
    CHECK(env_get(env, "PBS_ACCOUNT") == NULL); /* only with -A */
    CHECK(env_get(env, "PBS_O") == NULL); /* prefixes do not match */
    /* Each name once. */
    {
        int homes = 0;
        for (char **p = env; *p != NULL; p++) {
            homes += strncmp(*p, "HOME=", 5) == 0;
        }
        CHECK_INT(homes, 1);
    }
    env_set(&env, "NCPUS", "4");
    CHECK_STR(env_get(env, "NCPUS"), "4");
    env_free(env);
    dv_job_spec_cleanup(&s);

    /* Defaults: no PBS_O_PATH, no workdir, no name. */
    dv_job_spec_init(&s);
    fake_info(&in, &s, &u);
    in.queue = NULL;
    env = env_build(&in);
    CHECK_STR(env_get(env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
    CHECK_STR(env_get(env, "PBS_O_WORKDIR"), "/home/alice");
    CHECK_STR(env_get(env, "PBS_JOBNAME"), "STDIN");
    CHECK_STR(env_get(env, "PBS_QUEUE"), "");
    env_free(env);
    s.workdir = dv_xstrdup("/scratch/run");
    s.queue = dv_xstrdup("long");
    env = env_build(&in);
    CHECK_STR(env_get(env, "PBS_O_WORKDIR"), "/scratch/run");
    CHECK_STR(env_get(env, "PBS_QUEUE"), "long");
    env_free(env);
    s.account = dv_xstrdup("acct42");
    env = env_build(&in);
    CHECK_STR(env_get(env, "PBS_ACCOUNT"), "acct42");
    env_free(env);
    dv_job_spec_cleanup(&s);
}

static void
test_nodefile(void)
{
    struct alloc_host hosts[3] = {{(char *)"node1", 2, 0},
                                  {(char *)"node2", 1, 0},
                                  {(char *)"node1", 1, 0}};
    char *s;

    s = env_nodefile(hosts, 3, "self", 9);
    CHECK_STR(s, "node1\nnode1\nnode2\nnode1\n");
    free(s);
    s = env_nodefile(NULL, 0, "self", 3);
    CHECK_STR(s, "self\nself\nself\n");
    free(s);
    s = env_nodefile(NULL, 0, "self", 0);
    CHECK_STR(s, "");
    free(s);
    /* mpiprocs lines per chunk, when the chunk has them */
    {
        struct alloc_host mp[3] = {
            {(char *)"a", 4, 2}, {(char *)"b", 4, 0}, {(char *)"c", 2, 1}};
        s = env_nodefile(mp, 3, "self", 4);
        CHECK_STR(s, "a\na\nb\nb\nb\nb\nc\n");
        free(s);
    }
}

/* pbsdsh output goes through JSON and PostgreSQL text: NUL bytes and
 * invalid UTF-8 become '?', valid UTF-8 stays. */
static void
test_dsh_sanitize(void)
{
    char a[] = "ok \xc3\xa9t\xc3\xa9\n";
    char b[] = {'x', '\0',       'y',        (char)0xff, (char)0xc3,
                'z', (char)0xe2, (char)0x82, '\0'};

    dsh_sanitize(a, strlen(a));
    CHECK_STR(a, "ok \xc3\xa9t\xc3\xa9\n");
    dsh_sanitize(b, 8);
    CHECK_STR(b, "x?y??z??");
}

static void
test_ompthreads(void)
{
    struct dv_job_spec s;
    struct env_user u;
    struct env_info in;
    char **env;

    dv_job_spec_init(&s);
    fake_user(&u);
    fake_info(&in, &s, &u);
    in.ncpus = 8;
    env = env_build(&in);
    CHECK_STR(env_get(env, "OMP_NUM_THREADS"), "8");
    CHECK_STR(env_get(env, "NCPUS"), "8");
    env_free(env);
    in.ompthreads = 2;
    env = env_build(&in);
    CHECK_STR(env_get(env, "OMP_NUM_THREADS"), "2");
    CHECK_STR(env_get(env, "NCPUS"), "8");
    env_free(env);
    dv_job_spec_cleanup(&s);
}

static void
test_output_path(void)
{
    char *s;

    s = env_output_path("login1:/home/alice/run/x.o12", "/w", "/home/alice",
                        "x", 12, 'o');
    CHECK_STR(s, "/home/alice/run/x.o12");
    free(s);
    s = env_output_path("/abs/path:with:colons", "/w", "/h", "x", 12, 'o');
    CHECK_STR(s, "/abs/path:with:colons");
    free(s);
    s = env_output_path("rel/out.txt", "/w", "/h", "x", 12, 'o');
    CHECK_STR(s, "/w/rel/out.txt");
    free(s);
    s = env_output_path("host:rel.txt", NULL, "/h", "x", 12, 'o');
    CHECK_STR(s, "/h/rel.txt");
    free(s);
    s = env_output_path(NULL, "/w", "/home/alice", "hello", 12, 'o');
    CHECK_STR(s, "/home/alice/hello.o12");
    free(s);
    s = env_output_path("", "/w", "/home/alice", NULL, 7, 'e');
    CHECK_STR(s, "/home/alice/STDIN.e7");
    free(s);
    /* subjobs: every ^array_index^ becomes the index */
    s = dv_xstrdup("/w/a.o12.^array_index^");
    env_array_path(&s, 7);
    CHECK_STR(s, "/w/a.o12.7");
    free(s);
    s = dv_xstrdup("/w/^array_index^/x.^array_index^.log");
    env_array_path(&s, 30);
    CHECK_STR(s, "/w/30/x.30.log");
    free(s);
    s = dv_xstrdup("/w/plain.o12");
    env_array_path(&s, 3);
    CHECK_STR(s, "/w/plain.o12");
    free(s);
}

/* A subjob's environment: PBS_JOBID is the subjob's, PBS_ARRAY_INDEX and
 * PBS_ARRAY_ID and their DROVER_* twins are set. */
static void
test_env_subjob(void)
{
    struct dv_job_spec s;
    struct env_user u;
    struct env_info in;
    char **env;

    dv_job_spec_init(&s);
    fake_user(&u);
    fake_info(&in, &s, &u);
    in.job_id_str = "12[7].srv";
    in.array_index = 7;
    in.array_id = "12[].srv";
    env = env_build(&in);
    CHECK_STR(env_get(env, "PBS_JOBID"), "12[7].srv");
    CHECK_STR(env_get(env, "PBS_ARRAY_INDEX"), "7");
    CHECK_STR(env_get(env, "PBS_ARRAY_ID"), "12[].srv");
    CHECK_STR(env_get(env, "DROVER_ARRAY_INDEX"), "7");
    CHECK_STR(env_get(env, "DROVER_ARRAY_ID"), "12[].srv");
    CHECK_STR(env_get(env, "DROVER_JOB_ID"), "12");
    env_free(env);
    dv_job_spec_cleanup(&s);
}

static void
test_exec_candidates(void)
{
    char **c;

    c = env_exec_candidates("/bin/true", "/x");
    CHECK_STR(c[0], "/bin/true");
    CHECK(c[1] == NULL);
    env_free(c);
    c = env_exec_candidates("./run.sh", NULL);
    CHECK_STR(c[0], "./run.sh");
    env_free(c);
    c = env_exec_candidates("hostname", "/opt/bin::/usr/bin");
    CHECK_STR(c[0], "/opt/bin/hostname");
    CHECK_STR(c[1], "./hostname");
    CHECK_STR(c[2], "/usr/bin/hostname");
    CHECK(c[3] == NULL);
    env_free(c);
    c = env_exec_candidates("ls", NULL);
    CHECK_STR(c[0], "/usr/local/bin/ls");
    CHECK_STR(c[2], "/bin/ls");
    env_free(c);
}

static void
test_user_lookup(void)
{
    struct env_user u;
    struct dv_err err;
    struct passwd *pw = getpwuid(geteuid());

    CHECK(pw != NULL);
    if (pw != NULL) {
        char *name = dv_xstrdup(pw->pw_name);

        CHECK_INT(env_user_lookup(name, &u, &err), 0);
        CHECK_STR(u.name, name);
        CHECK_INT(u.uid, geteuid());
        CHECK(u.home != NULL && u.home[0] == '/');
        CHECK(u.shell != NULL);
        CHECK(u.ngroups >= 1);
        env_user_cleanup(&u);
        free(name);
    }
    CHECK_INT(env_user_lookup("no-such-user-drover", &u, &err), -1);
    CHECK_STR(err.msg, "No Password Entry for User no-such-user-drover");
    CHECK_INT(err.kind, DV_ENOTFOUND);
    env_user_cleanup(&u);
    CHECK_INT(env_user_lookup(NULL, &u, &err), -1);
    env_user_cleanup(&u);
}

static void
test_exit_status(void)
{
    const char *cs = NULL;
    char msg[256];
    struct spawn_report r;

    CHECK_INT(spawn_wait_status(W_EXITCODE(0, 0)), 0);
    CHECK_INT(spawn_wait_status(W_EXITCODE(3, 0)), 3);
    CHECK_INT(spawn_wait_status(W_EXITCODE(255, 0)), 255);
    CHECK_INT(spawn_wait_status(W_EXITCODE(0, SIGTERM)), 271);
    CHECK_INT(spawn_wait_status(W_EXITCODE(0, SIGKILL)), 265);

    CHECK_INT(alloc_exit_status(ALLOC_STOP_NONE, W_EXITCODE(0, 0), NULL, &cs,
                                msg, sizeof(msg)),
              0);
    CHECK_STR(cs, "complete");
    CHECK_STR(msg, "");
    CHECK_INT(alloc_exit_status(ALLOC_STOP_NONE, W_EXITCODE(2, 0), NULL, &cs,
                                msg, sizeof(msg)),
              2);
    CHECK_STR(cs, "failed");
    CHECK_INT(alloc_exit_status(ALLOC_STOP_NONE, W_EXITCODE(0, SIGSEGV), NULL,
                                &cs, msg, sizeof(msg)),
              256 + SIGSEGV);
    CHECK_STR(cs, "failed");
    /* qdel: the real status. */
    CHECK_INT(alloc_exit_status(ALLOC_STOP_DESIRED, W_EXITCODE(0, SIGTERM),
                                NULL, &cs, msg, sizeof(msg)),
              271);
    CHECK_STR(cs, "failed");
    CHECK_STR(msg, "");
    /* A job that traps SIGTERM and exits 0 on qdel completed. */
    CHECK_INT(alloc_exit_status(ALLOC_STOP_DESIRED, W_EXITCODE(0, 0), NULL, &cs,
                                msg, sizeof(msg)),
              0);
    CHECK_STR(cs, "complete");
    /* Walltime: -29 whatever the signal. */
    CHECK_INT(alloc_exit_status(ALLOC_STOP_WALLTIME, W_EXITCODE(0, SIGKILL),
                                NULL, &cs, msg, sizeof(msg)),
              -29);
    CHECK_STR(cs, "failed");
    CHECK_STR(msg, "exceeded resource walltime");
    CHECK_INT(alloc_exit_status(ALLOC_STOP_SHUTDOWN, W_EXITCODE(0, SIGTERM),
                                NULL, &cs, msg, sizeof(msg)),
              271);
    CHECK_STR(msg, "stopped by drover-noded shutting down");

    memset(&r, 0, sizeof(r));
    r.fatal = 1;
    r.stage = SPAWN_STAGE_EXEC;
    r.errnum = ENOENT;
    CHECK_INT(alloc_exit_status(ALLOC_STOP_NONE, W_EXITCODE(127, 0), &r, &cs,
                                msg, sizeof(msg)),
              127);
    CHECK_STR(cs, "failed");
    CHECK_STR(msg, "could not execute the job: No such file or directory");
    r.errnum = EACCES;
    CHECK_INT(alloc_exit_status(ALLOC_STOP_NONE, W_EXITCODE(127, 0), &r, &cs,
                                msg, sizeof(msg)),
              126);
    r.stage = SPAWN_STAGE_STDOUT;
    CHECK_INT(alloc_exit_status(ALLOC_STOP_NONE, W_EXITCODE(127, 0), &r, &cs,
                                msg, sizeof(msg)),
              -1);
    CHECK_STR(msg, "could not open the output file: Permission denied");
}

int
main(void)
{
    RUN(test_env_build);
    RUN(test_nodefile);
    RUN(test_ompthreads);
    RUN(test_dsh_sanitize);
    RUN(test_output_path);
    RUN(test_env_subjob);
    RUN(test_exec_candidates);
    RUN(test_user_lookup);
    RUN(test_exit_status);
    return unit_done();
}
