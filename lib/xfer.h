/**
 * @file xfer.h
 * @brief libcurl transfers of several modules on one multi handle.
 *
 * The worker loop blocks in one place (gq_comfy_wait, a curl_multi_poll over the ComfyUI
 * client's multi handle and the loop's other descriptors). A module that has HTTP transfers
 * of its own (the S3 output store) runs them on that same multi handle as gq_xfer_t: it
 * starts an easy handle with gq_xfer_start, and the host calls the transfer's done callback
 * when libcurl reports it finished. The host that owns the multi handle calls
 * gq_xfer_dispatch for every finished easy handle before treating it as its own.
 *
 * A module used without the worker (a command, a test) gets a host of its own with
 * gq_xfer_host_init and drives it with gq_xfer_host_wait.
 */
#ifndef GQ_XFER_H
#define GQ_XFER_H

#include "gq.h"

#include <curl/curl.h>
#include <stdbool.h>

typedef struct gq_xfer gq_xfer_t;

/** Called once per gq_xfer_start, with curl's result, after the handle left the multi. */
typedef void (*gq_xfer_done_fn)(gq_xfer_t *x, CURLcode rc);

struct gq_xfer {
    CURL *easy;           /**< the caller's, configured; the host never frees it */
    gq_xfer_done_fn done; /**< the caller's */
    void *ctx;            /**< the caller's */
    gq_xfer_t *next;      /**< the host's */
    bool running;         /**< the host's: between start and done (or abort) */
};

typedef struct gq_xfer_host {
    CURLM *multi;       /**< shared with the owner (comfy), or own */
    gq_xfer_t *running; /**< transfers started here and not done */
    bool own;           /**< the multi handle is this host's (gq_xfer_host_init) */
} gq_xfer_host_t;

/** A host with a multi handle of its own; GQ_ERR_NOMEM. */
gq_status_t gq_xfer_host_init(gq_xfer_host_t *h);
/** Aborts what runs (no callbacks) and frees an own multi handle. NULL-safe. */
void gq_xfer_host_release(gq_xfer_host_t *h);
/** For an own host: waits up to timeout_ms for its transfers, then completes finished ones. */
void gq_xfer_host_wait(gq_xfer_host_t *h, int timeout_ms);

/** Adds x->easy to the multi handle; GQ_ERR when libcurl refuses it. */
gq_status_t gq_xfer_start(gq_xfer_host_t *h, gq_xfer_t *x);
/** Takes a running transfer off the multi handle without calling done. */
void gq_xfer_abort(gq_xfer_host_t *h, gq_xfer_t *x);
/** A finished easy handle: calls its done and returns true when it is one of the host's. */
bool gq_xfer_dispatch(gq_xfer_host_t *h, CURL *easy, CURLcode rc);
/** Transfers running on the host. */
size_t gq_xfer_running(const gq_xfer_host_t *h);

#endif
