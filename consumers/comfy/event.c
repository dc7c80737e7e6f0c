/* WebSocket text messages ({"type": ..., "data": {...}}) into gq_comfy_event_t. */
#include "comfy_int.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
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
    case GQ_COMFY_EV_CACHED: {
        size_t n = json_array_size(json_object_get(data, "nodes"));
        ev->nodes = n > INT32_MAX ? INT32_MAX : (int)n;
        break;
    }
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

/* Skips blanks; returns the new position. */
static size_t peek_ws(const char *t, size_t n, size_t i) {
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* A string without escapes at t[i] (the opening quote) into out; false if not one. */
static bool peek_plain_str(const char *t, size_t n, size_t i, char *out, size_t out_size) {
    if (i >= n || t[i] != '"')
        return false;
    size_t j = i + 1;
    while (j < n && t[j] != '"' && t[j] != '\\' && (unsigned char)t[j] >= 0x20)
        j++;
    if (j >= n || t[j] != '"' || j - i - 1 >= out_size)
        return false;
    memcpy(out, t + i + 1, j - i - 1);
    out[j - i - 1] = '\0';
    return true;
}

/* The type of a message whose first key is "type", as ComfyUI writes them; false when the
 * message does not start so (the full parser then decides). */
static bool peek_type(const char *t, size_t n, char *out, size_t out_size) {
    size_t i = peek_ws(t, n, 0);
    if (i >= n || t[i] != '{')
        return false;
    i = peek_ws(t, n, i + 1);
    if (n - i < 6 || memcmp(t + i, "\"type\"", 6) != 0)
        return false;
    i = peek_ws(t, n, i + 6);
    if (i >= n || t[i] != ':')
        return false;
    return peek_plain_str(t, n, peek_ws(t, n, i + 1), out, out_size);
}

/* Where the value of a "key": in t[from..n) starts (past the colon and blanks), or n. */
static size_t peek_key(const char *t, size_t n, const char *key, size_t from) {
    size_t kl = strlen(key);
    for (size_t i = from; i + kl + 2 < n; i++) {
        if (t[i] != '"' || memcmp(t + i + 1, key, kl) != 0 || t[i + 1 + kl] != '"')
            continue;
        size_t j = peek_ws(t, n, i + kl + 2);
        if (j < n && t[j] == ':')
            return peek_ws(t, n, j + 1);
    }
    return n;
}

/* The first "key": "value" string in the message (no escapes in it), "" when none. */
static void peek_field(const char *t, size_t n, const char *key, char *out, size_t out_size) {
    out[0] = '\0';
    for (size_t i = peek_key(t, n, key, 0); i < n; i = peek_key(t, n, key, i)) {
        if (peek_plain_str(t, n, i, out, out_size))
            return;
        out[0] = '\0';
    }
}

/* The number that is the first "key"'s value into *out; false when there is none, or it is
 * not a plain finite JSON number. */
static bool peek_number(const char *t, size_t n, const char *key, double *out) {
    size_t j = peek_key(t, n, key, 0);
    char num[40];
    size_t k = 0;
    while (j < n && k + 1 < sizeof(num) && t[j] && strchr("0123456789+-.eE", t[j]))
        num[k++] = t[j++];
    num[k] = '\0';
    if (k == 0 || (j < n && t[j] != ',' && t[j] != '}' && t[j] != ' ' && t[j] != '\n'))
        return false;
    char *end;
    *out = strtod(num, &end);
    return *end == '\0' && isfinite(*out);
}

/* The one "key" of t[0..n): the position of its value, or n when it is missing or twice
 * (jansson keeps the last of duplicates; the full parser decides those). */
static size_t peek_key_once(const char *t, size_t n, const char *key) {
    size_t i = peek_key(t, n, key, 0);
    return i < n && peek_key(t, n, key, i) == n ? i : n;
}

/* A "progress" message (one per sampler step, the most frequent of a render) read without
 * building a JSON tree, when it is as ComfyUI writes it: no escapes (so every quote delimits
 * a string, and a key cannot hide in one), one flat "data" object, each field once. false
 * sends it to the full parser (a null node, an escape, a field missing or repeated). */
static bool event_progress_peek(const char *t, size_t n, gq_comfy_event_t *ev) {
    size_t objects = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '\\' || t[i] == '[' || (t[i] == '{' && ++objects > 2))
            return false;
    size_t d = peek_key_once(t, n, "data");
    if (d >= n || t[d] != '{' || peek_key_once(t, n, "type") >= n)
        return false;
    size_t e = d + 1;
    for (bool str = false; e < n && (str || t[e] != '}'); e++)
        if (t[e] == '"')
            str = !str;
    if (e >= n)
        return false;
    const char *dt = t + d;
    size_t dn = e + 1 - d;
    size_t pi = peek_key_once(dt, dn, "prompt_id"), ni = peek_key_once(dt, dn, "node");
    if (peek_key_once(dt, dn, "value") >= dn || peek_key_once(dt, dn, "max") >= dn ||
        !peek_number(dt, dn, "value", &ev->value) || !peek_number(dt, dn, "max", &ev->max) ||
        pi >= dn || ni >= dn)
        return false;
    return peek_plain_str(dt, dn, pi, ev->prompt_id, sizeof(ev->prompt_id)) &&
           peek_plain_str(dt, dn, ni, ev->node, sizeof(ev->node)) && ev->prompt_id[0] &&
           ev->node[0];
}

/*
 * Messages genq never reads beyond their prompt id: the progress_state snapshots of every
 * node, executed (its UI output: the history has it too), and every type ComfyUI or a custom
 * node may add (monitors send several a second). Parsing them whole would cost more than
 * everything else a render asks of the worker.
 */
static bool event_skippable(const char *type, gq_comfy_ev_type_t *kind) {
    if (strcmp(type, "executed") == 0) {
        *kind = GQ_COMFY_EV_EXECUTED;
        return true;
    }
    *kind = GQ_COMFY_EV_OTHER;
    if (strcmp(type, "progress_state") == 0)
        return true;
    for (size_t i = 0; i < GQ_ARRAY_LEN(ev_names); i++)
        if (strcmp(type, ev_names[i].name) == 0)
            return false;
    return true;
}

/* ComfyUI's binary events: a 4-byte big-endian type, then the payload. 1 is PREVIEW_IMAGE
 * (a 4-byte image format, the image); 4 is PREVIEW_IMAGE_WITH_METADATA (a 4-byte big-endian
 * length, that many bytes of JSON metadata with the prompt_id, the image). */
#define EV_BINARY_PREVIEW 1
#define EV_BINARY_PREVIEW_META 4

bool gq_comfy_event_binary(const unsigned char *data, size_t len, gq_comfy_event_t *ev) {
    if (len < 4)
        return false;
    uint32_t type = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                    (uint32_t)data[3];
    if (type != EV_BINARY_PREVIEW && type != EV_BINARY_PREVIEW_META)
        return false;
    memset(ev, 0, sizeof(*ev));
    ev->queue_remaining = -1;
    ev->type = GQ_COMFY_EV_PREVIEW;
    gq_strlcpy(ev->name, "preview", sizeof(ev->name));
    if (type == EV_BINARY_PREVIEW_META && len >= 8) {
        uint32_t mlen = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 8 |
                        (uint32_t)data[7];
        if (mlen <= len - 8)
            peek_field((const char *)data + 8, mlen, "prompt_id", ev->prompt_id,
                       sizeof(ev->prompt_id));
    }
    return true;
}

gq_status_t gq_comfy_event_parse(const char *text, size_t len, gq_comfy_event_t *ev, char *errstr,
                                 size_t errstr_size) {
    memset(ev, 0, sizeof(*ev));
    ev->queue_remaining = -1;
    gq_comfy_ev_type_t kind;
    if (peek_type(text, len, ev->name, sizeof(ev->name)) && event_skippable(ev->name, &kind)) {
        ev->type = kind;
        peek_field(text, len, "prompt_id", ev->prompt_id, sizeof(ev->prompt_id));
        if (kind == GQ_COMFY_EV_EXECUTED)
            peek_field(text, len, "node", ev->node, sizeof(ev->node));
        return GQ_OK;
    }
    if (strcmp(ev->name, "progress") == 0) {
        ev->type = GQ_COMFY_EV_PROGRESS;
        if (event_progress_peek(text, len, ev))
            return GQ_OK;
        memset(ev, 0, sizeof(*ev));
        ev->queue_remaining = -1;
    }
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
