/**
 * @file cancels.h
 * @brief The cancel topic as a worker follows it: every partition, from the beginning, without
 * a consumer group (every worker reads every cancel), the cancels kept by job id, and their
 * recording in PostgreSQL (genq.cancels) handed out in batches.
 *
 * At start the worker reads the topic to its end before it joins the requests' group
 * (gq_cancels_catch_up), so that no job it takes was cancelled before without its knowing;
 * then the loop follows it (gq_cancels_fd, gq_cancels_next). A message is untrusted: a value
 * over GQ_CANCELS_MAX_MESSAGE bytes, one that does not decode or fails gq_cancel_validate is
 * logged and skipped; a tombstone (no value) is skipped. At most GQ_CANCELS_KEEP cancels are
 * kept; beyond, the oldest already recorded in PostgreSQL are forgotten (genq.attempt_begin
 * still refuses their jobs).
 */
#ifndef GQ_CANCELS_H
#define GQ_CANCELS_H

#include "cfg.h"
#include "genq_schema.h"
#include "gq.h"
#include "recorder.h"

#include <signal.h>
#include <stdbool.h>

#define GQ_CANCELS_MAX_MESSAGE (64u << 10)
#define GQ_CANCELS_KEEP 100000
#define GQ_CANCELS_BATCH 256

typedef struct gq_cancels gq_cancels_t;

/**
 * The consumer of cancel_topic (created compacted, one partition, when missing). Kafka not
 * reachable now is no error: the partitions are looked up again later.
 */
gq_cancels_t *gq_cancels_new(const gq_cfg_t *cfg, const char *worker_id, char *errstr,
                             size_t errstr_size);
void gq_cancels_destroy(gq_cancels_t *c);

/**
 * Reads the topic up to its end as it is now, for at most timeout_ms (or until *stop): every
 * cancel is kept, waiting to be recorded. GQ_ERR_TIMEOUT: not at the end in time (the loop
 * reads on). *read: the cancels kept.
 */
gq_status_t gq_cancels_catch_up(gq_cancels_t *c, int timeout_ms, volatile sig_atomic_t *stop,
                                size_t *read, char *errstr, size_t errstr_size);

/** A descriptor that becomes readable when the consumer has something for us. */
int gq_cancels_fd(const gq_cancels_t *c);

/** Looks up the partitions again when they are not known yet (at most every 10 s). */
void gq_cancels_service(gq_cancels_t *c, int64_t now_mono);

/**
 * The next cancel read, without waiting (kept, valid until the next call), NULL when there is
 * none now. A cancel that replaces the one kept for its job (a later message) is returned too.
 */
const gq_cancel_t *gq_cancels_next(gq_cancels_t *c);

/** The cancel kept for job_id, NULL if none. */
const gq_cancel_t *gq_cancels_find(const gq_cancels_t *c, const char *job_id);

/**
 * Up to max cancels not recorded yet, for gq_recorder_cancels_send (pointers valid until
 * gq_cancels_recorded); 0 when none, or while a batch is being recorded.
 */
size_t gq_cancels_to_record(gq_cancels_t *c, gq_rec_cancel_t *out, size_t max);
/** The batch's answer: recorded, or (ok false) to be recorded again. */
void gq_cancels_recorded(gq_cancels_t *c, bool ok);

/** Cancels kept, and those not recorded yet (in flight included). */
size_t gq_cancels_count(const gq_cancels_t *c);
size_t gq_cancels_unrecorded(const gq_cancels_t *c);

#endif
