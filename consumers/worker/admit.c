/* Admission (see admit.h). */
#include "admit.h"
#include "template.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gq_admit_model_of(json_t *wf) {
    const char *id;
    json_t *node;
    json_object_foreach(wf, id, node) {
        json_t *name = json_object_get(json_object_get(node, "inputs"), "ckpt_name");
        if (json_is_string(name))
            return json_string_value(name);
    }
    return NULL;
}

static void admit_fail(gq_admit_t *a, const char *code, const char *msg) {
    a->verdict = a->job_id[0] ? GQ_ADMIT_FAIL : GQ_ADMIT_REJECT;
    gq_strlcpy(a->code, code, sizeof(a->code));
    gq_strlcpy(a->message, msg, sizeof(a->message));
}

void gq_admit_message(const void *payload, size_t len, const char *key_job_id,
                      const gq_admit_cfg_t *cfg, gq_admit_t *out) {
    memset(out, 0, sizeof(*out));
    char err[1024];
    if (key_job_id && gq_uuid_valid(key_job_id))
        memcpy(out->job_id, key_job_id, sizeof(out->job_id));
    gq_status_t dst = gq_request_decode(payload, len, &out->req, err, sizeof(err));
    out->decoded = dst == GQ_OK;
    /* The request's own id wins over the key: the key is only a fallback for garbage. */
    if (out->req.job_id[0] && gq_uuid_valid(out->req.job_id))
        memcpy(out->job_id, out->req.job_id, sizeof(out->job_id));
    if (dst != GQ_OK) {
        /* It did not even decode: poison, so it goes to the dead-letter topic too. */
        out->dead_letter = true;
        admit_fail(out, "decode_error", err);
        return;
    }
    out->max_attempts = out->req.max_attempts > 0 ? out->req.max_attempts : cfg->max_attempts;
    if (gq_request_validate(&out->req, err, sizeof(err)) != GQ_OK) {
        admit_fail(out, "invalid_request", err);
        return;
    }
    json_t *tmpl = NULL;
    gq_status_t st;
    if (out->req.workflow_json)
        st = gq_workflow_parse(out->req.workflow_json, strlen(out->req.workflow_json), &tmpl, err,
                               sizeof(err));
    else
        st = gq_template_load(cfg->workflows_dir, out->req.workflow, &tmpl, err, sizeof(err));
    if (st != GQ_OK) {
        admit_fail(out, st == GQ_ERR_NOTFOUND ? "unknown_template" : "invalid_workflow", err);
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "genq/%s", out->job_id);
    gq_template_info_t info = {0};
    gq_bind_opts_t opts = {.filename_prefix = prefix,
                           .is_inline = out->req.workflow_json != NULL,
                           .name = out->req.workflow};
    st = gq_workflow_bind(tmpl, &out->req, &opts, &out->workflow, &info, err, sizeof(err));
    json_decref(tmpl);
    if (st != GQ_OK) {
        admit_fail(out, "invalid_workflow", err);
        return;
    }
    const char *m = out->req.model ? out->req.model
                    : info.model   ? info.model
                                   : gq_admit_model_of(out->workflow);
    out->model = m ? strdup(m) : NULL;
    out->timeout_s = out->req.timeout_s > 0 ? out->req.timeout_s
                     : info.timeout_s > 0   ? info.timeout_s
                                            : cfg->job_timeout_s;
    out->verdict = GQ_ADMIT_OK;
}

void gq_admit_release(gq_admit_t *a) {
    gq_request_release(&a->req);
    json_decref(a->workflow);
    free(a->model);
    a->workflow = NULL;
    a->model = NULL;
}
