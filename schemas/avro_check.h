/**
 * @file avro_check.h
 * @brief A walk over untrusted Avro binary data that proves it is one well-formed datum of
 * a schema before avro-c reads it.
 *
 * avro-c trusts the lengths it decodes: a corrupt varint makes it allocate whatever a
 * string, bytes or block length says, and a negative block count of INT64_MIN overflows.
 * gq_avro_datum_check() reads the data the way avro-c will, without allocating, and
 * refuses anything avro-c could choke on, so that only checked data reaches
 * avro_value_read().
 */
#ifndef GQ_AVRO_CHECK_H
#define GQ_AVRO_CHECK_H

#include "gq.h"

#include <stdbool.h>
#include <stdint.h>

#include <avro.h>

/**
 * Checks that data[0..len) is exactly one datum of schema: varints at most 10 bytes (5 for
 * int) and in range; every string, bytes and fixed length within the bytes left; strings
 * valid UTF-8 without NUL bytes (avro-c hands them out as C strings); booleans 0 or 1;
 * enum and union indexes in range; array and map blocks consistent with their byte sizes;
 * at most max_items array and map items in all; nesting at most 32 deep; no bytes left
 * over.
 * @returns GQ_OK, or GQ_ERR_INVALID with errstr naming the field path, e.g.
 * "outputs[1].uri: string length 4000000000 exceeds the 12 bytes left".
 */
gq_status_t gq_avro_datum_check(avro_schema_t schema, const void *data, size_t len,
                                size_t max_items, char *errstr, size_t errstr_size);

/**
 * Reads the string at the start of data (the first field of a record whose first field is
 * a string) into out, without looking further.
 * @returns GQ_OK, or GQ_ERR_INVALID if it is cut short, has a NUL byte or does not fit.
 */
gq_status_t gq_avro_peek_string(const void *data, size_t len, char *out, size_t out_size);

/** What gq_avro_varint found. */
typedef enum gq_varint {
    GQ_VARINT_OK,
    GQ_VARINT_TOO_LONG, /**< more than max_bytes bytes */
    GQ_VARINT_CUT,      /**< the data ends inside it */
    GQ_VARINT_OVERFLOW, /**< does not fit in 64 bits */
    GQ_VARINT_RANGE,    /**< max_bytes 5 (an int): outside int32 */
} gq_varint_t;

/**
 * Reads the zig-zag varint at *p (before end) of at most max_bytes bytes (10 for a long, 5
 * for an int, which must then be in int32 range) into *v, and moves *p past it. The one
 * reader of untrusted varints for gq_avro_datum_check and the schema resolution's walk.
 */
gq_varint_t gq_avro_varint(const unsigned char **p, const unsigned char *end, int max_bytes,
                           int64_t *v);

/** True if s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF), as Avro strings must be. */
bool gq_utf8_valid(const void *s, size_t n);

#endif
