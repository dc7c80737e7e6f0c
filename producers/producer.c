#include "genq_producer.h"
#include "buf.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

struct gq_producer {
    rd_kafka_t *rk;
    char *topic;
    gq_producer_dr_cb_t *on_delivery;
    void *opaque;
    size_t failed;
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
    gq_producer_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->topic = strdup(conf->topic ? conf->topic : "genq.requests");
    p->on_delivery = conf->on_delivery;
    p->opaque = conf->opaque;

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
        st = gq_kafka_conf_set(kc, "linger.ms", "5", errstr, errstr_size);
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
    if (conf->create_partitions > 0) {
        const char *topics[] = {p->topic};
        if (gq_kafka_topics_ensure(p->rk, topics, 1, conf->create_partitions, 10000, err,
                                   sizeof(err)) != GQ_OK)
            gq_warn("could not ensure topic %s: %s", p->topic, err);
    }
    return p;
}

void gq_producer_destroy(gq_producer_t *p) {
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_flush(p->rk, 10000);
        rd_kafka_destroy(p->rk);
    }
    free(p->topic);
    free(p);
}

gq_status_t gq_producer_send(gq_producer_t *p, const gq_request_t *req, char *errstr,
                             size_t errstr_size) {
    gq_status_t st = gq_request_validate(req, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_buf_t b;
    gq_buf_init(&b, 16u << 20);
    st = gq_request_encode(req, &b, errstr, errstr_size);
    if (st != GQ_OK) {
        gq_buf_release(&b);
        return st;
    }
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(req->job_id, strlen(req->job_id)),
            RD_KAFKA_V_VALUE(b.data, b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("content-type", "application/vnd.genq.request+avro", -1),
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
