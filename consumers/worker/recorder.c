/*
 * The job recorder (contract in recorder.h).
 *
 * Every write is either one statement or one transaction, and each is idempotent, so that
 * the worker can simply run it again after GQ_ERR_TRANSIENT, including after a COMMIT whose
 * outcome was lost with the connection: a finished job is recorded once (a second finish
 * only moves the offset), offsets only move forward, rejections are keyed on their message.
 *
 * Connection loss: the call that meets it returns GQ_ERR_TRANSIENT (its transaction is gone,
 * and only the caller knows whether to redo it); the next call reconnects first (PQreset,
 * bounded by connect_timeout). gq_recorder_ping alone retries once at once, since a
 * liveness probe should say whether the database is reachable now, not whether the old
 * connection was.
 *
 * A ref with offset < 0 (the worker no longer owns the partition) moves no offset.
 */
#include "recorder_int.h"
#include "buf.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define REC_MAX_REJECT_PAYLOAD (1u << 20)
#define REC_OFFSET_INVALID INT64_C(-1001)

gq_recorder_t *gq_recorder_new(const char *database_url, gq_status_t *st, char *errstr,
                               size_t errstr_size) {
    gq_status_t dummy;
    if (!st)
        st = &dummy;
    gq_pg_t *pg = gq_pg_connect(database_url, GQ_PG_CONNECT_TIMEOUT_S, st, errstr, errstr_size);
    if (!pg)
        return NULL;
    *st = gq_migrate_check(pg, errstr, errstr_size);
    if (*st != GQ_OK) {
        gq_pg_destroy(pg);
        return NULL;
    }
    gq_recorder_t *r = calloc(1, sizeof(*r));
    if (!r) {
        gq_pg_destroy(pg);
        gq_errf(errstr, errstr_size, "out of memory");
        *st = GQ_ERR_NOMEM;
        return NULL;
    }
    r->pg = pg;
    gq_debug("recorder connected to %s", gq_pg_url_redacted(pg));
    return r;
}

void gq_recorder_destroy(gq_recorder_t *r) {
    if (!r)
        return;
    gq_pg_destroy(r->pg);
    free(r);
}

gq_status_t gq_recorder_ping(gq_recorder_t *r, char *errstr, size_t errstr_size) {
    gq_status_t st = gq_pg_exec(r->pg, "SELECT 1", NULL, NULL, errstr, errstr_size);
    if (st == GQ_ERR_TRANSIENT)
        st = gq_pg_exec(r->pg, "SELECT 1", NULL, NULL, errstr, errstr_size);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Parameter helpers. Times are ms since the epoch in C and timestamptz in SQL: statements
 * convert with to_timestamp($n::double precision / 1000), and 0 ("unknown") is sent as NULL.
 */

static void rec_param_ms(gq_pg_params_t *p, int64_t ms) { gq_pg_param_i64_or_null(p, ms); }

static void rec_param_ref(gq_pg_params_t *p, const gq_msg_ref_t *ref) {
    gq_pg_param_str(p, ref ? ref->topic : NULL);
    if (ref && ref->topic)
        gq_pg_param_i64(p, ref->partition);
    else
        gq_pg_param_null(p);
    if (ref && ref->topic && ref->offset >= 0)
        gq_pg_param_i64(p, ref->offset);
    else
        gq_pg_param_null(p);
}

/* The metadata map as a JSON object text (caller frees); "{}" when empty. */
static gq_status_t rec_metadata_json(const gq_kv_t *kv, size_t cnt, char **out, char *errstr,
                                     size_t errstr_size) {
    *out = NULL;
    json_t *o = json_object();
    if (!o)
        goto nomem;
    for (size_t i = 0; i < cnt; i++) {
        if (!kv[i].key)
            continue;
        json_t *v = json_string(kv[i].value ? kv[i].value : "");
        if (!v || json_object_set_new(o, kv[i].key, v) != 0) {
            json_decref(o);
            gq_errf(errstr, errstr_size, "metadata entry \"%.64s\" is not valid UTF-8", kv[i].key);
            return GQ_ERR_INVALID;
        }
    }
    *out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (*out)
        return GQ_OK;
nomem:
    gq_errf(errstr, errstr_size, "out of memory");
    return GQ_ERR_NOMEM;
}

/* The request's columns of genq.jobs, in the order of REC_REQ_COLS (18 parameters);
 * all NULL without a request, except model, source and metadata which ev may supply. */
#define REC_REQ_COLS                                                                               \
    "max_attempts, model, workflow, prompt, negative_prompt, width, height, seed, steps, "         \
    "cfg, sampler, scheduler, batch_size, priority, source, timeout_s, metadata, "                 \
    "submitted_at"

/* attempt_begin's upsert: $1 job_id, $2 attempt, $3..$20 the request (rec_param_request),
 * $21 started_at, $22 worker_id, $23 prompt_id, $24..$26 the message (rec_param_ref).
 * A terminal row is never touched: the WHERE of DO UPDATE leaves it alone, and RETURNING
 * then yields no row. */
static const char rec_sql_begin_job[] =
    "INSERT INTO genq.jobs AS j (job_id, status, attempts, " REC_REQ_COLS ", started_at, "
    "worker_id, comfy_prompt_id, kafka_topic, kafka_partition, kafka_offset) "
    "VALUES ($1::uuid, 'running', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16, $17, $18, $19, to_timestamp($20::double precision / 1000), "
    "coalesce(to_timestamp($21::double precision / 1000), now()), $22, $23, $24, $25, $26) "
    "ON CONFLICT (job_id) DO UPDATE SET status = 'running', attempts = EXCLUDED.attempts, "
    "max_attempts = EXCLUDED.max_attempts, model = EXCLUDED.model, "
    "workflow = EXCLUDED.workflow, prompt = EXCLUDED.prompt, "
    "negative_prompt = EXCLUDED.negative_prompt, width = EXCLUDED.width, "
    "height = EXCLUDED.height, seed = EXCLUDED.seed, steps = EXCLUDED.steps, cfg = EXCLUDED.cfg, "
    "sampler = EXCLUDED.sampler, scheduler = EXCLUDED.scheduler, "
    "batch_size = EXCLUDED.batch_size, priority = EXCLUDED.priority, source = EXCLUDED.source, "
    "timeout_s = EXCLUDED.timeout_s, metadata = EXCLUDED.metadata, "
    "submitted_at = coalesce(j.submitted_at, EXCLUDED.submitted_at), "
    "started_at = EXCLUDED.started_at, worker_id = EXCLUDED.worker_id, "
    "comfy_prompt_id = EXCLUDED.comfy_prompt_id, kafka_topic = EXCLUDED.kafka_topic, "
    "kafka_partition = EXCLUDED.kafka_partition, kafka_offset = EXCLUDED.kafka_offset, "
    "updated_at = now() "
    "WHERE j.status NOT IN ('succeeded', 'failed') RETURNING 1";

/* job_finish's insert of a job never seen before: $1 job_id, $2 status, $3 attempts,
 * $4 finished_at, $5..$7 queue/render/total ms, $8 worker_id, $9..$11 the error,
 * $12..$14 the message, $15..$32 the request (or what ev carries of it). */
static const char rec_sql_finish_insert[] =
    "INSERT INTO genq.jobs (job_id, status, attempts, finished_at, queue_ms, render_ms, "
    "total_ms, worker_id, error_code, error, error_retryable, kafka_topic, kafka_partition, "
    "kafka_offset, " REC_REQ_COLS ") "
    "VALUES ($1::uuid, $2, $3, coalesce(to_timestamp($4::double precision / 1000), now()), "
    "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, "
    "$24, $25, $26, $27, $28, $29, $30, $31, to_timestamp($32::double precision / 1000)) "
    "ON CONFLICT (job_id) DO NOTHING RETURNING 1";

static void rec_param_request(gq_pg_params_t *p, const gq_request_t *req, const char *model,
                              const char *source, const char *metadata) {
    gq_pg_param_i64_or_null(p, req ? req->max_attempts : 0);
    gq_pg_param_str(p, req && req->model ? req->model : model);
    gq_pg_param_str(p, req ? req->workflow : NULL);
    gq_pg_param_str(p, req ? req->prompt : NULL);
    gq_pg_param_str(p, req ? req->negative_prompt : NULL);
    if (req) {
        gq_pg_param_i64(p, req->width);
        gq_pg_param_i64(p, req->height);
        gq_pg_param_i64(p, req->seed);
        gq_pg_param_i64(p, req->steps);
        gq_pg_param_double(p, req->cfg);
    } else {
        for (int i = 0; i < 5; i++)
            gq_pg_param_null(p);
    }
    gq_pg_param_str(p, req ? req->sampler : NULL);
    gq_pg_param_str(p, req ? req->scheduler : NULL);
    if (req) {
        gq_pg_param_i64(p, req->batch_size);
        gq_pg_param_i64(p, req->priority);
    } else {
        gq_pg_param_null(p);
        gq_pg_param_null(p);
    }
    gq_pg_param_str(p, req && req->source ? req->source : source);
    gq_pg_param_i64_or_null(p, req ? req->timeout_s : 0);
    gq_pg_param_str(p, metadata);
    rec_param_ms(p, req ? req->submitted_at : 0);
}

/* Moves (group, topic, partition) forward unless it is already further. */
static gq_status_t rec_offset_move(gq_recorder_t *r, const gq_msg_ref_t *ref, char *e,
                                   size_t e_size) {
    if (!ref || !ref->group || !ref->topic || ref->next_offset < 0 ||
        (ref->next_offset == 0 && ref->offset < 0))
        return GQ_OK;
    int64_t next = ref->next_offset > 0 ? ref->next_offset : ref->offset + 1;
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, ref->group);
    gq_pg_param_str(&p, ref->topic);
    gq_pg_param_i64(&p, ref->partition);
    gq_pg_param_i64(&p, next);
    return gq_pg_exec(r->pg,
                      "INSERT INTO genq.consumer_offsets AS o "
                      "(consumer_group, topic, kafka_partition, next_offset) "
                      "VALUES ($1, $2, $3, $4) "
                      "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET "
                      "next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), "
                      "updated_at = now()",
                      &p, NULL, e, e_size);
}

gq_status_t gq_recorder_offset_advance(gq_recorder_t *r, const gq_msg_ref_t *ref, char *errstr,
                                       size_t errstr_size) {
    char e[1024];
    gq_status_t st = rec_offset_move(r, ref, e, sizeof(e));
    if (st != GQ_OK)
        gq_errf(errstr, errstr_size, "recording offset %s [%d] @%" PRId64 ": %s", ref->topic,
                (int)ref->partition, ref->offset + 1, e);
    return st;
}

gq_status_t gq_recorder_offsets_load(gq_recorder_t *r, const char *group, const char *topic,
                                     const int32_t *partitions, int64_t *offsets, size_t cnt,
                                     char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < cnt; i++)
        offsets[i] = REC_OFFSET_INVALID;
    if (cnt == 0)
        return GQ_OK;
    /* The partition list travels as one int[] parameter, written from integers. */
    gq_buf_t arr;
    gq_buf_init(&arr, 16 * cnt + 2);
    gq_status_t st = gq_buf_appends(&arr, "{");
    for (size_t i = 0; i < cnt && st == GQ_OK; i++)
        st = gq_buf_appendf(&arr, "%s%d", i ? "," : "", (int)partitions[i]);
    if (st == GQ_OK)
        st = gq_buf_appends(&arr, "}");
    if (st != GQ_OK) {
        gq_buf_release(&arr);
        gq_errf(errstr, errstr_size, "loading offsets: %s", gq_status_name(st));
        return st;
    }
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, group);
    gq_pg_param_str(&p, topic);
    gq_pg_param_str(&p, arr.data);
    PGresult *res = NULL;
    char e[1024];
    st = gq_pg_exec(r->pg,
                    "SELECT kafka_partition, next_offset FROM genq.consumer_offsets "
                    "WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::int[])",
                    &p, &res, e, sizeof(e));
    gq_buf_release(&arr);
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "loading offsets of %s for group %s: %s", topic, group, e);
        return st;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        int64_t part = gq_pg_get_i64(res, row, 0, -1);
        int64_t off = gq_pg_get_i64(res, row, 1, REC_OFFSET_INVALID);
        for (size_t i = 0; i < cnt; i++)
            if (partitions[i] == part)
                offsets[i] = off;
    }
    PQclear(res);
    return GQ_OK;
}

gq_status_t gq_recorder_job_get(gq_recorder_t *r, const char *job_id, gq_job_row_t *out,
                                char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, job_id);
    PGresult *res = NULL;
    char e[1024];
    gq_status_t st = gq_pg_exec(r->pg,
                                "SELECT status, attempts, comfy_prompt_id, worker_id, "
                                "round(extract(epoch FROM started_at) * 1000)::bigint "
                                "FROM genq.jobs WHERE job_id = $1::uuid",
                                &p, &res, e, sizeof(e));
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "reading job %s: %s", job_id, e);
        return st;
    }
    if (PQntuples(res) == 1) {
        out->exists = true;
        gq_strlcpy(out->status, gq_pg_get(res, 0, 0), sizeof(out->status));
        out->attempts = (int32_t)gq_pg_get_i64(res, 0, 1, 0);
        gq_strlcpy(out->comfy_prompt_id, gq_pg_get(res, 0, 2), sizeof(out->comfy_prompt_id));
        gq_strlcpy(out->worker_id, gq_pg_get(res, 0, 3), sizeof(out->worker_id));
        out->started_at = gq_pg_get_i64(res, 0, 4, 0);
    }
    PQclear(res);
    return GQ_OK;
}

/* Marks every other attempt of the job still 'running' as abandoned, and upserts this one.
 * Both in one statement: the two touch different rows. */
#define REC_ABANDON_CTE                                                                            \
    "WITH abandoned AS (UPDATE genq.job_attempts SET status = 'abandoned', "                       \
    "finished_at = now() WHERE job_id = $1::uuid AND attempt <> $2 AND status = 'running') "

gq_status_t gq_recorder_attempt_begin(gq_recorder_t *r, const gq_request_t *req,
                                      const gq_msg_ref_t *ref, int32_t attempt,
                                      const char *worker_id, const char *prompt_id,
                                      int64_t started_at, bool *terminal, char *errstr,
                                      size_t errstr_size) {
    char e[1024];
    char *metadata = NULL;
    PGresult *res = NULL;
    gq_pg_params_t p;
    gq_status_t st;
    *terminal = false;
    if (attempt < 1) {
        gq_errf(e, sizeof(e), "attempt %d: attempts count from 1", (int)attempt);
        st = GQ_ERR_INVALID;
        goto out;
    }
    st = rec_metadata_json(req->metadata, req->metadata_cnt, &metadata, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = gq_pg_begin(r->pg, e, sizeof(e));
    if (st != GQ_OK)
        goto out;

    gq_pg_params_init(&p);
    gq_pg_param_str(&p, req->job_id);                 /* $1 */
    gq_pg_param_i64(&p, attempt);                     /* $2 */
    rec_param_request(&p, req, NULL, NULL, metadata); /* $3..$20 */
    rec_param_ms(&p, started_at);                     /* $21 */
    gq_pg_param_str_or_null(&p, worker_id);           /* $22 */
    gq_pg_param_str_or_null(&p, prompt_id);           /* $23 */
    rec_param_ref(&p, ref);                           /* $24..$26 */
    st = gq_pg_exec(r->pg, rec_sql_begin_job, &p, &res, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    if (PQntuples(res) == 0) {
        *terminal = true;
        gq_pg_rollback(r->pg);
        goto out;
    }
    PQclear(res);
    res = NULL;

    gq_pg_params_init(&p);
    gq_pg_param_str(&p, req->job_id);
    gq_pg_param_i64(&p, attempt);
    gq_pg_param_str_or_null(&p, worker_id);
    gq_pg_param_str_or_null(&p, prompt_id);
    rec_param_ms(&p, started_at);
    st = gq_pg_exec(r->pg,
                    REC_ABANDON_CTE
                    "INSERT INTO genq.job_attempts AS a "
                    "(job_id, attempt, worker_id, comfy_prompt_id, status, started_at) "
                    "VALUES ($1::uuid, $2, $3, $4, 'running', "
                    "coalesce(to_timestamp($5::double precision / 1000), now())) "
                    "ON CONFLICT (job_id, attempt) DO UPDATE SET worker_id = EXCLUDED.worker_id, "
                    "comfy_prompt_id = EXCLUDED.comfy_prompt_id, status = 'running', "
                    "started_at = EXCLUDED.started_at, finished_at = NULL, queue_ms = NULL, "
                    "render_ms = NULL, error_code = NULL, error = NULL",
                    &p, NULL, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = gq_pg_commit(r->pg, e, sizeof(e));
out:
    PQclear(res);
    free(metadata);
    if (st != GQ_OK) {
        gq_pg_rollback(r->pg);
        gq_errf(errstr, errstr_size, "recording attempt %d of job %s: %s", (int)attempt,
                req->job_id, e);
    }
    return st;
}

gq_status_t gq_recorder_attempt_fail(gq_recorder_t *r, const char *job_id, int32_t attempt,
                                     const char *error_code, const char *error_message,
                                     int64_t finished_at, char *errstr, size_t errstr_size) {
    char e[1024];
    gq_pg_params_t p;
    gq_status_t st = gq_pg_begin(r->pg, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, job_id);
    gq_pg_param_str_or_null(&p, error_code);
    gq_pg_param_str_or_null(&p, error_message);
    /* The job goes back to queued (unless another worker finished it meanwhile) and keeps
     * the error, so a job waiting for its retry shows why. */
    st = gq_pg_exec(r->pg,
                    "UPDATE genq.jobs SET status = 'queued', error_code = $2, error = $3, "
                    "error_retryable = true, updated_at = now() "
                    "WHERE job_id = $1::uuid AND status NOT IN ('succeeded', 'failed')",
                    &p, NULL, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, job_id);
    gq_pg_param_i64(&p, attempt);
    gq_pg_param_str_or_null(&p, error_code);
    gq_pg_param_str_or_null(&p, error_message);
    rec_param_ms(&p, finished_at);
    /* The attempt row exists when attempt_begin ran; a missing one is inserted, but only
     * for a job that exists (the foreign key wants it). */
    st = gq_pg_exec(r->pg,
                    "INSERT INTO genq.job_attempts AS a "
                    "(job_id, attempt, status, finished_at, error_code, error) "
                    "SELECT $1::uuid, $2, 'failed', "
                    "coalesce(to_timestamp($5::double precision / 1000), now()), $3, $4 "
                    "WHERE EXISTS (SELECT 1 FROM genq.jobs WHERE job_id = $1::uuid) "
                    "ON CONFLICT (job_id, attempt) DO UPDATE SET status = 'failed', "
                    "finished_at = EXCLUDED.finished_at, error_code = EXCLUDED.error_code, "
                    "error = EXCLUDED.error WHERE a.status <> 'succeeded'",
                    &p, NULL, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = gq_pg_commit(r->pg, e, sizeof(e));
out:
    if (st != GQ_OK) {
        gq_pg_rollback(r->pg);
        gq_errf(errstr, errstr_size, "recording failed attempt %d of job %s: %s", (int)attempt,
                job_id, e);
    }
    return st;
}

/* Writes the terminal fields into the job row, inserting it if it does not exist yet.
 * Runs inside job_finish's transaction. *already: the row was terminal before. */
static gq_status_t rec_finish_job_row(gq_recorder_t *r, const gq_request_t *req,
                                      const gq_completed_t *ev, const gq_msg_ref_t *ref,
                                      const char *metadata, bool *already, char *e, size_t e_size) {
    const char *status = ev->status == GQ_JOB_SUCCEEDED ? "succeeded" : "failed";
    int32_t attempts = ev->attempt > 0 ? ev->attempt : 0;
    *already = false;
    /* Two rounds at most: a row inserted by someone else between our SELECT (which cannot
     * lock a row that does not exist) and our INSERT is then found and locked. */
    for (int round = 0; round < 2; round++) {
        gq_pg_params_t p;
        PGresult *res = NULL;
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, ev->job_id);
        gq_status_t st =
            gq_pg_exec(r->pg, "SELECT status FROM genq.jobs WHERE job_id = $1::uuid FOR UPDATE", &p,
                       &res, e, e_size);
        if (st != GQ_OK)
            return st;
        bool exists = PQntuples(res) == 1;
        bool terminal = exists && (strcmp(gq_pg_get(res, 0, 0), "succeeded") == 0 ||
                                   strcmp(gq_pg_get(res, 0, 0), "failed") == 0);
        PQclear(res);
        if (terminal) {
            *already = true;
            return GQ_OK;
        }
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, ev->job_id);                               /* $1 */
        gq_pg_param_str(&p, status);                                   /* $2 */
        gq_pg_param_i64(&p, attempts);                                 /* $3 */
        rec_param_ms(&p, ev->finished_at);                             /* $4 */
        gq_pg_param_i64(&p, ev->queue_ms);                             /* $5 */
        gq_pg_param_i64(&p, ev->render_ms);                            /* $6 */
        gq_pg_param_i64(&p, ev->total_ms);                             /* $7 */
        gq_pg_param_str_or_null(&p, ev->worker_id);                    /* $8 */
        gq_pg_param_str(&p, ev->has_error ? ev->error_code : NULL);    /* $9 */
        gq_pg_param_str(&p, ev->has_error ? ev->error_message : NULL); /* $10 */
        if (ev->has_error)                                             /* $11 */
            gq_pg_param_bool(&p, ev->error_retryable);
        else
            gq_pg_param_null(&p);
        rec_param_ref(&p, ref); /* $12..$14 */
        if (exists) {
            gq_pg_param_str(&p, ev->model);  /* $15 */
            gq_pg_param_str(&p, ev->source); /* $16 */
            /* The request's columns were written by attempt_begin; the Kafka position there
             * is the message's own, so it is kept. */
            return gq_pg_exec(
                r->pg,
                "UPDATE genq.jobs SET status = $2, attempts = $3, "
                "finished_at = coalesce(to_timestamp($4::double precision / 1000), now()), "
                "queue_ms = $5, render_ms = $6, total_ms = $7, "
                "worker_id = coalesce($8, worker_id), error_code = $9, error = $10, "
                "error_retryable = $11, kafka_topic = coalesce(kafka_topic, $12), "
                "kafka_partition = coalesce(kafka_partition, $13), "
                "kafka_offset = coalesce(kafka_offset, $14), "
                "model = coalesce(model, $15), source = coalesce(source, $16), "
                "updated_at = now() WHERE job_id = $1::uuid",
                &p, NULL, e, e_size);
        }
        rec_param_request(&p, req, ev->model, ev->source, metadata); /* $15..$32 */
        st = gq_pg_exec(r->pg, rec_sql_finish_insert, &p, &res, e, e_size);
        if (st != GQ_OK)
            return st;
        bool inserted = PQntuples(res) == 1;
        PQclear(res);
        if (inserted)
            return GQ_OK;
    }
    gq_errf(e, e_size, "the job row keeps changing under us");
    return GQ_ERR_TRANSIENT;
}

gq_status_t gq_recorder_job_finish(gq_recorder_t *r, const gq_request_t *req,
                                   const gq_completed_t *ev, const gq_msg_ref_t *ref, bool *already,
                                   char *errstr, size_t errstr_size) {
    return gq_recorder_job_finish_outbox(r, req, ev, ref, NULL, 0, NULL, NULL, already, errstr,
                                         errstr_size);
}

gq_status_t gq_recorder_job_finish_outbox(gq_recorder_t *r, const gq_request_t *req,
                                          const gq_completed_t *ev, const gq_msg_ref_t *ref,
                                          const gq_outbox_msg_t *msgs, size_t cnt,
                                          const char *claimer, int64_t *ids, bool *already,
                                          char *errstr, size_t errstr_size) {
    for (size_t i = 0; ids && i < cnt; i++)
        ids[i] = -1;
    char e[1024];
    char *metadata = NULL;
    gq_pg_params_t p;
    *already = false;
    gq_status_t st =
        req ? rec_metadata_json(req->metadata, req->metadata_cnt, &metadata, e, sizeof(e))
            : rec_metadata_json(ev->metadata, ev->metadata_cnt, &metadata, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    for (size_t i = 0; i < ev->outputs_cnt; i++) {
        if (!ev->outputs[i].uri) {
            gq_errf(e, sizeof(e), "output %zu has no uri", i);
            st = GQ_ERR_INVALID;
            goto out;
        }
    }
    st = gq_pg_begin(r->pg, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = rec_finish_job_row(r, req, ev, ref, metadata, already, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    if (!*already) {
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, ev->job_id);
        st = gq_pg_exec(r->pg, "DELETE FROM genq.job_outputs WHERE job_id = $1::uuid", &p, NULL, e,
                        sizeof(e));
        for (size_t i = 0; i < ev->outputs_cnt && st == GQ_OK; i++) {
            const gq_output_t *o = &ev->outputs[i];
            gq_pg_params_init(&p);
            gq_pg_param_str(&p, ev->job_id);
            gq_pg_param_i64(&p, (int64_t)i);
            gq_pg_param_str(&p, o->uri);
            gq_pg_param_str(&p, o->sha256);
            gq_pg_param_i64(&p, o->bytes);
            gq_pg_param_i64_or_null(&p, o->width);
            gq_pg_param_i64_or_null(&p, o->height);
            gq_pg_param_str_or_null(&p, o->mime);
            st = gq_pg_exec(r->pg,
                            "INSERT INTO genq.job_outputs "
                            "(job_id, idx, uri, sha256, bytes, width, height, mime) "
                            "VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)",
                            &p, NULL, e, sizeof(e));
        }
        if (st != GQ_OK)
            goto out;
        if (ev->attempt >= 1) {
            gq_pg_params_init(&p);
            gq_pg_param_str(&p, ev->job_id);
            gq_pg_param_i64(&p, ev->attempt);
            gq_pg_param_str_or_null(&p, ev->worker_id);
            gq_pg_param_str(&p, ev->status == GQ_JOB_SUCCEEDED ? "succeeded" : "failed");
            rec_param_ms(&p, ev->finished_at);
            gq_pg_param_i64(&p, ev->queue_ms);
            gq_pg_param_i64(&p, ev->render_ms);
            gq_pg_param_str(&p, ev->has_error ? ev->error_code : NULL);
            gq_pg_param_str(&p, ev->has_error ? ev->error_message : NULL);
            st = gq_pg_exec(
                r->pg,
                REC_ABANDON_CTE
                "INSERT INTO genq.job_attempts AS a (job_id, attempt, worker_id, status, "
                "finished_at, queue_ms, render_ms, error_code, error) "
                "VALUES ($1::uuid, $2, $3, $4, "
                "coalesce(to_timestamp($5::double precision / 1000), now()), $6, $7, $8, $9) "
                "ON CONFLICT (job_id, attempt) DO UPDATE SET "
                "worker_id = coalesce(EXCLUDED.worker_id, a.worker_id), status = EXCLUDED.status, "
                "finished_at = EXCLUDED.finished_at, queue_ms = EXCLUDED.queue_ms, "
                "render_ms = EXCLUDED.render_ms, error_code = EXCLUDED.error_code, "
                "error = EXCLUDED.error",
                &p, NULL, e, sizeof(e));
            if (st != GQ_OK)
                goto out;
        }
        st = rec_outbox_insert(r, msgs, cnt, claimer, ids, e, sizeof(e));
        if (st != GQ_OK)
            goto out;
    }
    st = rec_offset_move(r, ref, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = gq_pg_commit(r->pg, e, sizeof(e));
out:
    free(metadata);
    if (st != GQ_OK) {
        gq_pg_rollback(r->pg);
        *already = false;
        gq_errf(errstr, errstr_size, "recording the end of job %s: %s", ev->job_id, e);
    }
    return st;
}

/* A job id worth keeping with a rejected message: a uuid in any case (stored canonical).
 * Checked here, not with a CASE in SQL, whose cast could be folded at plan time. */
static bool rec_uuid_text(const char *s, char out[37]) {
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[36] = '\0';
    return gq_uuid_valid(out);
}

static gq_status_t rec_reject(gq_recorder_t *r, const gq_msg_ref_t *ref, const char *job_id,
                              const char *reason, const char *error, const void *payload,
                              size_t payload_len, const gq_outbox_msg_t *msgs, size_t cnt,
                              const char *claimer, int64_t *ids, char *errstr, size_t errstr_size);

gq_status_t gq_recorder_reject(gq_recorder_t *r, const gq_msg_ref_t *ref, const char *job_id,
                               const char *reason, const char *error, const void *payload,
                               size_t payload_len, char *errstr, size_t errstr_size) {
    return rec_reject(r, ref, job_id, reason, error, payload, payload_len, NULL, 0, NULL, NULL,
                      errstr, errstr_size);
}

gq_status_t gq_recorder_reject_outbox(gq_recorder_t *r, const gq_msg_ref_t *ref, const char *reason,
                                      const char *error, const void *payload, size_t payload_len,
                                      const gq_outbox_msg_t *msgs, size_t cnt, const char *claimer,
                                      int64_t *ids, char *errstr, size_t errstr_size) {
    return rec_reject(r, ref, NULL, reason, error, payload, payload_len, msgs, cnt, claimer, ids,
                      errstr, errstr_size);
}

static gq_status_t rec_reject(gq_recorder_t *r, const gq_msg_ref_t *ref, const char *job_id,
                              const char *reason, const char *error, const void *payload,
                              size_t payload_len, const gq_outbox_msg_t *msgs, size_t cnt,
                              const char *claimer, int64_t *ids, char *errstr, size_t errstr_size) {
    char e[1024];
    PGresult *res = NULL;
    for (size_t i = 0; ids && i < cnt; i++)
        ids[i] = -1;
    char uuid[37];
    gq_pg_params_t p;
    gq_status_t st = gq_pg_begin(r->pg, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, ref->topic);
    gq_pg_param_i64(&p, ref->partition);
    gq_pg_param_i64(&p, ref->offset);
    gq_pg_param_str(&p, rec_uuid_text(job_id, uuid) ? uuid : NULL);
    gq_pg_param_str_or_null(&p, reason);
    gq_pg_param_str_or_null(&p, error);
    if (payload)
        gq_pg_param_bytes(&p, payload,
                          payload_len > REC_MAX_REJECT_PAYLOAD ? REC_MAX_REJECT_PAYLOAD
                                                               : payload_len);
    else
        gq_pg_param_null(&p);
    gq_pg_param_i64(&p, (int64_t)payload_len);
    st = gq_pg_exec(r->pg,
                    "INSERT INTO genq.rejected_messages (topic, kafka_partition, kafka_offset, "
                    "job_id, reason, error, payload, payload_bytes) "
                    "VALUES ($1, $2, $3, $4::uuid, $5, $6, $7::bytea, $8) "
                    "ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
                    &p, &res, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    /* The dead letter goes out only with the first record of this message. */
    if (res && PQcmdTuples(res)[0] == '1')
        st = rec_outbox_insert(r, msgs, cnt, claimer, ids, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = rec_offset_move(r, ref, e, sizeof(e));
    if (st != GQ_OK)
        goto out;
    st = gq_pg_commit(r->pg, e, sizeof(e));
out:
    PQclear(res);
    if (st != GQ_OK) {
        gq_pg_rollback(r->pg);
        gq_errf(errstr, errstr_size, "recording rejected message %s [%d] @%" PRId64 ": %s",
                ref->topic, (int)ref->partition, ref->offset, e);
    }
    return st;
}
