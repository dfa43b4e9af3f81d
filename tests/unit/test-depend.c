/* Unit tests: lib/depend.c (-W depend parsing, PBS's text, the rule). */
#include <stdlib.h>

#include "lib/depend.h"
#include "unit.h"

static void
test_parse(void)
{
    struct dv_depend d;
    struct dv_err err;

    dv_err_clear(&err);
    CHECK_INT(dv_depend_parse("afterok:12.srv:13,before:14@srv,on:2,"
                              "afterany:124[],afternotok:124[7].srv",
                              &d, &err),
              0);
    CHECK_INT(d.nedges, 5);
    CHECK_INT(d.on, 2);
    CHECK_INT(d.edges[0].type, DV_DEPEND_AFTEROK);
    CHECK_INT(d.edges[0].id, 12);
    CHECK_INT(d.edges[0].array, 0);
    CHECK_INT(d.edges[0].index, -1);
    CHECK_INT(d.edges[1].id, 13);
    CHECK_INT(d.edges[2].type, DV_DEPEND_BEFORE);
    CHECK_INT(d.edges[2].id, 14);
    CHECK_INT(d.edges[3].type, DV_DEPEND_AFTERANY);
    CHECK_INT(d.edges[3].id, 124);
    CHECK_INT(d.edges[3].array, 1);
    CHECK_INT(d.edges[3].index, -1);
    CHECK_INT(d.edges[4].type, DV_DEPEND_AFTERNOTOK);
    CHECK_INT(d.edges[4].array, 1);
    CHECK_INT(d.edges[4].index, 7);
    dv_depend_cleanup(&d);

    /* duplicates are one edge */
    CHECK_INT(dv_depend_parse("afterok:1:1.srv:1@srv", &d, &err), 0);
    CHECK_INT(d.nedges, 1);
    dv_depend_cleanup(&d);
}

static void
test_parse_errors(void)
{
    static const char *const bad[] = {
        "",           "afterok",     "afterok:",      "later:1",
        "afterok:x",  "afterok:1:",  "afterok:1,",    "on:0",
        "on:x",       "on:1,on:2",   "afterok:1.",    "afterok:1[1-3]",
        "afterok:1[", "afterok:[1]", "afterok:1[2]3", "afterok:-1",
        NULL};
    struct dv_depend d;
    struct dv_err err;

    for (int i = 0; bad[i] != NULL; i++) {
        dv_err_clear(&err);
        if (dv_depend_parse(bad[i], &d, &err) != -1) {
            fprintf(stderr, "accepted \"%s\"\n", bad[i]);
            unit_fails++;
        }
        CHECK_STR(err.code, "bad_depend");
        CHECK_STR(err.msg, "Invalid Job Dependency");
        CHECK(d.edges == NULL && d.nedges == 0);
        dv_depend_cleanup(&d);
    }
}

static void
test_format(void)
{
    struct dv_depend d;
    struct dv_err err;
    char *s;

    CHECK_INT(
        dv_depend_parse("afterok:12:13,afterany:14,afterok:15,on:1", &d, &err),
        0);
    s = dv_depend_format(&d, "srv");
    CHECK_STR(s, "afterok:12.srv@srv:13.srv@srv:15.srv@srv,"
                 "afterany:14.srv@srv,on:1");
    free(s);
    dv_depend_cleanup(&d);
    CHECK_INT(dv_depend_parse("beforeok:3[],after:4[2]", &d, &err), 0);
    s = dv_depend_format(&d, NULL);
    CHECK_STR(s, "beforeok:3[],after:4[2]");
    free(s);
    dv_depend_cleanup(&d);
}

static void
test_types(void)
{
    CHECK_INT(dv_depend_type_parse("beforenotok"), DV_DEPEND_BEFORENOTOK);
    CHECK_INT(dv_depend_type_parse("on"), -1);
    CHECK_STR(dv_depend_type_name(DV_DEPEND_AFTERANY), "afterany");
    CHECK_INT(dv_depend_reverse(DV_DEPEND_BEFORE), DV_DEPEND_AFTER);
    CHECK_INT(dv_depend_reverse(DV_DEPEND_BEFOREOK), DV_DEPEND_AFTEROK);
    CHECK_INT(dv_depend_reverse(DV_DEPEND_BEFORENOTOK), DV_DEPEND_AFTERNOTOK);
    CHECK_INT(dv_depend_reverse(DV_DEPEND_BEFOREANY), DV_DEPEND_AFTERANY);
    CHECK_INT(dv_depend_reverse(DV_DEPEND_AFTEROK), DV_DEPEND_AFTEROK);
    CHECK(dv_depend_is_before(DV_DEPEND_BEFORE));
    CHECK(!dv_depend_is_before(DV_DEPEND_AFTERANY));
}

/* The whole table: every type against every event (sql/0005-depend.sql's
 * drover_depend_outcome must say the same; test_depend.py checks it on a
 * real database). */
static void
test_outcome(void)
{
    static const struct {
        enum dv_depend_type type;
        enum dv_depend_outcome started, ok, failed, no_status, deleted;
    } rows[] = {
        {DV_DEPEND_AFTER, DV_DEPEND_MET, DV_DEPEND_MET, DV_DEPEND_MET,
         DV_DEPEND_MET, DV_DEPEND_UNMET},
        {DV_DEPEND_AFTEROK, DV_DEPEND_WAIT, DV_DEPEND_MET, DV_DEPEND_UNMET,
         DV_DEPEND_UNMET, DV_DEPEND_UNMET},
        {DV_DEPEND_AFTERNOTOK, DV_DEPEND_WAIT, DV_DEPEND_UNMET, DV_DEPEND_MET,
         DV_DEPEND_MET, DV_DEPEND_UNMET},
        {DV_DEPEND_AFTERANY, DV_DEPEND_WAIT, DV_DEPEND_MET, DV_DEPEND_MET,
         DV_DEPEND_MET, DV_DEPEND_UNMET},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum dv_depend_type t = rows[i].type;

        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_STARTED, 0, 0),
                  rows[i].started);
        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_ENDED, 1, 0), rows[i].ok);
        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_ENDED, 1, 3), rows[i].failed);
        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_ENDED, 1, 271),
                  rows[i].failed);
        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_ENDED, 1, -29),
                  rows[i].failed);
        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_ENDED, 0, 0),
                  rows[i].no_status);
        CHECK_INT(dv_depend_outcome(t, DV_DEPEND_DELETED, 0, 0),
                  rows[i].deleted);
        /* a before type means its after type on the other job */
        CHECK_INT(dv_depend_outcome((enum dv_depend_type)(t + 4),
                                    DV_DEPEND_ENDED, 1, 0),
                  rows[i].ok);
    }
}

int
main(void)
{
    RUN(test_parse);
    RUN(test_parse_errors);
    RUN(test_format);
    RUN(test_types);
    RUN(test_outcome);
    return unit_done();
}
