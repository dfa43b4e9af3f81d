/*
 * What the HTTP server listens with: a listening socket opened from an
 * address string, and the server side's TLS context. Kept apart from the
 * connection state machine in http-server.c.
 */
#ifndef DV_HTTP_LISTEN_H
#define DV_HTTP_LISTEN_H

#include <openssl/ssl.h>
#include <sys/types.h>

#include "lib/err.h"

struct dv_listener {
    int fd;          /* non-blocking, close-on-exec; -1 when closed */
    int port;        /* the bound TCP port; 0 for Unix sockets */
    char *unix_path; /* owned; NULL for TCP */
    dev_t unix_dev;  /* identity of the socket file we created */
    ino_t unix_ino;
};

/* Binds and listens on addr: "HOST:PORT" (a name or an IPv4 address),
 * "[V6]:PORT", "*:PORT" (every address, IPv6 dual stack when the host has
 * it) or "unix:/PATH". Port 0 picks a free port; TCP sockets get
 * SO_REUSEADDR. A Unix socket file left by a dead server is removed first
 * (never one that a live server answers on), and the new one gets mode
 * 0666. Returns 0 and fills l, or -1 with err set. */
int dv_listener_open(struct dv_listener *l, const char *addr,
                     struct dv_err *err);
/* Closes the socket and removes the Unix socket file if it is still the
 * one we created. Safe to call twice. */
void dv_listener_close(struct dv_listener *l);

/* Returns a new TLS server context (caller frees with SSL_CTX_free) for
 * the PEM certificate chain and key; when client_ca is set, clients must
 * present a certificate signed by it. Returns NULL with err set when a file
 * cannot be loaded or the key does not match. */
SSL_CTX *dv_tls_server_ctx_new(const char *cert, const char *key,
                               const char *client_ca, struct dv_err *err);

#endif
