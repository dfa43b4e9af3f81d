/*
 * HTTP client on libcurl: the blocking client (one easy handle reused, so
 * connections stay alive between requests) and the asynchronous one (curl's
 * multi-socket API driven by ev_io and ev_timer watchers on the caller's
 * loop). Both map transport failures to DV_EUNAVAIL or DV_ETIMEOUT with a
 * message naming the server.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/http-client.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define DEFAULT_CONNECT_TIMEOUT 5.0

/* What both clients need to know about the server. */
struct target {
    char *url_prefix; /* "http://h:p", or "http://localhost" for Unix */
    char *unix_path;  /* or NULL */
    char *display;    /* "h:p" or the socket path, for messages */
    char *ca_file;
    char *cert;
    char *key;
    long connect_timeout_ms;
};

/* One request's response as it arrives. */
struct collect {
    struct dv_buf body;
    char *index;
    char *location;
};

/* curl_global_init is not thread-safe; every client calls it through this
 * once. This is the one piece of process-wide state here. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void
curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
curl_ready(struct dv_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        dv_err_set(err, DV_EINTERNAL, NULL, "could not initialise libcurl: %s",
                   curl_easy_strerror(curl_init_result));
        return -1;
    }
    return 0;
}

static void
target_cleanup(struct target *t)
{
    free(t->url_prefix);
    free(t->unix_path);
    free(t->display);
    free(t->ca_file);
    free(t->cert);
    free(t->key);
    memset(t, 0, sizeof(*t));
}

static int
target_init(struct target *t, const struct dv_http_client_config *cfg,
            struct dv_err *err)
{
    const char *base = cfg->base;
    size_t len;

    memset(t, 0, sizeof(*t));
    if (dv_str_empty(base)) {
        dv_err_set(err, DV_EINVAL, "invalid_address", "no server address");
        return -1;
    }
    if (dv_str_has_prefix(base, "unix:")) {
        if (base[5] != '/') {
            goto bad;
        }
        t->unix_path = dv_xstrdup(base + 5);
        t->url_prefix = dv_xstrdup("http://localhost");
        t->display = dv_xstrdup(base + 5);
    } else if (dv_str_has_prefix(base, "http://") ||
               dv_str_has_prefix(base, "https://")) {
        const char *host = strstr(base, "://") + 3;

        len = strlen(base);
        while (len > 0 && base[len - 1] == '/') {
            len--;
        }
        if (base + len <= host) {
            goto bad;
        }
        t->url_prefix = dv_xstrndup(base, len);
        t->display = dv_xstrndup(host, (size_t)(base + len - host));
    } else {
        goto bad;
    }
    t->ca_file = dv_xstrdup(dv_str_empty(cfg->ca_file) ? NULL : cfg->ca_file);
    t->cert = dv_xstrdup(dv_str_empty(cfg->cert) ? NULL : cfg->cert);
    t->key = dv_xstrdup(dv_str_empty(cfg->key) ? NULL : cfg->key);
    t->connect_timeout_ms =
        (long)((cfg->connect_timeout > 0 ? cfg->connect_timeout
                                         : DEFAULT_CONNECT_TIMEOUT) *
               1000.);
    return 0;

bad:
    target_cleanup(t);
    dv_err_set(err, DV_EINVAL, "invalid_address",
               "invalid server address \"%s\" (expected http://HOST:PORT, "
               "https://HOST:PORT or unix:/PATH)",
               base);
    return -1;
}

static size_t
collect_body_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct collect *col = arg;

    dv_buf_append(&col->body, ptr, size * nmemb);
    return size * nmemb;
}

/* Returns a new copy of the header's value when line is "name: value". */
static char *
header_value(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    const char *v, *end = line + len;

    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') {
        return NULL;
    }
    v = line + n + 1;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t')) {
        end--;
    }
    return dv_xstrndup(v, (size_t)(end - v));
}

static size_t
collect_header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct collect *col = arg;
    size_t len = size * nmemb;
    char *v;

    if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue): forget the last one's. */
        free(col->index);
        free(col->location);
        col->index = NULL;
        col->location = NULL;
        return len;
    }
    v = header_value(ptr, len, "X-Drover-Index");
    if (v != NULL) {
        free(col->index);
        col->index = v;
        return len;
    }
    v = header_value(ptr, len, "Location");
    if (v != NULL) {
        free(col->location);
        col->location = v;
    }
    return len;
}

static void
collect_init(struct collect *col)
{
    dv_buf_init(&col->body);
    col->index = NULL;
    col->location = NULL;
}

static void
collect_cleanup(struct collect *col)
{
    dv_buf_cleanup(&col->body);
    free(col->index);
    free(col->location);
    collect_init(col);
}

/* Moves what was collected into resp. */
static void
collect_finish(struct collect *col, CURL *easy, struct dv_http_response *resp)
{
    long status = 0;

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    resp->body_len = col->body.len;
    resp->body = dv_buf_steal(&col->body);
    resp->index = col->index;
    resp->location = col->location;
    col->index = NULL;
    col->location = NULL;
}

/* Translates a transport failure into err. */
static void
set_curl_error(struct dv_err *err, const struct target *t, CURL *easy,
               CURLcode rc, const char *errbuf)
{
    const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    long oserr = 0;

    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        dv_err_set(err, DV_ETIMEOUT, NULL, "request to server %s timed out: %s",
                   t->display, why);
        return;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);
        dv_err_set(err, DV_EUNAVAIL, NULL, "could not connect to server %s: %s",
                   t->display, oserr != 0 ? strerror((int)oserr) : why);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        dv_err_set(err, DV_EUNAVAIL, NULL,
                   "could not resolve the host of server %s: %s", t->display,
                   why);
        return;
    default:
        break;
    }
    dv_err_set(err, DV_EUNAVAIL, NULL, "request to server %s failed: %s",
               t->display, why);
}

/* Sets every option of one request on easy. Returns the header list the
 * handle now uses (caller frees after the transfer). */
static struct curl_slist *
setup_easy(CURL *easy, const struct target *t, const char *method,
           const char *path, const char *body, size_t body_len,
           const struct dv_http_header *hdrs, int nhdrs, double timeout,
           struct collect *col, char *errbuf)
{
    struct curl_slist *list = NULL;
    char *url =
        dv_xasprintf("%s%s%s", t->url_prefix, path[0] == '/' ? "" : "/", path);
    int i;

    curl_easy_setopt(easy, CURLOPT_URL, url);
    free(url); /* curl copies strings */
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "drover");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    errbuf[0] = '\0';
    if (t->unix_path != NULL) {
        curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, t->unix_path);
    }
    if (t->ca_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, t->ca_file);
    }
    if (t->cert != NULL) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, t->cert);
    }
    if (t->key != NULL) {
        curl_easy_setopt(easy, CURLOPT_SSLKEY, t->key);
    }
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     timeout > 0 ? (long)(timeout * 1000.) : 0L);

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (body != NULL) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_len);
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
        list = curl_slist_append(list, "Content-Type: application/json");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, "");
        }
    }
    /* No Expect: 100-continue round trip for large bodies. */
    list = curl_slist_append(list, "Expect:");
    for (i = 0; i < nhdrs; i++) {
        char *line = dv_xasprintf("%s: %s", hdrs[i].name, hdrs[i].value);

        list = curl_slist_append(list, line);
        free(line);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_body_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, col);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, collect_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, col);
    return list;
}

void
dv_http_response_cleanup(struct dv_http_response *resp)
{
    if (resp == NULL) {
        return;
    }
    free(resp->body);
    free(resp->index);
    free(resp->location);
    memset(resp, 0, sizeof(*resp));
}

/* --- blocking --- */

struct dv_http_client {
    struct target target;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
};

struct dv_http_client *
dv_http_client_new(const struct dv_http_client_config *cfg, struct dv_err *err)
{
    struct dv_http_client *c;

    if (curl_ready(err) < 0) {
        return NULL;
    }
    c = dv_xcalloc(1, sizeof(*c));
    if (target_init(&c->target, cfg, err) < 0) {
        free(c);
        return NULL;
    }
    c->easy = curl_easy_init();
    if (c->easy == NULL) {
        dv_err_set(err, DV_EINTERNAL, NULL, "could not create a curl handle");
        dv_http_client_free(c);
        return NULL;
    }
    return c;
}

void
dv_http_client_free(struct dv_http_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->easy != NULL) {
        curl_easy_cleanup(c->easy);
    }
    target_cleanup(&c->target);
    free(c);
}

int
dv_http_client_do(struct dv_http_client *c, const char *method,
                  const char *path, const char *body, size_t body_len,
                  const struct dv_http_header *hdrs, int nhdrs, double timeout,
                  struct dv_http_response *resp, struct dv_err *err)
{
    struct collect col;
    struct curl_slist *list;
    CURLcode rc;
    int ret = -1;

    memset(resp, 0, sizeof(*resp));
    collect_init(&col);
    /* Reset forgets the last request's options but keeps the connections. */
    curl_easy_reset(c->easy);
    list = setup_easy(c->easy, &c->target, method, path, body, body_len, hdrs,
                      nhdrs, timeout, &col, c->errbuf);
    rc = curl_easy_perform(c->easy);
    if (rc != CURLE_OK) {
        set_curl_error(err, &c->target, c->easy, rc, c->errbuf);
        goto out;
    }
    collect_finish(&col, c->easy, resp);
    ret = 0;

out:
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    collect_cleanup(&col);
    return ret;
}

/* --- asynchronous --- */

struct async_sock {
    ev_io io;
    curl_socket_t fd;
    struct dv_http_async *a;
    struct async_sock *prev;
    struct async_sock *next;
};

struct async_req {
    struct dv_http_async *a;
    CURL *easy;
    struct curl_slist *hdrs;
    struct collect col;
    dv_http_done_cb cb;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
    struct async_req *prev;
    struct async_req *next;
};

struct dv_http_async {
    struct ev_loop *loop;
    struct target target;
    CURLM *multi;
    ev_timer timer;
    struct async_sock *socks;
    struct async_req *reqs;
    int pending;
    int busy; /* depth of our own callbacks on the stack */
    int dead; /* freed from a completion callback; finish when not busy */
};

static void async_check_done(struct dv_http_async *a);

static void
async_req_free(struct async_req *r)
{
    struct dv_http_async *a = r->a;

    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        a->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    a->pending--;
    curl_multi_remove_handle(a->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    collect_cleanup(&r->col);
    free(r);
}

static void
async_sock_free(struct async_sock *s)
{
    struct dv_http_async *a = s->a;

    ev_io_stop(a->loop, &s->io);
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        a->socks = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    free(s);
}

/* Frees everything; a must not be on the stack of its own callbacks. */
static void
async_destroy(struct dv_http_async *a)
{
    while (a->reqs != NULL) {
        async_req_free(a->reqs);
    }
    if (a->multi != NULL) {
        curl_multi_cleanup(a->multi);
    }
    while (a->socks != NULL) {
        async_sock_free(a->socks);
    }
    ev_timer_stop(a->loop, &a->timer);
    target_cleanup(&a->target);
    free(a);
}

static void
async_action(struct dv_http_async *a, curl_socket_t fd, int what)
{
    int running = 0;

    a->busy++;
    curl_multi_socket_action(a->multi, fd, what, &running);
    async_check_done(a);
    a->busy--;
    if (a->dead && a->busy == 0) {
        async_destroy(a);
    }
}

static void
async_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct async_sock *s = w->data;
    int what = 0;

    (void)loop;
    if (revents & EV_READ) {
        what |= CURL_CSELECT_IN;
    }
    if (revents & EV_WRITE) {
        what |= CURL_CSELECT_OUT;
    }
    async_action(s->a, s->fd, what);
}

static void
async_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    async_action(w->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: curl says what to wait for on a socket. */
static int
async_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                void *socketp)
{
    struct dv_http_async *a = userp;
    struct async_sock *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            async_sock_free(s);
            curl_multi_assign(a->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = dv_xcalloc(1, sizeof(*s));
        s->a = a;
        s->fd = fd;
        ev_init(&s->io, async_io_cb);
        s->io.data = s;
        s->next = a->socks;
        if (a->socks != NULL) {
            a->socks->prev = s;
        }
        a->socks = s;
        curl_multi_assign(a->multi, fd, s);
    }
    if (what & CURL_POLL_IN) {
        events |= EV_READ;
    }
    if (what & CURL_POLL_OUT) {
        events |= EV_WRITE;
    }
    ev_io_stop(a->loop, &s->io);
    ev_io_set(&s->io, fd, events);
    ev_io_start(a->loop, &s->io);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called after timeout_ms (-1:
 * never). The call happens from the loop, never from inside curl. */
static int
async_timerfn_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct dv_http_async *a = userp;

    (void)multi;
    ev_timer_stop(a->loop, &a->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&a->timer, (double)timeout_ms / 1000., 0.);
        ev_timer_start(a->loop, &a->timer);
    }
    return 0;
}

/* Runs the callbacks of finished transfers. */
static void
async_check_done(struct dv_http_async *a)
{
    CURLMsg *msg;
    int left;

    while (!a->dead) {
        struct dv_http_response resp;
        struct dv_err err;
        struct async_req *r;
        char *priv = NULL;
        dv_http_done_cb cb;
        void *arg;
        CURLcode result;

        msg = curl_multi_info_read(a->multi, &left);
        if (msg == NULL) {
            break;
        }
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* msg dies with its handle: take what we need first. */
        result = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        r = (struct async_req *)priv;
        if (r == NULL) {
            continue;
        }
        memset(&resp, 0, sizeof(resp));
        dv_err_clear(&err);
        if (result == CURLE_OK) {
            collect_finish(&r->col, r->easy, &resp);
        } else {
            set_curl_error(&err, &a->target, r->easy, result, r->errbuf);
        }
        /* Off the books before the callback, which may send or free. */
        cb = r->cb;
        arg = r->arg;
        async_req_free(r);
        cb(result == CURLE_OK ? &resp : NULL, result == CURLE_OK ? NULL : &err,
           arg);
        dv_http_response_cleanup(&resp);
    }
}

struct dv_http_async *
dv_http_async_new(struct ev_loop *loop, const struct dv_http_client_config *cfg,
                  struct dv_err *err)
{
    struct dv_http_async *a;

    if (curl_ready(err) < 0) {
        return NULL;
    }
    a = dv_xcalloc(1, sizeof(*a));
    a->loop = loop;
    ev_timer_init(&a->timer, async_timer_cb, 0., 0.);
    a->timer.data = a;
    if (target_init(&a->target, cfg, err) < 0) {
        free(a);
        return NULL;
    }
    a->multi = curl_multi_init();
    if (a->multi == NULL) {
        dv_err_set(err, DV_EINTERNAL, NULL, "could not create a curl handle");
        async_destroy(a);
        return NULL;
    }
    curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, async_socket_cb);
    curl_multi_setopt(a->multi, CURLMOPT_SOCKETDATA, a);
    curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, async_timerfn_cb);
    curl_multi_setopt(a->multi, CURLMOPT_TIMERDATA, a);
    return a;
}

int
dv_http_async_send(struct dv_http_async *a, const char *method,
                   const char *path, const char *body, size_t body_len,
                   const struct dv_http_header *hdrs, int nhdrs, double timeout,
                   dv_http_done_cb cb, void *arg, struct dv_err *err)
{
    struct async_req *r;
    CURLMcode mc;

    if (a->dead) {
        dv_err_set(err, DV_EINTERNAL, NULL, "HTTP client is being freed");
        return -1;
    }
    r = dv_xcalloc(1, sizeof(*r));
    r->a = a;
    r->cb = cb;
    r->arg = arg;
    collect_init(&r->col);
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        dv_err_set(err, DV_EINTERNAL, NULL, "could not create a curl handle");
        free(r);
        return -1;
    }
    r->hdrs = setup_easy(r->easy, &a->target, method, path, body, body_len,
                         hdrs, nhdrs, timeout, &r->col, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    r->next = a->reqs;
    if (a->reqs != NULL) {
        a->reqs->prev = r;
    }
    a->reqs = r;
    a->pending++;
    mc = curl_multi_add_handle(a->multi, r->easy);
    if (mc != CURLM_OK) {
        dv_err_set(err, DV_EINTERNAL, NULL, "could not start a request: %s",
                   curl_multi_strerror(mc));
        async_req_free(r);
        return -1;
    }
    return 0;
}

int
dv_http_async_pending(const struct dv_http_async *a)
{
    return a->pending;
}

void
dv_http_async_free(struct dv_http_async *a)
{
    if (a == NULL) {
        return;
    }
    if (a->busy > 0) {
        /* Called from a completion callback: cancel now, free on the way
         * out of async_action. */
        while (a->reqs != NULL) {
            async_req_free(a->reqs);
        }
        a->dead = 1;
        return;
    }
    async_destroy(a);
}
