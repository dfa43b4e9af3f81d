/* Unit tests of qmgr/site.c and the sites' pieces of qmgr/format.c: the
 * mail PBS sends for Mail_Points b, e and a, custom resource names, and
 * the canonical custom values written into a stored spec. */
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "qmgr/qmgr.h"
#include "tests/unit/unit.h"

static void
test_mail_format(void)
{
    struct dv_buf b;

    dv_buf_init(&b);
    site_mail_format('b', "12.srv", "job", "alice@x.org,bob", "adm", NULL, 0, 0,
                     0, 0, 0, &b);
    CHECK_STR(dv_buf_str(&b), "From: adm\n"
                              "To: alice@x.org,bob\n"
                              "Subject: PBS JOB 12.srv\n"
                              "\n"
                              "PBS Job Id: 12.srv\n"
                              "Job Name:   job\n"
                              "Begun execution\n");
    dv_buf_reset(&b);
    site_mail_format('e', "12.srv", "job", "alice", "adm", "Job run at x", 1, 3,
                     61, 3661, 2048, &b);
    CHECK_STR(dv_buf_str(&b), "From: adm\n"
                              "To: alice\n"
                              "Subject: PBS JOB 12.srv\n"
                              "\n"
                              "PBS Job Id: 12.srv\n"
                              "Job Name:   job\n"
                              "Execution terminated\n"
                              "Exit_status=3\n"
                              "resources_used.cput=00:01:01\n"
                              "resources_used.mem=2kb\n"
                              "resources_used.walltime=01:01:01\n");
    dv_buf_reset(&b);
    site_mail_format('a', "12.srv", "job", "alice", "adm", "Job deleted", 0, 0,
                     0, 0, 0, &b);
    CHECK_STR(dv_buf_str(&b), "From: adm\n"
                              "To: alice\n"
                              "Subject: PBS JOB 12.srv\n"
                              "\n"
                              "PBS Job Id: 12.srv\n"
                              "Job Name:   job\n"
                              "Aborted by PBS Server \n"
                              "Job deleted\n");
    dv_buf_cleanup(&b);
}

static void
test_resource_names(void)
{
    CHECK(resource_name_valid("software"));
    CHECK(resource_name_valid("a.b-c_1"));
    CHECK(!resource_name_valid(""));
    CHECK(!resource_name_valid("1abc"));
    CHECK(!resource_name_valid("a b"));
    CHECK(!resource_name_valid("a/b"));
    CHECK(!resource_name_valid(NULL));
}

static void
test_stored_custom(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    json_t *j;
    char *canon[] = {(char *)"True"};

    dv_job_spec_init(&s);
    s.owner = dv_xstrdup("alice");
    s.script = dv_xstrdup("true\n");
    dv_job_spec_set_resource(&s, "walltime", "60");
    dv_job_spec_set_resource(&s, "scratch", "y");
    dv_err_clear(&err);
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    CHECK_INT(s.ncustom, 1);
    j = dv_job_spec_to_json(&s);
    stored_spec_custom(j, &s, canon);
    CHECK_STR(json_string_value(
                  json_object_get(json_object_get(j, "resources"), "scratch")),
              "True");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(j, "resource_list"), "scratch")),
              "True");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(j, "resource_list"), "walltime")),
              "00:01:00");
    json_decref(j);
    dv_job_spec_cleanup(&s);
}

int
main(void)
{
    RUN(test_mail_format);
    RUN(test_resource_names);
    RUN(test_stored_custom);
    return unit_done();
}
