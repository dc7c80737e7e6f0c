/*
 * gq_request_validate's messages, gq_request_from_json's strictness, and the JSON form of
 * completion events.
 */
#include "genq_schema.h"
#include "util.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>

#define ID "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

/* Parses base JSON with one field replaced (patch: "\"field\": value"), then validates.
 * Checks that the result is invalid with exactly the message want. */
/* {"job_id": ID, "prompt": "p", <patch>}, without the job_id when the patch has one. */
static char *patched(const char *patch) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    gq_buf_appendf(&b, "{%s\"prompt\": \"p\", %s}",
                   strstr(patch, "\"job_id\"") ? "" : "\"job_id\": \"" ID "\", ", patch);
    return gq_buf_detach(&b, NULL);
}

static void expect_invalid(const char *patch, const char *want, int line) {
    char *json = patched(patch), err[512] = "";
    gq_request_t r;
    gq_status_t st = gq_request_from_json(json, strlen(json), &r, err, sizeof(err));
    free(json);
    if (st == GQ_OK)
        st = gq_request_validate(&r, err, sizeof(err));
    if (st != GQ_ERR_INVALID || strcmp(err, want) != 0)
        fprintf(stderr, "  line %d: %s\n    got  %d \"%s\"\n    want \"%s\"\n", line, patch,
                (int)st, err, want);
    CHECK(st == GQ_ERR_INVALID && strcmp(err, want) == 0);
    gq_request_release(&r);
}

#define INVALID(patch, want) expect_invalid(patch, want, __LINE__)

static void expect_valid(const char *patch, int line) {
    char *json = patched(patch), err[512] = "";
    gq_request_t r;
    gq_status_t st = gq_request_from_json(json, strlen(json), &r, err, sizeof(err));
    free(json);
    if (st == GQ_OK)
        st = gq_request_validate(&r, err, sizeof(err));
    if (st != GQ_OK)
        fprintf(stderr, "  line %d: %s: %s\n", line, patch, err);
    CHECK(st == GQ_OK);
    gq_request_release(&r);
}

#define VALID(patch) expect_valid(patch, __LINE__)

static void test_validate(void) {
    VALID("\"width\": 16, \"height\": 16384, \"steps\": 10000, \"cfg\": 0, \"batch_size\": 64");
    VALID("\"model\": \"SDXL/v1/sd_xl_base_1.0.safetensors\", \"seed\": 0, \"cfg\": 100");
    VALID("\"overrides\": {\"My.Node.title.text\": \"\\\"x\\\"\", \"7.seed\": 1, \"8.b\": true}");
    VALID("\"max_attempts\": 100, \"timeout_s\": 1, \"source\": \"t\\u00e9nant\"");
    VALID("\"workflow_json\": \"{\\\"1\\\": {}}\", \"workflow\": \"inline\"");
    INVALID("\"job_id\": \"5B0D9C57-5A6E-4A34-9D4C-2F5F1B7B9A11\"",
            "job_id: \"5B0D9C57-5A6E-4A34-9D4C-2F5F1B7B9A11\" is not a canonical lowercase uuid "
            "(8-4-4-4-12 hex)");
    INVALID("\"submitted_at\": -1", "submitted_at: -1 is before 1970");
    INVALID("\"workflow\": \"../etc/passwd\"",
            "workflow: \"../etc/passwd\" is not a safe name (1..128 bytes of [A-Za-z0-9._-], not "
            "starting with '.')");
    INVALID("\"workflow\": \".hidden\"",
            "workflow: \".hidden\" is not a safe name (1..128 bytes of [A-Za-z0-9._-], not "
            "starting with '.')");
    INVALID("\"workflow_json\": \"[1]\"", "workflow_json: not a JSON object");
    INVALID("\"workflow_json\": \"{\"", "workflow_json: not JSON (string or '}' expected near "
                                        "end of file)");
    INVALID("\"width\": 500", "width: 500 is not a multiple of 8 in 16..16384");
    INVALID("\"height\": 8", "height: 8 is not a multiple of 8 in 16..16384");
    INVALID("\"height\": 16392", "height: 16392 is not a multiple of 8 in 16..16384");
    INVALID("\"seed\": -3", "seed: -3 is negative");
    INVALID("\"steps\": 0", "steps: 0 is not in 1..10000");
    INVALID("\"cfg\": 100.5", "cfg: 100.5 is not a number in 0..100");
    INVALID("\"cfg\": -0.1", "cfg: -0.1 is not a number in 0..100");
    INVALID("\"sampler\": \"\"", "sampler: \"\" is not a safe name (1..64 bytes of "
                                 "[A-Za-z0-9._-], not starting with '.')");
    INVALID("\"scheduler\": \"a b\"", "scheduler: \"a b\" is not a safe name (1..64 bytes of "
                                      "[A-Za-z0-9._-], not starting with '.')");
    INVALID("\"model\": \"a/../b\"",
            "model: \"a/../b\" is not a checkpoint name ('/'-separated safe names of "
            "[A-Za-z0-9._-], none starting with '.', at most 255 bytes)");
    INVALID("\"model\": \"/abs\"",
            "model: \"/abs\" is not a checkpoint name ('/'-separated safe names of "
            "[A-Za-z0-9._-], none starting with '.', at most 255 bytes)");
    INVALID("\"batch_size\": 65", "batch_size: 65 is not in 1..64");
    INVALID("\"overrides\": {\"seed\": \"1\"}",
            "overrides: key \"seed\" is not \"<node id or title>.<input name>\"");
    INVALID("\"overrides\": {\"3.\": \"1\"}",
            "overrides: key \"3.\" is not \"<node id or title>.<input name>\"");
    INVALID("\"overrides\": {\"3.in-put\": \"1\"}",
            "overrides: key \"3.in-put\" is not \"<node id or title>.<input name>\"");
    INVALID("\"overrides\": {\"6.text\": \"a cat\"}",
            "overrides[\"6.text\"]: value is not a JSON literal (invalid token near 'a'); "
            "a string needs quotes, e.g. \"\\\"a cat\\\"\"");
    INVALID("\"source\": \"a\\nb\"", "source: contains a control character");
    INVALID("\"max_attempts\": 101", "max_attempts: 101 is not in 1..100 (0: not given)");
    INVALID("\"timeout_s\": 86401", "timeout_s: 86401 is not in 1..86400 (0: not given)");
    INVALID("\"metadata\": {\"\": \"v\"}", "metadata: key \"\" must be 1..128 bytes of UTF-8 "
                                           "without control characters");
    char big[GQ_REQUEST_METADATA_VALUE_MAX + 64];
    memset(big, 'x', sizeof(big));
    int n = snprintf(big, 32, "\"metadata\": {\"k\": \"");
    big[n] = 'x';
    snprintf(big + sizeof(big) - 4, 4, "\"}");
    INVALID(big, "metadata[\"k\"]: value must be at most 4096 bytes of UTF-8");
}

/* Things JSON cannot express: built in C. */
static void test_validate_c(void) {
    gq_request_t r;
    char err[512];
    gq_request_init(&r);
    r.cfg = NAN;
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "cfg: nan is not a number in 0..100");
    r.cfg = 7;
    free(r.prompt);
    r.prompt = strdup("\xff");
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "prompt: not valid UTF-8");
    free(r.prompt);
    r.prompt = calloc(GQ_REQUEST_PROMPT_MAX + 2, 1);
    memset(r.prompt, 'a', GQ_REQUEST_PROMPT_MAX + 1);
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "prompt: 65537 bytes; at most 65536 allowed");
    r.prompt[GQ_REQUEST_PROMPT_MAX] = '\0';
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_OK);
    free(r.prompt);
    r.prompt = NULL;
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "prompt: missing");
    r.prompt = strdup("p");
    r.max_attempts = -1;
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "max_attempts: -1 is not in 1..100 (0: not given)");
    r.max_attempts = 0;
    r.overrides = calloc(2, sizeof(*r.overrides));
    r.overrides_cnt = 2;
    for (int i = 0; i < 2; i++) {
        r.overrides[i].key = strdup("3.seed");
        r.overrides[i].value = strdup("1");
    }
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(err, "overrides: key \"3.seed\" appears twice");
    gq_request_release(&r);
}

static void expect_json_error(const char *json, const char *want, int line) {
    gq_request_t r;
    char err[512] = "";
    gq_status_t st = gq_request_from_json(json, strlen(json), &r, err, sizeof(err));
    if (st != GQ_ERR_INVALID || strcmp(err, want) != 0)
        fprintf(stderr, "  line %d: %s\n    got  %d \"%s\"\n    want \"%s\"\n", line, json, (int)st,
                err, want);
    CHECK(st == GQ_ERR_INVALID && strcmp(err, want) == 0);
    gq_request_release(&r); /* initialised even on failure */
}

#define JSON_ERROR(json, want) expect_json_error(json, want, __LINE__)

static void test_from_json(void) {
    gq_request_t r;
    char err[512];
    const char *min = "{\"prompt\": \"a cat\"}";
    int64_t before = gq_now_ms();
    CHECK(gq_request_from_json(min, strlen(min), &r, err, sizeof(err)) == GQ_OK);
    CHECK(gq_uuid_valid(r.job_id));
    CHECK(r.submitted_at >= before && r.submitted_at <= gq_now_ms());
    CHECK_STR(r.prompt, "a cat");
    CHECK_STR(r.workflow, "txt2img");
    CHECK(r.width == 512 && r.steps == 20 && r.cfg == 7.0 && r.batch_size == 1);
    CHECK(r.model == NULL && r.workflow_json == NULL && r.max_attempts == 0);
    gq_request_release(&r);

    const char *typed = "{\"prompt\": \"p\", \"cfg\": 5, \"model\": null, \"overrides\": "
                        "{\"1.a\": 42, \"2.b\": [1, \"x\"], \"3.c\": \"\\\"s\\\"\", \"4.d\": null},"
                        " \"seed\": 9223372036854775807, \"max_attempts\": null}";
    CHECK(gq_request_from_json(typed, strlen(typed), &r, err, sizeof(err)) == GQ_OK);
    CHECK(r.cfg == 5.0 && r.seed == INT64_MAX && r.overrides_cnt == 4);
    CHECK_STR(r.overrides[0].value, "42");
    CHECK_STR(r.overrides[1].value, "[1,\"x\"]");
    CHECK_STR(r.overrides[2].value, "\"s\"");
    CHECK_STR(r.overrides[3].value, "null");
    CHECK(gq_request_validate(&r, err, sizeof(err)) == GQ_OK);
    gq_request_release(&r);

    JSON_ERROR("{\"prompt\": \"p\", \"promt\": 1, \"with\": 2}",
               "unknown fields \"promt\", \"with\" (GenerationRequest fields are named as in "
               "schemas/GenerationRequest.avsc)");
    JSON_ERROR("{\"negative\": \"x\"}", "unknown field \"negative\" (GenerationRequest fields are "
                                        "named as in schemas/GenerationRequest.avsc)");
    JSON_ERROR("{\"width\": 512}", "prompt: missing (it has no default)");
    JSON_ERROR("{\"prompt\": 5}", "prompt: expected a string, got an integer");
    JSON_ERROR("{\"prompt\": null}", "prompt: expected a string, got null");
    JSON_ERROR("{\"prompt\": \"p\", \"width\": \"512\"}",
               "width: expected an integer, got a string");
    JSON_ERROR("{\"prompt\": \"p\", \"width\": 5.5}",
               "width: expected an integer, got a real number");
    JSON_ERROR("{\"prompt\": \"p\", \"steps\": 4294967296}",
               "steps: 4294967296 is out of range -2147483648..2147483647");
    JSON_ERROR("{\"prompt\": \"p\", \"cfg\": \"7\"}", "cfg: expected a number, got a string");
    JSON_ERROR("{\"prompt\": \"p\", \"model\": 3}",
               "model: expected a string or null, got an integer");
    JSON_ERROR("{\"prompt\": \"p\", \"max_attempts\": 0}",
               "max_attempts: 0 is out of range 1..2147483647");
    JSON_ERROR("{\"prompt\": \"p\", \"metadata\": {\"k\": 1}}",
               "metadata[\"k\"]: expected a string, got an integer");
    JSON_ERROR("{\"prompt\": \"p\", \"metadata\": []}",
               "metadata: expected an object, got an array");
    JSON_ERROR("{\"prompt\": \"p\", \"job_id\": 7}",
               "job_id: expected a uuid string, got an integer");
    JSON_ERROR("{\"prompt\": \"p\", \"job_id\": \"" ID "-too-long\"}",
               "job_id: longer than a uuid");
    JSON_ERROR("[1]", "expected a JSON object, got an array");
    JSON_ERROR("{\"prompt\": \"p\", \"prompt\": \"q\"}",
               "not JSON: duplicate object key near '\"prompt\"' (column 24)");
    JSON_ERROR("{\"prompt\": \"p\"", "not JSON: '}' expected near end of file (column 14)");
}

static void test_to_json(void) {
    gq_completed_t ev;
    gq_completed_init(&ev);
    gq_strlcpy(ev.job_id, ID, sizeof(ev.job_id));
    ev.attempt = 3;
    ev.status = GQ_JOB_FAILED;
    ev.worker_id = strdup("w\"1");
    ev.has_error = true;
    ev.error_code = strdup("render_error");
    ev.error_message = strdup("bad \xff byte");
    ev.finished_at = 1700000000000;
    ev.source = strdup("t");
    gq_buf_t b;
    gq_buf_init(&b, 4096);
    CHECK(gq_completed_to_json(&ev, &b) == GQ_OK);
    CHECK_STR(b.data, "{\"job_id\":\"" ID "\",\"attempt\":3,\"status\":\"FAILED\",\"outputs\":[],"
                      "\"queue_ms\":0,\"render_ms\":0,\"total_ms\":0,\"worker_id\":\"w\\\"1\","
                      "\"error\":{\"code\":\"render_error\",\"message\":\"bad ? byte\","
                      "\"retryable\":false},\"finished_at\":1700000000000,\"model\":null,"
                      "\"source\":\"t\",\"metadata\":{}}");
    CHECK_STR(gq_job_status_name(GQ_JOB_SUCCEEDED), "SUCCEEDED");
    CHECK_STR(gq_job_status_name(GQ_JOB_FAILED), "FAILED");
    gq_buf_release(&b);
    gq_completed_release(&ev);
    gq_completed_release(&ev); /* release leaves a reusable, empty event */
}

int main(void) {
    test_validate();
    test_validate_c();
    test_from_json();
    test_to_json();
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_validate");
}
