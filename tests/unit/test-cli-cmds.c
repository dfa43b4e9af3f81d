/* Unit tests for the commands' flows that end before the server is asked:
 * usage errors, script errors, directive errors, and the report when no
 * server answers (DROVER_ADDR points at a closed port). Messages go to
 * stderr; the tests check exit statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

static char tmpdir[] = "/tmp/test-cli-cmds-XXXXXX";

/* Writes a script into tmpdir; returns its path (static buffer). */
static const char *
script(const char *name, const char *text)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static int
run(int (*fn)(int, char **), const char **words)
{
    char *argv[32];
    int argc = 0;

    for (int i = 0; words[i] != NULL && argc < 31; i++) {
        argv[argc++] = (char *)words[i];
    }
    argv[argc] = NULL;
    return fn(argc, argv);
}

#define RUN_CMD(fn, ...) run((fn), (const char *[]){__VA_ARGS__, NULL})

static void
test_qsub_usage(void)
{
    const char *ok = script("ok.sh", "#!/bin/sh\necho hi\n");

    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-Z", ok), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-r", "x", ok), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-l", "walltime", ok), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-m", "abx", ok), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-a", "2460", ok), 2);
    /* The script must be the last argument, and not come with "--". */
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", ok, "-N", "x"), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", ok, ok), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", ok, "--", "/bin/true"), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "--"), 2);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "--version"), 0);
}

static void
test_qsub_script_errors(void)
{
    char missing[300];

    snprintf(missing, sizeof(missing), "%s/missing.sh", tmpdir);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", missing), 1);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", tmpdir), 1);
    CHECK_INT(
        RUN_CMD(cmd_qsub, "qsub", script("crlf.sh", "#!/bin/sh\r\necho\r\n")),
        1);
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub",
                      script("bad.sh", "#!/bin/sh\n#PBS -N ok -Z\n")),
              1);
    CHECK_INT(
        RUN_CMD(cmd_qsub, "qsub", script("badp.sh", "#PBS -p 5000\necho\n")),
        1);
    CHECK_INT(
        RUN_CMD(cmd_qsub, "qsub", script("operand.sh", "#PBS foo\necho\n")), 1);
    CHECK_INT(
        RUN_CMD(cmd_qsub, "qsub", script("quote.sh", "#PBS -N \"open\necho\n")),
        1);
    /* Command line -C "" turns directive scanning off, so the bad
     * directive is never read; the submission then fails to connect. */
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-C", "",
                      script("bad2.sh", "#PBS -Z\necho\n")),
              111);
    /* Options after "--" belong to the command. */
    CHECK_INT(RUN_CMD(cmd_qsub, "qsub", "-N", "x", "--", "/bin/ls", "-l"), 111);
}

static void
test_qstat_usage(void)
{
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-Z"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-a", "-i"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-G", "-M"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-F", "json"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-f", "-F", "xml"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-f", "-F", "json", "-w"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-D", ",", "-f", "-F", "dsv"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-1"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-Q", "-a"), 2); /* conflicting */
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "-B"), 2);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "1x"), 1);
    CHECK_INT(RUN_CMD(cmd_qstat, "qstat", "12"), 111);
}

static void
test_qdel_usage(void)
{
    CHECK_INT(RUN_CMD(cmd_qdel, "qdel"), 2);
    CHECK_INT(RUN_CMD(cmd_qdel, "qdel", "-W", "bogus", "1"), 2);
    CHECK_INT(RUN_CMD(cmd_qdel, "qdel", "-x", "1"), 2);
    CHECK_INT(RUN_CMD(cmd_qdel, "qdel", "abc"), 1);
    /* Every operand is processed; the last failure decides. */
    CHECK_INT(RUN_CMD(cmd_qdel, "qdel", "-W", "force", "abc", "12"), 111);
    CHECK_INT(RUN_CMD(cmd_qdel, "qdel", "12", "abc"), 1);
    CHECK_INT(RUN_CMD(cmd_qhold, "qhold"), 2);
    CHECK_INT(RUN_CMD(cmd_qhold, "qhold", "-h", "x", "1"), 2);
    CHECK_INT(RUN_CMD(cmd_qhold, "qhold", "-h", "", "1"), 2);
    CHECK_INT(RUN_CMD(cmd_qrls, "qrls", "-h", "un", "1"), 2);
    CHECK_INT(RUN_CMD(cmd_qrls, "qrls", "-h", "uos", "1"), 111);
    CHECK_INT(RUN_CMD(cmd_qrls, "qrls", "--version"), 0);
}

int
main(void)
{
    static const char *const names[] = {"ok.sh",   "crlf.sh",    "bad.sh",
                                        "badp.sh", "operand.sh", "quote.sh",
                                        "bad2.sh", NULL};

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* Port 1 on loopback: nothing listens, the connection is refused. */
    setenv("DROVER_ADDR", "http://127.0.0.1:1", 1);
    RUN(test_qsub_usage);
    RUN(test_qsub_script_errors);
    RUN(test_qstat_usage);
    RUN(test_qdel_usage);
    for (int i = 0; names[i] != NULL; i++) {
        char path[300];

        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return unit_done();
}
