/**
 * @file intake.h
 * @brief The worker's Kafka consumer: group membership, rebalances, messages, flow control
 * and offset commits, over the topics of every priority lane (lanes.h). It knows nothing of jobs:
 * it hands out messages and partition changes in the order they happened, and commits what it is
 * told.
 *
 * Messages are taken into the worker's own bounded backlog as they come; the consumer is
 * paused only when that backlog is full and resumed when it has drained to half (pausing
 * makes librdkafka drop what it prefetched, so pausing per job would refetch all the time).
 * Offsets are stored only when told (after the record is in PostgreSQL) and committed by
 * librdkafka's auto-commit, which is what KEDA reads.
 */
#ifndef GQ_INTAKE_H
#define GQ_INTAKE_H

#include "cfg.h"
#include "gq.h"
#include "lanes.h"
#include "recorder.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

typedef struct gq_intake gq_intake_t;

/** One thing that happened on the consumer, in order. */
typedef enum gq_intake_kind {
    GQ_INTAKE_NONE,
    GQ_INTAKE_MESSAGE, /**< msg: the caller's (rd_kafka_message_destroy) */
    GQ_INTAKE_ASSIGN,  /**< partition is ours, from offset start (-1: Kafka's committed) */
    GQ_INTAKE_REVOKE,  /**< partition is not ours any more (lost: without a clean handover) */
} gq_intake_kind_t;

typedef struct gq_intake_item {
    gq_intake_kind_t kind;
    rd_kafka_message_t *msg;
    int lane; /**< the lane of the message's or partition's topic */
    int32_t partition;
    int64_t start;
    bool lost;
} gq_intake_item_t;

/**
 * Creates the consumer (not subscribed yet: a worker joins the group only when it can take
 * work). Partition starts come from the recorder's stored offsets (PostgreSQL holds the
 * truth), Kafka's committed ones when it cannot answer.
 */
gq_intake_t *gq_intake_new(const gq_cfg_t *cfg, const char *worker_id, gq_recorder_t *rec,
                           char *errstr, size_t errstr_size);
void gq_intake_destroy(gq_intake_t *in);

/** Joins the group (subscribes to the requests topic). */
gq_status_t gq_intake_subscribe(gq_intake_t *in, char *errstr, size_t errstr_size);
bool gq_intake_subscribed(const gq_intake_t *in);

/** A descriptor that becomes readable when the consumer has something for us. */
int gq_intake_fd(const gq_intake_t *in);

/**
 * The next thing that happened, without waiting; GQ_INTAKE_NONE when there is nothing now.
 * Consumer errors are logged here; a fatal one sets gq_intake_fatal.
 */
void gq_intake_next(gq_intake_t *in, gq_intake_item_t *out);
bool gq_intake_fatal(const gq_intake_t *in);

/** Pauses or resumes every assigned partition of a lane (idempotent; lane -1: all lanes). */
void gq_intake_pause(gq_intake_t *in, int lane, bool pause);
bool gq_intake_paused(const gq_intake_t *in, int lane);

/** Stores `next` as the partition's offset to commit. */
void gq_intake_commit(gq_intake_t *in, int lane, int32_t partition, int64_t next);

/** Low and high watermarks of an assigned partition (cached, no request); false if unknown. */
bool gq_intake_watermarks(gq_intake_t *in, int lane, int32_t partition, int64_t *lo, int64_t *hi);
/** Whether a broker answers (for readiness). */
bool gq_intake_connected(gq_intake_t *in);

/** Commits the stored offsets and leaves the group, waiting at most 10 s for it. */
void gq_intake_close(gq_intake_t *in);

/** The lanes (their topics) this consumer reads. */
const gq_lanes_t *gq_intake_lanes(const gq_intake_t *in);
const char *gq_intake_group(const gq_intake_t *in);

#endif
