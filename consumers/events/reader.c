#include "reader.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct gq_reader {
    rd_kafka_t *rk;
    int partitions;
    bool follow;
    int at_eof;   /**< partitions that reached the end seen at open */
    bool *eof;    /**< per partition */
    int64_t *end; /**< high watermark at open */
};

static gq_status_t reader_positions(gq_reader_t *r, const char *topic, const char *from,
                                    rd_kafka_topic_partition_list_t *parts, char *errstr,
                                    size_t errstr_size) {
    int64_t fixed = 0;
    bool at_time = from[0] == '@';
    if (strcmp(from, "beginning") != 0 && strcmp(from, "end") != 0 &&
        gq_parse_i64(at_time ? from + 1 : from, 0, INT64_MAX, &fixed) != GQ_OK) {
        gq_errf(errstr, errstr_size,
                "--from \"%s\": expected beginning, end, an offset or @<unix-ms>", from);
        return GQ_ERR_INVALID;
    }
    for (int p = 0; p < r->partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(r->rk, topic, p, &lo, &hi, 10000);
        /* A topic created a moment ago (a worker creates genq.completed at start) has no
         * leader for a while: ask again, for up to 15 s. */
        for (int tries = 0; tries < 30 && (err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                                           err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                                           err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
             tries++) {
            gq_sleep_ms(500);
            err = rd_kafka_query_watermark_offsets(r->rk, topic, p, &lo, &hi, 10000);
        }
        if (err) {
            gq_errf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic, p,
                    rd_kafka_err2str(err));
            return gq_kafka_status(err);
        }
        r->end[p] = hi;
        int64_t start = strcmp(from, "beginning") == 0 ? lo
                        : strcmp(from, "end") == 0     ? hi
                        : at_time                      ? fixed
                                                       : (fixed < lo ? lo : fixed);
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = start;
        if (!at_time && start >= hi) {
            r->eof[p] = true;
            r->at_eof++;
        }
    }
    if (at_time) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(r->rk, parts, 10000);
        if (err) {
            gq_errf(errstr, errstr_size, "offsets for time: %s", rd_kafka_err2str(err));
            return gq_kafka_status(err);
        }
        for (int p = 0; p < parts->cnt; p++) {
            if (parts->elems[p].offset < 0)
                parts->elems[p].offset = r->end[p];
            if (parts->elems[p].offset >= r->end[p]) {
                r->eof[p] = true;
                r->at_eof++;
            }
        }
    }
    return GQ_OK;
}

gq_reader_t *gq_reader_new(const gq_cfg_t *cfg, const char *topic, const char *from, int partitions,
                           bool follow, char *errstr, size_t errstr_size) {
    char err[512];
    if (gq_schema_init(errstr, errstr_size) != GQ_OK)
        return NULL;
    rd_kafka_conf_t *conf = gq_kafka_conf_new(cfg, "genq-events", errstr, errstr_size);
    if (!conf)
        return NULL;
    /* No group: readers never commit, never disturb the workers' group. */
    if (gq_kafka_conf_set(conf, "group.id", "genq-reader-unused", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    gq_reader_t *r = calloc(1, sizeof(*r));
    r->follow = follow;
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!r->rk) {
        gq_errf(errstr, errstr_size, "kafka consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        free(r);
        return NULL;
    }
    const char *topics[] = {topic};
    if (partitions > 0 &&
        gq_kafka_topics_ensure(r->rk, topics, 1, partitions, 10000, err, sizeof(err)) != GQ_OK)
        gq_warn("could not ensure topic %s: %s", topic, err);
    if (gq_kafka_partition_count(r->rk, topic, 10000, &r->partitions, errstr, errstr_size) !=
        GQ_OK) {
        gq_reader_destroy(r);
        return NULL;
    }
    r->eof = calloc((size_t)r->partitions, sizeof(*r->eof));
    r->end = calloc((size_t)r->partitions, sizeof(*r->end));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(r->partitions);
    gq_status_t st = reader_positions(r, topic, from, parts, errstr, errstr_size);
    if (st == GQ_OK) {
        rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, parts);
        if (e) {
            gq_errf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(e));
            st = GQ_ERR;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (st != GQ_OK) {
        gq_reader_destroy(r);
        return NULL;
    }
    return r;
}

void gq_reader_destroy(gq_reader_t *r) {
    if (!r)
        return;
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r->eof);
    free(r->end);
    free(r);
}

gq_status_t gq_reader_next(gq_reader_t *r, int timeout_ms, gq_completed_t *ev, char *errstr,
                           size_t errstr_size) {
    int64_t deadline = gq_mono_ms() + timeout_ms;
    for (;;) {
        if (!r->follow && r->at_eof >= r->partitions)
            return GQ_ERR_NOTFOUND;
        int64_t left = deadline - gq_mono_ms();
        if (left < 0)
            return GQ_ERR_TIMEOUT;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, (int)left);
        if (!m)
            return GQ_ERR_TIMEOUT;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < r->partitions && !r->eof[m->partition] &&
                m->offset >= r->end[m->partition]) {
                r->eof[m->partition] = true;
                r->at_eof++;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            gq_warn("events: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        gq_status_t st = gq_completed_decode(m->payload, m->len, ev, errstr, errstr_size);
        if (st != GQ_OK) {
            size_t l = strlen(errstr);
            gq_errf(errstr + l, errstr_size - l, " (partition %d offset %lld)", (int)m->partition,
                    (long long)m->offset);
            gq_completed_release(ev);
        }
        rd_kafka_message_destroy(m);
        return st;
    }
}
