/*
 * Tests for lib/http-server's TLS (generated certificates, mutual TLS) and
 * Unix-socket listeners, and for lib/http-client: the blocking client's
 * errors and timeout, and the asynchronous client on a loop of the main
 * thread. TLS material is made with the OpenSSL API in a temporary
 * directory. The server side runs as in test-http.c (http-fixture.h).
 */
#include <errno.h>
#include <ev.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/http-client.h"
#include "lib/http-server.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/strutil.h"
#include "tests/unit/http-fixture.h"
#include "tests/unit/unit.h"

static char tmpdir[256];
static char ca_pem[300], srv_pem[300], srv_key[300], cli_pem[300], cli_key[300];

/* --- TLS --- */

static void
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    if (ex != NULL) {
        X509_add_ext(x, ex, -1);
        X509_EXTENSION_free(ex);
    }
}

/* A certificate for key named cn, signed by issuer (NULL: self-signed CA). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          long serial, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_get_subject_name(x);
    X509V3_CTX ctx;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x,
                         issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (issuer == NULL) {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE");
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid");
    }
    if (san != NULL) {
        add_ext(x, &ctx, NID_subject_alt_name, san);
    }
    X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256());
    return x;
}

static int
write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *fp = fopen(path, "w");
    int ok;

    if (fp == NULL) {
        return -1;
    }
    ok = cert != NULL
             ? PEM_write_X509(fp, cert)
             : PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    return fclose(fp) == 0 && ok == 1 ? 0 : -1;
}

static int
make_tls_files(void)
{
    EVP_PKEY *cakey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *skey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ckey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *ca = NULL, *scert = NULL, *ccert = NULL;
    int rc = -1;

    if (cakey == NULL || skey == NULL || ckey == NULL) {
        goto out;
    }
    ca = make_cert(cakey, "Drover Test CA", NULL, NULL, 1, NULL);
    scert = make_cert(skey, "localhost", ca, cakey, 2,
                      "DNS:localhost,IP:127.0.0.1");
    ccert = make_cert(ckey, "node-7", ca, cakey, 3, NULL);
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", tmpdir);
    snprintf(srv_pem, sizeof(srv_pem), "%s/server.pem", tmpdir);
    snprintf(srv_key, sizeof(srv_key), "%s/server.key", tmpdir);
    snprintf(cli_pem, sizeof(cli_pem), "%s/client.pem", tmpdir);
    snprintf(cli_key, sizeof(cli_key), "%s/client.key", tmpdir);
    if (write_pem(ca_pem, ca, NULL) < 0 ||
        write_pem(srv_pem, scert, NULL) < 0 ||
        write_pem(srv_key, NULL, skey) < 0 ||
        write_pem(cli_pem, ccert, NULL) < 0 ||
        write_pem(cli_key, NULL, ckey) < 0) {
        goto out;
    }
    rc = 0;

out:
    X509_free(ca);
    X509_free(scert);
    X509_free(ccert);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(skey);
    EVP_PKEY_free(ckey);
    return rc;
}

static void
test_tls(void)
{
    struct dv_http_server_config cfg = {.tls_cert = srv_pem,
                                        .tls_key = srv_key};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;
    struct dv_buf b;
    char big[100000];
    int fd;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    c = client_new(f.base, ca_pem, NULL, NULL);
    CHECK_INT(dv_http_client_do(c, "GET", "/echo?a=tls", NULL, 0, NULL, 0, 5,
                                &resp, &err),
              0);
    CHECK_INT(resp.status, 200);
    CHECK_FIELD(resp.body, "a", "tls");
    CHECK_FIELD(resp.body, "cn", "(null)");
    dv_http_response_cleanup(&resp);
    /* A body larger than a TLS record, both ways. */
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(dv_http_client_do(c, "POST", "/echo", big, sizeof(big) - 1, NULL,
                                0, 5, &resp, &err),
              0);
    CHECK_INT(resp.status, 200);
    CHECK_FIELD(resp.body, "body_len", "99999");
    dv_http_response_cleanup(&resp);
    CHECK_INT(dv_http_client_do(c, "GET", "/big?n=3000000", NULL, 0, NULL, 0, 5,
                                &resp, &err),
              0);
    CHECK_INT(resp.body_len, 3000000);
    CHECK(resp.body != NULL && resp.body[0] == 'z' &&
          resp.body[2999999] == 'z');
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);

    /* Without the CA the server is not trusted. */
    c = client_new(f.base, NULL, NULL, NULL);
    CHECK_INT(
        dv_http_client_do(c, "GET", "/", NULL, 0, NULL, 0, 5, &resp, &err), -1);
    CHECK_INT(err.kind, DV_EUNAVAIL);
    dv_http_client_free(c);

    /* Plain HTTP on the TLS port gets nowhere. */
    dv_buf_init(&b);
    fd = raw_connect(f.port);
    raw_puts(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(raw_read(fd, &b, 0, 2), 1);
    CHECK(strstr(dv_buf_str(&b), "HTTP/1.1 200") == NULL);
    close(fd);
    dv_buf_cleanup(&b);
    CHECK_INT(atomic_load(&f.handled), 3);
    fixture_stop(&f);
}

static void
test_mtls(void)
{
    struct dv_http_server_config cfg = {
        .tls_cert = srv_pem, .tls_key = srv_key, .tls_client_ca = ca_pem};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    c = client_new(f.base, ca_pem, cli_pem, cli_key);
    CHECK_INT(
        dv_http_client_do(c, "GET", "/", NULL, 0, NULL, 0, 5, &resp, &err), 0);
    CHECK_INT(resp.status, 200);
    CHECK_FIELD(resp.body, "cn", "node-7");
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);

    c = client_new(f.base, ca_pem, NULL, NULL);
    CHECK_INT(
        dv_http_client_do(c, "GET", "/", NULL, 0, NULL, 0, 5, &resp, &err), -1);
    CHECK_INT(err.kind, DV_EUNAVAIL);
    dv_http_client_free(c);
    CHECK_INT(atomic_load(&f.handled), 1);
    fixture_stop(&f);
}

static void
test_tls_bad_config(void)
{
    struct dv_http_server_config cfg = {
        .listen = "127.0.0.1:0", .tls_cert = srv_pem, .tls_key = cli_key};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct dv_err err;

    /* The key does not match the certificate. */
    CHECK(dv_http_server_new(loop, &cfg, test_handler, NULL, &err) == NULL);
    CHECK(strstr(err.msg, cli_key) != NULL);
    CHECK_INT(err.kind, DV_EINVAL);
    cfg.tls_key = NULL;
    CHECK(dv_http_server_new(loop, &cfg, test_handler, NULL, &err) == NULL);
    cfg.tls_cert = "/nonexistent.pem";
    cfg.tls_key = srv_key;
    CHECK(dv_http_server_new(loop, &cfg, test_handler, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "/nonexistent.pem") != NULL);
    cfg.tls_cert = NULL;
    cfg.tls_key = NULL;
    cfg.listen = "nonsense";
    CHECK(dv_http_server_new(loop, &cfg, test_handler, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_EINVAL);
    ev_loop_destroy(loop);
}

/* --- Unix socket --- */

static void
test_unix_socket(void)
{
    char path[300], listen_addr[320], base[320];
    struct dv_http_server_config cfg = {0};
    struct sockaddr_un sun;
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_response resp;
    struct dv_err err;
    struct stat st;
    char uid[32];
    int fd;

    snprintf(path, sizeof(path), "%s/drover.sock", tmpdir);
    snprintf(listen_addr, sizeof(listen_addr), "unix:%s", path);
    snprintf(base, sizeof(base), "unix:%s", path);
    /* A stale socket left by a dead server. */
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    dv_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_INT(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);

    cfg.listen = listen_addr;
    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    CHECK_INT(f.port, 0);
    CHECK_INT(stat(path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_INT(st.st_mode & 0777, 0666);

    c = client_new(base, NULL, NULL, NULL);
    CHECK_INT(dv_http_client_do(c, "GET", "/v1/whoami?a=1", NULL, 0, NULL, 0, 5,
                                &resp, &err),
              0);
    CHECK_INT(resp.status, 200);
    CHECK_FIELD(resp.body, "peer", "unix");
    CHECK_FIELD(resp.body, "a", "1");
    snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
    CHECK_FIELD(resp.body, "uid", uid);
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);

    /* A second server on a live socket must not steal it. */
    {
        struct dv_http_server_config cfg2 = {.listen = listen_addr};
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

        CHECK(dv_http_server_new(loop, &cfg2, test_handler, NULL, &err) ==
              NULL);
        ev_loop_destroy(loop);
    }
    fixture_stop(&f);
    CHECK(stat(path, &st) < 0 && errno == ENOENT);
}

/* --- clients --- */

static void
test_client_errors(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct dv_http_client *c;
    struct dv_http_client_config bad = {.base = "ftp://x"};
    struct dv_http_response resp;
    struct dv_err err;
    char base[64], want[128];
    double t0;
    int port = closed_port();

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    /* The timeout. */
    c = client_new(f.base, NULL, NULL, NULL);
    t0 = mono_now();
    CHECK_INT(dv_http_client_do(c, "GET", "/hang", NULL, 0, NULL, 0, 0.2, &resp,
                                &err),
              -1);
    CHECK_INT(err.kind, DV_ETIMEOUT);
    CHECK(mono_now() - t0 >= 0.15);
    CHECK(mono_now() - t0 < 1.5);
    /* The client is still usable afterwards. */
    CHECK_INT(dv_http_client_do(c, "GET", "/text?v=ok", NULL, 0, NULL, 0, 5,
                                &resp, &err),
              0);
    CHECK_STR(resp.body, "ok");
    dv_http_response_cleanup(&resp);
    dv_http_client_free(c);
    CHECK_INT(wait_for(&f.aborted, 1, 2), 0);

    /* Nobody listening. */
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    c = client_new(base, NULL, NULL, NULL);
    CHECK_INT(
        dv_http_client_do(c, "GET", "/", NULL, 0, NULL, 0, 5, &resp, &err), -1);
    CHECK_INT(err.kind, DV_EUNAVAIL);
    snprintf(want, sizeof(want),
             "could not connect to server 127.0.0.1:%d: Connection refused",
             port);
    CHECK_STR(err.msg, want);
    dv_http_client_free(c);

    CHECK(dv_http_client_new(&bad, &err) == NULL);
    CHECK_INT(err.kind, DV_EINVAL);
    fixture_stop(&f);
}

struct async_result {
    int done;
    long status[8];
    char *body[8];
    struct dv_err err[8];
    int failed[8];
    int expect;
    struct ev_loop *loop;
};

struct async_slot {
    struct async_result *res;
    int i;
};

static void
async_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
              void *arg)
{
    struct async_slot *slot = arg;
    struct async_result *res = slot->res;

    if (resp != NULL) {
        res->status[slot->i] = resp->status;
        res->body[slot->i] = dv_xstrdup(resp->body);
    } else {
        res->failed[slot->i] = 1;
        res->err[slot->i] = *err;
    }
    if (++res->done == res->expect) {
        ev_break(res->loop, EVBREAK_ALL);
    }
}

static void
async_never_cb(const struct dv_http_response *resp, const struct dv_err *err,
               void *arg)
{
    int *called = arg;

    (void)resp;
    (void)err;
    (*called)++;
}

struct free_in_cb {
    struct dv_http_async *a;
    struct ev_loop *loop;
    int called;
};

/* Frees the client from inside its own completion callback. */
static void
async_free_cb(const struct dv_http_response *resp, const struct dv_err *err,
              void *arg)
{
    struct free_in_cb *fc = arg;

    (void)err;
    fc->called++;
    CHECK(resp != NULL && resp->status == 200);
    dv_http_async_free(fc->a);
    ev_break(fc->loop, EVBREAK_ALL);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void
test_async_client(void)
{
    struct dv_http_server_config cfg = {0};
    struct fixture f;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct dv_http_client_config ccfg = {0};
    struct dv_http_async *a;
    struct async_result res;
    struct async_slot slots[8];
    struct dv_err err;
    ev_timer guard;
    char base[64], path[64], want[16];
    double t0;
    int i, called = 0;

    if (fixture_start(&f, &cfg) < 0) {
        CHECK(0);
        return;
    }
    memset(&res, 0, sizeof(res));
    res.loop = loop;
    ev_timer_init(&guard, guard_cb, 5., 0.);
    ev_timer_start(loop, &guard);

    /* Five requests answered after 150 ms each, at the same time. */
    ccfg.base = f.base;
    a = dv_http_async_new(loop, &ccfg, &err);
    CHECK(a != NULL);
    res.expect = 5;
    t0 = mono_now();
    for (i = 0; i < 5; i++) {
        slots[i].res = &res;
        slots[i].i = i;
        snprintf(path, sizeof(path), "/delay?ms=150&v=r%d", i);
        CHECK_INT(dv_http_async_send(a, "GET", path, NULL, 0, NULL, 0, 5,
                                     async_done_cb, &slots[i], &err),
                  0);
    }
    CHECK_INT(dv_http_async_pending(a), 5);
    ev_run(loop, 0);
    CHECK_INT(res.done, 5);
    CHECK(mono_now() - t0 < 0.6);
    CHECK_INT(dv_http_async_pending(a), 0);
    for (i = 0; i < 5; i++) {
        snprintf(want, sizeof(want), "r%d", i);
        CHECK_INT(res.status[i], 200);
        CHECK_STR(res.body[i], want);
        free(res.body[i]);
        res.body[i] = NULL;
    }

    /* A body through POST. */
    res.done = 0;
    res.expect = 1;
    CHECK_INT(dv_http_async_send(a, "POST", "/echo", "{\"k\":1}", 7, NULL, 0, 5,
                                 async_done_cb, &slots[0], &err),
              0);
    ev_run(loop, 0);
    CHECK_INT(res.done, 1);
    CHECK(res.body[0] != NULL && strstr(res.body[0], "{\\\"k\\\":1}") != NULL);
    free(res.body[0]);
    res.body[0] = NULL;

    /* Freed with a request in flight: its callback never runs, and the
     * server sees the client leave. */
    CHECK_INT(dv_http_async_send(a, "GET", "/hang", NULL, 0, NULL, 0, 5,
                                 async_never_cb, &called, &err),
              0);
    {
        ev_timer tick;

        ev_timer_init(&tick, guard_cb, 0.1, 0.);
        ev_timer_start(loop, &tick);
        ev_run(loop, 0);
        ev_timer_stop(loop, &tick);
    }
    CHECK_INT(wait_for(&f.hanging, 1, 2), 0);
    dv_http_async_free(a);
    CHECK_INT(called, 0);
    CHECK_INT(wait_for(&f.aborted, 1, 2), 0);

    /* Freed from a completion callback while another request waits. */
    {
        struct free_in_cb fc = {.loop = loop};

        fc.a = dv_http_async_new(loop, &ccfg, &err);
        CHECK_INT(dv_http_async_send(fc.a, "GET", "/hang", NULL, 0, NULL, 0, 5,
                                     async_never_cb, &called, &err),
                  0);
        CHECK_INT(dv_http_async_send(fc.a, "GET", "/delay?ms=50", NULL, 0, NULL,
                                     0, 5, async_free_cb, &fc, &err),
                  0);
        ev_run(loop, 0);
        CHECK_INT(fc.called, 1);
        CHECK_INT(called, 0);
        CHECK_INT(wait_for(&f.aborted, 2, 2), 0);
    }

    /* Nobody listening. */
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", closed_port());
    ccfg.base = base;
    a = dv_http_async_new(loop, &ccfg, &err);
    res.done = 0;
    res.expect = 1;
    CHECK_INT(dv_http_async_send(a, "GET", "/", NULL, 0, NULL, 0, 5,
                                 async_done_cb, &slots[1], &err),
              0);
    ev_run(loop, 0);
    CHECK_INT(res.done, 1);
    CHECK_INT(res.failed[1], 1);
    CHECK_INT(res.err[1].kind, DV_EUNAVAIL);
    CHECK(strstr(res.err[1].msg, base + 7) != NULL);
    dv_http_async_free(a);
    dv_http_async_free(NULL);

    ev_timer_stop(loop, &guard);
    ev_loop_destroy(loop);
    fixture_stop(&f);
}

static void
remove_tmpdir(void)
{
    const char *names[] = {"ca.pem", "server.pem", "server.key", "client.pem",
                           "client.key"};
    char path[400];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int
main(void)
{
    const char *t = getenv("TMPDIR");

    signal(SIGPIPE, SIG_IGN);
    dv_log_setup("test-http-client", DV_LOG_ERROR, NULL);
    snprintf(tmpdir, sizeof(tmpdir), "%s/test-http-XXXXXX",
             t != NULL && t[0] != '\0' ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL || make_tls_files() < 0) {
        fprintf(stderr, "could not create TLS files in %s\n", tmpdir);
        return 1;
    }
    RUN(test_tls);
    RUN(test_mtls);
    RUN(test_tls_bad_config);
    RUN(test_unix_socket);
    RUN(test_client_errors);
    RUN(test_async_client);
    remove_tmpdir();
    return unit_done();
}
