/*
 * The PBS management commands' API (docs/api.md "Jobs"): POST
 * /v1/jobs/:id/signal (qsig), /rerun (qrerun), /move (qmove) and /alter
 * (qalter). Bodies are decoded and checked here on the loop thread; the
 * change itself is db-job-admin.c's, run on a pool worker.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* Signal names PBS's qsig accepts (with or without "SIG"). */
static const struct {
    const char *name;
    int num;
} sig_names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},
    {"ILL", SIGILL},       {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},
    {"BUS", SIGBUS},       {"FPE", SIGFPE},   {"KILL", SIGKILL},
    {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},       {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},         {"PWR", SIGPWR},   {"SYS", SIGSYS},
    {"NULL", 0},
};

int
api_signal_parse(const char *s, char out[16], int *privileged)
{
    int n;

    *privileged = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    if (strcmp(s, "suspend") == 0 || strcmp(s, "resume") == 0) {
        dv_strlcpy(out, s, 16);
        return 0;
    }
    if (strcmp(s, "admin-suspend") == 0 || strcmp(s, "admin-resume") == 0) {
        *privileged = 1;
        dv_strlcpy(out, s + strlen("admin-"), 16);
        return 0;
    }
    if (s[strspn(s, "0123456789")] == '\0') {
        if (dv_parse_int(s, 0, 64, &n) < 0) {
            return -1;
        }
        snprintf(out, 16, "%d", n);
        return 0;
    }
    if (strncasecmp(s, "SIG", 3) == 0) {
        s += 3;
    }
    for (size_t i = 0; i < sizeof(sig_names) / sizeof(sig_names[0]); i++) {
        if (strcasecmp(s, sig_names[i].name) == 0) {
            snprintf(out, 16, "%d", sig_names[i].num);
            return 0;
        }
    }
    return -1;
}

struct admin_ctx {
    struct db_job_admin a;
    json_t *body; /* the strings of a borrow from it */
    char signal[16];
};

static void
admin_ctx_free(void *arg)
{
    struct admin_ctx *c = arg;

    db_job_admin_clear(&c->a);
    for (int i = 0; i < c->a.alter.nresources; i++) {
        free(c->a.alter.resources[i].key);
        free(c->a.alter.resources[i].value);
    }
    free(c->a.alter.resources);
    json_decref(c->body);
    free(c);
}

static int
admin_run(struct qreq *qr, struct dv_db *db)
{
    struct admin_ctx *c = qr->ctx;
    const char *server = server_name(qr->q);
    int vrow = 0;
    char jid[300];

    c->a.id = qr->id;
    c->a.user = qr->user;
    c->a.root = qr->root;
    c->a.now = dv_now();
    c->a.server = server;
    if (db_job_admin(db, &c->a, &qr->err) < 0) {
        return -1;
    }
    qreq_set_json(qr, 200, api_job_json(&c->a.out, 0, &vrow, server, 0));
    if (c->a.what[0] != '\0') {
        dv_job_id_format((long long)qr->id, server, jid, sizeof(jid));
        log_notice("job %s %s by %s", jid, c->a.what,
                   qr->user != NULL ? qr->user : "?");
    }
    return 0;
}

static int
fail(struct qreq *qr, const char *code, const char *msg)
{
    qreq_fail(qr, DV_EINVAL, code, "%s", msg);
    return -1;
}

static int
get_str(struct qreq *qr, json_t *v, const char *key, const char **out)
{
    if (!json_is_string(v) || json_string_length(v) > 4096) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "%s: a string of at most 4096 bytes "
                 "expected",
                 key);
        return fail(qr, "invalid_request", msg);
    }
    *out = json_string_value(v);
    return 0;
}

static int
decode_signal(struct qreq *qr, struct admin_ctx *c, json_t *body)
{
    json_t *v = json_object_get(body, "signal");
    const char *s;
    int privileged;

    if (json_object_size(body) != 1 || v == NULL) {
        return fail(qr, "invalid_request",
                    "the body must be {\"signal\": NAME}");
    }
    if (get_str(qr, v, "signal", &s) < 0) {
        return -1;
    }
    if (api_signal_parse(s, c->signal, &privileged) < 0) {
        return fail(qr, "unknown_signal", "Unknown/illegal signal name");
    }
    if (privileged && !qr->root) {
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        return -1;
    }
    c->a.signal = c->signal;
    return 0;
}

static int
decode_move(struct qreq *qr, struct admin_ctx *c, json_t *body)
{
    json_t *v = json_object_get(body, "queue");

    if (json_object_size(body) != 1 || v == NULL) {
        return fail(qr, "invalid_request",
                    "the body must be {\"queue\": NAME}");
    }
    return get_str(qr, v, "queue", &c->a.queue);
}

static int
decode_alter(struct qreq *qr, struct admin_ctx *c, json_t *body)
{
    struct job_alter *al = &c->a.alter;
    const char *key;
    json_t *v;
    int any = 0;

    json_object_foreach (body, key, v) {
        int rc = 0;

        any = 1;
        if (strcmp(key, "resources") == 0) {
            const char *rk;
            json_t *rv;

            if (!json_is_object(v) || json_object_size(v) > 256) {
                return fail(qr, "invalid_request",
                            "resources: an object of at most 256 names "
                            "expected");
            }
            al->resources =
                dv_xcalloc(json_object_size(v) + 1, sizeof(*al->resources));
            json_object_foreach (v, rk, rv) {
                const char *val;

                if (*rk == '\0' || strlen(rk) > 256) {
                    return fail(qr, "invalid_request",
                                "resources: names of 1 to 256 bytes "
                                "expected");
                }
                if (get_str(qr, rv, "resources", &val) < 0) {
                    return -1;
                }
                al->resources[al->nresources].key = dv_xstrdup(rk);
                al->resources[al->nresources].value = dv_xstrdup(val);
                al->nresources++;
            }
        } else if (strcmp(key, "name") == 0) {
            rc = get_str(qr, v, key, &al->name);
        } else if (strcmp(key, "stdout") == 0) {
            rc = get_str(qr, v, key, &al->stdout_path);
        } else if (strcmp(key, "stderr") == 0) {
            rc = get_str(qr, v, key, &al->stderr_path);
        } else if (strcmp(key, "join") == 0) {
            rc = get_str(qr, v, key, &al->join);
        } else if (strcmp(key, "depend") == 0) {
            rc = get_str(qr, v, key, &al->depend);
        } else if (strcmp(key, "priority") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < -1024 ||
                json_integer_value(v) > 1023) {
                return fail(qr, "bad_attribute_value",
                            "Illegal attribute or resource value Priority");
            }
            al->has_priority = 1;
            al->priority = (int)json_integer_value(v);
        } else if (strcmp(key, "rerunnable") == 0) {
            if (!json_is_boolean(v)) {
                return fail(qr, "bad_attribute_value",
                            "Illegal attribute or resource value Rerunable");
            }
            al->has_rerunnable = 1;
            al->rerunnable = json_is_true(v);
        } else if (strcmp(key, "hold_types") == 0) {
            const char *h;
            if (get_str(qr, v, key, &h) < 0) {
                return -1;
            }
            if (hold_types_parse(h, &al->hold_mask) < 0) {
                return fail(qr, "bad_attribute_value",
                            "Illegal attribute or resource value Hold_Types");
            }
            if ((al->hold_mask & ~1u) != 0 && !qr->root) {
                qreq_fail(qr, DV_EFORBIDDEN, "forbidden",
                          "Unauthorized Request ");
                return -1;
            }
        } else {
            char msg[128];
            snprintf(msg, sizeof(msg), "unknown field \"%.64s\"", key);
            return fail(qr, "invalid_request", msg);
        }
        if (rc < 0) {
            return -1;
        }
    }
    if (!any) {
        return fail(qr, "invalid_request", "nothing to alter");
    }
    return 0;
}

void
api_jobs_admin(struct qreq *qr, int64_t id, enum job_admin_op op)
{
    struct admin_ctx *c = dv_xcalloc(1, sizeof(*c));
    int empty = 0, rc = 0;

    c->a.op = op;
    c->a.out.next_after = -1;
    qr->ctx = c;
    qr->ctx_free = admin_ctx_free;
    qr->id = id;
    c->body = qreq_body_json(qr, op == JOB_ADMIN_RERUN, &empty);
    if (c->body == NULL && !empty) {
        return;
    }
    if (c->body != NULL && !json_is_object(c->body)) {
        fail(qr, "invalid_request", "the body must be a JSON object");
        return;
    }
    switch (op) {
    case JOB_ADMIN_SIGNAL:
        rc = decode_signal(qr, c, c->body);
        break;
    case JOB_ADMIN_MOVE:
        rc = decode_move(qr, c, c->body);
        break;
    case JOB_ADMIN_ALTER:
        rc = decode_alter(qr, c, c->body);
        break;
    case JOB_ADMIN_RERUN:
        if (c->body != NULL && json_object_size(c->body) != 0) {
            rc = fail(qr, "invalid_request", "qrerun takes no body");
        }
        break;
    }
    if (rc < 0) {
        return;
    }
    qr->run = admin_run;
    qreq_submit(qr);
}
