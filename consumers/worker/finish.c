/* The end of a job: fetch and store outputs, publish the completion event, write the
 * terminal record (with the offset) and let intake commit. The event goes out before the
 * record: a crash in between leaves the job unfinished in PostgreSQL, so the next owner
 * adopts the render and emits the same event again (same job_id and attempt) instead of
 * losing it. */
#include "kafka.h"
#include "log.h"
#include "util.h"
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>

/* Messages of a job are told apart by the topic they went to. */
static void finish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    gq_worker_t *w = opaque;
    job_t *j = m->_private;
    if (!j)
        return;
    bool dlq = strcmp(rd_kafka_topic_name(m->rkt), gq_cfg_str(w->cfg, "dlq_topic")) == 0;
    if (m->err)
        gq_warn("job %s: %s not delivered: %s (will retry)", j->job_id[0] ? j->job_id : "?",
                dlq ? "dead letter" : "completion event", rd_kafka_err2str(m->err));
    else if (dlq)
        j->dlq_sent = true;
    else
        j->event_sent = true;
    if (--j->pending_dr == 0)
        j->state = (j->has_result && !j->event_sent) || (j->to_dlq && !j->dlq_sent) ? JOB_EMIT
                                                                                     : JOB_RECORD;
}

gq_status_t finish_init(gq_worker_t *w, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = gq_kafka_conf_new(w->cfg, w->worker_id, errstr, errstr_size);
    if (!conf)
        return GQ_ERR_INVALID;
    if (gq_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "linger.ms", "1", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, w->cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, finish_dr_cb);
    rd_kafka_conf_set_opaque(conf, w);
    char err[512];
    w->emitter = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!w->emitter) {
        gq_errf(errstr, errstr_size, "kafka producer: %s", err);
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

void finish_close(gq_worker_t *w) {
    if (!w->emitter)
        return;
    if (rd_kafka_flush(w->emitter, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        gq_warn("%d completion event(s) not delivered at exit", rd_kafka_outq_len(w->emitter));
    rd_kafka_destroy(w->emitter);
    w->emitter = NULL;
}

static char *finish_dup(const char *s) { return s ? strdup(s) : NULL; }

static int64_t finish_max0(int64_t v) { return v < 0 ? 0 : v; }

/* Fills the common part of the completion event. Durations are built so that
 * queue_ms + render_ms <= total_ms always holds, even across clock skew. */
static void finish_result(gq_worker_t *w, job_t *j, gq_job_status_t status) {
    gq_completed_t *ev = &j->result;
    if (j->has_result)
        gq_completed_release(ev);
    gq_completed_init(ev);
    j->has_result = true;
    memcpy(ev->job_id, j->job_id, sizeof(ev->job_id));
    ev->attempt = j->attempt > 0 ? j->attempt : 1;
    ev->status = status;
    ev->worker_id = strdup(w->worker_id);
    ev->finished_at = gq_now_ms();
    int64_t submitted = j->decoded && j->req.submitted_at > 0 ? j->req.submitted_at
                                                               : j->received_at;
    int64_t start = j->started_at ? j->started_at : ev->finished_at;
    ev->queue_ms = finish_max0(start - submitted);
    ev->render_ms = j->started_at && j->rendered_at ? finish_max0(j->rendered_at - j->started_at)
                                                    : 0;
    int64_t end = j->rendered_at ? j->rendered_at : start;
    ev->total_ms = ev->queue_ms + ev->render_ms + finish_max0(ev->finished_at - end);
    if (j->decoded) {
        ev->model = finish_dup(j->req.model);
        ev->source = finish_dup(j->req.source);
        if (j->req.metadata_cnt) {
            ev->metadata = calloc(j->req.metadata_cnt, sizeof(*ev->metadata));
            for (size_t i = 0; ev->metadata && i < j->req.metadata_cnt; i++) {
                ev->metadata[i].key = strdup(j->req.metadata[i].key);
                ev->metadata[i].value = strdup(j->req.metadata[i].value);
                ev->metadata_cnt++;
            }
        }
    }
}

static rd_kafka_resp_err_t finish_emit_event(gq_worker_t *w, job_t *j) {
    char err[512];
    gq_buf_t b;
    gq_buf_init(&b, 16u << 20);
    if (gq_completed_encode(&j->result, &b, err, sizeof(err)) != GQ_OK) {
        /* Our own event failed to encode: a bug, not an input problem. Record it anyway. */
        gq_err("job %s: encoding the completion event: %s", j->job_id, err);
        gq_buf_release(&b);
        j->event_sent = true;
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->emitter, RD_KAFKA_V_TOPIC(gq_cfg_str(w->cfg, "completed_topic")),
        RD_KAFKA_V_KEY(j->job_id, strlen(j->job_id)), RD_KAFKA_V_VALUE(b.data, b.len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(j),
        RD_KAFKA_V_HEADER("content-type", "application/vnd.genq.completed+avro", -1),
        RD_KAFKA_V_END);
    gq_buf_release(&b);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        j->pending_dr++;
    return e;
}

/* The original bytes, with headers saying why, where from and after how many attempts. */
static rd_kafka_resp_err_t finish_emit_dlq(gq_worker_t *w, job_t *j) {
    char part[16], off[24], attempts[16];
    snprintf(part, sizeof(part), "%d", (int)j->partition);
    snprintf(off, sizeof(off), "%lld", (long long)j->offset);
    snprintf(attempts, sizeof(attempts), "%d", (int)j->attempt);
    const char *why = j->error_message[0] ? j->error_message : j->dlq_reason;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->emitter, RD_KAFKA_V_TOPIC(gq_cfg_str(w->cfg, "dlq_topic")),
        RD_KAFKA_V_KEY(j->job_id, strlen(j->job_id)),
        RD_KAFKA_V_VALUE(j->payload, j->payload_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_HEADER("genq-reason", j->dlq_reason, -1),
        RD_KAFKA_V_HEADER("genq-error", why, -1),
        RD_KAFKA_V_HEADER("genq-error-code", j->error_code, -1),
        RD_KAFKA_V_HEADER("genq-source-topic", w->topic, -1),
        RD_KAFKA_V_HEADER("genq-source-partition", part, -1),
        RD_KAFKA_V_HEADER("genq-source-offset", off, -1),
        RD_KAFKA_V_HEADER("genq-attempts", attempts, -1),
        RD_KAFKA_V_HEADER("genq-worker", w->worker_id, -1), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        j->pending_dr++;
    return e;
}

/* Produces what is still undelivered; the delivery reports move the job on. */
static void finish_emit(gq_worker_t *w, job_t *j) {
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (j->has_result && !j->event_sent)
        e = finish_emit_event(w, j);
    if (!e && j->to_dlq && !j->dlq_sent)
        e = finish_emit_dlq(w, j);
    if (e)
        gq_warn("job %s: producing: %s (will retry)", j->job_id[0] ? j->job_id : "?",
                rd_kafka_err2str(e));
    if (j->pending_dr > 0)
        j->state = JOB_EMITTING;
    else if (!e)
        j->state = JOB_RECORD;
}

void finish_reject(gq_worker_t *w, job_t *j, const char *reason, const char *err) {
    j->to_dlq = true;
    gq_strlcpy(j->dlq_reason, reason, sizeof(j->dlq_reason));
    gq_strlcpy(j->error_code, reason, sizeof(j->error_code));
    gq_strlcpy(j->error_message, err, sizeof(j->error_message));
    gq_warn("poison message %s [%d] @%lld: %s", w->topic, (int)j->partition,
            (long long)j->offset, err);
    j->state = JOB_EMIT;
    finish_emit(w, j);
}

void finish_failed(gq_worker_t *w, job_t *j) {
    finish_result(w, j, GQ_JOB_FAILED);
    j->result.has_error = true;
    j->result.error_code = strdup(j->error_code);
    j->result.error_message = strdup(j->error_message);
    j->result.error_retryable = j->error_retryable;
    j->state = JOB_EMIT;
    finish_emit(w, j);
}

/* Downloads and stores every output image; fills j->result's outputs. */
static gq_status_t finish_outputs(gq_worker_t *w, job_t *j, const gq_comfy_result_t *res,
                                  char *errstr, size_t errstr_size) {
    gq_completed_t *ev = &j->result;
    ev->outputs = calloc(res->images_cnt ? res->images_cnt : 1, sizeof(*ev->outputs));
    if (!ev->outputs)
        return GQ_ERR_NOMEM;
    gq_buf_t b;
    gq_buf_init(&b, (size_t)w->max_output_bytes);
    gq_status_t st = GQ_OK;
    for (size_t i = 0; i < res->images_cnt && st == GQ_OK; i++) {
        const gq_comfy_image_t *img = &res->images[i];
        if (strcmp(img->type, "output") != 0)
            continue; /* previews and temp files are not results */
        gq_buf_reset(&b);
        st = gq_comfy_view(w->comfy, img, &b, errstr, errstr_size);
        if (st != GQ_OK)
            break;
        gq_stored_t s;
        st = gq_store_put(&w->store, b.data, b.len, &s, errstr, errstr_size);
        if (st != GQ_OK)
            break;
        gq_output_t *o = &ev->outputs[ev->outputs_cnt++];
        o->uri = strdup(s.uri);
        memcpy(o->sha256, s.sha256, sizeof(o->sha256));
        o->bytes = s.bytes;
        o->width = s.width;
        o->height = s.height;
        o->mime = strdup(s.mime);
    }
    gq_buf_release(&b);
    if (st == GQ_OK && ev->outputs_cnt == 0) {
        gq_errf(errstr, errstr_size, "the workflow produced no output image (no SaveImage?)");
        st = GQ_ERR_INVALID;
    }
    return st;
}

void finish_rendered(gq_worker_t *w, job_t *j, const gq_comfy_result_t *res) {
    j->state = JOB_RENDERED;
    if (!j->started_at)
        j->started_at = res->start_ms ? res->start_ms : gq_now_ms();
    j->rendered_at = j->adopted && res->end_ms ? res->end_ms : gq_now_ms();
    if (j->rendered_at < j->started_at)
        j->rendered_at = j->started_at;
    if (!res->success) {
        if (res->interrupted)
            render_fail(w, j, "interrupted", true, "the prompt was interrupted in ComfyUI");
        else
            render_fail_exec(w, j, res->error_type, res->error_message);
        return;
    }
    finish_result(w, j, GQ_JOB_SUCCEEDED);
    char err[1024];
    gq_status_t st = finish_outputs(w, j, res, err, sizeof(err));
    if (st == GQ_ERR_TOOBIG) {
        render_fail(w, j, "output_too_large", false, "%s", err);
        return;
    }
    if (st == GQ_ERR_INVALID) {
        render_fail(w, j, "no_outputs", false, "%s", err);
        return;
    }
    if (st != GQ_OK) {
        render_fail(w, j, "output_error", true, "fetching outputs: %s", err);
        return;
    }
    j->state = JOB_EMIT;
    finish_emit(w, j);
}

static void finish_record(gq_worker_t *w, job_t *j) {
    gq_msg_ref_t ref = intake_ref(w, j);
    bool already = false;
    char err[1024];
    if (!j->has_result) {
        if (gq_recorder_reject(w->rec, &ref, NULL, j->dlq_reason, j->error_message, j->payload,
                               j->payload_len, err, sizeof(err)) != GQ_OK) {
            gq_warn("recording a rejected message: %s (will retry)", err);
            w->pg_retry_mono = gq_mono_ms() + 1000;
            return;
        }
        w->n_rejected++;
        j->state = JOB_DONE;
        intake_job_done(w, j);
        return;
    }
    gq_status_t st = gq_recorder_job_finish(w->rec, j->decoded ? &j->req : NULL, &j->result,
                                            &ref, &already, err, sizeof(err));
    if (st != GQ_OK) {
        gq_warn("job %s: writing the terminal record: %s (will retry)", j->job_id, err);
        w->pg_retry_mono = gq_mono_ms() + 1000;
        return;
    }
    if (j->result.status == GQ_JOB_SUCCEEDED)
        w->n_succeeded++;
    else
        w->n_failed++;
    gq_info("job %s %s%s: attempt %d, queue %lld ms, render %lld ms, total %lld ms, %zu output(s)",
            j->job_id, gq_job_status_name(j->result.status), already ? " (already recorded)" : "",
            (int)j->result.attempt, (long long)j->result.queue_ms,
            (long long)j->result.render_ms, (long long)j->result.total_ms,
            j->result.outputs_cnt);
    j->state = JOB_DONE;
    intake_job_done(w, j);
}

void finish_poll(gq_worker_t *w) {
    rd_kafka_poll(w->emitter, 0);
    for (job_t *j = w->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->state == JOB_EMIT)
            finish_emit(w, j);
        else if (j->state == JOB_RECORD && gq_mono_ms() >= w->pg_retry_mono)
            finish_record(w, j);
    }
}
