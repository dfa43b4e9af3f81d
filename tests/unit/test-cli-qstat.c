/* Unit tests for cli/qstat-format.c and cli/jobs.c: qstat's default rows
 * and truncation rules, the alternate layout, -f attributes and wrapping,
 * DSV, and the cJSON-style JSON printer. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

static const char job_json[] =
    "{\"id\": 12, \"job_id\": \"12.srv\", \"name\": \"hello\", \"owner\": "
    "\"alice\", \"queue\": \"workq\", \"type\": \"batch\", \"state\": "
    "\"running\", \"priority\": 0, \"hold_types\": \"\", \"rerunnable\": "
    "true, \"exit_status\": null, \"exec_host\": \"node1/0*2\", "
    "\"exec_vnode\": \"(node1:ncpus=2:mem=1048576kb)\", \"comment\": \"Job "
    "run at Mon Jan 04 at 10:00 on (node1:ncpus=2)\", \"ctime\": "
    "1700000000, \"qtime\": 1700000000, \"stime\": 1700000003, \"mtime\": "
    "1700000003, \"end_time\": null, \"run_count\": 1, \"resources_used\": "
    "{\"cput\": 1, \"walltime\": 65, \"mem\": 10485760}, \"resource_list\": "
    "{\"mem\": \"1gb\", \"ncpus\": \"2\", \"nodect\": \"1\", \"place\": "
    "\"pack\", \"select\": \"1:ncpus=2:mem=1gb\", \"walltime\": "
    "\"00:10:00\"}, \"modify_index\": 1234, \"spec\": {\"name\": \"hello\", "
    "\"submit_host\": \"login1\", \"workdir\": \"/home/alice/run\", "
    "\"env\": [\"PBS_O_HOME=/home/alice\", \"A=x,y\", \"N=42\"], \"join\": "
    "\"oe\", \"submit_args\": \"-j oe job.sh\", \"stdout\": "
    "\"/home/alice/run/hello.o12\", \"unknown_key\": 1}}";

static void
load_job(struct cli_job *j)
{
    json_t *o = json_loads(job_json, 0, NULL);

    CHECK(o != NULL);
    CHECK_INT(cli_job_from_json(o, j), 0);
    json_decref(o);
}

static void
test_default_format(void)
{
    struct dv_buf b;

    dv_buf_init(&b);
    qstat_default_header(&b, 0);
    qstat_default_row(&b, "123.pbsserver", "STDIN", "alice", "00:00:01", "R",
                      "workq", 0);
    qstat_default_row(&b, "124.pbsserver", "a_very_long_job_name", "bob", "0",
                      "Q", "workq", 0);
    CHECK_STR(dv_buf_str(&b),
              "Job id            Name             User              Time Use "
              "S Queue\n"
              "----------------  ---------------- ----------------  -------- "
              "- -----\n"
              "123.pbsserver     STDIN            alice             00:00:01 "
              "R workq           \n"
              "124.pbsserver     a_very_long_job* bob                      0 "
              "Q workq           \n");
    dv_buf_cleanup(&b);
}

static void
test_truncation(void)
{
    struct dv_buf b;

    dv_buf_init(&b);
    /* Id cut after the server's first label; long owner, time and queue
     * end in '*'; owner cut at '@'. */
    qstat_default_row(&b, "1.a.b.c", "x", "averyveryverylonguser@h",
                      "123:00:00", "R", "averyveryverylongqueue", 0);
    CHECK_STR(dv_buf_str(&b), "1.a               x                "
                              "averyveryverylo*  123:00:* R "
                              "averyveryverylo*\n");
    dv_buf_reset(&b);
    /* Id longer than 17. */
    qstat_default_row(&b, "12345678901234.server", "x", "u", "0", "Q", "q", 0);
    CHECK_STR(dv_buf_str(&b), "12345678901234.s* x                u        "
                              "                0 Q q               \n");
    dv_buf_reset(&b);
    /* A name of exactly 16 is cut too (>= 16), 15 is not; a user of 16
     * is not; queue cut at '@'. */
    qstat_default_row(&b, "7.s", "abcdefghijklmnop", "abcdefghijklmnop", "0",
                      "H", "q@srv", 0);
    qstat_default_row(&b, "8.s", "abcdefghijklmno", "u", "0", "Q", "q", 0);
    CHECK_STR(dv_buf_str(&b),
              "7.s               abcdefghijklmno* abcdefghijklmnop         0 "
              "H q               \n"
              "8.s               abcdefghijklmno  u                        0 "
              "Q q               \n");
    dv_buf_reset(&b);
    /* Wide: id 30, name/user/queue 15. */
    qstat_default_row(&b, "9.srv", "abcdefghijklmnopq", "u", "0", "Q", "q", 1);
    CHECK_STR(dv_buf_str(&b), "9.srv                          "
                              "abcdefghijklmn* u                       0 "
                              "Q q              \n");
    dv_buf_cleanup(&b);
}

static void
test_job_rows(void)
{
    struct cli_job j;
    struct dv_buf b;

    load_job(&j);
    dv_buf_init(&b);
    qstat_job_default_row(&b, &j, 0);
    CHECK_STR(dv_buf_str(&b), "12.srv            hello            alice    "
                              "         00:00:01 R workq           \n");
    /* Not run yet: Time Use is "0". */
    j.has_used = 0;
    free(j.state);
    j.state = dv_xstrdup("queued");
    dv_buf_reset(&b);
    qstat_job_default_row(&b, &j, 0);
    CHECK_STR(dv_buf_str(&b), "12.srv            hello            alice    "
                              "                0 Q workq           \n");
    dv_buf_cleanup(&b);
    cli_job_cleanup(&j);
}

static void
test_alt_format(void)
{
    struct cli_job j;
    struct dv_buf b;
    char buf[32];

    load_job(&j);
    dv_buf_init(&b);
    qstat_alt_header(&b, "srv", 0);
    qstat_alt_row(&b, &j, QSTAT_ALT_NODES | QSTAT_ALT_COMMENT);
    CHECK_STR(dv_buf_str(&b),
              "\nsrv: \n"
              "                                                            "
              "Req'd  Req'd   Elap\n"
              "Job ID          Username Queue    Jobname    SessID NDS TSK "
              "Memory Time  S Time\n"
              "--------------- -------- -------- ---------- ------ --- --- "
              "------ ----- - -----\n"
              "12.srv          alice    workq    hello         --    1   2  "
              "  1gb 00:10 R 00:01\n"
              "   node1/0*2\n"
              "   Job run at Mon Jan 04 at 10:00 on (node1:ncpus=2)\n");
    CHECK_STR(qstat_cnv_size("1gb", 0, buf, sizeof(buf)), "1gb");
    CHECK_STR(qstat_cnv_size("1048576kb", 0, buf, sizeof(buf)), "1024mb");
    CHECK_STR(qstat_cnv_size("1048576kb", QSTAT_ALT_G, buf, sizeof(buf)),
              "1gb");
    CHECK_STR(qstat_cnv_size("1gb", QSTAT_ALT_M, buf, sizeof(buf)), "128mw");
    CHECK_STR(qstat_cnv_size("1024", 0, buf, sizeof(buf)), "1024 b");
    dv_buf_cleanup(&b);
    cli_job_cleanup(&j);
}

static void
test_prt_attr_wrapping(void)
{
    struct dv_buf b;
    char long_value[200];

    dv_buf_init(&b);
    qstat_prt_attr(&b, "Resource_List", "select", "1:ncpus=2", 0);
    CHECK_STR(dv_buf_str(&b), "    Resource_List.select = 1:ncpus=2");
    dv_buf_reset(&b);
    /* Pieces fit while len + start < 78 (start = name + 7, commas not
     * counted); a piece that does not starts on "\n\t" (start = 9). */
    qstat_prt_attr(&b, "Variable_List", NULL,
                   "PBS_O_HOME=/home/alice,PBS_O_LANG=C.UTF-8,"
                   "PBS_O_LOGNAME=alice,PBS_O_SHELL=/bin/bash",
                   0);
    CHECK_STR(dv_buf_str(&b),
              "    Variable_List = PBS_O_HOME=/home/alice,PBS_O_LANG=C.UTF-8,"
              "\n\tPBS_O_LOGNAME=alice,PBS_O_SHELL=/bin/bash");
    dv_buf_reset(&b);
    /* An overlong piece is broken character by character whenever start
     * passes 78 (then start = 8). */
    memset(long_value, 'a', 150);
    long_value[150] = '\0';
    qstat_prt_attr(&b, "comment", NULL, long_value, 0);
    {
        struct dv_buf want;

        dv_buf_init(&want);
        dv_buf_puts(&want, "    comment = ");
        dv_buf_append(&want, long_value, 65);
        dv_buf_puts(&want, "\n\t");
        dv_buf_append(&want, long_value, 71);
        dv_buf_puts(&want, "\n\t");
        dv_buf_append(&want, long_value, 14);
        CHECK_STR(dv_buf_str(&b), dv_buf_str(&want));
        dv_buf_cleanup(&want);
    }
    dv_buf_reset(&b);
    /* Empty pieces are skipped, like strtok does. */
    qstat_prt_attr(&b, "x", NULL, "a,,b", 0);
    CHECK_STR(dv_buf_str(&b), "    x = a,b");
    dv_buf_reset(&b);
    /* -w: one line, newline and formfeed shown escaped. */
    qstat_prt_attr(&b, "comment", NULL, "a\nb\fc,d", 1);
    CHECK_STR(dv_buf_str(&b), "    comment = a\\nb\\fc,d");
    dv_buf_cleanup(&b);
}

static void
test_full(void)
{
    struct cli_job j;
    struct qstat_attrs a;
    struct dv_buf b;

    load_job(&j);
    memset(&a, 0, sizeof(a));
    dv_buf_init(&b);
    qstat_job_attrs(&j, "srv", &a);
    qstat_full_text(&b, j.job_id, &a, 0);
    CHECK_STR(dv_buf_str(&b),
              "Job Id: 12.srv\n"
              "    Job_Name = hello\n"
              "    Job_Owner = alice@login1\n"
              "    resources_used.cput = 00:00:01\n"
              "    resources_used.mem = 10240kb\n"
              "    resources_used.ncpus = 2\n"
              "    resources_used.walltime = 00:01:05\n"
              "    job_state = R\n"
              "    queue = workq\n"
              "    server = srv\n"
              "    ctime = Tue Nov 14 22:13:20 2023\n"
              "    Error_Path = login1:/home/alice/run/hello.e12\n"
              "    exec_host = node1/0*2\n"
              "    exec_vnode = (node1:ncpus=2:mem=1048576kb)\n"
              "    Hold_Types = n\n"
              "    Join_Path = oe\n"
              "    Keep_Files = n\n"
              "    Mail_Points = a\n"
              "    mtime = Tue Nov 14 22:13:23 2023\n"
              "    Output_Path = login1:/home/alice/run/hello.o12\n"
              "    Priority = 0\n"
              "    qtime = Tue Nov 14 22:13:20 2023\n"
              "    Rerunable = True\n"
              "    Resource_List.mem = 1gb\n"
              "    Resource_List.ncpus = 2\n"
              "    Resource_List.nodect = 1\n"
              "    Resource_List.place = pack\n"
              "    Resource_List.select = 1:ncpus=2:mem=1gb\n"
              "    Resource_List.walltime = 00:10:00\n"
              "    stime = Tue Nov 14 22:13:23 2023\n"
              "    substate = 42\n"
              "    Variable_List = PBS_O_HOME=/home/alice,A=x\\,y,N=42\n"
              "    comment = Job run at Mon Jan 04 at 10:00 on "
              "(node1:ncpus=2)\n"
              "    etime = Tue Nov 14 22:13:20 2023\n"
              "    run_count = 1\n"
              "    Submit_arguments = -j oe job.sh\n"
              "    project = _pbs_project_default\n"
              "    Submit_Host = login1\n"
              "\n");
    dv_buf_reset(&b);
    qstat_attrs_cleanup(&a);
    memset(&a, 0, sizeof(a));
    qstat_attrs_add(&a, "Job_Name", NULL, "a|b");
    qstat_attrs_add(&a, "Resource_List", "ncpus", "1");
    qstat_attrs_add(&a, "comment", NULL, "x\ny");
    qstat_full_dsv(&b, "1.s", &a, "|");
    CHECK_STR(
        dv_buf_str(&b),
        "Job Id: 1.s|Job_Name=a\\|b|Resource_List.ncpus=1|comment=x\\ny\n");
    qstat_attrs_cleanup(&a);
    dv_buf_cleanup(&b);
    cli_job_cleanup(&j);
}

/* Sites' attributes in PBS's order (pbs-cli.md 3.4), custom resources
 * among the Resource_List, and W. */
static void
test_full_site(void)
{
    static const char site_json[] =
        "{\"id\": 13, \"job_id\": \"13.srv\", \"name\": \"w\", "
        "\"owner\": \"alice\", \"queue\": \"workq\", \"state\": "
        "\"waiting\", \"priority\": 0, \"hold_types\": \"\", "
        "\"rerunnable\": true, \"ctime\": 1700000000, \"qtime\": "
        "1700000000, \"mtime\": 1700000000, \"run_count\": 0, "
        "\"resource_list\": {\"ncpus\": \"1\", \"software\": \"gromacs\", "
        "\"nodect\": \"1\"}, "
        "\"spec\": {\"submit_host\": \"login1\", \"join\": \"n\", "
        "\"account\": \"acct42\", \"project\": \"climate\", "
        "\"mail_points\": \"be\", \"mail_users\": \"a@x.org,bob\", "
        "\"execution_time\": 1700003600, \"keep_files\": \"oe\", "
        "\"shell\": \"/bin/sh\", "
        "\"shell_path_list\": \"/bin/bash@n1,/bin/sh\", "
        "\"stdout\": \"/h/w.o13\", \"stderr\": \"/h/w.e13\"}}";
    struct cli_job j;
    struct qstat_attrs a;
    struct dv_buf b;
    json_t *o = json_loads(site_json, 0, NULL);

    CHECK(o != NULL);
    CHECK_INT(cli_job_from_json(o, &j), 0);
    json_decref(o);
    memset(&a, 0, sizeof(a));
    dv_buf_init(&b);
    CHECK_INT(cli_job_state_letter(&j), 'W');
    qstat_job_attrs(&j, "srv", &a);
    qstat_full_text(&b, j.job_id, &a, 0);
    CHECK_STR(dv_buf_str(&b),
              "Job Id: 13.srv\n"
              "    Job_Name = w\n"
              "    Job_Owner = alice@login1\n"
              "    job_state = W\n"
              "    queue = workq\n"
              "    server = srv\n"
              "    Account_Name = acct42\n"
              "    ctime = Tue Nov 14 22:13:20 2023\n"
              "    Error_Path = login1:/h/w.e13\n"
              "    Execution_Time = Tue Nov 14 23:13:20 2023\n"
              "    Hold_Types = n\n"
              "    Join_Path = n\n"
              "    Keep_Files = oe\n"
              "    Mail_Points = be\n"
              "    Mail_Users = a@x.org,bob\n"
              "    mtime = Tue Nov 14 22:13:20 2023\n"
              "    Output_Path = login1:/h/w.o13\n"
              "    Priority = 0\n"
              "    qtime = Tue Nov 14 22:13:20 2023\n"
              "    Rerunable = True\n"
              "    Resource_List.ncpus = 1\n"
              "    Resource_List.nodect = 1\n"
              "    Resource_List.software = gromacs\n"
              "    Shell_Path_List = /bin/bash@n1,/bin/sh\n"
              "    run_count = 0\n"
              "    project = climate\n"
              "    Submit_Host = login1\n"
              "\n");
    qstat_attrs_cleanup(&a);
    dv_buf_cleanup(&b);
    cli_job_cleanup(&j);
}

static void
test_json(void)
{
    struct qstat_attrs a;
    struct dv_buf b;
    json_t *root;

    memset(&a, 0, sizeof(a));
    dv_buf_init(&b);
    qstat_attrs_add(&a, "Job_Name", NULL, "123");
    qstat_attrs_add(&a, "resources_used", "cput", "00:00:00");
    qstat_attrs_add(&a, "resources_used", "ncpus", "1");
    qstat_attrs_add(&a, "job_state", NULL, "R");
    qstat_attrs_add(&a, "Priority", NULL, "-5");
    qstat_attrs_add(&a, "Rerunable", NULL, "True");
    qstat_attrs_add(&a, "Resource_List", "walltime", "01:00:00");
    qstat_attrs_add(&a, "Variable_List", NULL,
                    "PBS_O_HOME=/home/a,X=1\\,2,EQ=a=b,N=1.50");
    qstat_attrs_add(&a, "comment", NULL, "say \"hi\"\t\\ \x01");
    root = json_object();
    json_object_set_new(root, "timestamp", json_integer(1609750000));
    json_object_set_new(root, "pbs_server", json_string("srv"));
    json_object_set_new(root, "Jobs", json_object());
    json_object_set_new(json_object_get(root, "Jobs"), "1.srv",
                        qstat_attrs_json(&a));
    json_object_set_new(root, "empty", json_object());
    json_object_set_new(root, "list", json_pack("[s,s]", "a", "b"));
    cli_json_print(&b, root);
    CHECK_STR(dv_buf_str(&b),
              "{\n"
              "\t\"timestamp\":\t1609750000,\n"
              "\t\"pbs_server\":\t\"srv\",\n"
              "\t\"Jobs\":\t{\n"
              "\t\t\"1.srv\":\t{\n"
              "\t\t\t\"Job_Name\":\t\"123\",\n"
              "\t\t\t\"resources_used\":\t{\n"
              "\t\t\t\t\"cput\":\t\"00:00:00\",\n"
              "\t\t\t\t\"ncpus\":\t1\n"
              "\t\t\t},\n"
              "\t\t\t\"job_state\":\t\"R\",\n"
              "\t\t\t\"Priority\":\t-5,\n"
              "\t\t\t\"Rerunable\":\t\"True\",\n"
              "\t\t\t\"Resource_List\":\t{\n"
              "\t\t\t\t\"walltime\":\t\"01:00:00\"\n"
              "\t\t\t},\n"
              "\t\t\t\"Variable_List\":\t{\n"
              "\t\t\t\t\"PBS_O_HOME\":\t\"/home/a\",\n"
              "\t\t\t\t\"X\":\t\"1,2\",\n"
              "\t\t\t\t\"EQ\":\t\"a=b\",\n"
              "\t\t\t\t\"N\":\t1.5\n"
              "\t\t\t},\n"
              "\t\t\t\"comment\":\t\"say \\\"hi\\\"\\t\\\\ \\u0001\"\n"
              "\t\t}\n"
              "\t},\n"
              "\t\"empty\":\t{\n"
              "\t},\n"
              "\t\"list\":\t[\"a\", \"b\"]\n"
              "}");
    json_decref(root);
    qstat_attrs_cleanup(&a);
    dv_buf_cleanup(&b);
    CHECK(cli_json_is_number("0"));
    CHECK(cli_json_is_number("-12.5e3"));
    CHECK(!cli_json_is_number("00:00:00"));
    CHECK(!cli_json_is_number("1gb"));
    CHECK(!cli_json_is_number(""));
    CHECK(!cli_json_is_number("1."));
    CHECK(!cli_json_is_number(" 1"));
}

static void
test_decode(void)
{
    struct cli_job j;
    json_t *o = json_loads("{\"id\": 3, \"state\": \"finished\", "
                           "\"resource_list\": {\"ncpus\": 4}, "
                           "\"exit_status\": 271, \"rerunnable\": false}",
                           0, NULL);
    char *srv;

    CHECK_INT(cli_job_from_json(o, &j), 0);
    CHECK_STR(j.job_id, "3");
    CHECK_INT(cli_job_state_letter(&j), 'F');
    CHECK_INT(j.has_exit_status, 1);
    CHECK_INT(j.exit_status, 271);
    CHECK_INT(j.rerunnable, 0);
    CHECK_INT(j.has_used, 0);
    CHECK_INT(j.ctime < 0, 1);
    CHECK_INT(j.nrlist, 1);
    CHECK_STR(j.rlist[0].value, "4");
    srv = cli_job_server(&j, "list-srv");
    CHECK_STR(srv, "list-srv");
    free(srv);
    cli_job_cleanup(&j);
    json_decref(o);
    CHECK_INT(cli_job_from_json(NULL, &j), -1);
}

/* An array and its subjobs from the API's "array" object: B and X, the
 * array attributes in PBS's order, the subjob's output path. */
static void
test_array(void)
{
    static const char text[] =
        "{\"id\": 12, \"job_id\": \"12[].srv\", \"name\": \"arr\", "
        "\"owner\": \"alice\", \"queue\": \"workq\", \"state\": "
        "\"running\", \"hold_types\": \"\", \"exec_host\": null, "
        "\"spec\": {\"stdout\": \"/w/arr.o12.^array_index^\"}, "
        "\"array\": {\"indices_submitted\": \"1-5\", \"indices_remaining\": "
        "\"4,5\", \"state_count\": {\"queued\": 2, \"running\": 1, "
        "\"exiting\": 0, \"expired\": 2}, \"subjobs\": ["
        "{\"index\": 1, \"job_id\": \"12[1].srv\", \"state\": \"finished\", "
        "\"exit_status\": 0, \"exec_host\": \"node1/0*1\"}, "
        "{\"index\": 3, \"job_id\": \"12[3].srv\", \"state\": \"running\"}, "
        "{\"index\": 4, \"job_id\": \"12[4].srv\", \"state\": \"queued\"}]}}";
    json_t *o = json_loads(text, 0, NULL);
    struct cli_job j;
    struct qstat_attrs a;
    struct dv_buf b;

    CHECK_INT(cli_job_from_json(o, &j), 0);
    json_decref(o);
    CHECK_INT(j.array, CLI_ARRAY_JOB);
    CHECK_INT(cli_job_state_letter(&j), 'B');
    CHECK_INT(j.nsubjobs, 3);
    CHECK_INT(j.subjobs[0].array, CLI_SUBJOB);
    CHECK_INT(cli_job_state_letter(&j.subjobs[0]), 'X');
    CHECK_INT(cli_job_state_letter(&j.subjobs[1]), 'R');
    CHECK_INT(cli_job_state_letter(&j.subjobs[2]), 'Q');
    CHECK_STR(j.subjobs[0].job_id, "12[1].srv");
    CHECK_STR(j.subjobs[0].exec_host, "node1/0*1");
    CHECK_STR(j.subjobs[0].stdout_path, "/w/arr.o12.1");
    CHECK_STR(j.subjobs[0].name, "arr");

    memset(&a, 0, sizeof(a));
    qstat_job_attrs(&j, "srv", &a);
    dv_buf_init(&b);
    qstat_full_text(&b, j.job_id, &a, 0);
    CHECK(strstr(dv_buf_str(&b),
                 "    array = True\n    array_state_count = "
                 "Queued:2 Running:1 Exiting:0 Expired:2 \n"
                 "    array_indices_submitted = 1-5\n"
                 "    array_indices_remaining = 4,5\n") != NULL);
    CHECK(strstr(dv_buf_str(&b), "job_state = B") != NULL);
    qstat_attrs_cleanup(&a);
    dv_buf_reset(&b);
    memset(&a, 0, sizeof(a));
    qstat_job_attrs(&j.subjobs[0], "srv", &a);
    qstat_full_text(&b, j.subjobs[0].job_id, &a, 0);
    CHECK(strstr(dv_buf_str(&b), "Job Id: 12[1].srv\n") != NULL);
    CHECK(strstr(dv_buf_str(&b), "    job_state = X\n") != NULL);
    CHECK(strstr(dv_buf_str(&b),
                 "    array_id = 12[].srv\n    array_index = 1\n") != NULL);
    CHECK(strstr(dv_buf_str(&b), "array = True") == NULL);
    qstat_attrs_cleanup(&a);
    dv_buf_cleanup(&b);
    cli_job_cleanup(&j);
}

/* estimated.start_time (qstat -f) and the Est Start column (qstat -T). */
static void
test_estimated_start(void)
{
    struct cli_job j;
    struct qstat_attrs a;
    struct dv_buf b;
    char buf[32];
    double now = 1700000000; /* Tue Nov 14 22:13:20 2023 UTC */

    load_job(&j);
    CHECK(j.est_start < 0); /* not in the answer: unset */
    j.est_start = now + 3600;
    memset(&a, 0, sizeof(a));
    dv_buf_init(&b);
    qstat_job_attrs(&j, "srv", &a);
    qstat_full_text(&b, j.job_id, &a, 0);
    CHECK(strstr(dv_buf_str(&b),
                 "    Submit_arguments = -j oe job.sh\n"
                 "    estimated.start_time = Tue Nov 14 23:13:20 2023\n"
                 "    project = _pbs_project_default\n"
                 "    Submit_Host = login1\n") != NULL);
    dv_buf_reset(&b);
    qstat_alt_header_opt(&b, "srv", 0, QSTAT_ALT_EST);
    qstat_alt_row(&b, &j, QSTAT_ALT_EST);
    CHECK(strstr(dv_buf_str(&b), "Req'd  Req'd   Est\n") != NULL);
    CHECK(strstr(dv_buf_str(&b), "Memory Time  S Start\n") != NULL);
    /* (the row compares with the real clock: 2023 is another year) */
    CHECK(strstr(dv_buf_str(&b), " R  2023\n") != NULL);
    qstat_est_start(now + 3600, now, buf, sizeof(buf));
    CHECK_STR(buf, "23:13");
    qstat_est_start(now + 2 * 86400, now, buf, sizeof(buf));
    CHECK_STR(buf, "Th 22");
    qstat_est_start(now + 30 * 86400, now, buf, sizeof(buf));
    CHECK_STR(buf, "Dec");
    qstat_est_start(now + 400 * 86400, now, buf, sizeof(buf));
    CHECK_STR(buf, "2024");
    qstat_est_start(-1, now, buf, sizeof(buf));
    CHECK_STR(buf, " -- ");
    qstat_attrs_cleanup(&a);
    dv_buf_cleanup(&b);
    cli_job_cleanup(&j);
}

int
main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    RUN(test_default_format);
    RUN(test_truncation);
    RUN(test_job_rows);
    RUN(test_alt_format);
    RUN(test_prt_attr_wrapping);
    RUN(test_full);
    RUN(test_full_site);
    RUN(test_json);
    RUN(test_decode);
    RUN(test_array);
    RUN(test_estimated_start);
    return unit_done();
}
