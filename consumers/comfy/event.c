/* WebSocket text messages ({"type": ..., "data": {...}}) into gq_comfy_event_t. */
#include "comfy_int.h"
#include "util.h"

#include <string.h>

static const struct {
    const char *name;
    gq_comfy_ev_type_t type;
} ev_names[] = {
    {"status", GQ_COMFY_EV_STATUS},
    {"execution_start", GQ_COMFY_EV_START},
    {"execution_cached", GQ_COMFY_EV_CACHED},
    {"executing", GQ_COMFY_EV_EXECUTING},
    {"progress", GQ_COMFY_EV_PROGRESS},
    {"executed", GQ_COMFY_EV_EXECUTED},
    {"execution_success", GQ_COMFY_EV_SUCCESS},
    {"execution_error", GQ_COMFY_EV_ERROR},
    {"execution_interrupted", GQ_COMFY_EV_INTERRUPTED},
};

/* Drops the trailing newline(s) ComfyUI always appends to exception messages. */
static void rstrip(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static double num(const json_t *v) { return json_is_number(v) ? json_number_value(v) : 0.0; }

static void fill_error(gq_comfy_event_t *ev, const json_t *data) {
    gq_comfy_json_str_copy(ev->node, sizeof(ev->node), json_object_get(data, "node_id"));
    gq_comfy_json_str_copy(ev->node_type, sizeof(ev->node_type),
                           json_object_get(data, "node_type"));
    gq_comfy_json_str_copy(ev->exception_type, sizeof(ev->exception_type),
                           json_object_get(data, "exception_type"));
    gq_comfy_json_str_copy(ev->exception_message, sizeof(ev->exception_message),
                           json_object_get(data, "exception_message"));
    rstrip(ev->exception_message);
}

static void fill(gq_comfy_event_t *ev, const json_t *data) {
    int64_t v;
    switch (ev->type) {
    case GQ_COMFY_EV_STATUS: {
        const json_t *ei = json_object_get(json_object_get(data, "status"), "exec_info");
        if (gq_comfy_json_i64(json_object_get(ei, "queue_remaining"), &v) && v >= 0 &&
            v <= INT32_MAX)
            ev->queue_remaining = (int)v;
        break;
    }
    case GQ_COMFY_EV_EXECUTING: {
        const json_t *node = json_object_get(data, "node");
        /* node null means the prompt finished and its history entry is written. */
        if (json_is_null(node))
            ev->type = GQ_COMFY_EV_DONE;
        else
            gq_comfy_json_str_copy(ev->node, sizeof(ev->node), node);
        break;
    }
    case GQ_COMFY_EV_PROGRESS:
        ev->value = num(json_object_get(data, "value"));
        ev->max = num(json_object_get(data, "max"));
        gq_comfy_json_str_copy(ev->node, sizeof(ev->node), json_object_get(data, "node"));
        break;
    case GQ_COMFY_EV_EXECUTED:
        gq_comfy_json_str_copy(ev->node, sizeof(ev->node), json_object_get(data, "node"));
        break;
    case GQ_COMFY_EV_ERROR:
        fill_error(ev, data);
        /* An ExecutionBlocker message: the run goes on and history does not record it, so
         * it must not look like the end of the prompt. */
        if (strcmp(ev->exception_type, "ExecutionBlocked") == 0)
            ev->type = GQ_COMFY_EV_OTHER;
        break;
    case GQ_COMFY_EV_INTERRUPTED:
        gq_comfy_json_str_copy(ev->node, sizeof(ev->node), json_object_get(data, "node_id"));
        gq_comfy_json_str_copy(ev->node_type, sizeof(ev->node_type),
                               json_object_get(data, "node_type"));
        break;
    default: break;
    }
}

gq_status_t gq_comfy_event_parse(const char *text, size_t len, gq_comfy_event_t *ev, char *errstr,
                                 size_t errstr_size) {
    memset(ev, 0, sizeof(*ev));
    ev->queue_remaining = -1;
    json_t *root = gq_comfy_json_parse(text, len, errstr, errstr_size);
    if (!root)
        return GQ_ERR_INVALID;
    gq_status_t st = GQ_OK;
    const json_t *type = json_object_get(root, "type");
    const json_t *data = json_object_get(root, "data");
    if (!json_is_string(type)) {
        gq_errf(errstr, errstr_size, "WebSocket message without a string \"type\"");
        st = GQ_ERR_INVALID;
        goto out;
    }
    if (data && !json_is_object(data)) {
        gq_errf(errstr, errstr_size, "WebSocket message %.31s: \"data\" is not an object",
                json_string_value(type));
        st = GQ_ERR_INVALID;
        goto out;
    }
    gq_comfy_json_str_copy(ev->name, sizeof(ev->name), type);
    ev->type = GQ_COMFY_EV_OTHER;
    for (size_t i = 0; i < GQ_ARRAY_LEN(ev_names); i++)
        if (strcmp(json_string_value(type), ev_names[i].name) == 0)
            ev->type = ev_names[i].type;
    /* prompt_id is missing in the reconnect "executing" message and in "status". */
    gq_comfy_json_str_copy(ev->prompt_id, sizeof(ev->prompt_id),
                           json_object_get(data, "prompt_id"));
    int64_t ts;
    if (gq_comfy_json_i64(json_object_get(data, "timestamp"), &ts))
        ev->timestamp = ts;
    fill(ev, data);
out:
    json_decref(root);
    return st;
}
