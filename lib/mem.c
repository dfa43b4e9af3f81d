/* Aborting allocators and struct dv_buf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

static void
oom(size_t n)
{
    fprintf(stderr, "drover: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
dv_xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *
dv_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *
dv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);

    if (q == NULL) {
        oom(n);
    }
    return q;
}

char *
dv_xstrdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    return dv_xstrndup(s, strlen(s));
}

char *
dv_xstrndup(const char *s, size_t n)
{
    char *p = dv_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
dv_xasprintf(const char *fmt, ...)
{
    struct dv_buf b;
    va_list ap;

    dv_buf_init(&b);
    va_start(ap, fmt);
    dv_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return dv_buf_steal(&b);
}

void
dv_buf_init(struct dv_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
dv_buf_cleanup(struct dv_buf *b)
{
    free(b->data);
    dv_buf_init(b);
}

void
dv_buf_reset(struct dv_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

static void
buf_reserve(struct dv_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;

    if (need <= b->cap) {
        return;
    }
    size_t cap = b->cap == 0 ? 64 : b->cap;
    while (cap < need) {
        cap *= 2;
    }
    b->data = dv_xrealloc(b->data, cap);
    b->cap = cap;
}

void
dv_buf_append(struct dv_buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void
dv_buf_puts(struct dv_buf *b, const char *s)
{
    dv_buf_append(b, s, strlen(s));
}

void
dv_buf_putc(struct dv_buf *b, char c)
{
    dv_buf_append(b, &c, 1);
}

void
dv_buf_vprintf(struct dv_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return;
    }
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void
dv_buf_printf(struct dv_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dv_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

const char *
dv_buf_str(struct dv_buf *b)
{
    return b->data != NULL ? b->data : "";
}

char *
dv_buf_steal(struct dv_buf *b)
{
    char *p = b->data;

    if (p == NULL) {
        p = dv_xstrdup("");
    }
    dv_buf_init(b);
    return p;
}
