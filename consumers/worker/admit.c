/* Admission (see admit.h). */
#include "admit.h"
#include "codes.h"
#include "guard.h"
#include "template.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

void gq_admit_cache_release(gq_admit_cache_t *c) {
    if (!c)
        return;
    for (size_t i = 0; i < GQ_ADMIT_CACHE_MAX; i++)
        json_decref(c->e[i].tmpl);
    memset(c, 0, sizeof(*c));
}

/* The template's file as it is now (or that there is none: a built-in is used). */
static bool admit_file(const char *dir, const char *name, struct stat *st) {
    char path[1024];
    int n = snprintf(path, sizeof(path), "%s/%s.json", dir ? dir : "", name);
    return dir && *dir && n > 0 && (size_t)n < sizeof(path) && stat(path, st) == 0;
}

/* gq_template_load through the cache: a new reference in *out. */
static gq_status_t admit_template(const gq_admit_cfg_t *cfg, const char *name, json_t **out,
                                  char *errstr, size_t errstr_size) {
    gq_admit_cache_t *c = cfg->cache;
    if (!c || strlen(name) >= sizeof(c->e[0].name))
        return gq_template_load(cfg->workflows_dir, name, out, errstr, errstr_size);
    struct stat st;
    bool file = admit_file(cfg->workflows_dir, name, &st);
    for (size_t i = 0; i < GQ_ADMIT_CACHE_MAX; i++) {
        if (!c->e[i].tmpl || strcmp(c->e[i].name, name) != 0)
            continue;
        bool same = file ? !c->e[i].builtin && c->e[i].size == (int64_t)st.st_size &&
                               c->e[i].ino == (uint64_t)st.st_ino &&
                               c->e[i].mtime_ns ==
                                   (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec
                         : c->e[i].builtin;
        if (same) {
            *out = json_incref(c->e[i].tmpl);
            return GQ_OK;
        }
        json_decref(c->e[i].tmpl);
        c->e[i].tmpl = NULL;
    }
    gq_status_t rc = gq_template_load(cfg->workflows_dir, name, out, errstr, errstr_size);
    if (rc != GQ_OK)
        return rc;
    size_t slot = c->next;
    for (size_t i = 0; i < GQ_ADMIT_CACHE_MAX; i++)
        if (!c->e[i].tmpl) {
            slot = i;
            break;
        }
    if (slot == c->next)
        c->next = (c->next + 1) % GQ_ADMIT_CACHE_MAX;
    json_decref(c->e[slot].tmpl);
    gq_strlcpy(c->e[slot].name, name, sizeof(c->e[slot].name));
    c->e[slot].tmpl = json_incref(*out);
    c->e[slot].builtin = !file;
    c->e[slot].size = file ? (int64_t)st.st_size : 0;
    c->e[slot].ino = file ? (uint64_t)st.st_ino : 0;
    c->e[slot].mtime_ns = file ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec : 0;
    return GQ_OK;
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
    if (cfg->max_message_bytes && len > cfg->max_message_bytes) {
        /* Too big to take, whatever it holds; its job id, if it can be read, names the
         * failure. The dead letter carries the first bytes, with headers saying so. */
        if (out->req.job_id[0] && gq_uuid_valid(out->req.job_id))
            memcpy(out->job_id, out->req.job_id, sizeof(out->job_id));
        out->decoded = false;
        out->dead_letter = true;
        out->dead_cut = cfg->max_message_bytes;
        snprintf(err, sizeof(err),
                 "message of %zu bytes, over the limit of %zu (max_message_bytes)", len,
                 cfg->max_message_bytes);
        admit_fail(out, GQ_CODE_MESSAGE_TOO_LARGE, err);
        return;
    }
    out->decoded = dst == GQ_OK;
    /* The request's own id wins over the key: the key is only a fallback for garbage. */
    if (out->req.job_id[0] && gq_uuid_valid(out->req.job_id))
        memcpy(out->job_id, out->req.job_id, sizeof(out->job_id));
    if (dst == GQ_ERR_TRANSIENT) {
        /* Its writer's schema is somewhere we cannot reach now: a delay, not a failure. */
        out->verdict = GQ_ADMIT_LATER;
        gq_strlcpy(out->message, err, sizeof(out->message));
        return;
    }
    if (dst != GQ_OK) {
        /* It did not even decode: poison, so it goes to the dead-letter topic too. */
        out->dead_letter = true;
        admit_fail(out, GQ_CODE_DECODE_ERROR, err);
        return;
    }
    out->max_attempts = out->req.max_attempts > 0 ? out->req.max_attempts : cfg->max_attempts;
    if (gq_request_validate(&out->req, err, sizeof(err)) != GQ_OK) {
        admit_fail(out, GQ_CODE_INVALID_REQUEST, err);
        return;
    }
    /* The worker's policy (guard.h) is asked before binding (may the request come in this
     * way at all) and after (may ComfyUI run what it became). */
    const gq_guard_t *guard = cfg->guard ? cfg->guard : gq_guard_default();
    bool is_inline = out->req.workflow_json != NULL;
    json_t *tmpl = NULL;
    gq_status_t st;
    if (is_inline) {
        if (gq_guard_request(guard, &out->req, NULL, true, err, sizeof(err)) != GQ_OK) {
            admit_fail(out, GQ_CODE_WORKFLOW_NOT_ALLOWED, err);
            return;
        }
        st = gq_workflow_parse(out->req.workflow_json, strlen(out->req.workflow_json), &tmpl, err,
                               sizeof(err));
    } else {
        st = admit_template(cfg, out->req.workflow, &tmpl, err, sizeof(err));
    }
    if (st != GQ_OK) {
        admit_fail(out, st == GQ_ERR_NOTFOUND ? GQ_CODE_UNKNOWN_TEMPLATE : GQ_CODE_INVALID_WORKFLOW,
                   err);
        return;
    }
    if (!is_inline && gq_guard_request(guard, &out->req, tmpl, false, err, sizeof(err)) != GQ_OK) {
        json_decref(tmpl);
        admit_fail(out, GQ_CODE_WORKFLOW_NOT_ALLOWED, err);
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "genq/%s", out->job_id);
    gq_template_info_t info = {0};
    gq_bind_opts_t opts = {
        .filename_prefix = prefix, .is_inline = is_inline, .name = out->req.workflow};
    st = gq_workflow_bind(tmpl, &out->req, &opts, &out->workflow, &info, err, sizeof(err));
    json_decref(tmpl);
    if (st != GQ_OK) {
        admit_fail(out, GQ_CODE_INVALID_WORKFLOW, err);
        return;
    }
    if (gq_guard_workflow(guard, out->workflow, is_inline, prefix, err, sizeof(err)) != GQ_OK) {
        json_decref(out->workflow);
        out->workflow = NULL;
        admit_fail(out, GQ_CODE_WORKFLOW_NOT_ALLOWED, err);
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
