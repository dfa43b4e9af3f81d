/*
 * Job identifiers on the command line (PBS get_server.c, isjobid.c):
 * "seq[.server][@server]". An operand whose first non-blank character is a
 * digit names a job, anything else a destination (queue[@server]). Ids
 * are shown expanded with the server name, as PBS shows them.
 */
#include <ctype.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

int
jobid_is_jobid(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return isdigit((unsigned char)*s);
}

int
jobid_parse(const char *s, long long *seq, char **server)
{
    const char *p = s;
    const char *dot = NULL;
    const char *at;
    long long v = 0;

    *server = NULL;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    while (isdigit((unsigned char)*p)) {
        if (v > 99999999999LL) {
            return -1;
        }
        v = v * 10 + (*p - '0');
        p++;
    }
    if (*p == '.') {
        dot = p + 1;
    } else if (*p != '\0' && *p != '@') {
        return -1;
    }
    at = strchr(p, '@');
    if (dot != NULL) {
        size_t n = at != NULL ? (size_t)(at - dot) : strlen(dot);
        if (n == 0) {
            return -1;
        }
        *server = dv_xstrndup(dot, n);
    } else if (at != NULL) {
        if (at[1] == '\0') {
            return -1;
        }
        *server = dv_xstrdup(at + 1);
    }
    if (at != NULL && (at[1] == '\0' || strchr(at + 1, '@') != NULL)) {
        free(*server);
        *server = NULL;
        return -1;
    }
    *seq = v;
    return 0;
}

char *
jobid_expand(const char *s, const char *default_server)
{
    long long seq;
    char *server = NULL;
    char *out;

    if (jobid_parse(s, &seq, &server) < 0) {
        return dv_xstrdup(s);
    }
    if (server != NULL) {
        out = dv_xasprintf("%lld.%s", seq, server);
    } else if (!dv_str_empty(default_server)) {
        out = dv_xasprintf("%lld.%s", seq, default_server);
    } else {
        out = dv_xasprintf("%lld", seq);
    }
    free(server);
    return out;
}

char *
jobid_short(const char *id)
{
    const char *c = strchr(id, '.');

    if (c == NULL) {
        return dv_xstrdup(id);
    }
    c = strchr(c + 1, '.');
    if (c == NULL) {
        return dv_xstrdup(id);
    }
    return dv_xstrndup(id, (size_t)(c - id));
}
