#include "avro_check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Our schemas nest 4 levels; the bound only has to stop hostile recursive schemas. */
#define WALK_MAX_DEPTH 32

typedef struct walk {
    const unsigned char *p, *end;
    size_t items_left;
    int depth;
    int path_len;
    struct {
        const char *name; /* a record field, or NULL for an item number */
        long long index;
    } path[WALK_MAX_DEPTH + 1];
    char *errstr;
    size_t errstr_size;
} walk_t;

static size_t walk_left(const walk_t *w) { return (size_t)(w->end - w->p); }

static gq_status_t walk_fail(walk_t *w, const char *fmt, ...) GQ_PRINTF(2, 3);

/* Reports "<path>: <message>", the path being how a reader finds the bad field. */
static gq_status_t walk_fail(walk_t *w, const char *fmt, ...) {
    char path[256] = "datum", msg[256];
    size_t n = 0;
    for (int i = 0; i < w->path_len && n < sizeof(path); i++) {
        int k = w->path[i].name
                    ? snprintf(path + n, sizeof(path) - n, "%s%s", n ? "." : "", w->path[i].name)
                    : snprintf(path + n, sizeof(path) - n, "[%lld]", w->path[i].index);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gq_errf(w->errstr, w->errstr_size, "%s: %s", path, msg);
    return GQ_ERR_INVALID;
}

gq_varint_t gq_avro_varint(const unsigned char **p, const unsigned char *end, int max_bytes,
                           int64_t *v) {
    uint64_t u = 0;
    for (int i = 0;; i++) {
        if (i == max_bytes)
            return GQ_VARINT_TOO_LONG;
        if (*p == end)
            return GQ_VARINT_CUT;
        unsigned b = *(*p)++;
        if (i == 9 && b > 1)
            return GQ_VARINT_OVERFLOW;
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    if (max_bytes == 5 && (*v < INT32_MIN || *v > INT32_MAX))
        return GQ_VARINT_RANGE;
    return GQ_VARINT_OK;
}

/* A zig-zag varint of at most max_bytes bytes (5: an int, in int32 range). */
static gq_status_t walk_varint(walk_t *w, int max_bytes, int64_t *v) {
    switch (gq_avro_varint(&w->p, w->end, max_bytes, v)) {
    case GQ_VARINT_OK: return GQ_OK;
    case GQ_VARINT_TOO_LONG: return walk_fail(w, "varint longer than %d bytes", max_bytes);
    case GQ_VARINT_CUT: return walk_fail(w, "data cut short inside a number");
    case GQ_VARINT_OVERFLOW: return walk_fail(w, "varint does not fit in 64 bits");
    default: return walk_fail(w, "int value %lld out of range", (long long)*v);
    }
}

static gq_status_t walk_long(walk_t *w, int64_t *v) { return walk_varint(w, 10, v); }

static gq_status_t walk_int(walk_t *w, int64_t *v) { return walk_varint(w, 5, v); }

/* Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool gq_utf8_valid(const void *data, size_t n) {
    const unsigned char *s = data;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        unsigned cp = c & (0x3f >> k);
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* A length-prefixed string or bytes value; text also checks UTF-8 and NUL bytes. */
static gq_status_t walk_blob(walk_t *w, bool text) {
    int64_t len;
    gq_status_t st = walk_long(w, &len);
    if (st != GQ_OK)
        return st;
    if (len < 0)
        return walk_fail(w, "negative length %lld", (long long)len);
    if ((uint64_t)len > walk_left(w))
        return walk_fail(w, "%s length %lld exceeds the %zu bytes left", text ? "string" : "bytes",
                         (long long)len, walk_left(w));
    if (text && memchr(w->p, '\0', (size_t)len))
        return walk_fail(w, "string contains a NUL byte");
    if (text && !gq_utf8_valid(w->p, (size_t)len))
        return walk_fail(w, "string is not valid UTF-8");
    w->p += len;
    return GQ_OK;
}

static gq_status_t walk_skip(walk_t *w, size_t n, const char *what) {
    if (n > walk_left(w))
        return walk_fail(w, "data cut short inside a %s", what);
    w->p += n;
    return GQ_OK;
}

static gq_status_t walk_value(walk_t *w, avro_schema_t schema);

static void walk_push(walk_t *w, const char *name, long long index) {
    w->path[w->path_len].name = name;
    w->path[w->path_len].index = index;
    w->path_len++;
}

/* Arrays and maps: blocks of items, a negative count being followed by the block's size. */
static gq_status_t walk_blocks(walk_t *w, avro_schema_t item, bool is_map) {
    long long index = 0;
    for (;;) {
        int64_t count, size = -1;
        gq_status_t st = walk_long(w, &count);
        if (st != GQ_OK || count == 0)
            return st;
        if (count < 0) {
            if (count == INT64_MIN)
                return walk_fail(w, "invalid block count");
            count = -count;
            if ((st = walk_long(w, &size)) != GQ_OK)
                return st;
            if (size < 0 || (uint64_t)size > walk_left(w))
                return walk_fail(w, "block size %lld does not fit in the %zu bytes left",
                                 (long long)size, walk_left(w));
        }
        if ((uint64_t)count > w->items_left)
            return walk_fail(w, "block of %lld items exceeds the limit on items in a message",
                             (long long)count);
        w->items_left -= (size_t)count;
        const unsigned char *start = w->p;
        for (int64_t i = 0; i < count; i++, index++) {
            walk_push(w, NULL, index);
            st = is_map ? walk_blob(w, true) : GQ_OK;
            if (st == GQ_OK)
                st = walk_value(w, item);
            w->path_len--;
            if (st != GQ_OK)
                return st;
        }
        if (size >= 0 && w->p - start != size)
            return walk_fail(w, "block size %lld does not match its items", (long long)size);
    }
}

static gq_status_t walk_record(walk_t *w, avro_schema_t schema) {
    size_t n = avro_schema_record_size(schema);
    for (size_t i = 0; i < n; i++) {
        walk_push(w, avro_schema_record_field_name(schema, (int)i), 0);
        gq_status_t st = walk_value(w, avro_schema_record_field_get_by_index(schema, (int)i));
        w->path_len--;
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}

static gq_status_t walk_index(walk_t *w, int64_t limit, const char *what, int64_t *v) {
    gq_status_t st = walk_long(w, v);
    if (st == GQ_OK && (*v < 0 || *v >= limit))
        return walk_fail(w, "%s index %lld out of range 0..%lld", what, (long long)*v,
                         (long long)limit - 1);
    return st;
}

static gq_status_t walk_typed(walk_t *w, avro_schema_t schema) {
    int64_t v;
    gq_status_t st;
    switch (avro_typeof(schema)) {
    case AVRO_NULL: return GQ_OK;
    case AVRO_BOOLEAN:
        if (w->p == w->end || *w->p > 1)
            return walk_fail(w, w->p == w->end ? "data cut short" : "boolean byte not 0 or 1");
        w->p++;
        return GQ_OK;
    case AVRO_INT32: return walk_int(w, &v);
    case AVRO_INT64: return walk_long(w, &v);
    case AVRO_FLOAT: return walk_skip(w, 4, "float");
    case AVRO_DOUBLE: return walk_skip(w, 8, "double");
    case AVRO_STRING: return walk_blob(w, true);
    case AVRO_BYTES: return walk_blob(w, false);
    case AVRO_FIXED: return walk_skip(w, (size_t)avro_schema_fixed_size(schema), "fixed");
    case AVRO_ENUM: return walk_index(w, avro_schema_enum_number_of_symbols(schema), "enum", &v);
    case AVRO_UNION:
        st = walk_index(w, (int64_t)avro_schema_union_size(schema), "union", &v);
        return st == GQ_OK ? walk_value(w, avro_schema_union_branch(schema, (int)v)) : st;
    case AVRO_RECORD: return walk_record(w, schema);
    case AVRO_ARRAY: return walk_blocks(w, avro_schema_array_items(schema), false);
    case AVRO_MAP: return walk_blocks(w, avro_schema_map_values(schema), true);
    case AVRO_LINK: return walk_value(w, avro_schema_link_target(schema));
    }
    return walk_fail(w, "unsupported schema type %d", (int)avro_typeof(schema));
}

static gq_status_t walk_value(walk_t *w, avro_schema_t schema) {
    if (w->depth >= WALK_MAX_DEPTH || w->path_len >= WALK_MAX_DEPTH)
        return walk_fail(w, "nested deeper than %d levels", WALK_MAX_DEPTH);
    w->depth++;
    gq_status_t st = walk_typed(w, schema);
    w->depth--;
    return st;
}

gq_status_t gq_avro_datum_check(avro_schema_t schema, const void *data, size_t len,
                                size_t max_items, char *errstr, size_t errstr_size) {
    walk_t w = {.p = data,
                .end = (const unsigned char *)data + len,
                .items_left = max_items,
                .errstr = errstr,
                .errstr_size = errstr_size};
    gq_status_t st = walk_value(&w, schema);
    if (st == GQ_OK && w.p != w.end)
        return walk_fail(&w, "%zu bytes left over after the datum", walk_left(&w));
    return st;
}

gq_status_t gq_avro_peek_string(const void *data, size_t len, char *out, size_t out_size) {
    char err[8];
    walk_t w = {.p = data,
                .end = (const unsigned char *)data + len,
                .errstr = err,
                .errstr_size = sizeof(err)};
    int64_t n;
    if (walk_long(&w, &n) != GQ_OK || n < 0 || (uint64_t)n > walk_left(&w) ||
        (uint64_t)n >= out_size || memchr(w.p, '\0', (size_t)n))
        return GQ_ERR_INVALID;
    memcpy(out, w.p, (size_t)n);
    out[n] = '\0';
    return GQ_OK;
}
