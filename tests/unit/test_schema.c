/*
 * GenerationRequest / GenerationCompleted: fingerprints, defaults against the .avsc, round
 * trips. Bad input is in test_schema_decode.c, validation and JSON input in
 * test_schema_validate.c, python3-avro interoperability in test_schema_interop.c.
 */
#include "genq_schema.h"
#include "avro_canon.h"
#include "embedded.h"
#include "util.h"
#include "check.h"

#include <jansson.h>
#include <stdlib.h>

static const char *const full_json =
    "{\"job_id\": \"0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b\", \"submitted_at\": 1767225600123,"
    " \"workflow\": \"sdxl_base\", \"workflow_json\": \"{\\\"3\\\": {\\\"inputs\\\": {}}}\","
    " \"prompt\": \"a lighthouse \\ud83c\\udf05 \\u00abn\\u00efce\\u00bb \\\"q\\\"\\nline 2\","
    " \"negative_prompt\": \"blurry\", \"width\": 1024, \"height\": 768,"
    " \"seed\": 9007199254740993, \"steps\": 30, \"cfg\": 6.5, \"sampler\": \"dpmpp_2m\","
    " \"scheduler\": \"karras\", \"model\": \"sdxl/sd_xl_base_1.0.safetensors\","
    " \"batch_size\": 2, \"overrides\": {\"3.denoise\": \"0.75\", \"CLIP Text Encode.text\":"
    " \"\\\"a cat\\\"\"}, \"priority\": -5, \"source\": \"tenant-a/web\", \"max_attempts\": 3,"
    " \"timeout_s\": 600, \"metadata\": {\"request_id\": \"r-1\", \"\\u00fcn\": \"\\u00e7\"}}";

static void kv_to_json(json_t *obj, const char *name, const gq_kv_t *kv, size_t cnt) {
    json_t *m = json_object();
    for (size_t i = 0; i < cnt; i++)
        json_object_set_new(m, kv[i].key, json_string(kv[i].value));
    json_object_set_new(obj, name, m);
}

static json_t *opt_str(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *opt_int(int32_t v) { return v ? json_integer(v) : json_null(); }

/* Every field, with the .avsc names: compares requests and writes expected values. */
static json_t *request_to_json(const gq_request_t *r) {
    json_t *j = json_object();
    json_object_set_new(j, "job_id", json_string(r->job_id));
    json_object_set_new(j, "submitted_at", json_integer(r->submitted_at));
    json_object_set_new(j, "workflow", opt_str(r->workflow));
    json_object_set_new(j, "workflow_json", opt_str(r->workflow_json));
    json_object_set_new(j, "prompt", opt_str(r->prompt));
    json_object_set_new(j, "negative_prompt", opt_str(r->negative_prompt));
    json_object_set_new(j, "width", json_integer(r->width));
    json_object_set_new(j, "height", json_integer(r->height));
    json_object_set_new(j, "seed", json_integer(r->seed));
    json_object_set_new(j, "steps", json_integer(r->steps));
    json_object_set_new(j, "cfg", json_real(r->cfg));
    json_object_set_new(j, "sampler", opt_str(r->sampler));
    json_object_set_new(j, "scheduler", opt_str(r->scheduler));
    json_object_set_new(j, "model", opt_str(r->model));
    json_object_set_new(j, "batch_size", json_integer(r->batch_size));
    kv_to_json(j, "overrides", r->overrides, r->overrides_cnt);
    json_object_set_new(j, "priority", json_integer(r->priority));
    json_object_set_new(j, "source", opt_str(r->source));
    json_object_set_new(j, "max_attempts", opt_int(r->max_attempts));
    json_object_set_new(j, "timeout_s", opt_int(r->timeout_s));
    kv_to_json(j, "metadata", r->metadata, r->metadata_cnt);
    return j;
}

static int request_same(const gq_request_t *a, const gq_request_t *b) {
    json_t *ja = request_to_json(a), *jb = request_to_json(b);
    int same = json_equal(ja, jb);
    if (!same) {
        char *sa = json_dumps(ja, JSON_COMPACT), *sb = json_dumps(jb, JSON_COMPACT);
        fprintf(stderr, "  requests differ:\n  %s\n  %s\n", sa, sb);
        free(sa);
        free(sb);
    }
    json_decref(ja);
    json_decref(jb);
    return same;
}

static char *completed_json(const gq_completed_t *ev) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    CHECK(gq_completed_to_json(ev, &b) == GQ_OK);
    return gq_buf_detach(&b, NULL);
}

static void completed_sample(gq_completed_t *ev, bool failed) {
    gq_completed_init(ev);
    gq_strlcpy(ev->job_id, "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", sizeof(ev->job_id));
    ev->attempt = failed ? 1 : 2;
    ev->status = failed ? GQ_JOB_FAILED : GQ_JOB_SUCCEEDED;
    ev->worker_id = strdup(failed ? "" : "genq-worker-7d9f-0");
    ev->finished_at = failed ? 0 : 1767225643723;
    if (failed) {
        ev->has_error = true;
        ev->error_code = strdup("timeout");
        ev->error_message = strdup("render took longer than 600 s \xe2\x80\x94 \xc3\xbc");
        ev->error_retryable = true;
        return;
    }
    ev->queue_ms = 1500;
    ev->render_ms = 42000;
    ev->total_ms = 43600;
    ev->outputs_cnt = 2;
    ev->outputs = calloc(2, sizeof(*ev->outputs));
    for (int i = 0; i < 2; i++) {
        ev->outputs[i].uri = strdup(i ? "s3://bucket/k\xc3\xa9y.png" : "file:///o/a_00001_.png");
        memset(ev->outputs[i].sha256, i ? '0' : 'a', 64);
        ev->outputs[i].bytes = i ? INT64_C(1) << 40 : 1234567;
        ev->outputs[i].width = i ? 16 : 1024;
        ev->outputs[i].height = i ? 16 : 768;
        ev->outputs[i].mime = strdup("image/png");
    }
    ev->model = strdup("sdxl/sd_xl_base_1.0.safetensors");
    ev->source = strdup("tenant-a/web");
    ev->metadata_cnt = 1;
    ev->metadata = calloc(1, sizeof(*ev->metadata));
    ev->metadata[0].key = strdup("request_id");
    ev->metadata[0].value = strdup("r-1");
}

static void test_fingerprints(void) {
    char err[256];
    CHECK(gq_schema_init(err, sizeof(err)) == GQ_OK);
    CHECK(gq_schema_init(err, sizeof(err)) == GQ_OK); /* idempotent */
    uint64_t fp = 0;
    const gq_embedded_t *e = gq_embedded_find("schemas/GenerationRequest.avsc");
    CHECK(e && gq_avro_fingerprint(e->data, &fp, err, sizeof(err)) == GQ_OK);
    CHECK(fp != 0 && fp == gq_schema_request_fingerprint());
    e = gq_embedded_find("schemas/GenerationCompleted.avsc");
    CHECK(e && gq_avro_fingerprint(e->data, &fp, err, sizeof(err)) == GQ_OK);
    CHECK(fp != 0 && fp == gq_schema_completed_fingerprint());
    CHECK(gq_schema_request_fingerprint() != gq_schema_completed_fingerprint());
    fprintf(stderr, "  GenerationRequest 0x%016llx, GenerationCompleted 0x%016llx\n",
            (unsigned long long)gq_schema_request_fingerprint(),
            (unsigned long long)gq_schema_completed_fingerprint());
}

/* gq_request_init() must agree with every "default" of the .avsc. */
static void test_defaults(void) {
    const gq_embedded_t *e = gq_embedded_find("schemas/GenerationRequest.avsc");
    json_t *avsc = e ? json_loads(e->data, 0, NULL) : NULL;
    CHECK(avsc != NULL);
    gq_request_t r;
    gq_request_init(&r);
    CHECK(gq_uuid_valid(r.job_id));
    CHECK(r.submitted_at > 1700000000000);
    json_t *mine = request_to_json(&r);
    size_t i, with_default = 0;
    json_t *f;
    json_array_foreach(json_object_get(avsc, "fields"), i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        CHECK(json_is_string(json_object_get(f, "doc")));
        CHECK(json_object_get(mine, name) != NULL);
        json_t *dflt = json_object_get(f, "default");
        if (!dflt)
            continue;
        with_default++;
        if (!json_equal(dflt, json_object_get(mine, name)))
            fprintf(stderr, "  default of %s differs from gq_request_init\n", name);
        CHECK(json_equal(dflt, json_object_get(mine, name)));
    }
    CHECK_INT(with_default, 18);
    CHECK_INT(json_object_size(mine), json_array_size(json_object_get(avsc, "fields")));
    char err[256];
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_OK);
    json_decref(mine);
    json_decref(avsc);
    gq_request_release(&r);
}

static void test_request_roundtrip(const char *json) {
    gq_request_t a, b;
    char err[512];
    gq_buf_t enc, enc2;
    gq_buf_init(&enc, 1 << 20);
    gq_buf_init(&enc2, 1 << 20);
    CHECK(gq_request_from_json(json, strlen(json), &a, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_validate(&a, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_encode(&a, &enc, err, sizeof(err)) == GQ_OK);
    CHECK(enc.len > 10 && (unsigned char)enc.data[0] == 0xc3 && enc.data[1] == 0x01);
    uint64_t fp = 0;
    for (int i = 7; i >= 0; i--)
        fp = (fp << 8) | (unsigned char)enc.data[2 + i];
    CHECK(fp == gq_schema_request_fingerprint());
    CHECK(gq_request_decode(enc.data, enc.len, &b, err, sizeof(err)) == GQ_OK);
    CHECK(request_same(&a, &b));
    /* Encoding is deterministic, so a lossless round trip gives the same bytes. */
    CHECK(gq_request_encode(&b, &enc2, err, sizeof(err)) == GQ_OK);
    CHECK(enc.len == enc2.len && memcmp(enc.data, enc2.data, enc.len) == 0);
    gq_request_release(&a);
    gq_request_release(&b);
    gq_buf_release(&enc);
    gq_buf_release(&enc2);
}

static void test_request_nulls(void) {
    gq_request_t a, b;
    char err[512];
    gq_buf_t enc;
    gq_buf_init(&enc, 1 << 20);
    gq_request_init(&a);
    /* NULL strings with a default are encoded as the default. */
    free(a.sampler);
    a.sampler = NULL;
    free(a.source);
    a.source = NULL;
    CHECK(gq_request_encode(&a, &enc, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_decode(enc.data, enc.len, &b, err, sizeof(err)) == GQ_OK);
    CHECK_STR(b.sampler, "euler");
    CHECK_STR(b.source, "");
    CHECK(b.workflow_json == NULL && b.model == NULL && b.max_attempts == 0 && b.timeout_s == 0);
    CHECK(b.overrides == NULL && b.overrides_cnt == 0 && b.metadata_cnt == 0);
    CHECK_STR(b.job_id, a.job_id);
    gq_request_release(&b);
    /* ...but a NULL prompt is an error, and out is left as it was. */
    free(a.prompt);
    a.prompt = NULL;
    size_t before = enc.len;
    CHECK(gq_request_encode(&a, &enc, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "prompt: missing (NULL)");
    CHECK(enc.len == before);
    /* A bounded buffer that is too small fails cleanly. */
    gq_buf_t small;
    gq_buf_init(&small, 16);
    a.prompt = strdup("x");
    CHECK(gq_request_encode(&a, &small, err, sizeof(err)) == GQ_ERR_TOOBIG);
    CHECK(small.len == 0);
    gq_buf_release(&small);
    gq_request_release(&a);
    gq_buf_release(&enc);
}

static void test_completed_roundtrip(bool failed) {
    gq_completed_t a, b;
    char err[512];
    gq_buf_t enc;
    gq_buf_init(&enc, 1 << 20);
    completed_sample(&a, failed);
    CHECK(gq_completed_encode(&a, &enc, err, sizeof(err)) == GQ_OK);
    CHECK(gq_completed_decode(enc.data, enc.len, &b, err, sizeof(err)) == GQ_OK);
    char *ja = completed_json(&a), *jb = completed_json(&b);
    CHECK_STR(ja, jb);
    CHECK(b.status == a.status && b.has_error == failed && b.outputs_cnt == a.outputs_cnt);
    CHECK(failed ? b.model == NULL && b.source == NULL : b.outputs[1].bytes == INT64_C(1) << 40);
    free(ja);
    free(jb);
    gq_completed_release(&b);
    /* A request is not a completion event. */
    gq_request_t r;
    gq_request_init(&r);
    gq_buf_reset(&enc);
    CHECK(gq_request_encode(&r, &enc, err, sizeof(err)) == GQ_OK);
    CHECK(gq_completed_decode(enc.data, enc.len, &b, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "GenerationRequest") != NULL);
    CHECK_STR(b.job_id, r.job_id);
    gq_completed_release(&b);
    gq_request_release(&r);
    /* Required strings must be set. */
    free(a.worker_id);
    a.worker_id = NULL;
    CHECK(gq_completed_encode(&a, &enc, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "worker_id: missing (NULL)");
    gq_completed_release(&a);
    gq_buf_release(&enc);
}

int main(void) {
    test_fingerprints();
    test_defaults();
    test_request_roundtrip(full_json);
    test_request_roundtrip("{\"prompt\": \"\"}");
    test_request_nulls();
    test_completed_roundtrip(false);
    test_completed_roundtrip(true);
    gq_schema_shutdown();
    return CHECK_DONE("test_schema");
}
