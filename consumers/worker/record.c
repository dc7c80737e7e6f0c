/* The terminal record and its outbox (see record.h). */
#include "record.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_OUTBOX_SCAN_MS 5000
#define RECORD_FLUSH_MS 10000 /* at exit: how long to wait for Kafka's acknowledgements */
/* A producer that acknowledges nothing for this long while events wait is replaced (see
 * record_watch). Longer than librdkafka's topic.metadata.propagation.max.ms (30 s), so the
 * messages to a topic that does not exist fail (and are counted, then parked) first. The
 * limit doubles each time up to the max, so a long broker outage costs a new client every
 * two minutes; an acknowledgement resets it. */
#define RECORD_STUCK_MS 45000
#define RECORD_STUCK_MAX_MS 120000
#define RECORD_PURGE_MS 2000 /* how long a replaced producer gets to hand back its messages */

/* A record sent and not answered yet: what to publish once it is committed. */
typedef struct record_pending {
    struct record_pending *next;
    uint64_t tag;
    char job_id[37];
    bool reject;
    gq_buf_t event;   /* the encoded completion event */
    const void *dead; /* the message's bytes (the job keeps them until answered) */
    size_t dead_len;
    gq_kv_t dead_headers[10];
    size_t dead_headers_cnt;
    gq_kv_t ev_headers[2]; /* content-type, and the request's traceparent */
    size_t ev_headers_cnt;
    char traceparent[GQ_TRACEPARENT_LEN + 1];
    char bufs[4][24];
    char dead_reason[32], error_code[32], error_message[512];
    bool counted_dead;
    /* for the metrics and the log line */
    char model[128];
    bool has_ev, cancelled;
    gq_job_status_t status;
    int32_t attempt;
    int64_t queue_ms, render_ms, total_ms;
    size_t outputs;
} record_pending_t;

typedef struct record_sent {
    struct record_sent *prev, *next;
    int64_t id;   /* the outbox row */
    int64_t mono; /* when it was handed over */
} record_sent_t;

static void record_sent_unlink(gq_record_t *r, record_sent_t *e);

struct gq_record {
    const gq_cfg_t *cfg;
    const char *worker_id;
    gq_recorder_t *rec;
    gq_metrics_t *metrics;
    rd_kafka_t *producer;
    rd_kafka_queue_t *queue;
    int io[2];
    const char *completed_topic, *dlq_topic;
    gq_framing_t framing;    /* of completion events */
    int32_t event_schema_id; /* their Schema Registry id, with the Confluent framing */
    record_pending_t *pending;
    /* Rows Kafka acknowledged, to delete from genq.outbox; `flight` is the batch sent. */
    int64_t *done, *flight;
    size_t done_cnt, done_cap, flight_cnt;
    int64_t scan_mono;
    bool scanned_mine; /* rows left by our previous process were taken */
    int64_t retry_ms;  /* a row not acknowledged is published again after this */
    int max_attempts;  /* ... and parked after this many failures */
    /* Rows that failed to publish, with why, to count in genq.outbox. */
    int64_t failed_ids[256];
    char *failed_err[256];
    size_t failed_cnt;
    gq_record_uri_fn event_uri; /* completion events' output URIs (presigned), or NULL */
    void *event_uri_ctx;
    /* Messages handed to the producer and not reported yet, oldest first (each message's
     * opaque is its entry), for the watch on a stuck producer (record_watch). */
    record_sent_t *sent_head, *sent_tail;
    int64_t stuck_ms; /* the current limit */
    unsigned restarts;
};

void gq_record_set_event_uri(gq_record_t *r, gq_record_uri_fn fn, void *ctx) {
    r->event_uri = fn;
    r->event_uri_ctx = ctx;
}

/* Encodes the event with each output's URI as event_uri makes it. */
static gq_status_t record_encode_event(gq_record_t *r, const gq_completed_t *ev, gq_buf_t *out,
                                       char *errstr, size_t errstr_size) {
    if (!r->event_uri || ev->outputs_cnt == 0)
        return gq_completed_encode(ev, out, errstr, errstr_size);
    enum { URI_MAX = 4096 };
    gq_completed_t copy = *ev;
    gq_output_t *outs = calloc(ev->outputs_cnt, sizeof(*outs));
    char *uris = calloc(ev->outputs_cnt, URI_MAX);
    gq_status_t st = GQ_OK;
    if (!outs || !uris) {
        gq_errf(errstr, errstr_size, "out of memory");
        st = GQ_ERR_NOMEM;
    }
    for (size_t i = 0; st == GQ_OK && i < ev->outputs_cnt; i++) {
        outs[i] = ev->outputs[i];
        outs[i].uri = uris + i * URI_MAX;
        st = r->event_uri(r->event_uri_ctx, ev->outputs[i].uri ? ev->outputs[i].uri : "",
                          outs[i].uri, URI_MAX, errstr, errstr_size);
    }
    if (st == GQ_OK) {
        copy.outputs = outs;
        st = gq_completed_encode(&copy, out, errstr, errstr_size);
    }
    free(outs);
    free(uris);
    return st;
}

/* A row could not be published: counted and kept, published again after retry_ms. */
static void record_failed(gq_record_t *r, int64_t id, const char *why) {
    if (r->failed_cnt == GQ_ARRAY_LEN(r->failed_ids))
        return; /* counted next time it fails; it is published again regardless */
    r->failed_ids[r->failed_cnt] = id;
    r->failed_err[r->failed_cnt] = strdup(why ? why : "?");
    r->failed_cnt++;
}

/* Kafka acknowledged an outbox message: its row can go. */
static void record_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    gq_record_t *r = opaque;
    record_sent_t *e = m->_private;
    int64_t id = e->id;
    record_sent_unlink(r, e);
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        return; /* a replaced producer's: the row stays ours, its successor publishes it */
    if (!m->err)
        r->stuck_ms = RECORD_STUCK_MS;
    if (m->err) {
        gq_warn("outbox message %lld to %s not delivered: %s (published again later)",
                (long long)id, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        record_failed(r, id, rd_kafka_err2str(m->err));
        return;
    }
    if (r->done_cnt == r->done_cap) {
        size_t cap = r->done_cap ? r->done_cap * 2 : 64;
        int64_t *p = realloc(r->done, cap * sizeof(*p));
        if (!p)
            return; /* the row stays; it is published again later: a repeat, not a loss */
        r->done = p;
        r->done_cap = cap;
    }
    r->done[r->done_cnt++] = id;
}

static void record_sent_unlink(gq_record_t *r, record_sent_t *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        r->sent_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        r->sent_tail = e->prev;
    free(e);
}

static void record_publish(gq_record_t *r, int64_t id, const char *topic, const char *key,
                           const void *payload, size_t len, const gq_kv_t *headers,
                           size_t headers_cnt) {
    record_sent_t *sent = calloc(1, sizeof(*sent));
    if (!sent) {
        record_failed(r, id, "out of memory");
        return;
    }
    sent->id = id;
    sent->mono = gq_mono_ms();
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(headers_cnt + 1);
    for (size_t i = 0; i < headers_cnt; i++)
        rd_kafka_header_add(hdrs, headers[i].key, -1, headers[i].value, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        r->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (e) {
        free(sent);
        rd_kafka_headers_destroy(hdrs);
        gq_warn("publishing outbox message %lld: %s (published again later)", (long long)id,
                rd_kafka_err2str(e));
        record_failed(r, id, rd_kafka_err2str(e));
        return;
    }
    sent->prev = r->sent_tail;
    if (r->sent_tail)
        r->sent_tail->next = sent;
    else
        r->sent_head = sent;
    r->sent_tail = sent;
}

/* After a producer is destroyed: what it never reported (librdkafka reports nothing for
 * messages still queued at its destruction) stays in the outbox. */
static void record_sent_clear(gq_record_t *r) {
    while (r->sent_head)
        record_sent_unlink(r, r->sent_head);
}

/* The framing of completion events; Confluent's needs their schema id (cached by the
 * worker's start, which asked the registry). */
static gq_status_t record_framing(gq_record_t *r, char *errstr, size_t errstr_size) {
    const char *f = gq_cfg_str(r->cfg, "completed_framing");
    r->event_schema_id = -1;
    if (gq_framing_parse(f, &r->framing) != GQ_OK) {
        gq_errf(errstr, errstr_size,
                "completed_framing \"%s\": expected single-object or confluent", f ? f : "");
        return GQ_ERR_INVALID;
    }
    if (r->framing == GQ_FRAMING_SINGLE_OBJECT)
        return GQ_OK;
    char subject[512];
    snprintf(subject, sizeof(subject), "%s-value", r->completed_topic);
    return gq_schema_registry_id(true, subject, &r->event_schema_id, errstr, errstr_size);
}

/* The producer of outbox rows, its reports served through r->io. */
static gq_status_t record_producer_new(gq_record_t *r, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = gq_kafka_conf_new(r->cfg, r->worker_id, errstr, errstr_size);
    if (!conf)
        return GQ_ERR_INVALID;
    if (gq_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) != GQ_OK ||
        /* Events are a few a second per worker and a service waits on each: sent at once,
         * without a linger that costs every one of them a millisecond and a wake-up. */
        gq_kafka_conf_set(conf, "linger.ms", "0", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, r->cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, record_dr_cb);
    rd_kafka_conf_set_opaque(conf, r);
    r->producer = gq_kafka_new(RD_KAFKA_PRODUCER, conf, "producer", errstr, errstr_size);
    if (!r->producer)
        return GQ_ERR_INVALID;
    r->queue = rd_kafka_queue_get_main(r->producer);
    rd_kafka_queue_io_event_enable(r->queue, r->io[1], "1", 1);
    return GQ_OK;
}

gq_record_t *gq_record_new(const gq_cfg_t *cfg, const char *worker_id, gq_recorder_t *rec,
                           gq_metrics_t *metrics, char *errstr, size_t errstr_size) {
    gq_record_t *r = calloc(1, sizeof(*r));
    if (!r) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    r->worker_id = worker_id;
    r->rec = rec;
    r->metrics = metrics;
    r->retry_ms = gq_cfg_int(cfg, "outbox_retry") * 1000;
    r->max_attempts = (int)gq_cfg_int(cfg, "outbox_max_attempts");
    r->completed_topic = gq_cfg_str(cfg, "completed_topic");
    r->dlq_topic = gq_cfg_str(cfg, "dlq_topic");
    r->io[0] = r->io[1] = -1;
    r->stuck_ms = RECORD_STUCK_MS;
    if (record_framing(r, errstr, errstr_size) != GQ_OK) {
        free(r);
        return NULL;
    }
    if (pipe2(r->io, O_NONBLOCK | O_CLOEXEC) != 0) {
        gq_errf(errstr, errstr_size, "pipe: %s", strerror(errno));
        free(r);
        return NULL;
    }
    if (record_producer_new(r, errstr, errstr_size) != GQ_OK)
        goto fail;
    return r;
fail:
    gq_record_destroy(r);
    return NULL;
}

static void record_pending_free(record_pending_t *p) {
    gq_buf_release(&p->event);
    free(p);
}

void gq_record_destroy(gq_record_t *r) {
    if (!r)
        return;
    if (r->producer) {
        if (rd_kafka_flush(r->producer, RECORD_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            gq_warn("%d message(s) not delivered at exit; they stay in the outbox",
                    rd_kafka_outq_len(r->producer));
        char err[512];
        if (r->done_cnt &&
            gq_recorder_outbox_done(r->rec, r->done, r->done_cnt, err, sizeof(err)) != GQ_OK)
            gq_debug("%s (they are published again later)", err);
        rd_kafka_queue_destroy(r->queue);
        rd_kafka_destroy(r->producer);
        record_sent_clear(r);
    }
    while (r->pending) {
        record_pending_t *p = r->pending;
        r->pending = p->next;
        record_pending_free(p);
    }
    if (r->io[0] >= 0)
        close(r->io[0]);
    if (r->io[1] >= 0)
        close(r->io[1]);
    for (size_t i = 0; i < r->failed_cnt; i++)
        free(r->failed_err[i]);
    free(r->done);
    free(r->flight);
    free(r);
}

/* The original bytes, with headers saying why, where from and after how many attempts. */
static void record_dead_headers(gq_record_t *r, const gq_record_job_t *job, record_pending_t *p) {
    snprintf(p->bufs[0], sizeof(p->bufs[0]), "%d", (int)job->ref.partition);
    snprintf(p->bufs[1], sizeof(p->bufs[1]), "%lld", (long long)job->ref.offset);
    snprintf(p->bufs[2], sizeof(p->bufs[2]), "%d", (int)job->attempt);
    gq_strlcpy(p->dead_reason, job->dead_reason ? job->dead_reason : "", sizeof(p->dead_reason));
    gq_strlcpy(p->error_code, job->error_code ? job->error_code : "", sizeof(p->error_code));
    gq_strlcpy(p->error_message,
               job->error_message && *job->error_message ? job->error_message : p->dead_reason,
               sizeof(p->error_message));
    const gq_kv_t all[] = {
        {"genq-reason", p->dead_reason},       {"genq-error", p->error_message},
        {"genq-error-code", p->error_code},    {"genq-source-topic", (char *)job->ref.topic},
        {"genq-source-partition", p->bufs[0]}, {"genq-source-offset", p->bufs[1]},
        {"genq-attempts", p->bufs[2]},         {"genq-worker", (char *)r->worker_id},
    };
    memcpy(p->dead_headers, all, sizeof(all));
    p->dead_headers_cnt = GQ_ARRAY_LEN(all);
    if (job->dead_cut && job->dead_cut < job->payload_len) {
        snprintf(p->bufs[3], sizeof(p->bufs[3]), "%zu", job->payload_len);
        p->dead_headers[p->dead_headers_cnt++] = (gq_kv_t){"genq-truncated", "true"};
        p->dead_headers[p->dead_headers_cnt++] = (gq_kv_t){"genq-original-bytes", p->bufs[3]};
    }
}

gq_status_t gq_record_send(gq_record_t *r, const gq_record_job_t *job, uint64_t tag, char *errstr,
                           size_t errstr_size) {
    record_pending_t *p = calloc(1, sizeof(*p));
    if (!p) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    p->tag = tag;
    gq_strlcpy(p->job_id, job->job_id ? job->job_id : "", sizeof(p->job_id));
    p->reject = job->ev == NULL;
    gq_buf_init(&p->event, 16u << 20);
    gq_status_t st = GQ_OK;
    if (job->ev) {
        /* No record without its event: an event that cannot be encoded stops it here. */
        st = record_encode_event(r, job->ev, &p->event, errstr, errstr_size);
        if (st == GQ_OK)
            st = gq_schema_reframe(&p->event, 0, r->framing, r->event_schema_id);
        if (st != GQ_OK) {
            record_pending_free(p);
            return GQ_ERR_INVALID;
        }
        const gq_completed_t *ev = job->ev;
        p->has_ev = true;
        p->status = ev->status;
        p->attempt = ev->attempt;
        p->queue_ms = ev->queue_ms;
        p->render_ms = ev->render_ms;
        p->total_ms = ev->total_ms;
        p->outputs = ev->outputs_cnt;
        p->cancelled = job->cancelled;
        gq_strlcpy(p->model, ev->model ? ev->model : "", sizeof(p->model));
    }
    if (job->dead_letter) {
        record_dead_headers(r, job, p);
        p->dead = job->payload;
        p->dead_len =
            job->dead_cut && job->dead_cut < job->payload_len ? job->dead_cut : job->payload_len;
    }
    p->ev_headers[0] = (gq_kv_t){"content-type", "application/vnd.genq.completed+avro"};
    p->ev_headers_cnt = 1;
    if (job->traceparent && gq_traceparent_valid(job->traceparent, strlen(job->traceparent))) {
        gq_strlcpy(p->traceparent, job->traceparent, sizeof(p->traceparent));
        p->ev_headers[p->ev_headers_cnt++] = (gq_kv_t){"traceparent", p->traceparent};
    }
    gq_outbox_msg_t event = {r->completed_topic, p->event.data, p->event.len, p->ev_headers,
                             p->ev_headers_cnt};
    gq_outbox_msg_t dead = {r->dlq_topic, job->dead_letter ? p->dead : NULL, p->dead_len,
                            p->dead_headers, p->dead_headers_cnt};
    if (job->dead_letter && !p->dead)
        dead.payload = ""; /* an empty message is still a dead letter */
    if (p->reject) {
        gq_rec_reject_t a = {job->ref,     job->job_id,      job->dead_reason, job->error_message,
                             job->payload, job->payload_len, r->worker_id,     dead};
        st = gq_recorder_reject_send(r->rec, &a, tag, errstr, errstr_size);
    } else {
        gq_rec_finish_t a = {
            job->req,       job->ev,        job->ref,           r->worker_id,   event,
            dead,           job->lane,      job->sched_wait_ms, job->cache_key, job->cache_source,
            p->traceparent, job->cancelled, job->no_attempt};
        st = gq_recorder_finish_send(r->rec, &a, tag, errstr, errstr_size);
    }
    if (st != GQ_OK) {
        record_pending_free(p);
        return st;
    }
    p->next = r->pending;
    r->pending = p;
    return GQ_OK;
}

gq_status_t gq_record_answer(gq_record_t *r, const gq_pgq_done_t *d, bool *already, char *errstr,
                             size_t errstr_size) {
    *already = false;
    record_pending_t **pp = &r->pending;
    while (*pp && (*pp)->tag != d->tag)
        pp = &(*pp)->next;
    record_pending_t *p = *pp;
    if (!p) {
        gq_errf(errstr, errstr_size, "an answer to a record nobody sent (tag %llu)",
                (unsigned long long)d->tag);
        return GQ_ERR;
    }
    *pp = p->next;
    gq_status_t st = d->status;
    int64_t ev_id = -1, dead_id = -1;
    if (st != GQ_OK) {
        gq_strlcpy(errstr, d->errstr, errstr_size);
    } else if (p->reject) {
        gq_rec_rejected_t out;
        st = gq_recorder_reject_result(d->res, &out, errstr, errstr_size);
        dead_id = out.dead_id;
    } else {
        gq_rec_finished_t out;
        st = gq_recorder_finish_result(d->res, &out, errstr, errstr_size);
        *already = out.already;
        ev_id = out.event_id;
        dead_id = out.dead_id;
    }
    if (st == GQ_OK) {
        const char *key = p->job_id[0] ? p->job_id : NULL;
        if (ev_id >= 0)
            record_publish(r, ev_id, r->completed_topic, key, p->event.data, p->event.len,
                           p->ev_headers, p->ev_headers_cnt);
        if (dead_id >= 0) {
            record_publish(r, dead_id, r->dlq_topic, key, p->dead ? p->dead : "", p->dead_len,
                           p->dead_headers, p->dead_headers_cnt);
            gq_metrics_dead_letter(r->metrics, p->dead_reason);
        }
        if (p->has_ev && !*already) {
            if (p->cancelled)
                gq_metrics_job_cancelled(r->metrics, p->model[0] ? p->model : NULL);
            else
                gq_metrics_job_done(r->metrics, p->model[0] ? p->model : NULL,
                                    p->status == GQ_JOB_SUCCEEDED, p->queue_ms / 1000.0,
                                    p->render_ms / 1000.0, p->total_ms / 1000.0);
            gq_log_job(GQ_LOG_INFO, p->job_id,
                       "%s: attempt %d, queue %lld ms, render %lld ms, total %lld ms, %zu "
                       "output(s)%s%.32s",
                       p->cancelled ? "CANCELLED" : gq_job_status_name(p->status), (int)p->attempt,
                       (long long)p->queue_ms, (long long)p->render_ms, (long long)p->total_ms,
                       p->outputs, p->traceparent[0] ? ", trace " : "",
                       p->traceparent[0] ? p->traceparent + 3 : "");
        } else if (p->has_ev) {
            gq_log_job(GQ_LOG_INFO, p->job_id, "already recorded; offset moved");
        }
    }
    record_pending_free(p);
    return st;
}

void gq_record_outbox_answer(gq_record_t *r, const gq_pgq_done_t *d) {
    if (d->status != GQ_OK) {
        gq_debug("deleting published outbox rows: %s (will retry)", d->errstr);
        /* Back to the list: deleted with the next batch. */
        for (size_t i = 0; i < r->flight_cnt; i++) {
            if (r->done_cnt == r->done_cap) {
                size_t cap = r->done_cap ? r->done_cap * 2 : 64;
                int64_t *p = realloc(r->done, cap * sizeof(*p));
                if (!p)
                    break;
                r->done = p;
                r->done_cap = cap;
            }
            r->done[r->done_cnt++] = r->flight[i];
        }
    }
    free(r->flight);
    r->flight = NULL;
    r->flight_cnt = 0;
}

/* Publishes outbox rows nobody is publishing (left by a crashed process). */
static void record_scan(gq_record_t *r) {
    gq_outbox_row_t *rows = NULL;
    size_t cnt = 0;
    char err[1024];
    gq_outbox_stats_t os;
    if (gq_recorder_outbox_stats(r->rec, &os, err, sizeof(err)) == GQ_OK)
        gq_metrics_outbox(r->metrics, os.pending, os.parked, os.oldest_s);
    if (gq_recorder_outbox_claim(r->rec, r->worker_id, r->retry_ms, !r->scanned_mine, 256, &rows,
                                 &cnt, err, sizeof(err)) != GQ_OK) {
        gq_debug("%s", err);
        return;
    }
    r->scanned_mine = true;
    if (cnt)
        gq_info("publishing %zu message(s) left in the outbox", cnt);
    for (size_t i = 0; i < cnt; i++)
        record_publish(r, rows[i].id, rows[i].topic, rows[i].key, rows[i].payload, rows[i].len,
                       rows[i].headers, rows[i].headers_cnt);
    gq_outbox_rows_free(rows, cnt);
}

/* Replaces a producer that acknowledges nothing. librdkafka can leave a client stuck after a
 * broker restart (issue 5430, unfixed from 2.12.1 to 2.15.0: a partition given no leader by
 * an incremental metadata update is never looked up again), holding our events until we
 * exit. A new client looks everything up afresh. Its predecessor's messages are purged
 * (their reports are not failures) and the rows claimed under our name are published again
 * by the next scan: a repeat for any the old one did deliver, never a loss. */
static void record_restart(gq_record_t *r, int64_t now) {
    rd_kafka_t *old = r->producer;
    rd_kafka_queue_t *oldq = r->queue;
    int waiting = rd_kafka_outq_len(old);
    char err[512];
    if (record_producer_new(r, err, sizeof(err)) != GQ_OK) {
        gq_warn("replacing the Kafka producer: %s", err);
        r->producer = old;
        r->queue = oldq;
        r->sent_head->mono = now; /* look again after another stuck_ms */
        return;
    }
    r->restarts++;
    gq_warn("Kafka has not acknowledged a message in %lld s (%d waiting): a new producer "
            "publishes them again",
            (long long)(now - r->sent_head->mono) / 1000, waiting);
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(old, RECORD_PURGE_MS);
    rd_kafka_queue_destroy(oldq);
    rd_kafka_destroy(old);
    record_sent_clear(r);
    r->stuck_ms = r->stuck_ms * 2 > RECORD_STUCK_MAX_MS ? RECORD_STUCK_MAX_MS : r->stuck_ms * 2;
    r->scanned_mine = false; /* the scan takes our own rows again */
    r->scan_mono = now;
}

/* A message waiting longer than stuck_ms means a stuck producer: see record_restart. Its
 * age, not a lack of acknowledgements, is the test, because a client can be stuck on one
 * partition while the others flow. */
static void record_watch(gq_record_t *r, int64_t now) {
    if (r->sent_head && now - r->sent_head->mono >= r->stuck_ms)
        record_restart(r, now);
}

void gq_record_service(gq_record_t *r, int64_t now_mono) {
    char drain[64];
    while (read(r->io[0], drain, sizeof(drain)) > 0) {
    }
    rd_kafka_poll(r->producer, 0);
    record_watch(r, now_mono);
    bool db = gq_pgq_connected(gq_recorder_pgq(r->rec));
    if (r->done_cnt && !r->flight && db) {
        /* One statement per batch; the next batch waits for its answer. */
        r->flight = r->done;
        r->flight_cnt = r->done_cnt;
        r->done = NULL;
        r->done_cnt = r->done_cap = 0;
        char err[512];
        if (gq_recorder_outbox_done_send(r->rec, r->flight, r->flight_cnt, 0, err, sizeof(err)) !=
            GQ_OK) {
            gq_pgq_done_t fake = {.status = GQ_ERR};
            gq_strlcpy(fake.errstr, err, sizeof(fake.errstr));
            gq_record_outbox_answer(r, &fake);
        }
    }
    if (r->failed_cnt && db) {
        char err[512];
        if (gq_recorder_outbox_failed_send(r->rec, r->failed_ids,
                                           (const char *const *)r->failed_err, r->failed_cnt,
                                           r->max_attempts, 0, err, sizeof(err)) != GQ_OK)
            gq_warn("counting failed outbox messages: %s", err);
        for (size_t i = 0; i < r->failed_cnt; i++)
            free(r->failed_err[i]);
        r->failed_cnt = 0;
    }
    if (now_mono >= r->scan_mono && db) {
        r->scan_mono = now_mono + RECORD_OUTBOX_SCAN_MS;
        record_scan(r);
    }
}

int gq_record_fd(const gq_record_t *r) { return r->io[0]; }

unsigned gq_record_restarts(const gq_record_t *r) { return r->restarts; }

int64_t gq_record_wake(const gq_record_t *r) {
    /* Without a database there is nothing to do until it is back (its own wake says when). */
    int64_t watch = r->sent_head ? r->sent_head->mono + r->stuck_ms : INT64_MAX;
    if (!gq_pgq_connected(gq_recorder_pgq(r->rec)))
        return watch;
    if ((r->done_cnt && !r->flight) || r->failed_cnt)
        return 0;
    return r->scan_mono < watch ? r->scan_mono : watch;
}
