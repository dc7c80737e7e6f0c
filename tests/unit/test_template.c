/* Unit tests of consumers/worker/template.c: loading, checking and graph-aware binding. */
#include "worker/bind/template.h"

#include "check.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[1024];

static bool has_fixtures(const char *dir) {
    char probe[1200];
    snprintf(probe, sizeof(probe), "%s/txt2img-renumbered.json", dir);
    return access(probe, R_OK) == 0;
}

/* Fixtures live in tests/unit/data: GQ_TEST_DATA, else relative to the source path (run from
 * the repository root), else found by walking up from the binary (bin/tests or
 * build/<mode>/bin/tests). */
static void test_find_data(void) {
    const char *env = getenv("GQ_TEST_DATA");
    if (env && *env) {
        snprintf(data_dir, sizeof(data_dir), "%s", env);
        return;
    }
    const char *file = __FILE__, *slash = strrchr(file, '/');
    snprintf(data_dir, sizeof(data_dir), "%.*s/data", slash ? (int)(slash - file) : 1,
             slash ? file : ".");
    if (has_fixtures(data_dir))
        return;
    char exe[800];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *cut;
    while ((cut = strrchr(exe, '/')) != NULL && cut != exe) {
        *cut = '\0';
        char cand[1024];
        snprintf(cand, sizeof(cand), "%s/tests/unit/data", exe);
        if (has_fixtures(cand)) {
            snprintf(data_dir, sizeof(data_dir), "%s", cand);
            return;
        }
    }
}

/* gq_request_release belongs to the schema module; the test frees its own hand-made copy. */
static void req_init(gq_request_t *r) {
    memset(r, 0, sizeof(*r));
    memcpy(r->job_id, "5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11", 37);
    r->workflow = strdup("txt2img");
    r->prompt = strdup("a red fox in the snow");
    r->negative_prompt = strdup("blurry");
    r->width = 768;
    r->height = 640;
    r->seed = INT64_C(9007199254740993); /* 2^53 + 1: survives only as an integer */
    r->steps = 31;
    r->cfg = 6.5;
    r->sampler = strdup("dpmpp_2m");
    r->scheduler = strdup("karras");
    r->batch_size = 2;
    r->source = strdup("test");
}

static void req_add_override(gq_request_t *r, const char *key, const char *value) {
    r->overrides = realloc(r->overrides, (r->overrides_cnt + 1) * sizeof(*r->overrides));
    r->overrides[r->overrides_cnt].key = strdup(key);
    r->overrides[r->overrides_cnt].value = strdup(value);
    r->overrides_cnt++;
}

static void req_clear_overrides(gq_request_t *r) {
    for (size_t i = 0; i < r->overrides_cnt; i++) {
        free(r->overrides[i].key);
        free(r->overrides[i].value);
    }
    free(r->overrides);
    r->overrides = NULL;
    r->overrides_cnt = 0;
}

static void req_free(gq_request_t *r) {
    free(r->workflow);
    free(r->workflow_json);
    free(r->prompt);
    free(r->negative_prompt);
    free(r->sampler);
    free(r->scheduler);
    free(r->model);
    free(r->source);
    req_clear_overrides(r);
    memset(r, 0, sizeof(*r));
}

static json_t *input(json_t *wf, const char *id, const char *name) {
    return json_object_get(json_object_get(json_object_get(wf, id), "inputs"), name);
}

static const char *input_str(json_t *wf, const char *id, const char *name) {
    return json_string_value(input(wf, id, name));
}

static long long input_int(json_t *wf, const char *id, const char *name) {
    json_t *v = input(wf, id, name);
    return json_is_integer(v) ? json_integer_value(v) : -12345;
}

static json_t *load(const char *dir, const char *name) {
    json_t *t = NULL;
    char err[512] = "";
    gq_status_t st = gq_template_load(dir, name, &t, err, sizeof(err));
    if (st != GQ_OK)
        fprintf(stderr, "load %s: %s\n", name, err);
    CHECK(st == GQ_OK && t);
    return t;
}

static json_t *parse(const char *text) {
    json_t *t = NULL;
    char err[512] = "";
    gq_status_t st = gq_workflow_parse(text, strlen(text), &t, err, sizeof(err));
    if (st != GQ_OK)
        fprintf(stderr, "parse: %s\n", err);
    CHECK(st == GQ_OK && t);
    return t;
}

/* Binds and expects failure; returns whether err contains `needle`. */
static bool bind_fails(json_t *tmpl, const gq_request_t *req, const char *needle) {
    json_t *out = (json_t *)1;
    char err[512] = "";
    gq_template_info_t info;
    gq_status_t st = gq_template_bind(tmpl, req, "genq/x", &out, &info, err, sizeof(err));
    bool ok = st == GQ_ERR_INVALID && out == NULL && strstr(err, needle) != NULL;
    if (!ok)
        fprintf(stderr, "bind: expected an error with \"%s\", got %d \"%s\"\n", needle, st, err);
    return ok;
}

static bool parse_fails(const char *text, const char *needle) {
    json_t *out = (json_t *)1;
    char err[512] = "";
    gq_status_t st = gq_workflow_parse(text, strlen(text), &out, err, sizeof(err));
    bool ok = st == GQ_ERR_INVALID && out == NULL && strstr(err, needle) != NULL;
    if (!ok)
        fprintf(stderr, "parse: expected an error with \"%s\", got %d \"%s\"\n", needle, st, err);
    return ok;
}

static const char stock[] =
    "{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"seed\": 5, \"steps\": 20, \"cfg\": 8,"
    " \"sampler_name\": \"euler\", \"scheduler\": \"normal\", \"denoise\": 1,"
    " \"model\": [\"4\", 0], \"positive\": [\"6\", 0], \"negative\": [\"7\", 0],"
    " \"latent_image\": [\"5\", 0]}},"
    " \"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": \"a\"}},"
    " \"5\": {\"class_type\": \"EmptyLatentImage\","
    " \"inputs\": {\"width\": 512, \"height\": 512, \"batch_size\": 1}},"
    " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"p\", \"clip\": [\"4\", "
    "1]}},"
    " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"n\", \"clip\": [\"4\", "
    "1]}},"
    " \"8\": {\"class_type\": \"VAEDecode\", \"inputs\": {\"samples\": [\"3\", 0], \"vae\": "
    "[\"4\", 2]}},"
    " \"9\": {\"class_type\": \"SaveImage\","
    " \"inputs\": {\"filename_prefix\": \"ComfyUI\", \"images\": [\"8\", 0]}}}";

static void test_bind_stock(void) {
    gq_request_t req;
    req_init(&req);
    json_t *tmpl = load(NULL, "txt2img");
    json_t *orig = json_deep_copy(tmpl);
    json_t *wf = NULL;
    gq_template_info_t info = {.timeout_s = -1};
    char err[512] = "";
    CHECK(gq_template_bind(tmpl, &req, "genq/job-1", &wf, &info, err, sizeof(err)) == GQ_OK);
    CHECK(wf != NULL);
    CHECK_INT(info.timeout_s, 0);
    CHECK(json_object_get(wf, "_genq") == NULL);
    CHECK(json_object_get(tmpl, "_genq") != NULL);
    CHECK(json_equal(tmpl, orig)); /* the template is not modified */
    CHECK_STR(input_str(wf, "6", "text"), "a red fox in the snow");
    CHECK_STR(input_str(wf, "7", "text"), "blurry");
    CHECK_INT(input_int(wf, "5", "width"), 768);
    CHECK_INT(input_int(wf, "5", "height"), 640);
    CHECK_INT(input_int(wf, "5", "batch_size"), 2);
    CHECK_INT(input_int(wf, "3", "seed"), INT64_C(9007199254740993));
    CHECK_INT(input_int(wf, "3", "steps"), 31);
    CHECK(json_is_real(input(wf, "3", "cfg")) && json_real_value(input(wf, "3", "cfg")) == 6.5);
    CHECK_STR(input_str(wf, "3", "sampler_name"), "dpmpp_2m");
    CHECK_STR(input_str(wf, "3", "scheduler"), "karras");
    CHECK_STR(input_str(wf, "9", "filename_prefix"), "genq/job-1");
    CHECK_STR(input_str(wf, "4", "ckpt_name"), "sd15.safetensors"); /* model NULL: untouched */
    CHECK(input(wf, "3", "noise_seed") == NULL);

    /* The result is itself a valid API-format workflow. */
    char *text = json_dumps(wf, JSON_COMPACT);
    json_t *again = NULL;
    CHECK(text && gq_workflow_parse(text, strlen(text), &again, err, sizeof(err)) == GQ_OK);
    CHECK(json_equal(again, wf));
    json_decref(again);
    free(text);
    json_decref(wf);

    req.model = strdup("other.safetensors");
    CHECK(gq_template_bind(tmpl, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_STR(input_str(wf, "4", "ckpt_name"), "other.safetensors");
    json_decref(wf);

    /* Seeds are int64 end to end. */
    req.seed = INT64_MAX;
    CHECK(gq_template_bind(tmpl, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(input_int(wf, "3", "seed"), INT64_MAX);
    json_decref(wf);

    json_decref(orig);
    json_decref(tmpl);
    req_free(&req);
}

static void test_bind_renumbered(void) {
    gq_request_t req;
    req_init(&req);
    req.model = strdup("mine.safetensors");
    json_t *tmpl = load(data_dir, "txt2img-renumbered");
    json_t *wf = NULL;
    gq_template_info_t info = {0};
    char err[512] = "";
    CHECK(gq_template_bind(tmpl, &req, "genq/job-2", &wf, &info, err, sizeof(err)) == GQ_OK);
    if (!wf) {
        fprintf(stderr, "bind renumbered: %s\n", err);
        json_decref(tmpl);
        req_free(&req);
        return;
    }
    CHECK_INT(info.timeout_s, 900);
    CHECK(json_object_get(wf, "_genq") == NULL);
    /* Titles are swapped on purpose: only the links say which encoder is which. */
    CHECK_STR(input_str(wf, "7", "text"), "a red fox in the snow");
    CHECK_STR(input_str(wf, "6", "text"), "blurry");
    CHECK_STR(input_str(wf, "dec", "text"), "decoy");
    CHECK_INT(input_int(wf, "x:1", "width"), 768);
    CHECK_INT(input_int(wf, "x:1", "height"), 640);
    CHECK_INT(input_int(wf, "x:1", "batch_size"), 2);
    CHECK_INT(input_int(wf, "5", "width"), 1024);
    CHECK_INT(input_int(wf, "k", "seed"), INT64_C(9007199254740993));
    CHECK_INT(input_int(wf, "k", "steps"), 31);
    CHECK_STR(input_str(wf, "k", "sampler_name"), "dpmpp_2m");
    /* The decoy samplers (one feeds only a PreviewImage, one feeds nothing) are untouched. */
    CHECK_INT(input_int(wf, "2", "seed"), 2);
    CHECK_INT(input_int(wf, "9", "seed"), 3);
    CHECK_STR(input_str(wf, "100", "ckpt_name"), "mine.safetensors");
    CHECK_STR(input_str(wf, "4", "ckpt_name"), "decoy.safetensors");
    CHECK_STR(input_str(wf, "save", "filename_prefix"), "genq/job-2");
    CHECK_STR(input_str(wf, "save2", "filename_prefix"), "genq/job-2");
    json_decref(wf);
    json_decref(tmpl);
    req_free(&req);
}

static void test_bind_lora(void) {
    gq_request_t req;
    req_init(&req);
    req.model = strdup("sdxl.safetensors");
    json_t *tmpl = load("/nonexistent-genq-dir", "txt2img-lora");
    json_t *wf = NULL;
    char err[512] = "";
    CHECK(gq_template_bind(tmpl, &req, "genq/l", &wf, NULL, err, sizeof(err)) == GQ_OK);
    /* The model chain goes sampler -> LoraLoader "10" -> checkpoint "4". */
    CHECK_STR(input_str(wf, "4", "ckpt_name"), "sdxl.safetensors");
    CHECK_STR(input_str(wf, "10", "lora_name"), "example-lora.safetensors");
    CHECK(input(wf, "10", "ckpt_name") == NULL);
    CHECK_STR(input_str(wf, "6", "text"), "a red fox in the snow");
    json_decref(wf);

    /* A diffusion model loader at the end of the chain takes unet_name. */
    json_t *t2 = json_deep_copy(tmpl);
    json_t *n4 = json_object_get(t2, "4");
    json_object_set_new(n4, "class_type", json_string("UNETLoader"));
    json_object_set_new(json_object_get(n4, "inputs"), "unet_name", json_string("flux.sft"));
    json_object_del(json_object_get(n4, "inputs"), "ckpt_name");
    CHECK(gq_template_bind(t2, &req, "genq/l", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_STR(input_str(wf, "4", "unet_name"), "sdxl.safetensors");
    CHECK(input(wf, "4", "ckpt_name") == NULL);
    json_decref(wf);

    /* A chain that ends somewhere else cannot take the model... */
    json_object_set_new(n4, "class_type", json_string("ModelMergeSimple"));
    CHECK(bind_fails(t2, &req, "ends at node \"4\" (ModelMergeSimple)"));
    /* ...which only matters when a model is asked for. */
    free(req.model);
    req.model = NULL;
    CHECK(gq_template_bind(t2, &req, "genq/l", &wf, NULL, err, sizeof(err)) == GQ_OK);
    json_decref(wf);
    json_decref(t2);
    json_decref(tmpl);
    req_free(&req);
}

static void test_sampler_advanced(void) {
    gq_request_t req;
    req_init(&req);
    json_t *tmpl = parse(stock);
    json_object_set_new(json_object_get(tmpl, "3"), "class_type", json_string("KSamplerAdvanced"));
    json_object_del(json_object_get(json_object_get(tmpl, "3"), "inputs"), "seed");
    json_t *wf = NULL;
    char err[512] = "";
    CHECK(gq_template_bind(tmpl, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(input_int(wf, "3", "noise_seed"), INT64_C(9007199254740993));
    CHECK(input(wf, "3", "seed") == NULL);
    json_decref(wf);
    json_decref(tmpl);
    req_free(&req);
}

static void test_overrides(void) {
    gq_request_t req;
    req_init(&req);
    json_t *tmpl = load(data_dir, "txt2img-renumbered");
    json_t *wf = NULL;
    char err[512] = "";

    req_add_override(&req, "k.cfg", "0.7");                          /* by id */
    req_add_override(&req, "k.sampler_name", "\"euler_ancestral\""); /* wins over the request */
    req_add_override(&req, "Negative Prompt.text", "\"by title\"");  /* the title of node 7 */
    req_add_override(&req, "KSampler.width", "256");                 /* the title of the latent */
    req_add_override(&req, "3.vae", "[\"4\", 2]");                   /* a link */
    req_add_override(&req, "3.extra", "{\"__value__\": [1, 2]}");
    req_add_override(&req, "Load Checkpoint.ckpt_name", "\"x.safetensors\"");
    CHECK(gq_template_bind(tmpl, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    if (wf) {
        CHECK(json_real_value(input(wf, "k", "cfg")) == 0.7);
        CHECK_STR(input_str(wf, "k", "sampler_name"), "euler_ancestral");
        CHECK_STR(input_str(wf, "7", "text"), "by title");
        CHECK_STR(input_str(wf, "6", "text"), "blurry");
        CHECK_INT(input_int(wf, "x:1", "width"), 256);
        CHECK_INT(input_int(wf, "x:1", "height"), 640);
        CHECK_STR(json_string_value(json_array_get(input(wf, "3", "vae"), 0)), "4");
        CHECK(json_is_object(input(wf, "3", "extra")));
        CHECK_STR(input_str(wf, "100", "ckpt_name"), "x.safetensors");
        /* "3" is both a node id (VAEDecode) and the title of node "save": the id wins. */
        CHECK(input(wf, "save", "vae") == NULL);
    }
    json_decref(wf);

    /* A large seed given as an override stays an integer. */
    req_clear_overrides(&req);
    req_add_override(&req, "k.seed", "9223372036854775807");
    CHECK(gq_template_bind(tmpl, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(input_int(wf, "k", "seed"), INT64_MAX);
    json_decref(wf);

    req_clear_overrides(&req);
    req_add_override(&req, "Positive Prompt.text", "\"x\"");
    CHECK(bind_fails(tmpl, &req, "title \"Positive Prompt\" is ambiguous (nodes \"6\", \"dec\")"));

    req_clear_overrides(&req);
    req_add_override(&req, "nope.steps", "3");
    CHECK(bind_fails(tmpl, &req, "override \"nope.steps\": no node has the id or title \"nope\""));

    req_clear_overrides(&req);
    req_add_override(&req, "k.sampler_name", "euler");
    CHECK(bind_fails(tmpl, &req, "override \"k.sampler_name\": value euler is not a JSON literal"));

    req_clear_overrides(&req);
    req_add_override(&req, "k.model", "[\"99\", 0]");
    CHECK(bind_fails(tmpl, &req, "override \"k.model\": [\"99\", 0] is not a link"));

    req_clear_overrides(&req);
    req_add_override(&req, "k.model", "[1, 2, 3]");
    CHECK(bind_fails(tmpl, &req, "is not a link"));

    req_clear_overrides(&req);
    req_add_override(&req, "steps", "3");
    CHECK(bind_fails(tmpl, &req, "must look like \"<node id or title>.<input>\""));

    req_clear_overrides(&req);
    req_add_override(&req, "k.", "3");
    CHECK(bind_fails(tmpl, &req, "must look like"));

    /* Control characters from a message do not reach the error text. */
    req_clear_overrides(&req);
    req_add_override(&req, "a\nb.c", "1");
    CHECK(bind_fails(tmpl, &req, "no node has the id or title \"a?b\""));

    json_decref(tmpl);
    req_free(&req);
}

static void test_parse_errors(void) {
    char path[1200];
    snprintf(path, sizeof(path), "%s/ui-format.json", data_dir);
    json_t *t = (json_t *)1;
    char err[512] = "";
    CHECK(gq_template_load(data_dir, "ui-format", &t, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(t == NULL);
    CHECK(strstr(err, "workflow is in ComfyUI's UI format (nodes/links); export it with "
                      "\"Export (API)\" / Save (API Format)") != NULL);
    CHECK(strstr(err, path) != NULL); /* says which file */
    CHECK(parse_fails("{\"last_node_id\": 9, \"3\": {}}", "UI format"));
    CHECK(parse_fails("{\"nodes\": [], \"links\": []}", "UI format"));

    CHECK(parse_fails("[]", "must be a JSON object"));
    CHECK(parse_fails("{}", "workflow has no nodes"));
    CHECK(parse_fails("{\"_genq\": {}}", "workflow has no nodes"));
    CHECK(parse_fails("{\"3\": ", "not valid JSON (line 1"));
    CHECK(parse_fails("{\"3\": 5}", "node \"3\" is not an object"));
    CHECK(parse_fails("{\"3\": {\"inputs\": {}}}", "node \"3\" has no class_type"));
    CHECK(parse_fails("{\"3\": {\"class_type\": 7, \"inputs\": {}}}", "has no class_type"));
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\"}}", "node \"3\" (X) has no \"inputs\""));
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\", \"inputs\": []}}", "no \"inputs\" object"));
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\", \"inputs\": {}},"
                      " \"3\": {\"class_type\": \"Y\", \"inputs\": {}}}",
                      "duplicate"));
    /* Dangling and malformed links. */
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\", \"inputs\": {\"a\": [\"44\", 0]}}}",
                      "node \"3\" (X) input \"a\" links to node \"44\", which does not exist"));
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\", \"inputs\": {\"a\": [3, 0]}}}",
                      "input \"a\" is a list but not a link"));
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\", \"inputs\": {\"a\": [\"3\", -1]}}}",
                      "not a link"));
    CHECK(parse_fails("{\"3\": {\"class_type\": \"X\", \"inputs\": {\"a\": [\"3\"]}}}",
                      "not a link"));
    CHECK(parse_fails("{\"_genq\": {}, \"3\": {\"class_type\": \"X\","
                      " \"inputs\": {\"a\": [\"_genq\", 0]}}}",
                      "links to node \"_genq\", which does not exist"));
    /* _genq metadata must be sane. */
    CHECK(parse_fails("{\"_genq\": 5, \"3\": {\"class_type\": \"X\", \"inputs\": {}}}",
                      "\"_genq\" must be an object"));
    CHECK(parse_fails("{\"_genq\": {\"timeout_s\": -1}, \"3\": {\"class_type\": \"X\","
                      " \"inputs\": {}}}",
                      "timeout_s must be a positive integer"));
    CHECK(parse_fails("{\"_genq\": {\"timeout_s\": \"9\"}, \"3\": {\"class_type\": \"X\","
                      " \"inputs\": {}}}",
                      "timeout_s must be a positive integer"));
    t = (json_t *)1;
    CHECK(gq_workflow_parse(NULL, 0, &t, err, sizeof(err)) == GQ_ERR_INVALID && t == NULL);

    /* A template built in memory is checked by bind too. */
    gq_request_t req;
    req_init(&req);
    json_t *bad =
        json_pack("{s:{s:s, s:{s:[s,i]}}}", "1", "class_type", "X", "inputs", "a", "2", 0);
    CHECK(bind_fails(bad, &req, "links to node \"2\", which does not exist"));
    json_decref(bad);
    bad = json_array();
    CHECK(bind_fails(bad, &req, "must be a JSON object"));
    json_decref(bad);
    req_free(&req);
}

static void test_graph_errors(void) {
    gq_request_t req;
    req_init(&req);
    json_t *tmpl = parse(stock);
    json_t *t, *wf = NULL;
    char err[512] = "";

    /* No sampler at all: the prompt has nowhere to go. */
    t = parse("{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": \"a.png\"}},"
              " \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0]}}}");
    CHECK(bind_fails(t, &req,
                     "the request sets a prompt but template \"txt2img\" has no sampler, so no "
                     "text encoder, to take it"));
    json_decref(t);

    /* No SaveImage: nothing would be collected. */
    t = json_deep_copy(tmpl);
    json_object_set_new(json_object_get(t, "9"), "class_type", json_string("PreviewImage"));
    CHECK(
        bind_fails(t, &req, "template \"txt2img\" saves no file: genq keeps the files of saving"));
    json_decref(t);

    /* A sampler whose result nobody saves. */
    t = json_deep_copy(tmpl);
    json_object_set_new(json_object_get(json_object_get(t, "8"), "inputs"), "samples",
                        json_pack("[s,i]", "5", 0));
    CHECK(bind_fails(t, &req,
                     "has no sampler, so no text encoder, to take it (sampler \"3\" "
                     "feeds no saving node)"));
    json_decref(t);

    /* Two independent samplers feeding two SaveImages. */
    t = json_deep_copy(tmpl);
    json_object_set_new(t, "13", json_deep_copy(json_object_get(t, "3")));
    json_object_set_new(t, "18",
                        json_pack("{s:s, s:{s:[s,i], s:[s,i]}}", "class_type", "VAEDecode",
                                  "inputs", "samples", "13", 0, "vae", "4", 2));
    json_object_set_new(t, "19",
                        json_pack("{s:s, s:{s:s, s:[s,i]}}", "class_type", "SaveImage", "inputs",
                                  "filename_prefix", "b", "images", "18", 0));
    CHECK(bind_fails(t, &req, "samplers \"3\", \"13\" each feed a saving node, and genq binds"));
    json_decref(t);

    /* A second pass (hires fix) is preferred over the first: the final one is bound. The
     * output's size is the upscale's; the batch is the first latent's. */
    t = json_deep_copy(tmpl);
    json_object_set_new(t, "20",
                        json_pack("{s:s, s:{s:s, s:i, s:i, s:s, s:[s,i]}}", "class_type",
                                  "LatentUpscale", "inputs", "upscale_method", "nearest-exact",
                                  "width", 1024, "height", 1024, "crop", "disabled", "samples", "3",
                                  0));
    json_t *second = json_deep_copy(json_object_get(t, "3"));
    json_object_set_new(json_object_get(second, "inputs"), "latent_image",
                        json_pack("[s,i]", "20", 0));
    json_object_set_new(t, "21", second);
    json_object_set_new(json_object_get(json_object_get(t, "8"), "inputs"), "samples",
                        json_pack("[s,i]", "21", 0));
    CHECK(gq_template_bind(t, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(input_int(wf, "20", "width"), 768);
    CHECK_INT(input_int(wf, "20", "height"), 640);
    CHECK_INT(input_int(wf, "5", "width"), 512);
    CHECK_INT(input_int(wf, "5", "batch_size"), 2);
    CHECK_INT(input_int(wf, "21", "steps"), 31);
    CHECK_INT(input_int(wf, "3", "steps"), 20);
    json_decref(wf);
    json_decref(t);

    /* Conditioning through a simple pass-through node is followed... */
    t = json_deep_copy(tmpl);
    json_object_set_new(t, "30",
                        json_pack("{s:s, s:{s:[s,i], s:i, s:i}}", "class_type",
                                  "ConditioningSetArea", "inputs", "conditioning", "6", 0, "width",
                                  64, "height", 64));
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "positive",
                        json_pack("[s,i]", "30", 0));
    CHECK(gq_template_bind(t, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_STR(input_str(wf, "6", "text"), "a red fox in the snow");
    CHECK(input(wf, "30", "text") == NULL);
    json_decref(wf);
    /* ...a merge is not: which branch would get the prompt? */
    json_object_set_new(t, "31",
                        json_pack("{s:s, s:{s:[s,i], s:[s,i]}}", "class_type",
                                  "ConditioningCombine", "inputs", "conditioning_1", "30", 0,
                                  "conditioning_2", "7", 0));
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "positive",
                        json_pack("[s,i]", "31", 0));
    CHECK(bind_fails(t, &req, "leads to node \"31\" (ConditioningCombine), which merges 2"));
    json_decref(t);

    /* A zeroed negative (Flux style) has no text to set; both from one encoder is fine then. */
    t = json_deep_copy(tmpl);
    json_object_set_new(t, "40",
                        json_pack("{s:s, s:{s:[s,i]}}", "class_type", "ConditioningZeroOut",
                                  "inputs", "conditioning", "6", 0));
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "negative",
                        json_pack("[s,i]", "40", 0));
    CHECK(bind_fails(t, &req,
                     "the request sets a negative_prompt but template \"txt2img\" cannot take "
                     "it: the \"negative\" input of sampler \"3\" is zeroed out by node \"40\""));
    free(req.negative_prompt);
    req.negative_prompt = strdup("");
    CHECK(gq_template_bind(t, &req, "p", &wf, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_STR(input_str(wf, "6", "text"), "a red fox in the snow");
    CHECK_STR(input_str(wf, "7", "text"), "n");
    json_decref(wf);
    free(req.negative_prompt);
    req.negative_prompt = strdup("blurry");
    /* Positive and negative on the same encoder would overwrite each other. */
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "negative",
                        json_pack("[s,i]", "6", 0));
    CHECK(bind_fails(t, &req, "reach the same CLIPTextEncode node \"6\""));
    json_decref(t);

    /* The conditioning ends at something that is not a text encoder. */
    t = json_deep_copy(tmpl);
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "negative",
                        json_pack("[s,i]", "5", 0));
    CHECK(bind_fails(t, &req,
                     "the \"negative\" input of sampler \"3\" leads to node \"5\" "
                     "(EmptyLatentImage), not to a CLIPTextEncode"));
    json_decref(t);

    /* Unlinked sampler inputs. */
    t = json_deep_copy(tmpl);
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "positive",
                        json_string("oops"));
    CHECK(bind_fails(t, &req, "sampler \"3\" input \"positive\" is not linked"));
    json_decref(t);

    /* A conditioning cycle ends with an error, not a hang. */
    t = json_deep_copy(tmpl);
    json_object_set_new(t, "50",
                        json_pack("{s:s, s:{s:[s,i]}}", "class_type", "ConditioningSetAreaStrength",
                                  "inputs", "conditioning", "51", 0));
    json_object_set_new(t, "51",
                        json_pack("{s:s, s:{s:[s,i]}}", "class_type", "ConditioningSetAreaStrength",
                                  "inputs", "conditioning", "50", 0));
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "positive",
                        json_pack("[s,i]", "50", 0));
    CHECK(bind_fails(t, &req, "link cycle"));
    json_decref(t);

    /* A prompt that is not UTF-8 cannot go into JSON. */
    free(req.prompt);
    req.prompt = strdup("bad \xff byte");
    CHECK(bind_fails(tmpl, &req, "prompt cannot be put in the workflow"));

    json_decref(tmpl);
    req_free(&req);
}

static void write_file(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(text, 1, len, f) == len);
        fclose(f);
    }
}

static void test_load(void) {
    json_t *t = (json_t *)1;
    char err[512] = "";
    static const char *const unsafe[] = {"../x", "..", ".hidden", "a/b", "", "x y", "x\n"};
    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        t = (json_t *)1;
        CHECK(gq_template_load(data_dir, unsafe[i], &t, err, sizeof(err)) == GQ_ERR_INVALID);
        CHECK(t == NULL);
        CHECK(strstr(err, "is not allowed") != NULL);
    }
    CHECK(gq_template_load(data_dir, NULL, &t, err, sizeof(err)) == GQ_ERR_INVALID);
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[129] = '\0';
    CHECK(gq_template_load(NULL, longname, &t, err, sizeof(err)) == GQ_ERR_INVALID);
    longname[128] = '\0';
    CHECK(gq_template_load(NULL, longname, &t, err, sizeof(err)) == GQ_ERR_NOTFOUND);

    CHECK(gq_template_load(data_dir, "no-such-template", &t, err, sizeof(err)) == GQ_ERR_NOTFOUND);
    CHECK(t == NULL);
    CHECK(strstr(err, "unknown workflow template \"no-such-template\" (looked in ") != NULL);
    CHECK(strstr(err, data_dir) != NULL);
    CHECK(strstr(err, "the built-in templates: ") != NULL);
    CHECK(strstr(err, "the built-in templates: txt2img, txt2img-lora") != NULL);
    CHECK(gq_template_load(NULL, "nope", &t, err, sizeof(err)) == GQ_ERR_NOTFOUND);
    CHECK(strstr(err, "no workflows directory is set") != NULL);

    /* Every built-in template loads. */
    static const char *const builtin[] = {"txt2img", "txt2img-lora", "txt2img-sdxl"};
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        t = load(NULL, builtin[i]);
        json_decref(t);
    }
    t = load(NULL, "txt2img-sdxl");
    CHECK_STR(input_str(t, "4", "ckpt_name"), "sdxl.safetensors");
    json_decref(t);

    /* A file in the directory shadows the built-in one of the same name. */
    char dir[] = "/tmp/genq-test-template-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], big_path[256], bad_path[256];
    snprintf(path, sizeof(path), "%s/txt2img.json", dir);
    snprintf(big_path, sizeof(big_path), "%s/big.json", dir);
    snprintf(bad_path, sizeof(bad_path), "%s/bad.json", dir);
    write_file(path, stock, strlen(stock));
    t = load(dir, "txt2img");
    CHECK_STR(input_str(t, "4", "ckpt_name"), "a");
    json_decref(t);

    write_file(bad_path, "{\"3\": {", 7);
    CHECK(gq_template_load(dir, "bad", &t, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, bad_path) != NULL && strstr(err, "not valid JSON") != NULL);

    size_t big = ((size_t)4 << 20) + 1;
    char *blob = malloc(big);
    if (blob) {
        memset(blob, ' ', big);
        write_file(big_path, blob, big);
        free(blob);
        CHECK(gq_template_load(dir, "big", &t, err, sizeof(err)) == GQ_ERR_TOOBIG);
        CHECK(t == NULL);
    }

    unlink(path);
    unlink(big_path);
    unlink(bad_path);
    CHECK(rmdir(dir) == 0);
}

/* Binds as the request's own workflow_json would be (or as a template); NULL on failure,
 * with the message in err. */
static json_t *bind_as(json_t *wf, const gq_request_t *req, bool is_inline, char *err,
                       size_t err_size) {
    json_t *out = NULL;
    gq_bind_opts_t opts = {.filename_prefix = "genq/j", .is_inline = is_inline, .name = "t"};
    err[0] = '\0';
    if (gq_workflow_bind(wf, req, &opts, &out, NULL, err, err_size) != GQ_OK)
        return NULL;
    return out;
}

static bool bind_as_fails(json_t *wf, const gq_request_t *req, bool is_inline, const char *needle) {
    char err[512];
    json_t *out = bind_as(wf, req, is_inline, err, sizeof(err));
    bool ok = out == NULL && strstr(err, needle) != NULL;
    if (!ok)
        fprintf(stderr, "bind: expected an error with \"%s\", got \"%s\"\n", needle, err);
    json_decref(out);
    return ok;
}

/* A request as a producer sends it when it sets nothing but the prompt. */
static void req_defaults(gq_request_t *r, const char *prompt) {
    gq_request_defaults(r);
    free(r->prompt);
    r->prompt = strdup(prompt);
}

static double input_real(json_t *wf, const char *id, const char *name) {
    return json_number_value(input(wf, id, name));
}

static void test_inline_keeps_own_values(void) {
    gq_request_t req;
    req_defaults(&req, "a fox");
    json_t *t = parse(stock), *wf;
    char err[512];
    /* Nothing but the prompt set: everything else stays as the workflow has it. */
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_STR(input_str(wf, "6", "text"), "a fox");
    CHECK_STR(input_str(wf, "7", "text"), "n");
    CHECK_INT(input_int(wf, "3", "seed"), 5);
    CHECK_INT(input_int(wf, "3", "steps"), 20);
    CHECK_INT(input_int(wf, "3", "cfg"), 8);
    CHECK_STR(input_str(wf, "3", "sampler_name"), "euler");
    CHECK_STR(input_str(wf, "4", "ckpt_name"), "a");
    CHECK_STR(input_str(wf, "9", "filename_prefix"), "genq/j");
    json_decref(wf);
    /* The same request against a template: the template takes the request's defaults. */
    CHECK((wf = bind_as(t, &req, false, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "3", "seed"), 0);
    CHECK(input_real(wf, "3", "cfg") == 7.0);
    CHECK_STR(input_str(wf, "7", "text"), "");
    json_decref(wf);
    /* What the request sets goes in; the size is one field (width 768 means 768x512). */
    req.width = 768;
    req.steps = 30;
    req.seed = 77;
    free(req.scheduler);
    req.scheduler = strdup("karras");
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "5", "width"), 768);
    CHECK_INT(input_int(wf, "5", "height"), 512);
    CHECK_INT(input_int(wf, "5", "batch_size"), 1);
    CHECK_INT(input_int(wf, "3", "steps"), 30);
    CHECK_INT(input_int(wf, "3", "seed"), 77);
    CHECK_STR(input_str(wf, "3", "scheduler"), "karras");
    CHECK_INT(input_int(wf, "3", "cfg"), 8);
    json_decref(wf);
    /* An empty prompt leaves the workflow's text. */
    free(req.prompt);
    req.prompt = strdup("");
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_STR(input_str(wf, "6", "text"), "p");
    json_decref(wf);
    json_decref(t);
    gq_request_release(&req);
}

static const char empty_save[] =
    "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64, \"height\": 48,"
    " \"batch_size\": 1, \"color\": 0}},"
    " \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0],"
    " \"filename_prefix\": \"mine\"}}}";

static const char post_chain[] =
    "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64, \"height\": 64,"
    " \"batch_size\": 1, \"color\": 0}},"
    " \"2\": {\"class_type\": \"ImageScale\", \"inputs\": {\"image\": [\"1\", 0],"
    " \"upscale_method\": \"bilinear\", \"width\": 96, \"height\": 80, \"crop\": \"disabled\"}},"
    " \"3\": {\"class_type\": \"ImageBlur\", \"inputs\": {\"image\": [\"2\", 0],"
    " \"blur_radius\": 3, \"sigma\": 1.0}},"
    " \"4\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"3\", 0]}},"
    " \"5\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"4\", 0],"
    " \"filename_prefix\": \"x\"}}}";

static void test_weight_free(void) {
    gq_request_t req;
    req_defaults(&req, "");
    json_t *t = parse(empty_save), *wf;
    char err[512];
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "1", "width"), 64);
    CHECK_INT(input_int(wf, "1", "height"), 48);
    CHECK_STR(input_str(wf, "2", "filename_prefix"), "genq/j");
    json_decref(wf);
    /* A seed has nothing to seed in a graph without noise: same result for any seed. */
    req.seed = 1234;
    req.width = 128;
    req.height = 96;
    req.batch_size = 3;
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "1", "width"), 128);
    CHECK_INT(input_int(wf, "1", "height"), 96);
    CHECK_INT(input_int(wf, "1", "batch_size"), 3);
    CHECK(input(wf, "1", "seed") == NULL);
    json_decref(wf);
    /* A template without a sampler takes the request's size (its defaults too). */
    req.width = req.height = 512;
    CHECK((wf = bind_as(t, &req, false, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "1", "width"), 512);
    json_decref(wf);
    /* What cannot be bound is refused, in the request's terms. */
    req.steps = 30;
    CHECK(bind_as_fails(t, &req, true,
                        "the request sets steps=30 (not the default 20) but the inline workflow "
                        "has no sampler to take it"));
    req.steps = 20;
    req.cfg = 4.5;
    CHECK(bind_as_fails(t, &req, false,
                        "the request sets cfg=4.5 (not the default 7) but "
                        "template \"t\" has no sampler to take it"));
    req.cfg = 7.0;
    free(req.prompt);
    req.prompt = strdup("a fox");
    CHECK(bind_as_fails(t, &req, true,
                        "the request sets a prompt but the inline workflow has no sampler, so no "
                        "text encoder, to take it"));
    free(req.prompt);
    req.prompt = strdup("");
    req.model = strdup("sd15.safetensors");
    CHECK(bind_as_fails(t, &req, true, "the request sets model=\"sd15.safetensors\" but"));
    free(req.model);
    req.model = NULL;
    free(req.sampler);
    req.sampler = strdup("dpmpp_2m");
    CHECK(bind_as_fails(t, &req, true, "sampler=\"dpmpp_2m\" (not the default \"euler\")"));
    json_decref(t);
    gq_request_release(&req);
}

static void test_post_processing(void) {
    gq_request_t req;
    req_defaults(&req, "");
    json_t *t = parse(post_chain), *wf;
    char err[512];
    /* The output's size is the last node that sets it: the ImageScale, not the EmptyImage;
     * the batch is where the image starts. */
    req.width = 128;
    req.height = 112;
    req.batch_size = 2;
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "2", "width"), 128);
    CHECK_INT(input_int(wf, "2", "height"), 112);
    CHECK_INT(input_int(wf, "1", "width"), 64);
    CHECK_INT(input_int(wf, "1", "batch_size"), 2);
    CHECK_INT(input_int(wf, "3", "blur_radius"), 3);
    json_decref(wf);
    json_decref(t);

    /* An upscale by a model: genq does not know the factor, so it will not guess the size. */
    t = parse("{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": \"a.png\"}},"
              " \"2\": {\"class_type\": \"UpscaleModelLoader\", \"inputs\": {\"model_name\": "
              "\"4x.pth\"}},"
              " \"3\": {\"class_type\": \"ImageUpscaleWithModel\", \"inputs\": {\"image\": "
              "[\"1\", 0], \"upscale_model\": [\"2\", 0]}},"
              " \"4\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"3\", 0],"
              " \"filename_prefix\": \"x\"}}}");
    CHECK(bind_as_fails(t, &req, true,
                        "the request sets width=128, height=112 (not the default 512x512) but the "
                        "inline workflow cannot take it: what node \"4\" (SaveImage) saves comes "
                        "through node \"3\" (ImageUpscaleWithModel), which genq cannot set the "
                        "size on"));
    req.width = req.height = 512;
    req.batch_size = 1;
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    json_decref(wf);
    /* An image scaled from a loaded file: the size goes to the scale, a batch nowhere. */
    json_object_set_new(json_object_get(t, "3"), "class_type", json_string("ImageScale"));
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "width",
                        json_integer(1));
    json_object_set_new(json_object_get(json_object_get(t, "3"), "inputs"), "height",
                        json_integer(1));
    req.width = 256;
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "3", "width"), 256);
    json_decref(wf);
    req.batch_size = 4;
    CHECK(bind_as_fails(t, &req, true,
                        "comes through node \"1\" (LoadImage), which genq cannot "
                        "set the batch on"));
    json_decref(t);
    gq_request_release(&req);
}

static void test_flux(void) {
    gq_request_t req;
    req_init(&req);
    json_t *t = load(data_dir, "flux-dev"), *wf;
    char err[512];
    /* BasicGuider: one conditioning, no cfg. The negative and the cfg have no place. */
    CHECK(bind_as_fails(t, &req, false,
                        "the request sets a negative_prompt but template \"t\" cannot take it: "
                        "node \"22\" (BasicGuider) takes no negative conditioning"));
    free(req.negative_prompt);
    req.negative_prompt = strdup("");
    CHECK(bind_as_fails(t, &req, false,
                        "the request sets cfg=6.5 (not the default 7) but template \"t\" cannot "
                        "take it: sampler \"13\" (SamplerCustomAdvanced) takes its guider from "
                        "node \"22\" (BasicGuider), which has no cfg input"));
    req.cfg = 7.0;
    req.model = strdup("flux1-schnell.safetensors");
    CHECK((wf = bind_as(t, &req, false, err, sizeof(err))) != NULL);
    if (!wf)
        fprintf(stderr, "flux: %s\n", err);
    CHECK_STR(input_str(wf, "6", "text"), "a red fox in the snow");
    CHECK_INT(input_int(wf, "25", "noise_seed"), INT64_C(9007199254740993));
    CHECK_INT(input_int(wf, "17", "steps"), 31);
    CHECK_STR(input_str(wf, "17", "scheduler"), "karras");
    CHECK_STR(input_str(wf, "16", "sampler_name"), "dpmpp_2m");
    CHECK_INT(input_int(wf, "27", "width"), 768);
    CHECK_INT(input_int(wf, "27", "height"), 640);
    CHECK_INT(input_int(wf, "27", "batch_size"), 2);
    CHECK_INT(input_int(wf, "30", "width"), 768); /* ModelSamplingFlux follows the size */
    CHECK_INT(input_int(wf, "30", "height"), 640);
    CHECK_STR(input_str(wf, "12", "unet_name"), "flux1-schnell.safetensors");
    gq_template_info_t info;
    json_t *again = NULL;
    gq_bind_opts_t o = {.filename_prefix = "p", .name = "flux"};
    CHECK(gq_workflow_bind(t, &req, &o, &again, &info, err, sizeof(err)) == GQ_OK);
    CHECK_STR(info.model, "flux1-schnell.safetensors"); /* the UNet, for records and metrics */
    json_decref(again);
    CHECK(json_real_value(input(wf, "26", "guidance")) == 3.5);
    CHECK(input(wf, "13", "seed") == NULL && input(wf, "22", "cfg") == NULL);
    json_decref(wf);
    /* Inline, with only a prompt: Flux keeps its 1024x1024, 20 steps, seed. */
    gq_request_release(&req);
    req_defaults(&req, "a cat");
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_STR(input_str(wf, "6", "text"), "a cat");
    CHECK_INT(input_int(wf, "27", "width"), 1024);
    CHECK_INT(input_int(wf, "25", "noise_seed"), 219670278747233);
    CHECK_STR(input_str(wf, "17", "scheduler"), "simple");
    json_decref(wf);
    json_decref(t);
    gq_request_release(&req);
}

static void test_custom_samplers(void) {
    gq_request_t req;
    req_init(&req);
    json_t *t = load(data_dir, "custom-cfg"), *wf;
    char err[512];
    /* KarrasScheduler has steps but no scheduler input. */
    CHECK(bind_as_fails(t, &req, false,
                        "the request sets scheduler=\"karras\" (not the default \"normal\") but "
                        "template \"t\" cannot take it: sampler \"13\" (SamplerCustomAdvanced) "
                        "takes its sigmas from node \"17\" (KarrasScheduler), which has no "
                        "scheduler input"));
    free(req.scheduler);
    req.scheduler = strdup("normal");
    CHECK((wf = bind_as(t, &req, false, err, sizeof(err))) != NULL);
    if (!wf)
        fprintf(stderr, "custom-cfg: %s\n", err);
    CHECK_STR(input_str(wf, "6", "text"), "a red fox in the snow");
    CHECK_STR(input_str(wf, "7", "text"), "blurry");
    CHECK(json_real_value(input(wf, "22", "cfg")) == 6.5);
    CHECK_INT(input_int(wf, "17", "steps"), 31);
    CHECK_STR(input_str(wf, "16", "sampler_name"), "dpmpp_2m");
    CHECK_INT(input_int(wf, "5", "width"), 768);
    CHECK(json_object_size(input(wf, "25", "")) == 0); /* DisableNoise: nothing to seed */
    json_decref(wf);
    json_decref(t);

    /* SamplerCustom: seed and cfg on the sampler; an SDXL encoder takes both its texts. */
    t = load(data_dir, "sampler-custom");
    CHECK((wf = bind_as(t, &req, false, err, sizeof(err))) != NULL);
    if (!wf)
        fprintf(stderr, "sampler-custom: %s\n", err);
    CHECK_INT(input_int(wf, "3", "noise_seed"), INT64_C(9007199254740993));
    CHECK(json_real_value(input(wf, "3", "cfg")) == 6.5);
    CHECK_INT(input_int(wf, "17", "steps"), 31);
    CHECK_STR(input_str(wf, "17", "scheduler"), "normal");
    CHECK_STR(input_str(wf, "6", "text_g"), "a red fox in the snow");
    CHECK_STR(input_str(wf, "6", "text_l"), "a red fox in the snow");
    CHECK_STR(input_str(wf, "7", "text"), "blurry");
    CHECK_INT(input_int(wf, "5", "batch_size"), 2);
    CHECK_STR(input_str(wf, "9", "filename_prefix"), "genq/j"); /* SaveAnimatedWEBP */
    json_decref(wf);
    json_decref(t);
    gq_request_release(&req);
}

static void test_outputs(void) {
    gq_request_t req;
    req_defaults(&req, "");
    char err[512];
    json_t *wf;
    /* Every saving node gets genq's prefix; SaveImageWebsocket becomes a SaveImage (its
     * images would only be WebSocket frames); PreviewImage stays a preview. */
    json_t *t =
        parse("{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 32, \"height\": 32,"
              " \"batch_size\": 3, \"color\": 0}},"
              " \"2\": {\"class_type\": \"SaveAnimatedWEBP\", \"inputs\": {\"images\": [\"1\", 0],"
              " \"filename_prefix\": \"a\", \"fps\": 6.0, \"lossless\": true, \"quality\": 80,"
              " \"method\": \"default\"}},"
              " \"3\": {\"class_type\": \"SaveAnimatedPNG\", \"inputs\": {\"images\": [\"1\", 0],"
              " \"filename_prefix\": \"b\", \"fps\": 6.0, \"compress_level\": 4}},"
              " \"4\": {\"class_type\": \"SaveImageWebsocket\", \"inputs\": {\"images\": [\"1\", "
              "0]}},"
              " \"5\": {\"class_type\": \"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}},"
              " \"6\": {\"class_type\": \"CreateVideo\", \"inputs\": {\"images\": [\"1\", 0], "
              "\"fps\": 8.0}},"
              " \"7\": {\"class_type\": \"SaveVideo\", \"inputs\": {\"video\": [\"6\", 0],"
              " \"filename_prefix\": \"v\", \"format\": \"auto\", \"codec\": \"auto\"}},"
              " \"8\": {\"class_type\": \"VHS_VideoCombine\", \"inputs\": {\"images\": [\"1\", 0],"
              " \"filename_prefix\": \"c\"}}}");
    req.batch_size = 4;
    req.width = 64;
    req.height = 64;
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    if (!wf)
        fprintf(stderr, "outputs: %s\n", err);
    static const char *const saves[] = {"2", "3", "4", "7", "8"}; /* 8: a custom saver */
    for (size_t i = 0; i < sizeof(saves) / sizeof(saves[0]); i++)
        CHECK_STR(input_str(wf, saves[i], "filename_prefix"), "genq/j");
    CHECK_STR(json_string_value(json_object_get(json_object_get(wf, "4"), "class_type")),
              "SaveImage");
    CHECK(input(wf, "5", "filename_prefix") == NULL);
    CHECK_INT(input_int(wf, "1", "batch_size"), 4);
    CHECK_INT(input_int(wf, "1", "width"), 64);
    json_decref(wf);
    json_decref(t);

    /* Audio only: no image size to set, but nothing else prevents it. */
    t = parse("{\"1\": {\"class_type\": \"LoadAudio\", \"inputs\": {\"audio\": \"a.wav\"}},"
              " \"2\": {\"class_type\": \"SaveAudio\", \"inputs\": {\"audio\": [\"1\", 0],"
              " \"filename_prefix\": \"audio/x\"}}}");
    CHECK(bind_as_fails(t, &req, true, "cannot take it: it saves only audio (node \"2\")"));
    req.width = req.height = 512;
    req.batch_size = 1;
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_STR(input_str(wf, "2", "filename_prefix"), "genq/j");
    json_decref(wf);
    json_decref(t);

    /* Only previews: nothing would be kept. */
    t = parse("{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, \"height\": 8,"
              " \"batch_size\": 1, \"color\": 0}},"
              " \"2\": {\"class_type\": \"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}}}");
    CHECK(bind_as_fails(t, &req, true, "the inline workflow saves no file"));
    json_decref(t);

    /* genq owns the names of the files it collects (and deletes). */
    t = parse(empty_save);
    req_add_override(&req, "2.filename_prefix", "\"fixed\"");
    CHECK(bind_as_fails(t, &req, true,
                        "override \"2.filename_prefix\": genq sets the filename_prefix of saving "
                        "nodes itself"));
    req_clear_overrides(&req);
    req_add_override(&req, "1.color", "255");
    CHECK((wf = bind_as(t, &req, true, err, sizeof(err))) != NULL);
    CHECK_INT(input_int(wf, "1", "color"), 255);
    json_decref(wf);
    json_decref(t);
    gq_request_release(&req);
}

int main(void) {
    test_find_data();
    test_bind_stock();
    test_bind_renumbered();
    test_bind_lora();
    test_sampler_advanced();
    test_overrides();
    test_parse_errors();
    test_graph_errors();
    test_load();
    test_inline_keeps_own_values();
    test_weight_free();
    test_post_processing();
    test_flux();
    test_custom_samplers();
    test_outputs();
    return CHECK_DONE("test_template");
}
