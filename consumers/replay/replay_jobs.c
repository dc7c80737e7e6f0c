/* genq replay jobs / offsets. */
#include "genq_producer.h"
#include "kafka.h"
#include "log.h"
#include "replay.h"
#include "timeparse.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *replay_dup(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? NULL : strdup(gq_pg_get(res, row, col));
}

/* Rebuilds the request a job row came from: the request as the worker received it (every
 * field, the inline workflow and overrides included), or, for rows recorded before genq kept
 * it, from the columns. */
static gq_status_t replay_request(const PGresult *res, int i, gq_request_t *req) {
    if (!PQgetisnull(res, i, 19)) {
        char err[512];
        const char *text = gq_pg_get(res, i, 19);
        if (gq_request_from_json(text, strlen(text), req, err, sizeof(err)) == GQ_OK) {
            req->submitted_at = gq_now_ms();
            return GQ_OK;
        }
        gq_log_job(GQ_LOG_WARN, gq_pg_get(res, i, 0),
                   "its stored request does not read back (%s); using its columns", err);
        gq_request_release(req);
    }
    gq_request_init(req);
    gq_strlcpy(req->job_id, gq_pg_get(res, i, 0), sizeof(req->job_id));
    char *s;
#define REPLAY_STR(field, col)                                                                     \
    if ((s = replay_dup(res, i, col))) {                                                           \
        free(req->field);                                                                          \
        req->field = s;                                                                            \
    }
    REPLAY_STR(workflow, 1);
    REPLAY_STR(prompt, 2);
    REPLAY_STR(negative_prompt, 3);
    REPLAY_STR(sampler, 9);
    REPLAY_STR(scheduler, 10);
    REPLAY_STR(model, 11);
    REPLAY_STR(source, 14);
#undef REPLAY_STR
    req->width = (int32_t)gq_pg_get_i64(res, i, 4, req->width);
    req->height = (int32_t)gq_pg_get_i64(res, i, 5, req->height);
    req->seed = gq_pg_get_i64(res, i, 6, req->seed);
    req->steps = (int32_t)gq_pg_get_i64(res, i, 7, req->steps);
    if (!PQgetisnull(res, i, 8))
        gq_parse_double(gq_pg_get(res, i, 8), &req->cfg);
    req->batch_size = (int32_t)gq_pg_get_i64(res, i, 12, req->batch_size);
    req->priority = (int32_t)gq_pg_get_i64(res, i, 13, req->priority);
    req->timeout_s = (int32_t)gq_pg_get_i64(res, i, 15, 0);
    req->submitted_at = gq_now_ms();
    json_t *md = json_loads(gq_pg_get(res, i, 17), 0, NULL);
    if (json_is_object(md) && json_object_size(md)) {
        req->metadata = calloc(json_object_size(md), sizeof(*req->metadata));
        const char *k;
        json_t *v;
        json_object_foreach(md, k, v) {
            if (req->metadata && json_is_string(v)) {
                req->metadata[req->metadata_cnt].key = strdup(k);
                req->metadata[req->metadata_cnt].value = strdup(json_string_value(v));
                req->metadata_cnt++;
            }
        }
    }
    json_decref(md);
    return GQ_OK;
}

int gq_replay_jobs(const gq_cfg_t *cfg, gq_pg_t *pg) {
    char err[1024];
    bool dry = gq_cfg_bool(cfg, "dry_run"), force = gq_cfg_bool(cfg, "force");
    const char *status = gq_cfg_str(cfg, "status");
    if (strcmp(status, "failed") != 0 && strcmp(status, "succeeded") != 0) {
        gq_err("--status: failed or succeeded");
        return GQ_EXIT_USAGE;
    }
    if (strcmp(status, "succeeded") == 0 && !force) {
        gq_err("replaying succeeded jobs renders them again: add --force");
        return GQ_EXIT_USAGE;
    }
    int64_t since, until;
    if (gq_replay_time_range(cfg, &since, &until) != GQ_OK)
        return GQ_EXIT_USAGE;
    int64_t limit = gq_cfg_int(cfg, "limit");
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, status);
    gq_pg_param_str_or_null(&p, gq_cfg_str(cfg, "model"));
    gq_pg_param_str_or_null(&p, gq_cfg_str(cfg, "error_code"));
    gq_pg_param_i64(&p, since);
    gq_pg_param_i64(&p, until == INT64_MAX ? (int64_t)4102444800000 : until);
    gq_pg_param_i64(&p, limit > 0 ? limit : 1000000);
    PGresult *res = NULL;
    if (gq_pg_exec(pg,
                   "SELECT job_id, workflow, prompt, negative_prompt, width, height, seed, steps, "
                   "cfg, sampler, scheduler, model, batch_size, priority, source, timeout_s, "
                   "attempts, metadata::text, max_attempts, request::text FROM genq.jobs "
                   "WHERE status = $1 "
                   "AND ($2::text IS NULL OR model = $2) "
                   "AND ($3::text IS NULL OR error_code = $3) "
                   "AND finished_at >= to_timestamp($4::double precision / 1000) "
                   "AND finished_at <= to_timestamp($5::double precision / 1000) "
                   "ORDER BY finished_at LIMIT $6",
                   &p, &res, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        return GQ_EXIT_UNAVAILABLE;
    }
    gq_producer_conf_t pc = {.brokers = gq_cfg_str(cfg, "brokers"),
                             .topic = gq_cfg_str(cfg, "requests_topic"),
                             .lanes = gq_cfg_str(cfg, "lanes"),
                             .kafka_props = (const char *const *)cfg->kafka,
                             .kafka_props_cnt = cfg->kafka_cnt};
    gq_producer_t *prod = dry ? NULL : gq_producer_new(&pc, err, sizeof(err));
    if (!dry && !prod) {
        gq_err("%s", err);
        PQclear(res);
        return GQ_EXIT_UNAVAILABLE;
    }
    size_t sent = 0, failed = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        gq_request_t req;
        replay_request(res, i, &req);
        bool reset = false;
        int32_t attempts = 0;
        if (gq_replay_reset_job(pg, req.job_id, force, dry, &reset, &attempts, NULL, err,
                                sizeof(err)) != GQ_OK) {
            gq_log_job(GQ_LOG_ERROR, req.job_id, "%s", err);
            failed++;
        } else if (reset) {
            int32_t allowance = (int32_t)gq_pg_get_i64(res, i, 18, gq_cfg_int(cfg, "max_attempts"));
            req.max_attempts = attempts + allowance > 100 ? 100 : attempts + allowance;
            printf("%s job %s (%s, %s)\n", dry ? "would replay" : "replay", req.job_id,
                   req.model ? req.model : "-", req.workflow);
            if (!dry && gq_producer_send(prod, &req, err, sizeof(err)) != GQ_OK) {
                gq_log_job(GQ_LOG_ERROR, req.job_id, "%s (its row is queued: replay it again)",
                           err);
                failed++;
            } else {
                sent++;
            }
        }
        gq_request_release(&req);
    }
    PQclear(res);
    size_t undelivered = 0;
    if (prod && gq_producer_flush(prod, 30000, &undelivered, err, sizeof(err)) != GQ_OK)
        failed += undelivered ? undelivered : 1;
    gq_producer_destroy(prod);
    gq_info("%zu job(s) %s, %zu failed", sent, dry ? "would be replayed" : "replayed", failed);
    return failed ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}

int gq_replay_offsets(const gq_cfg_t *cfg, gq_pg_t *pg) {
    char err[1024];
    const char *topic = gq_cfg_str(cfg, "requests_topic"), *group = gq_cfg_str(cfg, "group");
    bool dry = gq_cfg_bool(cfg, "dry_run");
    if (gq_cfg_isset(cfg, "to_offset") == gq_cfg_isset(cfg, "to_time")) {
        gq_err("give exactly one of --to-offset and --to-time");
        return GQ_EXIT_USAGE;
    }
    int64_t when = 0;
    if (gq_cfg_isset(cfg, "to_time") &&
        gq_time_parse(gq_cfg_str(cfg, "to_time"), gq_now_ms(), &when) != GQ_OK) {
        gq_err("--to-time \"%.64s\": expected " GQ_REPLAY_TIME_FORMS, gq_cfg_str(cfg, "to_time"));
        return GQ_EXIT_USAGE;
    }
    rd_kafka_conf_t *conf = gq_kafka_conf_new(cfg, "genq-replay", err, sizeof(err));
    if (!conf || gq_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        return GQ_EXIT_USAGE;
    }
    gq_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    int parts = 0;
    if (!rk || gq_kafka_partition_count(rk, topic, 10000, &parts, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        if (rk)
            rd_kafka_destroy(rk);
        return GQ_EXIT_UNAVAILABLE;
    }
    /* Committing for a group whose members are alive would be overwritten: refuse. */
    const struct rd_kafka_group_list *gl = NULL;
    if (rd_kafka_list_groups(rk, group, &gl, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        int members = gl->group_cnt > 0 ? gl->groups[0].member_cnt : 0;
        rd_kafka_group_list_destroy(gl);
        if (members > 0) {
            gq_err("group %s has %d active member(s): stop the workers first", group, members);
            rd_kafka_destroy(rk);
            return GQ_EXIT_FAILURE;
        }
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    int only = gq_cfg_isset(cfg, "partition") ? (int)gq_cfg_int(cfg, "partition") : -1;
    for (int p = 0; p < parts; p++)
        if (only < 0 || only == p)
            rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                gq_cfg_isset(cfg, "to_offset") ? gq_cfg_int(cfg, "to_offset") : when;
    if (gq_cfg_isset(cfg, "to_time") && rd_kafka_offsets_for_times(rk, l, 10000)) {
        gq_err("offsets for time failed");
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
        return GQ_EXIT_UNAVAILABLE;
    }
    int failed = 0;
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        int64_t lo = 0, hi = 0;
        rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &lo, &hi, 10000);
        if (tp->offset < 0 || tp->offset > hi)
            tp->offset = hi;
        if (tp->offset < lo)
            tp->offset = lo;
        printf("%s [%d] -> %lld (log %lld..%lld)\n", topic, (int)tp->partition,
               (long long)tp->offset, (long long)lo, (long long)hi);
        if (dry)
            continue;
        /* PostgreSQL first: workers start from there on assignment. */
        gq_pg_params_t p;
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, group);
        gq_pg_param_str(&p, topic);
        gq_pg_param_i64(&p, tp->partition);
        gq_pg_param_i64(&p, tp->offset);
        if (gq_pg_exec(pg,
                       "INSERT INTO genq.consumer_offsets (consumer_group, topic, kafka_partition, "
                       "next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT (consumer_group, topic, "
                       "kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
                       "updated_at = now()",
                       &p, NULL, err, sizeof(err)) != GQ_OK) {
            gq_err("%s", err);
            failed++;
        }
    }
    if (!dry && !failed) {
        rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
        if (e) {
            gq_err("committing to Kafka: %s", rd_kafka_err2str(e));
            failed++;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return failed ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}
