/*
 * The cost of decoding a GenerationRequest with schema resolution against without: the same
 * request written with the current schema (no resolution: avro_check, avro-c), with an older
 * v0 (two fields missing, filled from defaults; seed an int) and with a newer v2 (an optional
 * field inserted in the middle: fields reordered around it), each framed single-object, and
 * Confluent-framed with the current schema (a cached registry id). Prints ns per decode
 * (best of 5 rounds).
 *
 *   bench/resolve/run   (builds this against build/dev/libgenq.a)
 */
#include "avro_canon.h"
#include "genq_schema.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 5

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

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

static double bench(const char *label, const gq_buf_t *msg, long n) {
    char err[512];
    double best = 1e300;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            gq_request_t req;
            if (gq_request_decode(msg->data, msg->len, &req, err, sizeof(err)) != GQ_OK) {
                fprintf(stderr, "%s: %s\n", label, err);
                exit(1);
            }
            gq_request_release(&req);
        }
        double ns = (now_ns() - t0) / n;
        if (ns < best)
            best = ns;
    }
    printf("%-44s %6zu bytes %8.0f ns/decode\n", label, msg->len, best);
    return best;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    char err[512], dir[] = "/tmp/genq-bench-resolve-XXXXXX", path[128];
    if (gq_schema_init(err, sizeof(err)) != GQ_OK || !mkdtemp(dir))
        return 1;
    /* A typical request: prompt, model, two overrides and two metadata entries. */
    gq_request_t req;
    gq_request_init(&req);
    free(req.prompt);
    req.prompt = strdup("a lighthouse at dusk, oil painting, dramatic light, high detail");
    req.model = strdup("sd15.safetensors");
    req.seed = 123456;
    gq_kv_t ov[] = {{"3.denoise", "0.6"}, {"9.filename_prefix", "\"x\""}};
    gq_kv_t md[] = {{"request_id", "r-1"}, {"tenant", "a"}};
    req.overrides = ov;
    req.overrides_cnt = 2;
    gq_buf_t cur, v0, v2, cf;
    gq_buf_init(&cur, 1 << 20);
    gq_buf_init(&v0, 1 << 20);
    gq_buf_init(&v2, 1 << 20);
    gq_buf_init(&cf, 1 << 20);
    if (gq_request_encode(&req, &cur, err, sizeof(err)) != GQ_OK)
        return 1;
    req.metadata = md;
    req.metadata_cnt = 2;
    gq_buf_t cur_md;
    gq_buf_init(&cur_md, 1 << 20);
    if (gq_request_encode(&req, &cur_md, err, sizeof(err)) != GQ_OK)
        return 1;
    req.overrides = req.metadata = NULL;
    req.overrides_cnt = req.metadata_cnt = 0;

    /* The writer schemas, as GENQ_SCHEMA_DIR gives them. */
    const char *names[] = {"v0", "v2"};
    uint64_t fp[2];
    for (int k = 0; k < 2; k++) {
        char src[256];
        snprintf(src, sizeof(src), "%s", "schemas/GenerationRequest.avsc");
        char *text = NULL;
        size_t len = 0;
        if (gq_read_file(src, 1 << 20, &text, &len, err, sizeof(err)) != GQ_OK) {
            fprintf(stderr, "run from the repository root: %s\n", err);
            return 1;
        }
        json_t *j = json_loads(text, 0, NULL);
        free(text);
        json_t *f = json_object_get(j, "fields");
        if (k == 0) {
            json_array_remove(f, json_array_size(f) - 1); /* metadata */
            json_array_remove(f, json_array_size(f) - 1); /* timeout_s */
        } else {
            json_array_insert_new(f, 5,
                                  json_pack("{s:s, s:[s,s], s:n}", "name", "style", "type", "null",
                                            "string", "default"));
        }
        char *s = json_dumps(j, 0);
        json_decref(j);
        snprintf(path, sizeof(path), "%s/%s.avsc", dir, names[k]);
        FILE *out = fopen(path, "w");
        fputs(s, out);
        fclose(out);
        gq_avro_fingerprint(s, &fp[k], err, sizeof(err));
        free(s);
    }
    if (gq_schema_load_dir(dir, err, sizeof(err)) != GQ_OK)
        return 1;
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/%s.avsc", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
    /* v0: the current datum without its last two fields (null timeout_s, empty metadata). */
    unsigned char h[10] = {0xc3, 0x01};
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(fp[0] >> (8 * i));
    gq_buf_append(&v0, h, 10);
    gq_buf_append(&v0, cur.data + 10, cur.len - 12);
    /* v2: the new field after prompt (field 4): find prompt's end by re-encoding a prefix. */
    size_t off = 10;
    const unsigned char *p = (const unsigned char *)cur_md.data;
    for (int field = 0; field < 5; field++) { /* job_id, submitted_at, workflow, wf_json, prompt */
        uint64_t u = 0;
        int shift = 0;
        unsigned char c;
        do {
            c = p[off++];
            u |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
        } while (c & 0x80);
        int64_t v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        if (field == 0 || field == 2 || field == 4)
            off += (size_t)v; /* strings: skip the bytes */
    }
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(fp[1] >> (8 * i));
    gq_buf_append(&v2, h, 10);
    gq_buf_append(&v2, cur_md.data + 10, off - 10);
    put_long(&v2, 1);
    put_long(&v2, 11);
    gq_buf_appends(&v2, "watercolour");
    gq_buf_append(&v2, cur_md.data + off, cur_md.len - off);

    printf("GenerationRequest decode, %ld decodes per round, best of %d\n", n, ROUNDS);
    double base = bench("current schema (no resolution)", &cur, n);
    double base_md = bench("current schema with metadata (no resolution)", &cur_md, n);
    double r0 = bench("v0 writer: 2 fields from defaults", &v0, n);
    double r2 = bench("v2 writer: a new field in the middle", &v2, n);
    printf("v0 costs %.2fx the same request decoded without resolution (%+.0f ns); v2 %.2fx "
           "(%+.0f ns, against the request with metadata)\n",
           r0 / base, r0 - base, r2 / base_md, r2 - base_md);
    gq_request_release(&req);
    gq_buf_release(&cur);
    gq_buf_release(&cur_md);
    gq_buf_release(&v0);
    gq_buf_release(&v2);
    gq_buf_release(&cf);
    gq_schema_shutdown();
    return 0;
}
