/*
 * A job's life (see job.h). Read job_step() first: one switch on the state, each case
 * taking the events that state expects. The helpers below it decide the common moves: a
 * failure (retry, give up, or leave the job to the next owner), a cancellation, the end.
 */
#include "codes.h"
#include "job.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_RETRY_MS 1000 /* a database or ComfyUI call failed: ask again after this */
/* ComfyUI checks its interrupt flag between sampler steps and before each node, so a cancel
 * takes effect only when the node running now ends: a VAE decode or a cold checkpoint load
 * can take tens of seconds. The question whether it worked comes after a pause that grows
 * from the first to the last value here, for at most the stall timeout (a ComfyUI that keeps
 * the prompt that long is stuck; the job goes on without it). */
#define JOB_CANCEL_CONFIRM_MS 250
#define JOB_CANCEL_CONFIRM_MAX_MS 4000

static const char *const job_state_names[JOB_STATES] = {
    "NEW",     "READY",   "BEGIN",   "PROBE",  "SUBMIT", "QUEUED",
    "RUNNING", "COLLECT", "BACKOFF", "CANCEL", "RECORD", "DONE",
};

const char *job_state_name(job_state_t s) { return s < JOB_STATES ? job_state_names[s] : "?"; }

void job_set_traceparent(job_t *j, const void *value, size_t len) {
    if (value && gq_traceparent_valid(value, len)) {
        memcpy(j->traceparent, value, len);
        j->traceparent[len] = '\0';
    }
}

job_t *job_new(uint64_t serial, int lane, int32_t partition, int64_t offset, const void *payload,
               size_t len, const void *key, size_t key_len, int64_t now_wall) {
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->payload = malloc(len ? len : 1);
    if (!j->payload) {
        free(j);
        return NULL;
    }
    if (len)
        memcpy(j->payload, payload, len);
    j->payload_len = len;
    j->serial = serial;
    j->lane = lane;
    j->partition = partition;
    j->offset = offset;
    j->received_at = now_wall;
    j->wake_mono = INT64_MAX;
    gq_request_init(&j->req);
    j->req.job_id[0] = '\0';
    /* A key that is a uuid names the job even when the value is garbage. */
    if (key && key_len == 36) {
        memcpy(j->key_id, key, 36);
        j->key_id[36] = '\0';
        if (!gq_uuid_valid(j->key_id))
            j->key_id[0] = '\0';
    }
    return j;
}

void job_free(job_t *j) {
    if (!j)
        return;
    gq_request_release(&j->req);
    json_decref(j->workflow);
    free(j->model);
    gq_comfy_result_release(&j->result);
    if (j->has_done)
        gq_completed_release(&j->done);
    free(j->payload);
    free(j);
}

bool job_in_comfy(const job_t *j) {
    switch (j->state) {
    case JOB_BEGIN:
    case JOB_PROBE:
    case JOB_SUBMIT:
    case JOB_QUEUED:
    case JOB_RUNNING:
    case JOB_CANCEL: return true;
    default: return false;
    }
}

bool job_progress_state(const job_t *j, gq_progress_state_t *st) {
    switch (j->state) {
    case JOB_QUEUED: *st = GQ_PROGRESS_QUEUED; return true;
    case JOB_RUNNING:
        /* Until the sampler's first step, ComfyUI loads models and encodes the prompt. */
        *st = j->prog.max_steps > 0 ? GQ_PROGRESS_RUNNING : GQ_PROGRESS_LOADING;
        return true;
    case JOB_COLLECT: *st = GQ_PROGRESS_COLLECTING; return true;
    default: return false;
    }
}

/* Copies at most size - 1 bytes of src, never cutting a UTF-8 character in two. */
static void job_utf8_copy(char *dst, size_t size, const char *src) {
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The job's name in the log: its id once decoded, else its message key. */
static const char *job_name(const job_t *j) {
    return j->job_id[0] ? j->job_id : j->key_id[0] ? j->key_id : "?";
}

static void act(job_acts_t *acts, job_act_t a) {
    if (acts->n < JOB_ACTS_MAX)
        acts->a[acts->n++] = a;
}

static int64_t max0(int64_t v) { return v < 0 ? 0 : v; }

static void job_finish(job_t *j, job_end_t end) {
    j->state = JOB_DONE;
    j->end = end;
    j->wake_mono = INT64_MAX;
}

/* A question to ComfyUI about the job's prompt; only the latest one's answer counts. */
static void job_ask(job_t *j, job_acts_t *acts, job_act_t what) {
    j->ask++;
    j->asking = true;
    act(acts, what);
}

static bool job_answer(job_t *j, const job_ev_t *ev) {
    if (ev->ask != j->ask || !j->asking)
        return false; /* stale: a later question is out, or the state moved on */
    j->asking = false;
    return true;
}

/* ---- the completion ---- */

/* Fills the completion event (status, durations, the request's echo). Durations are built
 * so that queue_ms + render_ms <= total_ms always holds, even across clock skew. */
static void job_done_build(job_t *j, const job_env_t *env, gq_job_status_t status) {
    gq_completed_t *ev = &j->done;
    /* Built anew, outputs included: a FAILED event has none (the contract), and a SUCCEEDED
     * one gets its own from the caller (a render's, or the cache's). */
    if (j->has_done)
        gq_completed_release(ev);
    gq_completed_init(ev);
    j->has_done = true;
    memcpy(ev->job_id, j->job_id, sizeof(ev->job_id));
    ev->attempt = j->attempt > 0 ? j->attempt : 1;
    ev->status = status;
    ev->worker_id = strdup(env->worker_id ? env->worker_id : "");
    ev->finished_at = env->now_wall;
    int64_t submitted =
        j->decoded && j->req.submitted_at > 0 ? j->req.submitted_at : j->received_at;
    int64_t start = j->started_at ? j->started_at : ev->finished_at;
    ev->queue_ms = max0(start - submitted);
    ev->render_ms = j->started_at && j->rendered_at ? max0(j->rendered_at - j->started_at) : 0;
    int64_t end = j->rendered_at ? j->rendered_at : start;
    ev->total_ms = ev->queue_ms + ev->render_ms + max0(ev->finished_at - end);
    if (j->decoded) {
        ev->model = j->model ? strdup(j->model) : j->req.model ? strdup(j->req.model) : NULL;
        ev->source = j->req.source ? strdup(j->req.source) : NULL;
        if (j->req.metadata_cnt) {
            ev->metadata = calloc(j->req.metadata_cnt, sizeof(*ev->metadata));
            for (size_t i = 0; ev->metadata && i < j->req.metadata_cnt; i++) {
                ev->metadata[i].key = strdup(j->req.metadata[i].key);
                ev->metadata[i].value = strdup(j->req.metadata[i].value);
                ev->metadata_cnt++;
            }
        }
    }
    if (status == GQ_JOB_FAILED) {
        ev->has_error = true;
        ev->error_code = strdup(j->error_code);
        ev->error_message = strdup(j->error_message);
        ev->error_retryable = j->error_retryable;
    }
}

/* The end: its terminal record (a FAILED one when status says so). */
static void job_record(job_t *j, const job_env_t *env, job_acts_t *acts, gq_job_status_t status) {
    job_done_build(j, env, status);
    j->state = JOB_RECORD;
    j->not_before = 0;
    j->wake_mono = INT64_MAX;
    act(acts, JACT_RECORD);
}

/* ---- failures ---- */

static void job_set_error(job_t *j, const char *code, bool retryable, const char *fmt, va_list ap)
    GQ_PRINTF(4, 0);

static void job_set_error(job_t *j, const char *code, bool retryable, const char *fmt, va_list ap) {
    vsnprintf(j->error_message, sizeof(j->error_message), fmt, ap);
    gq_strlcpy(j->error_code, code, sizeof(j->error_code));
    j->error_retryable = retryable;
}

/* After a failure whose error is set: retry, give up for good, or leave the job. */
static void job_after_failure(job_t *j, const job_env_t *env, job_acts_t *acts) {
    bool attempted = j->attempt > 0;
    if (j->error_retryable && (j->leaving || env->stopping)) {
        /* Not ours to retry any more: the next owner makes the next attempt. */
        gq_log_job(GQ_LOG_WARN, j->job_id, "attempt %d failed (%s: %s); left for redelivery",
                   (int)j->attempt, j->error_code, j->error_message);
        if (attempted)
            act(acts, JACT_FAIL_ATTEMPT);
        job_finish(j, JOB_END_REDELIVER);
        return;
    }
    if (j->error_retryable && j->attempt < j->max_attempts) {
        gq_log_job(GQ_LOG_WARN, j->job_id, "attempt %d/%d failed (%s: %s); retrying",
                   (int)j->attempt, (int)j->max_attempts, j->error_code, j->error_message);
        if (attempted)
            act(acts, JACT_FAIL_ATTEMPT);
        if (j->free_first)
            act(acts, JACT_FREE);
        gq_strlcpy(j->prev_error, j->error_message, sizeof(j->prev_error));
        j->state = JOB_BACKOFF;
        j->not_before = env->now_mono + gq_policy_backoff_ms(j->attempt);
        j->wake_mono = j->not_before;
        j->prompt_id[0] = '\0';
        j->adopted = false;
        /* started_at and rendered_at stay until the next attempt begins: the failed
         * attempt's record (JACT_FAIL_ATTEMPT, carried out after this step) reads them. */
        gq_comfy_result_release(&j->result);
        return;
    }
    gq_log_job(GQ_LOG_WARN, j->job_id, "failed after %d attempt(s): %s: %s", (int)j->attempt,
               j->error_code, j->error_message);
    if (j->error_retryable) {
        /* Retryable, but out of attempts: an operator should look (and may replay it). */
        j->dead_letter = true;
        gq_strlcpy(j->dead_reason, "attempts_exhausted", sizeof(j->dead_reason));
    }
    job_record(j, env, acts, GQ_JOB_FAILED);
}

static void job_fail(job_t *j, const job_env_t *env, job_acts_t *acts, const char *code,
                     bool retryable, const char *fmt, ...) GQ_PRINTF(6, 7);

static void job_fail(job_t *j, const job_env_t *env, job_acts_t *acts, const char *code,
                     bool retryable, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    job_set_error(j, code, retryable, fmt, ap);
    va_end(ap);
    job_after_failure(j, env, acts);
}

/* An execution_error from ComfyUI, classified by the policy. */
static void job_fail_exec(job_t *j, const job_env_t *env, job_acts_t *acts, const char *type,
                          const char *msg) {
    char first[512], full[sizeof(j->error_message)];
    gq_strlcpy(first, msg ? msg : "", sizeof(first));
    first[strcspn(first, "\n")] = '\0';
    snprintf(full, sizeof(full), "%.120s: %.380s", type && type[0] ? type : "error", first);
    gq_policy_class_t c = gq_policy_classify(type, first, strcmp(full, j->prev_error) == 0);
    j->free_first = c.free_first;
    job_fail(j, env, acts, c.code, c.retryable, "%s", full);
}

/* Asks ComfyUI to drop the prompt; once it confirms, the job goes where `then` says (with
 * the error set by the caller for RETRY and FAIL). */
static void job_cancel(job_t *j, const job_env_t *env, job_acts_t *acts, job_then_t then) {
    j->state = JOB_CANCEL;
    j->then = then;
    j->cancel_mono = env->now_mono;
    j->cancel_pause_ms = JOB_CANCEL_CONFIRM_MS;
    j->cancel_sent = 1;
    j->asking = false;
    /* Should the cancel's answer never come, a tick asks anyway. */
    j->wake_mono = env->now_mono + JOB_CANCEL_CONFIRM_MAX_MS;
    act(acts, JACT_CANCEL);
}

static void job_cancel_fail(job_t *j, const job_env_t *env, job_acts_t *acts, const char *code,
                            const char *fmt, ...) GQ_PRINTF(5, 6);

static void job_cancel_fail(job_t *j, const job_env_t *env, job_acts_t *acts, const char *code,
                            const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    job_set_error(j, code, true, fmt, ap);
    va_end(ap);
    job_cancel(j, env, acts, JOB_THEN_RETRY);
}

static void job_cancel_record(job_t *j, const job_env_t *env, job_acts_t *acts, bool attempt_ran);

/* ComfyUI confirmed (or cannot be asked any more): on to where the cancel was going. */
static void job_cancelled(job_t *j, const job_env_t *env, job_acts_t *acts) {
    switch (j->then) {
    case JOB_THEN_CANCELLED: job_cancel_record(j, env, acts, j->attempt > 0); break;
    case JOB_THEN_REDELIVER:
        gq_log_job(GQ_LOG_INFO, job_name(j), "left for redelivery");
        job_finish(j, JOB_END_REDELIVER);
        break;
    case JOB_THEN_RETRY: job_after_failure(j, env, acts); break;
    case JOB_THEN_FAIL: job_record(j, env, acts, GQ_JOB_FAILED); break;
    }
}

/* ---- cancel requests ---- */

/* Whether the cancel request applies to the job's source (known once it is decoded). */
static bool job_cancel_applies(const job_t *j) {
    return j->cancel_any_src || strcmp(j->cancel_src, j->req.source ? j->req.source : "") == 0;
}

/* The cancel's words, for the record's error (and the event's error.message). */
static void job_cancel_words(job_t *j, const char *reason, const char *by) {
    char msg[GQ_CANCEL_REASON_MAX + GQ_CANCEL_BY_MAX + 32];
    reason = reason ? reason : "";
    by = by ? by : "";
    if (*by && *reason)
        snprintf(msg, sizeof(msg), "cancelled by %s: %s", by, reason);
    else if (*by)
        snprintf(msg, sizeof(msg), "cancelled by %s", by);
    else if (*reason)
        snprintf(msg, sizeof(msg), "cancelled: %s", reason);
    else
        snprintf(msg, sizeof(msg), "cancelled");
    job_utf8_copy(j->cancel_msg, sizeof(j->cancel_msg), msg);
}

/* The end of a cancelled job: its record, status cancelled, and its event, FAILED with code
 * "cancelled", not retryable. attempt_ran: an attempt of its own was begun (and is over). */
static void job_cancel_record(job_t *j, const job_env_t *env, job_acts_t *acts, bool attempt_ran) {
    j->cancelled = true;
    j->no_attempt = !attempt_ran;
    j->dead_letter = false;
    j->error_retryable = false;
    gq_strlcpy(j->error_code, GQ_CODE_CANCELLED, sizeof(j->error_code));
    gq_strlcpy(j->error_message, j->cancel_msg, sizeof(j->error_message));
    if (j->started_at && !j->rendered_at)
        j->rendered_at = env->now_wall > j->started_at ? env->now_wall : j->started_at;
    gq_log_job(GQ_LOG_INFO, j->job_id, "%s%s", j->cancel_msg,
               attempt_ran ? "" : " (nothing of it in ComfyUI)");
    job_record(j, env, acts, GQ_JOB_FAILED);
}

/* A cancel request: recorded at once when nothing is in ComfyUI, after the prompt is taken
 * back when something may be, decided later when an answer is awaited (NEW, BEGIN), and
 * too late once ComfyUI has finished the render. */
static void job_cancel_req(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    const gq_cancel_t *c = ev->cancel;
    if (!c)
        return;
    if (j->state == JOB_COLLECT || j->state == JOB_RECORD || j->state == JOB_DONE) {
        if (j->state != JOB_DONE && !j->cancelled)
            gq_log_job(GQ_LOG_INFO, job_name(j),
                       "cancelled after ComfyUI finished it; it ends as rendered");
        return;
    }
    j->cancel_any_src = c->source == NULL;
    job_utf8_copy(j->cancel_src, sizeof(j->cancel_src), c->source ? c->source : "");
    if (j->decoded && !job_cancel_applies(j)) {
        gq_log_job(GQ_LOG_INFO, j->job_id,
                   "a cancel for source \"%s\" does not apply (its source is \"%s\")",
                   j->cancel_src, j->req.source ? j->req.source : "");
        return;
    }
    j->cancel_req = true;
    job_cancel_words(j, c->reason, c->requested_by);
    switch (j->state) {
    case JOB_READY:
    case JOB_BACKOFF: job_cancel_record(j, env, acts, false); break;
    case JOB_PROBE:
    case JOB_SUBMIT:
    case JOB_QUEUED:
    case JOB_RUNNING:
        /* Leaving: the next owner sees the cancel (every worker reads them). */
        if (!j->leaving)
            job_cancel(j, env, acts, JOB_THEN_CANCELLED);
        break;
    case JOB_CANCEL:
        if (j->then != JOB_THEN_REDELIVER)
            j->then = JOB_THEN_CANCELLED;
        break;
    default: break; /* NEW, BEGIN: once admitted, begun */
    }
}

/* The answer to attempt_begin for a cancelled job (by the cancel request that came while it
 * was asked, or by genq.cancels, outcome CANCELLED). */
static void job_begun_cancelled(job_t *j, const gq_rec_begun_t *b, const job_env_t *env,
                                job_acts_t *acts) {
    if (j->leaving) {
        job_finish(j, JOB_END_REDELIVER);
        return;
    }
    if (!j->cancel_req) {
        j->cancel_req = true;
        job_cancel_words(j, b->cancel_reason, b->cancel_by);
    }
    switch (b->outcome) {
    case GQ_REC_BEGUN:
        /* Recorded, never submitted: the attempt ends here. */
        j->attempt = b->attempt;
        job_cancel_record(j, env, acts, true);
        return;
    case GQ_REC_PROBE:
    case GQ_REC_CANCELLED:
        j->attempt = b->attempt;
        if (gq_uuid_valid(b->prev_prompt_id)) {
            /* An earlier attempt is marked running: its prompt may still be in ComfyUI. */
            memcpy(j->prompt_id, b->prev_prompt_id, sizeof(j->prompt_id));
            j->started_at = 0;
            job_cancel(j, env, acts, JOB_THEN_CANCELLED);
            return;
        }
        job_cancel_record(j, env, acts, false);
        return;
    case GQ_REC_EXHAUSTED:
        j->attempt = b->attempt;
        job_cancel_record(j, env, acts, false);
        return;
    default: /* CACHED: nothing was begun */ job_cancel_record(j, env, acts, false); return;
    }
}

/* ---- ComfyUI's side ---- */

/* The deadline runs from submission, so time queued inside ComfyUI counts. */
static void job_in_comfy_arm(job_t *j, const job_env_t *env) {
    int64_t deadline = j->submitted_mono + (int64_t)j->timeout_s * 1000;
    int64_t wake = deadline;
    if (j->state == JOB_RUNNING && j->alive_mono + env->stall_timeout_ms < wake)
        wake = j->alive_mono + env->stall_timeout_ms;
    if (!j->asking && j->quiet_check_mono < wake)
        wake = j->quiet_check_mono;
    j->wake_mono = wake;
}

static void job_started(job_t *j, const job_env_t *env, int64_t at_wall) {
    j->state = JOB_RUNNING;
    if (!j->started_at)
        j->started_at = at_wall > 0 ? at_wall : env->now_wall;
}

/* In ComfyUI's queue from now (submitted, found after a failed submit, or adopted). */
static void job_queued(job_t *j, const job_env_t *env, gq_comfy_state_t where) {
    j->state = JOB_QUEUED;
    j->alive_mono = env->now_mono;
    j->quiet_check_mono = env->now_mono + env->quiet_ms;
    if (where == GQ_COMFY_RUNNING)
        job_started(j, env, 0);
    job_in_comfy_arm(j, env);
}

/* ComfyUI finished the prompt: its result (taken from the event) decides. */
static void job_rendered(job_t *j, const job_env_t *env, job_acts_t *acts, gq_comfy_result_t *res) {
    gq_comfy_result_release(&j->result);
    j->result = *res;
    memset(res, 0, sizeof(*res));
    j->state = JOB_COLLECT;
    j->wake_mono = INT64_MAX;
    if (!j->started_at)
        j->started_at = j->result.start_ms ? j->result.start_ms : env->now_wall;
    j->rendered_at = j->adopted && j->result.end_ms ? j->result.end_ms : env->now_wall;
    if (j->rendered_at < j->started_at)
        j->rendered_at = j->started_at;
    if (j->result.success && j->prog.nodes_done < j->prog.nodes_total)
        j->prog.nodes_done = j->prog.nodes_total;
    if (!j->result.success) {
        if (j->result.interrupted)
            job_fail(j, env, acts, "interrupted", true, "the prompt was interrupted in ComfyUI");
        else
            job_fail_exec(j, env, acts, j->result.error_type, j->result.error_message);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < j->result.images_cnt; i++)
        if (strcmp(j->result.images[i].type, "output") == 0)
            n++;
    if (n == 0) {
        job_fail(j, env, acts, "no_outputs", false,
                 "the workflow produced no output file (no SaveImage or other saving node)");
        return;
    }
    job_done_build(j, env, GQ_JOB_SUCCEEDED);
    j->done.outputs = calloc(n, sizeof(*j->done.outputs));
    if (!j->done.outputs) {
        job_fail(j, env, acts, "output_error", true, "out of memory for %zu outputs", n);
        return;
    }
    j->done.outputs_cnt = n;
    j->fetching = n;
    j->fetch_status = GQ_OK;
    j->fetch_error[0] = '\0';
    act(acts, JACT_FETCH);
}

/* A render that ended in an error or an interrupt took time too: its attempt's durations. */
static void job_render_ended(job_t *j, const job_env_t *env) {
    if (j->started_at && !j->rendered_at)
        j->rendered_at = env->now_wall > j->started_at ? env->now_wall : j->started_at;
}

/* A node's name for people: its title, else its class, else its id. */
static void job_node_name(const job_t *j, const char *id, char *out, size_t out_size) {
    const json_t *node = j->workflow ? json_object_get(j->workflow, id) : NULL;
    const char *title = json_string_value(json_object_get(json_object_get(node, "_meta"), "title"));
    const char *cls = json_string_value(json_object_get(node, "class_type"));
    job_utf8_copy(out, out_size, title && *title ? title : cls && *cls ? cls : id);
}

static int32_t job_clamp(double v) { return v <= 0 ? 0 : v >= INT32_MAX ? INT32_MAX : (int32_t)v; }

/* What ComfyUI's events say of the attempt's progress. */
static void job_prog_event(job_t *j, const gq_comfy_event_t *ce) {
    gq_jobprog_t *p = &j->prog;
    switch (ce->type) {
    case GQ_COMFY_EV_EXECUTING:
        if (ce->node[0] && strcmp(ce->node, p->exec_id) != 0) {
            /* The node before it is done (ComfyUI runs one node at a time). */
            if (p->executing > 0 && p->nodes_done < INT32_MAX)
                p->nodes_done++;
            p->executing++;
            gq_strlcpy(p->exec_id, ce->node, sizeof(p->exec_id));
            job_node_name(j, ce->node, p->node, sizeof(p->node));
        }
        break;
    case GQ_COMFY_EV_CACHED: p->nodes_done = job_clamp((double)p->nodes_done + ce->nodes); break;
    case GQ_COMFY_EV_PROGRESS:
        p->step = job_clamp(ce->value);
        p->max_steps = job_clamp(ce->max);
        break;
    case GQ_COMFY_EV_PREVIEW:
        if (p->previews < INT32_MAX)
            p->previews++;
        break;
    case GQ_COMFY_EV_DONE:
    case GQ_COMFY_EV_SUCCESS:
        if (p->nodes_total > p->nodes_done)
            p->nodes_done = p->nodes_total;
        break;
    default: break;
    }
    if (p->nodes_total > 0 && p->nodes_done > p->nodes_total)
        p->nodes_done = p->nodes_total;
}

/* A WebSocket event for the prompt, in QUEUED or RUNNING. */
static void job_comfy_event(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    const gq_comfy_event_t *ce = ev->comfy;
    j->alive_mono = env->now_mono;
    j->quiet_check_mono = env->now_mono + env->quiet_ms;
    if (j->state == JOB_QUEUED &&
        (ce->type == GQ_COMFY_EV_START || ce->type == GQ_COMFY_EV_EXECUTING ||
         ce->type == GQ_COMFY_EV_PROGRESS || ce->type == GQ_COMFY_EV_CACHED))
        job_started(j, env, ce->type == GQ_COMFY_EV_START ? ce->timestamp : 0);
    job_prog_event(j, ce);
    switch (ce->type) {
    case GQ_COMFY_EV_PROGRESS:
        if (ce->max > 0)
            j->progress = ce->value / ce->max;
        break;
    case GQ_COMFY_EV_ERROR:
        job_render_ended(j, env);
        job_fail_exec(j, env, acts, ce->exception_type, ce->exception_message);
        return;
    case GQ_COMFY_EV_INTERRUPTED:
        job_render_ended(j, env);
        job_fail(j, env, acts, "interrupted", true, "interrupted in ComfyUI at node %s (%s)",
                 ce->node, ce->node_type);
        return;
    case GQ_COMFY_EV_DONE:
        /* Finished: its history entry is written now. */
        j->state = JOB_COLLECT;
        j->wake_mono = INT64_MAX;
        if (!j->started_at)
            j->started_at = env->now_wall;
        job_ask(j, acts, JACT_HISTORY);
        return;
    default: break;
    }
    job_in_comfy_arm(j, env);
}

/* A cross-check's answer in QUEUED or RUNNING. */
static void job_cross_check(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->status != GQ_OK) {
        if (env->now_mono - j->alive_mono > env->stall_timeout_ms) {
            job_fail(j, env, acts, "comfy_unavailable", true, "ComfyUI unreachable for %d s: %s",
                     env->stall_timeout_ms / 1000, ev->errstr ? ev->errstr : "");
            return;
        }
    } else if (ev->state == GQ_COMFY_FINISHED) {
        job_rendered(j, env, acts, ev->result);
        return;
    } else if (ev->state == GQ_COMFY_UNKNOWN) {
        job_fail(j, env, acts, "prompt_lost", true,
                 "ComfyUI no longer knows prompt %s (restarted?)", j->prompt_id);
        return;
    } else {
        /* Still there. "Running" is progress: a long node can be silent for minutes. */
        j->alive_mono = env->now_mono;
        if (ev->state == GQ_COMFY_RUNNING && j->state == JOB_QUEUED)
            job_started(j, env, 0);
    }
    j->quiet_check_mono = env->now_mono + env->check_ms;
    job_in_comfy_arm(j, env);
}

static void job_in_comfy_tick(job_t *j, const job_env_t *env, job_acts_t *acts) {
    int64_t now = env->now_mono;
    if (now - j->submitted_mono >= (int64_t)j->timeout_s * 1000) {
        job_cancel_fail(j, env, acts, "timeout", "not finished within %d s of its submission (%s)",
                        j->timeout_s, j->state == JOB_QUEUED ? "still queued" : "running");
        return;
    }
    if (j->state == JOB_RUNNING && now - j->alive_mono >= env->stall_timeout_ms) {
        job_cancel_fail(j, env, acts, "stalled", "no sign of life from ComfyUI for %d s",
                        env->stall_timeout_ms / 1000);
        return;
    }
    bool quiet = !env->ws_up || now - j->alive_mono >= env->quiet_ms;
    if (quiet && !j->asking && now >= j->quiet_check_mono) {
        j->quiet_check_mono = now + env->check_ms;
        job_ask(j, acts, JACT_STATE);
    }
    job_in_comfy_arm(j, env);
}

/* ---- the states ---- */

/* The result cache's key: the bound workflow (sorted, compact) with the job's own id, which
 * genq wrote into the output prefix, made neutral, and the operator's salt. "" when the
 * cache is off for the worker or, through its metadata (genq-cache: off), for the request. */
static void job_cache_key(job_t *j, const job_env_t *env) {
    j->cache_key[0] = '\0';
    if (!env->cache_salt || !j->workflow)
        return;
    for (size_t i = 0; i < j->req.metadata_cnt; i++)
        if (strcmp(j->req.metadata[i].key, "genq-cache") == 0 &&
            strcmp(j->req.metadata[i].value, "off") == 0)
            return;
    char *text = json_dumps(j->workflow, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return;
    size_t idlen = strlen(j->job_id);
    for (char *p = idlen ? strstr(text, j->job_id) : NULL; p; p = strstr(p + idlen, j->job_id))
        memset(p, '-', idlen);
    size_t salt = strlen(env->cache_salt), len = strlen(text);
    char *buf = malloc(salt + 1 + len);
    if (buf) {
        memcpy(buf, env->cache_salt, salt);
        buf[salt] = '\n';
        memcpy(buf + salt + 1, text, len);
        gq_sha256_hex(buf, salt + 1 + len, j->cache_key);
    }
    free(buf);
    free(text);
}

static void job_admit(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->dup) {
        /* The same job is already in flight (a duplicate publish): the first one decides. */
        gq_log_job(GQ_LOG_INFO, j->key_id, "duplicate message @%lld while in flight; skipped",
                   (long long)j->offset);
        job_finish(j, JOB_END_FINISHED);
        return;
    }
    gq_admit_t a;
    gq_admit_message(j->payload, j->payload_len, j->key_id[0] ? j->key_id : NULL, env->admit, &a);
    if (a.verdict == GQ_ADMIT_LATER) {
        /* Stays NEW (its offset stays in flight); admission tries again after a while. */
        if (!j->not_before)
            gq_warn("message [%d] @%lld cannot be read yet: %s (will retry)", (int)j->partition,
                    (long long)j->offset, a.message);
        j->not_before = env->now_mono + JOB_RETRY_MS * 2;
        j->wake_mono = j->not_before;
        gq_admit_release(&a);
        return;
    }
    memcpy(j->job_id, a.job_id, sizeof(j->job_id));
    j->decoded = a.decoded;
    gq_request_release(&j->req);
    j->req = a.req;
    gq_request_init(&a.req);
    j->max_attempts = a.max_attempts > 0 ? a.max_attempts : 1;
    if (a.verdict == GQ_ADMIT_OK) {
        j->workflow = a.workflow;
        j->model = a.model;
        a.workflow = NULL;
        a.model = NULL;
        j->timeout_s = a.timeout_s;
        job_cache_key(j, env);
        size_t nodes = json_object_size(j->workflow);
        j->prog.nodes_total = nodes > INT32_MAX ? INT32_MAX : (int32_t)nodes;
        j->state = JOB_READY;
        j->ready_mono = env->now_mono;
        j->wake_mono = INT64_MAX;
        if (j->cancel_req && job_cancel_applies(j)) {
            job_cancel_record(j, env, acts, false);
        } else if (j->cancel_req) {
            gq_log_job(GQ_LOG_INFO, j->job_id,
                       "a cancel for source \"%s\" does not apply (its source is \"%s\")",
                       j->cancel_src, j->req.source ? j->req.source : "");
            j->cancel_req = false;
        }
    } else {
        gq_strlcpy(j->error_code, a.code, sizeof(j->error_code));
        gq_strlcpy(j->error_message, a.message, sizeof(j->error_message));
        j->error_retryable = false;
        j->dead_letter = a.dead_letter;
        j->dead_cut = a.dead_cut;
        gq_strlcpy(j->dead_reason, a.code, sizeof(j->dead_reason));
        if (a.verdict == GQ_ADMIT_REJECT) {
            gq_warn("poison message [%d] @%lld: %s", (int)j->partition, (long long)j->offset,
                    a.message);
            j->reject = true;
            j->state = JOB_RECORD;
            act(acts, JACT_RECORD);
        } else {
            gq_log_job(GQ_LOG_WARN, j->job_id, "failed: %s: %s", a.code, a.message);
            j->attempt = 1;
            job_record(j, env, acts, GQ_JOB_FAILED);
        }
    }
    gq_admit_release(&a);
}

/* Answered from an earlier job's outputs: recorded as SUCCEEDED without a render. */
static void job_cached(job_t *j, gq_rec_begun_t *b, const job_env_t *env, job_acts_t *acts) {
    gq_strlcpy(j->cache_source, b->prev_prompt_id, sizeof(j->cache_source));
    gq_log_job(GQ_LOG_INFO, j->job_id, "the same render as job %s; answered from its %zu output(s)",
               j->cache_source, b->outputs_cnt);
    j->attempt = 1;
    j->started_at = j->rendered_at = 0;
    job_done_build(j, env, GQ_JOB_SUCCEEDED);
    j->done.outputs = b->outputs;
    j->done.outputs_cnt = b->outputs_cnt;
    b->outputs = NULL;
    b->outputs_cnt = 0;
    j->state = JOB_RECORD;
    j->not_before = 0;
    j->wake_mono = INT64_MAX;
    act(acts, JACT_RECORD);
}

static void job_begun(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->status != GQ_OK) {
        gq_log_job(GQ_LOG_WARN, j->job_id, "recording its attempt: %s (will retry)",
                   ev->errstr ? ev->errstr : "");
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        j->state = JOB_READY;
        j->not_before = env->now_mono + JOB_RETRY_MS;
        j->wake_mono = j->not_before;
        return;
    }
    gq_rec_begun_t *b = ev->begun;
    if (b->outcome == GQ_REC_CANCELLED || (j->cancel_req && b->outcome != GQ_REC_TERMINAL)) {
        job_begun_cancelled(j, b, env, acts);
        return;
    }
    switch (b->outcome) {
    case GQ_REC_CANCELLED: return; /* above */
    case GQ_REC_CACHED:
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        job_cached(j, b, env, acts);
        return;
    case GQ_REC_TERMINAL:
        gq_log_job(GQ_LOG_INFO, j->job_id, "already %s; skipped", "recorded");
        job_finish(j, JOB_END_FINISHED);
        return;
    case GQ_REC_BEGUN:
        j->attempt = b->attempt;
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        j->state = JOB_SUBMIT;
        j->submit_tries = 1;
        j->asking = false;
        j->wake_mono = INT64_MAX;
        act(acts, JACT_SUBMIT);
        return;
    case GQ_REC_EXHAUSTED:
        j->attempt = b->attempt;
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        j->dead_letter = true;
        gq_strlcpy(j->dead_reason, "attempts_exhausted", sizeof(j->dead_reason));
        job_fail(j, env, acts, "attempts_exhausted", false, "%d attempt(s) made, the limit is %d",
                 (int)b->attempt, (int)j->max_attempts);
        return;
    case GQ_REC_PROBE:
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        j->attempt = b->attempt;
        if (!gq_uuid_valid(b->prev_prompt_id)) {
            /* Not a prompt id ComfyUI could know: start a new attempt. */
            gq_uuid_v4(j->prompt_id);
            j->state = JOB_BEGIN;
            act(acts, JACT_BEGIN_FORCE);
            return;
        }
        memcpy(j->prompt_id, b->prev_prompt_id, sizeof(j->prompt_id));
        j->started_at = 0;
        /* The earlier attempt's start: an adopted render keeps its original deadline. */
        j->submitted_mono = env->now_mono - max0(env->now_wall - b->prev_started_at);
        j->state = JOB_PROBE;
        job_ask(j, acts, JACT_STATE);
        return;
    }
}

static void job_probed(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->status != GQ_OK) {
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        j->wake_mono = env->now_mono + JOB_RETRY_MS; /* ComfyUI unreachable: ask again */
        return;
    }
    if (ev->state == GQ_COMFY_UNKNOWN) {
        if (j->leaving) {
            job_finish(j, JOB_END_REDELIVER);
            return;
        }
        gq_log_job(GQ_LOG_INFO, j->job_id,
                   "attempt %d (prompt %s) is gone from ComfyUI; rendering again", (int)j->attempt,
                   j->prompt_id);
        gq_uuid_v4(j->prompt_id);
        j->state = JOB_BEGIN;
        act(acts, JACT_BEGIN_FORCE);
        return;
    }
    if (ev->state != GQ_COMFY_FINISHED && j->leaving) {
        /* Alive, but not ours to follow: the next owner adopts it. */
        job_finish(j, JOB_END_REDELIVER);
        return;
    }
    gq_log_job(GQ_LOG_INFO, j->job_id, "reattached to prompt %s (attempt %d, %s)", j->prompt_id,
               (int)j->attempt,
               ev->state == GQ_COMFY_FINISHED  ? "finished"
               : ev->state == GQ_COMFY_RUNNING ? "running"
                                               : "queued");
    j->adopted = true;
    act(acts, JACT_ADOPT);
    /* A deadline already behind it still leaves a short while to be seen finishing. */
    if (env->now_mono - j->submitted_mono > (int64_t)j->timeout_s * 1000 - 10000)
        j->submitted_mono = env->now_mono - (int64_t)j->timeout_s * 1000 + 10000;
    if (ev->state == GQ_COMFY_FINISHED)
        job_rendered(j, env, acts, ev->result);
    else
        job_queued(j, env, ev->state);
}

/* An answer to "where is the prompt?" after a submit that failed: did it arrive after all? */
static void job_resubmit_check(job_t *j, const job_ev_t *ev, const job_env_t *env,
                               job_acts_t *acts) {
    if (ev->status != GQ_OK) {
        j->wake_mono = env->now_mono + JOB_RETRY_MS * 2;
        return;
    }
    if (ev->state == GQ_COMFY_FINISHED) {
        job_rendered(j, env, acts, ev->result);
    } else if (ev->state != GQ_COMFY_UNKNOWN) {
        j->submitted_mono = env->now_mono;
        job_queued(j, env, ev->state);
        if (j->leaving)
            job_cancel(j, env, acts, JOB_THEN_REDELIVER);
    } else if (j->leaving) {
        job_finish(j, JOB_END_REDELIVER);
    } else {
        j->submit_tries++;
        j->wake_mono = INT64_MAX;
        act(acts, JACT_SUBMIT);
    }
}

static void job_submitted(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->status == GQ_OK) {
        j->submitted_mono = env->now_mono;
        job_queued(j, env, GQ_COMFY_PENDING);
        if (j->leaving)
            job_cancel(j, env, acts, JOB_THEN_REDELIVER);
        return;
    }
    if (ev->status == GQ_ERR_INVALID) {
        job_fail(j, env, acts, "comfy_validation", false, "%s", ev->errstr ? ev->errstr : "");
        return;
    }
    /* ComfyUI unreachable, or no answer: the prompt may have arrived anyway. Ask before
     * sending it again (an outage consumes no attempt). */
    if (j->submit_tries == 1 || j->submit_tries % 10 == 0)
        gq_log_job(GQ_LOG_WARN, j->job_id, "ComfyUI unavailable: %s (will retry)",
                   ev->errstr ? ev->errstr : "");
    if (j->leaving) {
        job_cancel(j, env, acts, JOB_THEN_REDELIVER);
        return;
    }
    j->wake_mono = env->now_mono + JOB_RETRY_MS * 2;
}

static void job_history(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->status == GQ_OK) {
        job_rendered(j, env, acts, ev->result);
        return;
    }
    /* Not readable yet (or ComfyUI went away): ask again, for as long as a stall allows. */
    if (env->now_mono - j->alive_mono > env->stall_timeout_ms) {
        job_fail(j, env, acts, "comfy_unavailable", true, "the history of prompt %s: %s",
                 j->prompt_id, ev->errstr ? ev->errstr : "");
        return;
    }
    j->wake_mono = env->now_mono + JOB_RETRY_MS / 2;
}

static void job_output(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (j->fetching == 0)
        return;
    j->fetching--;
    if (ev->status == GQ_OK && ev->stored && ev->idx >= 0 &&
        (size_t)ev->idx < j->done.outputs_cnt) {
        gq_output_t *o = &j->done.outputs[ev->idx];
        const gq_stored_t *s = ev->stored;
        o->uri = strdup(s->uri);
        memcpy(o->sha256, s->sha256, sizeof(o->sha256));
        o->bytes = s->bytes;
        o->width = s->width;
        o->height = s->height;
        o->mime = strdup(s->mime);
        if (!o->uri || !o->mime) {
            j->fetch_status = GQ_ERR_NOMEM;
            gq_strlcpy(j->fetch_error, "out of memory", sizeof(j->fetch_error));
        }
    } else if (j->fetch_status == GQ_OK) {
        j->fetch_status = ev->status != GQ_OK ? ev->status : GQ_ERR;
        gq_strlcpy(j->fetch_error, ev->errstr ? ev->errstr : "?", sizeof(j->fetch_error));
    }
    if (j->fetching > 0)
        return;
    if (j->fetch_status == GQ_OK) {
        j->state = JOB_RECORD;
        j->wake_mono = INT64_MAX;
        act(acts, JACT_RECORD);
    } else if (j->fetch_status == GQ_ERR_TOOBIG) {
        job_fail(j, env, acts, "output_too_large", false, "%s", j->fetch_error);
    } else {
        job_fail(j, env, acts, "output_error", true, "fetching outputs: %s", j->fetch_error);
    }
}

/* An event after which ComfyUI no longer runs the prompt: worth asking at once. */
static bool job_comfy_ends(const gq_comfy_event_t *e) {
    return e && (e->type == GQ_COMFY_EV_INTERRUPTED || e->type == GQ_COMFY_EV_ERROR ||
                 e->type == GQ_COMFY_EV_SUCCESS || e->type == GQ_COMFY_EV_DONE);
}

static void job_confirm(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    bool gone = ev->status == GQ_OK &&
                (ev->state == GQ_COMFY_UNKNOWN ||
                 (ev->state == GQ_COMFY_FINISHED && (!ev->result || !ev->result->success)));
    if (ev->status == GQ_OK && ev->state == GQ_COMFY_FINISHED && ev->result &&
        ev->result->success) {
        /* Too late: it rendered to the end. Counted; the job goes on as decided. */
        gq_log_job(GQ_LOG_WARN, j->job_id, "prompt %s finished before the cancel took effect",
                   j->prompt_id);
        gone = true;
    }
    bool spent = env->now_mono - j->cancel_mono >= env->stall_timeout_ms;
    if (gone || spent) {
        if (!gone)
            gq_log_job(GQ_LOG_ERROR, j->job_id,
                       "ComfyUI still has prompt %s %d s after it was cancelled (%d "
                       "cancels); going on without it",
                       j->prompt_id, (int)((env->now_mono - j->cancel_mono) / 1000),
                       j->cancel_sent);
        job_cancelled(j, env, acts);
        return;
    }
    if (ev->status == GQ_OK) {
        /* Still queued or running: the node now running has not ended yet, or the interrupt
         * landed just before the prompt started and was lost. Sending it again is harmless
         * (ComfyUI interrupts only the prompt named) and covers the second case. */
        j->cancel_sent++;
        act(acts, JACT_CANCEL);
        j->wake_mono = env->now_mono + JOB_CANCEL_CONFIRM_MAX_MS;
    } else {
        j->wake_mono = env->now_mono + JOB_RETRY_MS;
    }
}

/* The partition went away, or the worker stops: what each state does about it. */
static void job_leave(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->type == JEV_REVOKE)
        j->revoked = true;
    switch (j->state) {
    case JOB_NEW:
    case JOB_READY:
    case JOB_BACKOFF: job_finish(j, JOB_END_REDELIVER); break;
    case JOB_BEGIN:
    case JOB_PROBE:
    case JOB_SUBMIT:
        j->leaving = true;
        /* Nothing in flight (waiting to ask again): leave now, taking back what may be there. */
        if (j->state == JOB_SUBMIT && j->wake_mono != INT64_MAX)
            job_cancel(j, env, acts, JOB_THEN_REDELIVER);
        else if (j->state == JOB_PROBE && !j->asking)
            job_finish(j, JOB_END_REDELIVER);
        break;
    case JOB_QUEUED: job_cancel(j, env, acts, JOB_THEN_REDELIVER); break;
    case JOB_RUNNING:
        /* A stop lets a running render finish (the grace period bounds it). */
        if (ev->type != JEV_STOP)
            job_cancel(j, env, acts, JOB_THEN_REDELIVER);
        break;
    case JOB_CANCEL:
        if (j->then == JOB_THEN_RETRY)
            j->then = JOB_THEN_REDELIVER;
        break;
    case JOB_COLLECT:
    case JOB_RECORD:
    case JOB_DONE:
    case JOB_STATES: break; /* finish recording; a revoked one moves no offset */
    }
}

void job_step(job_t *j, const job_ev_t *ev, const job_env_t *env, job_acts_t *acts) {
    if (ev->type == JEV_REVOKE || ev->type == JEV_STOP) {
        job_leave(j, ev, env, acts);
        return;
    }
    if (ev->type == JEV_GRACE) {
        if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
            job_cancel(j, env, acts, JOB_THEN_REDELIVER);
        return;
    }
    if (ev->type == JEV_CANCEL_REQ) {
        job_cancel_req(j, ev, env, acts);
        return;
    }
    switch (j->state) {
    case JOB_NEW:
        if (ev->type == JEV_ADMIT && env->now_mono >= j->not_before)
            job_admit(j, ev, env, acts);
        else if (ev->type == JEV_TICK && env->now_mono < j->not_before)
            j->wake_mono = j->not_before;
        break;
    case JOB_READY:
        if (ev->type == JEV_SLOT) {
            j->started_at = j->rendered_at = 0; /* a new attempt */
            int32_t nodes = j->prog.nodes_total;
            memset(&j->prog, 0, sizeof(j->prog));
            j->prog.nodes_total = nodes;
            gq_uuid_v4(j->prompt_id);
            j->sched_wait_ms += env->now_mono - j->ready_mono;
            j->state = JOB_BEGIN;
            j->wake_mono = INT64_MAX;
            act(acts, JACT_BEGIN);
        } else if (ev->type == JEV_TICK && env->now_mono < j->not_before) {
            j->wake_mono = j->not_before;
        }
        break;
    case JOB_BEGIN:
        if (ev->type == JEV_BEGUN)
            job_begun(j, ev, env, acts);
        break;
    case JOB_PROBE:
        if (ev->type == JEV_STATE && job_answer(j, ev))
            job_probed(j, ev, env, acts);
        else if (ev->type == JEV_TICK && !j->asking)
            job_ask(j, acts, JACT_STATE);
        break;
    case JOB_SUBMIT:
        if (ev->type == JEV_COMFY && !j->leaving) {
            /* ComfyUI runs it already: its events can outrun the answer to the POST. */
            j->submitted_mono = env->now_mono;
            j->asking = false;
            job_queued(j, env, GQ_COMFY_PENDING);
            job_comfy_event(j, ev, env, acts);
        } else if (ev->type == JEV_SUBMITTED)
            job_submitted(j, ev, env, acts);
        else if (ev->type == JEV_STATE && job_answer(j, ev))
            job_resubmit_check(j, ev, env, acts);
        else if (ev->type == JEV_TICK && !j->asking) {
            j->wake_mono = INT64_MAX;
            job_ask(j, acts, JACT_STATE);
        }
        break;
    case JOB_QUEUED:
    case JOB_RUNNING:
        if (ev->type == JEV_COMFY)
            job_comfy_event(j, ev, env, acts);
        else if (ev->type == JEV_STATE && job_answer(j, ev))
            job_cross_check(j, ev, env, acts);
        else if (ev->type == JEV_TICK)
            job_in_comfy_tick(j, env, acts);
        break;
    case JOB_COLLECT:
        if (ev->type == JEV_HISTORY && job_answer(j, ev))
            job_history(j, ev, env, acts);
        else if (ev->type == JEV_OUTPUT)
            job_output(j, ev, env, acts);
        else if (ev->type == JEV_TICK && !j->asking && j->fetching == 0 && !j->has_done) {
            j->wake_mono = INT64_MAX;
            job_ask(j, acts, JACT_HISTORY);
        }
        break;
    case JOB_BACKOFF:
        if (ev->type == JEV_TICK && env->now_mono >= j->not_before) {
            j->state = JOB_READY;
            j->ready_mono = env->now_mono;
            j->wake_mono = INT64_MAX;
        } else if (ev->type == JEV_TICK) {
            j->wake_mono = j->not_before;
        }
        break;
    case JOB_CANCEL:
        if (ev->type == JEV_CANCELLED) {
            /* Answered: ask after a pause that doubles with each round. */
            j->wake_mono = env->now_mono + j->cancel_pause_ms;
            j->cancel_pause_ms = j->cancel_pause_ms * 2 > JOB_CANCEL_CONFIRM_MAX_MS
                                     ? JOB_CANCEL_CONFIRM_MAX_MS
                                     : j->cancel_pause_ms * 2;
        } else if (!j->asking &&
                   (ev->type == JEV_TICK || (ev->type == JEV_COMFY && job_comfy_ends(ev->comfy)))) {
            j->wake_mono = env->now_mono + JOB_RETRY_MS * 2;
            job_ask(j, acts, JACT_STATE);
        } else if (ev->type == JEV_STATE && job_answer(j, ev)) {
            job_confirm(j, ev, env, acts);
        }
        break;
    case JOB_RECORD:
        if (ev->type == JEV_RECORDED) {
            if (ev->status == GQ_OK) {
                /* The record holds genq's own copies now: ComfyUI's (and its previews) go. */
                if (j->result.images_cnt > 0)
                    act(acts, JACT_SWEEP);
                job_finish(j, JOB_END_FINISHED);
            } else if (ev->status == GQ_ERR_INVALID && !j->reject && !j->record_fallback) {
                /* The record or its event cannot be written as it is (an event that does not
                 * encode, a value the database refuses). A job must not end without both, so
                 * it ends FAILED with nothing but the reason, which always can be written. */
                gq_log_job(GQ_LOG_ERROR, j->job_id,
                           "its record cannot be written (%s); recording it as failed",
                           ev->errstr ? ev->errstr : "");
                j->record_fallback = true;
                j->cancelled = false;
                if (j->has_done) {
                    gq_completed_release(&j->done);
                    j->has_done = false;
                }
                j->error_retryable = false;
                gq_strlcpy(j->error_code, "record_error", sizeof(j->error_code));
                snprintf(j->error_message, sizeof(j->error_message),
                         "the job's record could not be written: %.400s",
                         ev->errstr ? ev->errstr : "");
                job_record(j, env, acts, GQ_JOB_FAILED);
            } else {
                gq_log_job(GQ_LOG_WARN, job_name(j), "writing the terminal record: %s (will retry)",
                           ev->errstr ? ev->errstr : "");
                j->wake_mono =
                    env->now_mono + (j->record_fallback ? JOB_RETRY_MS * 10 : JOB_RETRY_MS);
            }
        } else if (ev->type == JEV_TICK) {
            j->wake_mono = INT64_MAX;
            act(acts, JACT_RECORD);
        }
        break;
    case JOB_DONE:
    case JOB_STATES: break;
    }
}
