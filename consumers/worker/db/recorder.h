/**
 * @file recorder.h
 * @brief The job recorder: genq's PostgreSQL state (schema genq, see migrations/).
 *
 * Every write of the worker is one statement calling a function of migrations/0003 (so one
 * statement is one transaction) and is idempotent, so that running it again after a lost
 * answer is always safe. The worker sends them without waiting (gq_recorder_*_send, tagged)
 * and reads their results from the recorder's pipeline (gq_recorder_pgq) when they come
 * back, with the matching gq_recorder_*_result parser. The blocking forms (no _send) run the
 * same statement and parser and wait: for tests, tools, and the rare calls that cannot wait.
 *
 * Exactly-once effect: a job's terminal row, its outputs, its attempt row, its outbox
 * messages and the partition's next offset are written in one transaction; a second finish
 * of the same job only moves the offset. On partition assignment the worker starts from the
 * offsets stored here. Every statement uses parameters.
 */
#ifndef GQ_RECORDER_H
#define GQ_RECORDER_H

#include "genq_schema.h"
#include "gq.h"
#include "pgq.h"

#include <stdbool.h>

typedef struct gq_recorder gq_recorder_t;

/** Where a message came from, and where its partition's stored offset may move. */
typedef struct gq_msg_ref {
    const char *group;
    const char *topic;
    int32_t partition;
    int64_t offset; /**< the message's own offset (keys rejected messages, job rows) */
    /**
     * The partition's next offset to store with this write: > 0 stores it (never moving
     * backwards); 0 means offset + 1 (this message was the last one in flight); < 0 moves
     * nothing (an older message is still in flight, or the partition is not ours).
     */
    int64_t next_offset;
} gq_msg_ref_t;

/** The statements' kinds, as gq_pgq_done_t.kind. */
typedef enum gq_rec_kind {
    GQ_REC_BEGIN = 1,
    GQ_REC_ADOPT,
    GQ_REC_FAIL,
    GQ_REC_FINISH,
    GQ_REC_REJECT,
    GQ_REC_OUTBOX_DONE,
    GQ_REC_OUTBOX_FAILED,
    GQ_REC_OFFSET,
    GQ_REC_CANCELS,
} gq_rec_kind_t;

/**
 * Connects, checks that every embedded migration is applied (same checksums), and opens the
 * pipeline. Not migrated (yet): GQ_ERR_NOTFOUND; a changed migration: GQ_ERR_INVALID;
 * unreachable: GQ_ERR_TRANSIENT.
 */
gq_recorder_t *gq_recorder_new(const char *database_url, gq_status_t *st, char *errstr,
                               size_t errstr_size);
void gq_recorder_destroy(gq_recorder_t *r);

/** The pipeline the _send statements go to (the recorder keeps it). */
gq_pgq_t *gq_recorder_pgq(gq_recorder_t *r);

/** Whether the database answers now (SELECT 1 through the pipeline, 2 s at most). */
gq_status_t gq_recorder_ping(gq_recorder_t *r, char *errstr, size_t errstr_size);

/* ---- an attempt starts ---- */

typedef struct gq_rec_begin {
    const gq_request_t *req;
    const char *model; /**< the checkpoint the bound workflow loads (NULL: req's) */
    int32_t max_attempts;
    const char *worker_id;
    const char *prompt_id; /**< the new attempt's, recorded before ComfyUI hears of it */
    gq_msg_ref_t ref;
    int64_t started_at;    /**< ms; 0: the database's clock */
    bool force;            /**< start a new attempt even if an earlier one may still run */
    const char *cache_key; /**< the result cache's key (NULL: no cache for this job) */
} gq_rec_begin_t;

typedef enum gq_rec_outcome {
    GQ_REC_BEGUN,     /**< attempt `attempt` is recorded as running with the prompt id */
    GQ_REC_TERMINAL,  /**< the job has its terminal record; the offset moved as ref says */
    GQ_REC_PROBE,     /**< attempt `attempt` (prev_prompt_id) may still be in ComfyUI */
    GQ_REC_EXHAUSTED, /**< `attempt` attempts were made, max_attempts allows no more */
    GQ_REC_CACHED,    /**< job prev_prompt_id, with the same cache key, has the outputs */
    GQ_REC_CANCELLED, /**< a cancel applies (cancel_*): no attempt; `attempt` were made, and
                           prev_prompt_id (if set) is the latest one's, still marked running */
} gq_rec_outcome_t;

typedef struct gq_rec_begun {
    gq_rec_outcome_t outcome;
    int32_t attempt;
    char prev_prompt_id[64]; /**< CACHED: the job whose outputs answer this one */
    int64_t prev_started_at; /**< ms, 0 if unknown */
    gq_output_t *outputs;    /**< CACHED: its outputs (owned; gq_rec_begun_release) */
    size_t outputs_cnt;
    char cancel_reason[GQ_CANCEL_REASON_MAX + 1]; /**< CANCELLED: the cancel's reason */
    char cancel_by[GQ_CANCEL_BY_MAX + 1];         /**< CANCELLED: who asked */
} gq_rec_begun_t;

void gq_rec_begun_release(gq_rec_begun_t *b);

gq_status_t gq_recorder_begin_send(gq_recorder_t *r, const gq_rec_begin_t *a, uint64_t tag,
                                   char *errstr, size_t errstr_size);
gq_status_t gq_recorder_begin_result(const PGresult *res, gq_rec_begun_t *out, char *errstr,
                                     size_t errstr_size);
gq_status_t gq_recorder_begin(gq_recorder_t *r, const gq_rec_begin_t *a, gq_rec_begun_t *out,
                              char *errstr, size_t errstr_size);

/** This worker took over a running attempt (adoption after a crash): its name goes on it. */
gq_status_t gq_recorder_adopt_send(gq_recorder_t *r, const char *job_id, int32_t attempt,
                                   const char *worker_id, uint64_t tag, char *errstr,
                                   size_t errstr_size);

/* ---- an attempt fails and will be retried ---- */

typedef struct gq_rec_fail {
    const char *job_id;
    int32_t attempt;
    const char *error_code, *error_message;
    int64_t finished_at;         /**< ms */
    int64_t queue_ms, render_ms; /**< < 0: unknown */
} gq_rec_fail_t;

gq_status_t gq_recorder_fail_send(gq_recorder_t *r, const gq_rec_fail_t *a, uint64_t tag,
                                  char *errstr, size_t errstr_size);
gq_status_t gq_recorder_fail(gq_recorder_t *r, const gq_rec_fail_t *a, char *errstr,
                             size_t errstr_size);

/* ---- the terminal record ---- */

/** A message to publish once the transaction that records it commits (genq.outbox). */
typedef struct gq_outbox_msg {
    const char *topic;
    const void *payload; /**< NULL: no such message */
    size_t len;
    const gq_kv_t *headers; /**< may be NULL */
    size_t headers_cnt;
} gq_outbox_msg_t;

typedef struct gq_rec_finish {
    const gq_request_t *req;  /**< NULL when the message did not decode */
    const gq_completed_t *ev; /**< the completion: status, attempt, durations, outputs... */
    gq_msg_ref_t ref;
    const char *claimer; /**< who publishes the outbox rows (the worker id) */
    gq_outbox_msg_t event, dead_letter;
    /* what the record adds to the event (NULL, < 0: not known) */
    const char *lane;
    int64_t sched_wait_ms;
    const char *cache_key;
    const char *cache_source; /**< a cache hit: the job whose outputs were reused */
    const char *traceparent;  /**< the request's W3C trace context */
    bool cancelled;           /**< status cancelled (the event says FAILED, code cancelled) */
    bool no_attempt;          /**< no attempt of its own was running: attempts stay as they are */
} gq_rec_finish_t;

typedef struct gq_rec_finished {
    bool already;     /**< the job was terminal before: nothing but the offset moved */
    int64_t event_id; /**< outbox row of the completion event, -1 if none */
    int64_t dead_id;  /**< outbox row of the dead letter, -1 if none */
} gq_rec_finished_t;

gq_status_t gq_recorder_finish_send(gq_recorder_t *r, const gq_rec_finish_t *a, uint64_t tag,
                                    char *errstr, size_t errstr_size);
gq_status_t gq_recorder_finish_result(const PGresult *res, gq_rec_finished_t *out, char *errstr,
                                      size_t errstr_size);
gq_status_t gq_recorder_finish(gq_recorder_t *r, const gq_rec_finish_t *a, gq_rec_finished_t *out,
                               char *errstr, size_t errstr_size);

/* ---- cancels ---- */

/** A CancelRequest read from the cancel topic, and where from. */
typedef struct gq_rec_cancel {
    const gq_cancel_t *cancel;
    const char *topic;
    int32_t partition;
    int64_t offset;
} gq_rec_cancel_t;

/**
 * Records cancels (genq.cancels_record: idempotent; of two for one job, the later message in
 * its partition wins). The answer's kind is GQ_REC_CANCELS; nothing but a retry depends on it.
 */
gq_status_t gq_recorder_cancels_send(gq_recorder_t *r, const gq_rec_cancel_t *c, size_t cnt,
                                     const char *worker_id, uint64_t tag, char *errstr,
                                     size_t errstr_size);
/** The same, waiting; *written (may be NULL): rows inserted or updated. */
gq_status_t gq_recorder_cancels(gq_recorder_t *r, const gq_rec_cancel_t *c, size_t cnt,
                                const char *worker_id, int64_t *written, char *errstr,
                                size_t errstr_size);

/* ---- a message that is no request ---- */

typedef struct gq_rec_reject {
    gq_msg_ref_t ref;
    const char *job_id; /**< kept when it is a uuid, any case; may be NULL */
    const char *reason, *error;
    const void *payload; /**< the raw message (kept up to 1 MiB) */
    size_t payload_len;
    const char *claimer;
    gq_outbox_msg_t dead_letter;
} gq_rec_reject_t;

typedef struct gq_rec_rejected {
    bool first;      /**< first time this message was rejected (a redelivery is not) */
    int64_t dead_id; /**< outbox row of the dead letter, -1 if none */
} gq_rec_rejected_t;

gq_status_t gq_recorder_reject_send(gq_recorder_t *r, const gq_rec_reject_t *a, uint64_t tag,
                                    char *errstr, size_t errstr_size);
gq_status_t gq_recorder_reject_result(const PGresult *res, gq_rec_rejected_t *out, char *errstr,
                                      size_t errstr_size);
gq_status_t gq_recorder_reject(gq_recorder_t *r, const gq_rec_reject_t *a, gq_rec_rejected_t *out,
                               char *errstr, size_t errstr_size);

/* ---- offsets ---- */

/** Moves the stored offset forward (see gq_msg_ref_t) without touching jobs. */
gq_status_t gq_recorder_offset_send(gq_recorder_t *r, const gq_msg_ref_t *ref, uint64_t tag,
                                    char *errstr, size_t errstr_size);
gq_status_t gq_recorder_offset_advance(gq_recorder_t *r, const gq_msg_ref_t *ref, char *errstr,
                                       size_t errstr_size);

/**
 * For each partition, the next offset to consume as stored by this group, or -1001
 * (RD_KAFKA_OFFSET_INVALID) when none is stored. Blocking (a rebalance callback needs it).
 */
gq_status_t gq_recorder_offsets_load(gq_recorder_t *r, const char *group, const char *topic,
                                     const int32_t *partitions, int64_t *offsets, size_t cnt,
                                     char *errstr, size_t errstr_size);

/* ---- reading ---- */

typedef struct gq_job_row {
    bool exists;
    char status[16]; /**< queued, running, succeeded, failed */
    int32_t attempts;
    char comfy_prompt_id[64]; /**< of the latest attempt, "" if none */
    char worker_id[128];
    int64_t started_at; /**< ms, 0 if unknown */
} gq_job_row_t;

gq_status_t gq_recorder_job_get(gq_recorder_t *r, const char *job_id, gq_job_row_t *out,
                                char *errstr, size_t errstr_size);

/* ---- the outbox ---- */

/** One outbox row handed to a publisher. All owned; free with gq_outbox_rows_free. */
typedef struct gq_outbox_row {
    int64_t id;
    char *topic;
    char *key; /**< NULL if none */
    unsigned char *payload;
    size_t len;
    gq_kv_t *headers;
    size_t headers_cnt;
} gq_outbox_row_t;

/**
 * Claims up to limit rows that nobody is publishing: unclaimed, claimed more than stale_ms
 * ago (their worker died), or, with mine_too, claimed under our own name (by the process
 * we replace after a crash). *rows is allocated (NULL when *cnt is 0). Blocking.
 */
gq_status_t gq_recorder_outbox_claim(gq_recorder_t *r, const char *claimer, int64_t stale_ms,
                                     bool mine_too, int limit, gq_outbox_row_t **rows, size_t *cnt,
                                     char *errstr, size_t errstr_size);
void gq_outbox_rows_free(gq_outbox_row_t *rows, size_t cnt);

/** Deletes published rows (Kafka acknowledged them). */
gq_status_t gq_recorder_outbox_done_send(gq_recorder_t *r, const int64_t *ids, size_t cnt,
                                         uint64_t tag, char *errstr, size_t errstr_size);
gq_status_t gq_recorder_outbox_done(gq_recorder_t *r, const int64_t *ids, size_t cnt, char *errstr,
                                    size_t errstr_size);

/**
 * Rows that could not be published (errors[i] says why): counted, claimed again only after
 * the retry delay, parked after max_attempts failures. Nothing waits for the answer.
 */
gq_status_t gq_recorder_outbox_failed_send(gq_recorder_t *r, const int64_t *ids,
                                           const char *const *errors, size_t cnt, int max_attempts,
                                           uint64_t tag, char *errstr, size_t errstr_size);

typedef struct gq_outbox_stats {
    int64_t pending; /**< rows still to publish */
    int64_t parked;  /**< rows set aside after too many failures */
    double oldest_s; /**< age of the oldest row still to publish, 0 when none */
} gq_outbox_stats_t;

/** The outbox's depth, for the metrics (blocking; the outbox is small). */
gq_status_t gq_recorder_outbox_stats(gq_recorder_t *r, gq_outbox_stats_t *out, char *errstr,
                                     size_t errstr_size);

#endif
