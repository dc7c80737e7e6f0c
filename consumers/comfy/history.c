/* GET /history/{id} and GET /queue documents. */
#include "comfy_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void gq_comfy_result_release(gq_comfy_result_t *r) {
    if (!r)
        return;
    free(r->images);
    memset(r, 0, sizeof(*r));
}

static void history_messages(const json_t *msgs, gq_comfy_result_t *r) {
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *name = json_string_value(json_array_get(m, 0));
        const json_t *data = json_array_get(m, 1);
        if (!name || !json_is_object(data))
            continue;
        int64_t ts;
        bool has_ts = gq_comfy_json_i64(json_object_get(data, "timestamp"), &ts);
        if (has_ts)
            r->end_ms = ts;
        if (strcmp(name, "execution_start") == 0 && has_ts) {
            r->start_ms = ts;
        } else if (strcmp(name, "execution_error") == 0) {
            gq_comfy_json_str_copy(r->error_type, sizeof(r->error_type),
                                   json_object_get(data, "exception_type"));
            gq_comfy_json_str_copy(r->error_message, sizeof(r->error_message),
                                   json_object_get(data, "exception_message"));
            size_t n = strlen(r->error_message);
            while (n > 0 && (r->error_message[n - 1] == '\n' || r->error_message[n - 1] == ' '))
                r->error_message[--n] = '\0';
        } else if (strcmp(name, "execution_interrupted") == 0) {
            r->interrupted = true;
        } else {
            continue;
        }
        if (strcmp(name, "execution_start") != 0) {
            gq_comfy_json_str_copy(r->error_node, sizeof(r->error_node),
                                   json_object_get(data, "node_id"));
            gq_comfy_json_str_copy(r->error_node_type, sizeof(r->error_node_type),
                                   json_object_get(data, "node_type"));
        }
    }
}

/* Copies one string field of an image entry; a value that does not fit is an error, since a
 * truncated filename would name another file. */
static bool image_field(char *dst, size_t size, const json_t *v, const char *dflt) {
    if (!v || json_is_null(v)) {
        gq_strlcpy(dst, dflt, size);
        return true;
    }
    if (!json_is_string(v))
        return false;
    return gq_strlcpy(dst, json_string_value(v), size) == GQ_OK;
}

/* The ui keys that hold files: images (SaveImage, animations, SaveVideo: "images" +
 * "animated"), audio (SaveAudio), and gifs/video from common custom nodes. Any other key
 * whose entries are objects with a filename is read too; there, an entry without one is
 * skipped instead of refused. */
static const char *const history_file_keys[] = {"images", "audio", "video", "gifs", NULL};

static bool history_known_key(const char *key) {
    for (size_t i = 0; history_file_keys[i]; i++)
        if (strcmp(key, history_file_keys[i]) == 0)
            return true;
    return false;
}

/* Appends one entry {filename, subfolder, type} of ui[key] of node `node`. */
static gq_status_t history_file(gq_comfy_result_t *r, size_t *cap, const char *node,
                                const char *key, const json_t *entry, bool animated, char *errstr,
                                size_t errstr_size) {
    if (r->images_cnt == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        gq_comfy_image_t *p = realloc(r->images, ncap * sizeof(*p));
        if (!p) {
            gq_errf(errstr, errstr_size, "out of memory reading history outputs");
            return GQ_ERR_NOMEM;
        }
        r->images = p;
        *cap = ncap;
    }
    gq_comfy_image_t *im = &r->images[r->images_cnt];
    memset(im, 0, sizeof(*im));
    if (!image_field(im->filename, sizeof(im->filename), json_object_get(entry, "filename"), "") ||
        !image_field(im->subfolder, sizeof(im->subfolder), json_object_get(entry, "subfolder"),
                     "") ||
        !image_field(im->type, sizeof(im->type), json_object_get(entry, "type"), "output") ||
        gq_strlcpy(im->node, node, sizeof(im->node)) != GQ_OK || !im->filename[0]) {
        gq_errf(errstr, errstr_size,
                "history output of node %.63s: an entry of \"%.15s\" has a missing, non-string "
                "or overlong filename/subfolder/type",
                node, key);
        return GQ_ERR_INVALID;
    }
    gq_strlcpy(im->kind, key, sizeof(im->kind));
    im->animated = animated;
    r->images_cnt++;
    return GQ_OK;
}

static gq_status_t history_images(const json_t *outputs, gq_comfy_result_t *r, char *errstr,
                                  size_t errstr_size) {
    const char *node;
    const json_t *ui;
    size_t cap = 0;
    json_object_foreach((json_t *)outputs, node, ui) {
        /* "animated": [true] marks the node's files as animations (one file, many frames). */
        const json_t *anim = json_object_get(ui, "animated");
        const char *key;
        const json_t *list;
        json_object_foreach((json_t *)ui, key, list) {
            if (!json_is_array(list) || strcmp(key, "animated") == 0)
                continue;
            bool known = history_known_key(key);
            size_t i;
            const json_t *entry;
            json_array_foreach(list, i, entry) {
                if (!json_is_object(entry) || (!known && !json_object_get(entry, "filename")))
                    continue;
                const json_t *a = json_array_get(anim, json_array_size(anim) > i ? i : 0);
                gq_status_t st =
                    history_file(r, &cap, node, key, entry, json_is_true(a), errstr, errstr_size);
                if (st != GQ_OK)
                    return st;
            }
        }
    }
    return GQ_OK;
}

gq_status_t gq_comfy_history_parse(const json_t *root, const char *prompt_id, gq_comfy_result_t *r,
                                   char *errstr, size_t errstr_size) {
    gq_comfy_result_release(r);
    if (!json_is_object(root)) {
        gq_errf(errstr, errstr_size, "history of %s: not a JSON object", prompt_id);
        return GQ_ERR_INVALID;
    }
    const json_t *entry = json_object_get(root, prompt_id);
    if (!entry) {
        gq_errf(errstr, errstr_size, "no history for prompt %s (unknown or not finished)",
                prompt_id);
        return GQ_ERR_NOTFOUND;
    }
    if (!json_is_object(entry)) {
        gq_errf(errstr, errstr_size, "history of %s: entry is not an object", prompt_id);
        return GQ_ERR_INVALID;
    }
    /* status may be null in principle; then the prompt counts as failed. */
    const json_t *status = json_object_get(entry, "status");
    const char *status_str = json_string_value(json_object_get(status, "status_str"));
    r->success = status_str && strcmp(status_str, "success") == 0 &&
                 json_is_true(json_object_get(status, "completed"));
    history_messages(json_object_get(status, "messages"), r);
    if (!r->success && !r->error_message[0])
        gq_errf(r->error_message, sizeof(r->error_message), "%s",
                r->interrupted ? "execution interrupted"
                : status_str   ? status_str
                               : "no status in the history entry");
    const json_t *outputs = json_object_get(entry, "outputs");
    gq_status_t st = GQ_OK;
    if (json_is_object(outputs))
        st = history_images(outputs, r, errstr, errstr_size);
    if (st != GQ_OK)
        gq_comfy_result_release(r);
    return st;
}

gq_comfy_state_t gq_comfy_queue_find(const json_t *root, const char *prompt_id) {
    static const struct {
        const char *key;
        gq_comfy_state_t state;
    } lists[] = {{"queue_running", GQ_COMFY_RUNNING}, {"queue_pending", GQ_COMFY_PENDING}};
    for (size_t k = 0; k < GQ_ARRAY_LEN(lists); k++) {
        size_t i;
        const json_t *item;
        /* Items are [number, prompt_id, prompt, extra_data, outputs_to_execute]. */
        json_array_foreach(json_object_get(root, lists[k].key), i, item) {
            const char *id = json_string_value(json_array_get(item, 1));
            if (id && strcmp(id, prompt_id) == 0)
                return lists[k].state;
        }
    }
    return GQ_COMFY_UNKNOWN;
}
