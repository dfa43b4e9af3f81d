/*
 * HTTP/1.1 server on libev and joyent's http-parser: keep-alive and
 * pipelining (requests of one connection are answered in order, one at a
 * time), limits on header and body size, a read timeout for a request in
 * progress and an idle timeout between requests, TLS through OpenSSL when a
 * certificate and key are given (optionally requiring client certificates),
 * TCP and Unix-socket listeners (peer credentials on the latter), and JSON
 * error bodies {"error": {"code": "...", "message": "..."}}.
 *
 * Threading: everything here runs on the loop's thread. A handler may answer
 * at once or keep the request and answer later (long polls, work handed to
 * another thread that comes back through ev_async), but the answer must be
 * given on the loop's thread.
 */
#ifndef DV_HTTP_SERVER_H
#define DV_HTTP_SERVER_H

#include <ev.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

struct dv_http_server;
struct dv_http_request;

struct dv_http_header {
    const char *name;
    const char *value;
};

struct dv_http_server_config {
    /* "HOST:PORT" ("127.0.0.1:4750", "[::1]:4750", "*:4750", port 0 picks a
     * free one) or "unix:/path/to.sock" (created with mode 0666, removed
     * first when stale). */
    const char *listen;
    const char *tls_cert;      /* PEM certificate chain; TLS when set with */
    const char *tls_key;       /* the PEM private key */
    const char *tls_client_ca; /* when set, a client certificate signed by
                                  this CA is required (mutual TLS) */
    size_t max_header_bytes;   /* request line + headers; 0: 16 KiB */
    size_t max_body_bytes;     /* 0: 8 MiB */
    double read_timeout;       /* seconds for a started request; 0: 30 */
    double idle_timeout;       /* seconds idle between requests; 0: 75 */
    int max_connections;       /* 0: 4096; more are accepted and closed */
};

/* Called once per complete request. The request is borrowed by the handler
 * until it answers with one of the dv_http_respond* functions, or until
 * the abort callback runs. */
typedef void (*dv_http_handler_cb)(struct dv_http_request *req, void *arg);
/* Called when the connection of a request that has not been answered yet
 * closes (client gone, server freed). After it returns the request is
 * freed; do not answer it. */
typedef void (*dv_http_abort_cb)(struct dv_http_request *req, void *arg);

/* Binds, listens and starts accepting on loop. Returns a new server (caller
 * frees with dv_http_server_free), or NULL with err set (address in use,
 * bad certificate, ...). */
struct dv_http_server *
dv_http_server_new(struct ev_loop *loop, const struct dv_http_server_config *cfg,
                   dv_http_handler_cb handler, void *arg, struct dv_err *err);
/* The bound TCP port (useful after listening on port 0); 0 for Unix. */
int dv_http_server_port(const struct dv_http_server *srv);
/* Stops accepting new connections; existing ones are served until idle. */
void dv_http_server_stop_accepting(struct dv_http_server *srv);
/* Number of open connections. */
int dv_http_server_connections(const struct dv_http_server *srv);
/* Closes the listener and every connection; unanswered requests get their
 * abort callback. dv_http_server_free(NULL) does nothing. */
void dv_http_server_free(struct dv_http_server *srv);

/* Request accessors. Returned strings are borrowed from the request. */
const char *dv_http_request_method(const struct dv_http_request *req);
/* The percent-decoded path without the query ("/v1/jobs/12"). */
const char *dv_http_request_path(const struct dv_http_request *req);
/* The percent-decoded value of query parameter name (first occurrence),
 * "" for a parameter without a value, NULL when absent. */
const char *dv_http_request_query(const struct dv_http_request *req,
                                  const char *name);
/* Header value by case-insensitive name (first occurrence), or NULL. */
const char *dv_http_request_header(const struct dv_http_request *req,
                                   const char *name);
/* The body (NUL-terminated for convenience; may hold NULs) and its length. */
const char *dv_http_request_body(const struct dv_http_request *req,
                                 size_t *len);
/* "ADDR:PORT" of the peer, or "unix". */
const char *dv_http_request_peer(const struct dv_http_request *req);
/* For Unix-socket peers: their uid (SO_PEERCRED). Returns 0, or -1 on TCP. */
int dv_http_request_peer_uid(const struct dv_http_request *req, uid_t *uid);
/* Subject CN of a verified TLS client certificate, or NULL. */
const char *dv_http_request_tls_peer_cn(const struct dv_http_request *req);
void dv_http_request_set_abort_cb(struct dv_http_request *req,
                                  dv_http_abort_cb cb, void *arg);

/* Answers req (exactly once; req is invalid afterwards). Sets
 * Content-Length, Date, Connection; extra headers are copied. */
void dv_http_respond(struct dv_http_request *req, int status,
                     const char *content_type, const char *body, size_t len,
                     const struct dv_http_header *extra, int nextra);
/* Answers with body encoded as compact JSON; takes ownership of body. */
void dv_http_respond_json(struct dv_http_request *req, int status,
                          json_t *body, const struct dv_http_header *extra,
                          int nextra);
/* Answers {"error": {"code": err->code, "message": err->msg}} with the
 * status that err's kind maps to. */
void dv_http_respond_error(struct dv_http_request *req,
                           const struct dv_err *err);
/* Same with an explicit status and code. */
void dv_http_respond_errorf(struct dv_http_request *req, int status,
                            const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
