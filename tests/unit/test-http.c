/*
 * Tests for lib/http-server's handling of HTTP: queries and bodies,
 * keep-alive and pipelining, limits, timeouts, answers given later and
 * clients that leave first. The server runs on its own loop in a second
 * thread (tests/unit/http-fixture.h); the blocking client and raw sockets
 * drive it. TLS, Unix sockets and the clients are in test-http-client.c.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/http-client.h"
#include "lib/http-server.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "tests/unit/http-fixture.h"
#include "tests/unit/unit.h"

static void
test_get_query(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;
    struct dv_http_header hdrs[] = {{"X-Test", "yes"}};

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    CHECK(f.port > 0);
    c = client_new(f.base, NULL, NULL, NULL);
    CHECK(c != NULL);
    CHECK_INT(dv_http_client_do(c, "GET",
                                "/v1/jobs%2F12/x%20y?a=hello%20world&b=1%2B1&"
                                "b=second&e&c=x+y",
                                NULL, 0, hdrs, 1, 5, &resp, &err),
              0);
    CHECK_INT(resp.status, 200);
    CHECK_FIELD(resp.body, "method", "GET");
    CHECK_FIELD(resp.body, "path", "/v1/jobs/12/x y");
    CHECK_FIELD(resp.body, "a", "hello world");
    CHECK_FIELD(resp.body, "b", "1+1");
    CHECK_FIELD(resp.body, "c", "x y");
    CHECK_FIELD(resp.body, "e", "");
    CHECK_FIELD(resp.body, "missing", "(null)");
    CHECK_FIELD(resp.body, "x_test", "yes");
    CHECK_FIELD(resp.body, "uid", "-1");
    CHECK_FIELD(resp.body, "cn", "(null)");
    CHECK_STR(resp.index, "42");
    CHECK_STR(resp.location, "/v1/jobs/7");
    {
        char *peer = json_field(resp.body, "peer");

        CHECK(peer != NULL && strncmp(peer, "127.0.0.1:", 10) == 0);
        free(peer);
    }
    dv_http_response_cleanup(&resp);

    /* Error bodies. */
    CHECK_INT(
        dv_http_client_do(c, "GET", "/error", NULL, 0, NULL, 0, 5, &resp, &err),
        0);
    CHECK_INT(resp.status, 404);
    CHECK(resp.index == NULL);
    CHECK(strstr(resp.body, "\"code\":\"job_not_found\"") != NULL);
    CHECK(strstr(resp.body, "\"message\":\"job 12 not found\"") != NULL);
    dv_http_response_cleanup(&resp);
    CHECK_INT(
        dv_http_client_do(c, "GET", "/err", NULL, 0, NULL, 0, 5, &resp, &err),
        0);
    CHECK_INT(resp.status, 409);
    CHECK(strstr(resp.body, "\"code\":\"job_state\"") != NULL);
    dv_http_response_cleanup(&resp);

    /* HEAD: the length of the body, not the body. */
    CHECK_INT(dv_http_client_do(c, "HEAD", "/text?v=abc", NULL, 0, NULL, 0, 5,
                                &resp, &err),
              0);
    CHECK_INT(resp.status, 200);
    CHECK_INT(resp.body_len, 0);
    dv_http_response_cleanup(&resp);

    dv_http_client_free(c);
    fixture_stop(&f);
}

static void
test_post_body(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;
    static const char body[] = "{\"name\":\"sleep\",\"n\":1}";

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    c = client_new(f.base, NULL, NULL, NULL);
    CHECK_INT(dv_http_client_do(c, "POST", "/v1/jobs", body, sizeof(body) - 1,
                                NULL, 0, 5, &resp, &err),
              0);
    CHECK_INT(resp.status, 200);
    CHECK_FIELD(resp.body, "method", "POST");
    CHECK_FIELD(resp.body, "body", body);
    CHECK_FIELD(resp.body, "ctype", "application/json");
    dv_http_response_cleanup(&resp);

    CHECK_INT(
        dv_http_client_do(c, "PUT", "/v1/x", NULL, 0, NULL, 0, 5, &resp, &err),
        0);
    CHECK_FIELD(resp.body, "method", "PUT");
    CHECK_FIELD(resp.body, "body_len", "0");
    dv_http_response_cleanup(&resp);

    CHECK_INT(dv_http_client_do(c, "DELETE", "/v1/jobs/3", NULL, 0, NULL, 0, 5,
                                &resp, &err),
              0);
    CHECK_FIELD(resp.body, "method", "DELETE");
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);
    fixture_stop(&f);
}

static void
test_keep_alive(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response r1, r2;
    struct dv_err err;
    struct dv_buf b;
    char *p1, *p2;
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    /* The blocking client reuses its connection. */
    c = client_new(f.base, NULL, NULL, NULL);
    CHECK_INT(dv_http_client_do(c, "GET", "/", NULL, 0, NULL, 0, 5, &r1, &err),
              0);
    CHECK_INT(dv_http_client_do(c, "GET", "/", NULL, 0, NULL, 0, 5, &r2, &err),
              0);
    p1 = json_field(r1.body, "peer");
    p2 = json_field(r2.body, "peer");
    CHECK_STR(p1, p2);
    CHECK_FIELD(r2.body, "conns", "1");
    free(p1);
    free(p2);
    dv_http_response_cleanup(&r1);
    dv_http_response_cleanup(&r2);
    dv_http_client_free(c);

    /* Raw: two requests on one connection, then Connection: close. */
    dv_buf_init(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /text?v=first HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 1, 2), 0);
    CHECK(strstr(dv_buf_str(&b), "Connection: keep-alive\r\n") != NULL);
    CHECK(strstr(dv_buf_str(&b), "Date: ") != NULL);
    CHECK(strstr(dv_buf_str(&b), "Content-Type: text/plain\r\n") != NULL);
    raw_puts(fd, "GET /text?v=second HTTP/1.1\r\nHost: x\r\n"
                 "Connection: close\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK_INT(count_responses(&b), 2);
    CHECK(strstr(dv_buf_str(&b), "Connection: close\r\n\r\nsecond") != NULL);
    close(fd);

    /* HTTP/1.0 closes unless it asks for keep-alive. */
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /text?v=old HTTP/1.0\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strstr(dv_buf_str(&b), "Connection: close\r\n\r\nold") != NULL);
    close(fd);
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /text?v=k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 1, 2), 0);
    CHECK(strstr(dv_buf_str(&b), "Connection: keep-alive\r\n\r\nk1") != NULL);
    raw_puts(fd, "GET /text?v=k2 HTTP/1.0\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK_INT(count_responses(&b), 2);
    close(fd);

    /* Expect: 100-continue gets its interim answer before the body. */
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n");
    raw_read(fd, &b, 0, 0.3);
    CHECK_STR(dv_buf_str(&b), "HTTP/1.1 100 Continue\r\n\r\n");
    raw_puts(fd, "hello");
    CHECK_INT(raw_read(fd, &b, 1, 2), 0);
    CHECK(strstr(dv_buf_str(&b), "\"body\":\"hello\"") != NULL);
    close(fd);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
test_pipelining(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct dv_buf b;
    const char *one, *two, *three;
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    fd = raw_connect(f.port);
    /* The first is answered later: the others must wait their turn. */
    raw_puts(fd, "GET /delay?ms=80&v=one HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /text?v=two HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /text?v=three HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 3\r\n\r\nabc");
    CHECK_INT(raw_read(fd, &b, 3, 3), 0);
    CHECK_INT(count_responses(&b), 3);
    one = strstr(dv_buf_str(&b), "\r\n\r\none");
    two = strstr(dv_buf_str(&b), "\r\n\r\ntwo");
    three = strstr(dv_buf_str(&b), "\r\n\r\nthree");
    CHECK(one != NULL && two != NULL && three != NULL);
    CHECK(one < two && two < three);
    CHECK_INT(atomic_load(&f.handled), 3);
    close(fd);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
test_large_response(void)
{
    struct dv_http_server_config cfg = {.idle_timeout = 2};
    struct fixture f;
    struct dv_buf b;
    const char *body;
    size_t i, n = 4000000;
    int fd, all_z = 1;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    fd = raw_connect(f.port);
    /* More than the socket buffers take: the server must wait for room,
     * then go on with the next pipelined request. */
    raw_puts(fd, "GET /big?n=4000000 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /text?v=after HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(200000);
    CHECK_INT(raw_read(fd, &b, 2, 5), 0);
    CHECK_INT(count_responses(&b), 2);
    body = strstr(dv_buf_str(&b), "\r\n\r\n");
    CHECK(body != NULL);
    if (body != NULL) {
        body += 4;
        for (i = 0; i < n && body + i < b.data + b.len; i++) {
            if (body[i] != 'z') {
                all_z = 0;
                break;
            }
        }
        CHECK(all_z && i == n);
        CHECK(body + n + 1 < b.data + b.len &&
              strncmp(body + n, "HTTP/1.1 200 OK\r\n", 17) == 0);
    }
    CHECK(b.len > 9 && strcmp(b.data + b.len - 9, "\r\n\r\nafter") == 0);
    close(fd);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
test_header_too_large(void)
{
    struct dv_http_server_config cfg = {.max_header_bytes = 1024};
    struct fixture f;
    struct dv_buf b, req;
    int fd, i;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    dv_buf_init(&req);
    /* Under the limit: fine. */
    dv_buf_puts(&req, "GET /text?v=ok HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (i = 0; i < 600; i++) {
        dv_buf_putc(&req, 'a');
    }
    dv_buf_puts(&req, "\r\n\r\n");
    fd = raw_connect(f.port);
    raw_send(fd, req.data, req.len);
    CHECK_INT(raw_read(fd, &b, 1, 2), 0);
    CHECK(strncmp(dv_buf_str(&b), "HTTP/1.1 200 OK\r\n", 17) == 0);
    close(fd);

    /* Over it: 431, then the connection closes. */
    dv_buf_reset(&b);
    dv_buf_reset(&req);
    dv_buf_puts(&req, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (i = 0; i < 2000; i++) {
        dv_buf_putc(&req, 'a');
    }
    dv_buf_puts(&req, "\r\n\r\n");
    fd = raw_connect(f.port);
    raw_send(fd, req.data, req.len);
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strncmp(dv_buf_str(&b),
                  "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
    CHECK(strstr(dv_buf_str(&b), "\"code\":\"header_too_large\"") != NULL);
    CHECK(strstr(dv_buf_str(&b), "Connection: close\r\n") != NULL);
    close(fd);

    /* Many small headers count too, even sent a byte at a time. */
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 200; i++) {
        raw_puts(fd, "X-H: v\r\n");
    }
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strncmp(dv_buf_str(&b), "HTTP/1.1 431 ", 13) == 0);
    close(fd);
    CHECK_INT(atomic_load(&f.handled), 1);
    dv_buf_cleanup(&req);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
test_body_too_large(void)
{
    struct dv_http_server_config cfg = {.max_body_bytes = 100};
    struct fixture f;
    struct dv_buf b;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;
    char big[201];
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    /* By Content-Length, before any of the body arrives. */
    fd = raw_connect(f.port);
    raw_puts(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strncmp(dv_buf_str(&b), "HTTP/1.1 413 ", 13) == 0);
    CHECK(strstr(dv_buf_str(&b), "\"code\":\"body_too_large\"") != NULL);
    close(fd);

    /* Chunked, as it grows past the limit. */
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "POST / HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "40\r\n0123456789012345678901234567890123456789"
                 "012345678901234567890123\r\n");
    raw_puts(fd, "40\r\n0123456789012345678901234567890123456789"
                 "012345678901234567890123\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strncmp(dv_buf_str(&b), "HTTP/1.1 413 ", 13) == 0);
    close(fd);

    /* Chunked under the limit is fine. */
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "POST / HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 1, 2), 0);
    CHECK(strstr(dv_buf_str(&b), "\"body\":\"hello world\"") != NULL);
    close(fd);

    /* Through the client. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    c = client_new(f.base, NULL, NULL, NULL);
    CHECK_INT(dv_http_client_do(c, "POST", "/", big, sizeof(big) - 1, NULL, 0,
                                5, &resp, &err),
              0);
    CHECK_INT(resp.status, 413);
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);
    CHECK_INT(atomic_load(&f.handled), 1);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
check_bad_request(int port, const char *raw)
{
    struct dv_buf b;
    int fd = raw_connect(port);

    dv_buf_init(&b);
    raw_puts(fd, raw);
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strncmp(dv_buf_str(&b), "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(dv_buf_str(&b), "\"code\":\"bad_request\"") != NULL);
    close(fd);
    dv_buf_cleanup(&b);
}

static void
test_malformed(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    check_bad_request(f.port, "BLAH\r\n\r\n");
    check_bad_request(f.port, "GET / HTTP/1.1\r\nHost x\r\n\r\n");
    check_bad_request(f.port, "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n");
    check_bad_request(f.port, "GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n");
    check_bad_request(f.port, "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n");
    check_bad_request(f.port, "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n");
    CHECK_INT(atomic_load(&f.handled), 0);
    fixture_stop(&f);
}

static void
test_read_timeout(void)
{
    struct dv_http_server_config cfg = {.read_timeout = 0.2};
    struct fixture f;
    struct dv_buf b;
    double t0;
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    fd = raw_connect(f.port);
    t0 = mono_now();
    raw_puts(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 3), 1);
    CHECK(mono_now() - t0 >= 0.15);
    CHECK(mono_now() - t0 < 2);
    CHECK(strncmp(dv_buf_str(&b), "HTTP/1.1 408 ", 13) == 0);
    CHECK(strstr(dv_buf_str(&b), "\"code\":\"request_timeout\"") != NULL);
    close(fd);
    CHECK_INT(atomic_load(&f.handled), 0);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
test_idle_timeout(void)
{
    struct dv_http_server_config cfg = {.idle_timeout = 0.2};
    struct fixture f;
    struct dv_buf b;
    double t0;
    size_t len;
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    /* After an answer. */
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /text?v=x HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 1, 2), 0);
    len = b.len;
    t0 = mono_now();
    CHECK_INT(raw_read(fd, &b, 0, 3), 1);
    CHECK(mono_now() - t0 >= 0.1);
    CHECK(mono_now() - t0 < 2);
    CHECK_INT(b.len, len); /* closed without a word */
    close(fd);
    /* Before any request. */
    dv_buf_reset(&b);
    fd = raw_connect(f.port);
    t0 = mono_now();
    CHECK_INT(raw_read(fd, &b, 0, 3), 1);
    CHECK(mono_now() - t0 >= 0.15);
    CHECK_INT(b.len, 0);
    close(fd);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

static void
test_delayed_answer(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;
    double t0;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    c = client_new(f.base, NULL, NULL, NULL);
    t0 = mono_now();
    CHECK_INT(dv_http_client_do(c, "GET", "/delay?ms=100&v=later", NULL, 0,
                                NULL, 0, 5, &resp, &err),
              0);
    CHECK(mono_now() - t0 >= 0.09);
    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.body, "later");
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);
    CHECK_INT(atomic_load(&f.aborted), 0);
    fixture_stop(&f);
}

static void
test_abort(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    /* A held request whose client leaves. */
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(wait_for(&f.hanging, 1, 2), 0);
    CHECK_INT(atomic_load(&f.aborted), 0);
    close(fd);
    CHECK_INT(wait_for(&f.aborted, 1, 2), 0);

    /* A pending timer answer: the abort callback cancels it. */
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /delay?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(wait_for(&f.handled, 2, 2), 0);
    close(fd);
    CHECK_INT(wait_for(&f.aborted, 2, 2), 0);

    /* Still held when the server is freed. */
    fd = raw_connect(f.port);
    raw_puts(fd, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(wait_for(&f.hanging, 2, 2), 0);
    fixture_stop(&f);
    CHECK_INT(atomic_load(&f.aborted), 3);
    close(fd);
}

static void
test_max_connections_and_stop(void)
{
    struct dv_http_server_config cfg = {.max_connections = 2};
    struct fixture f;
    struct dv_buf b;
    int fd1, fd2, fd3;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    dv_buf_init(&b);
    fd1 = raw_connect(f.port);
    fd2 = raw_connect(f.port);
    raw_puts(fd1, "GET /text?v=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(raw_read(fd1, &b, 1, 2), 0);
    dv_buf_reset(&b);
    raw_puts(fd2, "GET /text?v=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(raw_read(fd2, &b, 1, 2), 0);
    /* A third is accepted and closed at once. */
    dv_buf_reset(&b);
    fd3 = raw_connect(f.port);
    CHECK(fd3 >= 0);
    CHECK_INT(raw_read(fd3, &b, 0, 2), 1);
    CHECK_INT(b.len, 0);
    close(fd3);

    /* Stop accepting: the answer says close, idle fd2 is closed, and new
     * connections are refused. */
    dv_buf_reset(&b);
    raw_puts(fd1, "GET /stop HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(raw_read(fd1, &b, 0, 2), 1);
    CHECK(strstr(dv_buf_str(&b), "Connection: close\r\n\r\nstopping") != NULL);
    dv_buf_reset(&b);
    CHECK_INT(raw_read(fd2, &b, 0, 2), 1);
    CHECK(raw_connect(f.port) < 0);
    close(fd1);
    close(fd2);
    dv_buf_cleanup(&b);
    fixture_stop(&f);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    dv_log_setup("test-http", DV_LOG_ERROR, NULL);
    RUN(test_get_query);
    RUN(test_post_body);
    RUN(test_keep_alive);
    RUN(test_pipelining);
    RUN(test_large_response);
    RUN(test_header_too_large);
    RUN(test_body_too_large);
    RUN(test_malformed);
    RUN(test_read_timeout);
    RUN(test_idle_timeout);
    RUN(test_delayed_answer);
    RUN(test_abort);
    RUN(test_max_connections_and_stop);
    return unit_done();
}
