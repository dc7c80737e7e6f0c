/*
 * Interoperability with another Avro implementation, python3-avro, which knows nothing of
 * genq but the .avsc files (tests/schemas/check_python_interop.py):
 *   python -> C: python3-avro encodes requests and events; C decodes them, and must find
 *                the values python wrote down as JSON, and re-encode the very same bytes;
 *   C -> python: C encodes; python3-avro decodes and compares with the values C expects.
 * Skipped (with a message) where /usr/bin/python3 has no avro module, unless
 * GENQ_REQUIRE_INTEROP is set.
 */
#include "genq_schema.h"
#include "util.h"
#include "check.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

static char script[PATH_MAX], dir[] = "/tmp/genq-interop-XXXXXX";

static char *path_of(const char *name) {
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static int run_script(const char *args) {
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "%s '%s' %s", PYTHON, script, args);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "  failed (%d): %s\n", rc, cmd);
    return rc;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    gq_buf_t b;
    gq_buf_init(&b, 1 << 24);
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        gq_buf_append(&b, chunk, n);
    if (f)
        fclose(f);
    CHECK(f != NULL);
    return gq_buf_detach(&b, len);
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    if (f)
        fclose(f);
}

/* python -> C for one request file; then C re-encodes it for the other direction. */
static void py_to_c_request(const char *variant) {
    char name[64], err[512];
    size_t len, jlen;
    snprintf(name, sizeof(name), "request-%s.avro", variant);
    char *bin = slurp(path_of(name), &len);
    snprintf(name, sizeof(name), "request-%s.json", variant);
    char *json = slurp(path_of(name), &jlen);
    gq_request_t dec, exp;
    CHECK(gq_request_decode(bin, len, &dec, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_from_json(json, jlen, &exp, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_validate(&dec, err, sizeof(err)) == GQ_OK);
    gq_buf_t a, b;
    gq_buf_init(&a, 1 << 20);
    gq_buf_init(&b, 1 << 20);
    CHECK(gq_request_encode(&dec, &a, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_encode(&exp, &b, err, sizeof(err)) == GQ_OK);
    /* Same wire format, same values: byte for byte what python3-avro wrote. */
    CHECK(a.len == len && memcmp(a.data, bin, len) == 0);
    CHECK(b.len == len && memcmp(b.data, bin, len) == 0);
    snprintf(name, sizeof(name), "c-request-%s.avro", variant);
    spit(path_of(name), a.data, a.len);
    char args[3 * PATH_MAX];
    snprintf(args, sizeof(args), "decode request '%s' '%s/request-%s.json'", path_of(name), dir,
             variant);
    CHECK(run_script(args) == 0);
    gq_buf_release(&a);
    gq_buf_release(&b);
    gq_request_release(&dec);
    gq_request_release(&exp);
    free(bin);
    free(json);
}

/* A C-built request that python never saw: encoded here, decoded there. */
static void c_to_py_request(void) {
    static const char *const text =
        "{\"job_id\": \"5d41402a-bc4b-4a76-b971-9d911017c592\", \"submitted_at\": 42,"
        " \"workflow\": \"inline\", \"workflow_json\": \"{}\", \"prompt\": \"\\u65e5\\u672c \\\\ "
        "\\\"\","
        " \"negative_prompt\": \"\", \"width\": 16, \"height\": 16384, \"seed\": 0, \"steps\": 1,"
        " \"cfg\": 0.0, \"sampler\": \"euler_a\", \"scheduler\": \"simple\", \"model\": null,"
        " \"batch_size\": 64, \"overrides\": {\"KSampler.seed\": \"-1\"}, \"priority\": 2147483647,"
        " \"source\": \"\", \"max_attempts\": null, \"timeout_s\": 86400, \"metadata\": {}}";
    gq_request_t r;
    char err[512];
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    CHECK(gq_request_from_json(text, strlen(text), &r, err, sizeof(err)) == GQ_OK);
    CHECK(gq_request_encode(&r, &b, err, sizeof(err)) == GQ_OK);
    spit(path_of("c-request-own.avro"), b.data, b.len);
    spit(path_of("c-request-own.json"), text, strlen(text));
    char args[3 * PATH_MAX];
    snprintf(args, sizeof(args), "decode request '%s/c-request-own.avro' '%s/c-request-own.json'",
             dir, dir);
    CHECK(run_script(args) == 0);
    gq_buf_release(&b);
    gq_request_release(&r);
}

static void py_to_c_completed(const char *variant) {
    char name[64], err[512];
    size_t len, jlen;
    snprintf(name, sizeof(name), "completed-%s.avro", variant);
    char *bin = slurp(path_of(name), &len);
    snprintf(name, sizeof(name), "completed-%s.json", variant);
    char *json = slurp(path_of(name), &jlen);
    gq_completed_t ev;
    CHECK(gq_completed_decode(bin, len, &ev, err, sizeof(err)) == GQ_OK);
    gq_buf_t out;
    gq_buf_init(&out, 1 << 20);
    CHECK(gq_completed_to_json(&ev, &out) == GQ_OK);
    json_t *got = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    json_t *want = json_loadb(json, jlen, 0, NULL);
    CHECK(got && want && json_equal(got, want));
    if (!json_equal(got, want))
        fprintf(stderr, "  C read %s\n  python wrote %s\n", out.data, json);
    gq_buf_reset(&out);
    CHECK(gq_completed_encode(&ev, &out, err, sizeof(err)) == GQ_OK);
    CHECK(out.len == len && memcmp(out.data, bin, len) == 0);
    /* Changed in C, then back to python. */
    ev.attempt += 7;
    free(ev.worker_id);
    ev.worker_id = strdup("c-worker \xe2\x9c\x93");
    gq_buf_reset(&out);
    CHECK(gq_completed_encode(&ev, &out, err, sizeof(err)) == GQ_OK);
    snprintf(name, sizeof(name), "c-completed-%s.avro", variant);
    spit(path_of(name), out.data, out.len);
    gq_buf_reset(&out);
    CHECK(gq_completed_to_json(&ev, &out) == GQ_OK);
    snprintf(name, sizeof(name), "c-completed-%s.json", variant);
    spit(path_of(name), out.data, out.len);
    char args[3 * PATH_MAX];
    snprintf(args, sizeof(args), "decode completed '%s/c-completed-%s.avro' '%s'", dir, variant,
             path_of(name));
    CHECK(run_script(args) == 0);
    json_decref(got);
    json_decref(want);
    gq_buf_release(&out);
    gq_completed_release(&ev);
    free(bin);
    free(json);
}

static void cleanup(void) {
    static const char *const files[] = {
        "request-full.avro",     "request-full.json",     "request-min.avro",
        "request-min.json",      "completed-full.avro",   "completed-full.json",
        "completed-min.avro",    "completed-min.json",    "c-request-full.avro",
        "c-request-min.avro",    "c-request-own.avro",    "c-request-own.json",
        "c-completed-full.avro", "c-completed-full.json", "c-completed-min.avro",
        "c-completed-min.json",
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(files); i++)
        unlink(path_of(files[i]));
    rmdir(dir);
}

int main(void) {
    bool required = getenv("GENQ_REQUIRE_INTEROP") != NULL;
    if (system(PYTHON " -c 'import avro.io' 2>/dev/null") != 0) {
        fprintf(stderr,
                "test_schema_interop: SKIPPED: %s has no avro module (apt-get install "
                "python3-avro)\n",
                PYTHON);
        return required ? 1 : CHECK_SKIP;
    }
    if (!check_find_src("tests/schemas/check_python_interop.py", script, sizeof(script)) ||
        !mkdtemp(dir)) {
        fprintf(stderr, "FAIL: check_python_interop.py not found or no temporary folder\n");
        return 1;
    }
    char args[2 * PATH_MAX];
    snprintf(args, sizeof(args), "encode request '%s'", dir);
    CHECK(run_script(args) == 0);
    snprintf(args, sizeof(args), "encode completed '%s'", dir);
    CHECK(run_script(args) == 0);
    py_to_c_request("full");
    py_to_c_request("min");
    c_to_py_request();
    py_to_c_completed("full");
    py_to_c_completed("min");
    cleanup();
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_interop");
}
