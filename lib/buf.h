/**
 * @file buf.h
 * @brief A growable byte buffer with a hard size limit (in the spirit of curl's dynbuf).
 *
 * Every buffer fed by untrusted data (Kafka payloads, HTTP bodies, WebSocket frames)
 * is a gq_buf_t with a maximum, so a hostile or broken peer cannot make us allocate
 * without bound. The content is always NUL-terminated for convenience (the NUL is not
 * counted in len).
 */
#ifndef GQ_BUF_H
#define GQ_BUF_H

#include "gq.h"

typedef struct gq_buf {
    char *data; /**< owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /**< appends that would make len exceed max fail with GQ_ERR_TOOBIG */
} gq_buf_t;

void gq_buf_init(gq_buf_t *b, size_t max);
void gq_buf_release(gq_buf_t *b);
void gq_buf_reset(gq_buf_t *b);
gq_status_t gq_buf_append(gq_buf_t *b, const void *p, size_t n);
gq_status_t gq_buf_appends(gq_buf_t *b, const char *s);
/**
 * Makes b n bytes longer and sets *tail to them, for a caller that writes them in place (it
 * must, before reading b); b is unchanged on failure (GQ_ERR_TOOBIG or GQ_ERR_NOMEM).
 */
gq_status_t gq_buf_extend(gq_buf_t *b, size_t n, char **tail);
gq_status_t gq_buf_appendf(gq_buf_t *b, const char *fmt, ...) GQ_PRINTF(2, 3);
/** Hands the data to the caller (who frees it) and leaves b empty. */
char *gq_buf_detach(gq_buf_t *b, size_t *len);

#endif
