/*
 * Jobs as the API returns them (docs/api.md "The job object"), decoded
 * into struct cli_job at the CLI's edge so that formatting never touches
 * JSON, and fetched: one job, or every page of GET /v1/jobs.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

static char *
get_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (json_is_string(v)) {
        return dv_xstrdup(json_string_value(v));
    }
    if (json_is_integer(v)) {
        return dv_xasprintf("%lld", (long long)json_integer_value(v));
    }
    if (json_is_real(v)) {
        return dv_xasprintf("%g", json_real_value(v));
    }
    if (json_is_boolean(v)) {
        return dv_xstrdup(json_is_true(v) ? "True" : "False");
    }
    return NULL;
}

static int
get_i64(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);

    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
        return 1;
    }
    return 0;
}

static double
get_time(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (json_is_number(v)) {
        return json_number_value(v);
    }
    return -1;
}

static void
get_strv(const json_t *o, const char *key, char ***out, int *n)
{
    const json_t *a = json_object_get(o, key);
    size_t i;
    json_t *e;

    *out = NULL;
    *n = 0;
    if (!json_is_array(a)) {
        return;
    }
    *out = dv_xcalloc(json_array_size(a) + 1, sizeof(char *));
    json_array_foreach (a, i, e) {
        if (json_is_string(e)) {
            (*out)[(*n)++] = dv_xstrdup(json_string_value(e));
        }
    }
}

static void
get_kv(const json_t *o, const char *key, struct dv_kv **out, int *n)
{
    const json_t *obj = json_object_get(o, key);
    const char *k;
    json_t *v;

    *out = NULL;
    *n = 0;
    if (!json_is_object(obj)) {
        return;
    }
    *out = dv_xcalloc(json_object_size(obj) + 1, sizeof(struct dv_kv));
    json_object_foreach ((json_t *)obj, k, v) {
        char *text = get_str(obj, k);

        if (text != NULL) {
            (*out)[*n].key = dv_xstrdup(k);
            (*out)[*n].value = text;
            (*n)++;
        }
    }
}

void
cli_job_cleanup(struct cli_job *j)
{
    free(j->job_id);
    free(j->name);
    free(j->owner);
    free(j->queue);
    free(j->state);
    free(j->hold_types);
    free(j->exec_host);
    free(j->exec_vnode);
    free(j->comment);
    for (int i = 0; i < j->nrlist; i++) {
        free(j->rlist[i].key);
        free(j->rlist[i].value);
    }
    free(j->rlist);
    free(j->submit_host);
    free(j->workdir);
    free(j->stdout_path);
    free(j->stderr_path);
    free(j->join);
    free(j->shell);
    free(j->depend);
    free(j->submit_args);
    free(j->account);
    free(j->project);
    free(j->mail_points);
    free(j->mail_users);
    free(j->keep_files);
    free(j->shell_path_list);
    cli_strv_free(j->env, j->nenv);
    cli_strv_free(j->argv, j->argc);
    free(j->array_id);
    free(j->array_submitted);
    free(j->array_remaining);
    free(j->array_state_count);
    for (int i = 0; i < j->nsubjobs; i++) {
        cli_job_cleanup(&j->subjobs[i]);
    }
    free(j->subjobs);
    memset(j, 0, sizeof(*j));
}

/* An array's output path names each subjob's file with its index in the
 * place of "^array_index^" (PBS). */
static void
subjob_path(char **path, int index)
{
    char *hit, *out;

    if (*path == NULL) {
        return;
    }
    hit = strstr(*path, DV_ARRAY_INDEX_TOKEN);
    if (hit == NULL) {
        return;
    }
    out = dv_xasprintf("%.*s%d%s", (int)(hit - *path), *path, index,
                       hit + strlen(DV_ARRAY_INDEX_TOKEN));
    free(*path);
    *path = out;
}

/* Subjob sub of the array job o: the array's object with the subjob's
 * keys laid over it. */
static void
subjob_from_json(const json_t *o, const json_t *sub, const char *array_id,
                 struct cli_job *j)
{
    static const char *const keys[] = {
        "job_id",     "state",          "exit_status", "exec_host",
        "exec_vnode", "comment",        "run_count",   "stime",
        "end_time",   "resources_used", NULL};
    json_t *copy = json_copy((json_t *)o);
    int64_t v = 0;

    json_object_del(copy, "array");
    for (int i = 0; keys[i] != NULL; i++) {
        json_t *x = json_object_get(sub, keys[i]);
        json_object_set(copy, keys[i], x != NULL ? x : json_null());
    }
    cli_job_from_json(copy, j);
    json_decref(copy);
    j->array = CLI_SUBJOB;
    if (get_i64(sub, "index", &v)) {
        j->array_index = (int)v;
    }
    j->array_id = dv_xstrdup(array_id);
    subjob_path(&j->stdout_path, j->array_index);
    subjob_path(&j->stderr_path, j->array_index);
}

static void
array_from_json(const json_t *o, const json_t *arr, struct cli_job *j)
{
    const json_t *counts = json_object_get(arr, "state_count");
    const json_t *subs = json_object_get(arr, "subjobs");
    int64_t q = 0, r = 0, e = 0, x = 0;
    size_t i;
    json_t *s;

    j->array = CLI_ARRAY_JOB;
    j->array_submitted = get_str(arr, "indices_submitted");
    j->array_remaining = get_str(arr, "indices_remaining");
    get_i64(counts, "queued", &q);
    get_i64(counts, "running", &r);
    get_i64(counts, "exiting", &e);
    get_i64(counts, "expired", &x);
    j->array_state_count =
        dv_xasprintf("Queued:%lld Running:%lld Exiting:%lld Expired:%lld ",
                     (long long)q, (long long)r, (long long)e, (long long)x);
    if (!json_is_array(subs)) {
        return;
    }
    j->subjobs = dv_xcalloc(json_array_size(subs) + 1, sizeof(*j->subjobs));
    json_array_foreach (subs, i, s) {
        subjob_from_json(o, s, j->job_id, &j->subjobs[j->nsubjobs++]);
    }
}

int
cli_job_from_json(const json_t *o, struct cli_job *j)
{
    const json_t *used;
    const json_t *spec;
    int64_t v;

    memset(j, 0, sizeof(*j));
    if (!json_is_object(o)) {
        return -1;
    }
    if (get_i64(o, "id", &v)) {
        j->id = v;
    }
    j->job_id = get_str(o, "job_id");
    if (j->job_id == NULL) {
        j->job_id = dv_xasprintf("%lld", j->id);
    }
    j->name = get_str(o, "name");
    j->owner = get_str(o, "owner");
    j->queue = get_str(o, "queue");
    j->state = get_str(o, "state");
    j->hold_types = get_str(o, "hold_types");
    j->exec_host = get_str(o, "exec_host");
    j->exec_vnode = get_str(o, "exec_vnode");
    j->comment = get_str(o, "comment");
    if (get_i64(o, "priority", &v)) {
        j->priority = (int)v;
    }
    j->rerunnable = json_is_false(json_object_get(o, "rerunnable")) ? 0 : 1;
    if (get_i64(o, "exit_status", &v)) {
        j->has_exit_status = 1;
        j->exit_status = (int)v;
    }
    if (get_i64(o, "run_count", &v)) {
        j->run_count = (int)v;
    }
    if (get_i64(o, "modify_index", &v)) {
        j->modify_index = (long long)v;
    }
    j->ctime = get_time(o, "ctime");
    j->qtime = get_time(o, "qtime");
    j->stime = get_time(o, "stime");
    j->mtime = get_time(o, "mtime");
    j->end_time = get_time(o, "end_time");
    j->est_start = get_time(o, "estimated_start_time");
    used = json_object_get(o, "resources_used");
    if (json_is_object(used)) {
        j->has_used = 1;
        get_i64(used, "cput", &j->used_cput);
        get_i64(used, "walltime", &j->used_walltime);
        get_i64(used, "mem", &j->used_mem);
    }
    get_kv(o, "resource_list", &j->rlist, &j->nrlist);
    j->execution_time = -1;
    spec = json_object_get(o, "spec");
    if (json_is_object(spec)) {
        j->has_spec = 1;
        j->submit_host = get_str(spec, "submit_host");
        j->workdir = get_str(spec, "workdir");
        j->stdout_path = get_str(spec, "stdout");
        j->stderr_path = get_str(spec, "stderr");
        j->join = get_str(spec, "join");
        j->shell = get_str(spec, "shell");
        j->depend = get_str(spec, "depend");
        j->submit_args = get_str(spec, "submit_args");
        j->native = json_object_get(spec, "groups") != NULL;
        j->account = get_str(spec, "account");
        j->project = get_str(spec, "project");
        j->mail_points = get_str(spec, "mail_points");
        j->mail_users = get_str(spec, "mail_users");
        j->keep_files = get_str(spec, "keep_files");
        j->shell_path_list = get_str(spec, "shell_path_list");
        j->execution_time = get_time(spec, "execution_time");
        get_strv(spec, "env", &j->env, &j->nenv);
        get_strv(spec, "argv", &j->argv, &j->argc);
        if (j->nrlist == 0) {
            get_kv(spec, "resource_list", &j->rlist, &j->nrlist);
        }
    }
    if (json_is_object(json_object_get(o, "array"))) {
        array_from_json(o, json_object_get(o, "array"), j);
    }
    return 0;
}

char
cli_job_state_letter(const struct cli_job *j)
{
    int st = j->state != NULL ? dv_job_state_parse(j->state) : -1;

    if (st < 0) {
        return j->state != NULL && j->state[0] != '\0'
                   ? (char)(j->state[0] - 'a' + 'A')
                   : '?';
    }
    /* PBS: an array that has begun is B; a finished subjob is X */
    if (j->array == CLI_ARRAY_JOB && st == DV_JOB_RUNNING) {
        return 'B';
    }
    if (j->array == CLI_SUBJOB && st == DV_JOB_FINISHED) {
        return 'X';
    }
    return dv_job_state_letter((enum dv_job_state)st);
}

void
cli_joblist_cleanup(struct cli_joblist *l)
{
    for (int i = 0; i < l->n; i++) {
        cli_job_cleanup(&l->jobs[i]);
    }
    free(l->jobs);
    free(l->server);
    memset(l, 0, sizeof(*l));
}

static void
joblist_add(struct cli_joblist *l, const json_t *o)
{
    if ((size_t)l->n == l->cap) {
        l->cap = l->cap == 0 ? 64 : l->cap * 2;
        l->jobs = dv_xrealloc(l->jobs, l->cap * sizeof(*l->jobs));
    }
    if (cli_job_from_json(o, &l->jobs[l->n]) == 0) {
        l->n++;
    }
}

int
cli_jobs_list(struct cli_client *c, const char *query, struct cli_joblist *out,
              struct cli_reply *r, struct dv_err *err)
{
    long long after = -1;

    memset(out, 0, sizeof(*out));
    for (;;) {
        struct dv_buf path;
        const json_t *jobs;
        const json_t *next;
        const json_t *o;
        size_t i;
        int rc;

        dv_buf_init(&path);
        dv_buf_puts(&path, "/v1/jobs?limit=1000");
        if (!dv_str_empty(query)) {
            dv_buf_printf(&path, "&%s", query);
        }
        if (after >= 0) {
            dv_buf_printf(&path, "&after=%lld", after);
        }
        rc =
            cli_client_call(c, "GET", dv_buf_str(&path), NULL, NULL, 0, r, err);
        dv_buf_cleanup(&path);
        if (rc < 0) {
            return -1;
        }
        if (r->status < 200 || r->status >= 300 || r->body == NULL) {
            if (r->code[0] == '\0' && r->message[0] == '\0') {
                snprintf(r->message, sizeof(r->message),
                         "invalid answer from server: no job list");
            }
            return 1;
        }
        if (out->server == NULL) {
            const char *s =
                json_string_value(json_object_get(r->body, "server"));
            if (s != NULL) {
                out->server = dv_xstrdup(s);
            }
        }
        jobs = json_object_get(r->body, "jobs");
        json_array_foreach (jobs, i, o) {
            joblist_add(out, o);
        }
        next = json_object_get(r->body, "next_after");
        if (!json_is_integer(next) || json_array_size(jobs) == 0 ||
            json_integer_value(next) <= after) {
            cli_reply_cleanup(r);
            break;
        }
        after = (long long)json_integer_value(next);
        cli_reply_cleanup(r);
    }
    if (out->server != NULL) {
        cli_client_set_server_name(c, out->server);
    }
    return 0;
}

int
cli_jobs_get(struct cli_client *c, long long id, struct cli_job *out,
             struct cli_reply *r, struct dv_err *err)
{
    return cli_jobs_get_query(c, id, NULL, out, r, err);
}

int
cli_jobs_get_query(struct cli_client *c, long long id, const char *query,
                   struct cli_job *out, struct cli_reply *r, struct dv_err *err)
{
    char path[128];

    snprintf(path, sizeof(path), "/v1/jobs/%lld%s%s", id,
             dv_str_empty(query) ? "" : "?", dv_str_empty(query) ? "" : query);
    return cli_jobs_get_path(c, path, out, r, err);
}

int
cli_jobs_get_path(struct cli_client *c, const char *path, struct cli_job *out,
                  struct cli_reply *r, struct dv_err *err)
{
    memset(out, 0, sizeof(*out));
    if (cli_client_call(c, "GET", path, NULL, NULL, 0, r, err) < 0) {
        return -1;
    }
    if (r->status < 200 || r->status >= 300) {
        return 1;
    }
    if (r->body == NULL || cli_job_from_json(r->body, out) < 0) {
        snprintf(r->message, sizeof(r->message),
                 "invalid answer from server: not a job");
        return 1;
    }
    cli_reply_cleanup(r);
    return 0;
}

char *
cli_job_server(const struct cli_job *j, const char *list_server)
{
    const char *dot;

    if (!dv_str_empty(list_server)) {
        return dv_xstrdup(list_server);
    }
    dot = j->job_id != NULL ? strchr(j->job_id, '.') : NULL;
    return dv_xstrdup(dot != NULL ? dot + 1 : "");
}
