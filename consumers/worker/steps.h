/**
 * @file steps.h
 * @brief The pace of a sampler's steps, read from ComfyUI's progress frames, and how long the
 * WebSocket may then go unread.
 *
 * A sampler sends a frame per step (10 to 30 a second on a GPU), and the worker needs them only
 * for the stall clock and progress events, which want a few a second. Each frame read on its
 * own is a wake-up of the loop, the largest share of its CPU on longer renders. So while the
 * steps come at a steady pace, the socket may wait, and the frames are read together; but
 * never past the step before the last, so the end of the render (the last step, then the
 * frames that end it) is read as it comes. Pure: no I/O.
 */
#ifndef GQ_STEPS_H
#define GQ_STEPS_H

#include "comfy/comfy.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct gq_steps {
    char prompt_id[64], node[64]; /**< whose steps */
    double first, value, max;     /**< the first step seen, the last, of max */
    int64_t first_at, at;         /**< gq_mono_ms when they were read */
    bool on;                      /**< the last event that counts was one of these steps */
} gq_steps_t;

/** Every WebSocket event, as read (now: gq_mono_ms then). */
void gq_steps_event(gq_steps_t *s, const gq_comfy_event_t *ev, int64_t now);

/** Forgets the pace (the WebSocket dropped). */
void gq_steps_reset(gq_steps_t *s);

/**
 * Until when (gq_mono_ms) the WebSocket may go unread: 0 for not at all. At most hold_max_ms
 * after the last step read, and four fifths of the time its pace gives until the step before
 * the last. Needs two steps of one node to know a pace; none shorter than two steps (it
 * would cost a wake-up of its own for at most one frame) or than 5 ms.
 */
int64_t gq_steps_hold(const gq_steps_t *s, int hold_max_ms);

#endif
