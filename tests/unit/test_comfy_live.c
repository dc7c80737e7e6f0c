/*
 * The ComfyUI client against a live server (tests/comfysim/comfysim.py in the test stack,
 * or a real ComfyUI for the cases that inject no faults). Run by
 * tests/integration/0020-comfy-client.sh; as a unit test (no GENQ_COMFYUI_URL) it skips.
 *
 * Every wait is bounded by a deadline. Prints measured submit-to-DONE latencies on stdout.
 */
#include "comfy/comfy_int.h"
#include "buf.h"
#include "log.h"
#include "util.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 30000

static char ckpt[256];
static const char *base_url;

/* What happened to one prompt on the WebSocket. */
typedef struct seen {
    int events;
    bool start, progress, executed, success, done, interrupted, error;
    bool start_before_done;
    gq_comfy_event_t error_ev;
    int64_t done_ms;
} seen_t;

static json_t *workflow(int steps, const char *text, int size) {
    return json_pack(
        "{s:{s:s,s:{s:s}}, s:{s:s,s:{s:i,s:i,s:i}}, s:{s:s,s:{s:s,s:[s,i]}},"
        " s:{s:s,s:{s:s,s:[s,i]}}, s:{s:s,s:{s:I,s:i,s:f,s:s,s:s,s:f,s:[s,i],"
        "s:[s,i],s:[s,i],s:[s,i]}}, s:{s:s,s:{s:[s,i],s:[s,i]}},"
        " s:{s:s,s:{s:s,s:[s,i]}}}",
        "4", "class_type", "CheckpointLoaderSimple", "inputs", "ckpt_name", ckpt, "5", "class_type",
        "EmptyLatentImage", "inputs", "width", size, "height", size, "batch_size", 1, "6",
        "class_type", "CLIPTextEncode", "inputs", "text", text, "clip", "4", 1, "7", "class_type",
        "CLIPTextEncode", "inputs", "text", "blurry", "clip", "4", 1, "3", "class_type", "KSampler",
        "inputs", "seed", (json_int_t)(gq_random_u64() >> 20), "steps", steps, "cfg", 7.0,
        "sampler_name", "euler", "scheduler", "normal", "denoise", 1.0, "model", "4", 0, "positive",
        "6", 0, "negative", "7", 0, "latent_image", "5", 0, "8", "class_type", "VAEDecode",
        "inputs", "samples", "3", 0, "vae", "4", 2, "9", "class_type", "SaveImage", "inputs",
        "filename_prefix", "live0020", "images", "8", 0);
}

/* Follows the WebSocket until DONE for pid (or until stop_on says so). */
static gq_status_t follow(gq_comfy_t *c, const char *pid, seen_t *s, gq_comfy_ev_type_t stop_on,
                          char *err, size_t err_size) {
    int64_t deadline = gq_mono_ms() + WAIT_MS;
    for (;;) {
        int64_t left = deadline - gq_mono_ms();
        if (left <= 0) {
            gq_errf(err, err_size, "no DONE for %s within %d ms", pid, WAIT_MS);
            return GQ_ERR_TIMEOUT;
        }
        gq_comfy_event_t ev;
        gq_status_t st = gq_comfy_ws_next(c, (int)left, &ev, err, err_size);
        if (st != GQ_OK)
            return st;
        if (strcmp(ev.prompt_id, pid) != 0)
            continue;
        s->events++;
        switch (ev.type) {
        case GQ_COMFY_EV_START: s->start = true; break;
        case GQ_COMFY_EV_PROGRESS: s->progress = true; break;
        case GQ_COMFY_EV_EXECUTED: s->executed = true; break;
        case GQ_COMFY_EV_SUCCESS: s->success = true; break;
        case GQ_COMFY_EV_INTERRUPTED: s->interrupted = true; break;
        case GQ_COMFY_EV_ERROR:
            s->error = true;
            s->error_ev = ev;
            break;
        case GQ_COMFY_EV_DONE:
            s->done = true;
            s->start_before_done = s->start;
            s->done_ms = gq_mono_ms();
            return GQ_OK;
        default: break;
        }
        if (ev.type == stop_on)
            return GQ_OK;
    }
}

static gq_status_t sim_fault(gq_comfy_t *c, const char *spec) {
    gq_buf_t resp;
    gq_buf_init(&resp, 1 << 20);
    long code = 0;
    char err[512];
    gq_status_t st =
        gq_comfy_http_do(c, "POST", "/_sim/faults", NULL, spec, &resp, &code, err, sizeof(err));
    if (st == GQ_OK && code != 200) {
        fprintf(stderr, "POST /_sim/faults %s: HTTP %ld %s\n", spec, code, resp.data);
        st = GQ_ERR;
    }
    gq_buf_release(&resp);
    return st;
}

/* The first checkpoint the server offers (GET /object_info/CheckpointLoaderSimple). */
static gq_status_t find_checkpoint(gq_comfy_t *c) {
    gq_buf_t resp;
    gq_buf_init(&resp, 16 << 20);
    long code = 0;
    char err[512];
    gq_status_t st = gq_comfy_http_do(c, "GET", "/object_info/CheckpointLoaderSimple", NULL, NULL,
                                      &resp, &code, err, sizeof(err));
    json_t *j = st == GQ_OK && code == 200
                    ? gq_comfy_json_parse(resp.data, resp.len, err, sizeof(err))
                    : NULL;
    const json_t *spec = json_object_get(
        json_object_get(json_object_get(json_object_get(j, "CheckpointLoaderSimple"), "input"),
                        "required"),
        "ckpt_name");
    const json_t *list = json_array_get(spec, 0);
    if (!json_is_array(list)) /* V3 style ["COMBO", {"options": [...]}] */
        list = json_object_get(json_array_get(spec, 1), "options");
    const char *name = json_string_value(json_array_get(list, 0));
    st = name ? gq_strlcpy(ckpt, name, sizeof(ckpt)) : GQ_ERR_NOTFOUND;
    if (st != GQ_OK)
        fprintf(stderr, "no checkpoint offered: %s\n", resp.data ? resp.data : err);
    json_decref(j);
    gq_buf_release(&resp);
    return st;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One full prompt: WS events, history, /view of the PNG. Returns submit-to-DONE ms. */
static int64_t run_success(gq_comfy_t *c, int steps, bool check_png) {
    char pid[37], err[1024];
    gq_uuid_v4(pid);
    json_t *wf = workflow(steps, "a red cube", 64);
    int64_t t0 = gq_mono_ms();
    gq_status_t st = gq_comfy_submit(c, pid, wf, err, sizeof(err));
    json_decref(wf);
    CHECK_INT(st, GQ_OK);
    if (st != GQ_OK) {
        fprintf(stderr, "submit: %s\n", err);
        return -1;
    }
    seen_t s = {0};
    st = follow(c, pid, &s, GQ_COMFY_EV_DONE, err, sizeof(err));
    CHECK_INT(st, GQ_OK);
    if (st != GQ_OK)
        fprintf(stderr, "follow %s: %s\n", pid, err);
    CHECK(s.done && s.start_before_done && s.success && !s.error);
    if (!check_png)
        return s.done ? s.done_ms - t0 : -1;
    CHECK(s.progress && s.executed);

    gq_comfy_state_t state;
    gq_comfy_result_t r = {0};
    CHECK(gq_comfy_prompt_state(c, pid, &state, &r, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_FINISHED);
    CHECK(r.success && !r.interrupted && r.images_cnt == 1);
    CHECK(r.start_ms > 0 && r.end_ms >= r.start_ms);
    if (r.images_cnt >= 1) {
        CHECK_STR(r.images[0].node, "9");
        CHECK_STR(r.images[0].type, "output");
        CHECK(strncmp(r.images[0].filename, "live0020_", 9) == 0);
        gq_buf_t png;
        gq_buf_init(&png, 16 << 20);
        st = gq_comfy_view(c, &r.images[0], &png, err, sizeof(err));
        CHECK_INT(st, GQ_OK);
        CHECK(png.len > 24 && memcmp(png.data, "\x89PNG\r\n\x1a\n", 8) == 0);
        CHECK(png.len > 24 && memcmp(png.data + 12, "IHDR", 4) == 0 &&
              memcmp(png.data + 16, "\x00\x00\x00\x40\x00\x00\x00\x40", 8) == 0);
        /* A buffer too small for the image. */
        gq_buf_t tiny;
        gq_buf_init(&tiny, 16);
        CHECK(gq_comfy_view(c, &r.images[0], &tiny, err, sizeof(err)) == GQ_ERR_TOOBIG);
        CHECK_INT(tiny.len, 0);
        gq_buf_release(&tiny);
        /* A missing file, and a name that needs escaping. */
        gq_comfy_image_t missing = r.images[0];
        gq_strlcpy(missing.filename, "no such file &type=x%.png", sizeof(missing.filename));
        CHECK(gq_comfy_view(c, &missing, &png, err, sizeof(err)) == GQ_ERR_NOTFOUND);
        CHECK_INT(png.len, 0);
        gq_strlcpy(missing.filename, "../etc/passwd", sizeof(missing.filename));
        CHECK(gq_comfy_view(c, &missing, &png, err, sizeof(err)) == GQ_ERR_INVALID);
        gq_buf_release(&png);
    }
    gq_comfy_result_release(&r);
    return s.done ? s.done_ms - t0 : -1;
}

static void test_success_and_latency(gq_comfy_t *c) {
    run_success(c, 3, true);
    enum { N = 20 };
    int64_t ms[N];
    int ok = 0;
    for (int i = 0; i < N; i++) {
        int64_t v = run_success(c, 1, false);
        if (v >= 0)
            ms[ok++] = v;
    }
    CHECK_INT(ok, N);
    if (ok > 0) {
        qsort(ms, (size_t)ok, sizeof(ms[0]), cmp_i64);
        printf("latency submit->DONE, 1-step 64x64 prompt, %d runs: min %lld ms, median %lld ms, "
               "p95 %lld ms, max %lld ms\n",
               ok, (long long)ms[0], (long long)ms[ok / 2], (long long)ms[(ok * 95) / 100],
               (long long)ms[ok - 1]);
    }
}

static void test_rejected(gq_comfy_t *c) {
    char pid[37], err[1024];
    gq_uuid_v4(pid);
    json_t *wf = workflow(0, "a cat", 64);
    gq_status_t st = gq_comfy_submit(c, pid, wf, err, sizeof(err));
    CHECK_INT(st, GQ_ERR_INVALID);
    CHECK(strstr(err, "steps") != NULL);
    CHECK(strstr(err, "node 3 (KSampler): Value 0 smaller than min of 1: steps") != NULL);
    fprintf(stderr, "400 errstr: %s\n", err);
    json_decref(wf);
    gq_comfy_state_t state;
    CHECK(gq_comfy_prompt_state(c, pid, &state, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_UNKNOWN);

    /* unknown checkpoint */
    wf = workflow(2, "a cat", 64);
    json_object_set_new(json_object_get(json_object_get(wf, "4"), "inputs"), "ckpt_name",
                        json_string("nope.safetensors"));
    gq_uuid_v4(pid);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: "
                      "'nope.safetensors' not in") != NULL);
    json_decref(wf);

    /* checked before sending: not a uuid, UI format */
    wf = workflow(2, "a cat", 64);
    CHECK(gq_comfy_submit(c, "NOT-A-UUID", wf, err, sizeof(err)) == GQ_ERR_INVALID);
    json_decref(wf);
    wf = json_pack("{s:[], s:[], s:i}", "nodes", "links", "version", 1);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "UI format") != NULL);
    json_decref(wf);
}

/* 200 with node_errors: ComfyUI queued it, the client must take it back. */
static void test_partially_valid(gq_comfy_t *c) {
    char pid[37], err[1024];
    gq_uuid_v4(pid);
    json_t *wf = workflow(400, "a cat", 64);
    json_object_set_new(wf, "11", json_pack("{s:s,s:{}}", "class_type", "PreviewImage", "inputs"));
    gq_status_t st = gq_comfy_submit(c, pid, wf, err, sizeof(err));
    json_decref(wf);
    CHECK_INT(st, GQ_ERR_INVALID);
    CHECK(strstr(err, "node 11 (PreviewImage): Required input is missing: images") != NULL);
    fprintf(stderr, "200+node_errors errstr: %s\n", err);
    /* Removed from the queue, or interrupted if it had started already. */
    int64_t deadline = gq_mono_ms() + WAIT_MS;
    gq_comfy_state_t state = GQ_COMFY_RUNNING;
    gq_comfy_result_t r = {0};
    while (gq_mono_ms() < deadline) {
        gq_status_t rc = gq_comfy_prompt_state(c, pid, &state, &r, err, sizeof(err));
        CHECK_INT(rc, GQ_OK);
        if (rc != GQ_OK || state == GQ_COMFY_UNKNOWN || state == GQ_COMFY_FINISHED)
            break;
        gq_sleep_ms(20);
    }
    CHECK(state == GQ_COMFY_UNKNOWN || (state == GQ_COMFY_FINISHED && r.interrupted));
    gq_comfy_result_release(&r);
}

static void test_oom(gq_comfy_t *c) {
    char pid[37], err[1024];
    gq_uuid_v4(pid);
    json_t *wf = workflow(4, "a cat [[sim:oom]]", 64);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_OK);
    json_decref(wf);
    seen_t s = {0};
    CHECK(follow(c, pid, &s, GQ_COMFY_EV_DONE, err, sizeof(err)) == GQ_OK);
    CHECK(s.error && s.done && !s.success);
    CHECK_STR(s.error_ev.exception_type, "torch.OutOfMemoryError");
    CHECK_STR(s.error_ev.node_type, "KSampler");
    CHECK(strstr(s.error_ev.exception_message, "out of memory") != NULL);
    gq_comfy_result_t r = {0};
    CHECK(gq_comfy_history(c, pid, &r, err, sizeof(err)) == GQ_OK);
    CHECK(!r.success && !r.interrupted);
    CHECK_STR(r.error_type, "torch.OutOfMemoryError");
    CHECK_STR(r.error_node, "3");
    gq_comfy_result_release(&r);
}

/* A hanging prompt: RUNNING, a second one PENDING then dequeued, then an interrupt. */
static void test_hang_interrupt(gq_comfy_t *c) {
    char pid[37], pid2[37], err[1024];
    gq_uuid_v4(pid);
    gq_uuid_v4(pid2);
    json_t *wf = workflow(10, "a cat [[sim:hang]]", 64);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_OK);
    json_decref(wf);
    seen_t s = {0};
    CHECK(follow(c, pid, &s, GQ_COMFY_EV_PROGRESS, err, sizeof(err)) == GQ_OK);
    gq_comfy_state_t state;
    CHECK(gq_comfy_prompt_state(c, pid, &state, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_RUNNING);

    wf = workflow(2, "a dog", 64);
    CHECK(gq_comfy_submit(c, pid2, wf, err, sizeof(err)) == GQ_OK);
    json_decref(wf);
    CHECK(gq_comfy_prompt_state(c, pid2, &state, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_PENDING);
    CHECK(gq_comfy_dequeue(c, pid2, err, sizeof(err)) == GQ_OK);
    CHECK(gq_comfy_prompt_state(c, pid2, &state, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_UNKNOWN);

    /* An interrupt for another prompt id must not touch the running one. */
    CHECK(gq_comfy_interrupt(c, pid2, err, sizeof(err)) == GQ_OK);
    int64_t until = gq_mono_ms() + 200;
    while (gq_mono_ms() < until) {
        gq_comfy_event_t ev;
        gq_status_t st = gq_comfy_ws_next(c, 50, &ev, err, sizeof(err));
        if (st == GQ_ERR_TIMEOUT)
            continue;
        CHECK_INT(st, GQ_OK);
        if (st != GQ_OK)
            break;
        CHECK(!(ev.type == GQ_COMFY_EV_INTERRUPTED && strcmp(ev.prompt_id, pid) == 0));
    }

    CHECK(gq_comfy_interrupt(c, pid, err, sizeof(err)) == GQ_OK);
    CHECK(follow(c, pid, &s, GQ_COMFY_EV_DONE, err, sizeof(err)) == GQ_OK);
    CHECK(s.interrupted && s.done && !s.success && !s.error);
    gq_comfy_result_t r = {0};
    CHECK(gq_comfy_prompt_state(c, pid, &state, &r, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_FINISHED);
    CHECK(!r.success && r.interrupted);
    CHECK_STR(r.error_node_type, "KSampler");
    gq_comfy_result_release(&r);
}

/* The server drops the WebSocket mid-prompt: TRANSIENT, reconnect, history has the result. */
static void test_drop_ws(gq_comfy_t *c, const char *mode) {
    char pid[37], err[1024], text[128];
    gq_uuid_v4(pid);
    snprintf(text, sizeof(text), "a cat [[sim:drop_ws:mode=%s;step=3]]", mode);
    json_t *wf = workflow(20, text, 64);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_OK);
    json_decref(wf);
    seen_t s = {0};
    gq_status_t st = follow(c, pid, &s, GQ_COMFY_EV_DONE, err, sizeof(err));
    CHECK_INT(st, GQ_ERR_TRANSIENT);
    CHECK(!gq_comfy_ws_connected(c));
    fprintf(stderr, "drop_ws (%s): %s\n", mode, err);
    if (strcmp(mode, "close") == 0)
        CHECK(strstr(err, "code 1001") != NULL);
    CHECK(gq_comfy_ws_next(c, 10, &(gq_comfy_event_t){0}, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_OK);
    CHECK(gq_comfy_ws_connected(c));
    /* Events after the reconnect still come to us; either way the history has the result. */
    int64_t deadline = gq_mono_ms() + WAIT_MS;
    gq_comfy_state_t state = GQ_COMFY_UNKNOWN;
    gq_comfy_result_t r = {0};
    while (gq_mono_ms() < deadline) {
        gq_status_t rc = gq_comfy_prompt_state(c, pid, &state, &r, err, sizeof(err));
        CHECK_INT(rc, GQ_OK);
        if (rc != GQ_OK || state == GQ_COMFY_FINISHED)
            break;
        gq_sleep_ms(20);
    }
    CHECK_INT(state, GQ_COMFY_FINISHED);
    CHECK(r.success && r.images_cnt == 1);
    gq_comfy_result_release(&r);
    /* and the new connection works */
    run_success(c, 1, false);
}

static void test_faults_and_unknown(gq_comfy_t *c) {
    char err[1024];
    gq_comfy_state_t state = GQ_COMFY_RUNNING;
    char pid[37];
    gq_uuid_v4(pid);
    CHECK(gq_comfy_prompt_state(c, pid, &state, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_UNKNOWN);
    CHECK(gq_comfy_history(c, pid, NULL, err, sizeof(err)) == GQ_ERR_NOTFOUND);

    gq_comfy_stats_t st;
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_OK);
    CHECK(st.version[0] && st.vram_total > 0 && st.vram_free > 0 && st.device[0]);
    CHECK(sim_fault(c, "{\"fault\": \"http500\", \"count\": 1, \"route\": \"/system_stats\"}") ==
          GQ_OK);
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "HTTP 500") != NULL);
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_OK);
    CHECK(gq_comfy_free(c, true, false, err, sizeof(err)) == GQ_OK);

    /* a slow /view runs into the request timeout */
    gq_comfy_opts_t o = {
        .base_url = base_url, .request_timeout_ms = 300, .ca_file = getenv("GENQ_COMFYUI_CA_FILE")};
    gq_comfy_t *slow = gq_comfy_new(&o, err, sizeof(err));
    CHECK(slow != NULL);
    if (slow) {
        CHECK(sim_fault(c, "{\"fault\": \"view_delay\", \"count\": 1, \"ms\": 2000}") == GQ_OK);
        gq_comfy_image_t img = {.filename = "x.png", .type = "output"};
        gq_buf_t b;
        gq_buf_init(&b, 1024);
        int64_t t0 = gq_mono_ms();
        CHECK(gq_comfy_view(slow, &img, &b, err, sizeof(err)) == GQ_ERR_TRANSIENT);
        CHECK(gq_mono_ms() - t0 < 1500);
        gq_buf_release(&b);
        gq_comfy_destroy(slow);
    }

    /* nothing listens: refused */
    o = (gq_comfy_opts_t){.base_url = "http://127.0.0.1:1/", .connect_timeout_ms = 1000};
    gq_comfy_t *dead = gq_comfy_new(&o, err, sizeof(err));
    CHECK(dead != NULL);
    if (dead) {
        CHECK(gq_comfy_system_stats(dead, &st, err, sizeof(err)) == GQ_ERR_TRANSIENT);
        CHECK(gq_comfy_ws_connect(dead, err, sizeof(err)) == GQ_ERR_TRANSIENT);
        CHECK(!gq_comfy_ws_connected(dead));
        gq_comfy_destroy(dead);
    }
    /* the /api prefix works too, and a wrong prefix is a clear 404 */
    char api[GQ_COMFY_URL_MAX];
    snprintf(api, sizeof(api), "%s/api/", base_url);
    o = (gq_comfy_opts_t){.base_url = api, .ca_file = getenv("GENQ_COMFYUI_CA_FILE")};
    gq_comfy_t *pre = gq_comfy_new(&o, err, sizeof(err));
    CHECK(pre != NULL);
    if (pre) {
        CHECK(gq_comfy_system_stats(pre, &st, err, sizeof(err)) == GQ_OK);
        CHECK(gq_comfy_ws_connect(pre, err, sizeof(err)) == GQ_OK);
        gq_comfy_event_t ev;
        CHECK(gq_comfy_ws_next(pre, WAIT_MS, &ev, err, sizeof(err)) == GQ_OK);
        CHECK_INT(ev.type, GQ_COMFY_EV_STATUS);
        gq_comfy_destroy(pre);
    }
    snprintf(api, sizeof(api), "%s/nothing/here", base_url);
    o = (gq_comfy_opts_t){.base_url = api, .ca_file = getenv("GENQ_COMFYUI_CA_FILE")};
    pre = gq_comfy_new(&o, err, sizeof(err));
    if (pre) {
        CHECK(gq_comfy_system_stats(pre, &st, err, sizeof(err)) == GQ_ERR_NOTFOUND);
        CHECK(gq_comfy_ws_connect(pre, err, sizeof(err)) == GQ_ERR_INVALID);
        CHECK(strstr(err, "404") != NULL);
        gq_comfy_destroy(pre);
    }
}

int main(void) {
    base_url = getenv("GENQ_COMFYUI_URL");
    if (!base_url || !*base_url)
        return CHECK_SKIPPED("test_comfy_live", "GENQ_COMFYUI_URL not set");
    gq_log_init("test_comfy_live");
    char err[1024];
    /* GENQ_COMFYUI_CA_FILE: for an https URL with a private CA (a TLS proxy in front). */
    gq_comfy_opts_t opts = {.base_url = base_url,
                            .request_timeout_ms = 10000,
                            .ca_file = getenv("GENQ_COMFYUI_CA_FILE")};
    gq_comfy_t *c = gq_comfy_new(&opts, err, sizeof(err));
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "gq_comfy_new: %s\n", err);
        return CHECK_DONE("test_comfy_live");
    }
    CHECK(find_checkpoint(c) == GQ_OK);
    gq_status_t st = gq_comfy_ws_connect(c, err, sizeof(err));
    CHECK_INT(st, GQ_OK);
    if (st != GQ_OK || !ckpt[0]) {
        /* Nothing else can work: one clear failure instead of thousands. */
        fprintf(stderr, "cannot start against %s: %s\n", base_url, err);
        gq_comfy_destroy(c);
        return CHECK_DONE("test_comfy_live");
    }
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_OK);
    gq_comfy_event_t ev;
    /* The greeting: a status message on every new connection. */
    CHECK(gq_comfy_ws_next(c, WAIT_MS, &ev, err, sizeof(err)) == GQ_OK);
    CHECK_INT(ev.type, GQ_COMFY_EV_STATUS);
    CHECK(gq_comfy_ws_next(c, 0, &ev, err, sizeof(err)) == GQ_ERR_TIMEOUT);

    test_success_and_latency(c);
    test_rejected(c);
    test_partially_valid(c);
    test_oom(c);
    test_hang_interrupt(c);
    test_drop_ws(c, "abort");
    test_drop_ws(c, "close");
    test_faults_and_unknown(c);
    gq_comfy_destroy(c);
    return CHECK_DONE("test_comfy_live");
}
