/* Unit tests of consumers/report/thumb.c: PNG thumbnails (decode every filter type, scale by
 * box averages, encode) and its refusals of what it cannot or must not read. */
#include "report/thumb.h"

#include "check.h"

#include <stdint.h>
#include <zlib.h>

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void chunk(gq_buf_t *b, const char *type, const unsigned char *d, size_t n) {
    unsigned char h[8], c[4];
    put32(h, (uint32_t)n);
    memcpy(h + 4, type, 4);
    uLong crc = crc32(crc32(0, h + 4, 4), d, (uInt)n);
    put32(c, (uint32_t)crc);
    gq_buf_append(b, h, 8);
    gq_buf_append(b, d, n);
    gq_buf_append(b, c, 4);
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* A w x h picture, pixel (x, y) = (x, y, 7[, 200]), rows filtered with types 0..4 in turn. */
static void make_png(gq_buf_t *b, uint32_t w, uint32_t h, int ch, int depth, int interlace) {
    size_t stride = (size_t)w * (size_t)ch;
    unsigned char *img = calloc(h, stride), *raw = calloc(h, stride + 1);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            unsigned char px[4] = {(unsigned char)x, (unsigned char)y, 7, 200};
            memcpy(img + y * stride + x * (size_t)ch, px, (size_t)ch);
        }
    for (uint32_t y = 0; y < h; y++) {
        int f = (int)(y % 5);
        unsigned char *r = raw + y * (stride + 1), *cur = img + y * stride;
        unsigned char *prev = y ? img + (y - 1) * stride : NULL;
        r[0] = (unsigned char)f;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)ch ? cur[i - (size_t)ch] : 0, bb = prev ? prev[i] : 0,
                c = prev && i >= (size_t)ch ? prev[i - (size_t)ch] : 0;
            int pred = f == 0   ? 0
                       : f == 1 ? a
                       : f == 2 ? bb
                       : f == 3 ? (a + bb) / 2
                                : paeth(a, bb, c);
            r[1 + i] = (unsigned char)(cur[i] - pred);
        }
    }
    uLongf zn = compressBound((uLong)(h * (stride + 1)));
    unsigned char *z = malloc(zn);
    compress2(z, &zn, raw, (uLong)(h * (stride + 1)), 9);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13];
    put32(ihdr, w);
    put32(ihdr + 4, h);
    ihdr[8] = (unsigned char)depth;
    ihdr[9] = ch == 3 ? 2 : ch == 4 ? 6 : ch == 1 ? 0 : 4;
    ihdr[10] = ihdr[11] = 0;
    ihdr[12] = (unsigned char)interlace;
    gq_buf_append(b, sig, 8);
    chunk(b, "IHDR", ihdr, 13);
    /* two IDAT chunks: the decoder must join them */
    chunk(b, "IDAT", z, zn / 2);
    chunk(b, "IDAT", z + zn / 2, zn - zn / 2);
    chunk(b, "IEND", NULL, 0);
    free(img);
    free(raw);
    free(z);
}

/* Decodes genq's own thumbnails (filter 0 rows only) to check their pixels. */
static unsigned char *decode(const gq_buf_t *b, uint32_t *w, uint32_t *h, int *ch) {
    const unsigned char *p = (const unsigned char *)b->data;
    *w = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
    *h = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
    *ch = p[25] == 6 ? 4 : 3;
    uint32_t n = (uint32_t)p[33] << 24 | (uint32_t)p[34] << 16 | (uint32_t)p[35] << 8 | p[36];
    CHECK(memcmp(p + 37, "IDAT", 4) == 0);
    uLongf out = (uLongf)(*h * (*w * (uint32_t)*ch + 1));
    unsigned char *raw = malloc(out);
    CHECK_INT(uncompress(raw, &out, p + 41, n), Z_OK);
    return raw;
}

static void test_scale(int ch) {
    gq_buf_t in, out;
    gq_buf_init(&in, 1 << 24);
    gq_buf_init(&out, 1 << 24);
    make_png(&in, 200, 100, ch, 8, 0);
    CHECK_INT(gq_thumb_png((const unsigned char *)in.data, in.len, 50, &out), GQ_OK);
    uint32_t w, h;
    int och;
    unsigned char *raw = decode(&out, &w, &h, &och);
    CHECK_INT(w, 50);
    CHECK_INT(h, 25);
    CHECK_INT(och, ch == 3 ? 3 : 4);
    /* (tx, ty) averages x in [4tx, 4tx+4), y in [4ty, 4ty+4): (4tx+1.5, 4ty+1.5, 7) */
    int bad = 0;
    for (uint32_t ty = 0; ty < h; ty++)
        for (uint32_t tx = 0; tx < w; tx++) {
            const unsigned char *px = raw + ty * (w * (uint32_t)och + 1) + 1 + tx * (uint32_t)och;
            unsigned ax = (4 * tx * 4 + 6) / 4, ay = (4 * ty * 4 + 6) / 4;
            if (ch == 2 ? (px[0] != ax || px[1] != ax || px[2] != ax || px[3] != ay)
                        : (px[0] != ax || px[1] != ay || px[2] != 7 || (och == 4 && px[3] != 200)))
                bad++;
        }
    CHECK_INT(bad, 0);
    free(raw);
    /* Never enlarged: a picture already small keeps its size. */
    CHECK_INT(gq_thumb_png((const unsigned char *)in.data, in.len, 400, &out), GQ_OK);
    raw = decode(&out, &w, &h, &och);
    CHECK_INT(w, 200);
    CHECK_INT(h, 100);
    CHECK_INT(raw[1 + 3 * och], 3); /* pixel (3, 0) keeps x = 3 */
    free(raw);
    gq_buf_release(&in);
    gq_buf_release(&out);
}

static void test_refusals(void) {
    gq_buf_t in, out;
    gq_buf_init(&in, 1 << 22);
    gq_buf_init(&out, 1 << 22);
    make_png(&in, 40, 30, 3, 16, 0);
    CHECK_INT(gq_thumb_png((const unsigned char *)in.data, in.len, 10, &out), GQ_ERR_INVALID);
    gq_buf_reset(&in);
    make_png(&in, 40, 30, 3, 8, 1);
    CHECK_INT(gq_thumb_png((const unsigned char *)in.data, in.len, 10, &out), GQ_ERR_INVALID);
    gq_buf_reset(&in);
    make_png(&in, 40, 30, 3, 8, 0);
    /* every truncation of the data fails cleanly (without IEND the data is still whole) */
    int ok = 0;
    for (size_t n = 0; n < in.len - 12; n++)
        if (gq_thumb_png((const unsigned char *)in.data, n, 10, &out) == GQ_OK)
            ok++;
    CHECK_INT(ok, 0);
    /* a picture claiming 100000 x 100000 pixels is refused before anything is allocated */
    unsigned char *big = (unsigned char *)in.data;
    put32(big + 16, 100000);
    put32(big + 20, 100000);
    CHECK_INT(gq_thumb_png(big, in.len, 10, &out), GQ_ERR_TOOBIG);
    CHECK_INT(gq_thumb_png((const unsigned char *)"GIF89a", 6, 10, &out), GQ_ERR_INVALID);
    gq_buf_release(&in);
    gq_buf_release(&out);
}

int main(void) {
    test_scale(3);
    test_scale(4);
    test_scale(1 + 1); /* grey + alpha */
    test_refusals();
    return CHECK_DONE("test_thumb");
}
