/* The WebSocket opening handshake (RFC 6455 section 4): key, accept value, response check. */
#include "comfy_int.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

gq_status_t gq_comfy_ws_key_new(char out[25]) {
    unsigned char raw[16];
    uint64_t a = gq_random_u64(), b = gq_random_u64();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    /* 16 bytes encode to 24 characters plus the NUL EVP_EncodeBlock adds. */
    if (EVP_EncodeBlock((unsigned char *)out, raw, 16) != 24)
        return GQ_ERR;
    return GQ_OK;
}

gq_status_t gq_comfy_ws_accept(const char *key, char out[29]) {
    char cat[128];
    int n = snprintf(cat, sizeof(cat), "%s%s", key, ws_guid);
    if (n < 0 || (size_t)n >= sizeof(cat))
        return GQ_ERR_INVALID;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return GQ_ERR;
    /* 20 bytes encode to 28 characters plus the NUL. */
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != 28)
        return GQ_ERR;
    return GQ_OK;
}

/* A length-delimited piece of the response head. */
typedef struct span {
    const char *p;
    size_t n;
} span_t;

static span_t span_trim(span_t s) {
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t' || s.p[s.n - 1] == '\r'))
        s.n--;
    return s;
}

static bool span_ieq(span_t s, const char *lit) {
    size_t n = strlen(lit);
    return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/* True if the comma-separated token list s contains tok (case-insensitive). */
static bool span_has_token(span_t s, const char *tok) {
    while (s.n > 0) {
        const char *comma = memchr(s.p, ',', s.n);
        size_t len = comma ? (size_t)(comma - s.p) : s.n;
        if (span_ieq(span_trim((span_t){s.p, len}), tok))
            return true;
        if (!comma)
            break;
        s.p = comma + 1;
        s.n -= len + 1;
    }
    return false;
}

/* Reads the status code of "HTTP/1.1 101 Switching Protocols". */
static bool status_code(span_t line, long *code) {
    if (line.n < 12 || strncmp(line.p, "HTTP/1.", 7) != 0 || line.p[8] != ' ')
        return false;
    long v = 0;
    for (int i = 9; i < 12; i++) {
        if (line.p[i] < '0' || line.p[i] > '9')
            return false;
        v = v * 10 + (line.p[i] - '0');
    }
    if (line.n > 12 && line.p[12] != ' ')
        return false;
    *code = v;
    return true;
}

typedef struct upgrade_seen {
    bool upgrade, connection, accept_ok;
    span_t accept;
    span_t extension;
    span_t protocol;
} upgrade_seen_t;

static void header_note(span_t name, span_t value, const char *want_accept, upgrade_seen_t *s) {
    if (span_ieq(name, "Upgrade")) {
        s->upgrade = s->upgrade || span_ieq(value, "websocket");
    } else if (span_ieq(name, "Connection")) {
        s->connection = s->connection || span_has_token(value, "upgrade");
    } else if (span_ieq(name, "Sec-WebSocket-Accept")) {
        s->accept = value;
        s->accept_ok = value.n == strlen(want_accept) && memcmp(value.p, want_accept, value.n) == 0;
    } else if (span_ieq(name, "Sec-WebSocket-Extensions") && value.n > 0) {
        s->extension = value;
    } else if (span_ieq(name, "Sec-WebSocket-Protocol") && value.n > 0) {
        s->protocol = value;
    }
}

gq_status_t gq_comfy_ws_check_upgrade(const char *head, size_t len, const char *key,
                                      long *http_code, char *errstr, size_t errstr_size) {
    char want[29];
    *http_code = 0;
    if (gq_comfy_ws_accept(key, want) != GQ_OK) {
        gq_errf(errstr, errstr_size, "cannot compute Sec-WebSocket-Accept");
        return GQ_ERR;
    }
    upgrade_seen_t seen = {0};
    bool first = true;
    span_t rest = {head, len};
    while (rest.n > 0) {
        const char *nl = memchr(rest.p, '\n', rest.n);
        size_t llen = nl ? (size_t)(nl - rest.p) : rest.n;
        span_t line = {rest.p, llen};
        rest.p += nl ? llen + 1 : llen;
        rest.n -= nl ? llen + 1 : llen;
        if (line.n > 0 && line.p[line.n - 1] == '\r')
            line.n--;
        if (first) {
            first = false;
            if (!status_code(line, http_code)) {
                gq_errf(errstr, errstr_size, "WebSocket upgrade: not an HTTP response: %.*s",
                        (int)(line.n > 80 ? 80 : line.n), line.p);
                return GQ_ERR_TRANSIENT;
            }
            if (*http_code != 101) {
                gq_errf(errstr, errstr_size, "WebSocket upgrade refused: %.*s",
                        (int)(line.n > 120 ? 120 : line.n), line.p);
                return *http_code >= 400 && *http_code < 500 && *http_code != 408 &&
                               *http_code != 429
                           ? GQ_ERR_INVALID
                           : GQ_ERR_TRANSIENT;
            }
            continue;
        }
        if (line.n == 0)
            break;
        const char *colon = memchr(line.p, ':', line.n);
        if (!colon)
            continue;
        span_t name = span_trim((span_t){line.p, (size_t)(colon - line.p)});
        span_t value = span_trim((span_t){colon + 1, line.n - (size_t)(colon - line.p) - 1});
        header_note(name, value, want, &seen);
    }
    if (first) {
        gq_errf(errstr, errstr_size, "WebSocket upgrade: empty response");
        return GQ_ERR_TRANSIENT;
    }
    if (!seen.upgrade || !seen.connection) {
        gq_errf(errstr, errstr_size,
                "WebSocket upgrade: 101 without Upgrade: websocket and "
                "Connection: upgrade");
        return GQ_ERR_INVALID;
    }
    if (!seen.accept_ok) {
        gq_errf(errstr, errstr_size, "WebSocket upgrade: Sec-WebSocket-Accept '%.*s', want '%s'",
                (int)(seen.accept.n > 40 ? 40 : seen.accept.n), seen.accept.p ? seen.accept.p : "",
                want);
        return GQ_ERR_INVALID;
    }
    if (seen.extension.n > 0 || seen.protocol.n > 0) {
        gq_errf(errstr, errstr_size, "WebSocket upgrade: server chose %s '%.*s' we did not offer",
                seen.extension.n ? "extension" : "subprotocol",
                (int)(seen.extension.n ? seen.extension.n : seen.protocol.n),
                seen.extension.n ? seen.extension.p : seen.protocol.p);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}
