/*
 * Job identifiers on the command line (PBS get_server.c, isjobid.c):
 * "seq[.server][@server]", arrays "seq[]...", subjobs "seq[7]...", ranges
 * of subjobs "seq[1-5]...". An operand whose first non-blank character is a
 * digit names a job, anything else a destination (queue[@server]). Ids
 * are shown expanded with the server name, as PBS shows them.
 */
#include <ctype.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/array.h"
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
jobid_parse_array(const char *s, struct jobid *id)
{
    const char *p = s;
    const char *dot = NULL;
    const char *at;
    long long v = 0;

    memset(id, 0, sizeof(*id));
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
    /* "124[]", "124[7]", "124[1-5]" (lib/array.h) */
    if (dv_array_id_bracket(p, &id->part, &id->lo, &id->hi, &p) < 0) {
        return -1;
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
        id->server = dv_xstrndup(dot, n);
    } else if (at != NULL) {
        if (at[1] == '\0') {
            return -1;
        }
        id->server = dv_xstrdup(at + 1);
    }
    if (at != NULL && (at[1] == '\0' || strchr(at + 1, '@') != NULL)) {
        free(id->server);
        id->server = NULL;
        return -1;
    }
    id->seq = v;
    return 0;
}

int
jobid_parse(const char *s, long long *seq, char **server)
{
    struct jobid id;

    *server = NULL;
    if (jobid_parse_array(s, &id) < 0) {
        return -1;
    }
    if (id.part != DV_ARRAY_NONE && id.part != DV_ARRAY_WHOLE) {
        free(id.server);
        return -1; /* a subjob or a range: not for this command */
    }
    *seq = id.seq;
    *server = id.server;
    return 0;
}

char *
jobid_expand(const char *s, const char *default_server)
{
    struct jobid id;
    char buf[512];

    if (jobid_parse_array(s, &id) < 0) {
        return dv_xstrdup(s);
    }
    dv_array_id_format(id.seq, id.part, id.lo, id.hi,
                       id.server != NULL ? id.server : default_server, buf,
                       sizeof(buf));
    free(id.server);
    return dv_xstrdup(buf);
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
