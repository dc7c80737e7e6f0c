/*
 * Transfers of other modules on a shared libcurl multi handle (see xfer.h).
 */
#include "xfer.h"

#include <string.h>

gq_status_t gq_xfer_host_init(gq_xfer_host_t *h) {
    memset(h, 0, sizeof(*h));
    h->multi = curl_multi_init();
    if (!h->multi)
        return GQ_ERR_NOMEM;
    h->own = true;
    return GQ_OK;
}

void gq_xfer_host_release(gq_xfer_host_t *h) {
    if (!h)
        return;
    while (h->running)
        gq_xfer_abort(h, h->running);
    if (h->own && h->multi)
        curl_multi_cleanup(h->multi);
    memset(h, 0, sizeof(*h));
}

gq_status_t gq_xfer_start(gq_xfer_host_t *h, gq_xfer_t *x) {
    if (!h->multi || !x->easy || x->running)
        return GQ_ERR;
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK)
        return GQ_ERR;
    x->running = true;
    x->next = h->running;
    h->running = x;
    return GQ_OK;
}

static bool xfer_unlink(gq_xfer_host_t *h, gq_xfer_t *x) {
    for (gq_xfer_t **pp = &h->running; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            x->next = NULL;
            x->running = false;
            return true;
        }
    return false;
}

void gq_xfer_abort(gq_xfer_host_t *h, gq_xfer_t *x) {
    if (!x || !x->running)
        return;
    curl_multi_remove_handle(h->multi, x->easy);
    xfer_unlink(h, x);
}

bool gq_xfer_dispatch(gq_xfer_host_t *h, CURL *easy, CURLcode rc) {
    for (gq_xfer_t *x = h->running; x; x = x->next) {
        if (x->easy != easy)
            continue;
        curl_multi_remove_handle(h->multi, easy);
        xfer_unlink(h, x);
        /* The callback may start x again (a retry) or free it: nothing of x is used after. */
        x->done(x, rc);
        return true;
    }
    return false;
}

size_t gq_xfer_running(const gq_xfer_host_t *h) {
    size_t n = 0;
    for (const gq_xfer_t *x = h->running; x; x = x->next)
        n++;
    return n;
}

void gq_xfer_host_wait(gq_xfer_host_t *h, int timeout_ms) {
    int numfds = 0, still = 0;
    if (h->running)
        curl_multi_poll(h->multi, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms, &numfds);
    curl_multi_perform(h->multi, &still);
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg == CURLMSG_DONE)
            gq_xfer_dispatch(h, m->easy_handle, m->data.result);
    }
}
