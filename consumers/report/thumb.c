/*
 * PNG thumbnails (see thumb.h): chunks, inflate, unfilter, box average, deflate.
 */
#include "thumb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define THUMB_MAX_PIXELS (64u << 20)

static uint32_t thumb_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void thumb_put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int thumb_paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Undoes the per-row filters in place; raw holds h rows of 1 + stride bytes. */
static gq_status_t thumb_unfilter(unsigned char *raw, uint32_t h, size_t stride, int bpp) {
    unsigned char *prev = NULL;
    for (uint32_t y = 0; y < h; y++) {
        unsigned char *row = raw + (size_t)y * (stride + 1);
        int f = row[0];
        unsigned char *px = row + 1;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bpp ? px[i - (size_t)bpp] : 0;
            int b = prev ? prev[i] : 0;
            int c = prev && i >= (size_t)bpp ? prev[i - (size_t)bpp] : 0;
            switch (f) {
            case 0: break;
            case 1: px[i] = (unsigned char)(px[i] + a); break;
            case 2: px[i] = (unsigned char)(px[i] + b); break;
            case 3: px[i] = (unsigned char)(px[i] + (a + b) / 2); break;
            case 4: px[i] = (unsigned char)(px[i] + thumb_paeth(a, b, c)); break;
            default: return GQ_ERR_INVALID;
            }
        }
        prev = px;
    }
    return GQ_OK;
}

static gq_status_t thumb_chunk(gq_buf_t *out, const char *type, const unsigned char *data,
                               size_t n) {
    unsigned char head[8], crc[4];
    thumb_put32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    uLong c = crc32(0, head + 4, 4);
    if (n)
        c = crc32(c, data, (uInt)n);
    thumb_put32(crc, (uint32_t)c);
    gq_status_t st = gq_buf_append(out, head, 8);
    if (st == GQ_OK && n)
        st = gq_buf_append(out, data, n);
    return st == GQ_OK ? gq_buf_append(out, crc, 4) : st;
}

gq_status_t gq_thumb_png(const unsigned char *png, size_t len, int max_side, gq_buf_t *out) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 33 || memcmp(png, sig, 8) != 0 || memcmp(png + 12, "IHDR", 4) != 0 || max_side < 1)
        return GQ_ERR_INVALID;
    uint32_t w = thumb_be32(png + 16), h = thumb_be32(png + 20);
    int depth = png[24], ctype = png[25], interlace = png[28];
    int ch = ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 4 ? 2 : ctype == 6 ? 4 : 0;
    if (w == 0 || h == 0 || depth != 8 || ch == 0 || interlace != 0)
        return GQ_ERR_INVALID;
    if ((uint64_t)w * h > THUMB_MAX_PIXELS)
        return GQ_ERR_TOOBIG;
    size_t stride = (size_t)w * (size_t)ch, want = (stride + 1) * h;

    /* The IDAT chunks, in order, until IEND (or fdAT of an APNG's later frames: ignored). */
    size_t zlen = 0;
    unsigned char *z = malloc(len);
    unsigned char *raw = NULL;
    gq_status_t st = GQ_ERR_INVALID;
    if (!z)
        return GQ_ERR_NOMEM;
    for (size_t at = 8; at + 12 <= len;) {
        uint32_t n = thumb_be32(png + at);
        if (n > len - at - 12)
            goto out;
        const unsigned char *type = png + at + 4;
        if (memcmp(type, "IDAT", 4) == 0) {
            memcpy(z + zlen, png + at + 8, n);
            zlen += n;
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        }
        at += 12 + (size_t)n;
    }
    raw = malloc(want);
    if (!raw) {
        st = GQ_ERR_NOMEM;
        goto out;
    }
    uLongf got = (uLongf)want;
    if (zlen == 0 || uncompress(raw, &got, z, (uLong)zlen) != Z_OK || got != want)
        goto out;
    if (thumb_unfilter(raw, h, stride, ch) != GQ_OK)
        goto out;

    /* Box average into tw x th; grey becomes RGB, alpha is kept. */
    uint32_t side = w > h ? w : h;
    uint32_t tw = w, th = h;
    if (side > (uint32_t)max_side) {
        tw = (uint32_t)((uint64_t)w * (uint32_t)max_side / side);
        th = (uint32_t)((uint64_t)h * (uint32_t)max_side / side);
        tw = tw ? tw : 1;
        th = th ? th : 1;
    }
    int och = ch == 2 || ch == 4 ? 4 : 3;
    size_t ostride = (size_t)tw * (size_t)och;
    unsigned char *orow = malloc((ostride + 1) * th);
    if (!orow) {
        st = GQ_ERR_NOMEM;
        goto out;
    }
    for (uint32_t ty = 0; ty < th; ty++) {
        uint32_t y0 = (uint32_t)((uint64_t)ty * h / th),
                 y1 = (uint32_t)((uint64_t)(ty + 1) * h / th);
        unsigned char *o = orow + (size_t)ty * (ostride + 1);
        *o++ = 0;
        for (uint32_t tx = 0; tx < tw; tx++) {
            uint32_t x0 = (uint32_t)((uint64_t)tx * w / tw),
                     x1 = (uint32_t)((uint64_t)(tx + 1) * w / tw);
            uint64_t sum[4] = {0, 0, 0, 0}, cnt = 0;
            for (uint32_t y = y0; y < (y1 > y0 ? y1 : y0 + 1); y++)
                for (uint32_t x = x0; x < (x1 > x0 ? x1 : x0 + 1); x++) {
                    const unsigned char *p = raw + (size_t)y * (stride + 1) + 1 + (size_t)x * ch;
                    if (ch <= 2) {
                        sum[0] += p[0];
                        sum[1] += p[0];
                        sum[2] += p[0];
                        if (ch == 2)
                            sum[3] += p[1];
                    } else {
                        for (int k = 0; k < ch; k++)
                            sum[k] += p[k];
                    }
                    cnt++;
                }
            for (int k = 0; k < och; k++)
                *o++ = (unsigned char)(sum[k] / cnt);
        }
    }
    uLongf zcap = compressBound((uLong)((ostride + 1) * th));
    unsigned char *zo = malloc(zcap);
    if (!zo) {
        free(orow);
        st = GQ_ERR_NOMEM;
        goto out;
    }
    if (compress2(zo, &zcap, orow, (uLong)((ostride + 1) * th), 6) != Z_OK) {
        free(orow);
        free(zo);
        st = GQ_ERR;
        goto out;
    }
    unsigned char ihdr[13];
    thumb_put32(ihdr, tw);
    thumb_put32(ihdr + 4, th);
    ihdr[8] = 8;
    ihdr[9] = och == 4 ? 6 : 2;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    gq_buf_reset(out);
    st = gq_buf_append(out, sig, 8);
    if (st == GQ_OK)
        st = thumb_chunk(out, "IHDR", ihdr, sizeof(ihdr));
    if (st == GQ_OK)
        st = thumb_chunk(out, "IDAT", zo, zcap);
    if (st == GQ_OK)
        st = thumb_chunk(out, "IEND", NULL, 0);
    free(orow);
    free(zo);
out:
    free(z);
    free(raw);
    return st;
}
