/*
 * Job arrays: PBS index ranges ("1-100:2%5"), their text forms for
 * qstat, and array/subjob ids ("124[]", "124[7]", "124[1-5]").
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lib/array.h"
#include "lib/mem.h"

/* Reads digits at *p into *v (at most DV_ARRAY_MAX_INDEX). */
static int
read_num(const char **p, int64_t *v)
{
    const char *s = *p;
    int64_t n = 0;

    if (!isdigit((unsigned char)*s)) {
        return -1;
    }
    while (isdigit((unsigned char)*s)) {
        n = n * 10 + (*s - '0');
        if (n > DV_ARRAY_MAX_INDEX) {
            return -1;
        }
        s++;
    }
    *p = s;
    *v = n;
    return 0;
}

int
dv_array_parse(const char *s, struct dv_array *a)
{
    const char *p = s;
    int64_t x, y, z = 1, m = 0;

    if (s == NULL || read_num(&p, &x) < 0 || *p++ != '-' ||
        read_num(&p, &y) < 0 || y <= x) {
        return -1;
    }
    if (*p == ':') {
        p++;
        if (read_num(&p, &z) < 0 || z < 1) {
            return -1;
        }
    }
    if (*p == '%') {
        p++;
        if (read_num(&p, &m) < 0 || m < 1) {
            return -1;
        }
    }
    if (*p != '\0') {
        return -1;
    }
    a->first = (int)x;
    a->last = (int)y;
    a->step = (int)z;
    a->max_run = (int)m;
    if (dv_array_count(a) > DV_ARRAY_MAX_SIZE) {
        return -1;
    }
    return 0;
}

int
dv_array_count(const struct dv_array *a)
{
    if (a->step < 1 || a->last < a->first) {
        return 0;
    }
    return (int)(((int64_t)a->last - a->first) / a->step + 1);
}

int
dv_array_has(const struct dv_array *a, int64_t i)
{
    return i >= a->first && i <= a->last && a->step >= 1 &&
           (i - a->first) % a->step == 0;
}

void
dv_array_format(const struct dv_array *a, struct dv_buf *out)
{
    dv_buf_printf(out, "%d-%d", a->first, a->last);
    if (a->step != 1) {
        dv_buf_printf(out, ":%d", a->step);
    }
}

int
dv_array_id_bracket(const char *p, enum dv_array_part *part, int *lo, int *hi,
                    const char **end)
{
    int64_t a, b;
    int range = 0;

    *part = DV_ARRAY_NONE;
    *lo = *hi = 0;
    *end = p;
    if (*p != '[') {
        return 0;
    }
    p++;
    if (*p == ']') {
        *part = DV_ARRAY_WHOLE;
        *end = p + 1;
        return 0;
    }
    if (read_num(&p, &a) < 0) {
        return -1;
    }
    b = a;
    if (*p == '-') {
        p++;
        range = 1;
        if (read_num(&p, &b) < 0 || b < a) {
            return -1;
        }
    }
    if (*p != ']') {
        return -1;
    }
    *part = range ? DV_ARRAY_RANGE : DV_ARRAY_ONE;
    *lo = (int)a;
    *hi = (int)b;
    *end = p + 1;
    return 0;
}

void
dv_array_id_format(long long seq, enum dv_array_part part, int lo, int hi,
                   const char *server, char *buf, size_t size)
{
    char br[48] = "";
    int has_server = server != NULL && server[0] != '\0';

    if (part == DV_ARRAY_WHOLE) {
        snprintf(br, sizeof(br), "[]");
    } else if (part == DV_ARRAY_ONE) {
        snprintf(br, sizeof(br), "[%d]", lo);
    } else if (part == DV_ARRAY_RANGE) {
        snprintf(br, sizeof(br), "[%d-%d]", lo, hi);
    }
    snprintf(buf, size, "%lld%s%s%s", seq, br, has_server ? "." : "",
             has_server ? server : "");
}
