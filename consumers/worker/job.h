/**
 * @file job.h
 * @brief A job's life as one state machine.
 *
 * job_step() is the only place a job changes state. It does no I/O: it reads the event,
 * the job and the environment (the time, the settings), changes the job, and appends the
 * actions the worker loop is to carry out (record this, ask ComfyUI that). Their answers
 * come back as later events. So the whole life cycle is readable here, and testable with
 * made-up events (tests/unit/test_job.c), without Kafka, PostgreSQL or ComfyUI.
 *
 *   NEW ──admit──► READY ──slot──► BEGIN ──begun──► SUBMIT ──ok──► QUEUED ──start──► RUNNING
 *    │               │               │ probe                            │                │
 *    │ bad input     │               ▼                                  └───done────┬────┘
 *    │               │             PROBE ── its prompt is alive: adopt ──► QUEUED/RUNNING/COLLECT
 *    │               │               └── gone: BEGIN again (a new attempt)          ▼
 *    └───────────────┴──────────────────────────────────────────────────► RECORD ◄─ COLLECT
 *                                                                           │
 *   retryable failure ──► BACKOFF ──time──► READY                        DONE (reaped; sweep
 *                                                                              ComfyUI's copies)
 *   deadline, stall, revoke, stop ──► CANCEL ── ComfyUI confirms ──► BACKOFF / RECORD / DONE
 *
 *   a cancel request (JEV_CANCEL_REQ): READY, BACKOFF ──► RECORD (cancelled, no render);
 *   PROBE, SUBMIT, QUEUED, RUNNING ──► CANCEL ──► RECORD (cancelled); NEW and BEGIN decide
 *   once their answer is in; COLLECT and later: too late, nothing changes.
 *
 * The job is freed only by the loop's reaper, at the end of a turn, when it is DONE and no
 * operation of its own is in flight.
 */
#ifndef GQ_JOB_H
#define GQ_JOB_H

#include "admit.h"
#include "comfy/comfy.h"
#include "progress_pub.h"
#include "genq_schema.h"
#include "recorder.h"
#include "store.h"
#include "util.h"

#include <stdbool.h>

typedef enum job_state {
    JOB_NEW,     /**< taken from Kafka, not looked at yet (it waits in the backlog) */
    JOB_READY,   /**< decoded and bound; waits for a ComfyUI slot */
    JOB_BEGIN,   /**< its attempt (with the prompt id) is being recorded */
    JOB_PROBE,   /**< an earlier attempt may still be in ComfyUI: asking where its prompt is */
    JOB_SUBMIT,  /**< POST /prompt in flight (or to be retried) */
    JOB_QUEUED,  /**< in ComfyUI's queue */
    JOB_RUNNING, /**< executing in ComfyUI */
    JOB_COLLECT, /**< finished in ComfyUI: its history and outputs are being fetched */
    JOB_BACKOFF, /**< a retryable failure: waits for its next attempt */
    JOB_CANCEL,  /**< asked ComfyUI to drop its prompt; waits until ComfyUI confirms */
    JOB_RECORD,  /**< its terminal record (and outbox messages) is being written */
    JOB_DONE,    /**< over: the reaper frees it at the end of the turn */
    JOB_STATES
} job_state_t;

/** How a job left, for the offsets: done (the offset may pass it) or redelivered. */
typedef enum job_end { JOB_END_NONE, JOB_END_FINISHED, JOB_END_REDELIVER } job_end_t;

/** Where a cancelled job goes once ComfyUI confirms (CANCELLED: a cancel request's record). */
typedef enum job_then {
    JOB_THEN_REDELIVER,
    JOB_THEN_RETRY,
    JOB_THEN_FAIL,
    JOB_THEN_CANCELLED
} job_then_t;

typedef struct job {
    struct job *next, *prev; /**< the loop's list for its state (worker.c) */
    uint64_t visit;          /**< the loop's: the last walk over all lists that saw it */
    uint64_t serial;         /**< tags its operations; arrival order */
    job_state_t state;
    job_end_t end;
    int io; /**< operations of its own in flight (the reaper waits for them) */

    /* the message (payload owned) */
    int lane; /**< which priority lane's topic it came from (lanes.h) */
    int32_t partition;
    int64_t offset;
    void *payload;
    size_t payload_len;
    char key_id[37]; /**< the message key when it is a uuid */
    int64_t received_at;

    /* the request, once admitted */
    char job_id[37];
    bool decoded;
    gq_request_t req;
    json_t *workflow; /**< bound (owned) */
    char *model;      /**< the checkpoint it loads (owned), NULL if none */
    int timeout_s;
    int32_t max_attempts;

    /* the attempt */
    int32_t attempt;
    char prompt_id[37];
    bool adopted;
    int64_t started_at, rendered_at; /**< wall ms: render start and end, 0 if unknown */
    int64_t submitted_mono;          /**< the deadline runs from here */
    int64_t alive_mono;              /**< the last sign of life from ComfyUI */
    int64_t quiet_check_mono;        /**< the next /history + /queue cross-check */
    int64_t wake_mono;               /**< when it needs a JEV_TICK (INT64_MAX: never) */
    int ask;                         /**< sequence of the latest question to ComfyUI */
    bool asking;                     /**< that question is unanswered */
    int submit_tries;
    double progress;
    int64_t cancel_mono;   /**< CANCEL: when the first cancel went out */
    int cancel_pause_ms;   /**< CANCEL: before the next question whether it worked */
    int cancel_sent;       /**< CANCEL: cancels sent */
    job_then_t then;       /**< CANCEL: where to go once confirmed */
    bool revoked;          /**< its partition was taken away: no offset moves with it */
    bool leaving;          /**< revoked or stopping: leave once the operation in flight returns */
    bool free_first;       /**< POST /free before the next attempt (out of memory) */
    int64_t not_before;    /**< READY/BEGIN/RECORD: not before this (a database retry) */
    int64_t ready_mono;    /**< when it last became READY (the scheduler's aging) */
    int64_t sched_wait_ms; /**< READY until it got its slot, summed over attempts */
    char cache_key[65];    /**< the result cache's key ("": no cache for this job) */
    char traceparent[GQ_TRACEPARENT_LEN + 1]; /**< the request's W3C trace context ("": none) */
    char cache_source[37]; /**< a cache hit: the job whose outputs answer this one */
    /* a cancel request (CancelRequest) */
    bool cancel_req;     /**< one came (NEW, BEGIN: applied once admitted, begun) */
    bool cancel_any_src; /**< it applies whatever the job's source */
    char cancel_src[GQ_CANCEL_SOURCE_MAX + 1]; /**< else only to this source */
    char cancel_msg[512];                      /**< its words, for the record's error */
    bool cancelled;  /**< the record is a cancellation (status cancelled) */
    bool no_attempt; /**< ... made while no attempt of its own ran */
    /* progress, for the progress events (progress_pub.h) */
    gq_jobprog_t prog;
    gq_progpub_mark_t prog_mark; /**< the publisher's */
    uint64_t submit_seq;         /**< the loop's: its order in ComfyUI's queue */
    /* the loop's bookkeeping for the scheduler (scheduler.h), not a state */
    int passes;         /**< times a younger job was chosen before it */
    int64_t head_mono;  /**< since when it is the oldest ready job of its lane (0: not) */
    bool sched_counted; /**< counted in its tenant's jobs in ComfyUI */

    /* the end */
    gq_comfy_result_t result; /**< COLLECT: what ComfyUI produced */
    size_t fetching;          /**< COLLECT: outputs still being fetched */
    gq_completed_t done;      /**< the completion event being recorded */
    bool has_done;
    bool reject;          /**< no job id: kept as a rejected message */
    bool record_fallback; /**< its record could not be written: now a bare FAILED one */
    char error_code[32];
    char error_message[512];
    bool error_retryable;
    char prev_error[512]; /**< the previous failed attempt's message, for the policy */
    bool dead_letter;
    size_t dead_cut; /**< the dead letter carries this many bytes (0: all) */
    char dead_reason[32];
    gq_status_t fetch_status;
    char fetch_error[512];
} job_t;

typedef enum job_ev_type {
    JEV_ADMIT,      /**< NEW: take the message (dup: the same job is already in flight) */
    JEV_SLOT,       /**< READY: a ComfyUI slot is free */
    JEV_BEGUN,      /**< the attempt_begin answer (status; begun) */
    JEV_SUBMITTED,  /**< the POST /prompt answer (status) */
    JEV_STATE,      /**< where the prompt is (status, ask, state, result) */
    JEV_HISTORY,    /**< the history answer (status, ask, result) */
    JEV_COMFY,      /**< a WebSocket event for its prompt (comfy) */
    JEV_CANCELLED,  /**< the dequeue and interrupt were answered */
    JEV_OUTPUT,     /**< one output fetched and stored (status, idx, stored) */
    JEV_RECORDED,   /**< the terminal record's answer (status) */
    JEV_TICK,       /**< its wake time came */
    JEV_REVOKE,     /**< its partition was revoked or lost */
    JEV_STOP,       /**< the worker stops: take nothing new */
    JEV_GRACE,      /**< the grace period is over: interrupt what still renders */
    JEV_CANCEL_REQ, /**< a cancel request for the job (cancel) */
} job_ev_type_t;

typedef struct job_ev {
    job_ev_type_t type;
    gq_status_t status;
    const char *errstr;
    int ask;                       /**< STATE, HISTORY: the question answered */
    bool dup;                      /**< ADMIT */
    gq_rec_begun_t *begun;         /**< BEGUN: its outputs may be taken (moved) */
    gq_comfy_state_t state;        /**< STATE */
    gq_comfy_result_t *result;     /**< STATE (FINISHED), HISTORY: may be taken (moved) */
    const gq_comfy_event_t *comfy; /**< COMFY */
    int idx;                       /**< OUTPUT */
    const gq_stored_t *stored;     /**< OUTPUT */
    const gq_cancel_t *cancel;     /**< CANCEL_REQ */
} job_ev_t;

/** What the loop is to do for a job (arguments are read from the job). */
typedef enum job_act {
    JACT_BEGIN, /**< record the attempt's start (force: BEGIN again after a probe) */
    JACT_BEGIN_FORCE,
    JACT_ADOPT,        /**< record that this worker took the attempt over */
    JACT_SUBMIT,       /**< POST /prompt (prompt_id, workflow) */
    JACT_STATE,        /**< where is prompt_id (question `ask`) */
    JACT_HISTORY,      /**< the history of prompt_id (question `ask`) */
    JACT_FETCH,        /**< fetch and store every output of result (one JEV_OUTPUT each) */
    JACT_CANCEL,       /**< POST /queue delete and /interrupt for prompt_id */
    JACT_FREE,         /**< POST /free (unload models, free memory) */
    JACT_FAIL_ATTEMPT, /**< record the failed attempt (no answer needed) */
    JACT_RECORD,       /**< write the terminal record with `done` (or the rejection) */
    JACT_SWEEP,        /**< the record is committed: delete ComfyUI's copies of result's files */
    JACT_RETRY_LATER,  /**< nothing to do now: the job's wake time says when */
} job_act_t;

#define JOB_ACTS_MAX 6
typedef struct job_acts {
    job_act_t a[JOB_ACTS_MAX];
    int n;
} job_acts_t;

/** What job_step needs to know beyond the job and the event. */
typedef struct job_env {
    int64_t now_mono, now_wall;
    const gq_admit_cfg_t *admit;
    const char *worker_id;
    int stall_timeout_ms;
    int quiet_ms; /**< no event for this long: cross-check with /history and /queue */
    int check_ms; /**< between two cross-checks */
    bool ws_up;   /**< the WebSocket is connected (silence is then just silence) */
    bool stopping;
    int64_t max_output_bytes;
    const char *cache_salt; /**< NULL: the result cache is off */
} job_env_t;

/** A new job for a message (payload copied); NULL when out of memory. */
job_t *job_new(uint64_t serial, int lane, int32_t partition, int64_t offset, const void *payload,
               size_t len, const void *key, size_t key_len, int64_t now_wall);
void job_free(job_t *j);
/** Keeps the request's traceparent header (value, len) when it is a valid one. */
void job_set_traceparent(job_t *j, const void *value, size_t len);

/** Advances j by ev. */
void job_step(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts);

/** The state its progress events report, false when there is nothing to report (not in
 * ComfyUI's queue, not rendering, not collecting). */
bool job_progress_state(const job_t *j, gq_progress_state_t *st);

/** True while the job holds a place in ComfyUI (or is about to). */
bool job_in_comfy(const job_t *j);
const char *job_state_name(job_state_t s);

#endif
