/*
 * The S3-compatible output store (see s3.h). One put is a small state machine:
 *
 *   HEAD ──200, same size and sha256──────────────────────────────────► done
 *     └─404──► PUT (one request) ──ETag = MD5──────────────────────────► done
 *          └─► CREATE (POST ?uploads=) ─► PART 1..N (PUT ?partNumber&uploadId, ETag = part MD5)
 *                                          ─► COMPLETE (POST ?uploadId) ─► done
 *
 * Any failed step waits (backoff) and is tried again; an upload the server forgot
 * (NoSuchUpload) starts again at CREATE. The query strings are written sorted and encoded, as
 * SigV4's canonical form wants them (libcurl signs them as they are).
 */
#include "s3.h"

#include "log.h"
#include "media.h"
#include "sigv4.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S3_BACKOFF_MIN_MS 500
#define S3_BACKOFF_MAX_MS 30000
#define S3_RESP_MAX (64u << 10)
#define S3_CONNECT_TIMEOUT_MS 5000
#define S3_TIMEOUT_MS 600000
#define S3_LOW_SPEED_BYTES 1024 /* a transfer slower than this per second ... */
#define S3_LOW_SPEED_S 30       /* ... for this long is abandoned (and retried) */
#define S3_CREDS_RELOAD_MS 60000
#define S3_LOG_EVERY_MS 30000 /* a put that keeps failing is logged at most this often */
#define S3_MIN_PART (5 << 20)
#define S3_MAX_PARTS 10000
#define S3_KEY_MAX 600

typedef enum s3_step { S3_HEAD, S3_PUT, S3_CREATE, S3_PART, S3_COMPLETE } s3_step_t;

static const char *const s3_step_name[] = {"HEAD", "PUT", "CreateMultipartUpload", "UploadPart",
                                           "CompleteMultipartUpload"};

typedef struct s3_put {
    struct s3_put *next;
    gq_s3_t *s3;
    uint64_t tag;
    int idx;
    gq_buf_t data; /* owned */
    char key[S3_KEY_MAX];
    char sha256[65];
    char md5_hex[33];
    char md5_b64[25];
    gq_media_t media;

    s3_step_t step;
    int tries;        /* failures since the put began (the backoff grows with them) */
    int64_t logged;   /* monotonic ms of the last warning about it */
    int64_t retry_at; /* monotonic ms; 0: not waiting */
    bool done;

    /* multipart */
    char upload_id[512];
    int part, nparts;
    unsigned char (*part_md5)[16];

    /* the request in flight */
    gq_xfer_t x;
    CURL *easy;
    struct curl_slist *hdrs;
    gq_buf_t resp;
    const unsigned char *body;
    size_t body_len, body_off;
    char *post;
    char etag[128];
    char meta_sha[65];
    char curl_err[CURL_ERROR_SIZE];
    char errstr[400];
} s3_put_t;

struct gq_s3 {
    gq_xfer_host_t *host;
    char bucket[64];
    char prefix[256];
    char scheme[8];
    char hostport[256]; /* the endpoint's, without the bucket */
    char region[64];
    char sigv4[128];
    bool path_style;
    int64_t part_size;
    int presign_s;
    char *ca_file;

    char access_key[256];
    char secret_key[256];
    char session_token[4096];
    char creds_dir[512];
    int64_t creds_mono;

    s3_put_t *puts;     /* in flight or waiting */
    gq_s3_done_t *done; /* finished, not handed out (array) */
    size_t done_cnt, done_cap;
    bool failing;
    uint64_t n_failed, n_uploaded, n_deduped;
};

/* ---- options ---- */

static bool s3_bucket_ok(const char *b, size_t n) {
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

/* A prefix reaches the object key: plain characters, no empty or dot-dot segment. */
static bool s3_prefix_ok(const char *p) {
    if (p[0] == '/')
        return false;
    for (const char *seg = p; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || (n == 2 && seg[0] == '.' && seg[1] == '.') || (n == 1 && seg[0] == '.'))
            return false;
        for (size_t i = 0; i < n; i++) {
            char c = seg[i];
            if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'))
                return false;
        }
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return true;
}

gq_status_t gq_s3_parse_url(const char *url, char *bucket, size_t bucket_size, char *prefix,
                            size_t prefix_size, char *errstr, size_t errstr_size) {
    if (!url || strncmp(url, "s3://", 5) != 0) {
        gq_errf(errstr, errstr_size, "output URL \"%s\" is not s3://bucket[/prefix]",
                url ? url : "");
        return GQ_ERR_INVALID;
    }
    const char *b = url + 5;
    size_t bn = strcspn(b, "/");
    if (!s3_bucket_ok(b, bn) || bn >= bucket_size) {
        gq_errf(errstr, errstr_size,
                "output URL %s: the bucket name must be 3 to 63 of a-z 0-9 . - (not at the ends)",
                url);
        return GQ_ERR_INVALID;
    }
    snprintf(bucket, bucket_size, "%.*s", (int)bn, b);
    const char *p = b + bn;
    while (*p == '/')
        p++;
    size_t pn = strlen(p);
    while (pn > 0 && p[pn - 1] == '/')
        pn--;
    if (pn >= prefix_size || pn > 200) {
        gq_errf(errstr, errstr_size, "output URL %s: the prefix is longer than 200 bytes", url);
        return GQ_ERR_INVALID;
    }
    snprintf(prefix, prefix_size, "%.*s", (int)pn, p);
    if (!s3_prefix_ok(prefix)) {
        gq_errf(errstr, errstr_size,
                "output URL %s: the prefix may hold A-Z a-z 0-9 . _ - and /, without empty, . or "
                ".. segments",
                url);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* Reads one credential file (a Secret's key): its content without a trailing newline. */
static gq_status_t s3_read_cred(const char *dir, const char *name, char *out, size_t out_size) {
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? GQ_ERR_NOTFOUND : GQ_ERR;
    size_t n = fread(out, 1, out_size - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more)
        return GQ_ERR_TOOBIG;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return GQ_OK;
}

/* Reads the Secret's files (a rotated credential is picked up within a minute). */
static gq_status_t s3_load_creds(gq_s3_t *s, char *errstr, size_t errstr_size) {
    s->creds_mono = gq_mono_ms();
    if (!s->creds_dir[0])
        return GQ_OK;
    char ak[sizeof(s->access_key)], sk[sizeof(s->secret_key)], tok[sizeof(s->session_token)];
    gq_status_t a = s3_read_cred(s->creds_dir, "AWS_ACCESS_KEY_ID", ak, sizeof(ak));
    gq_status_t b = s3_read_cred(s->creds_dir, "AWS_SECRET_ACCESS_KEY", sk, sizeof(sk));
    gq_status_t t = s3_read_cred(s->creds_dir, "AWS_SESSION_TOKEN", tok, sizeof(tok));
    if (a != GQ_OK || b != GQ_OK || (t != GQ_OK && t != GQ_ERR_NOTFOUND)) {
        gq_errf(errstr, errstr_size,
                "S3 credentials: %s must hold the files AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN optional), each at most %zu bytes",
                s->creds_dir, sizeof(s->access_key) - 1);
        return GQ_ERR_INVALID;
    }
    memcpy(s->access_key, ak, sizeof(ak));
    memcpy(s->secret_key, sk, sizeof(sk));
    if (t == GQ_OK)
        memcpy(s->session_token, tok, sizeof(tok));
    else
        s->session_token[0] = '\0';
    memset(sk, 0, sizeof(sk));
    memset(tok, 0, sizeof(tok));
    return GQ_OK;
}

gq_s3_t *gq_s3_new(const gq_s3_opts_t *o, gq_xfer_host_t *host, char *errstr, size_t errstr_size) {
    gq_s3_t *s = calloc(1, sizeof(*s));
    if (!s) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->host = host;
    if (gq_s3_parse_url(o->url, s->bucket, sizeof(s->bucket), s->prefix, sizeof(s->prefix), errstr,
                        errstr_size) != GQ_OK)
        goto fail;
    snprintf(s->region, sizeof(s->region), "%s", o->region && *o->region ? o->region : "us-east-1");
    for (const char *r = s->region; *r; r++)
        if (!(isalnum((unsigned char)*r) || *r == '-')) {
            gq_errf(errstr, errstr_size, "S3 region \"%s\": letters, digits and dashes", s->region);
            goto fail;
        }
    char ep[300];
    if (o->endpoint && *o->endpoint)
        snprintf(ep, sizeof(ep), "%s", o->endpoint);
    else
        snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com", s->region);
    const char *hp = NULL;
    if (strncmp(ep, "https://", 8) == 0) {
        snprintf(s->scheme, sizeof(s->scheme), "https");
        hp = ep + 8;
    } else if (strncmp(ep, "http://", 7) == 0) {
        snprintf(s->scheme, sizeof(s->scheme), "http");
        hp = ep + 7;
    }
    size_t hn = hp ? strcspn(hp, "/") : 0;
    if (!hp || hn == 0 || hn >= sizeof(s->hostport) || strspn(hp + hn, "/") != strlen(hp + hn) ||
        strpbrk(hp, "@?#")) {
        gq_errf(errstr, errstr_size, "S3 endpoint \"%s\" is not http(s)://host[:port]", ep);
        goto fail;
    }
    snprintf(s->hostport, sizeof(s->hostport), "%.*s", (int)hn, hp);
    s->path_style = o->path_style || strchr(s->bucket, '.') != NULL;
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->region);
    s->part_size = o->part_size > 0 ? o->part_size : (int64_t)64 << 20;
    if (s->part_size < S3_MIN_PART) {
        gq_errf(errstr, errstr_size, "S3 part size %lld is below S3's minimum of 5 MiB",
                (long long)s->part_size);
        goto fail;
    }
    s->presign_s = o->presign_s;
    if (o->ca_file && *o->ca_file && !(s->ca_file = strdup(o->ca_file))) {
        gq_errf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    snprintf(s->access_key, sizeof(s->access_key), "%s", o->access_key ? o->access_key : "");
    snprintf(s->secret_key, sizeof(s->secret_key), "%s", o->secret_key ? o->secret_key : "");
    snprintf(s->session_token, sizeof(s->session_token), "%s",
             o->session_token ? o->session_token : "");
    if (o->credentials_dir && *o->credentials_dir &&
        gq_strlcpy(s->creds_dir, o->credentials_dir, sizeof(s->creds_dir)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "S3 credentials directory path too long");
        goto fail;
    }
    if (s3_load_creds(s, errstr, errstr_size) != GQ_OK)
        goto fail;
    if (!s->access_key[0] || !s->secret_key[0]) {
        gq_errf(errstr, errstr_size,
                "S3 output store without credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or GENQ_S3_CREDENTIALS_DIR");
        goto fail;
    }
    return s;
fail:
    gq_s3_destroy(s);
    return NULL;
}

/* ---- one put ---- */

static void s3_put_free(s3_put_t *p) {
    if (!p)
        return;
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->hdrs);
    gq_buf_release(&p->resp);
    gq_buf_release(&p->data);
    free(p->post);
    free(p->part_md5);
    free(p);
}

void gq_s3_destroy(gq_s3_t *s) {
    if (!s)
        return;
    while (s->puts) {
        s3_put_t *p = s->puts;
        s->puts = p->next;
        if (s->host)
            gq_xfer_abort(s->host, &p->x);
        s3_put_free(p);
    }
    free(s->done);
    free(s->ca_file);
    memset(s->secret_key, 0, sizeof(s->secret_key));
    memset(s->session_token, 0, sizeof(s->session_token));
    free(s);
}

static size_t s3_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    s3_put_t *p = userdata;
    size_t n = size * nmemb;
    /* An answer longer than the limit is cut, not failed: only its start is read. */
    size_t room = p->resp.max > p->resp.len ? p->resp.max - p->resp.len : 0;
    if (room > 0)
        gq_buf_append(&p->resp, ptr, n < room ? n : room);
    return n;
}

static size_t s3_read(char *buf, size_t size, size_t nitems, void *userdata) {
    s3_put_t *p = userdata;
    size_t n = size * nitems, left = p->body_len - p->body_off;
    if (n > left)
        n = left;
    memcpy(buf, p->body + p->body_off, n);
    p->body_off += n;
    return n;
}

/* Copies a header's value (trimmed) when its name matches. */
static bool s3_header(const char *line, size_t len, const char *name, char *out, size_t out_size) {
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1;
    size_t vn = len - nl - 1;
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    if (vn >= out_size)
        vn = out_size - 1;
    memcpy(out, v, vn);
    out[vn] = '\0';
    return true;
}

static size_t s3_headers(char *buf, size_t size, size_t nitems, void *userdata) {
    s3_put_t *p = userdata;
    size_t n = size * nitems;
    if (!s3_header(buf, n, "etag", p->etag, sizeof(p->etag)))
        s3_header(buf, n, "x-amz-meta-sha256", p->meta_sha, sizeof(p->meta_sha));
    return n;
}

static void s3_md5(const void *data, size_t len, unsigned char out[16]) {
    unsigned int n = 16;
    EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

static void s3_hex(const unsigned char *md, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* An ETag as the bare lower-case string between its quotes. */
static void s3_etag_norm(const char *etag, char *out, size_t out_size) {
    const char *e = etag;
    if (strncmp(e, "W/", 2) == 0)
        e += 2;
    size_t n = strlen(e);
    if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
        e++;
        n -= 2;
    }
    if (n >= out_size)
        n = out_size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)e[i]);
    out[n] = '\0';
}

/* <Tag>value</Tag> in an S3 XML answer (the first one). */
static bool s3_xml_value(const char *xml, const char *tag, char *out, size_t out_size) {
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = xml ? strstr(xml, open) : NULL;
    if (!a)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b || (size_t)(b - a) >= out_size)
        return false;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return true;
}

static void s3_url(const gq_s3_t *s, const char *key, const char *query, char *out,
                   size_t out_size) {
    if (s->path_style)
        snprintf(out, out_size, "%s://%s/%s/%s%s%s", s->scheme, s->hostport, s->bucket, key,
                 query ? "?" : "", query ? query : "");
    else
        snprintf(out, out_size, "%s://%s.%s/%s%s%s", s->scheme, s->bucket, s->hostport, key,
                 query ? "?" : "", query ? query : "");
}

static void s3_xfer_done(gq_xfer_t *x, CURLcode rc);

static bool s3_add_header(s3_put_t *p, const char *name, const char *v) {
    char line[4200];
    int n = snprintf(line, sizeof(line), "%s:%s%s", name, *v ? " " : "", v);
    if (n < 0 || (size_t)n >= sizeof(line))
        return false;
    struct curl_slist *l = curl_slist_append(p->hdrs, line);
    if (!l)
        return false;
    p->hdrs = l;
    return true;
}

/* Starts the current step's request; false when it could not even start (it is retried). */
static bool s3_send(s3_put_t *p) {
    gq_s3_t *s = p->s3;
    if (s->creds_dir[0] && gq_mono_ms() - s->creds_mono > S3_CREDS_RELOAD_MS) {
        char err[256];
        if (s3_load_creds(s, err, sizeof(err)) != GQ_OK)
            gq_warn("%s (keeping the credentials read before)", err);
    }
    if (!p->easy && !(p->easy = curl_easy_init()))
        return false;
    CURL *h = p->easy;
    curl_easy_reset(h);
    curl_slist_free_all(p->hdrs);
    p->hdrs = NULL;
    free(p->post);
    p->post = NULL;
    gq_buf_release(&p->resp);
    gq_buf_init(&p->resp, S3_RESP_MAX);
    p->etag[0] = p->meta_sha[0] = p->curl_err[0] = '\0';

    char query[2048] = "", url[4096];
    const char *q = NULL;
    char payload_sha[65];
    unsigned char md5[16];
    const unsigned char *all = (const unsigned char *)p->data.data;
    char enc_id[sizeof(p->upload_id) * 3];
    if (p->upload_id[0] && gq_sigv4_encode(p->upload_id, 0, enc_id, sizeof(enc_id)) != GQ_OK)
        return false;
    p->body = NULL;
    p->body_len = p->body_off = 0;
    switch (p->step) {
    case S3_HEAD:
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        gq_sha256_hex("", 0, payload_sha);
        break;
    case S3_PUT:
        p->body = all;
        p->body_len = p->data.len;
        memcpy(payload_sha, p->sha256, sizeof(payload_sha));
        break;
    case S3_CREATE:
        q = "uploads=";
        gq_sha256_hex("", 0, payload_sha);
        break;
    case S3_PART: {
        size_t off = (size_t)p->part * (size_t)s->part_size;
        p->body = all + off;
        p->body_len =
            p->data.len - off < (size_t)s->part_size ? p->data.len - off : (size_t)s->part_size;
        snprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", p->part + 1, enc_id);
        q = query;
        gq_sha256_hex(p->body, p->body_len, payload_sha);
        break;
    }
    case S3_COMPLETE: {
        snprintf(query, sizeof(query), "uploadId=%s", enc_id);
        q = query;
        gq_buf_t x;
        gq_buf_init(&x, (size_t)p->nparts * 128 + 128);
        gq_buf_appends(&x, "<CompleteMultipartUpload>");
        for (int i = 0; i < p->nparts; i++) {
            char hex[33];
            s3_hex(p->part_md5[i], 16, hex);
            gq_buf_appendf(&x, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                           hex);
        }
        if (gq_buf_appends(&x, "</CompleteMultipartUpload>") != GQ_OK) {
            gq_buf_release(&x);
            return false;
        }
        size_t n;
        p->post = gq_buf_detach(&x, &n);
        if (!p->post)
            return false;
        gq_sha256_hex(p->post, n, payload_sha);
        break;
    }
    }
    s3_url(s, p->key, q, url, sizeof(url));
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (p->body) {
        /* Content-MD5: the server refuses bytes that changed on the way (BadDigest). */
        s3_md5(p->body, p->body_len, md5);
        unsigned char b64[32];
        EVP_EncodeBlock(b64, md5, 16);
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_read);
        curl_easy_setopt(h, CURLOPT_READDATA, p);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)p->body_len);
        if (!s3_add_header(p, "Content-MD5", (const char *)b64))
            return false;
    } else if (p->step == S3_CREATE || p->step == S3_COMPLETE) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->post ? p->post : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(p->post ? strlen(p->post) : 0));
    }
    /* The payload's SHA-256 is part of what is signed: the server checks the bytes by it. */
    if (!s3_add_header(p, "x-amz-content-sha256", payload_sha) ||
        (p->step == S3_COMPLETE && !s3_add_header(p, "Content-Type", "application/xml")) ||
        ((p->step == S3_PUT || p->step == S3_CREATE) &&
         (!s3_add_header(p, "Content-Type", p->media.mime) ||
          !s3_add_header(p, "x-amz-meta-sha256", p->sha256))) ||
        (s->session_token[0] && !s3_add_header(p, "x-amz-security-token", s->session_token)))
        return false;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, p->hdrs);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret_key);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)S3_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)S3_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)S3_LOW_SPEED_BYTES);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)S3_LOW_SPEED_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "genq");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_headers);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->curl_err);
    if (s->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    p->x.easy = h;
    p->x.done = s3_xfer_done;
    p->x.ctx = p;
    return gq_xfer_start(s->host, &p->x) == GQ_OK;
}

static void s3_finish(s3_put_t *p, gq_status_t st) {
    gq_s3_t *s = p->s3;
    p->done = true;
    if (s->done_cnt == s->done_cap) {
        size_t cap = s->done_cap ? s->done_cap * 2 : 8;
        gq_s3_done_t *d = realloc(s->done, cap * sizeof(*d));
        if (!d) {
            /* Nowhere to report it: the put stays and is reported on a later success. */
            p->done = false;
            p->retry_at = gq_mono_ms() + S3_BACKOFF_MAX_MS;
            return;
        }
        s->done = d;
        s->done_cap = cap;
    }
    gq_s3_done_t *d = &s->done[s->done_cnt++];
    memset(d, 0, sizeof(*d));
    d->tag = p->tag;
    d->idx = p->idx;
    d->status = st;
    snprintf(d->errstr, sizeof(d->errstr), "%.250s", p->errstr);
    gq_stored_t *o = &d->stored;
    memcpy(o->sha256, p->sha256, sizeof(o->sha256));
    snprintf(o->path, sizeof(o->path), "%s", p->key);
    snprintf(o->uri, sizeof(o->uri), "s3://%s/%s", s->bucket, p->key);
    o->mime = p->media.mime;
    o->width = p->media.width;
    o->height = p->media.height;
    o->bytes = (int64_t)p->data.len;
    gq_buf_release(&p->data);
}

/* A failed step: wait, then the same step again. Logged on the first failure and then
 * rarely, with the server's error code, never with a credential. */
static void s3_retry(s3_put_t *p, const char *why) {
    gq_s3_t *s = p->s3;
    s->failing = true;
    s->n_failed++;
    int64_t delay = S3_BACKOFF_MIN_MS;
    for (int i = 0; i < p->tries && delay < S3_BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > S3_BACKOFF_MAX_MS)
        delay = S3_BACKOFF_MAX_MS;
    delay = delay * (80 + (int64_t)(gq_random_u64() % 41)) / 100; /* +-20% */
    p->tries++;
    snprintf(p->errstr, sizeof(p->errstr), "S3 %s s3://%s/%.90s: %.100s", s3_step_name[p->step],
             s->bucket, p->key, why);
    int64_t now = gq_mono_ms();
    if (p->tries == 1 || now - p->logged >= S3_LOG_EVERY_MS) {
        p->logged = now;
        gq_warn("%s (try %d; again in %lld ms; the job waits)", p->errstr, p->tries,
                (long long)delay);
    }
    p->retry_at = now + delay;
}

/* A request succeeded. The backoff keeps growing over the put's failures: a put that fails
 * late again and again (a verification) does not hammer the server every half second. */
static void s3_step_ok(s3_put_t *p) { p->s3->failing = false; }

static void s3_advance(s3_put_t *p) {
    if (!s3_send(p))
        s3_retry(p, "could not start the request (out of memory?)");
}

static void s3_xfer_done(gq_xfer_t *x, CURLcode rc) {
    s3_put_t *p = x->ctx;
    gq_s3_t *s = p->s3;
    long code = 0;
    char why[200];
    if (rc != CURLE_OK) {
        snprintf(why, sizeof(why), "%.180s", p->curl_err[0] ? p->curl_err : curl_easy_strerror(rc));
        s3_retry(p, why);
        return;
    }
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
    char err_code[64] = "";
    s3_xml_value(p->resp.data, "Code", err_code, sizeof(err_code));
    if (p->step == S3_HEAD) {
        curl_off_t len = -1;
        curl_easy_getinfo(p->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        if (code == 200 && len == (curl_off_t)p->data.len && strcmp(p->meta_sha, p->sha256) == 0) {
            s3_step_ok(p);
            s->n_deduped++;
            s3_finish(p, GQ_OK);
            return;
        }
        if (code == 200 || code == 404) {
            s3_step_ok(p);
            if (p->data.len > (size_t)s->part_size) {
                p->step = S3_CREATE;
            } else {
                p->step = S3_PUT;
            }
            s3_advance(p);
            return;
        }
        snprintf(why, sizeof(why), "HTTP %ld", code);
        s3_retry(p, why);
        return;
    }
    if (code != 200) {
        if (p->step == S3_PART && strcmp(err_code, "NoSuchUpload") == 0) {
            p->step = S3_CREATE; /* the server forgot the upload: start it again */
            p->upload_id[0] = '\0';
        }
        snprintf(why, sizeof(why), "HTTP %ld%s%s", code, err_code[0] ? " " : "", err_code);
        s3_retry(p, why);
        return;
    }
    char etag[128];
    s3_etag_norm(p->etag, etag, sizeof(etag));
    switch (p->step) {
    case S3_PUT:
        /* A plain ETag is the MD5 of the bytes (an encrypted object's is not hex of 32). */
        if (strlen(etag) == 32 && strcmp(etag, p->md5_hex) != 0) {
            snprintf(why, sizeof(why), "stored ETag %.40s is not the MD5 %s of the bytes sent",
                     etag, p->md5_hex);
            s3_retry(p, why);
            return;
        }
        s3_step_ok(p);
        s->n_uploaded++;
        s3_finish(p, GQ_OK);
        return;
    case S3_CREATE:
        if (!s3_xml_value(p->resp.data, "UploadId", p->upload_id, sizeof(p->upload_id)) ||
            !p->upload_id[0]) {
            s3_retry(p, "CreateMultipartUpload answered no UploadId");
            return;
        }
        s3_step_ok(p);
        p->part = 0;
        p->step = S3_PART;
        s3_advance(p);
        return;
    case S3_PART: {
        size_t off = (size_t)p->part * (size_t)s->part_size;
        size_t n =
            p->data.len - off < (size_t)s->part_size ? p->data.len - off : (size_t)s->part_size;
        s3_md5(p->data.data + off, n, p->part_md5[p->part]);
        char hex[33];
        s3_hex(p->part_md5[p->part], 16, hex);
        if (strcmp(etag, hex) != 0) {
            snprintf(why, sizeof(why), "part %d: ETag %.40s is not the part's MD5 %s", p->part + 1,
                     etag, hex);
            s3_retry(p, why);
            return;
        }
        s3_step_ok(p);
        if (++p->part == p->nparts)
            p->step = S3_COMPLETE;
        s3_advance(p);
        return;
    }
    case S3_COMPLETE: {
        /* A 200 may still carry an <Error> (S3 reports late failures so). */
        if (p->resp.data && strstr(p->resp.data, "<Error>")) {
            if (strcmp(err_code, "NoSuchUpload") == 0) {
                p->step = S3_CREATE;
                p->upload_id[0] = '\0';
            }
            snprintf(why, sizeof(why), "error %s", err_code[0] ? err_code : "(no code)");
            s3_retry(p, why);
            return;
        }
        unsigned char *cat = malloc((size_t)p->nparts * 16);
        if (!cat) {
            s3_retry(p, "out of memory");
            return;
        }
        for (int i = 0; i < p->nparts; i++)
            memcpy(cat + 16 * i, p->part_md5[i], 16);
        unsigned char md[16];
        s3_md5(cat, (size_t)p->nparts * 16, md);
        free(cat);
        char want[48], got[160] = "";
        s3_hex(md, 16, want);
        snprintf(want + 32, sizeof(want) - 32, "-%d", p->nparts);
        char raw[160];
        if (s3_xml_value(p->resp.data, "ETag", raw, sizeof(raw))) {
            /* The quotes around it, escaped in XML: &quot; or &#34; (or bare). */
            char bare[160];
            size_t o = 0;
            for (const char *r = raw; *r && o + 1 < sizeof(bare);) {
                if (strncmp(r, "&quot;", 6) == 0)
                    r += 6;
                else if (strncmp(r, "&#34;", 5) == 0)
                    r += 5;
                else if (strncasecmp(r, "&#x22;", 6) == 0)
                    r += 6;
                else if (*r == '"')
                    r++;
                else
                    bare[o++] = *r++;
            }
            bare[o] = '\0';
            s3_etag_norm(bare, got, sizeof(got));
        }
        if (got[0] && strchr(got, '-') && strcmp(got, want) != 0) {
            snprintf(why, sizeof(why), "multipart ETag %.60s is not %.48s", got, want);
            p->step = S3_CREATE;
            p->upload_id[0] = '\0';
            s3_retry(p, why);
            return;
        }
        s3_step_ok(p);
        s->n_uploaded++;
        s3_finish(p, GQ_OK);
        return;
    }
    default: return;
    }
}

gq_status_t gq_s3_put(gq_s3_t *s, gq_buf_t *data, uint64_t tag, int idx, char *errstr,
                      size_t errstr_size) {
    s3_put_t *p = calloc(1, sizeof(*p));
    if (!p) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    p->s3 = s;
    p->tag = tag;
    p->idx = idx;
    /* Taken: the caller's buffer is left empty. */
    p->data = *data;
    gq_buf_init(data, data->max);
    static const char empty[1];
    const char *bytes = p->data.data ? p->data.data : empty;
    gq_media_detect(bytes, p->data.len, &p->media);
    gq_sha256_hex(bytes, p->data.len, p->sha256);
    unsigned char md5[16];
    s3_md5(bytes, p->data.len, md5);
    s3_hex(md5, 16, p->md5_hex);
    int n = snprintf(p->key, sizeof(p->key), "%s%s%.2s/%s.%s", s->prefix, s->prefix[0] ? "/" : "",
                     p->sha256, p->sha256, p->media.ext);
    if (n < 0 || (size_t)n >= sizeof(p->key)) {
        s3_put_free(p);
        gq_errf(errstr, errstr_size, "object key too long");
        return GQ_ERR_TOOBIG;
    }
    if (p->data.len > (size_t)s->part_size) {
        int64_t parts = ((int64_t)p->data.len + s->part_size - 1) / s->part_size;
        if (parts > S3_MAX_PARTS) {
            gq_errf(errstr, errstr_size, "an output of %zu bytes needs more than %d parts",
                    p->data.len, S3_MAX_PARTS);
            s3_put_free(p);
            return GQ_ERR_TOOBIG;
        }
        p->nparts = (int)parts;
        p->part_md5 = calloc((size_t)parts, 16);
        if (!p->part_md5) {
            s3_put_free(p);
            gq_errf(errstr, errstr_size, "out of memory");
            return GQ_ERR_NOMEM;
        }
    }
    p->step = S3_HEAD;
    p->next = s->puts;
    s->puts = p;
    s3_advance(p);
    return GQ_OK;
}

/* Frees the puts that finished (their outcome is in the done list). */
static void s3_reap(gq_s3_t *s) {
    for (s3_put_t **pp = &s->puts; *pp;) {
        s3_put_t *p = *pp;
        if (p->done && !p->x.running) {
            *pp = p->next;
            s3_put_free(p);
        } else {
            pp = &p->next;
        }
    }
}

bool gq_s3_next_done(gq_s3_t *s, gq_s3_done_t *out) {
    s3_reap(s);
    if (s->done_cnt == 0)
        return false;
    *out = s->done[0];
    memmove(s->done, s->done + 1, (s->done_cnt - 1) * sizeof(*s->done));
    s->done_cnt--;
    return true;
}

void gq_s3_service(gq_s3_t *s, int64_t now_mono) {
    for (s3_put_t *p = s->puts; p; p = p->next)
        if (!p->done && !p->x.running && p->retry_at && p->retry_at <= now_mono) {
            p->retry_at = 0;
            s3_advance(p);
        }
}

int64_t gq_s3_wake(const gq_s3_t *s) {
    int64_t w = INT64_MAX;
    for (const s3_put_t *p = s->puts; p; p = p->next)
        if (!p->done && p->retry_at && p->retry_at < w)
            w = p->retry_at;
    return s->done_cnt ? 0 : w;
}

size_t gq_s3_pending(const gq_s3_t *s) {
    size_t n = s->done_cnt;
    for (const s3_put_t *p = s->puts; p; p = p->next)
        if (!p->done)
            n++;
    return n;
}

bool gq_s3_failing(const gq_s3_t *s) { return s->failing; }

uint64_t gq_s3_failures(const gq_s3_t *s) { return s->n_failed; }

gq_status_t gq_s3_presign(gq_s3_t *s, const char *uri, int64_t expires_s, char *url,
                          size_t url_size, char *errstr, size_t errstr_size) {
    size_t bl = strlen(s->bucket);
    if (strncmp(uri, "s3://", 5) != 0 || strncmp(uri + 5, s->bucket, bl) != 0 ||
        uri[5 + bl] != '/') {
        gq_errf(errstr, errstr_size, "%s is not an object of s3://%s", uri, s->bucket);
        return GQ_ERR_INVALID;
    }
    const char *key = uri + 5 + bl + 1;
    char path[S3_KEY_MAX + 80], host[sizeof(s->hostport) + 70];
    if (s->path_style) {
        snprintf(path, sizeof(path), "/%s/%s", s->bucket, key);
        snprintf(host, sizeof(host), "%s", s->hostport);
    } else {
        snprintf(path, sizeof(path), "/%s", key);
        snprintf(host, sizeof(host), "%s.%s", s->bucket, s->hostport);
    }
    gq_sigv4_presign_t p = {"GET",
                            s->scheme,
                            host,
                            path,
                            s->region,
                            "s3",
                            gq_now_ms() / 1000,
                            expires_s > 0 ? expires_s : s->presign_s};
    gq_sigv4_creds_t c = {s->access_key, s->secret_key, s->session_token};
    return gq_sigv4_presign(&p, &c, url, url_size, errstr, errstr_size);
}
