/**
 * @file graph.c
 * @brief Reading a workflow graph: where each request field goes (see graph.h).
 *
 * Places are found by following links, never by node ids or titles: exported workflows
 * number their nodes in editing order and users rename titles freely. Where the graph is
 * not one genq understands, the field has no place and `why` says what was found instead;
 * whether that matters (the request sets the field) is for the caller to decide.
 */
#include "graph.h"

#include "buf.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stock nodes that save files (each also takes a filename_prefix). */
static const char *const graph_saver_classes[] = {
    "SaveImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveWEBM", "SaveVideo",
    "SaveAudio", "SaveAudioMP3",     "SaveAudioOpus",   NULL,
};
/* Output nodes that write only temporary previews (type "temp"): not results. */
static const char *const graph_preview_classes[] = {"PreviewImage", "PreviewAudio", "PreviewAny",
                                                    "SaveImageWebsocket", NULL};
static const char *const graph_audio_savers[] = {"SaveAudio", "SaveAudioMP3", "SaveAudioOpus",
                                                 NULL};
static const char *const graph_sampler_classes[] = {"KSampler", "KSamplerAdvanced", "SamplerCustom",
                                                    "SamplerCustomAdvanced", NULL};

/* Text encoders and the inputs that take the prompt text. */
static const struct {
    const char *cls;
    const char *inputs[3];
} graph_encoders[] = {
    {"CLIPTextEncode", {"text"}},
    {"CLIPTextEncodeSDXL", {"text_g", "text_l"}},
    {"CLIPTextEncodeSDXLRefiner", {"text"}},
    {"CLIPTextEncodeFlux", {"clip_l", "t5xxl"}},
    {"CLIPTextEncodeSD3", {"clip_l", "clip_g", "t5xxl"}},
};

/*
 * The image path: the nodes genq knows between a saving node and where the picture starts.
 * `follow` is the input the image (or latent) comes in by (NULL: it starts here); `size`: the
 * node decides the size of what leaves it (literal width and height); `batch`: it decides
 * the batch (a literal batch_size). Every other node on the way passes both through.
 * An unknown node ends the walk: it may scale, crop or repeat, and guessing would size the
 * wrong node silently.
 */
static const struct {
    const char *cls;
    const char *follow;
    bool size, batch;
} graph_path[] = {
    {"EmptyLatentImage", NULL, true, true},
    {"EmptySD3LatentImage", NULL, true, true},
    {"EmptyImage", NULL, true, true},
    {"EmptyHunyuanLatentVideo", NULL, true, true},
    {"EmptyMochiLatentVideo", NULL, true, true},
    {"EmptyLTXVLatentVideo", NULL, true, true},
    {"ImageScale", "image", true, false},
    {"ImageCrop", "image", true, false},
    {"LatentUpscale", "samples", true, false},
    {"VAEDecode", "samples", false, false},
    {"VAEDecodeTiled", "samples", false, false},
    {"KSampler", "latent_image", false, false},
    {"KSamplerAdvanced", "latent_image", false, false},
    {"SamplerCustom", "latent_image", false, false},
    {"SamplerCustomAdvanced", "latent_image", false, false},
    {"SetLatentNoiseMask", "samples", false, false},
    {"ImageBlur", "image", false, false},
    {"ImageSharpen", "image", false, false},
    {"ImageInvert", "image", false, false},
    {"ImageQuantize", "image", false, false},
    {"ImageBlend", "image1", false, false},
    {"CreateVideo", "images", false, false},
};

/* The inputs a saving node takes its picture by, in order of preference. */
static const char *const graph_saver_inputs[] = {"images", "image", "video", NULL};

static bool graph_in(const char *cls, const char *const *list) {
    for (size_t i = 0; cls && list[i]; i++)
        if (strcmp(cls, list[i]) == 0)
            return true;
    return false;
}

static bool graph_is(const char *cls, const char *want) { return cls && strcmp(cls, want) == 0; }

bool gq_graph_link(json_t *v, const char **src, json_int_t *slot) {
    if (!json_is_array(v) || json_array_size(v) != 2)
        return false;
    json_t *id = json_array_get(v, 0), *ix = json_array_get(v, 1);
    if (!json_is_string(id) || !json_is_integer(ix) || json_integer_value(ix) < 0)
        return false;
    if (src)
        *src = json_string_value(id);
    if (slot)
        *slot = json_integer_value(ix);
    return true;
}

const char *gq_graph_class(json_t *node) {
    return json_string_value(json_object_get(node, "class_type"));
}

json_t *gq_graph_inputs(json_t *node) { return json_object_get(node, "inputs"); }

const char *gq_graph_key(json_t *wf, const char *id) {
    void *it = id ? json_object_iter_at(wf, id) : NULL;
    return it ? json_object_iter_key(it) : NULL;
}

bool gq_graph_is_saver(json_t *node) {
    if (graph_in(gq_graph_class(node), graph_saver_classes))
        return true;
    if (graph_in(gq_graph_class(node), graph_preview_classes))
        return false;
    return json_is_string(json_object_get(gq_graph_inputs(node), "filename_prefix"));
}

/* The node an input of node `id` links to (its key in wf), or NULL. */
static const char *graph_linked(json_t *wf, const char *id, const char *input, json_int_t *slot) {
    const char *src;
    json_t *v = json_object_get(gq_graph_inputs(json_object_get(wf, id)), input);
    if (!gq_graph_link(v, &src, slot))
        return NULL;
    return gq_graph_key(wf, src);
}

/* True when node `id` has `input` as a value (not a link). */
static bool graph_has_value(json_t *wf, const char *id, const char *input) {
    json_t *v = json_object_get(gq_graph_inputs(json_object_get(wf, id)), input);
    return v && !gq_graph_link(v, NULL, NULL);
}

static const char *graph_cls(json_t *wf, const char *id) {
    const char *cls = gq_graph_class(json_object_get(wf, id));
    return cls ? cls : "?";
}

gq_status_t gq_graph_mark_upstream(json_t *wf, const char *start, json_t *seen) {
    if (json_object_get(seen, start))
        return GQ_OK;
    /* Each node is pushed at most once (marked when pushed), so this size is enough. */
    size_t cap = json_object_size(wf) + 1, top = 0;
    const char **stack = malloc(cap * sizeof(*stack));
    if (!stack || json_object_set_new(seen, start, json_true()) != 0) {
        free(stack);
        return GQ_ERR_NOMEM;
    }
    stack[top++] = start;
    gq_status_t st = GQ_OK;
    while (top > 0 && st == GQ_OK) {
        json_t *inputs = gq_graph_inputs(json_object_get(wf, stack[--top]));
        const char *name, *src;
        json_t *v;
        json_object_foreach(inputs, name, v) {
            if (!gq_graph_link(v, &src, NULL) || json_object_get(seen, src) ||
                !json_object_get(wf, src))
                continue;
            if (top >= cap || json_object_set_new(seen, src, json_true()) != 0) {
                st = GQ_ERR_NOMEM;
                break;
            }
            /* The key inside wf outlives the walk; src points into the link array. */
            stack[top++] = gq_graph_key(wf, src);
        }
    }
    free(stack);
    return st;
}

const char *gq_graph_ids(char *dst, size_t dst_size, const char **ids, size_t n) {
    gq_buf_t b;
    gq_buf_init(&b, dst_size > 0 ? dst_size - 1 : 0);
    for (size_t i = 0; i < n && i < 5; i++)
        if (gq_buf_appendf(&b, "%s\"%.40s\"", i ? ", " : "", ids[i]) != GQ_OK)
            break;
    if (n > 5)
        gq_buf_appends(&b, ", ...");
    gq_strlcpy(dst, b.data ? b.data : "", dst_size);
    gq_buf_release(&b);
    return dst;
}

gq_status_t gq_graph_node_ref(json_t *wf, const char *ref, const char **id) {
    *id = NULL;
    if (!ref || !*ref)
        return GQ_ERR_NOTFOUND;
    if (json_is_object(json_object_get(wf, ref))) {
        *id = gq_graph_key(wf, ref);
        return GQ_OK;
    }
    const char *key;
    json_t *node;
    json_object_foreach(wf, key, node) {
        const char *title =
            json_string_value(json_object_get(json_object_get(node, "_meta"), "title"));
        if (!title || strcmp(title, ref) != 0)
            continue;
        if (*id) {
            *id = NULL;
            return GQ_ERR_INVALID;
        }
        *id = key;
    }
    return *id ? GQ_OK : GQ_ERR_NOTFOUND;
}

bool gq_graph_is_preview(json_t *node) {
    return graph_in(gq_graph_class(node), graph_preview_classes);
}

/* ------------------------------------------------------------------------------------------
 * Places
 * ------------------------------------------------------------------------------------------ */

static void graph_put(gq_places_t *p, gq_field_t f, const char *node, const char *input) {
    for (size_t i = 0; i < p->n[f]; i++)
        if (strcmp(p->at[f][i].node, node) == 0 &&
            ((!input && !p->at[f][i].input) ||
             (input && p->at[f][i].input && strcmp(input, p->at[f][i].input) == 0)))
            return;
    if (p->n[f] < GQ_PLACES_MAX)
        p->at[f][p->n[f]++] = (gq_place_t){node, input};
}

/* Says why field f has no place (the first reason given wins). */
static void graph_no(gq_places_t *p, gq_field_t f, const char *fmt, ...) GQ_PRINTF(3, 4);

static void graph_no(gq_places_t *p, gq_field_t f, const char *fmt, ...) {
    p->n[f] = 0;
    if (p->why[f][0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why[f], sizeof(p->why[f]), fmt, ap);
    va_end(ap);
}

/* Field f goes to `input` of the node that input `via` of the sampler links to (a
 * RandomNoise's noise_seed, a BasicScheduler's steps...), when that node has it. */
static void graph_take_via(json_t *wf, gq_places_t *p, gq_field_t f, const char *via,
                           const char *input) {
    const char *s = p->sampler, *src = graph_linked(wf, s, via, NULL);
    if (!src)
        graph_no(p, f, "cannot take it: input \"%s\" of sampler \"%.80s\" is not linked to a node",
                 via, s);
    else if (!graph_has_value(wf, src, input))
        graph_no(p, f,
                 "cannot take it: sampler \"%.80s\" (%.60s) takes its %s from node \"%.80s\" "
                 "(%.80s), which has no %s input",
                 s, graph_cls(wf, s), via, src, graph_cls(wf, src), input);
    else
        graph_put(p, f, src, input);
}

/* ---- the sampler ---- */

static size_t graph_filter(const char **ids, size_t n, const bool *keep) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i])
            ids[k++] = ids[i];
    return k;
}

/*
 * Picks the sampler to bind: the one a saving node depends on; among several, the last in
 * the chain (a second pass such as a hires fix consumes the first one's latent). None, or
 * several independent ones: p->sampler stays NULL and `why` of the sampler's fields says so.
 */
static gq_status_t graph_find_sampler(json_t *wf, gq_places_t *p, const char **why_out, char *why,
                                      size_t why_size) {
    size_t total = json_object_size(wf), n = 0;
    const char **ids = calloc(total + 1, sizeof(*ids));
    bool *keep = calloc(total + 1, sizeof(*keep));
    json_t *feeds = json_object(), *up = json_object();
    gq_status_t st = GQ_ERR_NOMEM;
    char list[256];
    const char *id;
    json_t *node;
    *why_out = NULL;
    if (!ids || !keep || !feeds || !up)
        goto out;
    st = GQ_OK;
    for (size_t i = 0; i < p->savers_cnt && st == GQ_OK; i++)
        st = gq_graph_mark_upstream(wf, p->savers[i], feeds);
    if (st != GQ_OK)
        goto out;
    size_t all = 0;
    json_object_foreach(wf, id, node) {
        if (!graph_in(gq_graph_class(node), graph_sampler_classes))
            continue;
        ids[all] = id;
        keep[all] = json_object_get(feeds, id) != NULL;
        all++;
    }
    n = graph_filter(ids, all, keep);
    if (n == 0) {
        if (all == 0)
            gq_errf(why, why_size, "has no sampler to take it");
        else
            gq_errf(why, why_size, "has no sampler to take it (sampler %s feeds no saving node)",
                    gq_graph_ids(list, sizeof(list), ids, all));
        *why_out = why;
        goto out;
    }
    /* A sampler upstream of another candidate is an earlier pass: drop it. */
    for (size_t i = 0; i < n; i++)
        keep[i] = true;
    for (size_t j = 0; j < n && st == GQ_OK; j++) {
        json_object_clear(up);
        st = gq_graph_mark_upstream(wf, ids[j], up);
        for (size_t i = 0; i < n; i++)
            if (i != j && json_object_get(up, ids[i]))
                keep[i] = false;
    }
    if (st != GQ_OK)
        goto out;
    size_t m = graph_filter(ids, n, keep);
    if (m != 1) {
        gq_errf(why, why_size,
                "cannot take it: samplers %s each feed a saving node, and genq binds the request "
                "to one (set their inputs with overrides)",
                gq_graph_ids(list, sizeof(list), ids, m ? m : n));
        *why_out = why;
        goto out;
    }
    p->sampler = ids[0];
out:
    if (st == GQ_ERR_NOMEM)
        gq_errf(why, why_size, "out of memory while reading the workflow graph");
    free(ids);
    free(keep);
    json_decref(feeds);
    json_decref(up);
    return st;
}

/* The input (of a non-encoder node) that carries its conditioning onward, if exactly one. */
static int graph_cond_inputs(json_t *node, json_int_t arrived_slot, const char **next,
                             json_int_t *next_slot) {
    const char *cls = gq_graph_class(node), *name, *src;
    /* ControlNetApplyAdvanced-style nodes carry both: output 0 is positive, 1 negative. */
    bool pairs = graph_is(cls, "ControlNetApplyAdvanced") || graph_is(cls, "ControlNetApplySD3");
    json_t *v;
    json_int_t slot;
    int count = 0;
    *next = NULL;
    json_object_foreach(gq_graph_inputs(node), name, v) {
        if (!gq_graph_link(v, &src, &slot))
            continue;
        bool cond =
            pairs ? strcmp(name, arrived_slot == 0 ? "positive" : "negative") == 0
                  : strcmp(name, "conditioning") == 0 || strncmp(name, "conditioning_", 13) == 0;
        if (!cond || (*next && strcmp(*next, src) == 0 && *next_slot == slot))
            continue;
        count++;
        *next = src;
        *next_slot = slot;
    }
    return count;
}

static int graph_encoder(const char *cls) {
    for (size_t i = 0; cls && i < GQ_ARRAY_LEN(graph_encoders); i++)
        if (strcmp(cls, graph_encoders[i].cls) == 0)
            return (int)i;
    return -1;
}

/*
 * Follows a conditioning input (`input` of node `from`, a sampler or a guider) to the text
 * encoder that holds the text, crossing simple pass-through nodes (one conditioning input:
 * FluxGuidance, ConditioningSetArea...). A merge such as ConditioningCombine is not crossed,
 * since either branch could be meant. Returns the encoder's key, or NULL with `why` set;
 * *zeroed is set when the chain ends in ConditioningZeroOut (no text on purpose).
 */
static const char *graph_find_encoder(json_t *wf, const char *from, const char *input, bool *zeroed,
                                      char *why, size_t why_size) {
    const char *cur;
    json_int_t slot;
    *zeroed = false;
    const char *role = graph_in(graph_cls(wf, from), graph_sampler_classes) ? "sampler" : "node";
    if (!gq_graph_link(json_object_get(gq_graph_inputs(json_object_get(wf, from)), input), &cur,
                       &slot)) {
        gq_errf(why, why_size, "cannot take it: %s \"%.80s\" input \"%s\" is not linked to a node",
                role, from, input);
        return NULL;
    }
    for (size_t hops = 0;; hops++) {
        json_t *node = json_object_get(wf, cur);
        const char *cls = gq_graph_class(node);
        if (graph_encoder(cls) >= 0)
            return gq_graph_key(wf, cur);
        if (graph_is(cls, "ConditioningZeroOut")) {
            *zeroed = true;
            gq_errf(why, why_size,
                    "cannot take it: the \"%s\" input of %s \"%.80s\" is zeroed out by node "
                    "\"%.80s\" (ConditioningZeroOut)",
                    input, role, from, cur);
            return NULL;
        }
        if (hops > json_object_size(wf)) {
            gq_errf(why, why_size,
                    "cannot take it: the \"%s\" input of %s \"%.80s\" runs into a link cycle at "
                    "node \"%.80s\"",
                    input, role, from, cur);
            return NULL;
        }
        const char *next;
        json_int_t next_slot = 0;
        int count = graph_cond_inputs(node, slot, &next, &next_slot);
        if (count == 1) {
            cur = next;
            slot = next_slot;
            continue;
        }
        if (count == 0)
            gq_errf(why, why_size,
                    "cannot take it: the \"%s\" input of %s \"%.80s\" leads to node \"%.80s\" "
                    "(%.80s), not to a CLIPTextEncode (set the text with an override "
                    "\"<node>.<input>\")",
                    input, role, from, cur, cls ? cls : "?");
        else
            gq_errf(why, why_size,
                    "cannot take it: the \"%s\" input of %s \"%.80s\" leads to node \"%.80s\" "
                    "(%.80s), which merges %d conditionings; genq cannot tell which "
                    "CLIPTextEncode gets the text",
                    input, role, from, cur, cls ? cls : "?", count);
        return NULL;
    }
}

static void graph_put_encoder(gq_places_t *p, gq_field_t f, json_t *wf, const char *enc) {
    int e = graph_encoder(graph_cls(wf, enc));
    for (size_t i = 0; e >= 0 && i < GQ_ARRAY_LEN(graph_encoders[e].inputs); i++)
        if (graph_encoders[e].inputs[i])
            graph_put(p, f, enc, graph_encoders[e].inputs[i]);
}

/* The prompt and the negative prompt: from the sampler's (or its guider's) conditionings. */
static void graph_texts(json_t *wf, gq_places_t *p, const char *from, const char *pos_input,
                        const char *neg_input) {
    char why[320];
    bool zeroed;
    const char *pos = graph_find_encoder(wf, from, pos_input, &zeroed, why, sizeof(why));
    if (pos)
        graph_put_encoder(p, GQ_FIELD_PROMPT, wf, pos);
    else
        graph_no(p, GQ_FIELD_PROMPT, "%s", why);
    if (!neg_input) {
        graph_no(p, GQ_FIELD_NEGATIVE,
                 "cannot take it: node \"%.80s\" (%.80s) takes no negative conditioning", from,
                 graph_cls(wf, from));
        return;
    }
    const char *neg = graph_find_encoder(wf, from, neg_input, &zeroed, why, sizeof(why));
    if (neg && pos && strcmp(pos, neg) == 0)
        graph_no(p, GQ_FIELD_NEGATIVE,
                 "cannot take it: the positive and negative inputs of \"%.80s\" reach the same "
                 "CLIPTextEncode node \"%.80s\"; they need one each",
                 from, pos);
    else if (neg)
        graph_put_encoder(p, GQ_FIELD_NEGATIVE, wf, neg);
    else
        graph_no(p, GQ_FIELD_NEGATIVE, "%s", why);
}

/* The model: through patches (LoraLoader, ModelSamplingFlux...) to the loader. A
 * ModelSamplingFlux on the way takes the image size too. */
static void graph_model(json_t *wf, gq_places_t *p, const char *from) {
    const char *cur = graph_linked(wf, from, "model", NULL);
    if (!cur) {
        graph_no(p, GQ_FIELD_MODEL, "cannot take it: node \"%.80s\" input \"model\" is not linked",
                 from);
        return;
    }
    for (size_t hops = 0;; hops++) {
        const char *cls = graph_cls(wf, cur);
        if (graph_is(cls, "CheckpointLoaderSimple") || graph_is(cls, "CheckpointLoader")) {
            graph_put(p, GQ_FIELD_MODEL, cur, "ckpt_name");
            return;
        }
        if (graph_is(cls, "UNETLoader")) {
            graph_put(p, GQ_FIELD_MODEL, cur, "unet_name");
            return;
        }
        const char *next = graph_linked(wf, cur, "model", NULL);
        if (hops > json_object_size(wf) || !next) {
            graph_no(p, GQ_FIELD_MODEL,
                     "cannot take it: the model chain of \"%.80s\" ends at node \"%.80s\" (%.80s), "
                     "not at a CheckpointLoaderSimple, CheckpointLoader or UNETLoader",
                     from, cur, cls);
            return;
        }
        if (graph_is(cls, "ModelSamplingFlux") && graph_has_value(wf, cur, "width"))
            graph_put(p, GQ_FIELD_SIZE, cur, NULL);
        cur = next;
    }
}

static void graph_sampler_places(json_t *wf, gq_places_t *p) {
    const char *s = p->sampler, *cls = graph_cls(wf, s);
    if (graph_is(cls, "KSampler") || graph_is(cls, "KSamplerAdvanced")) {
        graph_put(p, GQ_FIELD_SEED, s, graph_is(cls, "KSampler") ? "seed" : "noise_seed");
        graph_put(p, GQ_FIELD_STEPS, s, "steps");
        graph_put(p, GQ_FIELD_CFG, s, "cfg");
        graph_put(p, GQ_FIELD_SAMPLER, s, "sampler_name");
        graph_put(p, GQ_FIELD_SCHEDULER, s, "scheduler");
        graph_texts(wf, p, s, "positive", "negative");
        graph_model(wf, p, s);
        return;
    }
    /* SamplerCustom and SamplerCustomAdvanced take the steps and the scheduler from their
     * sigmas (BasicScheduler...) and the sampler from a KSamplerSelect. */
    graph_take_via(wf, p, GQ_FIELD_STEPS, "sigmas", "steps");
    graph_take_via(wf, p, GQ_FIELD_SCHEDULER, "sigmas", "scheduler");
    graph_take_via(wf, p, GQ_FIELD_SAMPLER, "sampler", "sampler_name");
    if (graph_is(cls, "SamplerCustom")) {
        graph_put(p, GQ_FIELD_SEED, s, "noise_seed");
        graph_put(p, GQ_FIELD_CFG, s, "cfg");
        graph_texts(wf, p, s, "positive", "negative");
        graph_model(wf, p, s);
        return;
    }
    /* SamplerCustomAdvanced: the seed is on its noise (RandomNoise; DisableNoise has none),
     * cfg, conditionings and model on its guider (CFGGuider; BasicGuider has one
     * conditioning and no cfg, as Flux graphs use it). */
    graph_take_via(wf, p, GQ_FIELD_SEED, "noise", "noise_seed");
    const char *g = graph_linked(wf, s, "guider", NULL);
    if (!g) {
        static const gq_field_t guided[] = {GQ_FIELD_CFG, GQ_FIELD_PROMPT, GQ_FIELD_NEGATIVE,
                                            GQ_FIELD_MODEL};
        for (size_t i = 0; i < GQ_ARRAY_LEN(guided); i++)
            graph_no(p, guided[i],
                     "cannot take it: input \"guider\" of sampler \"%.80s\" is not linked", s);
        return;
    }
    graph_take_via(wf, p, GQ_FIELD_CFG, "guider", "cfg");
    if (graph_linked(wf, g, "positive", NULL))
        graph_texts(wf, p, g, "positive",
                    graph_linked(wf, g, "negative", NULL) ? "negative" : NULL);
    else
        graph_texts(wf, p, g, "conditioning", NULL);
    graph_model(wf, p, g);
}

/* ---- size and batch, along the image path ---- */

static int graph_path_step(const char *cls) {
    for (size_t i = 0; cls && i < GQ_ARRAY_LEN(graph_path); i++)
        if (strcmp(cls, graph_path[i].cls) == 0)
            return (int)i;
    return -1;
}

/* From node `start` (the first node upstream of saver `saver`), the node that decides the
 * size (batch: the batch); NULL with `why` when the path leaves what genq knows. */
static const char *graph_path_find(json_t *wf, const char *saver, const char *start, bool batch,
                                   char *why, size_t why_size) {
    const char *cur = start, *what = batch ? "batch" : "size";
    for (size_t hops = 0; hops <= json_object_size(wf); hops++) {
        const char *cls = graph_cls(wf, cur);
        int k = graph_path_step(cls);
        if (k < 0) {
            gq_errf(why, why_size,
                    "cannot take it: what node \"%.80s\" (%.60s) saves comes through node "
                    "\"%.80s\" (%.80s), which genq cannot set the %s on (use an override)",
                    saver, graph_cls(wf, saver), cur, cls, what);
            return NULL;
        }
        if (batch ? graph_path[k].batch : graph_path[k].size)
            return cur;
        const char *next =
            graph_path[k].follow ? graph_linked(wf, cur, graph_path[k].follow, NULL) : NULL;
        if (!next) {
            gq_errf(why, why_size,
                    "cannot take it: node \"%.80s\" (%.80s) on the way to node \"%.80s\" has no "
                    "linked \"%s\" input",
                    cur, cls, saver, graph_path[k].follow ? graph_path[k].follow : "image");
            return NULL;
        }
        cur = next;
    }
    gq_errf(why, why_size, "cannot take it: the image path of node \"%.80s\" runs into a cycle",
            saver);
    return NULL;
}

static void graph_path_places(json_t *wf, gq_places_t *p) {
    static const gq_field_t fields[] = {GQ_FIELD_SIZE, GQ_FIELD_BATCH};
    const char *audio = NULL;
    for (size_t k = 0; k < GQ_ARRAY_LEN(fields); k++) {
        gq_field_t f = fields[k];
        const char *found[GQ_PLACES_MAX];
        size_t nfound = 0, images = 0;
        bool ok = true;
        char why[320], list[256];
        for (size_t i = 0; i < p->savers_cnt && ok; i++) {
            const char *sv = p->savers[i], *start = NULL;
            if (graph_in(graph_cls(wf, sv), graph_audio_savers)) {
                audio = sv;
                continue;
            }
            images++;
            for (size_t in = 0; !start && graph_saver_inputs[in]; in++)
                start = graph_linked(wf, sv, graph_saver_inputs[in], NULL);
            const char *at =
                start ? graph_path_find(wf, sv, start, f == GQ_FIELD_BATCH, why, sizeof(why))
                      : NULL;
            if (!start)
                gq_errf(why, sizeof(why),
                        "cannot take it: node \"%.80s\" (%.80s) saves no linked image", sv,
                        graph_cls(wf, sv));
            if (!at) {
                graph_no(p, f, "%s", why);
                ok = false;
                break;
            }
            bool dup = false;
            for (size_t j = 0; j < nfound; j++)
                dup = dup || strcmp(found[j], at) == 0;
            if (!dup && nfound < GQ_ARRAY_LEN(found))
                found[nfound++] = at;
        }
        if (!ok)
            continue;
        if (images == 0)
            graph_no(p, f, "cannot take it: it saves %s (node \"%.80s\"), which has no image %s",
                     audio ? "only audio" : "nothing", audio ? audio : "?",
                     f == GQ_FIELD_SIZE ? "size" : "batch");
        else if (nfound > 1)
            graph_no(p, f,
                     "cannot take it: its saving nodes take their %s from different nodes (%s)",
                     f == GQ_FIELD_SIZE ? "size" : "batch",
                     gq_graph_ids(list, sizeof(list), found, nfound));
        else
            graph_put(p, f, found[0], f == GQ_FIELD_SIZE ? NULL : "batch_size");
    }
}

/* ---- all of it ---- */

void gq_places_release(gq_places_t *p) {
    if (!p)
        return;
    free(p->savers);
    memset(p, 0, sizeof(*p));
}

gq_status_t gq_places_find(json_t *wf, gq_places_t *p, char *errstr, size_t errstr_size) {
    memset(p, 0, sizeof(*p));
    p->savers = calloc(json_object_size(wf) + 1, sizeof(*p->savers));
    if (!p->savers) {
        gq_errf(errstr, errstr_size, "out of memory while reading the workflow graph");
        return GQ_ERR_NOMEM;
    }
    const char *id;
    json_t *node;
    json_object_foreach(wf, id, node) {
        if (gq_graph_is_saver(node))
            p->savers[p->savers_cnt++] = id;
    }
    char why[320];
    const char *no_sampler = NULL;
    gq_status_t st = graph_find_sampler(wf, p, &no_sampler, why, sizeof(why));
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s", why);
        gq_places_release(p);
        return st;
    }
    if (p->sampler) {
        graph_sampler_places(wf, p);
    } else {
        static const gq_field_t sampled[] = {GQ_FIELD_SEED,    GQ_FIELD_STEPS,     GQ_FIELD_CFG,
                                             GQ_FIELD_SAMPLER, GQ_FIELD_SCHEDULER, GQ_FIELD_MODEL};
        for (size_t i = 0; i < GQ_ARRAY_LEN(sampled); i++)
            graph_no(p, sampled[i], "%s", no_sampler);
        if (strncmp(no_sampler, "has no sampler", 14) == 0) {
            graph_no(p, GQ_FIELD_PROMPT, "has no sampler, so no text encoder, to take it%s",
                     no_sampler + strlen("has no sampler to take it"));
            graph_no(p, GQ_FIELD_NEGATIVE, "%s", p->why[GQ_FIELD_PROMPT]);
        } else {
            graph_no(p, GQ_FIELD_PROMPT, "%s", no_sampler);
            graph_no(p, GQ_FIELD_NEGATIVE, "%s", no_sampler);
        }
    }
    /* The sampler's ModelSamplingFlux may have taken a size place already; the image path
     * decides whether there is a size at all. */
    size_t extra = p->n[GQ_FIELD_SIZE];
    gq_place_t flux[GQ_PLACES_MAX];
    memcpy(flux, p->at[GQ_FIELD_SIZE], sizeof(flux));
    p->n[GQ_FIELD_SIZE] = 0;
    graph_path_places(wf, p);
    for (size_t i = 0; p->n[GQ_FIELD_SIZE] > 0 && i < extra; i++)
        graph_put(p, GQ_FIELD_SIZE, flux[i].node, NULL);
    return GQ_OK;
}
