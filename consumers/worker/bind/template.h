/**
 * @file template.h
 * @brief Turns a GenerationRequest into an API-format ComfyUI workflow.
 *
 * Templates are API-format workflows (<workflows_dir>/<name>.json, or the ones embedded
 * from workflows/); a request may also carry its own (workflow_json). Binding is
 * graph-aware (graph.h finds the places): the sampler that feeds the saving nodes
 * (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced) takes seed, steps,
 * cfg, sampler and scheduler, on itself or on the nodes it takes them from (RandomNoise,
 * BasicScheduler, KSamplerSelect, CFGGuider); its conditionings lead to the text encoders
 * for the prompts; its model chain to the checkpoint loader; the image path from the saving
 * nodes to the node that sets the size (EmptyLatentImage, EmptyImage, ImageScale,
 * LatentUpscale...) and the batch. Every saving node's filename_prefix is set to a per-job
 * prefix. Overrides "<node id or _meta.title>.<input>" = JSON literal are applied last.
 */
#ifndef GQ_TEMPLATE_H
#define GQ_TEMPLATE_H

#include "gq.h"
#include "genq_schema.h"

#include <jansson.h>

typedef struct gq_template_info {
    int timeout_s;     /**< per-template default deadline ("_genq": {"timeout_s": N}), 0 if none */
    const char *model; /**< the checkpoint (or UNet) the bound sampler loads, NULL if none;
                            borrowed from the bound workflow */
} gq_template_info_t;

/**
 * Loads template `name` from dir (falls back to the embedded workflows/<name>.json).
 * The name must be a safe file name ([A-Za-z0-9._-], no leading dot) or GQ_ERR_INVALID.
 * Unknown template: GQ_ERR_NOTFOUND. Returns a new reference in *out.
 */
gq_status_t gq_template_load(const char *dir, const char *name, json_t **out, char *errstr,
                             size_t errstr_size);

/**
 * Parses and checks an API-format workflow text. A UI-format workflow (top-level "nodes"
 * and "links" arrays) is rejected with a message saying it must be exported with
 * "Export (API)"; so is anything that is not an object of nodes with class_type and inputs.
 */
gq_status_t gq_workflow_parse(const char *text, size_t len, json_t **out, char *errstr,
                              size_t errstr_size);

/** How a request is bound. */
typedef struct gq_bind_opts {
    const char *filename_prefix; /**< set on every saving node (e.g. "genq/<job_id>"); NULL:
                                      left as it is */
    bool is_inline;              /**< the request's own workflow_json, not a template */
    const char *name;            /**< the template's name, for messages (not inline) */
} gq_bind_opts_t;

/**
 * Binds req into a deep copy of wf; *out is a new reference. Each request field goes where
 * the graph has a place for it (graph.h). A template takes every field it has a place for;
 * an inline workflow keeps its own values for the fields the request leaves at their schema
 * defaults (Avro cannot say "not set"). A field the request sets (not at its default) that
 * the graph has no place for is refused with GQ_ERR_INVALID, in the request's terms ("the
 * request sets steps=30 but the inline workflow has no sampler to take it"); so is a graph
 * that saves no file, a malformed one, an override that names no node. SaveImageWebsocket
 * nodes become SaveImage nodes (genq collects files); every saving node gets
 * filename_prefix. Overrides are applied last; they may not change a filename_prefix.
 */
gq_status_t gq_workflow_bind(json_t *wf, const gq_request_t *req, const gq_bind_opts_t *opts,
                             json_t **out, gq_template_info_t *info, char *errstr,
                             size_t errstr_size);

/** gq_workflow_bind for the template named req->workflow (tmpl), with filename_prefix. */
gq_status_t gq_template_bind(json_t *tmpl, const gq_request_t *req, const char *filename_prefix,
                             json_t **out, gq_template_info_t *info, char *errstr,
                             size_t errstr_size);

#endif
