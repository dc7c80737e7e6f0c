/*
 * gq_request_validate: the value rules of GenerationRequest (the .avsc docs state the same
 * limits). Names that reach files or ComfyUI must be safe names; free text must be UTF-8.
 */
#include "genq_schema.h"
#include "avro_check.h"
#include "util.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static gq_status_t bad(char *errstr, size_t errstr_size, const char *fmt, ...) GQ_PRINTF(3, 4);

static gq_status_t bad(char *errstr, size_t errstr_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errstr && errstr_size)
        vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
    return GQ_ERR_INVALID;
}

/* Free text: at most max bytes of UTF-8 (NULL counts as the empty default). */
static gq_status_t check_text(const char *field, const char *s, size_t max, char *errstr,
                              size_t errstr_size) {
    size_t n = s ? strlen(s) : 0;
    if (n > max)
        return bad(errstr, errstr_size, "%s: %zu bytes; at most %zu allowed", field, n, max);
    if (!gq_utf8_valid(s ? s : "", n))
        return bad(errstr, errstr_size, "%s: not valid UTF-8", field);
    return GQ_OK;
}

/* A short label that ends up in logs and metrics: no control characters. */
static gq_status_t check_label(const char *field, const char *s, size_t max, char *errstr,
                               size_t errstr_size) {
    gq_status_t st = check_text(field, s, max, errstr, errstr_size);
    for (const char *p = s; st == GQ_OK && p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            st = bad(errstr, errstr_size, "%s: contains a control character", field);
    return st;
}

static gq_status_t check_name(const char *field, const char *s, size_t max, char *errstr,
                              size_t errstr_size) {
    if (!gq_name_safe(s, max))
        return bad(errstr, errstr_size,
                   "%s: \"%.64s\" is not a safe name (1..%zu bytes of [A-Za-z0-9._-], not "
                   "starting with '.')",
                   field, s ? s : "", max);
    return GQ_OK;
}

/* Checkpoint names may sit in sub-folders: safe names joined by '/'. */
static bool model_ok(const char *m) {
    size_t n = strlen(m);
    if (n == 0 || n > GQ_REQUEST_MODEL_MAX)
        return false;
    char part[GQ_REQUEST_MODEL_MAX + 1];
    for (const char *p = m;;) {
        const char *slash = strchr(p, '/');
        size_t k = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(part, p, k);
        part[k] = '\0';
        if (!gq_name_safe(part, GQ_REQUEST_MODEL_MAX))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

/* "<node id or title>.<input name>": the input is what follows the last dot. */
static bool override_key_ok(const char *k) {
    const char *dot = strrchr(k, '.');
    size_t n = strlen(k);
    if (!dot || dot == k || !dot[1] || n > GQ_REQUEST_OVERRIDE_KEY_MAX)
        return false;
    for (const char *p = k; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    for (const char *p = dot + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return gq_utf8_valid(k, n);
}

static gq_status_t check_overrides(const gq_request_t *req, char *errstr, size_t errstr_size) {
    if (req->overrides_cnt > GQ_REQUEST_OVERRIDES_MAX)
        return bad(errstr, errstr_size, "overrides: %zu entries; at most %d allowed",
                   req->overrides_cnt, GQ_REQUEST_OVERRIDES_MAX);
    for (size_t i = 0; i < req->overrides_cnt; i++) {
        const gq_kv_t *o = &req->overrides[i];
        if (!o->key || !o->value)
            return bad(errstr, errstr_size, "overrides: entry %zu is NULL", i);
        if (!override_key_ok(o->key))
            return bad(errstr, errstr_size,
                       "overrides: key \"%.64s\" is not \"<node id or title>.<input name>\"",
                       o->key);
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->overrides[j].key, o->key) == 0)
                return bad(errstr, errstr_size, "overrides: key \"%.64s\" appears twice", o->key);
        if (strlen(o->value) > GQ_REQUEST_OVERRIDE_VALUE_MAX)
            return bad(errstr, errstr_size, "overrides[\"%.64s\"]: value longer than %d bytes",
                       o->key, GQ_REQUEST_OVERRIDE_VALUE_MAX);
        json_error_t jerr;
        json_t *j = json_loads(o->value, JSON_DECODE_ANY, &jerr);
        if (!j)
            return bad(errstr, errstr_size,
                       "overrides[\"%.64s\"]: value is not a JSON literal (%s); a string "
                       "needs quotes, e.g. \"\\\"a cat\\\"\"",
                       o->key, jerr.text);
        json_decref(j);
    }
    return GQ_OK;
}

static gq_status_t check_metadata(const gq_request_t *req, char *errstr, size_t errstr_size) {
    if (req->metadata_cnt > GQ_REQUEST_METADATA_MAX)
        return bad(errstr, errstr_size, "metadata: %zu entries; at most %d allowed",
                   req->metadata_cnt, GQ_REQUEST_METADATA_MAX);
    for (size_t i = 0; i < req->metadata_cnt; i++) {
        const gq_kv_t *m = &req->metadata[i];
        if (!m->key || !m->value)
            return bad(errstr, errstr_size, "metadata: entry %zu is NULL", i);
        if (!m->key[0] || check_label("metadata key", m->key, GQ_REQUEST_METADATA_KEY_MAX, errstr,
                                      errstr_size) != GQ_OK)
            return bad(errstr, errstr_size,
                       "metadata: key \"%.64s\" must be 1..%d bytes of UTF-8 without control "
                       "characters",
                       m->key, GQ_REQUEST_METADATA_KEY_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->metadata[j].key, m->key) == 0)
                return bad(errstr, errstr_size, "metadata: key \"%.64s\" appears twice", m->key);
        if (check_text("metadata value", m->value, GQ_REQUEST_METADATA_VALUE_MAX, errstr,
                       errstr_size) != GQ_OK)
            return bad(errstr, errstr_size,
                       "metadata[\"%.64s\"]: value must be at most %d bytes of UTF-8", m->key,
                       GQ_REQUEST_METADATA_VALUE_MAX);
    }
    return GQ_OK;
}

static gq_status_t check_workflow_json(const char *wj, char *errstr, size_t errstr_size) {
    size_t n = strlen(wj);
    if (n > GQ_REQUEST_WORKFLOW_JSON_MAX)
        return bad(errstr, errstr_size, "workflow_json: %zu bytes; at most %u allowed", n,
                   GQ_REQUEST_WORKFLOW_JSON_MAX);
    json_error_t jerr;
    json_t *j = json_loadb(wj, n, 0, &jerr);
    bool parsed = j != NULL, object = json_is_object(j);
    json_decref(j);
    if (!parsed)
        return bad(errstr, errstr_size, "workflow_json: not JSON (%s)", jerr.text);
    if (!object)
        return bad(errstr, errstr_size, "workflow_json: not a JSON object");
    return GQ_OK;
}

static gq_status_t check_size(const char *field, int32_t v, char *errstr, size_t errstr_size) {
    if (v < 16 || v > 16384 || v % 8 != 0)
        return bad(errstr, errstr_size, "%s: %d is not a multiple of 8 in 16..16384", field,
                   (int)v);
    return GQ_OK;
}

gq_status_t gq_request_validate_field(const gq_request_t *req, gq_request_field_t field,
                                      char *errstr, size_t errstr_size) {
    switch (field) {
    case GQ_REQ_JOB_ID:
        if (!gq_uuid_valid(req->job_id))
            return bad(errstr, errstr_size,
                       "job_id: \"%.40s\" is not a canonical lowercase uuid (8-4-4-4-12 hex)",
                       req->job_id);
        return GQ_OK;
    case GQ_REQ_SUBMITTED_AT:
        if (req->submitted_at < 0)
            return bad(errstr, errstr_size, "submitted_at: %lld is before 1970",
                       (long long)req->submitted_at);
        return GQ_OK;
    case GQ_REQ_WORKFLOW:
        return req->workflow
                   ? check_name("workflow", req->workflow, GQ_REQUEST_NAME_MAX, errstr, errstr_size)
                   : GQ_OK;
    case GQ_REQ_WORKFLOW_JSON:
        return req->workflow_json ? check_workflow_json(req->workflow_json, errstr, errstr_size)
                                  : GQ_OK;
    case GQ_REQ_PROMPT:
        if (!req->prompt)
            return bad(errstr, errstr_size, "prompt: missing");
        return check_text("prompt", req->prompt, GQ_REQUEST_PROMPT_MAX, errstr, errstr_size);
    case GQ_REQ_NEGATIVE_PROMPT:
        return check_text("negative_prompt", req->negative_prompt, GQ_REQUEST_PROMPT_MAX, errstr,
                          errstr_size);
    case GQ_REQ_WIDTH: return check_size("width", req->width, errstr, errstr_size);
    case GQ_REQ_HEIGHT: return check_size("height", req->height, errstr, errstr_size);
    case GQ_REQ_SEED:
        if (req->seed < 0)
            return bad(errstr, errstr_size, "seed: %lld is negative", (long long)req->seed);
        return GQ_OK;
    case GQ_REQ_STEPS:
        if (req->steps < 1 || req->steps > 10000)
            return bad(errstr, errstr_size, "steps: %d is not in 1..10000", (int)req->steps);
        return GQ_OK;
    case GQ_REQ_CFG:
        if (!isfinite(req->cfg) || req->cfg < 0 || req->cfg > 100)
            return bad(errstr, errstr_size, "cfg: %g is not a number in 0..100", req->cfg);
        return GQ_OK;
    case GQ_REQ_SAMPLER:
        return req->sampler ? check_name("sampler", req->sampler, GQ_REQUEST_SAMPLER_MAX, errstr,
                                         errstr_size)
                            : GQ_OK;
    case GQ_REQ_SCHEDULER:
        return req->scheduler ? check_name("scheduler", req->scheduler, GQ_REQUEST_SAMPLER_MAX,
                                           errstr, errstr_size)
                              : GQ_OK;
    case GQ_REQ_MODEL:
        if (req->model && !model_ok(req->model))
            return bad(errstr, errstr_size,
                       "model: \"%.64s\" is not a checkpoint name ('/'-separated safe names of "
                       "[A-Za-z0-9._-], none starting with '.', at most %d bytes)",
                       req->model, GQ_REQUEST_MODEL_MAX);
        return GQ_OK;
    case GQ_REQ_BATCH_SIZE:
        if (req->batch_size < 1 || req->batch_size > 64)
            return bad(errstr, errstr_size, "batch_size: %d is not in 1..64", (int)req->batch_size);
        return GQ_OK;
    case GQ_REQ_OVERRIDES: return check_overrides(req, errstr, errstr_size);
    case GQ_REQ_PRIORITY: return GQ_OK;
    case GQ_REQ_SOURCE:
        return check_label("source", req->source, GQ_REQUEST_SOURCE_MAX, errstr, errstr_size);
    case GQ_REQ_MAX_ATTEMPTS:
        if (req->max_attempts != 0 && (req->max_attempts < 1 || req->max_attempts > 100))
            return bad(errstr, errstr_size, "max_attempts: %d is not in 1..100 (0: not given)",
                       (int)req->max_attempts);
        return GQ_OK;
    case GQ_REQ_TIMEOUT_S:
        if (req->timeout_s != 0 && (req->timeout_s < 1 || req->timeout_s > 86400))
            return bad(errstr, errstr_size, "timeout_s: %d is not in 1..86400 (0: not given)",
                       (int)req->timeout_s);
        return GQ_OK;
    case GQ_REQ_METADATA: return check_metadata(req, errstr, errstr_size);
    case GQ_REQ_FIELD_CNT: break;
    }
    return bad(errstr, errstr_size, "no field %d in GenerationRequest", (int)field);
}

/* Fields are checked in schema order, so the message names the first bad one. */
gq_status_t gq_request_validate(const gq_request_t *req, char *errstr, size_t errstr_size) {
    for (int f = 0; f < GQ_REQ_FIELD_CNT; f++) {
        gq_status_t st = gq_request_validate_field(req, (gq_request_field_t)f, errstr, errstr_size);
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}
