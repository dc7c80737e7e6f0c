/**
 * @file guard.h
 * @brief What a request may make ComfyUI do: the worker's policy on inline workflows, node
 * classes and overrides, and the inputs genq keeps to itself.
 *
 * Whoever may write to the requests topic reaches ComfyUI through genq. The guard decides,
 * before ComfyUI hears of a request, whether its workflow may run:
 *  - inline workflows (`workflow_json`): `off` refuses them, `allowlist` takes only the node
 *    classes of a list (genq's list of core ComfyUI nodes unless configured), `allow` any;
 *  - overrides of a template: only the keys the template lists in its metadata
 *    (`"_genq": {"overrides": ["KSampler.denoise", "6.*"]}`); a template without the list
 *    takes any override under `allow` and none otherwise;
 *  - whatever the mode, no override may set a `filename_prefix` (genq names every output
 *    after its job), every node with a `filename_prefix` must carry genq's, and no file
 *    input (LoadImage's `image` and the like) may leave ComfyUI's input directory (`..`, an
 *    absolute path) or name its output or temp files (`x.png [output]`, `[temp]`).
 * A refusal is GQ_ERR_INVALID with the reason in errstr: the job fails for good
 * (workflow_not_allowed).
 */
#ifndef GQ_GUARD_H
#define GQ_GUARD_H

#include "genq_schema.h"
#include "gq.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum gq_inline_mode {
    GQ_INLINE_ALLOW = 0, /**< any inline workflow (the writers of the topic are trusted) */
    GQ_INLINE_ALLOWLIST, /**< inline workflows of the allowed node classes only */
    GQ_INLINE_OFF,       /**< templates only */
} gq_inline_mode_t;

typedef struct gq_guard {
    gq_inline_mode_t inline_mode;
    char **classes; /**< allowed node classes under allowlist, sorted (owned) */
    size_t classes_cnt;
} gq_guard_t;

/** The node classes allowed when inline_node_classes is not set (NULL-terminated). */
extern const char *const gq_guard_default_classes[];

/**
 * Reads the policy: mode is "off", "allow" or "allowlist"; classes (NULL or "": the default
 * list) is a file of class names, one per line (# comments), when it contains a '/', else
 * a comma-separated list, where the word "default" stands for the default list. Release g
 * with gq_guard_release. GQ_ERR_INVALID (errstr says why) for a bad mode, an unreadable
 * file or an empty list.
 */
gq_status_t gq_guard_init(gq_guard_t *g, const char *mode, const char *classes, char *errstr,
                          size_t errstr_size);
void gq_guard_release(gq_guard_t *g);

/** The mode's name: "allow", "allowlist" or "off". */
const char *gq_guard_mode_name(gq_inline_mode_t m);

/** True when class `cls` may appear in an inline workflow. */
bool gq_guard_class_allowed(const gq_guard_t *g, const char *cls);

/**
 * Before binding: whether the request may come in this way. tmpl is the template (with its
 * "_genq" metadata) or the parsed inline workflow; is_inline says which.
 */
gq_status_t gq_guard_request(const gq_guard_t *g, const gq_request_t *req, json_t *tmpl,
                             bool is_inline, char *errstr, size_t errstr_size);

/**
 * After binding: whether ComfyUI may run wf, the bound workflow. prefix is the
 * filename_prefix genq gave the saving nodes.
 */
gq_status_t gq_guard_workflow(const gq_guard_t *g, json_t *wf, bool is_inline, const char *prefix,
                              char *errstr, size_t errstr_size);

/**
 * The policy admission applies when its configuration names none: set once by the worker's
 * main before the worker starts (g is borrowed until replaced; NULL: the built-in default,
 * `allow` with the checks every mode makes).
 */
void gq_guard_set_default(const gq_guard_t *g);
const gq_guard_t *gq_guard_default(void);

#endif
