/*
 * HTTP client on libcurl, in two forms: blocking (the CLI) and
 * asynchronous on a libev loop through curl's multi-socket API (noded,
 * which must keep reaping children while it long-polls). Both talk to one
 * base address: "http://host:port", "https://host:port" or
 * "unix:/path/to.sock" (HTTP over a Unix socket).
 */
#ifndef DV_HTTP_CLIENT_H
#define DV_HTTP_CLIENT_H

#include <ev.h>
#include <stddef.h>

#include "lib/err.h"
#include "lib/http-server.h" /* struct dv_http_header */

struct dv_http_client_config {
    const char *base;    /* see above; required */
    const char *ca_file; /* PEM CA bundle to verify the server with */
    const char *cert;    /* client certificate for mutual TLS */
    const char *key;
    double connect_timeout; /* seconds; 0: 5 */
};

struct dv_http_response {
    long status;
    char *body; /* NUL-terminated; owned */
    size_t body_len;
    char *index;    /* value of the X-Drover-Index header, or NULL; owned */
    char *location; /* value of Location, or NULL; owned */
};

void dv_http_response_cleanup(struct dv_http_response *resp);

/* --- blocking --- */
struct dv_http_client;

/* Returns a new client (caller frees), or NULL with err set. Connections are
 * kept alive between requests. */
struct dv_http_client *
dv_http_client_new(const struct dv_http_client_config *cfg,
                   struct dv_err *err);
void dv_http_client_free(struct dv_http_client *c);
/* Sends method path (path and query, "/v1/jobs?state=queued") with an
 * optional body (sent as application/json) and extra headers, waits at most
 * timeout seconds (0: no limit). Returns 0 when any HTTP response arrived
 * (look at resp->status; caller cleans resp up), or -1 with err set
 * (DV_EUNAVAIL: could not connect or connection lost; DV_ETIMEOUT). */
int dv_http_client_do(struct dv_http_client *c, const char *method,
                      const char *path, const char *body, size_t body_len,
                      const struct dv_http_header *hdrs, int nhdrs,
                      double timeout, struct dv_http_response *resp,
                      struct dv_err *err);

/* --- asynchronous --- */
struct dv_http_async;

/* Called once per request on the loop's thread. resp is NULL when no
 * response arrived, with err saying why; both are borrowed. */
typedef void (*dv_http_done_cb)(const struct dv_http_response *resp,
                                const struct dv_err *err, void *arg);

struct dv_http_async *
dv_http_async_new(struct ev_loop *loop, const struct dv_http_client_config *cfg,
                  struct dv_err *err);
/* Starts a request (body and headers are copied). Returns 0, or -1 with err
 * set (the callback will not run). */
int dv_http_async_send(struct dv_http_async *a, const char *method,
                       const char *path, const char *body, size_t body_len,
                       const struct dv_http_header *hdrs, int nhdrs,
                       double timeout, dv_http_done_cb cb, void *arg,
                       struct dv_err *err);
/* Number of requests in flight. */
int dv_http_async_pending(const struct dv_http_async *a);
/* Cancels every request in flight (their callbacks do not run) and frees.
 * dv_http_async_free(NULL) does nothing. */
void dv_http_async_free(struct dv_http_async *a);

#endif
