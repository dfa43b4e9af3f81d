/* Core index sets in hwloc list syntax, through hwloc bitmaps. */
#include <hwloc.h>
#include <stdlib.h>

#include "lib/cpuset.h"
#include "lib/mem.h"

static hwloc_bitmap_t
parse(const char *s)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc();

    if (b == NULL) {
        return NULL;
    }
    if (s == NULL || *s == '\0') {
        return b;
    }
    if (hwloc_bitmap_list_sscanf(b, s) < 0 || hwloc_bitmap_weight(b) < 0) {
        hwloc_bitmap_free(b);
        return NULL;
    }
    return b;
}

static char *
format(hwloc_const_bitmap_t b)
{
    char *s = NULL, *copy;

    if (hwloc_bitmap_iszero(b)) {
        return dv_xstrdup("");
    }
    if (hwloc_bitmap_list_asprintf(&s, b) < 0 || s == NULL) {
        abort(); /* only fails on out-of-memory */
    }
    copy = dv_xstrdup(s);
    free(s);
    return copy;
}

char *
dv_cpuset_first_n(int n)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    char *s;

    if (n > 0) {
        hwloc_bitmap_set_range(b, 0, (unsigned)n - 1);
    }
    s = format(b);
    hwloc_bitmap_free(b);
    return s;
}

int
dv_cpuset_count(const char *s)
{
    hwloc_bitmap_t b = parse(s);
    int n;

    if (b == NULL) {
        return -1;
    }
    n = hwloc_bitmap_weight(b);
    hwloc_bitmap_free(b);
    return n;
}

static char *
combine(const char *a, const char *b, int subtract, struct dv_err *err)
{
    hwloc_bitmap_t x = parse(a), y = parse(b);
    char *s = NULL;

    if (x == NULL || y == NULL) {
        dv_err_set(err, DV_EINVAL, "bad_cpuset",
                   "cannot parse cpuset \"%s\"", x == NULL ? a : b);
        goto out;
    }
    if (subtract) {
        hwloc_bitmap_andnot(x, x, y);
    } else {
        hwloc_bitmap_or(x, x, y);
    }
    s = format(x);
out:
    hwloc_bitmap_free(x);
    hwloc_bitmap_free(y);
    return s;
}

char *
dv_cpuset_union(const char *a, const char *b, struct dv_err *err)
{
    return combine(a, b, 0, err);
}

char *
dv_cpuset_subtract(const char *a, const char *b, struct dv_err *err)
{
    return combine(a, b, 1, err);
}

int
dv_cpuset_contains(const char *set, const char *sub)
{
    hwloc_bitmap_t x = parse(set), y = parse(sub);
    int rc = -1;

    if (x != NULL && y != NULL) {
        rc = hwloc_bitmap_isincluded(y, x) ? 1 : 0;
    }
    hwloc_bitmap_free(x);
    hwloc_bitmap_free(y);
    return rc;
}

int
dv_cpuset_intersects(const char *a, const char *b)
{
    hwloc_bitmap_t x = parse(a), y = parse(b);
    int rc = -1;

    if (x != NULL && y != NULL) {
        rc = hwloc_bitmap_intersects(x, y) ? 1 : 0;
    }
    hwloc_bitmap_free(x);
    hwloc_bitmap_free(y);
    return rc;
}

int
dv_cpuset_take(const char *free, int n, char **taken, char **rest,
               struct dv_err *err)
{
    hwloc_bitmap_t f = parse(free);
    hwloc_bitmap_t t = NULL;
    int i, got = 0, rc = -1;

    *taken = NULL;
    *rest = NULL;
    if (f == NULL) {
        dv_err_set(err, DV_EINVAL, "bad_cpuset", "cannot parse cpuset \"%s\"",
                   free);
        goto out;
    }
    if (hwloc_bitmap_weight(f) < n) {
        dv_err_set(err, DV_ECONFLICT, "insufficient_cores",
                   "%d cores wanted, %d free", n, hwloc_bitmap_weight(f));
        goto out;
    }
    t = hwloc_bitmap_alloc();
    hwloc_bitmap_foreach_begin(i, f)
    {
        if (got == n) {
            break;
        }
        hwloc_bitmap_set(t, (unsigned)i);
        got++;
    }
    hwloc_bitmap_foreach_end();
    hwloc_bitmap_andnot(f, f, t);
    *taken = format(t);
    *rest = format(f);
    rc = 0;
out:
    hwloc_bitmap_free(f);
    hwloc_bitmap_free(t);
    return rc;
}

int
dv_cpuset_list(const char *s, int *idx, int max)
{
    hwloc_bitmap_t b = parse(s);
    int i, n = 0;

    if (b == NULL) {
        return -1;
    }
    hwloc_bitmap_foreach_begin(i, b)
    {
        if (n < max) {
            idx[n] = i;
        }
        n++;
    }
    hwloc_bitmap_foreach_end();
    hwloc_bitmap_free(b);
    return n;
}
