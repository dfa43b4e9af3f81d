/* struct dv_err helpers: setting, mapping kinds to HTTP statuses. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

void
dv_err_set(struct dv_err *err, enum dv_err_kind kind, const char *code,
           const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return;
    }
    err->kind = kind;
    err->code = code != NULL ? code : dv_err_kind_code(kind);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void
dv_err_clear(struct dv_err *err)
{
    if (err == NULL) {
        return;
    }
    err->kind = DV_OK;
    err->code = "ok";
    err->msg[0] = '\0';
}

int
dv_err_http_status(const struct dv_err *err)
{
    switch (err->kind) {
    case DV_OK:
        return 200;
    case DV_EINVAL:
        return 400;
    case DV_EUNAUTH:
        return 401;
    case DV_EFORBIDDEN:
        return 403;
    case DV_ENOTFOUND:
        return 404;
    case DV_ECONFLICT:
        return 409;
    case DV_ETOOLARGE:
        return 413;
    case DV_ETIMEOUT:
        return 504;
    case DV_EDBCONN:
    case DV_EUNAVAIL:
    case DV_ESERIAL:
        return 503;
    case DV_EIO:
    case DV_EDB:
    case DV_EINTERNAL:
        break;
    }
    return 500;
}

const char *
dv_err_kind_code(enum dv_err_kind kind)
{
    switch (kind) {
    case DV_OK:
        return "ok";
    case DV_EINVAL:
        return "invalid_request";
    case DV_EUNAUTH:
        return "unauthorized";
    case DV_EFORBIDDEN:
        return "forbidden";
    case DV_ENOTFOUND:
        return "not_found";
    case DV_ECONFLICT:
        return "conflict";
    case DV_ETOOLARGE:
        return "too_large";
    case DV_ETIMEOUT:
        return "timeout";
    case DV_EIO:
        return "io_error";
    case DV_EDBCONN:
        return "database_unavailable";
    case DV_ESERIAL:
        return "database_conflict";
    case DV_EDB:
        return "database_error";
    case DV_EUNAVAIL:
        return "unavailable";
    case DV_EINTERNAL:
        break;
    }
    return "internal_error";
}

int
dv_err_retryable(const struct dv_err *err)
{
    return err->kind == DV_EDBCONN || err->kind == DV_ESERIAL ||
           err->kind == DV_EUNAVAIL || err->kind == DV_ETIMEOUT;
}
