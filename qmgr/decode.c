/*
 * Strict decoding of the request bodies that are not job specs (those are
 * lib/job.h's): node registration, allocation status batches and hold
 * types. Unknown fields, wrong types and out-of-range values are errors
 * that name the field. Pure, so that each rule is unit-tested.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/resources.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

static int bad(struct dv_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bad(struct dv_err *err, const char *fmt, ...)
{
    va_list ap;

    err->kind = DV_EINVAL;
    err->code = "invalid_request";
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int
want_string(const json_t *v, const char *key, size_t max, int null_ok,
            const char **out, struct dv_err *err)
{
    if (null_ok && (v == NULL || json_is_null(v))) {
        *out = NULL;
        return 0;
    }
    if (v == NULL || !json_is_string(v)) {
        return bad(err, "field \"%s\" must be a string", key);
    }
    if (json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "field \"%s\" must be a string of at most %zu bytes", key,
                   max);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int
want_int(const json_t *v, const char *key, int64_t min, int64_t max,
         int64_t *out, struct dv_err *err)
{
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "field \"%s\" must be an integer from %lld to %lld", key,
                   (long long)min, (long long)max);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int
unknown(struct dv_err *err, const char *where, const char *key)
{
    dv_err_set(err, DV_EINVAL, "invalid_request", "unknown field \"%.64s\"%s%s",
               key, where != NULL ? " in " : "", where != NULL ? where : "");
    return -1;
}

/* --- node registration --- */

static int
decode_resources(const json_t *res, struct db_node_reg *r, struct dv_err *err)
{
    const char *key;
    json_t *v;
    int64_t ignored;

    if (!json_is_object(res)) {
        return bad(err, "field \"%s\" must be an object", "resources");
    }
    r->cores = -1;
    r->memory = -1;
    json_object_foreach ((json_t *)res, key, v) {
        int rc;

        if (strcmp(key, "cores") == 0) {
            rc = want_int(v, key, 0, DV_MAX_NCPUS, &r->cores, err);
        } else if (strcmp(key, "memory") == 0) {
            rc = want_int(v, key, 0, INT64_MAX / 2, &r->memory, err);
        } else if (strcmp(key, "gpus") == 0) {
            rc = want_int(v, key, 0, 65536, &r->gpus, err);
        } else if (strcmp(key, "disk") == 0) {
            rc = want_int(v, key, 0, INT64_MAX / 2, &r->disk, err);
        } else if (strcmp(key, "pus") == 0 || strcmp(key, "numa_nodes") == 0 ||
                   strcmp(key, "packages") == 0) {
            rc = want_int(v, key, 0, 1 << 24, &ignored, err);
        } else {
            rc = unknown(err, "resources", key);
        }
        if (rc < 0) {
            return -1;
        }
    }
    if (r->cores < 0 || r->memory < 0) {
        return bad(err, "%s need \"cores\" and \"memory\"", "resources");
    }
    return 0;
}

void
node_reg_json_free(struct node_reg_json *t)
{
    free(t->topology);
    free(t->attributes);
    free(t->meta);
    memset(t, 0, sizeof(*t));
}

/* Node meta: a flat object of short strings, as Nomad's client meta. */
#define NODE_META_MAX_KEYS 64
#define NODE_META_MAX_KEY 128
#define NODE_META_MAX_VALUE 1024

static int
decode_meta(const json_t *v, char **out, struct dv_err *err)
{
    const char *k;
    json_t *s;

    if (json_is_null(v)) {
        return 0;
    }
    if (!json_is_object(v)) {
        return bad(err, "field \"%s\" must be an object", "meta");
    }
    if (json_object_size(v) > NODE_META_MAX_KEYS) {
        return bad(err, "field \"%s\" has more than %d keys", "meta",
                   NODE_META_MAX_KEYS);
    }
    json_object_foreach ((json_t *)v, k, s) {
        if (k[0] == '\0' || strlen(k) > NODE_META_MAX_KEY) {
            return bad(err, "meta keys must be 1 to %d bytes",
                       NODE_META_MAX_KEY);
        }
        if (!json_is_string(s) ||
            json_string_length(s) > NODE_META_MAX_VALUE) {
            return bad(err, "meta \"%.64s\" must be a string of at most %d "
                       "bytes", k, NODE_META_MAX_VALUE);
        }
    }
    free(*out);
    *out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    return 0;
}

int
decode_node_register(const json_t *body, struct db_node_reg *r,
                     struct node_reg_json *t, struct dv_err *err)
{
    const json_t *res = NULL;
    const char *key;
    json_t *v;

    memset(t, 0, sizeof(*t));
    r->node_class = NULL;
    if (!json_is_object(body)) {
        return bad(err, "the %s must be a JSON object", "body");
    }
    r->datacenter = "dc1";
    r->pool = "default";
    r->name = NULL;
    r->address = NULL;
    r->gpus = 0;
    r->disk = 0;
    json_object_foreach ((json_t *)body, key, v) {
        int rc = 0;

        if (strcmp(key, "name") == 0) {
            rc = want_string(v, key, 255, 0, &r->name, err);
        } else if (strcmp(key, "datacenter") == 0) {
            rc = want_string(v, key, 64, 0, &r->datacenter, err);
        } else if (strcmp(key, "pool") == 0) {
            rc = want_string(v, key, 64, 0, &r->pool, err);
        } else if (strcmp(key, "address") == 0) {
            rc = want_string(v, key, 255, 1, &r->address, err);
        } else if (strcmp(key, "node_class") == 0) {
            rc = want_string(v, key, 64, 1, &r->node_class, err);
        } else if (strcmp(key, "meta") == 0) {
            rc = decode_meta(v, &t->meta, err);
        } else if (strcmp(key, "resources") == 0) {
            res = v;
        } else if (strcmp(key, "topology") == 0 ||
                   strcmp(key, "attributes") == 0) {
            char **out = strcmp(key, "topology") == 0 ? &t->topology
                                                      : &t->attributes;

            if (!json_is_object(v) && !json_is_null(v)) {
                rc = bad(err, "field \"%s\" must be an object", key);
            } else if (json_is_object(v)) {
                free(*out);
                *out = json_dumps(v, JSON_COMPACT);
            }
        } else {
            rc = unknown(err, NULL, key);
        }
        if (rc < 0) {
            goto fail;
        }
    }
    if (!node_name_valid(r->name)) {
        bad(err,
            "field \"%s\" must be a host name (letters, digits, dots, "
            "dashes, underscores)",
            "name");
        goto fail;
    }
    if (dv_str_empty(r->datacenter) || dv_str_empty(r->pool)) {
        bad(err, "%s and pool must not be empty", "datacenter");
        goto fail;
    }
    if (res == NULL) {
        bad(err, "field \"%s\" is required", "resources");
        goto fail;
    }
    if (decode_resources(res, r, err) < 0) {
        goto fail;
    }
    if (dv_str_empty(r->node_class)) {
        r->node_class = NULL;
    }
    return 0;
fail:
    node_reg_json_free(t);
    return -1;
}

/* --- allocation status updates --- */

static int
decode_used(const json_t *v, struct alloc_update *u, struct dv_err *err)
{
    const char *key;
    json_t *x;

    if (json_is_null(v)) {
        return 0;
    }
    if (!json_is_object(v)) {
        return bad(err, "field \"%s\" must be an object", "resources_used");
    }
    json_object_foreach ((json_t *)v, key, x) {
        int rc;

        if (strcmp(key, "cput") == 0) {
            rc = want_int(x, key, 0, INT64_MAX / 2, &u->used_cput, err);
        } else if (strcmp(key, "walltime") == 0) {
            rc = want_int(x, key, 0, INT64_MAX / 2, &u->used_walltime, err);
        } else if (strcmp(key, "mem") == 0) {
            rc = want_int(x, key, 0, INT64_MAX / 2, &u->used_mem, err);
        } else {
            rc = unknown(err, "resources_used", key);
        }
        if (rc < 0) {
            return -1;
        }
    }
    u->has_used = 1;
    return 0;
}

static int
decode_update(const json_t *o, struct alloc_update *u, struct dv_err *err)
{
    const char *key, *s;
    json_t *v;
    int have_status = 0;

    if (!json_is_object(o)) {
        return bad(err, "each %s must be an object", "update");
    }
    u->id = -1;
    json_object_foreach ((json_t *)o, key, v) {
        int rc = 0;
        int64_t n;

        if (strcmp(key, "id") == 0) {
            rc = want_int(v, key, 1, INT64_MAX, &u->id, err);
        } else if (strcmp(key, "client_status") == 0) {
            rc = want_string(v, key, 16, 0, &s, err);
            if (rc == 0) {
                if (strcmp(s, "running") != 0 && strcmp(s, "complete") != 0 &&
                    strcmp(s, "failed") != 0 && strcmp(s, "lost") != 0) {
                    return bad(err,
                               "invalid client_status \"%s\": running, "
                               "complete, failed or lost expected",
                               s);
                }
                dv_strlcpy(u->status, s, sizeof(u->status));
                have_status = 1;
            }
        } else if (strcmp(key, "time") == 0) {
            if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
                json_number_value(v) < 0) {
                return bad(err, "field \"%s\" must be a Unix time", key);
            }
            u->time = json_number_value(v);
        } else if (strcmp(key, "exit_status") == 0) {
            if (!json_is_null(v)) {
                rc = want_int(v, key, -100000, 100000, &n, err);
                u->has_exit = 1;
                u->exit_status = (int)n;
            }
        } else if (strcmp(key, "message") == 0) {
            rc = want_string(v, key, 4096, 1, &s, err);
            if (rc == 0 && s != NULL) {
                free(u->message);
                u->message = dv_xstrdup(s);
            }
        } else if (strcmp(key, "resources_used") == 0) {
            rc = decode_used(v, u, err);
        } else {
            rc = unknown(err, "an update", key);
        }
        if (rc < 0) {
            return -1;
        }
    }
    if (u->id < 0 || !have_status) {
        return bad(err, "each update needs \"id\" and \"%s\"", "client_status");
    }
    return 0;
}

void
decode_updates_free(struct alloc_update *u, int n)
{
    if (u == NULL) {
        return;
    }
    for (int i = 0; i < n; i++) {
        free(u[i].message);
    }
    free(u);
}

int
decode_alloc_updates(const json_t *body, struct alloc_update **u, int *n,
                     struct dv_err *err)
{
    const json_t *updates;
    struct alloc_update *v;
    const char *key;
    json_t *x;
    size_t i;

    *u = NULL;
    *n = 0;
    if (!json_is_object(body)) {
        return bad(err, "the %s must be a JSON object", "body");
    }
    json_object_foreach ((json_t *)body, key, x) {
        if (strcmp(key, "updates") != 0) {
            return unknown(err, NULL, key);
        }
    }
    updates = json_object_get(body, "updates");
    if (!json_is_array(updates)) {
        return bad(err, "field \"%s\" must be an array", "updates");
    }
    if (json_array_size(updates) > QMGR_MAX_UPDATES) {
        dv_err_set(err, DV_ETOOLARGE, "too_large",
                   "at most %d updates per request", QMGR_MAX_UPDATES);
        return -1;
    }
    /* A bad update is marked and answered on its own: it must not block
     * the good ones of its batch. */
    v = dv_xcalloc(json_array_size(updates) + 1, sizeof(*v));
    json_array_foreach (updates, i, x) {
        dv_err_clear(&v[i].error);
        if (decode_update(x, &v[i], &v[i].error) < 0) {
            v[i].bad = 1;
        }
    }
    *u = v;
    *n = (int)json_array_size(updates);
    return 0;
}

/* --- hold types --- */

int
decode_hold_body(const json_t *body, unsigned *mask, struct dv_err *err)
{
    const char *key;
    json_t *v;

    *mask = 1u;
    if (body == NULL) {
        return 0;
    }
    if (!json_is_object(body)) {
        return bad(err, "the %s must be a JSON object", "body");
    }
    json_object_foreach ((json_t *)body, key, v) {
        if (strcmp(key, "hold_types") != 0) {
            return unknown(err, NULL, key);
        }
        if (!json_is_string(v) ||
            hold_types_parse(json_string_value(v), mask) < 0) {
            dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                       "Illegal attribute or resource value Hold_Types");
            return -1;
        }
    }
    return 0;
}

/* --- a node's eligibility or drain --- */

int
decode_node_flag(const json_t *body, const char *key, int *value,
                 int *set_comment, const char **comment, struct dv_err *err)
{
    const char *k;
    json_t *v;
    int seen = 0;

    *value = 0;
    *set_comment = 0;
    *comment = NULL;
    if (body == NULL) {
        return bad(err, "a body {\"%s\": true|false} is required", key);
    }
    if (!json_is_object(body)) {
        return bad(err, "the %s must be a JSON object", "body");
    }
    json_object_foreach ((json_t *)body, k, v) {
        if (strcmp(k, key) == 0) {
            if (!json_is_boolean(v)) {
                return bad(err, "field \"%s\" must be true or false", key);
            }
            *value = json_is_true(v);
            seen = 1;
        } else if (strcmp(k, "comment") == 0) {
            const char *s;

            if (want_string(v, "comment", QMGR_NODE_COMMENT_MAX, 1, &s, err) <
                0) {
                return -1;
            }
            for (const char *p = s; p != NULL && *p != '\0'; p++) {
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                    return bad(err, "field \"comment\" must not contain "
                                    "control characters");
                }
            }
            *set_comment = 1;
            *comment = s != NULL && *s != '\0' ? s : NULL;
        } else {
            return unknown(err, NULL, k);
        }
    }
    if (!seen) {
        return bad(err, "field \"%s\" is required (true or false)", key);
    }
    return 0;
}
