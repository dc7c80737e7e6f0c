/**
 * @file reader.h
 * @brief Reads GenerationCompleted (or GenerationProgress) events from a position, without a
 * consumer group (nothing is committed), for `genq events`, `genq produce --wait` and
 * `genq cancel --wait`.
 */
#ifndef GQ_EVENTS_READER_H
#define GQ_EVENTS_READER_H

#include "cfg.h"
#include "genq_schema.h"
#include "gq.h"

#include <stdbool.h>

typedef struct gq_reader gq_reader_t;

/**
 * Opens a reader on topic, at `from`: "beginning", "end", an offset, or "@<unix-ms>".
 * "end" is resolved to concrete offsets now, so events produced after this call are
 * never missed. The topic is created (partitions) if it does not exist.
 */
gq_reader_t *gq_reader_new(const gq_cfg_t *cfg, const char *topic, const char *from, int partitions,
                           bool follow, char *errstr, size_t errstr_size);
void gq_reader_destroy(gq_reader_t *r);

/**
 * Waits up to timeout_ms for the next event. GQ_OK: *ev filled (release it).
 * GQ_ERR_TIMEOUT: nothing yet. GQ_ERR_NOTFOUND: without follow, every partition is at
 * the end it had at open. GQ_ERR_INVALID: an undecodable message (skipped;
 * errstr says where). GQ_ERR_TRANSIENT: the next event's writer schema is in a Schema
 * Registry that cannot be asked now (errstr says why); it is kept and decoded again by the
 * next call (which waits a little first), so no event is skipped for an outage.
 */
gq_status_t gq_reader_next(gq_reader_t *r, int timeout_ms, gq_completed_t *ev, char *errstr,
                           size_t errstr_size);

/** gq_reader_next for a topic of GenerationProgress events (same returns). */
gq_status_t gq_reader_next_progress(gq_reader_t *r, int timeout_ms, gq_progress_t *ev, char *errstr,
                                    size_t errstr_size);

/** The W3C traceparent header of the event gq_reader_next returned last ("": none). */
const char *gq_reader_traceparent(const gq_reader_t *r);

#endif
