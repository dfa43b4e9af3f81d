/*
 * The HTTP server's request object: building it, decoding its target into
 * path and query parameters, and the accessors that handlers use.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/http-request.h"
#include "lib/http-util.h"

struct dv_http_request *
dv_http_request_new(void)
{
    struct dv_http_request *req = dv_xcalloc(1, sizeof(*req));

    req->method = "GET";
    req->peer = "";
    dv_buf_init(&req->body);
    return req;
}

void
dv_http_request_free(struct dv_http_request *req)
{
    int i;

    if (req == NULL) {
        return;
    }
    for (i = 0; i < req->nquery; i++) {
        free(req->query[i].name);
        free(req->query[i].value);
    }
    for (i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->query);
    free(req->headers);
    free(req->url);
    free(req->path);
    dv_buf_cleanup(&req->body);
    free(req);
}

void
dv_http_request_add_header(struct dv_http_request *req, struct dv_buf *name,
                           struct dv_buf *value)
{
    if (req->nheaders == req->cap_headers) {
        req->cap_headers = req->cap_headers == 0 ? 16 : req->cap_headers * 2;
        req->headers = dv_xrealloc(req->headers, (size_t)req->cap_headers *
                                                     sizeof(*req->headers));
    }
    req->headers[req->nheaders].name = dv_buf_steal(name);
    req->headers[req->nheaders].value = dv_buf_steal(value);
    req->nheaders++;
}

/* Splits q[0..n) on '&' and decodes each name=value. Returns 0, or -1 when
 * an escape is malformed. */
static int
parse_query(struct dv_http_request *req, const char *q, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t end = i, eq;
        char *name, *value;

        while (end < n && q[end] != '&') {
            end++;
        }
        eq = i;
        while (eq < end && q[eq] != '=') {
            eq++;
        }
        if (end > i) {
            name = dv_http_pct_decode(q + i, eq - i, 1);
            value = eq < end ? dv_http_pct_decode(q + eq + 1, end - eq - 1, 1)
                             : dv_xstrdup("");
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                return -1;
            }
            req->query = dv_xrealloc(req->query, (size_t)(req->nquery + 1) *
                                                     sizeof(*req->query));
            req->query[req->nquery].name = name;
            req->query[req->nquery].value = value;
            req->nquery++;
        }
        i = end + 1;
    }
    return 0;
}

int
dv_http_request_parse_target(struct dv_http_request *req)
{
    struct http_parser_url u;

    http_parser_url_init(&u);
    if (req->url == NULL ||
        http_parser_parse_url(req->url, strlen(req->url), 0, &u) != 0) {
        return -1;
    }
    if (u.field_set & (1 << UF_PATH)) {
        req->path = dv_http_pct_decode(req->url + u.field_data[UF_PATH].off,
                                       u.field_data[UF_PATH].len, 0);
        if (req->path == NULL) {
            return -1;
        }
    } else {
        req->path = dv_xstrdup("/"); /* absolute form without a path */
    }
    if (u.field_set & (1 << UF_QUERY)) {
        return parse_query(req, req->url + u.field_data[UF_QUERY].off,
                           u.field_data[UF_QUERY].len);
    }
    return 0;
}

const char *
dv_http_request_method(const struct dv_http_request *req)
{
    return req->method;
}

const char *
dv_http_request_path(const struct dv_http_request *req)
{
    return req->path != NULL ? req->path : "/";
}

const char *
dv_http_request_query(const struct dv_http_request *req, const char *name)
{
    int i;

    for (i = 0; i < req->nquery; i++) {
        if (strcmp(req->query[i].name, name) == 0) {
            return req->query[i].value;
        }
    }
    return NULL;
}

const char *
dv_http_request_header(const struct dv_http_request *req, const char *name)
{
    int i;

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

const char *
dv_http_request_body(const struct dv_http_request *req, size_t *len)
{
    if (len != NULL) {
        *len = req->body.len;
    }
    return req->body.data != NULL ? req->body.data : "";
}

const char *
dv_http_request_peer(const struct dv_http_request *req)
{
    return req->peer;
}

int
dv_http_request_peer_uid(const struct dv_http_request *req, uid_t *uid)
{
    if (!req->have_uid) {
        return -1;
    }
    *uid = req->uid;
    return 0;
}

const char *
dv_http_request_tls_peer_cn(const struct dv_http_request *req)
{
    return req->tls_cn;
}

void
dv_http_request_set_abort_cb(struct dv_http_request *req, dv_http_abort_cb cb,
                             void *arg)
{
    req->abort_cb = cb;
    req->abort_arg = arg;
}
