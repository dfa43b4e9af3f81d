/*
 * What a job sees: the owner's identity from the password database, the
 * explicit environment (PBS's and Drover's variables over the submitted
 * Variable_List), PBS_NODEFILE's content, the output file paths and the
 * PATH search for argv jobs. Pure functions, tested on their own.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/array.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define ENV_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static char *index_list(const char *set);

int
env_user_lookup(const char *name, struct env_user *u, struct dv_err *err)
{
    struct passwd pw, *res = NULL;
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 4096;
    char *buf = NULL;
    int rc, ng;

    memset(u, 0, sizeof(*u));
    if (dv_str_empty(name)) {
        dv_err_set(err, DV_EINVAL, "unknown_user", "the job has no owner");
        return -1;
    }
    for (;;) {
        buf = dv_xrealloc(buf, size);
        rc = getpwnam_r(name, &pw, buf, size, &res);
        if (rc != ERANGE || size > (1u << 20)) {
            break;
        }
        size *= 2;
    }
    if (res == NULL) {
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF ||
            rc == EPERM) {
            dv_err_set(err, DV_ENOTFOUND, "unknown_user",
                       "No Password Entry for User %s", name);
        } else {
            dv_err_set(err, DV_EIO, "user_lookup",
                       "could not look up user %s: %s", name, strerror(rc));
        }
        free(buf);
        return -1;
    }
    u->name = dv_xstrdup(pw.pw_name);
    u->uid = pw.pw_uid;
    u->gid = pw.pw_gid;
    u->home = dv_xstrdup(dv_str_empty(pw.pw_dir) ? "/" : pw.pw_dir);
    u->shell = dv_xstrdup(dv_str_empty(pw.pw_shell) ? "/bin/sh" : pw.pw_shell);
    free(buf);

    ng = 32;
    for (;;) {
        int n = ng;

        u->groups = dv_xrealloc(u->groups, (size_t)n * sizeof(gid_t));
        if (getgrouplist(u->name, u->gid, u->groups, &n) >= 0) {
            u->ngroups = n;
            break;
        }
        if (n <= ng || n > 65536) {
            /* Cannot grow: run with the primary group only. */
            u->groups[0] = u->gid;
            u->ngroups = 1;
            break;
        }
        ng = n;
    }
    return 0;
}

void
env_user_cleanup(struct env_user *u)
{
    free(u->name);
    free(u->home);
    free(u->shell);
    free(u->groups);
    memset(u, 0, sizeof(*u));
}

void
env_free(char **env)
{
    if (env == NULL) {
        return;
    }
    for (char **p = env; *p != NULL; p++) {
        free(*p);
    }
    free(env);
}

static size_t
env_len(char *const *env)
{
    size_t n = 0;

    while (env != NULL && env[n] != NULL) {
        n++;
    }
    return n;
}

/* Index of the entry for name (name without '='), or -1. */
static long
env_find(char *const *env, const char *name, size_t namelen)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (strncmp(env[i], name, namelen) == 0 && env[i][namelen] == '=') {
            return (long)i;
        }
    }
    return -1;
}

const char *
env_get(char *const *env, const char *name)
{
    size_t len = strlen(name);
    long i = env_find(env, name, len);

    return i < 0 ? NULL : env[i] + len + 1;
}

/* Puts entry ("NAME=value", taken) into *env, replacing one of that
 * name. */
static void
env_put(char ***env, char *entry)
{
    const char *eq = strchr(entry, '=');
    long i;
    size_t n;

    if (eq == NULL || eq == entry) {
        free(entry);
        return;
    }
    i = env_find(*env, entry, (size_t)(eq - entry));
    if (i >= 0) {
        free((*env)[i]);
        (*env)[i] = entry;
        return;
    }
    n = env_len(*env);
    *env = dv_xrealloc(*env, (n + 2) * sizeof(char *));
    (*env)[n] = entry;
    (*env)[n + 1] = NULL;
}

void
env_set(char ***env, const char *name, const char *value)
{
    env_put(env, dv_xasprintf("%s=%s", name, value != NULL ? value : ""));
}

static void
env_setll(char ***env, const char *name, long long v)
{
    env_put(env, dv_xasprintf("%s=%lld", name, v));
}

char **
env_build(const struct env_info *in)
{
    const struct dv_job_spec *s = in->spec;
    const struct env_user *u = in->user;
    char **env = dv_xcalloc(1, sizeof(char *));
    const char *v;
    char *tmp;

    for (int i = 0; i < s->nenv; i++) {
        if (s->env[i] != NULL) {
            env_put(&env, dv_xstrdup(s->env[i]));
        }
    }
    env_set(&env, "HOME", u->home);
    env_set(&env, "LOGNAME", u->name);
    env_set(&env, "USER", u->name);
    env_set(&env, "SHELL", u->shell);
    v = env_get(env, "PBS_O_PATH");
    env_set(&env, "PATH", !dv_str_empty(v) ? v : ENV_DEFAULT_PATH);
    env_set(&env, "PBS_JOBID", in->job_id_str);
    env_set(&env, "PBS_JOBNAME", !dv_str_empty(s->name) ? s->name : "STDIN");
    v = in->queue;
    if (dv_str_empty(v)) {
        v = s->queue;
    }
    if (dv_str_empty(v)) {
        v = env_get(env, "PBS_O_QUEUE");
    }
    env_set(&env, "PBS_QUEUE", v != NULL ? v : "");
    if (!dv_str_empty(s->account)) {
        env_set(&env, "PBS_ACCOUNT", s->account); /* qsub -A */
    }
    if (dv_str_empty(env_get(env, "PBS_O_WORKDIR"))) {
        env_set(&env, "PBS_O_WORKDIR",
                !dv_str_empty(s->workdir) ? s->workdir : u->home);
    }
    env_set(&env, "PBS_NODEFILE", in->nodefile);
    env_set(&env, "PBS_NODENUM", "0");
    env_set(&env, "PBS_TASKNUM", "1");
    env_set(&env, "PBS_ENVIRONMENT", "PBS_BATCH");
    env_set(&env, "ENVIRONMENT", "BATCH");
    env_setll(&env, "NCPUS", in->ncpus);
    env_setll(&env, "OMP_NUM_THREADS",
              in->ompthreads > 0 ? in->ompthreads : in->ncpus);
    tmp = dv_xasprintf("%s/tmp", in->alloc_dir);
    env_set(&env, "TMPDIR", tmp);
    free(tmp);
    env_set(&env, "PBS_JOBDIR", u->home);
    env_setll(&env, "DROVER_ALLOC_ID", in->alloc_id);
    env_set(&env, "DROVER_ALLOC_DIR", in->alloc_dir);
    env_setll(&env, "DROVER_JOB_ID", in->job_id);
    if (in->array_id != NULL && in->array_index >= 0) {
        /* A subjob: PBS_JOBID is "124[7].srv" (job_id_str). */
        env_setll(&env, "PBS_ARRAY_INDEX", in->array_index);
        env_set(&env, "PBS_ARRAY_ID", in->array_id);
        env_setll(&env, "DROVER_ARRAY_INDEX", in->array_index);
        env_set(&env, "DROVER_ARRAY_ID", in->array_id);
    }
    env_set(&env, "DROVER_NODE_NAME", in->node_name);
    env_set(&env, "DROVER_CPUSET", in->cpuset != NULL ? in->cpuset : "");
    if (!dv_str_empty(in->gpus)) {
        tmp = index_list(in->gpus);
        env_set(&env, "DROVER_GPUS", tmp);
        env_set(&env, "CUDA_VISIBLE_DEVICES", tmp);
        free(tmp);
    }
    /* Where pbsdsh (and the other commands) find the servers. */
    if (!dv_str_empty(in->server) && env_get(env, "DROVER_ADDR") == NULL) {
        env_set(&env, "DROVER_ADDR", in->server);
    }
    return env;
}

/* "0-2,5" -> "0,1,2,5": CUDA_VISIBLE_DEVICES takes a plain list. */
static char *
index_list(const char *set)
{
    struct dv_buf b;
    const char *p = set;

    dv_buf_init(&b);
    dv_buf_puts(&b, "");
    while (p != NULL && *p != '\0') {
        int64_t lo, hi;
        char num[32];
        size_t len = strcspn(p, ",-");

        if (len == 0 || len >= sizeof(num)) {
            break;
        }
        memcpy(num, p, len);
        num[len] = '\0';
        if (dv_parse_i64(num, 0, 1 << 20, &lo) < 0) {
            break;
        }
        hi = lo;
        p += len;
        if (*p == '-') {
            p++;
            len = strcspn(p, ",");
            if (len == 0 || len >= sizeof(num)) {
                break;
            }
            memcpy(num, p, len);
            num[len] = '\0';
            if (dv_parse_i64(num, lo, 1 << 20, &hi) < 0) {
                break;
            }
            p += len;
        }
        for (int64_t i = lo; i <= hi; i++) {
            dv_buf_printf(&b, "%s%lld", b.len > 0 ? "," : "", (long long)i);
        }
        if (*p == ',') {
            p++;
        }
    }
    return dv_buf_steal(&b);
}

char **
env_build_task(const struct env_task_info *in)
{
    const struct dv_task *t = in->task;
    const struct env_user *u = in->user;
    char **env = dv_xcalloc(1, sizeof(char *));
    const char *v;
    char *tmp;

    for (int i = 0; i < t->nenv; i++) {
        if (t->env[i].key != NULL) {
            env_set(&env, t->env[i].key, t->env[i].value);
        }
    }
    env_set(&env, "HOME", u->home);
    env_set(&env, "LOGNAME", u->name);
    env_set(&env, "USER", u->name);
    env_set(&env, "SHELL", u->shell);
    v = env_get(env, "PATH");
    env_set(&env, "PATH", !dv_str_empty(v) ? v : ENV_DEFAULT_PATH);
    tmp = dv_xasprintf("%s/tmp", in->alloc_dir);
    env_set(&env, "TMPDIR", tmp);
    free(tmp);
    env_setll(&env, "NCPUS", in->ncpus);
    env_setll(&env, "OMP_NUM_THREADS", in->ncpus);
    env_setll(&env, "DROVER_JOB_ID", in->job_id);
    env_set(&env, "DROVER_JOB_NAME", in->job_name != NULL ? in->job_name : "");
    env_setll(&env, "DROVER_ALLOC_ID", in->alloc_id);
    env_setll(&env, "DROVER_ALLOC_INDEX", in->instance);
    env_set(&env, "DROVER_ALLOC_DIR", in->alloc_dir);
    env_set(&env, "DROVER_GROUP", in->group != NULL ? in->group : "");
    env_set(&env, "DROVER_TASK", t->name != NULL ? t->name : "");
    env_set(&env, "DROVER_NODE_NAME", in->node_name);
    env_set(&env, "DROVER_CPUSET", in->cpuset != NULL ? in->cpuset : "");
    /* What Nomad's tasks see, for programs written for it. */
    tmp = dv_xasprintf("%lld", in->alloc_id);
    env_set(&env, "NOMAD_ALLOC_ID", tmp);
    free(tmp);
    env_setll(&env, "NOMAD_ALLOC_INDEX", in->instance);
    tmp = dv_xasprintf("%s/alloc", in->alloc_dir);
    env_set(&env, "NOMAD_ALLOC_DIR", tmp);
    free(tmp);
    tmp = dv_xasprintf("%s/local", in->alloc_dir);
    env_set(&env, "NOMAD_TASK_DIR", tmp);
    free(tmp);
    tmp = dv_xasprintf("%s/secrets", in->alloc_dir);
    env_set(&env, "NOMAD_SECRETS_DIR", tmp);
    free(tmp);
    env_set(&env, "NOMAD_TASK_NAME", t->name != NULL ? t->name : "");
    env_set(&env, "NOMAD_GROUP_NAME", in->group != NULL ? in->group : "");
    env_set(&env, "NOMAD_JOB_NAME", in->job_name != NULL ? in->job_name : "");
    env_set(&env, "NOMAD_JOB_ID", in->job_id_str != NULL ? in->job_id_str : "");
    env_setll(&env, "NOMAD_CPU_CORES", in->ncpus);
    env_setll(&env, "NOMAD_MEMORY_LIMIT", in->mem / (1024 * 1024));
    if (!dv_str_empty(in->gpus)) {
        tmp = index_list(in->gpus);
        env_set(&env, "DROVER_GPUS", tmp);
        env_set(&env, "CUDA_VISIBLE_DEVICES", tmp);
        free(tmp);
    }
    return env;
}

char *
env_nodefile(const struct alloc_host *hosts, int nhosts, const char *self,
             int ncpus)
{
    struct dv_buf b;

    dv_buf_init(&b);
    for (int i = 0; i < nhosts; i++) {
        int lines = hosts[i].mpiprocs > 0 ? hosts[i].mpiprocs : hosts[i].ncpus;
        for (int c = 0; c < lines; c++) {
            dv_buf_printf(&b, "%s\n", hosts[i].host);
        }
    }
    if (nhosts == 0) {
        for (int c = 0; c < ncpus; c++) {
            dv_buf_printf(&b, "%s\n", self);
        }
    }
    return dv_buf_steal(&b);
}

char *
env_output_path(const char *spec_path, const char *dir, const char *home,
                const char *name, long long seq, char kind)
{
    const char *p = spec_path, *colon, *slash;

    if (dv_str_empty(p)) {
        return dv_xasprintf("%s/%s.%c%lld", home,
                            !dv_str_empty(name) ? name : "STDIN", kind, seq);
    }
    /* PBS's "host:path": the path is on this host. */
    colon = strchr(p, ':');
    slash = strchr(p, '/');
    if (colon != NULL && (slash == NULL || colon < slash)) {
        p = colon + 1;
    }
    if (p[0] == '/') {
        return dv_xstrdup(p);
    }
    if (dv_str_empty(dir)) {
        dir = home;
    }
    return dv_xasprintf("%s/%s", dir, p);
}

void
env_array_path(char **path, int index)
{
    static const char token[] = DV_ARRAY_INDEX_TOKEN;
    struct dv_buf b;
    const char *p = *path, *hit;

    if (strstr(p, token) == NULL) {
        return;
    }
    dv_buf_init(&b);
    while ((hit = strstr(p, token)) != NULL) {
        dv_buf_printf(&b, "%.*s%d", (int)(hit - p), p, index);
        p = hit + sizeof(token) - 1;
    }
    dv_buf_puts(&b, p);
    free(*path);
    *path = dv_buf_steal(&b);
}

char **
env_exec_candidates(const char *cmd, const char *path)
{
    char **out = dv_xcalloc(1, sizeof(char *));
    size_t n = 0;
    const char *p, *end;

    if (strchr(cmd, '/') != NULL) {
        out = dv_xrealloc(out, 2 * sizeof(char *));
        out[0] = dv_xstrdup(cmd);
        out[1] = NULL;
        return out;
    }
    if (path == NULL) {
        path = ENV_DEFAULT_PATH;
    }
    for (p = path;; p = end + 1) {
        size_t len;

        end = strchr(p, ':');
        len = end != NULL ? (size_t)(end - p) : strlen(p);
        out = dv_xrealloc(out, (n + 2) * sizeof(char *));
        /* An empty element means the current directory, as in execvp. */
        out[n++] = len == 0 ? dv_xasprintf("./%s", cmd)
                            : dv_xasprintf("%.*s/%s", (int)len, p, cmd);
        out[n] = NULL;
        if (end == NULL) {
            break;
        }
    }
    return out;
}
