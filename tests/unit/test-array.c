/* Unit tests for lib/array.c: PBS -J ranges (chk_Jrange's rules), their
 * text forms, and array/subjob ids. */
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/mem.h"
#include "tests/unit/unit.h"

static void
test_parse(void)
{
    struct dv_array a;

    CHECK_INT(dv_array_parse("1-10", &a), 0);
    CHECK_INT(a.first, 1);
    CHECK_INT(a.last, 10);
    CHECK_INT(a.step, 1);
    CHECK_INT(a.max_run, 0);
    CHECK_INT(dv_array_count(&a), 10);
    CHECK_INT(dv_array_parse("0-9:2%3", &a), 0);
    CHECK_INT(a.first, 0);
    CHECK_INT(a.step, 2);
    CHECK_INT(a.max_run, 3);
    CHECK_INT(dv_array_count(&a), 5);
    CHECK(dv_array_has(&a, 8));
    CHECK(!dv_array_has(&a, 9));
    CHECK(!dv_array_has(&a, 10));
    CHECK_INT(dv_array_parse("1-100000", &a), 0);
    CHECK_INT(dv_array_count(&a), 100000);
    CHECK_INT(dv_array_parse("5-6%1", &a), 0);
    /* PBS refuses: no range, Y <= X, negative, step < 1, junk, %0 */
    static const char *const bad[] = {
        "",       "5",     "5-5",     "6-5",           "-1-5",        "1-",
        "1-5:",   "1-5:0", "1-5x",    "a-b",           "1-5%",        "1-5%0",
        "1-5%-1", " 1-5",  "1-5:2:3", "1-99999999999", "0-2000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dv_array_parse(bad[i], &a) == 0) {
            fprintf(stderr, "accepted %s\n", bad[i]);
            unit_fails++;
        }
    }
}

static void
test_format(void)
{
    struct dv_array a = {.first = 1, .last = 9, .step = 2, .max_run = 2};
    struct dv_buf b;

    dv_buf_init(&b);
    dv_array_format(&a, &b);
    CHECK_STR(dv_buf_str(&b), "1-9:2");
    dv_buf_reset(&b);
    a.step = 1;
    dv_array_format(&a, &b);
    CHECK_STR(dv_buf_str(&b), "1-9");
    dv_buf_cleanup(&b);
}

static void
test_ids(void)
{
    enum dv_array_part part;
    const char *end;
    int lo, hi;
    char buf[64];

    CHECK_INT(dv_array_id_bracket(".srv", &part, &lo, &hi, &end), 0);
    CHECK_INT(part, DV_ARRAY_NONE);
    CHECK_INT(dv_array_id_bracket("[].srv", &part, &lo, &hi, &end), 0);
    CHECK_INT(part, DV_ARRAY_WHOLE);
    CHECK_STR(end, ".srv");
    CHECK_INT(dv_array_id_bracket("[7]", &part, &lo, &hi, &end), 0);
    CHECK_INT(part, DV_ARRAY_ONE);
    CHECK_INT(lo, 7);
    CHECK_INT(hi, 7);
    CHECK_STR(end, "");
    CHECK_INT(dv_array_id_bracket("[1-5]@srv", &part, &lo, &hi, &end), 0);
    CHECK_INT(part, DV_ARRAY_RANGE);
    CHECK_INT(lo, 1);
    CHECK_INT(hi, 5);
    CHECK_STR(end, "@srv");
    CHECK_INT(dv_array_id_bracket("[3-3]", &part, &lo, &hi, &end), 0);
    CHECK_INT(part, DV_ARRAY_RANGE);
    CHECK_INT(dv_array_id_bracket("[", &part, &lo, &hi, &end), -1);
    CHECK_INT(dv_array_id_bracket("[x]", &part, &lo, &hi, &end), -1);
    CHECK_INT(dv_array_id_bracket("[5-1]", &part, &lo, &hi, &end), -1);
    CHECK_INT(dv_array_id_bracket("[1-]", &part, &lo, &hi, &end), -1);
    CHECK_INT(dv_array_id_bracket("[7", &part, &lo, &hi, &end), -1);

    dv_array_id_format(124, DV_ARRAY_WHOLE, 0, 0, "srv", buf, sizeof(buf));
    CHECK_STR(buf, "124[].srv");
    dv_array_id_format(124, DV_ARRAY_ONE, 7, 7, "srv", buf, sizeof(buf));
    CHECK_STR(buf, "124[7].srv");
    dv_array_id_format(124, DV_ARRAY_RANGE, 1, 5, "", buf, sizeof(buf));
    CHECK_STR(buf, "124[1-5]");
    dv_array_id_format(124, DV_ARRAY_NONE, 0, 0, "srv", buf, sizeof(buf));
    CHECK_STR(buf, "124.srv");
}

int
main(void)
{
    RUN(test_parse);
    RUN(test_format);
    RUN(test_ids);
    return unit_done();
}
