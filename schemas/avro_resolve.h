/**
 * @file avro_resolve.h
 * @brief Avro schema resolution (specification 1.11, "Schema Resolution"): a schema model
 * read from JSON, a plan that turns data written with one schema (the writer's) into the
 * binary encoding of another (the reader's), and the compatibility checks built on it.
 *
 * avro-c resolves a writer schema into a reader schema (avro_resolved_writer_new) but cannot
 * fill the defaults of fields the writer lacks: it does not even keep defaults in its schema
 * objects. So the resolution is done here, on the bytes: gq_avro_resolve() reads a writer's
 * datum and writes the reader's datum (fields reordered, removed ones skipped, added ones
 * filled with their encoded default, numbers promoted, enum symbols and union branches
 * mapped), which then goes through the same checked avro-c path as a message written with
 * the reader's own schema.
 *
 * Every length in the writer's data is checked against the bytes actually left before it is
 * used, as in avro_check.c: the input is untrusted.
 */
#ifndef GQ_AVRO_RESOLVE_H
#define GQ_AVRO_RESOLVE_H

#include "buf.h"
#include "gq.h"

#include <stdbool.h>

/** A parsed schema (all its named types). */
typedef struct gq_avsc gq_avsc_t;
/** A compiled resolution of one writer schema into one reader schema. */
typedef struct gq_avro_plan gq_avro_plan_t;

/** Parses a schema from its JSON text; NULL with errstr on failure. */
gq_avsc_t *gq_avsc_parse(const char *json, size_t len, char *errstr, size_t errstr_size);
void gq_avsc_destroy(gq_avsc_t *s);
/** The full name of the top-level type ("genq.v1.GenerationRequest"), or its type name for
 * an unnamed one ("string"). */
const char *gq_avsc_name(const gq_avsc_t *s);
/** The names of the top-level record's fields, in order (NULL for other types). */
size_t gq_avsc_field_count(const gq_avsc_t *s);
const char *gq_avsc_field_name(const gq_avsc_t *s, size_t i);

/**
 * Compiles the resolution of data written with `writer` into `reader`. Strict: anything
 * that could fail on some datum (a writer union branch or enum symbol the reader cannot
 * take) is an error, as in a compatibility check. Lenient: only what fails on every datum is
 * an error; the rest fails when a datum uses it. Both schemas must outlive the plan.
 * @returns NULL with errstr saying where ("field steps: long cannot be read as int").
 */
gq_avro_plan_t *gq_avro_plan_new(const gq_avsc_t *writer, const gq_avsc_t *reader, bool strict,
                                 char *errstr, size_t errstr_size);
void gq_avro_plan_destroy(gq_avro_plan_t *p);

/**
 * Appends to out the reader's encoding of the writer's datum data[0..len). max_items bounds
 * array and map items in all, as gq_avro_datum_check does.
 * @returns GQ_OK; GQ_ERR_INVALID (errstr names the field path) for data that is not one
 * well-formed datum of the writer's schema or that uses what the reader cannot take;
 * GQ_ERR_NOMEM; GQ_ERR_TOOBIG when out's limit is reached.
 */
gq_status_t gq_avro_resolve(const gq_avro_plan_t *p, const void *data, size_t len, size_t max_items,
                            gq_buf_t *out, char *errstr, size_t errstr_size);

/** Compatibility levels, as schema registries name them. */
typedef enum gq_avro_compat {
    GQ_AVRO_BACKWARD = 1, /**< the new schema reads data written with the old one */
    GQ_AVRO_FORWARD = 2,  /**< the old schema reads data written with the new one */
    GQ_AVRO_FULL = 3,     /**< both */
} gq_avro_compat_t;

/**
 * Checks that `newer` is compatible with `older` at `level` (strict resolution in each
 * direction the level asks for). errstr says which direction failed and where.
 */
gq_status_t gq_avro_compatible(const gq_avsc_t *newer, const gq_avsc_t *older,
                               gq_avro_compat_t level, char *errstr, size_t errstr_size);

#endif
