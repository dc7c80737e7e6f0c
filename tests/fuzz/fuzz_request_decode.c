/*
 * libFuzzer target: gq_request_decode on any byte string, then validation. A message that
 * decodes must also survive a round trip: encode, decode, encode gives the same bytes, and the
 * direct encoder writes what the avro-c reference encoder writes; a valid one prepared
 * (gq_request_prep_new) holds those bytes too.
 * ASAN/UBSan catch memory errors, LeakSanitizer leaks, abort() broken invariants.
 */
#include "genq_schema.h"
#include "schema_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const gq_request_t *req) {
    char err[512];
    gq_buf_t a, b;
    gq_request_t again;
    gq_buf_init(&a, 1u << 24);
    gq_buf_init(&b, 1u << 24);
    if (gq_request_encode(req, &a, err, sizeof(err)) != GQ_OK ||
        gq_request_decode(a.data, a.len, &again, err, sizeof(err)) != GQ_OK ||
        gq_request_encode(&again, &b, err, sizeof(err)) != GQ_OK || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        abort();
    gq_buf_reset(&b);
    if (gq_request_encode_avro(req, &b, err, sizeof(err)) != GQ_OK || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        abort();
    gq_request_prep_t *prep = gq_request_prep_new(req, err, sizeof(err));
    size_t len = 0;
    const void *data = prep ? gq_request_prep_data(prep, &len) : NULL;
    if (prep && (len != a.len || memcmp(data, a.data, len) != 0))
        abort();
    gq_request_prep_destroy(prep);
    gq_request_release(&again);
    gq_buf_release(&a);
    gq_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    gq_request_t req;
    if (gq_schema_init(err, sizeof(err)) != GQ_OK)
        abort();
    gq_status_t st = gq_request_decode(data, size, &req, err, sizeof(err));
    if (st == GQ_OK) {
        gq_request_validate(&req, err, sizeof(err));
        roundtrip(&req);
    } else if (st != GQ_ERR_INVALID || !err[0]) {
        abort(); /* bad input must be reported as such, with a reason */
    }
    gq_request_release(&req);
    return 0;
}
