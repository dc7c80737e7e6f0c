#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gq_buf_init(gq_buf_t *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gq_buf_release(gq_buf_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void gq_buf_reset(gq_buf_t *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static gq_status_t buf_reserve(gq_buf_t *b, size_t extra) {
    if (extra > b->max || b->len > b->max - extra)
        return GQ_ERR_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return GQ_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return GQ_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return GQ_OK;
}

gq_status_t gq_buf_append(gq_buf_t *b, const void *p, size_t n) {
    gq_status_t st = buf_reserve(b, n);
    if (st != GQ_OK)
        return st;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return GQ_OK;
}

gq_status_t gq_buf_extend(gq_buf_t *b, size_t n, char **tail) {
    gq_status_t st = buf_reserve(b, n);
    if (st != GQ_OK)
        return st;
    *tail = b->data + b->len;
    b->len += n;
    b->data[b->len] = '\0';
    return GQ_OK;
}

gq_status_t gq_buf_appends(gq_buf_t *b, const char *s) { return gq_buf_append(b, s, strlen(s)); }

gq_status_t gq_buf_appendf(gq_buf_t *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return GQ_ERR;
    }
    gq_status_t st = buf_reserve(b, (size_t)n);
    if (st == GQ_OK) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
    return st;
}

char *gq_buf_detach(gq_buf_t *b, size_t *len) {
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
