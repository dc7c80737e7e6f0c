/**
 * @file store.h
 * @brief The output store: content-addressed files under GENQ_OUTPUT_DIR.
 *
 * A file is stored as <root>/<sha256[0:2]>/<sha256>.<ext>, written to a temporary name,
 * fsync'ed and renamed, so a crash never leaves a partial file under the final name and the
 * same content written twice is stored once. No name from a message or from ComfyUI reaches
 * the path: only the hash and an extension picked from a fixed list by the detected type.
 */
#ifndef GQ_STORE_H
#define GQ_STORE_H

#include "gq.h"

#include <stdbool.h>

typedef struct gq_stored {
    char sha256[65];
    char path[1024];  /**< absolute path of the stored file */
    char uri[1280];   /**< url_prefix + relative path */
    const char *mime; /**< "image/png", "image/jpeg", "image/webp", "application/octet-stream" */
    int32_t width, height; /**< 0 when unknown (not an image we can parse) */
    int64_t bytes;
} gq_stored_t;

typedef struct gq_store {
    char root[512];       /**< absolute */
    char url_prefix[512]; /**< no trailing slash */
} gq_store_t;

/** Creates root if needed and checks it is writable. url_prefix may be NULL (file://root). */
gq_status_t gq_store_init(gq_store_t *s, const char *root, const char *url_prefix, char *errstr,
                          size_t errstr_size);
/** Stores data (idempotent: the same bytes end in the same file). */
gq_status_t gq_store_put(const gq_store_t *s, const void *data, size_t len, gq_stored_t *out,
                         char *errstr, size_t errstr_size);
/** Reads width/height from a PNG header (IHDR); GQ_ERR_INVALID if not a valid PNG. */
gq_status_t gq_png_size(const void *data, size_t len, int32_t *w, int32_t *h);

#endif
