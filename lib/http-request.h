/*
 * The HTTP server's request object. Private to http-server.c (which fills
 * it while parsing and answers it) and http-request.c (which decodes its
 * target and serves the accessors declared in http-server.h); users of the
 * server see only those accessors.
 */
#ifndef DV_HTTP_REQUEST_H
#define DV_HTTP_REQUEST_H

#include <ev.h>
#include <sys/types.h>

#include "lib/http-server.h"
#include "lib/mem.h"

struct conn; /* a connection of http-server.c */

struct dv_http_kv {
    char *name;
    char *value;
};

struct dv_http_request {
    struct conn *conn;  /* borrowed; the connection outlives the request */
    const char *peer;   /* borrowed from the connection */
    const char *tls_cn; /* borrowed from the connection; NULL without one */
    int have_uid;       /* Unix-socket peer with known credentials */
    uid_t uid;
    const char *method;       /* static string from http-parser */
    int head_only;            /* HEAD: the answer carries no body */
    int keep_alive;           /* the client allows another request afterwards */
    int dispatched;           /* the handler has it: abort_cb applies */
    char *url;                /* raw request target; owned */
    char *path;               /* decoded; owned */
    struct dv_http_kv *query; /* decoded, in order; owned */
    int nquery;
    struct dv_http_kv *headers; /* as received, in order; owned */
    int nheaders;
    int cap_headers;
    struct dv_buf body;
    ev_tstamp start; /* loop time when its first byte arrived */
    dv_http_abort_cb abort_cb;
    void *abort_arg;
};

/* Returns a new, empty request (caller frees with dv_http_request_free). */
struct dv_http_request *dv_http_request_new(void);
/* dv_http_request_free(NULL) does nothing. */
void dv_http_request_free(struct dv_http_request *req);
/* Appends a header, taking the contents of name and value (both are left
 * empty). */
void dv_http_request_add_header(struct dv_http_request *req,
                                struct dv_buf *name, struct dv_buf *value);
/* Decodes req->url into path and query. Returns 0, or -1 when the target
 * is malformed (bad escape, %00, not a path). */
int dv_http_request_parse_target(struct dv_http_request *req);

#endif
