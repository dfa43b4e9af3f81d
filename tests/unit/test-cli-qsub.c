/* Unit tests for cli/qsub-opts.c and cli/getopt.c: option parsing, PBS's
 * precedence (command line over directives, last occurrence wins inside
 * one source, -l merged per resource), client-side rejections and the job
 * spec built from the result. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

/* Parses a NULL-terminated word list as source src; returns the number of
 * errors and leaves the messages in errs. */
static int
parse(struct qsub_opts *o, int src, struct dv_buf *errs, const char **words)
{
    char *argv[64];
    int argc = 0;
    struct cli_getopt g;
    int n;

    argv[argc++] = (char *)"qsub";
    for (int i = 0; words[i] != NULL; i++) {
        argv[argc++] = (char *)words[i];
    }
    argv[argc] = NULL;
    n = qsub_opts_parse(o, argc, argv, src, errs, &g);
    cli_getopt_cleanup(&g);
    return n;
}

#define WORDS(...) ((const char *[]){__VA_ARGS__, NULL})

static const char *
res(const struct qsub_opts *o, const char *name)
{
    for (int i = 0; i < o->nres; i++) {
        if (strcmp(o->res[i].name, name) == 0) {
            return o->res[i].value;
        }
    }
    return NULL;
}

static void
test_getopt(void)
{
    char *argv[] = {(char *)"qstat",  (char *)"12", (char *)"-f",
                    (char *)"-uroot", (char *)"-x", (char *)"13",
                    (char *)"--",     (char *)"-a", NULL};
    struct cli_getopt g;
    struct dv_buf errs;
    int c;
    int seen = 0;

    dv_buf_init(&errs);
    cli_getopt_init(&g, 8, argv, "fxu:", "qstat");
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        if (c == 'u') {
            CHECK_STR(g.optarg, "root");
        }
        seen++;
    }
    CHECK_INT(seen, 3);
    CHECK_INT(g.noperands, 3);
    CHECK_STR(g.operands[0], "12");
    CHECK_STR(g.operands[1], "13");
    CHECK_STR(g.operands[2], "-a");
    CHECK_INT(g.ddash, 6);
    CHECK_INT(errs.len, 0);
    cli_getopt_cleanup(&g);

    {
        char *bad[] = {(char *)"qsub", (char *)"-Z", (char *)"-fx",
                       (char *)"-l", NULL};

        cli_getopt_init(&g, 4, bad, "fl:", "qsub");
        g.errors = &errs;
        CHECK_INT(cli_getopt_next(&g), '?');
        CHECK_INT(cli_getopt_next(&g), 'f');
        CHECK_INT(cli_getopt_next(&g), '?');
        CHECK_INT(cli_getopt_next(&g), '?');
        CHECK_INT(cli_getopt_next(&g), -1);
        CHECK_STR(dv_buf_str(&errs),
                  "qsub: invalid option -- 'Z'\n"
                  "qsub: invalid option -- 'x'\n"
                  "qsub: option requires an argument -- 'l'\n");
        cli_getopt_cleanup(&g);
    }
    {
        /* An option's argument may start with '-', even "--". */
        char *arg[] = {
            (char *)"qsub", (char *)"-N",   (char *)"--", (char *)"-l",
            (char *)"-x",   (char *)"s.sh", NULL};

        cli_getopt_init(&g, 6, arg, "N:l:", "qsub");
        CHECK_INT(cli_getopt_next(&g), 'N');
        CHECK_STR(g.optarg, "--");
        CHECK_INT(cli_getopt_next(&g), 'l');
        CHECK_STR(g.optarg, "-x");
        CHECK_INT(cli_getopt_next(&g), -1);
        CHECK_INT(g.ddash, -1);
        CHECK_INT(g.noperands, 1);
        CHECK_INT(g.operand_idx[0], 5);
        cli_getopt_cleanup(&g);
    }
    dv_buf_cleanup(&errs);
}

static void
test_options(void)
{
    struct qsub_opts o;
    struct dv_buf errs;

    qsub_opts_init(&o);
    dv_buf_init(&errs);
    CHECK_INT(
        parse(&o, QSUB_SRC_CMDLINE, &errs,
              WORDS("-N", "job", "-q", "workq", "-o", "out", "-e", "err", "-j",
                    "oe", "-h", "-p", " 10", "-r", "n", "-S",
                    "/bin/bash@host,/bin/sh", "-z", "-V", "-v", "A=1,B", "-C",
                    "#XX", "-f", "-Wdepend=afterok:1.srv,afterany:2.srv")),
        0);
    CHECK_STR(dv_buf_str(&errs), "");
    CHECK_STR(o.name, "job");
    CHECK_STR(o.queue, "workq");
    CHECK_STR(o.out_path, "out");
    CHECK_STR(o.err_path, "err");
    CHECK_STR(o.join, "oe");
    CHECK_INT(o.hold, 1);
    CHECK_INT(o.priority, 10);
    CHECK_INT(o.rerunnable, 0);
    CHECK_INT(o.rerun_src, QSUB_SRC_CMDLINE);
    /* The entry without a host is the one used (PBS picks it on every
     * host not named); Shell_Path_List keeps the list. */
    CHECK_STR(o.shell, "/bin/sh");
    CHECK_STR(o.shell_list, "/bin/bash@host,/bin/sh");
    CHECK_INT(o.z, 1);
    CHECK_INT(o.V, 1);
    CHECK_STR(o.vlist, "A=1,B");
    CHECK_STR(o.prefix, "#XX");
    CHECK_STR(o.depend, "afterok:1.srv,afterany:2.srv");
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

static void
test_resources(void)
{
    struct qsub_opts o;
    struct dv_buf errs;

    qsub_opts_init(&o);
    dv_buf_init(&errs);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                    WORDS("-l", "ncpus=2,mem=1gb", "-l", "walltime=1:00:00",
                          "-lselect=2:ncpus=4:mem=1gb+"
                          "1:ncpus=1",
                          "-l", "place=\"scatter:excl\",foo=bar")),
              0);
    CHECK_INT(o.nres, 6);
    CHECK_STR(res(&o, "ncpus"), "2");
    CHECK_STR(res(&o, "mem"), "1gb");
    CHECK_STR(res(&o, "walltime"), "1:00:00");
    CHECK_STR(res(&o, "select"), "2:ncpus=4:mem=1gb+1:ncpus=1");
    CHECK_STR(res(&o, "place"), "scatter:excl");
    CHECK_STR(res(&o, "foo"), "bar");
    /* Last occurrence wins inside one source. */
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-l", "mem=2gb")), 0);
    CHECK_STR(res(&o, "mem"), "2gb");
    /* Unparsable -l. */
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-l", "walltime")), 1);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-l", "=5")), 1);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-l", "a=1,")), 1);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-l", "a=")), 1);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-l", "a=\"1")), 1);
    CHECK_STR(dv_buf_str(&errs), "qsub: illegal -l value\n"
                                 "qsub: illegal -l value\n"
                                 "qsub: illegal -l value\n"
                                 "qsub: illegal -l value\n"
                                 "qsub: illegal -l value\n");
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

static void
test_precedence(void)
{
    struct qsub_opts o;
    struct dv_buf errs;

    qsub_opts_init(&o);
    dv_buf_init(&errs);
    /* The command line is parsed first... */
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                    WORDS("-N", "cmd", "-l", "walltime=1:00", "-r", "y")),
              0);
    /* ...and directives never replace what it set. */
    CHECK_INT(parse(&o, QSUB_SRC_DIRECTIVE, &errs,
                    WORDS("-N", "dir", "-q", "q1", "-l",
                          "walltime=9:00,mem=1gb", "-r", "n")),
              0);
    CHECK_INT(parse(&o, QSUB_SRC_DIRECTIVE, &errs,
                    WORDS("-q", "q2", "-l", "mem=2gb")),
              0);
    CHECK_STR(o.name, "cmd");
    CHECK_INT(o.rerunnable, 1);
    CHECK_STR(o.queue, "q2");
    CHECK_STR(res(&o, "walltime"), "1:00");
    CHECK_STR(res(&o, "mem"), "2gb");
    CHECK_INT(o.nres, 2);
    CHECK_STR(dv_buf_str(&errs), "");
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

static void
test_illegal_values(void)
{
    static const struct {
        const char *opt;
        const char *value;
        const char *msg;
    } cases[] = {
        {"-r", "x", "qsub: illegal -r value\n"},
        {"-r", "yes", "qsub: illegal -r value\n"},
        {"-j", "x", "qsub: illegal -j value\n"},
        {"-p", "5000", "qsub: illegal -p value\n"},
        {"-p", "abc", "qsub: illegal -p value\n"},
        {"-N", "a b", "qsub: illegal -N value\n"},
        {"-N", "a/b", "qsub: illegal -N value\n"},
        {"-S", "bash", "qsub: illegal -S value\n"},
        {"-W", "", "qsub: illegal -W value\n"},
        {"-W", "depend=", "qsub: illegal -W value\n"},
        {"-W", "depend=afterok:", "qsub: illegal -W value\n"},
        {"-W", "depend=afterok:3,afterany:", "qsub: illegal -W value\n"},
        {"-W", "depend=later:3", "qsub: illegal -W value\n"},
        {"-W", "=x", "qsub: illegal -W value\n"},
        {"-W", "block=maybe", "qsub: illegal -W value\n"},
        {"-W", "umask=022", "qsub: -W umask is not supported yet\n"},
        {"-m", "abx", "qsub: illegal -m value\n"},
        {"-m", "aa", "qsub: illegal -m value\n"},
        {"-m", "an", "qsub: illegal -m value\n"},
        {"-m", "", "qsub: illegal -m value\n"},
        {"-m", "abej",
         "qsub: mail option 'j' can not be used without array job\n"},
        {"-M", "a b", "qsub: illegal -M value\n"},
        {"-M", "a,,b", "qsub: illegal -M value\n"},
        {"-M", "-oops", "qsub: illegal -M value\n"},
        {"-M", "", "qsub: illegal -M value\n"},
        {"-k", "x", "qsub: illegal -k value\n"},
        {"-k", "oo", "qsub: illegal -k value\n"},
        {"-k", "on", "qsub: illegal -k value\n"},
        {"-a", "120", "qsub: illegal -a value\n"},
        {"-a", "2460", "qsub: illegal -a value\n"},
        {"-a", "1260", "qsub: illegal -a value\n"},
        {"-a", "13011200", "qsub: illegal -a value\n"},
        {"-a", "1200.5", "qsub: illegal -a value\n"},
        {"-a", "12:00", "qsub: illegal -a value\n"},
        {"-A", "", "qsub: illegal -A value\n"},
        {"-P", "", "qsub: illegal -P value\n"},
        {"-S", "/bin/sh@", "qsub: illegal -S value\n"},
        {"-S", "/bin/sh,", "qsub: illegal -S value\n"},
        {"-S", "/bin/sh,sh@h", "qsub: illegal -S value\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qsub_opts o;
        struct dv_buf errs;

        qsub_opts_init(&o);
        dv_buf_init(&errs);
        CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                        WORDS(cases[i].opt, cases[i].value)),
                  1);
        CHECK_STR(dv_buf_str(&errs), cases[i].msg);
        qsub_opts_cleanup(&o);
        dv_buf_cleanup(&errs);
    }
    {
        struct qsub_opts o;
        struct dv_buf errs;

        qsub_opts_init(&o);
        dv_buf_init(&errs);
        CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                        WORDS("-W", "block=false,interactive=false")),
                  0);
        CHECK_INT(o.block_src > 0 && o.block, 0);
        qsub_opts_cleanup(&o);
        qsub_opts_init(&o);
        /* -W block=true: the directive is overridden by the command line */
        CHECK_INT(
            parse(&o, QSUB_SRC_DIRECTIVE, &errs, WORDS("-W", "block=false")),
            0);
        CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-W", "block=TRUE")),
                  0);
        CHECK_INT(o.block, 1);
        CHECK_STR(dv_buf_str(&errs), "");
        qsub_opts_cleanup(&o);
        dv_buf_cleanup(&errs);
    }
}

static void
test_prefix(void)
{
    struct qsub_opts o;
    struct dv_buf errs;

    qsub_opts_init(&o);
    dv_buf_init(&errs);
    CHECK_STR(qsub_dir_prefix(&o, NULL), "#PBS");
    CHECK_STR(qsub_dir_prefix(&o, "#ENV"), "#ENV");
    CHECK_STR(qsub_dir_prefix(&o, ""), "");
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-C", "#CMD")), 0);
    CHECK_STR(qsub_dir_prefix(&o, "#ENV"), "#CMD");
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-C", "")), 0);
    CHECK_STR(qsub_dir_prefix(&o, "#ENV"), "");
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

static void
test_directive_error(void)
{
    char *argv[] = {(char *)"qsub", (char *)"-N", (char *)"x", (char *)"-Z",
                    NULL};
    struct dv_buf errs;

    dv_buf_init(&errs);
    qsub_directive_error(&errs, 4, argv);
    CHECK_STR(dv_buf_str(&errs), "qsub: directive error: -N x -Z \n");
    dv_buf_cleanup(&errs);
}

static void
test_abs_path(void)
{
    char *p;

    p = qsub_abs_path("out.txt", "/home/a/run");
    CHECK_STR(p, "/home/a/run/out.txt");
    free(p);
    p = qsub_abs_path("/tmp/o", "/home/a");
    CHECK_STR(p, "/tmp/o");
    free(p);
    p = qsub_abs_path("host1:logs/o", "/home/a/");
    CHECK_STR(p, "host1:/home/a/logs/o");
    free(p);
    p = qsub_abs_path("host1:/abs/o", "/home/a");
    CHECK_STR(p, "host1:/abs/o");
    free(p);
    p = qsub_abs_path("dir/a:b", "/w");
    CHECK_STR(p, "/w/dir/a:b");
    free(p);
}

static char *env_fixture[] = {
    (char *)"HOME=/home/alice", (char *)"LANG=C.UTF-8",
    (char *)"LOGNAME=alice",    (char *)"PATH=/usr/bin:/bin",
    (char *)"SHELL=/bin/bash",  (char *)"FOO=foo,val",
    (char *)"PBS_O_FAKE=x",     (char *)"BASH_FUNC_f%%=() {",
    (char *)"TZ=UTC",           NULL};

static void
base_ctx(struct qsub_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->user = "alice";
    ctx->group = "users";
    ctx->host = "login1";
    ctx->fqdn = "login1.example.com";
    ctx->cwd = "/home/alice/run";
    ctx->system = "Linux";
    ctx->envp = env_fixture;
    ctx->script = "#!/bin/sh\necho hi\n";
    ctx->default_name = "job.sh";
    ctx->submit_args = "-V job.sh";
}

static void
test_spec(void)
{
    struct qsub_opts o;
    struct dv_buf errs;
    struct dv_job_spec s;
    struct qsub_ctx ctx;
    static const char *const want_env[] = {"PBS_O_HOME=/home/alice",
                                           "PBS_O_LANG=C.UTF-8",
                                           "PBS_O_LOGNAME=alice",
                                           "PBS_O_PATH=/usr/bin:/bin",
                                           "PBS_O_SHELL=/bin/bash",
                                           "PBS_O_TZ=UTC",
                                           "PBS_O_WORKDIR=/home/alice/run",
                                           "PBS_O_SYSTEM=Linux",
                                           "A=1,2",
                                           "FOO=foo,val",
                                           "Q=a b",
                                           "HOME=/home/alice",
                                           "LANG=C.UTF-8",
                                           "LOGNAME=alice",
                                           "PATH=/usr/bin:/bin",
                                           "SHELL=/bin/bash",
                                           "TZ=UTC",
                                           "PBS_O_HOST=login1.example.com"};

    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_job_spec_init(&s);
    base_ctx(&ctx);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                    WORDS("-V", "-v", "A='1,2',FOO,PBS_O_X=1,Q=a\\ b", "-o",
                          "logs/o", "-l", "walltime=10", "-q", "workq@srv",
                          "-Wdepend=afterok:3")),
              0);
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), 0);
    CHECK_STR(s.name, "job.sh");
    CHECK_STR(s.queue, "workq");
    CHECK_STR(s.owner, "alice");
    CHECK_STR(s.group, "users");
    CHECK_STR(s.submit_host, "login1");
    CHECK_STR(s.workdir, "/home/alice/run");
    CHECK_STR(s.script, "#!/bin/sh\necho hi\n");
    CHECK_STR(s.stdout_path, "/home/alice/run/logs/o");
    CHECK(s.stderr_path == NULL);
    CHECK_STR(s.join, "n");
    CHECK_INT(s.rerunnable, 1);
    CHECK_INT(s.hold, 0);
    CHECK_STR(s.depend, "afterok:3");
    CHECK_STR(s.submit_args, "-V job.sh");
    CHECK_INT(s.nresources, 1);
    CHECK_STR(s.resources[0].key, "walltime");
    CHECK_INT(s.nenv, (int)(sizeof(want_env) / sizeof(want_env[0])));
    for (int i = 0; i < s.nenv && i < 18; i++) {
        CHECK_STR(s.env[i], want_env[i]);
    }
    dv_job_spec_cleanup(&s);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

static void
test_spec_defaults(void)
{
    struct qsub_opts o;
    struct dv_buf errs;
    struct dv_job_spec s;
    struct qsub_ctx ctx;
    char *cmd[] = {(char *)"/bin/echo", (char *)"a b", NULL};
    char *noenv[] = {NULL};

    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_job_spec_init(&s);
    base_ctx(&ctx);
    ctx.envp = noenv;
    ctx.script = NULL;
    ctx.cmd_argv = cmd;
    ctx.cmd_argc = 2;
    ctx.default_name = "STDIN";
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), 0);
    CHECK_STR(s.name, "STDIN");
    CHECK(s.queue == NULL);
    CHECK(s.script == NULL);
    CHECK_INT(s.argc, 2);
    CHECK_STR(s.argv[1], "a b");
    CHECK_INT(s.nenv, 4);
    CHECK_STR(s.env[0], "PBS_O_HOME=/");
    CHECK_STR(s.env[1], "PBS_O_WORKDIR=/home/alice/run");
    CHECK_STR(s.env[3], "PBS_O_HOST=login1.example.com");
    dv_job_spec_cleanup(&s);

    /* -v naming a variable that is not set. */
    dv_job_spec_init(&s);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-v", "NOPE")), 0);
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), -1);
    CHECK_STR(dv_buf_str(&errs),
              "qsub: cannot send environment with the job\n");
    dv_job_spec_cleanup(&s);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

/* qsub -a with a fixed clock, in UTC: OpenPBS's rolling of the parts
 * left out to the next future time. */
static void
test_exec_time(void)
{
    /* Wed 2026-11-25 02:30:00 UTC */
    const time_t now = 1795573800;
    int64_t t;

    setenv("TZ", "UTC", 1);
    tzset();
    CHECK_INT(qsub_parse_exec_time("0245", now, &t), 0);
    CHECK_INT(t, now + 15 * 60);
    CHECK_INT(qsub_parse_exec_time("0230.30", now, &t), 0);
    CHECK_INT(t, now + 30);
    /* hhmm past (or now): tomorrow */
    CHECK_INT(qsub_parse_exec_time("0230", now, &t), 0);
    CHECK_INT(t, now + 86400);
    CHECK_INT(qsub_parse_exec_time("0100", now, &t), 0);
    CHECK_INT(t, now - 90 * 60 + 86400);
    /* DDhhmm: this month, or next month once past */
    CHECK_INT(qsub_parse_exec_time("261200", now, &t), 0);
    CHECK_INT(t, 1795694400); /* 2026-11-26 12:00 */
    CHECK_INT(qsub_parse_exec_time("241200", now, &t), 0);
    CHECK_INT(t, 1798113600); /* 2026-12-24 12:00 */
    /* MMDDhhmm: this year, or next year once past */
    CHECK_INT(qsub_parse_exec_time("12010000", now, &t), 0);
    CHECK_INT(t, 1796083200); /* 2026-12-01 */
    CHECK_INT(qsub_parse_exec_time("01010000", now, &t), 0);
    CHECK_INT(t, 1798761600); /* 2027-01-01 */
    /* YYMMDDhhmm and CCYYMMDDhhmm[.SS]: kept even in the past */
    CHECK_INT(qsub_parse_exec_time("2701010000", now, &t), 0);
    CHECK_INT(t, 1798761600);
    CHECK_INT(qsub_parse_exec_time("202001010000.05", now, &t), 0);
    CHECK_INT(t, 1577836805);
    CHECK_INT(qsub_parse_exec_time("7001010000", now, &t), 0);
    CHECK_INT(t, 0 + 0); /* 1970: 69-99 are 19YY */
    /* malformed */
    CHECK_INT(qsub_parse_exec_time("", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("123", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("12345", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("2400", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("0060", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("321200", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("00011200", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("1200.", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("1200.1", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("1200.99", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("12a0", now, &t), -1);
    CHECK_INT(qsub_parse_exec_time("1234567890123", now, &t), -1);
}

/* -A -P -m -M -k -a -S: parsed from the command line and directives
 * (command line wins), and carried into the spec. */
static void
test_site_options(void)
{
    struct qsub_opts o;
    struct dv_buf errs;
    struct dv_job_spec s;
    struct qsub_ctx ctx;
    char *sh;

    setenv("TZ", "UTC", 1);
    tzset();
    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_job_spec_init(&s);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                    WORDS("-A", "acct42", "-m", "be", "-k", "oed")),
              0);
    CHECK_INT(parse(&o, QSUB_SRC_DIRECTIVE, &errs,
                    WORDS("-A", "ignored", "-P", "climate", "-M",
                          "alice@example.org,bob", "-m", "n", "-a", "0245",
                          "-S", "/bin/bash@n1,/bin/zsh@n2", "-r", "n", "-l",
                          "select=3", "-l", "software=gromacs")),
              0);
    CHECK_STR(dv_buf_str(&errs), "");
    base_ctx(&ctx);
    ctx.now = 1795573800;
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), 0);
    CHECK_STR(s.account, "acct42");
    CHECK_STR(s.project, "climate");
    CHECK_STR(s.mail_points, "be");
    CHECK_STR(s.mail_users, "alice@example.org,bob");
    CHECK_STR(s.keep_files, "oed");
    CHECK_INT(s.execution_time, 1795573800 + 15 * 60);
    CHECK_STR(s.shell, "/bin/bash");
    CHECK_STR(s.shell_path_list, "/bin/bash@n1,/bin/zsh@n2");
    CHECK_INT(s.rerunnable, 0);
    /* select=N without chunk resources: N chunks of one cpu; software is
     * a custom resource, left for the server to check. */
    {
        struct dv_err err;

        dv_err_clear(&err);
        CHECK_INT(dv_job_spec_normalize(&s, &err), 0);
    }
    CHECK_INT(s.req.nodect, 3);
    CHECK_INT(s.req.ncpus, 3);
    CHECK_INT(s.ncustom, 1);
    CHECK_STR(s.resources[s.custom[0]].key, "software");
    {
        json_t *j = dv_job_spec_to_json(&s);
        json_t *rl = json_object_get(j, "resource_list");

        CHECK_STR(json_string_value(json_object_get(rl, "software")),
                  "gromacs");
        CHECK_STR(json_string_value(json_object_get(rl, "select")),
                  "3:ncpus=1");
        CHECK_STR(json_string_value(json_object_get(j, "account")), "acct42");
        CHECK_INT(json_integer_value(json_object_get(j, "execution_time")),
                  1795573800 + 15 * 60);
        json_decref(j);
    }
    dv_job_spec_cleanup(&s);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);

    sh = qsub_shell_from_list("/bin/sh");
    CHECK_STR(sh, "/bin/sh");
    free(sh);
    sh = qsub_shell_from_list("/bin/a@h1,/bin/b,/bin/c");
    CHECK_STR(sh, "/bin/b");
    free(sh);
    CHECK(qsub_shell_from_list("") == NULL);
    CHECK(qsub_shell_from_list(",/bin/sh") == NULL);
}

/* -J X-Y[:Z][%max]: validated as PBS's chk_Jrange, "illegal -J value"
 * otherwise; -W max_run_subjobs replaces %max; the spec carries the text. */
static void
test_array_option(void)
{
    static const char *const bad[] = {"5", "5-5",   "6-1", "1-5:0",
                                      "x", "1-5%0", "-1-5"};
    struct qsub_opts o;
    struct dv_buf errs;
    struct dv_job_spec s;
    struct qsub_ctx ctx;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        qsub_opts_init(&o);
        dv_buf_init(&errs);
        CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-J", bad[i])), 1);
        CHECK_STR(dv_buf_str(&errs), "qsub: illegal -J value\n");
        qsub_opts_cleanup(&o);
        dv_buf_cleanup(&errs);
    }

    /* the command line wins over a directive */
    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_job_spec_init(&s);
    base_ctx(&ctx);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-J", "0-99:3%4")), 0);
    CHECK_INT(parse(&o, QSUB_SRC_DIRECTIVE, &errs, WORDS("-J", "1-2")), 0);
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), 0);
    CHECK_STR(s.array, "0-99:3%4");
    dv_job_spec_cleanup(&s);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);

    /* -W max_run_subjobs=N sets the cap */
    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_job_spec_init(&s);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs,
                    WORDS("-J", "1-10%2", "-W", "max_run_subjobs=5")),
              0);
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), 0);
    CHECK_STR(s.array, "1-10%5");
    CHECK_INT(
        parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-W", "max_run_subjobs=0")),
        1);
    dv_job_spec_cleanup(&s);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);

    /* no -J: no array */
    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_job_spec_init(&s);
    CHECK_INT(parse(&o, QSUB_SRC_CMDLINE, &errs, WORDS("-N", "x")), 0);
    CHECK_INT(qsub_build_spec(&o, &ctx, &s, &errs), 0);
    CHECK(s.array == NULL);
    dv_job_spec_cleanup(&s);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
}

int
main(void)
{
    RUN(test_getopt);
    RUN(test_options);
    RUN(test_resources);
    RUN(test_precedence);
    RUN(test_illegal_values);
    RUN(test_prefix);
    RUN(test_directive_error);
    RUN(test_abs_path);
    RUN(test_spec);
    RUN(test_spec_defaults);
    RUN(test_exec_time);
    RUN(test_site_options);
    RUN(test_array_option);
    return unit_done();
}
