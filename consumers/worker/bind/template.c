/**
 * @file template.c
 * @brief Workflow templates: loading, checking and binding a request into a copy.
 *
 * Binding follows links from the sampler instead of trusting node ids or titles, because
 * templates exported from ComfyUI number their nodes in editing order and users rename
 * titles freely; the graph is what ComfyUI executes, so it is what we read.
 */
#include "template.h"

#include "buf.h"
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

/* Output nodes of stock ComfyUI: a sampler matters only if one of these depends on it. */
static const char *const tpl_output_classes[] = {
    "SaveImage", "PreviewImage", "SaveImageWebsocket", "SaveAnimatedWEBP", "SaveAnimatedPNG", NULL,
};

static bool tpl_class_in(const char *cls, const char *const *list) {
    for (size_t i = 0; cls && list[i]; i++)
        if (strcmp(cls, list[i]) == 0)
            return true;
    return false;
}

static bool tpl_class_is(const char *cls, const char *want) {
    return cls && strcmp(cls, want) == 0;
}

static const char *tpl_node_class(json_t *node) {
    return json_string_value(json_object_get(node, "class_type"));
}

static json_t *tpl_node_inputs(json_t *node) { return json_object_get(node, "inputs"); }

static const char *tpl_node_title(json_t *node) {
    return json_string_value(json_object_get(json_object_get(node, "_meta"), "title"));
}

/* A link is exactly [ "<source node id>", <output index> ]; ComfyUI recognises no other
 * shape (an integer id is a validation error there). */
static bool tpl_link(json_t *v, const char **src, json_int_t *slot) {
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
    return GQ_OK;
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
 * Graph walking
 * ------------------------------------------------------------------------------------------ */

/* Adds to `seen` (an object used as a set) `start` and every node it depends on. */
static gq_status_t tpl_mark_upstream(json_t *wf, const char *start, json_t *seen) {
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
        json_t *inputs = tpl_node_inputs(json_object_get(wf, stack[--top]));
        const char *name, *src;
        json_t *v;
        json_object_foreach(inputs, name, v) {
            if (!tpl_link(v, &src, NULL) || json_object_get(seen, src) || !json_object_get(wf, src))
                continue;
            if (top >= cap || json_object_set_new(seen, src, json_true()) != 0) {
                st = GQ_ERR_NOMEM;
                break;
            }
            /* The key inside wf outlives the walk; src points into the link array. */
            stack[top++] = json_object_iter_key(json_object_iter_at(wf, src));
        }
    }
    free(stack);
    return st;
}

/* Marks everything upstream of every node of the given classes; *count: how many such. */
static gq_status_t tpl_mark_feeding(json_t *wf, const char *const *classes, json_t *seen,
                                    size_t *count) {
    const char *id;
    json_t *node;
    *count = 0;
    json_object_foreach(wf, id, node) {
        if (!tpl_class_in(tpl_node_class(node), classes))
            continue;
        (*count)++;
        gq_status_t st = tpl_mark_upstream(wf, id, seen);
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}

static bool tpl_is_sampler(const char *cls) {
    return tpl_class_is(cls, "KSampler") || tpl_class_is(cls, "KSamplerAdvanced");
}

/* Formats up to a few node ids as "\"3\", \"12\"" for error messages. */
static const char *tpl_ids(char *dst, size_t dst_size, const char **ids, size_t n) {
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

/* Keeps the entries of ids[] for which keep(i) holds; returns the new count. */
static size_t tpl_filter(const char **ids, size_t n, const bool *keep) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i])
            ids[k++] = ids[i];
    return k;
}

/*
 * Picks the sampler to bind: the KSampler/KSamplerAdvanced that an output depends on; among
 * several, those feeding a SaveImage; among those, the last in the chain (a second pass
 * such as a hires fix consumes the first one's latent).
 */
static gq_status_t tpl_find_sampler(json_t *wf, const char **sampler_id, char *errstr,
                                    size_t errstr_size) {
    static const char *const save_classes[] = {"SaveImage", NULL};
    size_t total = 0, n = 0, saves = 0, outputs = 0;
    const char *id;
    json_t *node;
    json_object_foreach(wf, id, node) total++;
    const char **ids = calloc(total + 1, sizeof(*ids));
    bool *keep = calloc(total + 1, sizeof(*keep));
    json_t *feeds_out = json_object(), *feeds_save = json_object(), *up = json_object();
    gq_status_t st = GQ_ERR_NOMEM;
    char list[256];
    if (!ids || !keep || !feeds_out || !feeds_save || !up)
        goto out;
    json_object_foreach(wf, id, node) {
        if (tpl_is_sampler(tpl_node_class(node)))
            ids[n++] = id;
    }
    if (n == 0) {
        gq_errf(errstr, errstr_size, "template has no KSampler (or KSamplerAdvanced) node");
        st = GQ_ERR_INVALID;
        goto out;
    }
    st = tpl_mark_feeding(wf, tpl_output_classes, feeds_out, &outputs);
    if (st == GQ_OK)
        st = tpl_mark_feeding(wf, save_classes, feeds_save, &saves);
    if (st != GQ_OK)
        goto out;
    if (saves == 0) {
        /* Only SaveImage files are collected as results (see finish.c). */
        gq_errf(errstr, errstr_size,
                "template has no SaveImage node; genq keeps only the images SaveImage writes");
        st = GQ_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        keep[i] = json_object_get(feeds_out, ids[i]) != NULL;
    size_t m = tpl_filter(ids, n, keep);
    if (m == 0) {
        gq_errf(errstr, errstr_size,
                "no KSampler in the template leads to an output node (sampler %s: nothing "
                "saves its result)",
                tpl_ids(list, sizeof(list), ids, n));
        st = GQ_ERR_INVALID;
        goto out;
    }
    n = m;
    for (size_t i = 0; i < n; i++)
        keep[i] = json_object_get(feeds_save, ids[i]) != NULL;
    m = tpl_filter(ids, n, keep);
    if (m > 0)
        n = m;
    /* A sampler upstream of another candidate is an earlier pass: drop it. */
    for (size_t i = 0; i < n; i++)
        keep[i] = true;
    for (size_t j = 0; j < n; j++) {
        json_object_clear(up);
        st = tpl_mark_upstream(wf, ids[j], up);
        if (st != GQ_OK)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (i != j && json_object_get(up, ids[i]))
                keep[i] = false;
    }
    m = tpl_filter(ids, n, keep);
    if (m != 1) {
        gq_errf(errstr, errstr_size,
                "template is ambiguous: samplers %s each feed an output; genq binds the request "
                "to one KSampler",
                tpl_ids(list, sizeof(list), ids, m ? m : n));
        st = GQ_ERR_INVALID;
        goto out;
    }
    *sampler_id = ids[0];
    st = GQ_OK;
out:
    if (st == GQ_ERR_NOMEM)
        gq_errf(errstr, errstr_size, "out of memory while reading the template graph");
    free(ids);
    free(keep);
    json_decref(feeds_out);
    json_decref(feeds_save);
    json_decref(up);
    return st;
}

/* The input (of a non-encoder node) that carries its conditioning onward, if exactly one. */
static int tpl_cond_inputs(json_t *node, json_int_t arrived_slot, const char **next,
                           json_int_t *next_slot) {
    const char *cls = tpl_node_class(node), *name, *src;
    /* ControlNetApplyAdvanced-style nodes carry both: output 0 is positive, 1 negative. */
    bool pairs =
        tpl_class_is(cls, "ControlNetApplyAdvanced") || tpl_class_is(cls, "ControlNetApplySD3");
    json_t *v;
    json_int_t slot;
    int count = 0;
    *next = NULL;
    json_object_foreach(tpl_node_inputs(node), name, v) {
        if (!tpl_link(v, &src, &slot))
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

/*
 * Follows the sampler's "positive" or "negative" input to the CLIPTextEncode that holds the
 * text. Simple pass-through nodes (one conditioning input) are crossed; a merge such as
 * ConditioningCombine is refused since either branch could be meant. *enc_id = NULL when
 * the chain ends in ConditioningZeroOut: that conditioning has no text.
 */
static gq_status_t tpl_find_encoder(json_t *wf, const char *sid, const char *input,
                                    const char **enc_id, char *errstr, size_t errstr_size) {
    json_t *sampler = json_object_get(wf, sid);
    const char *cur;
    json_int_t slot;
    if (!tpl_link(json_object_get(tpl_node_inputs(sampler), input), &cur, &slot)) {
        gq_errf(errstr, errstr_size, "sampler \"%.80s\" input \"%s\" is not linked to a node", sid,
                input);
        return GQ_ERR_INVALID;
    }
    for (size_t hops = 0;; hops++) {
        json_t *node = json_object_get(wf, cur);
        const char *cls = tpl_node_class(node);
        if (tpl_class_is(cls, "CLIPTextEncode")) {
            *enc_id = json_object_iter_key(json_object_iter_at(wf, cur));
            return GQ_OK;
        }
        if (tpl_class_is(cls, "ConditioningZeroOut")) {
            *enc_id = NULL;
            return GQ_OK;
        }
        if (hops > json_object_size(wf)) {
            gq_errf(errstr, errstr_size,
                    "the \"%s\" input of sampler \"%.80s\" runs into a link cycle at node "
                    "\"%.80s\"",
                    input, sid, cur);
            return GQ_ERR_INVALID;
        }
        const char *next;
        json_int_t next_slot = 0;
        int count = tpl_cond_inputs(node, slot, &next, &next_slot);
        if (count == 1) {
            cur = next;
            slot = next_slot;
            continue;
        }
        if (count == 0)
            gq_errf(errstr, errstr_size,
                    "the \"%s\" input of sampler \"%.80s\" leads to node \"%.80s\" (%.80s), not "
                    "to a CLIPTextEncode; set the text with an override \"<node>.<input>\"",
                    input, sid, cur, cls);
        else
            gq_errf(errstr, errstr_size,
                    "the \"%s\" input of sampler \"%.80s\" leads to node \"%.80s\" (%.80s), "
                    "which merges %d conditionings; genq cannot tell which CLIPTextEncode gets "
                    "the prompt",
                    input, sid, cur, cls, count);
        return GQ_ERR_INVALID;
    }
}

/* Follows the sampler's "model" input through patches (LoraLoader etc.) to the loader. */
static gq_status_t tpl_find_loader(json_t *wf, const char *sid, const char **loader_id,
                                   const char **input_name, char *errstr, size_t errstr_size) {
    const char *cur;
    if (!tpl_link(json_object_get(tpl_node_inputs(json_object_get(wf, sid)), "model"), &cur,
                  NULL)) {
        gq_errf(errstr, errstr_size, "sampler \"%.80s\" input \"model\" is not linked to a node",
                sid);
        return GQ_ERR_INVALID;
    }
    for (size_t hops = 0;; hops++) {
        json_t *node = json_object_get(wf, cur);
        const char *cls = tpl_node_class(node);
        if (tpl_class_is(cls, "CheckpointLoaderSimple") || tpl_class_is(cls, "CheckpointLoader")) {
            *input_name = "ckpt_name";
            break;
        }
        if (tpl_class_is(cls, "UNETLoader")) {
            *input_name = "unet_name";
            break;
        }
        const char *next;
        if (hops > json_object_size(wf) ||
            !tpl_link(json_object_get(tpl_node_inputs(node), "model"), &next, NULL)) {
            gq_errf(errstr, errstr_size,
                    "cannot set the model: the model chain of sampler \"%.80s\" ends at node "
                    "\"%.80s\" (%.80s), not at a CheckpointLoaderSimple, CheckpointLoader or "
                    "UNETLoader",
                    sid, cur, cls);
            return GQ_ERR_INVALID;
        }
        cur = next;
    }
    *loader_id = json_object_iter_key(json_object_iter_at(wf, cur));
    return GQ_OK;
}

/* ------------------------------------------------------------------------------------------
 * Binding
 * ------------------------------------------------------------------------------------------ */

/* What every binding step works on. */
typedef struct tpl_bind {
    json_t *wf; /**< the copy being bound (owned by gq_template_bind) */
    const gq_request_t *req;
    const char *prefix;  /**< SaveImage filename_prefix, NULL: leave as is */
    const char *sampler; /**< id of the sampler being bound (a key of wf) */
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

static gq_status_t tpl_bind_sampler(tpl_bind_t *b) {
    const char *sid = b->sampler;
    const char *cls = tpl_node_class(json_object_get(b->wf, sid));
    const char *seed_key = tpl_class_is(cls, "KSamplerAdvanced") ? "noise_seed" : "seed";
    gq_status_t st = tpl_set(b, sid, seed_key, json_integer((json_int_t)b->req->seed), "seed");
    if (st == GQ_OK)
        st = tpl_set(b, sid, "steps", json_integer(b->req->steps), "steps");
    if (st == GQ_OK)
        st = tpl_set(b, sid, "cfg", json_real(b->req->cfg), "cfg");
    if (st == GQ_OK)
        st = tpl_set_str(b, sid, "sampler_name", b->req->sampler, "sampler");
    if (st == GQ_OK)
        st = tpl_set_str(b, sid, "scheduler", b->req->scheduler, "scheduler");
    return st;
}

static gq_status_t tpl_bind_texts(tpl_bind_t *b) {
    const char *pos = NULL, *neg = NULL;
    gq_status_t st =
        tpl_find_encoder(b->wf, b->sampler, "positive", &pos, b->errstr, b->errstr_size);
    if (st == GQ_OK)
        st = tpl_find_encoder(b->wf, b->sampler, "negative", &neg, b->errstr, b->errstr_size);
    if (st != GQ_OK)
        return st;
    if (!pos) {
        gq_errf(b->errstr, b->errstr_size,
                "the positive conditioning of sampler \"%.80s\" is zeroed out "
                "(ConditioningZeroOut); there is no CLIPTextEncode for the prompt",
                b->sampler);
        return GQ_ERR_INVALID;
    }
    if (neg && strcmp(pos, neg) == 0) {
        gq_errf(b->errstr, b->errstr_size,
                "the positive and negative inputs of sampler \"%.80s\" reach the same "
                "CLIPTextEncode node \"%.80s\"; they need one each",
                b->sampler, pos);
        return GQ_ERR_INVALID;
    }
    st = tpl_set_str(b, pos, "text", b->req->prompt, "prompt");
    if (st == GQ_OK && neg)
        st = tpl_set_str(b, neg, "text", b->req->negative_prompt, "negative_prompt");
    return st;
}

static gq_status_t tpl_bind_latent(tpl_bind_t *b) {
    json_t *link =
        json_object_get(tpl_node_inputs(json_object_get(b->wf, b->sampler)), "latent_image");
    const char *lid;
    if (!tpl_link(link, &lid, NULL)) {
        gq_errf(b->errstr, b->errstr_size,
                "sampler \"%.80s\" input \"latent_image\" is not linked to a node", b->sampler);
        return GQ_ERR_INVALID;
    }
    const char *cls = tpl_node_class(json_object_get(b->wf, lid));
    /* Only an empty latent defines the image size; after an upscale or a VAEEncode the size
     * is decided elsewhere, and setting it here would be silently wrong. */
    if (!tpl_class_is(cls, "EmptyLatentImage") && !tpl_class_is(cls, "EmptySD3LatentImage")) {
        gq_errf(b->errstr, b->errstr_size,
                "the latent_image input of sampler \"%.80s\" comes from node \"%.80s\" (%.80s), "
                "not from an EmptyLatentImage; genq sets width, height and batch_size there",
                b->sampler, lid, cls);
        return GQ_ERR_INVALID;
    }
    lid = json_object_iter_key(json_object_iter_at(b->wf, lid));
    gq_status_t st = tpl_set(b, lid, "width", json_integer(b->req->width), "width");
    if (st == GQ_OK)
        st = tpl_set(b, lid, "height", json_integer(b->req->height), "height");
    if (st == GQ_OK)
        st = tpl_set(b, lid, "batch_size", json_integer(b->req->batch_size), "batch_size");
    return st;
}

/* The checkpoint is set only when the request names one; otherwise the template's stays. */
static gq_status_t tpl_bind_model(tpl_bind_t *b) {
    const char *loader, *input;
    if (!b->req->model)
        return GQ_OK;
    gq_status_t st = tpl_find_loader(b->wf, b->sampler, &loader, &input, b->errstr, b->errstr_size);
    if (st == GQ_OK)
        st = tpl_set_str(b, loader, input, b->req->model, "model");
    return st;
}

static gq_status_t tpl_bind_outputs(tpl_bind_t *b) {
    const char *id;
    json_t *node;
    if (!b->prefix)
        return GQ_OK;
    json_object_foreach(b->wf, id, node) {
        if (!tpl_class_is(tpl_node_class(node), "SaveImage"))
            continue;
        gq_status_t st = tpl_set_str(b, id, "filename_prefix", b->prefix, "filename_prefix");
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
                tpl_ids(list, sizeof(list), matches, n < GQ_ARRAY_LEN(matches) ? n : 6));
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

gq_status_t gq_template_bind(json_t *tmpl, const gq_request_t *req, const char *filename_prefix,
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

    tpl_bind_t b = {.wf = wf,
                    .req = req,
                    .prefix = filename_prefix,
                    .errstr = errstr,
                    .errstr_size = errstr_size};
    static gq_status_t (*const steps[])(tpl_bind_t *) = {
        tpl_bind_sampler, tpl_bind_texts, tpl_bind_latent, tpl_bind_model, tpl_bind_outputs,
    };
    st = tpl_find_sampler(wf, &b.sampler, errstr, errstr_size);
    for (size_t i = 0; st == GQ_OK && i < GQ_ARRAY_LEN(steps); i++)
        st = steps[i](&b);
    /* Overrides come last so they can correct anything the binding above chose. */
    for (size_t i = 0; st == GQ_OK && i < req->overrides_cnt; i++)
        st = tpl_override(&b, req->overrides[i].key, req->overrides[i].value);
    if (st != GQ_OK) {
        json_decref(wf);
        return st;
    }
    *out = wf;
    if (info)
        info->timeout_s = timeout_s;
    return GQ_OK;
}
