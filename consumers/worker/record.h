/**
 * @file record.h
 * @brief The end of a job: its terminal record and the messages announcing it.
 *
 * The record, the job's outputs, the partition's offset and the outgoing messages (the
 * completion event; the dead letter of a poison or exhausted job) are written in one
 * PostgreSQL transaction (genq.outbox), and the messages are published after the commit.
 * A crash between the two leaves the rows in the outbox, where this worker's next process
 * or, after a while, any worker publishes them: an event is never lost, never announces an
 * attempt that was not recorded, and a repeat carries the same job and attempt.
 */
#ifndef GQ_RECORD_H
#define GQ_RECORD_H

#include "cfg.h"
#include "genq_schema.h"
#include "gq.h"
#include "metrics.h"
#include "recorder.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

typedef struct gq_record gq_record_t;

/** What a terminal record is made of (all borrowed for the call). */
typedef struct gq_record_job {
    const char *job_id;       /**< "" for a message without one (a rejection) */
    const gq_request_t *req;  /**< NULL when the message did not decode */
    const gq_completed_t *ev; /**< the completion (NULL for a rejection) */
    const void *payload;      /**< the message's bytes, for the dead letter */
    size_t payload_len;
    gq_msg_ref_t ref;
    bool dead_letter;
    size_t dead_cut; /**< the dead letter carries only the first dead_cut bytes (0: all) */
    const char *dead_reason;
    const char *error_code, *error_message;
    int32_t attempt;
    /* the record's own columns (NULL, < 0: not known) */
    const char *lane;
    int64_t sched_wait_ms;
    const char *cache_key;
    const char *cache_source;
    const char *traceparent; /**< the request's; carried on the event ("" or NULL: none) */
    bool cancelled;          /**< a cancel request ended it: status cancelled */
    bool no_attempt;         /**< no attempt of its own was running when it ended */
} gq_record_job_t;

gq_record_t *gq_record_new(const gq_cfg_t *cfg, const char *worker_id, gq_recorder_t *rec,
                           gq_metrics_t *metrics, char *errstr, size_t errstr_size);
/** Flushes what is still to publish (bounded) and frees it. */
void gq_record_destroy(gq_record_t *r);

/** Rewrites an output's URI for the completion event (writes out; an error stops the record). */
typedef gq_status_t (*gq_record_uri_fn)(void *ctx, const char *uri, char *out, size_t out_size,
                                        char *errstr, size_t errstr_size);
/**
 * Completion events carry fn's URIs (presigned links to the objects) while the record keeps
 * the outputs' own (s3://). Unset: both carry the same.
 */
void gq_record_set_event_uri(gq_record_t *r, gq_record_uri_fn fn, void *ctx);

/**
 * Sends the record (the answer comes through the recorder's pipeline with `tag`, for
 * gq_record_answer). GQ_ERR_INVALID: the completion event cannot be encoded (nothing was
 * written); other errors: the statement could not be sent.
 */
gq_status_t gq_record_send(gq_record_t *r, const gq_record_job_t *job, uint64_t tag, char *errstr,
                           size_t errstr_size);

/**
 * The answer to gq_record_send's statement (kind GQ_REC_FINISH or GQ_REC_REJECT): on
 * success publishes the messages it wrote. Returns the statement's status; *already is true
 * when the job was recorded before (nothing new was written).
 */
gq_status_t gq_record_answer(gq_record_t *r, const gq_pgq_done_t *d, bool *already, char *errstr,
                             size_t errstr_size);

/** The answer to a GQ_REC_OUTBOX_DONE statement. */
void gq_record_outbox_answer(gq_record_t *r, const gq_pgq_done_t *d);

/** Serves delivery reports, deletes published rows, and now and then publishes rows left
 * by a crashed process. Replaces a producer that acknowledges nothing for 45 s while
 * messages wait (a client librdkafka left stuck; blocks up to 2 s then). Otherwise never
 * blocks long. */
void gq_record_service(gq_record_t *r, int64_t now_mono);
/** How many times the producer was replaced because it acknowledged nothing for too long. */
unsigned gq_record_restarts(const gq_record_t *r);
/** A descriptor that becomes readable when the producer has reports for us. */
int gq_record_fd(const gq_record_t *r);
/** When gq_record_service next wants to run (gq_mono_ms). */
int64_t gq_record_wake(const gq_record_t *r);

#endif
