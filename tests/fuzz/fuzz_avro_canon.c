/*
 * libFuzzer target: Parsing Canonical Form of any text. What canonicalises must be a fixed
 * point (the canonical form of a canonical form is itself) with the same fingerprint.
 * Except where "namespace": "" puts a type in the null namespace inside a namespaced one:
 * the canonical form drops namespace attributes, so read again that type inherits the
 * enclosing namespace (a limit of the spec's form, not of this code). Inputs with an empty
 * string anywhere are spared the fixed-point check.
 */
#include "avro_canon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    gq_buf_t a, b;
    gq_buf_init(&a, 1u << 20);
    gq_buf_init(&b, 1u << 20);
    if (gq_avro_canonical_form(text, &a, err, sizeof(err)) == GQ_OK && !strstr(text, "\"\"")) {
        uint64_t fp1 = 0, fp2 = 0;
        if (gq_avro_canonical_form(a.data, &b, err, sizeof(err)) != GQ_OK ||
            strcmp(a.data, b.data) != 0 || gq_avro_fingerprint(text, &fp1, err, sizeof(err)) ||
            gq_avro_fingerprint(a.data, &fp2, err, sizeof(err)) || fp1 != fp2 ||
            fp1 != gq_avro_crc64(a.data, a.len))
            abort();
    }
    gq_buf_release(&a);
    gq_buf_release(&b);
    free(text);
    return 0;
}
