/*
 * libFuzzer target: ComfyUI's WebSocket messages (gq_comfy_event_parse, gq_comfy_event_binary)
 * on any bytes. Parsing must never crash or read out of bounds. And the "progress" messages,
 * which are read without a JSON tree when they look as ComfyUI writes them, must come out as
 * jansson reads them: whatever the shortcut takes, it takes the same fields.
 */
#include "consumers/comfy/comfy_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference: the message as jansson reads it, the fields as the full parser keeps them. */
static void check_progress(const char *text, size_t len, const gq_comfy_event_t *ev) {
    json_t *root = json_loadb(text, len, 0, NULL);
    if (!root)
        return; /* not JSON at all: the shortcut may read what the full parser refuses */
    const json_t *type = json_object_get(root, "type"), *d = json_object_get(root, "data");
    if (json_is_string(type) && strcmp(json_string_value(type), "progress") == 0 &&
        json_is_object(d)) {
        const json_t *v = json_object_get(d, "value"), *m = json_object_get(d, "max");
        const json_t *p = json_object_get(d, "prompt_id"), *n = json_object_get(d, "node");
        if (ev->type != GQ_COMFY_EV_PROGRESS)
            abort();
        if (json_is_number(v) && json_number_value(v) != ev->value)
            abort();
        if (json_is_number(m) && json_number_value(m) != ev->max)
            abort();
        /* Short plain strings only: the full parser cuts long ones at a character boundary. */
        if (json_is_string(p) && json_string_length(p) < 40 &&
            !memchr(json_string_value(p), '\0', json_string_length(p)) &&
            strcmp(json_string_value(p), ev->prompt_id) != 0)
            abort();
        if (json_is_string(n) && json_string_length(n) < 40 &&
            !memchr(json_string_value(n), '\0', json_string_length(n)) &&
            strcmp(json_string_value(n), ev->node) != 0)
            abort();
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gq_comfy_event_t ev;
    char err[512];
    if (gq_comfy_event_parse((const char *)data, size, &ev, err, sizeof(err)) == GQ_OK)
        check_progress((const char *)data, size, &ev);
    gq_comfy_event_binary(data, size, &ev);
    return 0;
}
