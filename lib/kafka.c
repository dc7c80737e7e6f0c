#include "kafka.h"
#include "log.h"
#include "util.h"

#include <string.h>
#include <unistd.h>

void gq_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    gq_log_level_t l = level <= 3   ? GQ_LOG_ERROR
                       : level == 4 ? GQ_LOG_WARN
                       : level <= 6 ? GQ_LOG_INFO
                                    : GQ_LOG_DEBUG;
    gq_log(l, "kafka %s: %s", fac, buf);
}

gq_status_t gq_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                              char *errstr, size_t errstr_size) {
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        gq_errf(errstr, errstr_size, "kafka property %s: %s", key, why);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

gq_status_t gq_kafka_conf_apply_user(rd_kafka_conf_t *conf, const gq_cfg_t *cfg, char *errstr,
                                     size_t errstr_size) {
    for (size_t i = 0; i < cfg->kafka_cnt; i++) {
        char kv[1024];
        if (gq_strlcpy(kv, cfg->kafka[i], sizeof(kv)) != GQ_OK) {
            gq_errf(errstr, errstr_size, "-X property too long");
            return GQ_ERR_INVALID;
        }
        char *eq = strchr(kv, '=');
        if (!eq) {
            gq_errf(errstr, errstr_size, "-X %s: expected key=value", kv);
            return GQ_ERR_INVALID;
        }
        *eq = '\0';
        if (gq_kafka_conf_set(conf, kv, eq + 1, errstr, errstr_size) != GQ_OK) {
            size_t len = strlen(errstr);
            gq_errf(errstr + len, errstr_size - len, " (from -X or a GENQ_KAFKA_* variable)");
            return GQ_ERR_INVALID;
        }
    }
    return GQ_OK;
}

rd_kafka_conf_t *gq_kafka_conf_new(const gq_cfg_t *cfg, const char *client_id, char *errstr,
                                   size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, gq_kafka_log_cb);
    const char *brokers = gq_cfg_str(cfg, "brokers");
    if (gq_kafka_conf_set(conf, "bootstrap.servers", brokers ? brokers : "", errstr, errstr_size) !=
            GQ_OK ||
        gq_kafka_conf_set(conf, "client.id", client_id, errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_t *gq_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                         char *errstr, size_t errstr_size) {
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        gq_errf(errstr, errstr_size, "kafka %s: %s", what, why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

gq_status_t gq_kafka_status(rd_kafka_resp_err_t err) {
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return GQ_OK;
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION: return GQ_ERR_TRANSIENT;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return GQ_ERR_NOTFOUND;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return GQ_ERR_TOOBIG;
    default: return GQ_ERR;
    }
}

static gq_status_t kafka_partition_count_once(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                              int *cnt, char *errstr, size_t errstr_size) {
    gq_errf(errstr, errstr_size, "%s", "");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        gq_errf(errstr, errstr_size, "metadata for %s: %s", topic, rd_kafka_err2str(err));
        return gq_kafka_status(err);
    }
    gq_status_t st = GQ_ERR_NOTFOUND;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0)
            continue;
        if (md->topics[i].err) {
            gq_errf(errstr, errstr_size, "topic %s: %s", topic,
                    rd_kafka_err2str(md->topics[i].err));
            st = gq_kafka_status(md->topics[i].err);
        } else {
            *cnt = md->topics[i].partition_cnt;
            st = GQ_OK;
        }
    }
    if (st == GQ_ERR_NOTFOUND && !errstr[0])
        gq_errf(errstr, errstr_size, "topic %s does not exist", topic);
    rd_kafka_metadata_destroy(md);
    return st;
}

/* A topic just created takes a moment to appear in metadata: look again until timeout. */
gq_status_t gq_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *cnt,
                                     char *errstr, size_t errstr_size) {
    int64_t deadline = gq_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - gq_mono_ms();
        gq_status_t st = kafka_partition_count_once(rk, topic, left > 0 ? (int)left : 1, cnt,
                                                    errstr, errstr_size);
        if ((st != GQ_ERR_NOTFOUND && st != GQ_ERR_TRANSIENT) || gq_mono_ms() + 200 > deadline)
            return st;
        gq_sleep_ms(200);
    }
}

static gq_status_t kafka_topics_create(rd_kafka_t *rk, const char *const *topics, size_t cnt,
                                       int partitions, bool compact, int timeout_ms, char *errstr,
                                       size_t errstr_size) {
    rd_kafka_NewTopic_t *nt[16];
    if (cnt > GQ_ARRAY_LEN(nt))
        return GQ_ERR_INVALID;
    char why[256];
    for (size_t i = 0; i < cnt; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, -1, why, sizeof(why));
        if (nt[i] && compact &&
            rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact") !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_NewTopic_destroy(nt[i]);
            nt[i] = NULL;
            gq_strlcpy(why, "cannot set cleanup.policy", sizeof(why));
        }
        if (!nt[i]) {
            gq_errf(errstr, errstr_size, "topic %s: %s", topics[i], why);
            for (size_t j = 0; j < i; j++)
                rd_kafka_NewTopic_destroy(nt[j]);
            return GQ_ERR_INVALID;
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, why, sizeof(why));
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, why, sizeof(why));
    rd_kafka_CreateTopics(rk, nt, cnt, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    gq_status_t st = GQ_OK;
    if (!ev) {
        gq_errf(errstr, errstr_size, "creating topics timed out");
        st = GQ_ERR_TIMEOUT;
    } else if (rd_kafka_event_error(ev)) {
        gq_errf(errstr, errstr_size, "creating topics: %s", rd_kafka_event_error_string(ev));
        st = gq_kafka_status(rd_kafka_event_error(ev));
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                gq_info("created %stopic %s with %d partition(s)", compact ? "compacted " : "",
                        rd_kafka_topic_result_name(tr[i]), partitions);
            } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                gq_errf(errstr, errstr_size, "topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                        rd_kafka_topic_result_error_string(tr[i]));
                st = gq_kafka_status(e);
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < cnt; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    return st;
}

gq_status_t gq_kafka_topics_ensure(rd_kafka_t *rk, const char *const *topics, size_t cnt,
                                   int partitions, int timeout_ms, char *errstr,
                                   size_t errstr_size) {
    return kafka_topics_create(rk, topics, cnt, partitions, false, timeout_ms, errstr, errstr_size);
}

gq_status_t gq_kafka_topic_ensure_compacted(rd_kafka_t *rk, const char *topic, int partitions,
                                            int timeout_ms, char *errstr, size_t errstr_size) {
    const char *topics[] = {topic};
    return kafka_topics_create(rk, topics, 1, partitions, true, timeout_ms, errstr, errstr_size);
}
