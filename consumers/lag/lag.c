#include "lag.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* KEDA's getLagForPartition, v2.21. */
static void lag_partition(gq_lag_part_t *p, const gq_lag_opts_t *o) {
    if (p->committed == GQ_LAG_NO_COMMIT) {
        /* No commit: latest counts 1 (a consumer would start at the end), earliest the
         * retained log, end minus log start (v2.20 counted the end offset). */
        if (o->zero_on_invalid)
            p->lag = 0;
        else if (!o->earliest)
            p->lag = 1;
        else if (p->start >= 0)
            p->lag = p->end > p->start ? p->end - p->start : 0;
        else
            p->lag = p->end;
        p->lag_persistent = p->lag;
        return;
    }
    /* Any other committed offset is taken as it is: -2 adds 2, one past the end is negative. */
    p->lag = p->lag_persistent = p->end - p->committed;
    if (o->exclude_persistent && p->has_previous && p->previous == p->committed)
        p->lag = 0;
}

/* The smallest divisor of n whose multiple of threshold covers total (KEDA's
 * getNextFactorThatBalancesConsumersToTopicPartitions). */
static int64_t lag_even_factor(int64_t total, int64_t n, int64_t threshold) {
    for (int64_t f = 1; f <= n; f++)
        if (n % f == 0 && f * threshold >= total)
            return f;
    return n;
}

void gq_lag_compute(gq_lag_part_t *parts, size_t cnt, const gq_lag_opts_t *o, gq_lag_result_t *r) {
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < cnt; i++) {
        gq_lag_part_t *p = &parts[i];
        if (p->no_end) {
            /* KEDA sums over the end-offset answer: a partition missing there is not seen. */
            p->lag = p->lag_persistent = 0;
            continue;
        }
        lag_partition(p, o);
        r->total += p->lag;
        r->total_persistent += p->lag_persistent;
        r->partitions++;
        r->with_lag += p->lag > 0;
    }
    /* The cap uses integer division, so a total just above partitions x threshold is not
     * capped (KEDA's own quirk; maxReplicaCount <= partitions keeps it harmless). */
    int64_t metric = r->total;
    if (!o->allow_idle || o->limit_to_lag || o->even_distribution) {
        int64_t upper = o->limit_to_lag ? r->with_lag : r->partitions;
        if (o->even_distribution)
            metric = lag_even_factor(metric, r->partitions, o->threshold) * o->threshold;
        if (metric / o->threshold > upper)
            metric = upper * o->threshold;
    }
    /* The metric KEDA hands to the HPA is never negative (GenerateMetricInMili). */
    r->metric = metric < 0 ? 0 : metric;
    r->active = r->total_persistent > o->activation;
    if (!r->active && o->min_replicas == 0) {
        r->replicas = 0;
        return;
    }
    int64_t want = (r->metric + o->threshold - 1) / o->threshold;
    int64_t lo = o->min_replicas > 1 ? o->min_replicas : 1;
    r->replicas = want < lo ? lo : want > o->max_replicas ? o->max_replicas : want;
}

static gq_status_t lag_parse_id(const char *s, size_t len, int64_t *out) {
    char buf[16];
    while (len && *s == ' ') {
        s++;
        len--;
    }
    while (len && s[len - 1] == ' ')
        len--;
    if (len == 0 || len >= sizeof(buf))
        return GQ_ERR_INVALID;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return gq_parse_i64(buf, 0, INT32_MAX, out);
}

gq_status_t gq_lag_parse_partitions(const char *s, int32_t **out, size_t *cnt, char *errstr,
                                    size_t errstr_size) {
    *out = NULL;
    *cnt = 0;
    size_t cap = 0;
    for (const char *item = s;; item++) {
        size_t len = strcspn(item, ",");
        const char *dash = memchr(item, '-', len);
        int64_t lo, hi;
        if (dash ? lag_parse_id(item, (size_t)(dash - item), &lo) != GQ_OK ||
                       lag_parse_id(dash + 1, len - (size_t)(dash + 1 - item), &hi) != GQ_OK
                 : lag_parse_id(item, len, &lo) != GQ_OK) {
            gq_errf(errstr, errstr_size, "partitionLimitation: bad item \"%.*s\" in \"%s\"",
                    (int)len, item, s);
            free(*out);
            *out = NULL;
            *cnt = 0;
            return GQ_ERR_INVALID;
        }
        if (!dash)
            hi = lo;
        for (int64_t p = lo; p <= hi; p++) {
            if (*cnt == cap) {
                int32_t *more =
                    cap < 100000 ? realloc(*out, (cap ? cap * 2 : 16) * sizeof(**out)) : NULL;
                if (!more) {
                    gq_errf(errstr, errstr_size, "partitionLimitation: too many partitions");
                    free(*out);
                    *out = NULL;
                    *cnt = 0;
                    return GQ_ERR_INVALID;
                }
                *out = more;
                cap = cap ? cap * 2 : 16;
            }
            (*out)[(*cnt)++] = (int32_t)p;
        }
        item += len;
        if (!*item)
            break;
    }
    return GQ_OK;
}
