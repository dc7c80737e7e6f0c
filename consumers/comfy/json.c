/* JSON helpers for ComfyUI documents (Python json.dumps output). */
#include "comfy_int.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* True if an integer literal (optional '-', digits) fits in int64. */
static bool int_literal_fits(const char *p, size_t n) {
    char tmp[32];
    if (n >= sizeof(tmp))
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    errno = 0;
    char *end;
    (void)strtoll(tmp, &end, 10);
    return errno == 0 && *end == '\0';
}

static bool starts(const char *p, size_t n, const char *lit) {
    size_t k = strlen(lit);
    return n >= k && memcmp(p, lit, k) == 0;
}

/*
 * Rewrites what jansson refuses but Python writes: NaN, Infinity and -Infinity become null,
 * integers outside int64 get ".0" so they load as reals. Strings are copied untouched.
 */
static gq_status_t json_sanitize(const char *s, size_t n, gq_buf_t *out) {
    size_t i = 0;
    while (i < n) {
        char ch = s[i];
        gq_status_t st = GQ_OK;
        if (ch == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            j = j < n ? j + 1 : n;
            st = gq_buf_append(out, s + i, j - i);
            i = j;
        } else if (starts(s + i, n - i, "NaN") || starts(s + i, n - i, "Infinity") ||
                   starts(s + i, n - i, "-Infinity")) {
            st = gq_buf_appends(out, "null");
            i += s[i] == 'N' ? 3 : s[i] == 'I' ? 8 : 9;
        } else if (ch == '-' || is_digit(ch)) {
            size_t j = i + 1;
            bool integral = true;
            while (j < n && (is_digit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
                             s[j] == '+' || s[j] == '-')) {
                if (!is_digit(s[j]))
                    integral = false;
                j++;
            }
            st = gq_buf_append(out, s + i, j - i);
            if (st == GQ_OK && integral && !int_literal_fits(s + i, j - i))
                st = gq_buf_appends(out, ".0");
            i = j;
        } else {
            st = gq_buf_append(out, s + i, 1);
            i++;
        }
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}

json_t *gq_comfy_json_parse(const char *text, size_t len, char *errstr, size_t errstr_size) {
    json_error_t e1, e2;
    json_t *j = json_loadb(text, len, 0, &e1);
    if (j)
        return j;
    /* Rare path: only documents jansson refused are rewritten. Each rewrite adds at most
     * two bytes per three input bytes ("NaN" -> "null", "1..." -> "1....0"). */
    gq_buf_t b;
    gq_buf_init(&b, len + len / 2 + 64);
    if (json_sanitize(text, len, &b) == GQ_OK && b.len > 0)
        j = json_loadb(b.data, b.len, 0, &e2);
    gq_buf_release(&b);
    if (!j)
        gq_errf(errstr, errstr_size, "bad JSON from ComfyUI: %s (line %d, column %d)", e1.text,
                e1.line, e1.column);
    return j;
}

bool gq_comfy_json_i64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* 2^63 is exactly representable; anything at or above it does not fit. */
        if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 ||
            d >= 9223372036854775808.0)
            return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

void gq_comfy_json_str_copy(char *dst, size_t dst_size, const json_t *v) {
    if (dst_size == 0)
        return;
    dst[0] = '\0';
    if (!json_is_string(v))
        return;
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n >= dst_size) {
        n = dst_size - 1;
        /* Do not leave half a UTF-8 sequence: back up to the start of the cut character. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}
