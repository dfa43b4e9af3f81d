/*
 * What test-http.c and test-http-client.c share: a server on its own loop
 * in a second thread, with a handler of test routes (/hang, /delay, /text,
 * /big, /error, /err, /stop, and an echo of everything else as JSON), and
 * raw-socket helpers for what a well-behaved client never sends.
 */
#ifndef DV_TEST_HTTP_FIXTURE_H
#define DV_TEST_HTTP_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/http-client.h"
#include "lib/http-server.h"
#include "lib/mem.h"
#include "tests/unit/unit.h"

static inline double
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct fixture {
    struct ev_loop *loop;
    struct dv_http_server *srv;
    pthread_t thread;
    ev_async stop;
    int port;
    char base[300];
    atomic_int handled; /* requests that reached the handler */
    atomic_int hanging; /* /hang requests held */
    atomic_int aborted; /* abort callbacks run */
};

/* An answer given later from a timer (a long poll in miniature). */
struct delayed {
    ev_timer timer;
    struct fixture *f;
    struct dv_http_request *req;
    char text[64];
};

static inline void
delayed_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct delayed *d = w->data;

    (void)loop;
    (void)revents;
    dv_http_respond(d->req, 200, "text/plain", d->text, strlen(d->text), NULL,
                    0);
    free(d);
}

static inline void
delayed_abort_cb(struct dv_http_request *req, void *arg)
{
    struct delayed *d = arg;

    (void)req;
    ev_timer_stop(d->f->loop, &d->timer);
    atomic_fetch_add(&d->f->aborted, 1);
    free(d);
}

static inline void
hang_abort_cb(struct dv_http_request *req, void *arg)
{
    struct fixture *f = arg;

    (void)req;
    atomic_fetch_add(&f->aborted, 1);
}

static inline json_t *
json_str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static inline void
echo(struct fixture *f, struct dv_http_request *req)
{
    static const struct dv_http_header extra[] = {
        {"X-Drover-Index", "42"},
        {"Location", "/v1/jobs/7"},
    };
    json_t *o = json_object();
    size_t len;
    const char *body = dv_http_request_body(req, &len);
    uid_t uid;

    json_object_set_new(o, "method", json_string(dv_http_request_method(req)));
    json_object_set_new(o, "path", json_string(dv_http_request_path(req)));
    json_object_set_new(o, "a",
                        json_str_or_null(dv_http_request_query(req, "a")));
    json_object_set_new(o, "b",
                        json_str_or_null(dv_http_request_query(req, "b")));
    json_object_set_new(o, "c",
                        json_str_or_null(dv_http_request_query(req, "c")));
    json_object_set_new(o, "e",
                        json_str_or_null(dv_http_request_query(req, "e")));
    json_object_set_new(
        o, "missing", json_str_or_null(dv_http_request_query(req, "missing")));
    json_object_set_new(
        o, "x_test", json_str_or_null(dv_http_request_header(req, "x-test")));
    json_object_set_new(
        o, "ctype",
        json_str_or_null(dv_http_request_header(req, "Content-Type")));
    json_object_set_new(o, "body", json_stringn(body, len));
    json_object_set_new(o, "body_len", json_integer((json_int_t)len));
    json_object_set_new(o, "peer", json_string(dv_http_request_peer(req)));
    json_object_set_new(o, "uid",
                        json_integer(dv_http_request_peer_uid(req, &uid) == 0
                                         ? (json_int_t)uid
                                         : -1));
    json_object_set_new(o, "cn",
                        json_str_or_null(dv_http_request_tls_peer_cn(req)));
    json_object_set_new(o, "conns",
                        json_integer(dv_http_server_connections(f->srv)));
    dv_http_respond_json(req, 200, o, extra, 2);
}

static inline void
test_handler(struct dv_http_request *req, void *arg)
{
    struct fixture *f = arg;
    const char *path = dv_http_request_path(req);
    const char *v = dv_http_request_query(req, "v");

    atomic_fetch_add(&f->handled, 1);
    if (strcmp(path, "/hang") == 0) {
        dv_http_request_set_abort_cb(req, hang_abort_cb, f);
        atomic_fetch_add(&f->hanging, 1);
    } else if (strcmp(path, "/delay") == 0) {
        struct delayed *d = dv_xcalloc(1, sizeof(*d));
        const char *ms = dv_http_request_query(req, "ms");

        d->f = f;
        d->req = req;
        snprintf(d->text, sizeof(d->text), "%s", v != NULL ? v : "late");
        ev_timer_init(&d->timer, delayed_timer_cb,
                      ms != NULL ? strtod(ms, NULL) / 1000. : 0.1, 0.);
        d->timer.data = d;
        ev_timer_start(f->loop, &d->timer);
        dv_http_request_set_abort_cb(req, delayed_abort_cb, d);
    } else if (strcmp(path, "/text") == 0) {
        v = v != NULL ? v : "";
        dv_http_respond(req, 200, "text/plain", v, strlen(v), NULL, 0);
    } else if (strcmp(path, "/big") == 0) {
        const char *n = dv_http_request_query(req, "n");
        size_t len = n != NULL ? strtoul(n, NULL, 10) : 0;
        char *big = dv_xmalloc(len);

        memset(big, 'z', len);
        dv_http_respond(req, 200, "text/plain", big, len, NULL, 0);
        free(big);
    } else if (strcmp(path, "/error") == 0) {
        dv_http_respond_errorf(req, 404, "job_not_found", "job %d not found",
                               12);
    } else if (strcmp(path, "/err") == 0) {
        struct dv_err err;

        dv_err_set(&err, DV_ECONFLICT, "job_state", "job %d is running", 3);
        dv_http_respond_error(req, &err);
    } else if (strcmp(path, "/stop") == 0) {
        dv_http_server_stop_accepting(f->srv);
        dv_http_respond(req, 200, "text/plain", "stopping", 8, NULL, 0);
    } else {
        echo(f, req);
    }
}

static inline void
fixture_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static inline void *
fixture_thread(void *arg)
{
    struct fixture *f = arg;

    ev_run(f->loop, 0);
    return NULL;
}

/* Starts a server with cfg (listen defaults to 127.0.0.1:0). */
static inline int
fixture_start(struct fixture *f, struct dv_http_server_config *cfg)
{
    struct dv_err err;

    memset(f, 0, sizeof(*f));
    atomic_init(&f->handled, 0);
    atomic_init(&f->hanging, 0);
    atomic_init(&f->aborted, 0);
    if (cfg->listen == NULL) {
        cfg->listen = "127.0.0.1:0";
    }
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->srv = dv_http_server_new(f->loop, cfg, test_handler, f, &err);
    if (f->srv == NULL) {
        fprintf(stderr, "server: %s\n", err.msg);
        ev_loop_destroy(f->loop);
        return -1;
    }
    f->port = dv_http_server_port(f->srv);
    snprintf(f->base, sizeof(f->base), "%s://127.0.0.1:%d",
             cfg->tls_cert != NULL ? "https" : "http", f->port);
    ev_async_init(&f->stop, fixture_stop_cb);
    ev_async_start(f->loop, &f->stop);
    pthread_create(&f->thread, NULL, fixture_thread, f);
    return 0;
}

static inline void
fixture_stop(struct fixture *f)
{
    ev_async_send(f->loop, &f->stop);
    pthread_join(f->thread, NULL);
    dv_http_server_free(f->srv);
    ev_async_stop(f->loop, &f->stop);
    ev_loop_destroy(f->loop);
}

static inline int
wait_for(atomic_int *counter, int value, double timeout)
{
    double end = mono_now() + timeout;

    while (atomic_load(counter) < value) {
        if (mono_now() > end) {
            return -1;
        }
        usleep(2000);
    }
    return 0;
}

static inline struct dv_http_client *
client_new(const char *base, const char *ca, const char *cert, const char *key)
{
    struct dv_http_client_config cfg = {
        .base = base, .ca_file = ca, .cert = cert, .key = key};
    struct dv_err err;
    struct dv_http_client *c = dv_http_client_new(&cfg, &err);

    if (c == NULL) {
        fprintf(stderr, "client: %s\n", err.msg);
    }
    return c;
}

/* A string member of the JSON object in body, or NULL. */
static inline char *
json_field(const char *body, const char *name)
{
    json_t *o = json_loads(body, 0, NULL);
    json_t *v = json_object_get(o, name);
    char *s = NULL;

    if (json_is_string(v)) {
        s = dv_xstrdup(json_string_value(v));
    } else if (json_is_integer(v)) {
        s = dv_xasprintf("%lld", (long long)json_integer_value(v));
    } else if (json_is_null(v)) {
        s = dv_xstrdup("(null)");
    }
    json_decref(o);
    return s;
}

#define CHECK_FIELD(body, name, want)                                          \
    do {                                                                       \
        char *got_ = json_field((body), (name));                               \
        CHECK_STR(got_, (want));                                               \
        free(got_);                                                            \
    } while (0)

/* --- raw sockets --- */

static inline int
raw_connect(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static inline void
raw_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

        if (w <= 0) {
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static inline void
raw_puts(int fd, const char *s)
{
    raw_send(fd, s, strlen(s));
}

/* Complete final responses (1xx excluded) at the start of buf. */
static inline int
count_responses(const struct dv_buf *b)
{
    size_t pos = 0;
    int n = 0;

    while (pos < b->len) {
        const char *head = b->data + pos;
        const char *end = strstr(head, "\r\n\r\n");
        const char *cl;
        size_t head_len, clen = 0;

        if (end == NULL) {
            break;
        }
        head_len = (size_t)(end - head) + 4;
        cl = strstr(head, "Content-Length: ");
        if (cl != NULL && cl < end) {
            clen = strtoul(cl + 16, NULL, 10);
        }
        if (strncmp(head, "HTTP/1.1 1", 10) == 0) {
            pos += head_len;
            continue;
        }
        if (pos + head_len + clen > b->len) {
            break;
        }
        pos += head_len + clen;
        n++;
    }
    return n;
}

/* Reads into out until want complete responses arrived (want 0: until the
 * peer closes) or timeout. Returns 1 when the peer closed, else 0. */
static inline int
raw_read(int fd, struct dv_buf *out, int want, double timeout)
{
    double end = mono_now() + timeout;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char buf[8192];
        double left = end - mono_now();
        ssize_t n;

        if (want > 0 && count_responses(out) >= want) {
            return 0;
        }
        if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) <= 0) {
            return 0;
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return 1;
        }
        dv_buf_append(out, buf, (size_t)n);
    }
}

static inline int
closed_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(fd, (struct sockaddr *)&sin, &len);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

#endif
