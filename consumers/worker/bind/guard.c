/* What a request may make ComfyUI do (see guard.h). */
#include "guard.h"

#include "buf.h"
#include "graph.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUARD_CLASS_MAX 200              /* bytes of one class name */
#define GUARD_FILE_MAX ((size_t)1 << 20) /* an allowlist file */
#define GUARD_DEFAULT_WORD "default"

/* Core ComfyUI nodes (nodes.py and comfy_extras of ComfyUI 0.3.64) for pictures: loaders,
 * text encoders and conditioning, latents, samplers and their parts, image operations and
 * the image outputs. No custom node, nothing that runs code or reaches the network, nothing
 * that reads a directory other than ComfyUI's input directory (LoadImage's file name is
 * checked anyway). SaveImageWebsocket need not be listed: genq turns it into a SaveImage. */
const char *const gq_guard_default_classes[] = {
    /* loaders */
    "CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader", "CLIPLoader", "DualCLIPLoader",
    "TripleCLIPLoader", "VAELoader", "LoraLoader", "LoraLoaderModelOnly", "ControlNetLoader",
    "CLIPVisionLoader", "UpscaleModelLoader",
    /* text and conditioning */
    "CLIPTextEncode", "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner", "CLIPTextEncodeFlux",
    "CLIPTextEncodeSD3", "CLIPSetLastLayer", "ConditioningCombine", "ConditioningConcat",
    "ConditioningAverage", "ConditioningSetArea", "ConditioningSetAreaPercentage",
    "ConditioningSetMask", "ConditioningZeroOut", "ConditioningSetTimestepRange", "FluxGuidance",
    "ControlNetApply", "ControlNetApplyAdvanced", "CLIPVisionEncode", "unCLIPConditioning",
    /* latents */
    "EmptyLatentImage", "EmptySD3LatentImage", "LatentUpscale", "LatentUpscaleBy",
    "LatentComposite", "LatentBlend", "LatentFromBatch", "RepeatLatentBatch", "SetLatentNoiseMask",
    "VAEEncode", "VAEEncodeForInpaint", "VAEDecode", "VAEDecodeTiled", "VAEEncodeTiled",
    /* sampling */
    "KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced", "KSamplerSelect",
    "BasicScheduler", "KarrasScheduler", "ExponentialScheduler", "SDTurboScheduler",
    "AlignYourStepsScheduler", "BetaSamplingScheduler", "RandomNoise", "DisableNoise", "CFGGuider",
    "BasicGuider", "DualCFGGuider", "ModelSamplingDiscrete", "ModelSamplingFlux",
    "ModelSamplingSD3", "ModelSamplingAuraFlow", "RescaleCFG",
    /* images */
    "LoadImage", "LoadImageMask", "ImageScale", "ImageScaleBy", "ImageScaleToTotalPixels",
    "ImageUpscaleWithModel", "ImageCrop", "ImageBlur", "ImageSharpen", "ImageInvert",
    "ImageQuantize", "ImageBlend", "ImagePadForOutpaint", "ImageBatch", "EmptyImage", "ImageToMask",
    "MaskToImage", "InvertMask", "GrowMask",
    /* outputs */
    "SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", NULL};

static const gq_guard_t guard_builtin = {GQ_INLINE_ALLOW, NULL, 0};
static const gq_guard_t *guard_current;

void gq_guard_set_default(const gq_guard_t *g) { guard_current = g; }

const gq_guard_t *gq_guard_default(void) { return guard_current ? guard_current : &guard_builtin; }

const char *gq_guard_mode_name(gq_inline_mode_t m) {
    return m == GQ_INLINE_OFF ? "off" : m == GQ_INLINE_ALLOWLIST ? "allowlist" : "allow";
}

/* Copies s for a message: bounded, control characters replaced (names come from a message
 * and end up in logs, records and events). */
static const char *guard_quote(char *dst, size_t dst_size, const char *s) {
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

/* ---- the class list ---- */

static int guard_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static gq_status_t guard_add(gq_guard_t *g, const char *name, size_t len, size_t *cap, char *errstr,
                             size_t errstr_size) {
    char q[64];
    while (len && (*name == ' ' || *name == '\t' || *name == '\r')) {
        name++;
        len--;
    }
    while (len && (name[len - 1] == ' ' || name[len - 1] == '\t' || name[len - 1] == '\r'))
        len--;
    if (len == 0)
        return GQ_OK;
    if (len > GUARD_CLASS_MAX) {
        gq_errf(errstr, errstr_size, "inline_node_classes: a class name longer than %d bytes",
                GUARD_CLASS_MAX);
        return GQ_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            char tmp[GUARD_CLASS_MAX + 1];
            memcpy(tmp, name, len);
            tmp[len] = '\0';
            gq_errf(errstr, errstr_size, "inline_node_classes: \"%s\" has a control character",
                    guard_quote(q, sizeof(q), tmp));
            return GQ_ERR_INVALID;
        }
    if (g->classes_cnt == *cap) {
        size_t ncap = *cap ? *cap * 2 : 128;
        char **nc = realloc(g->classes, ncap * sizeof(*nc));
        if (!nc)
            return GQ_ERR_NOMEM;
        g->classes = nc;
        *cap = ncap;
    }
    char *s = strndup(name, len);
    if (!s)
        return GQ_ERR_NOMEM;
    g->classes[g->classes_cnt++] = s;
    return GQ_OK;
}

static gq_status_t guard_add_default(gq_guard_t *g, size_t *cap, char *errstr, size_t errstr_size) {
    gq_status_t st = GQ_OK;
    for (size_t i = 0; st == GQ_OK && gq_guard_default_classes[i]; i++)
        st = guard_add(g, gq_guard_default_classes[i], strlen(gq_guard_default_classes[i]), cap,
                       errstr, errstr_size);
    return st;
}

static gq_status_t guard_read_file(const char *path, gq_buf_t *b, char *errstr,
                                   size_t errstr_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gq_errf(errstr, errstr_size, "inline_node_classes: cannot open %s: %s", path,
                strerror(errno));
        return GQ_ERR_INVALID;
    }
    gq_status_t st = GQ_OK;
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gq_errf(errstr, errstr_size, "inline_node_classes: cannot read %s: %s", path,
                    strerror(errno));
            st = GQ_ERR_INVALID;
            break;
        }
        if (n == 0)
            break;
        if (gq_buf_append(b, chunk, (size_t)n) != GQ_OK) {
            gq_errf(errstr, errstr_size, "inline_node_classes: %s is larger than %zu KiB", path,
                    GUARD_FILE_MAX >> 10);
            st = GQ_ERR_INVALID;
            break;
        }
    }
    close(fd);
    return st;
}

gq_status_t gq_guard_init(gq_guard_t *g, const char *mode, const char *classes, char *errstr,
                          size_t errstr_size) {
    memset(g, 0, sizeof(*g));
    char q[64];
    if (!mode || strcmp(mode, "allow") == 0) {
        g->inline_mode = GQ_INLINE_ALLOW;
    } else if (strcmp(mode, "allowlist") == 0) {
        g->inline_mode = GQ_INLINE_ALLOWLIST;
    } else if (strcmp(mode, "off") == 0) {
        g->inline_mode = GQ_INLINE_OFF;
    } else {
        gq_errf(errstr, errstr_size, "inline_workflows \"%s\": expected off, allowlist or allow",
                guard_quote(q, sizeof(q), mode));
        return GQ_ERR_INVALID;
    }
    size_t cap = 0;
    gq_status_t st = GQ_OK;
    if (!classes || !*classes) {
        st = guard_add_default(g, &cap, errstr, errstr_size);
    } else if (strchr(classes, '/')) {
        gq_buf_t b;
        gq_buf_init(&b, GUARD_FILE_MAX);
        st = guard_read_file(classes, &b, errstr, errstr_size);
        for (size_t at = 0; st == GQ_OK && b.data && at < b.len;) {
            const char *line = b.data + at;
            const char *nl = memchr(line, '\n', b.len - at);
            size_t len = nl ? (size_t)(nl - line) : b.len - at;
            const char *hash = memchr(line, '#', len);
            if (memchr(line, '\0', len)) {
                gq_errf(errstr, errstr_size, "inline_node_classes: %s has a NUL byte", classes);
                st = GQ_ERR_INVALID;
            } else {
                st = guard_add(g, line, hash ? (size_t)(hash - line) : len, &cap, errstr,
                               errstr_size);
            }
            at += len + 1;
        }
        gq_buf_release(&b);
    } else {
        for (const char *p = classes; st == GQ_OK && p;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            const char *s = p;
            size_t l = len;
            while (l && *s == ' ') {
                s++;
                l--;
            }
            while (l && s[l - 1] == ' ')
                l--;
            if (l == strlen(GUARD_DEFAULT_WORD) && memcmp(s, GUARD_DEFAULT_WORD, l) == 0)
                st = guard_add_default(g, &cap, errstr, errstr_size);
            else
                st = guard_add(g, s, l, &cap, errstr, errstr_size);
            p = comma ? comma + 1 : NULL;
        }
    }
    if (st == GQ_OK && g->classes_cnt == 0) {
        gq_errf(errstr, errstr_size, "inline_node_classes \"%s\" lists no node class",
                guard_quote(q, sizeof(q), classes));
        st = GQ_ERR_INVALID;
    }
    if (st == GQ_ERR_NOMEM)
        gq_errf(errstr, errstr_size, "inline_node_classes: out of memory");
    if (st != GQ_OK) {
        gq_guard_release(g);
        return st;
    }
    qsort(g->classes, g->classes_cnt, sizeof(*g->classes), guard_cmp);
    size_t n = 0;
    for (size_t i = 0; i < g->classes_cnt; i++) {
        if (n && strcmp(g->classes[n - 1], g->classes[i]) == 0)
            free(g->classes[i]);
        else
            g->classes[n++] = g->classes[i];
    }
    g->classes_cnt = n;
    return GQ_OK;
}

void gq_guard_release(gq_guard_t *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->classes_cnt; i++)
        free(g->classes[i]);
    free(g->classes);
    g->classes = NULL;
    g->classes_cnt = 0;
}

bool gq_guard_class_allowed(const gq_guard_t *g, const char *cls) {
    if (g->inline_mode == GQ_INLINE_ALLOW)
        return true;
    if (!cls || !g->classes)
        return false;
    return bsearch(&cls, g->classes, g->classes_cnt, sizeof(*g->classes), guard_cmp) != NULL;
}

/* ---- the request ---- */

/* Whether the template's "_genq".overrides lets key (node `id`, input `input`) be set. */
static bool guard_listed(json_t *tmpl, json_t *list, const char *id, const char *input) {
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *s = json_string_value(e), *dot = s ? strrchr(s, '.') : NULL, *eid = NULL;
        char ref[160];
        if (!dot || (size_t)(dot - s) >= sizeof(ref))
            continue;
        memcpy(ref, s, (size_t)(dot - s));
        ref[dot - s] = '\0';
        if (gq_graph_node_ref(tmpl, ref, &eid) != GQ_OK || strcmp(eid, id) != 0)
            continue;
        if (strcmp(dot + 1, "*") == 0 || strcmp(dot + 1, input) == 0)
            return true;
    }
    return false;
}

gq_status_t gq_guard_request(const gq_guard_t *g, const gq_request_t *req, json_t *tmpl,
                             bool is_inline, char *errstr, size_t errstr_size) {
    char q[160], name[96];
    if (is_inline && g->inline_mode == GQ_INLINE_OFF) {
        gq_errf(errstr, errstr_size,
                "inline workflows are off on this worker (GENQ_INLINE_WORKFLOWS=off): name a "
                "template in workflow instead of sending workflow_json");
        return GQ_ERR_INVALID;
    }
    json_t *list = NULL;
    if (!is_inline && tmpl)
        list = json_object_get(json_object_get(tmpl, "_genq"), "overrides");
    for (size_t i = 0; i < req->overrides_cnt; i++) {
        const char *key = req->overrides[i].key;
        const char *dot = key ? strrchr(key, '.') : NULL;
        if (!dot)
            continue; /* binding says what is wrong with it */
        if (strcmp(dot + 1, "filename_prefix") == 0) {
            gq_errf(errstr, errstr_size,
                    "override \"%s\": genq sets every filename_prefix itself (the outputs of a "
                    "job are named after it, collected and then deleted from ComfyUI)",
                    guard_quote(q, sizeof(q), key));
            return GQ_ERR_INVALID;
        }
        if (is_inline || !tmpl || (!list && g->inline_mode == GQ_INLINE_ALLOW))
            continue;
        char ref[160];
        const char *id = NULL;
        size_t len = (size_t)(dot - key);
        if (len < sizeof(ref)) {
            memcpy(ref, key, len);
            ref[len] = '\0';
            if (gq_graph_node_ref(tmpl, ref, &id) != GQ_OK)
                id = NULL;
        }
        if (!id || !list || !guard_listed(tmpl, list, id, dot + 1)) {
            if (list)
                gq_errf(
                    errstr, errstr_size,
                    "override \"%s\" is not one template \"%s\" allows (its \"_genq\".overrides)",
                    guard_quote(q, sizeof(q), key), guard_quote(name, sizeof(name), req->workflow));
            else
                gq_errf(errstr, errstr_size,
                        "override \"%s\": template \"%s\" lists no overrides a request may set "
                        "(\"_genq\": {\"overrides\": [...]}), and with GENQ_INLINE_WORKFLOWS=%s "
                        "a template takes only the overrides it lists",
                        guard_quote(q, sizeof(q), key),
                        guard_quote(name, sizeof(name), req->workflow),
                        gq_guard_mode_name(g->inline_mode));
            return GQ_ERR_INVALID;
        }
    }
    return GQ_OK;
}

/* ---- the bound workflow ---- */

/* An input that names a file ComfyUI opens: any string input of a loader (LoadImage,
 * LoadAudio, LoadLatent, CheckpointLoaderSimple, VHS_LoadVideo...), or an input whose name
 * says so (image, file, video, lora_name...). */
static bool guard_file_input(const char *cls, const char *input) {
    static const char *const names[] = {"image",  "mask",     "audio", "video", "file",
                                        "latent", "filename", "path",  NULL};
    if (cls && strstr(cls, "Load"))
        return true;
    for (size_t i = 0; names[i]; i++)
        if (strcmp(input, names[i]) == 0)
            return true;
    size_t n = strlen(input);
    return (n > 5 && strcmp(input + n - 5, "_name") == 0) ||
           (n > 5 && strcmp(input + n - 5, "_path") == 0) ||
           (n > 5 && strcmp(input + n - 5, "_file") == 0);
}

static bool guard_ends(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Why a file name may not be opened, or NULL. ComfyUI joins it to its input directory as
 * it is (folder_paths.get_annotated_filepath), after taking an "[output]" or "[temp]"
 * suffix to mean those directories. */
static const char *guard_bad_path(const char *s) {
    if (guard_ends(s, "[output]"))
        return "names a file of ComfyUI's output directory (other jobs' results)";
    if (guard_ends(s, "[temp]"))
        return "names a file of ComfyUI's temp directory (other jobs' previews)";
    if (s[0] == '/' || s[0] == '\\' || s[0] == '~' ||
        (((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') && s[1] == ':'))
        return "is an absolute path";
    for (const char *p = s; *p;) {
        size_t seg = strcspn(p, "/\\");
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return "leaves ComfyUI's input directory (..)";
        p += seg;
        if (*p)
            p++;
    }
    return NULL;
}

/* Checks v, a literal value of input `input` of node `id` (strings inside objects and
 * lists too, links excepted). */
static gq_status_t guard_value(const char *id, const char *cls, const char *input, json_t *v,
                               int depth, char *errstr, size_t errstr_size) {
    if (json_is_string(v)) {
        const char *why = guard_bad_path(json_string_value(v));
        if (!why)
            return GQ_OK;
        char qv[120], qc[96], qi[96], qid[64];
        gq_errf(errstr, errstr_size,
                "node \"%s\" (%s) input \"%s\": \"%s\" %s; a request may read files of ComfyUI's "
                "input directory only",
                guard_quote(qid, sizeof(qid), id), guard_quote(qc, sizeof(qc), cls),
                guard_quote(qi, sizeof(qi), input),
                guard_quote(qv, sizeof(qv), json_string_value(v)), why);
        return GQ_ERR_INVALID;
    }
    if (depth > 8 || gq_graph_link(v, NULL, NULL))
        return GQ_OK;
    gq_status_t st = GQ_OK;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if ((st = guard_value(id, cls, input, x, depth + 1, errstr, errstr_size)) != GQ_OK)
                break;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if ((st = guard_value(id, cls, input, x, depth + 1, errstr, errstr_size)) != GQ_OK)
                break;
        }
    }
    return st;
}

gq_status_t gq_guard_workflow(const gq_guard_t *g, json_t *wf, bool is_inline, const char *prefix,
                              char *errstr, size_t errstr_size) {
    const char *id;
    json_t *node;
    char qc[96], qid[64];
    if (is_inline && g->inline_mode == GQ_INLINE_ALLOWLIST) {
        /* Every class that is not allowed, named at once: the sender fixes them together. */
        gq_buf_t bad;
        gq_buf_init(&bad, 400);
        size_t n = 0;
        json_object_foreach(wf, id, node) {
            const char *cls = gq_graph_class(node);
            if (gq_guard_class_allowed(g, cls))
                continue;
            bool seen = false;
            json_t *prev;
            const char *pid;
            json_object_foreach(wf, pid, prev) {
                if (pid == id)
                    break;
                if (!gq_guard_class_allowed(g, gq_graph_class(prev)) &&
                    strcmp(gq_graph_class(prev), cls) == 0)
                    seen = true;
            }
            if (seen)
                continue;
            if (n++ < 5)
                gq_buf_appendf(&bad, "%s%s", n > 1 ? ", " : "", guard_quote(qc, sizeof(qc), cls));
        }
        if (n) {
            gq_errf(errstr, errstr_size,
                    "the inline workflow uses node class%s %s%s, not allowed on this worker "
                    "(GENQ_INLINE_WORKFLOWS=allowlist; GENQ_INLINE_NODE_CLASSES lists the "
                    "allowed ones)",
                    n > 1 ? "es" : "", bad.data ? bad.data : "", n > 5 ? ", ..." : "");
            gq_buf_release(&bad);
            return GQ_ERR_INVALID;
        }
        gq_buf_release(&bad);
    }
    json_object_foreach(wf, id, node) {
        const char *cls = gq_graph_class(node);
        json_t *inputs = gq_graph_inputs(node);
        json_t *fp = json_object_get(inputs, "filename_prefix");
        if (prefix && fp && !gq_graph_is_preview(node) &&
            !(json_is_string(fp) && strcmp(json_string_value(fp), prefix) == 0)) {
            gq_errf(errstr, errstr_size,
                    "node \"%s\" (%s) sets its own filename_prefix; genq names the outputs of "
                    "every saving node after the job (%s)",
                    guard_quote(qid, sizeof(qid), id), guard_quote(qc, sizeof(qc), cls), prefix);
            return GQ_ERR_INVALID;
        }
        const char *input;
        json_t *v;
        json_object_foreach(inputs, input, v) {
            if (!guard_file_input(cls, input))
                continue;
            gq_status_t st = guard_value(id, cls ? cls : "?", input, v, 0, errstr, errstr_size);
            if (st != GQ_OK)
                return st;
        }
    }
    return GQ_OK;
}
