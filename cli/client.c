/*
 * The CLI's connection to drover-qmgr: the server address (DROVER_ADDR:
 * http://host:port, https://host:port or unix:/path; default
 * http://127.0.0.1:4750), the caller's identity header, one blocking
 * request at a time through lib/http-client.h, JSON decoding of answers and
 * of the API's error bodies, and PBS's "cannot connect to server" report.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/http-client.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define CLI_DEFAULT_ADDR "http://127.0.0.1:4750"

char *
cli_current_user(void)
{
    struct passwd *pw = getpwuid(getuid());
    const char *env;

    if (pw != NULL && !dv_str_empty(pw->pw_name)) {
        return dv_xstrdup(pw->pw_name);
    }
    env = getenv("LOGNAME");
    if (!dv_str_empty(env)) {
        return dv_xstrdup(env);
    }
    return dv_xasprintf("%u", (unsigned)getuid());
}

char *
cli_addr_host(const char *base)
{
    const char *p = base;
    const char *end;

    if (dv_str_has_prefix(p, "unix:")) {
        return dv_xstrdup(p + 5);
    }
    if (dv_str_has_prefix(p, "http://")) {
        p += 7;
    } else if (dv_str_has_prefix(p, "https://")) {
        p += 8;
    }
    if (*p == '[') {
        end = strchr(p, ']');
        if (end != NULL) {
            return dv_xstrndup(p + 1, (size_t)(end - p - 1));
        }
    }
    end = p + strcspn(p, ":/");
    return dv_xstrndup(p, (size_t)(end - p));
}

struct cli_client *
cli_client_new(const char *prog, struct dv_err *err)
{
    struct cli_client *c = dv_xcalloc(1, sizeof(*c));
    struct dv_http_client_config cfg;
    const char *addr = getenv("DROVER_ADDR");

    c->prog = prog;
    c->base = dv_xstrdup(dv_str_empty(addr) ? CLI_DEFAULT_ADDR : addr);
    c->host = cli_addr_host(c->base);
    c->user = cli_current_user();
    memset(&cfg, 0, sizeof(cfg));
    cfg.base = c->base;
    cfg.ca_file = getenv("DROVER_TLS_CA");
    cfg.cert = getenv("DROVER_TLS_CERT");
    cfg.key = getenv("DROVER_TLS_KEY");
    c->http = dv_http_client_new(&cfg, err);
    if (c->http == NULL) {
        cli_client_free(c);
        return NULL;
    }
    return c;
}

void
cli_client_free(struct cli_client *c)
{
    if (c == NULL) {
        return;
    }
    dv_http_client_free(c->http);
    free(c->base);
    free(c->host);
    free(c->user);
    free(c->server_name);
    free(c);
}

void
cli_reply_cleanup(struct cli_reply *r)
{
    json_decref(r->body);
    memset(r, 0, sizeof(*r));
}

void
cli_reply_set_error(struct cli_reply *r, const char *body)
{
    json_t *root = NULL;
    json_t *e;
    const char *code = NULL;
    const char *msg = NULL;

    if (!dv_str_empty(body)) {
        root = json_loads(body, 0, NULL);
    }
    e = json_object_get(root, "error");
    if (json_is_object(e)) {
        code = json_string_value(json_object_get(e, "code"));
        msg = json_string_value(json_object_get(e, "message"));
    }
    dv_strlcpy(r->code, code != NULL ? code : "", sizeof(r->code));
    if (msg != NULL) {
        dv_strlcpy(r->message, msg, sizeof(r->message));
    } else {
        snprintf(r->message, sizeof(r->message),
                 "Error (HTTP status %ld) returned from server", r->status);
    }
    json_decref(root);
}

int
cli_client_call(struct cli_client *c, const char *method, const char *path,
                const json_t *body, const struct dv_http_header *extra,
                int nextra, struct cli_reply *r, struct dv_err *err)
{
    struct dv_http_header hdrs[8];
    struct dv_http_response resp;
    char *text = NULL;
    int nh = 0;
    int rc;

    memset(r, 0, sizeof(*r));
    memset(&resp, 0, sizeof(resp));
    hdrs[nh].name = "X-Drover-User";
    hdrs[nh++].value = c->user;
    for (int i = 0; i < nextra && nh < 8; i++) {
        hdrs[nh++] = extra[i];
    }
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
    }
    rc = dv_http_client_do(c->http, method, path, text,
                           text != NULL ? strlen(text) : 0, hdrs, nh,
                           CLI_REQUEST_TIMEOUT, &resp, err);
    free(text);
    if (rc < 0) {
        return -1;
    }
    r->status = resp.status;
    if (resp.status >= 200 && resp.status < 300) {
        if (resp.body != NULL && resp.body_len > 0) {
            json_error_t jerr;

            r->body = json_loadb(resp.body, resp.body_len, 0, &jerr);
            if (r->body == NULL) {
                r->status = 502;
                dv_strlcpy(r->code, "invalid_response", sizeof(r->code));
                snprintf(r->message, sizeof(r->message),
                         "invalid answer from server: %s", jerr.text);
            }
        }
    } else {
        cli_reply_set_error(r, resp.body);
    }
    dv_http_response_cleanup(&resp);
    return 0;
}

int
cli_transport_errno(const struct dv_err *err)
{
    const char *m = err->msg;

    if (err->kind == DV_ETIMEOUT || strstr(m, "timed out") != NULL ||
        strstr(m, "Timeout") != NULL || strstr(m, "timeout") != NULL) {
        return ETIMEDOUT;
    }
    if (strstr(m, "reset") != NULL) {
        return ECONNRESET;
    }
    if (strstr(m, "No such file") != NULL) {
        return ENOENT;
    }
    if (strstr(m, "Permission denied") != NULL) {
        return EACCES;
    }
    if (strstr(m, "resolve") != NULL || strstr(m, "unreachable") != NULL) {
        return EHOSTUNREACH;
    }
    return ECONNREFUSED;
}

int
cli_client_report_transport(const struct cli_client *c,
                            const struct dv_err *err)
{
    int e = cli_transport_errno(err);

    fprintf(stderr, "%s: cannot connect to server %s (errno=%d)\n", c->prog,
            c->host, e);
    return e;
}

const char *
cli_client_server_name(struct cli_client *c)
{
    struct cli_reply r;
    struct dv_err err;

    if (c->server_name != NULL) {
        return c->server_name;
    }
    dv_err_clear(&err);
    if (cli_client_call(c, "GET", "/v1/status", NULL, NULL, 0, &r, &err) == 0 &&
        r.body != NULL) {
        const char *s = json_string_value(json_object_get(r.body, "server"));
        if (s != NULL) {
            c->server_name = dv_xstrdup(s);
        }
    }
    cli_reply_cleanup(&r);
    if (c->server_name == NULL) {
        c->server_name = dv_xstrdup("");
    }
    return c->server_name;
}

void
cli_client_set_server_name(struct cli_client *c, const char *name)
{
    if (c->server_name == NULL && name != NULL) {
        c->server_name = dv_xstrdup(name);
    }
}

void
cli_urlencode(struct dv_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
            *p == '~') {
            dv_buf_putc(b, (char)*p);
        } else {
            dv_buf_putc(b, '%');
            dv_buf_putc(b, hex[*p >> 4]);
            dv_buf_putc(b, hex[*p & 15]);
        }
    }
}

int
cli_client_call_ok(struct cli_client *c, const char *method, const char *path,
                   const json_t *body, struct cli_reply *r)
{
    struct dv_err err;

    dv_err_clear(&err);
    if (cli_client_call(c, method, path, body, NULL, 0, r, &err) < 0) {
        return cli_client_report_transport(c, &err);
    }
    if (r->status < 200 || r->status >= 300 || r->body == NULL) {
        fprintf(stderr, "%s: %s\n", c->prog,
                r->message[0] != '\0' ? r->message : "no answer");
        return pbs_error_exit_status(r->code);
    }
    return 0;
}
