/**
 * @file template.h
 * @brief Turns a GenerationRequest into an API-format ComfyUI workflow.
 *
 * Templates are API-format workflows (<workflows_dir>/<name>.json, or the ones embedded
 * from workflows/). Binding is graph-aware: the sampler (KSampler / KSamplerAdvanced) is
 * found, its "positive" and "negative" links are followed to their CLIPTextEncode nodes for
 * the prompt texts; its latent_image link to EmptyLatentImage for width, height and
 * batch_size; its model link (through any chain) to the checkpoint loader for the model;
 * seed/steps/cfg/sampler_name/scheduler are set on the sampler; SaveImage's
 * filename_prefix is set to a per-job prefix. Overrides "<node id or _meta.title>.<input>"
 * = JSON literal are applied last.
 */
#ifndef GQ_TEMPLATE_H
#define GQ_TEMPLATE_H

#include "gq.h"
#include "genq_schema.h"

#include <jansson.h>

typedef struct gq_template_info {
    int timeout_s; /**< per-template default deadline ("_genq": {"timeout_s": N}), 0 if none */
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

/**
 * Binds req into a deep copy of tmpl; *out is a new reference. filename_prefix is the
 * SaveImage prefix to set (e.g. "genq/<job_id>"). GQ_ERR_INVALID with a precise reason
 * when the graph has no sampler, a link is dangling, an override names no node, etc.
 */
gq_status_t gq_template_bind(json_t *tmpl, const gq_request_t *req, const char *filename_prefix,
                             json_t **out, gq_template_info_t *info, char *errstr,
                             size_t errstr_size);

#endif
