#include "genq_producer.h"
#include "buf.h"
#include "kafka.h"
#include "lanes.h"
#include "log.h"
#include "util.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gq_producer {
    rd_kafka_t *rk;
    /* the topic, or each lane's, looked up once rather than by name per message */
    rd_kafka_topic_t *rkt[GQ_LANES_MAX];
    gq_lanes_t lanes;
    bool start_traces;
    char traceparent[GQ_TRACEPARENT_LEN + 1]; /* every request's, unless its own ("": none) */
    char *topic;
    gq_producer_dr_cb_t *on_delivery;
    void *opaque;
    size_t failed;
    gq_framing_t framing;
    int32_t schema_id; /* GQ_FRAMING_CONFLUENT */
    /* cancels: the topic, looked up (and created) on the first one */
    char *cancel_topic;
    rd_kafka_topic_t *cancel_rkt;
    int32_t cancel_schema_id;
    int create_partitions;
};

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    gq_producer_t *p = opaque;
    char job_id[37] = "";
    if (m->key && m->key_len < sizeof(job_id)) {
        memcpy(job_id, m->key, m->key_len);
        job_id[m->key_len] = '\0';
    }
    if (m->err) {
        p->failed++;
        gq_log_job(GQ_LOG_ERROR, job_id, "delivery failed: %s", rd_kafka_err2str(m->err));
    }
    if (p->on_delivery)
        p->on_delivery(job_id, m->err ? GQ_ERR : GQ_OK, m->err ? rd_kafka_err2str(m->err) : NULL,
                       p->opaque);
}

gq_producer_t *gq_producer_new(const gq_producer_conf_t *conf, char *errstr, size_t errstr_size) {
    char err[512];
    if (gq_schema_init(err, sizeof(err)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "schemas: %s", err);
        return NULL;
    }
    if (conf->registry && gq_schema_registry_set(conf->registry, errstr, errstr_size) != GQ_OK)
        return NULL;
    gq_producer_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->topic = strdup(conf->topic ? conf->topic : "genq.requests");
    p->cancel_topic = strdup(conf->cancel_topic ? conf->cancel_topic : "genq.cancel");
    p->cancel_schema_id = -1;
    p->create_partitions = conf->create_partitions;
    if (!p->topic || !p->cancel_topic ||
        gq_lanes_init(&p->lanes, conf->lanes, p->topic, errstr, errstr_size) != GQ_OK) {
        free(p->topic);
        free(p->cancel_topic);
        free(p);
        return NULL;
    }
    p->start_traces = conf->start_traces != 0;
    if (conf->traceparent) {
        if (!gq_traceparent_valid(conf->traceparent, strlen(conf->traceparent))) {
            gq_errf(errstr, errstr_size,
                    "traceparent \"%.64s\" is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)",
                    conf->traceparent);
            free(p->topic);
            free(p->cancel_topic);
            free(p);
            return NULL;
        }
        gq_strlcpy(p->traceparent, conf->traceparent, sizeof(p->traceparent));
    }
    p->on_delivery = conf->on_delivery;
    p->opaque = conf->opaque;
    p->framing = conf->framing;
    p->schema_id = -1;
    if (p->framing == GQ_FRAMING_CONFLUENT) {
        /* Each lane topic has its subject; a registry gives one schema one id in all. */
        for (int l = 0; l < p->lanes.n; l++) {
            char subject[512];
            int32_t id = -1;
            snprintf(subject, sizeof(subject), "%s-value", p->lanes.topic[l]);
            if (gq_schema_registry_id(false, subject, &id, errstr, errstr_size) != GQ_OK) {
                gq_producer_destroy(p);
                return NULL;
            }
            if (l == 0)
                p->schema_id = id;
        }
    } else if (p->framing != GQ_FRAMING_SINGLE_OBJECT) {
        gq_errf(errstr, errstr_size, "unknown framing %d", (int)p->framing);
        gq_producer_destroy(p);
        return NULL;
    }

    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(kc, gq_kafka_log_cb);
    rd_kafka_conf_set_dr_msg_cb(kc, producer_dr_cb);
    rd_kafka_conf_set_opaque(kc, p);
    gq_status_t st = gq_kafka_conf_set(kc, "bootstrap.servers", conf->brokers ? conf->brokers : "",
                                       errstr, errstr_size);
    /* Idempotence implies acks=all and in-order, duplicate-free retries. */
    if (st == GQ_OK)
        st = gq_kafka_conf_set(kc, "enable.idempotence", "true", errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_kafka_conf_set(kc, "acks", "all", errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_kafka_conf_set(kc, "linger.ms", conf->bulk ? GQ_PRODUCER_BULK_LINGER_MS : "5",
                               errstr, errstr_size);
    /* Bulk: fewer, fuller batches, less work per message for us and for the broker. */
    if (st == GQ_OK && conf->bulk)
        st = gq_kafka_conf_set(kc, "batch.num.messages", GQ_PRODUCER_BULK_BATCH_MESSAGES, errstr,
                               errstr_size);
    for (size_t i = 0; st == GQ_OK && i < conf->kafka_props_cnt; i++) {
        char kv[1024];
        if (gq_strlcpy(kv, conf->kafka_props[i], sizeof(kv)) != GQ_OK || !strchr(kv, '=')) {
            gq_errf(errstr, errstr_size, "bad kafka property \"%s\"", conf->kafka_props[i]);
            st = GQ_ERR_INVALID;
            break;
        }
        char *eq = strchr(kv, '=');
        *eq = '\0';
        st = gq_kafka_conf_set(kc, kv, eq + 1, errstr, errstr_size);
    }
    if (st != GQ_OK) {
        rd_kafka_conf_destroy(kc);
        gq_producer_destroy(p);
        return NULL;
    }
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!p->rk) {
        gq_errf(errstr, errstr_size, "kafka producer: %s", err);
        rd_kafka_conf_destroy(kc);
        gq_producer_destroy(p);
        return NULL;
    }
    /* kc is owned by p->rk now. */
    bool reachable = true;
    if (conf->create_partitions > 0) {
        const char *topics[GQ_LANES_MAX];
        for (int l = 0; l < p->lanes.n; l++)
            topics[l] = p->lanes.topic[l];
        if (gq_kafka_topics_ensure(p->rk, topics, (size_t)p->lanes.n, conf->create_partitions,
                                   10000, err, sizeof(err)) != GQ_OK) {
            gq_warn("could not ensure topic(s) %s: %s",
                    conf->lanes && *conf->lanes ? conf->lanes : p->topic, err);
            reachable = false;
        }
    }
    for (int l = 0; l < p->lanes.n; l++) {
        p->rkt[l] = rd_kafka_topic_new(p->rk, p->lanes.topic[l], NULL);
        if (!p->rkt[l]) {
            gq_errf(errstr, errstr_size, "kafka topic %s: %s", p->lanes.topic[l],
                    rd_kafka_err2str(rd_kafka_last_error()));
            gq_producer_destroy(p);
            return NULL;
        }
        /* Without this, librdkafka learns the topic's partitions only on its next periodic
         * scan, up to a second after the first message; waiting longer would gain nothing. */
        const struct rd_kafka_metadata *md = NULL;
        if (reachable &&
            rd_kafka_metadata(p->rk, 0, p->rkt[l], &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(md);
    }
    return p;
}

void gq_producer_destroy(gq_producer_t *p) {
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_flush(p->rk, 10000);
        for (int l = 0; l < GQ_LANES_MAX; l++)
            if (p->rkt[l])
                rd_kafka_topic_destroy(p->rkt[l]);
        if (p->cancel_rkt)
            rd_kafka_topic_destroy(p->cancel_rkt);
        rd_kafka_destroy(p->rk);
    }
    free(p->topic);
    free(p->cancel_topic);
    free(p);
}

/* Enqueues one encoded request (copied), waiting out a full local queue. */
static gq_status_t producer_produce(gq_producer_t *p, rd_kafka_topic_t *rkt, const char *job_id,
                                    const char *traceparent, const void *data, size_t len,
                                    char *errstr, size_t errstr_size);

static gq_status_t producer_enqueue(gq_producer_t *p, int32_t priority, const char *job_id,
                                    const char *traceparent, const void *data, size_t len,
                                    char *errstr, size_t errstr_size) {
    rd_kafka_topic_t *rkt = p->rkt[gq_lanes_for_priority(&p->lanes, priority)];
    char fresh[GQ_TRACEPARENT_LEN + 1];
    if (traceparent && !gq_traceparent_valid(traceparent, strlen(traceparent))) {
        gq_errf(errstr, errstr_size,
                "traceparent \"%.64s\" is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)",
                traceparent);
        return GQ_ERR_INVALID;
    }
    if (!traceparent && p->traceparent[0])
        traceparent = p->traceparent;
    else if (!traceparent && p->start_traces && gq_traceparent_new(fresh) == GQ_OK)
        traceparent = fresh;
    unsigned char small[2048], *framed = NULL;
    if (p->framing == GQ_FRAMING_CONFLUENT) {
        /* 00, the id big-endian, the datum: the single-object header (10 bytes) replaced. */
        if (len < 10) {
            gq_errf(errstr, errstr_size, "encoded request of %zu bytes", len);
            return GQ_ERR_INVALID;
        }
        framed = len - 5 <= sizeof(small) ? small : malloc(len - 5);
        if (!framed) {
            gq_errf(errstr, errstr_size, "out of memory");
            return GQ_ERR_NOMEM;
        }
        uint32_t id = (uint32_t)p->schema_id;
        framed[0] = 0;
        framed[1] = (unsigned char)(id >> 24);
        framed[2] = (unsigned char)(id >> 16);
        framed[3] = (unsigned char)(id >> 8);
        framed[4] = (unsigned char)id;
        memcpy(framed + 5, (const unsigned char *)data + 10, len - 10);
        data = framed;
        len -= 5;
    }
    gq_status_t st = producer_produce(p, rkt, job_id, traceparent, data, len, errstr, errstr_size);
    if (framed && framed != small)
        free(framed);
    return st;
}

int32_t gq_producer_schema_id(const gq_producer_t *p) { return p->schema_id; }

static gq_status_t producer_produce(gq_producer_t *p, rd_kafka_topic_t *rkt, const char *job_id,
                                    const char *traceparent, const void *data, size_t len,
                                    char *errstr, size_t errstr_size) {
    for (;;) {
        rd_kafka_resp_err_t err =
            traceparent
                ? rd_kafka_producev(
                      p->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(job_id, strlen(job_id)),
                      RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_HEADER("content-type", GQ_PRODUCER_CONTENT_TYPE, -1),
                      RD_KAFKA_V_HEADER("traceparent", traceparent, -1), RD_KAFKA_V_END)
                : rd_kafka_producev(
                      p->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(job_id, strlen(job_id)),
                      RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_HEADER("content-type", GQ_PRODUCER_CONTENT_TYPE, -1),
                      RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 100);
            continue;
        }
        if (err) {
            gq_errf(errstr, errstr_size, "produce: %s", rd_kafka_err2str(err));
            return GQ_ERR;
        }
        rd_kafka_poll(p->rk, 0);
        return GQ_OK;
    }
}

gq_status_t gq_producer_send(gq_producer_t *p, const gq_request_t *req, char *errstr,
                             size_t errstr_size) {
    return gq_producer_send_traced(p, req, NULL, errstr, errstr_size);
}

gq_status_t gq_producer_send_traced(gq_producer_t *p, const gq_request_t *req,
                                    const char *traceparent, char *errstr, size_t errstr_size) {
    gq_status_t st = gq_request_validate(req, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_buf_t b;
    gq_buf_init(&b, 16u << 20);
    st = gq_request_encode(req, &b, errstr, errstr_size);
    if (st == GQ_OK)
        st = producer_enqueue(p, req->priority, req->job_id, traceparent, b.data, b.len, errstr,
                              errstr_size);
    gq_buf_release(&b);
    return st;
}

gq_status_t gq_producer_send_prepared(gq_producer_t *p, const gq_request_prep_t *prep, char *errstr,
                                      size_t errstr_size) {
    size_t len = 0;
    const void *data = gq_request_prep_data(prep, &len);
    return producer_enqueue(p, gq_request_prep_priority(prep), gq_request_prep_job_id(prep), NULL,
                            data, len, errstr, errstr_size);
}

/* The cancel topic's handle (and, with Confluent's framing, CancelRequest's id), once. */
static gq_status_t producer_cancel_topic(gq_producer_t *p, char *errstr, size_t errstr_size) {
    if (p->cancel_rkt)
        return GQ_OK;
    if (p->framing == GQ_FRAMING_CONFLUENT && p->cancel_schema_id < 0) {
        char subject[512];
        snprintf(subject, sizeof(subject), "%s-value", p->cancel_topic);
        gq_status_t st = gq_schema_registry_id_of(GQ_SCHEMA_CANCEL, subject, &p->cancel_schema_id,
                                                  errstr, errstr_size);
        if (st != GQ_OK)
            return st;
    }
    char err[512];
    if (gq_kafka_topic_ensure_compacted(p->rk, p->cancel_topic, 1, 10000, err, sizeof(err)) !=
        GQ_OK)
        gq_warn("could not ensure cancel topic %s: %s", p->cancel_topic, err);
    p->cancel_rkt = rd_kafka_topic_new(p->rk, p->cancel_topic, NULL);
    if (!p->cancel_rkt) {
        gq_errf(errstr, errstr_size, "kafka topic %s: %s", p->cancel_topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return GQ_ERR;
    }
    return GQ_OK;
}

gq_status_t gq_producer_cancel(gq_producer_t *p, const gq_cancel_t *c, char *errstr,
                               size_t errstr_size) {
    gq_cancel_t x = *c;
    if (x.requested_at == 0)
        x.requested_at = gq_now_ms();
    gq_status_t st = gq_cancel_validate(&x, errstr, errstr_size);
    if (st == GQ_OK)
        st = producer_cancel_topic(p, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_buf_t b;
    gq_buf_init(&b, 1u << 16);
    st = gq_cancel_encode(&x, &b, errstr, errstr_size);
    if (st == GQ_OK && p->framing == GQ_FRAMING_CONFLUENT)
        st = gq_schema_reframe(&b, 0, GQ_FRAMING_CONFLUENT, p->cancel_schema_id);
    for (; st == GQ_OK;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_RKT(p->cancel_rkt), RD_KAFKA_V_KEY(x.job_id, strlen(x.job_id)),
            RD_KAFKA_V_VALUE(b.data, b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("content-type", "application/vnd.genq.cancel+avro", -1),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 100);
            continue;
        }
        if (err) {
            gq_errf(errstr, errstr_size, "produce: %s", rd_kafka_err2str(err));
            st = GQ_ERR;
        }
        break;
    }
    gq_buf_release(&b);
    rd_kafka_poll(p->rk, 0);
    return st;
}

void gq_producer_poll(gq_producer_t *p, int timeout_ms) { rd_kafka_poll(p->rk, timeout_ms); }

gq_status_t gq_producer_flush(gq_producer_t *p, int timeout_ms, size_t *failed, char *errstr,
                              size_t errstr_size) {
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    if (failed)
        *failed = p->failed;
    if (err) {
        gq_errf(errstr, errstr_size, "%d message(s) still undelivered after %d ms",
                rd_kafka_outq_len(p->rk), timeout_ms);
        return GQ_ERR_TIMEOUT;
    }
    return p->failed ? GQ_ERR : GQ_OK;
}

struct rd_kafka_s *gq_producer_handle(gq_producer_t *p) {
    return p->rk;
}
