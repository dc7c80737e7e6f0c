/* Unit tests of the ComfyUI client's pure parts: framing, handshake, JSON documents, URLs.
 * The socket-level behaviour is in test_comfy_net.c, the live protocol in test_comfy_live.c. */
#include "comfy/comfy_int.h"
#include "buf.h"
#include "util.h"
#include "check.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>

static const unsigned char mask_a[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Decodes everything in d, appending "op:payload|" for each unit to out. */
static gq_status_t drain(gq_comfy_wsdec_t *d, gq_buf_t *out) {
    for (;;) {
        gq_comfy_wsmsg_t m;
        char err[256];
        gq_status_t st = gq_comfy_wsdec_next(d, &m, err, sizeof(err));
        if (st != GQ_OK)
            return st;
        if (m.opcode == 0)
            return GQ_OK;
        gq_buf_appendf(out, "%d:", m.opcode);
        gq_buf_append(out, m.data, m.len);
        gq_buf_appends(out, "|");
    }
}

static void test_ws_accept(void) {
    char acc[29];
    /* RFC 6455 section 1.3 (and base64(sha1(key + GUID)) computed independently) */
    CHECK(gq_comfy_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", acc) == GQ_OK);
    CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char k1[25], k2[25];
    CHECK(gq_comfy_ws_key_new(k1) == GQ_OK);
    CHECK(gq_comfy_ws_key_new(k2) == GQ_OK);
    CHECK_INT(strlen(k1), 24);
    CHECK(k1[22] == '=' && k1[23] == '=');
    CHECK(strcmp(k1, k2) != 0);
}

static void test_ws_upgrade(void) {
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char err[256];
    long code;
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "Date: Sat, 22 Nov 2025 14:00:00 GMT\r\n"
                     "Server: Python/3.11 aiohttp/3.8.4\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(ok, strlen(ok), key, &code, err, sizeof(err)) == GQ_OK);
    CHECK_INT(code, 101);
    const char *lower = "HTTP/1.1 101 OK\r\nupgrade:WebSocket\r\nconnection: keep-alive, upgrade"
                        "\r\nsec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(lower, strlen(lower), key, &code, err, sizeof(err)) == GQ_OK);
    const char *bad_accept = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(bad_accept, strlen(bad_accept), key, &code, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(strstr(err, "Sec-WebSocket-Accept") != NULL);
    const char *no_upgrade = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(no_upgrade, strlen(no_upgrade), key, &code, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    const char *deflate =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(deflate, strlen(deflate), key, &code, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(strstr(err, "permessage-deflate") != NULL);
    const char *forbidden = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(forbidden, strlen(forbidden), key, &code, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK_INT(code, 403);
    const char *busy = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(busy, strlen(busy), key, &code, err, sizeof(err)) ==
          GQ_ERR_TRANSIENT);
    const char *junk = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    CHECK(gq_comfy_ws_check_upgrade(junk, strlen(junk), key, &code, err, sizeof(err)) ==
          GQ_ERR_TRANSIENT);
}

static void test_frame_encode(void) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, true, "Hello", 5, NULL) == GQ_OK);
    /* RFC 6455 5.7: a single-frame unmasked text message */
    CHECK(b.len == 7 && memcmp(b.data, "\x81\x05Hello", 7) == 0);
    gq_buf_reset(&b);
    static const unsigned char rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, true, "Hello", 5, rfc_mask) == GQ_OK);
    CHECK(b.len == 11 && memcmp(b.data, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11) == 0);
    gq_buf_reset(&b);
    char *big = calloc(1, 70000);
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_BINARY, true, big, 125, NULL) == GQ_OK);
    CHECK_INT(b.len, 127);
    gq_buf_reset(&b);
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_BINARY, true, big, 126, NULL) == GQ_OK);
    CHECK(b.len == 130 && (unsigned char)b.data[1] == 126 && b.data[2] == 0 && b.data[3] == 126);
    gq_buf_reset(&b);
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_BINARY, true, big, 65536, mask_a) == GQ_OK);
    CHECK(b.len == 65536 + 14 && (unsigned char)b.data[1] == (0x80 | 127) && b.data[7] == 1);
    gq_buf_reset(&b);
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_PING, true, big, 126, NULL) == GQ_ERR_INVALID);
    CHECK(gq_comfy_wsframe_encode(&b, GQ_WS_OP_PING, false, "x", 1, NULL) == GQ_ERR_INVALID);
    CHECK_INT(b.len, 0);
    gq_buf_t small;
    gq_buf_init(&small, 10);
    CHECK(gq_comfy_wsframe_encode(&small, GQ_WS_OP_TEXT, true, big, 20, NULL) == GQ_ERR_TOOBIG);
    CHECK_INT(small.len, 0);
    gq_buf_release(&small);
    free(big);
    gq_buf_release(&b);
}

/* Masked frames of every length class survive a round trip, fed in one piece. */
static void test_frame_roundtrip(void) {
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 100000};
    for (size_t i = 0; i < GQ_ARRAY_LEN(sizes); i++) {
        size_t n = sizes[i];
        unsigned char *p = malloc(n + 1);
        for (size_t k = 0; k < n; k++)
            p[k] = (unsigned char)(k * 31 + i);
        gq_buf_t wire;
        gq_buf_init(&wire, n + 64);
        CHECK(gq_comfy_wsframe_encode(&wire, GQ_WS_OP_BINARY, true, p, n, mask_a) == GQ_OK);
        gq_comfy_wsdec_t d;
        gq_comfy_wsdec_init(&d, 1 << 20, false);
        CHECK(gq_comfy_wsdec_feed(&d, wire.data, wire.len) == GQ_OK);
        gq_comfy_wsmsg_t m;
        char err[256];
        CHECK(gq_comfy_wsdec_next(&d, &m, err, sizeof(err)) == GQ_OK);
        CHECK_INT(m.opcode, GQ_WS_OP_BINARY);
        CHECK(m.len == n && (n == 0 || memcmp(m.data, p, n) == 0));
        CHECK(gq_comfy_wsdec_next(&d, &m, err, sizeof(err)) == GQ_OK && m.opcode == 0);
        gq_comfy_wsdec_release(&d);

        /* A client must refuse masked frames from a server (RFC 6455 5.1). */
        gq_comfy_wsdec_init(&d, 1 << 20, true);
        CHECK(gq_comfy_wsdec_feed(&d, wire.data, wire.len) == GQ_OK);
        CHECK(gq_comfy_wsdec_next(&d, &m, err, sizeof(err)) == GQ_ERR_INVALID);
        CHECK(strstr(err, "masked") != NULL);
        gq_comfy_wsdec_release(&d);
        gq_buf_release(&wire);
        free(p);
    }
}

/* Several frames in one read, then the same bytes one at a time and in uneven pieces. */
static void test_frame_split(void) {
    gq_buf_t wire;
    gq_buf_init(&wire, 1 << 20);
    char big[300];
    memset(big, 'b', sizeof(big));
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_TEXT, true, "{\"a\":1}", 7, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_PING, true, "hi", 2, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_BINARY, true, big, sizeof(big), NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_TEXT, true, "", 0, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_PONG, true, NULL, 0, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_TEXT, true, "end", 3, NULL);
    gq_buf_t want;
    gq_buf_init(&want, 1 << 20);
    gq_buf_appends(&want, "1:{\"a\":1}|9:hi|2:");
    gq_buf_append(&want, big, sizeof(big));
    gq_buf_appends(&want, "|1:|10:|1:end|");

    static const size_t steps[] = {1, 2, 3, 7, 64, 1 << 20};
    for (size_t s = 0; s < GQ_ARRAY_LEN(steps); s++) {
        gq_comfy_wsdec_t d;
        gq_comfy_wsdec_init(&d, 4096, true);
        gq_buf_t got;
        gq_buf_init(&got, 1 << 20);
        gq_status_t st = GQ_OK;
        for (size_t off = 0; off < wire.len && st == GQ_OK; off += steps[s]) {
            size_t n = wire.len - off < steps[s] ? wire.len - off : steps[s];
            st = gq_comfy_wsdec_feed(&d, wire.data + off, n);
            if (st == GQ_OK)
                st = drain(&d, &got);
        }
        CHECK_INT(st, GQ_OK);
        CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
        gq_buf_release(&got);
        gq_comfy_wsdec_release(&d);
    }
    gq_buf_release(&want);
    gq_buf_release(&wire);
}

/* A fragmented text message with a ping between its fragments (allowed: RFC 6455 5.4). */
static void test_frame_fragments(void) {
    gq_buf_t wire;
    gq_buf_init(&wire, 4096);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_TEXT, false, "Hel", 3, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_PING, true, "p", 1, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_CONT, false, "lo ", 3, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_CONT, false, "", 0, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_CONT, true, "world", 5, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_BINARY, false, "\x00\x00", 2, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_CONT, true, "\x00\x01", 2, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_TEXT, true, "next", 4, NULL);
    for (size_t step = 1; step <= wire.len; step += wire.len - 1) {
        gq_comfy_wsdec_t d;
        gq_comfy_wsdec_init(&d, 64, true);
        gq_buf_t got;
        gq_buf_init(&got, 4096);
        for (size_t off = 0; off < wire.len; off += step) {
            size_t n = wire.len - off < step ? wire.len - off : step;
            CHECK(gq_comfy_wsdec_feed(&d, wire.data + off, n) == GQ_OK);
            CHECK(drain(&d, &got) == GQ_OK);
        }
        const char want[] = "9:p|1:Hello world|2:\x00\x00\x00\x01|1:next|";
        CHECK(got.len == sizeof(want) - 1 && memcmp(got.data, want, got.len) == 0);
        gq_buf_release(&got);
        gq_comfy_wsdec_release(&d);
    }
    gq_buf_release(&wire);
}

/* Feeds raw bytes to a fresh client decoder and returns what next() says. */
static gq_status_t decode_raw(const void *p, size_t n, size_t max, char *err, size_t err_size) {
    gq_comfy_wsdec_t d;
    gq_comfy_wsdec_init(&d, max, true);
    gq_status_t st = gq_comfy_wsdec_feed(&d, p, n);
    gq_buf_t got;
    gq_buf_init(&got, 1 << 20);
    if (st == GQ_OK) {
        for (;;) {
            gq_comfy_wsmsg_t m;
            st = gq_comfy_wsdec_next(&d, &m, err, err_size);
            if (st != GQ_OK || m.opcode == 0)
                break;
        }
    }
    gq_buf_release(&got);
    gq_comfy_wsdec_release(&d);
    return st;
}

static void test_frame_errors(void) {
    char err[256];
    /* continuation without a start */
    CHECK(decode_raw("\x80\x01x", 3, 100, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "continuation") != NULL);
    /* a new text frame while a fragmented one is open */
    CHECK(decode_raw("\x01\x01x\x81\x01y", 6, 100, err, sizeof(err)) == GQ_ERR_INVALID);
    /* ping with 126 bytes (length in the 16-bit form) */
    unsigned char ping[130] = {0x89, 126, 0, 126};
    CHECK(decode_raw(ping, sizeof(ping), 1000, err, sizeof(err)) == GQ_ERR_INVALID);
    /* fragmented ping */
    CHECK(decode_raw("\x09\x00", 2, 100, err, sizeof(err)) == GQ_ERR_INVALID);
    /* reserved opcodes, data and control */
    CHECK(decode_raw("\x83\x00", 2, 100, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(decode_raw("\x8b\x00", 2, 100, err, sizeof(err)) == GQ_ERR_INVALID);
    /* RSV1 (permessage-deflate) was never negotiated */
    CHECK(decode_raw("\xc1\x01x", 3, 100, err, sizeof(err)) == GQ_ERR_INVALID);
    /* 64-bit length with the top bit set */
    CHECK(decode_raw("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01", 10, 100, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    /* An oversized frame is refused from its header, before any payload arrived. */
    CHECK(decode_raw("\x82\x7f\x00\x00\x00\x00\x00\x90\x00\x00", 10, 8u << 20, err, sizeof(err)) ==
          GQ_ERR_TOOBIG);
    CHECK(strstr(err, "limit") != NULL);
    CHECK(decode_raw("\x81\x7e\x01\x00", 4, 255, err, sizeof(err)) == GQ_ERR_TOOBIG);
    /* exactly at the limit is fine */
    unsigned char at[4 + 256] = {0x81, 126, 1, 0};
    memset(at + 4, 'a', 256);
    CHECK(decode_raw(at, sizeof(at), 256, err, sizeof(err)) == GQ_OK);
    /* Fragments each under the limit but too big together. */
    gq_buf_t wire;
    gq_buf_init(&wire, 4096);
    char chunk[100];
    memset(chunk, 'c', sizeof(chunk));
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_TEXT, false, chunk, 100, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_CONT, false, chunk, 100, NULL);
    gq_comfy_wsframe_encode(&wire, GQ_WS_OP_CONT, true, chunk, 100, NULL);
    CHECK(decode_raw(wire.data, wire.len, 250, err, sizeof(err)) == GQ_ERR_TOOBIG);
    CHECK(decode_raw(wire.data, wire.len, 300, err, sizeof(err)) == GQ_OK);
    gq_buf_release(&wire);
    /* A header that is not complete yet is not an error. */
    CHECK(decode_raw("\x82\x7f\x00\x00", 4, 100, err, sizeof(err)) == GQ_OK);
    CHECK(decode_raw("\x82", 1, 100, err, sizeof(err)) == GQ_OK);
}

static void test_events(void) {
    gq_comfy_event_t ev;
    char err[256];
#define PARSE(s) gq_comfy_event_parse(s, strlen(s), &ev, err, sizeof(err))
    CHECK(PARSE("{\"type\": \"status\", \"data\": {\"status\": {\"exec_info\": "
                "{\"queue_remaining\": 3}}, \"sid\": \"abc\"}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_STATUS);
    CHECK_INT(ev.queue_remaining, 3);
    CHECK_STR(ev.prompt_id, "");
    CHECK_STR(ev.name, "status");
    CHECK(PARSE("{\"type\": \"execution_start\", \"data\": {\"prompt_id\": \"p1\", "
                "\"timestamp\": 1760241234567}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_START);
    CHECK_STR(ev.prompt_id, "p1");
    CHECK_INT(ev.timestamp, 1760241234567LL);
    CHECK(PARSE("{\"type\": \"execution_cached\", \"data\": {\"nodes\": [\"4\"], "
                "\"prompt_id\": \"p1\", \"timestamp\": 1}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_CACHED);
    CHECK_INT(ev.nodes, 1);
    CHECK(PARSE("{\"type\": \"execution_cached\", \"data\": {\"nodes\": [\"4\", \"6\", \"7\"], "
                "\"prompt_id\": \"p1\"}}") == GQ_OK);
    CHECK_INT(ev.nodes, 3);
    /* Binary previews: type 1 (no prompt id), type 4 with metadata (its prompt id, read only
     * within the stated length); other binary events and short frames are not previews. */
    CHECK(gq_comfy_event_binary((const unsigned char *)"\0\0\0\1\0\0\0\1jpeg", 12, &ev));
    CHECK(ev.type == GQ_COMFY_EV_PREVIEW && ev.prompt_id[0] == '\0');
    static const char meta[] = "{\"node_id\": \"3\", \"prompt_id\": \"p9\"}";
    unsigned char bin[128] = {0, 0, 0, 4, 0, 0, 0, (unsigned char)(sizeof(meta) - 1)};
    memcpy(bin + 8, meta, sizeof(meta) - 1);
    CHECK(gq_comfy_event_binary(bin, 8 + sizeof(meta) - 1 + 4, &ev));
    CHECK(ev.type == GQ_COMFY_EV_PREVIEW && strcmp(ev.prompt_id, "p9") == 0);
    bin[7] = (unsigned char)(sizeof(meta) + 40); /* a length beyond the frame */
    CHECK(gq_comfy_event_binary(bin, 8 + sizeof(meta) - 1, &ev));
    CHECK(ev.type == GQ_COMFY_EV_PREVIEW && ev.prompt_id[0] == '\0');
    CHECK(!gq_comfy_event_binary((const unsigned char *)"\0\0\0\2abc", 7, &ev));
    CHECK(!gq_comfy_event_binary((const unsigned char *)"\0\0\1", 3, &ev));
    CHECK(PARSE("{\"type\": \"executing\", \"data\": {\"node\": \"3\", \"display_node\": \"3\", "
                "\"prompt_id\": \"p1\"}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_EXECUTING);
    CHECK_STR(ev.node, "3");
    /* the reconnect variant carries no prompt_id */
    CHECK(PARSE("{\"type\": \"executing\", \"data\": {\"node\": \"10:3\"}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_EXECUTING);
    CHECK_STR(ev.node, "10:3");
    CHECK_STR(ev.prompt_id, "");
    CHECK(PARSE("{\"type\": \"executing\", \"data\": {\"node\": null, \"prompt_id\": \"p1\"}}") ==
          GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_DONE);
    CHECK_STR(ev.prompt_id, "p1");
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": 7, \"max\": 20, "
                "\"prompt_id\": \"p1\", \"node\": \"3\"}}") == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_PROGRESS && ev.value == 7.0 && ev.max == 20.0);
    CHECK_STR(ev.prompt_id, "p1");
    CHECK_STR(ev.node, "3");
    /* Read without a JSON tree when flat and plain; else by the full parser, to the same
     * fields: escapes, a null node, nested objects, keys inside them, odd numbers. */
    CHECK(PARSE("{\"type\":\"progress\",\"data\":{\"node\":\"4\",\"prompt_id\":\"p1\","
                "\"max\":8,\"value\":2e0}}") == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_PROGRESS && ev.value == 2.0 && ev.max == 8.0);
    CHECK_STR(ev.node, "4");
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": 1, \"max\": 2, "
                "\"prompt_id\": \"p1\", \"node\": \"a\\u00e9\\\"b\"}}") == GQ_OK);
    CHECK_STR(ev.node, "a\xc3\xa9\"b");
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": 1, \"max\": 2, "
                "\"prompt_id\": \"p1\", \"node\": null}}") == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_PROGRESS && ev.value == 1.0 && ev.node[0] == '\0');
    CHECK_STR(ev.prompt_id, "p1");
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"x\": {\"value\": 9, \"max\": 9}, "
                "\"value\": 3, \"max\": 4, \"prompt_id\": \"p1\", \"node\": \"5\"}}") == GQ_OK);
    CHECK(ev.value == 3.0 && ev.max == 4.0);
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": 1e999, \"max\": 4, "
                "\"prompt_id\": \"p1\", \"node\": \"5\"}}") != GQ_OK ||
          isfinite(ev.value));
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": \"3\", \"max\": 4, "
                "\"prompt_id\": \"p1\", \"node\": \"5\"}}") == GQ_OK);
    CHECK(ev.value == 0.0 && ev.max == 4.0);
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": 0.5, \"max\": 1.0}}") == GQ_OK);
    CHECK(ev.value == 0.5 && ev.max == 1.0);
    CHECK(PARSE("{\"type\": \"executed\", \"data\": {\"node\": \"9\", \"display_node\": \"9\", "
                "\"output\": {\"images\": []}, \"prompt_id\": \"p1\"}}") == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_EXECUTED && strcmp(ev.node, "9") == 0);
    CHECK(PARSE("{\"type\": \"execution_success\", \"data\": {\"prompt_id\": \"p1\", "
                "\"timestamp\": 5}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_SUCCESS);
    CHECK(
        PARSE("{\"type\": \"execution_error\", \"data\": {\"prompt_id\": \"p1\", \"node_id\": "
              "\"3\", \"node_type\": \"KSampler\", \"executed\": [\"4\"], \"exception_message\": "
              "\"Allocation on device\\nThis error means you ran out of memory on your GPU.\\n\", "
              "\"exception_type\": \"torch.OutOfMemoryError\", \"traceback\": [\"x\"], "
              "\"current_inputs\": {\"seed\": [18446744073709551615]}, "
              "\"current_outputs\": [], \"timestamp\": 9}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_ERROR);
    CHECK_STR(ev.exception_type, "torch.OutOfMemoryError");
    CHECK_STR(ev.exception_message,
              "Allocation on device\nThis error means you ran out of memory on your GPU.");
    CHECK_STR(ev.node, "3");
    CHECK_STR(ev.node_type, "KSampler");
    CHECK(PARSE("{\"type\": \"execution_error\", \"data\": {\"prompt_id\": \"p1\", \"node_id\": "
                "\"5\", \"node_type\": \"X\", \"exception_message\": \"Execution Blocked: no\", "
                "\"exception_type\": \"ExecutionBlocked\", \"traceback\": [], "
                "\"current_inputs\": [], \"current_outputs\": []}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_OTHER);
    CHECK_STR(ev.exception_type, "ExecutionBlocked");
    CHECK(PARSE("{\"type\": \"execution_interrupted\", \"data\": {\"prompt_id\": \"p1\", "
                "\"node_id\": \"3\", \"node_type\": \"KSampler\", \"executed\": [], "
                "\"timestamp\": 2}}") == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_INTERRUPTED && strcmp(ev.node_type, "KSampler") == 0);
    CHECK(
        PARSE("{\"type\": \"progress_state\", \"data\": {\"prompt_id\": \"p1\", \"nodes\": {}}}") ==
        GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_OTHER);
    CHECK_STR(ev.name, "progress_state");
    CHECK_STR(ev.prompt_id, "p1");
    CHECK(PARSE("{\"type\": \"logs\", \"data\": {\"entries\": [], \"size\": null}}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_OTHER);
    CHECK(PARSE("{\"type\": \"crystools.monitor\"}") == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_OTHER);
    /* NaN from Python's json.dumps does not make the message unreadable */
    CHECK(PARSE("{\"type\": \"progress\", \"data\": {\"value\": NaN, \"max\": Infinity, "
                "\"prompt_id\": \"p2\"}}") == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_PROGRESS && strcmp(ev.prompt_id, "p2") == 0 && ev.value == 0);
    /* long strings are cut at a character boundary */
    char longmsg[1200];
    int n = snprintf(longmsg, sizeof(longmsg),
                     "{\"type\": \"execution_error\", \"data\": {\"exception_type\": \"E\", "
                     "\"exception_message\": \"");
    for (int i = 0; i < 300; i++)
        n += snprintf(longmsg + n, sizeof(longmsg) - (size_t)n, "\xc3\xa9");
    snprintf(longmsg + n, sizeof(longmsg) - (size_t)n, "\"}}");
    CHECK(PARSE(longmsg) == GQ_OK);
    CHECK(strlen(ev.exception_message) == 510);

    /* malformed */
    CHECK(PARSE("") == GQ_ERR_INVALID);
    CHECK(PARSE("{\"type\": \"status\", ") == GQ_ERR_INVALID);
    CHECK(PARSE("[1, 2]") == GQ_ERR_INVALID);
    CHECK(PARSE("{\"data\": {}}") == GQ_ERR_INVALID);
    CHECK(PARSE("{\"type\": 5, \"data\": {}}") == GQ_ERR_INVALID);
    CHECK(PARSE("{\"type\": \"executing\", \"data\": [\"3\"]}") == GQ_ERR_INVALID);
    CHECK(PARSE("\"status\"") == GQ_ERR_INVALID);
    CHECK(PARSE("{\"type\": \"status\", \"data\": {}} trailing") == GQ_ERR_INVALID);
#undef PARSE
}

static json_t *load(const char *s) {
    json_t *j = gq_comfy_json_parse(s, strlen(s), NULL, 0);
    CHECK(j != NULL);
    return j;
}

static const char hist_ok[] =
    "{\"5b0d\": {\"prompt\": [7, \"5b0d\", {\"3\": {\"class_type\": \"KSampler\", \"inputs\": "
    "{\"seed\": 18446744073709551615, \"cfg\": NaN}}}, {\"client_id\": \"abc\"}, [\"9\"]], "
    "\"outputs\": {\"9\": {\"images\": [{\"filename\": \"ComfyUI_00001_.png\", \"subfolder\": "
    "\"\", \"type\": \"output\"}, {\"filename\": \"ComfyUI_00002_.png\", \"subfolder\": "
    "\"a/b\", \"type\": \"output\"}]}, \"12\": {\"gifs\": [{\"filename\": \"x.gif\"}], "
    "\"text\": [\"hi\"]}, \"13\": {\"images\": [{\"filename\": \"ComfyUI_temp_abcde_00001_.png\","
    " \"subfolder\": \"\", \"type\": \"temp\"}], \"animated\": [false]}}, "
    "\"status\": {\"status_str\": \"success\", \"completed\": true, \"messages\": "
    "[[\"execution_start\", {\"prompt_id\": \"5b0d\", \"timestamp\": 1760241234567}], "
    "[\"execution_cached\", {\"nodes\": [], \"prompt_id\": \"5b0d\", \"timestamp\": "
    "1760241234570}], [\"execution_success\", {\"prompt_id\": \"5b0d\", \"timestamp\": "
    "1760241239012}]]}, \"meta\": {\"9\": {\"node_id\": \"9\", \"display_node\": \"9\", "
    "\"parent_node\": null, \"real_node_id\": \"9\"}}}}";

static void test_history(void) {
    gq_comfy_result_t r = {0};
    char err[256];
    json_t *j = load(hist_ok);
    CHECK(gq_comfy_history_parse(j, "5b0d", &r, err, sizeof(err)) == GQ_OK);
    CHECK(r.success && !r.interrupted);
    CHECK_INT(r.start_ms, 1760241234567LL);
    CHECK_INT(r.end_ms, 1760241239012LL);
    CHECK_INT(r.images_cnt, 4);
    if (r.images_cnt == 4) {
        CHECK_STR(r.images[0].filename, "ComfyUI_00001_.png");
        CHECK_STR(r.images[0].node, "9");
        CHECK_STR(r.images[0].kind, "images");
        CHECK_STR(r.images[1].subfolder, "a/b");
        CHECK_STR(r.images[2].filename, "x.gif"); /* a custom node's "gifs" */
        CHECK_STR(r.images[2].kind, "gifs");
        CHECK_STR(r.images[2].type, "output");
        CHECK_STR(r.images[3].type, "temp");
        CHECK_STR(r.images[3].node, "13");
        CHECK(!r.images[3].animated);
    }
    CHECK_STR(r.error_type, "");
    CHECK(gq_comfy_history_parse(j, "other", &r, err, sizeof(err)) == GQ_ERR_NOTFOUND);
    CHECK(r.images == NULL && r.images_cnt == 0);
    json_decref(j);

    j = load("{}");
    CHECK(gq_comfy_history_parse(j, "5b0d", &r, err, sizeof(err)) == GQ_ERR_NOTFOUND);
    json_decref(j);

    j = load("{\"p\": {\"prompt\": [], \"outputs\": {}, \"status\": {\"status_str\": \"error\", "
             "\"completed\": false, \"messages\": [[\"execution_start\", {\"prompt_id\": \"p\", "
             "\"timestamp\": 100}], [\"execution_cached\", {\"nodes\": [], \"prompt_id\": \"p\", "
             "\"timestamp\": 101}], [\"execution_error\", {\"prompt_id\": \"p\", \"node_id\": "
             "\"3\", \"node_type\": \"KSampler\", \"executed\": [], \"exception_message\": "
             "\"Allocation on device\\nThis error means you ran out of memory on your GPU.\\n\\n"
             "TIPS: If the workflow worked before you might have accidentally set the batch_size "
             "to a large number.\", \"exception_type\": \"torch.OutOfMemoryError\", \"traceback\": "
             "[], \"current_inputs\": {}, \"current_outputs\": [], \"timestamp\": 150}]]}, "
             "\"meta\": {}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_OK);
    CHECK(!r.success && !r.interrupted);
    CHECK_STR(r.error_type, "torch.OutOfMemoryError");
    CHECK(strncmp(r.error_message, "Allocation on device\n", 21) == 0);
    CHECK_STR(r.error_node, "3");
    CHECK_STR(r.error_node_type, "KSampler");
    CHECK(r.start_ms == 100 && r.end_ms == 150);
    CHECK_INT(r.images_cnt, 0);
    json_decref(j);

    j = load("{\"p\": {\"outputs\": {\"9\": {\"images\": [{\"filename\": \"old.png\", "
             "\"subfolder\": \"\", \"type\": \"output\"}]}}, \"status\": {\"status_str\": "
             "\"error\", \"completed\": false, \"messages\": [[\"execution_start\", "
             "{\"prompt_id\": \"p\", \"timestamp\": 1}], [\"execution_interrupted\", "
             "{\"prompt_id\": \"p\", \"node_id\": \"3\", \"node_type\": \"KSampler\", "
             "\"executed\": [\"4\"], \"timestamp\": 2}]]}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_OK);
    CHECK(!r.success && r.interrupted);
    CHECK_STR(r.error_message, "execution interrupted");
    CHECK_STR(r.error_node, "3");
    CHECK_INT(r.images_cnt, 1);
    json_decref(j);

    /* status null: finished, not a success */
    j = load("{\"p\": {\"outputs\": {}, \"status\": null}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_OK);
    CHECK(!r.success && r.error_message[0]);
    json_decref(j);

    /* success but not completed is no success */
    j = load("{\"p\": {\"status\": {\"status_str\": \"success\", \"completed\": false}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_OK);
    CHECK(!r.success);
    json_decref(j);

    /* a filename that does not fit must not be cut (it would name another file) */
    char bad[1024];
    char name[400];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(bad, sizeof(bad),
             "{\"p\": {\"outputs\": {\"9\": {\"images\": [{\"filename\": \"%s\"}]}}}}", name);
    j = load(bad);
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(r.images == NULL);
    json_decref(j);
    j = load("{\"p\": {\"outputs\": {\"9\": {\"images\": [{\"subfolder\": \"\"}]}}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_ERR_INVALID);
    json_decref(j);
    j = load("{\"p\": {\"outputs\": {\"9\": {\"images\": [{\"filename\": 7}]}}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_ERR_INVALID);
    json_decref(j);
    /* missing subfolder/type take the /view defaults */
    j = load("{\"p\": {\"outputs\": {\"9\": {\"images\": [{\"filename\": \"a.png\"}]}}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_OK);
    CHECK(r.images_cnt == 1 && strcmp(r.images[0].type, "output") == 0 &&
          r.images[0].subfolder[0] == '\0');
    json_decref(j);
    /* Every kind of output the real ComfyUI 0.3.64 lists (tests/comfyreal/FACTS.md (c)):
     * animations and videos under "images" with "animated", audio under "audio"; an unknown
     * key counts when its entries name files, and is skipped otherwise. */
    j = load("{\"p\": {\"outputs\": {"
             "\"2\": {\"images\": [{\"filename\": \"webp_00001_.webp\", \"subfolder\": \"s\","
             " \"type\": \"output\"}], \"animated\": [true]},"
             "\"3\": {\"audio\": [{\"filename\": \"audio_00001_.flac\", \"subfolder\": \"\","
             " \"type\": \"output\"}]},"
             "\"4\": {\"3d\": [{\"filename\": \"mesh.glb\", \"type\": \"output\"}],"
             " \"latents\": [\"not a file\", {\"name\": \"x\"}], \"text\": [\"hi\"]},"
             "\"5\": {}},"
             " \"status\": {\"status_str\": \"success\", \"completed\": true, \"messages\": []}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_OK);
    CHECK_INT(r.images_cnt, 3);
    if (r.images_cnt == 3) {
        CHECK_STR(r.images[0].filename, "webp_00001_.webp");
        CHECK(r.images[0].animated);
        CHECK_STR(r.images[1].kind, "audio");
        CHECK_STR(r.images[1].filename, "audio_00001_.flac");
        CHECK(!r.images[1].animated);
        CHECK_STR(r.images[2].kind, "3d");
        CHECK_STR(r.images[2].node, "4");
    }
    json_decref(j);
    j = load("{\"p\": {\"outputs\": {\"3\": {\"audio\": [{\"subfolder\": \"\"}]}}}}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "an entry of \"audio\"") != NULL);
    json_decref(j);
    j = load("{\"p\": [1, 2]}");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_ERR_INVALID);
    json_decref(j);
    j = load("[]");
    CHECK(gq_comfy_history_parse(j, "p", &r, err, sizeof(err)) == GQ_ERR_INVALID);
    json_decref(j);
    gq_comfy_result_release(&r);
    gq_comfy_result_release(NULL);
}

static void test_queue(void) {
    json_t *j = load("{\"queue_running\": [[7, \"run\", {\"3\": {\"inputs\": {\"seed\": "
                     "18446744073709551615}}}, {\"client_id\": \"abc\"}, [\"9\"]]], "
                     "\"queue_pending\": [[9, \"p2\", {}, {}, [\"9\"]], [8.0, \"p1\", {}, {}, "
                     "[\"9\"]]]}");
    CHECK_INT(gq_comfy_queue_find(j, "run"), GQ_COMFY_RUNNING);
    CHECK_INT(gq_comfy_queue_find(j, "p1"), GQ_COMFY_PENDING);
    CHECK_INT(gq_comfy_queue_find(j, "p2"), GQ_COMFY_PENDING);
    CHECK_INT(gq_comfy_queue_find(j, "nope"), GQ_COMFY_UNKNOWN);
    json_decref(j);
    j = load("{\"queue_running\": [], \"queue_pending\": [\"x\", [1], [1, 2]]}");
    CHECK_INT(gq_comfy_queue_find(j, "x"), GQ_COMFY_UNKNOWN);
    json_decref(j);
    j = load("[]");
    CHECK_INT(gq_comfy_queue_find(j, "x"), GQ_COMFY_UNKNOWN);
    json_decref(j);
}

static void test_prompt_errors(void) {
    char out[1024];
    json_t *j = load(
        "{\"error\": {\"type\": \"prompt_outputs_failed_validation\", \"message\": \"Prompt "
        "outputs failed validation\", \"details\": \"\", \"extra_info\": {}}, \"node_errors\": "
        "{\"3\": {\"errors\": [{\"type\": \"value_smaller_than_min\", \"message\": \"Value 0 "
        "smaller than min of 1\", \"details\": \"steps\", \"extra_info\": {\"input_name\": "
        "\"steps\", \"input_config\": [\"INT\", {\"default\": 20, \"min\": 1, \"max\": 10000}], "
        "\"received_value\": 0}}, {\"type\": \"value_not_in_list\", \"message\": \"Value not in "
        "list\", \"details\": \"sampler_name: 'x' not in ['euler']\", \"extra_info\": {}}], "
        "\"dependent_outputs\": [\"9\"], \"class_type\": \"KSampler\"}, \"4\": {\"errors\": "
        "[{\"type\": \"value_not_in_list\", \"message\": \"Value not in list\", \"details\": "
        "\"ckpt_name: 'x.safetensors' not in []\", \"extra_info\": {}}], \"dependent_outputs\": "
        "[\"9\"], \"class_type\": \"CheckpointLoaderSimple\"}}}");
    CHECK_INT(gq_comfy_prompt_errors_format(j, out, sizeof(out)), 3);
    CHECK_STR(out, "prompt_outputs_failed_validation: Prompt outputs failed validation; "
                   "node 3 (KSampler): Value 0 smaller than min of 1: steps; "
                   "node 3 (KSampler): Value not in list: sampler_name: 'x' not in ['euler']; "
                   "node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: "
                   "'x.safetensors' not in []");
    /* truncation keeps the start and a valid string */
    char small[40];
    CHECK_INT(gq_comfy_prompt_errors_format(j, small, sizeof(small)), 3);
    CHECK_INT(strlen(small), 39);
    CHECK(strncmp(small, "prompt_outputs_failed_validation: Promp", 39) == 0);
    json_decref(j);

    j = load("{\"error\": {\"type\": \"invalid_prompt\", \"message\": \"Cannot execute because "
             "node Foo does not exist.\", \"details\": \"Node ID '#7'\", \"extra_info\": {}}, "
             "\"node_errors\": {}}");
    CHECK_INT(gq_comfy_prompt_errors_format(j, out, sizeof(out)), 0);
    CHECK_STR(out, "invalid_prompt: Cannot execute because node Foo does not exist. "
                   "[Node ID '#7']");
    json_decref(j);
    /* details joined with newlines stay on one line */
    j = load("{\"error\": {\"type\": \"t\", \"message\": \"m\", \"details\": \"a: b\\nc: d\"}, "
             "\"node_errors\": {\"9\": {\"errors\": [], \"class_type\": \"SaveImage\"}}}");
    CHECK_INT(gq_comfy_prompt_errors_format(j, out, sizeof(out)), 1);
    CHECK_STR(out, "t: m [a: b c: d]; node 9 (SaveImage): invalid");
    json_decref(j);
    /* a 200 answer: node_errors only */
    j = load("{\"prompt_id\": \"x\", \"number\": 3.0, \"node_errors\": {\"12\": {\"errors\": "
             "[{\"type\": \"required_input_missing\", \"message\": \"Required input is missing\","
             " \"details\": \"images\", \"extra_info\": {\"input_name\": \"images\"}}], "
             "\"dependent_outputs\": [\"12\"], \"class_type\": \"PreviewImage\"}}}");
    CHECK_INT(gq_comfy_prompt_errors_format(j, out, sizeof(out)), 1);
    CHECK_STR(out, "node 12 (PreviewImage): Required input is missing: images");
    json_decref(j);
    j = load("{\"prompt_id\": \"x\", \"number\": 3, \"node_errors\": {}}");
    CHECK_INT(gq_comfy_prompt_errors_format(j, out, sizeof(out)), 0);
    CHECK_STR(out, "");
    json_decref(j);
}

static void test_urls(void) {
    gq_comfy_base_t b;
    char err[256];
    CHECK(gq_comfy_base_parse("http://127.0.0.1:8188", &b, err, sizeof(err)) == GQ_OK);
    CHECK_STR(b.url, "http://127.0.0.1:8188");
    CHECK_STR(b.host_hdr, "127.0.0.1:8188");
    CHECK_STR(b.prefix, "");
    CHECK(!b.tls);
    CHECK(gq_comfy_base_parse("http://127.0.0.1:8188/", &b, err, sizeof(err)) == GQ_OK);
    CHECK_STR(b.url, "http://127.0.0.1:8188");
    CHECK(gq_comfy_base_parse("HTTPS://Comfy.example.com/gpu/3//", &b, err, sizeof(err)) == GQ_OK);
    CHECK(b.tls);
    CHECK_STR(b.prefix, "/gpu/3");
    CHECK_STR(b.host_hdr, "Comfy.example.com");
    CHECK_STR(b.url, "https://Comfy.example.com/gpu/3");
    CHECK(gq_comfy_base_parse("http://[::1]:8188/api", &b, err, sizeof(err)) == GQ_OK);
    CHECK_STR(b.host_hdr, "[::1]:8188");
    CHECK_STR(b.url, "http://[::1]:8188/api");
    CHECK(gq_comfy_base_parse("ftp://h/", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "scheme") != NULL);
    CHECK(gq_comfy_base_parse("127.0.0.1:8188", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_comfy_base_parse("http://h/?x=1", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_comfy_base_parse("http://h/#f", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_comfy_base_parse("http://u:p@h/", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_comfy_base_parse("", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_comfy_base_parse(NULL, &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_comfy_base_parse("http://", &b, err, sizeof(err)) == GQ_ERR_INVALID);
    char longurl[3000] = "http://h/";
    memset(longurl + 9, 'a', 2500);
    CHECK(gq_comfy_base_parse(longurl, &b, err, sizeof(err)) == GQ_ERR_TOOBIG);

    char url[64];
    CHECK(gq_comfy_url_join("http://h:1/p", "/history/x", NULL, url, sizeof(url)) == GQ_OK);
    CHECK_STR(url, "http://h:1/p/history/x");
    CHECK(gq_comfy_url_join("http://h:1", "/view", "filename=a%20b&type=output", url,
                            sizeof(url)) == GQ_OK);
    CHECK_STR(url, "http://h:1/view?filename=a%20b&type=output");
    CHECK(gq_comfy_url_join("http://h:1", "/view",
                            "filename=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                            "aaaaaaaaaaa",
                            url, sizeof(url)) == GQ_ERR_TOOBIG);
}

static void test_json(void) {
    int64_t v;
    json_t *j = load("{\"a\": 18446744073709551615, \"b\": 9223372036854775807, \"c\": -5, "
                     "\"d\": 1760241234567.0, \"e\": 1.5, \"f\": \"x\", \"g\": NaN, \"h\": "
                     "-Infinity, \"s\": \"NaN 18446744073709551615 \\\" Infinity\", "
                     "\"n\": -9223372036854775809}");
    CHECK(json_is_real(json_object_get(j, "a")));
    CHECK(!gq_comfy_json_i64(json_object_get(j, "a"), &v));
    CHECK(gq_comfy_json_i64(json_object_get(j, "b"), &v) && v == INT64_MAX);
    CHECK(gq_comfy_json_i64(json_object_get(j, "c"), &v) && v == -5);
    CHECK(gq_comfy_json_i64(json_object_get(j, "d"), &v) && v == 1760241234567LL);
    CHECK(!gq_comfy_json_i64(json_object_get(j, "e"), &v));
    CHECK(!gq_comfy_json_i64(json_object_get(j, "f"), &v));
    CHECK(!gq_comfy_json_i64(NULL, &v));
    CHECK(json_is_null(json_object_get(j, "g")));
    CHECK(json_is_null(json_object_get(j, "h")));
    CHECK_STR(json_string_value(json_object_get(j, "s")), "NaN 18446744073709551615 \" Infinity");
    CHECK(json_is_real(json_object_get(j, "n")));
    json_decref(j);
    char err[256];
    CHECK(gq_comfy_json_parse("{\"a\": nope}", 11, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "bad JSON") != NULL);
    CHECK(gq_comfy_json_parse("", 0, err, sizeof(err)) == NULL);

    char dst[5];
    json_t *s = json_string("ab\xc3\xa9"
                            "cd");
    gq_comfy_json_str_copy(dst, sizeof(dst), s);
    CHECK_STR(dst, "ab\xc3\xa9");
    char dst2[4];
    gq_comfy_json_str_copy(dst2, sizeof(dst2), s);
    CHECK_STR(dst2, "ab");
    json_decref(s);
    gq_comfy_json_str_copy(dst, sizeof(dst), NULL);
    CHECK_STR(dst, "");
}

static void test_stats(void) {
    json_t *j = load("{\"system\": {\"os\": \"posix\", \"ram_total\": 135090184192, "
                     "\"comfyui_version\": \"0.3.64\", \"argv\": [\"main.py\"]}, \"devices\": "
                     "[{\"name\": \"cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync\", \"type\": "
                     "\"cuda\", \"index\": 0, \"vram_total\": 84929347584, \"vram_free\": "
                     "83000000000, \"torch_vram_total\": 0, \"torch_vram_free\": 0}]}");
    gq_comfy_stats_t st;
    char err[256];
    CHECK(gq_comfy_stats_parse(j, &st, err, sizeof(err)) == GQ_OK);
    CHECK_STR(st.version, "0.3.64");
    CHECK_INT(st.vram_total, 84929347584LL);
    CHECK_INT(st.vram_free, 83000000000LL);
    CHECK_STR(st.device, "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync");
    json_decref(j);
    j = load("{\"system\": {}, \"devices\": []}");
    CHECK(gq_comfy_stats_parse(j, &st, err, sizeof(err)) == GQ_OK);
    CHECK(st.vram_total == 0 && st.version[0] == '\0');
    json_decref(j);
    j = load("{\"devices\": []}");
    CHECK(gq_comfy_stats_parse(j, &st, err, sizeof(err)) == GQ_ERR_INVALID);
    json_decref(j);
}

static void test_http_class(void) {
    CHECK_INT(gq_comfy_http_class(200), GQ_OK);
    CHECK_INT(gq_comfy_http_class(204), GQ_OK);
    CHECK_INT(gq_comfy_http_class(400), GQ_ERR_INVALID);
    CHECK_INT(gq_comfy_http_class(403), GQ_ERR_INVALID);
    CHECK_INT(gq_comfy_http_class(404), GQ_ERR_NOTFOUND);
    CHECK_INT(gq_comfy_http_class(408), GQ_ERR_TRANSIENT);
    CHECK_INT(gq_comfy_http_class(413), GQ_ERR_INVALID);
    CHECK_INT(gq_comfy_http_class(429), GQ_ERR_TRANSIENT);
    CHECK_INT(gq_comfy_http_class(500), GQ_ERR_TRANSIENT);
    CHECK_INT(gq_comfy_http_class(502), GQ_ERR_TRANSIENT);
    CHECK_INT(gq_comfy_http_class(0), GQ_ERR_TRANSIENT);
    char err[300];
    gq_buf_t body;
    gq_buf_init(&body, 100);
    gq_buf_appends(&body, "500 Internal Server Error\n\nServer got itself in trouble");
    gq_comfy_http_errf(err, sizeof(err), 500, "GET /queue", &body);
    CHECK_STR(err, "ComfyUI GET /queue: HTTP 500: 500 Internal Server Error  Server got itself in "
                   "trouble");
    gq_comfy_http_errf(err, sizeof(err), 404, "GET /view", NULL);
    CHECK_STR(err, "ComfyUI GET /view: HTTP 404");
    gq_buf_release(&body);
}

int main(void) {
    test_ws_accept();
    test_ws_upgrade();
    test_frame_encode();
    test_frame_roundtrip();
    test_frame_split();
    test_frame_fragments();
    test_frame_errors();
    test_events();
    test_history();
    test_queue();
    test_prompt_errors();
    test_urls();
    test_json();
    test_stats();
    test_http_class();
    return CHECK_DONE("test_comfy");
}
