/*
 * HTTP/1.1 server: accepting connections, one state machine per connection
 * (TLS handshake, reading requests with http-parser under the size limits,
 * handing each to the handler, writing the answer, timeouts, lingering
 * close) and formatting answers. Listening sockets and the TLS context are
 * made in http-listen.c, the request object lives in http-request.c.
 * docs/internals/http.md explains the states and the limits.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/http-listen.h"
#include "lib/http-request.h"
#include "lib/http-server.h"
#include "lib/http-util.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define DEFAULT_MAX_BODY_BYTES (8 * 1024 * 1024)
#define DEFAULT_READ_TIMEOUT 30.0
#define DEFAULT_IDLE_TIMEOUT 75.0
#define DEFAULT_MAX_CONNECTIONS 4096
#define READ_CHUNK 16384
/* Stop parsing further pipelined requests while this much output waits. */
#define OUT_HIGH_WATER (1024 * 1024)
/* Longest wait for the peer to close after our last response. */
#define LINGER_TIMEOUT 2.0
/* After EMFILE and friends, accept again after this many seconds. */
#define ACCEPT_RETRY 1.0
/* Accepts per callback, so that a flood cannot starve the loop. */
#define ACCEPT_BATCH 64

enum conn_state {
    CONN_HANDSHAKE, /* TLS handshake in progress; read_timeout bounds it */
    CONN_IDLE,      /* between requests, nothing of the next one read yet;
                       the idle timer runs (restarted by write progress) */
    CONN_READING,   /* a request has started: reading its head and body;
                       the read timer runs from its first byte */
    CONN_HANDLING,  /* a complete request is with the handler; parsing is
                       paused, reading goes on only to notice the peer
                       leaving (pipelined bytes are buffered); no timer */
    CONN_CLOSING,   /* the last response is queued: flush it, then LINGER */
    CONN_LINGER,    /* our side is shut down for writing; discard input
                       until the peer closes or the linger timer fires, so
                       that unread input does not reset the response away */
};

enum conn_pause {
    PAUSE_NONE,
    PAUSE_HEAD,    /* the parser stopped after the request head */
    PAUSE_MESSAGE, /* the parser stopped after a complete request */
};

struct conn {
    struct dv_http_server *srv;
    struct conn *prev;
    struct conn *next;
    int fd;
    enum conn_state state;
    ev_io io;
    int io_events; /* what io waits for now (0: stopped) */
    ev_timer timer;

    SSL *ssl;
    int handshake_want;   /* EV_READ or EV_WRITE */
    int read_wants_write; /* the last SSL_read said WANT_WRITE */
    int write_wants_read; /* the last SSL_write said WANT_READ */
    char *tls_cn;

    char peer[INET6_ADDRSTRLEN + 16];
    int have_uid;
    uid_t uid;

    http_parser parser;
    enum conn_pause pause;
    int in_head;        /* the current request's head is incomplete */
    size_t head_bytes;  /* bytes fed to the parser for the current head */
    size_t head_accum;  /* bytes of URL, names and values seen so far */
    int last_was_value; /* header callbacks: a value ended the last call */
    int fail_status;    /* set by a parser callback that refused input */
    const char *fail_code;
    const char *fail_msg;
    struct dv_buf field;
    struct dv_buf value;
    struct dv_buf url;
    struct dv_http_request *req; /* being read, or with the handler */

    struct dv_buf in; /* received, not parsed yet: from in_off on */
    size_t in_off;
    struct dv_buf out; /* to send: from out_off on */
    size_t out_off;
};

struct dv_http_server {
    struct ev_loop *loop;
    dv_http_handler_cb handler;
    void *arg;
    size_t max_header_bytes;
    size_t max_body_bytes;
    double read_timeout;
    double idle_timeout;
    int max_connections;

    struct dv_listener listener;
    ev_io accept_io;
    ev_timer accept_retry;
    int draining; /* stop_accepting was called */

    SSL_CTX *ssl_ctx; /* NULL: plain HTTP */
    int mtls;         /* client certificates are required */

    http_parser_settings settings;
    struct conn *conns;
    int nconns;
};

static void conn_run(struct conn *c);
static void conn_close(struct conn *c);

/* --- small helpers --- */

static void
format_peer(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char addr[INET6_ADDRSTRLEN];

    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        snprintf(buf, size, "%s:%u", addr, (unsigned)ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        snprintf(buf, size, "[%s]:%u", addr, (unsigned)ntohs(sin6->sin6_port));
        break;
    }
    default:
        snprintf(buf, size, "unknown");
        break;
    }
}

static const char *
ssl_error_string(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(buf, size, "unknown TLS error");
    } else {
        ERR_error_string_n(e, buf, size);
    }
    ERR_clear_error();
    return buf;
}

/* --- connection I/O --- */

static size_t
conn_out_pending(const struct conn *c)
{
    return c->out.len - c->out_off;
}

static void
conn_set_timer(struct conn *c, double seconds)
{
    ev_timer_stop(c->srv->loop, &c->timer);
    if (seconds > 0) {
        ev_timer_set(&c->timer, seconds, 0.);
        ev_timer_start(c->srv->loop, &c->timer);
    }
}

static int
conn_wants_read(const struct conn *c)
{
    switch (c->state) {
    case CONN_IDLE:
        return conn_out_pending(c) < OUT_HIGH_WATER;
    case CONN_READING:
        return 1;
    case CONN_HANDLING:
        /* Only to notice the peer leaving; stop once enough pipelined
         * input waits. */
        return c->in.len - c->in_off < c->srv->max_header_bytes;
    default:
        break;
    }
    return 0;
}

/* The one place that decides what the io watcher waits for, from the state
 * and from what OpenSSL asked for last. */
static void
conn_update_io(struct conn *c)
{
    int events = 0;

    switch (c->state) {
    case CONN_HANDSHAKE:
        events = c->handshake_want;
        break;
    case CONN_LINGER:
        events = EV_READ;
        break;
    default:
        if (conn_wants_read(c)) {
            events |= c->read_wants_write ? EV_WRITE : EV_READ;
        }
        if (conn_out_pending(c) > 0) {
            events |= c->write_wants_read ? EV_READ : EV_WRITE;
        }
        break;
    }
    if (events == c->io_events) {
        return;
    }
    ev_io_stop(c->srv->loop, &c->io);
    if (events != 0) {
        ev_io_set(&c->io, c->fd, events);
        ev_io_start(c->srv->loop, &c->io);
    }
    c->io_events = events;
}

/* Returns the byte count, 0 at end of stream, -2 when it would block, -1 on
 * error. */
static ssize_t
conn_recv(struct conn *c, char *buf, size_t size)
{
    ssize_t n;

    if (c->ssl == NULL) {
        for (;;) {
            n = recv(c->fd, buf, size, 0);
            if (n >= 0) {
                return n;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return -2;
            }
            log_debug("http: could not read from %s: %s", c->peer,
                      strerror(errno));
            return -1;
        }
    }
    ERR_clear_error();
    n = SSL_read(c->ssl, buf, (int)size);
    if (n > 0) {
        c->read_wants_write = 0;
        return n;
    }
    switch (SSL_get_error(c->ssl, (int)n)) {
    case SSL_ERROR_WANT_READ:
        c->read_wants_write = 0;
        return -2;
    case SSL_ERROR_WANT_WRITE:
        c->read_wants_write = 1;
        return -2;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default: {
        char msg[256];

        log_debug("http: TLS read from %s failed: %s", c->peer,
                  ssl_error_string(msg, sizeof(msg)));
        return -1;
    }
    }
}

/* Sends what it can of the output. Returns 0, or -1 when the connection was
 * closed (c is freed). */
static int
conn_flush(struct conn *c)
{
    size_t sent = 0;

    while (conn_out_pending(c) > 0) {
        const char *p = c->out.data + c->out_off;
        size_t left = conn_out_pending(c);
        ssize_t n;

        if (c->ssl == NULL) {
            n = send(c->fd, p, left, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                }
                log_debug("http: could not write to %s: %s", c->peer,
                          strerror(errno));
                conn_close(c);
                return -1;
            }
        } else {
            int chunk = left > INT32_MAX ? INT32_MAX : (int)left;
            int r;

            ERR_clear_error();
            r = SSL_write(c->ssl, p, chunk);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                char msg[256];

                if (e == SSL_ERROR_WANT_WRITE) {
                    c->write_wants_read = 0;
                    break;
                }
                if (e == SSL_ERROR_WANT_READ) {
                    c->write_wants_read = 1;
                    break;
                }
                log_debug("http: TLS write to %s failed: %s", c->peer,
                          ssl_error_string(msg, sizeof(msg)));
                conn_close(c);
                return -1;
            }
            c->write_wants_read = 0;
            n = r;
        }
        c->out_off += (size_t)n;
        sent += (size_t)n;
    }
    if (c->out_off == c->out.len) {
        dv_buf_reset(&c->out);
        c->out_off = 0;
    }
    if (sent > 0) {
        /* Progress: a slow reader is not an idle one. */
        if (c->state == CONN_IDLE) {
            conn_set_timer(c, c->srv->idle_timeout);
        } else if (c->state == CONN_CLOSING) {
            conn_set_timer(c, c->srv->read_timeout);
        }
    }
    return 0;
}

static void
conn_write_head(struct conn *c, int status, const char *content_type,
                size_t len, const struct dv_http_header *extra, int nextra,
                int keep_alive)
{
    char date[64];
    int i;

    dv_http_date(date, sizeof(date));
    dv_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                  dv_http_status_reason(status), date);
    if (status != 204 && status != 304) {
        if (content_type != NULL && len > 0) {
            dv_buf_printf(&c->out, "Content-Type: %s\r\n", content_type);
        }
        dv_buf_printf(&c->out, "Content-Length: %zu\r\n", len);
    }
    dv_buf_printf(&c->out, "Connection: %s\r\n",
                  keep_alive ? "keep-alive" : "close");
    for (i = 0; i < nextra; i++) {
        const char *n = extra[i].name, *v = extra[i].value;

        if (n == NULL || v == NULL || n[strcspn(n, "\r\n:")] != '\0' ||
            v[strcspn(v, "\r\n")] != '\0') {
            log_warn("http: dropped invalid response header \"%s\"",
                     n != NULL ? n : "(null)");
            continue;
        }
        dv_buf_printf(&c->out, "%s: %s\r\n", n, v);
    }
    dv_buf_puts(&c->out, "\r\n");
}

/* Answers a request that never reached the handler (bad input, limits,
 * timeout) and closes the connection after the answer. */
static void conn_fail(struct conn *c, int status, const char *code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
conn_fail(struct conn *c, int status, const char *code, const char *fmt, ...)
{
    char msg[256];
    char *body;
    size_t len;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_info("http: %s: %d %s", c->peer, status, msg);
    if (c->req != NULL) {
        dv_http_request_free(c->req);
        c->req = NULL;
    }
    body = dv_http_error_body(code, msg);
    len = strlen(body);
    conn_write_head(c, status, "application/json", len, NULL, 0, 0);
    dv_buf_append(&c->out, body, len);
    free(body);
    c->state = CONN_CLOSING;
    c->in_head = 0;
    conn_set_timer(c, c->srv->read_timeout);
}

/* --- parser callbacks --- */

static int
head_grow(struct conn *c, size_t len)
{
    c->head_accum += len;
    if (c->head_accum > c->srv->max_header_bytes) {
        c->fail_status = 431;
        c->fail_code = "header_too_large";
        c->fail_msg = "request header fields too large";
        return -1;
    }
    return 0;
}

static int
on_message_begin(http_parser *p)
{
    struct conn *c = p->data;

    dv_http_request_free(c->req);
    c->req = dv_http_request_new();
    c->req->conn = c;
    c->req->peer = c->peer;
    c->req->tls_cn = c->tls_cn;
    c->req->have_uid = c->have_uid;
    c->req->uid = c->uid;
    c->req->start = ev_now(c->srv->loop);
    dv_buf_reset(&c->url);
    dv_buf_reset(&c->field);
    dv_buf_reset(&c->value);
    c->last_was_value = 0;
    c->head_accum = 0;
    c->in_head = 1;
    c->state = CONN_READING;
    conn_set_timer(c, c->srv->read_timeout);
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;

    if (head_grow(c, len) < 0) {
        return -1;
    }
    dv_buf_append(&c->url, at, len);
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;

    if (head_grow(c, len + (c->last_was_value ? 4 : 0)) < 0) {
        return -1;
    }
    if (c->last_was_value) {
        dv_http_request_add_header(c->req, &c->field, &c->value);
        c->last_was_value = 0;
    }
    dv_buf_append(&c->field, at, len);
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;

    if (head_grow(c, len) < 0) {
        return -1;
    }
    dv_buf_append(&c->value, at, len);
    c->last_was_value = 1;
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;

    if (c->last_was_value) {
        dv_http_request_add_header(c->req, &c->field, &c->value);
        c->last_was_value = 0;
    }
    c->req->url = dv_buf_steal(&c->url);
    c->req->method = http_method_str((enum http_method)p->method);
    c->req->head_only = p->method == HTTP_HEAD;
    c->pause = PAUSE_HEAD;
    http_parser_pause(p, 1);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;

    if (c->req->body.len + len > c->srv->max_body_bytes) {
        c->fail_status = 413;
        c->fail_code = "body_too_large";
        c->fail_msg = "request body too large";
        return -1;
    }
    dv_buf_append(&c->req->body, at, len);
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct conn *c = p->data;

    c->req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    c->pause = PAUSE_MESSAGE;
    http_parser_pause(p, 1);
    return 0;
}

/* The request head is complete: check it against the limits, answer
 * Expect: 100-continue. Returns 0 to go on, -1 when the request failed. */
static int
conn_head_done(struct conn *c)
{
    struct dv_http_request *req = c->req;
    http_parser *p = &c->parser;
    int has_length = !(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX;
    const char *expect;

    c->in_head = 0;
    if (c->head_bytes > c->srv->max_header_bytes) {
        conn_fail(c, 431, "header_too_large",
                  "request header fields too large (more than %zu bytes)",
                  c->srv->max_header_bytes);
        return -1;
    }
    if (dv_http_request_parse_target(req) < 0) {
        conn_fail(c, 400, "bad_request", "malformed request target");
        return -1;
    }
    if (has_length && p->content_length > c->srv->max_body_bytes) {
        conn_fail(c, 413, "body_too_large",
                  "request body of %llu bytes is over the limit of %zu",
                  (unsigned long long)p->content_length,
                  c->srv->max_body_bytes);
        return -1;
    }
    expect = dv_http_request_header(req, "Expect");
    if (expect != NULL && p->http_major == 1 && p->http_minor >= 1) {
        if (strcasecmp(expect, "100-continue") != 0) {
            conn_fail(c, 417, "expectation_failed",
                      "unsupported expectation \"%.64s\"", expect);
            return -1;
        }
        if ((p->flags & F_CHUNKED) || (has_length && p->content_length > 0)) {
            dv_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        }
    }
    return 0;
}

/* A complete request: hand it to the handler. */
static void
conn_dispatch(struct conn *c)
{
    struct dv_http_request *req = c->req;

    c->state = CONN_HANDLING;
    c->head_bytes = 0;
    conn_set_timer(c, 0);
    req->dispatched = 1;
    c->srv->handler(req, c->srv->arg);
}

/* Parses buffered input while the state allows it, dispatching complete
 * requests. Never frees c: failures queue an answer and move to CLOSING. */
static void
conn_process(struct conn *c)
{
    while ((c->state == CONN_IDLE || c->state == CONN_READING) &&
           c->in_off < c->in.len) {
        int counting = c->state == CONN_IDLE || c->in_head;
        size_t n;
        enum http_errno e;

        if (c->state == CONN_IDLE && conn_out_pending(c) >= OUT_HIGH_WATER) {
            break;
        }
        c->pause = PAUSE_NONE;
        c->fail_status = 0;
        n = http_parser_execute(&c->parser, &c->srv->settings,
                                c->in.data + c->in_off, c->in.len - c->in_off);
        c->in_off += n;
        if (counting) {
            c->head_bytes += n;
        }
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->pause == PAUSE_HEAD) {
                if (conn_head_done(c) < 0) {
                    break;
                }
            } else if (c->pause == PAUSE_MESSAGE) {
                conn_dispatch(c);
            }
            continue;
        }
        if (e != HPE_OK) {
            if (c->fail_status != 0) {
                conn_fail(c, c->fail_status, c->fail_code, "%s", c->fail_msg);
            } else if (e == HPE_HEADER_OVERFLOW) {
                conn_fail(c, 431, "header_too_large",
                          "request header fields too large");
            } else {
                conn_fail(c, 400, "bad_request", "malformed request: %s",
                          http_errno_description(e));
            }
            break;
        }
        if (c->state == CONN_READING && c->in_head &&
            c->head_bytes > c->srv->max_header_bytes) {
            conn_fail(c, 431, "header_too_large",
                      "request header fields too large (more than %zu bytes)",
                      c->srv->max_header_bytes);
            break;
        }
    }
    /* Keep only what is left to parse. */
    if (c->in_off > 0) {
        size_t left = c->in.len - c->in_off;

        if (left > 0) {
            memmove(c->in.data, c->in.data + c->in_off, left);
        }
        c->in.len = left;
        c->in.data[left] = '\0';
        c->in_off = 0;
    }
}

/* The peer closed its side. Returns -1 when c was closed. */
static int
conn_eof(struct conn *c)
{
    if (c->state == CONN_IDLE && conn_out_pending(c) > 0) {
        c->state = CONN_CLOSING;
        conn_set_timer(c, c->srv->read_timeout);
        return 0;
    }
    /* HANDLING: the client left before its answer (the abort callback
     * runs); READING: half a request will never be complete. */
    conn_close(c);
    return -1;
}

/* Parses what is buffered, then reads and parses while the state wants
 * input. Returns -1 when c was closed. */
static int
conn_read(struct conn *c)
{
    conn_process(c);
    while (conn_wants_read(c)) {
        char buf[READ_CHUNK];
        ssize_t n = conn_recv(c, buf, sizeof(buf));

        if (n == -2) {
            break;
        }
        if (n < 0) {
            conn_close(c);
            return -1;
        }
        if (n == 0) {
            return conn_eof(c);
        }
        dv_buf_append(&c->in, buf, (size_t)n);
        conn_process(c);
    }
    return 0;
}

static void
conn_start_linger(struct conn *c)
{
    c->state = CONN_LINGER;
    if (c->ssl != NULL) {
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* close_notify, best effort */
        ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
    conn_set_timer(c, c->srv->read_timeout < LINGER_TIMEOUT
                          ? c->srv->read_timeout
                          : LINGER_TIMEOUT);
}

/* Discards input until it would block. Returns -1 when c was closed. */
static int
conn_linger_read(struct conn *c)
{
    char buf[READ_CHUNK];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

        if (n > 0) {
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        conn_close(c);
        return -1;
    }
}

static void
conn_extract_cn(struct conn *c)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
#else
    X509 *cert = SSL_get_peer_certificate(c->ssl);
#endif
    X509_NAME *name;
    int i;

    if (cert == NULL) {
        return;
    }
    name = X509_get_subject_name(cert);
    i = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1)
                     : -1;
    if (SSL_get_verify_result(c->ssl) == X509_V_OK && i >= 0) {
        ASN1_STRING *data =
            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, data);

        if (n >= 0 && memchr(utf8, '\0', (size_t)n) == NULL) {
            c->tls_cn = dv_xstrndup((const char *)utf8, (size_t)n);
        }
        OPENSSL_free(utf8);
    }
    X509_free(cert);
}

/* Advances the TLS handshake. Returns -1 when c was closed. */
static int
conn_handshake(struct conn *c)
{
    int r, e;
    char msg[256];

    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        if (c->srv->mtls) {
            conn_extract_cn(c);
        }
        c->state = CONN_IDLE;
        conn_set_timer(c, c->srv->idle_timeout);
        return 0;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->handshake_want = EV_READ;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->handshake_want = EV_WRITE;
        return 0;
    }
    log_info("http: TLS handshake with %s failed: %s", c->peer,
             ssl_error_string(msg, sizeof(msg)));
    conn_close(c);
    return -1;
}

/* Does whatever the connection can do now, then recomputes what to wait
 * for. Every event of the connection, and every answer, ends up here. */
static void
conn_run(struct conn *c)
{
    if (c->state == CONN_HANDSHAKE) {
        if (conn_handshake(c) < 0) {
            return;
        }
    }
    if (c->state == CONN_LINGER) {
        if (conn_linger_read(c) < 0) {
            return;
        }
    } else if (c->state != CONN_HANDSHAKE) {
        if (conn_flush(c) < 0 || conn_read(c) < 0 || conn_flush(c) < 0) {
            return;
        }
        if (c->state == CONN_CLOSING && conn_out_pending(c) == 0) {
            conn_start_linger(c);
            if (conn_linger_read(c) < 0) {
                return;
            }
        } else if (c->state == CONN_IDLE && c->srv->draining &&
                   conn_out_pending(c) == 0 && c->in.len == 0) {
            conn_close(c);
            return;
        }
    }
    conn_update_io(c);
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_run(w->data);
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;

    (void)loop;
    (void)revents;
    switch (c->state) {
    case CONN_READING:
        conn_fail(c, 408, "request_timeout",
                  "request not received within %g seconds",
                  c->srv->read_timeout);
        conn_run(c);
        return;
    case CONN_HANDLING:
        return;
    case CONN_HANDSHAKE:
        log_debug("http: TLS handshake with %s timed out", c->peer);
        break;
    case CONN_IDLE:
        log_debug("http: closing idle connection from %s", c->peer);
        break;
    case CONN_CLOSING:
    case CONN_LINGER:
        break;
    }
    conn_close(c);
}

static void
conn_close(struct conn *c)
{
    struct dv_http_server *srv = c->srv;
    struct dv_http_request *req = c->req;

    c->req = NULL;
    if (req != NULL && req->dispatched && req->abort_cb != NULL) {
        log_info("http: %s: client left before the answer to %s %s", c->peer,
                 req->method, req->url);
        req->abort_cb(req, req->abort_arg);
    }
    dv_http_request_free(req);
    ev_io_stop(srv->loop, &c->io);
    ev_timer_stop(srv->loop, &c->timer);
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
    }
    close(c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->nconns--;
    dv_buf_cleanup(&c->field);
    dv_buf_cleanup(&c->value);
    dv_buf_cleanup(&c->url);
    dv_buf_cleanup(&c->in);
    dv_buf_cleanup(&c->out);
    free(c->tls_cn);
    free(c);
}

static void
conn_new(struct dv_http_server *srv, int fd, const struct sockaddr_storage *ss,
         int is_unix)
{
    struct conn *c = dv_xcalloc(1, sizeof(*c));

    c->srv = srv;
    c->fd = fd;
    if (is_unix) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        dv_strlcpy(c->peer, "unix", sizeof(c->peer));
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            c->have_uid = 1;
            c->uid = cred.uid;
        }
    } else {
        int one = 1;

        format_peer(ss, c->peer, sizeof(c->peer));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    dv_buf_init(&c->field);
    dv_buf_init(&c->value);
    dv_buf_init(&c->url);
    dv_buf_init(&c->in);
    dv_buf_init(&c->out);
    ev_io_init(&c->io, conn_io_cb, fd, 0);
    c->io.data = c;
    ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
    c->timer.data = c;

    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nconns++;

    if (srv->ssl_ctx != NULL) {
        c->ssl = SSL_new(srv->ssl_ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
            char msg[256];

            log_error("http: could not set up TLS for %s: %s", c->peer,
                      ssl_error_string(msg, sizeof(msg)));
            conn_close(c);
            return;
        }
        SSL_set_accept_state(c->ssl);
        c->state = CONN_HANDSHAKE;
        c->handshake_want = EV_READ;
        conn_set_timer(c, srv->read_timeout);
    } else {
        c->state = CONN_IDLE;
        conn_set_timer(c, srv->idle_timeout);
    }
    conn_update_io(c);
}

/* --- listener --- */

static void
server_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct dv_http_server *srv = w->data;
    int i;

    (void)revents;
    for (i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd;

        memset(&ss, 0, sizeof(ss));
        fd = accept4(srv->listener.fd, (struct sockaddr *)&ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                log_warn("http: could not accept a connection: %s; "
                         "pausing for %g seconds",
                         strerror(errno), ACCEPT_RETRY);
                ev_io_stop(loop, &srv->accept_io);
                ev_timer_set(&srv->accept_retry, ACCEPT_RETRY, 0.);
                ev_timer_start(loop, &srv->accept_retry);
                return;
            }
            log_warn("http: could not accept a connection: %s",
                     strerror(errno));
            return;
        }
        if (srv->nconns >= srv->max_connections) {
            log_warn("http: refused a connection: %d connections open",
                     srv->nconns);
            close(fd);
            continue;
        }
        conn_new(srv, fd, &ss, srv->listener.unix_path != NULL);
    }
}

static void
server_accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct dv_http_server *srv = w->data;

    (void)revents;
    if (!srv->draining && srv->listener.fd >= 0) {
        ev_io_start(loop, &srv->accept_io);
    }
}

struct dv_http_server *
dv_http_server_new(struct ev_loop *loop,
                   const struct dv_http_server_config *cfg,
                   dv_http_handler_cb handler, void *arg, struct dv_err *err)
{
    struct dv_http_server *srv = dv_xcalloc(1, sizeof(*srv));

    srv->loop = loop;
    srv->handler = handler;
    srv->arg = arg;
    srv->listener.fd = -1;
    srv->max_header_bytes = cfg->max_header_bytes > 0
                                ? cfg->max_header_bytes
                                : DEFAULT_MAX_HEADER_BYTES;
    srv->max_body_bytes =
        cfg->max_body_bytes > 0 ? cfg->max_body_bytes : DEFAULT_MAX_BODY_BYTES;
    srv->read_timeout =
        cfg->read_timeout > 0 ? cfg->read_timeout : DEFAULT_READ_TIMEOUT;
    srv->idle_timeout =
        cfg->idle_timeout > 0 ? cfg->idle_timeout : DEFAULT_IDLE_TIMEOUT;
    srv->max_connections = cfg->max_connections > 0 ? cfg->max_connections
                                                    : DEFAULT_MAX_CONNECTIONS;

    srv->settings.on_message_begin = on_message_begin;
    srv->settings.on_url = on_url;
    srv->settings.on_header_field = on_header_field;
    srv->settings.on_header_value = on_header_value;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_body = on_body;
    srv->settings.on_message_complete = on_message_complete;

    if (dv_str_empty(cfg->tls_cert) != dv_str_empty(cfg->tls_key)) {
        dv_err_set(err, DV_EINVAL, "tls_config",
                   "TLS needs both a certificate and a key");
        goto fail;
    }
    if (!dv_str_empty(cfg->tls_client_ca) && dv_str_empty(cfg->tls_cert)) {
        dv_err_set(err, DV_EINVAL, "tls_config",
                   "a client CA needs a server certificate and key");
        goto fail;
    }
    if (!dv_str_empty(cfg->tls_cert)) {
        srv->mtls = !dv_str_empty(cfg->tls_client_ca);
        srv->ssl_ctx =
            dv_tls_server_ctx_new(cfg->tls_cert, cfg->tls_key,
                                  srv->mtls ? cfg->tls_client_ca : NULL, err);
        if (srv->ssl_ctx == NULL) {
            goto fail;
        }
    }
    if (dv_listener_open(&srv->listener, cfg->listen, err) < 0) {
        goto fail;
    }
    ev_io_init(&srv->accept_io, server_accept_cb, srv->listener.fd, EV_READ);
    srv->accept_io.data = srv;
    ev_timer_init(&srv->accept_retry, server_accept_retry_cb, 0., 0.);
    srv->accept_retry.data = srv;
    ev_io_start(loop, &srv->accept_io);
    log_debug("http: listening on %s%s", cfg->listen,
              srv->ssl_ctx != NULL ? " (TLS)" : "");
    return srv;

fail:
    if (srv->ssl_ctx != NULL) {
        SSL_CTX_free(srv->ssl_ctx);
    }
    free(srv);
    return NULL;
}

int
dv_http_server_port(const struct dv_http_server *srv)
{
    return srv->listener.port;
}

int
dv_http_server_connections(const struct dv_http_server *srv)
{
    return srv->nconns;
}

static void
server_close_listener(struct dv_http_server *srv)
{
    ev_io_stop(srv->loop, &srv->accept_io);
    ev_timer_stop(srv->loop, &srv->accept_retry);
    dv_listener_close(&srv->listener);
}

void
dv_http_server_stop_accepting(struct dv_http_server *srv)
{
    struct conn *c;

    srv->draining = 1;
    server_close_listener(srv);
    /* Idle connections close from their own callback (never under a
     * handler's feet); busy ones close when their answer is out. */
    for (c = srv->conns; c != NULL; c = c->next) {
        if (c->state == CONN_IDLE) {
            ev_feed_event(srv->loop, &c->io, EV_CUSTOM);
        }
    }
}

void
dv_http_server_free(struct dv_http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    server_close_listener(srv);
    while (srv->conns != NULL) {
        conn_close(srv->conns);
    }
    if (srv->ssl_ctx != NULL) {
        SSL_CTX_free(srv->ssl_ctx);
    }
    free(srv);
}

/* --- answers --- */

void
dv_http_respond(struct dv_http_request *req, int status,
                const char *content_type, const char *body, size_t len,
                const struct dv_http_header *extra, int nextra)
{
    struct conn *c = req->conn;
    struct dv_http_server *srv = c->srv;
    int keep_alive = req->keep_alive && !srv->draining;
    int no_body = req->head_only || status == 204 || status == 304;

    assert(c->req == req && c->state == CONN_HANDLING);
    if (c->req != req || c->state != CONN_HANDLING) {
        log_error("http: answer to a request that is not outstanding");
        return;
    }
    conn_write_head(c, status, content_type, len, extra, nextra, keep_alive);
    if (!no_body && len > 0) {
        dv_buf_append(&c->out, body, len);
    }
    log_info("http: %s \"%s %s\" %d %zu %.1fms", c->peer, req->method, req->url,
             status, len, (ev_now(srv->loop) - req->start) * 1000.);
    c->req = NULL;
    dv_http_request_free(req);
    if (keep_alive) {
        c->state = CONN_IDLE;
        conn_set_timer(c, srv->idle_timeout);
    } else {
        c->state = CONN_CLOSING;
        conn_set_timer(c, srv->read_timeout);
    }
    /* Flushing and parsing what follows happen in the connection's own
     * callback, never under the handler's feet. */
    ev_feed_event(srv->loop, &c->io, EV_CUSTOM);
}

void
dv_http_respond_json(struct dv_http_request *req, int status, json_t *body,
                     const struct dv_http_header *extra, int nextra)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);

    json_decref(body);
    if (s == NULL) {
        dv_http_respond_errorf(req, 500, "internal",
                               "could not encode the response");
        return;
    }
    dv_http_respond(req, status, "application/json", s, strlen(s), extra,
                    nextra);
    free(s);
}

void
dv_http_respond_error(struct dv_http_request *req, const struct dv_err *err)
{
    const char *code =
        err->code != NULL ? err->code : dv_err_kind_code(err->kind);
    char *body = dv_http_error_body(code, err->msg);

    dv_http_respond(req, dv_err_http_status(err), "application/json", body,
                    strlen(body), NULL, 0);
    free(body);
}

void
dv_http_respond_errorf(struct dv_http_request *req, int status,
                       const char *code, const char *fmt, ...)
{
    char msg[512];
    char *body;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    body = dv_http_error_body(code, msg);
    dv_http_respond(req, status, "application/json", body, strlen(body), NULL,
                    0);
    free(body);
}
