/* Progress events of the jobs a worker holds (see progress_pub.h). */
#include "progress_pub.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGPUB_MESSAGE_TIMEOUT "10000" /* ms: a progress event later than this is worthless */
/* Events are batched for half the interval, up to this long. A request per event (about
 * four for a zero-time job) cost the broker 2 to 4 ms of CPU per job, more than the job's
 * whole record; and each batch wakes the producer's broker thread three times (the first
 * event, the linger, the answer), which on 1 s renders was a third of the worker's CPU above
 * its idle rate with a 20 ms linger, one batch per event. A job's events come in clusters
 * (its start, its first step, the interval's step, the next node, its end) about 100 ms
 * apart; 250 ms joins them. A viewer refreshed every interval sees them as late as before. */
#define PROGPUB_LINGER_MAX_MS 250
#define PROGPUB_LINGER_MIN_MS 5
#define PROGPUB_FLUSH_MS 500 /* at exit: what is still queued is worth this much waiting */

struct gq_progpub {
    const gq_cfg_t *cfg;
    const char *topic;
    rd_kafka_t *producer; /* its own: completion events keep a producer without linger */
    rd_kafka_topic_t *rkt;
    int64_t failing_since; /* gq_mono_ms of the first failed delivery since a success */
    unsigned restarts;     /* producers replaced */
    const char *worker_id;
    int interval_ms;
    gq_framing_t framing;
    int32_t schema_id;
    gq_buf_t buf;
    uint64_t sent, dropped;
    bool warned;
};

int gq_progpub_linger_ms(int interval_ms) {
    int linger = interval_ms / 2;
    return linger > PROGPUB_LINGER_MAX_MS   ? PROGPUB_LINGER_MAX_MS
           : linger < PROGPUB_LINGER_MIN_MS ? PROGPUB_LINGER_MIN_MS
                                            : linger;
}

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
    /* The counters move only with WebSocket frames, and the next one publishes them once the
     * interval is over: a timer of its own would wake the loop just before the frame (a step
     * every 100 ms). It bounds how stale they get when no frame follows. */
    *at = m->last_mono + 2 * (int64_t)interval_ms;
    return GQ_PROGPUB_LATER;
}

/* A failed delivery starts this clock; a success stops it. When it runs this long, the
 * producer is replaced: librdkafka can leave a client stuck after a broker restart (issue
 * 5430, see record.c), and progress would stop for good. */
#define PROGPUB_STUCK_MS 30000

static void progpub_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    gq_progpub_t *p = opaque;
    if (!m->err)
        p->failing_since = 0;
    else if (!p->failing_since && m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
             m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        p->failing_since = gq_mono_ms();
}

/* The producer for progress only, batched and best effort, and its topic handle. The rest
 * is librdkafka's defaults and the user's -X, as for every client. */
static gq_status_t progpub_producer_new(gq_progpub_t *p, char *errstr, size_t errstr_size) {
    char client_id[256];
    snprintf(client_id, sizeof(client_id), "%s-progress", p->worker_id);
    rd_kafka_conf_t *conf = gq_kafka_conf_new(p->cfg, client_id, errstr, errstr_size);
    if (!conf)
        return GQ_ERR_INVALID;
    char linger_s[16];
    snprintf(linger_s, sizeof(linger_s), "%d", gq_progpub_linger_ms(p->interval_ms));
    if (gq_kafka_conf_set(conf, "linger.ms", linger_s, errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, p->cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, progpub_dr_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->producer = gq_kafka_new(RD_KAFKA_PRODUCER, conf, "producer", errstr, errstr_size);
    if (!p->producer)
        return GQ_ERR_INVALID;
    char err[512];
    /* Stale progress is worthless: a message Kafka did not take in 10 s is dropped. */
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    if (rd_kafka_topic_conf_set(tc, "message.timeout.ms", PROGPUB_MESSAGE_TIMEOUT, err,
                                sizeof(err)) != RD_KAFKA_CONF_OK)
        gq_warn("progress topic: %s", err);
    p->rkt = rd_kafka_topic_new(p->producer, p->topic, tc);
    if (!p->rkt) {
        rd_kafka_topic_conf_destroy(tc);
        gq_errf(errstr, errstr_size, "kafka topic %s: %s", p->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return GQ_ERR;
    }
    return GQ_OK;
}

static void progpub_producer_destroy(gq_progpub_t *p, int flush_ms) {
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    p->rkt = NULL;
    if (p->producer) {
        rd_kafka_flush(p->producer, flush_ms);
        rd_kafka_purge(p->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->producer, 0);
        rd_kafka_destroy(p->producer);
    }
    p->producer = NULL;
}

/* See PROGPUB_STUCK_MS. Without a producer afterwards, events are dropped and counted. */
static void progpub_watch(gq_progpub_t *p, int64_t now_mono) {
    if (!p->failing_since || now_mono - p->failing_since < PROGPUB_STUCK_MS)
        return;
    gq_warn("progress events have failed for %d s: a new producer sends them",
            PROGPUB_STUCK_MS / 1000);
    progpub_producer_destroy(p, 0);
    p->failing_since = 0;
    p->restarts++;
    char err[512];
    if (progpub_producer_new(p, err, sizeof(err)) != GQ_OK) {
        gq_warn("replacing the progress producer: %s", err);
        progpub_producer_destroy(p, 0);
    }
}

gq_progpub_t *gq_progpub_new(const gq_cfg_t *cfg, const char *worker_id, gq_status_t *st,
                             char *errstr, size_t errstr_size) {
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
    p->cfg = cfg;
    p->topic = topic;
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
    *st = progpub_producer_new(p, errstr, errstr_size);
    if (*st != GQ_OK) {
        gq_progpub_destroy(p);
        return NULL;
    }
    char err[512];
    const char *topics[] = {topic};
    if (gq_kafka_topics_ensure(p->producer, topics, 1, (int)gq_cfg_int(cfg, "partitions"), 10000,
                               err, sizeof(err)) != GQ_OK)
        gq_warn("could not ensure topic %s exists: %s", topic, err);
    gq_info("progress events on %s, one per job every %d ms at most (and at each change)", topic,
            interval);
    return p;
}

void gq_progpub_destroy(gq_progpub_t *p) {
    if (!p)
        return;
    /* Progress of jobs that ended is worth little: a short wait, then the rest is gone. */
    progpub_producer_destroy(p, PROGPUB_FLUSH_MS);
    gq_buf_release(&p->buf);
    free(p);
}

uint64_t gq_progpub_sent(const gq_progpub_t *p) { return p ? p->sent : 0; }

uint64_t gq_progpub_dropped(const gq_progpub_t *p) { return p ? p->dropped : 0; }

unsigned gq_progpub_restarts(const gq_progpub_t *p) { return p ? p->restarts : 0; }

/* Encodes and hands one event to the producer (copied); never waits. */
static bool progpub_send(gq_progpub_t *p, const gq_progpub_snap_t *s, int64_t seq, int64_t now_mono,
                         int64_t now_wall) {
    progpub_watch(p, now_mono);
    if (!p->producer || rd_kafka_outq_len(p->producer) > GQ_PROGPUB_QUEUE_MAX) {
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
    rd_kafka_poll(p->producer, 0); /* serves its queue and the reports that watch it */
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
    progpub_send(p, s, mark->seq + 1, now_mono, now_wall);
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
