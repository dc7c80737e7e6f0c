/**
 * @file embedded.h
 * @brief Files compiled into the binary (the .avsc schemas, the .sql migrations and
 * the .json workflow templates), found by their path in the repository.
 */
#ifndef GQ_EMBEDDED_H
#define GQ_EMBEDDED_H

#include <stddef.h>

typedef struct gq_embedded {
    const char *name; /**< repository path, e.g. "schemas/GenerationRequest.avsc" */
    const char *data; /**< NUL-terminated */
    size_t len;       /**< without the NUL */
} gq_embedded_t;

extern const gq_embedded_t gq_embedded_files[];
extern const size_t gq_embedded_count;

/** Returns the file with this repository path, or NULL. */
const gq_embedded_t *gq_embedded_find(const char *name);

#endif
