/*
 * The pace of a sampler's steps (consumers/worker/steps.c): how long the WebSocket may go
 * unread between steps, and that the render's end is never among what waits.
 */
#include "worker/steps.h"
#include "util.h"
#include "check.h"

#include <stdio.h>
#include <string.h>

#define HOLD_MAX 250

static gq_comfy_event_t step_ev(const char *prompt, const char *node, int value, int max) {
    gq_comfy_event_t ev = {.type = GQ_COMFY_EV_PROGRESS, .value = value, .max = max};
    gq_strlcpy(ev.prompt_id, prompt, sizeof(ev.prompt_id));
    gq_strlcpy(ev.node, node, sizeof(ev.node));
    return ev;
}

/* Feeds one step to s, read at now. */
static void step(gq_steps_t *s, const char *prompt, const char *node, int value, int max,
                 int64_t now) {
    gq_comfy_event_t ev = step_ev(prompt, node, value, max);
    gq_steps_event(s, &ev, now);
}

static void test_hold(void) {
    gq_steps_t s;
    gq_steps_reset(&s);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    /* One step: no pace yet. */
    step(&s, "p1", "3", 1, 10, 100);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    /* Two, 100 ms apart: eight more to go, held for the most. */
    step(&s, "p1", "3", 2, 10, 200);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 450);
    /* progress_state and previews come with the steps: nothing changes. */
    gq_comfy_event_t other = {.type = GQ_COMFY_EV_OTHER};
    gq_steps_event(&s, &other, 200);
    other.type = GQ_COMFY_EV_PREVIEW;
    gq_steps_event(&s, &other, 200);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 450);
    /* Read late, together: the pace looks slower, the hold ends before the step before the
     * last (at 900 ms) all the same. */
    step(&s, "p1", "3", 3, 10, 450);
    step(&s, "p1", "3", 4, 10, 450);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 700);
    /* Two steps from the step before the last: a hold would end before the second, with one
     * frame to read: none. */
    step(&s, "p1", "3", 7, 10, 700);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    /* Slow steps: a hold shorter than two of them is none. */
    gq_steps_t slow;
    gq_steps_reset(&slow);
    step(&slow, "p9", "3", 1, 20, 0);
    step(&slow, "p9", "3", 2, 20, 130);
    CHECK(gq_steps_hold(&slow, HOLD_MAX) == 0);
    step(&slow, "p9", "3", 3, 20, 240);
    CHECK(gq_steps_hold(&slow, HOLD_MAX) == 240 + HOLD_MAX);
    /* The step before the last: read what comes next as it comes. */
    step(&s, "p1", "3", 9, 10, 900);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    step(&s, "p1", "3", 10, 10, 1000);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
}

static void test_moves_on(void) {
    gq_steps_t s;
    gq_steps_reset(&s);
    step(&s, "p1", "3", 1, 30, 0);
    step(&s, "p1", "3", 2, 30, 50);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 50 + HOLD_MAX);
    /* Any other event: the render moved on (a node, an error, an interrupt, its end). */
    gq_comfy_ev_type_t moved[] = {GQ_COMFY_EV_EXECUTING,   GQ_COMFY_EV_ERROR,
                                  GQ_COMFY_EV_INTERRUPTED, GQ_COMFY_EV_DONE,
                                  GQ_COMFY_EV_SUCCESS,     GQ_COMFY_EV_STATUS};
    for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
        gq_steps_reset(&s);
        step(&s, "p1", "3", 1, 30, 0);
        step(&s, "p1", "3", 2, 30, 50);
        gq_comfy_event_t e = {.type = moved[i]};
        gq_steps_event(&s, &e, 60);
        CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
        /* And the next step starts a new pace. */
        step(&s, "p1", "3", 3, 30, 100);
        CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    }
    /* Another prompt, another node, a step that goes back, another max: a new pace. */
    gq_steps_reset(&s);
    step(&s, "p1", "3", 1, 30, 0);
    step(&s, "p2", "3", 2, 30, 50);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    step(&s, "p2", "4", 3, 30, 100);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    step(&s, "p2", "4", 1, 30, 150);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    step(&s, "p2", "4", 2, 20, 200);
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
    /* Steps with no time between them (a zero-time render): nothing to hold. */
    gq_steps_reset(&s);
    for (int v = 1; v <= 5; v++) {
        step(&s, "p3", "3", v, 10, 1000);
    }
    CHECK(gq_steps_hold(&s, HOLD_MAX) == 0);
}

/* A reader that reads what has come when it wakes, woken by the socket unless held and by
 * a hold's end: how many wake-ups a render's steps cost (an empty one when a hold ends
 * before the next frame), and how late its last step is read. */
static void simulate(int steps, int step_ms, int first_ms, int *wakes, int64_t *last_late) {
    gq_steps_t s;
    gq_steps_reset(&s);
    int64_t hold = 0;
    int next = 1;
    *wakes = 0;
    *last_late = 0;
    while (next <= steps) {
        int64_t arrives = first_ms + (int64_t)(next - 1) * step_ms;
        if (hold > 0 && hold < arrives)
            (*wakes)++; /* the hold's end, with nothing to read yet */
        int64_t now = arrives > hold ? arrives : hold;
        (*wakes)++;
        for (; next <= steps && first_ms + (int64_t)(next - 1) * step_ms <= now; next++) {
            step(&s, "p", "3", next, steps, now);
            if (next == steps)
                *last_late = now - (first_ms + (int64_t)(next - 1) * step_ms);
        }
        hold = gq_steps_hold(&s, HOLD_MAX);
    }
}

static void test_render(void) {
    struct {
        int steps, step_ms, first_ms, wakes_max;
    } cases[] = {
        {10, 100, 300, 7}, /* 1 s at 10 steps a second, after a 300 ms load */
        {30, 33, 0, 10},   /* 1 s at 30 steps a second */
        {10, 10, 5, 6},    /* 100 ms */
        {50, 100, 0, 24},  /* 5 s */
        {4, 2000, 0, 4},   /* slow steps: one wake each, nothing held */
        {20, 200, 0, 20},  /* slower than half the longest hold: the same */
        {20, 120, 0, 14},  /* just faster: two frames a hold */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int wakes;
        int64_t late;
        simulate(cases[i].steps, cases[i].step_ms, cases[i].first_ms, &wakes, &late);
        fprintf(stderr, "  %d steps of %d ms: %d wake-ups, the last step read %lld ms late\n",
                cases[i].steps, cases[i].step_ms, wakes, (long long)late);
        CHECK(wakes <= cases[i].wakes_max);
        CHECK(late == 0);
    }
}

int main(void) {
    test_hold();
    test_moves_on();
    test_render();
    return CHECK_DONE("test_steps");
}
