/* PBS sizes, durations, select specifications and Resource_List checks. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/resources.h"
#include "lib/strutil.h"

int
dv_parse_size(const char *s, int64_t *bytes)
{
    const char *p = s;
    uint64_t v = 0, mult = 1;

    if (s == NULL || !isdigit((unsigned char)*p)) {
        return -1;
    }
    while (isdigit((unsigned char)*p)) {
        if (v > (UINT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    switch (tolower((unsigned char)*p)) {
    case 'k':
        mult = 1ULL << 10;
        p++;
        break;
    case 'm':
        mult = 1ULL << 20;
        p++;
        break;
    case 'g':
        mult = 1ULL << 30;
        p++;
        break;
    case 't':
        mult = 1ULL << 40;
        p++;
        break;
    case 'p':
        mult = 1ULL << 50;
        p++;
        break;
    default:
        break;
    }
    if (tolower((unsigned char)*p) == 'b') {
        p++;
    } else if (tolower((unsigned char)*p) == 'w') {
        mult *= 8;
        p++;
    }
    if (*p != '\0') {
        return -1;
    }
    if (v != 0 && mult > (uint64_t)INT64_MAX / v) {
        return -1;
    }
    *bytes = (int64_t)(v * mult);
    return 0;
}

void
dv_format_size(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"b", "kb", "mb", "gb", "tb", "pb"};
    int u = 0;

    while (u < 5 && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, size, "%lld%s", (long long)bytes, units[u]);
}

int
dv_parse_walltime(const char *s, int64_t *seconds)
{
    int64_t parts[3] = {0, 0, 0};
    int n = 0;
    const char *p = s;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    for (;;) {
        int64_t v = 0;
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        while (isdigit((unsigned char)*p)) {
            if (v > 100000000000LL) {
                return -1;
            }
            v = v * 10 + (*p - '0');
            p++;
        }
        if (n == 3) {
            return -1;
        }
        parts[n++] = v;
        if (*p == ':') {
            p++;
            continue;
        }
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p)) {
                return -1;
            }
            while (isdigit((unsigned char)*p)) {
                p++;
            }
        }
        break;
    }
    if (*p != '\0') {
        return -1;
    }
    if (n == 1) {
        *seconds = parts[0];
    } else if (n == 2) {
        if (parts[1] > 59) {
            return -1;
        }
        *seconds = parts[0] * 60 + parts[1];
    } else {
        if (parts[1] > 59 || parts[2] > 59) {
            return -1;
        }
        *seconds = parts[0] * 3600 + parts[1] * 60 + parts[2];
    }
    return 0;
}

void
dv_format_hms(int64_t seconds, char *buf, size_t size)
{
    if (seconds < 0) {
        seconds = 0;
    }
    snprintf(buf, size, "%02lld:%02lld:%02lld", (long long)(seconds / 3600),
             (long long)(seconds / 60 % 60), (long long)(seconds % 60));
}

static int
bad_value(struct dv_err *err, const char *name)
{
    dv_err_set(err, DV_EINVAL, "bad_resource_value",
               "Illegal attribute or resource value Resource_List.%s", name);
    return -1;
}

/* A host name as a chunk's host= value: letters, digits, '.', '-', '_',
 * starting with a letter or digit, shorter than the field. */
static int
host_set(struct dv_chunk *c, const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n >= sizeof(c->host) || !isalnum((unsigned char)v[0]) ||
        v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789.-_")] != '\0') {
        return -1;
    }
    memcpy(c->host, v, n + 1);
    return 0;
}

/* Parses "ncpus=4" style pieces of one chunk (already split on ':'). */
static int
chunk_set(struct dv_chunk *c, const char *piece, struct dv_err *err)
{
    const char *eq = strchr(piece, '=');
    char name[32];
    size_t nlen;
    int64_t v;

    if (eq == NULL || eq == piece) {
        return bad_value(err, "select");
    }
    nlen = (size_t)(eq - piece);
    if (nlen >= sizeof(name)) {
        return bad_value(err, "select");
    }
    memcpy(name, piece, nlen);
    name[nlen] = '\0';
    if (strcasecmp(name, "ncpus") == 0) {
        if (dv_parse_i64(eq + 1, 0, DV_MAX_NCPUS, &v) < 0) {
            return bad_value(err, "select");
        }
        c->ncpus = (int)v;
    } else if (strcasecmp(name, "mem") == 0) {
        if (dv_parse_size(eq + 1, &v) < 0 || v > DV_MAX_MEM) {
            return bad_value(err, "select");
        }
        c->mem = v;
    } else if (strcasecmp(name, "ngpus") == 0) {
        if (dv_parse_i64(eq + 1, 0, 1024, &v) < 0) {
            return bad_value(err, "select");
        }
        c->ngpus = (int)v;
    } else if (strcasecmp(name, "mpiprocs") == 0) {
        if (dv_parse_i64(eq + 1, 0, DV_MAX_NCPUS, &v) < 0) {
            return bad_value(err, "select");
        }
        c->mpiprocs = (int)v;
    } else if (strcasecmp(name, "ompthreads") == 0) {
        if (dv_parse_i64(eq + 1, 0, DV_MAX_NCPUS, &v) < 0) {
            return bad_value(err, "select");
        }
        c->ompthreads = (int)v;
    } else if (strcasecmp(name, "host") == 0) {
        if (host_set(c, eq + 1) < 0) {
            return bad_value(err, "select");
        }
    } else {
        dv_err_set(err, DV_EINVAL, "unknown_resource",
                   "Unknown resource Resource_List.%s", name);
        return -1;
    }
    return 0;
}

int
dv_select_parse(const char *s, struct dv_resreq *rr, struct dv_err *err)
{
    char *copy, *kind, *save_kind = NULL;
    int rc = -1;

    if (s == NULL || *s == '\0' || strlen(s) > 4096) {
        return bad_value(err, "select");
    }
    copy = dv_xstrdup(s);
    rr->nkinds = 0;
    for (kind = strtok_r(copy, "+", &save_kind); kind != NULL;
         kind = strtok_r(NULL, "+", &save_kind)) {
        struct dv_chunk c = {.count = 1, .ncpus = 1};
        char *piece, *save_piece = NULL;
        int first = 1;

        if (rr->nkinds == DV_MAX_CHUNK_KINDS) {
            bad_value(err, "select");
            goto out;
        }
        for (piece = strtok_r(kind, ":", &save_piece); piece != NULL;
             piece = strtok_r(NULL, ":", &save_piece), first = 0) {
            if (first && isdigit((unsigned char)piece[0])) {
                int64_t n;
                if (dv_parse_i64(piece, 1, DV_MAX_CHUNKS, &n) < 0) {
                    bad_value(err, "select");
                    goto out;
                }
                c.count = (int)n;
                continue;
            }
            if (chunk_set(&c, piece, err) < 0) {
                goto out;
            }
        }
        rr->kinds[rr->nkinds++] = c;
    }
    if (rr->nkinds == 0) {
        bad_value(err, "select");
        goto out;
    }
    /* '+' at either end or doubled leaves an empty kind strtok skipped. */
    if (s[0] == '+' || s[strlen(s) - 1] == '+' || strstr(s, "++") != NULL ||
        strstr(s, "::") != NULL || s[strlen(s) - 1] == ':') {
        bad_value(err, "select");
        goto out;
    }
    dv_resreq_finish(rr);
    if (rr->nodect > DV_MAX_CHUNKS || rr->ncpus > DV_MAX_NCPUS) {
        bad_value(err, "select");
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

void
dv_select_format(const struct dv_resreq *rr, struct dv_buf *out)
{
    char size[32];

    for (int i = 0; i < rr->nkinds; i++) {
        const struct dv_chunk *c = &rr->kinds[i];
        if (i > 0) {
            dv_buf_putc(out, '+');
        }
        dv_buf_printf(out, "%d:ncpus=%d", c->count, c->ncpus);
        if (c->mem > 0) {
            dv_format_size(c->mem, size, sizeof(size));
            dv_buf_printf(out, ":mem=%s", size);
        }
        if (c->ngpus > 0) {
            dv_buf_printf(out, ":ngpus=%d", c->ngpus);
        }
        if (c->mpiprocs > 0) {
            dv_buf_printf(out, ":mpiprocs=%d", c->mpiprocs);
        }
        if (c->ompthreads > 0) {
            dv_buf_printf(out, ":ompthreads=%d", c->ompthreads);
        }
        if (c->host[0] != '\0') {
            dv_buf_printf(out, ":host=%s", c->host);
        }
    }
}

int
dv_nodes_parse(const char *s, struct dv_resreq *rr, struct dv_err *err)
{
    char *copy, *part, *save_part = NULL;
    size_t len = s != NULL ? strlen(s) : 0;
    int rc = -1;

    if (len == 0 || len > 4096 || s[0] == '+' || s[len - 1] == '+' ||
        s[len - 1] == ':' || strstr(s, "++") != NULL ||
        strstr(s, "::") != NULL) {
        return bad_value(err, "nodes");
    }
    copy = dv_xstrdup(s);
    rr->nkinds = 0;
    for (part = strtok_r(copy, "+", &save_part); part != NULL;
         part = strtok_r(NULL, "+", &save_part)) {
        struct dv_chunk c = {.count = 1, .ncpus = 1, .mpiprocs = 1};
        char *piece, *save_piece = NULL;
        int first = 1;
        int64_t n;

        if (rr->nkinds == DV_MAX_CHUNK_KINDS) {
            bad_value(err, "nodes");
            goto out;
        }
        for (piece = strtok_r(part, ":", &save_piece); piece != NULL;
             piece = strtok_r(NULL, ":", &save_piece), first = 0) {
            if (first && isdigit((unsigned char)piece[0])) {
                if (dv_parse_i64(piece, 1, DV_MAX_CHUNKS, &n) < 0) {
                    bad_value(err, "nodes");
                    goto out;
                }
                c.count = (int)n;
            } else if (strncasecmp(piece, "ppn=", 4) == 0) {
                if (dv_parse_i64(piece + 4, 1, DV_MAX_NCPUS, &n) < 0) {
                    bad_value(err, "nodes");
                    goto out;
                }
                c.ncpus = c.mpiprocs = (int)n;
            } else if (first && host_set(&c, piece) == 0) {
                continue; /* a host: one chunk on it */
            } else {
                /* Node properties ("2:gpu") are not supported. */
                bad_value(err, "nodes");
                goto out;
            }
        }
        rr->kinds[rr->nkinds++] = c;
    }
    dv_resreq_finish(rr);
    if (rr->nkinds == 0 || rr->nodect > DV_MAX_CHUNKS ||
        rr->ncpus > DV_MAX_NCPUS) {
        bad_value(err, "nodes");
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

const struct dv_chunk *
dv_resreq_chunk(const struct dv_resreq *rr, int index)
{
    for (int i = 0; i < rr->nkinds && index >= 0; i++) {
        if (index < rr->kinds[i].count) {
            return &rr->kinds[i];
        }
        index -= rr->kinds[i].count;
    }
    return NULL;
}

void
dv_resreq_finish(struct dv_resreq *rr)
{
    rr->ncpus = 0;
    rr->mem = 0;
    rr->ngpus = 0;
    rr->nodect = 0;
    for (int i = 0; i < rr->nkinds; i++) {
        const struct dv_chunk *c = &rr->kinds[i];
        rr->ncpus += c->count * c->ncpus;
        rr->mem += (int64_t)c->count * c->mem;
        rr->ngpus += c->count * c->ngpus;
        rr->nodect += c->count;
    }
}

const char *
dv_place_name(enum dv_place p)
{
    switch (p) {
    case DV_PLACE_PACK:
        return "pack";
    case DV_PLACE_SCATTER:
        return "scatter";
    case DV_PLACE_FREE:
        break;
    }
    return "free";
}

static int
parse_place(const char *v, struct dv_resreq *rr, struct dv_err *err)
{
    char *copy = dv_xstrdup(v), *piece, *save = NULL;
    int rc = -1;

    for (piece = strtok_r(copy, ":", &save); piece != NULL;
         piece = strtok_r(NULL, ":", &save)) {
        if (strcmp(piece, "free") == 0) {
            rr->place = DV_PLACE_FREE;
        } else if (strcmp(piece, "pack") == 0) {
            rr->place = DV_PLACE_PACK;
        } else if (strcmp(piece, "scatter") == 0) {
            rr->place = DV_PLACE_SCATTER;
        } else if (strcmp(piece, "excl") == 0) {
            rr->excl = 1;
        } else if (strcmp(piece, "shared") == 0) {
            rr->excl = 0;
        } else {
            bad_value(err, "place");
            goto out;
        }
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

int
dv_resreq_from_list(const struct dv_kv *list, int n, struct dv_resreq *rr,
                    struct dv_err *err)
{
    struct dv_chunk job_wide = {.count = 1, .ncpus = 1};
    int has_select = 0, has_job_wide = 0, has_place = 0, has_nodes = 0;
    int64_t v;

    memset(rr, 0, sizeof(*rr));
    for (int i = 0; i < n; i++) {
        const char *k = list[i].key, *val = list[i].value;

        if (val == NULL) {
            return bad_value(err, k);
        }
        if (strcmp(k, "walltime") == 0) {
            if (dv_parse_walltime(val, &v) < 0) {
                return bad_value(err, k);
            }
            rr->walltime = v;
        } else if (strcmp(k, "select") == 0) {
            if (dv_select_parse(val, rr, err) < 0) {
                return -1;
            }
            has_select = 1;
        } else if (strcmp(k, "nodes") == 0) {
            if (dv_nodes_parse(val, rr, err) < 0) {
                return -1;
            }
            has_nodes = 1;
        } else if (strcmp(k, "place") == 0) {
            if (parse_place(val, rr, err) < 0) {
                return -1;
            }
            has_place = 1;
        } else if (strcmp(k, "ncpus") == 0) {
            if (dv_parse_i64(val, 1, DV_MAX_NCPUS, &v) < 0) {
                return bad_value(err, k);
            }
            job_wide.ncpus = (int)v;
            has_job_wide = 1;
        } else if (strcmp(k, "mem") == 0) {
            if (dv_parse_size(val, &v) < 0 || v > DV_MAX_MEM) {
                return bad_value(err, k);
            }
            job_wide.mem = v;
            has_job_wide = 1;
        } else if (strcmp(k, "ngpus") == 0) {
            if (dv_parse_i64(val, 0, 1024, &v) < 0) {
                return bad_value(err, k);
            }
            job_wide.ngpus = (int)v;
            has_job_wide = 1;
        } else {
            dv_err_set(err, DV_EINVAL, "unknown_resource",
                       "Unknown resource Resource_List.%s", k);
            return -1;
        }
    }
    if (has_select && has_job_wide) {
        dv_err_set(err, DV_EINVAL, "bad_resource_value",
                   "\"-lresource=\" cannot be used with \"select\" or "
                   "\"place\", resource is: %s",
                   job_wide.mem > 0 ? "mem" : "ncpus");
        return -1;
    }
    if ((has_select || has_job_wide) && has_nodes) {
        dv_err_set(err, DV_EINVAL, "bad_resource_value",
                   "\"-lresource=\" cannot be used with \"select\" or "
                   "\"place\", resource is: nodes");
        return -1;
    }
    if (has_nodes) {
        /* Torque's nodes: one chunk per node (PBS converts to scatter). */
        if (!has_place) {
            rr->place = DV_PLACE_SCATTER;
        }
    } else if (!has_select) {
        rr->nkinds = 1;
        rr->kinds[0] = job_wide;
        if (!has_place) {
            rr->place = DV_PLACE_PACK;
        }
    }
    dv_resreq_finish(rr);
    return 0;
}

int
dv_resource_is_builtin(const char *name)
{
    /* Asks the parser itself, so that a resource it learns is built in
     * here too: only an unknown name fails with "unknown_resource" (a
     * known one may still reject the probe's value). */
    struct dv_kv probe = {(char *)name, (char *)"1"};
    struct dv_resreq rr;
    struct dv_err err;

    dv_err_clear(&err);
    if (dv_resreq_from_list(&probe, 1, &rr, &err) == 0) {
        return 1;
    }
    return err.code == NULL || strcmp(err.code, "unknown_resource") != 0;
}

static const char *const custom_types[] = {
    "string", "long", "float", "size", "boolean", "string_array", NULL};

int
dv_resource_type_valid(const char *type)
{
    for (int i = 0; type != NULL && custom_types[i] != NULL; i++) {
        if (strcmp(type, custom_types[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int
dv_resource_flags_valid(const char *flags)
{
    if (flags == NULL) {
        return 0;
    }
    for (const char *p = flags; *p != '\0'; p++) {
        if (strchr("fhimnqr", *p) == NULL || strchr(p + 1, *p) != NULL) {
            return 0;
        }
    }
    return 1;
}

static int
printable_text(const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if ((unsigned char)*p < ' ' || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

int
dv_resource_value_check(const char *type, const char *value, char *canon,
                        size_t size)
{
    int64_t i;
    int b;

    if (type == NULL || dv_str_empty(value) || strlen(value) > 4096 ||
        !printable_text(value)) {
        return -1;
    }
    if (strcmp(type, "long") == 0) {
        if (dv_parse_i64(value, INT64_MIN, INT64_MAX, &i) < 0) {
            return -1;
        }
    } else if (strcmp(type, "float") == 0) {
        char *end = NULL;
        double d;

        errno = 0;
        d = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || d != d) {
            return -1;
        }
    } else if (strcmp(type, "size") == 0) {
        if (dv_parse_size(value, &i) < 0) {
            return -1;
        }
        if (canon != NULL) {
            dv_format_size(i, canon, size);
            return 0;
        }
    } else if (strcmp(type, "boolean") == 0) {
        if (strcasecmp(value, "true") == 0 || strcasecmp(value, "t") == 0 ||
            strcasecmp(value, "y") == 0 || strcmp(value, "1") == 0) {
            b = 1;
        } else if (strcasecmp(value, "false") == 0 ||
                   strcasecmp(value, "f") == 0 ||
                   strcasecmp(value, "n") == 0 || strcmp(value, "0") == 0) {
            b = 0;
        } else {
            return -1;
        }
        if (canon != NULL) {
            dv_strlcpy(canon, b ? "True" : "False", size);
            return 0;
        }
    } else if (strcmp(type, "string_array") == 0) {
        /* a,b,c: no empty item */
        if (value[0] == ',' || value[strlen(value) - 1] == ',' ||
            strstr(value, ",,") != NULL) {
            return -1;
        }
    } else if (strcmp(type, "string") != 0) {
        return -1;
    }
    if (canon != NULL) {
        dv_strlcpy(canon, value, size);
    }
    return 0;
}
