/*
 * Error reporting shared by every module: a kind (which decides the HTTP
 * status and whether a retry may help), a stable API code and a fixed
 * message buffer, so that the failure path never allocates.
 */
#ifndef DV_ERR_H
#define DV_ERR_H

enum dv_err_kind {
    DV_OK = 0,
    DV_EINVAL,     /* bad input from the caller: 400 */
    DV_EUNAUTH,    /* no or bad credentials: 401 */
    DV_EFORBIDDEN, /* not allowed: 403 */
    DV_ENOTFOUND,  /* no such object: 404 */
    DV_ECONFLICT,  /* state does not allow it, or unique violation: 409 */
    DV_ETOOLARGE,  /* request or value over a limit: 413 */
    DV_ETIMEOUT,   /* gave up waiting: 504 */
    DV_EIO,        /* system call or file failure: 500 */
    DV_EDBCONN,    /* database connection lost or unreachable: 503, retry */
    DV_ESERIAL,    /* serialization failure or deadlock: retry */
    DV_EDB,        /* other database error: 500 */
    DV_EUNAVAIL,   /* peer unreachable or overloaded: 503 */
    DV_EINTERNAL,  /* a bug: 500 */
};

struct dv_err {
    enum dv_err_kind kind;
    const char *code; /* static string such as "job_not_found"; never NULL
                         after dv_err_set */
    char msg[256];
};

/* Records an error; code is a static string (borrowed, never freed). A NULL
 * err is allowed and ignored. */
void dv_err_set(struct dv_err *err, enum dv_err_kind kind, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void dv_err_clear(struct dv_err *err);
/* The HTTP status for err's kind. */
int dv_err_http_status(const struct dv_err *err);
/* A default API code for a kind ("invalid_request", "not_found", ...). */
const char *dv_err_kind_code(enum dv_err_kind kind);
/* True when retrying the same operation may succeed. */
int dv_err_retryable(const struct dv_err *err);

#endif
