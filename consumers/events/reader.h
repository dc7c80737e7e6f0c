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

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct gq_reader gq_reader_t;

/** How long a reader waits by default for its topic to exist and to have a leader for every
 * partition (a topic created a moment ago, a broker electing leaders). */
#define GQ_READER_WAIT_MS 30000

typedef struct gq_reader_opts {
    const char *topic;
    const char *from; /**< "beginning", "end", an offset, or "@<unix-ms>" */
    int partitions;   /**< > 0: create the topic with this many partitions when missing */
    bool follow;      /**< keep reading past the end seen at open */
    int64_t wait_ms;  /**< how long to wait for the topic and its leaders (0: GQ_READER_WAIT_MS,
                           < 0: until *stop) */
    volatile sig_atomic_t *stop; /**< may be NULL; non-zero ends the wait (a signal) */
} gq_reader_opts_t;

/**
 * Opens a reader on o->topic at o->from. "end" is resolved to concrete offsets now, so
 * events produced after this call are never missed. A topic that does not exist yet, or a
 * partition without a leader yet, is waited for (logged once), up to o->wait_ms; then NULL
 * with errstr naming the topic and what was missing.
 */
gq_reader_t *gq_reader_new(const gq_cfg_t *cfg, const gq_reader_opts_t *o, char *errstr,
                           size_t errstr_size);
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
