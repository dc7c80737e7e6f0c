/*
 * libFuzzer target: gq_request_from_json on any text. A request that reads and validates
 * must encode, decode and validate again. Whatever the fast path reads, the jansson path
 * must read too, to a request that encodes to the same bytes (job_id and submitted_at
 * aside, which are new in each unless the text sets them).
 */
#include "genq_schema.h"
#include "schema_int.h"

#include <string.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fast path agrees with jansson wherever it answers. */
static void fast_agrees(const char *text, size_t size) {
    char err[512];
    gq_request_t fast, slow;
    if (!gq_request_from_json_fast(text, size, &fast))
        return;
    if (gq_request_from_json_jansson(text, size, &slow, err, sizeof(err)) != GQ_OK)
        abort();
    memcpy(slow.job_id, fast.job_id, sizeof(slow.job_id));
    slow.submitted_at = fast.submitted_at;
    gq_buf_t a, b;
    gq_buf_init(&a, 1u << 24);
    gq_buf_init(&b, 1u << 24);
    gq_status_t sa = gq_request_encode(&fast, &a, err, sizeof(err));
    gq_status_t sb = gq_request_encode(&slow, &b, err, sizeof(err));
    if (sa != sb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
        abort();
    gq_buf_release(&a);
    gq_buf_release(&b);
    gq_request_release(&fast);
    gq_request_release(&slow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    gq_request_t req, again;
    if (gq_schema_init(err, sizeof(err)) != GQ_OK)
        abort();
    fast_agrees((const char *)data, size);
    if (gq_request_from_json((const char *)data, size, &req, err, sizeof(err)) == GQ_OK &&
        gq_request_validate(&req, err, sizeof(err)) == GQ_OK) {
        gq_buf_t b;
        gq_buf_init(&b, 1u << 24);
        if (gq_request_encode(&req, &b, err, sizeof(err)) != GQ_OK ||
            gq_request_decode(b.data, b.len, &again, err, sizeof(err)) != GQ_OK ||
            gq_request_validate(&again, err, sizeof(err)) != GQ_OK)
            abort();
        gq_request_release(&again);
        gq_buf_release(&b);
    }
    gq_request_release(&req);
    return 0;
}
