/* genq replay: dead letters and failed jobs back into the requests topic; offsets moved. */
#include "genq_producer.h"
#include "kafka.h"
#include "lanes.h"
#include "log.h"
#include "replay.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gq_status_t gq_replay_reset_job(gq_pg_t *pg, const char *job_id, bool force, bool dry_run,
                                bool *reset, int32_t *attempts, char *status_out, char *errstr,
                                size_t errstr_size) {
    *reset = false;
    *attempts = 0;
    if (status_out)
        status_out[0] = '\0';
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, job_id);
    PGresult *res = NULL;
    gq_status_t st =
        gq_pg_exec(pg, "SELECT status, attempts FROM genq.jobs WHERE job_id = $1::uuid", &p, &res,
                   errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        *reset = true; /* never recorded: publishing it is all it takes */
        return GQ_OK;
    }
    char status[16];
    gq_strlcpy(status, gq_pg_get(res, 0, 0), sizeof(status));
    *attempts = (int32_t)gq_pg_get_i64(res, 0, 1, 0);
    PQclear(res);
    if (status_out)
        gq_strlcpy(status_out, status, 16);
    /* With force, a queued job too: an earlier replay whose message was not delivered. */
    if (strcmp(status, "failed") != 0 &&
        !(force && (strcmp(status, "succeeded") == 0 || strcmp(status, "queued") == 0)))
        return GQ_OK;
    *reset = true;
    if (dry_run)
        return GQ_OK;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, job_id);
    return gq_pg_exec(pg,
                      "UPDATE genq.jobs SET status = 'queued', finished_at = NULL, "
                      "error_code = NULL, error = NULL, error_retryable = NULL, "
                      "comfy_prompt_id = NULL, updated_at = now() "
                      "WHERE job_id = $1::uuid AND status IN ('failed', 'succeeded')",
                      &p, NULL, errstr, errstr_size);
}

/* ---- dlq ---- */

static const char *replay_header(const rd_kafka_message_t *m, const char *name, char *buf,
                                 size_t size) {
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len) || !v)
        return buf;
    if (len >= size)
        len = size - 1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

/* One partition of the dead-letter topic: read from its start to the end it had when the
 * replay began (what is written after that is for the next replay). */
typedef struct replay_part {
    int64_t lo, end;
    bool done;
} replay_part_t;

typedef struct replay_reader {
    rd_kafka_t *rk;
    int parts;
    replay_part_t *p;
    int left; /* partitions not read to their end yet */
} replay_reader_t;

static void replay_reader_close(replay_reader_t *r) {
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r->p);
    memset(r, 0, sizeof(*r));
}

/* Opens the topic from the start of every partition; GQ_ERR_INVALID for a configuration
 * librdkafka refuses, else the class of the Kafka error. */
static gq_status_t replay_reader_open(replay_reader_t *r, const gq_cfg_t *cfg, const char *topic,
                                      char *err, size_t errsz) {
    memset(r, 0, sizeof(*r));
    rd_kafka_conf_t *conf = gq_kafka_conf_new(cfg, "genq-replay", err, errsz);
    if (!conf)
        return GQ_ERR_INVALID;
    /* No group: nothing is committed, the workers' group is never touched. */
    if (gq_kafka_conf_set(conf, "group.id", "genq-replay-unused", err, errsz) != GQ_OK ||
        gq_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsz) != GQ_OK ||
        gq_kafka_conf_set(conf, "enable.partition.eof", "true", err, errsz) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, cfg, err, errsz) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    r->rk = gq_kafka_new(RD_KAFKA_CONSUMER, conf, "consumer", err, errsz);
    if (!r->rk)
        return GQ_ERR_INVALID;
    gq_status_t st = gq_kafka_partition_count(r->rk, topic, 10000, &r->parts, err, errsz);
    if (st != GQ_OK)
        return st;
    r->p = calloc(r->parts > 0 ? (size_t)r->parts : 1, sizeof(*r->p));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->parts);
    if (!r->p || !l) {
        rd_kafka_topic_partition_list_destroy(l);
        gq_errf(err, errsz, "out of memory");
        return GQ_ERR_NOMEM;
    }
    for (int i = 0; i < r->parts && st == GQ_OK; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(r->rk, topic, i, &r->p[i].lo, &r->p[i].end, 10000);
        if (e) {
            gq_errf(err, errsz, "the offsets of %s [%d]: %s", topic, i, rd_kafka_err2str(e));
            st = gq_kafka_status(e);
            break;
        }
        /* A partition whose records all went (retention) or that never had one is read. */
        r->p[i].done = r->p[i].lo >= r->p[i].end;
        if (!r->p[i].done) {
            r->left++;
            rd_kafka_topic_partition_list_add(l, topic, i)->offset = r->p[i].lo;
        }
    }
    if (st == GQ_OK && l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, l);
        if (e) {
            gq_errf(err, errsz, "assign: %s", rd_kafka_err2str(e));
            st = gq_kafka_status(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return st;
}

static void replay_part_done(replay_reader_t *r, int32_t p) {
    if (p >= 0 && p < r->parts && !r->p[p].done) {
        r->p[p].done = true;
        r->left--;
    }
}

/* Delivery reports of the re-published messages. */
typedef struct replay_dr {
    size_t delivered, failed;
} replay_dr_t;

static void replay_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    replay_dr_t *d = opaque;
    if (!m->err) {
        d->delivered++;
        return;
    }
    d->failed++;
    char key[37] = "";
    if (m->key && m->key_len == 36) {
        memcpy(key, m->key, 36);
        if (!gq_uuid_valid(key))
            key[0] = '\0';
    }
    if (key[0])
        gq_log_job(GQ_LOG_ERROR, key,
                   "not delivered to %s: %s (the job is queued now: replay it again with --force)",
                   rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    else
        gq_err("a dead letter not delivered to %s: %s", rd_kafka_topic_name(m->rkt),
               rd_kafka_err2str(m->err));
}

static rd_kafka_t *replay_producer(const gq_cfg_t *cfg, replay_dr_t *dr, char *err, size_t errsz) {
    rd_kafka_conf_t *pc = gq_kafka_conf_new(cfg, "genq-replay", err, errsz);
    if (!pc)
        return NULL;
    if (gq_kafka_conf_set(pc, "enable.idempotence", "true", err, errsz) != GQ_OK ||
        gq_kafka_conf_apply_user(pc, cfg, err, errsz) != GQ_OK) {
        rd_kafka_conf_destroy(pc);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, replay_dr_cb);
    rd_kafka_conf_set_opaque(pc, dr);
    return gq_kafka_new(RD_KAFKA_PRODUCER, pc, "producer", err, errsz);
}

/* The checkpoint a dead letter's job used as recorded, else as its request asked (NULL: none
 * known). Returns a copy in buf. */
static const char *replay_model_of(gq_pg_t *pg, const char *job_id, const gq_request_t *req,
                                   bool decoded, char *buf, size_t size) {
    buf[0] = '\0';
    if (job_id[0]) {
        gq_pg_params_t p;
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, job_id);
        PGresult *res = NULL;
        char err[256];
        if (gq_pg_exec(pg, "SELECT model FROM genq.jobs WHERE job_id = $1::uuid", &p, &res, err,
                       sizeof(err)) == GQ_OK &&
            PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
            gq_strlcpy(buf, gq_pg_get(res, 0, 0), size);
        PQclear(res);
    }
    if (!buf[0] && decoded && req->model)
        gq_strlcpy(buf, req->model, size);
    return buf[0] ? buf : NULL;
}

/* Publishes one message, waiting while librdkafka's queue is full. */
static rd_kafka_resp_err_t replay_send(rd_kafka_t *prod, const char *topic, const void *key,
                                       size_t key_len, const void *value, size_t len) {
    for (;;) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key_len),
                              RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return e;
        rd_kafka_poll(prod, 100);
    }
}

typedef struct replay_dlq {
    const gq_cfg_t *cfg;
    gq_pg_t *pg;
    const char *dlq, *reason, *model;
    bool dry, force, undecodable;
    int64_t since, until, limit;
    gq_lanes_t lanes;
    rd_kafka_t *prod;
    size_t seen, sent, skipped, failed;
} replay_dlq_t;

/* Looks at one dead letter: replays it, or says why not (one line on stdout either way). */
static void replay_letter(replay_dlq_t *d, const rd_kafka_message_t *m) {
    char err[1024], why[64], src[256], cut[16], job[37] = "", modelbuf[256];
    d->seen++;
    replay_header(m, "genq-reason", why, sizeof(why));
    replay_header(m, "genq-source-topic", src, sizeof(src));
    replay_header(m, "genq-truncated", cut, sizeof(cut));
    if (m->key && m->key_len == 36) {
        memcpy(job, m->key, 36);
        if (!gq_uuid_valid(job))
            job[0] = '\0';
    }
    const char *to = src[0] ? src : gq_cfg_str(d->cfg, "requests_topic");
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    const char *skip = NULL;
    char skipbuf[400];
    if (d->reason && strcmp(d->reason, why) != 0)
        skip = "other reason";
    else if (ts >= 0 && (ts < d->since || ts > d->until))
        skip = "outside the time range";
    else if (strcmp(why, "decode_error") == 0 && !d->undecodable)
        skip = "undecodable (use --include-undecodable)";
    else if (strcmp(cut, "true") == 0)
        skip = "a truncated copy of an oversized message: the original is not here";
    else if (gq_lanes_find(&d->lanes, to) < 0) {
        snprintf(skipbuf, sizeof(skipbuf),
                 "its source topic \"%.120s\" is not a requests topic here (--requests-topic, "
                 "--lanes)",
                 to);
        skip = skipbuf;
    }
    gq_request_t req;
    memset(&req, 0, sizeof(req)); /* released below whether or not it was decoded */
    bool decoded = false;
    if (!skip) {
        decoded = gq_request_decode(m->payload, m->len, &req, err, sizeof(err)) == GQ_OK;
    }
    if (!skip && d->model) {
        const char *mo = replay_model_of(d->pg, job, &req, decoded, modelbuf, sizeof(modelbuf));
        if (!mo || strcmp(mo, d->model) != 0) {
            snprintf(skipbuf, sizeof(skipbuf), "model %.200s, not %.120s", mo ? mo : "unknown",
                     d->model);
            skip = skipbuf;
        }
    }
    gq_buf_t out;
    gq_buf_init(&out, 16u << 20);
    const void *value = m->payload;
    size_t len = m->len;
    if (!skip && job[0]) {
        bool reset = false;
        int32_t attempts = 0;
        char status[16];
        if (gq_replay_reset_job(d->pg, job, d->force, d->dry, &reset, &attempts, status, err,
                                sizeof(err)) != GQ_OK) {
            gq_log_job(GQ_LOG_ERROR, job, "%s", err);
            skip = "database error";
            d->failed++;
        } else if (!reset) {
            skip = strcmp(status, "succeeded") == 0
                       ? "already succeeded (use --force)"
                       : "the job is queued or running (a retry or an earlier replay is under "
                         "way; --force replays a queued one)";
        } else if (decoded) {
            /* Past attempts stay counted: give the replay a fresh allowance on top. */
            int32_t allowance = req.max_attempts > 0 ? req.max_attempts
                                                     : (int32_t)gq_cfg_int(d->cfg, "max_attempts");
            req.max_attempts = attempts + allowance > 100 ? 100 : attempts + allowance;
            if (gq_request_encode(&req, &out, err, sizeof(err)) == GQ_OK) {
                value = out.data;
                len = out.len;
            }
        }
    }
    gq_request_release(&req);
    const char *shown = job[0] ? job : "-";
    if (skip) {
        d->skipped++;
        printf("skip    %s [%d] @%lld key %s: %s\n", d->dlq, (int)m->partition,
               (long long)m->offset, shown, skip);
    } else {
        printf("%s %s [%d] @%lld key %s (%s) -> %s\n", d->dry ? "would   " : "replay  ", d->dlq,
               (int)m->partition, (long long)m->offset, shown, why[0] ? why : "-", to);
        rd_kafka_resp_err_t e = d->dry ? RD_KAFKA_RESP_ERR_NO_ERROR
                                       : replay_send(d->prod, to, m->key, m->key_len, value, len);
        if (e) {
            if (job[0])
                gq_log_job(GQ_LOG_ERROR, job, "cannot publish to %s: %s", to, rd_kafka_err2str(e));
            else
                gq_err("cannot publish a dead letter to %s: %s", to, rd_kafka_err2str(e));
            d->failed++;
        } else {
            d->sent++;
        }
    }
    gq_buf_release(&out);
}

int gq_replay_dlq(const gq_cfg_t *cfg, gq_pg_t *pg) {
    char err[1024];
    replay_dlq_t d = {.cfg = cfg,
                      .pg = pg,
                      .dlq = gq_cfg_str(cfg, "dlq_topic"),
                      .reason = gq_cfg_str(cfg, "reason"),
                      .model = gq_cfg_str(cfg, "model"),
                      .dry = gq_cfg_bool(cfg, "dry_run"),
                      .force = gq_cfg_bool(cfg, "force"),
                      .undecodable = gq_cfg_bool(cfg, "include_undecodable"),
                      .limit = gq_cfg_int(cfg, "limit")};
    if (gq_replay_time_range(cfg, &d.since, &d.until) != GQ_OK)
        return GQ_EXIT_USAGE;
    if (gq_lanes_init(&d.lanes, gq_cfg_str(cfg, "lanes"), gq_cfg_str(cfg, "requests_topic"), err,
                      sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        return GQ_EXIT_CONFIG;
    }
    replay_dr_t dr = {0};
    if (!d.dry && !(d.prod = replay_producer(cfg, &dr, err, sizeof(err)))) {
        gq_err("%s", err);
        return GQ_EXIT_CONFIG;
    }
    replay_reader_t r;
    gq_status_t st = replay_reader_open(&r, cfg, d.dlq, err, sizeof(err));
    if (st != GQ_OK) {
        gq_err("%s", err);
        replay_reader_close(&r);
        if (d.prod)
            rd_kafka_destroy(d.prod);
        return st == GQ_ERR_INVALID ? GQ_EXIT_CONFIG : GQ_EXIT_UNAVAILABLE;
    }
    /* Read until every partition is at the end it had at start. No message for idle_timeout
     * while some are not there means Kafka stopped answering: say so, fail. */
    int64_t idle_ms = gq_cfg_int(cfg, "idle_timeout") * 1000, last = gq_mono_ms();
    bool limited = false, stalled = false;
    while (r.left > 0 && !limited) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.rk, 200);
        if (d.prod)
            rd_kafka_poll(d.prod, 0);
        if (!m) {
            if (gq_mono_ms() - last > idle_ms) {
                stalled = true;
                break;
            }
            continue;
        }
        last = gq_mono_ms();
        int32_t p = m->partition;
        bool ours = p >= 0 && p < r.parts;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Past the last record, control records (a transaction's commit) included. */
            if (ours && m->offset >= r.p[p].end)
                replay_part_done(&r, p);
        } else if (m->err) {
            gq_warn("reading %s: %s", d.dlq, rd_kafka_message_errstr(m));
        } else if (ours && m->offset >= r.p[p].end) {
            replay_part_done(&r, p); /* written after the replay began */
        } else if (ours) {
            replay_letter(&d, m);
            if (m->offset + 1 >= r.p[p].end)
                replay_part_done(&r, p);
            limited = d.limit > 0 && (int64_t)d.sent >= d.limit;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    if (stalled) {
        char where[256] = "";
        size_t n = 0;
        for (int p = 0; p < r.parts && n + 16 < sizeof(where); p++)
            if (!r.p[p].done)
                n += (size_t)snprintf(where + n, sizeof(where) - n, "%s[%d]", n ? ", " : "", p);
        gq_err("nothing read from %s for %lld s with partition(s) %s not read to their end; "
               "stopped (raise --idle-timeout for a slow broker)",
               d.dlq, (long long)(idle_ms / 1000), where);
        d.failed++;
    }
    if (limited)
        gq_info("stopped at --limit %lld", (long long)d.limit);
    if (d.prod) {
        rd_kafka_resp_err_t e = rd_kafka_flush(d.prod, 30000);
        int left = rd_kafka_outq_len(d.prod);
        if (e || left > 0) {
            gq_err("%d message(s) still not delivered after 30 s: %s", left, rd_kafka_err2str(e));
            d.failed += left > 0 ? (size_t)left : 1;
        }
        d.failed += dr.failed;
        rd_kafka_destroy(d.prod);
    }
    gq_info("%zu dead letter(s) read, %zu %s, %zu skipped, %zu failed", d.seen,
            d.dry ? d.sent : dr.delivered, d.dry ? "would be replayed" : "replayed", d.skipped,
            d.failed);
    replay_reader_close(&r);
    return d.failed ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}
