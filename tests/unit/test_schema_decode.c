/*
 * Decoding hostile and broken input: wrong framing, unknown fingerprints, truncation,
 * corruption, and hand-built datums with impossible lengths. Every case must fail with
 * GQ_ERR_INVALID, a message naming the field, the job id when it is readable, and (under
 * ASAN) no leak.
 */
#include "genq_schema.h"
#include "util.h"
#include "check.h"

#include <stdlib.h>

#define ID "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

/* Avro binary, written by hand to pin the wire format down independently of avro-c. */
static void put_varint(gq_buf_t *b, uint64_t u) {
    do {
        unsigned char c = (unsigned char)(u & 0x7f);
        u >>= 7;
        if (u)
            c |= 0x80;
        gq_buf_append(b, &c, 1);
    } while (u);
}

static void put_long(gq_buf_t *b, int64_t v) {
    put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_str(gq_buf_t *b, const char *s) {
    put_long(b, (int64_t)strlen(s));
    gq_buf_appends(b, s);
}

static void put_header(gq_buf_t *b, uint64_t fp) {
    unsigned char h[10] = {0xc3, 0x01};
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(fp >> (8 * i));
    gq_buf_append(b, h, sizeof(h));
}

/* Header and fields up to workflow_json of a request with job_id ID, submitted_at 1. */
static void put_start(gq_buf_t *b) {
    put_header(b, gq_schema_request_fingerprint());
    put_str(b, ID);
    put_long(b, 1);
    put_str(b, "txt2img");
    put_long(b, 0); /* workflow_json: null */
}

/* From prompt to batch_size, with defaults. */
static void put_middle(gq_buf_t *b) {
    static const unsigned char cfg7[8] = {0, 0, 0, 0, 0, 0, 0x1c, 0x40}; /* 7.0, LE IEEE */
    put_str(b, "p");
    put_str(b, "");
    put_long(b, 512);
    put_long(b, 512);
    put_long(b, 0);
    put_long(b, 20);
    gq_buf_append(b, cfg7, 8);
    put_str(b, "euler");
    put_str(b, "normal");
    put_long(b, 0); /* model: null */
    put_long(b, 1);
}

/* From priority to the end. */
static void put_end(gq_buf_t *b) {
    put_long(b, 0);
    put_str(b, "");
    put_long(b, 0);
    put_long(b, 0);
    put_long(b, 0); /* metadata: no blocks */
}

/* Decodes b; expects GQ_ERR_INVALID with want in the message and job_id as given. */
static void expect_bad(const gq_buf_t *b, const char *want, const char *job_id, int line) {
    gq_request_t r;
    char err[512] = "";
    gq_status_t st = gq_request_decode(b->data, b->len, &r, err, sizeof(err));
    bool ok = st == GQ_ERR_INVALID && strstr(err, want) && strcmp(r.job_id, job_id) == 0;
    if (!ok)
        fprintf(stderr, "  line %d: status %d, job_id \"%s\", error \"%s\" (wanted \"%s\")\n", line,
                (int)st, r.job_id, err, want);
    CHECK(ok);
    gq_request_release(&r);
}

#define EXPECT_BAD(b, want, id) expect_bad(b, want, id, __LINE__)

static void test_hand_built(void) {
    gq_buf_t b, c;
    gq_buf_init(&b, 1 << 16);
    gq_buf_init(&c, 1 << 16);
    put_start(&b);
    put_middle(&b);
    put_long(&b, 0); /* overrides: no blocks */
    put_end(&b);
    gq_request_t r;
    char err[256];
    gq_request_init(&r);
    gq_strlcpy(r.job_id, ID, sizeof(r.job_id));
    r.submitted_at = 1;
    free(r.prompt);
    r.prompt = strdup("p");
    CHECK(gq_request_encode(&r, &c, err, sizeof(err)) == GQ_OK);
    CHECK(b.len == c.len && memcmp(b.data, c.data, b.len) == 0);
    gq_request_release(&r);
    CHECK(gq_request_decode(b.data, b.len, &r, err, sizeof(err)) == GQ_OK);
    gq_request_release(&r);

    /* A block written with a negative count and its byte size is read too. */
    gq_buf_reset(&b);
    put_start(&b);
    put_middle(&b);
    put_long(&b, -1);
    put_long(&b, 6);
    put_str(&b, "3.x");
    put_str(&b, "1");
    put_long(&b, 0);
    put_end(&b);
    CHECK(gq_request_decode(b.data, b.len, &r, err, sizeof(err)) == GQ_OK);
    CHECK(r.overrides_cnt == 1 && strcmp(r.overrides[0].key, "3.x") == 0);
    gq_request_release(&r);
    gq_buf_release(&b);
    gq_buf_release(&c);
}

typedef void (*tail_fn)(gq_buf_t *b);

static void huge_count(gq_buf_t *b) { put_long(b, INT64_C(1) << 40); }
static void min_count(gq_buf_t *b) { put_varint(b, UINT64_MAX); } /* zig-zag of INT64_MIN */
static void huge_block(gq_buf_t *b) {
    put_long(b, -1);
    put_long(b, INT64_C(1) << 50);
}
static void huge_key(gq_buf_t *b) {
    put_long(b, 1);
    put_long(b, INT64_C(1) << 62);
    gq_buf_appends(b, "abc");
}
static void wrong_block_size(gq_buf_t *b) {
    put_long(b, -1);
    put_long(b, 5);
    put_str(b, "a.b");
    put_str(b, "1");
    put_long(b, 0);
    put_end(b);
}
static void nul_in_key(gq_buf_t *b) {
    put_long(b, 1);
    put_long(b, 3);
    gq_buf_append(b, "a\0b", 3);
}

/* Lengths and counts in the overrides map that must never reach avro-c. */
static void test_bad_overrides(void) {
    static const struct {
        tail_fn fn;
        const char *want;
    } cases[] = {
        {huge_count, "overrides: block of 1099511627776 items exceeds the limit"},
        {min_count, "overrides: invalid block count"},
        {huge_block, "overrides: block size 1125899906842624 does not fit"},
        {huge_key, "overrides[0]: string length 4611686018427387904 exceeds the 3 bytes left"},
        {wrong_block_size, "overrides: block size 5 does not match its items"},
        {nul_in_key, "overrides[0]: string contains a NUL byte"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(cases); i++) {
        gq_buf_t b;
        gq_buf_init(&b, 1 << 16);
        put_start(&b);
        put_middle(&b);
        cases[i].fn(&b);
        EXPECT_BAD(&b, cases[i].want, ID);
        gq_buf_release(&b);
    }
}

static void test_bad_fields(void) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    put_start(&b);
    put_long(&b, INT64_C(1) << 62); /* prompt */
    EXPECT_BAD(&b, "prompt: string length 4611686018427387904 exceeds the 0 bytes left", ID);
    gq_buf_reset(&b);
    put_start(&b);
    put_long(&b, -5);
    EXPECT_BAD(&b, "prompt: negative length -5", ID);
    gq_buf_reset(&b);
    put_start(&b);
    put_str(&b, "caf\xc3\x28");
    EXPECT_BAD(&b, "prompt: string is not valid UTF-8", ID);
    gq_buf_reset(&b);
    put_header(&b, gq_schema_request_fingerprint());
    put_str(&b, ID);
    put_long(&b, 1);
    put_str(&b, "txt2img");
    put_long(&b, 2); /* workflow_json: no such branch */
    EXPECT_BAD(&b, "workflow_json: union index 2 out of range 0..1", ID);
    gq_buf_reset(&b);
    put_start(&b);
    put_str(&b, "p");
    put_str(&b, "");
    put_long(&b, INT64_C(1) << 31); /* width */
    EXPECT_BAD(&b, "width: int value 2147483648 out of range", ID);
    gq_buf_reset(&b);
    put_start(&b);
    put_str(&b, "p");
    put_str(&b, "");
    gq_buf_append(&b, "\xff\xff\xff\xff\xff\x01", 6);
    EXPECT_BAD(&b, "width: varint longer than 5 bytes", ID);
    gq_buf_reset(&b);
    put_header(&b, gq_schema_request_fingerprint());
    put_str(&b, ID);
    gq_buf_append(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10); /* submitted_at */
    EXPECT_BAD(&b, "submitted_at: varint does not fit in 64 bits", ID);
    gq_buf_reset(&b);
    put_start(&b);
    put_middle(&b);
    put_long(&b, 0);
    put_end(&b);
    gq_buf_append(&b, "x", 1);
    EXPECT_BAD(&b, "datum: 1 bytes left over after the datum", ID);
    /* max_attempts 0 is not "null": refused, since gq_request_t could not tell them apart. */
    gq_buf_reset(&b);
    put_start(&b);
    put_middle(&b);
    put_long(&b, 0);
    put_long(&b, 0);
    put_str(&b, "");
    put_long(&b, 1);
    put_long(&b, 0);
    put_long(&b, 0);
    put_long(&b, 0);
    EXPECT_BAD(&b, "max_attempts: 0 given; must be null or positive", ID);
    /* A job id too long for a uuid fails the decode, and is not reported as the job id. */
    gq_buf_reset(&b);
    put_header(&b, gq_schema_request_fingerprint());
    put_str(&b, ID "abcd");
    put_long(&b, 1);
    put_str(&b, "txt2img");
    put_long(&b, 0);
    put_middle(&b);
    put_long(&b, 0);
    put_end(&b);
    EXPECT_BAD(&b, "job_id: 40 bytes long; at most 36 allowed", "");
    gq_buf_release(&b);
}

static void encode_sample(gq_buf_t *b) {
    static const char json[] =
        "{\"job_id\": \"" ID "\", \"prompt\": \"a cat\", \"workflow_json\": \"{}\","
        " \"model\": \"m.safetensors\", \"overrides\": {\"3.seed\": 5, \"4.text\": \"\\\"x\\\"\"},"
        " \"metadata\": {\"k\": \"v\"}, \"max_attempts\": 2, \"timeout_s\": 60}";
    gq_request_t r;
    char err[256];
    CHECK(gq_request_from_json(json, strlen(json), &r, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_encode(&r, b, err, sizeof(err)) == GQ_OK);
    gq_request_release(&r);
}

static void test_framing(void) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    EXPECT_BAD(&b, "empty message", "");
    gq_buf_append(&b, "\x00\x00\x00\x00\x07\x02", 6);
    EXPECT_BAD(&b, "starts with 00 00, expected C3 01; it looks like Confluent", "");
    gq_buf_reset(&b);
    gq_buf_appends(&b, "{\"job_id\": 1}");
    EXPECT_BAD(&b, "it looks like JSON", "");
    gq_buf_reset(&b);
    gq_buf_append(&b, "\xc3\x01\x00", 3);
    EXPECT_BAD(&b, "message of 3 bytes is shorter than the 10-byte header", "");
    /* Unknown fingerprint: refused, but the job id (first in every version) is recovered. */
    gq_buf_reset(&b);
    encode_sample(&b);
    b.data[5] ^= 0x40;
    EXPECT_BAD(&b, "unknown schema fingerprint 0x", ID);
    gq_buf_reset(&b);
    encode_sample(&b);
    for (int i = 0; i < 8; i++)
        b.data[2 + i] = (char)(gq_schema_completed_fingerprint() >> (8 * i));
    EXPECT_BAD(&b, "is GenerationCompleted's; expected GenerationRequest", ID);
    gq_buf_release(&b);
}

/* Every prefix fails; the job id is recovered once its bytes are all there. */
static void test_truncated(void) {
    gq_buf_t b, cut;
    gq_buf_init(&b, 1 << 16);
    gq_buf_init(&cut, 1 << 16);
    encode_sample(&b);
    for (size_t n = 0; n < b.len; n++) {
        gq_request_t r;
        char err[512];
        gq_buf_reset(&cut);
        gq_buf_append(&cut, b.data, n);
        gq_status_t st = gq_request_decode(cut.data, cut.len, &r, err, sizeof(err));
        CHECK(st == GQ_ERR_INVALID);
        CHECK_STR(r.job_id, n >= 10 + 1 + 36 ? ID : "");
        gq_request_release(&r);
    }
    gq_buf_release(&cut);
    gq_buf_release(&b);
}

/* Any byte replaced by interesting values: decoding may succeed or fail, never crash or leak,
 * and a failure reports either no job id or a valid one. */
static void test_corrupted(void) {
    static const unsigned char vals[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff};
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    encode_sample(&b);
    size_t ok = 0, bad = 0;
    for (size_t i = 10; i < b.len; i++) {
        char orig = b.data[i];
        for (size_t v = 0; v < sizeof(vals); v++) {
            gq_request_t r;
            char err[512];
            b.data[i] = (char)vals[v];
            gq_status_t st = gq_request_decode(b.data, b.len, &r, err, sizeof(err));
            CHECK(st == GQ_OK || st == GQ_ERR_INVALID);
            if (st == GQ_OK) {
                gq_request_validate(&r, err, sizeof(err));
                ok++;
            } else {
                CHECK(r.job_id[0] == '\0' || gq_uuid_valid(r.job_id));
                bad++;
            }
            gq_request_release(&r);
        }
        b.data[i] = orig;
    }
    CHECK(ok > 0 && bad > 0);
    /* Random tails after a valid header. */
    srand(1);
    for (int round = 0; round < 3000; round++) {
        gq_request_t r;
        char err[512];
        gq_buf_reset(&b);
        put_header(&b, gq_schema_request_fingerprint());
        int n = rand() % 200;
        for (int i = 0; i < n; i++) {
            unsigned char c = (unsigned char)rand();
            gq_buf_append(&b, &c, 1);
        }
        gq_status_t st = gq_request_decode(b.data, b.len, &r, err, sizeof(err));
        CHECK(st == GQ_OK || st == GQ_ERR_INVALID);
        gq_request_release(&r);
    }
    gq_buf_release(&b);
}

static void test_completed_bad(void) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    struct {
        int status;
        int64_t outputs;
        const char *sha;
        int retryable;
        const char *want;
    } cases[] = {
        {2, 0, NULL, 0, "status: enum index 2 out of range 0..1"},
        {0, INT64_C(1) << 33, NULL, 0, "outputs: block of 8589934592 items"},
        {0, 1, "0123456789012345678901234567890123456789012345678901234567890123X", 0,
         "sha256: 65 bytes long; at most 64 allowed"},
        {1, 0, NULL, 2, "error.retryable: boolean byte not 0 or 1"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(cases); i++) {
        gq_buf_reset(&b);
        put_header(&b, gq_schema_completed_fingerprint());
        put_str(&b, ID);
        put_long(&b, 1);
        put_long(&b, cases[i].status);
        put_long(&b, cases[i].outputs);
        if (cases[i].sha) {
            put_str(&b, "file:///x.png");
            put_str(&b, cases[i].sha);
            put_long(&b, 1);
            put_long(&b, 8);
            put_long(&b, 8);
            put_str(&b, "image/png");
            put_long(&b, 0);
        }
        put_long(&b, 0);
        put_long(&b, 0);
        put_long(&b, 0);
        put_str(&b, "w");
        put_long(&b, cases[i].retryable ? 1 : 0);
        if (cases[i].retryable) {
            put_str(&b, "c");
            put_str(&b, "m");
            unsigned char bad = (unsigned char)cases[i].retryable;
            gq_buf_append(&b, &bad, 1);
        }
        put_long(&b, 0);
        put_long(&b, 0);
        put_long(&b, 0);
        put_long(&b, 0);
        gq_completed_t ev;
        char err[512] = "";
        gq_status_t st = gq_completed_decode(b.data, b.len, &ev, err, sizeof(err));
        bool ok = st == GQ_ERR_INVALID && strstr(err, cases[i].want) && strcmp(ev.job_id, ID) == 0;
        if (!ok)
            fprintf(stderr, "  completed case %zu: %d \"%s\"\n", i, (int)st, err);
        CHECK(ok);
        gq_completed_release(&ev);
    }
    gq_buf_release(&b);
}

int main(void) {
    char err[256];
    CHECK(gq_schema_init(err, sizeof(err)) == GQ_OK);
    test_hand_built();
    test_bad_overrides();
    test_bad_fields();
    test_framing();
    test_truncated();
    test_corrupted();
    test_completed_bad();
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_decode");
}
