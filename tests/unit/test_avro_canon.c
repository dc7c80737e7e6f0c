/*
 * Parsing Canonical Form and CRC-64-AVRO: hand-checked spec examples, then every vector of
 * tests/schemas/vectors.json (written by tests/schemas/vectors.py from python3-avro and the
 * spec's published fingerprints).
 */
#include "avro_canon.h"
#include "embedded.h"
#include "check.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

/* The canonical form of schema, or NULL (caller frees). */
static char *canon(const char *schema) {
    gq_buf_t b;
    char err[256];
    gq_buf_init(&b, 1 << 20);
    if (gq_avro_canonical_form(schema, &b, err, sizeof(err)) != GQ_OK) {
        fprintf(stderr, "  canonical form of %s: %s\n", schema, err);
        gq_buf_release(&b);
        return NULL;
    }
    return gq_buf_detach(&b, NULL);
}

#define CHECK_CANON(schema, expected)                                                              \
    do {                                                                                           \
        char *got_ = canon(schema);                                                                \
        CHECK_STR(got_, expected);                                                                 \
        free(got_);                                                                                \
    } while (0)

static void test_crc64(void) {
    CHECK(gq_avro_crc64("", 0) == UINT64_C(0xc15d213aa4d7a795));
    /* Published with the spec (share/test/data/schema-tests.txt), as Java longs. */
    CHECK((int64_t)gq_avro_crc64("\"int\"", 5) == INT64_C(8247732601305521295));
    CHECK((int64_t)gq_avro_crc64("\"null\"", 6) == INT64_C(7195948357588979594));
    CHECK((int64_t)gq_avro_crc64("\"string\"", 8) == INT64_C(-8142146995180207161));
    uint64_t fp = 0;
    char err[256];
    CHECK(gq_avro_fingerprint("{\"type\": \"int\"}", &fp, err, sizeof(err)) == GQ_OK);
    CHECK(fp == gq_avro_crc64("\"int\"", 5));
    CHECK(gq_avro_fingerprint("{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}", &fp, err,
                              sizeof(err)) == GQ_OK);
    CHECK((int64_t)fp == INT64_C(-4824392279771201922));
}

static void test_rules(void) {
    /* PRIMITIVES, STRIP */
    CHECK_CANON("\"int\"", "\"int\"");
    CHECK_CANON("{\"type\":\"int\"}", "\"int\"");
    CHECK_CANON("{\"type\": \"string\", \"logicalType\": \"uuid\"}", "\"string\"");
    /* WHITESPACE, ORDER, STRIP of doc/aliases/default/order and unknown attributes */
    CHECK_CANON(
        "{ \"fields\" : [ {\"type\": \"long\", \"default\": 1, \"name\": \"a\","
        " \"order\": \"ignore\"} ], \"doc\": \"x\", \"name\": \"R\", \"type\": \"record\","
        " \"aliases\": [\"Q\"], \"extra\": {\"k\": [1]} }",
        "{\"name\":\"R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"}]}");
    CHECK_CANON("{\"items\": {\"values\": \"int\", \"type\": \"map\"}, \"type\": \"array\"}",
                "{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":\"int\"}}");
    /* STRINGS: escapes are decoded, so "\u0069nt" is int */
    CHECK_CANON("\"\\u0069nt\"", "\"int\"");
    /* INTEGERS */
    CHECK_CANON("{\"size\": 16, \"type\": \"fixed\", \"name\": \"F\"}",
                "{\"name\":\"F\",\"type\":\"fixed\",\"size\":16}");
    /* FULLNAMES: namespace attribute, dotted names, inheritance, references */
    CHECK_CANON(
        "{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"a.b\",\"symbols\":[\"X\",\"Y\"]}",
        "{\"name\":\"a.b.E\",\"type\":\"enum\",\"symbols\":[\"X\",\"Y\"]}");
    CHECK_CANON("{\"type\":\"fixed\",\"name\":\"c.F\",\"namespace\":\"a.b\",\"size\":2}",
                "{\"name\":\"c.F\",\"type\":\"fixed\",\"size\":2}");
    CHECK_CANON("{\"type\":\"record\",\"name\":\"x.R\",\"namespace\":\"ignored\",\"fields\":["
                "{\"name\":\"a\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":1}},"
                "{\"name\":\"b\",\"type\":\"F\"},{\"name\":\"c\",\"type\":\"x.F\"},"
                "{\"name\":\"d\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"y\","
                "\"fields\":[{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                "\"symbols\":[\"Z\"]}},{\"name\":\"f\",\"type\":\"x.F\"}]}},"
                "{\"name\":\"g\",\"type\":[\"null\",\"y.E\",\"R\"]}]}",
                "{\"name\":\"x.R\",\"type\":\"record\",\"fields\":["
                "{\"name\":\"a\",\"type\":{\"name\":\"x.F\",\"type\":\"fixed\",\"size\":1}},"
                "{\"name\":\"b\",\"type\":\"x.F\"},{\"name\":\"c\",\"type\":\"x.F\"},"
                "{\"name\":\"d\",\"type\":{\"name\":\"y.S\",\"type\":\"record\",\"fields\":["
                "{\"name\":\"e\",\"type\":{\"name\":\"y.E\",\"type\":\"enum\","
                "\"symbols\":[\"Z\"]}},{\"name\":\"f\",\"type\":\"x.F\"}]}},"
                "{\"name\":\"g\",\"type\":[\"null\",\"y.E\",\"x.R\"]}]}");
    /* "" is the null namespace; a bare name not found in the enclosing namespace is looked
     * up in the null namespace. */
    CHECK_CANON("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":["
                "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"\","
                "\"symbols\":[\"A\"]}},{\"name\":\"b\",\"type\":\"E\"}]}",
                "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\",\"type\":"
                "{\"name\":\"E\",\"type\":\"enum\",\"symbols\":[\"A\"]}},"
                "{\"name\":\"b\",\"type\":\"E\"}]}");
}

static void test_invalid(void) {
    static const char *const bad[] = {
        "\"Nope\"",
        "{\"type\":\"record\",\"name\":\"a..b\",\"fields\":[]}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x-y\",\"type\":\"int\"}]}",
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"ok\", 3]}",
        "{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}",
        "{\"type\":\"fixed\",\"name\":\"F\",\"size\":1.5}",
        "{\"type\":\"array\"}",
        "{\"type\":\"record\",\"name\":\"long\",\"fields\":[]}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[],\"fields\":[]}",
        "{\"type\":[\"int\"]}",
        "true",
        "",
    };
    char err[256];
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        gq_buf_t b;
        gq_buf_init(&b, 1024);
        gq_buf_appends(&b, "keep");
        err[0] = '\0';
        gq_status_t st = gq_avro_canonical_form(bad[i], &b, err, sizeof(err));
        if (st != GQ_ERR_INVALID)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK(st == GQ_ERR_INVALID);
        CHECK(err[0] != '\0');
        CHECK_STR(b.data, "keep"); /* a failure leaves out as it was */
        gq_buf_release(&b);
    }
    /* Deep nesting is refused, not recursed into without end. */
    gq_buf_t deep;
    gq_buf_init(&deep, 1 << 16);
    for (int i = 0; i < 200; i++)
        gq_buf_appends(&deep, "{\"type\":\"array\",\"items\":");
    gq_buf_appends(&deep, "\"int\"");
    for (int i = 0; i < 200; i++)
        gq_buf_appends(&deep, "}");
    gq_buf_t out;
    gq_buf_init(&out, 1 << 16);
    CHECK(gq_avro_canonical_form(deep.data, &out, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "deeper") != NULL);
    gq_buf_release(&out);
    gq_buf_release(&deep);
    /* A bounded output buffer is respected. */
    gq_buf_init(&out, 8);
    CHECK(gq_avro_canonical_form("{\"type\":\"map\",\"values\":\"int\"}", &out, err, sizeof(err)) ==
          GQ_ERR_TOOBIG);
    gq_buf_release(&out);
}

static void test_vector(json_t *v) {
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *schema = json_string_value(json_object_get(v, "schema"));
    const char *file = json_string_value(json_object_get(v, "file"));
    const char *expected = json_string_value(json_object_get(v, "canonical"));
    const char *fp_hex = json_string_value(json_object_get(v, "fingerprint"));
    CHECK(name && expected && fp_hex && (schema || file));
    if (!name || !expected || !fp_hex)
        return;
    if (file) {
        /* The .avsc as compiled into genq: a changed schema must come with new vectors. */
        const gq_embedded_t *e = gq_embedded_find(file);
        CHECK(e != NULL);
        if (!e)
            return;
        schema = e->data;
    }
    char *got = canon(schema);
    if (!got || strcmp(got, expected) != 0)
        fprintf(stderr, "  vector %s\n", name);
    CHECK_STR(got, expected);
    uint64_t fp = 0;
    char err[256];
    CHECK(gq_avro_fingerprint(schema, &fp, err, sizeof(err)) == GQ_OK);
    CHECK(fp == strtoull(fp_hex, NULL, 16));
    CHECK((int64_t)fp == (int64_t)json_integer_value(json_object_get(v, "fingerprint_signed")));
    free(got);
}

static void test_vectors(void) {
    char path[PATH_MAX];
    if (!check_find_src("tests/schemas/vectors.json", path, sizeof(path))) {
        fprintf(stderr, "FAIL: tests/schemas/vectors.json not found (set GENQ_SRCDIR)\n");
        CHECK(0);
        return;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK(root != NULL);
    if (!root)
        return;
    json_t *vectors = json_object_get(root, "vectors");
    json_t *invalid = json_object_get(root, "invalid");
    CHECK(json_array_size(vectors) >= 40);
    CHECK(json_array_size(invalid) >= 10);
    size_t i;
    json_t *v;
    json_array_foreach(vectors, i, v) test_vector(v);
    json_array_foreach(invalid, i, v) {
        gq_buf_t b;
        char err[256];
        gq_buf_init(&b, 1 << 20);
        const char *schema = json_string_value(json_object_get(v, "schema"));
        gq_status_t st = gq_avro_canonical_form(schema ? schema : "", &b, err, sizeof(err));
        if (st != GQ_ERR_INVALID)
            fprintf(stderr, "  invalid vector accepted: %s\n",
                    json_string_value(json_object_get(v, "name")));
        CHECK(st == GQ_ERR_INVALID);
        gq_buf_release(&b);
    }
    json_decref(root);
}

int main(void) {
    test_crc64();
    test_rules();
    test_invalid();
    test_vectors();
    return CHECK_DONE("test_avro_canon");
}
