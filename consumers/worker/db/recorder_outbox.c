/* genq.outbox: messages written with the terminal record, published after the commit. */
#include "recorder_int.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void outbox_parse_headers(const char *text, size_t len, gq_outbox_row_t *row) {
    json_t *o = json_loadb(text ? text : "{}", text ? len : 2, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return; /* a broken headers column costs the headers, not the message */
    }
    row->headers = calloc(json_object_size(o) + 1, sizeof(*row->headers));
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!row->headers || !json_is_string(v))
            continue;
        row->headers[row->headers_cnt].key = strdup(k);
        row->headers[row->headers_cnt].value = strdup(json_string_value(v));
        row->headers_cnt++;
    }
    json_decref(o);
}

/* A column of a binary-format result as an owned copy (NUL-terminated), NULL for NULL. */
static unsigned char *outbox_copy(const PGresult *res, int row, int col, size_t *len) {
    *len = 0;
    if (PQgetisnull(res, row, col))
        return NULL;
    size_t n = (size_t)PQgetlength(res, row, col);
    unsigned char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, PQgetvalue(res, row, col), n);
    p[n] = '\0';
    *len = n;
    return p;
}

gq_status_t gq_recorder_outbox_claim(gq_recorder_t *r, const char *claimer, int64_t stale_ms,
                                     bool mine_too, int limit, gq_outbox_row_t **rows, size_t *cnt,
                                     char *errstr, size_t errstr_size) {
    *rows = NULL;
    *cnt = 0;
    char e[1024];
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, claimer);
    gq_pg_param_i64(&p, stale_ms);
    gq_pg_param_i64(&p, limit);
    gq_pg_param_bool(&p, mine_too);
    /* Binary results: the payload comes as its bytes, every other column as text. */
    p.binary_result = true;
    PGresult *res = NULL;
    gq_status_t st =
        gq_pgq_exec(r->q,
                    "UPDATE genq.outbox SET claimed_by = $1, claimed_at = now() WHERE id IN ("
                    "SELECT id FROM genq.outbox WHERE parked_at IS NULL AND (claimed_at IS NULL "
                    "OR claimed_at < now() - make_interval(secs => $2::double precision / 1000) "
                    "OR ($4 AND claimed_by = $1)) "
                    "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
                    "RETURNING id::text, topic, msg_key, payload, headers::text",
                    &p, 30000, &res, e, sizeof(e));
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "claiming outbox rows: %s", e);
        return st;
    }
    int n = PQntuples(res);
    if (n > 0)
        *rows = calloc((size_t)n, sizeof(**rows));
    for (int i = 0; *rows && i < n; i++) {
        gq_outbox_row_t *row = &(*rows)[*cnt];
        size_t len;
        row->id = gq_pg_get_i64(res, i, 0, -1);
        row->topic = (char *)outbox_copy(res, i, 1, &len);
        row->key = (char *)outbox_copy(res, i, 2, &len);
        row->payload = outbox_copy(res, i, 3, &row->len);
        unsigned char *h = outbox_copy(res, i, 4, &len);
        outbox_parse_headers((const char *)h, len, row);
        free(h);
        if (!row->topic || !row->payload) {
            free(row->topic);
            free(row->key);
            free(row->payload);
            memset(row, 0, sizeof(*row));
            continue; /* out of memory: the row is claimed again after stale_ms */
        }
        (*cnt)++;
    }
    PQclear(res);
    return GQ_OK;
}

void gq_outbox_rows_free(gq_outbox_row_t *rows, size_t cnt) {
    for (size_t i = 0; rows && i < cnt; i++) {
        free(rows[i].topic);
        free(rows[i].key);
        free(rows[i].payload);
        for (size_t k = 0; k < rows[i].headers_cnt; k++) {
            free(rows[i].headers[k].key);
            free(rows[i].headers[k].value);
        }
        free(rows[i].headers);
    }
    free(rows);
}

static gq_status_t outbox_done_run(gq_recorder_t *r, const int64_t *ids, size_t cnt, uint64_t tag,
                                   PGresult **res, char *errstr, size_t errstr_size) {
    /* One statement for the batch: an array literal of integers we formatted ourselves. */
    char *arr = malloc(cnt * 22 + 3);
    if (!arr) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    size_t at = 0;
    arr[at++] = '{';
    for (size_t i = 0; i < cnt; i++)
        at += (size_t)snprintf(arr + at, 23, "%s%" PRId64, i ? "," : "", ids[i]);
    arr[at++] = '}';
    arr[at] = '\0';
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, arr);
    gq_status_t st = rec_run(r, "SELECT genq.outbox_done($1::bigint[])", &p, GQ_REC_OUTBOX_DONE,
                             tag, res, errstr, errstr_size);
    free(arr);
    return st;
}

gq_status_t gq_recorder_outbox_done_send(gq_recorder_t *r, const int64_t *ids, size_t cnt,
                                         uint64_t tag, char *errstr, size_t errstr_size) {
    return outbox_done_run(r, ids, cnt, tag, NULL, errstr, errstr_size);
}

gq_status_t gq_recorder_outbox_done(gq_recorder_t *r, const int64_t *ids, size_t cnt, char *errstr,
                                    size_t errstr_size) {
    if (cnt == 0)
        return GQ_OK;
    PGresult *res = NULL;
    gq_status_t st = outbox_done_run(r, ids, cnt, 0, &res, errstr, errstr_size);
    PQclear(res);
    return st;
}

gq_status_t gq_recorder_outbox_failed_send(gq_recorder_t *r, const int64_t *ids,
                                           const char *const *errors, size_t cnt, int max_attempts,
                                           uint64_t tag, char *errstr, size_t errstr_size) {
    json_t *a = json_array(), *e = json_array();
    for (size_t i = 0; a && e && i < cnt; i++) {
        json_array_append_new(a, json_integer(ids[i]));
        json_array_append_new(e, json_string(errors[i] ? errors[i] : ""));
    }
    rec_texts_t t = {0};
    const char *ids_text = rec_json_keep(&t, a), *err_text = rec_json_keep(&t, e);
    gq_status_t st;
    if (!ids_text || !err_text) {
        gq_errf(errstr, errstr_size, "out of memory");
        st = GQ_ERR_NOMEM;
    } else {
        gq_pg_params_t p;
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, ids_text);
        gq_pg_param_str(&p, err_text);
        gq_pg_param_i64(&p, max_attempts);
        st = rec_run(r,
                     "SELECT genq.outbox_failed(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)"
                     "::bigint), ARRAY(SELECT jsonb_array_elements_text($2::jsonb)), $3)",
                     &p, GQ_REC_OUTBOX_FAILED, tag, NULL, errstr, errstr_size);
    }
    rec_texts_release(&t);
    return st;
}

gq_status_t gq_recorder_outbox_stats(gq_recorder_t *r, gq_outbox_stats_t *out, char *errstr,
                                     size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    PGresult *res = NULL;
    char e[1024];
    gq_status_t st = gq_pgq_exec(
        r->q,
        "SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS "
        "NOT NULL), coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at "
        "IS NULL)), 0)::double precision FROM genq.outbox",
        NULL, 30000, &res, e, sizeof(e));
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "reading the outbox's depth: %s", e);
        return st;
    }
    out->pending = gq_pg_get_i64(res, 0, 0, 0);
    out->parked = gq_pg_get_i64(res, 0, 1, 0);
    double age = 0;
    gq_parse_double(gq_pg_get(res, 0, 2), &age);
    out->oldest_s = age;
    PQclear(res);
    return GQ_OK;
}
