/* Unit tests of the management commands' API edge: the routes of
 * qsig/qrerun/qmove/qalter (qmgr/route.c) and qsig's signal names
 * (qmgr/api-job-admin.c). */
#include "qmgr/qmgr.h"
#include "tests/unit/unit.h"

static void
test_admin_routes(void)
{
    static const struct {
        const char *word;
        int id;
    } r[] = {{"signal", ROUTE_JOB_SIGNAL},
             {"rerun", ROUTE_JOB_RERUN},
             {"move", ROUTE_JOB_MOVE},
             {"alter", ROUTE_JOB_ALTER}};
    struct route_match m;
    struct dv_err err;
    char path[64];

    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        snprintf(path, sizeof(path), "/v1/jobs/12.srv/%s", r[i].word);
        dv_err_clear(&err);
        CHECK_INT(route_find("POST", path, &m, &err), 0);
        CHECK_INT(m.id, r[i].id);
        CHECK_INT(m.num, 12);
        dv_err_clear(&err);
        CHECK_INT(route_find("GET", path, &m, &err), -1);
        CHECK_STR(err.code, "method_not_allowed");
    }
    dv_err_clear(&err);
    CHECK_INT(route_find("POST", "/v1/jobs/12/signals", &m, &err), -1);
    CHECK_STR(err.code, "not_found");
}

static void
test_signal_names(void)
{
    char out[16];
    int priv = 0;

    CHECK_INT(api_signal_parse("SIGUSR1", out, &priv), 0);
    CHECK_STR(out, "10");
    CHECK_INT(priv, 0);
    CHECK_INT(api_signal_parse("usr2", out, &priv), 0);
    CHECK_STR(out, "12");
    CHECK_INT(api_signal_parse("KILL", out, &priv), 0);
    CHECK_STR(out, "9");
    CHECK_INT(api_signal_parse("9", out, &priv), 0);
    CHECK_STR(out, "9");
    CHECK_INT(api_signal_parse("SIGNULL", out, &priv), 0);
    CHECK_STR(out, "0");
    CHECK_INT(api_signal_parse("suspend", out, &priv), 0);
    CHECK_STR(out, "suspend");
    CHECK_INT(priv, 0);
    CHECK_INT(api_signal_parse("admin-resume", out, &priv), 0);
    CHECK_STR(out, "resume");
    CHECK_INT(priv, 1);
    CHECK_INT(api_signal_parse("NOSUCH", out, &priv), -1);
    CHECK_INT(api_signal_parse("65", out, &priv), -1);
    CHECK_INT(api_signal_parse("", out, &priv), -1);
    CHECK_INT(api_signal_parse("SIG", out, &priv), -1);
    CHECK_INT(api_signal_parse(NULL, out, &priv), -1);
}

int
main(void)
{
    RUN(test_admin_routes);
    RUN(test_signal_names);
    return unit_done();
}
