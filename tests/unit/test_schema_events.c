/*
 * GenerationProgress and CancelRequest: fingerprints (released as v1), round trips, JSON,
 * the Confluent framing, resolution of a newer writer (a field and an enum symbol added),
 * and a CancelRequest as the worker reads it from Kafka: untrusted bytes, checked before use.
 */
#include "genq_schema.h"
#include "avro_canon.h"
#include "embedded.h"
#include "util.h"
#include "check.h"

#include <avro.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define JOB "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

static uint64_t file_fp(const char *path) {
    char err[256];
    uint64_t fp = 0;
    const gq_embedded_t *e = gq_embedded_find(path);
    CHECK(e != NULL);
    if (e)
        CHECK(gq_avro_fingerprint(e->data, &fp, err, sizeof(err)) == GQ_OK);
    return fp;
}

/* Both are compiled in, released as v1 (the same fingerprint), and distinct. */
static void test_fingerprints(void) {
    uint64_t p = gq_schema_fingerprint(GQ_SCHEMA_PROGRESS),
             c = gq_schema_fingerprint(GQ_SCHEMA_CANCEL);
    CHECK(p != 0 && c != 0 && p != c);
    CHECK(p == file_fp("schemas/GenerationProgress.avsc"));
    CHECK(p == file_fp("schemas/history/GenerationProgress.v1.avsc"));
    CHECK(c == file_fp("schemas/CancelRequest.avsc"));
    CHECK(c == file_fp("schemas/history/CancelRequest.v1.avsc"));
    CHECK(gq_schema_fingerprint(GQ_SCHEMA_REQUEST) == gq_schema_request_fingerprint());
    CHECK(gq_schema_fingerprint(GQ_SCHEMA_KINDS) == 0);
}

static void progress_sample(gq_progress_t *ev) {
    gq_progress_init(ev);
    gq_strlcpy(ev->job_id, JOB, sizeof(ev->job_id));
    ev->attempt = 2;
    ev->seq = 17;
    ev->at = INT64_C(1767225643723);
    ev->state = GQ_PROGRESS_RUNNING;
    ev->node = strdup("KSampler \xe2\x80\x94 main");
    ev->step = 12;
    ev->max_steps = 30;
    ev->nodes_done = 3;
    ev->nodes_total = 7;
    ev->previews = 12;
    ev->worker_id = strdup("gpu-0");
}

static void test_progress_roundtrip(void) {
    char err[256];
    gq_progress_t ev, back;
    progress_sample(&ev);
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    CHECK(gq_progress_encode(&ev, &b, err, sizeof(err)) == GQ_OK);
    /* Single-object: C3 01 and the fingerprint, little-endian. */
    uint64_t fp = gq_schema_fingerprint(GQ_SCHEMA_PROGRESS);
    CHECK(b.len > 10 && (unsigned char)b.data[0] == 0xc3 && (unsigned char)b.data[1] == 0x01);
    for (int i = 0; i < 8; i++)
        CHECK((unsigned char)b.data[2 + i] == (unsigned char)(fp >> (8 * i)));
    CHECK(gq_progress_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_OK);
    CHECK_STR(back.job_id, JOB);
    CHECK_INT(back.attempt, 2);
    CHECK_INT(back.seq, 17);
    CHECK_INT(back.at, ev.at);
    CHECK(back.state == GQ_PROGRESS_RUNNING);
    CHECK_INT(back.queue_position, -1);
    CHECK_STR(back.node, ev.node);
    CHECK_INT(back.step, 12);
    CHECK_INT(back.max_steps, 30);
    CHECK_INT(back.nodes_done, 3);
    CHECK_INT(back.nodes_total, 7);
    CHECK_INT(back.previews, 12);
    CHECK_STR(back.worker_id, "gpu-0");
    gq_progress_release(&back);

    /* QUEUED: a queue position, no node. */
    free(ev.node);
    ev.node = NULL;
    ev.state = GQ_PROGRESS_QUEUED;
    ev.queue_position = 0;
    gq_buf_reset(&b);
    CHECK(gq_progress_encode(&ev, &b, err, sizeof(err)) == GQ_OK);
    CHECK(gq_progress_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_OK);
    CHECK(back.state == GQ_PROGRESS_QUEUED && back.queue_position == 0 && back.node == NULL);
    gq_buf_t j;
    gq_buf_init(&j, 1 << 16);
    CHECK(gq_progress_to_json(&back, &j) == GQ_OK);
    CHECK(gq_buf_appends(&j, "") == GQ_OK);
    CHECK_STR(j.data, "{\"job_id\":\"" JOB "\",\"attempt\":2,\"seq\":17,\"at\":1767225643723,"
                      "\"state\":\"QUEUED\",\"queue_position\":0,\"node\":null,\"step\":12,"
                      "\"max_steps\":30,\"nodes_done\":3,\"nodes_total\":7,\"previews\":12,"
                      "\"worker_id\":\"gpu-0\"}");
    gq_progress_release(&back);

    /* Confluent framing: 00, the id big-endian, the same datum. Without a registry a reader
     * refuses it, naming the framing, and still reads the job id. */
    size_t so_len = b.len;
    CHECK(gq_schema_reframe(&b, 0, GQ_FRAMING_CONFLUENT, 258) == GQ_OK);
    CHECK(b.len == so_len - 5 && b.data[0] == 0 && b.data[3] == 1 && b.data[4] == 2);
    CHECK(gq_progress_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "Confluent") != NULL);
    CHECK_STR(back.job_id, JOB);
    gq_progress_release(&back);

    /* Not a progress event: a cancel's bytes are refused by name. */
    gq_cancel_t c;
    gq_cancel_init(&c);
    gq_strlcpy(c.job_id, JOB, sizeof(c.job_id));
    gq_buf_reset(&b);
    CHECK(gq_cancel_encode(&c, &b, err, sizeof(err)) == GQ_OK);
    CHECK(gq_progress_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "CancelRequest") != NULL);
    gq_progress_release(&back);
    /* An invalid state is refused when encoding. */
    ev.state = (gq_progress_state_t)9;
    gq_buf_reset(&b);
    CHECK(gq_progress_encode(&ev, &b, err, sizeof(err)) != GQ_OK);
    CHECK(b.len == 0);
    gq_progress_release(&ev);
    gq_buf_release(&b);
    gq_buf_release(&j);
}

/* A newer writer (GENQ_SCHEMA_DIR): a field added with a default and a ProgressState symbol
 * this reader lacks, which it reads as its default, OTHER. */
static void test_progress_newer_writer(void) {
    char err[512], dir[] = "/tmp/genq-test-progress-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const gq_embedded_t *e = gq_embedded_find("schemas/GenerationProgress.avsc");
    json_t *s = e ? json_loadb(e->data, e->len, 0, NULL) : NULL;
    CHECK(s != NULL);
    if (!s)
        return;
    json_t *fields = json_object_get(s, "fields");
    json_array_insert_new(
        fields, 4, json_pack("{s:s, s:s, s:i}", "name", "eta_ms", "type", "long", "default", 0));
    json_t *state = json_object_get(json_array_get(fields, 5), "type");
    CHECK_STR(json_string_value(json_object_get(state, "name")), "ProgressState");
    json_array_insert_new(json_object_get(state, "symbols"), 3, json_string("PAUSED"));
    char *text = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    char path[128];
    snprintf(path, sizeof(path), "%s/GenerationProgress.v2.avsc", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    CHECK(gq_schema_load_dir(dir, err, sizeof(err)) == GQ_OK);

    /* The datum, written with avro-c from the newer schema. */
    avro_schema_t w = NULL;
    CHECK(avro_schema_from_json_length(text, strlen(text), &w) == 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(w);
    avro_value_t v, fv, br;
    CHECK(avro_generic_value_new(iface, &v) == 0);
    avro_value_get_by_name(&v, "job_id", &fv, NULL);
    avro_value_set_string(&fv, JOB);
    avro_value_get_by_name(&v, "attempt", &fv, NULL);
    avro_value_set_int(&fv, 1);
    avro_value_get_by_name(&v, "seq", &fv, NULL);
    avro_value_set_long(&fv, 5);
    avro_value_get_by_name(&v, "at", &fv, NULL);
    avro_value_set_long(&fv, 1000);
    avro_value_get_by_name(&v, "eta_ms", &fv, NULL);
    avro_value_set_long(&fv, 4000);
    avro_value_get_by_name(&v, "state", &fv, NULL);
    avro_value_set_enum(&fv, 3); /* PAUSED */
    avro_value_get_by_name(&v, "queue_position", &fv, NULL);
    avro_value_set_branch(&fv, 0, &br);
    avro_value_set_null(&br);
    avro_value_get_by_name(&v, "node", &fv, NULL);
    avro_value_set_branch(&fv, 1, &br);
    avro_value_set_string(&br, "VAEDecode");
    avro_value_get_by_name(&v, "step", &fv, NULL);
    avro_value_set_int(&fv, 3);
    avro_value_get_by_name(&v, "worker_id", &fv, NULL);
    avro_value_set_string(&fv, "w9");
    size_t size = 0;
    avro_value_sizeof(&v, &size);
    char *msg = malloc(10 + size);
    uint64_t fp = 0;
    CHECK(gq_avro_fingerprint(text, &fp, err, sizeof(err)) == GQ_OK);
    msg[0] = (char)0xc3;
    msg[1] = 0x01;
    for (int i = 0; i < 8; i++)
        msg[2 + i] = (char)(fp >> (8 * i));
    avro_writer_t wr = avro_writer_memory(msg + 10, (int64_t)size);
    CHECK(avro_value_write(wr, &v) == 0);
    avro_writer_free(wr);
    gq_progress_t back;
    CHECK(gq_progress_decode(msg, 10 + size, &back, err, sizeof(err)) == GQ_OK);
    CHECK(back.state == GQ_PROGRESS_OTHER);
    CHECK_STR(back.node, "VAEDecode");
    CHECK_INT(back.step, 3);
    CHECK_INT(back.seq, 5);
    CHECK_STR(back.worker_id, "w9");
    gq_progress_release(&back);
    free(msg);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(w);
    free(text);
    unlink(path);
    rmdir(dir);
}

static void test_cancel(void) {
    char err[256];
    gq_cancel_t c, back;
    gq_cancel_init(&c);
    gq_strlcpy(c.job_id, JOB, sizeof(c.job_id));
    c.requested_at = INT64_C(1767225600000);
    c.reason = strdup("wrong prompt \xc3\xbc");
    c.requested_by = strdup("svc-a");
    CHECK(gq_cancel_validate(&c, err, sizeof(err)) == GQ_OK);
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    CHECK(gq_cancel_encode(&c, &b, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cancel_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cancel_validate(&back, err, sizeof(err)) == GQ_OK);
    CHECK_STR(back.job_id, JOB);
    CHECK_INT(back.requested_at, c.requested_at);
    CHECK_STR(back.reason, c.reason);
    CHECK_STR(back.requested_by, "svc-a");
    CHECK(back.source == NULL);
    gq_cancel_release(&back);
    /* A source limits it; NULL strings are encoded as the defaults. */
    free(c.reason);
    c.reason = NULL;
    c.source = strdup("tenant-a");
    gq_buf_reset(&b);
    CHECK(gq_cancel_encode(&c, &b, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cancel_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_OK);
    CHECK_STR(back.reason, "");
    CHECK_STR(back.source, "tenant-a");
    gq_buf_t j;
    gq_buf_init(&j, 4096);
    CHECK(gq_cancel_to_json(&back, &j) == GQ_OK && gq_buf_appends(&j, "") == GQ_OK);
    CHECK_STR(j.data, "{\"job_id\":\"" JOB "\",\"requested_at\":1767225600000,\"reason\":\"\","
                      "\"requested_by\":\"svc-a\",\"source\":\"tenant-a\"}");
    gq_cancel_release(&back);

    /* Every prefix of the message is refused (never read past its end), and so is garbage. */
    for (size_t n = 0; n < b.len; n++) {
        gq_status_t st = gq_cancel_decode(b.data, n, &back, err, sizeof(err));
        CHECK(st == GQ_ERR_INVALID);
        gq_cancel_release(&back);
    }
    CHECK(gq_cancel_decode("\xc3\x01garbage!!", 10, &back, err, sizeof(err)) == GQ_ERR_INVALID);
    gq_cancel_release(&back);

    /* What validation refuses in a decoded cancel: the sizes and the job id. */
    char big[GQ_CANCEL_REASON_MAX + 2];
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    free(c.reason);
    c.reason = strdup(big);
    gq_buf_reset(&b);
    CHECK(gq_cancel_encode(&c, &b, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cancel_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cancel_validate(&back, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "reason") != NULL);
    gq_cancel_release(&back);
    big[GQ_CANCEL_REASON_MAX] = '\0';
    free(c.reason);
    c.reason = strdup(big);
    CHECK(gq_cancel_validate(&c, err, sizeof(err)) == GQ_OK);
    free(c.requested_by);
    c.requested_by = strndup(big, GQ_CANCEL_BY_MAX + 1);
    CHECK(gq_cancel_validate(&c, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "requested_by") != NULL);
    free(c.requested_by);
    c.requested_by = strdup("x");
    free(c.source);
    c.source = strdup("\xff\xfe");
    CHECK(gq_cancel_validate(&c, err, sizeof(err)) == GQ_ERR_INVALID);
    free(c.source);
    c.source = NULL;
    gq_strlcpy(c.job_id, "0B7A3F0E-1C2D-4E5F-8A9B-0C1D2E3F4A5B", sizeof(c.job_id));
    CHECK(gq_cancel_validate(&c, err, sizeof(err)) == GQ_ERR_INVALID);
    /* A job id longer than a uuid does not even decode; the reader keeps nothing of it. */
    gq_strlcpy(c.job_id, JOB, sizeof(c.job_id));
    c.requested_at = -1;
    CHECK(gq_cancel_validate(&c, err, sizeof(err)) == GQ_ERR_INVALID);
    gq_cancel_release(&c);
    gq_buf_release(&b);
    gq_buf_release(&j);
}

int main(void) {
    char err[256];
    CHECK(gq_schema_init(err, sizeof(err)) == GQ_OK);
    test_fingerprints();
    test_progress_roundtrip();
    test_progress_newer_writer();
    test_cancel();
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_events");
}
