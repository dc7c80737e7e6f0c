/**
 * @file store.h
 * @brief The output store: content-addressed files under GENQ_OUTPUT_DIR.
 *
 * A file is stored as <root>/<sha256[0:2]>/<sha256>.<ext>, written to a temporary name,
 * fsync'ed and renamed, so a crash never leaves a partial file under the final name and the
 * same content written twice is stored once. No name from a message or from ComfyUI reaches
 * the path: only the hash and an extension picked from a fixed list by the type detected
 * from the bytes (media.h).
 */
#ifndef GQ_STORE_H
#define GQ_STORE_H

#include "gq.h"
#include "media.h"

#include <stdbool.h>

typedef struct gq_stored {
    char sha256[65];
    char path[1024];       /**< absolute path of the stored file */
    char uri[1280];        /**< url_prefix + relative path */
    const char *mime;      /**< by content (media.h): "image/png", "image/webp", "video/webm",
                                "audio/flac"... "application/octet-stream" when unknown */
    int32_t width, height; /**< 0 when unknown or not a picture */
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

#endif
