/*
 * Listening sockets for the HTTP server (TCP and Unix) and its TLS context.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/http-listen.h"
#include "lib/mem.h"
#include "lib/strutil.h"

static int
listen_unix(struct dv_listener *l, const char *path, struct dv_err *err)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path)) {
        dv_err_set(err, DV_EINVAL, "invalid_listen",
                   "invalid Unix socket path \"%s\" (absolute, at most %zu "
                   "bytes)",
                   path, sizeof(sun.sun_path) - 1);
        return -1;
    }
    dv_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    if (lstat(path, &st) == 0) {
        int probe, r, saved;

        if (!S_ISSOCK(st.st_mode)) {
            dv_err_set(err, DV_EIO, "listen_failed",
                       "cannot listen on %s: file exists and is not a socket",
                       path);
            return -1;
        }
        /* Stale only when nobody answers on it. */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            dv_err_set(err, DV_EIO, "listen_failed",
                       "could not listen on %s: %s", path, strerror(errno));
            return -1;
        }
        r = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
        saved = errno;
        close(probe);
        if (r == 0) {
            dv_err_set(err, DV_EIO, "listen_failed",
                       "cannot listen on %s: another server is listening",
                       path);
            return -1;
        }
        if (saved != ECONNREFUSED) {
            dv_err_set(err, DV_EIO, "listen_failed",
                       "could not check existing socket %s: %s", path,
                       strerror(saved));
            return -1;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0 ||
        stat(path, &st) < 0) {
        dv_err_set(err, DV_EIO, "listen_failed", "could not listen on %s: %s",
                   path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    l->fd = fd;
    l->port = 0;
    l->unix_path = dv_xstrdup(path);
    l->unix_dev = st.st_dev;
    l->unix_ino = st.st_ino;
    return 0;
}

/* Binds the first address of res that works. Returns the socket, or -1
 * with errno set. */
static int
bind_first(struct addrinfo *res, int dual_stack)
{
    struct addrinfo *ai;
    int saved = EADDRNOTAVAIL;

    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int one = 1, zero = 0;
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);

        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (dual_stack && ai->ai_family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            return fd;
        }
        saved = errno;
        close(fd);
    }
    errno = saved;
    return -1;
}

/* Binds host:port; host NULL means every address. Returns the socket, or
 * -1 with errno set. */
static int
bind_tcp(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    int fd, r;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (host == NULL) {
        /* "::" with IPV6_V6ONLY off takes IPv4 too; hosts without IPv6
         * fall back to 0.0.0.0. */
        hints.ai_family = AF_INET6;
        if (getaddrinfo("::", port, &hints, &res) == 0) {
            fd = bind_first(res, 1);
            freeaddrinfo(res);
            if (fd >= 0 || errno == EADDRINUSE) {
                return fd;
            }
        }
        host = "0.0.0.0";
    }
    hints.ai_family = AF_UNSPEC;
    r = getaddrinfo(host, port, &hints, &res);
    if (r != 0) {
        errno = r == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return -1;
    }
    fd = bind_first(res, 0);
    r = errno;
    freeaddrinfo(res);
    errno = r;
    return fd;
}

static int
listen_tcp(struct dv_listener *l, const char *addr, struct dv_err *err)
{
    const char *colon = strrchr(addr, ':');
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[256];
    size_t hostlen;
    int portnum, fd;

    if (colon == NULL || dv_parse_int(colon + 1, 0, 65535, &portnum) < 0) {
        goto bad;
    }
    hostlen = (size_t)(colon - addr);
    if (hostlen == 0 || hostlen >= sizeof(host)) {
        goto bad;
    }
    memcpy(host, addr, hostlen);
    host[hostlen] = '\0';
    if (host[0] == '[') {
        if (hostlen < 3 || host[hostlen - 1] != ']') {
            goto bad;
        }
        memmove(host, host + 1, hostlen - 2);
        host[hostlen - 2] = '\0';
    } else if (strchr(host, ':') != NULL) {
        goto bad; /* IPv6 addresses need brackets */
    }
    fd = bind_tcp(strcmp(host, "*") == 0 ? NULL : host, colon + 1);
    if (fd < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        dv_err_set(err, DV_EIO, "listen_failed", "could not listen on %s: %s",
                   addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    l->fd = fd;
    l->port = ss.ss_family == AF_INET6
                  ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    l->unix_path = NULL;
    return 0;

bad:
    dv_err_set(err, DV_EINVAL, "invalid_listen",
               "invalid listen address \"%s\" (expected HOST:PORT, "
               "[V6]:PORT, *:PORT or unix:/PATH)",
               addr);
    return -1;
}

int
dv_listener_open(struct dv_listener *l, const char *addr, struct dv_err *err)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (dv_str_empty(addr)) {
        dv_err_set(err, DV_EINVAL, "invalid_listen", "no listen address");
        return -1;
    }
    if (dv_str_has_prefix(addr, "unix:")) {
        return listen_unix(l, addr + 5, err);
    }
    return listen_tcp(l, addr, err);
}

void
dv_listener_close(struct dv_listener *l)
{
    struct stat st;

    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    if (l->unix_path != NULL) {
        /* Another server may have replaced it since: leave that one be. */
        if (stat(l->unix_path, &st) == 0 && st.st_dev == l->unix_dev &&
            st.st_ino == l->unix_ino) {
            unlink(l->unix_path);
        }
        free(l->unix_path);
        l->unix_path = NULL;
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

SSL_CTX *
dv_tls_server_ctx_new(const char *cert, const char *key, const char *client_ca,
                      struct dv_err *err)
{
    static const unsigned char sid_ctx[] = "drover";
    STACK_OF(X509_NAME) * names;
    SSL_CTX *ctx;
    char msg[256];

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        dv_err_set(err, DV_EINTERNAL, "tls_config",
                   "could not create a TLS context: %s",
                   ssl_error_string(msg, sizeof(msg)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    /* Output sits in a growable buffer that may move between retries. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Needed to resume sessions when client certificates are verified. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        dv_err_set(err, DV_EINVAL, "tls_config",
                   "could not load TLS certificate \"%s\": %s", cert,
                   ssl_error_string(msg, sizeof(msg)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        dv_err_set(err, DV_EINVAL, "tls_config",
                   "could not load TLS key \"%s\" for certificate \"%s\": %s",
                   key, cert, ssl_error_string(msg, sizeof(msg)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        dv_err_set(err, DV_EINVAL, "tls_config",
                   "TLS key \"%s\" does not match certificate \"%s\"", key,
                   cert);
        goto fail;
    }
    if (client_ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            dv_err_set(err, DV_EINVAL, "tls_config",
                       "could not load client CA \"%s\": %s", client_ca,
                       ssl_error_string(msg, sizeof(msg)));
            goto fail;
        }
        names = SSL_load_client_CA_file(client_ca);
        if (names != NULL) {
            SSL_CTX_set_client_CA_list(ctx, names); /* takes ownership */
        }
        SSL_CTX_set_verify(
            ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ERR_clear_error();
    return ctx;

fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}
