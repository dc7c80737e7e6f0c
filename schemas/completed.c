/*
 * GenerationCompleted: the mapping between gq_completed_t and the Avro record, and its
 * JSON form for `genq events`.
 */
#include "schema_int.h"
#include "avro_check.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *gq_job_status_name(gq_job_status_t st) {
    return st == GQ_JOB_SUCCEEDED ? "SUCCEEDED" : st == GQ_JOB_FAILED ? "FAILED" : "UNKNOWN";
}

void gq_completed_init(gq_completed_t *ev) {
    memset(ev, 0, sizeof(*ev));
    ev->status = GQ_JOB_SUCCEEDED;
}

static void completed_outputs_free(gq_output_t *o, size_t cnt) {
    for (size_t i = 0; o && i < cnt; i++) {
        free(o[i].uri);
        free(o[i].mime);
    }
    free(o);
}

void gq_completed_release(gq_completed_t *ev) {
    completed_outputs_free(ev->outputs, ev->outputs_cnt);
    free(ev->worker_id);
    free(ev->error_code);
    free(ev->error_message);
    free(ev->model);
    free(ev->source);
    gq_kv_free(ev->metadata, ev->metadata_cnt);
    memset(ev, 0, sizeof(*ev));
}

static void completed_write_outputs(gq_av_t *c, avro_value_t *v, const gq_completed_t *ev) {
    avro_value_t arr;
    if (!gq_av_field(c, v, "outputs", &arr))
        return;
    for (size_t i = 0; i < ev->outputs_cnt && c->st == GQ_OK; i++) {
        const gq_output_t *o = &ev->outputs[i];
        avro_value_t item;
        if (avro_value_append(&arr, &item, NULL) != 0) {
            gq_av_fail(c, "outputs", "avro-c: %s", avro_strerror());
            return;
        }
        gq_av_set_str(c, &item, "uri", o->uri);
        gq_av_set_str(c, &item, "sha256", o->sha256);
        gq_av_set_long(c, &item, "bytes", o->bytes);
        gq_av_set_int(c, &item, "width", o->width);
        gq_av_set_int(c, &item, "height", o->height);
        gq_av_set_str(c, &item, "mime", o->mime);
    }
}

static void completed_write_error(gq_av_t *c, avro_value_t *v, const gq_completed_t *ev) {
    avro_value_t f, rec;
    if (!gq_av_field(c, v, "error", &f))
        return;
    if (avro_value_set_branch(&f, ev->has_error ? 1 : 0, &rec) != 0) {
        gq_av_fail(c, "error", "avro-c: %s", avro_strerror());
        return;
    }
    if (!ev->has_error) {
        avro_value_set_null(&rec);
        return;
    }
    gq_av_set_str(c, &rec, "code", ev->error_code);
    gq_av_set_str(c, &rec, "message", ev->error_message);
    gq_av_set_bool(c, &rec, "retryable", ev->error_retryable);
}

gq_status_t gq_completed_encode(const gq_completed_t *ev, gq_buf_t *out, char *errstr,
                                size_t errstr_size) {
    avro_value_t v;
    gq_status_t st = gq_schema_value_new(GQ_SCHEMA_COMPLETED, &v, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_av_t c = {GQ_OK, errstr, errstr_size};
    gq_av_set_str(&c, &v, "job_id", ev->job_id);
    gq_av_set_int(&c, &v, "attempt", ev->attempt);
    if (ev->status != GQ_JOB_SUCCEEDED && ev->status != GQ_JOB_FAILED)
        gq_av_fail(&c, "status", "%d is not a JobStatus", (int)ev->status);
    gq_av_set_enum(&c, &v, "status", (int)ev->status);
    completed_write_outputs(&c, &v, ev);
    gq_av_set_long(&c, &v, "queue_ms", ev->queue_ms);
    gq_av_set_long(&c, &v, "render_ms", ev->render_ms);
    gq_av_set_long(&c, &v, "total_ms", ev->total_ms);
    gq_av_set_str(&c, &v, "worker_id", ev->worker_id);
    completed_write_error(&c, &v, ev);
    gq_av_set_long(&c, &v, "finished_at", ev->finished_at);
    gq_av_set_opt_str(&c, &v, "model", ev->model);
    gq_av_set_opt_str(&c, &v, "source", ev->source);
    gq_av_set_map(&c, &v, "metadata", ev->metadata, ev->metadata_cnt);
    st = c.st == GQ_OK ? gq_schema_write(GQ_SCHEMA_COMPLETED, &v, out, errstr, errstr_size) : c.st;
    avro_value_decref(&v);
    return st;
}

static void completed_read_outputs(gq_av_t *c, avro_value_t *v, gq_completed_t *ev) {
    avro_value_t arr;
    size_t n = 0;
    if (!gq_av_field(c, v, "outputs", &arr) || avro_value_get_size(&arr, &n) != 0 || n == 0)
        return;
    ev->outputs = calloc(n, sizeof(*ev->outputs));
    if (!ev->outputs) {
        gq_av_fail(c, "outputs", "out of memory");
        c->st = GQ_ERR_NOMEM;
        return;
    }
    for (size_t i = 0; i < n && c->st == GQ_OK; i++) {
        gq_output_t *o = &ev->outputs[i];
        avro_value_t item;
        ev->outputs_cnt = i + 1;
        if (avro_value_get_by_index(&arr, i, &item, NULL) != 0) {
            gq_av_fail(c, "outputs", "avro-c: %s", avro_strerror());
            return;
        }
        o->uri = gq_av_get_str(c, &item, "uri");
        gq_av_get_strbuf(c, &item, "sha256", o->sha256, sizeof(o->sha256));
        o->bytes = gq_av_get_long(c, &item, "bytes");
        o->width = gq_av_get_int(c, &item, "width");
        o->height = gq_av_get_int(c, &item, "height");
        o->mime = gq_av_get_str(c, &item, "mime");
    }
}

static void completed_read_error(gq_av_t *c, avro_value_t *v, gq_completed_t *ev) {
    avro_value_t f, rec;
    int disc = 0;
    if (!gq_av_field(c, v, "error", &f))
        return;
    if (avro_value_get_discriminant(&f, &disc) != 0 ||
        avro_value_get_current_branch(&f, &rec) != 0) {
        gq_av_fail(c, "error", "avro-c: %s", avro_strerror());
        return;
    }
    ev->has_error = disc == 1;
    if (!ev->has_error)
        return;
    ev->error_code = gq_av_get_str(c, &rec, "code");
    ev->error_message = gq_av_get_str(c, &rec, "message");
    ev->error_retryable = gq_av_get_bool(c, &rec, "retryable");
}

gq_status_t gq_completed_decode(const void *data, size_t len, gq_completed_t *ev, char *errstr,
                                size_t errstr_size) {
    char id[37];
    avro_value_t v;
    gq_completed_init(ev);
    gq_status_t st = gq_schema_read(GQ_SCHEMA_COMPLETED, data, len, &v, id, errstr, errstr_size);
    if (st == GQ_OK) {
        gq_av_t c = {GQ_OK, errstr, errstr_size};
        gq_av_get_strbuf(&c, &v, "job_id", ev->job_id, sizeof(ev->job_id));
        ev->attempt = gq_av_get_int(&c, &v, "attempt");
        ev->status = gq_av_get_enum(&c, &v, "status") == 1 ? GQ_JOB_FAILED : GQ_JOB_SUCCEEDED;
        completed_read_outputs(&c, &v, ev);
        ev->queue_ms = gq_av_get_long(&c, &v, "queue_ms");
        ev->render_ms = gq_av_get_long(&c, &v, "render_ms");
        ev->total_ms = gq_av_get_long(&c, &v, "total_ms");
        ev->worker_id = gq_av_get_str(&c, &v, "worker_id");
        completed_read_error(&c, &v, ev);
        ev->finished_at = gq_av_get_long(&c, &v, "finished_at");
        ev->model = gq_av_get_opt_str(&c, &v, "model");
        ev->source = gq_av_get_opt_str(&c, &v, "source");
        ev->metadata = gq_av_get_map(&c, &v, "metadata", &ev->metadata_cnt);
        avro_value_decref(&v);
        st = c.st;
    }
    if (st != GQ_OK)
        gq_strlcpy(ev->job_id, gq_uuid_valid(id) ? id : "", sizeof(ev->job_id));
    return st;
}

json_t *gq_schema_json_str(const char *s) {
    if (!s)
        return json_null();
    size_t n = strlen(s);
    if (gq_utf8_valid(s, n))
        return json_stringn(s, n);
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    json_t *j = json_stringn(copy, n);
    free(copy);
    return j;
}

static json_t *completed_json_outputs(const gq_completed_t *ev) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < ev->outputs_cnt; i++) {
        const gq_output_t *o = &ev->outputs[i];
        json_t *j = json_object();
        if (!j || json_array_append_new(arr, j) != 0) {
            json_decref(arr);
            return NULL;
        }
        json_object_set_new(j, "uri", gq_schema_json_str(o->uri));
        json_object_set_new(j, "sha256", gq_schema_json_str(o->sha256));
        json_object_set_new(j, "bytes", json_integer(o->bytes));
        json_object_set_new(j, "width", json_integer(o->width));
        json_object_set_new(j, "height", json_integer(o->height));
        json_object_set_new(j, "mime", gq_schema_json_str(o->mime));
    }
    return arr;
}

static json_t *completed_json_error(const gq_completed_t *ev) {
    if (!ev->has_error)
        return json_null();
    json_t *j = json_object();
    json_object_set_new(j, "code", gq_schema_json_str(ev->error_code));
    json_object_set_new(j, "message", gq_schema_json_str(ev->error_message));
    json_object_set_new(j, "retryable", json_boolean(ev->error_retryable));
    return j;
}

gq_status_t gq_completed_to_json(const gq_completed_t *ev, gq_buf_t *out) {
    json_t *j = json_object();
    if (!j)
        return GQ_ERR_NOMEM;
    json_t *meta = json_object();
    for (size_t i = 0; meta && i < ev->metadata_cnt; i++)
        json_object_set_new(meta, ev->metadata[i].key ? ev->metadata[i].key : "",
                            gq_schema_json_str(ev->metadata[i].value));
    /* Insertion order is the .avsc field order (jansson keeps it); a NULL value (out of
     * memory) makes json_object_set_new fail, which rc collects. */
    int rc = 0;
    rc |= json_object_set_new(j, "job_id", gq_schema_json_str(ev->job_id));
    rc |= json_object_set_new(j, "attempt", json_integer(ev->attempt));
    rc |= json_object_set_new(j, "status", json_string(gq_job_status_name(ev->status)));
    rc |= json_object_set_new(j, "outputs", completed_json_outputs(ev));
    rc |= json_object_set_new(j, "queue_ms", json_integer(ev->queue_ms));
    rc |= json_object_set_new(j, "render_ms", json_integer(ev->render_ms));
    rc |= json_object_set_new(j, "total_ms", json_integer(ev->total_ms));
    rc |= json_object_set_new(j, "worker_id", gq_schema_json_str(ev->worker_id));
    rc |= json_object_set_new(j, "error", completed_json_error(ev));
    rc |= json_object_set_new(j, "finished_at", json_integer(ev->finished_at));
    rc |= json_object_set_new(j, "model", gq_schema_json_str(ev->model));
    rc |= json_object_set_new(j, "source", gq_schema_json_str(ev->source));
    rc |= json_object_set_new(j, "metadata", meta);
    char *s = rc == 0 ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return GQ_ERR_NOMEM;
    gq_status_t st = gq_buf_appends(out, s);
    free(s);
    return st;
}
