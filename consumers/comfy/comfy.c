/* The ComfyUI client: lifecycle, the API's operations and their blocking forms (see comfy.h). */
#include "comfy_int.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMFY_SMALL_REPLY (64 * 1024)

gq_comfy_t *gq_comfy_new(const gq_comfy_opts_t *opts, char *errstr, size_t errstr_size) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        gq_errf(errstr, errstr_size, "libcurl initialisation failed");
        return NULL;
    }
    gq_comfy_t *c = calloc(1, sizeof(*c));
    if (!c) {
        gq_errf(errstr, errstr_size, "out of memory");
        curl_global_cleanup();
        return NULL;
    }
    c->ws_sock = CURL_SOCKET_BAD;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    c->request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 30000;
    c->max_response_bytes =
        opts->max_response_bytes > 0 ? opts->max_response_bytes : (size_t)64 * 1024 * 1024;
    c->max_ws_message = opts->max_ws_message > 0 ? opts->max_ws_message : GQ_COMFY_WS_MAX_MESSAGE;
    c->ws_ping_interval_ms = opts->ws_ping_interval_ms != 0 ? opts->ws_ping_interval_ms : 20000;
    gq_comfy_wsdec_init(&c->wsdec, c->max_ws_message, true);
    if (opts->ca_file && *opts->ca_file) {
        c->ca_file = strdup(opts->ca_file);
        if (!c->ca_file) {
            gq_errf(errstr, errstr_size, "out of memory");
            goto fail;
        }
    }
    if (gq_comfy_base_parse(opts->base_url, &c->base, errstr, errstr_size) != GQ_OK)
        goto fail;
    if (opts->client_id && *opts->client_id) {
        if (gq_strlcpy(c->client_id, opts->client_id, sizeof(c->client_id)) != GQ_OK) {
            gq_errf(errstr, errstr_size, "ComfyUI client_id longer than %zu bytes",
                    sizeof(c->client_id) - 1);
            goto fail;
        }
    } else if (gq_uuid_v4(c->client_id) != GQ_OK) {
        gq_errf(errstr, errstr_size, "cannot make a client_id");
        goto fail;
    }
    if (gq_comfy_http_setup(c, errstr, errstr_size) != GQ_OK)
        goto fail;
    return c;
fail:
    gq_comfy_destroy(c);
    return NULL;
}

void gq_comfy_destroy(gq_comfy_t *c) {
    if (!c)
        return;
    gq_comfy_ws_close(c);
    gq_comfy_wsdec_release(&c->wsdec);
    gq_comfy_http_teardown(c);
    free(c->ca_file);
    free(c);
    curl_global_cleanup();
}

/* ---- operations ---- */

gq_comfy_op_t *gq_comfy_op_new(gq_comfy_t *c, gq_comfy_op_kind_t kind, uint64_t tag) {
    /* One allocation: the public part, then the client's. */
    gq_comfy_op_t *op = calloc(1, sizeof(*op) + sizeof(struct gq_comfy_op_priv));
    if (!op)
        return NULL;
    op->priv = (struct gq_comfy_op_priv *)(op + 1);
    op->kind = kind;
    op->tag = tag;
    op->priv->client = c;
    op->priv->t0 = gq_mono_ms();
    gq_buf_init(&op->body, 0);
    gq_buf_init(&op->priv->resp, 0);
    c->pending++;
    return op;
}

void gq_comfy_op_destroy(gq_comfy_op_t *op) {
    if (!op)
        return;
    struct gq_comfy_op_priv *p = op->priv;
    /* An op still running belongs to its client, which frees it when it ends. */
    if (p->running && !p->done)
        return;
    free(p->path);
    free(p->query);
    free(p->post);
    gq_buf_release(&p->resp);
    gq_buf_release(&op->body);
    gq_comfy_result_release(&op->result);
    free(op);
}

gq_status_t gq_comfy_op_request(gq_comfy_op_t *op, const char *method, const char *path,
                                const char *query, const char *body) {
    struct gq_comfy_op_priv *p = op->priv;
    gq_strlcpy(p->method, method, sizeof(p->method));
    free(p->path);
    free(p->query);
    free(p->post);
    p->path = strdup(path);
    p->query = query ? strdup(query) : NULL;
    p->post = body ? strdup(body) : NULL;
    if (!p->path || (query && !p->query) || (body && !p->post))
        return GQ_ERR_NOMEM;
    return GQ_OK;
}

/* Sets the request and starts it; an op that cannot start fails at once (handed out later). */
static gq_comfy_op_t *op_start(gq_comfy_t *c, gq_comfy_op_t *op, const char *method,
                               const char *path, const char *query, const char *body,
                               size_t max_bytes) {
    if (gq_comfy_op_request(op, method, path, query, body) != GQ_OK) {
        gq_comfy_op_fail(c, op, GQ_ERR_NOMEM, "out of memory");
        return op;
    }
    gq_comfy_op_send(c, op, max_bytes);
    return op;
}

/* Path "/<route>/<escaped id>" into out. */
static gq_status_t id_path(const char *route, const char *id, char *out, size_t out_size,
                           char *errstr, size_t errstr_size) {
    char *esc = curl_easy_escape(NULL, id, 0);
    if (!esc) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    int n = snprintf(out, out_size, "%s/%s", route, esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= out_size) {
        gq_errf(errstr, errstr_size, "prompt id too long: %.64s", id);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* ComfyUI executes only the API format; a UI-format file would get a confusing 400 or 500. */
static gq_status_t workflow_check(const json_t *wf, char *errstr, size_t errstr_size) {
    if (!json_is_object(wf) || json_object_size(wf) == 0) {
        gq_errf(errstr, errstr_size, "workflow must be a non-empty JSON object (API format)");
        return GQ_ERR_INVALID;
    }
    if (json_is_array(json_object_get(wf, "nodes")) && json_object_get(wf, "links")) {
        gq_errf(errstr, errstr_size,
                "workflow is in the UI format (nodes/links arrays); "
                "export it with \"Save (API)\"");
        return GQ_ERR_INVALID;
    }
    const char *id;
    const json_t *node;
    json_object_foreach((json_t *)wf, id, node) {
        if (!json_is_string(json_object_get(node, "class_type"))) {
            gq_errf(errstr, errstr_size, "workflow node %.64s has no string class_type", id);
            return GQ_ERR_INVALID;
        }
    }
    return GQ_OK;
}

gq_comfy_op_t *gq_comfy_op_submit(gq_comfy_t *c, const char *prompt_id, json_t *workflow,
                                  uint64_t tag) {
    gq_comfy_op_t *op = gq_comfy_op_new(c, GQ_COMFY_OP_SUBMIT, tag);
    if (!op)
        return NULL;
    if (!gq_uuid_valid(prompt_id)) {
        /* Newer ComfyUI refuses anything but a canonical lowercase uuid. */
        gq_comfy_op_fail(c, op, GQ_ERR_INVALID, "prompt_id %.64s is not a canonical lowercase uuid",
                         prompt_id ? prompt_id : "(null)");
        return op;
    }
    gq_strlcpy(op->priv->prompt_id, prompt_id, sizeof(op->priv->prompt_id));
    char err[256];
    if (workflow_check(workflow, err, sizeof(err)) != GQ_OK) {
        gq_comfy_op_fail(c, op, GQ_ERR_INVALID, "%s", err);
        return op;
    }
    /* "O" takes a new reference: the caller keeps its own. */
    json_t *body = json_pack("{s:O, s:s, s:s}", "prompt", workflow, "client_id", c->client_id,
                             "prompt_id", prompt_id);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        gq_comfy_op_fail(c, op, GQ_ERR_NOMEM, "cannot encode the prompt request");
        return op;
    }
    /* The body is handed over instead of copied: a workflow can be large. */
    gq_comfy_op_request(op, "POST", "/prompt", NULL, NULL);
    op->priv->post = text;
    if (!op->priv->path) {
        gq_comfy_op_fail(c, op, GQ_ERR_NOMEM, "out of memory");
        return op;
    }
    gq_comfy_op_send(c, op, c->max_response_bytes);
    return op;
}

static gq_comfy_op_t *op_id_get(gq_comfy_t *c, gq_comfy_op_kind_t kind, const char *prompt_id,
                                uint64_t tag) {
    gq_comfy_op_t *op = gq_comfy_op_new(c, kind, tag);
    if (!op)
        return NULL;
    gq_strlcpy(op->priv->prompt_id, prompt_id, sizeof(op->priv->prompt_id));
    char path[256];
    if (id_path("/history", prompt_id, path, sizeof(path), op->errstr, sizeof(op->errstr)) !=
        GQ_OK) {
        gq_comfy_op_fail(c, op, GQ_ERR_INVALID, "%s", op->errstr);
        return op;
    }
    return op_start(c, op, "GET", path, NULL, NULL, c->max_response_bytes);
}

gq_comfy_op_t *gq_comfy_op_history(gq_comfy_t *c, const char *prompt_id, uint64_t tag) {
    return op_id_get(c, GQ_COMFY_OP_HISTORY, prompt_id, tag);
}

gq_comfy_op_t *gq_comfy_op_state(gq_comfy_t *c, const char *prompt_id, uint64_t tag) {
    return op_id_get(c, GQ_COMFY_OP_STATE, prompt_id, tag);
}

gq_comfy_op_t *gq_comfy_op_view(gq_comfy_t *c, const gq_comfy_image_t *img, size_t max_bytes,
                                uint64_t tag, int idx) {
    gq_comfy_op_t *op = gq_comfy_op_new(c, GQ_COMFY_OP_VIEW, tag);
    if (!op)
        return NULL;
    op->idx = idx;
    char *f = curl_easy_escape(NULL, img->filename, 0);
    char *s = curl_easy_escape(NULL, img->subfolder, 0);
    char *t = curl_easy_escape(NULL, img->type[0] ? img->type : "output", 0);
    gq_buf_t query;
    gq_buf_init(&query, 4096);
    gq_status_t st = f && s && t
                         ? gq_buf_appendf(&query, "filename=%s&subfolder=%s&type=%s", f, s, t)
                         : GQ_ERR_NOMEM;
    curl_free(f);
    curl_free(s);
    curl_free(t);
    /* What the error message names, should the server refuse it. */
    snprintf(op->priv->prompt_id, sizeof(op->priv->prompt_id), "%.63s", img->filename);
    if (st != GQ_OK)
        gq_comfy_op_fail(c, op, st, "cannot build the /view query for %.64s", img->filename);
    else
        op_start(c, op, "GET", "/view", query.data, NULL, max_bytes);
    gq_buf_release(&query);
    return op;
}

static gq_comfy_op_t *op_post(gq_comfy_t *c, gq_comfy_op_kind_t kind, const char *path,
                              json_t *body, uint64_t tag) {
    gq_comfy_op_t *op = gq_comfy_op_new(c, kind, tag);
    if (!op) {
        json_decref(body);
        return NULL;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        gq_comfy_op_fail(c, op, GQ_ERR_NOMEM, "cannot encode the %s request", path);
        return op;
    }
    op_start(c, op, "POST", path, NULL, text, COMFY_SMALL_REPLY);
    free(text);
    return op;
}

gq_comfy_op_t *gq_comfy_op_interrupt(gq_comfy_t *c, const char *prompt_id, uint64_t tag) {
    return op_post(c, GQ_COMFY_OP_INTERRUPT, "/interrupt",
                   json_pack("{s:s}", "prompt_id", prompt_id), tag);
}

gq_comfy_op_t *gq_comfy_op_dequeue(gq_comfy_t *c, const char *prompt_id, uint64_t tag) {
    return op_post(c, GQ_COMFY_OP_DEQUEUE, "/queue", json_pack("{s:[s]}", "delete", prompt_id),
                   tag);
}

gq_comfy_op_t *gq_comfy_op_cancel(gq_comfy_t *c, const char *prompt_id, uint64_t tag) {
    gq_comfy_op_t *op =
        op_post(c, GQ_COMFY_OP_CANCEL, "/queue", json_pack("{s:[s]}", "delete", prompt_id), tag);
    if (op)
        gq_strlcpy(op->priv->prompt_id, prompt_id, sizeof(op->priv->prompt_id));
    return op;
}

gq_comfy_op_t *gq_comfy_op_free(gq_comfy_t *c, bool unload, bool free_memory, uint64_t tag) {
    return op_post(c, GQ_COMFY_OP_FREE, "/free",
                   json_pack("{s:b, s:b}", "unload_models", unload, "free_memory", free_memory),
                   tag);
}

gq_comfy_op_t *gq_comfy_op_stats(gq_comfy_t *c, uint64_t tag) {
    gq_comfy_op_t *op = gq_comfy_op_new(c, GQ_COMFY_OP_STATS, tag);
    return op ? op_start(c, op, "GET", "/system_stats", NULL, NULL, COMFY_SMALL_REPLY) : NULL;
}

gq_comfy_op_t *gq_comfy_op_raw(gq_comfy_t *c, const char *method, const char *path,
                               const char *query, const char *body, size_t max_bytes,
                               uint64_t tag) {
    gq_comfy_op_t *op = gq_comfy_op_new(c, GQ_COMFY_OP_RAW, tag);
    return op ? op_start(c, op, method, path, query, body, max_bytes) : NULL;
}

/* ---- answers ---- */

/* Takes back a prompt ComfyUI queued although we will not use it (in the background). */
static void submit_cancel(gq_comfy_t *c, const char *prompt_id) {
    gq_comfy_op_t *ops[2] = {gq_comfy_op_dequeue(c, prompt_id, 0),
                             /* It may already run; the interrupt is a no-op otherwise. */
                             gq_comfy_op_interrupt(c, prompt_id, 0)};
    for (size_t i = 0; i < 2; i++) {
        if (!ops[i])
            continue;
        if (ops[i]->priv->done) {
            /* Failed at once: take it back out of the done list and drop it. */
            gq_comfy_op_run(c, ops[i]);
            gq_comfy_op_destroy(ops[i]);
        } else {
            ops[i]->priv->internal = true;
        }
    }
}

static void submit_answer(gq_comfy_t *c, gq_comfy_op_t *op) {
    const char *prompt_id = op->priv->prompt_id;
    const gq_buf_t *resp = &op->priv->resp;
    long code = op->http_code;
    char why[128];
    json_t *root = gq_comfy_json_parse(resp->data ? resp->data : "", resp->len, why, sizeof(why));
    char summary[2048] = "";
    size_t nerr = root ? gq_comfy_prompt_errors_format(root, summary, sizeof(summary)) : 0;
    gq_status_t st = gq_comfy_http_class(code);
    if (code == 200) {
        const char *got = json_string_value(json_object_get(root, "prompt_id"));
        if (!root)
            gq_warn("comfy: prompt %s queued, but the answer is unreadable: %s", prompt_id, why);
        else if (got && strcmp(got, prompt_id) != 0)
            gq_warn("comfy: prompt %s queued as %s", prompt_id, got);
        if (nerr > 0) {
            /* Queued, but some outputs would be skipped silently: not what was asked. */
            submit_cancel(c, prompt_id);
            gq_errf(op->errstr, sizeof(op->errstr),
                    "ComfyUI accepted prompt %s with invalid outputs (removed it again): %s",
                    prompt_id, summary);
            st = GQ_ERR_INVALID;
        }
    } else if (st == GQ_ERR_INVALID && summary[0]) {
        gq_errf(op->errstr, sizeof(op->errstr), "ComfyUI rejected prompt %s (HTTP %ld): %s",
                prompt_id, code, summary);
    } else {
        gq_comfy_http_errf(op->errstr, sizeof(op->errstr), code, "POST /prompt", resp);
        if (st == GQ_ERR_NOTFOUND)
            st = GQ_ERR_INVALID;
    }
    json_decref(root);
    op->status = st;
}

/* A 2xx JSON answer parsed into *out; the op's status and errstr otherwise. */
static json_t *answer_json(gq_comfy_op_t *op) {
    const gq_buf_t *resp = &op->priv->resp;
    op->status = gq_comfy_http_class(op->http_code);
    if (op->status != GQ_OK) {
        gq_comfy_http_errf(op->errstr, sizeof(op->errstr), op->http_code, op->priv->path, resp);
        return NULL;
    }
    json_t *root = gq_comfy_json_parse(resp->data ? resp->data : "", resp->len, op->errstr,
                                       sizeof(op->errstr));
    /* A 2xx answer that is not JSON: a proxy page or a broken server; try again later. */
    if (!root)
        op->status = GQ_ERR_TRANSIENT;
    return root;
}

/* The history step of HISTORY and STATE. */
static void history_answer(gq_comfy_op_t *op) {
    json_t *root = answer_json(op);
    if (root)
        op->status = gq_comfy_history_parse(root, op->priv->prompt_id, &op->result, op->errstr,
                                            sizeof(op->errstr));
    json_decref(root);
}

/* STATE: history, then the queue, then the history once more (it may have finished in
 * between). Returns true when the answer is final. */
static bool state_step(gq_comfy_t *c, gq_comfy_op_t *op) {
    struct gq_comfy_op_priv *p = op->priv;
    if (p->step == 0 || p->step == 2) {
        history_answer(op);
        if (op->status == GQ_OK) {
            op->state = GQ_COMFY_FINISHED;
            return true;
        }
        if (op->status != GQ_ERR_NOTFOUND)
            return true;
        op->status = GQ_OK;
        op->state = GQ_COMFY_UNKNOWN;
        op->errstr[0] = '\0';
        if (p->step == 2)
            return true;
        p->step = 1;
        if (gq_comfy_op_request(op, "GET", "/queue", NULL, NULL) != GQ_OK) {
            op->status = GQ_ERR_NOMEM;
            return true;
        }
    } else {
        json_t *root = answer_json(op);
        if (!root)
            return true;
        op->state = gq_comfy_queue_find(root, p->prompt_id);
        json_decref(root);
        if (op->state != GQ_COMFY_UNKNOWN)
            return true;
        p->step = 2;
        char path[256];
        if (id_path("/history", p->prompt_id, path, sizeof(path), op->errstr, sizeof(op->errstr)) !=
                GQ_OK ||
            gq_comfy_op_request(op, "GET", path, NULL, NULL) != GQ_OK) {
            op->status = GQ_ERR_NOMEM;
            return true;
        }
    }
    /* Not complete yet; should the send fail, it completed the op itself. */
    gq_comfy_op_send(c, op, c->max_response_bytes);
    return false;
}

bool gq_comfy_op_finish(gq_comfy_t *c, gq_comfy_op_t *op, gq_status_t transport) {
    op->status = transport;
    if (transport != GQ_OK)
        return true;
    json_t *root = NULL;
    switch (op->kind) {
    case GQ_COMFY_OP_SUBMIT: submit_answer(c, op); break;
    case GQ_COMFY_OP_HISTORY: history_answer(op); break;
    case GQ_COMFY_OP_STATE: return state_step(c, op);
    case GQ_COMFY_OP_VIEW:
        op->status = gq_comfy_http_class(op->http_code);
        if (op->status == GQ_OK) {
            /* The body moves to the caller without a copy. */
            op->body = op->priv->resp;
            gq_buf_init(&op->priv->resp, 0);
        } else {
            char what[300];
            snprintf(what, sizeof(what), "GET /view of %.128s", op->priv->prompt_id);
            gq_comfy_http_errf(op->errstr, sizeof(op->errstr), op->http_code, what,
                               &op->priv->resp);
        }
        break;
    case GQ_COMFY_OP_CANCEL:
        if (op->priv->step == 0) {
            /* Dequeued (or not there): now the interrupt, whatever the answer was. */
            op->priv->step = 1;
            json_t *body = json_pack("{s:s}", "prompt_id", op->priv->prompt_id);
            char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
            json_decref(body);
            if (!text || gq_comfy_op_request(op, "POST", "/interrupt", NULL, text) != GQ_OK) {
                free(text);
                op->status = GQ_ERR_NOMEM;
                return true;
            }
            free(text);
            gq_comfy_op_send(c, op, COMFY_SMALL_REPLY);
            return false;
        }
        /* fall through */
    case GQ_COMFY_OP_INTERRUPT:
    case GQ_COMFY_OP_DEQUEUE:
    case GQ_COMFY_OP_FREE:
        /* A 200 answer is empty (aiohttp "OK, no content"): the body is never parsed. */
        op->status = gq_comfy_http_class(op->http_code);
        if (op->status != GQ_OK)
            gq_comfy_http_errf(op->errstr, sizeof(op->errstr), op->http_code, op->priv->path,
                               &op->priv->resp);
        break;
    case GQ_COMFY_OP_STATS:
        root = answer_json(op);
        if (root)
            op->status = gq_comfy_stats_parse(root, &op->stats, op->errstr, sizeof(op->errstr));
        json_decref(root);
        break;
    case GQ_COMFY_OP_RAW:
        op->body = op->priv->resp;
        gq_buf_init(&op->priv->resp, 0);
        break;
    }
    return true;
}

/* ---- the blocking calls ---- */

/* Runs op to its end; its status, with errstr copied. The op is destroyed by the caller. */
static gq_status_t op_wait(gq_comfy_t *c, gq_comfy_op_t *op, char *errstr, size_t errstr_size) {
    if (!op) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    gq_comfy_op_run(c, op);
    if (op->status != GQ_OK)
        gq_strlcpy(errstr, op->errstr, errstr_size);
    return op->status;
}

gq_status_t gq_comfy_submit(gq_comfy_t *c, const char *prompt_id, json_t *workflow, char *errstr,
                            size_t errstr_size) {
    gq_comfy_op_t *op = gq_comfy_op_submit(c, prompt_id, workflow, 0);
    gq_status_t st = op_wait(c, op, errstr, errstr_size);
    gq_comfy_op_destroy(op);
    return st;
}

/* Moves an op's result to the caller's (released first), when the caller wants it. */
static void result_take(gq_comfy_op_t *op, gq_comfy_result_t *result) {
    if (!result)
        return;
    gq_comfy_result_release(result);
    *result = op->result;
    memset(&op->result, 0, sizeof(op->result));
}

gq_status_t gq_comfy_history(gq_comfy_t *c, const char *prompt_id, gq_comfy_result_t *result,
                             char *errstr, size_t errstr_size) {
    gq_comfy_op_t *op = gq_comfy_op_history(c, prompt_id, 0);
    gq_status_t st = op_wait(c, op, errstr, errstr_size);
    if (st == GQ_OK)
        result_take(op, result);
    gq_comfy_op_destroy(op);
    return st;
}

gq_status_t gq_comfy_prompt_state(gq_comfy_t *c, const char *prompt_id, gq_comfy_state_t *state,
                                  gq_comfy_result_t *result, char *errstr, size_t errstr_size) {
    *state = GQ_COMFY_UNKNOWN;
    gq_comfy_op_t *op = gq_comfy_op_state(c, prompt_id, 0);
    gq_status_t st = op_wait(c, op, errstr, errstr_size);
    if (st == GQ_OK) {
        *state = op->state;
        if (op->state == GQ_COMFY_FINISHED)
            result_take(op, result);
    }
    gq_comfy_op_destroy(op);
    return st;
}

gq_status_t gq_comfy_view(gq_comfy_t *c, const gq_comfy_image_t *img, gq_buf_t *out, char *errstr,
                          size_t errstr_size) {
    gq_buf_reset(out);
    gq_comfy_op_t *op = gq_comfy_op_view(c, img, out->max, 0, 0);
    gq_status_t st = op_wait(c, op, errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_buf_append(out, op->body.data ? op->body.data : "", op->body.len);
    gq_comfy_op_destroy(op);
    return st;
}

static gq_status_t post_wait(gq_comfy_t *c, gq_comfy_op_t *op, char *errstr, size_t errstr_size) {
    gq_status_t st = op_wait(c, op, errstr, errstr_size);
    gq_comfy_op_destroy(op);
    return st;
}

gq_status_t gq_comfy_interrupt(gq_comfy_t *c, const char *prompt_id, char *errstr,
                               size_t errstr_size) {
    return post_wait(c, gq_comfy_op_interrupt(c, prompt_id, 0), errstr, errstr_size);
}

gq_status_t gq_comfy_dequeue(gq_comfy_t *c, const char *prompt_id, char *errstr,
                             size_t errstr_size) {
    return post_wait(c, gq_comfy_op_dequeue(c, prompt_id, 0), errstr, errstr_size);
}

gq_status_t gq_comfy_free(gq_comfy_t *c, bool unload, bool free_memory, char *errstr,
                          size_t errstr_size) {
    return post_wait(c, gq_comfy_op_free(c, unload, free_memory, 0), errstr, errstr_size);
}

gq_status_t gq_comfy_system_stats(gq_comfy_t *c, gq_comfy_stats_t *st, char *errstr,
                                  size_t errstr_size) {
    gq_comfy_op_t *op = gq_comfy_op_stats(c, 0);
    gq_status_t rc = op_wait(c, op, errstr, errstr_size);
    if (rc == GQ_OK)
        *st = op->stats;
    gq_comfy_op_destroy(op);
    return rc;
}
