/*
 * libFuzzer target: gq_request_from_json on any text. A request that reads and validates
 * must encode, decode and validate again.
 */
#include "genq_schema.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    gq_request_t req, again;
    if (gq_schema_init(err, sizeof(err)) != GQ_OK)
        abort();
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
