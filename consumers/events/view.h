/**
 * @file view.h
 * @brief Progress events for people: one line per event (a bar drawn from step of max steps,
 * the state, the node, nodes and previews), shared by `genq events --progress` and
 * `genq produce --wait`.
 */
#ifndef GQ_EVENTS_VIEW_H
#define GQ_EVENTS_VIEW_H

#include "genq_schema.h"

#include <stdbool.h>
#include <stddef.h>

/** "RUNNING [########............] 12/30 KSampler, nodes 3/7, 12 previews" (no job id, no
 * newline); a QUEUED job shows its queue position instead of a bar's steps. */
void gq_view_progress(const gq_progress_t *ev, int bar_width, char *out, size_t out_size);

/** Which events are news: per job (the last GQ_VIEW_JOBS jobs seen), an event of an older
 * attempt, or not later in its sequence than the last one shown, is not. */
#define GQ_VIEW_JOBS 64
typedef struct gq_view_seen {
    char job_id[GQ_VIEW_JOBS][37];
    int32_t attempt[GQ_VIEW_JOBS];
    int64_t seq[GQ_VIEW_JOBS];
    size_t next;
} gq_view_seen_t;

/** True when ev is news (and remembers it). */
bool gq_view_fresh(gq_view_seen_t *s, const gq_progress_t *ev);

#endif
