/*
 * A small unit-test harness: CHECK macros count failures, RUN prints one
 * "ok NAME" or "not ok NAME" line per test (scripts/run-tests.sh counts
 * them), unit_done() returns the exit status.
 */
#ifndef DV_UNIT_H
#define DV_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int unit_fails;
static int unit_tests_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            unit_fails++;                                                      \
        }                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                        \
    do {                                                                       \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);          \
        if (unit_a_ != unit_b_) {                                              \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__,    \
                    __LINE__, #a, unit_a_, unit_b_);                           \
            unit_fails++;                                                      \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *unit_a_ = (a), *unit_b_ = (b);                             \
        if (unit_a_ == NULL || unit_b_ == NULL ||                              \
            strcmp(unit_a_, unit_b_) != 0) {                                   \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n",          \
                    __FILE__, __LINE__, #a, unit_a_ ? unit_a_ : "(null)",      \
                    unit_b_ ? unit_b_ : "(null)");                             \
            unit_fails++;                                                      \
        }                                                                      \
    } while (0)

static inline void
unit_run(const char *name, void (*fn)(void))
{
    int before = unit_fails;

    fn();
    if (unit_fails == before) {
        printf("ok %s\n", name);
    } else {
        printf("not ok %s\n", name);
        unit_tests_failed++;
    }
    fflush(stdout);
}

#define RUN(fn) unit_run(#fn, fn)

static inline int
unit_done(void)
{
    return unit_tests_failed == 0 ? 0 : 1;
}

#endif
