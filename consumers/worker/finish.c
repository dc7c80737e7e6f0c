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

static void finish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    job_t *j = m->_private;
    if (!j)
        return;
    if (m->err) {
        gq_warn("job %s: completion event not delivered: %s (will retry)", j->job_id,
                rd_kafka_err2str(m->err));
        j->state = JOB_EMIT;
    } else {
        j->state = JOB_RECORD;
    }
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

static void finish_emit(gq_worker_t *w, job_t *j) {
    char err[512];
    gq_buf_t b;
    gq_buf_init(&b, 16u << 20);
    if (gq_completed_encode(&j->result, &b, err, sizeof(err)) != GQ_OK) {
        /* Our own event failed to encode: a bug, not an input problem. Record it anyway. */
        gq_err("job %s: encoding the completion event: %s", j->job_id, err);
        gq_buf_release(&b);
        j->state = JOB_RECORD;
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->emitter, RD_KAFKA_V_TOPIC(gq_cfg_str(w->cfg, "completed_topic")),
        RD_KAFKA_V_KEY(j->job_id, strlen(j->job_id)), RD_KAFKA_V_VALUE(b.data, b.len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(j),
        RD_KAFKA_V_HEADER("content-type", "application/vnd.genq.completed+avro", -1),
        RD_KAFKA_V_END);
    gq_buf_release(&b);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        j->state = JOB_EMITTING;
    else
        gq_warn("job %s: producing the completion event: %s (will retry)", j->job_id,
                rd_kafka_err2str(e));
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
    gq_msg_ref_t ref = {w->group, w->topic, j->partition, intake_last_processed_if_done(w, j)};
    bool already = false;
    char err[1024];
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
