/**
 * @file graph.h
 * @brief Reading an API-format ComfyUI workflow: links, node classes, and where each field
 * of a GenerationRequest would go (its "places").
 *
 * Nothing here changes the workflow. gq_places_find() follows links from the nodes that save
 * files (SaveImage, SaveAnimatedWEBP, SaveVideo, SaveAudio, ..., any node with a
 * filename_prefix) back through the graph: to the sampler that feeds them (KSampler,
 * KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced) and from there to its seed, steps,
 * cfg, sampler and scheduler (on the sampler itself, or on the RandomNoise, BasicScheduler,
 * KSamplerSelect and CFGGuider nodes it takes them from), its text encoders and its model
 * loader; and along the image path to the node that sets the output size (EmptyLatentImage,
 * EmptyImage, ImageScale, LatentUpscale...) and the one that sets the batch. Where a field
 * has no place, `why` says so in words that follow "the workflow ...".
 */
#ifndef GQ_GRAPH_H
#define GQ_GRAPH_H

#include "gq.h"

#include <jansson.h>
#include <stdbool.h>

/** The request fields genq binds into a workflow. */
typedef enum gq_field {
    GQ_FIELD_PROMPT,
    GQ_FIELD_NEGATIVE,
    GQ_FIELD_SIZE, /**< width and height together */
    GQ_FIELD_BATCH,
    GQ_FIELD_SEED,
    GQ_FIELD_STEPS,
    GQ_FIELD_CFG,
    GQ_FIELD_SAMPLER,
    GQ_FIELD_SCHEDULER,
    GQ_FIELD_MODEL,
    GQ_FIELD_COUNT
} gq_field_t;

#define GQ_PLACES_MAX 4

/** One input of one node. node points at a key of the workflow (valid while it lives). */
typedef struct gq_place {
    const char *node;
    const char *input; /**< for GQ_FIELD_SIZE: NULL, the node takes "width" and "height" */
} gq_place_t;

typedef struct gq_places {
    const char *sampler; /**< the sampler the request is bound to, NULL when none */
    gq_place_t at[GQ_FIELD_COUNT][GQ_PLACES_MAX];
    size_t n[GQ_FIELD_COUNT];      /**< 0: the field has no place in this workflow */
    char why[GQ_FIELD_COUNT][320]; /**< when n is 0: why, a predicate ("has no sampler ...") */
    const char **savers;           /**< nodes that save files (owned array; ids borrowed) */
    size_t savers_cnt;
} gq_places_t;

/** A link is exactly ["<source node id>", <output index>]. */
bool gq_graph_link(json_t *v, const char **src, json_int_t *slot);
const char *gq_graph_class(json_t *node);
json_t *gq_graph_inputs(json_t *node);
/** The id as stored in wf (a pointer that lives as long as the node), NULL if absent. */
const char *gq_graph_key(json_t *wf, const char *id);

/**
 * True for a node that saves files into ComfyUI's output directory, whose filename_prefix
 * genq sets: the stock saving classes, and any node with a literal filename_prefix.
 */
bool gq_graph_is_saver(json_t *node);

/**
 * The node `ref` names, as an override key does: its id, else its _meta.title when exactly
 * one node has it. GQ_OK with *id (a key of wf), GQ_ERR_NOTFOUND, or GQ_ERR_INVALID when
 * the title is ambiguous.
 */
gq_status_t gq_graph_node_ref(json_t *wf, const char *ref, const char **id);

/** True for the output nodes that write only temporary previews (PreviewImage...). */
bool gq_graph_is_preview(json_t *node);

/** Marks (in the object seen, id -> true) start and every node it depends on. */
gq_status_t gq_graph_mark_upstream(json_t *wf, const char *start, json_t *seen);

/** Formats up to five node ids as "\"3\", \"12\"" into dst. */
const char *gq_graph_ids(char *dst, size_t dst_size, const char **ids, size_t n);

/**
 * Finds the places of every request field in wf (a checked API-format graph). GQ_OK unless
 * out of memory; a field that has no place is not an error here (p->n[f] == 0 and
 * p->why[f] says why). Release p with gq_places_release.
 */
gq_status_t gq_places_find(json_t *wf, gq_places_t *p, char *errstr, size_t errstr_size);
void gq_places_release(gq_places_t *p);

#endif
