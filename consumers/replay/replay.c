/* genq replay: dead letters and failed jobs back into the requests topic; offsets moved. */
#include "genq_producer.h"
#include "kafka.h"
#include "log.h"
#include "replay.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gq_status_t gq_replay_reset_job(gq_pg_t *pg, const char *job_id, bool force, bool dry_run,
                                bool *reset, int32_t *attempts, char *errstr, size_t errstr_size) {
    *reset = false;
    *attempts = 0;
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
    if (strcmp(status, "failed") != 0 && !(force && strcmp(status, "succeeded") == 0))
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
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len))
        return buf;
    if (len >= size)
        len = size - 1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

static rd_kafka_t *replay_reader(const gq_cfg_t *cfg, const char *topic, int *parts, int64_t **ends,
                                 char *err, size_t errsz) {
    rd_kafka_conf_t *conf = gq_kafka_conf_new(cfg, "genq-replay", err, errsz);
    if (!conf)
        return NULL;
    gq_kafka_conf_set(conf, "group.id", "genq-replay-unused", err, errsz);
    gq_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsz);
    char why[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        gq_errf(err, errsz, "%s", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (gq_kafka_partition_count(rk, topic, 10000, parts, err, errsz) != GQ_OK) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    *ends = calloc(*parts > 0 ? (size_t)*parts : 1, sizeof(**ends));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(*parts);
    for (int p = 0; p < *parts; p++) {
        int64_t lo = 0;
        rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &(*ends)[p], 10000);
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = lo;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

int gq_replay_dlq(const gq_cfg_t *cfg, gq_pg_t *pg) {
    char err[1024];
    const char *dlq = gq_cfg_str(cfg, "dlq_topic");
    const char *reason = gq_cfg_str(cfg, "reason");
    bool dry = gq_cfg_bool(cfg, "dry_run"), force = gq_cfg_bool(cfg, "force");
    bool undecodable = gq_cfg_bool(cfg, "include_undecodable");
    int64_t since, until;
    if (gq_replay_time_range(cfg, &since, &until) != GQ_OK)
        return GQ_EXIT_USAGE;
    int parts = 0;
    int64_t *ends = NULL;
    rd_kafka_t *rk = replay_reader(cfg, dlq, &parts, &ends, err, sizeof(err));
    if (!rk) {
        gq_err("%s", err);
        return GQ_EXIT_UNAVAILABLE;
    }
    rd_kafka_conf_t *pc = gq_kafka_conf_new(cfg, "genq-replay", err, sizeof(err));
    gq_kafka_conf_set(pc, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    int left = 0;
    for (int p = 0; p < parts; p++)
        left += ends[p] > 0;
    bool *done = calloc(parts > 0 ? (size_t)parts : 1, sizeof(*done));
    size_t seen = 0, sent = 0, skipped = 0, failed = 0;
    int64_t deadline = gq_mono_ms() + 60000;
    while (left > 0 && gq_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err || m->partition >= parts) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!done[m->partition] && m->offset + 1 >= ends[m->partition]) {
            done[m->partition] = true;
            left--;
        }
        seen++;
        char why[64], src[256], key[37] = "";
        replay_header(m, "genq-reason", why, sizeof(why));
        replay_header(m, "genq-source-topic", src, sizeof(src));
        if (m->key && m->key_len == 36) {
            memcpy(key, m->key, 36);
            key[36] = '\0';
        }
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        const char *skip = NULL;
        if (reason && strcmp(reason, why) != 0)
            skip = "other reason";
        else if (ts >= 0 && (ts < since || ts > until))
            skip = "outside the time range";
        else if (strcmp(why, "decode_error") == 0 && !undecodable)
            skip = "undecodable (use --include-undecodable)";
        gq_request_t req;
        memset(&req, 0, sizeof(req)); /* released below whether or not it was decoded */
        gq_buf_t out;
        gq_buf_init(&out, 16u << 20);
        const void *value = m->payload;
        size_t len = m->len;
        if (!skip && gq_uuid_valid(key)) {
            bool reset = false;
            int32_t attempts = 0;
            if (gq_replay_reset_job(pg, key, force, dry, &reset, &attempts, err, sizeof(err)) !=
                GQ_OK) {
                gq_log_job(GQ_LOG_ERROR, key, "%s", err);
                skip = "database error";
                failed++;
            } else if (!reset) {
                skip = "already succeeded (use --force)";
            } else if (gq_request_decode(m->payload, m->len, &req, err, sizeof(err)) == GQ_OK) {
                /* Past attempts stay counted: give the replay a fresh allowance on top. */
                int32_t allowance = req.max_attempts > 0 ? req.max_attempts
                                                         : (int32_t)gq_cfg_int(cfg, "max_attempts");
                req.max_attempts = attempts + allowance > 100 ? 100 : attempts + allowance;
                if (gq_request_encode(&req, &out, err, sizeof(err)) == GQ_OK) {
                    value = out.data;
                    len = out.len;
                }
            }
            gq_request_release(&req);
        }
        const char *to = src[0] ? src : gq_cfg_str(cfg, "requests_topic");
        if (skip) {
            skipped++;
            printf("skip    %s [%d] @%lld key %s: %s\n", dlq, (int)m->partition,
                   (long long)m->offset, key[0] ? key : "-", skip);
        } else {
            printf("%s %s [%d] @%lld key %s (%s) -> %s\n", dry ? "would   " : "replay  ", dlq,
                   (int)m->partition, (long long)m->offset, key[0] ? key : "-", why, to);
            if (!dry &&
                rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(to), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE((void *)value, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
                failed++;
            else
                sent++;
        }
        gq_buf_release(&out);
        rd_kafka_message_destroy(m);
    }
    if (rd_kafka_flush(prod, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        failed++;
    gq_info("%zu dead letter(s) read, %zu %s, %zu skipped, %zu failed", seen, sent,
            dry ? "would be replayed" : "replayed", skipped, failed);
    rd_kafka_destroy(prod);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(done);
    free(ends);
    return failed ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}
