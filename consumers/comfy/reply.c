/* Small reply documents: POST /prompt rejections and GET /system_stats. */
#include "comfy_int.h"
#include "util.h"

#include <string.h>

/* Appends s with control characters (newlines in details) turned into spaces, so the
 * summary stays one log line. Failures only truncate the summary. */
static void append_clean(gq_buf_t *b, const char *s) {
    for (; s && *s; s++) {
        char c = (unsigned char)*s < 0x20 ? ' ' : *s;
        if (gq_buf_append(b, &c, 1) != GQ_OK)
            return;
    }
}

static const char *str_or(const json_t *v, const char *dflt) {
    const char *s = json_string_value(v);
    return s ? s : dflt;
}

static size_t node_errors_append(gq_buf_t *b, const json_t *node_errors) {
    size_t count = 0;
    const char *id;
    const json_t *ne;
    json_object_foreach((json_t *)node_errors, id, ne) {
        const char *cls = str_or(json_object_get(ne, "class_type"), "?");
        const json_t *errors = json_object_get(ne, "errors");
        size_t i;
        const json_t *e;
        bool any = false;
        json_array_foreach(errors, i, e) {
            const char *msg = str_or(json_object_get(e, "message"), "");
            const char *details = str_or(json_object_get(e, "details"), "");
            if (!json_is_object(e)) {
                msg = str_or(e, "?");
                details = "";
            }
            append_clean(b, b->len ? "; node " : "node ");
            append_clean(b, id);
            append_clean(b, " (");
            append_clean(b, cls);
            append_clean(b, "): ");
            append_clean(b, msg);
            if (*details) {
                append_clean(b, ": ");
                append_clean(b, details);
            }
            count++;
            any = true;
        }
        if (!any) {
            append_clean(b, b->len ? "; node " : "node ");
            append_clean(b, id);
            append_clean(b, " (");
            append_clean(b, cls);
            append_clean(b, "): invalid");
            count++;
        }
    }
    return count;
}

size_t gq_comfy_prompt_errors_format(const json_t *root, char *out, size_t out_size) {
    gq_buf_t b;
    gq_buf_init(&b, 64 * 1024);
    const json_t *err = json_object_get(root, "error");
    if (json_is_object(err)) {
        const char *type = str_or(json_object_get(err, "type"), "");
        const char *msg = str_or(json_object_get(err, "message"), "");
        const char *details = str_or(json_object_get(err, "details"), "");
        append_clean(&b, type);
        if (*type && *msg)
            append_clean(&b, ": ");
        append_clean(&b, msg);
        if (*details) {
            append_clean(&b, " [");
            append_clean(&b, details);
            append_clean(&b, "]");
        }
    } else if (json_is_string(err)) {
        append_clean(&b, json_string_value(err));
    }
    size_t count = 0;
    const json_t *node_errors = json_object_get(root, "node_errors");
    if (json_is_object(node_errors))
        count = node_errors_append(&b, node_errors);
    if (out_size > 0) {
        gq_strlcpy(out, b.data ? b.data : "", out_size);
        /* Cut at a character boundary, like every other copy from ComfyUI. */
        size_t n = strlen(out);
        if (b.len > n) {
            while (n > 0 && ((unsigned char)b.data[n] & 0xC0) == 0x80)
                n--;
            out[n] = '\0';
        }
    }
    gq_buf_release(&b);
    return count;
}

gq_status_t gq_comfy_stats_parse(const json_t *root, gq_comfy_stats_t *st, char *errstr,
                                 size_t errstr_size) {
    memset(st, 0, sizeof(*st));
    const json_t *sys = json_object_get(root, "system");
    const json_t *devices = json_object_get(root, "devices");
    if (!json_is_object(sys) || !json_is_array(devices)) {
        gq_errf(errstr, errstr_size, "system_stats: no \"system\" object or \"devices\" array");
        return GQ_ERR_INVALID;
    }
    gq_comfy_json_str_copy(st->version, sizeof(st->version),
                           json_object_get(sys, "comfyui_version"));
    const json_t *dev = json_array_get(devices, 0);
    gq_comfy_json_str_copy(st->device, sizeof(st->device), json_object_get(dev, "name"));
    int64_t v;
    if (gq_comfy_json_i64(json_object_get(dev, "vram_total"), &v))
        st->vram_total = v;
    if (gq_comfy_json_i64(json_object_get(dev, "vram_free"), &v))
        st->vram_free = v;
    return GQ_OK;
}
