/* Job specifications: strict JSON decoding, validation, defaults, encoding. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/array.h"
#include "lib/depend.h"
#include "lib/job.h"
#include "lib/mem.h"
#include "lib/strutil.h"

static const char *const state_names[] = {"queued",  "held",     "running",
                                          "exiting", "finished", "waiting"};
static const char state_letters[] = "QHREFW";

int
dv_job_state_parse(const char *s)
{
    for (int i = 0; i < DV_JOB_NSTATES; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *
dv_job_state_name(enum dv_job_state st)
{
    if ((int)st < 0 || (int)st >= DV_JOB_NSTATES) {
        return "unknown";
    }
    return state_names[st];
}

char
dv_job_state_letter(enum dv_job_state st)
{
    if ((int)st < 0 || (int)st >= DV_JOB_NSTATES) {
        return '?';
    }
    return state_letters[st];
}

void
dv_job_spec_init(struct dv_job_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->rerunnable = 1;
}

static void
free_strv(char **v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void
dv_job_spec_cleanup(struct dv_job_spec *s)
{
    free(s->name);
    free(s->queue);
    free(s->type);
    free(s->owner);
    free(s->group);
    free(s->submit_host);
    free(s->script);
    free_strv(s->argv, s->argc);
    free(s->shell);
    free(s->workdir);
    free_strv(s->env, s->nenv);
    free(s->stdout_path);
    free(s->stderr_path);
    free(s->join);
    for (int i = 0; i < s->nresources; i++) {
        free(s->resources[i].key);
        free(s->resources[i].value);
    }
    free(s->resources);
    free(s->depend);
    free(s->array);
    free(s->submit_args);
    free(s->account);
    free(s->project);
    free(s->mail_points);
    free(s->mail_users);
    free(s->keep_files);
    free(s->shell_path_list);
    free(s->custom);
    dv_jobspec_free(s->native);
    dv_job_spec_init(s);
}

void
dv_job_spec_set_resource(struct dv_job_spec *s, const char *name,
                         const char *value)
{
    for (int i = 0; i < s->nresources; i++) {
        if (strcmp(s->resources[i].key, name) == 0) {
            free(s->resources[i].value);
            s->resources[i].value = dv_xstrdup(value);
            return;
        }
    }
    s->resources = dv_xrealloc(s->resources, sizeof(struct dv_kv) *
                                                 (size_t)(s->nresources + 1));
    s->resources[s->nresources].key = dv_xstrdup(name);
    s->resources[s->nresources].value = dv_xstrdup(value);
    s->nresources++;
}

void
dv_job_spec_setenv(struct dv_job_spec *s, const char *name, const char *value)
{
    size_t nlen = strlen(name);
    char *entry = dv_xasprintf("%s=%s", name, value);

    for (int i = 0; i < s->nenv; i++) {
        if (strncmp(s->env[i], name, nlen) == 0 && s->env[i][nlen] == '=') {
            free(s->env[i]);
            s->env[i] = entry;
            return;
        }
    }
    s->env = dv_xrealloc(s->env, sizeof(char *) * (size_t)(s->nenv + 1));
    s->env[s->nenv++] = entry;
}

/* --- decoding --- */

static int
get_string(const json_t *v, const char *key, size_t max, char **out,
           struct dv_err *err)
{
    if (json_is_null(v)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v)) {
        dv_err_set(err, DV_EINVAL, "invalid_job", "field \"%s\" must be a string",
                   key);
        return -1;
    }
    if (json_string_length(v) > max) {
        dv_err_set(err, DV_ETOOLARGE, "too_large",
                   "field \"%s\" is longer than %zu bytes", key, max);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "field \"%s\" must not contain NUL bytes", key);
        return -1;
    }
    free(*out);
    *out = dv_xstrdup(json_string_value(v));
    return 0;
}

static int
get_int(const json_t *v, const char *key, int min, int max, int *out,
        struct dv_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "field \"%s\" must be an integer from %d to %d", key, min,
                   max);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static int
get_bool(const json_t *v, const char *key, int *out, struct dv_err *err)
{
    if (!json_is_boolean(v)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "field \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int
get_strv(const json_t *v, const char *key, size_t maxn, char ***out, int *n,
         struct dv_err *err)
{
    size_t i;
    json_t *e;

    if (!json_is_array(v)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "field \"%s\" must be an array of strings", key);
        return -1;
    }
    if (json_array_size(v) > maxn) {
        dv_err_set(err, DV_ETOOLARGE, "too_large",
                   "field \"%s\" has more than %zu entries", key, maxn);
        return -1;
    }
    free_strv(*out, *n);
    *out = dv_xcalloc(json_array_size(v) + 1, sizeof(char *));
    *n = 0;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) ||
            strlen(json_string_value(e)) != json_string_length(e)) {
            dv_err_set(err, DV_EINVAL, "invalid_job",
                       "field \"%s\" must be an array of strings", key);
            return -1;
        }
        if (json_string_length(e) > DV_JOB_MAX_STRING) {
            dv_err_set(err, DV_ETOOLARGE, "too_large",
                       "an entry of \"%s\" is longer than %d bytes", key,
                       DV_JOB_MAX_STRING);
            return -1;
        }
        (*out)[(*n)++] = dv_xstrdup(json_string_value(e));
    }
    return 0;
}

static int
get_resources(const json_t *v, struct dv_job_spec *s, struct dv_err *err)
{
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "field \"resources\" must be an object");
        return -1;
    }
    if (json_object_size(v) > DV_JOB_MAX_RESOURCES) {
        dv_err_set(err, DV_ETOOLARGE, "too_large",
                   "field \"resources\" has more than %d entries",
                   DV_JOB_MAX_RESOURCES);
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        char num[32];

        if (strlen(key) == 0 || strlen(key) > 64) {
            dv_err_set(err, DV_EINVAL, "invalid_job",
                       "resource names must have 1 to 64 characters");
            return -1;
        }
        if (json_is_string(val)) {
            if (json_string_length(val) > 4096) {
                dv_err_set(err, DV_ETOOLARGE, "too_large",
                           "resource \"%s\" is longer than 4096 bytes", key);
                return -1;
            }
            dv_job_spec_set_resource(s, key, json_string_value(val));
        } else if (json_is_integer(val)) {
            snprintf(num, sizeof(num), "%lld",
                     (long long)json_integer_value(val));
            dv_job_spec_set_resource(s, key, num);
        } else {
            dv_err_set(err, DV_EINVAL, "invalid_job",
                       "resource \"%s\" must be a string or an integer", key);
            return -1;
        }
    }
    return 0;
}

/* Keys of PBS-style specs only (a native spec may not have them). */
static const char *const pbs_keys[] = {
    "rerunnable", "script",      "argv",   "shell", "workdir",
    "env",        "stdout",      "stderr", "join",  "resources",
    "depend",     "submit_args", "account", "project", "mail_points",
    "mail_users", "execution_time", "keep_files", "shell_path_list", "array",
    NULL,
};

static const char *
pbs_only_key(const char *key)
{
    for (int i = 0; pbs_keys[i] != NULL; i++) {
        if (strcmp(key, pbs_keys[i]) == 0) {
            return pbs_keys[i];
        }
    }
    return NULL;
}

int
dv_job_spec_from_json(const json_t *j, struct dv_job_spec *s,
                      struct dv_err *err)
{
    const char *key;
    json_t *v;

    dv_job_spec_cleanup(s);
    if (!json_is_object(j)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "a job must be a JSON object");
        return -1;
    }
    json_object_foreach((json_t *)j, key, v)
    {
        int rc;

        if (s->pbs_key == NULL) {
            s->pbs_key = pbs_only_key(key);
        }
        if (dv_jobspec_is_key(key)) {
            if (s->native == NULL) {
                s->native = dv_jobspec_new();
            }
            rc = dv_jobspec_decode_key(s->native, key, v, err);
        } else if (strcmp(key, "name") == 0) {
            rc = get_string(v, key, DV_JOB_MAX_NAME, &s->name, err);
        } else if (strcmp(key, "queue") == 0) {
            rc = get_string(v, key, 64, &s->queue, err);
        } else if (strcmp(key, "type") == 0) {
            rc = get_string(v, key, 16, &s->type, err);
        } else if (strcmp(key, "owner") == 0) {
            rc = get_string(v, key, 64, &s->owner, err);
        } else if (strcmp(key, "group") == 0) {
            rc = get_string(v, key, 64, &s->group, err);
        } else if (strcmp(key, "submit_host") == 0) {
            rc = get_string(v, key, 255, &s->submit_host, err);
        } else if (strcmp(key, "priority") == 0) {
            rc = get_int(v, key, -1024, 1023, &s->priority, err);
        } else if (strcmp(key, "hold") == 0) {
            rc = get_bool(v, key, &s->hold, err);
        } else if (strcmp(key, "rerunnable") == 0) {
            rc = get_bool(v, key, &s->rerunnable, err);
        } else if (strcmp(key, "script") == 0) {
            rc = get_string(v, key, DV_JOB_MAX_SCRIPT, &s->script, err);
        } else if (strcmp(key, "argv") == 0) {
            rc = get_strv(v, key, DV_JOB_MAX_ARGS, &s->argv, &s->argc, err);
        } else if (strcmp(key, "shell") == 0) {
            rc = get_string(v, key, 4096, &s->shell, err);
        } else if (strcmp(key, "workdir") == 0) {
            rc = get_string(v, key, 4096, &s->workdir, err);
        } else if (strcmp(key, "env") == 0) {
            rc = get_strv(v, key, DV_JOB_MAX_ENV, &s->env, &s->nenv, err);
        } else if (strcmp(key, "stdout") == 0) {
            rc = get_string(v, key, 4096, &s->stdout_path, err);
        } else if (strcmp(key, "stderr") == 0) {
            rc = get_string(v, key, 4096, &s->stderr_path, err);
        } else if (strcmp(key, "join") == 0) {
            rc = get_string(v, key, 2, &s->join, err);
        } else if (strcmp(key, "resources") == 0) {
            rc = get_resources(v, s, err);
        } else if (strcmp(key, "depend") == 0) {
            rc = get_string(v, key, 64 * 1024, &s->depend, err);
        } else if (strcmp(key, "array") == 0) {
            rc = get_string(v, key, 64, &s->array, err);
        } else if (strcmp(key, "submit_args") == 0) {
            rc = get_string(v, key, DV_JOB_MAX_STRING, &s->submit_args, err);
        } else if (strcmp(key, "account") == 0) {
            rc = get_string(v, key, 256, &s->account, err);
        } else if (strcmp(key, "project") == 0) {
            rc = get_string(v, key, 256, &s->project, err);
        } else if (strcmp(key, "mail_points") == 0) {
            rc = get_string(v, key, 8, &s->mail_points, err);
        } else if (strcmp(key, "mail_users") == 0) {
            rc = get_string(v, key, 4096, &s->mail_users, err);
        } else if (strcmp(key, "keep_files") == 0) {
            rc = get_string(v, key, 8, &s->keep_files, err);
        } else if (strcmp(key, "shell_path_list") == 0) {
            rc = get_string(v, key, 4096, &s->shell_path_list, err);
        } else if (strcmp(key, "execution_time") == 0) {
            if (json_is_null(v)) {
                s->execution_time = 0;
                rc = 0;
            } else if (!json_is_integer(v) || json_integer_value(v) < 0) {
                dv_err_set(err, DV_EINVAL, "invalid_job",
                           "field \"execution_time\" must be a time in "
                           "seconds since the epoch");
                rc = -1;
            } else {
                s->execution_time = (int64_t)json_integer_value(v);
                rc = 0;
            }
        } else if (strcmp(key, "resource_list") == 0 ||
                   strcmp(key, "chunks") == 0 ||
                   strcmp(key, "placement") == 0) {
            rc = 0; /* derived; recomputed by normalize */
        } else {
            dv_err_set(err, DV_EINVAL, "invalid_job", "unknown field \"%s\"",
                       key);
            rc = -1;
        }
        if (rc < 0) {
            return -1;
        }
    }
    if (s->native != NULL && s->pbs_key != NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "%s: a job is either PBS-style (\"script\" or \"argv\") "
                   "or native (\"groups\"), not both",
                   s->pbs_key);
        return -1;
    }
    return 0;
}

/* --- validation --- */

static int
valid_user_name(const char *s)
{
    if (dv_str_empty(s) || strlen(s) > 64 || s[0] == '-') {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' &&
            *p != '-' && !(*p == '$' && p[1] == '\0')) {
            return 0;
        }
    }
    return 1;
}

static int
valid_job_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DV_JOB_MAX_NAME) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || c == '/' || c == '@' || c == ':') {
            return 0;
        }
    }
    return 1;
}

static int
valid_env_entry(const char *e)
{
    const char *eq = strchr(e, '=');

    if (eq == NULL || eq == e) {
        return 0;
    }
    for (const char *p = e; p < eq; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            return 0;
        }
    }
    return !isdigit((unsigned char)e[0]);
}

int
dv_job_depend_check(const char *depend, struct dv_err *err)
{
    struct dv_depend d;
    int rc = dv_depend_parse(depend, &d, err);

    dv_depend_cleanup(&d);
    return rc;
}

/* s is empty or made of letters of set, each at most once. */
static int
letters_of(const char *s, const char *set)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (strchr(set, *p) == NULL || strchr(p + 1, *p) != NULL) {
            return 0;
        }
    }
    return 1;
}

int
dv_job_mail_points_valid(const char *s)
{
    if (dv_str_empty(s)) {
        return 0;
    }
    return strcmp(s, "n") == 0 || letters_of(s, "abe");
}

int
dv_job_keep_files_valid(const char *s)
{
    if (dv_str_empty(s)) {
        return 0;
    }
    return strcmp(s, "n") == 0 || letters_of(s, "oed");
}

int
dv_job_mail_users_valid(const char *s)
{
    const char *p = s;

    if (dv_str_empty(s)) {
        return 0;
    }
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' ||
                c == '\'' || c == '\\') {
                return 0;
            }
        }
        if (p[0] == '-') {
            return 0; /* never an option to sendmail */
        }
        p += n;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return 0;
            }
        }
    }
    return 1;
}

/* a and b name the same host: equal, or equal up to the first '.' of the
 * longer one ("n1" and "n1.example.org"). */
static int
same_host(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);

    if (alen == blen) {
        return strncmp(a, b, alen) == 0;
    }
    if (alen < blen) {
        return strncmp(a, b, alen) == 0 && b[alen] == '.';
    }
    return strncmp(a, b, blen) == 0 && a[blen] == '.';
}

char *
dv_job_shell_for_host(const struct dv_job_spec *s, const char *host)
{
    const char *p = s->shell_path_list;

    while (p != NULL && *p != '\0' && !dv_str_empty(host)) {
        size_t n = strcspn(p, ",");
        const char *at = memchr(p, '@', n);

        if (at != NULL && same_host(at + 1, n - (size_t)(at + 1 - p), host)) {
            return dv_xstrndup(p, (size_t)(at - p));
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return s->shell != NULL ? dv_xstrdup(s->shell) : NULL;
}

static int
check_path(const char *path, const char *what, struct dv_err *err)
{
    const char *p = path;
    const char *colon = strchr(path, ':');

    /* PBS accepts [host:]path; the host part names the submit host. */
    if (colon != NULL && colon != path && strchr(path, '/') > colon) {
        p = colon + 1;
    }
    if (p[0] != '/') {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "%s \"%s\" must be an absolute path", what, path);
        return -1;
    }
    return 0;
}

static int
bad_attr(struct dv_err *err, const char *name)
{
    dv_err_set(err, DV_EINVAL, "bad_attribute_value",
               "Illegal attribute or resource value %s", name);
    return -1;
}

/* Account_Name, project, Mail_Points, Mail_Users, Keep_Files. */
static int
check_site_attrs(const struct dv_job_spec *s, struct dv_err *err)
{
    if (s->account != NULL &&
        (s->account[0] == '\0' || strpbrk(s->account, "\n\r") != NULL)) {
        return bad_attr(err, "Account_Name");
    }
    if (s->project != NULL &&
        (s->project[0] == '\0' || strpbrk(s->project, "\n\r") != NULL)) {
        return bad_attr(err, "project");
    }
    if (s->mail_points != NULL && !dv_job_mail_points_valid(s->mail_points)) {
        return bad_attr(err, "Mail_Points");
    }
    if (s->mail_users != NULL && !dv_job_mail_users_valid(s->mail_users)) {
        return bad_attr(err, "Mail_Users");
    }
    if (s->keep_files != NULL && !dv_job_keep_files_valid(s->keep_files)) {
        return bad_attr(err, "Keep_Files");
    }
    return 0;
}

/*
 * Built-in resources go to dv_resreq_from_list; the others are custom
 * resources, which only qmgr can check (against the operator's
 * declarations, db-resources.c). Whether a name is built in is asked of
 * dv_resreq_from_list itself, so that the two never disagree.
 */
static int
normalize_resources(struct dv_job_spec *s, struct dv_err *err)
{
    struct dv_kv *builtin;
    int nbuiltin = 0, rc;

    free(s->custom);
    s->custom = NULL;
    s->ncustom = 0;
    builtin = dv_xcalloc((size_t)s->nresources + 1, sizeof(*builtin));
    for (int i = 0; i < s->nresources; i++) {
        if (dv_resource_is_builtin(s->resources[i].key)) {
            builtin[nbuiltin++] = s->resources[i];
        } else {
            s->custom = dv_xrealloc(s->custom,
                                    sizeof(int) * (size_t)(s->ncustom + 1));
            s->custom[s->ncustom++] = i;
        }
    }
    rc = dv_resreq_from_list(builtin, nbuiltin, &s->req, err);
    free(builtin);
    if (rc < 0) {
        return -1;
    }
    s->normalized = 1;
    return 0;
}

/* A native spec: shared fields checked by the caller (owner, group). */
static int
normalize_native(struct dv_job_spec *s, struct dv_err *err)
{
    if (s->script != NULL || s->argc > 0 || s->nresources > 0 || s->nenv > 0) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "a job is either PBS-style (\"script\" or \"argv\") or "
                   "native (\"groups\"), not both");
        return -1;
    }
    if (s->name == NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_job", "name: is required");
        return -1;
    }
    if (!valid_job_name(s->name)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "name: must be 1 to %d characters without blanks, '/', "
                   "'@' or ':'",
                   DV_JOB_MAX_NAME);
        return -1;
    }
    if (dv_jobspec_normalize(s->native, s->type, s->owner, &s->req, err) < 0) {
        return -1;
    }
    s->normalized = 1;
    return 0;
}

int
dv_job_spec_normalize(struct dv_job_spec *s, struct dv_err *err)
{
    if (!valid_user_name(s->owner)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "owner \"%s\" is not a valid user name",
                   s->owner != NULL ? s->owner : "");
        return -1;
    }
    if (s->group != NULL && !valid_user_name(s->group)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "group \"%s\" is not a valid group name", s->group);
        return -1;
    }
    if (s->type == NULL) {
        s->type = dv_xstrdup("batch");
    }
    if (s->native != NULL) {
        return normalize_native(s, err);
    }
    if (strcmp(s->type, "batch") != 0) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "job type \"%s\" needs the native job format "
                   "(\"groups\", docs/jobspec.md): PBS-style jobs are batch "
                   "jobs",
                   s->type);
        return -1;
    }
    if (s->name == NULL) {
        s->name = dv_xstrdup("STDIN");
    }
    if (!valid_job_name(s->name)) {
        dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                   "Illegal attribute or resource value Job_Name");
        return -1;
    }
    if ((s->script != NULL) == (s->argc > 0)) {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "a job needs exactly one of \"script\" and \"argv\"");
        return -1;
    }
    if (s->argv != NULL && s->argc > 0 && s->argv[0][0] == '\0') {
        dv_err_set(err, DV_EINVAL, "invalid_job",
                   "the command to run must not be empty");
        return -1;
    }
    if (s->script != NULL && strchr(s->script, '\r') != NULL &&
        strstr(s->script, "\r\n") != NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_job", "script contains cr, lf");
        return -1;
    }
    if (s->join == NULL) {
        s->join = dv_xstrdup("n");
    }
    if (strcmp(s->join, "n") != 0 && strcmp(s->join, "oe") != 0 &&
        strcmp(s->join, "eo") != 0) {
        dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                   "Illegal attribute or resource value Join_Path");
        return -1;
    }
    if (s->workdir != NULL && check_path(s->workdir, "workdir", err) < 0) {
        return -1;
    }
    if (s->stdout_path != NULL &&
        check_path(s->stdout_path, "output path", err) < 0) {
        return -1;
    }
    if (s->stderr_path != NULL &&
        check_path(s->stderr_path, "error path", err) < 0) {
        return -1;
    }
    if (s->shell != NULL && s->shell[0] != '/') {
        dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                   "Illegal attribute or resource value Shell_Path_List");
        return -1;
    }
    for (int i = 0; i < s->nenv; i++) {
        if (!valid_env_entry(s->env[i])) {
            dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                       "Illegal attribute or resource value Variable_List: "
                       "\"%.64s\" is not NAME=value",
                       s->env[i]);
            return -1;
        }
    }
    if (s->depend != NULL && dv_job_depend_check(s->depend, err) < 0) {
        return -1;
    }
    if (s->array != NULL) {
        struct dv_array a;
        if (dv_array_parse(s->array, &a) < 0) {
            dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                       "Illegal attribute or resource value "
                       "array_indices_submitted");
            return -1;
        }
        if (!s->rerunnable) {
            dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                       "cannot submit non-rerunable Array Job");
            return -1;
        }
    }
    if (check_site_attrs(s, err) < 0) {
        return -1;
    }
    return normalize_resources(s, err);
}

/* --- encoding --- */

static json_t *
strv_json(char **v, int n)
{
    json_t *a = json_array();

    for (int i = 0; i < n; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    return a;
}

static void
set_str(json_t *o, const char *key, const char *v)
{
    if (v != NULL) {
        json_object_set_new(o, key, json_string(v));
    }
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct dv_kv *)a)->key,
                      ((const struct dv_kv *)b)->key);
}

/* Canonical Resource_List: mem, ncpus, ngpus, nodect, place, select,
 * walltime, sorted by name as PBS shows them. */
static json_t *
resource_list_json(const struct dv_resreq *rr)
{
    json_t *o = json_object();
    struct dv_buf b;
    char text[64];

    dv_buf_init(&b);
    if (rr->mem > 0) {
        dv_format_size(rr->mem, text, sizeof(text));
        json_object_set_new(o, "mem", json_string(text));
    }
    snprintf(text, sizeof(text), "%d", rr->ncpus);
    json_object_set_new(o, "ncpus", json_string(text));
    if (rr->ngpus > 0) {
        snprintf(text, sizeof(text), "%d", rr->ngpus);
        json_object_set_new(o, "ngpus", json_string(text));
    }
    snprintf(text, sizeof(text), "%d", rr->nodect);
    json_object_set_new(o, "nodect", json_string(text));
    dv_buf_puts(&b, dv_place_name(rr->place));
    if (rr->excl) {
        dv_buf_puts(&b, ":excl");
    }
    json_object_set_new(o, "place", json_string(dv_buf_str(&b)));
    dv_buf_reset(&b);
    dv_select_format(rr, &b);
    json_object_set_new(o, "select", json_string(dv_buf_str(&b)));
    if (rr->walltime > 0) {
        dv_format_hms(rr->walltime, text, sizeof(text));
        json_object_set_new(o, "walltime", json_string(text));
    }
    dv_buf_cleanup(&b);
    return o;
}

json_t *
dv_job_spec_to_json(const struct dv_job_spec *s)
{
    json_t *o = json_object();
    json_t *res;
    struct dv_kv *sorted;

    set_str(o, "name", s->name);
    set_str(o, "queue", s->queue);
    set_str(o, "type", s->type);
    set_str(o, "owner", s->owner);
    set_str(o, "group", s->group);
    set_str(o, "submit_host", s->submit_host);
    json_object_set_new(o, "priority", json_integer(s->priority));
    json_object_set_new(o, "hold", json_boolean(s->hold));
    if (s->native != NULL) {
        dv_jobspec_to_json(s->native, o);
        if (s->normalized) {
            json_object_set_new(o, "placement",
                                dv_jobspec_placement_json(s->native, s->type));
            json_object_set_new(o, "resource_list",
                                dv_jobspec_resource_list_json(&s->req));
        }
        return o;
    }
    json_object_set_new(o, "rerunnable", json_boolean(s->rerunnable));
    set_str(o, "script", s->script);
    if (s->argc > 0) {
        json_object_set_new(o, "argv", strv_json(s->argv, s->argc));
    }
    set_str(o, "shell", s->shell);
    set_str(o, "workdir", s->workdir);
    json_object_set_new(o, "env", strv_json(s->env, s->nenv));
    set_str(o, "stdout", s->stdout_path);
    set_str(o, "stderr", s->stderr_path);
    set_str(o, "join", s->join);
    res = json_object();
    sorted = dv_xcalloc((size_t)s->nresources + 1, sizeof(*sorted));
    if (s->nresources > 0) {
        memcpy(sorted, s->resources, sizeof(*sorted) * (size_t)s->nresources);
        qsort(sorted, (size_t)s->nresources, sizeof(*sorted), kv_cmp);
    }
    for (int i = 0; i < s->nresources; i++) {
        json_object_set_new(res, sorted[i].key, json_string(sorted[i].value));
    }
    free(sorted);
    json_object_set_new(o, "resources", res);
    set_str(o, "depend", s->depend);
    set_str(o, "array", s->array);
    set_str(o, "submit_args", s->submit_args);
    set_str(o, "account", s->account);
    set_str(o, "project", s->project);
    set_str(o, "mail_points", s->mail_points);
    set_str(o, "mail_users", s->mail_users);
    if (s->execution_time > 0) {
        json_object_set_new(o, "execution_time",
                            json_integer((json_int_t)s->execution_time));
    }
    set_str(o, "keep_files", s->keep_files);
    set_str(o, "shell_path_list", s->shell_path_list);
    if (s->normalized) {
        json_t *rl = resource_list_json(&s->req);

        for (int i = 0; i < s->ncustom; i++) {
            const struct dv_kv *kv = &s->resources[s->custom[i]];
            json_object_set_new(rl, kv->key, json_string(kv->value));
        }
        json_object_set_new(o, "resource_list", rl);
        json_object_set_new(o, "placement",
                            dv_jobspec_pbs_placement_json(&s->req));
    }
    return o;
}

/* --- ids --- */

void
dv_job_id_format(long long id, const char *server, char *buf, size_t size)
{
    if (dv_str_empty(server)) {
        snprintf(buf, size, "%lld", id);
    } else {
        snprintf(buf, size, "%lld.%s", id, server);
    }
}

int
dv_job_id_parse(const char *s, long long *id)
{
    long long v = 0;
    const char *p = s;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    while (isdigit((unsigned char)*p)) {
        if (v > 999999999999LL) {
            return -1;
        }
        v = v * 10 + (*p - '0');
        p++;
    }
    if (*p != '\0' && *p != '.' && *p != '@') {
        return -1;
    }
    if (*p == '.' && p[1] == '\0') {
        return -1;
    }
    *id = v;
    return 0;
}
