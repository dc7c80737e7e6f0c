/**
 * @file idset.h
 * @brief A set of job ids (36-character uuids) with a per-id state byte; open addressing.
 */
#ifndef GQ_IDSET_H
#define GQ_IDSET_H

#include "gq.h"

typedef struct gq_idset {
    char (*keys)[37];
    unsigned char *state; /**< 0 = empty slot; callers use 1..255 */
    size_t cap, cnt;
} gq_idset_t;

void gq_idset_init(gq_idset_t *s);
void gq_idset_release(gq_idset_t *s);
/** Adds id with state (1..255) if absent; returns GQ_OK or GQ_ERR_NOMEM. */
gq_status_t gq_idset_add(gq_idset_t *s, const char *id, unsigned char state);
/** Returns a pointer to the id's state byte (modifiable), or NULL if absent. */
unsigned char *gq_idset_get(const gq_idset_t *s, const char *id);

#endif
