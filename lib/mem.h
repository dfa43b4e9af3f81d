/*
 * Allocation that cannot fail (it aborts on out-of-memory, as Redis's
 * zmalloc does) and a growable byte buffer used to build strings.
 */
#ifndef DV_MEM_H
#define DV_MEM_H

#include <stdarg.h>
#include <stddef.h>

void *dv_xmalloc(size_t n);
void *dv_xcalloc(size_t n, size_t size);
void *dv_xrealloc(void *p, size_t n);
/* Returns a new copy; caller frees. dv_xstrdup(NULL) returns NULL. */
char *dv_xstrdup(const char *s);
char *dv_xstrndup(const char *s, size_t n);
/* Returns a new formatted string; caller frees. */
char *dv_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable buffer; data is always NUL-terminated once anything has been
 * appended. Embed it, dv_buf_init, then dv_buf_cleanup. */
struct dv_buf {
    char *data;
    size_t len;
    size_t cap;
};

void dv_buf_init(struct dv_buf *b);
void dv_buf_cleanup(struct dv_buf *b);
void dv_buf_reset(struct dv_buf *b);
void dv_buf_append(struct dv_buf *b, const void *p, size_t n);
void dv_buf_puts(struct dv_buf *b, const char *s);
void dv_buf_putc(struct dv_buf *b, char c);
void dv_buf_printf(struct dv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dv_buf_vprintf(struct dv_buf *b, const char *fmt, va_list ap);
/* Returns the contents as a string (never NULL, "" when empty); borrowed. */
const char *dv_buf_str(struct dv_buf *b);
/* Hands the contents to the caller (caller frees) and resets b. */
char *dv_buf_steal(struct dv_buf *b);

#endif
