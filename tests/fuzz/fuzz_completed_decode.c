/*
 * libFuzzer target: gq_completed_decode on any byte string, the JSON form of what decodes,
 * and an encode/decode round trip that must give the same bytes.
 */
#include "genq_schema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    gq_completed_t ev, again;
    if (gq_schema_init(err, sizeof(err)) != GQ_OK)
        abort();
    gq_status_t st = gq_completed_decode(data, size, &ev, err, sizeof(err));
    if (st == GQ_OK) {
        gq_buf_t a, b;
        gq_buf_init(&a, 1u << 24);
        gq_buf_init(&b, 1u << 24);
        if (gq_completed_to_json(&ev, &a) != GQ_OK)
            abort();
        gq_buf_reset(&a);
        if (gq_completed_encode(&ev, &a, err, sizeof(err)) != GQ_OK ||
            gq_completed_decode(a.data, a.len, &again, err, sizeof(err)) != GQ_OK ||
            gq_completed_encode(&again, &b, err, sizeof(err)) != GQ_OK || a.len != b.len ||
            memcmp(a.data, b.data, a.len) != 0)
            abort();
        gq_completed_release(&again);
        gq_buf_release(&a);
        gq_buf_release(&b);
    } else if (st != GQ_ERR_INVALID || !err[0]) {
        abort();
    }
    gq_completed_release(&ev);
    return 0;
}
