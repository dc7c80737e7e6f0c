/**
 * @file thumb.h
 * @brief Small PNG thumbnails for the report's contact sheet, so a page of large outputs stays
 * small and still self-contained.
 *
 * Reads 8-bit, non-interlaced PNGs (grey, grey+alpha, RGB, RGBA; an APNG's default image),
 * scales them down by averaging boxes of pixels, and writes an RGB or RGBA PNG. The input is
 * treated as untrusted: every size is checked before it is used, and a picture of more than
 * 64 million pixels is refused.
 */
#ifndef GQ_THUMB_H
#define GQ_THUMB_H

#include "buf.h"
#include "gq.h"

/**
 * Writes into out a PNG of png scaled so that its longer side is at most max_side (never
 * enlarged). GQ_ERR_INVALID for what it cannot read (another format, 16-bit, palette,
 * interlaced, damaged), GQ_ERR_TOOBIG for a picture too large, GQ_ERR_NOMEM.
 */
gq_status_t gq_thumb_png(const unsigned char *png, size_t len, int max_side, gq_buf_t *out);

#endif
