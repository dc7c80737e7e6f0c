/*
 * libFuzzer target: an inline workflow (any text, as workflow_json arrives from Kafka) bound
 * with a request. The first byte picks the request: inline or template, which fields are set
 * (so the graph walks of graph.c run for every field), the rest is the workflow. A workflow
 * that binds must still be a valid API-format workflow, and every saving node must carry the
 * prefix; the worker's policy (guard.c: node classes, file inputs, prefixes) then looks at it
 * under a narrow allowlist, and must say yes or no without crashing.
 */
#include "consumers/worker/bind/graph.h"
#include "consumers/worker/bind/guard.h"
#include "consumers/worker/bind/template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    uint8_t how = data[0];
    char err[512];
    json_t *wf = NULL, *out = NULL;
    if (gq_workflow_parse((const char *)data + 1, size - 1, &wf, err, sizeof(err)) != GQ_OK)
        return 0;
    gq_request_t req;
    gq_request_defaults(&req);
    if (how & 0x01) {
        free(req.prompt);
        req.prompt = strdup("a fuzzed prompt");
    }
    if (how & 0x02) {
        free(req.negative_prompt);
        req.negative_prompt = strdup("blurry");
    }
    if (how & 0x04)
        req.width = 768;
    if (how & 0x08)
        req.steps = 7;
    if (how & 0x10)
        req.model = strdup("m.safetensors");
    if (how & 0x20)
        req.batch_size = 3;
    if (how & 0x40)
        req.cfg = 2.5;
    gq_bind_opts_t opts = {.filename_prefix = "genq/fuzz", .is_inline = !(how & 0x80), .name = "f"};
    gq_template_info_t info;
    if (gq_workflow_bind(wf, &req, &opts, &out, &info, err, sizeof(err)) == GQ_OK) {
        char *text = json_dumps(out, JSON_COMPACT);
        json_t *again = NULL;
        if (!text || gq_workflow_parse(text, strlen(text), &again, err, sizeof(err)) != GQ_OK)
            abort();
        const char *id;
        json_t *node;
        size_t savers = 0;
        json_object_foreach(out, id, node) {
            if (!gq_graph_is_saver(node))
                continue;
            savers++;
            const char *p =
                json_string_value(json_object_get(gq_graph_inputs(node), "filename_prefix"));
            if (!p || strcmp(p, "genq/fuzz") != 0)
                abort();
        }
        if (savers == 0)
            abort();
        static gq_guard_t guard;
        static int guard_ready;
        if (!guard_ready)
            guard_ready =
                gq_guard_init(&guard, "allowlist", "default,EmptyImage", err, sizeof(err)) == GQ_OK;
        if (guard_ready &&
            gq_guard_workflow(&guard, out, opts.is_inline, "genq/fuzz", err, sizeof(err)) !=
                GQ_OK &&
            !err[0])
            abort(); /* a refusal always says why */
        json_decref(again);
        free(text);
        json_decref(out);
    }
    json_decref(wf);
    gq_request_release(&req);
    return 0;
}
