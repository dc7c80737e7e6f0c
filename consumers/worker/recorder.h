/**
 * @file recorder.h
 * @brief The job recorder: genq's PostgreSQL state (schema genq, see migrations/).
 *
 * Exactly-once effect: a job's terminal row, its outputs, its attempt row and the
 * partition's next offset are written in one transaction. On partition assignment the
 * worker starts from the offsets stored here. Every statement uses parameters.
 * Connection loss returns GQ_ERR_TRANSIENT and the next call reconnects.
 */
#ifndef GQ_RECORDER_H
#define GQ_RECORDER_H

#include "gq.h"
#include "genq_schema.h"

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

/**
 * Connects and checks that every embedded migration is applied (same checksums).
 * An unmigrated or partly migrated database: GQ_ERR_INVALID with
 * "database not migrated (missing 0002_x): run `genq migrate`". Unreachable: GQ_ERR_TRANSIENT.
 */
gq_recorder_t *gq_recorder_new(const char *database_url, gq_status_t *st, char *errstr,
                               size_t errstr_size);
void gq_recorder_destroy(gq_recorder_t *r);

/** Cheap liveness check (SELECT 1), reconnecting if needed. */
gq_status_t gq_recorder_ping(gq_recorder_t *r, char *errstr, size_t errstr_size);

/**
 * For each partition, the next offset to consume as stored by this group, or -1001
 * (RD_KAFKA_OFFSET_INVALID) when none is stored.
 */
gq_status_t gq_recorder_offsets_load(gq_recorder_t *r, const char *group, const char *topic,
                                     const int32_t *partitions, int64_t *offsets, size_t cnt,
                                     char *errstr, size_t errstr_size);

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

/**
 * Records that an attempt starts: upserts genq.jobs (status running, attempts = attempt,
 * comfy_prompt_id, worker_id, started_at, the request's fields) and inserts the
 * genq.job_attempts row. A job already terminal is left unchanged (*terminal = true).
 */
gq_status_t gq_recorder_attempt_begin(gq_recorder_t *r, const gq_request_t *req,
                                      const gq_msg_ref_t *ref, int32_t attempt,
                                      const char *worker_id, const char *prompt_id,
                                      int64_t started_at, bool *terminal, char *errstr,
                                      size_t errstr_size);

/**
 * Ends an attempt that will be retried: marks the attempt row failed with the error and
 * puts the job back to queued. No offset moves.
 */
gq_status_t gq_recorder_attempt_fail(gq_recorder_t *r, const char *job_id, int32_t attempt,
                                     const char *error_code, const char *error_message,
                                     int64_t finished_at, char *errstr, size_t errstr_size);

/**
 * Writes the terminal record in one transaction: genq.jobs row (inserted if missing, from
 * req when req != NULL, else only what ev carries), genq.job_outputs rows, the attempt row,
 * and the partition's next offset (see gq_msg_ref_t, never moving backwards). If the job is already
 * terminal, only the offset moves and *already = true: a job's record is written once.
 */
gq_status_t gq_recorder_job_finish(gq_recorder_t *r, const gq_request_t *req,
                                   const gq_completed_t *ev, const gq_msg_ref_t *ref, bool *already,
                                   char *errstr, size_t errstr_size);

/**
 * A message that is not a usable request (undecodable, no job id): stores it in
 * genq.rejected_messages (reason, error, the raw bytes up to 1 MiB) and moves the offset,
 * in one transaction. Idempotent per (topic, partition, offset).
 */
gq_status_t gq_recorder_reject(gq_recorder_t *r, const gq_msg_ref_t *ref, const char *job_id,
                               const char *reason, const char *error, const void *payload,
                               size_t payload_len, char *errstr, size_t errstr_size);

/** A message to publish once the transaction that records it commits (genq.outbox). */
typedef struct gq_outbox_msg {
    const char *topic;
    const char *key; /**< may be NULL */
    const void *payload;
    size_t len;
    const gq_kv_t *headers; /**< may be NULL */
    size_t headers_cnt;
    const char *job_id; /**< may be NULL */
} gq_outbox_msg_t;

/**
 * job_finish, plus: when the record is written now (not *already), the outbox messages are
 * inserted in the same transaction, claimed by `claimer`; ids[i] gets each row's id (-1
 * when nothing was inserted).
 */
gq_status_t gq_recorder_job_finish_outbox(gq_recorder_t *r, const gq_request_t *req,
                                          const gq_completed_t *ev, const gq_msg_ref_t *ref,
                                          const gq_outbox_msg_t *msgs, size_t cnt,
                                          const char *claimer, int64_t *ids, bool *already,
                                          char *errstr, size_t errstr_size);

/** reject, plus outbox messages (inserted only the first time this message is rejected). */
gq_status_t gq_recorder_reject_outbox(gq_recorder_t *r, const gq_msg_ref_t *ref, const char *reason,
                                      const char *error, const void *payload, size_t payload_len,
                                      const gq_outbox_msg_t *msgs, size_t cnt, const char *claimer,
                                      int64_t *ids, char *errstr, size_t errstr_size);

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
 * we replace after a crash). *rows is allocated (NULL when *cnt is 0).
 */
gq_status_t gq_recorder_outbox_claim(gq_recorder_t *r, const char *claimer, int64_t stale_ms,
                                     bool mine_too, int limit, gq_outbox_row_t **rows, size_t *cnt,
                                     char *errstr, size_t errstr_size);
void gq_outbox_rows_free(gq_outbox_row_t *rows, size_t cnt);

/** Deletes published rows (Kafka acknowledged them). */
gq_status_t gq_recorder_outbox_done(gq_recorder_t *r, const int64_t *ids, size_t cnt, char *errstr,
                                    size_t errstr_size);

/** Moves the stored offset forward (see gq_msg_ref_t) without touching jobs. */
gq_status_t gq_recorder_offset_advance(gq_recorder_t *r, const gq_msg_ref_t *ref, char *errstr,
                                       size_t errstr_size);

#endif
