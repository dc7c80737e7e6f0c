/**
 * @file outputs.h
 * @brief Where the worker stores outputs: the file store (store.h) or an S3-compatible
 * bucket (s3.h), behind one asynchronous interface.
 *
 * GENQ_OUTPUT_URL=s3://bucket/prefix picks S3; otherwise the file store at GENQ_OUTPUT_DIR.
 * A put hands over the bytes and returns at once; its outcome (a gq_stored_t, or why not)
 * comes later from gq_outputs_next_done. The file store writes on a thread of its own and
 * makes gq_outputs_fd readable when an answer waits; an upload (on the loop's libcurl multi
 * handle) takes as long as S3 needs, an outage included (it is retried, never failed).
 * Every function is called from the loop's thread.
 */
#ifndef GQ_OUTPUTS_H
#define GQ_OUTPUTS_H

#include "buf.h"
#include "cfg.h"
#include "gq.h"
#include "store.h"
#include "xfer.h"

#include <stdbool.h>

typedef struct gq_outputs gq_outputs_t;

typedef struct gq_outputs_done {
    uint64_t tag;
    int idx;
    gq_status_t status;
    char errstr[256];
    gq_stored_t stored; /**< when status is GQ_OK */
} gq_outputs_done_t;

/** From the configuration (output_url, output_dir, s3_*); host runs S3's transfers. */
gq_outputs_t *gq_outputs_new(const gq_cfg_t *cfg, gq_xfer_host_t *host, gq_status_t *st,
                             char *errstr, size_t errstr_size);
/** NULL-safe; puts in flight never complete (a file being written is finished first). */
void gq_outputs_destroy(gq_outputs_t *o);
/** Readable while the file store has an answer waiting; -1 with S3 (its transfers are the
 * libcurl multi handle's). */
int gq_outputs_fd(const gq_outputs_t *o);

/** Takes data (left empty) and stores it; the outcome comes from gq_outputs_next_done. */
void gq_outputs_put(gq_outputs_t *o, gq_buf_t *data, uint64_t tag, int idx);
bool gq_outputs_next_done(gq_outputs_t *o, gq_outputs_done_t *out);
/** Starts retries that are due. */
void gq_outputs_service(gq_outputs_t *o, int64_t now_mono);
/** The next retry (monotonic ms), 0 when an outcome waits, INT64_MAX when nothing does. */
int64_t gq_outputs_wake(const gq_outputs_t *o);
/** Puts not answered yet, and the object store's failed requests so far (for metrics). */
void gq_outputs_stats(gq_outputs_t *o, int64_t *waiting, uint64_t *failures);
/** False while the object store fails (for /readyz). */
bool gq_outputs_ok(const gq_outputs_t *o);
/** "s3://bucket/prefix" or "file:///dir", for the start line. */
const char *gq_outputs_describe(const gq_outputs_t *o);

/**
 * The URI a completion event carries for a recorded one: with s3_presign set, a presigned
 * HTTPS URL of the object; otherwise the URI itself.
 */
gq_status_t gq_outputs_event_uri(gq_outputs_t *o, const char *uri, char *out, size_t out_size,
                                 char *errstr, size_t errstr_size);

#endif
