/**
 * @file media.c
 * @brief Media types by content (see media.h).
 *
 * Every reader is bounded by the buffer it is given and gives up (type known, size 0)
 * rather than guess: a truncated or hostile file costs nothing but its dimensions. The
 * formats are those ComfyUI's saving nodes write (PNG, APNG, WebP, GIF, WebM, MP4, FLAC,
 * WAV, MP3, Opus) and a few common neighbours.
 */
#include "media.h"

#include <limits.h>
#include <string.h>

static uint32_t media_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint32_t media_be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t media_le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t media_le24(const unsigned char *p) { return media_le16(p) | (uint32_t)p[2] << 16; }

static void media_size(gq_media_t *m, uint32_t w, uint32_t h) {
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX)
        return;
    m->width = (int32_t)w;
    m->height = (int32_t)h;
}

gq_status_t gq_png_size(const void *data, size_t len, int32_t *w, int32_t *h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char *p = data;
    /* Signature, then the first chunk, which the PNG spec requires to be IHDR: length (4,
     * always 13), type (4), data (13: width, height, 5 more bytes), CRC (4). A file cut
     * inside that chunk is not a PNG we trust. */
    if (w)
        *w = 0;
    if (h)
        *h = 0;
    if (!p || len < 8 + 4 + 4 + 13 + 4 || memcmp(p, sig, sizeof(sig)) != 0)
        return GQ_ERR_INVALID;
    if (media_be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
        return GQ_ERR_INVALID;
    uint32_t pw = media_be32(p + 16), ph = media_be32(p + 20);
    /* The spec bounds both at 2^31-1; zero is invalid. */
    if (pw == 0 || ph == 0 || pw > INT32_MAX || ph > INT32_MAX)
        return GQ_ERR_INVALID;
    if (w)
        *w = (int32_t)pw;
    if (h)
        *h = (int32_t)ph;
    return GQ_OK;
}

/* An APNG has an acTL chunk before its first IDAT. */
static bool media_png_animated(const unsigned char *p, size_t len) {
    size_t at = 8;
    while (at + 8 <= len) {
        uint32_t n = media_be32(p + at);
        if (memcmp(p + at + 4, "acTL", 4) == 0)
            return true;
        if (memcmp(p + at + 4, "IDAT", 4) == 0 || n > len - at - 8 || len - at - 8 - n < 4)
            return false;
        at += 8 + (size_t)n + 4;
    }
    return false;
}

/* JPEG: the first start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC) has the size. */
static void media_jpeg(gq_media_t *m, const unsigned char *p, size_t len) {
    size_t at = 2;
    while (at + 4 <= len) {
        if (p[at] != 0xff) {
            return;
        }
        unsigned char marker = p[at + 1];
        if (marker == 0xff) {
            at++;
            continue;
        }
        if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
            at += 2;
            continue;
        }
        size_t seg = media_be16(p + at + 2);
        if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 &&
            marker != 0xcc) {
            if (at + 9 <= len)
                media_size(m, media_be16(p + at + 7), media_be16(p + at + 5));
            return;
        }
        if (marker == 0xda || marker == 0xd9 || seg < 2)
            return;
        at += 2 + seg;
    }
}

/* WebP: the first chunk says which kind (VP8 lossy, VP8L lossless, VP8X extended). */
static void media_webp(gq_media_t *m, const unsigned char *p, size_t len) {
    if (len < 30)
        return;
    const unsigned char *c = p + 12, *d = p + 20;
    if (memcmp(c, "VP8X", 4) == 0) {
        m->animated = (d[0] & 0x02) != 0;
        media_size(m, media_le24(d + 4) + 1, media_le24(d + 7) + 1);
    } else if (memcmp(c, "VP8L", 4) == 0 && d[0] == 0x2f) {
        uint32_t bits =
            (uint32_t)d[1] | (uint32_t)d[2] << 8 | (uint32_t)d[3] << 16 | (uint32_t)d[4] << 24;
        media_size(m, (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
    } else if (memcmp(c, "VP8 ", 4) == 0 && d[3] == 0x9d && d[4] == 0x01 && d[5] == 0x2a) {
        media_size(m, media_le16(d + 6) & 0x3fff, media_le16(d + 8) & 0x3fff);
    }
}

/* GIF: the logical screen size; animated when a second image descriptor follows an
 * extension block (a cheap look for NETSCAPE2.0 looping or several frames). */
static void media_gif(gq_media_t *m, const unsigned char *p, size_t len) {
    if (len < 10)
        return;
    media_size(m, media_le16(p + 6), media_le16(p + 8));
    static const char loop[] = "NETSCAPE2.0";
    m->animated = memmem(p, len, loop, sizeof(loop) - 1) != NULL;
}

/* ---- ISO base media (MP4, MOV, AVIF): boxes of 32-bit size and type ---- */

/* Finds the first box of `type` in [p, p+len); *body and *body_len: its contents. */
static bool media_box(const unsigned char *p, size_t len, const char *type,
                      const unsigned char **body, size_t *body_len) {
    size_t at = 0;
    while (at + 8 <= len) {
        uint64_t size = media_be32(p + at);
        size_t head = 8;
        if (size == 1) {
            if (at + 16 > len)
                return false;
            size = (uint64_t)media_be32(p + at + 8) << 32 | media_be32(p + at + 12);
            head = 16;
        } else if (size == 0) {
            size = len - at;
        }
        if (size < head || size > len - at)
            return false;
        if (memcmp(p + at + 4, type, 4) == 0) {
            *body = p + at + head;
            *body_len = (size_t)size - head;
            return true;
        }
        at += (size_t)size;
    }
    return false;
}

/* The first track with a picture size (tkhd width/height, 16.16 fixed point). */
static void media_mp4_size(gq_media_t *m, const unsigned char *p, size_t len) {
    const unsigned char *moov, *trak, *tkhd;
    size_t moov_len, trak_len, tkhd_len;
    if (!media_box(p, len, "moov", &moov, &moov_len))
        return;
    while (media_box(moov, moov_len, "trak", &trak, &trak_len)) {
        if (media_box(trak, trak_len, "tkhd", &tkhd, &tkhd_len) && tkhd_len >= 84) {
            size_t off = tkhd[0] == 1 ? 88 : 76;
            if (tkhd_len >= off + 8) {
                uint32_t w = media_be32(tkhd + off) >> 16, h = media_be32(tkhd + off + 4) >> 16;
                if (w && h) {
                    media_size(m, w, h);
                    return;
                }
            }
        }
        /* On to the next trak: past this one. */
        size_t used = (size_t)(trak + trak_len - moov);
        moov += used;
        moov_len -= used;
    }
}

static void media_iso(gq_media_t *m, const unsigned char *p, size_t len) {
    const unsigned char *brand = p + 8;
    if (memcmp(brand, "avif", 4) == 0 || memcmp(brand, "avis", 4) == 0) {
        *m = (gq_media_t){"avif", "image/avif", 0, 0, memcmp(brand, "avis", 4) == 0};
        return;
    }
    if (memcmp(brand, "heic", 4) == 0 || memcmp(brand, "heix", 4) == 0) {
        *m = (gq_media_t){"heic", "image/heic", 0, 0, false};
        return;
    }
    if (memcmp(brand, "M4A ", 4) == 0) {
        *m = (gq_media_t){"m4a", "audio/mp4", 0, 0, false};
        return;
    }
    if (memcmp(brand, "qt  ", 4) == 0)
        *m = (gq_media_t){"mov", "video/quicktime", 0, 0, false};
    else
        *m = (gq_media_t){"mp4", "video/mp4", 0, 0, false};
    media_mp4_size(m, p, len);
}

/* ---- Matroska and WebM: EBML elements of variable-length ids and sizes ---- */

/* Reads an EBML variable-length number; keep_marker for ids. 0 bytes read: malformed. */
static size_t media_vint(const unsigned char *p, size_t len, bool keep_marker, uint64_t *v,
                         bool *unknown) {
    if (len == 0 || p[0] == 0)
        return 0;
    size_t n = 1;
    while (!(p[0] & (0x80 >> (n - 1))))
        n++;
    if (n > 8 || n > len)
        return 0;
    uint64_t x = keep_marker ? p[0] : (p[0] & (0xffu >> n));
    bool all_ones = (x == (0xffu >> n));
    for (size_t i = 1; i < n; i++) {
        x = x << 8 | p[i];
        all_ones = all_ones && p[i] == 0xff;
    }
    *v = x;
    if (unknown)
        *unknown = !keep_marker && all_ones;
    return n;
}

#define EBML_SEGMENT 0x18538067u
#define EBML_TRACKS 0x1654AE6Bu
#define EBML_TRACK_ENTRY 0xAEu
#define EBML_VIDEO 0xE0u
#define EBML_PIXEL_WIDTH 0xB0u
#define EBML_PIXEL_HEIGHT 0xBAu
#define EBML_DOCTYPE 0x4282u

/* Walks the elements of [p, p+len), descending into the ones on the way to the video's
 * pixel size; depth bounds the recursion. */
static void media_ebml_walk(gq_media_t *m, const unsigned char *p, size_t len, int depth,
                            uint32_t *w, uint32_t *h) {
    size_t at = 0;
    while (at < len && depth < 6 && !(*w && *h)) {
        uint64_t id, size;
        bool unknown;
        size_t a = media_vint(p + at, len - at, true, &id, NULL);
        size_t b = a ? media_vint(p + at + a, len - at - a, false, &size, &unknown) : 0;
        if (!a || !b)
            return;
        at += a + b;
        size_t body = unknown || size > len - at ? len - at : (size_t)size;
        if (id == EBML_SEGMENT || id == EBML_TRACKS || id == EBML_TRACK_ENTRY || id == EBML_VIDEO) {
            media_ebml_walk(m, p + at, body, depth + 1, w, h);
        } else if ((id == EBML_PIXEL_WIDTH || id == EBML_PIXEL_HEIGHT) && body >= 1 && body <= 4) {
            uint32_t v = 0;
            for (size_t i = 0; i < body; i++)
                v = v << 8 | p[at + i];
            *(id == EBML_PIXEL_WIDTH ? w : h) = v;
        }
        at += body;
    }
}

static void media_matroska(gq_media_t *m, const unsigned char *p, size_t len) {
    uint64_t id, size;
    size_t a = media_vint(p, len, true, &id, NULL);
    size_t b = a ? media_vint(p + a, len - a, false, &size, NULL) : 0;
    bool webm = false;
    if (a && b && size <= len - a - b) {
        /* The EBML header's DocType says webm or matroska. */
        static const unsigned char doctype[] = {0x42, 0x82};
        const unsigned char *hd = p + a + b;
        const unsigned char *dt = memmem(hd, (size_t)size, doctype, sizeof(doctype));
        webm = dt && (size_t)(hd + size - dt) > 7 && memcmp(dt + 3, "webm", 4) == 0;
    }
    *m = webm ? (gq_media_t){"webm", "video/webm", 0, 0, false}
              : (gq_media_t){"mkv", "video/x-matroska", 0, 0, false};
    if (!a || !b)
        return;
    uint32_t w = 0, h = 0;
    media_ebml_walk(m, p, len, 0, &w, &h);
    media_size(m, w, h);
}

/* ---- Ogg: the first page's payload names the codec ---- */

static void media_ogg(gq_media_t *m, const unsigned char *p, size_t len) {
    *m = (gq_media_t){"ogg", "audio/ogg", 0, 0, false};
    if (len < 27)
        return;
    size_t segs = p[26], at = 27 + segs;
    if (at + 8 > len)
        return;
    if (memcmp(p + at, "OpusHead", 8) == 0)
        *m = (gq_media_t){"opus", "audio/ogg", 0, 0, false};
    else if (memcmp(p + at, "\x80theora", 7) == 0)
        *m = (gq_media_t){"ogv", "video/ogg", 0, 0, false};
}

/* MPEG audio frame sync: 11 set bits, a layer (not 00, which is ADTS AAC's). */
static bool media_mpeg_audio(const unsigned char *p, size_t len) {
    return len >= 4 && p[0] == 0xff && (p[1] & 0xe0) == 0xe0 && ((p[1] >> 1) & 3) != 0 &&
           ((p[2] >> 4) & 0xf) != 0xf;
}

void gq_media_detect(const void *data, size_t len, gq_media_t *out) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const unsigned char *p = data;
    *out = (gq_media_t){"bin", "application/octet-stream", 0, 0, false};
    if (!p)
        return;
    if (len >= sizeof(png) && memcmp(p, png, sizeof(png)) == 0) {
        bool anim = media_png_animated(p, len);
        *out = (gq_media_t){"png", anim ? "image/apng" : "image/png", 0, 0, anim};
        gq_png_size(p, len, &out->width, &out->height);
    } else if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
        *out = (gq_media_t){"jpg", "image/jpeg", 0, 0, false};
        media_jpeg(out, p, len);
    } else if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
        *out = (gq_media_t){"webp", "image/webp", 0, 0, false};
        media_webp(out, p, len);
    } else if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WAVE", 4) == 0) {
        *out = (gq_media_t){"wav", "audio/wav", 0, 0, false};
    } else if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) {
        *out = (gq_media_t){"gif", "image/gif", 0, 0, false};
        media_gif(out, p, len);
    } else if (len >= 12 && memcmp(p + 4, "ftyp", 4) == 0) {
        media_iso(out, p, len);
    } else if (len >= 4 && memcmp(p, "\x1a\x45\xdf\xa3", 4) == 0) {
        media_matroska(out, p, len);
    } else if (len >= 4 && memcmp(p, "fLaC", 4) == 0) {
        *out = (gq_media_t){"flac", "audio/flac", 0, 0, false};
    } else if (len >= 4 && memcmp(p, "OggS", 4) == 0) {
        media_ogg(out, p, len);
    } else if ((len >= 3 && memcmp(p, "ID3", 3) == 0) || media_mpeg_audio(p, len)) {
        *out = (gq_media_t){"mp3", "audio/mpeg", 0, 0, false};
    } else if (len >= 4 && p[0] == 0xff && (p[1] & 0xf6) == 0xf0) {
        *out = (gq_media_t){"aac", "audio/aac", 0, 0, false};
    } else if (len >= 12 && memcmp(p, "glTF", 4) == 0) {
        *out = (gq_media_t){"glb", "model/gltf-binary", 0, 0, false};
    } else if (len >= 26 && p[0] == 'B' && p[1] == 'M') {
        *out = (gq_media_t){"bmp", "image/bmp", 0, 0, false};
        int32_t h = (int32_t)(media_le16(p + 22) | media_le16(p + 24) << 16);
        media_size(out, media_le16(p + 18) | media_le16(p + 20) << 16,
                   (uint32_t)(h < 0 ? -(int64_t)h : h));
    } else if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) {
        *out = (gq_media_t){"tiff", "image/tiff", 0, 0, false};
    }
}
