/*
 * The job recorder (contract in recorder.h). Each write is a call to one SQL function of
 * migrations/0003; this file builds its parameters and reads its one result row. The same
 * builders serve the pipelined (_send) and the blocking forms, so tests run exactly the
 * statements the worker runs.
 */
#include "recorder_int.h"
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
#define REC_WAIT_MS 30000

gq_recorder_t *gq_recorder_new(const char *database_url, gq_status_t *st, char *errstr,
                               size_t errstr_size) {
    gq_status_t dummy;
    if (!st)
        st = &dummy;
    /* The migration check runs on its own short-lived connection, with the blocking API
     * migrate.c speaks; the worker's statements then go through the pipeline. */
    gq_pg_t *pg = gq_pg_connect(database_url, GQ_PG_CONNECT_TIMEOUT_S, st, errstr, errstr_size);
    if (!pg)
        return NULL;
    *st = gq_migrate_check(pg, errstr, errstr_size);
    gq_pg_destroy(pg);
    if (*st != GQ_OK)
        return NULL;
    gq_recorder_t *r = calloc(1, sizeof(*r));
    if (!r) {
        gq_errf(errstr, errstr_size, "out of memory");
        *st = GQ_ERR_NOMEM;
        return NULL;
    }
    r->q = gq_pgq_new(database_url, GQ_PG_CONNECT_TIMEOUT_S, st, errstr, errstr_size);
    if (!r->q) {
        free(r);
        return NULL;
    }
    return r;
}

void gq_recorder_destroy(gq_recorder_t *r) {
    if (!r)
        return;
    gq_pgq_destroy(r->q);
    free(r);
}

gq_pgq_t *gq_recorder_pgq(gq_recorder_t *r) { return r->q; }

gq_status_t gq_recorder_ping(gq_recorder_t *r, char *errstr, size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = gq_pgq_exec(r->q, "SELECT 1", NULL, 2000, &res, errstr, errstr_size);
    PQclear(res);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Parameters. Texts built here (JSON documents, array literals) live in a rec_texts_t until
 * the statement is sent: libpq copies parameters when it queues the statement.
 */

void rec_texts_release(rec_texts_t *t) {
    for (size_t i = 0; i < t->cnt; i++)
        free(t->s[i]);
    t->cnt = 0;
}

/* Keeps s (owned) for the statement; returns it, or NULL if s was NULL or no room. */
const char *rec_text_keep(rec_texts_t *t, char *s) {
    if (!s)
        return NULL;
    if (t->cnt == GQ_ARRAY_LEN(t->s)) {
        free(s);
        return NULL;
    }
    t->s[t->cnt++] = s;
    return s;
}

/* A JSON value as compact text (kept in t); decrefs v. */
const char *rec_json_keep(rec_texts_t *t, json_t *v) {
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    return rec_text_keep(t, s);
}

static void rec_param_ref(gq_pg_params_t *p, const gq_msg_ref_t *ref) {
    gq_pg_param_str(p, ref->group);
    gq_pg_param_str(p, ref->topic);
    gq_pg_param_i64(p, ref->partition);
    if (ref->offset >= 0)
        gq_pg_param_i64(p, ref->offset);
    else
        gq_pg_param_null(p);
    gq_pg_param_i64(p, ref->next_offset);
}

/* An outbox message's three parameters: topic, payload (binary), headers (jsonb). */
static void rec_param_msg(gq_pg_params_t *p, rec_texts_t *t, const gq_outbox_msg_t *m) {
    if (!m->payload) {
        for (int i = 0; i < 3; i++)
            gq_pg_param_null(p);
        return;
    }
    gq_pg_param_str(p, m->topic);
    gq_pg_param_bytes(p, m->payload, m->len);
    json_t *h = json_object();
    for (size_t i = 0; h && i < m->headers_cnt; i++)
        json_object_set_new(h, m->headers[i].key,
                            json_string(m->headers[i].value ? m->headers[i].value : ""));
    gq_pg_param_str(p, rec_json_keep(t, h));
}

/* The request as the jsonb parameter; GQ_ERR_INVALID when it cannot be written as JSON. */
static gq_status_t rec_param_request(gq_pg_params_t *p, rec_texts_t *t, const gq_request_t *req,
                                     char *errstr, size_t errstr_size) {
    if (!req) {
        gq_pg_param_null(p);
        return GQ_OK;
    }
    const char *s = rec_json_keep(t, gq_request_to_json(req));
    if (!s) {
        gq_errf(errstr, errstr_size, "job %s: the request cannot be written as JSON (not UTF-8?)",
                req->job_id);
        return GQ_ERR_INVALID;
    }
    gq_pg_param_str(p, s);
    return GQ_OK;
}

/* Sends a built statement, or runs it and waits (res non-NULL). */
gq_status_t rec_run(gq_recorder_t *r, const char *sql, const gq_pg_params_t *p, gq_rec_kind_t kind,
                    uint64_t tag, PGresult **res, char *errstr, size_t errstr_size) {
    if (res)
        return gq_pgq_exec(r->q, sql, p, REC_WAIT_MS, res, errstr, errstr_size);
    return gq_pgq_send(r->q, sql, p, tag, (int)kind, errstr, errstr_size);
}

/* The one row a function call returns; GQ_ERR when it is missing. */
static gq_status_t rec_one_row(const PGresult *res, int cols, const char *what, char *errstr,
                               size_t errstr_size) {
    if (!res || PQntuples(res) != 1 || PQnfields(res) < cols) {
        gq_errf(errstr, errstr_size, "%s: unexpected result (%d rows)", what,
                res ? PQntuples(res) : -1);
        return GQ_ERR;
    }
    return GQ_OK;
}

/* ---- begin ---- */

static const char rec_sql_begin[] =
    "SELECT outcome, attempt, prev_prompt_id, prev_started_ms, outputs, cancel FROM "
    "genq.attempt_begin($1::uuid, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
    "$14)";

static gq_status_t rec_begin_run(gq_recorder_t *r, const gq_rec_begin_t *a, uint64_t tag,
                                 PGresult **res, char *errstr, size_t errstr_size) {
    rec_texts_t t = {0};
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, a->req->job_id);
    gq_status_t st = rec_param_request(&p, &t, a->req, errstr, errstr_size);
    if (st == GQ_OK) {
        gq_pg_param_str(&p, a->model);
        gq_pg_param_i64(&p, a->max_attempts);
        gq_pg_param_str_or_null(&p, a->worker_id);
        gq_pg_param_str_or_null(&p, a->prompt_id);
        gq_pg_param_i64_or_null(&p, a->started_at);
        rec_param_ref(&p, &a->ref);
        gq_pg_param_bool(&p, a->force);
        gq_pg_param_str_or_null(&p, a->cache_key && a->cache_key[0] ? a->cache_key : NULL);
        st = rec_run(r, rec_sql_begin, &p, GQ_REC_BEGIN, tag, res, errstr, errstr_size);
    }
    rec_texts_release(&t);
    return st;
}

gq_status_t gq_recorder_begin_send(gq_recorder_t *r, const gq_rec_begin_t *a, uint64_t tag,
                                   char *errstr, size_t errstr_size) {
    return rec_begin_run(r, a, tag, NULL, errstr, errstr_size);
}

void gq_rec_begun_release(gq_rec_begun_t *b) {
    for (size_t i = 0; b && i < b->outputs_cnt; i++) {
        free(b->outputs[i].uri);
        free(b->outputs[i].mime);
    }
    if (b) {
        free(b->outputs);
        b->outputs = NULL;
        b->outputs_cnt = 0;
    }
}

/* A cache hit's outputs, as job_finish wrote them (rec_outputs_json). */
static gq_status_t rec_outputs_parse(const char *text, gq_rec_begun_t *out, char *errstr,
                                     size_t errstr_size) {
    json_error_t jerr;
    json_t *a = json_loads(text, 0, &jerr);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (n == 0 || !(out->outputs = calloc(n, sizeof(*out->outputs)))) {
        json_decref(a);
        gq_errf(errstr, errstr_size, "attempt_begin: cached outputs unreadable");
        return GQ_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(a, i);
        gq_output_t *o = &out->outputs[i];
        out->outputs_cnt++;
        const char *uri = json_string_value(json_object_get(e, "uri"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        const char *mime = json_string_value(json_object_get(e, "mime"));
        o->uri = uri ? strdup(uri) : NULL;
        o->mime = mime ? strdup(mime) : NULL;
        gq_strlcpy(o->sha256, sha ? sha : "", sizeof(o->sha256));
        o->bytes = json_integer_value(json_object_get(e, "bytes"));
        o->width = (int32_t)json_integer_value(json_object_get(e, "width"));
        o->height = (int32_t)json_integer_value(json_object_get(e, "height"));
        if (!o->uri || (mime && !o->mime)) {
            json_decref(a);
            gq_rec_begun_release(out);
            gq_errf(errstr, errstr_size, "attempt_begin: cached output %zu unreadable", i);
            return GQ_ERR;
        }
    }
    json_decref(a);
    return GQ_OK;
}

gq_status_t gq_recorder_begin_result(const PGresult *res, gq_rec_begun_t *out, char *errstr,
                                     size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    gq_status_t st = rec_one_row(res, 6, "attempt_begin", errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    const char *o = gq_pg_get(res, 0, 0);
    static const struct {
        const char *name;
        gq_rec_outcome_t outcome;
    } outcomes[] = {{"begun", GQ_REC_BEGUN},   {"terminal", GQ_REC_TERMINAL},
                    {"probe", GQ_REC_PROBE},   {"exhausted", GQ_REC_EXHAUSTED},
                    {"cached", GQ_REC_CACHED}, {"cancelled", GQ_REC_CANCELLED}};
    size_t i = 0;
    while (i < GQ_ARRAY_LEN(outcomes) && strcmp(o, outcomes[i].name) != 0)
        i++;
    if (i == GQ_ARRAY_LEN(outcomes)) {
        gq_errf(errstr, errstr_size, "attempt_begin: unknown outcome \"%.32s\"", o);
        return GQ_ERR;
    }
    out->outcome = outcomes[i].outcome;
    out->attempt = (int32_t)gq_pg_get_i64(res, 0, 1, 0);
    gq_strlcpy(out->prev_prompt_id, gq_pg_get(res, 0, 2), sizeof(out->prev_prompt_id));
    out->prev_started_at = gq_pg_get_i64(res, 0, 3, 0);
    if (out->outcome == GQ_REC_CACHED)
        return rec_outputs_parse(gq_pg_get(res, 0, 4), out, errstr, errstr_size);
    if (out->outcome == GQ_REC_CANCELLED) {
        json_t *c = json_loads(gq_pg_get(res, 0, 5), 0, NULL);
        const char *reason = json_string_value(json_object_get(c, "reason"));
        const char *by = json_string_value(json_object_get(c, "requested_by"));
        gq_strlcpy(out->cancel_reason, reason ? reason : "", sizeof(out->cancel_reason));
        gq_strlcpy(out->cancel_by, by ? by : "", sizeof(out->cancel_by));
        json_decref(c);
    }
    return GQ_OK;
}

gq_status_t gq_recorder_begin(gq_recorder_t *r, const gq_rec_begin_t *a, gq_rec_begun_t *out,
                              char *errstr, size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = rec_begin_run(r, a, 0, &res, errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_recorder_begin_result(res, out, errstr, errstr_size);
    PQclear(res);
    return st;
}

gq_status_t gq_recorder_adopt_send(gq_recorder_t *r, const char *job_id, int32_t attempt,
                                   const char *worker_id, uint64_t tag, char *errstr,
                                   size_t errstr_size) {
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, job_id);
    gq_pg_param_i64(&p, attempt);
    gq_pg_param_str(&p, worker_id);
    return rec_run(r, "SELECT genq.attempt_adopt($1::uuid, $2, $3)", &p, GQ_REC_ADOPT, tag, NULL,
                   errstr, errstr_size);
}

/* ---- fail ---- */

static gq_status_t rec_fail_run(gq_recorder_t *r, const gq_rec_fail_t *a, uint64_t tag,
                                PGresult **res, char *errstr, size_t errstr_size) {
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, a->job_id);
    gq_pg_param_i64(&p, a->attempt);
    gq_pg_param_str_or_null(&p, a->error_code);
    gq_pg_param_str_or_null(&p, a->error_message);
    gq_pg_param_i64_or_null(&p, a->finished_at);
    if (a->queue_ms >= 0)
        gq_pg_param_i64(&p, a->queue_ms);
    else
        gq_pg_param_null(&p);
    if (a->render_ms >= 0)
        gq_pg_param_i64(&p, a->render_ms);
    else
        gq_pg_param_null(&p);
    return rec_run(r, "SELECT genq.attempt_fail($1::uuid, $2, $3, $4, $5, $6, $7)", &p, GQ_REC_FAIL,
                   tag, res, errstr, errstr_size);
}

gq_status_t gq_recorder_fail_send(gq_recorder_t *r, const gq_rec_fail_t *a, uint64_t tag,
                                  char *errstr, size_t errstr_size) {
    return rec_fail_run(r, a, tag, NULL, errstr, errstr_size);
}

gq_status_t gq_recorder_fail(gq_recorder_t *r, const gq_rec_fail_t *a, char *errstr,
                             size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = rec_fail_run(r, a, 0, &res, errstr, errstr_size);
    PQclear(res);
    return st;
}

/* ---- finish ---- */

static const char rec_sql_finish[] =
    "SELECT already, ev_id, dlq_id FROM genq.job_finish($1::uuid, $2::jsonb, $3::jsonb, "
    "$4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12::bytea, $13::jsonb, $14, $15::bytea, "
    "$16::jsonb)";

static json_t *rec_str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* The GenerationCompleted fields the record keeps, as the jsonb p_result. */
static json_t *rec_result_json(const gq_rec_finish_t *a) {
    const gq_completed_t *ev = a->ev;
    const char *status = a->cancelled                     ? "cancelled"
                         : ev->status == GQ_JOB_SUCCEEDED ? "succeeded"
                                                          : "failed";
    json_t *o =
        json_pack("{s:s, s:i, s:I, s:I, s:I, s:I}", "status", status, "attempt", (int)ev->attempt,
                  "finished_at", (json_int_t)ev->finished_at, "queue_ms", (json_int_t)ev->queue_ms,
                  "render_ms", (json_int_t)ev->render_ms, "total_ms", (json_int_t)ev->total_ms);
    if (!o)
        return NULL;
    json_object_set_new(o, "worker_id", rec_str_or_null(ev->worker_id));
    json_object_set_new(o, "model", rec_str_or_null(ev->model));
    json_object_set_new(o, "source", rec_str_or_null(ev->source));
    if (ev->has_error) {
        json_object_set_new(o, "error_code", rec_str_or_null(ev->error_code));
        json_object_set_new(o, "error", rec_str_or_null(ev->error_message));
        json_object_set_new(o, "error_retryable", json_boolean(ev->error_retryable));
    }
    if (a->lane)
        json_object_set_new(o, "lane", json_string(a->lane));
    if (a->sched_wait_ms >= 0)
        json_object_set_new(o, "sched_wait_ms", json_integer(a->sched_wait_ms));
    if (a->cache_key && a->cache_key[0])
        json_object_set_new(o, "cache_key", json_string(a->cache_key));
    if (a->cache_source && a->cache_source[0])
        json_object_set_new(o, "cache_source", json_string(a->cache_source));
    if (a->traceparent && a->traceparent[0])
        json_object_set_new(o, "traceparent", json_string(a->traceparent));
    if (a->no_attempt)
        json_object_set_new(o, "no_attempt", json_true());
    return o;
}

static json_t *rec_outputs_json(const gq_completed_t *ev) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < ev->outputs_cnt; i++) {
        const gq_output_t *o = &ev->outputs[i];
        json_t *e = json_pack("{s:s, s:s, s:I, s:i, s:i}", "uri", o->uri ? o->uri : "", "sha256",
                              o->sha256, "bytes", (json_int_t)o->bytes, "width", (int)o->width,
                              "height", (int)o->height);
        if (!e || json_array_append_new(a, e) != 0) {
            json_decref(a);
            return NULL;
        }
        json_object_set_new(e, "mime", rec_str_or_null(o->mime));
    }
    return a;
}

static gq_status_t rec_finish_run(gq_recorder_t *r, const gq_rec_finish_t *a, uint64_t tag,
                                  PGresult **res, char *errstr, size_t errstr_size) {
    const gq_completed_t *ev = a->ev;
    for (size_t i = 0; i < ev->outputs_cnt; i++)
        if (!ev->outputs[i].uri) {
            gq_errf(errstr, errstr_size, "job %s: output %zu has no uri", ev->job_id, i);
            return GQ_ERR_INVALID;
        }
    rec_texts_t t = {0};
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, ev->job_id);
    gq_status_t st = rec_param_request(&p, &t, a->req, errstr, errstr_size);
    if (st == GQ_OK) {
        const char *result = rec_json_keep(&t, rec_result_json(a));
        const char *outputs = rec_json_keep(&t, rec_outputs_json(ev));
        if (!result || !outputs) {
            gq_errf(errstr, errstr_size, "job %s: the record cannot be written as JSON",
                    ev->job_id);
            st = GQ_ERR_INVALID;
        } else {
            gq_pg_param_str(&p, result);
            gq_pg_param_str(&p, outputs);
            rec_param_ref(&p, &a->ref);
            gq_pg_param_str_or_null(&p, a->claimer);
            rec_param_msg(&p, &t, &a->event);
            rec_param_msg(&p, &t, &a->dead_letter);
            st = rec_run(r, rec_sql_finish, &p, GQ_REC_FINISH, tag, res, errstr, errstr_size);
        }
    }
    rec_texts_release(&t);
    return st;
}

gq_status_t gq_recorder_finish_send(gq_recorder_t *r, const gq_rec_finish_t *a, uint64_t tag,
                                    char *errstr, size_t errstr_size) {
    return rec_finish_run(r, a, tag, NULL, errstr, errstr_size);
}

gq_status_t gq_recorder_finish_result(const PGresult *res, gq_rec_finished_t *out, char *errstr,
                                      size_t errstr_size) {
    out->already = false;
    out->event_id = out->dead_id = -1;
    gq_status_t st = rec_one_row(res, 3, "job_finish", errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    out->already = strcmp(gq_pg_get(res, 0, 0), "t") == 0;
    out->event_id = gq_pg_get_i64(res, 0, 1, -1);
    out->dead_id = gq_pg_get_i64(res, 0, 2, -1);
    return GQ_OK;
}

gq_status_t gq_recorder_finish(gq_recorder_t *r, const gq_rec_finish_t *a, gq_rec_finished_t *out,
                               char *errstr, size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = rec_finish_run(r, a, 0, &res, errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_recorder_finish_result(res, out, errstr, errstr_size);
    PQclear(res);
    return st;
}

/* ---- cancels ---- */

static gq_status_t rec_cancels_run(gq_recorder_t *r, const gq_rec_cancel_t *c, size_t cnt,
                                   const char *worker_id, uint64_t tag, PGresult **res,
                                   char *errstr, size_t errstr_size) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < cnt; i++) {
        const gq_cancel_t *x = c[i].cancel;
        json_t *o = json_pack(
            "{s:s, s:I, s:s, s:s, s:o, s:s?, s:i, s:I}", "job_id", x->job_id, "requested_at",
            (json_int_t)x->requested_at, "reason", x->reason ? x->reason : "", "requested_by",
            x->requested_by ? x->requested_by : "", "source",
            x->source ? json_string(x->source) : json_null(), "kafka_topic", c[i].topic,
            "kafka_partition", (int)c[i].partition, "kafka_offset", (json_int_t)c[i].offset);
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    rec_texts_t t = {0};
    const char *text = rec_json_keep(&t, a);
    if (!text) {
        gq_errf(errstr, errstr_size, "cancels cannot be written as JSON (not UTF-8?)");
        return GQ_ERR_INVALID;
    }
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, text);
    gq_pg_param_str_or_null(&p, worker_id);
    gq_status_t st = rec_run(r, "SELECT genq.cancels_record($1::jsonb, $2)", &p, GQ_REC_CANCELS,
                             tag, res, errstr, errstr_size);
    rec_texts_release(&t);
    return st;
}

gq_status_t gq_recorder_cancels_send(gq_recorder_t *r, const gq_rec_cancel_t *c, size_t cnt,
                                     const char *worker_id, uint64_t tag, char *errstr,
                                     size_t errstr_size) {
    return rec_cancels_run(r, c, cnt, worker_id, tag, NULL, errstr, errstr_size);
}

gq_status_t gq_recorder_cancels(gq_recorder_t *r, const gq_rec_cancel_t *c, size_t cnt,
                                const char *worker_id, int64_t *written, char *errstr,
                                size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = rec_cancels_run(r, c, cnt, worker_id, 0, &res, errstr, errstr_size);
    if (st == GQ_OK)
        st = rec_one_row(res, 1, "cancels_record", errstr, errstr_size);
    if (st == GQ_OK && written)
        *written = gq_pg_get_i64(res, 0, 0, 0);
    PQclear(res);
    return st;
}

/* ---- reject ---- */

/* A job id worth keeping with a rejected message: a uuid in any case (stored canonical). */
static bool rec_uuid_text(const char *s, char out[37]) {
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[36] = '\0';
    return gq_uuid_valid(out);
}

static gq_status_t rec_reject_run(gq_recorder_t *r, const gq_rec_reject_t *a, uint64_t tag,
                                  PGresult **res, char *errstr, size_t errstr_size) {
    rec_texts_t t = {0};
    char uuid[37];
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    rec_param_ref(&p, &a->ref);
    gq_pg_param_str(&p, rec_uuid_text(a->job_id, uuid) ? uuid : NULL);
    gq_pg_param_str_or_null(&p, a->reason);
    gq_pg_param_str_or_null(&p, a->error);
    if (a->payload)
        gq_pg_param_bytes(&p, a->payload,
                          a->payload_len > REC_MAX_REJECT_PAYLOAD ? REC_MAX_REJECT_PAYLOAD
                                                                  : a->payload_len);
    else
        gq_pg_param_null(&p);
    gq_pg_param_i64(&p, (int64_t)a->payload_len);
    gq_pg_param_str_or_null(&p, a->claimer);
    rec_param_msg(&p, &t, &a->dead_letter);
    gq_status_t st = rec_run(r,
                             "SELECT first, dlq_id FROM genq.message_reject($1, $2, $3, $4, $5, "
                             "$6::uuid, $7, $8, $9::bytea, $10, $11, $12, $13::bytea, $14::jsonb)",
                             &p, GQ_REC_REJECT, tag, res, errstr, errstr_size);
    rec_texts_release(&t);
    return st;
}

gq_status_t gq_recorder_reject_send(gq_recorder_t *r, const gq_rec_reject_t *a, uint64_t tag,
                                    char *errstr, size_t errstr_size) {
    return rec_reject_run(r, a, tag, NULL, errstr, errstr_size);
}

gq_status_t gq_recorder_reject_result(const PGresult *res, gq_rec_rejected_t *out, char *errstr,
                                      size_t errstr_size) {
    out->first = false;
    out->dead_id = -1;
    gq_status_t st = rec_one_row(res, 2, "message_reject", errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    out->first = strcmp(gq_pg_get(res, 0, 0), "t") == 0;
    out->dead_id = gq_pg_get_i64(res, 0, 1, -1);
    return GQ_OK;
}

gq_status_t gq_recorder_reject(gq_recorder_t *r, const gq_rec_reject_t *a, gq_rec_rejected_t *out,
                               char *errstr, size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = rec_reject_run(r, a, 0, &res, errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_recorder_reject_result(res, out, errstr, errstr_size);
    PQclear(res);
    return st;
}

/* ---- offsets ---- */

static gq_status_t rec_offset_run(gq_recorder_t *r, const gq_msg_ref_t *ref, uint64_t tag,
                                  PGresult **res, char *errstr, size_t errstr_size) {
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    rec_param_ref(&p, ref);
    return rec_run(r, "SELECT genq.offset_move($1, $2, $3, $4, $5)", &p, GQ_REC_OFFSET, tag, res,
                   errstr, errstr_size);
}

gq_status_t gq_recorder_offset_send(gq_recorder_t *r, const gq_msg_ref_t *ref, uint64_t tag,
                                    char *errstr, size_t errstr_size) {
    return rec_offset_run(r, ref, tag, NULL, errstr, errstr_size);
}

gq_status_t gq_recorder_offset_advance(gq_recorder_t *r, const gq_msg_ref_t *ref, char *errstr,
                                       size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = rec_offset_run(r, ref, 0, &res, errstr, errstr_size);
    PQclear(res);
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
    st =
        gq_pgq_exec(r->q,
                    "SELECT kafka_partition, next_offset FROM genq.consumer_offsets "
                    "WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::int[])",
                    &p, REC_WAIT_MS, &res, e, sizeof(e));
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
    gq_status_t st = gq_pgq_exec(r->q,
                                 "SELECT status, attempts, comfy_prompt_id, worker_id, "
                                 "genq.ts_to_ms(started_at) FROM genq.jobs WHERE job_id = $1::uuid",
                                 &p, REC_WAIT_MS, &res, e, sizeof(e));
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
