/**
 * @file sigv4.h
 * @brief AWS Signature Version 4 for query strings: presigned URLs.
 *
 * libcurl signs requests itself (CURLOPT_AWS_SIGV4, in headers); a presigned URL carries the
 * signature in its query string instead, which libcurl cannot make. This is the algorithm of
 * AWS's "Authenticating Requests: Using Query Parameters" (tests/unit/test_sigv4.c checks it
 * against the example published there), for GET links to stored outputs.
 */
#ifndef GQ_SIGV4_H
#define GQ_SIGV4_H

#include "gq.h"

#include <stdint.h>

typedef struct gq_sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /**< NULL or "" when none */
} gq_sigv4_creds_t;

typedef struct gq_sigv4_presign {
    const char *method;  /**< "GET" */
    const char *scheme;  /**< "https" or "http" */
    const char *host;    /**< as the client will send it: host, or host:port */
    const char *path;    /**< absolute and not encoded, e.g. "/bucket/a b.png" */
    const char *region;  /**< "us-east-1" */
    const char *service; /**< "s3" */
    int64_t now_s;       /**< signing time, unix seconds */
    int64_t expires_s;   /**< 1 to 604800 */
} gq_sigv4_presign_t;

/**
 * Writes the presigned URL into url. GQ_ERR_INVALID for a missing field or an expiry out of
 * range, GQ_ERR_TOOBIG when url is too small.
 */
gq_status_t gq_sigv4_presign(const gq_sigv4_presign_t *p, const gq_sigv4_creds_t *c, char *url,
                             size_t url_size, char *errstr, size_t errstr_size);

/**
 * URI-encodes s the way SigV4 wants it (every byte but A-Z a-z 0-9 - . _ ~ as %XX, upper
 * case), keeping '/' when keep_slash. GQ_ERR_TOOBIG when out is too small.
 */
gq_status_t gq_sigv4_encode(const char *s, int keep_slash, char *out, size_t out_size);

/** HMAC-SHA256 (the signing key's chain and the signature). */
void gq_sigv4_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   unsigned char out[32]);

#endif
