/* Unit tests: lib/config.c precedence, types, errors. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/config.h"
#include "unit.h"

struct cfg {
    char *listen;
    int64_t workers;
    int flag;
    double ttl;
    int64_t body;
};

static const struct dv_conf_opt opts[] = {
    {"listen", DV_CONF_STRING, "127.0.0.1:1", 0, 0, 0,
     offsetof(struct cfg, listen), "addr"},
    {"workers", DV_CONF_INT, "4", 1, 64, 0, offsetof(struct cfg, workers),
     "n"},
    {"flag", DV_CONF_BOOL, "false", 0, 0, 1, offsetof(struct cfg, flag), "b"},
    {"node-ttl", DV_CONF_DURATION, "10s", 1000, 3600000, 1,
     offsetof(struct cfg, ttl), "d"},
    {"max-body", DV_CONF_SIZE, "1mb", 1, 1LL << 40, 0,
     offsetof(struct cfg, body), "s"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int
load(struct cfg *c, int argc, char **argv, struct dv_conf_args *a,
     struct dv_err *err)
{
    memset(c, 0, sizeof(*c));
    return dv_conf_load(opts, NOPTS, c, argc, argv, a, err);
}

static void
test_defaults_and_flags(void)
{
    char *argv[] = {(char *)"prog", (char *)"serve", (char *)"--workers",
                    (char *)"8",    (char *)"--flag", (char *)"--node-ttl=1m",
                    (char *)"--max-body", (char *)"2gb", (char *)"extra"};
    struct cfg c;
    struct dv_conf_args a;
    struct dv_err err;

    CHECK_INT(load(&c, 9, argv, &a, &err), 0);
    CHECK_STR(c.listen, "127.0.0.1:1");
    CHECK_INT(c.workers, 8);
    CHECK_INT(c.flag, 1);
    CHECK(c.ttl == 60.0);
    CHECK_INT(c.body, 2LL << 30);
    CHECK_INT(a.nargs, 2);
    CHECK_STR(a.args[0], "serve");
    CHECK_STR(a.args[1], "extra");
    dv_conf_args_cleanup(&a);
    dv_conf_cleanup(opts, NOPTS, &c);
}

static void
test_precedence(void)
{
    char path[] = "/tmp/dv-conf-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    char *argv[] = {(char *)"prog", (char *)"--config", path,
                    (char *)"--workers", (char *)"3"};
    struct cfg c;
    struct dv_conf_args a;
    struct dv_err err;

    fputs("{\"listen\": \"file:1\", \"workers\": 2, \"flag\": true}", f);
    fclose(f);
    setenv("DROVER_LISTEN", "env:1", 1);
    setenv("DROVER_WORKERS", "5", 1);
    CHECK_INT(load(&c, 5, argv, &a, &err), 0);
    CHECK_STR(c.listen, "env:1"); /* env over file */
    CHECK_INT(c.workers, 3);      /* flag over env */
    CHECK_INT(c.flag, 1);         /* file over default */
    dv_conf_args_cleanup(&a);
    /* reload keeps non-reloadable values, re-reads reloadable ones */
    unsetenv("DROVER_LISTEN");
    f = fopen(path, "w");
    fputs("{\"listen\": \"other:1\", \"flag\": false}", f);
    fclose(f);
    CHECK_INT(dv_conf_reload(opts, NOPTS, &c, path, 5, argv, &err), 0);
    CHECK_STR(c.listen, "env:1");
    CHECK_INT(c.flag, 0);
    unsetenv("DROVER_WORKERS");
    dv_conf_cleanup(opts, NOPTS, &c);
    unlink(path);
}

static void
test_errors(void)
{
    char *bad_flag[] = {(char *)"prog", (char *)"--nope"};
    char *bad_int[] = {(char *)"prog", (char *)"--workers", (char *)"100"};
    char *missing[] = {(char *)"prog", (char *)"--workers"};
    char *bad_dur[] = {(char *)"prog", (char *)"--node-ttl", (char *)"5x"};
    char path[] = "/tmp/dv-conf-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    char *bad_file[] = {(char *)"prog", (char *)"--config", path};
    struct cfg c;
    struct dv_conf_args a;
    struct dv_err err;

    CHECK_INT(load(&c, 2, bad_flag, &a, &err), -1);
    CHECK_STR(err.msg, "unknown option --nope");
    dv_conf_cleanup(opts, NOPTS, &c);
    CHECK_INT(load(&c, 3, bad_int, &a, &err), -1);
    dv_conf_cleanup(opts, NOPTS, &c);
    CHECK_INT(load(&c, 2, missing, &a, &err), -1);
    dv_conf_cleanup(opts, NOPTS, &c);
    CHECK_INT(load(&c, 3, bad_dur, &a, &err), -1);
    dv_conf_cleanup(opts, NOPTS, &c);
    fputs("{\"unknown-key\": 1}", f);
    fclose(f);
    CHECK_INT(load(&c, 3, bad_file, &a, &err), -1);
    CHECK(strstr(err.msg, "unknown key \"unknown-key\"") != NULL);
    dv_conf_cleanup(opts, NOPTS, &c);
    unlink(path);
}

static void
test_duration(void)
{
    double d;

    CHECK_INT(dv_parse_duration("250ms", &d), 0);
    CHECK(d == 0.25);
    CHECK_INT(dv_parse_duration("2h", &d), 0);
    CHECK(d == 7200);
    CHECK_INT(dv_parse_duration("-1", &d), -1);
    CHECK_INT(dv_parse_duration("", &d), -1);
}

int
main(void)
{
    RUN(test_defaults_and_flags);
    RUN(test_precedence);
    RUN(test_errors);
    RUN(test_duration);
    return unit_done();
}
