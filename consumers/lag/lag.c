#include "lag.h"

void gq_lag_compute(gq_lag_part_t *parts, size_t cnt, const gq_lag_opts_t *o, gq_lag_result_t *r) {
    r->total = 0;
    for (size_t i = 0; i < cnt; i++) {
        gq_lag_part_t *p = &parts[i];
        if (p->committed < 0) {
            /* No commit yet: KEDA answers before looking at the partition's offsets. With
             * earliest it counts the whole log end offset (retention-deleted messages too). */
            if (o->zero_on_invalid)
                p->lag = 0;
            else
                p->lag = o->earliest ? p->end : 1;
        } else {
            p->lag = p->end - p->committed;
        }
        r->total += p->lag;
    }
    /* The cap uses integer division, so a total just above partitions x threshold is not
     * capped (KEDA's own quirk; maxReplicaCount <= partitions keeps it harmless). */
    int64_t upper = (int64_t)cnt;
    r->metric = r->total;
    if (o->threshold > 0 && r->total / o->threshold > upper)
        r->metric = upper * o->threshold;
    r->active = r->total > o->activation;
    if (!r->active && o->min_replicas == 0) {
        r->replicas = 0;
        return;
    }
    int64_t want = o->threshold > 0 ? (r->metric + o->threshold - 1) / o->threshold : 0;
    int64_t lo = o->min_replicas > 1 ? o->min_replicas : 1;
    r->replicas = want < lo ? lo : want > o->max_replicas ? o->max_replicas : want;
}
