/*
 * genq report: the page (see report.h). Two parameterized queries read the jobs of the range
 * and the outputs to show; everything else (percentiles, buckets, plots) is computed here and
 * drawn as inline SVG. The page has no script and loads nothing from a network but the
 * presigned links of S3 outputs.
 */
#include "report.h"

#include "log.h"
#include "media.h"
#include "s3.h"
#include "thumb.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REP_JOBS_MAX 200000 /* jobs read for the statistics */
#define REP_TABLE_MAX 500   /* jobs listed in the table */
#define REP_MODELS_MAX 32   /* models plotted (the busiest) */
#define REP_REASONS_MAX 20
#define REP_BUCKETS 48
#define REP_THUMB_SIDE 200 /* px: the sheet shows 150 px; a PNG of noise does not shrink much */
#define REP_THUMB_READ_MAX (64 << 20) /* a larger PNG is linked, not read */

gq_status_t gq_report_esc(gq_buf_t *b, const char *s) {
    gq_status_t st = GQ_OK;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && st == GQ_OK; p++) {
        switch (*p) {
        case '&': st = gq_buf_appends(b, "&amp;"); break;
        case '<': st = gq_buf_appends(b, "&lt;"); break;
        case '>': st = gq_buf_appends(b, "&gt;"); break;
        case '"': st = gq_buf_appends(b, "&quot;"); break;
        case '\'': st = gq_buf_appends(b, "&#39;"); break;
        default:
            if (*p < 0x20 && *p != '\n' && *p != '\t')
                break; /* control characters have no place in a page */
            st = gq_buf_append(b, p, 1);
        }
    }
    return st;
}

gq_status_t gq_report_base64(gq_buf_t *b, const unsigned char *p, size_t len) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o;
    gq_status_t st = gq_buf_extend(b, (len + 2) / 3 * 4, &o);
    if (st != GQ_OK)
        return st;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return GQ_OK;
}

/* ---- small helpers ---- */

static void rep_time(int64_t ms, char *out, size_t out_size) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, out_size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static int rep_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v (nearest rank, interpolated). */
static double rep_quantile(const int64_t *v, size_t n, double q) {
    if (n == 0)
        return 0;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? (double)v[i] * (1 - f) + (double)v[i + 1] * f : (double)v[i];
}

/* A round step for about `n` ticks up to max. */
static double rep_step(double max, int n) {
    if (max <= 0)
        return 1;
    double raw = max / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void rep_fmt_s(double ms, char *out, size_t n) {
    double s = ms / 1000.0;
    if (s < 10)
        snprintf(out, n, "%.2f s", s);
    else if (s < 120)
        snprintf(out, n, "%.1f s", s);
    else
        snprintf(out, n, "%.1f min", s / 60);
}

/* ---- the data ---- */

typedef struct rep_group {
    char name[160];
    int64_t *v; /* durations in ms */
    size_t n, cap;
    int64_t count; /* for failures by reason */
    char example[200];
} rep_group_t;

typedef struct rep_groups {
    rep_group_t g[64];
    size_t n;
} rep_groups_t;

static rep_group_t *rep_group(rep_groups_t *gs, const char *name) {
    for (size_t i = 0; i < gs->n; i++)
        if (strcmp(gs->g[i].name, name) == 0)
            return &gs->g[i];
    if (gs->n == GQ_ARRAY_LEN(gs->g))
        return NULL;
    rep_group_t *g = &gs->g[gs->n++];
    memset(g, 0, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "%s", name);
    return g;
}

static gq_status_t rep_group_add(rep_group_t *g, int64_t v) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        int64_t *nv = realloc(g->v, cap * sizeof(*nv));
        if (!nv)
            return GQ_ERR_NOMEM;
        g->v = nv;
        g->cap = cap;
    }
    g->v[g->n++] = v;
    return GQ_OK;
}

static void rep_groups_release(rep_groups_t *gs) {
    for (size_t i = 0; i < gs->n; i++)
        free(gs->g[i].v);
    gs->n = 0;
}

static int rep_cmp_group_n(const void *a, const void *b) {
    const rep_group_t *x = a, *y = b;
    int64_t nx = x->count ? x->count : (int64_t)x->n, ny = y->count ? y->count : (int64_t)y->n;
    return nx < ny ? 1 : nx > ny ? -1 : strcmp(x->name, y->name);
}

/* ---- SVG plots ---- */

static const char *const rep_colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                         "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

/* Horizontal box plots, one row per group: whiskers p5..p95, box p25..p75, the median, and
 * every value as a faint dot when there are few. */
static void rep_plot_box(gq_buf_t *b, const char *title, rep_groups_t *gs) {
    const int W = 820, left = 230, right = 30, top = 30, row = 38;
    size_t n = gs->n < REP_MODELS_MAX ? gs->n : REP_MODELS_MAX;
    int H = top + (int)n * row + 40;
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        rep_group_t *g = &gs->g[i];
        qsort(g->v, g->n, sizeof(*g->v), rep_cmp_i64);
        double p = rep_quantile(g->v, g->n, g->n > 20 ? 0.99 : 1.0);
        if (p > max)
            max = p;
    }
    double step = rep_step(max, 6), xmax = ceil(max / step) * step;
    if (xmax <= 0)
        xmax = 1;
    double sx = (W - left - right) / xmax;
    gq_buf_appendf(
        b, "<svg class=\"plot\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">", W,
        H, W, H);
    gq_buf_appends(b, "<title>");
    gq_report_esc(b, title);
    gq_buf_appends(b, "</title>");
    for (double t = 0; t <= xmax + step / 2; t += step) {
        char lab[32];
        rep_fmt_s(t, lab, sizeof(lab));
        double x = left + t * sx;
        gq_buf_appendf(b,
                       "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>"
                       "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>",
                       x, top - 8, x, H - 30, x, H - 12, lab);
    }
    for (size_t i = 0; i < n; i++) {
        rep_group_t *g = &gs->g[i];
        double y = top + (double)i * row + row / 2.0;
        const char *c = rep_colors[i % GQ_ARRAY_LEN(rep_colors)];
        double p5 = rep_quantile(g->v, g->n, 0.05), p25 = rep_quantile(g->v, g->n, 0.25),
               p50 = rep_quantile(g->v, g->n, 0.5), p75 = rep_quantile(g->v, g->n, 0.75),
               p95 = rep_quantile(g->v, g->n, 0.95);
        char s50[32], s95[32];
        rep_fmt_s(p50, s50, sizeof(s50));
        rep_fmt_s(p95, s95, sizeof(s95));
        gq_buf_appendf(b, "<g><title>");
        gq_report_esc(b, g->name);
        gq_buf_appendf(b, ": %zu jobs, median %s, p95 %s</title>", g->n, s50, s95);
        gq_buf_appendf(b, "<text x=\"%d\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">",
                       left - 8, y + 4);
        gq_report_esc(b, g->name);
        gq_buf_appendf(b, " (%zu)</text>", g->n);
        if (g->n <= 400)
            for (size_t k = 0; k < g->n; k++)
                gq_buf_appendf(
                    b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\" opacity=\"0.35\"/>",
                    left + (double)g->v[k] * sx, y + 11 + (double)(k % 5) - 2, c);
        gq_buf_appendf(b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                       "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" fill=\"%s\" "
                       "fill-opacity=\"0.35\" stroke=\"%s\"/>"
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\" "
                       "stroke-width=\"2\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">%s · p95 %s</text></g>",
                       left + p5 * sx, y - 3, left + p95 * sx, y - 3, c, left + p25 * sx, y - 10,
                       fmax((p75 - p25) * sx, 1), c, c, left + p50 * sx, y - 11, left + p50 * sx,
                       y + 5, fmin(left + p95 * sx + 6, W - 150.0), y - 14, s50, s95);
    }
    gq_buf_appends(b, "</svg>");
}

typedef struct rep_bucket {
    int64_t ok, failed;
} rep_bucket_t;

/* Jobs finished per time bucket, stacked: succeeded under failed. */
static void rep_plot_time(gq_buf_t *b, const rep_bucket_t *bk, int nb, int64_t t0,
                          int64_t width_ms) {
    const int W = 820, left = 60, right = 20, top = 20, H = 240, bottom = 40;
    int64_t max = 0;
    for (int i = 0; i < nb; i++)
        if (bk[i].ok + bk[i].failed > max)
            max = bk[i].ok + bk[i].failed;
    double step = rep_step((double)max, 4), ymax = ceil((double)max / step) * step;
    if (ymax <= 0)
        ymax = 1;
    double sy = (H - top - bottom) / ymax, bw = (double)(W - left - right) / nb;
    gq_buf_appendf(
        b,
        "<svg class=\"plot\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">"
        "<title>jobs finished per %lld s</title>",
        W, H, W, H, (long long)(width_ms / 1000));
    for (double t = 0; t <= ymax + step / 2; t += step) {
        double y = H - bottom - t * sy;
        gq_buf_appendf(b,
                       "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
                       "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%g</text>",
                       left, y, W - right, y, left - 6, y + 4, t);
    }
    for (int i = 0; i < nb; i++) {
        double x = left + i * bw;
        double hok = (double)bk[i].ok * sy, hf = (double)bk[i].failed * sy;
        char when[40];
        rep_time(t0 + i * width_ms, when, sizeof(when));
        gq_buf_appendf(
            b,
            "<g><title>%s: %lld succeeded, %lld failed</title>"
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#59a14f\"/>"
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#e15759\"/></g>",
            when, (long long)bk[i].ok, (long long)bk[i].failed, x + 1, H - bottom - hok,
            fmax(bw - 2, 1), hok, x + 1, H - bottom - hok - hf, fmax(bw - 2, 1), hf);
        if (i % (nb / 6 > 0 ? nb / 6 : 1) == 0)
            gq_buf_appendf(b, "<text x=\"%.1f\" y=\"%d\" class=\"tick\">%.11s</text>", x, H - 20,
                           when + 5);
    }
    gq_buf_appendf(b,
                   "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#59a14f\"/>"
                   "<text x=\"%d\" y=\"%d\" class=\"tick\">succeeded</text>"
                   "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#e15759\"/>"
                   "<text x=\"%d\" y=\"%d\" class=\"tick\">failed</text></svg>",
                   W - 200, H - 12, W - 186, H - 3, W - 110, H - 12, W - 96, H - 3);
}

/* Failures by reason, as horizontal bars. */
static void rep_plot_reasons(gq_buf_t *b, rep_groups_t *gs) {
    const int W = 820, left = 230, right = 60, row = 26, top = 10;
    size_t n = gs->n < REP_REASONS_MAX ? gs->n : REP_REASONS_MAX;
    int H = top + (int)n * row + 10;
    int64_t max = 1;
    for (size_t i = 0; i < n; i++)
        if (gs->g[i].count > max)
            max = gs->g[i].count;
    double sx = (double)(W - left - right) / (double)max;
    gq_buf_appendf(
        b,
        "<svg class=\"plot\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">"
        "<title>failures by reason</title>",
        W, H, W, H);
    for (size_t i = 0; i < n; i++) {
        rep_group_t *g = &gs->g[i];
        double y = top + (double)i * row;
        gq_buf_appendf(b, "<g><title>");
        gq_report_esc(b, g->name);
        gq_buf_appends(b, ": ");
        gq_report_esc(b, g->example);
        gq_buf_appendf(b, "</title><text x=\"%d\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">",
                       left - 8, y + 15);
        gq_report_esc(b, g->name);
        gq_buf_appendf(
            b,
            "</text><rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"#e15759\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">%lld</text></g>",
            left, y + 2, fmax((double)g->count * sx, 1), left + (double)g->count * sx + 6, y + 15,
            (long long)g->count);
    }
    gq_buf_appends(b, "</svg>");
}

/* ---- outputs ---- */

static bool rep_mime_image(const char *mime) {
    static const char *const ok[] = {"image/png", "image/apng", "image/jpeg", "image/webp",
                                     "image/gif"};
    for (size_t i = 0; mime && i < GQ_ARRAY_LEN(ok); i++)
        if (strcmp(mime, ok[i]) == 0)
            return true;
    return false;
}

/* A recorded file URI, taken only when it has the store's shape: an absolute path without
 * "." or ".." segments, ending in <sha256>.<ext> with the recorded sha256. */
static bool rep_file_path(const char *uri, const char *sha, char *path, size_t path_size) {
    if (strncmp(uri, "file://", 7) != 0 || uri[7] != '/')
        return false;
    const char *p = uri + 7;
    if (strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") || strlen(p) >= path_size)
        return false;
    const char *base = strrchr(p, '/') + 1;
    if (strlen(sha) != 64 || strncmp(base, sha, 64) != 0 || base[64] != '.')
        return false;
    for (const char *e = base + 65; *e; e++)
        if (!((*e >= 'a' && *e <= 'z') || (*e >= '0' && *e <= '9')))
            return false;
    snprintf(path, path_size, "%s", p);
    return true;
}

/* Reads a stored file into a new buffer when it is a regular file (not a link) of at most
 * max bytes whose sha256 is the recorded one. */
static unsigned char *rep_read_file(const char *path, const char *sha, int64_t max, size_t *len) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    unsigned char *data = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= max &&
        (data = malloc((size_t)sb.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)sb.st_size) {
            ssize_t n = read(fd, data + got, (size_t)sb.st_size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        char hex[65];
        gq_sha256_hex(data, got, hex);
        if (got != (size_t)sb.st_size || strcmp(hex, sha) != 0) {
            free(data);
            data = NULL;
        }
        *len = got;
    }
    close(fd);
    return data;
}

/* The src (and href) of an output: embedded, linked, or none (*src empty). */
static void rep_output_src(const gq_report_opts_t *o, const char *uri, const char *sha,
                           const char *mime, gq_buf_t *src, char *href, size_t href_size,
                           gq_report_stats_t *st) {
    gq_buf_reset(src);
    href[0] = '\0';
    char path[1200];
    if (strncmp(uri, "file://", 7) == 0 && rep_file_path(uri, sha, path, sizeof(path))) {
        snprintf(href, href_size, "%s", uri);
        size_t len = 0;
        bool png = strcmp(mime, "image/png") == 0 || strcmp(mime, "image/apng") == 0;
        int64_t max = png && o->embed_max > 0 ? REP_THUMB_READ_MAX : o->embed_max;
        unsigned char *data = rep_mime_image(mime) ? rep_read_file(path, sha, max, &len) : NULL;
        if (data && png) {
            /* A thumbnail keeps the page small; one already small is embedded as it is. */
            gq_buf_t t;
            gq_buf_init(&t, (size_t)o->embed_max + 1);
            int32_t w = 0, h = 0;
            gq_png_size(data, len, &w, &h);
            if ((w > 2 * REP_THUMB_SIDE || h > 2 * REP_THUMB_SIDE || (int64_t)len > o->embed_max) &&
                gq_thumb_png(data, len, REP_THUMB_SIDE, &t) == GQ_OK) {
                free(data);
                data = (unsigned char *)gq_buf_detach(&t, &len);
                mime = "image/png";
            }
            gq_buf_release(&t);
        }
        if (data && (int64_t)len <= o->embed_max) {
            gq_buf_appendf(src, "data:%s;base64,",
                           strcmp(mime, "image/apng") == 0 ? "image/png" : mime);
            gq_report_base64(src, data, len);
            free(data);
            st->embedded++;
            return;
        }
        free(data);
        if (rep_mime_image(mime) && access(path, R_OK) == 0) {
            gq_buf_appends(src, uri);
            st->linked++;
        }
        return;
    }
    if (strncmp(uri, "s3://", 5) == 0 && o->s3) {
        char url[4096], err[256];
        if (gq_s3_presign(o->s3, uri, o->presign_s, url, sizeof(url), err, sizeof(err)) == GQ_OK) {
            snprintf(href, href_size, "%s", url);
            if (rep_mime_image(mime)) {
                gq_buf_appends(src, url);
                st->linked++;
            }
        }
        return;
    }
    if (strncmp(uri, "https://", 8) == 0 || strncmp(uri, "http://", 7) == 0) {
        snprintf(href, href_size, "%s", uri);
        if (rep_mime_image(mime)) {
            gq_buf_appends(src, uri);
            st->linked++;
        }
    }
}

/* ---- the page ---- */

static const char rep_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;"
    "padding:0 16px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #ddd;padding-bottom:4px}.meta{color:#666}.cards{display:flex;"
    "gap:12px;flex-wrap:wrap;margin:14px 0}.card{border:1px solid #ddd;border-radius:6px;"
    "padding:8px 14px}.card b{display:block;font-size:20px}.sheet{display:grid;grid-template-"
    "columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}figure{margin:0;border:1px solid "
    "#ddd;border-radius:6px;padding:6px;background:#fafafa}figure img{width:100%;height:138px;"
    "object-fit:contain;background:#eee;display:block}figure .none{height:138px;display:flex;"
    "align-items:center;justify-content:center;background:#eee;color:#666;font-size:12px}"
    "figcaption{font-size:11px;color:#444;overflow:hidden;max-height:4.2em;word-break:break-"
    "word}svg.plot{max-width:100%;height:auto}svg .grid{stroke:#e3e3e3}svg .tick{font-size:11px;"
    "fill:#555}svg .label{font-size:12px;fill:#222}table{border-collapse:collapse;width:100%;"
    "font-size:12px}td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;"
    "vertical-align:top}tr:target{background:#fff3c4}.failed{color:#b3261e}.ok{color:#2e7d32}"
    "code{font-size:11px}";

static void rep_head(gq_buf_t *b, const gq_report_opts_t *o) {
    char a[40], z[40], now[40];
    rep_time(o->since_ms, a, sizeof(a));
    rep_time(o->until_ms, z, sizeof(z));
    rep_time(o->now_ms, now, sizeof(now));
    gq_buf_appends(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<title>genq report ");
    gq_buf_appendf(b, "%s to %s</title><style>%s</style></head><body>\n", a, z, rep_css);
    gq_buf_appendf(b, "<h1>genq report</h1><p class=\"meta\">Jobs finished from %s to %s", a, z);
    if (o->model) {
        gq_buf_appends(b, ", model <b>");
        gq_report_esc(b, o->model);
        gq_buf_appends(b, "</b>");
    }
    if (o->tenant) {
        gq_buf_appends(b, ", tenant <b>");
        gq_report_esc(b, o->tenant);
        gq_buf_appends(b, "</b>");
    }
    gq_buf_appendf(b, ". Generated %s by genq %s.</p>\n", now, gq_version());
}

/* The filter every query shares: $1 since, $2 until (ms), $3 model, $4 tenant. */
#define REP_WHERE                                                                                  \
    " j.finished_at >= to_timestamp($1::bigint / 1000.0) AND j.finished_at < "                     \
    "to_timestamp($2::bigint / 1000.0) AND j.status IN ('succeeded', 'failed') AND ($3::text IS "  \
    "NULL OR j.model = $3) AND ($4::text IS NULL OR j.source = $4) "

static void rep_params(gq_pg_params_t *p, const gq_report_opts_t *o) {
    gq_pg_params_init(p);
    gq_pg_param_i64(p, o->since_ms);
    gq_pg_param_i64(p, o->until_ms);
    gq_pg_param_str_or_null(p, o->model);
    gq_pg_param_str_or_null(p, o->tenant);
}

static void rep_sheet(gq_buf_t *b, const gq_report_opts_t *o, PGresult *res,
                      gq_report_stats_t *st) {
    int n = PQntuples(res);
    gq_buf_appendf(b,
                   "<h2 id=\"outputs\">Outputs</h2><p class=\"meta\">The latest %d output(s); "
                   "each links to its job below.</p><div class=\"sheet\">\n",
                   n);
    gq_buf_t src;
    gq_buf_init(&src, (size_t)o->embed_max * 2 + 8192);
    char href[4096];
    for (int i = 0; i < n; i++) {
        const char *job = gq_pg_get(res, i, 0), *uri = gq_pg_get(res, i, 1),
                   *sha = gq_pg_get(res, i, 2), *mime = gq_pg_get(res, i, 3),
                   *model = gq_pg_get(res, i, 4), *prompt = gq_pg_get(res, i, 5);
        rep_output_src(o, uri, sha, mime, &src, href, sizeof(href), st);
        st->thumbs++;
        gq_buf_appends(b, "<figure><a href=\"#job-");
        gq_report_esc(b, job);
        gq_buf_appends(b, "\">");
        if (src.len) {
            gq_buf_appends(b, "<img src=\"");
            gq_report_esc(b, src.data);
            gq_buf_appends(b, "\" alt=\"");
            gq_report_esc(b, prompt);
            gq_buf_appends(b, "\">");
        } else {
            st->unshown++;
            gq_buf_appends(b, "<div class=\"none\">");
            gq_report_esc(b, mime);
            gq_buf_appends(b, "</div>");
        }
        gq_buf_appends(b, "</a><figcaption><b>");
        gq_report_esc(b, model);
        gq_buf_appendf(b, "</b> <code>%.8s</code><br>", job);
        char cut[121];
        snprintf(cut, sizeof(cut), "%s", prompt);
        gq_report_esc(b, cut);
        gq_buf_appends(b, "</figcaption></figure>\n");
    }
    gq_buf_appends(b, "</div>\n");
    gq_buf_release(&src);
}

gq_status_t gq_report_build(gq_pg_t *pg, const gq_report_opts_t *o, gq_buf_t *out,
                            gq_report_stats_t *st, char *errstr, size_t errstr_size) {
    memset(st, 0, sizeof(*st));
    gq_pg_params_t p;
    rep_params(&p, o);
    char limit[24];
    snprintf(limit, sizeof(limit), "%d", REP_JOBS_MAX);
    gq_pg_param_str(&p, limit);
    PGresult *jobs = NULL, *outs = NULL;
    gq_status_t s = gq_pg_exec(pg,
                               "SELECT j.job_id, j.status, coalesce(j.model, '(none)'), "
                               "coalesce(j.source, ''), j.queue_ms, j.render_ms, "
                               "(extract(epoch from j.finished_at) * 1000)::bigint, "
                               "coalesce(j.error_code, ''), coalesce(j.error, ''), "
                               "coalesce(j.prompt, ''), j.attempts "
                               "FROM genq.jobs j WHERE" REP_WHERE
                               "ORDER BY j.finished_at DESC LIMIT $5::integer",
                               &p, &jobs, errstr, errstr_size);
    if (s != GQ_OK)
        return s;
    rep_params(&p, o);
    char tmax[24];
    snprintf(tmax, sizeof(tmax), "%d", o->thumbs_max);
    gq_pg_param_str(&p, tmax);
    s = gq_pg_exec(pg,
                   "SELECT o.job_id, o.uri, o.sha256, coalesce(o.mime, ''), coalesce(j.model, ''), "
                   "coalesce(j.prompt, '') FROM genq.job_outputs o JOIN genq.jobs j USING (job_id) "
                   "WHERE" REP_WHERE
                   "ORDER BY j.finished_at DESC, o.job_id, o.idx LIMIT $5::integer",
                   &p, &outs, errstr, errstr_size);
    if (s != GQ_OK) {
        PQclear(jobs);
        return s;
    }

    rep_groups_t *render = calloc(1, sizeof(*render)), *queue = calloc(1, sizeof(*queue)),
                 *reasons = calloc(1, sizeof(*reasons));
    if (!render || !queue || !reasons) {
        s = GQ_ERR_NOMEM;
        gq_errf(errstr, errstr_size, "out of memory");
        goto out;
    }
    int n = PQntuples(jobs);
    int64_t tmin = INT64_MAX, tmax_ms = INT64_MIN;
    for (int i = 0; i < n; i++) {
        bool ok = strcmp(gq_pg_get(jobs, i, 1), "succeeded") == 0;
        const char *model = gq_pg_get(jobs, i, 2);
        st->jobs++;
        if (ok) {
            st->succeeded++;
            rep_group_t *g = rep_group(render, model);
            if (g && !PQgetisnull(jobs, i, 5))
                rep_group_add(g, gq_pg_get_i64(jobs, i, 5, 0));
            g = rep_group(queue, model);
            if (g && !PQgetisnull(jobs, i, 4))
                rep_group_add(g, gq_pg_get_i64(jobs, i, 4, 0));
        } else {
            st->failed++;
            const char *code = gq_pg_get(jobs, i, 7);
            rep_group_t *g = rep_group(reasons, *code ? code : "(no code)");
            if (g && g->count++ == 0)
                snprintf(g->example, sizeof(g->example), "%s", gq_pg_get(jobs, i, 8));
        }
        int64_t t = gq_pg_get_i64(jobs, i, 6, 0);
        tmin = t < tmin ? t : tmin;
        tmax_ms = t > tmax_ms ? t : tmax_ms;
    }
    qsort(render->g, render->n, sizeof(render->g[0]), rep_cmp_group_n);
    qsort(queue->g, queue->n, sizeof(queue->g[0]), rep_cmp_group_n);
    qsort(reasons->g, reasons->n, sizeof(reasons->g[0]), rep_cmp_group_n);

    rep_head(out, o);
    gq_buf_appendf(out,
                   "<div class=\"cards\"><div class=\"card\"><b>%lld</b>jobs</div>"
                   "<div class=\"card\"><b class=\"ok\">%lld</b>succeeded</div>"
                   "<div class=\"card\"><b class=\"failed\">%lld</b>failed</div>"
                   "<div class=\"card\"><b>%zu</b>model(s)</div></div>\n",
                   (long long)st->jobs, (long long)st->succeeded, (long long)st->failed, render->n);
    if (n == REP_JOBS_MAX)
        gq_buf_appendf(out, "<p class=\"meta\">Only the latest %d jobs are counted.</p>",
                       REP_JOBS_MAX);
    rep_sheet(out, o, outs, st);

    gq_buf_appends(out, "<h2 id=\"render\">Render time per model</h2><p class=\"meta\">From "
                        "submission to ComfyUI to its result, succeeded jobs. Box: quartiles; "
                        "line: p5 to p95; bar: median.</p>");
    if (render->n)
        rep_plot_box(out, "render time per model", render);
    else
        gq_buf_appends(out, "<p>No succeeded job.</p>");
    gq_buf_appends(out, "<h2 id=\"queue\">Queue wait per model</h2><p class=\"meta\">From the "
                        "request's submitted_at to the start of its render.</p>");
    if (queue->n)
        rep_plot_box(out, "queue wait per model", queue);
    else
        gq_buf_appends(out, "<p>No succeeded job.</p>");

    gq_buf_appends(out, "<h2 id=\"throughput\">Throughput</h2>");
    if (n > 0) {
        int64_t lo = o->since_ms > 0 && o->since_ms > tmin - 86400000LL * 365 ? o->since_ms : tmin;
        int64_t hi = o->until_ms < tmax_ms + 86400000LL * 365 ? o->until_ms : tmax_ms + 1;
        if (lo > tmin)
            lo = tmin;
        if (hi <= tmax_ms)
            hi = tmax_ms + 1;
        /* Buckets of a round size: 1 s, 5 s, 15 s, 1 min, 5 min, 15 min, 1 h, 6 h, 1 d. */
        static const int64_t sizes[] = {1000,   5000,    15000,    60000,   300000,
                                        900000, 3600000, 21600000, 86400000};
        int64_t w = sizes[GQ_ARRAY_LEN(sizes) - 1];
        for (size_t k = 0; k < GQ_ARRAY_LEN(sizes); k++)
            if ((hi - lo) / sizes[k] <= REP_BUCKETS) {
                w = sizes[k];
                break;
            }
        int64_t t0 = lo / w * w;
        int nb = (int)((hi - t0 + w - 1) / w);
        if (nb < 1)
            nb = 1;
        if (nb > 400)
            nb = 400;
        rep_bucket_t *bk = calloc((size_t)nb, sizeof(*bk));
        if (bk) {
            for (int i = 0; i < n; i++) {
                int64_t k = (gq_pg_get_i64(jobs, i, 6, 0) - t0) / w;
                if (k < 0 || k >= nb)
                    continue;
                if (strcmp(gq_pg_get(jobs, i, 1), "succeeded") == 0)
                    bk[k].ok++;
                else
                    bk[k].failed++;
            }
            gq_buf_appendf(out, "<p class=\"meta\">Jobs finished per %lld s.</p>",
                           (long long)(w / 1000));
            rep_plot_time(out, bk, nb, t0, w);
            free(bk);
        }
    } else {
        gq_buf_appends(out, "<p>No job finished in this range.</p>");
    }

    gq_buf_appends(out, "<h2 id=\"failures\">Failures by reason</h2>");
    if (reasons->n) {
        rep_plot_reasons(out, reasons);
        gq_buf_appends(out, "<table><tr><th>reason</th><th>jobs</th><th>for example</th></tr>");
        for (size_t i = 0; i < reasons->n; i++) {
            gq_buf_appends(out, "<tr><td>");
            gq_report_esc(out, reasons->g[i].name);
            gq_buf_appendf(out, "</td><td>%lld</td><td>", (long long)reasons->g[i].count);
            gq_report_esc(out, reasons->g[i].example);
            gq_buf_appends(out, "</td></tr>");
        }
        gq_buf_appends(out, "</table>");
    } else {
        gq_buf_appends(out, "<p>No job failed.</p>");
    }

    gq_buf_appendf(out,
                   "<h2 id=\"jobs\">Jobs</h2><p class=\"meta\">The latest %d.</p><table>"
                   "<tr><th>job</th><th>status</th><th>model</th><th>tenant</th><th>queue</th>"
                   "<th>render</th><th>prompt</th><th>outputs</th></tr>\n",
                   n < REP_TABLE_MAX ? n : REP_TABLE_MAX);
    gq_buf_t src;
    gq_buf_init(&src, 1);
    for (int i = 0; i < n && i < REP_TABLE_MAX; i++) {
        const char *job = gq_pg_get(jobs, i, 0);
        bool ok = strcmp(gq_pg_get(jobs, i, 1), "succeeded") == 0;
        char qs[32] = "", rs[32] = "";
        if (!PQgetisnull(jobs, i, 4))
            rep_fmt_s((double)gq_pg_get_i64(jobs, i, 4, 0), qs, sizeof(qs));
        if (!PQgetisnull(jobs, i, 5))
            rep_fmt_s((double)gq_pg_get_i64(jobs, i, 5, 0), rs, sizeof(rs));
        gq_buf_appends(out, "<tr id=\"job-");
        gq_report_esc(out, job);
        gq_buf_appends(out, "\"><td><code>");
        gq_report_esc(out, job);
        gq_buf_appendf(out, "</code></td><td class=\"%s\">%s", ok ? "ok" : "failed",
                       ok ? "succeeded" : "failed");
        if (!ok) {
            gq_buf_appends(out, " (");
            gq_report_esc(out, gq_pg_get(jobs, i, 7));
            gq_buf_appends(out, ")");
        }
        gq_buf_appends(out, "</td><td>");
        gq_report_esc(out, gq_pg_get(jobs, i, 2));
        gq_buf_appends(out, "</td><td>");
        gq_report_esc(out, gq_pg_get(jobs, i, 3));
        gq_buf_appendf(out, "</td><td>%s</td><td>%s</td><td>", qs, rs);
        gq_report_esc(out, gq_pg_get(jobs, i, 9));
        gq_buf_appends(out, "</td><td>");
        int k = 0;
        for (int r = 0; r < PQntuples(outs); r++) {
            if (strcmp(gq_pg_get(outs, r, 0), job) != 0)
                continue;
            char href[4096];
            gq_report_stats_t ignore = {0};
            gq_report_opts_t lo = *o;
            lo.embed_max = 0; /* a link, never the bytes again */
            rep_output_src(&lo, gq_pg_get(outs, r, 1), gq_pg_get(outs, r, 2), gq_pg_get(outs, r, 3),
                           &src, href, sizeof(href), &ignore);
            if (!href[0])
                continue;
            gq_buf_appends(out, "<a href=\"");
            gq_report_esc(out, href);
            gq_buf_appendf(out, "\">%d</a> ", ++k);
        }
        gq_buf_appends(out, "</td></tr>\n");
    }
    gq_buf_release(&src);
    if (gq_buf_appends(out, "</table></body></html>\n") != GQ_OK) {
        s = GQ_ERR_TOOBIG;
        gq_errf(errstr, errstr_size, "the page is larger than %zu bytes", out->max);
    }
out:
    if (render)
        rep_groups_release(render);
    if (queue)
        rep_groups_release(queue);
    free(render);
    free(queue);
    free(reasons);
    PQclear(jobs);
    PQclear(outs);
    return s;
}
