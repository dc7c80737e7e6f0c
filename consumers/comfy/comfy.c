/* The ComfyUI client: lifecycle and the HTTP API calls (see comfy.h). */
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
    if (c->http)
        curl_easy_cleanup(c->http);
    curl_slist_free_all(c->headers);
    free(c->ca_file);
    free(c);
    curl_global_cleanup();
}

/* GET/POST returning a JSON document (new reference) when the status is 2xx. */
static gq_status_t comfy_json_call(gq_comfy_t *c, const char *method, const char *path,
                                   const char *query, const char *body, json_t **out, char *errstr,
                                   size_t errstr_size) {
    gq_buf_t resp;
    gq_buf_init(&resp, c->max_response_bytes);
    long code = 0;
    *out = NULL;
    gq_status_t st =
        gq_comfy_http_do(c, method, path, query, body, &resp, &code, errstr, errstr_size);
    if (st == GQ_OK) {
        st = gq_comfy_http_class(code);
        if (st != GQ_OK)
            gq_comfy_http_errf(errstr, errstr_size, code, path, &resp);
    }
    if (st == GQ_OK) {
        *out = gq_comfy_json_parse(resp.data ? resp.data : "", resp.len, errstr, errstr_size);
        /* A 2xx answer that is not JSON: a proxy page or a broken server; try again later. */
        if (!*out)
            st = GQ_ERR_TRANSIENT;
    }
    gq_buf_release(&resp);
    return st;
}

/* POST whose 200 answer is empty (aiohttp "OK, no content"): the body is never parsed. */
static gq_status_t comfy_post_empty(gq_comfy_t *c, const char *path, json_t *body, char *errstr,
                                    size_t errstr_size) {
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        gq_errf(errstr, errstr_size, "cannot encode the %s request", path);
        return GQ_ERR_NOMEM;
    }
    gq_buf_t resp;
    gq_buf_init(&resp, COMFY_SMALL_REPLY);
    long code = 0;
    gq_status_t st =
        gq_comfy_http_do(c, "POST", path, NULL, text, &resp, &code, errstr, errstr_size);
    if (st == GQ_OK) {
        st = gq_comfy_http_class(code);
        if (st != GQ_OK)
            gq_comfy_http_errf(errstr, errstr_size, code, path, &resp);
    }
    gq_buf_release(&resp);
    free(text);
    return st;
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

/* Takes back a prompt ComfyUI queued although we will not use it. */
static void submit_cancel(gq_comfy_t *c, const char *prompt_id) {
    char err[256];
    if (gq_comfy_dequeue(c, prompt_id, err, sizeof(err)) != GQ_OK)
        gq_warn("comfy: cannot dequeue %s: %s", prompt_id, err);
    /* It may already run; the interrupt is a no-op otherwise. */
    if (gq_comfy_interrupt(c, prompt_id, err, sizeof(err)) != GQ_OK)
        gq_warn("comfy: cannot interrupt %s: %s", prompt_id, err);
}

static gq_status_t submit_answer(gq_comfy_t *c, const char *prompt_id, long code,
                                 const gq_buf_t *resp, char *errstr, size_t errstr_size) {
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
            gq_errf(errstr, errstr_size,
                    "ComfyUI accepted prompt %s with invalid outputs (removed it again): %s",
                    prompt_id, summary);
            st = GQ_ERR_INVALID;
        }
    } else if (st == GQ_ERR_INVALID && summary[0]) {
        gq_errf(errstr, errstr_size, "ComfyUI rejected prompt %s (HTTP %ld): %s", prompt_id, code,
                summary);
    } else {
        gq_comfy_http_errf(errstr, errstr_size, code, "POST /prompt", resp);
        if (st == GQ_ERR_NOTFOUND)
            st = GQ_ERR_INVALID;
    }
    json_decref(root);
    return st;
}

gq_status_t gq_comfy_submit(gq_comfy_t *c, const char *prompt_id, json_t *workflow, char *errstr,
                            size_t errstr_size) {
    if (!gq_uuid_valid(prompt_id)) {
        /* Newer ComfyUI refuses anything but a canonical lowercase uuid. */
        gq_errf(errstr, errstr_size, "prompt_id %.64s is not a canonical lowercase uuid",
                prompt_id ? prompt_id : "(null)");
        return GQ_ERR_INVALID;
    }
    gq_status_t st = workflow_check(workflow, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    /* "O" takes a new reference: the caller keeps its own. */
    json_t *body = json_pack("{s:O, s:s, s:s}", "prompt", workflow, "client_id", c->client_id,
                             "prompt_id", prompt_id);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        gq_errf(errstr, errstr_size, "cannot encode the prompt request");
        return GQ_ERR_NOMEM;
    }
    gq_buf_t resp;
    gq_buf_init(&resp, c->max_response_bytes);
    long code = 0;
    st = gq_comfy_http_do(c, "POST", "/prompt", NULL, text, &resp, &code, errstr, errstr_size);
    free(text);
    if (st == GQ_OK)
        st = submit_answer(c, prompt_id, code, &resp, errstr, errstr_size);
    gq_buf_release(&resp);
    return st;
}

gq_status_t gq_comfy_history(gq_comfy_t *c, const char *prompt_id, gq_comfy_result_t *result,
                             char *errstr, size_t errstr_size) {
    char path[256];
    json_t *root = NULL;
    gq_status_t st = id_path("/history", prompt_id, path, sizeof(path), errstr, errstr_size);
    if (st == GQ_OK)
        st = comfy_json_call(c, "GET", path, NULL, NULL, &root, errstr, errstr_size);
    if (st == GQ_OK) {
        gq_comfy_result_t tmp = {0};
        gq_comfy_result_t *r = result ? result : &tmp;
        st = gq_comfy_history_parse(root, prompt_id, r, errstr, errstr_size);
        gq_comfy_result_release(&tmp);
    }
    json_decref(root);
    return st;
}

gq_status_t gq_comfy_prompt_state(gq_comfy_t *c, const char *prompt_id, gq_comfy_state_t *state,
                                  gq_comfy_result_t *result, char *errstr, size_t errstr_size) {
    *state = GQ_COMFY_UNKNOWN;
    gq_status_t st = gq_comfy_history(c, prompt_id, result, errstr, errstr_size);
    if (st == GQ_OK) {
        *state = GQ_COMFY_FINISHED;
        return GQ_OK;
    }
    if (st != GQ_ERR_NOTFOUND)
        return st;
    json_t *root = NULL;
    st = comfy_json_call(c, "GET", "/queue", NULL, NULL, &root, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    *state = gq_comfy_queue_find(root, prompt_id);
    json_decref(root);
    if (*state != GQ_COMFY_UNKNOWN)
        return GQ_OK;
    /* It may have finished between the two requests: its history entry exists by now. */
    st = gq_comfy_history(c, prompt_id, result, errstr, errstr_size);
    if (st == GQ_OK)
        *state = GQ_COMFY_FINISHED;
    return st == GQ_ERR_NOTFOUND ? GQ_OK : st;
}

gq_status_t gq_comfy_view(gq_comfy_t *c, const gq_comfy_image_t *img, gq_buf_t *out, char *errstr,
                          size_t errstr_size) {
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
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "cannot build the /view query for %.64s", img->filename);
        gq_buf_release(&query);
        return st;
    }
    long code = 0;
    st = gq_comfy_http_do(c, "GET", "/view", query.data, NULL, out, &code, errstr, errstr_size);
    if (st == GQ_OK) {
        st = gq_comfy_http_class(code);
        if (st != GQ_OK) {
            char what[300];
            snprintf(what, sizeof(what), "GET /view of %.64s/%.128s (%.15s)", img->subfolder,
                     img->filename, img->type);
            gq_comfy_http_errf(errstr, errstr_size, code, what, out);
        }
    }
    if (st != GQ_OK)
        gq_buf_reset(out);
    gq_buf_release(&query);
    return st;
}

gq_status_t gq_comfy_interrupt(gq_comfy_t *c, const char *prompt_id, char *errstr,
                               size_t errstr_size) {
    json_t *body = json_pack("{s:s}", "prompt_id", prompt_id);
    if (!body) {
        gq_errf(errstr, errstr_size, "cannot encode the interrupt request");
        return GQ_ERR_NOMEM;
    }
    return comfy_post_empty(c, "/interrupt", body, errstr, errstr_size);
}

gq_status_t gq_comfy_dequeue(gq_comfy_t *c, const char *prompt_id, char *errstr,
                             size_t errstr_size) {
    json_t *body = json_pack("{s:[s]}", "delete", prompt_id);
    if (!body) {
        gq_errf(errstr, errstr_size, "cannot encode the queue request");
        return GQ_ERR_NOMEM;
    }
    return comfy_post_empty(c, "/queue", body, errstr, errstr_size);
}

gq_status_t gq_comfy_free(gq_comfy_t *c, bool unload, bool free_memory, char *errstr,
                          size_t errstr_size) {
    json_t *body = json_pack("{s:b, s:b}", "unload_models", unload, "free_memory", free_memory);
    if (!body) {
        gq_errf(errstr, errstr_size, "cannot encode the free request");
        return GQ_ERR_NOMEM;
    }
    return comfy_post_empty(c, "/free", body, errstr, errstr_size);
}

gq_status_t gq_comfy_system_stats(gq_comfy_t *c, gq_comfy_stats_t *st, char *errstr,
                                  size_t errstr_size) {
    json_t *root = NULL;
    gq_status_t rc =
        comfy_json_call(c, "GET", "/system_stats", NULL, NULL, &root, errstr, errstr_size);
    if (rc == GQ_OK)
        rc = gq_comfy_stats_parse(root, st, errstr, errstr_size);
    json_decref(root);
    return rc;
}
