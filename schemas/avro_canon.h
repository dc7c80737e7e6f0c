/**
 * @file avro_canon.h
 * @brief Avro Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint,
 * per the Avro 1.11 specification ("Schema Fingerprints", "Parsing Canonical Form").
 */
#ifndef GQ_AVRO_CANON_H
#define GQ_AVRO_CANON_H

#include "gq.h"
#include "buf.h"

/** Writes the Parsing Canonical Form of a schema given as JSON text. */
gq_status_t gq_avro_canonical_form(const char *schema_json, gq_buf_t *out, char *errstr,
                                   size_t errstr_size);
/** CRC-64-AVRO of a byte string. */
uint64_t gq_avro_crc64(const void *data, size_t len);
/** Fingerprint of a schema: CRC-64-AVRO of its canonical form. */
gq_status_t gq_avro_fingerprint(const char *schema_json, uint64_t *fp, char *errstr,
                                size_t errstr_size);

#endif
