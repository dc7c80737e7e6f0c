/**
 * @file s3.h
 * @brief The S3-compatible output store: content-addressed objects in a bucket.
 *
 * GENQ_OUTPUT_URL=s3://bucket/prefix stores each output as the object
 * <prefix>/<sha256[0:2]>/<sha256>.<ext> (the file store's layout), recorded as the URI
 * s3://bucket/<key>. Requests are signed by libcurl (CURLOPT_AWS_SIGV4) and run on the
 * worker's multi handle (xfer.h), so an upload never blocks the loop.
 *
 * An upload is verified: the payload's SHA-256 is signed (x-amz-content-sha256) and its MD5
 * sent (Content-MD5), so the server refuses damaged bytes, and the ETag it answers must be
 * that MD5 (for a multipart upload: each part's, and the MD5 of their MD5s with "-N"). The
 * object carries x-amz-meta-sha256; a HEAD first finds an object already stored (the same
 * bytes stored twice are uploaded once). Outputs larger than part_size go up in parts.
 *
 * An outage delays, it never fails: every failed request (unreachable, 5xx, throttled, even
 * 4xx, which a fixed configuration or a rotated credential can cure) is retried with a
 * backoff from 0.5 s doubling to 30 s, for as long as the store lives. Only what cannot
 * succeed by waiting (out of memory, an output over the limit) fails a put.
 */
#ifndef GQ_S3_H
#define GQ_S3_H

#include "buf.h"
#include "gq.h"
#include "store.h"
#include "xfer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct gq_s3_opts {
    const char *url;             /**< s3://bucket[/prefix] */
    const char *endpoint;        /**< http(s)://host[:port]; NULL: AWS's for the region */
    const char *region;          /**< NULL: us-east-1 */
    bool path_style;             /**< endpoint/bucket/key rather than bucket.endpoint/key */
    const char *access_key;      /**< AWS_ACCESS_KEY_ID */
    const char *secret_key;      /**< AWS_SECRET_ACCESS_KEY */
    const char *session_token;   /**< AWS_SESSION_TOKEN, may be NULL */
    const char *credentials_dir; /**< files AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
                                      AWS_SESSION_TOKEN (a mounted Secret), re-read every
                                      minute; they win over the three above */
    int64_t part_size;           /**< outputs above this go up in parts of this size */
    int presign_s;               /**< > 0: gq_s3_presign links last this long */
    const char *ca_file;         /**< NULL: the system's CA bundle */
} gq_s3_opts_t;

typedef struct gq_s3 gq_s3_t;

/** The outcome of one put. */
typedef struct gq_s3_done {
    uint64_t tag;
    int idx;
    gq_status_t status;
    char errstr[256];
    gq_stored_t stored; /**< when status is GQ_OK */
} gq_s3_done_t;

/**
 * Checks the options and reads the credentials; no request is made (an unreachable server
 * at start delays the first uploads, nothing more). host runs the transfers (the ComfyUI
 * client's, or one of the caller's); it must outlive the store.
 */
gq_s3_t *gq_s3_new(const gq_s3_opts_t *o, gq_xfer_host_t *host, char *errstr, size_t errstr_size);
/** Aborts what is in flight (those puts never complete). NULL-safe. */
void gq_s3_destroy(gq_s3_t *s);

/**
 * Starts storing data, which the store takes (*data is left empty). The outcome comes from
 * gq_s3_next_done with tag and idx. Fails at once only when out of memory.
 */
gq_status_t gq_s3_put(gq_s3_t *s, gq_buf_t *data, uint64_t tag, int idx, char *errstr,
                      size_t errstr_size);
/** The next finished put, if any. */
bool gq_s3_next_done(gq_s3_t *s, gq_s3_done_t *out);
/** Starts the retries that are due. */
void gq_s3_service(gq_s3_t *s, int64_t now_mono);
/** When the next retry is due (monotonic ms), INT64_MAX when none waits. */
int64_t gq_s3_wake(const gq_s3_t *s);
/** Puts started and not handed out. */
size_t gq_s3_pending(const gq_s3_t *s);
/** Failed requests so far (each was retried). */
uint64_t gq_s3_failures(const gq_s3_t *s);
/** The latest request failed and none has succeeded since (for readiness and logs). */
bool gq_s3_failing(const gq_s3_t *s);

/**
 * A presigned GET URL for an s3:// URI of this store's bucket, valid for presign_s (or
 * expires_s when > 0). GQ_ERR_INVALID for another bucket or scheme.
 */
gq_status_t gq_s3_presign(gq_s3_t *s, const char *uri, int64_t expires_s, char *url,
                          size_t url_size, char *errstr, size_t errstr_size);

/** Parses s3://bucket[/prefix]: checks the bucket name and the prefix's characters. */
gq_status_t gq_s3_parse_url(const char *url, char *bucket, size_t bucket_size, char *prefix,
                            size_t prefix_size, char *errstr, size_t errstr_size);

#endif
