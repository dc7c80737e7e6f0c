/**
 * @file template.c
 * @brief Workflow templates: loading, checking and binding a request into a copy.
 *
 * Binding follows links (graph.c) instead of trusting node ids or titles, because
 * templates exported from ComfyUI number their nodes in editing order and users rename
 * titles freely; the graph is what ComfyUI executes, so it is what we read.
 */
#include "template.h"

#include "buf.h"
#include "graph.h"
#include "embedded.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Templates are small (a few KiB); the bound keeps a bad mount or a huge file from eating
 * the worker's memory. */
#define TPL_MAX_BYTES ((size_t)4 << 20)
#define TPL_NAME_MAX 128
#define TPL_GENQ_KEY "_genq"

static const char *tpl_node_class(json_t *node) { return gq_graph_class(node); }

static json_t *tpl_node_inputs(json_t *node) { return gq_graph_inputs(node); }

static const char *tpl_node_title(json_t *node) {
    return json_string_value(json_object_get(json_object_get(node, "_meta"), "title"));
}

/* A link is exactly [ "<source node id>", <output index> ]; ComfyUI recognises no other
 * shape (an integer id is a validation error there). */
static bool tpl_link(json_t *v, const char **src, json_int_t *slot) {
    return gq_graph_link(v, src, slot);
}

/* Copies s for an error message: bounded, control characters replaced, since names and keys
 * may come straight from a Kafka message and end up in logs and events. */
static const char *tpl_quote(char *dst, size_t dst_size, const char *s) {
    size_t n = 0, max = dst_size > 4 ? dst_size - 4 : 0;
    for (; s && s[n] && n < max; n++) {
        unsigned char c = (unsigned char)s[n];
        dst[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s && s[n] && dst_size >= 4) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    if (dst_size)
        dst[n < dst_size ? n : dst_size - 1] = '\0';
    return dst;
}

/* ------------------------------------------------------------------------------------------
 * Checking a parsed workflow
 * ------------------------------------------------------------------------------------------ */

/* Reads the "_genq" metadata object; absent is fine. */
static gq_status_t tpl_meta_read(json_t *meta, int *timeout_s, char *errstr, size_t errstr_size) {
    *timeout_s = 0;
    if (!meta)
        return GQ_OK;
    if (!json_is_object(meta)) {
        gq_errf(errstr, errstr_size,
                "\"" TPL_GENQ_KEY "\" must be an object of template metadata, e.g. "
                "{\"timeout_s\": 900}");
        return GQ_ERR_INVALID;
    }
    json_t *t = json_object_get(meta, "timeout_s");
    if (t) {
        json_int_t v = json_is_integer(t) ? json_integer_value(t) : 0;
        if (v <= 0 || v > INT_MAX) {
            gq_errf(errstr, errstr_size,
                    "\"" TPL_GENQ_KEY "\".timeout_s must be a positive integer (seconds)");
            return GQ_ERR_INVALID;
        }
        *timeout_s = (int)v;
    }
    json_t *ov = json_object_get(meta, "overrides");
    if (ov) {
        size_t i;
        json_t *e;
        bool ok = json_is_array(ov);
        json_array_foreach(ov, i, e) {
            const char *s = json_string_value(e), *dot = s ? strrchr(s, '.') : NULL;
            ok = ok && dot && dot != s && dot[1];
        }
        if (!ok) {
            gq_errf(errstr, errstr_size,
                    "\"" TPL_GENQ_KEY "\".overrides must be a list of the override keys a request "
                    "may set, \"<node id or title>.<input>\" or \"<node id or title>.*\"");
            return GQ_ERR_INVALID;
        }
    }
    return GQ_OK;
}

/* Every entry of "_genq".overrides names a node of wf (by id or unique title). */
static gq_status_t tpl_meta_check_overrides(json_t *wf, json_t *meta, char *errstr,
                                            size_t errstr_size) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(meta, "overrides"), i, e) {
        const char *s = json_string_value(e);
        char ref[160], q[160];
        size_t len = (size_t)(strrchr(s, '.') - s);
        const char *id = NULL;
        if (len < sizeof(ref)) {
            memcpy(ref, s, len);
            ref[len] = '\0';
            if (gq_graph_node_ref(wf, ref, &id) != GQ_OK || strcmp(id, TPL_GENQ_KEY) == 0)
                id = NULL;
        }
        if (!id) {
            gq_errf(errstr, errstr_size,
                    "\"" TPL_GENQ_KEY "\".overrides: \"%s\" names no node (by id, or by a title "
                    "only one node has)",
                    tpl_quote(q, sizeof(q), s));
            return GQ_ERR_INVALID;
        }
    }
    return GQ_OK;
}

static bool tpl_is_ui_format(json_t *root) {
    return (json_is_array(json_object_get(root, "nodes")) &&
            json_is_array(json_object_get(root, "links"))) ||
           json_object_get(root, "last_node_id") != NULL;
}

static gq_status_t tpl_check_node(json_t *wf, const char *id, json_t *node, char *errstr,
                                  size_t errstr_size) {
    if (!json_is_object(node)) {
        gq_errf(errstr, errstr_size,
                "node \"%.80s\" is not an object; an API-format workflow maps node ids to "
                "{\"class_type\": ..., \"inputs\": {...}}",
                id);
        return GQ_ERR_INVALID;
    }
    const char *cls = tpl_node_class(node);
    if (!cls || !*cls) {
        gq_errf(errstr, errstr_size, "node \"%.80s\" has no class_type (a non-empty string)", id);
        return GQ_ERR_INVALID;
    }
    json_t *inputs = tpl_node_inputs(node);
    if (!json_is_object(inputs)) {
        gq_errf(errstr, errstr_size, "node \"%.80s\" (%.80s) has no \"inputs\" object", id, cls);
        return GQ_ERR_INVALID;
    }
    const char *name;
    json_t *v;
    json_object_foreach(inputs, name, v) {
        if (!json_is_array(v))
            continue;
        const char *src;
        json_int_t slot;
        /* ComfyUI treats every list as a link, so a malformed one fails there anyway; saying
         * so here names the input. */
        if (!tpl_link(v, &src, &slot)) {
            gq_errf(errstr, errstr_size,
                    "node \"%.80s\" (%.80s) input \"%.80s\" is a list but not a link "
                    "[\"<node id>\", <output index>] (wrap a literal list as "
                    "{\"__value__\": [...]})",
                    id, cls, name);
            return GQ_ERR_INVALID;
        }
        if (strcmp(src, TPL_GENQ_KEY) == 0 || !json_is_object(json_object_get(wf, src))) {
            gq_errf(errstr, errstr_size,
                    "node \"%.80s\" (%.80s) input \"%.80s\" links to node \"%.80s\", which does "
                    "not exist",
                    id, cls, name, src);
            return GQ_ERR_INVALID;
        }
    }
    return GQ_OK;
}

/* Checks the shape of an API-format graph; "_genq" is allowed and checked as metadata. */
static gq_status_t tpl_check(json_t *wf, char *errstr, size_t errstr_size) {
    if (!json_is_object(wf)) {
        gq_errf(errstr, errstr_size,
                "workflow must be a JSON object mapping node ids to nodes (ComfyUI API format)");
        return GQ_ERR_INVALID;
    }
    if (tpl_is_ui_format(wf)) {
        gq_errf(errstr, errstr_size,
                "workflow is in ComfyUI's UI format (nodes/links); export it with "
                "\"Export (API)\" / Save (API Format)");
        return GQ_ERR_INVALID;
    }
    size_t nodes = 0;
    const char *id;
    json_t *node;
    json_object_foreach(wf, id, node) {
        gq_status_t st;
        if (strcmp(id, TPL_GENQ_KEY) == 0) {
            int timeout_s;
            st = tpl_meta_read(node, &timeout_s, errstr, errstr_size);
        } else {
            st = tpl_check_node(wf, id, node, errstr, errstr_size);
            nodes++;
        }
        if (st != GQ_OK)
            return st;
    }
    if (nodes == 0) {
        gq_errf(errstr, errstr_size, "workflow has no nodes");
        return GQ_ERR_INVALID;
    }
    return tpl_meta_check_overrides(wf, json_object_get(wf, TPL_GENQ_KEY), errstr, errstr_size);
}

gq_status_t gq_workflow_parse(const char *text, size_t len, json_t **out, char *errstr,
                              size_t errstr_size) {
    *out = NULL;
    if (!text) {
        gq_errf(errstr, errstr_size, "workflow is empty");
        return GQ_ERR_INVALID;
    }
    json_error_t jerr;
    /* Duplicate node ids would silently drop a node; refuse them. */
    json_t *wf = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!wf) {
        gq_errf(errstr, errstr_size, "workflow is not valid JSON (line %d, column %d): %s",
                jerr.line, jerr.column, jerr.text);
        return GQ_ERR_INVALID;
    }
    gq_status_t st = tpl_check(wf, errstr, errstr_size);
    if (st != GQ_OK) {
        json_decref(wf);
        return st;
    }
    *out = wf;
    return GQ_OK;
}

/* ------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------ */

/* Reads a whole file into b (bounded by b->max). GQ_ERR_NOTFOUND if it does not exist. */
static gq_status_t tpl_read_file(const char *path, gq_buf_t *b, char *errstr, size_t errstr_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return GQ_ERR_NOTFOUND;
        gq_errf(errstr, errstr_size, "cannot open %s: %s", path, strerror(errno));
        return GQ_ERR;
    }
    gq_status_t st = GQ_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        gq_errf(errstr, errstr_size, "cannot stat %s: %s", path, strerror(errno));
        st = GQ_ERR;
    } else if (!S_ISREG(sb.st_mode)) {
        gq_errf(errstr, errstr_size, "%s is not a regular file", path);
        st = GQ_ERR;
    }
    char chunk[65536];
    while (st == GQ_OK) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gq_errf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
            st = GQ_ERR;
        } else if (n == 0) {
            break;
        } else if (gq_buf_append(b, chunk, (size_t)n) != GQ_OK) {
            gq_errf(errstr, errstr_size, "%s is larger than the %zu MiB a template may have", path,
                    b->max >> 20);
            st = GQ_ERR_TOOBIG;
        }
    }
    close(fd);
    return st;
}

/* Parses a template's text, prefixing errors with where it came from. */
static gq_status_t tpl_parse_from(const char *where, const char *text, size_t len, json_t **out,
                                  char *errstr, size_t errstr_size) {
    char err[512];
    gq_status_t st = gq_workflow_parse(text, len, out, err, sizeof(err));
    if (st != GQ_OK)
        gq_errf(errstr, errstr_size, "%s: %s", where, err);
    return st;
}

static int tpl_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the sorted names of the embedded templates ("txt2img, txt2img-lora") to b. */
static void tpl_list_builtin(gq_buf_t *b) {
    static const char prefix[] = "workflows/", suffix[] = ".json";
    size_t plen = sizeof(prefix) - 1, slen = sizeof(suffix) - 1, n = 0;
    /* Sorted by template name: the file order puts "txt2img-lora.json" before "txt2img.json". */
    char **names = calloc(gq_embedded_count + 1, sizeof(*names));
    for (size_t i = 0; names && i < gq_embedded_count; i++) {
        const char *f = gq_embedded_files[i].name;
        size_t len = strlen(f);
        if (len <= plen + slen || strncmp(f, prefix, plen) != 0 ||
            strcmp(f + len - slen, suffix) != 0 || strchr(f + plen, '/'))
            continue;
        if ((names[n] = strndup(f + plen, len - plen - slen)) != NULL)
            n++;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), tpl_cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (i)
            gq_buf_appends(b, ", ");
        gq_buf_appends(b, names[i]);
        free(names[i]);
    }
    free(names);
    if (n == 0)
        gq_buf_appends(b, "(none)");
}

gq_status_t gq_template_load(const char *dir, const char *name, json_t **out, char *errstr,
                             size_t errstr_size) {
    char qname[96];
    *out = NULL;
    /* The name comes from a Kafka message and becomes part of a path. */
    if (!gq_name_safe(name, TPL_NAME_MAX)) {
        gq_errf(errstr, errstr_size,
                "workflow template name \"%s\" is not allowed: use 1-%d characters of "
                "[A-Za-z0-9._-], not starting with '.'",
                tpl_quote(qname, sizeof(qname), name), TPL_NAME_MAX);
        return GQ_ERR_INVALID;
    }
    char path[PATH_MAX], where[PATH_MAX + 200];
    gq_status_t st;
    if (dir && *dir) {
        int n = snprintf(path, sizeof(path), "%s/%s.json", dir, name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            gq_errf(errstr, errstr_size, "workflows directory path is too long: %s", dir);
            return GQ_ERR_INVALID;
        }
        gq_buf_t b;
        gq_buf_init(&b, TPL_MAX_BYTES);
        st = tpl_read_file(path, &b, errstr, errstr_size);
        if (st == GQ_OK) {
            snprintf(where, sizeof(where), "template \"%s\" (%s)", name, path);
            st = tpl_parse_from(where, b.data ? b.data : "", b.len, out, errstr, errstr_size);
        }
        gq_buf_release(&b);
        if (st != GQ_ERR_NOTFOUND)
            return st;
    }
    snprintf(path, sizeof(path), "workflows/%s.json", name);
    const gq_embedded_t *e = gq_embedded_find(path);
    if (e) {
        snprintf(where, sizeof(where), "built-in template \"%s\"", name);
        return tpl_parse_from(where, e->data, e->len, out, errstr, errstr_size);
    }
    gq_buf_t list;
    gq_buf_init(&list, 2048);
    tpl_list_builtin(&list);
    if (dir && *dir)
        gq_errf(errstr, errstr_size,
                "unknown workflow template \"%s\" (looked in %s and the built-in templates: %s)",
                name, dir, list.data ? list.data : "");
    else
        gq_errf(errstr, errstr_size,
                "unknown workflow template \"%s\" (no workflows directory is set; built-in "
                "templates: %s)",
                name, list.data ? list.data : "");
    gq_buf_release(&list);
    return GQ_ERR_NOTFOUND;
}

/* ------------------------------------------------------------------------------------------
 * Binding
 * ------------------------------------------------------------------------------------------ */

/* What every binding step works on. */
typedef struct tpl_bind {
    json_t *wf; /**< the copy being bound (owned by gq_workflow_bind) */
    const gq_request_t *req;
    const gq_bind_opts_t *opts;
    gq_places_t places;
    char what[200]; /**< "the inline workflow" or "template \"txt2img\"", for messages */
    char *errstr;
    size_t errstr_size;
} tpl_bind_t;

/* Sets inputs[key] = value (stolen). value is NULL when jansson refused the C value: a string
 * that is not UTF-8 or a non-finite double. */
static gq_status_t tpl_set(tpl_bind_t *b, const char *id, const char *key, json_t *value,
                           const char *what) {
    json_t *inputs = tpl_node_inputs(json_object_get(b->wf, id));
    if (!value) {
        gq_errf(b->errstr, b->errstr_size,
                "%s cannot be put in the workflow (not valid UTF-8 text, or not a finite number)",
                what);
        return GQ_ERR_INVALID;
    }
    if (json_object_set_new(inputs, key, value) != 0) {
        gq_errf(b->errstr, b->errstr_size, "out of memory setting %s", what);
        return GQ_ERR_NOMEM;
    }
    return GQ_OK;
}

static gq_status_t tpl_set_str(tpl_bind_t *b, const char *id, const char *key, const char *s,
                               const char *what) {
    if (!s)
        return GQ_OK;
    return tpl_set(b, id, key, json_string(s), what);
}

static bool tpl_str_differs(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") != 0;
}

/*
 * Whether the request sets field f. Avro has no "absent": every field arrives, at its
 * schema default when the producer left it out. So a field at its default counts as not
 * set (the size as a whole: width and height both 512); an empty prompt is no prompt, and a
 * null model no model. To force a value equal to the default into an inline workflow, an
 * override says it explicitly.
 */
static bool tpl_field_set(const gq_request_t *req, const gq_request_t *dflt, gq_field_t f) {
    switch (f) {
    case GQ_FIELD_PROMPT: return req->prompt && req->prompt[0];
    case GQ_FIELD_NEGATIVE: return req->negative_prompt && req->negative_prompt[0];
    case GQ_FIELD_SIZE: return req->width != dflt->width || req->height != dflt->height;
    case GQ_FIELD_BATCH: return req->batch_size != dflt->batch_size;
    case GQ_FIELD_SEED: return req->seed != dflt->seed;
    case GQ_FIELD_STEPS: return req->steps != dflt->steps;
    case GQ_FIELD_CFG: return req->cfg != dflt->cfg;
    case GQ_FIELD_SAMPLER: return tpl_str_differs(req->sampler, dflt->sampler);
    case GQ_FIELD_SCHEDULER: return tpl_str_differs(req->scheduler, dflt->scheduler);
    case GQ_FIELD_MODEL: return req->model != NULL;
    case GQ_FIELD_COUNT: break;
    }
    return false;
}

/* The field as the request sets it, for a message: "steps=30". */
static const char *tpl_field_desc(char *dst, size_t size, const gq_request_t *req,
                                  const gq_request_t *dflt, gq_field_t f) {
    char q[80];
    switch (f) {
    case GQ_FIELD_PROMPT: snprintf(dst, size, "a prompt"); break;
    case GQ_FIELD_NEGATIVE: snprintf(dst, size, "a negative_prompt"); break;
    case GQ_FIELD_SIZE:
        snprintf(dst, size, "width=%d, height=%d (not the default %dx%d)", (int)req->width,
                 (int)req->height, (int)dflt->width, (int)dflt->height);
        break;
    case GQ_FIELD_BATCH: snprintf(dst, size, "batch_size=%d", (int)req->batch_size); break;
    case GQ_FIELD_SEED: snprintf(dst, size, "seed=%lld", (long long)req->seed); break;
    case GQ_FIELD_STEPS:
        snprintf(dst, size, "steps=%d (not the default %d)", (int)req->steps, (int)dflt->steps);
        break;
    case GQ_FIELD_CFG:
        snprintf(dst, size, "cfg=%g (not the default %g)", req->cfg, dflt->cfg);
        break;
    case GQ_FIELD_SAMPLER:
        snprintf(dst, size, "sampler=\"%s\" (not the default \"%s\")",
                 tpl_quote(q, sizeof(q), req->sampler), dflt->sampler);
        break;
    case GQ_FIELD_SCHEDULER:
        snprintf(dst, size, "scheduler=\"%s\" (not the default \"%s\")",
                 tpl_quote(q, sizeof(q), req->scheduler), dflt->scheduler);
        break;
    case GQ_FIELD_MODEL:
        snprintf(dst, size, "model=\"%s\"", tpl_quote(q, sizeof(q), req->model));
        break;
    case GQ_FIELD_COUNT: dst[0] = '\0'; break;
    }
    return dst;
}

/* Puts the request's value of field f into every place the graph has for it. */
static gq_status_t tpl_bind_field(tpl_bind_t *b, gq_field_t f) {
    const gq_request_t *r = b->req;
    gq_status_t st = GQ_OK;
    if (f >= GQ_FIELD_COUNT)
        return GQ_OK;
    for (size_t i = 0; st == GQ_OK && i < b->places.n[f]; i++) {
        const gq_place_t *at = &b->places.at[f][i];
        switch (f) {
        case GQ_FIELD_PROMPT: st = tpl_set_str(b, at->node, at->input, r->prompt, "prompt"); break;
        case GQ_FIELD_NEGATIVE:
            st = tpl_set_str(b, at->node, at->input, r->negative_prompt, "negative_prompt");
            break;
        case GQ_FIELD_SIZE:
            st = tpl_set(b, at->node, "width", json_integer(r->width), "width");
            if (st == GQ_OK)
                st = tpl_set(b, at->node, "height", json_integer(r->height), "height");
            break;
        case GQ_FIELD_BATCH:
            st = tpl_set(b, at->node, at->input, json_integer(r->batch_size), "batch_size");
            break;
        case GQ_FIELD_SEED:
            st = tpl_set(b, at->node, at->input, json_integer((json_int_t)r->seed), "seed");
            break;
        case GQ_FIELD_STEPS:
            st = tpl_set(b, at->node, at->input, json_integer(r->steps), "steps");
            break;
        case GQ_FIELD_CFG: st = tpl_set(b, at->node, at->input, json_real(r->cfg), "cfg"); break;
        case GQ_FIELD_SAMPLER:
            st = tpl_set_str(b, at->node, at->input, r->sampler, "sampler");
            break;
        case GQ_FIELD_SCHEDULER:
            st = tpl_set_str(b, at->node, at->input, r->scheduler, "scheduler");
            break;
        case GQ_FIELD_MODEL: st = tpl_set_str(b, at->node, at->input, r->model, "model"); break;
        case GQ_FIELD_COUNT: break;
        }
    }
    return st;
}

/*
 * Binds every field: where the graph has a place for it, a template always takes the
 * request's value (defaults included: that is what a template is for), an inline workflow
 * only the values the request sets (its own values stand otherwise). A field the request
 * sets that has no place is refused, saying why: silently dropping it would render
 * something else than asked. The seed is the exception: a graph without noise (an
 * EmptyImage, a post-processing chain) gives the same result for every seed.
 */
static gq_status_t tpl_bind_fields(tpl_bind_t *b) {
    gq_request_t dflt;
    gq_request_defaults(&dflt);
    gq_status_t st = GQ_OK;
    /* In the enum's order: the prompts first, the model last. */
    for (int k = 0; st == GQ_OK && k < GQ_FIELD_COUNT; k++) {
        gq_field_t f = (gq_field_t)k;
        bool set = tpl_field_set(b->req, &dflt, f);
        if (b->places.n[f] > 0) {
            if (set || !b->opts->is_inline)
                st = tpl_bind_field(b, f);
            continue;
        }
        if (!set || f == GQ_FIELD_SEED)
            continue;
        char desc[200];
        gq_errf(b->errstr, b->errstr_size, "the request sets %s but %s %s",
                tpl_field_desc(desc, sizeof(desc), b->req, &dflt, f), b->what, b->places.why[f]);
        st = GQ_ERR_INVALID;
    }
    gq_request_release(&dflt);
    return st;
}

/* SaveImageWebsocket sends its images to the submitting client only, as binary WebSocket
 * frames, and leaves nothing in /history; genq's results are files, so it becomes a
 * SaveImage (same input, same PNG pixels) whose file genq collects. */
static gq_status_t tpl_bind_websocket_saves(tpl_bind_t *b) {
    const char *id;
    json_t *node;
    json_object_foreach(b->wf, id, node) {
        if (strcmp(tpl_node_class(node), "SaveImageWebsocket") != 0)
            continue;
        if (json_object_set_new(node, "class_type", json_string("SaveImage")) != 0) {
            gq_errf(b->errstr, b->errstr_size, "out of memory rewriting SaveImageWebsocket");
            return GQ_ERR_NOMEM;
        }
        if (!json_object_get(tpl_node_inputs(node), "filename_prefix"))
            json_object_set_new(tpl_node_inputs(node), "filename_prefix", json_string("genq"));
    }
    return GQ_OK;
}

/* Every saving node writes under genq's per-job prefix. */
static gq_status_t tpl_bind_outputs(tpl_bind_t *b) {
    if (b->places.savers_cnt == 0) {
        gq_errf(b->errstr, b->errstr_size,
                "%s saves no file: genq keeps the files of saving nodes (SaveImage, "
                "SaveAnimatedWEBP, SaveAnimatedPNG, SaveWEBM, SaveVideo, SaveAudio, or any node "
                "with a filename_prefix); PreviewImage writes only temporary previews",
                b->what);
        return GQ_ERR_INVALID;
    }
    for (size_t i = 0; b->opts->filename_prefix && i < b->places.savers_cnt; i++) {
        gq_status_t st = tpl_set_str(b, b->places.savers[i], "filename_prefix",
                                     b->opts->filename_prefix, "filename_prefix");
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}

/* Finds the node an override names: by id first, else by exact _meta.title (unique). */
static gq_status_t tpl_override_node(json_t *wf, const char *key, const char *ref,
                                     const char **id_out, char *errstr, size_t errstr_size) {
    char qkey[160], qref[160], list[256];
    json_t *node = json_object_get(wf, ref);
    if (node) {
        *id_out = json_object_iter_key(json_object_iter_at(wf, ref));
        return GQ_OK;
    }
    const char *matches[6], *id;
    size_t n = 0;
    json_object_foreach(wf, id, node) {
        const char *title = tpl_node_title(node);
        if (title && strcmp(title, ref) == 0) {
            if (n < GQ_ARRAY_LEN(matches))
                matches[n] = id;
            n++;
        }
    }
    if (n == 1) {
        *id_out = matches[0];
        return GQ_OK;
    }
    if (n == 0)
        gq_errf(errstr, errstr_size, "override \"%s\": no node has the id or title \"%s\"",
                tpl_quote(qkey, sizeof(qkey), key), tpl_quote(qref, sizeof(qref), ref));
    else
        gq_errf(errstr, errstr_size,
                "override \"%s\": the title \"%s\" is ambiguous (nodes %s); use the node id",
                tpl_quote(qkey, sizeof(qkey), key), tpl_quote(qref, sizeof(qref), ref),
                gq_graph_ids(list, sizeof(list), matches, n < GQ_ARRAY_LEN(matches) ? n : 6));
    return GQ_ERR_INVALID;
}

static gq_status_t tpl_override(tpl_bind_t *b, const char *key, const char *value) {
    json_t *wf = b->wf;
    char *errstr = b->errstr;
    size_t errstr_size = b->errstr_size;
    char qkey[160], qval[96];
    const char *dot = key ? strrchr(key, '.') : NULL;
    if (!dot || dot == key || !dot[1]) {
        gq_errf(errstr, errstr_size,
                "override key \"%s\" must look like \"<node id or title>.<input>\"",
                tpl_quote(qkey, sizeof(qkey), key));
        return GQ_ERR_INVALID;
    }
    char *ref = strndup(key, (size_t)(dot - key));
    if (!ref)
        return GQ_ERR_NOMEM;
    const char *id = NULL;
    gq_status_t st = tpl_override_node(wf, key, ref, &id, errstr, errstr_size);
    free(ref);
    if (st != GQ_OK)
        return st;
    if (strcmp(dot + 1, "filename_prefix") == 0 && gq_graph_is_saver(json_object_get(wf, id))) {
        /* ComfyUI's copies are named after the job, collected and then deleted; a fixed
         * name would let two jobs share (and delete) each other's files. */
        gq_errf(errstr, errstr_size,
                "override \"%s\": genq sets the filename_prefix of saving nodes itself (their "
                "files go to genq's output store)",
                tpl_quote(qkey, sizeof(qkey), key));
        return GQ_ERR_INVALID;
    }
    json_error_t jerr;
    json_t *v = value ? json_loads(value, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!v) {
        gq_errf(errstr, errstr_size,
                "override \"%s\": value %s is not a JSON literal (%s); write strings in quotes, "
                "e.g. \"\\\"euler\\\"\"",
                tpl_quote(qkey, sizeof(qkey), key), tpl_quote(qval, sizeof(qval), value),
                value ? jerr.text : "missing");
        return GQ_ERR_INVALID;
    }
    if (json_is_array(v)) {
        const char *src;
        if (!tpl_link(v, &src, NULL) || !json_object_get(wf, src)) {
            gq_errf(errstr, errstr_size,
                    "override \"%s\": %s is not a link [\"<node id>\", <output index>] to an "
                    "existing node (wrap a literal list as {\"__value__\": [...]})",
                    tpl_quote(qkey, sizeof(qkey), key), tpl_quote(qval, sizeof(qval), value));
            json_decref(v);
            return GQ_ERR_INVALID;
        }
    }
    return tpl_set(b, id, dot + 1, v, "override");
}

gq_status_t gq_workflow_bind(json_t *tmpl, const gq_request_t *req, const gq_bind_opts_t *opts,
                             json_t **out, gq_template_info_t *info, char *errstr,
                             size_t errstr_size) {
    *out = NULL;
    if (info)
        memset(info, 0, sizeof(*info));
    gq_status_t st = tpl_check(tmpl, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    json_t *wf = json_deep_copy(tmpl);
    if (!wf) {
        gq_errf(errstr, errstr_size, "out of memory copying the template");
        return GQ_ERR_NOMEM;
    }
    int timeout_s = 0;
    tpl_meta_read(json_object_get(wf, TPL_GENQ_KEY), &timeout_s, errstr, errstr_size);
    /* Metadata for genq only: ComfyUI would reject it as a node without class_type. */
    json_object_del(wf, TPL_GENQ_KEY);

    tpl_bind_t b = {
        .wf = wf, .req = req, .opts = opts, .errstr = errstr, .errstr_size = errstr_size};
    char qname[96];
    if (opts->is_inline)
        snprintf(b.what, sizeof(b.what), "the inline workflow");
    else if (opts->name)
        snprintf(b.what, sizeof(b.what), "template \"%s\"",
                 tpl_quote(qname, sizeof(qname), opts->name));
    else
        snprintf(b.what, sizeof(b.what), "the template");
    st = tpl_bind_websocket_saves(&b);
    if (st == GQ_OK)
        st = gq_places_find(wf, &b.places, errstr, errstr_size);
    if (st == GQ_OK)
        st = tpl_bind_outputs(&b);
    if (st == GQ_OK)
        st = tpl_bind_fields(&b);
    /* Overrides come last so they can correct anything the binding above chose. */
    for (size_t i = 0; st == GQ_OK && i < req->overrides_cnt; i++)
        st = tpl_override(&b, req->overrides[i].key, req->overrides[i].value);
    const char *model = NULL;
    if (st == GQ_OK && b.places.n[GQ_FIELD_MODEL] > 0) {
        const gq_place_t *at = &b.places.at[GQ_FIELD_MODEL][0];
        model = json_string_value(
            json_object_get(tpl_node_inputs(json_object_get(wf, at->node)), at->input));
    }
    gq_places_release(&b.places);
    if (st != GQ_OK) {
        json_decref(wf);
        return st;
    }
    *out = wf;
    if (info) {
        info->timeout_s = timeout_s;
        info->model = model;
    }
    return GQ_OK;
}

gq_status_t gq_template_bind(json_t *tmpl, const gq_request_t *req, const char *filename_prefix,
                             json_t **out, gq_template_info_t *info, char *errstr,
                             size_t errstr_size) {
    gq_bind_opts_t opts = {.filename_prefix = filename_prefix, .name = req->workflow};
    return gq_workflow_bind(tmpl, req, &opts, out, info, errstr, errstr_size);
}
