/* Unit tests: lib/cpuset.c. */
#include <stdlib.h>

#include "lib/cpuset.h"
#include "unit.h"

static void
test_sets(void)
{
    struct dv_err err;
    char *s, *taken, *rest;
    int idx[8];

    s = dv_cpuset_first_n(4);
    CHECK_STR(s, "0-3");
    free(s);
    s = dv_cpuset_first_n(0);
    CHECK_STR(s, "");
    free(s);
    CHECK_INT(dv_cpuset_count("0-3,8"), 5);
    CHECK_INT(dv_cpuset_count(""), 0);
    CHECK_INT(dv_cpuset_count("x"), -1);
    s = dv_cpuset_union("0-1", "4,2", &err);
    CHECK_STR(s, "0-2,4");
    free(s);
    s = dv_cpuset_subtract("0-7", "2-3", &err);
    CHECK_STR(s, "0-1,4-7");
    free(s);
    CHECK(dv_cpuset_union("bad", "1", &err) == NULL);
    CHECK_INT(dv_cpuset_contains("0-7", "2-3"), 1);
    CHECK_INT(dv_cpuset_contains("0-1", "1-2"), 0);
    CHECK_INT(dv_cpuset_intersects("0-1", "1-2"), 1);
    CHECK_INT(dv_cpuset_intersects("0", "1-2"), 0);
    CHECK_INT(dv_cpuset_take("2,4-7", 3, &taken, &rest, &err), 0);
    CHECK_STR(taken, "2,4-5");
    CHECK_STR(rest, "6-7");
    free(taken);
    free(rest);
    CHECK_INT(dv_cpuset_take("1", 2, &taken, &rest, &err), -1);
    CHECK(taken == NULL && rest == NULL);
    CHECK_INT(dv_cpuset_list("3,1", idx, 8), 2);
    CHECK_INT(idx[0], 1);
    CHECK_INT(idx[1], 3);
}

int
main(void)
{
    RUN(test_sets);
    return unit_done();
}
