/* Unit tests of consumers/worker/bind/guard.c through admission (admit.c): what a request may
 * make ComfyUI do, and the failure a refusal ends in (workflow_not_allowed, no retry). */
#include "worker/admit.h"
#include "worker/bind/guard.h"
#include "worker/codes.h"

#include "buf.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[256];
static const char *workflows_dir = tmp_dir; /* where admission finds templates */

/* An inline graph: EmptyImage -> ImageInvert -> SaveImage, with an extra node `extra` (a
 * JSON fragment: "" for none) and the SaveImage's filename_prefix input as given. */
static char *inline_wf(const char *extra, const char *prefix) {
    char *s = NULL;
    int n =
        asprintf(&s,
                 "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, "
                 "\"height\": 8, \"batch_size\": 1, \"color\": 0}},"
                 " \"2\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"1\", 0]}},"
                 " \"3\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"2\", 0],"
                 " \"filename_prefix\": %s}}%s}",
                 prefix, extra);
    return n < 0 ? NULL : s;
}

/* Admits a request made from JSON (.avsc field names) with the guard; the verdict's code. */
static void admit_json(const char *json, const gq_guard_t *g, gq_admit_t *a) {
    gq_request_t req;
    char err[512];
    gq_status_t st = gq_request_from_json(json, strlen(json), &req, err, sizeof(err));
    if (st != GQ_OK)
        fprintf(stderr, "from_json: %s\n", err);
    CHECK(st == GQ_OK);
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    CHECK(gq_request_encode(&req, &b, err, sizeof(err)) == GQ_OK);
    gq_admit_cfg_t cfg = {
        .workflows_dir = workflows_dir, .job_timeout_s = 600, .max_attempts = 3, .guard = g};
    gq_admit_message(b.data, b.len, req.job_id, &cfg, a);
    gq_buf_release(&b);
    gq_request_release(&req);
}

/* The request with workflow_json = wf (a JSON text, quoted here) and extra fields. */
static char *inline_req(const char *wf, const char *fields) {
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "prompt", "", "workflow", "inline", "workflow_json", wf);
    char *head = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *s = NULL;
    size_t hl = strlen(head);
    head[hl - 1] = '\0'; /* the closing brace */
    if (asprintf(&s, "%s%s%s}", head, *fields ? ", " : "", fields) < 0)
        s = NULL;
    free(head);
    return s;
}

static bool refused(const gq_admit_t *a, const char *needle) {
    bool ok = a->verdict == GQ_ADMIT_FAIL && strcmp(a->code, GQ_CODE_WORKFLOW_NOT_ALLOWED) == 0 &&
              strstr(a->message, needle) != NULL && !a->dead_letter;
    if (!ok)
        fprintf(stderr, "expected workflow_not_allowed with \"%s\", got verdict %d %s: %s\n",
                needle, (int)a->verdict, a->code, a->message);
    return ok;
}

static bool admitted(const gq_admit_t *a) {
    if (a->verdict != GQ_ADMIT_OK)
        fprintf(stderr, "expected admission, got verdict %d %s: %s\n", (int)a->verdict, a->code,
                a->message);
    return a->verdict == GQ_ADMIT_OK;
}

static void test_init(void) {
    gq_guard_t g;
    char err[512] = "";
    CHECK(gq_guard_init(&g, "allowlist", NULL, err, sizeof(err)) == GQ_OK);
    CHECK(g.inline_mode == GQ_INLINE_ALLOWLIST);
    CHECK(gq_guard_class_allowed(&g, "KSampler"));
    CHECK(gq_guard_class_allowed(&g, "SaveImage"));
    CHECK(!gq_guard_class_allowed(&g, "PythonExec"));
    CHECK(!gq_guard_class_allowed(&g, "ksampler"));
    gq_guard_release(&g);

    /* A comma list, "default" standing for genq's list, blanks trimmed, repeats once. */
    CHECK(gq_guard_init(&g, "allowlist", " EmptyImage , SaveImage,EmptyImage", err, sizeof(err)) ==
          GQ_OK);
    CHECK_INT(g.classes_cnt, 2);
    CHECK(!gq_guard_class_allowed(&g, "KSampler"));
    gq_guard_release(&g);
    CHECK(gq_guard_init(&g, "allowlist", "default,My Custom Node", err, sizeof(err)) == GQ_OK);
    CHECK(gq_guard_class_allowed(&g, "KSampler") && gq_guard_class_allowed(&g, "My Custom Node"));
    gq_guard_release(&g);

    /* A file: one class a line, comments and blank lines ignored. */
    char path[300];
    snprintf(path, sizeof(path), "%s/classes.txt", tmp_dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("# our nodes\nEmptyImage\n\n  SaveImage  # the output\r\nImageInvert\n", f);
        fclose(f);
    }
    CHECK(gq_guard_init(&g, "allowlist", path, err, sizeof(err)) == GQ_OK);
    CHECK_INT(g.classes_cnt, 3);
    CHECK(gq_guard_class_allowed(&g, "SaveImage") && gq_guard_class_allowed(&g, "ImageInvert"));
    gq_guard_release(&g);

    CHECK(gq_guard_init(&g, "sometimes", NULL, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "expected off, allowlist or allow") != NULL);
    CHECK(gq_guard_init(&g, "allowlist", "/nonexistent/classes", err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(strstr(err, "cannot open /nonexistent/classes") != NULL);
    CHECK(gq_guard_init(&g, "allowlist", " , ", err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "lists no node class") != NULL);
    CHECK(gq_guard_init(&g, "off", NULL, err, sizeof(err)) == GQ_OK);
    CHECK(g.inline_mode == GQ_INLINE_OFF);
    gq_guard_release(&g);
}

static void test_inline_modes(void) {
    char err[512];
    gq_guard_t allow, list, off;
    CHECK(gq_guard_init(&allow, "allow", NULL, err, sizeof(err)) == GQ_OK);
    CHECK(gq_guard_init(&list, "allowlist", "EmptyImage,SaveImage", err, sizeof(err)) == GQ_OK);
    CHECK(gq_guard_init(&off, "off", NULL, err, sizeof(err)) == GQ_OK);
    char *wf = inline_wf("", "\"x\"");
    char *req = inline_req(wf, "");
    gq_admit_t a;

    admit_json(req, &allow, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);

    admit_json(req, &off, &a);
    CHECK(refused(&a, "inline workflows are off on this worker"));
    CHECK(a.decoded && a.job_id[0]);
    gq_admit_release(&a);

    admit_json(req, &list, &a);
    CHECK(refused(&a, "uses node class ImageInvert, not allowed on this worker"));
    gq_admit_release(&a);
    free(req);
    free(wf);

    /* Every class not allowed is named once; a template is not held to the class list. */
    wf = inline_wf(", \"4\": {\"class_type\": \"Evil\", \"inputs\": {}}, \"5\": {\"class_type\": "
                   "\"Evil\", \"inputs\": {}}",
                   "\"x\"");
    req = inline_req(wf, "");
    admit_json(req, &list, &a);
    CHECK(refused(&a, "node classes ImageInvert, Evil, not allowed"));
    gq_admit_release(&a);
    free(req);
    free(wf);
    admit_json("{\"prompt\": \"a fox\", \"workflow\": \"txt2img\"}", &off, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);
    admit_json("{\"prompt\": \"a fox\", \"workflow\": \"txt2img\"}", &list, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);

    /* SaveImageWebsocket becomes a SaveImage before the check, which sees what runs. */
    req = inline_req("{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, "
                     "\"height\": 8, \"batch_size\": 1, \"color\": 0}}, \"2\": {\"class_type\": "
                     "\"SaveImageWebsocket\", \"inputs\": {\"images\": [\"1\", 0]}}}",
                     "");
    admit_json(req, &list, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);
    free(req);

    gq_guard_release(&allow);
    gq_guard_release(&list);
    gq_guard_release(&off);
}

/* genq names the outputs: no override of any filename_prefix, no saving node of its own. */
static void test_prefix(void) {
    const gq_guard_t *g = gq_guard_default(); /* allow: the checks every mode makes */
    CHECK(g->inline_mode == GQ_INLINE_ALLOW);
    gq_admit_t a;
    admit_json("{\"prompt\": \"a fox\", \"workflow\": \"txt2img\", \"overrides\": "
               "{\"9.filename_prefix\": \"\\\"genq/other-job\\\"\"}}",
               g, &a);
    CHECK(refused(&a, "override \"9.filename_prefix\": genq sets every filename_prefix itself"));
    gq_admit_release(&a);
    /* By title, and on a node that is not a saving node (yet). */
    admit_json("{\"prompt\": \"a fox\", \"workflow\": \"txt2img\", \"overrides\": "
               "{\"KSampler.filename_prefix\": \"\\\"../x\\\"\"}}",
               g, &a);
    CHECK(refused(&a, "genq sets every filename_prefix itself"));
    gq_admit_release(&a);
    char *wf = inline_wf("", "\"x\"");
    char *req = inline_req(wf, "\"overrides\": {\"3.filename_prefix\": \"\\\"mine\\\"\"}");
    admit_json(req, g, &a);
    CHECK(refused(&a, "genq sets every filename_prefix itself"));
    gq_admit_release(&a);
    free(req);
    free(wf);

    /* A custom saving node whose prefix comes over a link keeps its own: refused. */
    wf = inline_wf(", \"4\": {\"class_type\": \"PrimitiveString\", \"inputs\": {\"value\": "
                   "\"genq/someone-else\"}}, \"5\": {\"class_type\": \"MySaver\", \"inputs\": "
                   "{\"images\": [\"2\", 0], \"filename_prefix\": [\"4\", 0]}}",
                   "\"x\"");
    req = inline_req(wf, "");
    admit_json(req, g, &a);
    CHECK(refused(&a, "node \"5\" (MySaver) sets its own filename_prefix"));
    gq_admit_release(&a);
    free(req);
    free(wf);

    /* The stock saving node's own prefix is replaced by genq's: admitted, genq's prefix. */
    wf = inline_wf("", "\"ComfyUI\"");
    req = inline_req(wf, "");
    admit_json(req, g, &a);
    CHECK(admitted(&a));
    if (a.workflow) {
        const char *p = json_string_value(json_object_get(
            json_object_get(json_object_get(a.workflow, "3"), "inputs"), "filename_prefix"));
        CHECK(p && strncmp(p, "genq/", 5) == 0 && strcmp(p + 5, a.job_id) == 0);
    }
    gq_admit_release(&a);
    free(req);
    free(wf);
}

/* File inputs stay in ComfyUI's input directory, whatever the mode. */
static void test_paths(void) {
    const gq_guard_t *g = gq_guard_default();
    static const struct {
        const char *cls, *input, *value, *why;
    } bad[] = {
        {"LoadImage", "image", "x.png [output]", "output directory"},
        {"LoadImage", "image", "ComfyUI_00001_.png[output]", "output directory"},
        {"LoadImageMask", "image", "p.png [temp]", "temp directory"},
        {"LoadImage", "image", "../output/genq/x.png", "(..)"},
        {"LoadImage", "image", "a/../../b.png", "(..)"},
        {"LoadImage", "image", "a\\\\..\\\\b.png", "(..)"},
        {"LoadImage", "image", "/etc/passwd", "absolute path"},
        {"LoadImage", "image", "C:/x.png", "absolute path"},
        {"LoadAudio", "audio", "../x.flac", "(..)"},
        {"LoadLatent", "latent", "x.latent [output]", "output directory"},
        {"VHS_LoadVideo", "video", "../../v.mp4", "(..)"},
        {"LoraLoader", "lora_name", "../../secret.safetensors", "(..)"},
        {"SomeNode", "file", "/srv/x", "absolute path"},
    };
    gq_admit_t a;
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        char extra[600];
        snprintf(extra, sizeof(extra),
                 ", \"9\": {\"class_type\": \"%s\", \"inputs\": {\"%s\": \"%s\"}}", bad[i].cls,
                 bad[i].input, bad[i].value);
        char *wf = inline_wf(extra, "\"x\"");
        char *req = inline_req(wf, "");
        admit_json(req, g, &a);
        CHECK(refused(&a, bad[i].why));
        CHECK(strstr(a.message, bad[i].cls) != NULL);
        gq_admit_release(&a);
        free(req);
        free(wf);
    }
    /* Through an override of a template, and inside an object value. */
    admit_json("{\"prompt\": \"a fox\", \"workflow\": \"txt2img\", \"overrides\": "
               "{\"4.ckpt_name\": \"\\\"../../../etc/passwd\\\"\"}}",
               g, &a);
    CHECK(refused(&a, "(..)"));
    gq_admit_release(&a);
    char *wf = inline_wf(", \"9\": {\"class_type\": \"Load3D\", \"inputs\": {\"image\": "
                         "{\"image\": \"a.png\", \"mask\": \"m.png [output]\"}}}",
                         "\"x\"");
    char *req = inline_req(wf, "");
    admit_json(req, g, &a);
    CHECK(refused(&a, "output directory"));
    gq_admit_release(&a);
    free(req);
    free(wf);

    /* What is fine: a file of the input directory, in a subfolder, "[input]"; text that
     * only looks like a path where no file is named (a prompt). */
    wf = inline_wf(", \"9\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": "
                   "\"sub/dir/x..y.png [input]\"}}, \"10\": {\"class_type\": \"CLIPTextEncode\", "
                   "\"inputs\": {\"text\": \"../.. [output]\", \"clip\": [\"1\", 0]}}",
                   "\"x\"");
    req = inline_req(wf, "");
    admit_json(req, g, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);
    free(req);
    free(wf);
}

/* A template's "_genq".overrides says which overrides a request may set. */
static void test_template_overrides(void) {
    char path[300];
    snprintf(path, sizeof(path), "%s/listed.json", tmp_dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"_genq\": {\"overrides\": [\"KSampler.denoise\", \"6.*\"]},"
              " \"3\": {\"class_type\": \"KSampler\", \"_meta\": {\"title\": \"KSampler\"},"
              " \"inputs\": {\"seed\": 5, \"steps\": 20, \"cfg\": 8, \"sampler_name\": \"euler\","
              " \"scheduler\": \"normal\", \"denoise\": 1, \"model\": [\"4\", 0],"
              " \"positive\": [\"6\", 0], \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}},"
              " \"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": "
              "\"a\"}},"
              " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {\"width\": 512,"
              " \"height\": 512, \"batch_size\": 1}},"
              " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"p\","
              " \"clip\": [\"4\", 1]}},"
              " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"n\","
              " \"clip\": [\"4\", 1]}},"
              " \"8\": {\"class_type\": \"VAEDecode\", \"inputs\": {\"samples\": [\"3\", 0],"
              " \"vae\": [\"4\", 2]}},"
              " \"9\": {\"class_type\": \"SaveImage\", \"inputs\": {\"filename_prefix\": \"x\","
              " \"images\": [\"8\", 0]}}}",
              f);
        fclose(f);
    }
    char err[512];
    gq_guard_t allow, list;
    CHECK(gq_guard_init(&allow, "allow", NULL, err, sizeof(err)) == GQ_OK);
    CHECK(gq_guard_init(&list, "allowlist", NULL, err, sizeof(err)) == GQ_OK);
    gq_admit_t a;
    /* Listed: by title or by id, a whole node with ".*"; any mode. */
    static const char *const ok[] = {"\"KSampler.denoise\": \"0.5\"", "\"3.denoise\": \"0.5\"",
                                     "\"6.text\": \"\\\"x\\\"\""};
    for (size_t i = 0; i < GQ_ARRAY_LEN(ok); i++) {
        char req[300];
        snprintf(req, sizeof(req),
                 "{\"prompt\": \"a\", \"workflow\": \"listed\", \"overrides\": {%s}}", ok[i]);
        admit_json(req, &list, &a);
        CHECK(admitted(&a));
        gq_admit_release(&a);
    }
    /* Not listed: refused even under allow (the template says what it takes). */
    admit_json("{\"prompt\": \"a\", \"workflow\": \"listed\", \"overrides\": {\"3.cfg\": \"2\"}}",
               &allow, &a);
    CHECK(refused(&a, "override \"3.cfg\" is not one template \"listed\" allows"));
    gq_admit_release(&a);
    admit_json(
        "{\"prompt\": \"a\", \"workflow\": \"listed\", \"overrides\": {\"nope.denoise\": \"2\"}}",
        &list, &a);
    CHECK(refused(&a, "is not one template \"listed\" allows"));
    gq_admit_release(&a);

    /* A template without the list: any override under allow, none under allowlist or off. */
    admit_json("{\"prompt\": \"a\", \"workflow\": \"txt2img\", \"overrides\": {\"3.cfg\": \"2\"}}",
               &allow, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);
    admit_json("{\"prompt\": \"a\", \"workflow\": \"txt2img\", \"overrides\": {\"3.cfg\": \"2\"}}",
               &list, &a);
    CHECK(refused(&a, "template \"txt2img\" lists no overrides a request may set"));
    gq_admit_release(&a);

    /* An inline workflow's own overrides are the sender's business (the classes are
     * checked after them). */
    gq_guard_t narrow;
    CHECK(gq_guard_init(&narrow, "allowlist", "EmptyImage,SaveImage", err, sizeof(err)) == GQ_OK);
    char *wf = inline_wf("", "\"x\"");
    char *req = inline_req(wf, "\"overrides\": {\"1.width\": \"16\"}");
    admit_json(req, &narrow, &a);
    CHECK(refused(&a, "ImageInvert"));
    gq_admit_release(&a);
    gq_guard_release(&narrow);
    admit_json(req, &allow, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);
    free(req);
    free(wf);

    /* A list entry that names no node is the template's mistake: it does not load. */
    snprintf(path, sizeof(path), "%s/badlist.json", tmp_dir);
    f = fopen(path, "w");
    if (f) {
        fputs("{\"_genq\": {\"overrides\": [\"Nope.denoise\"]}, \"1\": {\"class_type\": "
              "\"EmptyImage\", \"inputs\": {\"width\": 8, \"height\": 8, \"batch_size\": 1, "
              "\"color\": 0}}, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": "
              "{\"filename_prefix\": \"x\", \"images\": [\"1\", 0]}}}",
              f);
        fclose(f);
    }
    admit_json("{\"prompt\": \"\", \"workflow\": \"badlist\"}", &allow, &a);
    CHECK(a.verdict == GQ_ADMIT_FAIL && strcmp(a.code, GQ_CODE_INVALID_WORKFLOW) == 0 &&
          strstr(a.message, "\"Nope.denoise\" names no node") != NULL);
    gq_admit_release(&a);
    snprintf(path, sizeof(path), "%s/badlist2.json", tmp_dir);
    f = fopen(path, "w");
    if (f) {
        fputs("{\"_genq\": {\"overrides\": \"1.width\"}, \"1\": {\"class_type\": "
              "\"EmptyImage\", \"inputs\": {\"width\": 8, \"height\": 8, \"batch_size\": 1, "
              "\"color\": 0}}, \"2\": {\"class_type\": \"SaveImage\", \"inputs\": "
              "{\"filename_prefix\": \"x\", \"images\": [\"1\", 0]}}}",
              f);
        fclose(f);
    }
    admit_json("{\"prompt\": \"\", \"workflow\": \"badlist2\"}", &allow, &a);
    CHECK(a.verdict == GQ_ADMIT_FAIL && strstr(a.message, "must be a list") != NULL);
    gq_admit_release(&a);

    gq_guard_release(&allow);
    gq_guard_release(&list);
}

/* The example template k8s/ ships loads, and takes the override it lists, under allowlist. */
static void test_k8s_template(void) {
    char path[1024];
    if (!check_find_src("k8s/base/workflows/txt2img-hd.json", path, sizeof(path))) {
        fprintf(stderr, "k8s/base/workflows/txt2img-hd.json not found\n");
        CHECK(0);
        return;
    }
    *strrchr(path, '/') = '\0';
    workflows_dir = path;
    char err[256];
    gq_guard_t list;
    CHECK(gq_guard_init(&list, "allowlist", NULL, err, sizeof(err)) == GQ_OK);
    gq_admit_t a;
    admit_json("{\"prompt\": \"a\", \"workflow\": \"txt2img-hd\", \"overrides\": "
               "{\"KSampler.denoise\": \"0.4\"}}",
               &list, &a);
    CHECK(admitted(&a));
    gq_admit_release(&a);
    admit_json("{\"prompt\": \"a\", \"workflow\": \"txt2img-hd\", \"overrides\": "
               "{\"KSampler.steps\": \"400\"}}",
               &list, &a);
    CHECK(refused(&a, "is not one template \"txt2img-hd\" allows"));
    gq_admit_release(&a);
    gq_guard_release(&list);
    workflows_dir = tmp_dir;
}

int main(void) {
    char err[256];
    if (gq_schema_init(err, sizeof(err)) != GQ_OK) {
        fprintf(stderr, "schema: %s\n", err);
        return 1;
    }
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/genq-test-guard.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_init();
    test_inline_modes();
    test_prefix();
    test_paths();
    test_template_overrides();
    test_k8s_template();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    CHECK(system(cmd) == 0);
    return CHECK_DONE("test_guard");
}
