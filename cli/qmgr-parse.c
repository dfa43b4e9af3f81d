/*
 * qmgr's directive language (pbs-cli.md section 6), parsed without side
 * effects (unit-tested): "command object [name[,name...]] [attr[.resc] op
 * value[, ...]]", commands and objects by unambiguous prefix, values
 * quoted with "" or '' when they hold blanks, commas or quotes, ";" and
 * newlines ending directives, "#" starting a comment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"

static const char *const qmgr_commands[] = {
    "active", "create", "delete", "set",  "unset", "list",
    "print",  "import", "export", "help", "quit",  "exit",
};

static const char *const qmgr_objects[] = {
    "server", "sched", "queue", "node", "resource", "hook", "pbshook",
};

void
qmgr_directive_cleanup(struct qmgr_directive *d)
{
    for (int i = 0; i < d->nnames; i++) {
        free(d->names[i]);
    }
    free(d->names);
    for (int i = 0; i < d->nattrs; i++) {
        free(d->attrs[i].name);
        free(d->attrs[i].value);
    }
    free(d->attrs);
    memset(d, 0, sizeof(*d));
}

/* Tokens: words (quotes removed), "=", "+=", "-=", ",". */
struct tok {
    char *s;
    int kind; /* 'w' word, '=' '+' '-' operators, ',' comma */
};

static void
toks_free(struct tok *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].s);
    }
    free(t);
}

static int
tokenize(const char *text, struct tok **out, int *nout)
{
    struct tok *t = NULL;
    int n = 0;
    const char *p = text;

    while (*p != '\0') {
        struct dv_buf b;
        int kind = 'w';

        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
            continue;
        }
        dv_buf_init(&b);
        if (*p == ',') {
            kind = ',';
            dv_buf_putc(&b, *p++);
        } else if (*p == '=') {
            kind = '=';
            dv_buf_putc(&b, *p++);
        } else if ((*p == '+' || *p == '-') && p[1] == '=') {
            kind = *p;
            dv_buf_putc(&b, *p++);
            dv_buf_putc(&b, *p++);
        } else {
            int depth = 0; /* inside [...] (max_run's values) */
            while (
                *p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' &&
                (depth > 0 || (*p != ',' && *p != '=' &&
                               !((*p == '+' || *p == '-') && p[1] == '=')))) {
                if (*p == '[') {
                    depth++;
                } else if (*p == ']' && depth > 0) {
                    depth--;
                }
                if (*p == '"' || *p == '\'') {
                    char qc = *p++;
                    while (*p != '\0' && *p != qc) {
                        dv_buf_putc(&b, *p++);
                    }
                    if (*p != qc) {
                        dv_buf_cleanup(&b);
                        toks_free(t, n);
                        return -1;
                    }
                    p++;
                    continue;
                }
                dv_buf_putc(&b, *p++);
            }
        }
        t = dv_xrealloc(t, sizeof(*t) * (size_t)(n + 1));
        t[n].kind = kind;
        t[n].s = dv_buf_steal(&b);
        dv_buf_cleanup(&b);
        n++;
    }
    *out = t;
    *nout = n;
    return 0;
}

/* The unique entry of list that word is a prefix of, or NULL. */
static const char *
prefix_match(const char *word, const char *const *list, size_t n)
{
    const char *found = NULL;
    size_t len = strlen(word);

    if (len == 0) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], word) == 0) {
            return list[i];
        }
        if (strncmp(list[i], word, len) == 0) {
            if (found != NULL) {
                return NULL; /* ambiguous */
            }
            found = list[i];
        }
    }
    return found;
}

/* Appends prefix, word and suffix to msg; returns code. */
static int
fail(struct dv_buf *msg, int code, const char *prefix, const char *word,
     const char *suffix)
{
    dv_buf_printf(msg, "%s%s%s", prefix, word != NULL ? word : "", suffix);
    return code;
}

int
qmgr_parse(const char *text, struct qmgr_directive *d, struct dv_buf *msg)
{
    struct tok *t = NULL;
    int n = 0, i = 0, rc = 0;
    const char *w;

    memset(d, 0, sizeof(*d));
    if (tokenize(text, &t, &n) < 0) {
        return fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
    }
    if (n == 0) {
        d->empty = 1;
        goto out;
    }
    if (t[0].kind != 'w' ||
        (w = prefix_match(t[0].s, qmgr_commands,
                          sizeof(qmgr_commands) / sizeof(qmgr_commands[0]))) ==
            NULL) {
        rc = fail(msg, 1, "qmgr: Illegal operation: ", t[0].s,
                  "\nTry 'help' if you are having trouble.\n");
        goto out;
    }
    snprintf(d->cmd, sizeof(d->cmd), "%s", w);
    i = 1;
    if (strcmp(d->cmd, "help") == 0 || strcmp(d->cmd, "quit") == 0 ||
        strcmp(d->cmd, "exit") == 0) {
        goto out;
    }
    if (i >= n) {
        rc = fail(msg, 2, "qmgr: No object type given\n", NULL, "");
        goto out;
    }
    if (t[i].kind != 'w' ||
        (w = prefix_match(t[i].s, qmgr_objects,
                          sizeof(qmgr_objects) / sizeof(qmgr_objects[0]))) ==
            NULL) {
        rc = fail(msg, 2, "qmgr: Illegal object type: ", t[i].s, ".\n");
        goto out;
    }
    snprintf(d->obj, sizeof(d->obj), "%s", w);
    i++;
    /* Names: unless the next word is followed by an operator. */
    if (i < n && t[i].kind == 'w' &&
        !(i + 1 < n && t[i + 1].kind != 'w' && t[i + 1].kind != ',')) {
        for (;;) {
            char *at;
            if (i >= n || t[i].kind != 'w') {
                rc = fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
                goto out;
            }
            at = strchr(t[i].s, '@');
            if (at == t[i].s) {
                d->all = 1; /* "@default", "@server": every object */
            } else {
                if (at != NULL) {
                    *at = '\0';
                }
                d->names = dv_xrealloc(d->names, sizeof(char *) *
                                                     (size_t)(d->nnames + 1));
                d->names[d->nnames++] = dv_xstrdup(t[i].s);
            }
            i++;
            if (i < n && t[i].kind == ',') {
                i++;
                continue;
            }
            break;
        }
    }
    /* Attributes: attr [op value] {, attr [op value]}. */
    while (i < n) {
        struct qmgr_attr *a;
        if (t[i].kind != 'w') {
            rc = fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
            goto out;
        }
        d->attrs =
            dv_xrealloc(d->attrs, sizeof(*d->attrs) * (size_t)(d->nattrs + 1));
        a = &d->attrs[d->nattrs++];
        memset(a, 0, sizeof(*a));
        a->name = dv_xstrdup(t[i].s);
        i++;
        if (i < n &&
            (t[i].kind == '=' || t[i].kind == '+' || t[i].kind == '-')) {
            a->op = t[i].kind;
            i++;
            if (i >= n || t[i].kind != 'w') {
                rc = fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
                goto out;
            }
            a->value = dv_xstrdup(t[i].s);
            i++;
        }
        if (i < n) {
            if (t[i].kind != ',') {
                rc = fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
                goto out;
            }
            i++;
            if (i >= n) {
                rc = fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
                goto out;
            }
        }
    }
    /* Operators are for set and create; unset takes names only. */
    for (int k = 0; k < d->nattrs; k++) {
        int needs = strcmp(d->cmd, "set") == 0 || strcmp(d->cmd, "create") == 0;
        int takes = needs;
        if ((needs && d->attrs[k].op == 0) || (!takes && d->attrs[k].op != 0) ||
            (strcmp(d->cmd, "create") == 0 && d->attrs[k].op != '=' &&
             strcmp(d->obj, "queue") == 0)) {
            rc = fail(msg, 3, "qmgr: Syntax error\n", NULL, "");
            goto out;
        }
    }
out:
    toks_free(t, n);
    if (rc != 0) {
        qmgr_directive_cleanup(d);
    }
    return rc;
}

/* Splits input into directives at ";" and newlines outside quotes, drops
 * "#" comments, joins lines ending in "\". Returns a new array of new
 * strings (caller frees each and the array). */
char **
qmgr_split(const char *input, int *n)
{
    char **v = NULL;
    struct dv_buf b;
    char quote = 0;

    *n = 0;
    dv_buf_init(&b);
    for (const char *p = input;; p++) {
        char c = *p;
        if (c == '\\' && p[1] == '\n' && quote == 0) {
            p++;
            continue;
        }
        if (quote == 0 && c == '#') {
            while (*p != '\0' && *p != '\n') {
                p++;
            }
            c = *p;
        }
        if (c == '\0' || (quote == 0 && (c == ';' || c == '\n'))) {
            const char *s = dv_buf_str(&b);
            if (s[strspn(s, " \t\r")] != '\0') {
                v = dv_xrealloc(v, sizeof(char *) * (size_t)(*n + 1));
                v[(*n)++] = dv_xstrdup(s);
            }
            dv_buf_reset(&b);
            if (c == '\0') {
                break;
            }
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = quote == 0 ? c : (quote == c ? 0 : quote);
        }
        dv_buf_putc(&b, c);
    }
    dv_buf_cleanup(&b);
    return v;
}
