/* genq.outbox: messages written with the terminal record, published after the commit. */
#include "recorder_int.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *outbox_headers_json(const gq_kv_t *h, size_t cnt) {
    json_t *o = json_object();
    for (size_t i = 0; i < cnt; i++)
        json_object_set_new(o, h[i].key, json_string(h[i].value ? h[i].value : ""));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

gq_status_t rec_outbox_insert(gq_recorder_t *r, const gq_outbox_msg_t *msgs, size_t cnt,
                              const char *claimer, int64_t *ids, char *e, size_t e_size) {
    for (size_t i = 0; i < cnt; i++) {
        const gq_outbox_msg_t *m = &msgs[i];
        char *headers = outbox_headers_json(m->headers, m->headers_cnt);
        gq_pg_params_t p;
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, m->topic);
        gq_pg_param_str_or_null(&p, m->key && m->key[0] ? m->key : NULL);
        gq_pg_param_bytes(&p, m->payload, m->len);
        gq_pg_param_str(&p, headers ? headers : "{}");
        gq_pg_param_str_or_null(&p, m->job_id && gq_uuid_valid(m->job_id) ? m->job_id : NULL);
        gq_pg_param_str_or_null(&p, claimer);
        PGresult *res = NULL;
        gq_status_t st =
            gq_pg_exec(r->pg,
                       "INSERT INTO genq.outbox "
                       "(topic, msg_key, payload, headers, job_id, claimed_by, "
                       "claimed_at) VALUES ($1, $2, $3::bytea, $4::jsonb, $5::uuid, "
                       "$6::text, CASE WHEN $6::text IS NULL THEN NULL ELSE now() END) "
                       "RETURNING id",
                       &p, &res, e, e_size);
        free(headers);
        if (st != GQ_OK)
            return st;
        if (ids)
            ids[i] = gq_pg_get_i64(res, 0, 0, -1);
        PQclear(res);
    }
    return GQ_OK;
}

static gq_status_t outbox_parse_headers(const char *text, gq_outbox_row_t *row) {
    json_t *o = json_loads(text ? text : "{}", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return GQ_OK; /* a broken headers column costs the headers, not the message */
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
    return GQ_OK;
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
    PGresult *res = NULL;
    gq_status_t st =
        gq_pg_exec(r->pg,
                   "UPDATE genq.outbox SET claimed_by = $1, claimed_at = now() WHERE id IN ("
                   "SELECT id FROM genq.outbox WHERE claimed_at IS NULL "
                   "OR claimed_at < now() - make_interval(secs => $2::double precision / 1000) "
                   "OR ($4 AND claimed_by = $1) "
                   "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
                   "RETURNING id, topic, msg_key, encode(payload, 'hex'), headers::text",
                   &p, &res, e, sizeof(e));
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "claiming outbox rows: %s", e);
        return st;
    }
    int n = PQntuples(res);
    if (n > 0)
        *rows = calloc((size_t)n, sizeof(**rows));
    for (int i = 0; *rows && i < n; i++) {
        gq_outbox_row_t *row = &(*rows)[*cnt];
        row->id = gq_pg_get_i64(res, i, 0, -1);
        row->topic = strdup(gq_pg_get(res, i, 1));
        row->key = PQgetisnull(res, i, 2) ? NULL : strdup(gq_pg_get(res, i, 2));
        const char *hex = gq_pg_get(res, i, 3);
        size_t hl = strlen(hex);
        row->payload = malloc(hl / 2 + 1);
        for (size_t k = 0; row->payload && k + 1 < hl; k += 2) {
            unsigned v = 0;
            sscanf(hex + k, "%2x", &v);
            row->payload[k / 2] = (unsigned char)v;
        }
        row->len = hl / 2;
        outbox_parse_headers(gq_pg_get(res, i, 4), row);
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

gq_status_t gq_recorder_outbox_done(gq_recorder_t *r, const int64_t *ids, size_t cnt, char *errstr,
                                    size_t errstr_size) {
    if (cnt == 0)
        return GQ_OK;
    /* One statement for the batch: an array literal of integers we formatted ourselves. */
    char *arr = malloc(cnt * 22 + 3);
    if (!arr)
        return GQ_ERR_NOMEM;
    size_t at = 0;
    arr[at++] = '{';
    for (size_t i = 0; i < cnt; i++)
        at += (size_t)snprintf(arr + at, 23, "%s%" PRId64, i ? "," : "", ids[i]);
    arr[at++] = '}';
    arr[at] = '\0';
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, arr);
    char e[1024];
    gq_status_t st = gq_pg_exec(r->pg, "DELETE FROM genq.outbox WHERE id = ANY($1::bigint[])", &p,
                                NULL, e, sizeof(e));
    free(arr);
    if (st != GQ_OK)
        gq_errf(errstr, errstr_size, "deleting published outbox rows: %s", e);
    return st;
}
