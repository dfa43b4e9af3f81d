/*
 * Job script directives (OpenPBS check_job_script.c and qsub's get_script
 * and make_argv): a directive is a line whose first non-blank text is the
 * prefix ("#PBS"); the rest of the line is split like a shell splits words
 * and parsed as qsub options. Scanning stops at the first executable line
 * (first non-blank character not '#'); blank lines, comments and lines
 * starting in column 1 with "#!" or ":" do not stop it. A directive line
 * ending in a backslash (blanks allowed after it) continues on the next
 * line. Everything here is pure: the caller owns the script text.
 */
#include <ctype.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"

void
dir_scan_init(struct dir_scan *s, const char *script)
{
    s->p = script != NULL ? script : "";
    s->stopped = 0;
    s->line = 0;
}

int
dir_is_executable(const char *line, size_t len)
{
    size_t i = 0;

    if (len > 0 &&
        (line[0] == ':' || (line[0] == '#' && len > 1 && line[1] == '!'))) {
        return 0;
    }
    while (i < len && isspace((unsigned char)line[i])) {
        i++;
    }
    return i < len && line[i] != '#';
}

const char *
dir_match(const char *line, size_t len, const char *prefix)
{
    size_t i = 0;
    size_t l = strlen(prefix);

    while (i < len && isspace((unsigned char)line[i])) {
        i++;
    }
    if (l > 0 && len - i >= l && strncmp(line + i, prefix, l) == 0) {
        return line + i + l;
    }
    return NULL;
}

/* Where a continued line's backslash is: the last non-blank character
 * before the end of the line, or -1 when the line does not continue. */
static long
continuation_at(const char *line, size_t len)
{
    size_t i = len;

    while (i > 0 && (line[i - 1] == ' ' || line[i - 1] == '\t' ||
                     line[i - 1] == '\n' || line[i - 1] == '\r')) {
        i--;
    }
    if (i > 0 && line[i - 1] == '\\') {
        return (long)(i - 1);
    }
    return -1;
}

void
cli_strv_free(char **v, int n)
{
    if (v == NULL) {
        return;
    }
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

int
dir_split(const char *text, char ***argvp, int *argcp, char *bad_quote)
{
    struct dv_buf word;
    char **argv = NULL;
    int argc = 0;
    int in_word = 0;
    const char *c = text;

    dv_buf_init(&word);
    argv = dv_xcalloc(2, sizeof(char *));
    argv[argc++] = dv_xstrdup("qsub");
    while (*c != '\0') {
        if (*c == '"' || *c == '\'') {
            char q = *c++;

            in_word = 1;
            while (*c != '\0' && *c != q) {
                dv_buf_putc(&word, *c++);
            }
            if (*c == '\0') {
                *bad_quote = q;
                dv_buf_cleanup(&word);
                cli_strv_free(argv, argc);
                return -1;
            }
            c++;
        } else if (*c == '\\') {
            in_word = 1;
            c++;
            if (*c != '\0') {
                dv_buf_putc(&word, *c++);
            }
        } else if (isspace((unsigned char)*c)) {
            if (in_word) {
                argv = dv_xrealloc(argv, sizeof(char *) * (size_t)(argc + 2));
                argv[argc++] = dv_xstrdup(dv_buf_str(&word));
                argv[argc] = NULL;
                dv_buf_reset(&word);
                in_word = 0;
            }
            c++;
        } else {
            in_word = 1;
            dv_buf_putc(&word, *c++);
        }
    }
    if (in_word) {
        argv = dv_xrealloc(argv, sizeof(char *) * (size_t)(argc + 2));
        argv[argc++] = dv_xstrdup(dv_buf_str(&word));
    }
    argv[argc] = NULL;
    dv_buf_cleanup(&word);
    *argvp = argv;
    *argcp = argc;
    return 0;
}

int
dir_scan_next(struct dir_scan *s, const char *prefix, char ***argvp, int *argcp,
              char *bad_quote)
{
    while (!s->stopped && *s->p != '\0') {
        const char *line = s->p;
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) + 1 : strlen(line);
        const char *rest = dir_match(line, len, prefix);

        s->p = line + len;
        s->line++;
        if (rest != NULL) {
            struct dv_buf text;
            long cont;
            int rc;

            dv_buf_init(&text);
            dv_buf_append(&text, rest, len - (size_t)(rest - line));
            /* Join continued lines: drop the backslash and what follows
             * it on its line, append the next line. */
            while ((cont = continuation_at(text.data, text.len)) >= 0) {
                const char *next = s->p;
                const char *nnl = strchr(next, '\n');
                size_t nlen =
                    nnl != NULL ? (size_t)(nnl - next) + 1 : strlen(next);

                text.len = (size_t)cont;
                text.data[text.len] = '\0';
                if (*next == '\0') {
                    break;
                }
                dv_buf_append(&text, next, nlen);
                s->p = next + nlen;
                s->line++;
            }
            rc = dir_split(dv_buf_str(&text), argvp, argcp, bad_quote);
            dv_buf_cleanup(&text);
            return rc < 0 ? -1 : 1;
        }
        if (dir_is_executable(line, len)) {
            s->stopped = 1;
        }
    }
    return 0;
}

int
script_has_crlf(const char *script)
{
    return script != NULL && strstr(script, "\r\n") != NULL;
}
