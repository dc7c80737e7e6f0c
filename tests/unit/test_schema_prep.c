/*
 * The direct Avro encoder of GenerationRequest (gq_request_encode) and the prepared requests
 * (gq_request_prep_*), both checked against the reference encoder gq_request_encode_avro()
 * (an avro-c generic value written by avro_value_write): the same bytes for many random
 * requests, the same errors for what cannot be encoded, and prepared requests that always
 * hold the encoding of the request their setters describe.
 * GENQ_TEST_SEED=<n> replays one run; GENQ_TEST_ROUNDS=<n> changes how many requests.
 */
#include "genq_schema.h"
#include "schema_int.h"
#include "embedded.h"
#include "util.h"
#include "check.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

static uint64_t rng_state;

/* xorshift64*: reproducible from the seed that the test prints. */
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717u;
}

static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static bool rnd_chance(int percent) { return rnd_below(100) < (uint64_t)percent; }

/* A length that often sits next to a varint boundary (63/64, 8191/8192 zig-zag). */
static size_t rnd_len(size_t max) {
    static const size_t edges[] = {0, 1, 63, 64, 65, 127, 128, 8191, 8192, 8193};
    size_t n = rnd_chance(30) ? edges[rnd_below(GQ_ARRAY_LEN(edges))] : rnd_below(100);
    return n > max ? max : n;
}

/* Any bytes but NUL (Avro strings are not checked by either encoder). */
static char *rnd_bytes_str(size_t max) {
    size_t n = rnd_len(max);
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + rnd_below(255));
    s[n] = '\0';
    return s;
}

/* Valid UTF-8 without control characters: ASCII, then 2-, 3- and 4-byte characters. */
static char *rnd_text(size_t max) {
    static const char *const pieces[] = {
        "a", "Z", " ", "7", "\"", "\\", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x8c\x85", "."};
    size_t n = rnd_len(max), len = 0;
    char *s = malloc(4 * n + 1);
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd_below(GQ_ARRAY_LEN(pieces))];
        size_t k = strlen(p);
        if (len + k > max)
            break;
        memcpy(s + len, p, k);
        len += k;
    }
    s[len] = '\0';
    return s;
}

/* 1..max characters of [A-Za-z0-9._-], not starting with '.'. */
static char *rnd_name(size_t max) {
    static const char cs[] = "abcXYZ019._-";
    size_t n = 1 + rnd_below(rnd_chance(10) ? max : (max < 20 ? max : 20));
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = cs[rnd_below(sizeof(cs) - 1)];
    if (s[0] == '.')
        s[0] = 'n';
    s[n] = '\0';
    return s;
}

static int64_t rnd_i64(void) {
    static const int64_t edges[] = {0,   1,         -1,        63,        64,       -64,
                                    -65, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    return rnd_chance(30) ? edges[rnd_below(GQ_ARRAY_LEN(edges))] : (int64_t)rnd() >> rnd_below(64);
}

static int32_t rnd_i32(void) {
    return (int32_t)(uint32_t)(rnd_chance(50) ? (uint64_t)rnd_i64() : rnd());
}

static double rnd_double(void) {
    static const double edges[] = {0.0, -0.0, 7.0, 1e-310, INFINITY, -INFINITY};
    if (rnd_chance(10))
        return NAN;
    if (rnd_chance(20))
        return edges[rnd_below(GQ_ARRAY_LEN(edges))];
    uint64_t u = rnd();
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static gq_kv_t *rnd_map(size_t *cnt, bool valid_overrides) {
    *cnt = rnd_chance(40) ? 0 : rnd_chance(90) ? 1 + rnd_below(5) : 17 + rnd_below(40);
    if (!*cnt)
        return NULL;
    gq_kv_t *kv = calloc(*cnt, sizeof(*kv));
    for (size_t i = 0; i < *cnt; i++) {
        char key[64];
        if (valid_overrides)
            snprintf(key, sizeof(key), "%zu.in_%llu", i, (unsigned long long)rnd_below(1000));
        else
            snprintf(key, sizeof(key), "k%zu-%llu", i, (unsigned long long)rnd_below(1000));
        kv[i].key = strdup(key);
        kv[i].value = valid_overrides ? strdup(rnd_chance(50) ? "42" : "\"a cat\"") : rnd_text(200);
    }
    return kv;
}

/* Any request the encoders accept, valid or not. */
static void rnd_request_any(gq_request_t *r) {
    memset(r, 0, sizeof(*r));
    char *id = rnd_bytes_str(36);
    memcpy(r->job_id, id, strlen(id) + 1);
    free(id);
    r->submitted_at = rnd_i64();
    r->workflow = rnd_chance(20) ? NULL : rnd_bytes_str(200);
    r->workflow_json = rnd_chance(50) ? NULL : rnd_bytes_str(9000);
    r->prompt = rnd_bytes_str(9000);
    r->negative_prompt = rnd_chance(20) ? NULL : rnd_bytes_str(300);
    r->width = rnd_i32();
    r->height = rnd_i32();
    r->seed = rnd_i64();
    r->steps = rnd_i32();
    r->cfg = rnd_double();
    r->sampler = rnd_chance(20) ? NULL : rnd_bytes_str(80);
    r->scheduler = rnd_chance(20) ? NULL : rnd_bytes_str(80);
    r->model = rnd_chance(50) ? NULL : rnd_bytes_str(300);
    r->batch_size = rnd_i32();
    r->overrides = rnd_map(&r->overrides_cnt, false);
    r->priority = rnd_i32();
    r->source = rnd_chance(20) ? NULL : rnd_bytes_str(150);
    r->max_attempts = rnd_chance(50) ? 0 : rnd_i32();
    r->timeout_s = rnd_chance(50) ? 0 : rnd_i32();
    r->metadata = rnd_map(&r->metadata_cnt, false);
}

static char *rnd_model(void) {
    char *a = rnd_name(40), *b = rnd_name(40);
    char *m = malloc(strlen(a) + strlen(b) + 2);
    snprintf(m, strlen(a) + strlen(b) + 2, "%s/%s", a, b);
    free(a);
    free(b);
    return m;
}

/* A request that passes gq_request_validate. */
static void rnd_request_valid(gq_request_t *r) {
    memset(r, 0, sizeof(*r));
    CHECK(gq_uuid_v4(r->job_id) == GQ_OK);
    r->submitted_at = (int64_t)(rnd() >> 1);
    r->workflow = rnd_chance(20) ? NULL : rnd_name(GQ_REQUEST_NAME_MAX);
    if (rnd_chance(30)) {
        char *t = rnd_text(500);
        json_t *j = json_pack("{s:s, s:{s:i}}", "label", t, "3", "steps", (int)rnd_below(99));
        r->workflow_json = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        free(t);
    }
    r->prompt = rnd_text(9000);
    r->negative_prompt = rnd_chance(20) ? NULL : rnd_text(300);
    r->width = (int32_t)(8 * (2 + rnd_below(2047)));
    r->height = (int32_t)(8 * (2 + rnd_below(2047)));
    r->seed = (int64_t)(rnd() >> (1 + rnd_below(63)));
    r->steps = (int32_t)(1 + rnd_below(10000));
    r->cfg = (double)rnd_below(10001) / 100.0;
    r->sampler = rnd_chance(20) ? NULL : rnd_name(GQ_REQUEST_SAMPLER_MAX);
    r->scheduler = rnd_chance(20) ? NULL : rnd_name(GQ_REQUEST_SAMPLER_MAX);
    r->model = rnd_chance(40) ? NULL : rnd_model();
    r->batch_size = (int32_t)(1 + rnd_below(64));
    r->overrides = rnd_map(&r->overrides_cnt, true);
    r->priority = rnd_i32();
    r->source = rnd_chance(20) ? NULL : rnd_text(GQ_REQUEST_SOURCE_MAX);
    r->max_attempts = rnd_chance(50) ? 0 : (int32_t)(1 + rnd_below(100));
    r->timeout_s = rnd_chance(50) ? 0 : (int32_t)(1 + rnd_below(86400));
    r->metadata = rnd_map(&r->metadata_cnt, false);
    if (r->metadata_cnt > GQ_REQUEST_METADATA_MAX) {
        gq_kv_free(r->metadata, r->metadata_cnt);
        r->metadata = NULL;
        r->metadata_cnt = 0;
    }
}

static void dump_hex(const char *what, const void *p, size_t n) {
    const unsigned char *b = p;
    fprintf(stderr, "  %s (%zu bytes):", what, n);
    for (size_t i = 0; i < n && i < 96; i++)
        fprintf(stderr, " %02x", b[i]);
    fprintf(stderr, n > 96 ? " ...\n" : "\n");
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen) {
    if (alen == blen && memcmp(a, b, alen) == 0)
        return true;
    dump_hex("got", a, alen);
    dump_hex("expected", b, blen);
    return false;
}

/* Both encoders, on the same request: the same status, bytes or message. */
static bool encoders_agree(const gq_request_t *r, size_t max) {
    char e1[512] = "", e2[512] = "";
    gq_buf_t a, b;
    gq_buf_init(&a, max);
    gq_buf_init(&b, max);
    gq_buf_append(&a, "x", 1);
    gq_buf_append(&b, "x", 1);
    gq_status_t s1 = gq_request_encode(r, &a, e1, sizeof(e1));
    gq_status_t s2 = gq_request_encode_avro(r, &b, e2, sizeof(e2));
    bool ok = s1 == s2 && strcmp(e1, e2) == 0 && same_bytes(a.data, a.len, b.data, b.len);
    if (!ok)
        fprintf(stderr, "  direct %d \"%s\", avro-c %d \"%s\"\n", s1, e1, s2, e2);
    gq_buf_release(&a);
    gq_buf_release(&b);
    return ok;
}

static void test_field_order(void) {
    static const char *const names[GQ_REQ_FIELD_CNT] = {
        [GQ_REQ_JOB_ID] = "job_id",
        [GQ_REQ_SUBMITTED_AT] = "submitted_at",
        [GQ_REQ_WORKFLOW] = "workflow",
        [GQ_REQ_WORKFLOW_JSON] = "workflow_json",
        [GQ_REQ_PROMPT] = "prompt",
        [GQ_REQ_NEGATIVE_PROMPT] = "negative_prompt",
        [GQ_REQ_WIDTH] = "width",
        [GQ_REQ_HEIGHT] = "height",
        [GQ_REQ_SEED] = "seed",
        [GQ_REQ_STEPS] = "steps",
        [GQ_REQ_CFG] = "cfg",
        [GQ_REQ_SAMPLER] = "sampler",
        [GQ_REQ_SCHEDULER] = "scheduler",
        [GQ_REQ_MODEL] = "model",
        [GQ_REQ_BATCH_SIZE] = "batch_size",
        [GQ_REQ_OVERRIDES] = "overrides",
        [GQ_REQ_PRIORITY] = "priority",
        [GQ_REQ_SOURCE] = "source",
        [GQ_REQ_MAX_ATTEMPTS] = "max_attempts",
        [GQ_REQ_TIMEOUT_S] = "timeout_s",
        [GQ_REQ_METADATA] = "metadata",
    };
    const gq_embedded_t *e = gq_embedded_find("schemas/GenerationRequest.avsc");
    json_t *avsc = e ? json_loads(e->data, 0, NULL) : NULL;
    json_t *fields = json_object_get(avsc, "fields");
    CHECK_INT(json_array_size(fields), GQ_REQ_FIELD_CNT);
    for (size_t i = 0; i < json_array_size(fields) && i < GQ_REQ_FIELD_CNT; i++)
        CHECK_STR(json_string_value(json_object_get(json_array_get(fields, i), "name")), names[i]);
    json_decref(avsc);
}

static void test_random_any(int rounds) {
    int agreed = 0;
    for (int i = 0; i < rounds; i++) {
        gq_request_t r;
        rnd_request_any(&r);
        bool ok = encoders_agree(&r, 1u << 24);
        CHECK(ok);
        agreed += ok;
        gq_request_release(&r);
    }
    fprintf(stderr, "  %d of %d random requests: the same bytes from both encoders\n", agreed,
            rounds);
}

/* What cannot be encoded fails the same way in both, and leaves out as it was. */
static void test_errors(void) {
    gq_request_t r;
    gq_request_init(&r);
    free(r.prompt);
    r.prompt = NULL;
    CHECK(encoders_agree(&r, 1 << 20));
    r.prompt = strdup("x");
    CHECK(encoders_agree(&r, 1 << 20));
    CHECK(encoders_agree(&r, 16)); /* too big for the buffer */
    CHECK(encoders_agree(&r, 10));
    /* NULL entries and repeated keys, in small maps and in ones large enough to be sorted. */
    size_t sizes[] = {2, 5, 16, 17, 40, 300};
    for (size_t s = 0; s < GQ_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        for (int variant = 0; variant < 6; variant++) {
            gq_kv_t *kv = calloc(n, sizeof(*kv));
            for (size_t i = 0; i < n; i++) {
                char key[32];
                snprintf(key, sizeof(key), "key%zu", i);
                kv[i].key = strdup(key);
                kv[i].value = strdup("v");
            }
            size_t a = rnd_below(n), b = rnd_below(n);
            if (variant == 1 || variant == 3 || variant == 5) { /* a repeated key */
                char *key = strdup(kv[a].key);                  /* a may be b */
                free(kv[b].key);
                kv[b].key = key;
            }
            if (variant == 2 || variant == 3) { /* a NULL value */
                free(kv[a].value);
                kv[a].value = NULL;
            }
            if (variant == 4 || variant == 5) { /* two keys repeated, in either order */
                size_t c = rnd_below(n), d = rnd_below(n);
                char *key = strdup(kv[c].key);
                free(kv[d].key);
                kv[d].key = key;
                free(kv[0].key);
                kv[0].key = NULL;
                if (variant == 5 && n > 2) {
                    free(kv[0].key);
                    kv[0].key = strdup("key1");
                }
            }
            r.overrides = kv;
            r.overrides_cnt = n;
            CHECK(encoders_agree(&r, 1 << 20));
            r.overrides = NULL;
            r.overrides_cnt = 0;
            r.metadata = kv;
            r.metadata_cnt = n;
            CHECK(encoders_agree(&r, 1 << 20));
            r.metadata = NULL;
            r.metadata_cnt = 0;
            gq_kv_free(kv, n);
        }
    }
    /* The entry named is the first that repeats an earlier key: at n - 2 (key<n-3>), not the
     * last one (key0), whose first occurrence comes earlier. */
    for (size_t n = 4; n <= 40; n += 36) {
        gq_kv_t *kv = calloc(n, sizeof(*kv));
        for (size_t i = 0; i < n; i++) {
            char key[32];
            size_t k = i == n - 1 ? 0 : i == n - 2 ? n - 3 : i;
            snprintf(key, sizeof(key), "key%zu", k);
            kv[i].key = strdup(key);
            kv[i].value = strdup("v");
        }
        char err[256], want[64];
        gq_buf_t b;
        gq_buf_init(&b, 1 << 20);
        r.metadata = kv;
        r.metadata_cnt = n;
        CHECK(encoders_agree(&r, 1 << 20));
        CHECK(gq_request_encode(&r, &b, err, sizeof(err)) == GQ_ERR_INVALID);
        snprintf(want, sizeof(want), "metadata: key \"key%zu\" appears twice", n - 3);
        CHECK_STR(err, want);
        r.metadata = NULL;
        r.metadata_cnt = 0;
        gq_kv_free(kv, n);
        gq_buf_release(&b);
    }
    gq_request_release(&r);
}

static bool prep_matches(const gq_request_prep_t *prep, const gq_request_t *r) {
    char err[512];
    gq_buf_t b;
    gq_buf_init(&b, 1u << 25);
    CHECK(gq_request_encode_avro(r, &b, err, sizeof(err)) == GQ_OK);
    size_t len = 0;
    const void *data = gq_request_prep_data(prep, &len);
    bool ok = same_bytes(data, len, b.data, b.len) &&
              strcmp(gq_request_prep_job_id(prep), r->job_id) == 0;
    gq_buf_release(&b);
    return ok;
}

static void set_str(char **dst, const char *s) {
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

/* One random change, to the prepared request and to its shadow (when it is accepted). */
static void prep_change(gq_request_prep_t *prep, gq_request_t *shadow) {
    char err[512];
    gq_request_t v;
    rnd_request_valid(&v);
    gq_request_field_t f = (gq_request_field_t)rnd_below(GQ_REQ_FIELD_CNT);
    gq_status_t st = GQ_OK;
    switch (f) {
    case GQ_REQ_JOB_ID:
        if (rnd_chance(50)) {
            st = gq_request_prep_new_job_id(prep, err, sizeof(err));
            memcpy(shadow->job_id, gq_request_prep_job_id(prep), sizeof(shadow->job_id));
            CHECK(gq_uuid_valid(shadow->job_id) && shadow->job_id[14] == '4');
        } else {
            st = gq_request_prep_set_str(prep, f, v.job_id, err, sizeof(err));
            memcpy(shadow->job_id, v.job_id, sizeof(v.job_id));
        }
        break;
    case GQ_REQ_WORKFLOW:
        st = gq_request_prep_set_str(prep, f, v.workflow, err, sizeof(err));
        set_str(&shadow->workflow, v.workflow);
        break;
    case GQ_REQ_WORKFLOW_JSON:
        st = gq_request_prep_set_str(prep, f, v.workflow_json, err, sizeof(err));
        set_str(&shadow->workflow_json, v.workflow_json);
        break;
    case GQ_REQ_PROMPT:
        st = gq_request_prep_set_str(prep, f, v.prompt, err, sizeof(err));
        set_str(&shadow->prompt, v.prompt);
        break;
    case GQ_REQ_NEGATIVE_PROMPT:
        st = gq_request_prep_set_str(prep, f, v.negative_prompt, err, sizeof(err));
        set_str(&shadow->negative_prompt, v.negative_prompt);
        break;
    case GQ_REQ_SAMPLER:
        st = gq_request_prep_set_str(prep, f, v.sampler, err, sizeof(err));
        set_str(&shadow->sampler, v.sampler);
        break;
    case GQ_REQ_SCHEDULER:
        st = gq_request_prep_set_str(prep, f, v.scheduler, err, sizeof(err));
        set_str(&shadow->scheduler, v.scheduler);
        break;
    case GQ_REQ_MODEL:
        st = gq_request_prep_set_str(prep, f, v.model, err, sizeof(err));
        set_str(&shadow->model, v.model);
        break;
    case GQ_REQ_SOURCE:
        st = gq_request_prep_set_str(prep, f, v.source, err, sizeof(err));
        set_str(&shadow->source, v.source);
        break;
    case GQ_REQ_SUBMITTED_AT:
        st = gq_request_prep_set_int(prep, f, v.submitted_at, err, sizeof(err));
        shadow->submitted_at = v.submitted_at;
        break;
    case GQ_REQ_SEED:
        st = gq_request_prep_set_int(prep, f, v.seed, err, sizeof(err));
        shadow->seed = v.seed;
        break;
    case GQ_REQ_WIDTH:
        st = gq_request_prep_set_int(prep, f, v.width, err, sizeof(err));
        shadow->width = v.width;
        break;
    case GQ_REQ_HEIGHT:
        st = gq_request_prep_set_int(prep, f, v.height, err, sizeof(err));
        shadow->height = v.height;
        break;
    case GQ_REQ_STEPS:
        st = gq_request_prep_set_int(prep, f, v.steps, err, sizeof(err));
        shadow->steps = v.steps;
        break;
    case GQ_REQ_BATCH_SIZE:
        st = gq_request_prep_set_int(prep, f, v.batch_size, err, sizeof(err));
        shadow->batch_size = v.batch_size;
        break;
    case GQ_REQ_PRIORITY:
        st = gq_request_prep_set_int(prep, f, v.priority, err, sizeof(err));
        shadow->priority = v.priority;
        break;
    case GQ_REQ_MAX_ATTEMPTS:
        st = gq_request_prep_set_int(prep, f, v.max_attempts, err, sizeof(err));
        shadow->max_attempts = v.max_attempts;
        break;
    case GQ_REQ_TIMEOUT_S:
        st = gq_request_prep_set_int(prep, f, v.timeout_s, err, sizeof(err));
        shadow->timeout_s = v.timeout_s;
        break;
    case GQ_REQ_CFG:
        st = gq_request_prep_set_double(prep, f, v.cfg, err, sizeof(err));
        shadow->cfg = v.cfg;
        break;
    case GQ_REQ_OVERRIDES:
        st = gq_request_prep_set_map(prep, f, v.overrides, v.overrides_cnt, err, sizeof(err));
        gq_kv_free(shadow->overrides, shadow->overrides_cnt);
        shadow->overrides = v.overrides;
        shadow->overrides_cnt = v.overrides_cnt;
        v.overrides = NULL;
        v.overrides_cnt = 0;
        break;
    case GQ_REQ_METADATA:
        st = gq_request_prep_set_map(prep, f, v.metadata, v.metadata_cnt, err, sizeof(err));
        gq_kv_free(shadow->metadata, shadow->metadata_cnt);
        shadow->metadata = v.metadata;
        shadow->metadata_cnt = v.metadata_cnt;
        v.metadata = NULL;
        v.metadata_cnt = 0;
        break;
    case GQ_REQ_FIELD_CNT: break;
    }
    if (st != GQ_OK)
        fprintf(stderr, "  setting field %d: %s\n", (int)f, err);
    CHECK(st == GQ_OK);
    gq_request_release(&v);
}

/* A value the validation refuses changes nothing, and the setter says why. */
static void prep_refused(gq_request_prep_t *prep, const gq_request_t *shadow) {
    char err[512];
    static const gq_kv_t dup[] = {{"a", "1"}, {"a", "2"}};
    static const gq_kv_t bad_override[] = {{"noinput", "1"}};
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_JOB_ID, "not-a-uuid", err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(strstr(err, "job_id") != NULL);
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_JOB_ID, NULL, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_PROMPT, NULL, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "prompt: missing");
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_PROMPT, "\xff", err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_WORKFLOW, "../x", err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_WORKFLOW_JSON, "[1]", err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_SOURCE, "a\nb", err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_SEED, -1, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "seed: -1 is negative");
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_SUBMITTED_AT, -5, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_WIDTH, 513, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_PRIORITY, INT64_C(1) << 40, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK_STR(err, "priority: 1099511627776 does not fit in an int");
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_MAX_ATTEMPTS, 101, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_double(prep, GQ_REQ_CFG, NAN, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_map(prep, GQ_REQ_METADATA, dup, 2, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_map(prep, GQ_REQ_OVERRIDES, bad_override, 1, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_map(prep, GQ_REQ_OVERRIDES, NULL, 3, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    /* The wrong setter for a field, or no such field. */
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_PROMPT, 1, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "prompt: not an int or long field");
    CHECK(gq_request_prep_set_str(prep, GQ_REQ_SEED, "1", err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_double(prep, GQ_REQ_STEPS, 1, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_map(prep, GQ_REQ_SOURCE, NULL, 0, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_int(prep, GQ_REQ_FIELD_CNT, 1, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_request_prep_set_int(prep, (gq_request_field_t)-1, 1, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(prep_matches(prep, shadow));
}

static void test_prep_random(int rounds) {
    char err[512];
    int matched = 0;
    for (int i = 0; i < rounds; i++) {
        gq_request_t shadow;
        rnd_request_valid(&shadow);
        CHECK(gq_request_validate(&shadow, err, sizeof(err)) == GQ_OK);
        gq_request_prep_t *prep = gq_request_prep_new(&shadow, err, sizeof(err));
        CHECK(prep != NULL);
        if (!prep) {
            fprintf(stderr, "  %s\n", err);
            gq_request_release(&shadow);
            continue;
        }
        bool ok = prep_matches(prep, &shadow);
        int changes = (int)rnd_below(12);
        for (int c = 0; c < changes; c++) {
            prep_change(prep, &shadow);
            ok = prep_matches(prep, &shadow) && ok;
        }
        if (i % 50 == 0)
            prep_refused(prep, &shadow);
        /* What a prepared request holds decodes to its shadow. */
        size_t len = 0;
        const void *data = gq_request_prep_data(prep, &len);
        gq_request_t back;
        CHECK(gq_request_decode(data, len, &back, err, sizeof(err)) == GQ_OK);
        CHECK_STR(back.job_id, shadow.job_id);
        CHECK(back.seed == shadow.seed && back.submitted_at == shadow.submitted_at);
        CHECK(gq_request_validate(&back, err, sizeof(err)) == GQ_OK);
        gq_request_release(&back);
        CHECK(ok);
        matched += ok;
        gq_request_prep_destroy(prep);
        gq_request_release(&shadow);
    }
    fprintf(stderr, "  %d of %d prepared requests matched the reference after every change\n",
            matched, rounds);
}

static void test_prep_invalid(void) {
    char err[512];
    gq_request_t r;
    gq_request_init(&r);
    r.steps = 0;
    CHECK(gq_request_prep_new(&r, err, sizeof(err)) == NULL);
    CHECK_STR(err, "steps: 0 is not in 1..10000");
    r.steps = 20;
    gq_request_prep_t *prep = gq_request_prep_new(&r, err, sizeof(err));
    CHECK(prep != NULL);
    /* job ids drawn for a prepared request are fresh v4 uuids. */
    char first[37];
    memcpy(first, gq_request_prep_job_id(prep), sizeof(first));
    CHECK_STR(first, r.job_id);
    CHECK(gq_request_prep_new_job_id(prep, err, sizeof(err)) == GQ_OK);
    CHECK(strcmp(first, gq_request_prep_job_id(prep)) != 0);
    CHECK(gq_uuid_valid(gq_request_prep_job_id(prep)));
    gq_request_prep_destroy(prep);
    gq_request_prep_destroy(NULL);
    gq_request_release(&r);
}

int main(void) {
    const char *seed_env = getenv("GENQ_TEST_SEED"), *rounds_env = getenv("GENQ_TEST_ROUNDS");
    int64_t seed = 0, rounds = 2000;
    if (!seed_env || gq_parse_i64(seed_env, 1, INT64_MAX, &seed) != GQ_OK)
        seed = (int64_t)(gq_random_u64() >> 1) | 1;
    if (rounds_env)
        gq_parse_i64(rounds_env, 1, 10000000, &rounds);
    rng_state = (uint64_t)seed;
    fprintf(stderr, "  GENQ_TEST_SEED=%lld\n", (long long)seed);
    char err[256];
    CHECK(gq_schema_init(err, sizeof(err)) == GQ_OK);
    test_field_order();
    test_random_any((int)rounds);
    test_errors();
    test_prep_random((int)rounds / 4);
    test_prep_invalid();
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_prep");
}
