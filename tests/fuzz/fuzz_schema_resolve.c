/*
 * libFuzzer target: schema resolution on hostile input, two ways by the first byte.
 *   0 mod 2: a datum written with an older (v0) or newer (v2) GenerationRequest (the second
 *     byte picks which; both given to the reader as a schema directory at start), framed
 *     single-object and decoded with gq_request_decode: it must succeed or fail as
 *     GQ_ERR_INVALID with a reason, and what succeeds must encode and decode again.
 *   1 mod 2: a writer schema (the bytes up to the first NUL, as JSON, the way a registry
 *     hands one over) and a datum (the rest): parsed, compiled leniently against the current
 *     GenerationRequest, and the datum resolved; whatever comes out must pass the check that
 *     every input of avro-c passes (gq_avro_datum_check against the reader's schema).
 * ASAN/UBSan catch memory errors, LeakSanitizer leaks, abort() broken invariants.
 */
#include "avro_canon.h"
#include "avro_check.h"
#include "avro_resolve.h"
#include "embedded.h"
#include "genq_schema.h"
#include "schema_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fps[2];
static gq_avsc_t *reader;
static avro_schema_t reader_avro;

/* The current GenerationRequest with its fields edited: v0 drops the last two fields and
 * makes seed an int; v2 adds an optional string field in the middle. */
static char *variant(int which) {
    const gq_embedded_t *e = gq_embedded_find("schemas/GenerationRequest.avsc");
    json_t *j = json_loadb(e->data, e->len, 0, NULL);
    json_t *fields = json_object_get(j, "fields");
    if (which == 0) {
        json_array_remove(fields, json_array_size(fields) - 1);
        json_array_remove(fields, json_array_size(fields) - 1);
        for (size_t i = 0; i < json_array_size(fields); i++) {
            json_t *f = json_array_get(fields, i);
            if (strcmp(json_string_value(json_object_get(f, "name")), "seed") == 0)
                json_object_set_new(f, "type", json_string("int"));
        }
    } else {
        json_array_insert_new(
            fields, 5,
            json_pack("{s:s, s:[s,s], s:n}", "name", "style", "type", "null", "string", "default"));
    }
    char *s = json_dumps(j, 0);
    json_decref(j);
    return s;
}

static void setup(void) {
    char err[512], dir[] = "/tmp/genq-fuzz-resolve-XXXXXX", path[128];
    if (gq_schema_init(err, sizeof(err)) != GQ_OK || !mkdtemp(dir))
        abort();
    for (int k = 0; k < 2; k++) {
        char *s = variant(k);
        snprintf(path, sizeof(path), "%s/v%d.avsc", dir, k ? 2 : 0);
        FILE *f = fopen(path, "w");
        if (!s || !f || fputs(s, f) < 0 || fclose(f) != 0 ||
            gq_avro_fingerprint(s, &fps[k], err, sizeof(err)) != GQ_OK)
            abort();
        free(s);
    }
    if (gq_schema_load_dir(dir, err, sizeof(err)) != GQ_OK)
        abort();
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/v%d.avsc", dir, k ? 2 : 0);
        unlink(path);
    }
    rmdir(dir);
    const gq_embedded_t *e = gq_embedded_find("schemas/GenerationRequest.avsc");
    reader = gq_avsc_parse(e->data, e->len, err, sizeof(err));
    if (!reader || avro_schema_from_json_length(e->data, e->len, &reader_avro) != 0)
        abort();
}

static void by_directory(const uint8_t *data, size_t size) {
    char err[512];
    if (size < 1)
        return;
    uint64_t fp = fps[data[0] & 1];
    unsigned char *msg = malloc(size - 1 + 10);
    msg[0] = 0xc3;
    msg[1] = 0x01;
    for (int i = 0; i < 8; i++)
        msg[2 + i] = (unsigned char)(fp >> (8 * i));
    memcpy(msg + 10, data + 1, size - 1);
    gq_request_t req, again;
    gq_status_t st = gq_request_decode(msg, size - 1 + 10, &req, err, sizeof(err));
    if (st == GQ_OK) {
        gq_buf_t b;
        gq_buf_init(&b, 1u << 24);
        if (gq_request_encode(&req, &b, err, sizeof(err)) != GQ_OK ||
            gq_request_decode(b.data, b.len, &again, err, sizeof(err)) != GQ_OK ||
            strcmp(again.job_id, req.job_id) != 0 || again.seed != req.seed)
            abort();
        gq_request_release(&again);
        gq_buf_release(&b);
    } else if (st != GQ_ERR_INVALID || !err[0]) {
        abort();
    }
    gq_request_release(&req);
    free(msg);
}

static void by_schema(const uint8_t *data, size_t size) {
    char err[512];
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return;
    gq_avsc_t *w = gq_avsc_parse((const char *)data, (size_t)(nul - data), err, sizeof(err));
    gq_avro_plan_t *p = w ? gq_avro_plan_new(w, reader, false, err, sizeof(err)) : NULL;
    if (p) {
        gq_buf_t out;
        gq_buf_init(&out, 1u << 24);
        size_t n = size - (size_t)(nul + 1 - data);
        gq_status_t st = gq_avro_resolve(p, nul + 1, n, 4096, &out, err, sizeof(err));
        if (st == GQ_OK && gq_avro_datum_check(reader_avro, out.data, out.len, 1u << 20, err,
                                               sizeof(err)) != GQ_OK)
            abort(); /* resolution wrote something that is not a datum of the reader */
        if (st != GQ_OK && st != GQ_ERR_INVALID && st != GQ_ERR_TOOBIG)
            abort();
        gq_buf_release(&out);
    }
    gq_avro_plan_destroy(p);
    gq_avsc_destroy(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1)
        return 0;
    if (data[0] & 2)
        by_schema(data + 1, size - 1);
    else
        by_directory(data + 1, size - 1);
    return 0;
}
