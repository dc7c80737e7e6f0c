/**
 * @file offsets.h
 * @brief Which offsets of each assigned partition (of each lane's topic) are still in flight, and
 * so where the committed offset may move: to the oldest offset still in flight, or past the last
 * message taken when none is. A pure data structure: no Kafka, no database.
 *
 * A message is taken when it enters the worker and done when its job is over (recorded,
 * or skipped as already recorded). A message left for redelivery (its partition revoked,
 * the worker stopping) is never done: the committed offset stays before it.
 */
#ifndef GQ_OFFSETS_H
#define GQ_OFFSETS_H

#include "gq.h"
#include "lanes.h"

#include <stdbool.h>

#define GQ_OFFSETS_MAX_PARTS 1024

typedef struct gq_offsets_part {
    bool assigned;
    int64_t next_commit; /**< what was last handed out for committing, -1 if nothing yet */
    int64_t taken_next;  /**< offset after the last message taken, -1 before the first */
    int64_t *flight;     /**< offsets taken and not done, ascending */
    size_t flight_cnt, flight_cap;
} gq_offsets_part_t;

typedef struct gq_offsets {
    gq_offsets_part_t parts[GQ_LANES_MAX][GQ_OFFSETS_MAX_PARTS];
} gq_offsets_t;

void gq_offsets_init(gq_offsets_t *o);
void gq_offsets_release(gq_offsets_t *o);

/** A partition is ours from `start` (its stored offset; -1 when unknown). False: out of range. */
bool gq_offsets_assign(gq_offsets_t *o, int lane, int32_t partition, int64_t start);
/** It is not ours any more: everything in flight there is forgotten. */
void gq_offsets_revoke(gq_offsets_t *o, int lane, int32_t partition);
bool gq_offsets_assigned(const gq_offsets_t *o, int lane, int32_t partition);

/** A message entered the worker. GQ_ERR_NOMEM, or GQ_ERR_INVALID for a partition not ours. */
gq_status_t gq_offsets_take(gq_offsets_t *o, int lane, int32_t partition, int64_t offset);

/**
 * A message is over. Returns the new offset to commit when it moved forward, else -1.
 */
int64_t gq_offsets_done(gq_offsets_t *o, int lane, int32_t partition, int64_t offset);

/**
 * The offset to commit if `offset` were done now (the others still in flight), for the
 * record written with it (> 0), or -1 when there is nothing to move (the partition is not
 * ours, or message 0 is still in flight).
 */
int64_t gq_offsets_next_if_done(const gq_offsets_t *o, int lane, int32_t partition, int64_t offset);

/** Messages in flight in a partition. */
size_t gq_offsets_in_flight(const gq_offsets_t *o, int lane, int32_t partition);

#endif
