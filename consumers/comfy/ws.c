/*
 * The WebSocket connection. libcurl 7.88 here has no WebSocket support compiled in, so curl
 * only opens the connection (CURLOPT_CONNECT_ONLY: TCP, proxy tunnel and TLS as for any
 * request) and we speak RFC 6455 over curl_easy_send/curl_easy_recv ourselves.
 */
#include "comfy_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

/* Waits until the socket is ready for events or the deadline passes. */
static gq_status_t ws_wait(curl_socket_t s, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - gq_mono_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = {.fd = s, .events = events};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return GQ_OK;
        if (n < 0 && errno != EINTR)
            return GQ_ERR;
        if (n == 0 && left == 0)
            return GQ_ERR_TIMEOUT;
    }
}

static void ws_drop(gq_comfy_t *c) {
    if (c->ws)
        curl_easy_cleanup(c->ws);
    c->ws = NULL;
    c->ws_sock = CURL_SOCKET_BAD;
    c->ws_up = false;
    gq_comfy_wsdec_reset(&c->wsdec);
}

static gq_status_t ws_send_all(gq_comfy_t *c, const void *data, size_t len, int64_t deadline,
                               char *errstr, size_t errstr_size) {
    const char *p = data;
    while (len > 0) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(c->ws, p, len, &sent);
        if (rc == CURLE_OK) {
            p += sent;
            len -= sent;
            continue;
        }
        if (rc != CURLE_AGAIN) {
            gq_errf(errstr, errstr_size, "WebSocket send: %s", curl_easy_strerror(rc));
            return GQ_ERR_TRANSIENT;
        }
        gq_status_t st = ws_wait(c->ws_sock, POLLOUT, deadline);
        if (st != GQ_OK) {
            gq_errf(errstr, errstr_size, "WebSocket send: %s",
                    st == GQ_ERR_TIMEOUT ? "timed out" : strerror(errno));
            return GQ_ERR_TRANSIENT;
        }
    }
    return GQ_OK;
}

/* Sends one masked frame (clients must mask every frame: RFC 6455 5.3). */
static gq_status_t ws_send_frame(gq_comfy_t *c, int op, const void *payload, size_t len,
                                 int64_t deadline, char *errstr, size_t errstr_size) {
    uint64_t r = gq_random_u64();
    unsigned char mask[4];
    memcpy(mask, &r, 4);
    gq_buf_t out;
    gq_buf_init(&out, len + GQ_COMFY_WS_HEADER_MAX);
    gq_status_t st = gq_comfy_wsframe_encode(&out, op, true, payload, len, mask);
    if (st == GQ_OK)
        st = ws_send_all(c, out.data, out.len, deadline, errstr, errstr_size);
    else
        gq_errf(errstr, errstr_size, "cannot encode a WebSocket frame: %s", gq_status_name(st));
    gq_buf_release(&out);
    return st;
}

/* Best effort: tells the server why we leave, then drops the connection. */
static void ws_fail(gq_comfy_t *c, unsigned code) {
    unsigned char payload[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    char ignored[64];
    if (c->ws_up)
        ws_send_frame(c, GQ_WS_OP_CLOSE, payload, sizeof(payload), gq_mono_ms() + 200, ignored,
                      sizeof(ignored));
    ws_drop(c);
}

/* Reads the upgrade response head; bytes after it are the first frames. */
static gq_status_t ws_read_head(gq_comfy_t *c, gq_buf_t *head, size_t *head_len, int64_t deadline,
                                char *errstr, size_t errstr_size) {
    for (;;) {
        const char *end = head->data ? memmem(head->data, head->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            *head_len = (size_t)(end - head->data) + 4;
            return GQ_OK;
        }
        char buf[4096];
        size_t n = 0;
        CURLcode rc = curl_easy_recv(c->ws, buf, sizeof(buf), &n);
        if (rc == CURLE_AGAIN) {
            /* Not waiting (the loop's poll already said nothing is there): no second poll. */
            if (deadline <= gq_mono_ms())
                return GQ_ERR_TIMEOUT;
            gq_status_t st = ws_wait(c->ws_sock, POLLIN, deadline);
            if (st != GQ_OK) {
                gq_errf(errstr, errstr_size, "WebSocket upgrade: no response in time");
                return GQ_ERR_TRANSIENT;
            }
            continue;
        }
        if (rc != CURLE_OK || n == 0) {
            gq_errf(errstr, errstr_size, "WebSocket upgrade: %s",
                    rc != CURLE_OK ? curl_easy_strerror(rc) : "connection closed");
            return GQ_ERR_TRANSIENT;
        }
        if (gq_buf_append(head, buf, n) != GQ_OK) {
            gq_errf(errstr, errstr_size, "WebSocket upgrade: response head over %zu bytes",
                    head->max);
            return GQ_ERR_INVALID;
        }
    }
}

static gq_status_t ws_open(gq_comfy_t *c, char *errstr, size_t errstr_size) {
    c->ws = curl_easy_init();
    if (!c->ws) {
        gq_errf(errstr, errstr_size, "cannot create a libcurl handle");
        return GQ_ERR_NOMEM;
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c->ws, CURLOPT_URL, c->base.url);
    curl_easy_setopt(c->ws, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->ws, CURLOPT_CONNECT_ONLY, 1L);
    /* Through a proxy the raw bytes must go in a CONNECT tunnel, not as proxied requests. */
    curl_easy_setopt(c->ws, CURLOPT_HTTPPROXYTUNNEL, 1L);
    curl_easy_setopt(c->ws, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->ws, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->ws, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(c->ws, CURLOPT_ERRORBUFFER, err);
    if (c->ca_file)
        curl_easy_setopt(c->ws, CURLOPT_CAINFO, c->ca_file);
    CURLcode rc = curl_easy_perform(c->ws);
    curl_easy_setopt(c->ws, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        gq_errf(errstr, errstr_size, "WebSocket connect to %s: %s", c->base.url,
                err[0] ? err : curl_easy_strerror(rc));
        return GQ_ERR_TRANSIENT;
    }
    curl_socket_t s = CURL_SOCKET_BAD;
    rc = curl_easy_getinfo(c->ws, CURLINFO_ACTIVESOCKET, &s);
    if (rc != CURLE_OK || s == CURL_SOCKET_BAD) {
        gq_errf(errstr, errstr_size, "WebSocket connect to %s: no socket", c->base.url);
        return GQ_ERR_TRANSIENT;
    }
    c->ws_sock = s;
    return GQ_OK;
}

static gq_status_t ws_handshake(gq_comfy_t *c, char *errstr, size_t errstr_size) {
    char key[25];
    if (gq_comfy_ws_key_new(key) != GQ_OK) {
        gq_errf(errstr, errstr_size, "cannot make a Sec-WebSocket-Key");
        return GQ_ERR;
    }
    char *cid = curl_easy_escape(c->ws, c->client_id, 0);
    gq_buf_t req, head;
    gq_buf_init(&req, 8192);
    gq_buf_init(&head, GQ_COMFY_WS_HANDSHAKE_MAX);
    /* No Origin header (the anti-CSRF check then never applies) and no extension offer. */
    gq_status_t st = cid ? gq_buf_appendf(&req,
                                          "GET %s/ws?clientId=%s HTTP/1.1\r\n"
                                          "Host: %s\r\n"
                                          "User-Agent: genq/%s\r\n"
                                          "Upgrade: websocket\r\n"
                                          "Connection: Upgrade\r\n"
                                          "Sec-WebSocket-Key: %s\r\n"
                                          "Sec-WebSocket-Version: 13\r\n"
                                          "\r\n",
                                          c->base.prefix, cid, c->base.host_hdr, gq_version(), key)
                         : GQ_ERR_NOMEM;
    curl_free(cid);
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "cannot build the WebSocket upgrade request");
        goto out;
    }
    /* A server answers an upgrade at once; one that does not is not going to, and the
     * caller (a worker loop) should not wait a whole request timeout to learn it. */
    int64_t deadline =
        gq_mono_ms() + (c->connect_timeout_ms < c->request_timeout_ms ? c->connect_timeout_ms
                                                                      : c->request_timeout_ms);
    st = ws_send_all(c, req.data, req.len, deadline, errstr, errstr_size);
    size_t head_len = 0;
    if (st == GQ_OK)
        st = ws_read_head(c, &head, &head_len, deadline, errstr, errstr_size);
    long code = 0;
    if (st == GQ_OK)
        st = gq_comfy_ws_check_upgrade(head.data, head_len, key, &code, errstr, errstr_size);
    if (st == GQ_OK && head.len > head_len &&
        gq_comfy_wsdec_feed(&c->wsdec, head.data + head_len, head.len - head_len) != GQ_OK) {
        gq_errf(errstr, errstr_size, "WebSocket: cannot buffer the first frames");
        st = GQ_ERR_NOMEM;
    }
out:
    gq_buf_release(&req);
    gq_buf_release(&head);
    return st;
}

gq_status_t gq_comfy_ws_connect(gq_comfy_t *c, char *errstr, size_t errstr_size) {
    if (c->ws_up)
        return GQ_OK;
    /* ComfyUI forgets a clientId when its old socket closes after the new one registered,
     * so the old connection must be gone before the new one is made. */
    ws_drop(c);
    gq_status_t st = ws_open(c, errstr, errstr_size);
    if (st == GQ_OK)
        st = ws_handshake(c, errstr, errstr_size);
    if (st != GQ_OK) {
        ws_drop(c);
        return st;
    }
    c->ws_up = true;
    c->ws_last_rx_ms = gq_mono_ms();
    c->ws_ping_sent_ms = 0;
    c->ws_hold_until = 0;
    gq_debug("comfy WebSocket connected to %s as %s", c->base.url, c->client_id);
    return GQ_OK;
}

bool gq_comfy_ws_connected(const gq_comfy_t *c) { return c && c->ws_up; }

int64_t gq_comfy_ws_wake(const gq_comfy_t *c) {
    if (!c || !c->ws_up)
        return INT64_MAX;
    int64_t wake = c->ws_hold_until > 0 ? c->ws_hold_until : INT64_MAX;
    if (c->ws_ping_interval_ms <= 0)
        return wake;
    int64_t ping = c->ws_ping_sent_ms != 0 ? c->ws_ping_sent_ms + c->request_timeout_ms
                                           : c->ws_last_rx_ms + c->ws_ping_interval_ms;
    return ping < wake ? ping : wake;
}

void gq_comfy_ws_hold(gq_comfy_t *c, int64_t until_mono) {
    if (c)
        c->ws_hold_until = until_mono;
}

void gq_comfy_ws_close(gq_comfy_t *c) {
    if (!c)
        return;
    ws_fail(c, 1000);
}

/* A control frame or a message: GQ_OK with *ev filled when it is an event to return. */
static gq_status_t ws_handle(gq_comfy_t *c, const gq_comfy_wsmsg_t *m, gq_comfy_event_t *ev,
                             bool *have_event, char *errstr, size_t errstr_size) {
    *have_event = false;
    char why[256];
    switch (m->opcode) {
    case GQ_WS_OP_TEXT:
        if (gq_comfy_event_parse((const char *)m->data, m->len, ev, why, sizeof(why)) == GQ_OK)
            *have_event = true;
        else
            gq_debug("comfy WebSocket: skipping a malformed message: %s", why);
        return GQ_OK;
    case GQ_WS_OP_PING:
        return ws_send_frame(c, GQ_WS_OP_PONG, m->data, m->len,
                             gq_mono_ms() + c->request_timeout_ms, errstr, errstr_size);
    case GQ_WS_OP_CLOSE: {
        unsigned code = m->len >= 2 ? (unsigned)(m->data[0] << 8 | m->data[1]) : 1005;
        int rlen = m->len > 2 ? (int)(m->len - 2 > 120 ? 120 : m->len - 2) : 0;
        gq_errf(errstr, errstr_size, "ComfyUI closed the WebSocket (code %u%s%.*s)", code,
                rlen ? ": " : "", rlen, rlen ? (const char *)m->data + 2 : "");
        /* Echo the code, as RFC 6455 5.5.1 asks; 1005 means "none" and is never sent. */
        if (m->len >= 2)
            ws_send_frame(c, GQ_WS_OP_CLOSE, m->data, 2, gq_mono_ms() + 200, why, sizeof(why));
        else
            ws_send_frame(c, GQ_WS_OP_CLOSE, NULL, 0, gq_mono_ms() + 200, why, sizeof(why));
        ws_drop(c);
        return GQ_ERR_TRANSIENT;
    }
    case GQ_WS_OP_BINARY:
        /* A preview is counted (progress events say how many); its image is not kept. */
        *have_event = gq_comfy_event_binary(m->data, m->len, ev);
        return GQ_OK;
    default:
        /* Pongs carry nothing we use. */
        return GQ_OK;
    }
}

/* Reads what the socket has, waiting for it until the deadline. */
static gq_status_t ws_fill(gq_comfy_t *c, int64_t deadline, char *errstr, size_t errstr_size) {
    for (;;) {
        char buf[GQ_COMFY_WS_READ_CHUNK];
        size_t n = 0;
        CURLcode rc = curl_easy_recv(c->ws, buf, sizeof(buf), &n);
        if (rc == CURLE_OK && n > 0) {
            /* Any traffic shows the peer is alive, as well as a pong would. */
            c->ws_last_rx_ms = gq_mono_ms();
            c->ws_ping_sent_ms = 0;
            if (gq_comfy_wsdec_feed(&c->wsdec, buf, n) != GQ_OK) {
                gq_errf(errstr, errstr_size, "WebSocket: receive buffer over %zu bytes",
                        c->wsdec.in.max);
                ws_fail(c, 1009);
                return GQ_ERR_TRANSIENT;
            }
            return GQ_OK;
        }
        if (rc == CURLE_AGAIN) {
            /* Not waiting (the loop's poll already said nothing is there): no second poll. */
            if (deadline <= gq_mono_ms())
                return GQ_ERR_TIMEOUT;
            gq_status_t st = ws_wait(c->ws_sock, POLLIN, deadline);
            if (st == GQ_ERR_TIMEOUT)
                return GQ_ERR_TIMEOUT;
            if (st != GQ_OK) {
                gq_errf(errstr, errstr_size, "WebSocket poll: %s", strerror(errno));
                ws_drop(c);
                return GQ_ERR_TRANSIENT;
            }
            continue;
        }
        gq_errf(errstr, errstr_size, "WebSocket: %s",
                rc == CURLE_OK ? "connection closed by ComfyUI" : curl_easy_strerror(rc));
        ws_drop(c);
        return GQ_ERR_TRANSIENT;
    }
}

/*
 * ComfyUI never pings, and a connection that died without a FIN or RST (a NAT timeout, a
 * pulled cable) would look like a long render forever. After ws_ping_interval_ms of silence
 * we ping; when nothing at all comes back within request_timeout_ms the connection is dead.
 * Returns the time to wake up for the next check (INT64_MAX when pings are off).
 */
static gq_status_t ws_keepalive(gq_comfy_t *c, int64_t *wake, char *errstr, size_t errstr_size) {
    *wake = INT64_MAX;
    if (c->ws_ping_interval_ms <= 0)
        return GQ_OK;
    int64_t now = gq_mono_ms();
    if (c->ws_ping_sent_ms == 0 && now - c->ws_last_rx_ms >= c->ws_ping_interval_ms) {
        gq_status_t st = ws_send_frame(c, GQ_WS_OP_PING, "genq", 4, now + c->request_timeout_ms,
                                       errstr, errstr_size);
        if (st != GQ_OK) {
            ws_drop(c);
            return GQ_ERR_TRANSIENT;
        }
        c->ws_ping_sent_ms = now;
    }
    if (c->ws_ping_sent_ms != 0) {
        if (now - c->ws_ping_sent_ms >= c->request_timeout_ms) {
            gq_errf(errstr, errstr_size,
                    "WebSocket silent for %lld ms, no answer to a ping within %d ms",
                    (long long)(now - c->ws_last_rx_ms), c->request_timeout_ms);
            /* The peer is gone: a close frame would go nowhere. */
            ws_drop(c);
            return GQ_ERR_TRANSIENT;
        }
        *wake = c->ws_ping_sent_ms + c->request_timeout_ms;
    } else {
        *wake = c->ws_last_rx_ms + c->ws_ping_interval_ms;
    }
    return GQ_OK;
}

gq_status_t gq_comfy_ws_next(gq_comfy_t *c, int timeout_ms, gq_comfy_event_t *ev, char *errstr,
                             size_t errstr_size) {
    if (!c->ws_up) {
        gq_errf(errstr, errstr_size, "WebSocket not connected");
        return GQ_ERR_TRANSIENT;
    }
    int64_t deadline = gq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        gq_comfy_wsmsg_t m;
        gq_status_t st = gq_comfy_wsdec_next(&c->wsdec, &m, errstr, errstr_size);
        if (st != GQ_OK) {
            ws_fail(c, st == GQ_ERR_TOOBIG ? 1009 : 1002);
            return GQ_ERR_TRANSIENT;
        }
        if (m.opcode != 0) {
            bool have = false;
            st = ws_handle(c, &m, ev, &have, errstr, errstr_size);
            if (st != GQ_OK) {
                ws_drop(c);
                return GQ_ERR_TRANSIENT;
            }
            if (have)
                return GQ_OK;
            continue;
        }
        int64_t wake;
        st = ws_keepalive(c, &wake, errstr, errstr_size);
        if (st != GQ_OK)
            return st;
        st = ws_fill(c, wake < deadline ? wake : deadline, errstr, errstr_size);
        if (st == GQ_ERR_TIMEOUT && gq_mono_ms() < deadline)
            continue;
        if (st == GQ_ERR_TIMEOUT)
            gq_errf(errstr, errstr_size, "no WebSocket event within %d ms", timeout_ms);
        if (st != GQ_OK)
            return st;
    }
}
