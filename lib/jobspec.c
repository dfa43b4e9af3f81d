/*
 * The native JSON job format: strict decoding with path-named errors,
 * validation and defaults by job type, encoding, and the derived placement
 * object (for native and PBS specs) that the schedulers read.
 */
#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jobspec.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define PATH_MAX_LEN 256
#define NAME_MAX_LEN 64
#define ATTR_MAX_LEN 256
#define VALUE_MAX_LEN 4096
#define META_KEY_MAX 128
#define STRING_MAX (64 * 1024)
#define ARGS_MAX 4096
#define ENV_MAX 4096
#define ATTEMPTS_MAX 1000

/* Indexed by enum dv_op. */
static const char *const ops[] = {
    "=",      "!=",         "<",       "<=",           ">",
    ">=",     "regexp",     "version", "set_contains", "distinct_hosts",
    "is_set", "is_not_set",
};

int
dv_op_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(ops) / sizeof(ops[0])); i++) {
        if (strcmp(s, ops[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *
dv_op_name(enum dv_op op)
{
    if ((int)op < 0 || (int)op >= (int)(sizeof(ops) / sizeof(ops[0]))) {
        return "?";
    }
    return ops[op];
}

const char *
dv_numa_name(enum dv_numa n)
{
    switch (n) {
    case DV_NUMA_NONE:
        return "none";
    case DV_NUMA_PREFER:
        return "prefer";
    case DV_NUMA_REQUIRE:
        return "require";
    }
    return "?";
}

/* --- durations and versions --- */

int
dv_jobspec_parse_duration(const char *s, int64_t *seconds)
{
    int64_t total = 0;
    const char *p = s;
    int parts = 0;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    if (strchr(s, ':') != NULL) {
        int64_t v;
        if (dv_parse_walltime(s, &v) < 0 || v < 0 ||
            v > DV_JOBSPEC_MAX_DURATION) {
            return -1;
        }
        *seconds = v;
        return 0;
    }
    while (*p != '\0') {
        int64_t n = 0, unit;

        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p - '0');
            if (n > DV_JOBSPEC_MAX_DURATION) {
                return -1;
            }
            p++;
        }
        switch (*p) {
        case 'd':
            unit = 86400;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'm':
            unit = 60;
            break;
        case 's':
            unit = 1;
            break;
        case '\0':
            if (parts > 0) {
                return -1; /* "1h30": a number without a unit */
            }
            unit = 1;
            p--; /* nothing to skip */
            break;
        default:
            return -1;
        }
        p++;
        total += n * unit;
        if (total > DV_JOBSPEC_MAX_DURATION) {
            return -1;
        }
        parts++;
    }
    *seconds = total;
    return 0;
}

void
dv_jobspec_format_duration(int64_t seconds, char *buf, size_t size)
{
    long long h = (long long)(seconds / 3600);
    int m = (int)(seconds % 3600 / 60), s = (int)(seconds % 60);
    struct dv_buf b;

    if (seconds <= 0) {
        snprintf(buf, size, "0s");
        return;
    }
    dv_buf_init(&b);
    if (h > 0) {
        dv_buf_printf(&b, "%lldh", h);
    }
    if (m > 0) {
        dv_buf_printf(&b, "%dm", m);
    }
    if (s > 0) {
        dv_buf_printf(&b, "%ds", s);
    }
    dv_strlcpy(buf, dv_buf_str(&b), size);
    dv_buf_cleanup(&b);
}

static const char *
skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static int
ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-';
}

/* One clause "[op] version"; [p, end) */
static int
version_clause(const char *p, const char *end)
{
    static const char *const vops[] = {"~>", ">=", "<=", "!=", ">", "<", "="};

    p = skip_blanks(p);
    for (size_t i = 0; i < sizeof(vops) / sizeof(vops[0]); i++) {
        size_t n = strlen(vops[i]);
        if ((size_t)(end - p) >= n && strncmp(p, vops[i], n) == 0) {
            p += n;
            break;
        }
    }
    p = skip_blanks(p);
    if (p >= end || !isdigit((unsigned char)*p)) {
        return -1;
    }
    for (;;) {
        if (p >= end || !isdigit((unsigned char)*p)) {
            return -1;
        }
        while (p < end && isdigit((unsigned char)*p)) {
            p++;
        }
        if (p < end && *p == '.') {
            p++;
            continue;
        }
        break;
    }
    for (int part = 0; part < 2; part++) {
        char mark = part == 0 ? '-' : '+';
        if (p < end && *p == mark) {
            const char *start = ++p;
            while (p < end && ident_char(*p)) {
                p++;
            }
            if (p == start) {
                return -1;
            }
        }
    }
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    return p == end ? 0 : -1;
}

int
dv_version_constraint_check(const char *s)
{
    const char *p = s;

    if (s == NULL || *skip_blanks(s) == '\0') {
        return -1;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);

        if (version_clause(p, end) < 0) {
            return -1;
        }
        if (comma == NULL) {
            return 0;
        }
        p = comma + 1;
    }
}

/* --- errors --- */

static int fail(struct dv_err *err, enum dv_err_kind kind, const char *path,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(struct dv_err *err, enum dv_err_kind kind, const char *path,
     const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dv_err_set(err, kind, kind == DV_ETOOLARGE ? "too_large" : "invalid_job",
               "%s: %s", path, msg);
    return -1;
}

#define BAD(err, path, ...) fail(err, DV_EINVAL, path, __VA_ARGS__)
#define TOO_LARGE(err, path, ...) fail(err, DV_ETOOLARGE, path, __VA_ARGS__)

/* child = parent.key or parent[i] */
static void
path_key(char *child, const char *parent, const char *key)
{
    if (parent[0] == '\0') {
        snprintf(child, PATH_MAX_LEN, "%.200s", key);
    } else {
        snprintf(child, PATH_MAX_LEN, "%.180s.%.64s", parent, key);
    }
}

static void
path_index(char *child, const char *parent, size_t i)
{
    snprintf(child, PATH_MAX_LEN, "%.200s[%zu]", parent, i);
}

/* --- decoding helpers --- */

static int
get_str(const json_t *v, const char *path, size_t max, char **out,
        struct dv_err *err)
{
    if (!json_is_string(v)) {
        return BAD(err, path, "must be a string");
    }
    if (json_string_length(v) > max) {
        return TOO_LARGE(err, path, "is longer than %zu bytes", max);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return BAD(err, path, "must not contain NUL bytes");
    }
    free(*out);
    *out = dv_xstrdup(json_string_value(v));
    return 0;
}

/* An integer in [min, max]. A "limit" max (a bound no one means to
 * reach) is worded apart: "must be an integer >= 1", "must be at most N";
 * a real range as "must be an integer from -100 to 100". */
static int
get_int(const json_t *v, const char *path, int min, int max, int limit,
        int *out, struct dv_err *err)
{
    json_int_t n;

    if (!json_is_integer(v)) {
        goto bad;
    }
    n = json_integer_value(v);
    if (n < min) {
        goto bad;
    }
    if (n > max) {
        if (limit) {
            return TOO_LARGE(err, path, "must be at most %d", max);
        }
        goto bad;
    }
    *out = (int)n;
    return 0;
bad:
    if (limit) {
        return BAD(err, path, "must be an integer >= %d", min);
    }
    return BAD(err, path, "must be an integer from %d to %d", min, max);
}

static int
get_bool(const json_t *v, const char *path, int *out, struct dv_err *err)
{
    if (!json_is_boolean(v)) {
        return BAD(err, path, "must be true or false");
    }
    *out = json_is_true(v);
    return 0;
}

static int
get_duration(const json_t *v, const char *path, int positive, int64_t *out,
             struct dv_err *err)
{
    int64_t s;

    if (json_is_integer(v)) {
        s = json_integer_value(v);
        if (s < 0 || s > DV_JOBSPEC_MAX_DURATION) {
            goto bad;
        }
    } else if (json_is_string(v)) {
        if (dv_jobspec_parse_duration(json_string_value(v), &s) < 0) {
            goto bad;
        }
    } else {
        goto bad;
    }
    if (positive && s == 0) {
        return BAD(err, path, "must be a duration > 0");
    }
    *out = s;
    return 0;
bad:
    return BAD(err, path,
               "must be a duration: seconds, \"1h30m\" (units d h m s) or "
               "\"HH:MM:SS\"");
}

static int
get_size(const json_t *v, const char *path, int64_t *out, struct dv_err *err)
{
    int64_t b;

    if (json_is_integer(v)) {
        b = json_integer_value(v);
        if (b < 0) {
            goto bad;
        }
    } else if (json_is_string(v)) {
        if (dv_parse_size(json_string_value(v), &b) < 0) {
            goto bad;
        }
    } else {
        goto bad;
    }
    if (b > DV_MAX_MEM) {
        return TOO_LARGE(err, path, "must be at most 1pb");
    }
    *out = b;
    return 0;
bad:
    return BAD(err, path,
               "must be a size: bytes, or a number with a unit such as "
               "\"512mb\" or \"2gb\"");
}

static int
get_object(const json_t *v, const char *path, struct dv_err *err)
{
    if (!json_is_object(v)) {
        return BAD(err, path, "must be an object");
    }
    return 0;
}

static int
get_array(const json_t *v, const char *path, size_t max, struct dv_err *err)
{
    if (!json_is_array(v)) {
        return BAD(err, path, "must be an array");
    }
    if (json_array_size(v) > max) {
        return TOO_LARGE(err, path, "has more than %zu entries", max);
    }
    return 0;
}

static int
unknown(const char *parent, const char *key, struct dv_err *err)
{
    char p[PATH_MAX_LEN];

    path_key(p, parent, key);
    return BAD(err, p, "unknown field");
}

static void
free_strv(char **v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static void
free_kv(struct dv_kv *kv, int n)
{
    for (int i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static int
get_strv(const json_t *v, const char *path, size_t maxn, size_t maxlen,
         char ***out, int *n, struct dv_err *err)
{
    size_t i;
    json_t *e;

    if (get_array(v, path, maxn, err) < 0) {
        return -1;
    }
    free_strv(*out, *n);
    *out = dv_xcalloc(json_array_size(v) + 1, sizeof(char *));
    *n = 0;
    json_array_foreach(v, i, e)
    {
        char p[PATH_MAX_LEN];

        path_index(p, path, i);
        if (get_str(e, p, maxlen, &(*out)[*n], err) < 0) {
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* A string -> string object. */
static int
get_map(const json_t *v, const char *path, size_t maxn, size_t maxkey,
        struct dv_kv **out, int *n, struct dv_err *err)
{
    const char *key;
    json_t *val;

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    if (json_object_size(v) > maxn) {
        return TOO_LARGE(err, path, "has more than %zu entries", maxn);
    }
    free_kv(*out, *n);
    *out = dv_xcalloc(json_object_size(v) + 1, sizeof(**out));
    *n = 0;
    json_object_foreach((json_t *)v, key, val)
    {
        char p[PATH_MAX_LEN];

        path_key(p, path, key);
        if (strlen(key) == 0 || strlen(key) > maxkey) {
            return BAD(err, p, "names must have 1 to %zu characters", maxkey);
        }
        (*out)[*n].key = dv_xstrdup(key);
        if (get_str(val, p, STRING_MAX, &(*out)[*n].value, err) < 0) {
            free((*out)[*n].key);
            (*out)[*n].key = NULL;
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* --- names --- */

static int
valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
            *p != '.') {
            return 0;
        }
    }
    return 1;
}

static int
valid_user(const char *s)
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
valid_env_name(const char *s)
{
    if (*s == '\0' || isdigit((unsigned char)*s)) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            return 0;
        }
    }
    return 1;
}

/* ${attr.X}, ${meta.X}, ${node.name|datacenter|pool|class|id} */
static int
valid_attribute(const char *s)
{
    static const char *const node_attrs[] = {"name", "datacenter", "pool",
                                             "class", "id"};
    size_t n = strlen(s);
    const char *inner;
    size_t len;

    if (n < 4 || strncmp(s, "${", 2) != 0 || s[n - 1] != '}') {
        return 0;
    }
    inner = s + 2;
    len = n - 3;
    if (len > 5 && strncmp(inner, "node.", 5) == 0) {
        for (size_t i = 0; i < sizeof(node_attrs) / sizeof(node_attrs[0]);
             i++) {
            if (len - 5 == strlen(node_attrs[i]) &&
                strncmp(inner + 5, node_attrs[i], len - 5) == 0) {
                return 1;
            }
        }
        return 0;
    }
    if (len > 5 && strncmp(inner, "attr.", 5) == 0) {
        inner += 5;
        len -= 5;
    } else if (len > 5 && strncmp(inner, "meta.", 5) == 0) {
        inner += 5;
        len -= 5;
    } else {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = inner[i];
        if (!isalnum((unsigned char)c) && c != '_' && c != '-' && c != '.' &&
            c != '/') {
            return 0;
        }
    }
    return 1;
}

/* --- rules: constraints and affinities --- */

static void
rule_cleanup(struct dv_rule *r)
{
    free(r->attribute);
    free(r->value);
}

static void
rules_free(struct dv_rule *r, int n)
{
    for (int i = 0; i < n; i++) {
        rule_cleanup(&r[i]);
    }
    free(r);
}

static int
check_rule(struct dv_rule *r, const char *path, int affinity,
           struct dv_err *err)
{
    char p[PATH_MAX_LEN];

    path_key(p, path, "attribute");
    if (r->op == DV_OP_DISTINCT_HOSTS) {
        if (affinity) {
            path_key(p, path, "operator");
            return BAD(err, p, "distinct_hosts is not an affinity operator");
        }
        if (r->attribute != NULL) {
            return BAD(err, p, "distinct_hosts takes no attribute");
        }
        if (r->value != NULL) {
            path_key(p, path, "value");
            return BAD(err, p, "distinct_hosts takes no value");
        }
        return 0;
    }
    if (r->attribute == NULL) {
        return BAD(err, p, "is required");
    }
    if (!valid_attribute(r->attribute)) {
        return BAD(err, p,
                   "must be ${attr.<name>}, ${meta.<name>} or "
                   "${node.name|datacenter|pool|class|id}");
    }
    path_key(p, path, "value");
    if (r->op == DV_OP_IS_SET || r->op == DV_OP_IS_NOT_SET) {
        if (r->value != NULL) {
            return BAD(err, p, "%s takes no value", dv_op_name(r->op));
        }
        return 0;
    }
    if (r->value == NULL || r->value[0] == '\0') {
        return BAD(err, p, "is required for operator %s", dv_op_name(r->op));
    }
    if (r->op == DV_OP_REGEXP) {
        regex_t re;
        int rc = regcomp(&re, r->value, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &re, why, sizeof(why));
            return BAD(err, p, "not a valid regular expression: %s", why);
        }
        regfree(&re);
    } else if (r->op == DV_OP_VERSION) {
        if (dv_version_constraint_check(r->value) < 0) {
            return BAD(err, p,
                       "not a version constraint such as \">= 1.2, < 2.0\"");
        }
    } else if (r->op == DV_OP_SET_CONTAINS) {
        const char *s = r->value;
        for (;;) {
            const char *comma = strchr(s, ',');
            const char *end = comma != NULL ? comma : s + strlen(s);
            const char *a = skip_blanks(s);
            if (a >= end) {
                return BAD(err, p,
                           "must be a comma-separated list of non-empty "
                           "items");
            }
            if (comma == NULL) {
                break;
            }
            s = comma + 1;
        }
    }
    return 0;
}

static int
decode_rule(const json_t *v, const char *path, int affinity, struct dv_rule *r,
            struct dv_err *err)
{
    const char *key;
    json_t *val;
    int has_weight = 0;

    r->op = DV_OP_EQ;
    r->weight = affinity ? 50 : 0;
    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        char p[PATH_MAX_LEN];

        path_key(p, path, key);
        if (strcmp(key, "attribute") == 0) {
            if (get_str(val, p, ATTR_MAX_LEN, &r->attribute, err) < 0) {
                return -1;
            }
        } else if (strcmp(key, "operator") == 0) {
            int op;
            if (!json_is_string(val)) {
                return BAD(err, p, "must be a string");
            }
            op = dv_op_parse(json_string_value(val));
            if (op < 0) {
                return BAD(err, p,
                           "unknown operator \"%.32s\" (= != < <= > >= "
                           "regexp version set_contains distinct_hosts "
                           "is_set is_not_set)",
                           json_string_value(val));
            }
            r->op = (enum dv_op)op;
        } else if (strcmp(key, "value") == 0) {
            if (get_str(val, p, VALUE_MAX_LEN, &r->value, err) < 0) {
                return -1;
            }
        } else if (affinity && strcmp(key, "weight") == 0) {
            if (get_int(val, p, -100, 100, 0, &r->weight, err) < 0) {
                return -1;
            }
            has_weight = 1;
        } else {
            return unknown(path, key, err);
        }
    }
    if (affinity && has_weight && r->weight == 0) {
        char p[PATH_MAX_LEN];
        path_key(p, path, "weight");
        return BAD(err, p, "must not be 0");
    }
    return check_rule(r, path, affinity, err);
}

static int
decode_rules(const json_t *v, const char *path, int affinity,
             struct dv_rule **out, int *n, struct dv_err *err)
{
    size_t i;
    json_t *e;

    if (get_array(v, path, DV_JOBSPEC_MAX_RULES, err) < 0) {
        return -1;
    }
    rules_free(*out, *n);
    *out = dv_xcalloc(json_array_size(v) + 1, sizeof(**out));
    *n = 0;
    json_array_foreach(v, i, e)
    {
        char p[PATH_MAX_LEN];

        path_index(p, path, i);
        (*n)++;
        if (decode_rule(e, p, affinity, &(*out)[i], err) < 0) {
            return -1;
        }
    }
    return 0;
}

/* --- spread --- */

static void
spread_free(struct dv_spread *s, int n)
{
    for (int i = 0; i < n; i++) {
        free(s[i].attribute);
        for (int t = 0; t < s[i].ntargets; t++) {
            free(s[i].targets[t].value);
        }
        free(s[i].targets);
    }
    free(s);
}

static int
decode_target(const json_t *v, const char *path, struct dv_spread_target *t,
              struct dv_err *err)
{
    const char *key;
    json_t *val;
    int has_percent = 0;

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        char p[PATH_MAX_LEN];

        path_key(p, path, key);
        if (strcmp(key, "value") == 0) {
            if (get_str(val, p, VALUE_MAX_LEN, &t->value, err) < 0) {
                return -1;
            }
        } else if (strcmp(key, "percent") == 0) {
            if (get_int(val, p, 0, 100, 0, &t->percent, err) < 0) {
                return -1;
            }
            has_percent = 1;
        } else {
            return unknown(path, key, err);
        }
    }
    if (t->value == NULL || t->value[0] == '\0') {
        char p[PATH_MAX_LEN];
        path_key(p, path, "value");
        return BAD(err, p, "is required");
    }
    if (!has_percent) {
        char p[PATH_MAX_LEN];
        path_key(p, path, "percent");
        return BAD(err, p, "is required");
    }
    return 0;
}

static int
decode_spread_one(const json_t *v, const char *path, struct dv_spread *s,
                  struct dv_err *err)
{
    const char *key;
    json_t *val;
    char p[PATH_MAX_LEN];
    int sum = 0;

    s->weight = 50;
    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        path_key(p, path, key);
        if (strcmp(key, "attribute") == 0) {
            if (get_str(val, p, ATTR_MAX_LEN, &s->attribute, err) < 0) {
                return -1;
            }
        } else if (strcmp(key, "weight") == 0) {
            if (get_int(val, p, 0, 100, 0, &s->weight, err) < 0) {
                return -1;
            }
        } else if (strcmp(key, "targets") == 0) {
            size_t i;
            json_t *e;
            if (get_array(val, p, DV_JOBSPEC_MAX_TARGETS, err) < 0) {
                return -1;
            }
            for (int t = 0; t < s->ntargets; t++) {
                free(s->targets[t].value);
            }
            free(s->targets);
            s->targets =
                dv_xcalloc(json_array_size(val) + 1, sizeof(*s->targets));
            s->ntargets = 0;
            json_array_foreach(val, i, e)
            {
                char pt[PATH_MAX_LEN];
                path_index(pt, p, i);
                s->ntargets++;
                if (decode_target(e, pt, &s->targets[i], err) < 0) {
                    return -1;
                }
            }
        } else {
            return unknown(path, key, err);
        }
    }
    path_key(p, path, "attribute");
    if (s->attribute == NULL) {
        return BAD(err, p, "is required");
    }
    if (!valid_attribute(s->attribute)) {
        return BAD(err, p,
                   "must be ${attr.<name>}, ${meta.<name>} or "
                   "${node.name|datacenter|pool|class|id}");
    }
    path_key(p, path, "targets");
    for (int i = 0; i < s->ntargets; i++) {
        sum += s->targets[i].percent;
        for (int j = 0; j < i; j++) {
            if (strcmp(s->targets[i].value, s->targets[j].value) == 0) {
                return BAD(err, p, "target \"%.64s\" is given twice",
                           s->targets[i].value);
            }
        }
    }
    if (sum > 100) {
        return BAD(err, p, "percentages add up to %d, more than 100", sum);
    }
    return 0;
}

static int
decode_spread(const json_t *v, const char *path, struct dv_spread **out, int *n,
              struct dv_err *err)
{
    size_t i;
    json_t *e;

    if (get_array(v, path, DV_JOBSPEC_MAX_SPREAD, err) < 0) {
        return -1;
    }
    spread_free(*out, *n);
    *out = dv_xcalloc(json_array_size(v) + 1, sizeof(**out));
    *n = 0;
    json_array_foreach(v, i, e)
    {
        char p[PATH_MAX_LEN];

        path_index(p, path, i);
        (*n)++;
        if (decode_spread_one(e, p, &(*out)[i], err) < 0) {
            return -1;
        }
    }
    return 0;
}

/* --- policies and resources --- */

static int
decode_restart(const json_t *v, const char *path, struct dv_group *g,
               struct dv_err *err)
{
    const char *key;
    json_t *val;

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        char p[PATH_MAX_LEN];
        int rc;

        path_key(p, path, key);
        if (strcmp(key, "attempts") == 0) {
            rc = get_int(val, p, 0, ATTEMPTS_MAX, 1, &g->restart.attempts, err);
            g->restart_given |= DV_GIVEN_ATTEMPTS;
        } else if (strcmp(key, "interval") == 0) {
            rc = get_duration(val, p, 1, &g->restart.interval, err);
            g->restart_given |= DV_GIVEN_INTERVAL;
        } else if (strcmp(key, "delay") == 0) {
            rc = get_duration(val, p, 0, &g->restart.delay, err);
            g->restart_given |= DV_GIVEN_DELAY;
        } else if (strcmp(key, "mode") == 0) {
            rc = 0;
            if (json_is_string(val) &&
                strcmp(json_string_value(val), "fail") == 0) {
                g->restart.mode = DV_RESTART_FAIL;
            } else if (json_is_string(val) &&
                       strcmp(json_string_value(val), "delay") == 0) {
                g->restart.mode = DV_RESTART_DELAY;
            } else {
                rc = BAD(err, p, "must be \"fail\" or \"delay\"");
            }
            g->restart_given |= DV_GIVEN_MODE;
        } else {
            rc = unknown(path, key, err);
        }
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
decode_reschedule(const json_t *v, const char *path, struct dv_group *g,
                  struct dv_err *err)
{
    const char *key;
    json_t *val;

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        char p[PATH_MAX_LEN];
        int rc;

        path_key(p, path, key);
        if (strcmp(key, "attempts") == 0) {
            rc = get_int(val, p, 0, ATTEMPTS_MAX, 1, &g->reschedule.attempts,
                         err);
            g->reschedule_given |= DV_GIVEN_ATTEMPTS;
        } else if (strcmp(key, "interval") == 0) {
            rc = get_duration(val, p, 1, &g->reschedule.interval, err);
            g->reschedule_given |= DV_GIVEN_INTERVAL;
        } else if (strcmp(key, "delay") == 0) {
            rc = get_duration(val, p, 0, &g->reschedule.delay, err);
            g->reschedule_given |= DV_GIVEN_DELAY;
        } else if (strcmp(key, "unlimited") == 0) {
            rc = get_bool(val, p, &g->reschedule.unlimited, err);
            g->reschedule_given |= DV_GIVEN_UNLIMITED;
        } else {
            rc = unknown(path, key, err);
        }
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
decode_resources(const json_t *v, const char *path, struct dv_group *g,
                 struct dv_err *err)
{
    const char *key;
    json_t *val;

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        char p[PATH_MAX_LEN];
        int rc;

        path_key(p, path, key);
        if (strcmp(key, "cores") == 0) {
            rc = get_int(val, p, 1, DV_MAX_NCPUS, 1, &g->cores, err);
        } else if (strcmp(key, "memory") == 0) {
            rc = get_size(val, p, &g->memory, err);
        } else if (strcmp(key, "gpus") == 0) {
            rc = get_int(val, p, 0, DV_JOBSPEC_MAX_GPUS, 1, &g->gpus, err);
        } else if (strcmp(key, "disk") == 0) {
            rc = get_size(val, p, &g->disk, err);
        } else if (strcmp(key, "numa") == 0) {
            const char *s = json_string_value(val);
            rc = 0;
            if (s != NULL && strcmp(s, "none") == 0) {
                g->numa = DV_NUMA_NONE;
            } else if (s != NULL && strcmp(s, "prefer") == 0) {
                g->numa = DV_NUMA_PREFER;
            } else if (s != NULL && strcmp(s, "require") == 0) {
                g->numa = DV_NUMA_REQUIRE;
            } else {
                rc = BAD(err, p, "must be \"none\", \"prefer\" or \"require\"");
            }
        } else {
            rc = unknown(path, key, err);
        }
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* --- tasks --- */

static void
task_cleanup(struct dv_task *t)
{
    free(t->name);
    free(t->command);
    free_strv(t->args, t->nargs);
    free_kv(t->env, t->nenv);
    free(t->user);
}

static int
decode_task(const json_t *v, const char *path, struct dv_task *t,
            struct dv_err *err)
{
    const char *key;
    json_t *val;
    char p[PATH_MAX_LEN];

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        int rc;

        path_key(p, path, key);
        if (strcmp(key, "name") == 0) {
            rc = get_str(val, p, NAME_MAX_LEN, &t->name, err);
        } else if (strcmp(key, "command") == 0) {
            rc = get_str(val, p, 4096, &t->command, err);
        } else if (strcmp(key, "args") == 0) {
            rc = get_strv(val, p, ARGS_MAX, STRING_MAX, &t->args, &t->nargs,
                          err);
        } else if (strcmp(key, "env") == 0) {
            rc = get_map(val, p, ENV_MAX, 255, &t->env, &t->nenv, err);
            for (int i = 0; rc == 0 && i < t->nenv; i++) {
                if (!valid_env_name(t->env[i].key)) {
                    char pe[PATH_MAX_LEN];
                    path_key(pe, p, t->env[i].key);
                    rc = BAD(err, pe,
                             "not a variable name (letters, digits and _, "
                             "not starting with a digit)");
                }
            }
        } else if (strcmp(key, "user") == 0) {
            rc = get_str(val, p, 64, &t->user, err);
            if (rc == 0 && !valid_user(t->user)) {
                rc = BAD(err, p, "\"%.64s\" is not a valid user name", t->user);
            }
        } else {
            rc = unknown(path, key, err);
        }
        if (rc < 0) {
            return -1;
        }
    }
    path_key(p, path, "name");
    if (t->name == NULL) {
        return BAD(err, p, "is required");
    }
    if (!valid_name(t->name)) {
        return BAD(err, p, "must be 1 to %d letters, digits, '_', '-' or '.'",
                   NAME_MAX_LEN);
    }
    path_key(p, path, "command");
    if (t->command == NULL || t->command[0] == '\0') {
        return BAD(err, p, "is required");
    }
    return 0;
}

/* --- groups --- */

static void
group_init(struct dv_group *g)
{
    memset(g, 0, sizeof(*g));
    g->count = 1;
    g->cores = 1;
    g->numa = DV_NUMA_PREFER;
}

static void
group_cleanup(struct dv_group *g)
{
    free(g->name);
    rules_free(g->constraints, g->nconstraints);
    rules_free(g->affinities, g->naffinities);
    spread_free(g->spread, g->nspread);
    for (int i = 0; i < g->ntasks; i++) {
        task_cleanup(&g->tasks[i]);
    }
    free(g->tasks);
}

static int
decode_group(const json_t *v, const char *path, struct dv_group *g,
             struct dv_err *err)
{
    const char *key;
    json_t *val;
    char p[PATH_MAX_LEN];

    if (get_object(v, path, err) < 0) {
        return -1;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        int rc;

        path_key(p, path, key);
        if (strcmp(key, "name") == 0) {
            rc = get_str(val, p, NAME_MAX_LEN, &g->name, err);
        } else if (strcmp(key, "count") == 0) {
            rc = get_int(val, p, 0, DV_JOBSPEC_MAX_COUNT, 1, &g->count, err);
            g->has_count = 1;
        } else if (strcmp(key, "constraints") == 0) {
            rc =
                decode_rules(val, p, 0, &g->constraints, &g->nconstraints, err);
        } else if (strcmp(key, "affinities") == 0) {
            rc = decode_rules(val, p, 1, &g->affinities, &g->naffinities, err);
        } else if (strcmp(key, "spread") == 0) {
            rc = decode_spread(val, p, &g->spread, &g->nspread, err);
        } else if (strcmp(key, "restart") == 0) {
            rc = decode_restart(val, p, g, err);
        } else if (strcmp(key, "reschedule") == 0) {
            rc = decode_reschedule(val, p, g, err);
        } else if (strcmp(key, "resources") == 0) {
            rc = decode_resources(val, p, g, err);
        } else if (strcmp(key, "walltime") == 0) {
            rc = get_duration(val, p, 0, &g->walltime, err);
        } else if (strcmp(key, "tasks") == 0) {
            size_t i;
            json_t *e;
            rc = get_array(val, p, DV_JOBSPEC_MAX_TASKS, err);
            if (rc == 0) {
                for (int t = 0; t < g->ntasks; t++) {
                    task_cleanup(&g->tasks[t]);
                }
                free(g->tasks);
                g->tasks =
                    dv_xcalloc(json_array_size(val) + 1, sizeof(*g->tasks));
                g->ntasks = 0;
                json_array_foreach(val, i, e)
                {
                    char pt[PATH_MAX_LEN];
                    path_index(pt, p, i);
                    g->ntasks++;
                    if (decode_task(e, pt, &g->tasks[i], err) < 0) {
                        return -1;
                    }
                }
            }
        } else {
            rc = unknown(path, key, err);
        }
        if (rc < 0) {
            return -1;
        }
    }
    path_key(p, path, "name");
    if (g->name == NULL) {
        return BAD(err, p, "is required");
    }
    if (!valid_name(g->name)) {
        return BAD(err, p, "must be 1 to %d letters, digits, '_', '-' or '.'",
                   NAME_MAX_LEN);
    }
    return 0;
}

/* --- the native spec --- */

struct dv_jobspec *
dv_jobspec_new(void)
{
    return dv_xcalloc(1, sizeof(struct dv_jobspec));
}

void
dv_jobspec_free(struct dv_jobspec *n)
{
    if (n == NULL) {
        return;
    }
    free_strv(n->datacenters, n->ndatacenters);
    free(n->node_pool);
    free_kv(n->meta, n->nmeta);
    rules_free(n->constraints, n->nconstraints);
    rules_free(n->affinities, n->naffinities);
    spread_free(n->spread, n->nspread);
    for (int i = 0; i < n->ngroups; i++) {
        group_cleanup(&n->groups[i]);
    }
    free(n->groups);
    free(n);
}

static const char *const native_keys[] = {
    "datacenters", "node_pool", "meta",   "constraints",
    "affinities",  "spread",    "groups", NULL,
};

int
dv_jobspec_is_key(const char *key)
{
    for (int i = 0; native_keys[i] != NULL; i++) {
        if (strcmp(key, native_keys[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int
dv_jobspec_decode_key(struct dv_jobspec *n, const char *key, const json_t *v,
                      struct dv_err *err)
{
    if (strcmp(key, "datacenters") == 0) {
        if (get_strv(v, key, DV_JOBSPEC_MAX_DCS, 128, &n->datacenters,
                     &n->ndatacenters, err) < 0) {
            return -1;
        }
        for (int i = 0; i < n->ndatacenters; i++) {
            if (n->datacenters[i][0] == '\0' ||
                strpbrk(n->datacenters[i], " \t\n\r,") != NULL) {
                char p[PATH_MAX_LEN];
                path_index(p, key, (size_t)i);
                return BAD(err, p,
                           "must be a datacenter name (no blanks or "
                           "commas)");
            }
        }
        return 0;
    }
    if (strcmp(key, "node_pool") == 0) {
        if (get_str(v, key, NAME_MAX_LEN, &n->node_pool, err) < 0) {
            return -1;
        }
        if (!valid_name(n->node_pool)) {
            return BAD(err, key,
                       "must be 1 to %d letters, digits, '_', '-' or '.'",
                       NAME_MAX_LEN);
        }
        return 0;
    }
    if (strcmp(key, "meta") == 0) {
        return get_map(v, key, DV_JOBSPEC_MAX_META, META_KEY_MAX, &n->meta,
                       &n->nmeta, err);
    }
    if (strcmp(key, "constraints") == 0) {
        return decode_rules(v, key, 0, &n->constraints, &n->nconstraints, err);
    }
    if (strcmp(key, "affinities") == 0) {
        return decode_rules(v, key, 1, &n->affinities, &n->naffinities, err);
    }
    if (strcmp(key, "spread") == 0) {
        return decode_spread(v, key, &n->spread, &n->nspread, err);
    }
    if (strcmp(key, "groups") == 0) {
        size_t i;
        json_t *e;

        if (get_array(v, key, DV_JOBSPEC_MAX_GROUPS, err) < 0) {
            return -1;
        }
        for (int g = 0; g < n->ngroups; g++) {
            group_cleanup(&n->groups[g]);
        }
        free(n->groups);
        n->groups = dv_xcalloc(json_array_size(v) + 1, sizeof(*n->groups));
        n->ngroups = 0;
        n->has_groups = 1;
        json_array_foreach(v, i, e)
        {
            char p[PATH_MAX_LEN];
            path_index(p, key, i);
            group_init(&n->groups[i]);
            n->ngroups++;
            if (decode_group(e, p, &n->groups[i], err) < 0) {
                return -1;
            }
        }
        return 0;
    }
    return unknown("", key, err);
}

/* --- normalisation --- */

static void
policy_defaults(struct dv_group *g, int batch)
{
    const struct dv_restart rs =
        batch ? (struct dv_restart){3, 86400, 15, DV_RESTART_FAIL}
              : (struct dv_restart){2, 1800, 15, DV_RESTART_FAIL};
    const struct dv_reschedule rc =
        batch ? (struct dv_reschedule){1, 86400, 5, 0}
              : (struct dv_reschedule){0, 3600, 30, 1};
    unsigned r = g->restart_given, s = g->reschedule_given;

    if (!(r & DV_GIVEN_ATTEMPTS)) {
        g->restart.attempts = rs.attempts;
    }
    if (!(r & DV_GIVEN_INTERVAL)) {
        g->restart.interval = rs.interval;
    }
    if (!(r & DV_GIVEN_DELAY)) {
        g->restart.delay = rs.delay;
    }
    if (!(r & DV_GIVEN_MODE)) {
        g->restart.mode = rs.mode;
    }
    if (!(s & DV_GIVEN_ATTEMPTS)) {
        g->reschedule.attempts = rc.attempts;
    }
    if (!(s & DV_GIVEN_INTERVAL)) {
        g->reschedule.interval = rc.interval;
    }
    if (!(s & DV_GIVEN_DELAY)) {
        g->reschedule.delay = rc.delay;
    }
    if (!(s & DV_GIVEN_UNLIMITED)) {
        /* Attempts given alone mean a limited policy. */
        g->reschedule.unlimited = (s & DV_GIVEN_ATTEMPTS) ? 0 : rc.unlimited;
    }
    /* Written out in full from now on: a stored spec decodes the same. */
    g->restart_given =
        DV_GIVEN_ATTEMPTS | DV_GIVEN_INTERVAL | DV_GIVEN_DELAY | DV_GIVEN_MODE;
    g->reschedule_given = DV_GIVEN_ATTEMPTS | DV_GIVEN_INTERVAL |
                          DV_GIVEN_DELAY | DV_GIVEN_UNLIMITED;
}

static int
check_meta(const struct dv_jobspec *n, struct dv_err *err)
{
    for (int i = 0; i < n->nmeta; i++) {
        char p[PATH_MAX_LEN];
        const char *k = n->meta[i].key;
        int64_t d;

        path_key(p, "meta", k);
        if (!dv_str_has_prefix(k, "drover.")) {
            continue;
        }
        if (strcmp(k, "drover.sim_runtime") != 0) {
            return BAD(err, p,
                       "unknown drover.* key (known: drover.sim_runtime)");
        }
        if (dv_jobspec_parse_duration(n->meta[i].value, &d) < 0) {
            return BAD(err, p,
                       "must be a duration: seconds, \"1h30m\" (units d h "
                       "m s) or \"HH:MM:SS\"");
        }
    }
    return 0;
}

int
dv_jobspec_normalize(struct dv_jobspec *n, const char *type, const char *owner,
                     struct dv_resreq *rr, struct dv_err *err)
{
    int batch = strcmp(type, "batch") == 0;
    int system = strcmp(type, "system") == 0;
    int64_t ncpus = 0, mem = 0, ngpus = 0, nodect = 0, walltime = 0;
    char p[PATH_MAX_LEN];

    if (!batch && !system && strcmp(type, "service") != 0) {
        return BAD(err, "type",
                   "must be \"batch\", \"service\" or \"system\" (not "
                   "\"%.32s\")",
                   type);
    }
    if (!n->has_groups || n->ngroups == 0) {
        return BAD(err, "groups", "a native job needs at least one group");
    }
    if (n->node_pool == NULL) {
        n->node_pool = dv_xstrdup("default");
    }
    if (check_meta(n, err) < 0) {
        return -1;
    }
    for (int i = 0; i < n->ngroups; i++) {
        struct dv_group *g = &n->groups[i];
        char gp[PATH_MAX_LEN];

        path_index(gp, "groups", (size_t)i);
        for (int j = 0; j < i; j++) {
            if (strcmp(n->groups[j].name, g->name) == 0) {
                path_key(p, gp, "name");
                return BAD(err, p, "group \"%s\" is given twice", g->name);
            }
        }
        if (system) {
            g->count = 1; /* one per eligible node */
        }
        path_key(p, gp, "tasks");
        if (g->ntasks == 0) {
            return BAD(err, p, "a group needs at least one task");
        }
        for (int t = 0; t < g->ntasks; t++) {
            for (int u = 0; u < t; u++) {
                if (strcmp(g->tasks[u].name, g->tasks[t].name) == 0) {
                    char tp[PATH_MAX_LEN], tn[PATH_MAX_LEN];
                    path_index(tp, p, (size_t)t);
                    path_key(tn, tp, "name");
                    return BAD(err, tn, "task \"%s\" is given twice",
                               g->tasks[t].name);
                }
            }
            if (g->tasks[t].user == NULL) {
                g->tasks[t].user = dv_xstrdup(owner);
            }
        }
        policy_defaults(g, batch);
        ncpus += (int64_t)g->count * g->cores;
        ngpus += (int64_t)g->count * g->gpus;
        /* count * memory may pass 2^63 (2^17 * 2^50): bound the sum. */
        if (g->memory > 0 && g->count > (INT64_MAX / 4 - mem) / g->memory) {
            path_key(p, gp, "resources.memory");
            return TOO_LARGE(err, p, "count times memory is too large");
        }
        mem += (int64_t)g->count * g->memory;
        nodect += g->count;
        if (g->walltime > walltime) {
            walltime = g->walltime;
        }
    }
    if (nodect > DV_JOBSPEC_MAX_TOTAL) {
        return TOO_LARGE(err, "groups",
                         "the job has more than %d instances in all",
                         DV_JOBSPEC_MAX_TOTAL);
    }
    if (ncpus > INT_MAX || ngpus > INT_MAX) {
        return TOO_LARGE(err, "groups",
                         "the job asks for more than %d cores or GPUs in all",
                         INT_MAX);
    }
    memset(rr, 0, sizeof(*rr));
    rr->ncpus = (int)ncpus;
    rr->mem = mem;
    rr->ngpus = (int)ngpus;
    rr->nodect = system ? 0 : (int)nodect;
    rr->walltime = walltime;
    rr->place = DV_PLACE_FREE;
    return 0;
}

int
dv_jobspec_check_users(const struct dv_jobspec *n, const char *owner,
                       struct dv_err *err)
{
    for (int i = 0; i < n->ngroups; i++) {
        for (int t = 0; t < n->groups[i].ntasks; t++) {
            const char *u = n->groups[i].tasks[t].user;
            if (u != NULL && strcmp(u, owner) != 0) {
                dv_err_set(err, DV_EFORBIDDEN, "forbidden",
                           "groups[%d].tasks[%d].user: a task may run only "
                           "as the job's owner \"%.64s\" unless root submits "
                           "it",
                           i, t, owner);
                return -1;
            }
        }
    }
    return 0;
}

/* --- encoding --- */

static json_t *
duration_json(int64_t s)
{
    char buf[64];

    dv_jobspec_format_duration(s, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *
size_json(int64_t b)
{
    char buf[64];

    dv_format_size(b, buf, sizeof(buf));
    return json_string(buf);
}

static void
rules_append(json_t *a, const struct dv_rule *r, int n, int affinity)
{
    for (int i = 0; i < n; i++) {
        json_t *o = json_object();

        if (r[i].attribute != NULL) {
            json_object_set_new(o, "attribute", json_string(r[i].attribute));
        }
        json_object_set_new(o, "operator", json_string(dv_op_name(r[i].op)));
        if (r[i].value != NULL) {
            json_object_set_new(o, "value", json_string(r[i].value));
        }
        if (affinity) {
            json_object_set_new(o, "weight", json_integer(r[i].weight));
        }
        json_array_append_new(a, o);
    }
}

static void
spread_append(json_t *a, const struct dv_spread *s, int n)
{
    for (int i = 0; i < n; i++) {
        json_t *t = json_array();

        for (int k = 0; k < s[i].ntargets; k++) {
            json_array_append_new(t, json_pack("{s:s, s:i}", "value",
                                               s[i].targets[k].value, "percent",
                                               s[i].targets[k].percent));
        }
        json_array_append_new(a, json_pack("{s:s, s:i, s:o}", "attribute",
                                           s[i].attribute, "weight",
                                           s[i].weight, "targets", t));
    }
}

static json_t *
rules_json(const struct dv_rule *r, int n, int affinity)
{
    json_t *a = json_array();

    rules_append(a, r, n, affinity);
    return a;
}

static json_t *
spread_json(const struct dv_spread *s, int n)
{
    json_t *a = json_array();

    spread_append(a, s, n);
    return a;
}

static json_t *
task_json(const struct dv_task *t)
{
    json_t *o = json_object();
    json_t *args = json_array();
    json_t *env = json_object();

    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "command", json_string(t->command));
    for (int i = 0; i < t->nargs; i++) {
        json_array_append_new(args, json_string(t->args[i]));
    }
    json_object_set_new(o, "args", args);
    for (int i = 0; i < t->nenv; i++) {
        json_object_set_new(env, t->env[i].key, json_string(t->env[i].value));
    }
    json_object_set_new(o, "env", env);
    if (t->user != NULL) {
        json_object_set_new(o, "user", json_string(t->user));
    }
    return o;
}

static json_t *
group_json(const struct dv_group *g)
{
    json_t *o = json_object();
    json_t *restart = json_object();
    json_t *resched = json_object();
    json_t *tasks = json_array();

    json_object_set_new(o, "name", json_string(g->name));
    json_object_set_new(o, "count", json_integer(g->count));
    json_object_set_new(o, "constraints",
                        rules_json(g->constraints, g->nconstraints, 0));
    json_object_set_new(o, "affinities",
                        rules_json(g->affinities, g->naffinities, 1));
    json_object_set_new(o, "spread", spread_json(g->spread, g->nspread));
    if (g->restart_given & DV_GIVEN_ATTEMPTS) {
        json_object_set_new(restart, "attempts",
                            json_integer(g->restart.attempts));
    }
    if (g->restart_given & DV_GIVEN_INTERVAL) {
        json_object_set_new(restart, "interval",
                            duration_json(g->restart.interval));
    }
    if (g->restart_given & DV_GIVEN_DELAY) {
        json_object_set_new(restart, "delay", duration_json(g->restart.delay));
    }
    if (g->restart_given & DV_GIVEN_MODE) {
        json_object_set_new(restart, "mode",
                            json_string(g->restart.mode == DV_RESTART_DELAY
                                            ? "delay"
                                            : "fail"));
    }
    json_object_set_new(o, "restart", restart);
    if (g->reschedule_given & DV_GIVEN_ATTEMPTS) {
        json_object_set_new(resched, "attempts",
                            json_integer(g->reschedule.attempts));
    }
    if (g->reschedule_given & DV_GIVEN_INTERVAL) {
        json_object_set_new(resched, "interval",
                            duration_json(g->reschedule.interval));
    }
    if (g->reschedule_given & DV_GIVEN_DELAY) {
        json_object_set_new(resched, "delay",
                            duration_json(g->reschedule.delay));
    }
    if (g->reschedule_given & DV_GIVEN_UNLIMITED) {
        json_object_set_new(resched, "unlimited",
                            json_boolean(g->reschedule.unlimited));
    }
    json_object_set_new(o, "reschedule", resched);
    json_object_set_new(o, "resources",
                        json_pack("{s:i, s:o, s:i, s:o, s:s}", "cores",
                                  g->cores, "memory", size_json(g->memory),
                                  "gpus", g->gpus, "disk", size_json(g->disk),
                                  "numa", dv_numa_name(g->numa)));
    json_object_set_new(o, "walltime", duration_json(g->walltime));
    for (int i = 0; i < g->ntasks; i++) {
        json_array_append_new(tasks, task_json(&g->tasks[i]));
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}

void
dv_jobspec_to_json(const struct dv_jobspec *n, json_t *o)
{
    json_t *dcs = json_array();
    json_t *meta = json_object();
    json_t *groups = json_array();

    for (int i = 0; i < n->ndatacenters; i++) {
        json_array_append_new(dcs, json_string(n->datacenters[i]));
    }
    json_object_set_new(o, "datacenters", dcs);
    if (n->node_pool != NULL) {
        json_object_set_new(o, "node_pool", json_string(n->node_pool));
    }
    for (int i = 0; i < n->nmeta; i++) {
        json_object_set_new(meta, n->meta[i].key,
                            json_string(n->meta[i].value));
    }
    json_object_set_new(o, "meta", meta);
    json_object_set_new(o, "constraints",
                        rules_json(n->constraints, n->nconstraints, 0));
    json_object_set_new(o, "affinities",
                        rules_json(n->affinities, n->naffinities, 1));
    json_object_set_new(o, "spread", spread_json(n->spread, n->nspread));
    for (int i = 0; i < n->ngroups; i++) {
        json_array_append_new(groups, group_json(&n->groups[i]));
    }
    json_object_set_new(o, "groups", groups);
}

/* --- placement --- */

static json_t *
placement_group(const char *name, int count, int cores, int64_t memory,
                int gpus, int64_t disk, enum dv_numa numa, int64_t walltime,
                json_t *constraints, json_t *affinities, json_t *spread)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "count", json_integer(count));
    json_object_set_new(o, "cores", json_integer(cores));
    json_object_set_new(o, "memory", json_integer(memory));
    json_object_set_new(o, "gpus", json_integer(gpus));
    json_object_set_new(o, "disk", json_integer(disk));
    json_object_set_new(o, "numa", json_string(dv_numa_name(numa)));
    json_object_set_new(o, "walltime", json_integer(walltime));
    json_object_set_new(o, "constraints", constraints);
    json_object_set_new(o, "affinities", affinities);
    json_object_set_new(o, "spread", spread);
    return o;
}

json_t *
dv_jobspec_placement_json(const struct dv_jobspec *n, const char *type)
{
    json_t *o = json_object();
    json_t *dcs = json_array();
    json_t *groups = json_array();
    const char *pool = n->node_pool != NULL ? n->node_pool : "default";

    (void)type; /* system jobs: count is already 1 (per node) */
    json_object_set_new(o, "gang", json_false());
    json_object_set_new(o, "place", json_string("free"));
    json_object_set_new(o, "exclusive", json_false());
    for (int i = 0; i < n->ndatacenters; i++) {
        json_array_append_new(dcs, json_string(n->datacenters[i]));
    }
    json_object_set_new(o, "datacenters", dcs);
    json_object_set_new(
        o, "pool", strcmp(pool, "all") == 0 ? json_null() : json_string(pool));
    for (int i = 0; i < n->ngroups; i++) {
        const struct dv_group *g = &n->groups[i];
        json_t *c = json_array(), *a = json_array(), *s = json_array();

        rules_append(c, n->constraints, n->nconstraints, 0);
        rules_append(c, g->constraints, g->nconstraints, 0);
        rules_append(a, n->affinities, n->naffinities, 1);
        rules_append(a, g->affinities, g->naffinities, 1);
        spread_append(s, n->spread, n->nspread);
        spread_append(s, g->spread, g->nspread);
        json_t *pg =
            placement_group(g->name, g->count, g->cores, g->memory, g->gpus,
                            g->disk, g->numa, g->walltime, c, a, s);

        /* What the schedulers need to decide on replacements (seconds). */
        json_object_set_new(pg, "reschedule",
                            json_pack("{s:i, s:I, s:I, s:b}", "attempts",
                                      g->reschedule.attempts, "interval",
                                      (json_int_t)g->reschedule.interval,
                                      "delay", (json_int_t)g->reschedule.delay,
                                      "unlimited", g->reschedule.unlimited));
        json_array_append_new(groups, pg);
    }
    json_object_set_new(o, "groups", groups);
    return o;
}

json_t *
dv_jobspec_pbs_placement_json(const struct dv_resreq *rr)
{
    json_t *o = json_object();
    json_t *groups = json_array();

    json_object_set_new(o, "gang", json_true());
    json_object_set_new(o, "place", json_string(dv_place_name(rr->place)));
    json_object_set_new(o, "exclusive", json_boolean(rr->excl));
    json_object_set_new(o, "datacenters", json_array());
    json_object_set_new(o, "pool", json_null());
    for (int i = 0; i < rr->nkinds; i++) {
        const struct dv_chunk *c = &rr->kinds[i];
        char name[32];

        json_t *cons = json_array();

        snprintf(name, sizeof(name), "chunk%d", i);
        if (c->host[0] != '\0') {
            /* host=: the node registered under that name */
            json_array_append_new(
                cons, json_pack("{s:s, s:s, s:s}", "attribute", "${node.name}",
                                "operator", "=", "value", c->host));
        }
        json_array_append_new(
            groups, placement_group(name, c->count, c->ncpus, c->mem, c->ngpus,
                                    0, DV_NUMA_PREFER, rr->walltime, cons,
                                    json_array(), json_array()));
    }
    json_object_set_new(o, "groups", groups);
    return o;
}

json_t *
dv_jobspec_resource_list_json(const struct dv_resreq *rr)
{
    json_t *o = json_object();
    char text[64];

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
    if (rr->walltime > 0) {
        dv_format_hms(rr->walltime, text, sizeof(text));
        json_object_set_new(o, "walltime", json_string(text));
    }
    return o;
}
