/* The end of a job: fetch and store outputs, then write the terminal record, the
 * partition's offset and the outgoing messages (completion event, dead letter) in one
 * PostgreSQL transaction (genq.outbox), and publish those messages after the commit. A
 * crash between commit and publication leaves the rows in the outbox, where this worker's
 * next process or, after a while, any worker publishes them: an event is never lost, never
 * announces an attempt that was not recorded, and a repeat carries the same job and
 * attempt. */
#include "kafka.h"
#include "log.h"
#include "util.h"
#include "worker_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINISH_OUTBOX_STALE_MS 60000 /* a row claimed this long ago has lost its worker */
#define FINISH_OUTBOX_SCAN_MS 5000

/* Kafka acknowledged an outbox message: its row can go. */
static void finish_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    gq_worker_t *w = opaque;
    int64_t id = (int64_t)(intptr_t)m->_private;
    if (m->err) {
        gq_warn("outbox message %lld to %s not delivered: %s (published again later)",
                (long long)id, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        return;
    }
    if (w->outbox_done_cnt == w->outbox_done_cap) {
        size_t cap = w->outbox_done_cap ? w->outbox_done_cap * 2 : 64;
        int64_t *p = realloc(w->outbox_done, cap * sizeof(*p));
        if (!p)
            return; /* the row stays; it is published again later: a repeat, not a loss */
        w->outbox_done = p;
        w->outbox_done_cap = cap;
    }
    w->outbox_done[w->outbox_done_cnt++] = id;
}

static void finish_publish(gq_worker_t *w, int64_t id, const char *topic, const char *key,
                           const void *payload, size_t len, const gq_kv_t *headers,
                           size_t headers_cnt) {
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(headers_cnt + 1);
    for (size_t i = 0; i < headers_cnt; i++)
        rd_kafka_header_add(hdrs, headers[i].key, -1, headers[i].value, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->emitter, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(hdrs);
        gq_warn("publishing outbox message %lld: %s (published again later)", (long long)id,
                rd_kafka_err2str(e));
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

static void finish_outbox_flush(gq_worker_t *w);

void finish_close(gq_worker_t *w) {
    if (!w->emitter)
        return;
    if (rd_kafka_flush(w->emitter, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        gq_warn("%d message(s) not delivered at exit; they stay in the outbox",
                rd_kafka_outq_len(w->emitter));
    finish_outbox_flush(w);
    rd_kafka_destroy(w->emitter);
    w->emitter = NULL;
    free(w->outbox_done);
    w->outbox_done = NULL;
    w->outbox_done_cnt = w->outbox_done_cap = 0;
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
    int64_t submitted =
        j->decoded && j->req.submitted_at > 0 ? j->req.submitted_at : j->received_at;
    int64_t start = j->started_at ? j->started_at : ev->finished_at;
    ev->queue_ms = finish_max0(start - submitted);
    ev->render_ms =
        j->started_at && j->rendered_at ? finish_max0(j->rendered_at - j->started_at) : 0;
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

void finish_failed(gq_worker_t *w, job_t *j) {
    finish_result(w, j, GQ_JOB_FAILED);
    j->result.has_error = true;
    j->result.error_code = strdup(j->error_code);
    j->result.error_message = strdup(j->error_message);
    j->result.error_retryable = j->error_retryable;
    j->state = JOB_RECORD;
}

void finish_reject(gq_worker_t *w, job_t *j, const char *reason, const char *err) {
    j->to_dlq = true;
    gq_strlcpy(j->dlq_reason, reason, sizeof(j->dlq_reason));
    gq_strlcpy(j->error_code, reason, sizeof(j->error_code));
    gq_strlcpy(j->error_message, err, sizeof(j->error_message));
    gq_warn("poison message %s [%d] @%lld: %s", w->topic, (int)j->partition, (long long)j->offset,
            err);
    j->state = JOB_RECORD;
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
    j->state = JOB_RECORD;
}

/* The original bytes, with headers saying why, where from and after how many attempts. */
static size_t finish_dlq_headers(gq_worker_t *w, job_t *j, gq_kv_t *h, char bufs[3][24]) {
    snprintf(bufs[0], 24, "%d", (int)j->partition);
    snprintf(bufs[1], 24, "%lld", (long long)j->offset);
    snprintf(bufs[2], 24, "%d", (int)j->attempt);
    const char *why = j->error_message[0] ? j->error_message : j->dlq_reason;
    const gq_kv_t all[] = {
        {"genq-reason", j->dlq_reason},     {"genq-error", (char *)why},
        {"genq-error-code", j->error_code}, {"genq-source-topic", (char *)w->topic},
        {"genq-source-partition", bufs[0]}, {"genq-source-offset", bufs[1]},
        {"genq-attempts", bufs[2]},         {"genq-worker", w->worker_id},
    };
    memcpy(h, all, sizeof(all));
    return GQ_ARRAY_LEN(all);
}

static void finish_record(gq_worker_t *w, job_t *j) {
    gq_msg_ref_t ref = intake_ref(w, j);
    bool already = false;
    char err[1024];
    gq_outbox_msg_t msgs[2];
    int64_t ids[2] = {-1, -1};
    size_t n = 0;
    gq_buf_t ev;
    gq_buf_init(&ev, 16u << 20);
    gq_kv_t ev_hdr[] = {{"content-type", "application/vnd.genq.completed+avro"}};
    gq_kv_t dlq_hdr[8];
    char bufs[3][24];
    if (j->has_result) {
        if (gq_completed_encode(&j->result, &ev, err, sizeof(err)) != GQ_OK) {
            gq_err("job %s: encoding the completion event: %s", j->job_id, err);
        } else {
            msgs[n++] = (gq_outbox_msg_t){gq_cfg_str(w->cfg, "completed_topic"),
                                          j->job_id,
                                          ev.data,
                                          ev.len,
                                          ev_hdr,
                                          1,
                                          j->job_id};
        }
    }
    if (j->to_dlq) {
        size_t hn = finish_dlq_headers(w, j, dlq_hdr, bufs);
        msgs[n++] = (gq_outbox_msg_t){gq_cfg_str(w->cfg, "dlq_topic"),
                                      j->job_id,
                                      j->payload,
                                      j->payload_len,
                                      dlq_hdr,
                                      hn,
                                      j->job_id};
    }
    gq_status_t st =
        j->has_result
            ? gq_recorder_job_finish_outbox(w->rec, j->decoded ? &j->req : NULL, &j->result, &ref,
                                            msgs, n, w->worker_id, ids, &already, err, sizeof(err))
            : gq_recorder_reject_outbox(w->rec, &ref, j->dlq_reason, j->error_message, j->payload,
                                        j->payload_len, msgs, n, w->worker_id, ids, err,
                                        sizeof(err));
    if (st != GQ_OK) {
        gq_warn("job %s: writing the terminal record: %s (will retry)",
                j->job_id[0] ? j->job_id : "?", err);
        w->pg_retry_mono = gq_mono_ms() + 1000;
        gq_buf_release(&ev);
        return;
    }
    if (j->to_dlq && ids[n - 1] >= 0)
        gq_metrics_dead_letter(w->metrics, j->dlq_reason);
    if (j->has_result && !already)
        gq_metrics_job_done(w->metrics, j->decoded ? j->req.model : NULL,
                            j->result.status == GQ_JOB_SUCCEEDED, j->result.queue_ms / 1000.0,
                            j->result.render_ms / 1000.0, j->result.total_ms / 1000.0);
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0)
            finish_publish(w, ids[i], msgs[i].topic, msgs[i].key, msgs[i].payload, msgs[i].len,
                           msgs[i].headers, msgs[i].headers_cnt);
    gq_buf_release(&ev);
    if (!j->has_result) {
        w->n_rejected++;
    } else {
        if (j->result.status == GQ_JOB_SUCCEEDED)
            w->n_succeeded++;
        else
            w->n_failed++;
        gq_info("job %s %s%s: attempt %d, queue %lld ms, render %lld ms, total %lld ms, %zu "
                "output(s)",
                j->job_id, gq_job_status_name(j->result.status),
                already ? " (already recorded)" : "", (int)j->result.attempt,
                (long long)j->result.queue_ms, (long long)j->result.render_ms,
                (long long)j->result.total_ms, j->result.outputs_cnt);
    }
    j->state = JOB_DONE;
    intake_job_done(w, j);
}

/* Publishes outbox rows nobody is publishing (left by a crashed process). */
static void finish_outbox_scan(gq_worker_t *w) {
    gq_outbox_row_t *rows = NULL;
    size_t cnt = 0;
    char err[1024];
    if (gq_recorder_outbox_claim(w->rec, w->worker_id, FINISH_OUTBOX_STALE_MS,
                                 !w->outbox_scanned_mine, 256, &rows, &cnt, err,
                                 sizeof(err)) != GQ_OK) {
        gq_debug("%s", err);
        return;
    }
    w->outbox_scanned_mine = true;
    if (cnt)
        gq_info("publishing %zu message(s) left in the outbox", cnt);
    for (size_t i = 0; i < cnt; i++)
        finish_publish(w, rows[i].id, rows[i].topic, rows[i].key, rows[i].payload, rows[i].len,
                       rows[i].headers, rows[i].headers_cnt);
    gq_outbox_rows_free(rows, cnt);
}

static void finish_outbox_flush(gq_worker_t *w) {
    char err[1024];
    if (!w->outbox_done_cnt)
        return;
    if (gq_recorder_outbox_done(w->rec, w->outbox_done, w->outbox_done_cnt, err, sizeof(err)) ==
        GQ_OK)
        w->outbox_done_cnt = 0;
    else
        gq_debug("%s (will retry)", err);
}

void finish_poll(gq_worker_t *w) {
    rd_kafka_poll(w->emitter, 0);
    int64_t now = gq_mono_ms();
    for (job_t *j = w->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->state == JOB_RECORD && now >= w->pg_retry_mono)
            finish_record(w, j);
    }
    if (now >= w->pg_retry_mono)
        finish_outbox_flush(w);
    if (now >= w->outbox_scan_mono && now >= w->pg_retry_mono) {
        w->outbox_scan_mono = now + FINISH_OUTBOX_SCAN_MS;
        finish_outbox_scan(w);
    }
}
