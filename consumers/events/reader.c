#include "reader.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define READER_RETRY_MS 500 /* a held message is decoded again after this */

struct gq_reader {
    rd_kafka_t *rk;
    int partitions;
    bool follow;
    int at_eof;   /**< partitions that reached the end seen at open */
    bool *eof;    /**< per partition */
    int64_t *lo;  /**< low watermark at open */
    int64_t *end; /**< high watermark at open */
    /** A message whose writer's schema could not be fetched: decoded again next time. */
    rd_kafka_message_t *held;
    char traceparent[GQ_TRACEPARENT_LEN + 1]; /**< the last event's ("": none) */
};

/* Errors that mean "not there yet": a topic being created, a leader being elected. */
static bool reader_not_yet(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: return true;
    default: return false;
    }
}

/* One look at the topic: its partitions, each with a leader, and their watermarks. GQ_OK,
 * GQ_ERR_TRANSIENT (not yet; why says what is missing) or another status (errstr). */
static gq_status_t reader_look(gq_reader_t *r, const char *topic, char *why, size_t why_size,
                               char *errstr, size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        rkt ? rd_kafka_metadata(r->rk, 0, rkt, &md, 5000) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (e) {
        gq_errf(why, why_size, "metadata: %s", rd_kafka_err2str(e));
        if (reader_not_yet(e))
            return GQ_ERR_TRANSIENT;
        gq_errf(errstr, errstr_size, "metadata for %s: %s", topic, rd_kafka_err2str(e));
        return gq_kafka_status(e);
    }
    const struct rd_kafka_metadata_topic *mt = NULL;
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0)
            mt = &md->topics[i];
    gq_status_t st = GQ_OK;
    if (!mt || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || mt->partition_cnt == 0) {
        gq_errf(why, why_size, "it does not exist");
        st = GQ_ERR_TRANSIENT;
    } else if (mt->err) {
        gq_errf(why, why_size, "%s", rd_kafka_err2str(mt->err));
        st = reader_not_yet(mt->err) ? GQ_ERR_TRANSIENT : gq_kafka_status(mt->err);
        if (st != GQ_ERR_TRANSIENT)
            gq_errf(errstr, errstr_size, "topic %s: %s", topic, rd_kafka_err2str(mt->err));
    } else {
        for (int i = 0; i < mt->partition_cnt && st == GQ_OK; i++)
            if (mt->partitions[i].leader < 0 || mt->partitions[i].err) {
                gq_errf(why, why_size, "partition %d has no leader yet", (int)mt->partitions[i].id);
                st = GQ_ERR_TRANSIENT;
            }
        if (st == GQ_OK && mt->partition_cnt != r->partitions) {
            free(r->lo);
            free(r->end);
            free(r->eof);
            r->partitions = mt->partition_cnt;
            r->lo = calloc((size_t)r->partitions, sizeof(*r->lo));
            r->end = calloc((size_t)r->partitions, sizeof(*r->end));
            r->eof = calloc((size_t)r->partitions, sizeof(*r->eof));
            if (!r->lo || !r->end || !r->eof) {
                gq_errf(errstr, errstr_size, "out of memory");
                st = GQ_ERR_NOMEM;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    for (int p = 0; st == GQ_OK && p < r->partitions; p++) {
        e = rd_kafka_query_watermark_offsets(r->rk, topic, p, &r->lo[p], &r->end[p], 5000);
        if (!e)
            continue;
        gq_errf(why, why_size, "the offsets of partition %d: %s", p, rd_kafka_err2str(e));
        st = reader_not_yet(e) ? GQ_ERR_TRANSIENT : gq_kafka_status(e);
        if (st != GQ_ERR_TRANSIENT)
            gq_errf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic, p,
                    rd_kafka_err2str(e));
    }
    return st;
}

/* Waits until the topic exists and every partition has a leader (reader_look answers). */
static gq_status_t reader_wait(gq_reader_t *r, const gq_reader_opts_t *o, char *errstr,
                               size_t errstr_size) {
    int64_t wait_ms = o->wait_ms ? o->wait_ms : GQ_READER_WAIT_MS;
    int64_t t0 = gq_mono_ms(), next_note = t0;
    char why[256] = "";
    for (;;) {
        gq_status_t st = reader_look(r, o->topic, why, sizeof(why), errstr, errstr_size);
        if (st != GQ_ERR_TRANSIENT)
            return st;
        int64_t now = gq_mono_ms();
        if (now >= next_note) {
            /* Once, then every minute: whoever waits knows what for. */
            if (wait_ms > 0)
                gq_info("waiting up to %lld s for topic %s: %s", (long long)(wait_ms / 1000),
                        o->topic, why);
            else
                gq_info("waiting for topic %s: %s", o->topic, why);
            next_note = now + 60000;
        }
        for (int i = 0; i < 5; i++) {
            if (o->stop && *o->stop) {
                gq_errf(errstr, errstr_size, "stopped waiting for topic %s (%s)", o->topic, why);
                return GQ_ERR;
            }
            if (wait_ms > 0 && gq_mono_ms() - t0 >= wait_ms) {
                gq_errf(errstr, errstr_size, "topic %s: %s (waited %lld s)", o->topic, why,
                        (long long)((gq_mono_ms() - t0) / 1000));
                return strstr(why, "does not exist") ? GQ_ERR_NOTFOUND : GQ_ERR_TRANSIENT;
            }
            gq_sleep_ms(50);
        }
    }
}

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
        int64_t lo = r->lo[p], hi = r->end[p];
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

gq_reader_t *gq_reader_new(const gq_cfg_t *cfg, const gq_reader_opts_t *o, char *errstr,
                           size_t errstr_size) {
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
    if (!r) {
        gq_errf(errstr, errstr_size, "out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    r->follow = o->follow;
    r->rk = gq_kafka_new(RD_KAFKA_CONSUMER, conf, "consumer", errstr, errstr_size);
    if (!r->rk) {
        free(r);
        return NULL;
    }
    const char *topics[] = {o->topic};
    if (o->partitions > 0 &&
        gq_kafka_topics_ensure(r->rk, topics, 1, o->partitions, 10000, err, sizeof(err)) != GQ_OK)
        gq_warn("could not ensure topic %s: %s", o->topic, err);
    gq_status_t st = reader_wait(r, o, errstr, errstr_size);
    if (st != GQ_OK) {
        gq_reader_destroy(r);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(r->partitions);
    st = reader_positions(r, o->topic, o->from, parts, errstr, errstr_size);
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
    if (r->held)
        rd_kafka_message_destroy(r->held);
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r->eof);
    free(r->lo);
    free(r->end);
    free(r);
}

const char *gq_reader_traceparent(const gq_reader_t *r) { return r->traceparent; }

/* One reader serves either kind of event. */
typedef enum { READER_COMPLETED, READER_PROGRESS } reader_kind_t;

static gq_status_t reader_decode(reader_kind_t kind, const rd_kafka_message_t *m, void *ev,
                                 char *errstr, size_t errstr_size) {
    return kind == READER_COMPLETED
               ? gq_completed_decode(m->payload, m->len, ev, errstr, errstr_size)
               : gq_progress_decode(m->payload, m->len, ev, errstr, errstr_size);
}

static void reader_release(reader_kind_t kind, void *ev) {
    if (kind == READER_COMPLETED)
        gq_completed_release(ev);
    else
        gq_progress_release(ev);
}

static gq_status_t reader_next(gq_reader_t *r, reader_kind_t kind, int timeout_ms, void *ev,
                               char *errstr, size_t errstr_size) {
    int64_t deadline = gq_mono_ms() + timeout_ms;
    for (;;) {
        if (!r->follow && r->at_eof >= r->partitions)
            return GQ_ERR_NOTFOUND;
        int64_t left = deadline - gq_mono_ms();
        if (left < 0)
            return GQ_ERR_TIMEOUT;
        rd_kafka_message_t *m = r->held ? r->held : rd_kafka_consumer_poll(r->rk, (int)left);
        r->held = NULL;
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
        gq_status_t st = reader_decode(kind, m, ev, errstr, errstr_size);
        rd_kafka_headers_t *hdrs = NULL;
        const void *tp = NULL;
        size_t tp_len = 0;
        r->traceparent[0] = '\0';
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, "traceparent", &tp, &tp_len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            gq_traceparent_valid(tp, tp_len)) {
            memcpy(r->traceparent, tp, tp_len);
            r->traceparent[tp_len] = '\0';
        }
        if (st == GQ_ERR_TRANSIENT) {
            /* Its writer's schema is in a registry that cannot be asked now: the event is
             * kept, not skipped, and decoded again by the next call, a while later. */
            reader_release(kind, ev);
            r->held = m;
            left = deadline - gq_mono_ms();
            gq_sleep_ms(left < READER_RETRY_MS ? (left > 0 ? left : 0) : READER_RETRY_MS);
            return st;
        }
        if (st != GQ_OK) {
            size_t l = strlen(errstr);
            gq_errf(errstr + l, errstr_size - l, " (partition %d offset %lld)", (int)m->partition,
                    (long long)m->offset);
            reader_release(kind, ev);
        }
        rd_kafka_message_destroy(m);
        return st;
    }
}

gq_status_t gq_reader_next(gq_reader_t *r, int timeout_ms, gq_completed_t *ev, char *errstr,
                           size_t errstr_size) {
    return reader_next(r, READER_COMPLETED, timeout_ms, ev, errstr, errstr_size);
}

gq_status_t gq_reader_next_progress(gq_reader_t *r, int timeout_ms, gq_progress_t *ev, char *errstr,
                                    size_t errstr_size) {
    return reader_next(r, READER_PROGRESS, timeout_ms, ev, errstr, errstr_size);
}
