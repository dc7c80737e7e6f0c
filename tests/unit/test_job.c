/*
 * The job state machine (consumers/worker/job.c) without Kafka, PostgreSQL or ComfyUI:
 * made-up events in, states and actions out. First every state against every event, then
 * the stories that matter: the races, adoption, deadlines, cancels, stops.
 */
#include "worker/job.h"
#include "avro_check.h"
#include "util.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gq_admit_cfg_t test_admit = {"/nonexistent", 600, 3};
static int64_t now_mono = 1000000, now_wall = INT64_C(1763820000000);

static const char *test_cache_salt; /* NULL: the cache is off */
static int64_t test_seed;

static job_env_t env(void) {
    job_env_t e = {.cache_salt = test_cache_salt,
                   .now_mono = now_mono,
                   .now_wall = now_wall,
                   .admit = &test_admit,
                   .worker_id = "w-test",
                   .stall_timeout_ms = 120000,
                   .quiet_ms = 3000,
                   .check_ms = 2000,
                   .ws_up = true,
                   .max_output_bytes = 1 << 20};
    return e;
}

static void advance(int64_t ms) {
    now_mono += ms;
    now_wall += ms;
}

/* A valid request, encoded as a producer would. */
static job_t *job_make(void) {
    gq_request_t req;
    gq_request_init(&req);
    free(req.prompt);
    req.prompt = strdup("a test");
    req.width = req.height = 64;
    req.steps = 2;
    req.seed = test_seed;
    req.submitted_at = now_wall - 50;
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    char err[256];
    CHECK(gq_request_encode(&req, &b, err, sizeof(err)) == GQ_OK);
    static uint64_t serial;
    serial++;
    job_t *j =
        job_new(serial, 0, 0, 100 + (int64_t)serial, b.data, b.len, req.job_id, 36, now_wall);
    gq_buf_release(&b);
    gq_request_release(&req);
    return j;
}

static bool has_act(const job_acts_t *a, job_act_t x) {
    for (int i = 0; i < a->n; i++)
        if (a->a[i] == x)
            return true;
    return false;
}

static job_acts_t step(job_t *j, job_ev_t ev) {
    job_acts_t acts = {.n = 0};
    job_env_t e = env();
    job_step(j, &ev, &e, &acts);
    return acts;
}

static job_acts_t ev0(job_t *j, job_ev_type_t t) { return step(j, (job_ev_t){.type = t}); }

static gq_comfy_result_t result_ok(void) {
    gq_comfy_result_t r = {0};
    r.success = true;
    r.images = calloc(2, sizeof(*r.images));
    r.images_cnt = 2;
    gq_strlcpy(r.images[0].filename, "genq_00001_.png", sizeof(r.images[0].filename));
    gq_strlcpy(r.images[0].type, "output", sizeof(r.images[0].type));
    gq_strlcpy(r.images[1].filename, "preview.png", sizeof(r.images[1].filename));
    gq_strlcpy(r.images[1].type, "temp", sizeof(r.images[1].type));
    return r;
}

static job_acts_t begun(job_t *j, gq_rec_outcome_t o, int32_t attempt, const char *prev) {
    gq_rec_begun_t b = {o, attempt, "", now_wall - 5000};
    if (prev)
        gq_strlcpy(b.prev_prompt_id, prev, sizeof(b.prev_prompt_id));
    return step(j, (job_ev_t){.type = JEV_BEGUN, .status = GQ_OK, .begun = &b});
}

static job_acts_t state_is(job_t *j, gq_comfy_state_t st, gq_comfy_result_t *res) {
    return step(
        j,
        (job_ev_t){.type = JEV_STATE, .status = GQ_OK, .ask = j->ask, .state = st, .result = res});
}

static job_acts_t comfy_ev(job_t *j, gq_comfy_ev_type_t t) {
    gq_comfy_event_t ce = {.type = t};
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    ce.value = 1;
    ce.max = 2;
    return step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
}

static job_acts_t output_ok(job_t *j, int idx) {
    gq_stored_t s = {.mime = "image/png", .width = 64, .height = 64, .bytes = 10};
    gq_strlcpy(s.uri, "file:///out/x.png", sizeof(s.uri));
    gq_strlcpy(s.sha256, "ab", sizeof(s.sha256));
    return step(j, (job_ev_t){.type = JEV_OUTPUT, .status = GQ_OK, .idx = idx, .stored = &s});
}

/* A cancel request for the job (source NULL: whatever its source). */
static job_acts_t cancel_req(job_t *j, const char *source, const char *by, const char *reason) {
    gq_cancel_t c = {.requested_at = now_wall,
                     .reason = (char *)reason,
                     .requested_by = (char *)by,
                     .source = (char *)source};
    gq_strlcpy(c.job_id, j->job_id[0] ? j->job_id : j->key_id, sizeof(c.job_id));
    return step(j, (job_ev_t){.type = JEV_CANCEL_REQ, .cancel = &c});
}

/* ---- a job brought to each state, by the path a real one takes ---- */

static job_t *job_in(job_state_t s) {
    job_t *j = job_make();
    if (s == JOB_NEW)
        return j;
    ev0(j, JEV_ADMIT);
    if (s == JOB_READY)
        return j;
    ev0(j, JEV_SLOT);
    if (s == JOB_BEGIN)
        return j;
    if (s == JOB_PROBE) {
        char prev[37];
        gq_uuid_v4(prev);
        begun(j, GQ_REC_PROBE, 1, prev);
        return j;
    }
    begun(j, GQ_REC_BEGUN, 1, NULL);
    if (s == JOB_SUBMIT)
        return j;
    step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_OK});
    if (s == JOB_QUEUED)
        return j;
    comfy_ev(j, GQ_COMFY_EV_START);
    if (s == JOB_RUNNING)
        return j;
    if (s == JOB_CANCEL) {
        ev0(j, JEV_REVOKE);
        return j;
    }
    if (s == JOB_BACKOFF) {
        comfy_ev(j, GQ_COMFY_EV_INTERRUPTED);
        return j;
    }
    comfy_ev(j, GQ_COMFY_EV_DONE);
    if (s == JOB_COLLECT)
        return j;
    gq_comfy_result_t r = result_ok();
    step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    output_ok(j, 0);
    if (s == JOB_RECORD)
        return j;
    step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    return j;
}

/* A default event of each type, as plausible as possible for a job in any state. */
static job_acts_t any_event(job_t *j, job_ev_type_t t) {
    switch (t) {
    case JEV_BEGUN: return begun(j, GQ_REC_BEGUN, 1, NULL);
    case JEV_STATE: return state_is(j, GQ_COMFY_RUNNING, NULL);
    case JEV_HISTORY: {
        gq_comfy_result_t r = result_ok();
        job_acts_t a =
            step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
        gq_comfy_result_release(&r);
        return a;
    }
    case JEV_COMFY: return comfy_ev(j, GQ_COMFY_EV_PROGRESS);
    case JEV_OUTPUT: return output_ok(j, 0);
    case JEV_CANCEL_REQ: return cancel_req(j, NULL, "ops", "wrong prompt");
    default: return step(j, (job_ev_t){.type = t, .status = GQ_OK});
    }
}

/* Every state × every event: where it goes (or stays). */
static void test_table(void) {
    static const job_state_t S = JOB_STATES; /* "stays where it was" */
    enum { E = JEV_CANCEL_REQ + 1 };
    /* rows: states in job.h order; columns: events in job.h order */
    static const job_state_t want[JOB_STATES][E] = {
        /*             ADMIT      SLOT       BEGUN       SUBMITTED    STATE        HISTORY
                       COMFY      CANCELLED  OUTPUT      RECORDED     TICK         REVOKE
                       STOP       GRACE      CANCEL_REQ */
        [JOB_NEW] = {JOB_READY, S, S, S, S, S, S, S, S, S, S, JOB_DONE, JOB_DONE, S, S},
        [JOB_READY] = {S, JOB_BEGIN, S, S, S, S, S, S, S, S, S, JOB_DONE, JOB_DONE, S, JOB_RECORD},
        [JOB_BEGIN] = {S, S, JOB_SUBMIT, S, S, S, S, S, S, S, S, S, S, S, S},
        [JOB_PROBE] = {S, S, S, S, JOB_RUNNING, S, S, S, S, S, S, S, S, S, JOB_CANCEL},
        [JOB_SUBMIT] = {S, S, S, JOB_QUEUED, S, S, JOB_RUNNING, S, S, S, S, S, S, S, JOB_CANCEL},
        [JOB_QUEUED] = {S, S, S, S, S, S, JOB_RUNNING, S, S, S, S, JOB_CANCEL, JOB_CANCEL,
                        JOB_CANCEL, JOB_CANCEL},
        [JOB_RUNNING] = {S, S, S, S, S, S, S, S, S, S, S, JOB_CANCEL, S, JOB_CANCEL, JOB_CANCEL},
        [JOB_COLLECT] = {S, S, S, S, S, S, S, S, S, S, S, S, S, S, S},
        [JOB_BACKOFF] = {S, S, S, S, S, S, S, S, S, S, S, JOB_DONE, JOB_DONE, S, JOB_RECORD},
        [JOB_CANCEL] = {S, S, S, S, S, S, S, S, S, S, S, S, S, S, S},
        [JOB_RECORD] = {S, S, S, S, S, S, S, S, S, JOB_DONE, S, S, S, S, S},
        [JOB_DONE] = {S, S, S, S, S, S, S, S, S, S, S, S, S, S, S},
    };
    int checked = 0;
    for (int s = 0; s < JOB_STATES; s++) {
        for (int e = 0; e < E; e++) {
            job_t *j = job_in((job_state_t)s);
            if (j->state != (job_state_t)s) {
                fprintf(stderr, "FAIL: could not bring a job to %s (it is %s)\n",
                        job_state_name((job_state_t)s), job_state_name(j->state));
                CHECK(j->state == (job_state_t)s);
                job_free(j);
                continue;
            }
            job_acts_t a = any_event(j, (job_ev_type_t)e);
            job_state_t expect = want[s][e] == S ? (job_state_t)s : want[s][e];
            if (j->state != expect)
                fprintf(stderr, "FAIL: %s + event %d -> %s, expected %s\n",
                        job_state_name((job_state_t)s), e, job_state_name(j->state),
                        job_state_name(expect));
            CHECK(j->state == expect);
            /* A job that is over asks for nothing more but the record of a failed attempt,
             * or (recorded) the sweep of ComfyUI's copies, which needs no answer. */
            if (j->state == JOB_DONE && s != JOB_DONE)
                for (int i = 0; i < a.n; i++)
                    CHECK(a.a[i] == JACT_FAIL_ATTEMPT ||
                          (a.a[i] == JACT_SWEEP && s == JOB_RECORD && e == JEV_RECORDED));
            if (s == JOB_DONE)
                CHECK_INT(a.n, 0);
            /* Entering CANCEL always sends the cancel. */
            if (j->state == JOB_CANCEL && s != JOB_CANCEL)
                CHECK(has_act(&a, JACT_CANCEL));
            /* A cancel request never renders: no attempt begun, nothing submitted; where it
             * ends the job at once, the record is a cancellation. */
            if (e == JEV_CANCEL_REQ) {
                CHECK(!has_act(&a, JACT_SUBMIT) && !has_act(&a, JACT_BEGIN));
                if (j->state == JOB_RECORD && s != JOB_RECORD)
                    CHECK(j->cancelled && has_act(&a, JACT_RECORD) &&
                          strcmp(j->done.error_code, "cancelled") == 0);
                if (j->state == JOB_CANCEL && s != JOB_CANCEL)
                    CHECK(j->then == JOB_THEN_CANCELLED);
            }
            checked++;
            job_free(j);
        }
    }
    CHECK_INT(checked, JOB_STATES * E);
}

/* ---- stories ---- */

/* The old use after free: the attempt turns out to be finished elsewhere while the job asks
 * for its slot. It ends DONE with nothing else to do, and stays a valid object. */
static void test_finished_elsewhere(void) {
    job_t *j = job_in(JOB_BEGIN);
    job_acts_t a = begun(j, GQ_REC_TERMINAL, 2, NULL);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_FINISHED);
    CHECK_INT(a.n, 0);
    /* Late events (a stray answer) change nothing. */
    a = any_event(j, JEV_SUBMITTED);
    CHECK(j->state == JOB_DONE && a.n == 0);
    job_free(j);
}

static void test_happy_path(void) {
    job_t *j = job_make();
    job_acts_t a = ev0(j, JEV_ADMIT);
    CHECK(j->state == JOB_READY && a.n == 0 && j->workflow != NULL);
    a = ev0(j, JEV_SLOT);
    CHECK(j->state == JOB_BEGIN && has_act(&a, JACT_BEGIN) && gq_uuid_valid(j->prompt_id));
    a = begun(j, GQ_REC_BEGUN, 1, NULL);
    CHECK(j->state == JOB_SUBMIT && has_act(&a, JACT_SUBMIT) && j->attempt == 1);
    step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_OK});
    CHECK(j->state == JOB_QUEUED && j->wake_mono != INT64_MAX);
    advance(40);
    comfy_ev(j, GQ_COMFY_EV_START);
    CHECK(j->state == JOB_RUNNING && j->started_at == now_wall);
    advance(100);
    a = comfy_ev(j, GQ_COMFY_EV_DONE);
    CHECK(j->state == JOB_COLLECT && has_act(&a, JACT_HISTORY));
    gq_comfy_result_t r = result_ok();
    a = step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    /* One output: the preview is not a result. */
    CHECK(has_act(&a, JACT_FETCH) && j->fetching == 1 && j->done.outputs_cnt == 1);
    a = output_ok(j, 0);
    CHECK(j->state == JOB_RECORD && has_act(&a, JACT_RECORD));
    CHECK(j->done.status == GQ_JOB_SUCCEEDED && j->done.render_ms == 100);
    CHECK(j->done.queue_ms + j->done.render_ms <= j->done.total_ms);
    /* Only once the record is committed: ComfyUI's copies (output and preview) go. */
    CHECK(!has_act(&a, JACT_SWEEP));
    a = step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_ERR_TRANSIENT, .errstr = "down"});
    CHECK(j->state == JOB_RECORD && !has_act(&a, JACT_SWEEP));
    a = step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    CHECK(j->state == JOB_DONE && j->end == JOB_END_FINISHED);
    CHECK(has_act(&a, JACT_SWEEP) && j->result.images_cnt == 2);
    job_free(j);
}

/* The adopted prompt of a crashed worker, queued and then running, in silence longer than
 * stall_timeout: followed through /queue, never interrupted, recorded once it ends. */
static void test_adopt_long_render(void) {
    job_t *j = job_in(JOB_BEGIN);
    j->timeout_s = 3600;
    char prev[37];
    gq_uuid_v4(prev);
    job_acts_t a = begun(j, GQ_REC_PROBE, 1, prev);
    CHECK(j->state == JOB_PROBE && has_act(&a, JACT_STATE));
    CHECK_STR(j->prompt_id, prev);
    a = state_is(j, GQ_COMFY_PENDING, NULL);
    CHECK(j->state == JOB_QUEUED && j->adopted && has_act(&a, JACT_ADOPT));
    /* Another worker's client id: no events ever come. Ten minutes of cross-checks. */
    int stalls = 0;
    for (int t = 0; t < 300 && j->state != JOB_CANCEL; t++) {
        advance(2000);
        j->wake_mono = INT64_MAX;
        a = ev0(j, JEV_TICK);
        if (has_act(&a, JACT_STATE))
            state_is(j, t < 2 ? GQ_COMFY_PENDING : GQ_COMFY_RUNNING, NULL);
        stalls += j->state == JOB_CANCEL;
    }
    CHECK_INT(stalls, 0);
    CHECK(j->state == JOB_RUNNING);
    advance(3000);
    j->wake_mono = INT64_MAX;
    a = ev0(j, JEV_TICK);
    CHECK(has_act(&a, JACT_STATE));
    gq_comfy_result_t r = result_ok();
    r.start_ms = now_wall - 500000;
    r.end_ms = now_wall - 10;
    a = state_is(j, GQ_COMFY_FINISHED, &r);
    gq_comfy_result_release(&r);
    CHECK(j->state == JOB_COLLECT && has_act(&a, JACT_FETCH));
    output_ok(j, 0);
    CHECK(j->state == JOB_RECORD && j->done.attempt == 1);
    job_free(j);
}

/* Adopted while running, when its own client id brings the events again. */
static void test_adopt_running(void) {
    job_t *j = job_in(JOB_BEGIN);
    char prev[37];
    gq_uuid_v4(prev);
    begun(j, GQ_REC_PROBE, 2, prev);
    state_is(j, GQ_COMFY_RUNNING, NULL);
    CHECK(j->state == JOB_RUNNING && j->adopted && j->attempt == 2);
    job_acts_t a = comfy_ev(j, GQ_COMFY_EV_DONE);
    CHECK(j->state == JOB_COLLECT && has_act(&a, JACT_HISTORY));
    job_free(j);
}

/* The earlier prompt is gone: a new attempt, with a new prompt id. */
static void test_probe_gone(void) {
    job_t *j = job_in(JOB_BEGIN);
    char prev[37];
    gq_uuid_v4(prev);
    begun(j, GQ_REC_PROBE, 1, prev);
    job_acts_t a = state_is(j, GQ_COMFY_UNKNOWN, NULL);
    CHECK(j->state == JOB_BEGIN && has_act(&a, JACT_BEGIN_FORCE));
    CHECK(strcmp(j->prompt_id, prev) != 0);
    job_free(j);
}

/* A deadline that runs out while the prompt is still queued in ComfyUI. */
static void test_deadline_queued(void) {
    job_t *j = job_in(JOB_QUEUED);
    j->timeout_s = 30;
    bool cancelled = false;
    for (int t = 0; t < 40 && !cancelled; t++) {
        advance(1000);
        j->wake_mono = INT64_MAX;
        job_acts_t a = ev0(j, JEV_TICK);
        if (has_act(&a, JACT_STATE))
            state_is(j, GQ_COMFY_PENDING, NULL);
        cancelled = j->state == JOB_CANCEL && has_act(&a, JACT_CANCEL);
    }
    CHECK(cancelled);
    CHECK_STR(j->error_code, "timeout");
    job_acts_t a = ev0(j, JEV_CANCELLED);
    CHECK(!has_act(&a, JACT_STATE) && j->wake_mono > now_mono);
    advance(j->wake_mono - now_mono);
    a = ev0(j, JEV_TICK);
    CHECK(has_act(&a, JACT_STATE));
    a = state_is(j, GQ_COMFY_UNKNOWN, NULL);
    CHECK(j->state == JOB_BACKOFF && has_act(&a, JACT_FAIL_ATTEMPT));
    job_free(j);
}

/* Asks whether the cancel worked once its pause is over (the tick), and answers it. */
static job_acts_t cancel_round(job_t *j, gq_comfy_state_t st, gq_comfy_result_t *res) {
    ev0(j, JEV_CANCELLED);
    CHECK(j->wake_mono > now_mono && j->wake_mono != INT64_MAX);
    advance(j->wake_mono - now_mono);
    job_acts_t a = ev0(j, JEV_TICK);
    CHECK(has_act(&a, JACT_STATE));
    return state_is(j, st, res);
}

/* The interrupt lands just before the prompt starts and is lost: the cancel is sent again
 * until ComfyUI confirms. */
static void test_cancel_race(void) {
    job_t *j = job_in(JOB_RUNNING);
    ev0(j, JEV_REVOKE);
    CHECK(j->state == JOB_CANCEL && j->revoked);
    job_acts_t a = cancel_round(j, GQ_COMFY_RUNNING, NULL);
    CHECK(j->state == JOB_CANCEL && has_act(&a, JACT_CANCEL));
    gq_comfy_result_t r = {0};
    r.interrupted = true;
    a = cancel_round(j, GQ_COMFY_FINISHED, &r);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER);
    job_free(j);
}

/* One node that runs a minute (a VAE decode on a slow GPU, a cold checkpoint load) does not
 * see the interrupt until it ends. The worker keeps asking, less and less often, and does not
 * give up on a prompt ComfyUI still runs before the stall timeout. */
static void test_cancel_long_node(void) {
    job_t *j = job_in(JOB_RUNNING);
    ev0(j, JEV_REVOKE);
    int64_t began = now_mono;
    int rounds = 0;
    while (now_mono - began < 60000) {
        job_acts_t a = cancel_round(j, GQ_COMFY_RUNNING, NULL);
        CHECK(j->state == JOB_CANCEL && has_act(&a, JACT_CANCEL));
        rounds++;
    }
    /* 250 ms doubling to 4 s: about 17 questions in a minute, not hundreds. */
    CHECK(rounds >= 10 && rounds <= 25);
    /* The node ends; ComfyUI reports the prompt interrupted. */
    gq_comfy_result_t r = {0};
    r.interrupted = true;
    job_acts_t a = comfy_ev(j, GQ_COMFY_EV_INTERRUPTED);
    CHECK(has_act(&a, JACT_STATE));
    state_is(j, GQ_COMFY_FINISHED, &r);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER);
    job_free(j);

    /* A ComfyUI that holds on past the stall timeout is stuck: the job goes on without it. */
    j = job_in(JOB_RUNNING);
    j->timeout_s = 1;
    advance(2000);
    ev0(j, JEV_TICK);
    CHECK(j->state == JOB_CANCEL || j->asking);
    if (j->state != JOB_CANCEL)
        state_is(j, GQ_COMFY_RUNNING, NULL);
    CHECK(j->state == JOB_CANCEL && j->then == JOB_THEN_RETRY);
    began = now_mono;
    while (j->state == JOB_CANCEL && now_mono - began < 200000)
        cancel_round(j, GQ_COMFY_RUNNING, NULL);
    CHECK(j->state == JOB_BACKOFF);
    CHECK(now_mono - began >= 120000);
    job_free(j);
}

/* The result cache. The key: equal for the same request under another job id, different for
 * another seed or salt, none when the request opts out or the cache is off. A hit: recorded
 * as SUCCEEDED from the earlier job's outputs, never submitted, nothing swept. */
static void test_cache(void) {
    test_cache_salt = "";
    job_t *a = job_in(JOB_READY), *b = job_in(JOB_READY);
    CHECK(strlen(a->cache_key) == 64);
    CHECK(strcmp(a->job_id, b->job_id) != 0);
    CHECK_STR(a->cache_key, b->cache_key);
    job_free(b);

    test_cache_salt = "2026-12";
    b = job_in(JOB_READY);
    CHECK(strlen(b->cache_key) == 64 && strcmp(a->cache_key, b->cache_key) != 0);
    job_free(b);
    test_cache_salt = "";

    /* Another seed: another render. */
    test_seed = 7;
    b = job_in(JOB_READY);
    test_seed = 0;
    CHECK(strlen(b->cache_key) == 64 && strcmp(a->cache_key, b->cache_key) != 0);
    job_free(b);

    test_cache_salt = NULL;
    b = job_in(JOB_READY);
    CHECK_STR(b->cache_key, "");
    job_free(b);
    test_cache_salt = "";

    /* A hit. */
    ev0(a, JEV_SLOT);
    CHECK(a->state == JOB_BEGIN);
    gq_rec_begun_t hit = {GQ_REC_CACHED, 0, "", 0, NULL, 0};
    gq_uuid_v4(hit.prev_prompt_id);
    hit.outputs = calloc(1, sizeof(*hit.outputs));
    hit.outputs_cnt = 1;
    hit.outputs[0].uri = strdup("file:///out/ab/cd.png");
    hit.outputs[0].mime = strdup("image/png");
    hit.outputs[0].bytes = 99;
    job_acts_t acts = step(a, (job_ev_t){.type = JEV_BEGUN, .status = GQ_OK, .begun = &hit});
    CHECK(a->state == JOB_RECORD && has_act(&acts, JACT_RECORD) && !has_act(&acts, JACT_SUBMIT));
    CHECK(hit.outputs == NULL && hit.outputs_cnt == 0); /* taken */
    CHECK_STR(a->cache_source, hit.prev_prompt_id);
    CHECK(a->done.status == GQ_JOB_SUCCEEDED && a->done.attempt == 1);
    CHECK(a->done.render_ms == 0 && a->done.outputs_cnt == 1);
    CHECK_STR(a->done.outputs[0].uri, "file:///out/ab/cd.png");
    acts = step(a, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    CHECK(a->state == JOB_DONE && a->end == JOB_END_FINISHED && !has_act(&acts, JACT_SWEEP));
    job_free(a);
    test_cache_salt = NULL;
}

/* ---- cancel requests ---- */

/* Checks the cancelled record: FAILED with code cancelled, not retryable, not dead-lettered. */
static void check_cancelled(job_t *j, const char *msg, bool no_attempt, int32_t attempt) {
    CHECK(j->state == JOB_RECORD && j->cancelled);
    CHECK(j->no_attempt == no_attempt);
    CHECK(j->done.status == GQ_JOB_FAILED && j->done.has_error);
    CHECK_STR(j->done.error_code, "cancelled");
    CHECK_STR(j->done.error_message, msg);
    CHECK(!j->done.error_retryable && !j->dead_letter);
    CHECK_INT(j->done.attempt, attempt);
    CHECK(j->done.queue_ms + j->done.render_ms <= j->done.total_ms);
}

/* Not started: recorded at once, never rendered. */
static void test_cancel_waiting(void) {
    job_t *j = job_in(JOB_READY);
    job_acts_t a = cancel_req(j, NULL, "ops", "wrong prompt");
    check_cancelled(j, "cancelled by ops: wrong prompt", true, 1);
    CHECK(has_act(&a, JACT_RECORD) && a.n == 1);
    a = step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    CHECK(j->state == JOB_DONE && j->end == JOB_END_FINISHED && !has_act(&a, JACT_SWEEP));
    job_free(j);

    /* In its backoff: the failed attempt stays as it was recorded. */
    j = job_in(JOB_BACKOFF);
    a = cancel_req(j, NULL, "", "");
    check_cancelled(j, "cancelled", true, 1);
    CHECK(!has_act(&a, JACT_FAIL_ATTEMPT));
    job_free(j);

    /* Not admitted yet: decided by its source once decoded. */
    j = job_in(JOB_NEW);
    a = cancel_req(j, NULL, "svc", "");
    CHECK(j->state == JOB_NEW && a.n == 0 && j->cancel_req);
    a = ev0(j, JEV_ADMIT);
    check_cancelled(j, "cancelled by svc", true, 1);
    CHECK(has_act(&a, JACT_RECORD));
    job_free(j);
}

/* A cancel names a source: it applies only to that tenant's jobs. */
static void test_cancel_source(void) {
    job_t *j = job_in(JOB_READY);
    job_acts_t a = cancel_req(j, "tenant-b", "tenant-b", "");
    CHECK(j->state == JOB_READY && a.n == 0 && !j->cancel_req);
    a = cancel_req(j, "", "ops", "any"); /* the request's source is "" */
    check_cancelled(j, "cancelled by ops: any", true, 1);
    job_free(j);

    j = job_in(JOB_NEW);
    cancel_req(j, "tenant-b", "", "");
    ev0(j, JEV_ADMIT);
    CHECK(j->state == JOB_READY && !j->cancel_req);
    job_free(j);
}

/* Queued or rendering in ComfyUI: taken back by its prompt id, then recorded as cancelled
 * with its attempt (and the time it rendered). */
static void test_cancel_in_comfy(void) {
    job_t *j = job_in(JOB_RUNNING);
    advance(700);
    job_acts_t a = cancel_req(j, NULL, "ops", "stop");
    CHECK(j->state == JOB_CANCEL && j->then == JOB_THEN_CANCELLED && has_act(&a, JACT_CANCEL));
    /* The interrupt lands at the next step; ComfyUI says so. */
    a = comfy_ev(j, GQ_COMFY_EV_INTERRUPTED);
    CHECK(has_act(&a, JACT_STATE));
    gq_comfy_result_t r = {0};
    r.interrupted = true;
    a = state_is(j, GQ_COMFY_FINISHED, &r);
    check_cancelled(j, "cancelled by ops: stop", false, 1);
    CHECK(j->done.render_ms >= 700 && !has_act(&a, JACT_FAIL_ATTEMPT));
    job_free(j);

    /* Queued: removed from the queue; ComfyUI no longer knows it. */
    j = job_in(JOB_QUEUED);
    cancel_req(j, NULL, "", "");
    CHECK(j->state == JOB_CANCEL);
    cancel_round(j, GQ_COMFY_UNKNOWN, NULL);
    check_cancelled(j, "cancelled", false, 1);
    CHECK(j->done.render_ms == 0);
    job_free(j);

    /* Submitting: the prompt may arrive after the cancel; asked until it is gone. */
    j = job_in(JOB_SUBMIT);
    cancel_req(j, NULL, "", "");
    CHECK(j->state == JOB_CANCEL);
    a = step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_OK});
    CHECK(j->state == JOB_CANCEL && a.n == 0);
    a = cancel_round(j, GQ_COMFY_PENDING, NULL);
    CHECK(j->state == JOB_CANCEL && has_act(&a, JACT_CANCEL));
    cancel_round(j, GQ_COMFY_UNKNOWN, NULL);
    check_cancelled(j, "cancelled", false, 1);
    job_free(j);
}

/* A cancel races with the end of the render: whichever comes first decides, once. */
static void test_cancel_race_end(void) {
    /* The cancel first: the render ends before the interrupt is seen; still cancelled. */
    job_t *j = job_in(JOB_RUNNING);
    cancel_req(j, NULL, "", "late");
    job_acts_t a = comfy_ev(j, GQ_COMFY_EV_DONE);
    CHECK(j->state == JOB_CANCEL && has_act(&a, JACT_STATE) && !has_act(&a, JACT_HISTORY));
    gq_comfy_result_t r = result_ok();
    a = state_is(j, GQ_COMFY_FINISHED, &r);
    gq_comfy_result_release(&r);
    check_cancelled(j, "cancelled: late", false, 1);
    CHECK(!has_act(&a, JACT_FETCH));
    job_free(j);

    /* The end first: ComfyUI finished it, the cancel changes nothing. */
    j = job_in(JOB_COLLECT);
    a = cancel_req(j, NULL, "", "");
    CHECK(j->state == JOB_COLLECT && a.n == 0 && !j->cancelled);
    r = result_ok();
    step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    output_ok(j, 0);
    CHECK(j->state == JOB_RECORD && j->done.status == GQ_JOB_SUCCEEDED && !j->cancelled);
    a = cancel_req(j, NULL, "", "");
    CHECK(j->state == JOB_RECORD && a.n == 0 && !j->cancelled);
    job_free(j);
}

/* Asked while its attempt is being recorded: decided by the answer. */
static void test_cancel_begin(void) {
    job_t *j = job_in(JOB_BEGIN);
    job_acts_t a = cancel_req(j, NULL, "ops", "");
    CHECK(j->state == JOB_BEGIN && a.n == 0);
    a = begun(j, GQ_REC_BEGUN, 1, NULL);
    check_cancelled(j, "cancelled by ops", false, 1);
    CHECK(!has_act(&a, JACT_SUBMIT));
    job_free(j);

    /* Recorded already elsewhere: nothing more. */
    j = job_in(JOB_BEGIN);
    cancel_req(j, NULL, "", "");
    a = begun(j, GQ_REC_TERMINAL, 1, NULL);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_FINISHED && a.n == 0);
    job_free(j);

    /* An earlier attempt may still render: taken back from ComfyUI first. */
    j = job_in(JOB_BEGIN);
    cancel_req(j, NULL, "", "");
    char prev[37];
    gq_uuid_v4(prev);
    a = begun(j, GQ_REC_PROBE, 2, prev);
    CHECK(j->state == JOB_CANCEL && has_act(&a, JACT_CANCEL) && !has_act(&a, JACT_ADOPT));
    CHECK_STR(j->prompt_id, prev);
    cancel_round(j, GQ_COMFY_UNKNOWN, NULL);
    check_cancelled(j, "cancelled", false, 2);
    job_free(j);

    /* PostgreSQL knows the cancel (read by another worker, or before a restart). */
    j = job_in(JOB_BEGIN);
    gq_rec_begun_t b = {GQ_REC_CANCELLED, 0, "", 0};
    gq_strlcpy(b.cancel_reason, "from the table", sizeof(b.cancel_reason));
    gq_strlcpy(b.cancel_by, "svc", sizeof(b.cancel_by));
    a = step(j, (job_ev_t){.type = JEV_BEGUN, .status = GQ_OK, .begun = &b});
    check_cancelled(j, "cancelled by svc: from the table", true, 1);
    CHECK(!has_act(&a, JACT_SUBMIT));
    job_free(j);
    /* ... with an attempt still marked running: its prompt is taken back first. */
    j = job_in(JOB_BEGIN);
    b.attempt = 3;
    gq_uuid_v4(b.prev_prompt_id);
    a = step(j, (job_ev_t){.type = JEV_BEGUN, .status = GQ_OK, .begun = &b});
    CHECK(j->state == JOB_CANCEL && has_act(&a, JACT_CANCEL));
    CHECK_STR(j->prompt_id, b.prev_prompt_id);
    cancel_round(j, GQ_COMFY_UNKNOWN, NULL);
    check_cancelled(j, "cancelled by svc: from the table", false, 3);
    job_free(j);
    /* Leaving meanwhile: the next owner decides. */
    j = job_in(JOB_BEGIN);
    ev0(j, JEV_REVOKE);
    b.prev_prompt_id[0] = '\0';
    step(j, (job_ev_t){.type = JEV_BEGUN, .status = GQ_OK, .begun = &b});
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER && !j->cancelled);
    job_free(j);
}

/* Already being cancelled for another reason: a deadline's retry becomes the cancellation; a
 * revoke's redelivery stays (the next owner reads the cancel too). */
static void test_cancel_while_cancelling(void) {
    job_t *j = job_in(JOB_RUNNING);
    j->timeout_s = 1;
    advance(2000);
    ev0(j, JEV_TICK);
    if (j->state != JOB_CANCEL)
        state_is(j, GQ_COMFY_RUNNING, NULL);
    CHECK(j->state == JOB_CANCEL && j->then == JOB_THEN_RETRY);
    cancel_req(j, NULL, "", "");
    CHECK(j->then == JOB_THEN_CANCELLED);
    job_acts_t a = cancel_round(j, GQ_COMFY_UNKNOWN, NULL);
    check_cancelled(j, "cancelled", false, 1);
    CHECK(!has_act(&a, JACT_FAIL_ATTEMPT));
    job_free(j);

    j = job_in(JOB_CANCEL); /* revoked */
    cancel_req(j, NULL, "", "");
    CHECK(j->then == JOB_THEN_REDELIVER);
    cancel_round(j, GQ_COMFY_UNKNOWN, NULL);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER);
    job_free(j);
}

/* The cancel's words go into the event, cut at 512 bytes on a character boundary. */
static void test_cancel_words(void) {
    char reason[GQ_CANCEL_REASON_MAX + 1] = "";
    for (size_t i = 0; i + 2 < sizeof(reason); i += 2)
        memcpy(reason + i, "\xc3\xa9", 2); /* é */
    char by[GQ_CANCEL_BY_MAX + 1];
    memset(by, 'b', GQ_CANCEL_BY_MAX);
    by[GQ_CANCEL_BY_MAX] = '\0';
    job_t *j = job_in(JOB_READY);
    cancel_req(j, NULL, by, reason);
    CHECK(j->state == JOB_RECORD);
    size_t n = strlen(j->done.error_message);
    CHECK(n > 400 && n < 512);
    CHECK(gq_utf8_valid(j->done.error_message, n));
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    char err[256];
    CHECK(gq_completed_encode(&j->done, &b, err, sizeof(err)) == GQ_OK);
    gq_completed_t back;
    CHECK(gq_completed_decode(b.data, b.len, &back, err, sizeof(err)) == GQ_OK);
    CHECK_STR(back.error_message, j->done.error_message);
    gq_completed_release(&back);
    gq_buf_release(&b);
    job_free(j);
}

/* ---- progress ---- */

static job_acts_t comfy_node(job_t *j, gq_comfy_ev_type_t t, const char *node, double v, double max,
                             int nodes) {
    gq_comfy_event_t ce = {.type = t, .value = v, .max = max, .nodes = nodes};
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    gq_strlcpy(ce.node, node ? node : "", sizeof(ce.node));
    return step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
}

/* What ComfyUI's events say, as progress events report it. */
static void test_progress(void) {
    gq_progress_state_t st;
    job_t *j = job_in(JOB_READY);
    CHECK(!job_progress_state(j, &st));
    CHECK_INT(j->prog.nodes_total, 7);
    job_free(j);

    j = job_in(JOB_QUEUED);
    CHECK(job_progress_state(j, &st) && st == GQ_PROGRESS_QUEUED);
    comfy_node(j, GQ_COMFY_EV_START, NULL, 0, 0, 0);
    CHECK(job_progress_state(j, &st) && st == GQ_PROGRESS_LOADING);
    comfy_node(j, GQ_COMFY_EV_CACHED, NULL, 0, 0, 2);
    comfy_node(j, GQ_COMFY_EV_EXECUTING, "4", 0, 0, 0);
    CHECK_STR(j->prog.node, "Load Checkpoint");
    CHECK_INT(j->prog.nodes_done, 2);
    comfy_node(j, GQ_COMFY_EV_EXECUTING, "4", 0, 0, 0); /* the same node again: no change */
    comfy_node(j, GQ_COMFY_EV_EXECUTING, "3", 0, 0, 0);
    CHECK_STR(j->prog.node, "KSampler");
    CHECK_INT(j->prog.nodes_done, 3);
    CHECK(job_progress_state(j, &st) && st == GQ_PROGRESS_LOADING);
    comfy_node(j, GQ_COMFY_EV_PROGRESS, "3", 4, 20, 0);
    comfy_node(j, GQ_COMFY_EV_PREVIEW, NULL, 0, 0, 0);
    comfy_node(j, GQ_COMFY_EV_PREVIEW, NULL, 0, 0, 0);
    CHECK(job_progress_state(j, &st) && st == GQ_PROGRESS_RUNNING);
    CHECK(j->prog.step == 4 && j->prog.max_steps == 20 && j->prog.previews == 2);
    /* A node that is not in the workflow (a subgraph's) is named by its id. */
    comfy_node(j, GQ_COMFY_EV_EXECUTING, "10:3", 0, 0, 0);
    CHECK_STR(j->prog.node, "10:3");
    comfy_node(j, GQ_COMFY_EV_DONE, NULL, 0, 0, 0);
    CHECK(job_progress_state(j, &st) && st == GQ_PROGRESS_COLLECTING);
    CHECK_INT(j->prog.nodes_done, 7);
    job_free(j);

    /* A retry starts again from nothing (and counts its workflow's nodes). */
    j = job_in(JOB_BACKOFF);
    j->prog.step = 9;
    j->prog.previews = 3;
    advance(60000);
    ev0(j, JEV_TICK);
    CHECK(j->state == JOB_READY);
    ev0(j, JEV_SLOT);
    CHECK(j->prog.step == 0 && j->prog.previews == 0 && j->prog.nodes_total == 7);
    job_free(j);
}

/* A revoke while outputs are fetched: the job is still recorded (without moving offsets). */
static void test_revoke_during_fetch(void) {
    job_t *j = job_in(JOB_COLLECT);
    gq_comfy_result_t r = result_ok();
    step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    CHECK(j->fetching == 1);
    ev0(j, JEV_REVOKE);
    CHECK(j->state == JOB_COLLECT && j->revoked);
    job_acts_t a = output_ok(j, 0);
    CHECK(j->state == JOB_RECORD && has_act(&a, JACT_RECORD));
    job_free(j);
}

static void test_stop_during_backoff(void) {
    job_t *j = job_in(JOB_BACKOFF);
    CHECK(j->state == JOB_BACKOFF);
    ev0(j, JEV_STOP);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER);
    job_free(j);
}

/* Stop: a running render may finish; a queued one is taken back. */
static void test_stop(void) {
    job_t *j = job_in(JOB_RUNNING);
    ev0(j, JEV_STOP);
    CHECK(j->state == JOB_RUNNING);
    ev0(j, JEV_GRACE);
    CHECK(j->state == JOB_CANCEL && j->then == JOB_THEN_REDELIVER);
    job_free(j);
    j = job_in(JOB_BEGIN);
    ev0(j, JEV_STOP);
    begun(j, GQ_REC_BEGUN, 1, NULL);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER);
    job_free(j);
    /* A failure while stopping is left to the next owner, not retried here. */
    j = job_in(JOB_RUNNING);
    job_acts_t a = {.n = 0};
    job_env_t e = env();
    e.stopping = true;
    gq_comfy_event_t ce = {.type = GQ_COMFY_EV_INTERRUPTED};
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    job_ev_t ev = {.type = JEV_COMFY, .comfy = &ce};
    job_step(j, &ev, &e, &a);
    CHECK(j->state == JOB_DONE && j->end == JOB_END_REDELIVER && has_act(&a, JACT_FAIL_ATTEMPT));
    job_free(j);
}

/* A node that runs long without a word: "running" in /queue is a sign of life. */
static void test_silent_node(void) {
    job_t *j = job_in(JOB_RUNNING);
    for (int t = 0; t < 200; t++) {
        advance(1000);
        j->wake_mono = INT64_MAX;
        job_acts_t a = ev0(j, JEV_TICK);
        if (has_act(&a, JACT_STATE))
            state_is(j, GQ_COMFY_RUNNING, NULL);
    }
    CHECK(j->state == JOB_RUNNING);
    job_free(j);
}

/* ComfyUI unreachable for longer than stall_timeout: the attempt fails (retryable). */
static void test_comfy_gone(void) {
    job_t *j = job_in(JOB_RUNNING);
    for (int t = 0; t < 200 && j->state == JOB_RUNNING; t++) {
        advance(1000);
        j->wake_mono = INT64_MAX;
        job_acts_t a = ev0(j, JEV_TICK);
        if (has_act(&a, JACT_STATE))
            step(j, (job_ev_t){.type = JEV_STATE,
                               .status = GQ_ERR_TRANSIENT,
                               .ask = j->ask,
                               .errstr = "connection refused"});
    }
    CHECK(j->state == JOB_BACKOFF || j->state == JOB_CANCEL);
    CHECK(strcmp(j->error_code, "comfy_unavailable") == 0 || strcmp(j->error_code, "stalled") == 0);
    job_free(j);
}

/* A fast render's events come before the answer to its POST: they are not lost. */
static void test_events_before_submit_answer(void) {
    job_t *j = job_in(JOB_SUBMIT);
    comfy_ev(j, GQ_COMFY_EV_START);
    CHECK(j->state == JOB_RUNNING);
    job_acts_t a = comfy_ev(j, GQ_COMFY_EV_DONE);
    CHECK(j->state == JOB_COLLECT && has_act(&a, JACT_HISTORY));
    a = step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_OK});
    CHECK(j->state == JOB_COLLECT && a.n == 0);
    job_free(j);
}

/* A submit whose answer is lost: ask ComfyUI, then send it again (no attempt spent). */
static void test_submit_lost(void) {
    job_t *j = job_in(JOB_SUBMIT);
    step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_ERR_TRANSIENT, .errstr = "reset"});
    CHECK(j->state == JOB_SUBMIT && j->wake_mono != INT64_MAX);
    advance(3000);
    j->wake_mono = INT64_MAX;
    job_acts_t a = ev0(j, JEV_TICK);
    CHECK(has_act(&a, JACT_STATE));
    a = state_is(j, GQ_COMFY_UNKNOWN, NULL);
    CHECK(j->state == JOB_SUBMIT && has_act(&a, JACT_SUBMIT) && j->attempt == 1);
    step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_ERR_TRANSIENT, .errstr = "reset"});
    advance(3000);
    j->wake_mono = INT64_MAX;
    ev0(j, JEV_TICK);
    state_is(j, GQ_COMFY_PENDING, NULL);
    CHECK(j->state == JOB_QUEUED && j->attempt == 1);
    job_free(j);
}

/* Deterministic node errors are not retried; an error repeating word for word stops. */
static void test_errors(void) {
    job_t *j = job_in(JOB_RUNNING);
    gq_comfy_event_t ce = {.type = GQ_COMFY_EV_ERROR};
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    gq_strlcpy(ce.exception_type, "ValueError", sizeof(ce.exception_type));
    gq_strlcpy(ce.exception_message, "bad size", sizeof(ce.exception_message));
    job_acts_t a = step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
    CHECK(j->state == JOB_RECORD && has_act(&a, JACT_RECORD) && !j->error_retryable);
    CHECK_STR(j->error_code, "node_error");
    job_free(j);

    j = job_in(JOB_RUNNING);
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    gq_strlcpy(ce.exception_type, "RuntimeError", sizeof(ce.exception_type));
    gq_strlcpy(ce.exception_message, "CUDA error: an illegal memory access",
               sizeof(ce.exception_message));
    advance(700);
    a = step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
    CHECK(j->state == JOB_BACKOFF && has_act(&a, JACT_FAIL_ATTEMPT));
    /* The failed attempt's record (carried out after the step) has its durations. */
    CHECK(j->started_at > 0 && j->rendered_at >= j->started_at + 700);
    /* The next attempt fails the same way: now it is deterministic. */
    advance(5000);
    j->wake_mono = INT64_MAX;
    ev0(j, JEV_TICK);
    CHECK(j->state == JOB_READY);
    ev0(j, JEV_SLOT);
    CHECK(j->started_at == 0 && j->rendered_at == 0);
    begun(j, GQ_REC_BEGUN, 2, NULL);
    step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_OK});
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    a = step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
    CHECK(j->state == JOB_RECORD && !j->error_retryable);
    job_free(j);

    /* A node that raises on its inputs the way torch does (FACTS.md (a): ImageBlur on too
     * small an image) fails for good at once; nothing is swept, since nothing was listed. */
    j = job_in(JOB_RUNNING);
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    gq_strlcpy(ce.exception_type, "RuntimeError", sizeof(ce.exception_type));
    gq_strlcpy(ce.exception_message,
               "Argument #4: Padding size should be less than the corresponding input "
               "dimension, but got: padding (8, 8) at dimension 3 of input [1, 3, 4, 4]\n",
               sizeof(ce.exception_message));
    a = step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
    CHECK(j->state == JOB_RECORD && !j->error_retryable && !has_act(&a, JACT_FAIL_ATTEMPT));
    CHECK_STR(j->error_code, "node_error");
    CHECK(strstr(j->error_message, "RuntimeError: Argument #4: Padding size") != NULL);
    a = step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    CHECK(j->state == JOB_DONE && !has_act(&a, JACT_SWEEP));
    job_free(j);

    /* Out of memory: retried after freeing the GPU. */
    j = job_in(JOB_RUNNING);
    gq_strlcpy(ce.prompt_id, j->prompt_id, sizeof(ce.prompt_id));
    gq_strlcpy(ce.exception_type, "torch.OutOfMemoryError", sizeof(ce.exception_type));
    a = step(j, (job_ev_t){.type = JEV_COMFY, .comfy = &ce});
    CHECK(j->state == JOB_BACKOFF && has_act(&a, JACT_FREE));
    job_free(j);
}

/* Attempts run out: FAILED, retryable, dead-lettered. */
static void test_exhausted(void) {
    job_t *j = job_in(JOB_BEGIN);
    job_acts_t a = begun(j, GQ_REC_EXHAUSTED, 3, NULL);
    CHECK(j->state == JOB_RECORD && has_act(&a, JACT_RECORD) && j->dead_letter);
    CHECK_STR(j->dead_reason, "attempts_exhausted");
    job_free(j);
}

/* Bad input: FAILED records and rejections, never a render. */
static void test_bad_input(void) {
    job_t *j = job_new(999, 0, 0, 1, "garbage", 7, NULL, 0, now_wall);
    job_acts_t a = ev0(j, JEV_ADMIT);
    CHECK(j->state == JOB_RECORD && j->reject && j->dead_letter && has_act(&a, JACT_RECORD));
    job_free(j);
    char id[37];
    gq_uuid_v4(id);
    j = job_new(1000, 0, 0, 2, "garbage", 7, id, 36, now_wall);
    a = ev0(j, JEV_ADMIT);
    CHECK(j->state == JOB_RECORD && !j->reject && j->dead_letter);
    CHECK_STR(j->job_id, id);
    CHECK(j->done.status == GQ_JOB_FAILED);
    CHECK_STR(j->done.error_code, "decode_error");
    job_free(j);
    /* The same job twice in flight: the second is skipped. */
    j = job_make();
    step(j, (job_ev_t){.type = JEV_ADMIT, .dup = true});
    CHECK(j->state == JOB_DONE && j->end == JOB_END_FINISHED);
    job_free(j);
}

/* A record that cannot be written as it is becomes a bare FAILED one, once. */
/* An output that cannot be fetched (the store or ComfyUI down): the attempt fails and is
 * retried, and the next render's outputs replace the first one's (they leaked: ASan, 0230). */
static void test_fetch_fails_then_renders_again(void) {
    job_t *j = job_in(JOB_COLLECT);
    gq_comfy_result_t r = result_ok();
    job_acts_t a =
        step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    CHECK(has_act(&a, JACT_FETCH) && j->fetching == 1);
    step(j, (job_ev_t){.type = JEV_OUTPUT,
                       .status = GQ_ERR_TRANSIENT,
                       .idx = 0,
                       .errstr = "connection refused"});
    CHECK(j->state == JOB_BACKOFF);
    CHECK_STR(j->error_code, "output_error");
    advance(j->wake_mono - now_mono);
    ev0(j, JEV_TICK);
    CHECK(j->state == JOB_READY);
    ev0(j, JEV_SLOT);
    begun(j, GQ_REC_BEGUN, 2, NULL);
    step(j, (job_ev_t){.type = JEV_SUBMITTED, .status = GQ_OK});
    comfy_ev(j, GQ_COMFY_EV_START);
    advance(100);
    comfy_ev(j, GQ_COMFY_EV_DONE);
    r = result_ok();
    a = step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    CHECK(has_act(&a, JACT_FETCH) && j->done.outputs_cnt == 1 && j->done.outputs[0].uri == NULL);
    a = output_ok(j, 0);
    CHECK(j->state == JOB_RECORD && j->done.status == GQ_JOB_SUCCEEDED && j->done.attempt == 2);
    CHECK(!j->done.has_error && j->done.outputs_cnt == 1 && j->done.outputs[0].uri != NULL);
    job_free(j);
}

/* Two outputs, the second too large for the store: the job fails for that, and its FAILED
 * record and event carry no outputs, the first one's included (the contract; the first one
 * was kept and, with no URI for the second, the event could not be encoded: record_error). */
static void test_fetch_partly_fails(void) {
    job_t *j = job_in(JOB_COLLECT);
    gq_comfy_result_t r = result_ok();
    gq_strlcpy(r.images[1].type, "output", sizeof(r.images[1].type));
    job_acts_t a =
        step(j, (job_ev_t){.type = JEV_HISTORY, .status = GQ_OK, .ask = j->ask, .result = &r});
    gq_comfy_result_release(&r);
    CHECK(has_act(&a, JACT_FETCH) && j->fetching == 2 && j->done.outputs_cnt == 2);
    output_ok(j, 0);
    a = step(j, (job_ev_t){.type = JEV_OUTPUT,
                           .status = GQ_ERR_TOOBIG,
                           .idx = 1,
                           .errstr = "larger than max_output_bytes"});
    CHECK(j->state == JOB_RECORD && has_act(&a, JACT_RECORD));
    CHECK(j->done.status == GQ_JOB_FAILED && j->done.has_error);
    CHECK_STR(j->done.error_code, "output_too_large");
    CHECK(j->done.outputs_cnt == 0 && j->done.outputs == NULL);
    step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    CHECK(j->state == JOB_DONE);
    job_free(j);
}

static void test_record_fallback(void) {
    job_t *j = job_in(JOB_RECORD);
    job_acts_t a = step(
        j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_ERR_INVALID, .errstr = "cannot encode"});
    CHECK(j->state == JOB_RECORD && has_act(&a, JACT_RECORD));
    CHECK(j->done.status == GQ_JOB_FAILED && j->done.outputs_cnt == 0);
    CHECK_STR(j->done.error_code, "record_error");
    a = step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_ERR_INVALID, .errstr = "again"});
    CHECK(j->state == JOB_RECORD && a.n == 0 && j->wake_mono != INT64_MAX);
    step(j, (job_ev_t){.type = JEV_RECORDED, .status = GQ_OK});
    CHECK(j->state == JOB_DONE);
    job_free(j);
}

int main(void) {
    test_table();
    test_happy_path();
    test_finished_elsewhere();
    test_adopt_long_render();
    test_adopt_running();
    test_probe_gone();
    test_deadline_queued();
    test_cancel_race();
    test_cancel_long_node();
    test_cache();
    test_revoke_during_fetch();
    test_stop_during_backoff();
    test_stop();
    test_silent_node();
    test_comfy_gone();
    test_submit_lost();
    test_events_before_submit_answer();
    test_errors();
    test_exhausted();
    test_bad_input();
    test_record_fallback();
    test_fetch_fails_then_renders_again();
    test_fetch_partly_fails();
    test_cancel_waiting();
    test_cancel_source();
    test_cancel_in_comfy();
    test_cancel_race_end();
    test_cancel_begin();
    test_cancel_while_cancelling();
    test_cancel_words();
    test_progress();
    return CHECK_DONE("test_job");
}
