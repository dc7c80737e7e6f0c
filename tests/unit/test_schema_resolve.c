/*
 * Schema resolution (avro_resolve.c) by the rules of the Avro specification: fields added
 * with defaults, removed fields, reordering, promotions, aliases, enum defaults, unions;
 * hostile data under a writer's schema; compatibility levels; and through the public
 * decoders, requests written with an older and a newer GenerationRequest (a schema
 * directory), the released versions compiled in, Confluent framing and a registry that
 * cannot be reached.
 */
#include "avro_canon.h"
#include "avro_resolve.h"
#include "genq_schema.h"
#include "util.h"
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

static void put_long(gq_buf_t *b, int64_t v) {
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    do {
        unsigned char c = (unsigned char)(u & 0x7f);
        u >>= 7;
        if (u)
            c |= 0x80;
        gq_buf_append(b, &c, 1);
    } while (u);
}

static void put_str(gq_buf_t *b, const char *s) {
    put_long(b, (int64_t)strlen(s));
    gq_buf_appends(b, s);
}

static void put_double(gq_buf_t *b, double d) {
    unsigned char t[8];
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        t[i] = (unsigned char)(u >> (8 * i));
    gq_buf_append(b, t, 8);
}

static void put_float(gq_buf_t *b, float f) {
    unsigned char t[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++)
        t[i] = (unsigned char)(u >> (8 * i));
    gq_buf_append(b, t, 4);
}

static gq_avsc_t *schema(const char *json) {
    char err[256] = "";
    gq_avsc_t *s = gq_avsc_parse(json, strlen(json), err, sizeof(err));
    if (!s)
        fprintf(stderr, "schema does not parse: %s\n%s\n", err, json);
    return s;
}

/* Resolves data (writer w) into reader r; expects the reader's bytes `want` (or failure
 * with a message containing `fail` when want is NULL). */
static void expect_resolve(const char *w, const char *r, const gq_buf_t *data, const gq_buf_t *want,
                           const char *fail) {
    gq_avsc_t *ws = schema(w), *rs = schema(r);
    CHECK(ws && rs);
    if (!ws || !rs) {
        gq_avsc_destroy(ws);
        gq_avsc_destroy(rs);
        return;
    }
    char err[512] = "";
    gq_avro_plan_t *p = gq_avro_plan_new(ws, rs, false, err, sizeof(err));
    if (!p) {
        CHECK(want == NULL && fail && strstr(err, fail));
        if (!(want == NULL && fail && strstr(err, fail)))
            fprintf(stderr, "  plan: %s\n", err);
    } else {
        gq_buf_t out;
        gq_buf_init(&out, 1u << 20);
        gq_status_t st = gq_avro_resolve(p, data->data, data->len, 4096, &out, err, sizeof(err));
        if (want) {
            CHECK_INT(st, GQ_OK);
            CHECK_INT(out.len, want->len);
            CHECK(out.len == want->len && memcmp(out.data, want->data, want->len) == 0);
            if (st != GQ_OK)
                fprintf(stderr, "  resolve: %s\n", err);
        } else {
            CHECK_INT(st, GQ_ERR_INVALID);
            CHECK(fail && strstr(err, fail));
            if (!(fail && strstr(err, fail)))
                fprintf(stderr, "  resolve said: %s\n", err);
        }
        gq_buf_release(&out);
        gq_avro_plan_destroy(p);
    }
    gq_avsc_destroy(ws);
    gq_avsc_destroy(rs);
}

static void test_records(void) {
    gq_buf_t d, want;
    gq_buf_init(&d, 1 << 20);
    gq_buf_init(&want, 1 << 20);
    /* Reordered, one removed (skipped), two added with defaults (a record and a map). */
    const char *w = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":["
                    "{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"gone\",\"type\":{\"type\":"
                    "\"array\",\"items\":\"string\"}},{\"name\":\"b\",\"type\":\"string\"}]}";
    const char *r =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":["
        "{\"name\":\"b\",\"type\":\"string\"},"
        "{\"name\":\"c\",\"type\":{\"type\":\"record\",\"name\":\"C\",\"fields\":[{\"name\":\"x\","
        "\"type\":\"long\",\"default\":7},{\"name\":\"y\",\"type\":[\"null\",\"string\"]}]},"
        "\"default\":{\"y\":null}},"
        "{\"name\":\"a\",\"type\":\"long\"},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"double\"},\"default\":{\"k\":1.5}}"
        "]}";
    put_long(&d, 42);
    put_long(&d, 2);
    put_str(&d, "skip");
    put_str(&d, "me");
    put_long(&d, 0);
    put_str(&d, "bee");
    put_str(&want, "bee");
    put_long(&want, 7);
    put_long(&want, 0);
    put_long(&want, 42);
    put_long(&want, 1);
    put_str(&want, "k");
    put_double(&want, 1.5);
    put_long(&want, 0);
    expect_resolve(w, r, &d, &want, NULL);

    /* The same field order: streamed through, defaults appended. */
    const char *w2 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                     "\"string\"}]}";
    const char *r2 =
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
        "\"string\"},{\"name\":\"z\",\"type\":[\"null\",\"int\"],\"default\":null},"
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"P\","
        "\"Q\"]},\"default\":\"Q\"},{\"name\":\"bs\",\"type\":\"bytes\",\"default\":"
        "\"\\u00ff\\u0001\"},{\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":"
        "\"int\"},\"default\":[1,2]}]}";
    gq_buf_reset(&d);
    gq_buf_reset(&want);
    put_str(&d, "x");
    put_str(&want, "x");
    put_long(&want, 0);
    put_long(&want, 1);
    put_long(&want, 2);
    gq_buf_append(&want, "\xff\x01", 2);
    put_long(&want, 2);
    put_long(&want, 1);
    put_long(&want, 2);
    put_long(&want, 0);
    expect_resolve(w2, r2, &d, &want, NULL);

    /* A field the writer lacks, without a default: no plan. */
    const char *r3 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                     "\"string\"},{\"name\":\"q\",\"type\":\"int\"}]}";
    expect_resolve(w2, r3, &d, NULL, "q: not in the writer's schema");

    /* Field and record aliases. */
    const char *wa = "{\"type\":\"record\",\"name\":\"Old\",\"namespace\":\"n\",\"fields\":["
                     "{\"name\":\"before\",\"type\":\"int\"}]}";
    const char *ra = "{\"type\":\"record\",\"name\":\"New\",\"namespace\":\"n\",\"aliases\":["
                     "\"Old\"],\"fields\":[{\"name\":\"after\",\"aliases\":[\"before\"],\"type\":"
                     "\"int\"}]}";
    gq_buf_reset(&d);
    put_long(&d, -5);
    expect_resolve(wa, ra, &d, &d, NULL);
    const char *rn = "{\"type\":\"record\",\"name\":\"New\",\"namespace\":\"n\",\"fields\":["
                     "{\"name\":\"before\",\"type\":\"int\"}]}";
    expect_resolve(wa, rn, &d, NULL, "does not match the reader's");
    gq_buf_release(&d);
    gq_buf_release(&want);
}

static void test_promotions(void) {
    gq_buf_t d, want;
    gq_buf_init(&d, 1 << 20);
    gq_buf_init(&want, 1 << 20);
    put_long(&d, 300);
    put_double(&want, 300.0);
    expect_resolve("\"int\"", "\"double\"", &d, &want, NULL);
    gq_buf_reset(&want);
    put_float(&want, 300.0f);
    expect_resolve("\"long\"", "\"float\"", &d, &want, NULL);
    expect_resolve("\"int\"", "\"long\"", &d, &d, NULL);
    gq_buf_reset(&d);
    gq_buf_reset(&want);
    put_float(&d, 0.25f);
    put_double(&want, 0.25);
    expect_resolve("\"float\"", "\"double\"", &d, &want, NULL);
    expect_resolve("\"double\"", "\"float\"", &d, NULL, "cannot be read as float");
    gq_buf_reset(&d);
    put_str(&d, "text");
    expect_resolve("\"string\"", "\"bytes\"", &d, &d, NULL);
    expect_resolve("\"bytes\"", "\"string\"", &d, &d, NULL);
    gq_buf_reset(&d);
    put_long(&d, 2);
    gq_buf_append(&d, "\xff\xfe", 2);
    expect_resolve("\"bytes\"", "\"string\"", &d, NULL, "not valid UTF-8");
    expect_resolve("\"long\"", "\"int\"", &d, NULL, "cannot be read as int");
    gq_buf_release(&d);
    gq_buf_release(&want);
}

static void test_enums_unions(void) {
    gq_buf_t d, want;
    gq_buf_init(&d, 1 << 20);
    gq_buf_init(&want, 1 << 20);
    const char *we = "{\"type\":\"enum\",\"name\":\"S\",\"symbols\":[\"A\",\"B\",\"C\"]}";
    const char *re =
        "{\"type\":\"enum\",\"name\":\"S\",\"symbols\":[\"C\",\"A\"],\"default\":\"A\"}";
    const char *rx = "{\"type\":\"enum\",\"name\":\"S\",\"symbols\":[\"C\",\"A\"]}";
    put_long(&d, 2); /* C */
    put_long(&want, 0);
    expect_resolve(we, re, &d, &want, NULL);
    gq_buf_reset(&d);
    gq_buf_reset(&want);
    put_long(&d, 1); /* B: not in the reader's, its default A */
    put_long(&want, 1);
    expect_resolve(we, re, &d, &want, NULL);
    expect_resolve(we, rx, &d, NULL, "symbol B is not in the reader's enum");
    gq_buf_reset(&d);
    put_long(&d, 7);
    expect_resolve(we, re, &d, NULL, "enum index 7 out of range");

    /* Writer union into a reader union with the branches moved and promoted. */
    gq_buf_reset(&d);
    gq_buf_reset(&want);
    put_long(&d, 1);
    put_long(&d, 9);
    put_long(&want, 0);
    put_double(&want, 9.0);
    expect_resolve("[\"null\",\"int\"]", "[\"double\",\"null\"]", &d, &want, NULL);
    /* A plain writer into a reader's union; a writer union into a plain reader. */
    gq_buf_reset(&d);
    gq_buf_reset(&want);
    put_str(&d, "s");
    put_long(&want, 1);
    put_str(&want, "s");
    expect_resolve("\"string\"", "[\"null\",\"string\"]", &d, &want, NULL);
    gq_buf_reset(&want);
    put_long(&want, 1);
    put_str(&want, "s");
    expect_resolve("[\"null\",\"string\"]", "\"string\"", &want, &d, NULL);
    gq_buf_reset(&d);
    put_long(&d, 0);
    expect_resolve("[\"null\",\"string\"]", "\"string\"", &d, NULL, "the writer's null cannot");
    expect_resolve("\"boolean\"", "[\"null\",\"string\"]", &d, NULL, "not a branch");
    gq_buf_release(&d);
    gq_buf_release(&want);
}

/* Hostile data under a writer's schema: every length checked before use. */
static void test_hostile(void) {
    const char *w = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"s\",\"type\":"
                    "\"string\"},{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
                    "{\"name\":\"gone\",\"type\":\"bytes\"}]}";
    const char *r = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"m\",\"type\":{"
                    "\"type\":\"map\",\"values\":\"long\"}},{\"name\":\"s\",\"type\":\"string\"}]}";
    gq_buf_t d;
    gq_buf_init(&d, 1 << 20);
    put_long(&d, 4000000000LL);
    gq_buf_appends(&d, "ab");
    expect_resolve(w, r, &d, NULL, "s: string length 4000000000 exceeds");
    gq_buf_reset(&d);
    put_str(&d, "ok");
    put_long(&d, 5000); /* more map items than allowed in a message */
    expect_resolve(w, r, &d, NULL, "exceeds the limit on items");
    gq_buf_reset(&d);
    put_str(&d, "ok");
    put_long(&d, 0);
    put_long(&d, 10); /* the skipped bytes field claims more than is there */
    expect_resolve(w, r, &d, NULL, "gone: bytes length 10 exceeds");
    gq_buf_reset(&d);
    put_str(&d, "ok");
    put_long(&d, 0);
    put_str(&d, "x");
    gq_buf_appends(&d, "?");
    expect_resolve(w, r, &d, NULL, "1 bytes left over");
    gq_buf_reset(&d);
    gq_buf_append(&d, "\x04\x00\x00", 3);
    expect_resolve(w, r, &d, NULL, "NUL byte");
    /* Random garbage never crashes, never succeeds with bytes left over. */
    gq_avsc_t *ws = schema(w), *rs = schema(r);
    char err[512];
    gq_avro_plan_t *p = gq_avro_plan_new(ws, rs, false, err, sizeof(err));
    CHECK(p != NULL);
    unsigned char junk[64];
    for (int i = 0; p && i < 2000; i++) {
        size_t n = (size_t)(gq_random_u64() % sizeof(junk));
        gq_random_bytes(junk, sizeof(junk));
        gq_buf_t out;
        gq_buf_init(&out, 1 << 20);
        gq_status_t st = gq_avro_resolve(p, junk, n, 4096, &out, err, sizeof(err));
        CHECK(st == GQ_OK || st == GQ_ERR_INVALID);
        gq_buf_release(&out);
    }
    gq_avro_plan_destroy(p);
    gq_avsc_destroy(ws);
    gq_avsc_destroy(rs);
    gq_buf_release(&d);
    /* Schemas that are not: bad JSON, unknown names, duplicates. */
    const char *bad[] = {"{",
                         "\"nosuch\"",
                         "[\"int\",\"int\"]",
                         ("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
                          "\"type\":\"int\"},{\"name\":\"a\",\"type\":\"int\"}]}"),
                         "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
                         "{\"type\":\"fixed\",\"name\":\"F\"}"};
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        gq_avsc_t *s = gq_avsc_parse(bad[i], strlen(bad[i]), err, sizeof(err));
        CHECK(s == NULL);
        gq_avsc_destroy(s);
    }
    /* A recursive schema parses and resolves. */
    const char *list = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":"
                       "\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    gq_buf_init(&d, 1 << 20);
    put_long(&d, 1);
    put_long(&d, 1);
    put_long(&d, 2);
    put_long(&d, 0);
    expect_resolve(list, list, &d, &d, NULL);
    gq_buf_release(&d);
}

static void expect_compat(const char *newer, const char *older, gq_avro_compat_t level, bool ok,
                          const char *why) {
    gq_avsc_t *n = schema(newer), *o = schema(older);
    char err[512] = "";
    gq_status_t st = n && o ? gq_avro_compatible(n, o, level, err, sizeof(err)) : GQ_ERR;
    CHECK(ok ? st == GQ_OK : st == GQ_ERR_INVALID);
    if (!ok)
        CHECK(why && strstr(err, why));
    if ((ok && st != GQ_OK) || (!ok && (!why || !strstr(err, why))))
        fprintf(stderr, "  compat: %s\n", err);
    gq_avsc_destroy(n);
    gq_avsc_destroy(o);
}

static void test_compat(void) {
    const char *v1 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                     "\"int\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                     "\"symbols\":[\"X\",\"Y\"]}}]}";
    const char *opt = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                      "\"int\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                      "\"symbols\":[\"X\",\"Y\"]}},{\"name\":\"n\",\"type\":[\"null\",\"string\"],"
                      "\"default\":null}]}";
    const char *req = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                      "\"int\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                      "\"symbols\":[\"X\",\"Y\"]}},{\"name\":\"n\",\"type\":\"string\"}]}";
    const char *retyped = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
                          "\"type\":\"string\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\","
                          "\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}}]}";
    const char *widened = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
                          "\"type\":\"long\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\","
                          "\"name\":\"E\",\"symbols\":[\"X\",\"Y\",\"Z\"]}}]}";
    expect_compat(opt, v1, GQ_AVRO_FULL, true, NULL);
    expect_compat(req, v1, GQ_AVRO_FORWARD, true, NULL);
    expect_compat(req, v1, GQ_AVRO_BACKWARD, false, "n: not in the writer's schema");
    expect_compat(v1, req, GQ_AVRO_FORWARD, false, "not forward compatible");
    expect_compat(retyped, v1, GQ_AVRO_BACKWARD, false, "a: the writer's int cannot be read");
    expect_compat(widened, v1, GQ_AVRO_BACKWARD, true, NULL);
    const char *more = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
                       "\"type\":\"int\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\","
                       "\"name\":\"E\",\"symbols\":[\"X\",\"Y\",\"Z\"]}}]}";
    expect_compat(more, v1, GQ_AVRO_FORWARD, false, "symbol Z of enum E");
    expect_compat(widened, v1, GQ_AVRO_FORWARD, false,
                  "a: the writer's long cannot be read as int");
}

/* The current GenerationRequest with fields changed by edit() (a jansson array of fields). */
static char *request_variant(void (*edit)(json_t *fields)) {
    char path[4096], err[256];
    char *text = NULL;
    size_t len = 0;
    if (!check_find_src("schemas/GenerationRequest.avsc", path, sizeof(path)) ||
        gq_read_file(path, 1 << 20, &text, &len, err, sizeof(err)) != GQ_OK)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    edit(json_object_get(j, "fields"));
    char *out = json_dumps(j, JSON_INDENT(1));
    json_decref(j);
    return out;
}

/* v0: seed an int, no timeout_s and no metadata (both have defaults now). */
static void edit_v0(json_t *fields) {
    for (size_t i = json_array_size(fields); i-- > 0;) {
        json_t *f = json_array_get(fields, i);
        const char *n = json_string_value(json_object_get(f, "name"));
        if (strcmp(n, "timeout_s") == 0 || strcmp(n, "metadata") == 0)
            json_array_remove(fields, i);
        else if (strcmp(n, "seed") == 0)
            json_object_set_new(f, "type", json_string("int"));
    }
}

/* v2: a new optional field at the end. */
static void edit_v2(json_t *fields) {
    json_array_append_new(fields, json_pack("{s:s, s:[s,s], s:n}", "name", "style", "type", "null",
                                            "string", "default"));
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_requests(void) {
    char err[1024], dir[] = "/tmp/genq-resolve-XXXXXX", path[4200];
    CHECK(mkdtemp(dir) != NULL);
    char *v0 = request_variant(edit_v0), *v2 = request_variant(edit_v2);
    CHECK(v0 && v2);
    if (!v0 || !v2)
        return;
    snprintf(path, sizeof(path), "%s/GenerationRequest.v0.avsc", dir);
    write_file(path, v0);
    snprintf(path, sizeof(path), "%s/GenerationRequest.v2.avsc", dir);
    write_file(path, v2);
    uint64_t fp0, fp2;
    CHECK(gq_avro_fingerprint(v0, &fp0, err, sizeof(err)) == GQ_OK &&
          gq_avro_fingerprint(v2, &fp2, err, sizeof(err)) == GQ_OK);

    /* The current encoding of a request with no timeout and no metadata ends in 00 00. */
    gq_request_t req, out;
    gq_request_init(&req);
    gq_strlcpy(req.job_id, ID, sizeof(req.job_id));
    free(req.prompt);
    req.prompt = strdup("a lighthouse");
    req.seed = 12345;
    gq_buf_t cur, msg;
    gq_buf_init(&cur, 1 << 20);
    gq_buf_init(&msg, 1 << 20);
    CHECK(gq_request_encode(&req, &cur, err, sizeof(err)) == GQ_OK);
    CHECK(cur.len > 12 && memcmp(cur.data + cur.len - 2, "\0\0", 2) == 0);

    /* Unknown until the directory is loaded. */
    unsigned char hdr[10] = {0xc3, 0x01};
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)(fp0 >> (8 * i));
    gq_buf_append(&msg, hdr, 10);
    gq_buf_append(&msg, cur.data + 10, cur.len - 12);
    CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_ERR_INVALID);
    CHECK(strstr(err, "unknown schema fingerprint") && strstr(err, "GENQ_SCHEMA_DIR"));
    CHECK_STR(out.job_id, ID);
    gq_request_release(&out);
    CHECK(gq_schema_load_dir(dir, err, sizeof(err)) == GQ_OK);

    CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_OK);
    CHECK_STR(out.job_id, ID);
    CHECK_STR(out.prompt, "a lighthouse");
    CHECK_INT(out.seed, 12345);
    CHECK_INT(out.timeout_s, 0);
    CHECK_INT(out.metadata_cnt, 0);
    CHECK_INT(out.width, 512);
    gq_request_release(&out);

    /* v2: the current datum and the new field after it. */
    gq_buf_reset(&msg);
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)(fp2 >> (8 * i));
    gq_buf_append(&msg, hdr, 10);
    gq_buf_append(&msg, cur.data + 10, cur.len - 10);
    put_long(&msg, 1);
    put_str(&msg, "watercolour");
    CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_OK);
    CHECK_STR(out.prompt, "a lighthouse");
    CHECK_INT(out.seed, 12345);
    gq_request_release(&out);
    /* ... cut short in the new field: a decode error that still names the job. */
    CHECK_INT(gq_request_decode(msg.data, msg.len - 3, &out, err, sizeof(err)), GQ_ERR_INVALID);
    CHECK(strstr(err, "style") != NULL);
    CHECK_STR(out.job_id, ID);
    gq_request_release(&out);

    /* The released versions are compiled in. */
    uint64_t fps[64];
    const char *labels[64];
    size_t n = gq_schema_writers(fps, labels, 64);
    bool v1req = false, v1done = false;
    for (size_t i = 0; i < n && i < 64; i++) {
        v1req |= strcmp(labels[i], "schemas/history/GenerationRequest.v1.avsc") == 0;
        v1done |= strcmp(labels[i], "schemas/history/GenerationCompleted.v1.avsc") == 0;
    }
    CHECK(v1req && v1done);

    /* Confluent framing: without a registry, a hint; reframing round trip of the header. */
    gq_buf_reset(&msg);
    gq_buf_append(&msg, cur.data, cur.len);
    CHECK(gq_schema_reframe(&msg, 0, GQ_FRAMING_CONFLUENT, 258) == GQ_OK);
    CHECK_INT(msg.len, cur.len - 5);
    CHECK(memcmp(msg.data, "\x00\x00\x00\x01\x02", 5) == 0);
    CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_ERR_INVALID);
    CHECK(strstr(err, "GENQ_SCHEMA_REGISTRY_URL") != NULL);
    CHECK_STR(out.job_id, ID);
    gq_request_release(&out);

    /* A registry that cannot be reached: the message waits (transient), in both modes. */
    gq_registry_conf_t rc = {.url = "http://127.0.0.1:1", .timeout_ms = 500};
    CHECK(gq_schema_registry_set(&rc, err, sizeof(err)) == GQ_OK);
    CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "unreachable") != NULL);
    CHECK_STR(out.job_id, ID);
    gq_request_release(&out);
    rc.async = 1;
    CHECK(gq_schema_registry_set(&rc, err, sizeof(err)) == GQ_OK);
    CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "fetching") != NULL);
    gq_request_release(&out);
    for (int i = 0; i < 50; i++) {
        gq_sleep_ms(50);
        CHECK_INT(gq_request_decode(msg.data, msg.len, &out, err, sizeof(err)), GQ_ERR_TRANSIENT);
        gq_request_release(&out);
        if (strstr(err, "unreachable"))
            break;
    }
    CHECK(strstr(err, "unreachable") != NULL);
    CHECK(gq_schema_registry_set(NULL, err, sizeof(err)) == GQ_OK);
    CHECK(gq_schema_registry_set(&(gq_registry_conf_t){.url = "ftp://x"}, err, sizeof(err)) ==
          GQ_ERR_INVALID);

    gq_request_release(&req);
    gq_buf_release(&cur);
    gq_buf_release(&msg);
    free(v0);
    free(v2);
    snprintf(path, sizeof(path), "%s/GenerationRequest.v0.avsc", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/GenerationRequest.v2.avsc", dir);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    test_records();
    test_promotions();
    test_enums_unions();
    test_hostile();
    test_compat();
    test_requests();
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_resolve");
}
