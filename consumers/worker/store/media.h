/**
 * @file media.h
 * @brief What a file is, read from its bytes: type, extension, and the picture's size when
 * the header says it cheaply.
 *
 * ComfyUI names its files after the node's prefix and format, and a custom node can write
 * anything under any name; genq decides by content alone (magic numbers and container
 * headers), so a name from ComfyUI or a message never decides a type or a path.
 */
#ifndef GQ_MEDIA_H
#define GQ_MEDIA_H

#include "gq.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct gq_media {
    const char *ext;       /**< "png", "webp", "gif", "webm", "mp4", "flac", ... "bin" */
    const char *mime;      /**< "image/png", "image/apng", "video/webm", "audio/flac", ...;
                                "application/octet-stream" when unknown */
    int32_t width, height; /**< 0 when unknown or not a picture (audio) */
    bool animated;         /**< APNG, animated WebP or GIF (more than one frame known) */
} gq_media_t;

/** Detects the type of data (never fails: unknown bytes are "bin"). */
void gq_media_detect(const void *data, size_t len, gq_media_t *out);

/** Reads width/height from a PNG header (IHDR); GQ_ERR_INVALID if not a valid PNG. */
gq_status_t gq_png_size(const void *data, size_t len, int32_t *w, int32_t *h);

#endif
