/*
 * GenerationProgress: the mapping between gq_progress_t and the Avro record, and its JSON
 * form for `genq events --progress`.
 */
#include "schema_int.h"
#include "avro_check.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const progress_state_names[] = {"QUEUED", "LOADING", "RUNNING", "COLLECTING",
                                                   "OTHER"};

const char *gq_progress_state_name(gq_progress_state_t st) {
    return (unsigned)st < GQ_ARRAY_LEN(progress_state_names) ? progress_state_names[st] : "OTHER";
}

void gq_progress_init(gq_progress_t *ev) {
    memset(ev, 0, sizeof(*ev));
    ev->state = GQ_PROGRESS_QUEUED;
    ev->queue_position = -1;
}

void gq_progress_release(gq_progress_t *ev) {
    free(ev->node);
    free(ev->worker_id);
    gq_progress_init(ev);
}

gq_status_t gq_progress_encode(const gq_progress_t *ev, gq_buf_t *out, char *errstr,
                               size_t errstr_size) {
    avro_value_t v;
    gq_status_t st = gq_schema_value_new(GQ_SCHEMA_PROGRESS, &v, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_av_t c = {GQ_OK, errstr, errstr_size};
    gq_av_set_str(&c, &v, "job_id", ev->job_id);
    gq_av_set_int(&c, &v, "attempt", ev->attempt);
    gq_av_set_long(&c, &v, "seq", ev->seq);
    gq_av_set_long(&c, &v, "at", ev->at);
    if ((unsigned)ev->state > GQ_PROGRESS_OTHER)
        gq_av_fail(&c, "state", "%d is not a ProgressState", (int)ev->state);
    gq_av_set_enum(&c, &v, "state", (int)ev->state);
    gq_av_set_opt_int(&c, &v, "queue_position", ev->queue_position >= 0, ev->queue_position);
    gq_av_set_opt_str(&c, &v, "node", ev->node);
    gq_av_set_int(&c, &v, "step", ev->step);
    gq_av_set_int(&c, &v, "max_steps", ev->max_steps);
    gq_av_set_int(&c, &v, "nodes_done", ev->nodes_done);
    gq_av_set_int(&c, &v, "nodes_total", ev->nodes_total);
    gq_av_set_int(&c, &v, "previews", ev->previews);
    gq_av_set_str(&c, &v, "worker_id", ev->worker_id ? ev->worker_id : "");
    st = c.st == GQ_OK ? gq_schema_write(GQ_SCHEMA_PROGRESS, &v, out, errstr, errstr_size) : c.st;
    avro_value_decref(&v);
    return st;
}

gq_status_t gq_progress_decode(const void *data, size_t len, gq_progress_t *ev, char *errstr,
                               size_t errstr_size) {
    char id[37];
    avro_value_t v;
    gq_progress_init(ev);
    gq_status_t st = gq_schema_read(GQ_SCHEMA_PROGRESS, data, len, &v, id, errstr, errstr_size);
    if (st == GQ_OK) {
        gq_av_t c = {GQ_OK, errstr, errstr_size};
        gq_av_get_strbuf(&c, &v, "job_id", ev->job_id, sizeof(ev->job_id));
        ev->attempt = gq_av_get_int(&c, &v, "attempt");
        ev->seq = gq_av_get_long(&c, &v, "seq");
        ev->at = gq_av_get_long(&c, &v, "at");
        int s = gq_av_get_enum(&c, &v, "state");
        ev->state = s >= 0 && s <= GQ_PROGRESS_OTHER ? (gq_progress_state_t)s : GQ_PROGRESS_OTHER;
        int32_t qp = 0;
        ev->queue_position = gq_av_get_opt_int(&c, &v, "queue_position", &qp) ? qp : -1;
        ev->node = gq_av_get_opt_str(&c, &v, "node");
        ev->step = gq_av_get_int(&c, &v, "step");
        ev->max_steps = gq_av_get_int(&c, &v, "max_steps");
        ev->nodes_done = gq_av_get_int(&c, &v, "nodes_done");
        ev->nodes_total = gq_av_get_int(&c, &v, "nodes_total");
        ev->previews = gq_av_get_int(&c, &v, "previews");
        ev->worker_id = gq_av_get_str(&c, &v, "worker_id");
        avro_value_decref(&v);
        st = c.st;
    }
    if (st != GQ_OK) {
        gq_progress_release(ev);
        gq_strlcpy(ev->job_id, gq_uuid_valid(id) ? id : "", sizeof(ev->job_id));
    }
    return st;
}

gq_status_t gq_progress_to_json(const gq_progress_t *ev, gq_buf_t *out) {
    json_t *j = json_object();
    if (!j)
        return GQ_ERR_NOMEM;
    int rc = 0;
    rc |= json_object_set_new(j, "job_id", gq_schema_json_str(ev->job_id));
    rc |= json_object_set_new(j, "attempt", json_integer(ev->attempt));
    rc |= json_object_set_new(j, "seq", json_integer(ev->seq));
    rc |= json_object_set_new(j, "at", json_integer(ev->at));
    rc |= json_object_set_new(j, "state", json_string(gq_progress_state_name(ev->state)));
    rc |= json_object_set_new(j, "queue_position",
                              ev->queue_position >= 0 ? json_integer(ev->queue_position)
                                                      : json_null());
    rc |= json_object_set_new(j, "node", gq_schema_json_str(ev->node));
    rc |= json_object_set_new(j, "step", json_integer(ev->step));
    rc |= json_object_set_new(j, "max_steps", json_integer(ev->max_steps));
    rc |= json_object_set_new(j, "nodes_done", json_integer(ev->nodes_done));
    rc |= json_object_set_new(j, "nodes_total", json_integer(ev->nodes_total));
    rc |= json_object_set_new(j, "previews", json_integer(ev->previews));
    rc |=
        json_object_set_new(j, "worker_id", gq_schema_json_str(ev->worker_id ? ev->worker_id : ""));
    char *s = rc == 0 ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return GQ_ERR_NOMEM;
    gq_status_t st = gq_buf_appends(out, s);
    free(s);
    return st;
}
