/* The ComfyUI side of the worker: bind, submit (keeping queue_depth prompts ahead), follow
 * events, catch silent sockets, stalls and deadlines, and classify failures. */
#include "log.h"
#include "template.h"
#include "util.h"
#include "worker_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_QUIET_MS 3000 /* no event for this long: ask /history and /queue */
#define RENDER_CHECK_EVERY_MS 2000
#define RENDER_BACKOFF_MAX_MS 60000

/* The checkpoint a bound workflow loads (borrowed from wf), or NULL. */
static const char *render_model_of(json_t *wf) {
    const char *id;
    json_t *node;
    json_object_foreach(wf, id, node) {
        json_t *name = json_object_get(json_object_get(node, "inputs"), "ckpt_name");
        if (json_is_string(name))
            return json_string_value(name);
    }
    return NULL;
}

/* The checkpoint a bound workflow loads, so records name the model actually used. */
static char *render_find_model(json_t *wf) {
    const char *m = render_model_of(wf);
    return m ? strdup(m) : NULL;
}

void render_prepare(gq_worker_t *w, job_t *j) {
    char err[1024];
    json_t *tmpl = NULL;
    gq_status_t st;
    if (j->req.workflow_json)
        st = gq_workflow_parse(j->req.workflow_json, strlen(j->req.workflow_json), &tmpl, err,
                               sizeof(err));
    else
        st = gq_template_load(w->workflows_dir, j->req.workflow, &tmpl, err, sizeof(err));
    if (st != GQ_OK) {
        render_fail(w, j, st == GQ_ERR_NOTFOUND ? "unknown_template" : "invalid_workflow", false,
                    "%s", err);
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "genq/%s", j->job_id);
    gq_template_info_t info = {0};
    json_decref(j->workflow);
    j->workflow = NULL;
    st = gq_template_bind(tmpl, &j->req, prefix, &j->workflow, &info, err, sizeof(err));
    json_decref(tmpl);
    if (st != GQ_OK) {
        render_fail(w, j, "invalid_workflow", false, "%s", err);
        return;
    }
    if (!j->req.model)
        j->req.model = render_find_model(j->workflow);
    j->timeout_s = j->req.timeout_s > 0 ? j->req.timeout_s
                   : info.timeout_s > 0 ? info.timeout_s
                                        : w->job_timeout_s;
    j->state = JOB_READY;
}

static void render_submit(gq_worker_t *w, job_t *j) {
    char err[1024];
    int64_t now = gq_mono_ms();
    if (j->prompt_id[0]) {
        /* A previous POST may have reached ComfyUI although we saw an error: look first. */
        gq_comfy_state_t cs;
        if (gq_comfy_prompt_state(w->comfy, j->prompt_id, &cs, NULL, err, sizeof(err)) != GQ_OK) {
            w->comfy_ok_after_mono = now + 2000;
            return;
        }
        if (cs != GQ_COMFY_UNKNOWN) {
            j->state = cs == GQ_COMFY_PENDING ? JOB_QUEUED : JOB_RUNNING;
            j->submitted_mono = j->last_event_mono = j->started_mono = now;
            return;
        }
    } else {
        gq_uuid_v4(j->prompt_id);
    }
    /* The prompt id is durable before ComfyUI hears of it, so whoever gets this message
     * after a crash can find the render and adopt it. */
    gq_msg_ref_t ref = {w->group, w->topic, j->partition, j->offset, -1};
    bool terminal = false;
    j->started_at = 0;
    gq_status_t st =
        gq_recorder_attempt_begin(w->rec, &j->req, &ref, j->attempt, w->worker_id, j->prompt_id,
                                  gq_now_ms(), &terminal, err, sizeof(err));
    if (st != GQ_OK) {
        gq_warn("job %s: recording attempt %d: %s (will retry)", j->job_id, (int)j->attempt, err);
        w->pg_retry_mono = now + 1000;
        return;
    }
    if (terminal) {
        intake_skip(w, j, "finished elsewhere");
        return;
    }
    if (j->free_before_retry) {
        if (gq_comfy_free(w->comfy, true, true, err, sizeof(err)) != GQ_OK)
            gq_warn("POST /free before retrying job %s: %s", j->job_id, err);
        j->free_before_retry = false;
    }
    st = gq_comfy_submit(w->comfy, j->prompt_id, j->workflow, err, sizeof(err));
    if (st == GQ_OK) {
        gq_metrics_model_used(w->metrics, j->req.model);
        j->state = JOB_QUEUED;
        j->submitted_mono = j->last_event_mono = now;
        j->last_check_mono = now;
        gq_debug("job %s: submitted as prompt %s (attempt %d)", j->job_id, j->prompt_id,
                 (int)j->attempt);
    } else if (st == GQ_ERR_INVALID) {
        render_fail(w, j, "comfy_validation", false, "%s", err);
    } else {
        gq_warn("ComfyUI unavailable: %s", err);
        w->comfy_ok_after_mono = now + 2000;
    }
}

/* The READY job to submit next: highest priority, then oldest. */
static job_t *render_next_ready(gq_worker_t *w) {
    job_t *best = NULL;
    int64_t now = gq_mono_ms();
    for (job_t *j = w->jobs; j; j = j->next) {
        if (j->state == JOB_BACKOFF && now >= j->retry_at_mono)
            j->state = JOB_READY;
        if (j->state == JOB_READY && (!best || j->req.priority > best->req.priority))
            best = j;
    }
    return best;
}

void render_pump(gq_worker_t *w) {
    if (w->stopping)
        return;
    for (int guard = 0; guard < 16; guard++) {
        int64_t now = gq_mono_ms();
        if (now < w->comfy_ok_after_mono || now < w->pg_retry_mono)
            return;
        if (worker_jobs_in_comfy(w) >= (size_t)(1 + w->queue_depth))
            return;
        job_t *j = render_next_ready(w);
        if (!j)
            return;
        render_submit(w, j);
        if (j->state == JOB_READY)
            return; /* could not submit now; try again later */
    }
}

static void render_classify(const char *type, const char *msg, const char **code, bool *retryable,
                            bool *free_first) {
    *free_first = false;
    *retryable = true;
    if (strstr(type, "OutOfMemory") || strstr(msg, "out of memory")) {
        *code = "out_of_memory";
        *free_first = true;
    } else if (strstr(type, "FileNotFoundError") && strstr(msg, "Model in folder")) {
        *code = "missing_model";
        *retryable = false;
    } else {
        *code = "execution_error";
    }
}

void render_fail_exec(gq_worker_t *w, job_t *j, const char *type, const char *msg) {
    const char *code;
    bool retryable, free_first;
    render_classify(type, msg, &code, &retryable, &free_first);
    j->free_before_retry = free_first;
    char first[512];
    gq_strlcpy(first, msg, sizeof(first));
    first[strcspn(first, "\n")] = '\0';
    render_fail(w, j, code, retryable, "%s: %s", type[0] ? type : "error", first);
}

static void render_history(gq_worker_t *w, job_t *j) {
    char err[512];
    gq_comfy_result_t res = {0};
    gq_status_t st = gq_comfy_history(w->comfy, j->prompt_id, &res, err, sizeof(err));
    if (st == GQ_OK)
        finish_rendered(w, j, &res);
    else
        j->last_check_mono = 0; /* the cross-check will look again */
    gq_comfy_result_release(&res);
}

void render_on_event(gq_worker_t *w, const gq_comfy_event_t *ev) {
    if (!ev->prompt_id[0])
        return;
    job_t *j = NULL;
    for (job_t *o = w->jobs; o && !j; o = o->next)
        if ((o->state == JOB_QUEUED || o->state == JOB_RUNNING) &&
            strcmp(o->prompt_id, ev->prompt_id) == 0)
            j = o;
    if (!j)
        return;
    int64_t now = gq_mono_ms();
    j->last_event_mono = now;
    if (j->state == JOB_QUEUED &&
        (ev->type == GQ_COMFY_EV_START || ev->type == GQ_COMFY_EV_EXECUTING ||
         ev->type == GQ_COMFY_EV_PROGRESS)) {
        j->state = JOB_RUNNING;
        j->started_at = gq_now_ms();
        j->started_mono = now;
    }
    switch (ev->type) {
    case GQ_COMFY_EV_PROGRESS:
        if (ev->max > 0)
            j->progress = ev->value / ev->max;
        break;
    case GQ_COMFY_EV_ERROR:
        render_fail_exec(w, j, ev->exception_type, ev->exception_message);
        break;
    case GQ_COMFY_EV_INTERRUPTED:
        render_fail(w, j, "interrupted", true, "interrupted in ComfyUI at node %s (%s)", ev->node,
                    ev->node_type);
        break;
    case GQ_COMFY_EV_DONE: render_history(w, j); break;
    default: break;
    }
}

static void render_check_job(gq_worker_t *w, job_t *j, int64_t now) {
    char err[512];
    if (j->state == JOB_RUNNING && now - j->started_mono > (int64_t)j->timeout_s * 1000) {
        gq_comfy_interrupt(w->comfy, j->prompt_id, err, sizeof(err));
        render_fail(w, j, "timeout", true, "render took longer than %d s", j->timeout_s);
        return;
    }
    if (j->state == JOB_RUNNING && now - j->last_event_mono > (int64_t)w->stall_timeout_s * 1000) {
        gq_comfy_interrupt(w->comfy, j->prompt_id, err, sizeof(err));
        render_fail(w, j, "stalled", true, "no progress from ComfyUI for %d s", w->stall_timeout_s);
        return;
    }
    bool quiet = now - j->last_event_mono > RENDER_QUIET_MS || !gq_comfy_ws_connected(w->comfy);
    if (!quiet || now - j->last_check_mono < RENDER_CHECK_EVERY_MS)
        return;
    j->last_check_mono = now;
    gq_comfy_state_t cs;
    gq_comfy_result_t res = {0};
    gq_status_t st = gq_comfy_prompt_state(w->comfy, j->prompt_id, &cs, &res, err, sizeof(err));
    if (st != GQ_OK) {
        if (now - j->last_event_mono > (int64_t)w->stall_timeout_s * 1000)
            render_fail(w, j, "comfy_unavailable", true, "ComfyUI unreachable: %s", err);
    } else if (cs == GQ_COMFY_FINISHED) {
        finish_rendered(w, j, &res);
    } else if (cs == GQ_COMFY_RUNNING && j->state == JOB_QUEUED) {
        j->state = JOB_RUNNING;
        j->started_at = gq_now_ms();
        j->started_mono = j->last_event_mono = now;
    } else if (cs == GQ_COMFY_UNKNOWN) {
        render_fail(w, j, "prompt_lost", true, "ComfyUI no longer knows prompt %s (restarted?)",
                    j->prompt_id);
    }
    gq_comfy_result_release(&res);
}

void render_check(gq_worker_t *w) {
    int64_t now = gq_mono_ms();
    char err[512];
    if (!gq_comfy_ws_connected(w->comfy) && now >= w->comfy_retry_mono) {
        if (gq_comfy_ws_connect(w->comfy, err, sizeof(err)) != GQ_OK) {
            gq_warn("ComfyUI WebSocket: %s", err);
            w->comfy_retry_mono = now + 1000;
        } else {
            gq_info("ComfyUI WebSocket connected");
        }
    }
    for (job_t *j = w->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
            render_check_job(w, j, gq_mono_ms());
    }
}

void render_cancel(gq_worker_t *w, job_t *j) {
    char err[256];
    part_t *p = intake_part(w, j->partition);
    switch (j->state) {
    case JOB_QUEUED:
    case JOB_RUNNING:
        gq_comfy_dequeue(w->comfy, j->prompt_id, err, sizeof(err));
        gq_comfy_interrupt(w->comfy, j->prompt_id, err, sizeof(err));
        /* fall through */
    case JOB_NEW:
    case JOB_READY:
    case JOB_BACKOFF:
        /* Left for redelivery: the offset must not move past it. */
        if (p && p->consumed_next > j->offset)
            p->consumed_next = j->offset;
        gq_info("job %s: left for redelivery", j->job_id[0] ? j->job_id : "?");
        worker_job_remove(w, j);
        worker_job_free(j);
        break;
    default:
        /* The render is done: finish recording it, without moving the offset. */
        j->revoked = true;
        break;
    }
}

void render_fail(gq_worker_t *w, job_t *j, const char *code, bool retryable, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error_message, sizeof(j->error_message), fmt, ap);
    va_end(ap);
    gq_strlcpy(j->error_code, code, sizeof(j->error_code));
    j->error_retryable = retryable;
    char err[512];
    int64_t now = gq_mono_ms();
    if (retryable && w->stopping && (j->state == JOB_QUEUED || j->state == JOB_RUNNING)) {
        j->state = JOB_READY; /* leave it for the next owner */
        render_cancel(w, j);
        return;
    }
    if (retryable && j->attempt < j->max_attempts) {
        gq_warn("job %s attempt %d/%d failed (%s: %s); retrying", j->job_id, (int)j->attempt,
                (int)j->max_attempts, code, j->error_message);
        if (gq_recorder_attempt_fail(w->rec, j->job_id, j->attempt, code, j->error_message,
                                     gq_now_ms(), err, sizeof(err)) != GQ_OK)
            gq_warn("job %s: recording the failed attempt: %s", j->job_id, err);
        w->n_retries++;
        gq_metrics_retry(w->metrics, code);
        int shift = j->attempt - 1 < 6 ? j->attempt - 1 : 6;
        int64_t backoff = 1000LL << shift;
        j->retry_at_mono =
            now + (backoff < RENDER_BACKOFF_MAX_MS ? backoff : RENDER_BACKOFF_MAX_MS);
        j->attempt++;
        j->prompt_id[0] = '\0';
        j->state = JOB_BACKOFF;
        return;
    }
    gq_warn("job %s failed after %d attempt(s): %s: %s", j->job_id, (int)j->attempt, code,
            j->error_message);
    if (retryable) {
        /* Retryable, but out of attempts: an operator should look (and may replay it). */
        j->to_dlq = true;
        gq_strlcpy(j->dlq_reason, "attempts_exhausted", sizeof(j->dlq_reason));
    }
    finish_failed(w, j);
}

/* Renders each warm-up template once (64x64, 1 step) and waits for it, so the first real
 * job does not pay the model load. Failures are logged, never fatal. */
void render_warmup(gq_worker_t *w, volatile sig_atomic_t *stop) {
    const char *list = gq_cfg_str(w->cfg, "warmup");
    if (!list || !*list)
        return;
    char names[512];
    gq_strlcpy(names, list, sizeof(names));
    char err[1024];
    for (char *name = names, *next; name && *name && !*stop; name = next) {
        next = strchr(name, ',');
        if (next)
            *next++ = '\0';
        json_t *tmpl = NULL, *wf = NULL;
        gq_request_t req;
        gq_request_init(&req);
        free(req.prompt);
        req.prompt = strdup("warm-up");
        req.width = req.height = 64;
        req.steps = 1;
        gq_template_info_t info = {0};
        char prompt_id[37];
        gq_uuid_v4(prompt_id);
        int64_t t0 = gq_mono_ms();
        gq_status_t st = gq_template_load(w->workflows_dir, name, &tmpl, err, sizeof(err));
        if (st == GQ_OK)
            st = gq_template_bind(tmpl, &req, "genq-warmup/warmup", &wf, &info, err, sizeof(err));
        if (st == GQ_OK)
            st = gq_comfy_submit(w->comfy, prompt_id, wf, err, sizeof(err));
        gq_comfy_state_t cs = GQ_COMFY_PENDING;
        while (st == GQ_OK && cs != GQ_COMFY_FINISHED && !*stop) {
            if (gq_mono_ms() - t0 > (int64_t)w->job_timeout_s * 1000) {
                gq_errf(err, sizeof(err), "no result after %d s", w->job_timeout_s);
                st = GQ_ERR_TIMEOUT;
                break;
            }
            gq_sleep_ms(200);
            /* A cold model load can outlast the liveness window; waiting on it is progress. */
            gq_metrics_heartbeat(w->metrics);
            if (gq_comfy_prompt_state(w->comfy, prompt_id, &cs, NULL, err, sizeof(err)) != GQ_OK)
                cs = GQ_COMFY_PENDING; /* ComfyUI still starting: keep waiting */
        }
        if (st == GQ_OK && cs == GQ_COMFY_FINISHED) {
            gq_info("warm-up %s done in %lld ms", name, (long long)(gq_mono_ms() - t0));
            gq_metrics_model_used(w->metrics, render_model_of(wf));
        } else {
            gq_warn("warm-up %s: %s", name, err);
        }
        json_decref(tmpl);
        json_decref(wf);
        gq_request_release(&req);
    }
}
