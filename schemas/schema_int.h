/**
 * @file schema_int.h
 * @brief Internals shared by request.c, completed.c, progress.c and cancel.c: the loaded schemas,
 * single-object framing, and gq_av_*, small avro-c value accessors that carry the first error along
 * so that a record is read or written in a straight line of calls.
 */
#ifndef GQ_SCHEMA_INT_H
#define GQ_SCHEMA_INT_H

#include "genq_schema.h"

#include <avro.h>

/* Array and map items one message may hold in all. Far above what validation accepts
 * (256 overrides, 64 metadata entries), it only bounds what avro-c allocates. */
#define GQ_SCHEMA_MAX_ITEMS 4096

/* The single-object header: C3 01 and the 8-byte little-endian fingerprint. */
#define GQ_SCHEMA_HEADER_LEN 10
/* The Confluent header: 00 and the 4-byte big-endian schema id. */
#define GQ_SCHEMA_CONFLUENT_HEADER_LEN 5

/* The .avsc defaults of GenerationRequest's strings that have one besides "" (test_schema
 * checks these against the schema file through gq_request_init). */
#define GQ_REQ_DEFAULT_WORKFLOW "txt2img"
#define GQ_REQ_DEFAULT_SAMPLER "euler"
#define GQ_REQ_DEFAULT_SCHEDULER "normal"

/** The kind's .avsc path in the binary ("schemas/GenerationRequest.avsc") and record name. */
const char *gq_schema_kind_path(gq_schema_kind_t kind);
const char *gq_schema_kind_name(gq_schema_kind_t kind);

/**
 * A writer schema: parsed, fingerprinted, with the plans that resolve it into each reader
 * (compiled on first use). gq_schema_writer_new() makes one from its JSON text (label says
 * where it came from, in messages); NULL with errstr when it is not a valid schema.
 */
typedef struct gq_writer gq_writer_t;
gq_writer_t *gq_schema_writer_new(const char *json, size_t len, const char *label, char *errstr,
                                  size_t errstr_size);
void gq_schema_writer_destroy(gq_writer_t *w);
uint64_t gq_schema_writer_fp(const gq_writer_t *w);
const char *gq_schema_writer_label(const gq_writer_t *w);
const char *gq_schema_writer_name(const gq_writer_t *w);
/** GQ_OK when data written with w can be read as kind (lenient resolution). */
gq_status_t gq_schema_writer_check(gq_writer_t *w, gq_schema_kind_t kind, char *errstr,
                                   size_t errstr_size);

/* The registry's side (registry.c). */
/** True when a registry is configured (gq_schema_registry_set). */
bool gq_schema_registry_on(void);
/**
 * The writer schema of a Confluent-framed message's schema id, from the cache or the
 * registry. GQ_OK: *w is set (owned by the cache). GQ_ERR_INVALID: the registry says there
 * is no such id (permanent). GQ_ERR_TRANSIENT: the registry cannot be asked now, or (in the
 * asynchronous mode) the schema is being fetched: ask again later.
 */
gq_status_t gq_schema_registry_writer(int32_t id, gq_writer_t **w, char *errstr,
                                      size_t errstr_size);

/**
 * Checks the header (single-object, or Confluent with a registry) and the datum
 * (gq_avro_datum_check), resolving a writer schema other than the reader's into the
 * reader's first (avro_resolve.c), then reads it into
 * a new value *val that the caller releases with avro_value_decref() (only on GQ_OK).
 * id (37 bytes) receives the first field of the datum when it is a string that can be
 * read, whatever happens next, and "" otherwise.
 */
gq_status_t gq_schema_read(gq_schema_kind_t kind, const void *data, size_t len, avro_value_t *val,
                           char id[37], char *errstr, size_t errstr_size);
/** A new, empty value of the kind's record; release it with avro_value_decref(). */
gq_status_t gq_schema_value_new(gq_schema_kind_t kind, avro_value_t *val, char *errstr,
                                size_t errstr_size);
/** Appends the single-object encoding of val to out; out is unchanged on failure. */
gq_status_t gq_schema_write(gq_schema_kind_t kind, avro_value_t *val, gq_buf_t *out, char *errstr,
                            size_t errstr_size);

/**
 * The reference encoder: gq_request_encode() through an avro-c generic value (fields set by
 * name) and avro_value_write. Same contract and bytes as gq_request_encode(), much slower;
 * the tests compare the two.
 */
gq_status_t gq_request_encode_avro(const gq_request_t *req, gq_buf_t *out, char *errstr,
                                   size_t errstr_size);

/**
 * gq_request_from_json() in its two halves. The fast path reads flat objects of strings
 * (without \u escapes), numbers and nulls by hand and returns false, req untouched, for
 * anything it cannot read exactly as jansson would; the jansson path reads everything, and
 * words every error. gq_request_from_json() tries them in that order.
 */
bool gq_request_from_json_fast(const char *json, size_t len, gq_request_t *req);
gq_status_t gq_request_from_json_jansson(const char *json, size_t len, gq_request_t *req,
                                         char *errstr, size_t errstr_size);

/** The error state threaded through gq_av_* calls: after a failure they do nothing. */
typedef struct gq_av {
    gq_status_t st;
    char *errstr;
    size_t errstr_size;
} gq_av_t;

/** Records a failure ("<field>: <message>") unless one is recorded already. */
void gq_av_fail(gq_av_t *c, const char *field, const char *fmt, ...) GQ_PRINTF(3, 4);
/** The field of a record, or false (failure recorded). */
bool gq_av_field(gq_av_t *c, avro_value_t *rec, const char *name, avro_value_t *out);

/* Readers. Strings are returned as owned copies. */
char *gq_av_get_str(gq_av_t *c, avro_value_t *rec, const char *name);
/** A string that must fit into out (out_size includes the NUL). */
void gq_av_get_strbuf(gq_av_t *c, avro_value_t *rec, const char *name, char *out, size_t out_size);
/** A ["null","string"] field: NULL for null. */
char *gq_av_get_opt_str(gq_av_t *c, avro_value_t *rec, const char *name);
int32_t gq_av_get_int(gq_av_t *c, avro_value_t *rec, const char *name);
/** A ["null","int"] field: false for null. */
bool gq_av_get_opt_int(gq_av_t *c, avro_value_t *rec, const char *name, int32_t *v);
int64_t gq_av_get_long(gq_av_t *c, avro_value_t *rec, const char *name);
double gq_av_get_double(gq_av_t *c, avro_value_t *rec, const char *name);
bool gq_av_get_bool(gq_av_t *c, avro_value_t *rec, const char *name);
int gq_av_get_enum(gq_av_t *c, avro_value_t *rec, const char *name);
/** A map<string> field as an owned array of pairs (NULL when empty). */
gq_kv_t *gq_av_get_map(gq_av_t *c, avro_value_t *rec, const char *name, size_t *cnt);

/* Writers. A NULL s for a required string is a failure ("<field>: missing"). */
void gq_av_set_str(gq_av_t *c, avro_value_t *rec, const char *name, const char *s);
void gq_av_set_opt_str(gq_av_t *c, avro_value_t *rec, const char *name, const char *s);
void gq_av_set_int(gq_av_t *c, avro_value_t *rec, const char *name, int32_t v);
void gq_av_set_opt_int(gq_av_t *c, avro_value_t *rec, const char *name, bool present, int32_t v);
void gq_av_set_long(gq_av_t *c, avro_value_t *rec, const char *name, int64_t v);
void gq_av_set_double(gq_av_t *c, avro_value_t *rec, const char *name, double v);
void gq_av_set_bool(gq_av_t *c, avro_value_t *rec, const char *name, bool v);
void gq_av_set_enum(gq_av_t *c, avro_value_t *rec, const char *name, int v);
void gq_av_set_map(gq_av_t *c, avro_value_t *rec, const char *name, const gq_kv_t *kv, size_t cnt);

/** Frees an array of pairs and their strings. */
void gq_kv_free(gq_kv_t *kv, size_t cnt);

/** For the events' JSON views (completed.c, progress.c): a JSON string, NULL as null; bytes
 * that are not UTF-8 (only possible in an event built here, never in one decoded) become '?',
 * so the output stays valid JSON. NULL on allocation failure. */
struct json_t *gq_schema_json_str(const char *s);

#endif
