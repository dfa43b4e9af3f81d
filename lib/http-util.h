/*
 * Small pieces of HTTP text shared by the server and its users: reason
 * phrases, the Date header, percent-decoding and the JSON error body.
 */
#ifndef DV_HTTP_UTIL_H
#define DV_HTTP_UTIL_H

#include <stddef.h>

/* The reason phrase for status ("Not Found"); "Unknown" if we have none. */
const char *dv_http_status_reason(int status);
/* Writes the current time on Drover's clock (lib/clock.h) as an
 * IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), whatever the locale. */
void dv_http_date(char *buf, size_t size);
/* Percent-decodes s[0..n) ('+' becomes a space when plus_space, as in query
 * strings). Returns a new string (caller frees), or NULL when an escape is
 * malformed or decodes to NUL. */
char *dv_http_pct_decode(const char *s, size_t n, int plus_space);
/* Returns {"error": {"code": code, "message": msg}} as compact JSON, a new
 * string (caller frees). */
char *dv_http_error_body(const char *code, const char *msg);

#endif
