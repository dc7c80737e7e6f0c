/*
 * The worker loop. One thread, one blocking call per turn (gq_comfy_wait: a poll over the
 * Kafka queue's descriptor, the producer's, PostgreSQL's socket, ComfyUI's HTTP transfers
 * and WebSocket, the signal pipe, and a timeout from the nearest deadline). Each turn:
 *
 *   1. gather what happened: finished database statements, finished ComfyUI requests,
 *      WebSocket events, Kafka messages and partition changes, timers;
 *   2. turn each into an event for its job and step the job (job.c: the only place a
 *      job changes state), then carry out the actions the step asked for;
 *   3. admit messages from the backlog, give free ComfyUI slots to ready jobs;
 *   4. reap: free the jobs that are DONE with nothing in flight, and commit offsets.
 *
 * The jobs held are kept in lists by state, so that a turn looks only at the few it has to:
 * the backlog (NEW, a list per lane), the waiting (READY and BACKOFF) and the active (the
 * rest: in ComfyUI, collecting, recording, done). A turn walks the active ones; the others
 * are walked when a slot or an admission wants one of them, or a timer of theirs is due.
 * With hundreds held, walking all of them at each of a turn's steps cost a cache miss a job
 * and was the loop's hottest spot (docs/performance.md).
 */
#include "worker.h"
#include "admit.h"
#include "cancels.h"
#include "comfy/comfy.h"
#include "endpoint.h"
#include "guard.h"
#include "intake.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "progress_pub.h"
#include "outputs.h"
#include "record.h"
#include "recorder.h"
#include "scheduler.h"
#include "steps.h"
#include "sweep.h"
#include "util.h"
#include "warmup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_MAX_WAIT_MS 1000 /* the longest single wait: Kafka wants a poll now and then */
#define WORKER_HEALTH_MS 5000   /* lag and the other gauges */
/* GPU memory, asked of ComfyUI as often as Prometheus usually scrapes. Each answer costs the
 * server's event loop a few milliseconds (ComfyUI's sends its WebSocket frames; the
 * simulator's also starts the next prompt): at every 5 s they reached the 99th percentile
 * of the gaps between 100 ms renders (bench/results/gpu.txt). */
#define WORKER_GPU_STATS_MS 15000
#define WORKER_READY_MS 250          /* readiness: soon enough for a probe, not every turn */
#define WORKER_STATS_MS 30000        /* the log's progress line */
#define WORKER_FINISH_GRACE_MS 15000 /* after the grace period: time to record finished jobs */
#define WORKER_QUIET_MS 3000         /* no event for this long: cross-check /history and /queue */
#define WORKER_CHECK_MS 2000
#define WORKER_TURN_MAX 256 /* of each kind of input per turn, so no source starves the rest */
/* Between a sampler's steps the WebSocket may go unread for this long (steps.h): progress
 * events want a step every progress interval (500 ms), the stall clock seconds. */
#define WORKER_WS_HOLD_MS 250
#define WORKER_CANCELS_CATCH_UP_MS 30000 /* at start: the cancel topic read to its end */
#define WORKER_CANCELS_RETRY_MS 1000     /* recording cancels failed: again after this */

/* A list of jobs, in serial (arrival) order. */
typedef struct worker_list {
    job_t *head, *tail;
    size_t n;
} worker_list_t;

/* An I/O start that failed at once: its answer, delivered next turn like any other. */
typedef struct worker_failed {
    struct worker_failed *next;
    uint64_t serial;
    job_ev_type_t type;
    gq_status_t status;
    char errstr[256];
} worker_failed_t;

struct gq_worker {
    const gq_cfg_t *cfg;
    char worker_id[128];
    char client_id[37];
    volatile sig_atomic_t *stop;
    int sig[2]; /* the signal handler writes to sig[1] */

    gq_metrics_t *metrics;
    gq_endpoint_t *endpoint;
    gq_recorder_t *rec;
    gq_outputs_t *outputs;
    gq_sweep_t sweep;
    gq_comfy_t *comfy;
    gq_intake_t *intake;
    gq_record_t *record;
    gq_cancels_t *cancels;
    bool cancels_recording; /* a batch of cancels is being recorded */
    int64_t cancels_retry_mono;
    gq_progpub_t *progpub; /* NULL: progress events are off */
    int64_t progress_wake;
    uint64_t submit_seq;
    gq_offsets_t offsets;
    gq_sched_t sched;
    size_t lookahead;

    worker_list_t backlog[GQ_LANES_MAX]; /* NEW: messages not looked at yet, per lane */
    worker_list_t waiting;               /* READY, BACKOFF */
    worker_list_t active;                /* the rest: looked at every turn */
    int64_t idle_wake; /* no job of the backlog or the waiting wants a tick before this */
    uint64_t visit;    /* the last walk over every list (job_t.visit) */
    size_t jobs_cnt;   /* in all lists */
    uint64_t serial;
    worker_failed_t *failed;

    gq_admit_cfg_t admit;
    gq_admit_cache_t templates;
    job_env_t env;
    int queue_depth;
    size_t backlog_max;
    gq_guard_t guard; /* what requests may make ComfyUI do */
    bool has_guard;
    bool stopping, grace_over, fatal;
    int64_t stop_deadline;
    int64_t health_mono, gpu_stats_mono, stats_mono, ws_retry_mono;
    int ws_backoff_ms;
    gq_steps_t steps; /* the pace of the sampler's steps: how long the WebSocket may wait */
    bool health_asking;
    bool ready; /* as last reported */
    int64_t ready_mono;
    char why_not[64];
    /* counters, for the log line */
    uint64_t n_taken, n_recorded, n_skipped, n_redelivered;
};

/* ---- jobs ---- */

static worker_list_t *worker_list_for(gq_worker_t *w, job_state_t state, int lane) {
    if (state == JOB_NEW)
        return &w->backlog[lane >= 0 && lane < GQ_LANES_MAX ? lane : 0];
    if (state == JOB_READY || state == JOB_BACKOFF)
        return &w->waiting;
    return &w->active;
}

static void worker_list_unlink(worker_list_t *l, job_t *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->next = j->prev = NULL;
    l->n--;
}

/* In serial order: at the tail but for a job that comes back (a retry waits again). */
static void worker_list_insert(worker_list_t *l, job_t *j) {
    job_t *after = l->tail;
    while (after && after->serial > j->serial)
        after = after->prev;
    j->prev = after;
    j->next = after ? after->next : l->head;
    if (j->next)
        j->next->prev = j;
    else
        l->tail = j;
    if (after)
        after->next = j;
    else
        l->head = j;
    l->n++;
}

/* Every list, the active first: a step during a walk moves a job only to the active list
 * (a cancel, a revoke, a stop), or where job_t.visit keeps it from being seen twice. */
static size_t worker_lists(gq_worker_t *w, worker_list_t **ls) {
    size_t n = 0;
    ls[n++] = &w->active;
    ls[n++] = &w->waiting;
    for (int l = 0; l < GQ_LANES_MAX; l++)
        ls[n++] = &w->backlog[l];
    return n;
}

#define WORKER_LISTS (2 + GQ_LANES_MAX)

typedef void (*worker_visit_fn)(gq_worker_t *w, job_t *j, const void *arg);

/* Calls fn once for each job held, wherever fn's steps move it. */
static void worker_each(gq_worker_t *w, worker_visit_fn fn, const void *arg) {
    worker_list_t *ls[WORKER_LISTS];
    size_t n = worker_lists(w, ls);
    uint64_t visit = ++w->visit;
    for (size_t i = 0; i < n; i++)
        for (job_t *j = ls[i]->head, *nx; j; j = nx) {
            nx = j->next;
            if (j->visit == visit)
                continue;
            j->visit = visit;
            fn(w, j, arg);
        }
}

/* An answer's job: in flight, so almost always an active one. */
static job_t *worker_job(gq_worker_t *w, uint64_t serial) {
    worker_list_t *ls[WORKER_LISTS];
    size_t n = worker_lists(w, ls);
    for (size_t i = 0; i < n; i++)
        for (job_t *j = ls[i]->head; j; j = j->next)
            if (j->serial == serial)
                return j;
    return NULL;
}

static void worker_env(gq_worker_t *w) {
    w->env.now_mono = gq_mono_ms();
    w->env.now_wall = gq_now_ms();
    w->env.ws_up = gq_comfy_ws_connected(w->comfy);
    w->env.stopping = w->stopping;
}

static void worker_do(gq_worker_t *w, job_t *j, const job_acts_t *acts);

/* Steps one job and carries out what it asked for. */
static void worker_step(gq_worker_t *w, job_t *j, const job_ev_t *ev) {
    job_acts_t acts = {.n = 0};
    worker_list_t *from = worker_list_for(w, j->state, j->lane);
    job_step(j, ev, &w->env, &acts);
    worker_list_t *to = worker_list_for(w, j->state, j->lane);
    if (to != from) {
        worker_list_unlink(from, j);
        worker_list_insert(to, j);
    }
    /* A bound, not the earliest: worker_ticks makes it exact when it comes. */
    if (to != &w->active && j->wake_mono < w->idle_wake)
        w->idle_wake = j->wake_mono;
    if (j->sched_counted && !job_in_comfy(j)) {
        /* Out of ComfyUI: its tenant may take another slot. */
        gq_sched_finished(&w->sched, j->req.source);
        j->sched_counted = false;
    }
    worker_do(w, j, &acts);
}

static void worker_event(gq_worker_t *w, job_t *j, job_ev_type_t type) {
    job_ev_t ev = {.type = type};
    worker_step(w, j, &ev);
}

/* An action could not even start: its failure comes back next turn, as an answer would. */
static void worker_fail_later(gq_worker_t *w, job_t *j, job_ev_type_t type, gq_status_t st,
                              const char *errstr) {
    worker_failed_t *f = calloc(1, sizeof(*f));
    if (!f) {
        gq_log_job(GQ_LOG_ERROR, j->job_id, "out of memory (the job waits for its timers)");
        return;
    }
    j->io++;
    f->serial = j->serial;
    f->type = type;
    f->status = st;
    gq_strlcpy(f->errstr, errstr ? errstr : "", sizeof(f->errstr));
    f->next = w->failed;
    w->failed = f;
}

static gq_msg_ref_t worker_ref(gq_worker_t *w, const job_t *j) {
    gq_msg_ref_t ref = {gq_intake_group(w->intake), gq_intake_lanes(w->intake)->topic[j->lane],
                        j->partition, j->offset, -1};
    /* Not ours any more: the new owner moves the offset. */
    if (!j->revoked && gq_offsets_assigned(&w->offsets, j->lane, j->partition))
        ref.next_offset = gq_offsets_next_if_done(&w->offsets, j->lane, j->partition, j->offset);
    return ref;
}

static void worker_record(gq_worker_t *w, job_t *j) {
    gq_record_job_t r = {
        .job_id = j->job_id,
        .req = j->decoded ? &j->req : NULL,
        .ev = j->reject ? NULL : &j->done,
        .payload = j->payload,
        .payload_len = j->payload_len,
        .ref = worker_ref(w, j),
        .dead_letter = j->dead_letter,
        .dead_cut = j->dead_cut,
        .dead_reason = j->dead_reason,
        .error_code = j->error_code,
        .error_message = j->error_message,
        .attempt = j->attempt,
        .lane =
            gq_intake_lanes(w->intake)->n > 1 ? gq_intake_lanes(w->intake)->topic[j->lane] : NULL,
        .sched_wait_ms = j->sched_wait_ms,
        .cache_key = j->cache_key,
        .cache_source = j->cache_source,
        .traceparent = j->traceparent,
        .cancelled = j->cancelled,
        .no_attempt = j->no_attempt,
    };
    char err[512];
    gq_status_t st = gq_record_send(w->record, &r, j->serial, err, sizeof(err));
    if (st == GQ_OK)
        j->io++;
    else
        worker_fail_later(w, j, JEV_RECORDED, st, err);
}

/* Starts a ComfyUI operation for j, or has its failure delivered next turn. */
static void worker_comfy_op(gq_worker_t *w, job_t *j, gq_comfy_op_t *op, job_ev_type_t type) {
    if (!op) {
        worker_fail_later(w, j, type, GQ_ERR_NOMEM, "out of memory");
        return;
    }
    j->io++;
    op->idx = type == JEV_OUTPUT ? op->idx : j->ask;
}

static void worker_fetch(gq_worker_t *w, job_t *j) {
    int idx = 0;
    for (size_t i = 0; i < j->result.images_cnt; i++) {
        const gq_comfy_image_t *img = &j->result.images[i];
        if (strcmp(img->type, "output") != 0)
            continue; /* previews and temp files are not results */
        gq_comfy_op_t *op =
            gq_comfy_op_view(w->comfy, img, (size_t)w->env.max_output_bytes, j->serial, idx++);
        worker_comfy_op(w, j, op, JEV_OUTPUT);
    }
}

static void worker_do(gq_worker_t *w, job_t *j, const job_acts_t *acts) {
    char err[512];
    for (int i = 0; i < acts->n; i++) {
        switch (acts->a[i]) {
        case JACT_BEGIN:
        case JACT_BEGIN_FORCE: {
            gq_rec_begin_t a = {
                &j->req,      j->model,         j->max_attempts, w->worker_id,
                j->prompt_id, worker_ref(w, j), w->env.now_wall, acts->a[i] == JACT_BEGIN_FORCE,
                j->cache_key};
            gq_status_t st = gq_recorder_begin_send(w->rec, &a, j->serial, err, sizeof(err));
            if (st == GQ_OK)
                j->io++;
            else
                worker_fail_later(w, j, JEV_BEGUN, st, err);
            break;
        }
        case JACT_ADOPT:
            if (gq_recorder_adopt_send(w->rec, j->job_id, j->attempt, w->worker_id, j->serial, err,
                                       sizeof(err)) == GQ_OK)
                j->io++;
            break;
        case JACT_SUBMIT:
            gq_metrics_model_used(w->metrics, j->model);
            worker_comfy_op(w, j,
                            gq_comfy_op_submit(w->comfy, j->prompt_id, j->workflow, j->serial),
                            JEV_SUBMITTED);
            break;
        case JACT_STATE:
            worker_comfy_op(w, j, gq_comfy_op_state(w->comfy, j->prompt_id, j->serial), JEV_STATE);
            break;
        case JACT_HISTORY:
            worker_comfy_op(w, j, gq_comfy_op_history(w->comfy, j->prompt_id, j->serial),
                            JEV_HISTORY);
            break;
        case JACT_FETCH: worker_fetch(w, j); break;
        case JACT_CANCEL:
            worker_comfy_op(w, j, gq_comfy_op_cancel(w->comfy, j->prompt_id, j->serial),
                            JEV_CANCELLED);
            break;
        case JACT_FREE: {
            gq_comfy_op_t *op = gq_comfy_op_free(w->comfy, true, true, j->serial);
            if (op)
                j->io++;
            break;
        }
        case JACT_FAIL_ATTEMPT: {
            int64_t start = j->started_at;
            gq_rec_fail_t a = {
                j->job_id,
                j->attempt,
                j->error_code,
                j->error_message,
                w->env.now_wall,
                start ? start - (j->req.submitted_at ? j->req.submitted_at : j->received_at) : -1,
                start && j->rendered_at ? j->rendered_at - start : -1};
            gq_metrics_retry(w->metrics, j->error_code);
            if (gq_recorder_fail_send(w->rec, &a, j->serial, err, sizeof(err)) == GQ_OK)
                j->io++;
            else
                gq_log_job(GQ_LOG_WARN, j->job_id, "recording the failed attempt: %s", err);
            break;
        }
        case JACT_RECORD: worker_record(w, j); break;
        case JACT_SWEEP: gq_sweep_result(&w->sweep, j->job_id, &j->result); break;
        case JACT_RETRY_LATER: break;
        }
    }
}

/* ---- answers ---- */

static void worker_db_answer(gq_worker_t *w, gq_pgq_done_t *d) {
    if (d->kind == GQ_REC_CANCELS) {
        if (d->status != GQ_OK) {
            gq_warn("recording cancels: %s (will retry)", d->errstr);
            w->cancels_retry_mono = gq_mono_ms() + WORKER_CANCELS_RETRY_MS;
        }
        gq_cancels_recorded(w->cancels, d->status == GQ_OK);
        w->cancels_recording = false;
        return;
    }
    if (d->kind == GQ_REC_OUTBOX_DONE) {
        gq_record_outbox_answer(w->record, d);
        return;
    }
    if (d->kind == GQ_REC_OUTBOX_FAILED) {
        if (d->status != GQ_OK)
            gq_warn("counting failed outbox messages: %s", d->errstr);
        return;
    }
    job_t *j = worker_job(w, d->tag);
    if (!j) {
        gq_err("a database answer for job #%llu, which is gone", (unsigned long long)d->tag);
        return;
    }
    j->io--;
    job_ev_t ev = {.status = d->status, .errstr = d->errstr};
    gq_rec_begun_t begun = {0};
    char err[512];
    switch (d->kind) {
    case GQ_REC_BEGIN:
        ev.type = JEV_BEGUN;
        if (ev.status == GQ_OK) {
            ev.status = gq_recorder_begin_result(d->res, &begun, err, sizeof(err));
            ev.errstr = err;
            if (ev.status == GQ_OK && j->cache_key[0] &&
                (begun.outcome == GQ_REC_CACHED || begun.outcome == GQ_REC_BEGUN))
                gq_metrics_cache(w->metrics, begun.outcome == GQ_REC_CACHED);
        }
        ev.begun = &begun;
        break;
    case GQ_REC_FINISH:
    case GQ_REC_REJECT: {
        bool already = false;
        ev.type = JEV_RECORDED;
        ev.status = gq_record_answer(w->record, d, &already, err, sizeof(err));
        ev.errstr = err;
        if (ev.status == GQ_OK)
            w->n_recorded++;
        break;
    }
    default:
        /* ADOPT, FAIL, OFFSET: nothing waits for these. */
        if (d->status != GQ_OK)
            gq_log_job(GQ_LOG_WARN, j->job_id, "%s", d->errstr);
        return;
    }
    worker_step(w, j, &ev);
    gq_rec_begun_release(&begun);
}

static void worker_comfy_answer(gq_worker_t *w, gq_comfy_op_t *op) {
    if (op->kind == GQ_COMFY_OP_STATS) {
        bool up = op->status == GQ_OK;
        gq_metrics_comfy(w->metrics, up, up ? op->stats.vram_total - op->stats.vram_free : 0,
                         up ? op->stats.vram_total : 0);
        w->health_asking = false;
        return;
    }
    job_t *j = worker_job(w, op->tag);
    if (!j) {
        gq_err("a ComfyUI answer for job #%llu, which is gone", (unsigned long long)op->tag);
        return;
    }
    j->io--;
    job_ev_t ev = {.status = op->status, .errstr = op->errstr, .ask = op->idx};
    switch (op->kind) {
    case GQ_COMFY_OP_SUBMIT: ev.type = JEV_SUBMITTED; break;
    case GQ_COMFY_OP_STATE:
        ev.type = JEV_STATE;
        ev.state = op->state;
        ev.result = &op->result;
        break;
    case GQ_COMFY_OP_HISTORY:
        ev.type = JEV_HISTORY;
        ev.result = &op->result;
        break;
    case GQ_COMFY_OP_CANCEL: ev.type = JEV_CANCELLED; break;
    case GQ_COMFY_OP_VIEW:
        ev.type = JEV_OUTPUT;
        ev.idx = op->idx;
        if (ev.status == GQ_OK) {
            /* To the store (an upload may take a while): JEV_OUTPUT when it is stored. */
            gq_outputs_put(w->outputs, &op->body, j->serial, op->idx);
            j->io++;
            return;
        }
        break;
    default: return; /* FREE: nothing waits for it */
    }
    worker_step(w, j, &ev);
}

/* Stored outputs (or why not), as JEV_OUTPUT for their jobs. */
static void worker_outputs(gq_worker_t *w) {
    gq_outputs_service(w->outputs, w->env.now_mono);
    gq_outputs_done_t d;
    while (gq_outputs_next_done(w->outputs, &d)) {
        job_t *j = worker_job(w, d.tag);
        if (!j)
            continue;
        j->io--;
        job_ev_t ev = {.type = JEV_OUTPUT,
                       .status = d.status,
                       .errstr = d.errstr,
                       .idx = d.idx,
                       .stored = d.status == GQ_OK ? &d.stored : NULL};
        worker_step(w, j, &ev);
    }
}

/* A WebSocket event goes to the job whose prompt it is about. */
static void worker_ws_event(gq_worker_t *w, const gq_comfy_event_t *ce) {
    if (!ce->prompt_id[0]) {
        /* A preview without metadata: of the prompt ComfyUI renders now. */
        if (ce->type != GQ_COMFY_EV_PREVIEW)
            return;
        for (job_t *j = w->active.head; j; j = j->next) {
            if (j->state == JOB_RUNNING) {
                job_ev_t ev = {.type = JEV_COMFY, .comfy = ce};
                worker_step(w, j, &ev);
                return;
            }
        }
        return;
    }
    for (job_t *j = w->active.head; j; j = j->next) {
        if ((j->state == JOB_SUBMIT || j->state == JOB_QUEUED || j->state == JOB_RUNNING ||
             j->state == JOB_CANCEL) &&
            strcmp(j->prompt_id, ce->prompt_id) == 0) {
            job_ev_t ev = {.type = JEV_COMFY, .comfy = ce};
            worker_step(w, j, &ev);
            return;
        }
    }
}

static void worker_ws(gq_worker_t *w) {
    char err[512];
    int64_t now = gq_mono_ms();
    if (!gq_comfy_ws_connected(w->comfy)) {
        if (now < w->ws_retry_mono)
            return;
        if (gq_comfy_ws_connect(w->comfy, err, sizeof(err)) != GQ_OK) {
            if (w->ws_backoff_ms <= 1000)
                gq_warn("ComfyUI WebSocket: %s", err);
            w->ws_retry_mono = now + w->ws_backoff_ms;
            w->ws_backoff_ms = w->ws_backoff_ms * 2 > 30000 ? 30000 : w->ws_backoff_ms * 2;
            return;
        }
        gq_info("ComfyUI WebSocket connected");
        w->ws_backoff_ms = 500;
        worker_env(w);
    }
    for (int n = 0; n < WORKER_TURN_MAX; n++) {
        gq_comfy_event_t ev;
        gq_status_t st = gq_comfy_ws_next(w->comfy, 0, &ev, err, sizeof(err));
        if (st == GQ_OK) {
            gq_steps_event(&w->steps, &ev, now);
            worker_ws_event(w, &ev);
            continue;
        }
        if (st != GQ_ERR_TIMEOUT) {
            gq_warn("ComfyUI WebSocket dropped: %s", err);
            gq_comfy_ws_close(w->comfy);
            gq_steps_reset(&w->steps);
            w->ws_retry_mono = gq_mono_ms() + 200;
            worker_env(w);
            return;
        }
        break;
    }
    gq_comfy_ws_hold(w->comfy, gq_steps_hold(&w->steps, WORKER_WS_HOLD_MS));
}

/* ---- cancels ---- */

static void worker_cancel_visit(gq_worker_t *w, job_t *j, const void *arg) {
    const gq_cancel_t *c = arg;
    const char *id = j->state == JOB_NEW ? j->key_id : j->job_id;
    if (id[0] && strcmp(id, c->job_id) == 0) {
        job_ev_t ev = {.type = JEV_CANCEL_REQ, .cancel = c};
        worker_step(w, j, &ev);
    }
}

/* A cancel request read: to every job of ours it names (a job not admitted yet by its key). */
static void worker_cancel(gq_worker_t *w, const gq_cancel_t *c) {
    gq_metrics_cancel_read(w->metrics);
    gq_debug("cancel request for job %s read", c->job_id);
    worker_each(w, worker_cancel_visit, c);
}

/* New cancel requests, and the recording of those not in PostgreSQL yet (one batch at a time,
 * on the same pipeline as the attempts: an attempt_begin sent after it sees it). */
static void worker_cancels(gq_worker_t *w) {
    gq_cancels_service(w->cancels, w->env.now_mono);
    const gq_cancel_t *c;
    for (int n = 0; n < WORKER_TURN_MAX && (c = gq_cancels_next(w->cancels)); n++)
        worker_cancel(w, c);
    if (w->cancels_recording || w->env.now_mono < w->cancels_retry_mono ||
        !gq_pgq_connected(gq_recorder_pgq(w->rec)))
        return;
    gq_rec_cancel_t batch[GQ_CANCELS_BATCH];
    size_t n = gq_cancels_to_record(w->cancels, batch, GQ_CANCELS_BATCH);
    if (n == 0)
        return;
    char err[512];
    if (gq_recorder_cancels_send(w->rec, batch, n, w->worker_id, 0, err, sizeof(err)) != GQ_OK) {
        gq_warn("recording %zu cancel(s): %s (will retry)", n, err);
        gq_cancels_recorded(w->cancels, false);
        w->cancels_retry_mono = w->env.now_mono + WORKER_CANCELS_RETRY_MS;
        return;
    }
    w->cancels_recording = true;
}

/* ---- progress ---- */

/* Each job in ComfyUI's queue, rendering or collecting: its progress event when one is due. */
static void worker_progress(gq_worker_t *w) {
    w->progress_wake = INT64_MAX;
    if (!w->progpub)
        return;
    for (job_t *j = w->active.head; j; j = j->next) {
        gq_progress_state_t st;
        if (!job_progress_state(j, &st))
            continue;
        int32_t pos = -1;
        if (st == GQ_PROGRESS_QUEUED) {
            /* What ComfyUI runs before it: the prompts of ours submitted before it. */
            pos = 0;
            for (const job_t *k = w->active.head; k; k = k->next)
                if ((k->state == JOB_QUEUED || k->state == JOB_RUNNING) &&
                    k->submit_seq < j->submit_seq)
                    pos++;
        }
        gq_progpub_snap_t s = {j->job_id, j->attempt, st, pos, &j->prog, j->traceparent};
        int64_t at =
            gq_progpub_job(w->progpub, &s, &j->prog_mark, w->env.now_mono, w->env.now_wall);
        if (at < w->progress_wake)
            w->progress_wake = at;
    }
}

/* ---- Kafka ---- */

/* The same job in flight here, to finish it: a revoked one (its partition was taken away,
 * perhaps given back at once) leaves the job to whoever now reads the message, this worker
 * included, so it is no duplicate. */
static bool worker_dup(gq_worker_t *w, const job_t *j) {
    if (!j->key_id[0])
        return false;
    /* A job leaving (its partition revoked, perhaps to come straight back here) decides
     * nothing: the message read again must not be skipped on its account. */
    const worker_list_t *ls[] = {&w->active, &w->waiting};
    for (size_t i = 0; i < GQ_ARRAY_LEN(ls); i++)
        for (const job_t *o = ls[i]->head; o; o = o->next)
            if (o != j && o->state != JOB_DONE && !o->revoked && !o->leaving &&
                strcmp(o->job_id, j->key_id) == 0)
                return true;
    return false;
}

static void worker_message(gq_worker_t *w, int lane, rd_kafka_message_t *m) {
    if (!gq_offsets_assigned(&w->offsets, lane, m->partition)) {
        gq_warn("message from unassigned partition %d ignored", (int)m->partition);
        return;
    }
    if (w->stopping)
        return; /* not taken: it stays uncommitted and is redelivered to the next owner */
    job_t *j = job_new(++w->serial, lane, m->partition, m->offset, m->payload, m->len, m->key,
                       m->key_len, gq_now_ms());
    /* Not taken, not tracked: without the offset in flight a commit could pass it, so a job
     * that cannot be made stops the intake until memory is back (it will be redelivered). */
    if (!j || gq_offsets_take(&w->offsets, lane, m->partition, m->offset) != GQ_OK) {
        gq_err("out of memory taking message [%d] @%lld; pausing", (int)m->partition,
               (long long)m->offset);
        job_free(j);
        gq_intake_pause(w->intake, -1, true);
        return;
    }
    rd_kafka_headers_t *hdrs = NULL;
    const void *tp = NULL;
    size_t tp_len = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "traceparent", &tp, &tp_len) == RD_KAFKA_RESP_ERR_NO_ERROR)
        job_set_traceparent(j, tp, tp_len);
    worker_list_insert(worker_list_for(w, j->state, j->lane), j);
    w->jobs_cnt++;
    w->n_taken++;
}

static void worker_revoke_visit(gq_worker_t *w, job_t *j, const void *arg) {
    const gq_intake_item_t *it = arg;
    if (j->lane == it->lane && j->partition == it->partition)
        worker_event(w, j, JEV_REVOKE);
}

static void worker_partition(gq_worker_t *w, const gq_intake_item_t *it) {
    if (it->kind == GQ_INTAKE_ASSIGN) {
        if (!gq_offsets_assign(&w->offsets, it->lane, it->partition, it->start))
            gq_err("partition %d is beyond what this worker tracks", (int)it->partition);
        return;
    }
    worker_each(w, worker_revoke_visit, it);
    gq_offsets_revoke(&w->offsets, it->lane, it->partition);
}

static void worker_intake(gq_worker_t *w) {
    for (int n = 0; n < WORKER_TURN_MAX; n++) {
        gq_intake_item_t it;
        gq_intake_next(w->intake, &it);
        if (it.kind == GQ_INTAKE_NONE)
            break;
        if (it.kind == GQ_INTAKE_MESSAGE) {
            worker_message(w, it.lane, it.msg);
            rd_kafka_message_destroy(it.msg);
        } else {
            worker_partition(w, &it);
        }
    }
    if (gq_intake_fatal(w->intake))
        w->fatal = true;
}

/* The backlog (messages not looked at yet) is bounded per lane: a lane's intake pauses when
 * its backlog is full and resumes at half, so librdkafka's prefetch is not thrown away for
 * every job, and a full low lane never keeps a high lane's messages out. */
static void worker_flow(gq_worker_t *w) {
    for (int l = 0; l < gq_intake_lanes(w->intake)->n && l < GQ_LANES_MAX; l++) {
        size_t backlog = w->backlog[l].n;
        if (w->stopping || backlog >= w->backlog_max)
            gq_intake_pause(w->intake, l, true);
        else if (gq_intake_paused(w->intake, l) && backlog <= w->backlog_max / 2)
            gq_intake_pause(w->intake, l, false);
    }
}

/* ---- scheduling ---- */

/* Admits messages ahead of need: `lookahead` ready jobs for the scheduler to choose among,
 * taken lane by lane (a high lane's messages are decoded first). */
static void worker_admit(gq_worker_t *w) {
    if (w->stopping)
        return;
    size_t ready = w->waiting.n;
    for (int lane = 0;
         lane < gq_intake_lanes(w->intake)->n && lane < GQ_LANES_MAX && ready < w->lookahead;
         lane++)
        for (job_t *j = w->backlog[lane].head, *nx; j && ready < w->lookahead; j = nx) {
            nx = j->next; /* admitted, it moves to another list */
            job_ev_t ev = {.type = JEV_ADMIT, .dup = worker_dup(w, j)};
            worker_step(w, j, &ev);
            /* A cancel read before the job was (a job not started is never rendered). */
            const gq_cancel_t *c =
                j->state == JOB_READY ? gq_cancels_find(w->cancels, j->job_id) : NULL;
            if (c) {
                job_ev_t cev = {.type = JEV_CANCEL_REQ, .cancel = c};
                worker_step(w, j, &cev);
            }
            if (j->state == JOB_READY)
                ready++;
        }
}

/* Gives free ComfyUI slots to ready jobs, in the order the scheduler (scheduler.c) says. */
static void worker_slots(gq_worker_t *w) {
    if (w->stopping)
        return;
    size_t in_comfy = 0;
    for (const job_t *j = w->active.head; j; j = j->next)
        if (job_in_comfy(j))
            in_comfy++;
    enum { MAXC = 512 };
    gq_sched_cand_t cand[MAXC];
    job_t *cj[MAXC];
    while (in_comfy < (size_t)(1 + w->queue_depth)) {
        size_t n = 0;
        for (job_t *j = w->waiting.head; j && n < MAXC; j = j->next) {
            if (j->state != JOB_READY || w->env.now_mono < j->not_before)
                continue;
            cand[n] = (gq_sched_cand_t){j->lane,      j->req.source ? j->req.source : "",
                                        j->model,     j->serial,
                                        j->head_mono, j->passes};
            cj[n++] = j;
        }
        if (n == 0)
            return;
        /* Each lane's oldest is where FIFO would serve next: its wait beyond that starts. */
        size_t head[GQ_SCHED_MAX_LANES];
        for (int l = 0; l < GQ_SCHED_MAX_LANES; l++)
            head[l] = n;
        for (size_t k = 0; k < n; k++) {
            int l = cand[k].lane >= 0 && cand[k].lane < GQ_SCHED_MAX_LANES ? cand[k].lane : 0;
            if (head[l] == n || cand[k].order < cand[head[l]].order)
                head[l] = k;
        }
        for (int l = 0; l < GQ_SCHED_MAX_LANES; l++)
            if (head[l] < n && cj[head[l]]->head_mono == 0)
                cand[head[l]].head_mono = cj[head[l]]->head_mono = w->env.now_mono;
        gq_sched_why_t why;
        int i = gq_sched_pick(&w->sched, cand, n, w->env.now_mono, &why);
        if (i < 0)
            return; /* every tenant with work is at its quota */
        for (size_t k = 0; k < n; k++)
            if (gq_sched_passed(&cand[i], &cand[k]))
                cj[k]->passes++;
        gq_metrics_sched_pick(w->metrics, (int)why);
        job_t *j = cj[i];
        j->head_mono = 0;
        gq_metrics_sched_wait(w->metrics, gq_intake_lanes(w->intake)->topic[j->lane], j->req.source,
                              (double)(w->env.now_mono - j->ready_mono) / 1000.0);
        gq_sched_submitted(&w->sched, j->req.source, j->model);
        j->sched_counted = true;
        j->submit_seq = ++w->submit_seq;
        worker_event(w, j, JEV_SLOT);
        in_comfy++;
    }
}

static void worker_tick(gq_worker_t *w, job_t *j) {
    if (j->wake_mono > w->env.now_mono)
        return;
    j->wake_mono = INT64_MAX; /* the step re-arms what it still needs */
    worker_event(w, j, JEV_TICK);
}

static void worker_ticks(gq_worker_t *w) {
    for (job_t *j = w->active.head, *nx; j; j = nx) {
        nx = j->next;
        worker_tick(w, j);
    }
    if (w->idle_wake > w->env.now_mono)
        return;
    /* A timer of the backlog or the waiting is due: each due one ticks, and the next is found.
     * A tick moves a job within its list or to the active one, never to a list still ahead. */
    worker_list_t *ls[WORKER_LISTS];
    size_t n = worker_lists(w, ls);
    w->idle_wake = INT64_MAX;
    for (size_t i = 1; i < n; i++) /* ls[0] is the active list */
        for (job_t *j = ls[i]->head, *nx; j; j = nx) {
            nx = j->next;
            worker_tick(w, j);
            if (worker_list_for(w, j->state, j->lane) != &w->active && j->wake_mono < w->idle_wake)
                w->idle_wake = j->wake_mono;
        }
}

static void worker_failed_answers(gq_worker_t *w) {
    worker_failed_t *f = w->failed;
    w->failed = NULL;
    while (f) {
        worker_failed_t *nx = f->next;
        job_t *j = worker_job(w, f->serial);
        if (j) {
            j->io--;
            job_ev_t ev = {.type = f->type,
                           .status = f->status,
                           .errstr = f->errstr,
                           .ask = j->ask,
                           .idx = -1};
            worker_step(w, j, &ev);
        }
        free(f);
        f = nx;
    }
}

/* Frees finished jobs; a finished message lets its partition's offset move. */
static void worker_reap(gq_worker_t *w) {
    for (job_t *j = w->active.head, *nx; j; j = nx) {
        nx = j->next;
        if (j->state != JOB_DONE || j->io > 0)
            continue;
        worker_list_unlink(&w->active, j);
        w->jobs_cnt--;
        if (j->sched_counted)
            gq_sched_finished(&w->sched, j->req.source);
        if (j->end == JOB_END_FINISHED && !j->revoked) {
            int64_t next = gq_offsets_done(&w->offsets, j->lane, j->partition, j->offset);
            if (next >= 0)
                gq_intake_commit(w->intake, j->lane, j->partition, next);
        } else if (j->end == JOB_END_REDELIVER) {
            w->n_redelivered++;
        }
        job_free(j);
    }
}

/* ---- health ---- */

/* Readiness: Kafka, PostgreSQL and ComfyUI reachable, warm-up done (the group joined). Cheap
 * enough for every turn, so /readyz follows the loop's own view at once. */
static void worker_readiness(gq_worker_t *w) {
    bool comfy = gq_comfy_ws_connected(w->comfy);
    bool pg = gq_pgq_connected(gq_recorder_pgq(w->rec));
    bool kafka = gq_intake_connected(w->intake);
    const char *why = !gq_intake_subscribed(w->intake) ? "warming up"
                      : !comfy                         ? "ComfyUI unreachable"
                      : !pg                            ? "PostgreSQL unreachable"
                      : !kafka                         ? "Kafka unreachable"
                      : !gq_outputs_ok(w->outputs)     ? "output store unreachable"
                      : w->stopping                    ? "stopping"
                                                       : NULL;
    if ((why == NULL) != w->ready || (why && strcmp(why, w->why_not) != 0)) {
        gq_metrics_set_ready(w->metrics, why == NULL, why);
        w->ready = why == NULL;
        gq_strlcpy(w->why_not, why ? why : "", sizeof(w->why_not));
    }
}

/* GPU memory and the lag of our partitions, for the endpoint: cached watermarks and one
 * ComfyUI request. */
static void worker_health(gq_worker_t *w) {
    int64_t now = gq_mono_ms();
    if (now >= w->gpu_stats_mono && !w->health_asking && gq_comfy_op_stats(w->comfy, 0)) {
        w->health_asking = true;
        w->gpu_stats_mono = now + WORKER_GPU_STATS_MS;
    }
    gq_metrics_in_flight(w->metrics, (int)w->jobs_cnt);
    gq_metrics_progress(w->metrics, gq_progpub_sent(w->progpub), gq_progpub_dropped(w->progpub));
    gq_metrics_producer_restarts(w->metrics, gq_record_restarts(w->record),
                                 gq_progpub_restarts(w->progpub));
    int64_t waiting;
    uint64_t failures;
    gq_outputs_stats(w->outputs, &waiting, &failures);
    gq_metrics_outputs(w->metrics, waiting, failures);
    gq_metrics_lag_clear(w->metrics);
    const gq_lanes_t *lanes = gq_intake_lanes(w->intake);
    for (int l = 0; l < lanes->n; l++)
        for (int32_t p = 0; p < GQ_OFFSETS_MAX_PARTS; p++) {
            int64_t lo, hi;
            if (!gq_offsets_assigned(&w->offsets, l, p) ||
                !gq_intake_watermarks(w->intake, l, p, &lo, &hi))
                continue;
            const gq_offsets_part_t *op = &w->offsets.parts[l][p];
            int64_t at = op->next_commit >= 0 ? op->next_commit : lo;
            gq_metrics_lag(w->metrics, lanes->topic[l], p, hi > at ? hi - at : 0);
        }
}

/* ---- the loop ---- */

/* The nearest thing to do, as a wait in ms (0 when something is due now). */
static int worker_timeout(gq_worker_t *w) {
    int64_t now = gq_mono_ms(), wake = now + WORKER_MAX_WAIT_MS;
    for (const job_t *j = w->active.head; j; j = j->next)
        if (j->wake_mono < wake)
            wake = j->wake_mono;
    int64_t others[] = {w->health_mono,
                        w->idle_wake,
                        gq_pgq_wake(gq_recorder_pgq(w->rec)),
                        gq_record_wake(w->record),
                        gq_comfy_ws_wake(w->comfy),
                        gq_comfy_ws_connected(w->comfy) ? INT64_MAX : w->ws_retry_mono,
                        w->stopping ? w->stop_deadline : INT64_MAX,
                        w->failed ? now : INT64_MAX,
                        w->progress_wake,
                        gq_cancels_unrecorded(w->cancels) && !w->cancels_recording &&
                                gq_pgq_connected(gq_recorder_pgq(w->rec))
                            ? w->cancels_retry_mono
                            : INT64_MAX,

                        gq_outputs_wake(w->outputs)};
    for (size_t i = 0; i < GQ_ARRAY_LEN(others); i++)
        if (others[i] < wake)
            wake = others[i];
    return wake <= now ? 0 : (int)(wake - now);
}

static void worker_stop_visit(gq_worker_t *w, job_t *j, const void *arg) {
    worker_event(w, j, *(const job_ev_type_t *)arg);
}

static void worker_begin_stop(gq_worker_t *w) {
    size_t rendering = 0;
    for (job_t *j = w->active.head; j; j = j->next)
        if (job_in_comfy(j))
            rendering++;
    gq_info("stopping: finishing %zu running render(s) within %d s", rendering,
            (int)gq_cfg_int(w->cfg, "grace_period"));
    w->stopping = true;
    w->stop_deadline = gq_mono_ms() + gq_cfg_int(w->cfg, "grace_period") * 1000;
    worker_env(w);
    gq_intake_pause(w->intake, -1, true);
    job_ev_type_t stop = JEV_STOP;
    worker_each(w, worker_stop_visit, &stop);
}

static void worker_turn(gq_worker_t *w) {
    gq_pgq_t *q = gq_recorder_pgq(w->rec);
    gq_comfy_waitfd_t fds[6] = {
        {gq_intake_fd(w->intake), POLLIN, 0},
        {gq_record_fd(w->record), POLLIN, 0},
        {w->sig[0], POLLIN, 0},
        {gq_cancels_fd(w->cancels), POLLIN, 0},
    };
    unsigned nfds = 4;
    if (gq_pgq_fd(q) >= 0)
        fds[nfds++] = (gq_comfy_waitfd_t){gq_pgq_fd(q), gq_pgq_events(q), 0};
    if (gq_outputs_fd(w->outputs) >= 0)
        fds[nfds++] = (gq_comfy_waitfd_t){gq_outputs_fd(w->outputs), POLLIN, 0};
    gq_comfy_wait(w->comfy, fds, nfds, worker_timeout(w));
    if (fds[2].revents) {
        char drain[16];
        while (read(w->sig[0], drain, sizeof(drain)) > 0) {
        }
    }
    gq_metrics_heartbeat(w->metrics);
    worker_env(w);

    gq_pgq_service(q);
    gq_pgq_done_t d;
    while (gq_pgq_next_done(q, &d)) {
        worker_db_answer(w, &d);
        PQclear(d.res);
    }
    gq_comfy_op_t *op;
    while ((op = gq_comfy_op_next_done(w->comfy))) {
        worker_comfy_answer(w, op);
        gq_comfy_op_destroy(op);
    }
    worker_outputs(w);
    worker_failed_answers(w);
    worker_ws(w);
    worker_cancels(w);
    if (gq_intake_subscribed(w->intake))
        worker_intake(w);
    gq_record_service(w->record, w->env.now_mono);
    worker_env(w);
    worker_ticks(w);
    worker_admit(w);
    worker_slots(w);
    worker_progress(w);
    worker_reap(w);
    worker_flow(w);
    if (w->env.now_mono >= w->ready_mono) {
        w->ready_mono = w->env.now_mono + WORKER_READY_MS;
        worker_readiness(w);
    }
}

gq_worker_end_t gq_worker_run(gq_worker_t *w, volatile sig_atomic_t *stop) {
    bool interrupted = false;
    gq_info("worker %s: group %s, topic %s%s, ComfyUI %s, %d prompt(s) queued ahead", w->worker_id,
            gq_intake_group(w->intake), gq_intake_lanes(w->intake)->topic[0],
            gq_intake_lanes(w->intake)->n > 1 ? " and lower lanes" : "",
            gq_cfg_str(w->cfg, "comfyui_url"), w->queue_depth);
    /* Join the group only when able to take work: a warming member would hold partitions it
     * cannot serve, and could outlast max.poll.interval.ms without polling. */
    gq_warmup_run(w->comfy, w->metrics, w->cfg, stop);
    char err[512];
    /* Every cancel published so far is known before the first job is taken. */
    size_t cancels = 0;
    if (!*stop && gq_cancels_catch_up(w->cancels, WORKER_CANCELS_CATCH_UP_MS, stop, &cancels, err,
                                      sizeof(err)) != GQ_OK)
        gq_warn("%s; following it from here (genq.cancels still guards every attempt)", err);
    else if (!*stop)
        gq_info("cancel topic read to its end: %zu cancel request(s)", cancels);
    if (!*stop && gq_intake_subscribe(w->intake, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        return GQ_WORKER_FATAL;
    }
    w->health_mono = 0;
    w->gpu_stats_mono = 0;
    w->stats_mono = gq_mono_ms() + WORKER_STATS_MS;
    while (!w->fatal) {
        int64_t now = gq_mono_ms();
        if (*stop && !w->stopping)
            worker_begin_stop(w);
        if (w->stopping) {
            if (w->jobs_cnt == 0 && !gq_pgq_pending(gq_recorder_pgq(w->rec)))
                break;
            if (now >= w->stop_deadline && !w->grace_over) {
                gq_warn("grace period over: interrupting what still renders");
                w->grace_over = true;
                worker_env(w);
                for (const job_t *j = w->active.head; j; j = j->next)
                    if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
                        interrupted = true;
                job_ev_type_t grace = JEV_GRACE;
                worker_each(w, worker_stop_visit, &grace);
            }
            if (now >= w->stop_deadline + WORKER_FINISH_GRACE_MS) {
                gq_err("%zu job(s) could not be recorded before exit; they will be redelivered",
                       w->jobs_cnt);
                interrupted = true;
                break;
            }
        }
        if (now >= w->health_mono) {
            w->health_mono = now + WORKER_HEALTH_MS;
            worker_health(w);
        }
        worker_turn(w);
        if (now >= w->stats_mono) {
            w->stats_mono = now + WORKER_STATS_MS;
            gq_info("in flight %zu; taken %llu, recorded %llu, redelivered %llu", w->jobs_cnt,
                    (unsigned long long)w->n_taken, (unsigned long long)w->n_recorded,
                    (unsigned long long)w->n_redelivered);
        }
    }
    gq_intake_close(w->intake);
    if (w->fatal)
        return GQ_WORKER_FATAL;
    return interrupted ? GQ_WORKER_INTERRUPTED : GQ_WORKER_DRAINED;
}

/* ---- setup ---- */

/* Connects the recorder. With start_wait, an unreachable or not yet migrated PostgreSQL is
 * retried (a migration Job may still be running; the database may still be starting) while
 * /healthz says alive and /readyz says why not ready, instead of a crash loop. */
static gq_status_t worker_connect_db(gq_worker_t *w, volatile sig_atomic_t *stop, char *errstr,
                                     size_t errstr_size) {
    int64_t deadline = gq_mono_ms() + gq_cfg_int(w->cfg, "start_wait") * 1000;
    int backoff_ms = 500;
    gq_status_t st;
    for (;;) {
        w->rec = gq_recorder_new(gq_cfg_str(w->cfg, "database_url"), &st, errstr, errstr_size);
        if (w->rec)
            return GQ_OK;
        int64_t left = deadline - gq_mono_ms();
        if ((st != GQ_ERR_TRANSIENT && st != GQ_ERR_NOTFOUND) || left <= 0 || (stop && *stop))
            return st;
        char why[300];
        snprintf(why, sizeof(why), "waiting for PostgreSQL: %s", errstr);
        gq_metrics_set_ready(w->metrics, false, why);
        gq_warn("%s (retrying for %lld s more)", errstr, (long long)(left / 1000));
        /* Waits on the signal pipe: a SIGTERM ends the wait at once. */
        for (int64_t until = gq_mono_ms() + backoff_ms; gq_mono_ms() < until && !(stop && *stop);) {
            gq_metrics_heartbeat(w->metrics);
            struct pollfd p = {w->sig[0], POLLIN, 0};
            int64_t left_ms = until - gq_mono_ms();
            poll(&p, 1, left_ms > 1000 ? 1000 : left_ms < 0 ? 0 : (int)left_ms);
        }
        backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
    }
}

/* A ComfyUI client id that a restarted worker gets again, so ComfyUI sends it the events of
 * the prompts its previous process submitted: derived from the worker id when one is set,
 * else from the host, and from the ComfyUI URL (one worker per GPU and ComfyUI). */
static void worker_client_id(gq_worker_t *w) {
    char host[64] = "worker", seed[1400];
    gethostname(host, sizeof(host) - 1);
    snprintf(seed, sizeof(seed), "genq-client|%s|%s",
             gq_cfg_isset(w->cfg, "worker_id") ? gq_cfg_str(w->cfg, "worker_id") : host,
             gq_cfg_str(w->cfg, "comfyui_url"));
    char hex[65];
    gq_sha256_hex(seed, strlen(seed), hex);
    /* A version-4-shaped uuid from the hash, as ComfyUI expects of ids. */
    snprintf(w->client_id, sizeof(w->client_id), "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8,
             hex + 12, hex + 15, hex + 18);
}

/* The scheduler's settings, from the configuration. */
static gq_status_t worker_sched_init(gq_worker_t *w, char *errstr, size_t errstr_size) {
    const gq_cfg_t *cfg = w->cfg;
    const char *mode = gq_cfg_str(cfg, "schedule");
    if (strcmp(mode, "fair") != 0 && strcmp(mode, "fifo") != 0) {
        gq_errf(errstr, errstr_size, "schedule \"%s\": fair or fifo", mode);
        return GQ_ERR_INVALID;
    }
    gq_sched_cfg_t sc = {
        .fifo = strcmp(mode, "fifo") == 0,
        .max_passes = (int)gq_cfg_int(cfg, "max_passes"),
        .max_wait_ms = gq_cfg_int(cfg, "max_sched_wait") * 1000,
        .quantum = (int)gq_cfg_int(cfg, "fair_quantum"),
        .tenant_max_in_flight = (int)gq_cfg_int(cfg, "tenant_max_in_flight"),
        .weights = gq_cfg_str(cfg, "tenant_weights"),
    };
    const char *lw = gq_cfg_str(cfg, "lane_weights");
    for (const char *p = lw; p && *p && sc.lanes < GQ_SCHED_MAX_LANES;) {
        char num[16];
        size_t n = strcspn(p, ",");
        int64_t v;
        snprintf(num, sizeof(num), "%.*s", (int)(n < 15 ? n : 15), p);
        if (gq_parse_i64(num, 1, 1000, &v) != GQ_OK) {
            gq_errf(errstr, errstr_size, "lane_weights \"%s\": positive integers, e.g. 8,2,1", lw);
            return GQ_ERR_INVALID;
        }
        sc.lane_weight[sc.lanes++] = (int)v;
        p += n + (p[n] == ',');
    }
    sc.lanes_weighted = sc.lanes > 0;
    gq_sched_init(&w->sched, &sc);
    return GQ_OK;
}

/* A completion event's output URI: a presigned link with s3_presign. */
static gq_status_t worker_event_uri(void *ctx, const char *uri, char *out, size_t out_size,
                                    char *errstr, size_t errstr_size) {
    return gq_outputs_event_uri(ctx, uri, out, out_size, errstr, errstr_size);
}

gq_worker_t *gq_worker_new(const gq_cfg_t *cfg, volatile sig_atomic_t *stop, gq_status_t *st,
                           char *errstr, size_t errstr_size) {
    gq_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        *st = GQ_ERR_NOMEM;
        return NULL;
    }
    w->cfg = cfg;
    w->stop = stop;
    w->sig[0] = w->sig[1] = -1;
    w->idle_wake = INT64_MAX;
    gq_offsets_init(&w->offsets);
    if (pipe2(w->sig, O_NONBLOCK | O_CLOEXEC) != 0) {
        gq_errf(errstr, errstr_size, "pipe: %s", strerror(errno));
        *st = GQ_ERR;
        goto fail;
    }
    if (gq_cfg_isset(cfg, "worker_id")) {
        gq_strlcpy(w->worker_id, gq_cfg_str(cfg, "worker_id"), sizeof(w->worker_id));
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        snprintf(w->worker_id, sizeof(w->worker_id), "%s-%d", host, (int)getpid());
    }
    worker_client_id(w);
    w->queue_depth = (int)gq_cfg_int(cfg, "queue_depth");
    w->backlog_max = (size_t)gq_cfg_int(cfg, "backlog");
    w->lookahead = (size_t)gq_cfg_int(cfg, "lookahead");
    if (w->lookahead < (size_t)w->queue_depth + 2)
        w->lookahead = (size_t)w->queue_depth + 2;
    w->admit = (gq_admit_cfg_t){gq_cfg_str(cfg, "workflows_dir"),
                                (int)gq_cfg_int(cfg, "job_timeout"),
                                (int32_t)gq_cfg_int(cfg, "max_attempts"),
                                (size_t)gq_cfg_int(cfg, "max_message_bytes"),
                                &w->templates,
                                NULL};
    /* What a request may make ComfyUI do (guard.h), read once; admission asks it. */
    *st = gq_guard_init(&w->guard, gq_cfg_str(cfg, "inline_workflows"),
                        gq_cfg_str(cfg, "inline_node_classes"), errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    w->has_guard = true;
    w->admit.guard = &w->guard;
    gq_info("inline workflows: %s%s", gq_guard_mode_name(w->guard.inline_mode),
            w->guard.inline_mode == GQ_INLINE_ALLOWLIST ? " (GENQ_INLINE_NODE_CLASSES)" : "");
    w->env = (job_env_t){.admit = &w->admit,
                         .worker_id = w->worker_id,
                         .stall_timeout_ms = (int)gq_cfg_int(cfg, "stall_timeout") * 1000,
                         .quiet_ms = WORKER_QUIET_MS,
                         .check_ms = WORKER_CHECK_MS,
                         .max_output_bytes = gq_cfg_int(cfg, "max_output_bytes")};
    const char *cache = gq_cfg_str(cfg, "cache");
    if (strcmp(cache, "on") == 0) {
        w->env.cache_salt = gq_cfg_str(cfg, "cache_salt");
        if (!w->env.cache_salt)
            w->env.cache_salt = "";
    } else if (strcmp(cache, "off") != 0) {
        gq_errf(errstr, errstr_size, "cache: \"%s\" is neither on nor off", cache);
        *st = GQ_ERR_INVALID;
        goto fail;
    }
    w->ws_backoff_ms = 500;
    *st = worker_sched_init(w, errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;

    *st = gq_schema_init(errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    w->metrics = gq_metrics_new();
    if (!w->metrics) {
        *st = GQ_ERR_NOMEM;
        goto fail;
    }
    if (gq_cfg_isset(cfg, "http_listen")) {
        /* A loop stuck this long is dead: the slowest call it makes is bounded well below. */
        w->endpoint = gq_endpoint_new(w->metrics, gq_cfg_str(cfg, "http_listen"), 120000, errstr,
                                      errstr_size);
        if (!w->endpoint) {
            *st = GQ_ERR_INVALID;
            goto fail;
        }
        gq_info("health and metrics on %s (port %d)", gq_cfg_str(cfg, "http_listen"),
                gq_endpoint_port(w->endpoint));
    }
    *st = worker_connect_db(w, stop, errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    *st = gq_sweep_init(&w->sweep, gq_cfg_str(cfg, "comfyui_output_dir"),
                        gq_cfg_str(cfg, "comfyui_temp_dir"), errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    gq_comfy_opts_t co = {.base_url = gq_cfg_str(cfg, "comfyui_url"), .client_id = w->client_id};
    w->comfy = gq_comfy_new(&co, errstr, errstr_size);
    if (!w->comfy) {
        *st = GQ_ERR_INVALID;
        goto fail;
    }
    /* Uploads run on the ComfyUI client's multi handle: the loop still waits in one place. */
    w->outputs = gq_outputs_new(cfg, gq_comfy_xfer_host(w->comfy), st, errstr, errstr_size);
    if (!w->outputs)
        goto fail;
    gq_info("outputs go to %s", gq_outputs_describe(w->outputs));
    w->record = gq_record_new(cfg, w->worker_id, w->rec, w->metrics, errstr, errstr_size);
    if (!w->record) {
        *st = GQ_ERR_INVALID;
        goto fail;
    }
    w->progpub = gq_progpub_new(cfg, w->worker_id, st, errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    w->progress_wake = INT64_MAX;
    w->cancels = gq_cancels_new(cfg, w->worker_id, errstr, errstr_size);
    if (!w->cancels) {
        *st = GQ_ERR_INVALID;
        goto fail;
    }
    if (gq_cfg_int(cfg, "s3_presign") > 0)
        gq_record_set_event_uri(w->record, worker_event_uri, w->outputs);
    w->intake = gq_intake_new(cfg, w->worker_id, w->rec, errstr, errstr_size);
    if (!w->intake) {
        *st = GQ_ERR_INVALID;
        goto fail;
    }
    return w;
fail:
    gq_worker_destroy(w);
    return NULL;
}

int gq_worker_signal_fd(const gq_worker_t *w) { return w->sig[1]; }

void gq_worker_destroy(gq_worker_t *w) {
    if (!w)
        return;
    if (w->has_guard)
        gq_guard_release(&w->guard);
    gq_intake_destroy(w->intake);
    gq_cancels_destroy(w->cancels);
    /* Its topic handle goes before the producer it belongs to. */
    gq_progpub_destroy(w->progpub);
    gq_record_destroy(w->record);
    worker_list_t *ls[WORKER_LISTS];
    size_t n = worker_lists(w, ls);
    for (size_t i = 0; i < n; i++)
        while (ls[i]->head) {
            job_t *j = ls[i]->head;
            worker_list_unlink(ls[i], j);
            job_free(j);
        }
    while (w->failed) {
        worker_failed_t *f = w->failed;
        w->failed = f->next;
        free(f);
    }
    gq_outputs_destroy(w->outputs); /* its transfers run on the ComfyUI client's handle */
    gq_comfy_destroy(w->comfy);
    gq_recorder_destroy(w->rec);
    gq_endpoint_destroy(w->endpoint);
    gq_metrics_destroy(w->metrics);
    gq_offsets_release(&w->offsets);
    gq_admit_cache_release(&w->templates);
    if (w->sig[0] >= 0)
        close(w->sig[0]);
    if (w->sig[1] >= 0)
        close(w->sig[1]);
    free(w);
}
