/*
 * Pure helpers of the API layer: PBS texts (exec_vnode, end comments, hold
 * types, state lists), query parameter parsing, id lists for NOTIFY
 * payloads and array parameters, idempotency keys and the stored form of a
 * job spec. No I/O, so each is unit-tested.
 */
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

void
fmt_exec_vnode(const struct vnode_part *parts, int n, struct dv_buf *out)
{
    for (int i = 0; i < n; i++) {
        dv_buf_printf(out, "%s(%s:ncpus=%d", i > 0 ? "+" : "", parts[i].host,
                      parts[i].ncpus);
        if (parts[i].mem > 0) {
            dv_buf_printf(out, ":mem=%lldkb",
                          (long long)((parts[i].mem + 1023) / 1024));
        }
        if (parts[i].ngpus > 0) {
            dv_buf_printf(out, ":ngpus=%d", parts[i].ngpus);
        }
        dv_buf_putc(out, ')');
    }
}

char *
fmt_end_comment(const char *run_comment, double stime, const char *how)
{
    char when[64];
    time_t t;
    struct tm tm;

    if (run_comment != NULL && dv_str_has_prefix(run_comment, "Job run at ")) {
        return dv_xasprintf("%s and %s", run_comment, how);
    }
    if (stime <= 0) {
        return dv_xasprintf("Job %s", how);
    }
    t = (time_t)stime;
    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %d at %H:%M", &tm);
    return dv_xasprintf("Job run at %s and %s", when, how);
}

const char *
fmt_end_how(const char *client_status, const char *message, int deleted)
{
    if (deleted) {
        return "terminated";
    }
    if (message != NULL && strstr(message, "walltime") != NULL) {
        return "exceeded resource walltime";
    }
    if (message != NULL && strcmp(message, "exceeded resource mem") == 0) {
        return "exceeded resource mem";
    }
    if (client_status != NULL && strcmp(client_status, "complete") == 0) {
        return "finished";
    }
    return "failed";
}

int
hold_types_parse(const char *s, unsigned *mask)
{
    unsigned m = 0;

    if (s == NULL || *s == '\0' || strlen(s) > 3) {
        return -1;
    }
    for (const char *p = s; *p != '\0'; p++) {
        switch (*p) {
        case 'u':
            m |= 1u;
            break;
        case 'o':
            m |= 2u;
            break;
        case 's':
            m |= 4u;
            break;
        default:
            return -1;
        }
    }
    *mask = m;
    return 0;
}

void
hold_types_format(unsigned mask, char buf[4])
{
    int n = 0;

    if (mask & 1u) {
        buf[n++] = 'u';
    }
    if (mask & 2u) {
        buf[n++] = 'o';
    }
    if (mask & 4u) {
        buf[n++] = 's';
    }
    buf[n] = '\0';
}

int
state_list_parse(const char *s, unsigned *mask)
{
    unsigned m = 0;
    const char *p = s;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char word[16];
        int st = -1;

        if (len == 0 || len >= sizeof(word)) {
            return -1;
        }
        memcpy(word, p, len);
        word[len] = '\0';
        if (len == 1) {
            const char *letters = "QHREFW";
            const char *hit = strchr(letters, toupper((unsigned char)word[0]));
            if (hit != NULL) {
                st = (int)(hit - letters);
            }
        } else {
            st = dv_job_state_parse(word);
        }
        if (st < 0) {
            return -1;
        }
        m |= 1u << st;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return -1;
            }
        }
    }
    *mask = m;
    return 0;
}

void
state_list_array(unsigned mask, char *buf, size_t size)
{
    struct dv_buf b;
    int first = 1;

    dv_buf_init(&b);
    dv_buf_putc(&b, '{');
    for (int st = DV_JOB_QUEUED; st < DV_JOB_NSTATES; st++) {
        if (mask & (1u << st)) {
            dv_buf_printf(&b, "%s%s", first ? "" : ",",
                          dv_job_state_name((enum dv_job_state)st));
            first = 0;
        }
    }
    dv_buf_putc(&b, '}');
    dv_strlcpy(buf, dv_buf_str(&b), size);
    dv_buf_cleanup(&b);
}

int
parse_wait(const char *s, double *out)
{
    double d;

    if (s == NULL || dv_parse_duration(s, &d) < 0) {
        return -1;
    }
    *out = d > QMGR_MAX_WAIT ? QMGR_MAX_WAIT : d;
    return 0;
}

void
fmt_id_list(const int64_t *ids, int n, struct dv_buf *out)
{
    for (int i = 0; i < n; i++) {
        dv_buf_printf(out, "%s%lld", i > 0 ? "," : "", (long long)ids[i]);
    }
}

void
fmt_id_array(const int64_t *ids, int n, struct dv_buf *out)
{
    dv_buf_putc(out, '{');
    fmt_id_list(ids, n, out);
    dv_buf_putc(out, '}');
}

int
parse_id_list(const char *s, int64_t **ids)
{
    int n = 0, cap = 0;
    const char *p = s;
    int64_t *v = NULL;

    *ids = NULL;
    if (s == NULL || *s == '\0') {
        return 0;
    }
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char word[24];
        int64_t id;

        if (len == 0 || len >= sizeof(word)) {
            goto bad;
        }
        memcpy(word, p, len);
        word[len] = '\0';
        if (dv_parse_i64(word, 0, INT64_MAX, &id) < 0) {
            goto bad;
        }
        if (n == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            v = dv_xrealloc(v, sizeof(*v) * (size_t)cap);
        }
        v[n++] = id;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                goto bad;
            }
        }
    }
    *ids = v;
    return n;
bad:
    free(v);
    return -1;
}

int
idempotency_key_valid(const char *s)
{
    size_t n;

    if (s == NULL) {
        return 0;
    }
    n = strlen(s);
    if (n == 0 || n > 128) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            return 0;
        }
    }
    return 1;
}

int
random_key(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];

    if (RAND_bytes(raw, (int)sizeof(raw)) != 1) {
        return -1;
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0xf];
    }
    out[32] = '\0';
    return 0;
}

int
may_change_job(const char *owner, const char *user, int root)
{
    if (root) {
        return 1;
    }
    return owner != NULL && user != NULL && strcmp(owner, user) == 0;
}

static char *
default_path(const char *workdir, const char *name, char kind, long long id)
{
    size_t len = strlen(workdir);
    int slash = len > 0 && workdir[len - 1] == '/';

    return dv_xasprintf("%s%s%s.%c%lld", workdir, slash ? "" : "/", name, kind,
                        id);
}

json_t *
stored_spec_json(const struct dv_job_spec *s, const char *queue, long long id)
{
    json_t *j = dv_job_spec_to_json(s);
    json_t *env = json_object_get(j, "env");
    char *var = dv_xasprintf("PBS_O_QUEUE=%s", queue);

    json_object_set_new(j, "queue", json_string(queue));
    /* PBS's server appends the queue the job was submitted to. */
    if (json_is_array(env)) {
        json_array_append_new(env, json_string(var));
    }
    free(var);
    if (s->workdir != NULL && s->stdout_path == NULL) {
        char *p = default_path(s->workdir, s->name, 'o', id);
        if (s->array != NULL) {
            /* PBS: <name>.o<seq>.<index>; noded puts the index in. */
            char *a = dv_xasprintf("%s." DV_ARRAY_INDEX_TOKEN, p);
            free(p);
            p = a;
        }
        json_object_set_new(j, "stdout", json_string(p));
        free(p);
    }
    if (s->workdir != NULL && s->stderr_path == NULL) {
        char *p = default_path(s->workdir, s->name, 'e', id);
        if (s->array != NULL) {
            /* PBS: <name>.e<seq>.<index>; noded puts the index in. */
            char *a = dv_xasprintf("%s." DV_ARRAY_INDEX_TOKEN, p);
            free(p);
            p = a;
        }
        json_object_set_new(j, "stderr", json_string(p));
        free(p);
    }
    return j;
}

void
stored_spec_custom(json_t *stored, const struct dv_job_spec *spec,
                   char **canon)
{
    json_t *res = json_object_get(stored, "resources");
    json_t *rl = json_object_get(stored, "resource_list");

    if (canon == NULL) {
        return;
    }
    for (int i = 0; i < spec->ncustom; i++) {
        const char *name = spec->resources[spec->custom[i]].key;

        if (canon[i] == NULL) {
            continue;
        }
        if (json_is_object(res)) {
            json_object_set_new(res, name, json_string(canon[i]));
        }
        if (json_is_object(rl)) {
            json_object_set_new(rl, name, json_string(canon[i]));
        }
    }
}

int
node_name_valid(const char *s)
{
    size_t n;

    if (s == NULL) {
        return 0;
    }
    n = strlen(s);
    if (n == 0 || n > 255) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
            *p != '_') {
            return 0;
        }
    }
    return 1;
}

int
resource_name_valid(const char *s)
{
    size_t n;

    if (s == NULL || !isalpha((unsigned char)s[0])) {
        return 0;
    }
    n = strlen(s);
    if (n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' &&
            s[i] != '-') {
            return 0;
        }
    }
    return 1;
}
