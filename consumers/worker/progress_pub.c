/* Progress events of the jobs a worker holds (see progress_pub.h). */
#include "progress_pub.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGPUB_MESSAGE_TIMEOUT "10000" /* ms: a progress event later than this is worthless */

struct gq_progpub {
    rd_kafka_t *producer; /* the worker's (borrowed) */
    rd_kafka_topic_t *rkt;
    const char *worker_id;
    int interval_ms;
    gq_framing_t framing;
    int32_t schema_id;
    gq_buf_t buf;
    uint64_t sent, dropped;
    bool warned;
};

static bool progpub_major(const gq_progpub_snap_t *s, const gq_progpub_mark_t *m) {
    return m->attempt != s->attempt || m->state != s->state ||
           m->queue_position != s->queue_position || strcmp(m->node, s->prog->node) != 0;
}

static bool progpub_minor(const gq_progpub_snap_t *s, const gq_progpub_mark_t *m) {
    const gq_jobprog_t *p = s->prog;
    return m->step != p->step || m->max_steps != p->max_steps || m->nodes_done != p->nodes_done ||
           m->previews != p->previews;
}

gq_progpub_when_t gq_progpub_due(const gq_progpub_snap_t *s, const gq_progpub_mark_t *m,
                                 int interval_ms, int64_t now_mono, int64_t *at) {
    *at = INT64_MAX;
    if (m->attempt == 0 || progpub_major(s, m))
        return GQ_PROGPUB_NOW;
    if (!progpub_minor(s, m))
        return GQ_PROGPUB_NOTHING;
    if (now_mono - m->last_mono >= interval_ms)
        return GQ_PROGPUB_NOW;
    *at = m->last_mono + interval_ms;
    return GQ_PROGPUB_LATER;
}

gq_progpub_t *gq_progpub_new(const gq_cfg_t *cfg, const char *worker_id, rd_kafka_t *producer,
                             gq_status_t *st, char *errstr, size_t errstr_size) {
    *st = GQ_OK;
    int interval = (int)gq_cfg_int(cfg, "progress_interval");
    if (interval <= 0)
        return NULL;
    const char *topic = gq_cfg_str(cfg, "progress_topic");
    gq_progpub_t *p = calloc(1, sizeof(*p));
    if (!p) {
        *st = GQ_ERR_NOMEM;
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->producer = producer;
    p->worker_id = worker_id;
    p->interval_ms = interval;
    p->schema_id = -1;
    gq_buf_init(&p->buf, 64u << 10);
    if (gq_framing_parse(gq_cfg_str(cfg, "completed_framing"), &p->framing) != GQ_OK)
        p->framing = GQ_FRAMING_SINGLE_OBJECT; /* record.c refuses a bad value first */
    if (p->framing == GQ_FRAMING_CONFLUENT) {
        char subject[512];
        snprintf(subject, sizeof(subject), "%s-value", topic);
        *st = gq_schema_registry_id_of(GQ_SCHEMA_PROGRESS, subject, &p->schema_id, errstr,
                                       errstr_size);
        if (*st != GQ_OK) {
            gq_progpub_destroy(p);
            return NULL;
        }
    }
    char err[512];
    const char *topics[] = {topic};
    if (gq_kafka_topics_ensure(producer, topics, 1, (int)gq_cfg_int(cfg, "partitions"), 10000, err,
                               sizeof(err)) != GQ_OK)
        gq_warn("could not ensure topic %s exists: %s", topic, err);
    /* Stale progress is worthless: a message Kafka did not take in 10 s is dropped. */
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    if (rd_kafka_topic_conf_set(tc, "message.timeout.ms", PROGPUB_MESSAGE_TIMEOUT, err,
                                sizeof(err)) != RD_KAFKA_CONF_OK)
        gq_warn("progress topic: %s", err);
    p->rkt = rd_kafka_topic_new(producer, topic, tc);
    if (!p->rkt) {
        rd_kafka_topic_conf_destroy(tc);
        *st = GQ_ERR;
        gq_errf(errstr, errstr_size, "kafka topic %s: %s", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        gq_progpub_destroy(p);
        return NULL;
    }
    gq_info("progress events on %s, one per job every %d ms at most (and at each change)", topic,
            interval);
    return p;
}

void gq_progpub_destroy(gq_progpub_t *p) {
    if (!p)
        return;
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    gq_buf_release(&p->buf);
    free(p);
}

uint64_t gq_progpub_sent(const gq_progpub_t *p) { return p ? p->sent : 0; }

uint64_t gq_progpub_dropped(const gq_progpub_t *p) { return p ? p->dropped : 0; }

/* Encodes and hands one event to the producer (copied); never waits. */
static bool progpub_send(gq_progpub_t *p, const gq_progpub_snap_t *s, int64_t seq,
                         int64_t now_wall) {
    if (rd_kafka_outq_len(p->producer) > GQ_PROGPUB_QUEUE_MAX) {
        p->dropped++;
        return false;
    }
    const gq_jobprog_t *jp = s->prog;
    gq_progress_t ev = {
        .attempt = s->attempt,
        .seq = seq,
        .at = now_wall,
        .state = s->state,
        .queue_position = s->state == GQ_PROGRESS_QUEUED ? s->queue_position : -1,
        .node = jp->node[0] ? (char *)jp->node : NULL,
        .step = jp->step,
        .max_steps = jp->max_steps,
        .nodes_done = jp->nodes_done,
        .nodes_total = jp->nodes_total,
        .previews = jp->previews,
        .worker_id = (char *)p->worker_id,
    };
    gq_strlcpy(ev.job_id, s->job_id, sizeof(ev.job_id));
    char err[256];
    gq_buf_reset(&p->buf);
    if (gq_progress_encode(&ev, &p->buf, err, sizeof(err)) != GQ_OK ||
        gq_schema_reframe(&p->buf, 0, p->framing, p->schema_id) != GQ_OK) {
        if (!p->warned)
            gq_log_job(GQ_LOG_WARN, s->job_id, "a progress event cannot be encoded: %s", err);
        p->warned = true;
        p->dropped++;
        return false;
    }
    bool tp = s->traceparent && s->traceparent[0];
    rd_kafka_resp_err_t e =
        tp ? rd_kafka_producev(
                 p->producer, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_KEY(s->job_id, strlen(s->job_id)),
                 RD_KAFKA_V_VALUE(p->buf.data, p->buf.len),
                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                 RD_KAFKA_V_HEADER("content-type", "application/vnd.genq.progress+avro", -1),
                 RD_KAFKA_V_HEADER("traceparent", s->traceparent, -1), RD_KAFKA_V_END)
           : rd_kafka_producev(
                 p->producer, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_KEY(s->job_id, strlen(s->job_id)),
                 RD_KAFKA_V_VALUE(p->buf.data, p->buf.len),
                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                 RD_KAFKA_V_HEADER("content-type", "application/vnd.genq.progress+avro", -1),
                 RD_KAFKA_V_END);
    if (e) {
        p->dropped++;
        return false;
    }
    p->sent++;
    return true;
}

int64_t gq_progpub_job(gq_progpub_t *p, const gq_progpub_snap_t *s, gq_progpub_mark_t *mark,
                       int64_t now_mono, int64_t now_wall) {
    int64_t at;
    gq_progpub_when_t when = gq_progpub_due(s, mark, p->interval_ms, now_mono, &at);
    if (when != GQ_PROGPUB_NOW)
        return at;
    if (mark->attempt != s->attempt)
        mark->seq = 0;
    /* Sent or dropped, this is the state published: the next event waits for a change or
     * the interval, so a full queue is not retried in a tight loop. */
    progpub_send(p, s, mark->seq + 1, now_wall);
    mark->seq++;
    mark->attempt = s->attempt;
    mark->last_mono = now_mono;
    mark->state = s->state;
    mark->queue_position = s->queue_position;
    gq_strlcpy(mark->node, s->prog->node, sizeof(mark->node));
    mark->step = s->prog->step;
    mark->max_steps = s->prog->max_steps;
    mark->nodes_done = s->prog->nodes_done;
    mark->previews = s->prog->previews;
    return INT64_MAX;
}
