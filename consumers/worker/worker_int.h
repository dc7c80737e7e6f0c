/**
 * @file worker_int.h
 * @brief The worker's internal state, shared by worker.c, intake.c, render.c, finish.c.
 *
 * One thread runs everything: rd_kafka_consumer_poll is called at least every ~100 ms
 * (so rebalances and heartbeats are served during long renders), the ComfyUI WebSocket is
 * read with a short timeout in the same loop, and each job advances through its states.
 * The GPU never waits for us because the next prompt is already queued inside ComfyUI
 * (queue_depth ahead) while the previous job's outputs are fetched and recorded.
 */
#ifndef GQ_WORKER_INT_H
#define GQ_WORKER_INT_H

#include "comfy/comfy.h"
#include "metrics.h"
#include "genq_schema.h"
#include "recorder.h"
#include "store.h"
#include "worker.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

typedef enum job_state {
    JOB_NEW,      /**< taken from Kafka; decode, dedupe and reattach still to do */
    JOB_READY,    /**< decoded and bound, waiting for a slot in ComfyUI */
    JOB_BACKOFF,  /**< a retryable failure; waits until retry_at */
    JOB_QUEUED,   /**< submitted (or adopted); not running yet */
    JOB_RUNNING,  /**< execution_start seen */
    JOB_RENDERED, /**< ComfyUI finished it (success or error); outputs to fetch */
    JOB_RECORD,   /**< terminal: the record and its outbox messages are to be written */
    JOB_DONE,     /**< finished; only the offset bookkeeping is left */
} job_state_t;

typedef struct job {
    struct job *next;
    job_state_t state;
    int32_t partition;
    int64_t offset;
    char job_id[37];
    void *payload; /**< the message's bytes (owned), for rejects and dead letters */
    size_t payload_len;
    bool decoded; /**< req holds a valid request */
    gq_request_t req;
    json_t *workflow; /**< bound API workflow (owned) */
    int32_t attempt;
    int32_t max_attempts;
    char prompt_id[37];
    bool adopted; /**< reattached to a prompt of an earlier attempt */
    /* times: wall-clock ms for records, monotonic ms for timeouts */
    int64_t received_at, started_at, rendered_at;
    int64_t submitted_mono, last_event_mono, last_check_mono, retry_at_mono, started_mono;
    int timeout_s;
    double progress;       /**< 0..1 of the sampler */
    gq_completed_t result; /**< the completion being emitted and recorded */
    bool has_result;
    char error_code[32];
    char error_message[512];
    bool error_retryable;
    bool free_before_retry; /**< POST /free before the next attempt (out of memory) */
    bool revoked;           /**< its partition was taken away: finish bookkeeping, no offset */
    /* Poison messages and exhausted jobs also go, as their original bytes, to the
     * dead-letter topic (through the outbox, with the terminal record). */
    bool to_dlq;
    char dlq_reason[32];
} job_t;

/** Offsets of one assigned partition: the next offset to commit is the smallest offset
 * still in flight (or the one after the last finished when none is). */
typedef struct part {
    int32_t partition;
    bool assigned;
    int64_t next_commit;   /**< -1 until known */
    int64_t consumed_next; /**< offset after the last message taken */
} part_t;

#define WORKER_MAX_PARTS 1024

struct gq_worker {
    const gq_cfg_t *cfg;
    char worker_id[128];
    char client_id[37];
    const char *group, *topic;
    rd_kafka_t *consumer;
    rd_kafka_t *emitter; /**< producer of completion events */
    gq_comfy_t *comfy;
    gq_recorder_t *rec;
    gq_store_t store;
    gq_metrics_t *metrics; /**< always collected; served when http_listen is set */
    int64_t health_mono;   /**< next readiness and lag check */
    bool warmed_up;
    char workflows_dir[512];

    job_t *jobs; /**< in-flight jobs, in arrival order */
    size_t jobs_cnt;
    size_t max_jobs; /**< intake pauses at this many */
    bool paused;
    part_t parts[WORKER_MAX_PARTS];

    int queue_depth;
    int job_timeout_s, stall_timeout_s, max_attempts;
    int64_t max_output_bytes;
    bool stopping; /**< signal received: take no new job */
    bool fatal;
    int64_t comfy_retry_mono;    /**< next time to try reconnecting the WebSocket */
    int64_t comfy_ok_after_mono; /**< ComfyUI was unreachable: no submission before this */
    int64_t pg_retry_mono;       /**< PostgreSQL was unreachable: no retry before this */
    /* counters, for logs and the metrics endpoint */
    uint64_t n_succeeded, n_failed, n_retries, n_skipped, n_adopted, n_rejected;
    /* The outbox relay: rows Kafka acknowledged, to delete from genq.outbox. */
    int64_t *outbox_done;
    size_t outbox_done_cnt, outbox_done_cap;
    int64_t outbox_scan_mono; /**< next look for rows nobody is publishing */
    bool outbox_scanned_mine; /**< rows left by our previous process were taken */
};

/* intake.c */
void intake_process(gq_worker_t *w, job_t *j);
/** Drops a message whose job already has its terminal record (redelivery, replay). */
void intake_skip(gq_worker_t *w, job_t *j, const char *why);
gq_status_t intake_init(gq_worker_t *w, char *errstr, size_t errstr_size);
void intake_poll(gq_worker_t *w, int timeout_ms);
void intake_flow_control(gq_worker_t *w);
void intake_job_done(gq_worker_t *w, job_t *j);
void intake_close(gq_worker_t *w);
part_t *intake_part(gq_worker_t *w, int32_t partition);
/** j's message reference, with the offset PostgreSQL may store once j is finished. */
gq_msg_ref_t intake_ref(gq_worker_t *w, const job_t *j);

/* render.c */
void render_pump(gq_worker_t *w);
void render_on_event(gq_worker_t *w, const gq_comfy_event_t *ev);
void render_check(gq_worker_t *w);
void render_prepare(gq_worker_t *w, job_t *j);
void render_cancel(gq_worker_t *w, job_t *j);
/** Fails a job from ComfyUI's exception type and message (out of memory, missing model...). */
void render_fail_exec(gq_worker_t *w, job_t *j, const char *type, const char *msg);
/** Fails a job: retryable failures with attempts left go to JOB_BACKOFF, others terminal. */
void render_fail(gq_worker_t *w, job_t *j, const char *code, bool retryable, const char *fmt, ...)
    GQ_PRINTF(5, 6);

/* finish.c */
gq_status_t finish_init(gq_worker_t *w, char *errstr, size_t errstr_size);
/** A render ended in ComfyUI: success → fetch outputs and emit; error → classify and fail. */
void finish_rendered(gq_worker_t *w, job_t *j, const gq_comfy_result_t *res);
/** Terminal failure: builds the FAILED completion and sends it on its way. */
void finish_failed(gq_worker_t *w, job_t *j);
/** A message with no usable job id: dead-lettered and kept in genq.rejected_messages. */
void finish_reject(gq_worker_t *w, job_t *j, const char *reason, const char *err);
void finish_poll(gq_worker_t *w);
void finish_close(gq_worker_t *w);

/** Renders the warm-up workflows (GENQ_WARMUP) before the worker reports ready. */
void render_warmup(gq_worker_t *w, volatile sig_atomic_t *stop);

/* worker.c */
job_t *worker_job_new(gq_worker_t *w, int32_t partition, int64_t offset);
void worker_job_free(job_t *j);
void worker_job_remove(gq_worker_t *w, job_t *j);
job_t *worker_job_find(gq_worker_t *w, const char *job_id);
size_t worker_jobs_in_comfy(const gq_worker_t *w);

#endif
