#include "lag.h"
#include "util.h"

#include <ctype.h>
#include <math.h>
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

void gq_lag_opts_from_cfg(gq_lag_opts_t *o, const gq_cfg_t *cfg) {
    *o = (gq_lag_opts_t){
        .threshold = gq_cfg_int(cfg, "lag_threshold"),
        .activation = gq_cfg_int(cfg, "activation_lag_threshold"),
        .earliest = strcmp(gq_cfg_str(cfg, "offset_reset_policy"), "earliest") == 0,
        .zero_on_invalid = gq_cfg_bool(cfg, "scale_to_zero_on_invalid_offset"),
        .allow_idle = gq_cfg_bool(cfg, "allow_idle_consumers"),
        .limit_to_lag = gq_cfg_bool(cfg, "limit_to_partitions_with_lag"),
        .even_distribution = gq_cfg_bool(cfg, "ensure_even_distribution_of_partitions"),
        .exclude_persistent = gq_cfg_bool(cfg, "exclude_persistent_lag"),
        .min_replicas = gq_cfg_int(cfg, "min_replicas"),
        .max_replicas = gq_cfg_int(cfg, "max_replicas"),
    };
}

/*
 * The formulas genq lag evaluates are the ones a lane deployment needs: trigger names and
 * non-negative numbers joined by '+', e.g. "high + normal + low" or "high + normal + low + 2".
 * KEDA itself compiles any expr-lang expression (ValidateAndCompileScalingModifiers in
 * apis/keda/v1alpha1/scaledobject_webhook.go); anything else is refused here rather than
 * guessed at. A name must be a trigger's (expr.Env holds the named triggers only, so KEDA
 * refuses an unknown name when the ScaledObject is admitted).
 */
gq_status_t gq_lag_formula_parse(gq_lag_formula_t *f, const char *text, const char *const *names,
                                 size_t names_cnt, char *errstr, size_t errstr_size) {
    static const char supported[] =
        "genq lag evaluates only a sum of trigger names and numbers, such as "
        "\"high + normal + low\" or \"high + normal + low + 1\"";
    memset(f, 0, sizeof(*f));
    const char *p = text ? text : "";
    const char *why = NULL;
    char name[128];
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        const char *start = p;
        if (isalpha((unsigned char)*p) || *p == '_') {
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            size_t len = (size_t)(p - start);
            int found = -1;
            for (size_t i = 0; i < names_cnt && found < 0; i++)
                if (names[i] && strlen(names[i]) == len && memcmp(names[i], start, len) == 0)
                    found = (int)i;
            const char *after = p;
            while (isspace((unsigned char)*after))
                after++;
            if (*after == '(') {
                p = after;
                why = "a function call";
                break;
            }
            if (found < 0) {
                snprintf(name, sizeof(name), "%.*s", (int)(len < 100 ? len : 100), start);
                gq_errf(errstr, errstr_size,
                        "scalingModifiers.formula \"%s\": %s is not the name of a kafka trigger "
                        "(KEDA refuses a name that is no trigger's; genq lag computes kafka "
                        "triggers only)",
                        text, name);
                return GQ_ERR_INVALID;
            }
            if (f->n == GQ_LAG_MAX_TERMS) {
                why = "too many terms";
                break;
            }
            f->term[f->n++] = found;
        } else if (isdigit((unsigned char)*p)) {
            while (isdigit((unsigned char)*p))
                p++;
            if (*p == '.' && isdigit((unsigned char)p[1]))
                for (p++; isdigit((unsigned char)*p);)
                    p++;
            snprintf(name, sizeof(name), "%.*s", (int)(p - start), start);
            double d;
            if (p - start >= (ptrdiff_t)sizeof(name) - 1 || gq_parse_double(name, &d) != GQ_OK) {
                why = "a number out of range";
                break;
            }
            f->constant += d;
        } else {
            why = *p ? "expected a trigger name or a number" : "nothing to add up";
            break;
        }
        while (isspace((unsigned char)*p))
            p++;
        if (!*p && f->n)
            return GQ_OK;
        if (!*p) {
            why = "no trigger named";
            break;
        }
        if (*p != '+') {
            why = "expected +";
            break;
        }
        p++;
    }
    gq_errf(errstr, errstr_size, "scalingModifiers.formula \"%s\": %s at column %d; %s", text, why,
            (int)(p - (text ? text : "")) + 1, supported);
    return GQ_ERR_INVALID;
}

double gq_lag_formula_eval(const gq_lag_formula_t *f, const double *values) {
    double v = f->constant;
    for (size_t i = 0; i < f->n; i++)
        v += values[f->term[i]];
    return v;
}

/* The HPA's count for an AverageValue metric, both in milli units as the quantities are:
 * ceil(usage / target) (GetExternalPerPodMetricReplicas, pkg/controller/podautoscaler/
 * replica_calculator.go; the 10% tolerance around the current count is left out, as
 * genq lag knows no current count). */
static int64_t lag_hpa_count(int64_t usage_milli, int64_t target_milli) {
    return target_milli > 0 ? (int64_t)ceil((double)usage_milli / (double)target_milli) : 0;
}

static int64_t lag_clamp(int64_t want, int64_t min_replicas, int64_t max_replicas) {
    int64_t lo = min_replicas > 1 ? min_replicas : 1;
    return want < lo ? lo : want > max_replicas ? max_replicas : want;
}

/*
 * Followed, in KEDA v2.21.0:
 * - without scalingModifiers, each trigger is an External metric of the HPA (target
 *   AverageValue = lagThreshold) and the ScaledObject is active when any trigger is
 *   (getScaledObjectState, pkg/scaling/scale_handler.go); the HPA computes a count per
 *   metric and takes the largest (computeReplicasForMetrics in Kubernetes' HPA controller);
 * - with them, calculateScalingModifiersFormula (pkg/scaling/modifiers/formula.go) runs the
 *   formula over each trigger's metric value as a float64 (keyed by trigger name) and sets
 *   the composite metric to SetMilli(int64(out * 1000)); the HPA gets only that metric, with
 *   target scalingModifiers.target as an AverageValue of int64(target * 1000) milli
 *   (controllers/keda/hpa.go, getScaledObjectMetricSpecs); getScaledObjectState resets the
 *   activity and sets it to composite > activationTarget (0 when unset), so the triggers'
 *   own activationLagThreshold no longer matters. KEDA does 0 <-> 1 itself; the HPA's
 *   minimum is max(minReplicaCount, 1).
 */
void gq_lag_combine(const gq_lag_scale_t *s, const gq_lag_opts_t *opts, const gq_lag_result_t *res,
                    size_t cnt, gq_lag_total_t *t) {
    memset(t, 0, sizeof(*t));
    bool any_active = false, same_threshold = true;
    int64_t want_max = 0, metric_sum = 0;
    for (size_t i = 0; i < cnt; i++) {
        int64_t want = lag_hpa_count(res[i].metric * 1000, opts[i].threshold * 1000);
        want_max = i == 0 || want > want_max ? want : want_max;
        any_active |= res[i].active;
        metric_sum += res[i].metric;
        same_threshold &= opts[i].threshold == opts[0].threshold;
    }
    bool idle_ok = s->min_replicas == 0; /* KEDA scales an inactive object to zero */
    t->replicas_max =
        !any_active && idle_ok ? 0 : lag_clamp(want_max, s->min_replicas, s->max_replicas);
    t->replicas_sum = -1;
    if (cnt && same_threshold)
        t->replicas_sum =
            metric_sum <= 0 && idle_ok
                ? 0
                : lag_clamp(lag_hpa_count(metric_sum * 1000, opts[0].threshold * 1000),
                            s->min_replicas, s->max_replicas);
    switch (s->combine) {
    case GQ_LAG_ONE:
        t->active = cnt ? res[0].active : false;
        t->replicas = cnt ? res[0].replicas : 0;
        t->value = cnt ? (double)res[0].metric : 0;
        return;
    case GQ_LAG_MAX:
        t->active = any_active;
        t->replicas = t->replicas_max;
        return;
    case GQ_LAG_SUM: {
        double values[GQ_LAG_MAX_TRIGGERS] = {0};
        for (size_t i = 0; i < cnt && i < GQ_LAG_MAX_TRIGGERS; i++)
            values[i] = (double)res[i].metric;
        t->value = gq_lag_formula_eval(&s->formula, values);
        int64_t milli = (int64_t)(t->value * 1000);
        t->value = (double)milli / 1000;
        t->active = t->value > s->activation;
        t->replicas = !t->active && idle_ok
                          ? 0
                          : lag_clamp(lag_hpa_count(milli, (int64_t)(s->target * 1000)),
                                      s->min_replicas, s->max_replicas);
        return;
    }
    }
}
