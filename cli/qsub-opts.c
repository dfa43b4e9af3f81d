/*
 * qsub's options (OpenPBS qsub.c process_opts): one parser for the command
 * line and for each directive line, with PBS's precedence (an option set
 * by a higher source is never replaced by a lower one; within one source
 * the last occurrence wins; -l merges per resource), the values PBS
 * rejects on the client, and the job spec built from the result together
 * with the submitter's context (user, host, directory, environment). Pure:
 * messages go to a buffer, the environment comes in as an array.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "lib/array.h"
#include "lib/mem.h"
#include "lib/strutil.h"

const char qsub_usage_text[] =
    "usage: qsub [-a date_time] [-A account_string] [-c interval]\n"
    "\t[-C directive_prefix] [-e path] [-f ] [-h ] [-I [-X]] [-j oe|eo] "
    "[-J X-Y[:Z]]\n"
    "\t[-k keep] [-l resource_list] [-m mail_options] [-M user_list]\n"
    "\t[-N jobname] [-o path] [-p priority] [-P project] [-q queue] "
    "[-r y|n]\n"
    "\t[-R o|e|oe] [-S path] [-u user_list] [-W otherattributes=value...]\n"
    "\t[-v variable_list] [-V ] [-z] [script | -- command [arg1 ...]]\n"
    "       qsub --version\n";

#define QSUB_OPTSTRING "a:A:c:C:e:fhIj:J:k:l:m:M:N:o:p:q:r:R:S:u:v:VW:XzP:"

void
qsub_opts_init(struct qsub_opts *o)
{
    memset(o, 0, sizeof(*o));
}

void
qsub_opts_cleanup(struct qsub_opts *o)
{
    free(o->name);
    free(o->queue);
    free(o->out_path);
    free(o->err_path);
    free(o->join);
    free(o->shell);
    free(o->depend);
    free(o->array);
    free(o->prefix);
    free(o->vlist);
    free(o->account);
    free(o->project);
    free(o->mail_points);
    free(o->mail_users);
    free(o->exec_time);
    free(o->keep);
    free(o->shell_list);
    for (int i = 0; i < o->nres; i++) {
        free(o->res[i].name);
        free(o->res[i].value);
    }
    free(o->res);
    memset(o, 0, sizeof(*o));
}

/* Replaces *dst with value when src may override what is there. */
static int
take(int *have_src, int src)
{
    if (*have_src > src) {
        return 0;
    }
    *have_src = src;
    return 1;
}

static void
set_str(char **dst, int *have_src, int src, const char *value)
{
    if (take(have_src, src)) {
        free(*dst);
        *dst = dv_xstrdup(value);
    }
}

void
qsub_opts_set_resource(struct qsub_opts *o, const char *name, const char *value,
                       int src)
{
    for (int i = 0; i < o->nres; i++) {
        if (strcmp(o->res[i].name, name) == 0) {
            if (o->res[i].src <= src) {
                free(o->res[i].value);
                o->res[i].value = dv_xstrdup(value);
                o->res[i].src = src;
            }
            return;
        }
    }
    o->res = dv_xrealloc(o->res, sizeof(*o->res) * (size_t)(o->nres + 1));
    o->res[o->nres].name = dv_xstrdup(name);
    o->res[o->nres].value = dv_xstrdup(value);
    o->res[o->nres].src = src;
    o->nres++;
}

static char *
trim(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        n--;
    }
    return dv_xstrndup(s, n);
}

int
qsub_parse_resources(struct qsub_opts *o, const char *list, int src)
{
    const char *p = list;

    if (dv_str_empty(list)) {
        return -1;
    }
    while (*p != '\0') {
        const char *name = p;
        const char *eq;
        char *n;
        struct dv_buf value;
        size_t nlen;

        while (*p != '\0' && *p != '=' && *p != ',') {
            p++;
        }
        nlen = (size_t)(p - name);
        if (*p != '=') {
            return -1;
        }
        eq = p++;
        (void)eq;
        dv_buf_init(&value);
        while (*p != '\0' && *p != ',') {
            if (*p == '"' || *p == '\'') {
                char q = *p++;
                while (*p != '\0' && *p != q) {
                    dv_buf_putc(&value, *p++);
                }
                if (*p == '\0') {
                    dv_buf_cleanup(&value);
                    return -1;
                }
                p++;
            } else {
                dv_buf_putc(&value, *p++);
            }
        }
        n = trim(name, nlen);
        {
            char *v = trim(dv_buf_str(&value), value.len);
            int bad = n[0] == '\0' || v[0] == '\0';

            for (const char *c = n; *c != '\0'; c++) {
                if (isspace((unsigned char)*c)) {
                    bad = 1;
                }
            }
            if (!bad) {
                qsub_opts_set_resource(o, n, v, src);
            }
            free(v);
            free(n);
            dv_buf_cleanup(&value);
            if (bad) {
                return -1;
            }
        }
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return -1;
            }
        }
    }
    return 0;
}

/* PBS's parse_equal_string over a copy: "name=value[,name=value...]",
 * where a value runs to the last comma before the next '='. Calls fn for
 * each pair; returns 0, or -1 on a syntax error. */
static int
each_equal_pair(const char *text,
                int (*fn)(const char *name, const char *value, void *arg),
                void *arg)
{
    char *copy = dv_xstrdup(text);
    char *pc = copy;
    int rc = 0;

    for (;;) {
        char *name;
        char *value;
        char *end;
        char *next = NULL;
        int quoting = 0;

        while (isspace((unsigned char)*pc)) {
            pc++;
        }
        if (*pc == '\0') {
            break;
        }
        if (*pc == '=' || *pc == ',') {
            rc = -1;
            break;
        }
        name = pc;
        while (*pc != '\0' && !isspace((unsigned char)*pc) && *pc != '=') {
            pc++;
        }
        while (isspace((unsigned char)*pc)) {
            *pc++ = '\0';
        }
        if (*pc != '=') {
            rc = -1;
            break;
        }
        *pc++ = '\0';
        while (isspace((unsigned char)*pc)) {
            pc++;
        }
        if (*pc == '"' || *pc == '\'') {
            quoting = *pc++;
        }
        value = pc;
        if (quoting) {
            while (*pc != '\0' && *pc != (char)quoting) {
                pc++;
            }
            if (*pc == '\0') {
                rc = -1;
                break;
            }
            *pc = ' ';
        }
        while (*pc != '\0' && *pc != '=') {
            pc++;
        }
        if (*pc == '=') {
            while (pc > value && *--pc != ',') {
            }
            if (pc <= value) {
                rc = -1;
                break;
            }
            *pc = '\0';
            next = pc + 1;
        } else {
            next = pc;
        }
        end = value + strlen(value);
        while (end > value && isspace((unsigned char)end[-1])) {
            *--end = '\0';
        }
        if (*next == '\0' && end > value && end[-1] == ',') {
            rc = -1;
            break;
        }
        if (fn(name, value, arg) < 0) {
            rc = -1;
            break;
        }
        pc = next;
    }
    free(copy);
    return rc;
}

struct w_ctx {
    struct qsub_opts *o;
    int src;
    struct dv_buf *errs;
    int unsupported;
};

static int
w_pair(const char *name, const char *value, void *arg)
{
    struct w_ctx *w = arg;

    if (value[0] == '\0') {
        return -1;
    }
    if (strcmp(name, "depend") == 0) {
        /* Syntax is checked here, as PBS's qsub does (illegal -W value);
         * the targets by the server (Invalid Job Dependency, Unknown Job
         * Id). */
        if (dv_job_depend_check(value, NULL) < 0) {
            return -1;
        }
        set_str(&w->o->depend, &w->o->depend_src, w->src, value);
        return 0;
    }
    if (strcmp(name, "max_run_subjobs") == 0) {
        int n;
        if (dv_parse_int(value, 1, DV_ARRAY_MAX_SIZE, &n) < 0) {
            return -1;
        }
        if (take(&w->o->max_run_src, w->src)) {
            w->o->max_run = n;
        }
        return 0;
    }
    if (strcmp(name, "block") == 0 || strcmp(name, "interactive") == 0) {
        int on = strcasecmp(value, "true") == 0;

        if (!on && strcasecmp(value, "false") != 0) {
            return -1;
        }
        if (strcmp(name, "block") == 0) {
            if (take(&w->o->block_src, w->src)) {
                w->o->block = on;
            }
            return 0;
        }
        if (!on) {
            return 0;
        }
    }
    dv_buf_printf(w->errs, "qsub: -W %s is not supported yet\n", name);
    w->unsupported = 1;
    return 0;
}

static int
valid_job_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 236) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || c == '/' || c == '@' || c == ':') {
            return 0;
        }
    }
    return 1;
}

static void
illegal(struct dv_buf *errs, int c, int *nerr)
{
    dv_buf_printf(errs, "qsub: illegal -%c value\n", c);
    (*nerr)++;
}

int
qsub_opts_parse(struct qsub_opts *o, int argc, char **argv, int src,
                struct dv_buf *errs, struct cli_getopt *g)
{
    int nerr = 0;
    int c;

    cli_getopt_init(g, argc, argv, QSUB_OPTSTRING, "qsub");
    g->errors = errs;
    while ((c = cli_getopt_next(g)) != -1) {
        const char *arg = g->optarg;

        switch (c) {
        case 'C':
            set_str(&o->prefix, &o->prefix_src, src, arg);
            break;
        case 'e':
            set_str(&o->err_path, &o->err_src, src, arg);
            break;
        case 'f':
            break; /* no background daemon: there is none */
        case 'h':
            if (take(&o->hold_src, src)) {
                o->hold = 1;
            }
            break;
        case 'j':
            while (isspace((unsigned char)*arg)) {
                arg++;
            }
            if (strcmp(arg, "oe") != 0 && strcmp(arg, "eo") != 0 &&
                strcmp(arg, "n") != 0) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->join, &o->join_src, src, arg);
            break;
        case 'J': {
            struct dv_array a;

            if (dv_array_parse(arg, &a) < 0) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->array, &o->array_src, src, arg);
            break;
        }
        case 'l':
            if (qsub_parse_resources(o, arg, src) < 0) {
                illegal(errs, c, &nerr);
            }
            break;
        case 'N':
            if (!valid_job_name(arg)) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->name, &o->name_src, src, arg);
            break;
        case 'o':
            set_str(&o->out_path, &o->out_src, src, arg);
            break;
        case 'p': {
            int prio;

            while (isspace((unsigned char)*arg)) {
                arg++;
            }
            if (dv_parse_int(arg, -1024, 1023, &prio) < 0) {
                illegal(errs, c, &nerr);
                break;
            }
            if (take(&o->priority_src, src)) {
                o->priority = prio;
            }
            break;
        }
        case 'q':
            set_str(&o->queue, &o->queue_src, src, arg);
            break;
        case 'r':
            if (strcmp(arg, "y") != 0 && strcmp(arg, "n") != 0) {
                illegal(errs, c, &nerr);
                break;
            }
            if (take(&o->rerun_src, src)) {
                o->rerunnable = arg[0] == 'y';
            }
            break;
        case 'S': {
            char *shell = qsub_shell_from_list(arg);

            if (shell == NULL) {
                illegal(errs, c, &nerr);
                break;
            }
            if (take(&o->shell_src, src)) {
                free(o->shell);
                free(o->shell_list);
                o->shell = shell;
                shell = NULL;
                /* Shell_Path_List shows a list as given. */
                o->shell_list = strcmp(o->shell, arg) != 0
                                    ? dv_xstrdup(arg)
                                    : NULL;
            }
            free(shell);
            break;
        }
        case 'a': {
            int64_t t;

            if (qsub_parse_exec_time(arg, 0, &t) < 0) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->exec_time, &o->exec_time_src, src, arg);
            break;
        }
        case 'A':
            if (arg[0] == '\0' || strpbrk(arg, "\n\r") != NULL) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->account, &o->account_src, src, arg);
            break;
        case 'P':
            if (arg[0] == '\0' || strpbrk(arg, "\n\r") != NULL) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->project, &o->project_src, src, arg);
            break;
        case 'm': {
            char no_j[8];
            size_t k = 0;

            for (const char *p = arg; *p != '\0' && k + 1 < sizeof(no_j);
                 p++) {
                if (*p != 'j') {
                    no_j[k++] = *p;
                }
            }
            no_j[k] = '\0';
            if (strchr(arg, 'j') != NULL &&
                (k == 0 || dv_job_mail_points_valid(no_j))) {
                /* 'j' (subjob mail) needs -J, which Drover has not yet */
                dv_buf_puts(errs, "qsub: mail option 'j' can not be used "
                                  "without array job\n");
                nerr++;
                break;
            }
            if (!dv_job_mail_points_valid(arg)) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->mail_points, &o->mail_points_src, src, arg);
            break;
        }
        case 'M':
            if (!dv_job_mail_users_valid(arg)) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->mail_users, &o->mail_users_src, src, arg);
            break;
        case 'k':
            if (!dv_job_keep_files_valid(arg)) {
                illegal(errs, c, &nerr);
                break;
            }
            set_str(&o->keep, &o->keep_src, src, arg);
            break;
        case 'v':
            set_str(&o->vlist, &o->v_src, src, arg);
            break;
        case 'V':
            if (take(&o->V_src, src)) {
                o->V = 1;
            }
            break;
        case 'W': {
            struct w_ctx w = {o, src, errs, 0};

            while (isspace((unsigned char)*arg)) {
                arg++;
            }
            if (*arg == '\0' || each_equal_pair(arg, w_pair, &w) < 0) {
                dv_buf_puts(errs, "qsub: illegal -W value\n");
                nerr++;
            } else if (w.unsupported) {
                nerr++;
            }
            break;
        }
        case 'z':
            if (take(&o->z_src, src)) {
                o->z = 1;
            }
            break;
        case 'c':
        case 'I':
        case 'R':
        case 'u':
        case 'X':
            dv_buf_printf(errs, "qsub: option -%c is not supported yet\n", c);
            nerr++;
            break;
        default:
            nerr++;
        }
    }
    return nerr;
}

const char *
qsub_dir_prefix(const struct qsub_opts *o, const char *env_dprefix)
{
    if (!dv_str_empty(o->prefix)) {
        return o->prefix;
    }
    if (o->prefix_src > 0) {
        return "";
    }
    if (env_dprefix != NULL) {
        return env_dprefix;
    }
    return "#PBS";
}

void
qsub_directive_error(struct dv_buf *errs, int argc, char **argv)
{
    dv_buf_puts(errs, "qsub: directive error: ");
    for (int i = 1; i < argc; i++) {
        dv_buf_printf(errs, "%s ", argv[i]);
    }
    dv_buf_putc(errs, '\n');
}

/* --- -a and -S --- */

static int
two_digits(const char *p, int *out)
{
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) {
        return -1;
    }
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return 0;
}

/* mktime of the given parts (local time); -1 when out of range. */
static int64_t
local_time(int year, int mon, int day, int hour, int min, int sec)
{
    struct tm tm;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    return t == (time_t)-1 ? -1 : (int64_t)t;
}

int
qsub_parse_exec_time(const char *s, time_t now, int64_t *out)
{
    const char *dot = strchr(s, '.');
    size_t n = dot != NULL ? (size_t)(dot - s) : strlen(s);
    int year = -1, mon = -1, day = -1, hour, min, sec = 0;
    struct tm cur;
    int64_t t;
    const char *p = s;

    if (now == 0) {
        now = time(NULL);
    }
    if (n < 4 || n > 12 || n % 2 != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return -1;
        }
    }
    if (dot != NULL && (strlen(dot + 1) != 2 || two_digits(dot + 1, &sec) < 0 ||
                        sec > 61)) {
        return -1;
    }
    if (localtime_r(&now, &cur) == NULL) {
        return -1;
    }
    if (n == 12) {
        int cc, yy;
        two_digits(p, &cc);
        two_digits(p + 2, &yy);
        year = cc * 100 + yy;
        p += 4;
    } else if (n == 10) {
        int yy;
        two_digits(p, &yy);
        year = yy < 69 ? 2000 + yy : 1900 + yy;
        p += 2;
    }
    if (n >= 8) {
        two_digits(p, &mon);
        p += 2;
    }
    if (n >= 6) {
        two_digits(p, &day);
        p += 2;
    }
    two_digits(p, &hour);
    two_digits(p + 2, &min);
    if ((mon != -1 && (mon < 1 || mon > 12)) ||
        (day != -1 && (day < 1 || day > 31)) || hour > 23 || min > 59) {
        return -1;
    }
    if (year != -1) {
        t = local_time(year, mon, day, hour, min, sec);
    } else if (mon != -1) {
        t = local_time(cur.tm_year + 1900, mon, day, hour, min, sec);
        if (t >= 0 && t <= (int64_t)now) {
            t = local_time(cur.tm_year + 1901, mon, day, hour, min, sec);
        }
    } else if (day != -1) {
        t = local_time(cur.tm_year + 1900, cur.tm_mon + 1, day, hour, min,
                       sec);
        if (t >= 0 && t <= (int64_t)now) {
            t = local_time(cur.tm_year + 1900, cur.tm_mon + 2, day, hour, min,
                           sec);
        }
    } else {
        t = local_time(cur.tm_year + 1900, cur.tm_mon + 1, cur.tm_mday, hour,
                       min, sec);
        if (t >= 0 && t <= (int64_t)now) {
            t = local_time(cur.tm_year + 1900, cur.tm_mon + 1,
                           cur.tm_mday + 1, hour, min, sec);
        }
    }
    if (t < 0) {
        return -1;
    }
    *out = t;
    return 0;
}

char *
qsub_shell_from_list(const char *list)
{
    char *first = NULL, *plain = NULL;
    const char *p = list;

    for (;;) {
        size_t n = strcspn(p, ",");
        size_t path_n = strcspn(p, "@,");

        /* an empty item, a relative path or an empty host */
        if (n == 0 || p[0] != '/' || (path_n < n && path_n + 1 == n)) {
            free(first);
            free(plain);
            return NULL;
        }
        if (first == NULL) {
            first = dv_xstrndup(p, path_n);
        }
        if (path_n == n && plain == NULL) {
            plain = dv_xstrndup(p, path_n);
        }
        p += n;
        if (*p == '\0') {
            break;
        }
        p++; /* the comma; an empty item after it is refused above */
    }
    if (plain != NULL) {
        free(first);
        return plain;
    }
    return first;
}

/* --- the job spec --- */

static const char *
env_get(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (char **e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            return *e + n + 1;
        }
    }
    return NULL;
}

static int
valid_env_name(const char *s, size_t n)
{
    if (n == 0 || isdigit((unsigned char)s[0])) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') {
            return 0;
        }
    }
    return 1;
}

static void
env_from(struct dv_job_spec *s, char **envp, const char *var, const char *as)
{
    const char *v = env_get(envp, var);

    if (v != NULL) {
        dv_job_spec_setenv(s, as, v);
    }
}

/* One -v item: NAME or NAME=value; quotes in a value are removed and a
 * backslash takes the next character literally (copy_env_value). */
static int
add_v_item(struct dv_job_spec *s, char **envp, const char *item)
{
    const char *eq = strchr(item, '=');
    char *name;
    int rc = 0;

    name =
        eq != NULL ? dv_xstrndup(item, (size_t)(eq - item)) : dv_xstrdup(item);
    if (dv_str_has_prefix(name, "PBS_O_")) {
        goto out;
    }
    if (!valid_env_name(name, strlen(name))) {
        rc = -1;
        goto out;
    }
    if (eq == NULL) {
        const char *v = env_get(envp, name);

        if (v == NULL) {
            rc = -1;
            goto out;
        }
        dv_job_spec_setenv(s, name, v);
    } else {
        struct dv_buf val;
        char q = 0;

        dv_buf_init(&val);
        for (const char *p = eq + 1; *p != '\0'; p++) {
            if (q != 0 && *p == q) {
                q = 0;
            } else if (q == 0 && (*p == '"' || *p == '\'')) {
                q = *p;
            } else if (*p == '\\' && p[1] != '\0') {
                dv_buf_putc(&val, *++p);
            } else {
                dv_buf_putc(&val, *p);
            }
        }
        dv_job_spec_setenv(s, name, dv_buf_str(&val));
        dv_buf_cleanup(&val);
    }
out:
    free(name);
    return rc;
}

/* Splits a -v list at commas outside quotes (comma_token). */
static int
add_v_list(struct dv_job_spec *s, char **envp, const char *list)
{
    struct dv_buf tok;
    char q = 0;
    int rc = 0;

    dv_buf_init(&tok);
    for (const char *p = list;; p++) {
        if (*p == '\0' || (*p == ',' && q == 0)) {
            if (tok.len > 0 && add_v_item(s, envp, dv_buf_str(&tok)) < 0) {
                rc = -1;
                break;
            }
            dv_buf_reset(&tok);
            if (*p == '\0') {
                break;
            }
            continue;
        }
        if (*p == '"' || *p == '\'') {
            q = q == *p ? 0 : (q == 0 ? *p : q);
        } else if (*p == '\\' && p[1] != '\0') {
            dv_buf_putc(&tok, *p++);
        }
        dv_buf_putc(&tok, *p);
    }
    dv_buf_cleanup(&tok);
    return rc;
}

char *
qsub_abs_path(const char *path, const char *cwd)
{
    const char *colon = strchr(path, ':');
    const char *slash = strchr(path, '/');
    const char *p = path;
    size_t hostlen = 0;

    if (colon != NULL && colon != path && (slash == NULL || slash > colon)) {
        hostlen = (size_t)(colon - path) + 1;
        p = colon + 1;
    }
    if (p[0] == '/') {
        return dv_xstrdup(path);
    }
    return dv_xasprintf("%.*s%s%s%s", (int)hostlen, path, cwd,
                        cwd[strlen(cwd) - 1] == '/' ? "" : "/", p);
}

int
qsub_build_spec(const struct qsub_opts *o, const struct qsub_ctx *ctx,
                struct dv_job_spec *s, struct dv_buf *errs)
{
    const char *home = env_get(ctx->envp, "HOME");

    s->name = dv_xstrdup(o->name_src > 0 ? o->name : ctx->default_name);
    if (o->queue_src > 0) {
        size_t n = strcspn(o->queue, "@");
        if (n > 0) {
            s->queue = dv_xstrndup(o->queue, n);
        }
    }
    s->type = dv_xstrdup("batch");
    s->owner = dv_xstrdup(ctx->user);
    s->group = dv_xstrdup(ctx->group);
    s->submit_host = dv_xstrdup(ctx->host);
    s->priority = o->priority_src > 0 ? o->priority : 0;
    s->hold = o->hold_src > 0 ? o->hold : 0;
    s->rerunnable = o->rerun_src > 0 ? o->rerunnable : 1;
    if (ctx->cmd_argc > 0) {
        s->argv = dv_xcalloc((size_t)ctx->cmd_argc + 1, sizeof(char *));
        for (int i = 0; i < ctx->cmd_argc; i++) {
            s->argv[i] = dv_xstrdup(ctx->cmd_argv[i]);
        }
        s->argc = ctx->cmd_argc;
    } else {
        s->script = dv_xstrdup(ctx->script != NULL ? ctx->script : "");
    }
    s->shell = dv_xstrdup(o->shell_src > 0 ? o->shell : NULL);
    s->workdir = dv_xstrdup(ctx->cwd);

    /* Variable_List in PBS's order. */
    dv_job_spec_setenv(s, "PBS_O_HOME", home != NULL ? home : "/");
    env_from(s, ctx->envp, "LANG", "PBS_O_LANG");
    env_from(s, ctx->envp, "LOGNAME", "PBS_O_LOGNAME");
    env_from(s, ctx->envp, "PATH", "PBS_O_PATH");
    env_from(s, ctx->envp, "MAIL", "PBS_O_MAIL");
    env_from(s, ctx->envp, "SHELL", "PBS_O_SHELL");
    env_from(s, ctx->envp, "TZ", "PBS_O_TZ");
    dv_job_spec_setenv(s, "PBS_O_WORKDIR", ctx->cwd);
    dv_job_spec_setenv(s, "PBS_O_SYSTEM", ctx->system);
    if (o->v_src > 0 && add_v_list(s, ctx->envp, o->vlist) < 0) {
        dv_buf_puts(errs, "qsub: cannot send environment with the job\n");
        return -1;
    }
    if (o->V_src > 0 && o->V) {
        for (char **e = ctx->envp; e != NULL && *e != NULL; e++) {
            const char *eq = strchr(*e, '=');
            char *name;

            if (eq == NULL || !valid_env_name(*e, (size_t)(eq - *e)) ||
                dv_str_has_prefix(*e, "PBS_O_")) {
                continue;
            }
            name = dv_xstrndup(*e, (size_t)(eq - *e));
            dv_job_spec_setenv(s, name, eq + 1);
            free(name);
        }
    }
    dv_job_spec_setenv(s, "PBS_O_HOST", ctx->fqdn);

    if (o->out_src > 0) {
        s->stdout_path = qsub_abs_path(o->out_path, ctx->cwd);
    }
    if (o->err_src > 0) {
        s->stderr_path = qsub_abs_path(o->err_path, ctx->cwd);
    }
    s->join = dv_xstrdup(o->join_src > 0 ? o->join : "n");
    for (int i = 0; i < o->nres; i++) {
        dv_job_spec_set_resource(s, o->res[i].name, o->res[i].value);
    }
    if (o->depend_src > 0) {
        s->depend = dv_xstrdup(o->depend);
    }
    if (o->array_src > 0) {
        /* -W max_run_subjobs replaces a %max of -J. */
        size_t n = strcspn(o->array, "%");
        if (o->max_run_src > 0) {
            s->array = dv_xasprintf("%.*s%%%d", (int)n, o->array, o->max_run);
        } else {
            s->array = dv_xstrdup(o->array);
        }
    }
    s->submit_args = dv_xstrdup(ctx->submit_args);
    if (o->account_src > 0) {
        s->account = dv_xstrdup(o->account);
    }
    if (o->project_src > 0) {
        s->project = dv_xstrdup(o->project);
    }
    if (o->mail_points_src > 0) {
        s->mail_points = dv_xstrdup(o->mail_points);
    }
    if (o->mail_users_src > 0) {
        s->mail_users = dv_xstrdup(o->mail_users);
    }
    if (o->keep_src > 0) {
        s->keep_files = dv_xstrdup(o->keep);
    }
    if (o->shell_src > 0 && o->shell_list != NULL) {
        s->shell_path_list = dv_xstrdup(o->shell_list);
    }
    if (o->exec_time_src > 0) {
        int64_t t;

        if (qsub_parse_exec_time(o->exec_time, ctx->now, &t) < 0) {
            dv_buf_puts(errs, "qsub: illegal -a value\n");
            return -1;
        }
        s->execution_time = t;
    }
    return 0;
}
