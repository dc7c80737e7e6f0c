/* RFC 6455 framing: an incremental decoder and a frame encoder. No I/O here. */
#include "comfy_int.h"
#include "util.h"

#include <string.h>

void gq_comfy_wsdec_init(gq_comfy_wsdec_t *d, size_t max_msg, bool reject_masked) {
    memset(d, 0, sizeof(*d));
    d->max_msg = max_msg;
    d->reject_masked = reject_masked;
    /* Between two drained next() calls `in` holds at most one incomplete frame (header plus
     * a payload no larger than max_msg) and one more read. */
    gq_buf_init(&d->in, max_msg + GQ_COMFY_WS_HEADER_MAX + GQ_COMFY_WS_READ_CHUNK);
    gq_buf_init(&d->msg, max_msg);
}

void gq_comfy_wsdec_release(gq_comfy_wsdec_t *d) {
    gq_buf_release(&d->in);
    gq_buf_release(&d->msg);
    d->pos = 0;
    d->msg_op = 0;
    d->msg_done = false;
}

void gq_comfy_wsdec_reset(gq_comfy_wsdec_t *d) {
    /* Keep the allocations; a reconnect will fill them again. */
    gq_buf_reset(&d->in);
    gq_buf_reset(&d->msg);
    d->pos = 0;
    d->msg_op = 0;
    d->msg_done = false;
}

gq_status_t gq_comfy_wsdec_feed(gq_comfy_wsdec_t *d, const void *p, size_t n) {
    if (d->pos > 0 && d->pos == d->in.len && d->in.cap > (1u << 20)) {
        /* Everything was decoded: give back the room a big message needed. */
        gq_buf_release(&d->in);
        d->pos = 0;
    }
    if (d->pos > 0) {
        /* Compact lazily: frames handed out by next() point into `in` until this call. */
        memmove(d->in.data, d->in.data + d->pos, d->in.len - d->pos);
        d->in.len -= d->pos;
        d->pos = 0;
    }
    return gq_buf_append(&d->in, p, n);
}

static uint64_t be_read(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static const char *op_name(int op) {
    switch (op) {
    case GQ_WS_OP_CONT: return "continuation";
    case GQ_WS_OP_TEXT: return "text";
    case GQ_WS_OP_BINARY: return "binary";
    case GQ_WS_OP_CLOSE: return "close";
    case GQ_WS_OP_PING: return "ping";
    case GQ_WS_OP_PONG: return "pong";
    }
    return "reserved";
}

/* A decoded frame header. */
typedef struct ws_hdr {
    bool fin;
    int op;
    bool masked;
    const unsigned char *mask;
    uint64_t len;
    size_t hdr_len;
} ws_hdr_t;

/* GQ_OK with h filled, GQ_ERR_TIMEOUT when the header is not complete yet. */
static gq_status_t hdr_parse(const unsigned char *p, size_t avail, ws_hdr_t *h, char *errstr,
                             size_t errstr_size) {
    if (avail < 2)
        return GQ_ERR_TIMEOUT;
    h->fin = (p[0] & 0x80) != 0;
    h->op = p[0] & 0x0f;
    h->masked = (p[1] & 0x80) != 0;
    h->len = p[1] & 0x7f;
    h->hdr_len = 2;
    if (p[0] & 0x70) {
        /* No extension was negotiated, so no RSV bit may be set. */
        gq_errf(errstr, errstr_size, "WebSocket frame with reserved bits 0x%02x", p[0] & 0x70);
        return GQ_ERR_INVALID;
    }
    if (h->len == 126) {
        h->hdr_len += 2;
        if (avail < h->hdr_len)
            return GQ_ERR_TIMEOUT;
        h->len = be_read(p + 2, 2);
    } else if (h->len == 127) {
        h->hdr_len += 8;
        if (avail < h->hdr_len)
            return GQ_ERR_TIMEOUT;
        h->len = be_read(p + 2, 8);
        if (h->len >> 63) {
            gq_errf(errstr, errstr_size, "WebSocket frame length has its top bit set");
            return GQ_ERR_INVALID;
        }
    }
    if (h->masked) {
        h->mask = p + h->hdr_len;
        h->hdr_len += 4;
        if (avail < h->hdr_len)
            return GQ_ERR_TIMEOUT;
    }
    return GQ_OK;
}

static gq_status_t hdr_check(const gq_comfy_wsdec_t *d, const ws_hdr_t *h, char *errstr,
                             size_t errstr_size) {
    if (h->masked && d->reject_masked) {
        gq_errf(errstr, errstr_size, "masked WebSocket frame from the server");
        return GQ_ERR_INVALID;
    }
    if (h->op >= 0x8) {
        if (h->op != GQ_WS_OP_CLOSE && h->op != GQ_WS_OP_PING && h->op != GQ_WS_OP_PONG) {
            gq_errf(errstr, errstr_size, "WebSocket frame with reserved opcode 0x%x", h->op);
            return GQ_ERR_INVALID;
        }
        if (!h->fin || h->len > 125) {
            gq_errf(errstr, errstr_size, "fragmented or oversized (%llu bytes) %s frame",
                    (unsigned long long)h->len, op_name(h->op));
            return GQ_ERR_INVALID;
        }
        return GQ_OK;
    }
    if (h->op > GQ_WS_OP_BINARY) {
        gq_errf(errstr, errstr_size, "WebSocket frame with reserved opcode 0x%x", h->op);
        return GQ_ERR_INVALID;
    }
    if (h->op == GQ_WS_OP_CONT && d->msg_op == 0) {
        gq_errf(errstr, errstr_size, "WebSocket continuation frame without a message start");
        return GQ_ERR_INVALID;
    }
    if (h->op != GQ_WS_OP_CONT && d->msg_op != 0) {
        gq_errf(errstr, errstr_size, "WebSocket %s frame inside a fragmented %s message",
                op_name(h->op), op_name(d->msg_op));
        return GQ_ERR_INVALID;
    }
    /* Refuse from the header alone, before buffering a payload we will never use. */
    size_t have = h->op == GQ_WS_OP_CONT ? d->msg.len : 0;
    if (h->len > d->max_msg || have > d->max_msg - h->len) {
        gq_errf(errstr, errstr_size,
                "WebSocket message over the %zu-byte limit (frame of %llu bytes after %zu)",
                d->max_msg, (unsigned long long)h->len, have);
        return GQ_ERR_TOOBIG;
    }
    return GQ_OK;
}

gq_status_t gq_comfy_wsdec_next(gq_comfy_wsdec_t *d, gq_comfy_wsmsg_t *m, char *errstr,
                                size_t errstr_size) {
    m->opcode = 0;
    m->data = NULL;
    m->len = 0;
    if (d->msg_done) {
        if (d->msg.cap > (1u << 20))
            gq_buf_release(&d->msg);
        else
            gq_buf_reset(&d->msg);
        d->msg_done = false;
    }
    while (d->in.data) {
        unsigned char *p = (unsigned char *)d->in.data + d->pos;
        size_t avail = d->in.len - d->pos;
        ws_hdr_t h = {0};
        gq_status_t st = hdr_parse(p, avail, &h, errstr, errstr_size);
        if (st == GQ_ERR_TIMEOUT)
            return GQ_OK;
        if (st == GQ_OK)
            st = hdr_check(d, &h, errstr, errstr_size);
        if (st != GQ_OK)
            return st;
        if (avail - h.hdr_len < h.len)
            return GQ_OK;

        unsigned char *payload = p + h.hdr_len;
        size_t len = (size_t)h.len;
        if (h.masked)
            for (size_t i = 0; i < len; i++)
                payload[i] ^= h.mask[i & 3];
        d->pos += h.hdr_len + len;

        if (h.op >= 0x8 || (h.op != GQ_WS_OP_CONT && h.fin)) {
            /* Control frames may come between fragments; whole messages need no copy. */
            m->opcode = h.op;
            m->data = payload;
            m->len = len;
            return GQ_OK;
        }
        if (h.op != GQ_WS_OP_CONT) {
            gq_buf_reset(&d->msg);
            d->msg_op = h.op;
        }
        st = gq_buf_append(&d->msg, payload, len);
        if (st != GQ_OK) {
            gq_errf(errstr, errstr_size, "WebSocket message reassembly: %s", gq_status_name(st));
            return st;
        }
        if (h.fin) {
            m->opcode = d->msg_op;
            m->data = (const unsigned char *)d->msg.data;
            m->len = d->msg.len;
            d->msg_op = 0;
            d->msg_done = true;
            return GQ_OK;
        }
    }
    return GQ_OK;
}

gq_status_t gq_comfy_wsframe_encode(gq_buf_t *out, int opcode, bool fin, const void *payload,
                                    size_t len, const unsigned char *mask) {
    if (opcode < 0 || opcode > 0xf)
        return GQ_ERR_INVALID;
    if (opcode >= 0x8 && (!fin || len > 125))
        return GQ_ERR_INVALID;
    unsigned char hdr[GQ_COMFY_WS_HEADER_MAX];
    size_t n = 0;
    hdr[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char mbit = mask ? 0x80 : 0;
    if (len < 126) {
        hdr[n++] = (unsigned char)(mbit | len);
    } else if (len <= 0xffff) {
        hdr[n++] = (unsigned char)(mbit | 126);
        hdr[n++] = (unsigned char)(len >> 8);
        hdr[n++] = (unsigned char)len;
    } else {
        hdr[n++] = (unsigned char)(mbit | 127);
        for (int i = 7; i >= 0; i--)
            hdr[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    if (mask) {
        memcpy(hdr + n, mask, 4);
        n += 4;
    }
    size_t start = out->len;
    gq_status_t st = gq_buf_append(out, hdr, n);
    if (st == GQ_OK)
        st = gq_buf_append(out, payload, len);
    if (st != GQ_OK) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return st;
    }
    if (mask) {
        unsigned char *q = (unsigned char *)out->data + start + n;
        for (size_t i = 0; i < len; i++)
            q[i] ^= mask[i & 3];
    }
    return GQ_OK;
}
