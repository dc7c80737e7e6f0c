/*
 * HTTP to ComfyUI: every request is an operation on libcurl's multi interface, so a worker
 * loop can have several in flight (a submit, a history, a few /view downloads) and wait for
 * them with its other descriptors in one poll. The blocking calls run one operation to its
 * end. Connections are kept alive and reused (at most GQ_COMFY_MAX_CONNECTIONS).
 */
#include "comfy_int.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t http_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    gq_comfy_op_t *op = userdata;
    size_t n = size * nmemb;
    if (gq_buf_append(&op->priv->resp, ptr, n) != GQ_OK) {
        /* Returning less than n makes curl stop with CURLE_WRITE_ERROR. */
        op->priv->resp_full = true;
        return 0;
    }
    return n;
}

/* A configured easy handle: one from the pool (its connection may still be open) or new. */
static CURL *http_easy(gq_comfy_t *c) {
    if (c->idle_cnt > 0)
        return c->idle[--c->idle_cnt];
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    return h;
}

static void http_easy_release(gq_comfy_t *c, CURL *h) {
    if (!h)
        return;
    if (c->idle_cnt < GQ_COMFY_MAX_CONNECTIONS) {
        c->idle[c->idle_cnt++] = h;
        return;
    }
    curl_easy_cleanup(h);
}

gq_status_t gq_comfy_http_setup(gq_comfy_t *c, char *errstr, size_t errstr_size) {
    c->multi = curl_multi_init();
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* A body never waits for "100 Continue": ComfyUI answers at once anyway. */
    struct curl_slist *h2 = c->headers ? curl_slist_append(c->headers, "Expect:") : NULL;
    if (!c->multi || !h2) {
        gq_errf(errstr, errstr_size, "cannot create libcurl handles");
        return GQ_ERR_NOMEM;
    }
    c->headers = h2;
    c->xfers.multi = c->multi;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)GQ_COMFY_MAX_CONNECTIONS);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)GQ_COMFY_MAX_CONNECTIONS);
    snprintf(c->user_agent, sizeof(c->user_agent), "genq/%s", gq_version());
    return GQ_OK;
}

static void op_unlink(gq_comfy_op_t **head, gq_comfy_op_t *op) {
    for (gq_comfy_op_t **pp = head; *pp; pp = &(*pp)->priv->next)
        if (*pp == op) {
            *pp = op->priv->next;
            op->priv->next = NULL;
            return;
        }
}

/* The op is complete: to the done list (or gone, for the client's own). */
static void op_complete(gq_comfy_t *c, gq_comfy_op_t *op) {
    struct gq_comfy_op_priv *p = op->priv;
    if (p->running) {
        op_unlink(&c->running, op);
        p->running = false;
    }
    if (p->easy) {
        http_easy_release(c, p->easy);
        p->easy = NULL;
    }
    gq_buf_release(&p->resp);
    p->done = true;
    op->elapsed_ms = gq_mono_ms() - p->t0;
    if (p->internal) {
        if (op->status != GQ_OK)
            gq_debug("comfy: %s", op->errstr);
        c->pending--;
        gq_comfy_op_destroy(op);
        return;
    }
    if (c->done_tail)
        c->done_tail->priv->next = op;
    else
        c->done_head = op;
    c->done_tail = op;
}

void gq_comfy_op_fail(gq_comfy_t *c, gq_comfy_op_t *op, gq_status_t st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->errstr, sizeof(op->errstr), fmt, ap);
    va_end(ap);
    op->status = st;
    op_complete(c, op);
}

gq_status_t gq_comfy_op_send(gq_comfy_t *c, gq_comfy_op_t *op, size_t max_bytes) {
    struct gq_comfy_op_priv *p = op->priv;
    char url[GQ_COMFY_URL_MAX + 512];
    if (gq_comfy_url_join(c->base.url, p->path, p->query, url, sizeof(url)) != GQ_OK) {
        gq_comfy_op_fail(c, op, GQ_ERR_TOOBIG, "ComfyUI URL for %.100s too long", p->path);
        return GQ_OK;
    }
    CURL *h = p->easy ? p->easy : http_easy(c);
    if (!h) {
        gq_comfy_op_fail(c, op, GQ_ERR_NOMEM, "cannot create a libcurl handle");
        return GQ_ERR_NOMEM;
    }
    p->easy = h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (strcmp(p->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->post ? p->post : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(p->post ? strlen(p->post) : 0));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    /* Refuse early when Content-Length already says the body will not fit. */
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                     max_bytes < (size_t)INT64_MAX ? (curl_off_t)max_bytes : (curl_off_t)0);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(h, CURLOPT_PRIVATE, op);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->curl_err);
    gq_buf_release(&p->resp);
    gq_buf_init(&p->resp, max_bytes);
    p->resp_full = false;
    p->curl_err[0] = '\0';
    op->http_code = 0;
    if (curl_multi_add_handle(c->multi, h) != CURLM_OK) {
        gq_comfy_op_fail(c, op, GQ_ERR, "cannot start a request to ComfyUI");
        return GQ_OK;
    }
    if (!p->running) {
        p->running = true;
        p->next = c->running;
        c->running = op;
    }
    return GQ_OK;
}

/* One request of op ended (curl's result rc): classify the transport, let the op decide. */
static void http_done(gq_comfy_t *c, gq_comfy_op_t *op, CURLcode rc) {
    struct gq_comfy_op_priv *p = op->priv;
    CURL *h = p->easy;
    curl_multi_remove_handle(c->multi, h);
    char url[GQ_COMFY_URL_MAX + 512] = "";
    gq_comfy_url_join(c->base.url, p->path, p->query, url, sizeof(url));
    gq_status_t st = GQ_OK;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &op->http_code);
        gq_debug("comfy %s %s -> %ld, %zu bytes, %lld ms", p->method, url, op->http_code,
                 p->resp.len, (long long)(gq_mono_ms() - p->t0));
    } else if ((rc == CURLE_WRITE_ERROR && p->resp_full) || rc == CURLE_FILESIZE_EXCEEDED) {
        gq_errf(op->errstr, sizeof(op->errstr), "ComfyUI %s %s: response larger than %zu bytes",
                p->method, url, p->resp.max);
        st = GQ_ERR_TOOBIG;
    } else {
        /* Refused, reset, unresolvable or too slow: the server may come back, so retry later. */
        gq_errf(op->errstr, sizeof(op->errstr), "ComfyUI %s %s: %s", p->method, url,
                p->curl_err[0] ? p->curl_err : curl_easy_strerror(rc));
        st = GQ_ERR_TRANSIENT;
    }
    if (gq_comfy_op_finish(c, op, st))
        op_complete(c, op);
}

/* Advances every transfer and completes those that ended. */
static void http_perform(gq_comfy_t *c) {
    int still = 0;
    curl_multi_perform(c->multi, &still);
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        gq_comfy_op_t *op = NULL;
        CURLcode rc = m->data.result;
        /* Another module's transfer (the S3 output store) on the same multi handle. */
        if (gq_xfer_dispatch(&c->xfers, m->easy_handle, rc))
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&op);
        if (op)
            http_done(c, op, rc);
    }
}

void gq_comfy_wait(gq_comfy_t *c, gq_comfy_waitfd_t *extra, unsigned extra_cnt, int timeout_ms) {
    struct curl_waitfd fds[16];
    unsigned n = 0;
    for (unsigned i = 0; i < extra_cnt && n < GQ_ARRAY_LEN(fds) - 1; i++) {
        extra[i].revents = 0;
        fds[n++] = (struct curl_waitfd){.fd = extra[i].fd, .events = extra[i].events};
    }
    bool ws = c->ws_up && c->ws_sock != CURL_SOCKET_BAD;
    if (c->ws_hold_until > 0 && c->ws_hold_until <= gq_mono_ms())
        c->ws_hold_until = 0;
    if (ws && !c->ws_hold_until)
        fds[n++] = (struct curl_waitfd){.fd = c->ws_sock, .events = CURL_WAIT_POLLIN};
    /* Buffered WebSocket bytes or a finished op are work already waiting: do not sleep. */
    if (c->done_head || (ws && c->wsdec.in.len > c->wsdec.pos))
        timeout_ms = 0;
    if (timeout_ms < 0)
        timeout_ms = 0;
    int numfds = 0;
    curl_multi_poll(c->multi, fds, n, timeout_ms, &numfds);
    for (unsigned i = 0, j = 0; i < extra_cnt && j < n; i++, j++)
        extra[i].revents = fds[j].revents;
    /* Most turns come between requests (a progress frame, a Kafka message): with no transfer
     * in the multi handle, curl has nothing to advance, and asking it was a tenth of the
     * loop's time on 1 s renders (perf). */
    if (c->running || c->xfers.running)
        http_perform(c);
}

gq_comfy_op_t *gq_comfy_op_next_done(gq_comfy_t *c) {
    gq_comfy_op_t *op = c->done_head;
    if (!op)
        return NULL;
    c->done_head = op->priv->next;
    if (!c->done_head)
        c->done_tail = NULL;
    op->priv->next = NULL;
    c->pending--;
    return op;
}

size_t gq_comfy_ops_pending(const gq_comfy_t *c) { return c->pending; }

gq_xfer_host_t *gq_comfy_xfer_host(gq_comfy_t *c) { return &c->xfers; }

void gq_comfy_op_run(gq_comfy_t *c, gq_comfy_op_t *op) {
    while (!op->priv->done) {
        int numfds = 0;
        curl_multi_poll(c->multi, NULL, 0, 1000, &numfds);
        http_perform(c);
    }
    /* Out of the done list: the blocking caller keeps it. */
    gq_comfy_op_t **pp = &c->done_head, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->priv->next)
        if (*pp == op) {
            *pp = op->priv->next;
            if (c->done_tail == op)
                c->done_tail = prev;
            op->priv->next = NULL;
            c->pending--;
            return;
        }
}

/* Aborts every transfer (the client is going away). */
void gq_comfy_http_teardown(gq_comfy_t *c) {
    /* Their owners should have ended them; their callbacks are not called from here. */
    gq_xfer_host_release(&c->xfers);
    while (c->running) {
        gq_comfy_op_t *op = c->running;
        curl_multi_remove_handle(c->multi, op->priv->easy);
        gq_errf(op->errstr, sizeof(op->errstr), "the ComfyUI client was closed");
        op->status = GQ_ERR_TRANSIENT;
        op_complete(c, op);
    }
    for (gq_comfy_op_t *op; (op = gq_comfy_op_next_done(c));)
        gq_comfy_op_destroy(op);
    while (c->idle_cnt > 0)
        curl_easy_cleanup(c->idle[--c->idle_cnt]);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    c->multi = NULL;
    curl_slist_free_all(c->headers);
    c->headers = NULL;
}

gq_status_t gq_comfy_http_do(gq_comfy_t *c, const char *method, const char *path, const char *query,
                             const char *body, gq_buf_t *resp, long *code, char *errstr,
                             size_t errstr_size) {
    *code = 0;
    gq_buf_reset(resp);
    gq_comfy_op_t *op = gq_comfy_op_raw(c, method, path, query, body, resp->max, 0);
    if (!op) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    gq_comfy_op_run(c, op);
    gq_status_t st = op->status;
    *code = op->http_code;
    if (st == GQ_OK)
        st = gq_buf_append(resp, op->body.data ? op->body.data : "", op->body.len);
    else
        gq_strlcpy(errstr, op->errstr, errstr_size);
    gq_comfy_op_destroy(op);
    return st;
}

gq_status_t gq_comfy_http_class(long code) {
    if (code >= 200 && code < 300)
        return GQ_OK;
    if (code == 404)
        return GQ_ERR_NOTFOUND;
    if (code == 408 || code == 429)
        return GQ_ERR_TRANSIENT;
    if (code >= 400 && code < 500)
        return GQ_ERR_INVALID;
    return GQ_ERR_TRANSIENT;
}

void gq_comfy_http_errf(char *errstr, size_t errstr_size, long code, const char *what,
                        const gq_buf_t *body) {
    char snippet[201];
    size_t n = 0;
    for (size_t i = 0; body && body->data && i < body->len && n < sizeof(snippet) - 1; i++) {
        unsigned char ch = (unsigned char)body->data[i];
        snippet[n++] = ch < 0x20 ? ' ' : (char)ch;
    }
    snippet[n] = '\0';
    gq_errf(errstr, errstr_size, "ComfyUI %s: HTTP %ld%s%s", what, code, n ? ": " : "", snippet);
}
