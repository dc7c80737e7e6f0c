/*
 * Progress events (consumers/worker/progress_pub.c): the throttle, one job's events over a
 * simulated render as the loop hands it over turn by turn, and what an event costs to build
 * and encode (printed: the figure in README's "The worker loop").
 */
#include "worker/progress_pub.h"
#include "util.h"
#include "check.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define JOB "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

static gq_progpub_mark_t mark_of(const gq_progpub_snap_t *s, int64_t at) {
    gq_progpub_mark_t m = {.attempt = s->attempt,
                           .seq = 1,
                           .last_mono = at,
                           .state = s->state,
                           .queue_position = s->queue_position,
                           .step = s->prog->step,
                           .max_steps = s->prog->max_steps,
                           .nodes_done = s->prog->nodes_done,
                           .previews = s->prog->previews};
    gq_strlcpy(m.node, s->prog->node, sizeof(m.node));
    return m;
}

static void test_due(void) {
    gq_jobprog_t p = {.node = "KSampler", .step = 1, .max_steps = 20, .nodes_total = 7};
    gq_progpub_snap_t s = {JOB, 1, GQ_PROGRESS_RUNNING, -1, &p, ""};
    gq_progpub_mark_t none = {0}, m;
    int64_t at = 0;
    /* The first event of an attempt goes at once. */
    CHECK(gq_progpub_due(&s, &none, 500, 1000, &at) == GQ_PROGPUB_NOW);
    m = mark_of(&s, 1000);
    CHECK(gq_progpub_due(&s, &m, 500, 1001, &at) == GQ_PROGPUB_NOTHING && at == INT64_MAX);
    /* A step within the interval waits for it; after it, goes. */
    p.step = 2;
    CHECK(gq_progpub_due(&s, &m, 500, 1200, &at) == GQ_PROGPUB_LATER && at == 2000);
    CHECK(gq_progpub_due(&s, &m, 500, 1500, &at) == GQ_PROGPUB_NOW);
    /* So do the nodes done and the previews. */
    p.step = 1;
    p.previews = 1;
    CHECK(gq_progpub_due(&s, &m, 500, 1100, &at) == GQ_PROGPUB_LATER);
    p.previews = 0;
    p.nodes_done = 3;
    CHECK(gq_progpub_due(&s, &m, 500, 1100, &at) == GQ_PROGPUB_LATER);
    p.nodes_done = 0;
    /* A new node, a new state, a new queue position, a new attempt: at once. */
    gq_strlcpy(p.node, "VAE Decode", sizeof(p.node));
    CHECK(gq_progpub_due(&s, &m, 500, 1001, &at) == GQ_PROGPUB_NOW);
    gq_strlcpy(p.node, "KSampler", sizeof(p.node));
    s.state = GQ_PROGRESS_COLLECTING;
    CHECK(gq_progpub_due(&s, &m, 500, 1001, &at) == GQ_PROGPUB_NOW);
    s.state = GQ_PROGRESS_RUNNING;
    s.queue_position = 0;
    CHECK(gq_progpub_due(&s, &m, 500, 1001, &at) == GQ_PROGPUB_NOW);
    s.queue_position = -1;
    s.attempt = 2;
    CHECK(gq_progpub_due(&s, &m, 500, 1001, &at) == GQ_PROGPUB_NOW);
}

/* The producer's linger: half the interval, so a viewer refreshed every interval sees an
 * event no later; never so long that a short interval's events wait, nor a batch per event. */
static void test_linger(void) {
    CHECK(gq_progpub_linger_ms(500) == 250);
    CHECK(gq_progpub_linger_ms(200) == 100);
    CHECK(gq_progpub_linger_ms(10000) == 250);
    CHECK(gq_progpub_linger_ms(1) == 5);
    CHECK(gq_progpub_linger_ms(12) == 6);
}

/* A 30-step render at 50 ms a step with a preview each, 4 nodes before the sampler and 2
 * after, handed over every 10 ms as a busy loop would: the events a job sends. */
static void test_render(void) {
    gq_jobprog_t p = {.nodes_total = 7};
    gq_progpub_snap_t s = {JOB, 1, GQ_PROGRESS_QUEUED, 0, &p, ""};
    gq_progpub_mark_t m = {0};
    int events = 0, majors = 0;
    int64_t t = 0, wake = INT64_MAX;
    const int interval = 500;
    gq_progpub_mark_t last = m;
    for (int tick = 0; tick < 400; tick++, t += 10) {
        if (tick == 20) {
            s.state = GQ_PROGRESS_LOADING;
            s.queue_position = -1;
        }
        if (tick >= 20 && tick < 60 && tick % 10 == 0) {
            snprintf(p.node, sizeof(p.node), "node %d", tick / 10);
            p.nodes_done = tick / 10 - 2;
        }
        if (tick >= 60 && tick < 210 && tick % 5 == 0) {
            s.state = GQ_PROGRESS_RUNNING;
            gq_strlcpy(p.node, "KSampler", sizeof(p.node));
            p.max_steps = 30;
            p.step = (tick - 60) / 5 + 1;
            p.previews = p.step;
        }
        if (tick == 210)
            gq_strlcpy(p.node, "VAE Decode", sizeof(p.node));
        if (tick == 230)
            gq_strlcpy(p.node, "Save Image", sizeof(p.node));
        if (tick == 250) {
            s.state = GQ_PROGRESS_COLLECTING;
            p.nodes_done = 7;
        }
        int64_t at;
        gq_progpub_when_t w = gq_progpub_due(&s, &m, interval, t, &at);
        if (w == GQ_PROGPUB_NOW) {
            bool major = m.attempt == 0 || m.state != s.state || strcmp(m.node, p.node) != 0 ||
                         m.queue_position != s.queue_position;
            /* Between two events of the same state and node: at least the interval. */
            if (!major && events)
                CHECK(t - last.last_mono >= interval);
            majors += major;
            m = mark_of(&s, t);
            m.seq = ++events;
            last = m;
        } else if (w == GQ_PROGPUB_LATER) {
            /* Due at the first turn after the interval; a wake of its own one later. */
            CHECK(at > t && at == last.last_mono + 2 * interval);
            wake = at;
        }
    }
    (void)wake;
    /* QUEUED, LOADING with 4 nodes, RUNNING, 2 nodes after, COLLECTING: 9 changes, plus the
     * sampler's 1.5 s in 500 ms steps. */
    CHECK_INT(majors, 9);
    CHECK(events >= 11 && events <= 13);
    /* The last step was published (the node that followed carried it). */
    CHECK_INT(m.step, 30);
    CHECK_INT(m.previews, 30);
    fprintf(stderr,
            "  a 1.5 s, 30-step render with 30 previews: %d progress events (%d at a "
            "change), throttled at %d ms\n",
            events, majors, interval);
}

/* What building and encoding one event costs (the loop's share of the work). */
static void bench_encode(void) {
    gq_progress_t ev;
    gq_progress_init(&ev);
    gq_strlcpy(ev.job_id, JOB, sizeof(ev.job_id));
    ev.attempt = 1;
    ev.state = GQ_PROGRESS_RUNNING;
    ev.node = "KSampler";
    ev.max_steps = 30;
    ev.nodes_total = 7;
    ev.worker_id = "gpu-worker-0";
    gq_buf_t b;
    gq_buf_init(&b, 1 << 16);
    char err[256];
    const int n = 20000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        ev.seq = i + 1;
        ev.step = i % 30;
        ev.at = INT64_C(1767225600000) + i;
        gq_buf_reset(&b);
        ok += gq_progress_encode(&ev, &b, err, sizeof(err)) == GQ_OK;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    CHECK_INT(ok, n);
    double us =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / n;
    fprintf(stderr, "  encode: %.2f us of CPU per progress event (%zu bytes)\n", us, b.len);
    CHECK(us < 1000);
    gq_buf_release(&b);
}

int main(void) {
    char err[256];
    CHECK(gq_schema_init(err, sizeof(err)) == GQ_OK);
    test_due();
    test_linger();
    test_render();
    bench_encode();
    gq_schema_shutdown();
    return CHECK_DONE("test_progress");
}
