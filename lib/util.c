#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

void gq_errf(char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (!errstr || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

const char *gq_status_name(gq_status_t st) {
    switch (st) {
    case GQ_OK: return "ok";
    case GQ_ERR: return "error";
    case GQ_ERR_INVALID: return "invalid";
    case GQ_ERR_TRANSIENT: return "transient";
    case GQ_ERR_NOTFOUND: return "not found";
    case GQ_ERR_TIMEOUT: return "timeout";
    case GQ_ERR_TOOBIG: return "too big";
    case GQ_ERR_NOMEM: return "out of memory";
    }
    return "unknown";
}

gq_status_t gq_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!s || !*s)
        return GQ_ERR_INVALID;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return GQ_ERR_INVALID;
    *out = v;
    return GQ_OK;
}

gq_status_t gq_parse_double(const char *s, double *out) {
    if (!s || !*s)
        return GQ_ERR_INVALID;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return GQ_ERR_INVALID;
    *out = v;
    return GQ_OK;
}

gq_status_t gq_parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < GQ_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return GQ_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return GQ_OK;
        }
    }
    return GQ_ERR_INVALID;
}

int64_t gq_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gq_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gq_sleep_ms(int64_t ms) {
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static const char util_hex[] = "0123456789abcdef";

void gq_uuid_format(const unsigned char r[16], char out[37]) {
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = util_hex[r[i] >> 4];
        *o++ = util_hex[r[i] & 0x0f];
    }
    *o = '\0';
}

static gq_status_t util_getrandom(void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom((char *)buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return GQ_ERR;
        }
        got += (size_t)n;
    }
    return GQ_OK;
}

/*
 * Random bytes are drawn from the kernel's CSPRNG UTIL_POOL_SIZE at a time (one getrandom
 * for 64 uuids) into a per-thread pool, so ids stay as unpredictable as the kernel makes them
 * while the system call is amortised. A process made by fork() copies its parent's pool: had
 * it kept the unused bytes, parent and child would draw the same uuids. The fork handler
 * bumps a generation (in the child only) that makes every inherited pool count as empty.
 */
#define UTIL_POOL_SIZE 1024

typedef struct util_pool {
    unsigned char bytes[UTIL_POOL_SIZE];
    size_t pos; /* bytes[pos..] are unused */
    unsigned gen;
} util_pool_t;

static _Thread_local util_pool_t util_pool = {.pos = UTIL_POOL_SIZE};
static atomic_uint util_fork_gen = 1;
static pthread_once_t util_fork_once = PTHREAD_ONCE_INIT;

static void util_on_fork_child(void) { atomic_fetch_add(&util_fork_gen, 1); }

static void util_fork_register(void) { pthread_atfork(NULL, NULL, util_on_fork_child); }

static gq_status_t util_random(void *buf, size_t len) {
    util_pool_t *p = &util_pool;
    unsigned gen = atomic_load_explicit(&util_fork_gen, memory_order_relaxed);
    if (len > UTIL_POOL_SIZE / 4)
        return util_getrandom(buf, len);
    if (p->gen != gen || UTIL_POOL_SIZE - p->pos < len) {
        pthread_once(&util_fork_once, util_fork_register);
        if (util_getrandom(p->bytes, sizeof(p->bytes)) != GQ_OK)
            return GQ_ERR;
        p->pos = 0;
        p->gen = atomic_load(&util_fork_gen);
    }
    memcpy(buf, p->bytes + p->pos, len);
    /* Used bytes are not kept: a later memory disclosure cannot reveal ids already drawn. */
    memset(p->bytes + p->pos, 0, len);
    p->pos += len;
    return GQ_OK;
}

uint64_t gq_random_u64(void) {
    uint64_t v = 0;
    if (util_random(&v, sizeof(v)) != GQ_OK)
        v = (uint64_t)gq_now_ms() * 6364136223846793005u;
    return v;
}

gq_status_t gq_random_bytes(void *buf, size_t len) { return util_random(buf, len); }

gq_status_t gq_uuid_v4(char out[37]) {
    unsigned char r[16];
    if (util_random(r, sizeof(r)) != GQ_OK)
        return GQ_ERR;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    gq_uuid_format(r, out);
    return GQ_OK;
}

static bool util_hex_run(const char *s, size_t n, bool *zero) {
    *zero = true;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        *zero &= s[i] == '0';
    }
    return true;
}

bool gq_traceparent_valid(const char *s, size_t len) {
    /* Version 00 only: a later version may be longer, and is not what we would forward. */
    bool z0, zt, zp, zf;
    return s && len == GQ_TRACEPARENT_LEN && s[0] == '0' && s[1] == '0' && s[2] == '-' &&
           s[35] == '-' && s[52] == '-' && util_hex_run(s, 2, &z0) &&
           util_hex_run(s + 3, 32, &zt) && !zt && util_hex_run(s + 36, 16, &zp) && !zp &&
           util_hex_run(s + 53, 2, &zf);
}

gq_status_t gq_traceparent_new(char out[GQ_TRACEPARENT_LEN + 1]) {
    unsigned char r[24];
    static const char hex[] = "0123456789abcdef";
    if (util_random(r, sizeof(r)) != GQ_OK)
        return GQ_ERR;
    r[0] |= 1; /* never all zeros */
    r[16] |= 1;
    char *o = out;
    *o++ = '0';
    *o++ = '0';
    *o++ = '-';
    for (int i = 0; i < 24; i++) {
        if (i == 16)
            *o++ = '-';
        *o++ = hex[r[i] >> 4];
        *o++ = hex[r[i] & 15];
    }
    memcpy(o, "-01", 4);
    return GQ_OK;
}

bool gq_uuid_valid(const char *s) {
    if (!s)
        return false;
    /* A NUL before the end fails the character test, so no strlen is needed. */
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return s[36] == '\0';
}

void gq_sha256_hex(const void *data, size_t len, char out[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

bool gq_name_safe(const char *name, size_t max) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > max || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

gq_status_t gq_strlcpy(char *dst, const char *src, size_t dst_size) {
    size_t n = strlen(src);
    if (dst_size == 0)
        return GQ_ERR_TOOBIG;
    if (n >= dst_size) {
        memcpy(dst, src, dst_size - 1);
        dst[dst_size - 1] = '\0';
        return GQ_ERR_TOOBIG;
    }
    memcpy(dst, src, n + 1);
    return GQ_OK;
}

gq_status_t gq_read_file(const char *path, size_t max, char **out, size_t *len, char *errstr,
                         size_t errstr_size) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return GQ_ERR_NOTFOUND;
    }
    char *buf = malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad || n > max) {
        free(buf);
        gq_errf(errstr, errstr_size, "%s: %s", path, bad ? "cannot be read" : "too large");
        return bad ? GQ_ERR : GQ_ERR_TOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return GQ_OK;
}
