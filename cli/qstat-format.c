/*
 * qstat's output layouts (OpenPBS qstat.c), as pure functions that append
 * to a buffer: the default table with its '*' truncation rules, the
 * alternate table (-a and friends), the full listing (-f) with PBS's
 * line wrapping at commas, its DSV form, and the JSON form printed the way
 * cJSON pretty-prints (tab indents, "key":<TAB>value).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/clock.h"
#include "lib/mem.h"
#include "lib/resources.h"
#include "lib/strutil.h"

#define LINE_LIMIT 78 /* CHAR_LINE_LIMIT in qstat.c */
#define TRUNC_CHAR '*'

/* --- helpers --- */

/* Copies s into a new string cut to len characters, the last one replaced
 * by '*' when s is longer (qstat's trunc_value). */
static char *
trunc_copy(const char *s, size_t len)
{
    char *out = dv_xstrdup(s != NULL ? s : "");

    if (len > 0 && strlen(out) > len) {
        out[len - 1] = TRUNC_CHAR;
        out[len] = '\0';
    }
    return out;
}

static const char *
rlist_get(const struct cli_job *j, const char *name)
{
    for (int i = 0; i < j->nrlist; i++) {
        if (strcmp(j->rlist[i].key, name) == 0) {
            return j->rlist[i].value;
        }
    }
    return NULL;
}

static char *
owner_name(const char *owner)
{
    const char *at = owner != NULL ? strchr(owner, '@') : NULL;

    if (owner == NULL) {
        return dv_xstrdup("");
    }
    return at != NULL ? dv_xstrndup(owner, (size_t)(at - owner))
                      : dv_xstrdup(owner);
}

static void
hms(int64_t seconds, char *buf, size_t size)
{
    dv_format_hms(seconds < 0 ? 0 : seconds, buf, size);
}

/* --- default format (3.1) --- */

void
qstat_default_header(struct dv_buf *out, int wide)
{
    if (wide) {
        dv_buf_puts(out, "Job id                         Name            User "
                         "            Time Use S Queue\n");
        dv_buf_puts(out, "-----------------------------  --------------- "
                         "---------------  -------- - ---------------\n");
    } else {
        dv_buf_puts(out, "Job id            Name             User          "
                         "    Time Use S Queue\n");
        dv_buf_puts(out, "----------------  ---------------- ---------------"
                         "-  -------- - -----\n");
    }
}

void
qstat_default_row(struct dv_buf *out, const char *job_id, const char *name,
                  const char *owner, const char *time_use, const char *state,
                  const char *queue, int wide)
{
    size_t idw = wide ? 30 : 17;
    size_t namew = wide ? 15 : 16;
    size_t userw = wide ? 15 : 16;
    size_t queuew = wide ? 15 : 16;
    char *id = jobid_short(job_id);
    char *nm;
    char *user = owner_name(owner);
    char *tu = trunc_copy(time_use, 8);
    char *st = trunc_copy(state, 1);
    char *q;
    char *tid;
    char *tuser;
    const char *at = strchr(queue != NULL ? queue : "", '@');

    q = at != NULL ? dv_xstrndup(queue, (size_t)(at - queue))
                   : dv_xstrdup(queue != NULL ? queue : "");
    tid = trunc_copy(id, idw);
    tuser = trunc_copy(user, userw);
    if (name != NULL && strlen(name) >= namew) {
        nm = dv_xasprintf("%.*s%c", (int)namew - 1, name, TRUNC_CHAR);
    } else {
        nm = dv_xstrdup(name != NULL ? name : "");
    }
    {
        char *tq = trunc_copy(q, queuew);

        dv_buf_printf(out, "%-*s %-*s %-*s  %8s %1s %-*s\n", (int)idw, tid,
                      (int)namew, nm, (int)userw, tuser, tu, st, (int)queuew,
                      tq);
        free(tq);
    }
    free(id);
    free(nm);
    free(user);
    free(tu);
    free(st);
    free(q);
    free(tid);
    free(tuser);
}

void
qstat_job_default_row(struct dv_buf *out, const struct cli_job *j, int wide)
{
    char tu[32];
    char st[2];

    if (j->has_used) {
        hms(j->used_cput, tu, sizeof(tu));
    } else {
        dv_strlcpy(tu, "0", sizeof(tu));
    }
    st[0] = cli_job_state_letter(j);
    st[1] = '\0';
    qstat_default_row(out, j->job_id, j->name, j->owner, tu, st, j->queue,
                      wide);
}

/* --- alternate format (3.2) --- */

const char *
qstat_cnv_size(const char *value, int opt, char *buf, size_t size)
{
    static const char suffixletter[] = " kmgtp?";
    static const int shift[5][5] = {{0, 10, 20, 30, 40},
                                    {-10, 0, 10, 20, 30},
                                    {-20, -10, 0, 10, 20},
                                    {-30, -20, -10, 0, 10},
                                    {-40, -30, -20, -10, 0}};
    char *pc = NULL;
    unsigned long long nval = strtoull(value, &pc, 10);
    int in = 0;
    int out;
    int sft;
    char suffix2 = 'b';

    switch (*pc) {
    case 'k':
        in = 1;
        break;
    case 'm':
        in = 2;
        break;
    case 'g':
        in = 3;
        break;
    case 't':
        in = 4;
        break;
    default:
        in = 0;
    }
    if (*pc == 'w' || (*pc != '\0' && pc[1] == 'w')) {
        nval <<= 3;
        suffix2 = 'w';
    }
    if (opt & QSTAT_ALT_M) {
        out = 2;
        suffix2 = 'w';
    } else if (opt & QSTAT_ALT_G) {
        out = 3;
        suffix2 = 'b';
    } else {
        out = in;
    }
    sft = shift[out][in];
    if (sft < 0) {
        nval = (nval + ((1ULL << -sft) - 1)) >> -sft;
    } else if (sft > 0) {
        nval <<= sft;
    }
    if (suffix2 == 'w') {
        nval = (nval + 7) >> 3;
    }
    while (nval > 9999 && out < 6) {
        nval = (nval + 1023) >> 10;
        out++;
    }
    snprintf(buf, size, "%llu%c%c", nval, suffixletter[out], suffix2);
    return buf;
}

void
qstat_alt_header(struct dv_buf *out, const char *server, int wide)
{
    qstat_alt_header_opt(out, server, wide, 0);
}

/* -T: the last column is "Est Start" (the estimated start time) instead of
 * "Elap Time". */
void
qstat_alt_header_opt(struct dv_buf *out, const char *server, int wide, int opt)
{
    const char *top = (opt & QSTAT_ALT_EST) ? "Est" : "Elap";
    const char *bottom = (opt & QSTAT_ALT_EST) ? "Start" : "Time";

    dv_buf_printf(out, "\n%s: ", server != NULL ? server : "");
    if (wide) {
        dv_buf_printf(out, "\n%99s", "");
        dv_buf_printf(out, "Req'd  Req'd   %s\n", top);
        dv_buf_printf(out, "%-30s %-15s %-15s %-15s %-8s %-4s %-5s ", "Job ID",
                      "Username", "Queue", "Jobname", "SessID", "NDS", "TSK");
        dv_buf_printf(out, "Memory Time  S %s\n", bottom);
        dv_buf_printf(out, "%.30s %.15s %.15s %.15s %.8s %.4s %.5s ",
                      "------------------------------", "---------------",
                      "---------------", "---------------", "--------", "----",
                      "-----");
        dv_buf_puts(out, "------ ----- - -----\n");
    } else {
        dv_buf_printf(out, "\n%60s%-7s%-8s%s\n", " ", "Req'd", "Req'd", top);
        dv_buf_printf(out, "Job ID          Username Queue    Jobname    "
                           "SessID NDS TSK Memory Time  S %s\n",
                      bottom);
        dv_buf_puts(out, "--------------- -------- -------- ---------- "
                         "------ --- --- ------ ----- - -----\n");
    }
}

/* exec_host on its own lines (prt_nodes): domains stripped from host
 * names, broken at '+' before 77 characters, 3-space indent. */
static void
alt_nodes(struct dv_buf *out, const char *nodes, int same_line)
{
    char line[LINE_LIMIT + 1];
    size_t i = 0;
    char *copy;
    char *save = NULL;

    if (nodes == NULL || *nodes == '\0') {
        return;
    }
    copy = dv_xstrdup(nodes);
    for (char *tok = strtok_r(copy, "+", &save); tok != NULL;
         tok = strtok_r(NULL, "+", &save)) {
        size_t hostlen = strcspn(tok, "/");
        const char *chunk = tok + hostlen;
        char *node;
        size_t len;
        int is_ip = 1;

        for (size_t k = 0; k < hostlen; k++) {
            if (!isdigit((unsigned char)tok[k]) && tok[k] != '.') {
                is_ip = 0;
            }
        }
        if (!is_ip) {
            size_t dot = strcspn(tok, ".");
            if (dot < hostlen) {
                hostlen = dot;
            }
        }
        node = dv_xasprintf("%.*s%s", (int)hostlen, tok, chunk);
        len = strlen(node);
        if (i + len >= LINE_LIMIT - 1) {
            line[i] = '\0';
            if (same_line) {
                dv_buf_puts(out, line);
            } else {
                dv_buf_printf(out, "   %s\n", line);
            }
            i = 0;
        }
        for (size_t k = 0; k < len && i < LINE_LIMIT - 1; k++) {
            line[i++] = node[k];
        }
        line[i++] = '+';
        free(node);
    }
    if (i > 0) {
        line[--i] = '\0';
        dv_buf_printf(out, same_line ? "%s\n" : "   %s\n", line);
    } else if (same_line) {
        dv_buf_putc(out, '\n');
    }
    free(copy);
}

void
qstat_est_start(double t, double now, char *buf, size_t size)
{
    static const char *const days[] = {"Su", "Mo", "Tu", "We",
                                       "Th", "Fr", "Sa"};
    time_t tt = (time_t)t, nt = (time_t)now;
    struct tm tm, nm;

    if (t < 0) {
        snprintf(buf, size, " -- ");
        return;
    }
    localtime_r(&tt, &tm);
    localtime_r(&nt, &nm);
    if (tm.tm_year == nm.tm_year && tm.tm_yday == nm.tm_yday) {
        strftime(buf, size, "%H:%M", &tm);
    } else if (t > now && t - now < 7 * 86400.0) {
        snprintf(buf, size, "%s %02d", days[tm.tm_wday], tm.tm_hour);
    } else if (tm.tm_year == nm.tm_year) {
        strftime(buf, size, "%b", &tm);
    } else {
        strftime(buf, size, "%Y", &tm);
    }
}

void
qstat_alt_row(struct dv_buf *out, const struct cli_job *j, int opt)
{
    static const char blank[] = " -- ";
    int wide = (opt & QSTAT_ALT_WIDE) != 0;
    const char *cput_req = rlist_get(j, "cput");
    const char *wall_req = rlist_get(j, "walltime");
    const char *nodect = rlist_get(j, "nodect");
    const char *ncpus = rlist_get(j, "ncpus");
    const char *mem = rlist_get(j, "mem");
    char membuf[32];
    char elap[32];
    char st[2];
    char *user = owner_name(j->owner);
    char *tid = trunc_copy(j->job_id, wide ? 30 : 15);
    char *tuser = trunc_copy(user, wide ? 15 : 8);
    char *tqueue =
        trunc_copy(j->queue != NULL ? j->queue : blank, wide ? 15 : 8);
    char *tname = trunc_copy(j->name != NULL ? j->name : blank, wide ? 15 : 10);
    char *tnds = trunc_copy(nodect != NULL ? nodect : blank, wide ? 4 : 3);
    char *ttsk = trunc_copy(
        ncpus != NULL && strcmp(ncpus, "0") != 0 ? ncpus : blank, wide ? 5 : 3);
    const char *req = cput_req != NULL ? cput_req : wall_req;
    const char *memtext = blank;

    if (mem != NULL) {
        memtext = qstat_cnv_size(mem, opt, membuf, sizeof(membuf));
    }
    if (opt & QSTAT_ALT_EST) {
        qstat_est_start(j->est_start, dv_now(),
                        elap, sizeof(elap));
    } else if (j->has_used) {
        hms(cput_req != NULL ? j->used_cput : j->used_walltime, elap,
            sizeof(elap));
    } else {
        dv_strlcpy(elap, blank, sizeof(elap));
    }
    st[0] = cli_job_state_letter(j);
    st[1] = '\0';
    if (wide) {
        dv_buf_printf(out,
                      "%-30.30s %-15.15s %-15.15s %-15.15s %8.8s "
                      "%4.4s %5.5s ",
                      tid, tuser[0] != '\0' ? tuser : blank, tqueue, tname,
                      blank, tnds, ttsk);
        dv_buf_printf(out, "%6.6s %5.5s %1s %5.5s", memtext,
                      req != NULL ? req : blank, st, elap);
    } else {
        dv_buf_printf(out, "%-15.15s %-8.8s %-8.8s ", tid,
                      tuser[0] != '\0' ? tuser : blank, tqueue);
        dv_buf_printf(out, "%-10.10s %6.6s %3.3s %3.3s ", tname, blank, tnds,
                      ttsk);
        dv_buf_printf(out, "%6.6s %5.5s %1.1s %5.5s", memtext,
                      req != NULL ? req : blank, st, elap);
    }
    dv_buf_putc(out, (opt & QSTAT_ALT_ONELINE) ? ' ' : '\n');
    if (opt & QSTAT_ALT_NODES) {
        alt_nodes(out, j->exec_host != NULL ? j->exec_host : blank,
                  (opt & QSTAT_ALT_ONELINE) != 0);
    }
    if (opt & QSTAT_ALT_COMMENT) {
        const char *c = j->comment != NULL ? j->comment : blank;
        size_t n = strlen(c);

        if (n > 74 && !(wide && n <= 114)) {
            dv_buf_printf(out, "   %.*s...\n", wide ? 110 : 70, c);
        } else if (*c != '\0') {
            dv_buf_printf(out, "   %s\n", c);
        }
    }
    free(user);
    free(tid);
    free(tuser);
    free(tqueue);
    free(tname);
    free(tnds);
    free(ttsk);
}

/* --- full format (3.4) --- */

void
qstat_attrs_add(struct qstat_attrs *a, const char *name, const char *resc,
                const char *value)
{
    if (value == NULL) {
        return;
    }
    if ((size_t)a->n == a->cap) {
        a->cap = a->cap == 0 ? 32 : a->cap * 2;
        a->a = dv_xrealloc(a->a, a->cap * sizeof(*a->a));
    }
    a->a[a->n].name = dv_xstrdup(name);
    a->a[a->n].resc = dv_xstrdup(resc);
    a->a[a->n].value = dv_xstrdup(value);
    a->n++;
}

void
qstat_attrs_cleanup(struct qstat_attrs *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->a[i].name);
        free(a->a[i].resc);
        free(a->a[i].value);
    }
    free(a->a);
    memset(a, 0, sizeof(*a));
}

static void
add_time(struct qstat_attrs *a, const char *name, double t)
{
    char buf[64];

    if (t < 0) {
        return;
    }
    dv_clock_ctime(t, buf, sizeof(buf));
    qstat_attrs_add(a, name, NULL, buf);
}

/* "[host:]path", or the default PBS would give when the spec has none. */
static char *
job_path(const struct cli_job *j, const char *path, const char *suffix)
{
    const char *host = j->submit_host != NULL ? j->submit_host : "";
    const char *colon;
    const char *dot;

    if (path != NULL) {
        colon = strchr(path, ':');
        if (colon != NULL && colon != path &&
            (strchr(path, '/') == NULL || strchr(path, '/') > colon)) {
            return dv_xstrdup(path);
        }
        return dv_xasprintf("%s:%s", host, path);
    }
    if (j->workdir == NULL) {
        return NULL;
    }
    dot = strchr(j->job_id, '.');
    return dv_xasprintf("%s:%s/%s.%s%.*s", host, j->workdir,
                        j->name != NULL ? j->name : "STDIN", suffix,
                        dot != NULL ? (int)(dot - j->job_id)
                                    : (int)strlen(j->job_id),
                        j->job_id);
}

static int
kv_casecmp(const void *a, const void *b)
{
    return strcasecmp(((const struct dv_kv *)a)->key,
                      ((const struct dv_kv *)b)->key);
}

/* Variable_List: the entries joined by commas, commas inside values
 * escaped with a backslash (as PBS stores the attribute). */
static char *
variable_list(char **env, int n)
{
    struct dv_buf b;

    dv_buf_init(&b);
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            dv_buf_putc(&b, ',');
        }
        for (const char *p = env[i]; *p != '\0'; p++) {
            if (*p == ',') {
                dv_buf_putc(&b, '\\');
            }
            dv_buf_putc(&b, *p);
        }
    }
    return dv_buf_steal(&b);
}

/* PBS's substate (src/include/job.h) from what Drover knows: 10 queued,
 * 20 held, 42 running, 50 exiting, 91 terminated (deleted), 92 finished,
 * 93 failed. */
int
qstat_job_substate(const struct cli_job *j)
{
    switch (cli_job_state_letter(j)) {
    case 'Q':
        return 10;
    case 'H':
        return 20;
    case 'R':
        return 42;
    case 'E':
        return 50;
    case 'F':
        if (j->comment != NULL && (strstr(j->comment, "terminated") != NULL ||
                                   strcmp(j->comment, "Job deleted") == 0)) {
            return 91;
        }
        return j->has_exit_status && j->exit_status == 0 ? 92 : 93;
    default:
        return -1;
    }
}

void
qstat_job_attrs(const struct cli_job *j, const char *server,
                struct qstat_attrs *a)
{
    char buf[64];
    char *s;
    int pbs = j->has_spec && !j->native;

    qstat_attrs_add(a, "Job_Name", NULL, j->name);
    if (j->owner != NULL) {
        s = j->submit_host != NULL
                ? dv_xasprintf("%s@%s", j->owner, j->submit_host)
                : dv_xstrdup(j->owner);
        qstat_attrs_add(a, "Job_Owner", NULL, s);
        free(s);
    }
    if (j->has_used) {
        hms(j->used_cput, buf, sizeof(buf));
        qstat_attrs_add(a, "resources_used", "cput", buf);
        snprintf(buf, sizeof(buf), "%lldkb",
                 (long long)((j->used_mem + 1023) / 1024));
        qstat_attrs_add(a, "resources_used", "mem", buf);
        /* The cores it holds: its request. */
        qstat_attrs_add(a, "resources_used", "ncpus", rlist_get(j, "ncpus"));
        hms(j->used_walltime, buf, sizeof(buf));
        qstat_attrs_add(a, "resources_used", "walltime", buf);
    }
    buf[0] = cli_job_state_letter(j);
    buf[1] = '\0';
    qstat_attrs_add(a, "job_state", NULL, buf);
    qstat_attrs_add(a, "queue", NULL, j->queue);
    qstat_attrs_add(a, "server", NULL, server);
    qstat_attrs_add(a, "Account_Name", NULL, j->account);
    add_time(a, "ctime", j->ctime);
    qstat_attrs_add(a, "depend", NULL, j->depend);
    s = job_path(j, j->stderr_path, "e");
    qstat_attrs_add(a, "Error_Path", NULL, s);
    free(s);
    qstat_attrs_add(a, "exec_host", NULL, j->exec_host);
    qstat_attrs_add(a, "exec_vnode", NULL, j->exec_vnode);
    if (j->execution_time > 0) {
        add_time(a, "Execution_Time", j->execution_time);
    }
    qstat_attrs_add(a, "Hold_Types", NULL,
                    dv_str_empty(j->hold_types) ? "n" : j->hold_types);
    qstat_attrs_add(a, "Join_Path", NULL,
                    dv_str_empty(j->join) ? "n" : j->join);
    if (pbs) {
        /* PBS fills Keep_Files=n and Mail_Points=a when qsub did not. */
        qstat_attrs_add(a, "Keep_Files", NULL,
                        dv_str_empty(j->keep_files) ? "n" : j->keep_files);
        qstat_attrs_add(a, "Mail_Points", NULL,
                        dv_str_empty(j->mail_points) ? "a" : j->mail_points);
    }
    qstat_attrs_add(a, "Mail_Users", NULL, j->mail_users);
    add_time(a, "mtime", j->mtime);
    s = job_path(j, j->stdout_path, "o");
    qstat_attrs_add(a, "Output_Path", NULL, s);
    free(s);
    snprintf(buf, sizeof(buf), "%d", j->priority);
    qstat_attrs_add(a, "Priority", NULL, buf);
    add_time(a, "qtime", j->qtime);
    qstat_attrs_add(a, "Rerunable", NULL, j->rerunnable ? "True" : "False");
    if (j->nrlist > 0) {
        struct dv_kv *sorted = dv_xcalloc((size_t)j->nrlist, sizeof(*sorted));

        memcpy(sorted, j->rlist, sizeof(*sorted) * (size_t)j->nrlist);
        qsort(sorted, (size_t)j->nrlist, sizeof(*sorted), kv_casecmp);
        for (int i = 0; i < j->nrlist; i++) {
            qstat_attrs_add(a, "Resource_List", sorted[i].key, sorted[i].value);
        }
        free(sorted);
    }
    add_time(a, "stime", j->stime);
    qstat_attrs_add(a, "Shell_Path_List", NULL,
                    j->shell_path_list != NULL ? j->shell_path_list : j->shell);
    if (qstat_job_substate(j) >= 0) {
        snprintf(buf, sizeof(buf), "%d", qstat_job_substate(j));
        qstat_attrs_add(a, "substate", NULL, buf);
    }
    if (j->nenv > 0) {
        s = variable_list(j->env, j->nenv);
        qstat_attrs_add(a, "Variable_List", NULL, s);
        free(s);
    }
    qstat_attrs_add(a, "comment", NULL, j->comment);
    /* etime: when it last became eligible (submitted, released, requeued),
     * which is what Drover's queue time records; a W job is not eligible
     * yet. */
    if (cli_job_state_letter(j) != 'W') {
        add_time(a, "etime", j->qtime);
    }
    snprintf(buf, sizeof(buf), "%d", j->run_count);
    qstat_attrs_add(a, "run_count", NULL, buf);
    if (j->has_exit_status) {
        snprintf(buf, sizeof(buf), "%d", j->exit_status);
        qstat_attrs_add(a, "Exit_status", NULL, buf);
    }
    qstat_attrs_add(a, "Submit_arguments", NULL, j->submit_args);
    if (j->argc > 0) {
        struct dv_buf b;

        dv_buf_init(&b);
        dv_buf_printf(&b, "<jsdl-hpcpa:Executable>%s</jsdl-hpcpa:Executable>",
                      j->argv[0]);
        qstat_attrs_add(a, "executable", NULL, dv_buf_str(&b));
        if (j->argc > 1) {
            dv_buf_reset(&b);
            for (int i = 1; i < j->argc; i++) {
                dv_buf_printf(&b,
                              "<jsdl-hpcpa:Argument>%s</jsdl-hpcpa:Argument>",
                              j->argv[i]);
            }
            qstat_attrs_add(a, "argument_list", NULL, dv_buf_str(&b));
        }
        dv_buf_cleanup(&b);
    }
    /* master_job_attr_def order: array, array_id, array_index,
     * array_state_count, array_indices_submitted, array_indices_remaining */
    if (j->array == CLI_ARRAY_JOB) {
        qstat_attrs_add(a, "array", NULL, "True");
        qstat_attrs_add(a, "array_state_count", NULL, j->array_state_count);
        qstat_attrs_add(a, "array_indices_submitted", NULL, j->array_submitted);
        qstat_attrs_add(a, "array_indices_remaining", NULL, j->array_remaining);
    } else if (j->array == CLI_SUBJOB) {
        qstat_attrs_add(a, "array_id", NULL, j->array_id);
        snprintf(buf, sizeof(buf), "%d", j->array_index);
        qstat_attrs_add(a, "array_index", NULL, buf);
    }
    if (j->est_start >= 0) {
        char est[64];
        dv_clock_ctime(j->est_start, est, sizeof(est));
        qstat_attrs_add(a, "estimated", "start_time", est);
    }
    if (pbs) {
        qstat_attrs_add(a, "project", NULL,
                        j->project != NULL ? j->project
                                           : "_pbs_project_default");
    }
    qstat_attrs_add(a, "Submit_Host", NULL, j->submit_host);
}

void
qstat_prt_attr(struct dv_buf *out, const char *name, const char *resc,
               const char *value, int one_line)
{
    int start;
    int first = 1;
    char *copy;
    char *save = NULL;
    char *tok;

    if (one_line) {
        dv_buf_printf(out, "    %s", name);
        if (resc != NULL) {
            dv_buf_printf(out, ".%s", resc);
        }
        dv_buf_puts(out, " = ");
        for (const char *p = value; *p != '\0'; p++) {
            if (*p == '\n') {
                dv_buf_puts(out, "\\n");
            } else if (*p == '\f') {
                dv_buf_puts(out, "\\f");
            } else {
                dv_buf_putc(out, *p);
            }
        }
        return;
    }
    start = (int)strlen(name) + 7;
    dv_buf_printf(out, "    %s", name);
    if (resc != NULL) {
        start += (int)strlen(resc) + 1;
        dv_buf_printf(out, ".%s", resc);
    }
    dv_buf_puts(out, " = ");
    copy = dv_xstrdup(value);
    tok = strtok_r(copy, ",", &save);
    while (tok != NULL) {
        int len = (int)strlen(tok);

        if (len + start < LINE_LIMIT) {
            dv_buf_puts(out, tok);
            start += len;
        } else {
            if (!first) {
                dv_buf_puts(out, "\n\t");
                start = 9;
            }
            for (const char *p = tok; *p != '\0'; p++) {
                dv_buf_putc(out, *p);
                if (++start > LINE_LIMIT) {
                    start = 8;
                    dv_buf_puts(out, "\n\t");
                }
            }
        }
        tok = strtok_r(NULL, ",", &save);
        if (tok != NULL) {
            first = 0;
            dv_buf_putc(out, ',');
        }
    }
    free(copy);
}

void
qstat_full_text(struct dv_buf *out, const char *job_id,
                const struct qstat_attrs *a, int one_line)
{
    dv_buf_printf(out, "Job Id: %s\n", job_id);
    for (int i = 0; i < a->n; i++) {
        qstat_prt_attr(out, a->a[i].name, a->a[i].resc, a->a[i].value,
                       one_line);
        dv_buf_putc(out, '\n');
    }
    dv_buf_putc(out, '\n');
}

static void
dsv_value(struct dv_buf *out, const char *value, const char *delim)
{
    size_t dl = strlen(delim);

    for (const char *p = value; *p != '\0'; p++) {
        if (dl > 0 && strncmp(p, delim, dl) == 0) {
            dv_buf_putc(out, '\\');
            dv_buf_append(out, p, dl);
            p += dl - 1;
        } else if (*p == '\n') {
            dv_buf_puts(out, "\\n");
        } else if (*p == '\f') {
            dv_buf_puts(out, "\\f");
        } else {
            dv_buf_putc(out, *p);
        }
    }
}

void
qstat_full_dsv(struct dv_buf *out, const char *job_id,
               const struct qstat_attrs *a, const char *delim)
{
    qstat_full_dsv_as(out, "Job Id", job_id, a, delim);
}

void
qstat_full_dsv_as(struct dv_buf *out, const char *label, const char *id,
                  const struct qstat_attrs *a, const char *delim)
{
    dv_buf_printf(out, "%s: %s%s", label, id, delim);
    for (int i = 0; i < a->n; i++) {
        if (a->a[i].resc != NULL) {
            dv_buf_printf(out, "%s.%s=", a->a[i].name, a->a[i].resc);
        } else {
            dv_buf_printf(out, "%s=", a->a[i].name);
        }
        dsv_value(out, a->a[i].value, delim);
        if (i + 1 < a->n) {
            dv_buf_puts(out, delim);
        }
    }
    dv_buf_putc(out, '\n');
}

/* --- JSON (3.5) --- */

int
cli_json_is_number(const char *s)
{
    const char *p = s;

    if (*p == '-') {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return 0;
    }
    while (isdigit((unsigned char)*p)) {
        p++;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return 0;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!isdigit((unsigned char)*p)) {
            return 0;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    return *p == '\0';
}

json_t *
cli_json_auto(const char *s)
{
    if (cli_json_is_number(s)) {
        return json_real(strtod(s, NULL));
    }
    return json_string(s);
}

static int
always_string(const char *name)
{
    return strcmp(name, "Job_Name") == 0 || strcmp(name, "project") == 0 ||
           strcmp(name, "Account_Name") == 0;
}

/* Variable_List as an object: split at unescaped commas, then at the
 * first '=' (prt_attr's JSON case). */
static json_t *
variable_list_json(const char *value)
{
    json_t *o = json_object();
    struct dv_buf key;
    struct dv_buf val;
    const char *p = value;

    dv_buf_init(&key);
    dv_buf_init(&val);
    while (*p != '\0') {
        int in_val = 0;

        dv_buf_reset(&key);
        dv_buf_reset(&val);
        while (*p != '\0' && *p != ',') {
            if (*p == '\\' && p[1] == ',') {
                p++;
            }
            if (!in_val && *p == '=') {
                in_val = 1;
                p++;
                continue;
            }
            dv_buf_putc(in_val ? &val : &key, *p++);
        }
        json_object_set_new(o, dv_buf_str(&key),
                            cli_json_auto(dv_buf_str(&val)));
        if (*p != '\0') {
            p++;
        }
    }
    dv_buf_cleanup(&key);
    dv_buf_cleanup(&val);
    return o;
}

json_t *
qstat_attrs_json(const struct qstat_attrs *a)
{
    json_t *o = json_object();
    json_t *group = NULL;
    const char *group_name = NULL;

    for (int i = 0; i < a->n; i++) {
        const struct qstat_attr *at = &a->a[i];

        if (at->resc != NULL) {
            if (group == NULL || strcmp(group_name, at->name) != 0) {
                group = json_object();
                group_name = at->name;
                json_object_set_new(o, at->name, group);
            }
            json_object_set_new(group, at->resc, cli_json_auto(at->value));
            continue;
        }
        group = NULL;
        group_name = NULL;
        if (strcmp(at->name, "Variable_List") == 0) {
            json_object_set_new(o, at->name, variable_list_json(at->value));
        } else if (always_string(at->name)) {
            json_object_set_new(o, at->name, json_string(at->value));
        } else {
            json_object_set_new(o, at->name, cli_json_auto(at->value));
        }
    }
    return o;
}

static void
json_print_string(struct dv_buf *out, const char *s)
{
    dv_buf_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            dv_buf_puts(out, "\\\"");
            break;
        case '\\':
            dv_buf_puts(out, "\\\\");
            break;
        case '\b':
            dv_buf_puts(out, "\\b");
            break;
        case '\f':
            dv_buf_puts(out, "\\f");
            break;
        case '\n':
            dv_buf_puts(out, "\\n");
            break;
        case '\r':
            dv_buf_puts(out, "\\r");
            break;
        case '\t':
            dv_buf_puts(out, "\\t");
            break;
        default:
            if (*p < 32) {
                dv_buf_printf(out, "\\u%04x", *p);
            } else {
                dv_buf_putc(out, (char)*p);
            }
        }
    }
    dv_buf_putc(out, '"');
}

/* cJSON's print_number: integers plainly, else the shortest of %1.15g and
 * %1.17g that reads back the same. */
static void
json_print_real(struct dv_buf *out, double d)
{
    char buf[64];

    if (isnan(d) || isinf(d)) {
        dv_buf_puts(out, "null");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15) {
        dv_buf_printf(out, "%.0f", d);
        return;
    }
    snprintf(buf, sizeof(buf), "%1.15g", d);
    if (strtod(buf, NULL) != d) {
        snprintf(buf, sizeof(buf), "%1.17g", d);
    }
    dv_buf_puts(out, buf);
}

static void
json_print(struct dv_buf *out, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *child;
        size_t left = json_object_size(v);

        dv_buf_puts(out, "{\n");
        json_object_foreach ((json_t *)v, key, child) {
            for (int i = 0; i <= depth; i++) {
                dv_buf_putc(out, '\t');
            }
            json_print_string(out, key);
            dv_buf_puts(out, ":\t");
            json_print(out, child, depth + 1);
            if (--left > 0) {
                dv_buf_putc(out, ',');
            }
            dv_buf_putc(out, '\n');
        }
        for (int i = 0; i < depth; i++) {
            dv_buf_putc(out, '\t');
        }
        dv_buf_putc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;

        dv_buf_putc(out, '[');
        json_array_foreach (v, i, child) {
            if (i > 0) {
                dv_buf_puts(out, ", ");
            }
            json_print(out, child, depth + 1);
        }
        dv_buf_putc(out, ']');
        break;
    }
    case JSON_STRING:
        json_print_string(out, json_string_value(v));
        break;
    case JSON_INTEGER:
        dv_buf_printf(out, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        json_print_real(out, json_real_value(v));
        break;
    case JSON_TRUE:
        dv_buf_puts(out, "true");
        break;
    case JSON_FALSE:
        dv_buf_puts(out, "false");
        break;
    case JSON_NULL:
        dv_buf_puts(out, "null");
        break;
    }
}

void
cli_json_print(struct dv_buf *out, const json_t *v)
{
    json_print(out, v, 0);
}
