/*
 * libFuzzer target: gq_media_detect on any bytes (a file ComfyUI or a custom node wrote). It
 * must never read out of bounds, and always name a type.
 */
#include "consumers/worker/store/media.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gq_media_t m;
    gq_media_detect(data, size, &m);
    if (!m.ext || !m.mime || m.width < 0 || m.height < 0 || (m.width == 0) != (m.height == 0))
        abort();
    return 0;
}
