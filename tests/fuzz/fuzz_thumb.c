/*
 * libFuzzer target: gq_thumb_png on any bytes (a stored output the report reads back). It must
 * never read out of bounds, and a thumbnail it makes must itself be a PNG it can read again.
 */
#include "consumers/report/thumb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gq_buf_t out, again;
    gq_buf_init(&out, 64u << 20);
    gq_buf_init(&again, 64u << 20);
    if (gq_thumb_png(data, size, 16, &out) == GQ_OK) {
        if (out.len < 8 || memcmp(out.data, "\x89PNG", 4) != 0)
            abort();
        if (gq_thumb_png((const unsigned char *)out.data, out.len, 16, &again) != GQ_OK)
            abort();
    }
    gq_buf_release(&out);
    gq_buf_release(&again);
    return 0;
}
