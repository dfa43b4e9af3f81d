/*
 * Range-checked number parsing and small string helpers (STYLE bans atoi
 * and friends: every number from outside goes through these).
 */
#ifndef DV_STRUTIL_H
#define DV_STRUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses a whole base-10 integer in [min, max]. Returns 0, or -1 on
 * garbage, trailing text or out of range (*out untouched). */
int dv_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int dv_parse_int(const char *s, int min, int max, int *out);
/* Parses true/false words: true|t|yes|y|1|on and false|f|no|n|0|off (any
 * case). Returns 0 or -1. */
int dv_parse_bool(const char *s, int *out);
/* Copies at most size-1 bytes and terminates; returns strlen(src). */
size_t dv_strlcpy(char *dst, const char *src, size_t size);
int dv_str_has_prefix(const char *s, const char *prefix);
/* True when s is NULL or "". */
int dv_str_empty(const char *s);

#endif
