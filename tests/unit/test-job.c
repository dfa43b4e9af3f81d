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
    RUN(test_array_spec);
    return unit_done();
}
