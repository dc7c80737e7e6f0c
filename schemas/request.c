/*
 * GenerationRequest: defaults, and the mapping between gq_request_t and the Avro record.
 */
#include "schema_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Every field at its .avsc default; job_id empty and submitted_at 0 (test_schema checks the
 * defaults against the schema file). */
void gq_request_defaults(gq_request_t *req) {
    memset(req, 0, sizeof(*req));
    req->workflow = strdup(GQ_REQ_DEFAULT_WORKFLOW);
    req->prompt = strdup("");
    req->negative_prompt = strdup("");
    req->width = 512;
    req->height = 512;
    req->steps = 20;
    req->cfg = 7.0;
    req->sampler = strdup(GQ_REQ_DEFAULT_SAMPLER);
    req->scheduler = strdup(GQ_REQ_DEFAULT_SCHEDULER);
    req->batch_size = 1;
    req->source = strdup("");
}

void gq_request_init(gq_request_t *req) {
    gq_request_defaults(req);
    if (gq_uuid_v4(req->job_id) != GQ_OK)
        req->job_id[0] = '\0'; /* no entropy: validation reports the empty job_id */
    req->submitted_at = gq_now_ms();
}

void gq_request_release(gq_request_t *req) {
    free(req->workflow);
    free(req->workflow_json);
    free(req->prompt);
    free(req->negative_prompt);
    free(req->sampler);
    free(req->scheduler);
    free(req->model);
    gq_kv_free(req->overrides, req->overrides_cnt);
    free(req->source);
    gq_kv_free(req->metadata, req->metadata_cnt);
    memset(req, 0, sizeof(*req));
}

/* A NULL string field that has a default in the .avsc stands for that default. */
static const char *request_or(const char *s, const char *dflt) { return s ? s : dflt; }

gq_status_t gq_request_encode_avro(const gq_request_t *req, gq_buf_t *out, char *errstr,
                                   size_t errstr_size) {
    avro_value_t v;
    gq_status_t st = gq_schema_value_new(GQ_SCHEMA_REQUEST, &v, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_av_t c = {GQ_OK, errstr, errstr_size};
    gq_av_set_str(&c, &v, "job_id", req->job_id);
    gq_av_set_long(&c, &v, "submitted_at", req->submitted_at);
    gq_av_set_str(&c, &v, "workflow", request_or(req->workflow, GQ_REQ_DEFAULT_WORKFLOW));
    gq_av_set_opt_str(&c, &v, "workflow_json", req->workflow_json);
    gq_av_set_str(&c, &v, "prompt", req->prompt);
    gq_av_set_str(&c, &v, "negative_prompt", request_or(req->negative_prompt, ""));
    gq_av_set_int(&c, &v, "width", req->width);
    gq_av_set_int(&c, &v, "height", req->height);
    gq_av_set_long(&c, &v, "seed", req->seed);
    gq_av_set_int(&c, &v, "steps", req->steps);
    gq_av_set_double(&c, &v, "cfg", req->cfg);
    gq_av_set_str(&c, &v, "sampler", request_or(req->sampler, GQ_REQ_DEFAULT_SAMPLER));
    gq_av_set_str(&c, &v, "scheduler", request_or(req->scheduler, GQ_REQ_DEFAULT_SCHEDULER));
    gq_av_set_opt_str(&c, &v, "model", req->model);
    gq_av_set_int(&c, &v, "batch_size", req->batch_size);
    gq_av_set_map(&c, &v, "overrides", req->overrides, req->overrides_cnt);
    gq_av_set_int(&c, &v, "priority", req->priority);
    gq_av_set_str(&c, &v, "source", request_or(req->source, ""));
    gq_av_set_opt_int(&c, &v, "max_attempts", req->max_attempts != 0, req->max_attempts);
    gq_av_set_opt_int(&c, &v, "timeout_s", req->timeout_s != 0, req->timeout_s);
    gq_av_set_map(&c, &v, "metadata", req->metadata, req->metadata_cnt);
    st = c.st == GQ_OK ? gq_schema_write(GQ_SCHEMA_REQUEST, &v, out, errstr, errstr_size) : c.st;
    avro_value_decref(&v);
    return st;
}

/* 0 means "not given" in gq_request_t, so an explicit value must be positive. */
static int32_t request_opt_positive(gq_av_t *c, avro_value_t *v, const char *name) {
    int32_t x = 0;
    if (gq_av_get_opt_int(c, v, name, &x) && x <= 0)
        gq_av_fail(c, name, "%d given; must be null or positive", (int)x);
    return x;
}

static void request_read(gq_av_t *c, avro_value_t *v, gq_request_t *req) {
    gq_av_get_strbuf(c, v, "job_id", req->job_id, sizeof(req->job_id));
    req->submitted_at = gq_av_get_long(c, v, "submitted_at");
    req->workflow = gq_av_get_str(c, v, "workflow");
    req->workflow_json = gq_av_get_opt_str(c, v, "workflow_json");
    req->prompt = gq_av_get_str(c, v, "prompt");
    req->negative_prompt = gq_av_get_str(c, v, "negative_prompt");
    req->width = gq_av_get_int(c, v, "width");
    req->height = gq_av_get_int(c, v, "height");
    req->seed = gq_av_get_long(c, v, "seed");
    req->steps = gq_av_get_int(c, v, "steps");
    req->cfg = gq_av_get_double(c, v, "cfg");
    req->sampler = gq_av_get_str(c, v, "sampler");
    req->scheduler = gq_av_get_str(c, v, "scheduler");
    req->model = gq_av_get_opt_str(c, v, "model");
    req->batch_size = gq_av_get_int(c, v, "batch_size");
    req->overrides = gq_av_get_map(c, v, "overrides", &req->overrides_cnt);
    req->priority = gq_av_get_int(c, v, "priority");
    req->source = gq_av_get_str(c, v, "source");
    req->max_attempts = request_opt_positive(c, v, "max_attempts");
    req->timeout_s = request_opt_positive(c, v, "timeout_s");
    req->metadata = gq_av_get_map(c, v, "metadata", &req->metadata_cnt);
}

gq_status_t gq_request_decode(const void *data, size_t len, gq_request_t *req, char *errstr,
                              size_t errstr_size) {
    char id[37];
    avro_value_t v;
    memset(req, 0, sizeof(*req));
    gq_status_t st = gq_schema_read(GQ_SCHEMA_REQUEST, data, len, &v, id, errstr, errstr_size);
    if (st == GQ_OK) {
        gq_av_t c = {GQ_OK, errstr, errstr_size};
        request_read(&c, &v, req);
        avro_value_decref(&v);
        st = c.st;
    }
    /* A message that cannot be decoded still names its job when its first field (job_id in
     * every version of the schema) is a uuid, so the failure can be reported for that job. */
    if (st != GQ_OK)
        gq_strlcpy(req->job_id, gq_uuid_valid(id) ? id : "", sizeof(req->job_id));
    return st;
}
