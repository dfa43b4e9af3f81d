/* Unit tests for cli/directives.c: directive scanning as pbs-cli.md 1.2
 * describes it. */
#include <stdlib.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

/* Scans script with prefix and joins every directive's tokens with '|',
 * directives separated by ';'. Returns a new string; "ERR<q>" on an
 * unmatched quote. */
static char *
scan_all(const char *script, const char *prefix)
{
    struct dir_scan s;
    struct dv_buf out;
    char **argv;
    int argc;
    char bad = 0;
    int rc;

    dv_buf_init(&out);
    dir_scan_init(&s, script);
    while ((rc = dir_scan_next(&s, prefix, &argv, &argc, &bad)) != 0) {
        if (rc < 0) {
            dv_buf_printf(&out, "ERR%c", bad);
            break;
        }
        CHECK_STR(argv[0], "qsub");
        CHECK(argv[argc] == NULL);
        if (out.len > 0) {
            dv_buf_putc(&out, ';');
        }
        for (int i = 1; i < argc; i++) {
            dv_buf_printf(&out, i > 1 ? "|%s" : "%s", argv[i]);
        }
        cli_strv_free(argv, argc);
    }
    return dv_buf_steal(&out);
}

#define CHECK_SCAN(script, prefix, want)                                       \
    do {                                                                       \
        char *got_ = scan_all((script), (prefix));                             \
        CHECK_STR(got_, (want));                                               \
        free(got_);                                                            \
    } while (0)

static void
test_basic(void)
{
    CHECK_SCAN("#!/bin/sh\n#PBS -N hello\necho hi\n", "#PBS", "-N|hello");
    CHECK_SCAN("#PBS -N x -l walltime=1:00:00\n", "#PBS",
               "-N|x|-l|walltime=1:00:00");
    CHECK_SCAN("#PBS -N a\n#PBS -q q1\n", "#PBS", "-N|a;-q|q1");
    CHECK_SCAN("   \t#PBS -j oe\n", "#PBS", "-j|oe");
    CHECK_SCAN("#PBS-N joined\n", "#PBS", "-N|joined");
    CHECK_SCAN("#PBS\n", "#PBS", "");
    CHECK_SCAN("#PBS -N last", "#PBS", "-N|last");
    CHECK_SCAN("", "#PBS", "");
    CHECK_SCAN("echo hi\n", "#PBS", "");
}

static void
test_quotes(void)
{
    CHECK_SCAN("#PBS -N \"a b\"\n", "#PBS", "-N|a b");
    CHECK_SCAN("#PBS -v 'A=x y,B=2'\n", "#PBS", "-v|A=x y,B=2");
    CHECK_SCAN("#PBS -N a\\ b\n", "#PBS", "-N|a b");
    CHECK_SCAN("#PBS -N pre\"mid dle\"post\n", "#PBS", "-N|premid dlepost");
    CHECK_SCAN("#PBS -N 'it\"s'\n", "#PBS", "-N|it\"s");
    CHECK_SCAN("#PBS -N \"\"\n", "#PBS", "-N|");
    CHECK_SCAN("#PBS -N \"open\n", "#PBS", "ERR\"");
    CHECK_SCAN("#PBS -N 'open\n", "#PBS", "ERR'");
}

static void
test_continuation(void)
{
    CHECK_SCAN("#PBS -N x \\\n   -q q\n", "#PBS", "-N|x|-q|q");
    CHECK_SCAN("#PBS -N x \\  \t\n-q q\necho\n", "#PBS", "-N|x|-q|q");
    CHECK_SCAN("#PBS -l select=1\\\n:ncpus=2\n", "#PBS", "-l|select=1:ncpus=2");
    CHECK_SCAN("#PBS -N a \\\n-q b \\\n-j oe\n#PBS -p 1\n", "#PBS",
               "-N|a|-q|b|-j|oe;-p|1");
    /* A continued last line ends the directive. */
    CHECK_SCAN("#PBS -N end \\", "#PBS", "-N|end");
}

static void
test_stop(void)
{
    /* The first executable line ends the directive block. */
    CHECK_SCAN("#PBS -N a\necho hi\n#PBS -N b\n", "#PBS", "-N|a");
    CHECK_SCAN("   echo x\n#PBS -N b\n", "#PBS", "");
    /* Blank lines, comments, "#!" and ':' in column 1 do not stop it. */
    CHECK_SCAN("#!/bin/sh\n\n# a comment\n: colon line\n  \n\t# indented\n"
               "#PBS -N z\n",
               "#PBS", "-N|z");
    /* ':' after blanks is an executable line. */
    CHECK_SCAN("  : x\n#PBS -N q\n", "#PBS", "");
    /* "####PBS" is a comment, not a directive, and does not stop it. */
    CHECK_SCAN("####PBS -V\n#PBS -N k\n", "#PBS", "-N|k");
    CHECK_SCAN("# PBS -N no\n#PBS -N yes\n", "#PBS", "-N|yes");
}

static void
test_prefix(void)
{
    const char *script = "#XX -N a\n#PBS -N b\n#XX -q c\n";

    CHECK_SCAN(script, "#XX", "-N|a;-q|c");
    CHECK_SCAN(script, "#PBS", "-N|b");
    CHECK_SCAN(script, "", "");
}

static void
test_prefix_changes_between_lines(void)
{
    struct dir_scan s;
    char **argv;
    int argc;
    char bad;

    dir_scan_init(&s, "#PBS -C #XX\n#PBS -N no\n#XX -N yes\n");
    CHECK_INT(dir_scan_next(&s, "#PBS", &argv, &argc, &bad), 1);
    CHECK_STR(argv[2], "#XX");
    cli_strv_free(argv, argc);
    CHECK_INT(dir_scan_next(&s, "#XX", &argv, &argc, &bad), 1);
    CHECK_STR(argv[2], "yes");
    cli_strv_free(argv, argc);
    CHECK_INT(dir_scan_next(&s, "#XX", &argv, &argc, &bad), 0);
}

static void
test_is_executable(void)
{
    CHECK(!dir_is_executable("\n", 1));
    CHECK(!dir_is_executable("", 0));
    CHECK(!dir_is_executable("# x\n", 4));
    CHECK(!dir_is_executable("#!/bin/sh\n", 10));
    CHECK(!dir_is_executable(":\n", 2));
    CHECK(dir_is_executable("echo\n", 5));
    CHECK(dir_is_executable("  :\n", 4));
    CHECK(dir_is_executable(" x", 2));
}

static void
test_match(void)
{
    CHECK_STR(dir_match("  #PBS -N x", 11, "#PBS"), " -N x");
    CHECK(dir_match("#PB", 3, "#PBS") == NULL);
    CHECK(dir_match("#PBS", 4, "") == NULL);
}

static void
test_crlf(void)
{
    CHECK(script_has_crlf("#!/bin/sh\r\necho\r\n"));
    CHECK(!script_has_crlf("#!/bin/sh\necho\n"));
    CHECK(!script_has_crlf("a\rb\n"));
    CHECK(!script_has_crlf(NULL));
}

int
main(void)
{
    RUN(test_basic);
    RUN(test_quotes);
    RUN(test_continuation);
    RUN(test_stop);
    RUN(test_prefix);
    RUN(test_prefix_changes_between_lines);
    RUN(test_is_executable);
    RUN(test_match);
    RUN(test_crlf);
    return unit_done();
}
