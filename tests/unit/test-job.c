/* Unit tests: lib/job.c (strict decoding, validation, encoding, ids). */
#include <stdlib.h>

#include "lib/job.h"
#include "unit.h"

static int
decode(const char *text, struct dv_job_spec *s, struct dv_err *err)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    int rc;

    if (j == NULL) {
        return -2;
    }
    rc = dv_job_spec_from_json(j, s, err);
    json_decref(j);
    return rc;
}

static void
test_decode_normalize(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    json_t *out;

    dv_job_spec_init(&s);
    CHECK_INT(decode("{\"owner\": \"alice\", \"script\": \"echo hi\\n\", "
                     "\"resources\": {\"ncpus\": 2, \"mem\": \"1gb\", "
                     "\"walltime\": \"00:10:00\"}, \"env\": [\"A=1\"]}",
                     &s, &err),
              0);
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    CHECK_STR(s.name, "STDIN");
    CHECK_STR(s.join, "n");
    CHECK_STR(s.type, "batch");
    CHECK_INT(s.req.ncpus, 2);
    CHECK_INT(s.req.walltime, 600);
    out = dv_job_spec_to_json(&s);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(out, "resource_list"), "select")),
              "1:ncpus=2:mem=1gb");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(out, "resource_list"), "walltime")),
              "00:10:00");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(out, "resource_list"), "place")),
              "pack");
    /* The encoded spec decodes again (derived keys are accepted). */
    {
        struct dv_job_spec again;
        dv_job_spec_init(&again);
        CHECK_INT(dv_job_spec_from_json(out, &again, &err), 0);
        CHECK_INT(dv_job_spec_normalize(&again, &err), 0);
        CHECK_INT(again.req.ncpus, 2);
        dv_job_spec_cleanup(&again);
    }
    json_decref(out);
    dv_job_spec_cleanup(&s);
}

static void
test_decode_errors(void)
{
    struct dv_job_spec s;
    struct dv_err err;

    dv_job_spec_init(&s);
    CHECK_INT(decode("[1]", &s, &err), -1);
    CHECK_INT(decode("{\"bogus\": 1}", &s, &err), -1);
    CHECK_STR(err.msg, "unknown field \"bogus\"");
    CHECK_INT(decode("{\"name\": 5}", &s, &err), -1);
    CHECK_INT(decode("{\"priority\": 5000}", &s, &err), -1);
    CHECK_INT(decode("{\"argv\": [1]}", &s, &err), -1);
    CHECK_INT(decode("{\"hold\": \"yes\"}", &s, &err), -1);
    CHECK_INT(decode("{\"resources\": {\"ncpus\": [1]}}", &s, &err), -1);
    /* jansson refuses \u0000 unless asked: never reaches the decoder */
    CHECK(decode("{\"name\": \"a\\u0000b\"}", &s, &err) != 0);
    dv_job_spec_cleanup(&s);
}

static void
test_validation(void)
{
    static const char *const bad[] = {
        "{\"script\": \"x\"}",                                  /* no owner */
        "{\"owner\": \"bob\"}",                                 /* nothing */
        "{\"owner\": \"bob\", \"script\": \"x\", \"argv\": [\"y\"]}",
        "{\"owner\": \"b b\", \"script\": \"x\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"name\": \"a/b\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"join\": \"xx\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"workdir\": \"rel\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"env\": [\"NOEQ\"]}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"type\": \"service\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"depend\": \"later:1\"}",
        "{\"owner\": \"bob\", \"script\": \"a\\r\\nb\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"resources\": "
        "{\"walltime\": \"abc\"}}",
        NULL,
    };
    struct dv_job_spec s;
    struct dv_err err;

    for (int i = 0; bad[i] != NULL; i++) {
        dv_job_spec_init(&s);
        int rc = decode(bad[i], &s, &err);
        if (rc == 0) {
            rc = dv_job_spec_normalize(&s, &err);
        }
        if (rc != -1) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
        }
        CHECK_INT(rc, -1);
        dv_job_spec_cleanup(&s);
    }
    dv_job_spec_init(&s);
    CHECK_INT(decode("{\"owner\": \"bob\", \"argv\": [\"/bin/true\"], "
                     "\"depend\": \"afterok:12.srv:13,before:14\", "
                     "\"stdout\": \"host:/tmp/x\"}",
                     &s, &err),
              0);
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    dv_job_spec_cleanup(&s);
}

static void
test_setenv(void)
{
    struct dv_job_spec s;

    dv_job_spec_init(&s);
    dv_job_spec_setenv(&s, "A", "1");
    dv_job_spec_setenv(&s, "AB", "2");
    dv_job_spec_setenv(&s, "A", "3");
    CHECK_INT(s.nenv, 2);
    CHECK_STR(s.env[0], "A=3");
    CHECK_STR(s.env[1], "AB=2");
    dv_job_spec_cleanup(&s);
}

static void
test_ids(void)
{
    long long id = 0;
    char buf[64];

    CHECK_INT(dv_job_id_parse("123", &id), 0);
    CHECK_INT(id, 123);
    CHECK_INT(dv_job_id_parse("123.srv.example.com", &id), 0);
    CHECK_INT(id, 123);
    CHECK_INT(dv_job_id_parse("123@srv", &id), 0);
    CHECK_INT(dv_job_id_parse("abc", &id), -1);
    CHECK_INT(dv_job_id_parse("12x", &id), -1);
    CHECK_INT(dv_job_id_parse("12.", &id), -1);
    CHECK_INT(dv_job_id_parse("", &id), -1);
    dv_job_id_format(7, "srv", buf, sizeof(buf));
    CHECK_STR(buf, "7.srv");
    CHECK_INT(dv_job_state_parse("held"), DV_JOB_HELD);
    CHECK_INT(dv_job_state_letter(DV_JOB_FINISHED), 'F');
}

/* Sites' attributes: decoded, validated with PBS's texts, encoded back;
 * the shell of a -S path list per host; the W state. */
static void
test_site_attributes(void)
{
    struct dv_job_spec s;
    struct dv_err err;
    json_t *j;
    char *sh;
    static const char *const bad[][2] = {
        {"{\"mail_points\": \"x\"}", "Mail_Points"},
        {"{\"mail_points\": \"abn\"}", "Mail_Points"},
        {"{\"mail_users\": \"a b\"}", "Mail_Users"},
        {"{\"mail_users\": \"-f\"}", "Mail_Users"},
        {"{\"keep_files\": \"on\"}", "Keep_Files"},
        {"{\"account\": \"\"}", "Account_Name"},
        {"{\"project\": \"a\\nb\"}", "project"},
    };
    /* host -> shell; short and full names match, prefixes do not */
    static const char *const shells[][2] = {{"n1", "/bin/bash"},
                                            {"n2.example.org", "/bin/zsh"},
                                            {"n3", "/bin/sh"},
                                            {"n10", "/bin/sh"}};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *o = json_loads(bad[i][0], 0, NULL);
        char want[128];

        CHECK(o != NULL);
        json_object_set_new(o, "owner", json_string("alice"));
        json_object_set_new(o, "script", json_string("true\n"));
        dv_job_spec_init(&s);
        dv_err_clear(&err);
        CHECK_INT(dv_job_spec_from_json(o, &s, &err), 0);
        CHECK_INT(dv_job_spec_normalize(&s, &err), -1);
        snprintf(want, sizeof(want),
                 "Illegal attribute or resource value %s", bad[i][1]);
        CHECK_STR(err.msg, want);
        CHECK_STR(err.code, "bad_attribute_value");
        dv_job_spec_cleanup(&s);
        json_decref(o);
    }
    j = json_loads("{\"owner\": \"alice\", \"script\": \"true\", "
                   "\"account\": \"a1\", \"project\": \"p1\", "
                   "\"mail_points\": \"abe\", \"mail_users\": \"a@b.c,d\", "
                   "\"execution_time\": 1700000000, \"keep_files\": \"oed\", "
                   "\"shell\": \"/bin/sh\", "
                   "\"shell_path_list\": \"/bin/bash@n1.example.org,/bin/sh,"
                   "/bin/zsh@n2\"}",
                   0, NULL);
    dv_job_spec_init(&s);
    CHECK_INT(dv_job_spec_from_json(j, &s, &err), 0);
    json_decref(j);
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    CHECK_INT(s.execution_time, 1700000000);
    j = dv_job_spec_to_json(&s);
    CHECK_STR(json_string_value(json_object_get(j, "mail_users")), "a@b.c,d");
    CHECK_INT(json_integer_value(json_object_get(j, "execution_time")),
              1700000000);
    json_decref(j);
    for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
        sh = dv_job_shell_for_host(&s, shells[i][0]);
        CHECK_STR(sh, shells[i][1]);
        free(sh);
    }
    dv_job_spec_cleanup(&s);
    CHECK_INT(dv_job_state_parse("waiting"), DV_JOB_WAITING);
    CHECK_INT(dv_job_state_letter(DV_JOB_WAITING), 'W');
    CHECK_STR(dv_job_state_name(DV_JOB_WAITING), "waiting");
    CHECK_INT(dv_job_state_letter((enum dv_job_state)DV_JOB_NSTATES), '?');
}

/* "array": validated as -J is, never with rerunnable false, kept by the
 * encoding; a native job may not have it. */
static void
test_array_spec(void)
{
    static const char *const bad[] = {
        "{\"owner\": \"bob\", \"script\": \"x\", \"array\": \"5-1\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"array\": \"1-5%0\"}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"array\": 5}",
        "{\"owner\": \"bob\", \"script\": \"x\", \"array\": \"1-5\", "
        "\"rerunnable\": false}",
        NULL,
    };
    struct dv_job_spec s;
    struct dv_err err;
    json_t *j;

    for (int i = 0; bad[i] != NULL; i++) {
        dv_job_spec_init(&s);
        int rc = decode(bad[i], &s, &err);
        if (rc == 0) {
            rc = dv_job_spec_normalize(&s, &err);
        }
        if (rc != -1) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
        }
        CHECK_INT(rc, -1);
        dv_job_spec_cleanup(&s);
    }
    dv_job_spec_init(&s);
    CHECK_INT(decode("{\"owner\": \"bob\", \"script\": \"x\", "
                     "\"rerunnable\": true, \"array\": \"1-9:2%3\"}",
                     &s, &err),
              0);
    CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    j = dv_job_spec_to_json(&s);
    CHECK_STR(json_string_value(json_object_get(j, "array")), "1-9:2%3");
    json_decref(j);
    dv_job_spec_cleanup(&s);
}

int
main(void)
{
    RUN(test_decode_normalize);
    RUN(test_decode_errors);
    RUN(test_validation);
    RUN(test_setenv);
    RUN(test_ids);
    RUN(test_site_attributes);
    RUN(test_array_spec);
    return unit_done();
}
