/* The pace of a sampler's steps (see steps.h). */
#include "steps.h"
#include "util.h"

#include <string.h>

#define STEPS_HOLD_MIN_MS 5
/* The pace is an average since the node's first step as read; a batch read late makes it
 * look slower than it is, and a hold too long would read the render's end late. */
#define STEPS_MARGIN 0.8

void gq_steps_reset(gq_steps_t *s) { memset(s, 0, sizeof(*s)); }

void gq_steps_event(gq_steps_t *s, const gq_comfy_event_t *ev, int64_t now) {
    switch (ev->type) {
    case GQ_COMFY_EV_PROGRESS: break;
    case GQ_COMFY_EV_OTHER: /* progress_state: comes with each step */
    case GQ_COMFY_EV_PREVIEW: /* a step's preview */ return;
    default: /* the render moved on: a node, an end, an error */
        s->on = false;
        s->prompt_id[0] = '\0';
        return;
    }
    if (!s->prompt_id[0] || strcmp(s->prompt_id, ev->prompt_id) != 0 ||
        strcmp(s->node, ev->node) != 0 || ev->max != s->max || !(ev->value > s->value)) {
        gq_strlcpy(s->prompt_id, ev->prompt_id, sizeof(s->prompt_id));
        gq_strlcpy(s->node, ev->node, sizeof(s->node));
        s->first = ev->value;
        s->first_at = now;
        s->max = ev->max;
    }
    s->value = ev->value;
    s->at = now;
    s->on = true;
}

int64_t gq_steps_hold(const gq_steps_t *s, int hold_max_ms) {
    if (!s->on || !(s->value > s->first) || s->at <= s->first_at || !(s->max - s->value > 1))
        return 0;
    double pace = (double)(s->at - s->first_at) / (s->value - s->first);
    double ms = (s->max - s->value - 1) * pace * STEPS_MARGIN;
    if (ms > hold_max_ms)
        ms = hold_max_ms;
    /* A hold shorter than two steps reads one frame at its end, late, and adds a wake-up
     * of its own when the frame comes after it: slow steps are read as they come. */
    if (!(ms >= STEPS_HOLD_MIN_MS) || ms < 2 * pace)
        return 0;
    return s->at + (int64_t)ms;
}
