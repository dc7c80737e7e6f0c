/* Progress events for people (see view.h). */
#include "view.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void gq_view_progress(const gq_progress_t *ev, int bar_width, char *out, size_t out_size) {
    char bar[64];
    if (bar_width < 4)
        bar_width = 4;
    if (bar_width > (int)sizeof(bar) - 1)
        bar_width = (int)sizeof(bar) - 1;
    int filled = 0;
    if (ev->state == GQ_PROGRESS_COLLECTING)
        filled = bar_width;
    else if (ev->max_steps > 0 && ev->step > 0)
        filled = (int)((int64_t)bar_width * (ev->step < ev->max_steps ? ev->step : ev->max_steps) /
                       ev->max_steps);
    for (int i = 0; i < bar_width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[bar_width] = '\0';
    char where[96] = "";
    if (ev->state == GQ_PROGRESS_QUEUED && ev->queue_position >= 0)
        snprintf(where, sizeof(where), "%d ahead", (int)ev->queue_position);
    else if (ev->max_steps > 0)
        snprintf(where, sizeof(where), "%d/%d", (int)ev->step, (int)ev->max_steps);
    char nodes[48] = "";
    if (ev->nodes_total > 0)
        snprintf(nodes, sizeof(nodes), ", nodes %d/%d", (int)ev->nodes_done, (int)ev->nodes_total);
    char previews[32] = "";
    if (ev->previews > 0)
        snprintf(previews, sizeof(previews), ", %d preview%s", (int)ev->previews,
                 ev->previews == 1 ? "" : "s");
    snprintf(out, out_size, "%-10s [%s] %s%s%.63s%s%s", gq_progress_state_name(ev->state), bar,
             where, where[0] && ev->node ? " " : "", ev->node ? ev->node : "", nodes, previews);
}

bool gq_view_fresh(gq_view_seen_t *s, const gq_progress_t *ev) {
    for (size_t i = 0; i < GQ_VIEW_JOBS; i++) {
        if (strcmp(s->job_id[i], ev->job_id) != 0)
            continue;
        if (ev->attempt < s->attempt[i] || (ev->attempt == s->attempt[i] && ev->seq <= s->seq[i]))
            return false;
        s->attempt[i] = ev->attempt;
        s->seq[i] = ev->seq;
        return true;
    }
    size_t i = s->next++ % GQ_VIEW_JOBS;
    gq_strlcpy(s->job_id[i], ev->job_id, sizeof(s->job_id[i]));
    s->attempt[i] = ev->attempt;
    s->seq[i] = ev->seq;
    return true;
}
