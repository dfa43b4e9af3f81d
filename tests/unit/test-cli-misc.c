/* Unit tests for cli/pbs-common.c, cli/jobid.c and the pure parts of
 * cli/client.c: PBS error texts and exit statuses, job id parsing and
 * expansion, API error bodies, addresses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/strutil.h"
#include "tests/unit/unit.h"

static void
test_error_mapping(void)
{
    static const struct {
        const char *code;
        const char *text;
        int exit_status;
    } cases[] = {
        {"job_not_found", "Unknown Job Id", 153},
        {"job_finished", "Job has finished", 35},
        {"bad_state", "Request invalid for state of job", 168},
        {"unknown_resource", "Unknown resource", 187},
        {"bad_resource_value", "Illegal attribute or resource value", 166},
        {"bad_attribute_value", "Illegal attribute or resource value", 166},
        {"unknown_queue", "Unknown queue", 170},
        {"queue_disabled", "Queue is not enabled", 173},
        {"forbidden", "Unauthorized Request ", 159},
        {"bad_depend", "Invalid Job Dependency", 206},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pbs_error *e = pbs_error_lookup(cases[i].code);

        CHECK(e != NULL);
        if (e != NULL) {
            CHECK_STR(e->text, cases[i].text);
            CHECK_INT(e->exit_status, cases[i].exit_status);
            CHECK_INT(e->pbs_errno % 256, cases[i].exit_status);
        }
        CHECK_INT(pbs_error_exit_status(cases[i].code), cases[i].exit_status);
    }
    CHECK(pbs_error_lookup("internal_error") == NULL);
    CHECK(pbs_error_lookup(NULL) == NULL);
    CHECK_INT(pbs_error_exit_status("invalid_job"), 1);
    CHECK_INT(pbs_error_exit_status(""), 1);
}

static void
test_jobid(void)
{
    long long seq = -1;
    char *server = NULL;
    char *s;

    CHECK(jobid_is_jobid("12"));
    CHECK(jobid_is_jobid("  12.srv"));
    CHECK(!jobid_is_jobid("workq"));
    CHECK(!jobid_is_jobid("@srv"));
    CHECK_INT(jobid_parse("12", &seq, &server), 0);
    CHECK_INT(seq, 12);
    CHECK(server == NULL);
    CHECK_INT(jobid_parse("13.srv.example.com", &seq, &server), 0);
    CHECK_INT(seq, 13);
    CHECK_STR(server, "srv.example.com");
    free(server);
    CHECK_INT(jobid_parse("14.srv@other", &seq, &server), 0);
    CHECK_STR(server, "srv");
    free(server);
    CHECK_INT(jobid_parse("15@other", &seq, &server), 0);
    CHECK_STR(server, "other");
    free(server);
    CHECK_INT(jobid_parse("abc", &seq, &server), -1);
    CHECK_INT(jobid_parse("12x", &seq, &server), -1);
    CHECK_INT(jobid_parse("12.", &seq, &server), -1);
    CHECK_INT(jobid_parse("12@", &seq, &server), -1);
    /* a whole array is a job to jobid_parse; subjobs and ranges are not */
    CHECK_INT(jobid_parse("12[]", &seq, &server), 0);
    CHECK_INT(seq, 12);
    CHECK(server == NULL);
    CHECK_INT(jobid_parse("12[3]", &seq, &server), -1);
    CHECK_INT(jobid_parse("12[1-3].srv", &seq, &server), -1);
    CHECK_INT(jobid_parse("12[", &seq, &server), -1);
    CHECK_INT(jobid_parse("", &seq, &server), -1);
    CHECK_INT(jobid_parse("99999999999999999999", &seq, &server), -1);
    CHECK(server == NULL);

    s = jobid_expand("99", "srv");
    CHECK_STR(s, "99.srv");
    free(s);
    s = jobid_expand("99.other", "srv");
    CHECK_STR(s, "99.other");
    free(s);
    s = jobid_expand("99", "");
    CHECK_STR(s, "99");
    free(s);
    s = jobid_expand("junk", "srv");
    CHECK_STR(s, "junk");
    free(s);
    s = jobid_expand("99[]", "srv");
    CHECK_STR(s, "99[].srv");
    free(s);
    s = jobid_expand("99[7]@other", "srv");
    CHECK_STR(s, "99[7].other");
    free(s);
    s = jobid_expand("99[1-5]", "srv");
    CHECK_STR(s, "99[1-5].srv");
    free(s);
    {
        struct jobid id;
        CHECK_INT(jobid_parse_array("124[7].srv", &id), 0);
        CHECK_INT(id.seq, 124);
        CHECK_INT(id.part, DV_ARRAY_ONE);
        CHECK_INT(id.lo, 7);
        CHECK_STR(id.server, "srv");
        free(id.server);
        CHECK_INT(jobid_parse_array("124[2-9]", &id), 0);
        CHECK_INT(id.part, DV_ARRAY_RANGE);
        CHECK_INT(id.lo, 2);
        CHECK_INT(id.hi, 9);
        CHECK(id.server == NULL);
        CHECK_INT(jobid_parse_array("124", &id), 0);
        CHECK_INT(id.part, DV_ARRAY_NONE);
        CHECK_INT(jobid_parse_array("124[7]x", &id), -1);
        CHECK_INT(jobid_parse_array("124[a]", &id), -1);
    }
    s = jobid_short("1.a.b.c");
    CHECK_STR(s, "1.a");
    free(s);
    s = jobid_short("1.a");
    CHECK_STR(s, "1.a");
    free(s);
    s = jobid_short("1");
    CHECK_STR(s, "1");
    free(s);
}

static void
test_reply_error(void)
{
    struct cli_reply r;

    memset(&r, 0, sizeof(r));
    r.status = 404;
    cli_reply_set_error(&r, "{\"error\": {\"code\": \"job_not_found\", "
                            "\"message\": \"Unknown Job Id 9.srv\"}}");
    CHECK_STR(r.code, "job_not_found");
    CHECK_STR(r.message, "Unknown Job Id 9.srv");
    memset(&r, 0, sizeof(r));
    r.status = 502;
    cli_reply_set_error(&r, "<html>bad gateway</html>");
    CHECK_STR(r.code, "");
    CHECK_STR(r.message, "Error (HTTP status 502) returned from server");
    cli_reply_set_error(&r, NULL);
    CHECK_STR(r.code, "");
}

static void
test_report_job_error(void)
{
    struct cli_reply r;

    memset(&r, 0, sizeof(r));
    dv_strlcpy(r.code, "job_finished", sizeof(r.code));
    CHECK_INT(cli_report_job_error("qdel", &r, "9.srv"), 35);
    dv_strlcpy(r.code, "bad_state", sizeof(r.code));
    CHECK_INT(cli_report_job_error("qhold", &r, "9.srv"), 168);
    dv_strlcpy(r.code, "database_unavailable", sizeof(r.code));
    CHECK_INT(cli_report_job_error("qrls", &r, "9.srv"), 1);
}

static void
test_addr(void)
{
    char *h;

    h = cli_addr_host("http://127.0.0.1:4750");
    CHECK_STR(h, "127.0.0.1");
    free(h);
    h = cli_addr_host("https://qmgr.example.com");
    CHECK_STR(h, "qmgr.example.com");
    free(h);
    h = cli_addr_host("http://[::1]:4750/");
    CHECK_STR(h, "::1");
    free(h);
    h = cli_addr_host("unix:/run/drover.sock");
    CHECK_STR(h, "/run/drover.sock");
    free(h);
}

static void
test_transport_errno(void)
{
    struct dv_err err;

    dv_err_set(&err, DV_EUNAVAIL, NULL,
               "could not connect to server x: Connection refused");
    CHECK_INT(cli_transport_errno(&err), ECONNREFUSED);
    dv_err_set(&err, DV_EUNAVAIL, NULL,
               "could not connect to server x: No such file or directory");
    CHECK_INT(cli_transport_errno(&err), ENOENT);
    dv_err_set(&err, DV_ETIMEOUT, NULL, "request to server x timed out");
    CHECK_INT(cli_transport_errno(&err), ETIMEDOUT);
}

static void
test_urlencode(void)
{
    struct dv_buf b;

    dv_buf_init(&b);
    cli_urlencode(&b, "a b&c=d/é");
    CHECK_STR(dv_buf_str(&b), "a%20b%26c%3Dd%2F%C3%A9");
    dv_buf_cleanup(&b);
}

/* drover resource list's table. */
static void
test_resource_list(void)
{
    struct dv_buf b;
    json_t *list = json_loads(
        "[{\"name\": \"nfiles\", \"type\": \"long\", \"flag\": \"\"},"
        " {\"name\": \"software\", \"type\": \"string_array\", "
        "\"flag\": \"h\"}]",
        0, NULL);

    dv_buf_init(&b);
    resource_format_list(&b, list);
    CHECK_STR(dv_buf_str(&b), "Name             Type         Flag\n"
                              "---------------- ------------ ----\n"
                              "nfiles           long\n"
                              "software         string_array h\n");
    json_decref(list);
    dv_buf_cleanup(&b);
}

int
main(void)
{
    RUN(test_error_mapping);
    RUN(test_jobid);
    RUN(test_reply_error);
    RUN(test_report_job_error);
    RUN(test_addr);
    RUN(test_transport_errno);
    RUN(test_urlencode);
    RUN(test_resource_list);
    return unit_done();
}
