/**
 * @file lag.h
 * @brief Consumer lag exactly as KEDA's Kafka scaler (`type: kafka`) computes it, in the
 * version k8s/base/keda-scaledobject.yaml names (v2.21: getTotalLag, getLagForPartition in
 * pkg/scalers/kafka_scaler.go), and the replica count the HPA would ask for.
 * tests/integration/0401-lag-keda.sh runs KEDA's own code beside it and requires agreement.
 */
#ifndef GQ_LAG_H
#define GQ_LAG_H

#include "cfg.h"
#include "gq.h"

#include <jansson.h>
#include <stdbool.h>

/** The committed offset Kafka answers when the group committed nothing (KEDA's
 * invalidOffset). Any other value, -2 or one past the end included, is used as it is. */
#define GQ_LAG_NO_COMMIT (-1)

typedef struct gq_lag_part {
    const char *topic; /**< not owned */
    int32_t partition;
    bool no_end;            /**< missing from the end-offset answer: KEDA never sees the partition
                                 (lag 0, and not counted among the partitions) */
    int64_t end;            /**< log end offset (high watermark) */
    int64_t start;          /**< log start offset (retention and deleted records move it up);
                                 -1 when unknown */
    int64_t committed;      /**< the group's committed offset, GQ_LAG_NO_COMMIT when none */
    bool has_previous;      /**< excludePersistentLag: the previous poll saw a commit */
    int64_t previous;       /**< ... and this was it */
    int64_t lag;            /**< filled: what KEDA counts for the metric */
    int64_t lag_persistent; /**< filled: the lag including persistent lag (for activity) */
} gq_lag_part_t;

typedef struct gq_lag_opts {
    int64_t threshold;       /**< lagThreshold (> 0) */
    int64_t activation;      /**< activationLagThreshold */
    bool earliest;           /**< offsetResetPolicy: earliest (else latest) */
    bool zero_on_invalid;    /**< scaleToZeroOnInvalidOffset */
    bool allow_idle;         /**< allowIdleConsumers: no cap at the partition count */
    bool limit_to_lag;       /**< limitToPartitionsWithLag: cap at partitions with lag */
    bool even_distribution;  /**< ensureEvenDistributionOfPartitions */
    bool exclude_persistent; /**< excludePersistentLag: a commit that did not move since
                                  the previous poll counts 0 for the metric */
    int64_t min_replicas, max_replicas;
} gq_lag_opts_t;

typedef struct gq_lag_result {
    int64_t total;            /**< sum of the partitions' lag (negative past the end) */
    int64_t total_persistent; /**< sum of lag_persistent; decides activity */
    int64_t partitions;       /**< partitions counted (those in the end-offset answer) */
    int64_t with_lag;         /**< partitions whose lag is > 0 */
    int64_t metric;           /**< what KEDA reports: total, capped, never below 0 */
    bool active;              /**< total_persistent > activation */
    int64_t replicas;         /**< what the HPA would ask for (0 when inactive and min is 0) */
} gq_lag_result_t;

/*
 * Several kafka triggers (one per priority lane), and how KEDA and the HPA combine them.
 *
 * Without advanced.scalingModifiers every trigger is its own External metric of the HPA,
 * which asks for the largest of their replica counts (GQ_LAG_MAX): a backlog spread over
 * three lanes asks for what the largest lane alone asks for. With a scalingModifiers
 * formula, KEDA feeds the HPA one composite metric, the formula over the triggers'
 * metrics, against scalingModifiers.target, and activity is the composite value above
 * activationTarget (GQ_LAG_SUM; each trigger's activationLagThreshold no longer counts).
 */
#define GQ_LAG_MAX_TRIGGERS 16
#define GQ_LAG_MAX_TERMS 32

typedef enum gq_lag_combine {
    GQ_LAG_ONE, /**< one trigger, no formula: its metric against its lagThreshold */
    GQ_LAG_MAX, /**< several triggers, no formula: the HPA takes the largest count */
    GQ_LAG_SUM, /**< a scalingModifiers formula: a sum of triggers and constants */
} gq_lag_combine_t;

/** The one formula shape genq lag evaluates: trigger names and numbers joined by '+'. */
typedef struct gq_lag_formula {
    size_t n;                   /**< terms that name a trigger */
    int term[GQ_LAG_MAX_TERMS]; /**< the trigger of each, an index into the names given */
    double constant;            /**< the numbers, summed */
} gq_lag_formula_t;

/**
 * Parses a scalingModifiers formula against the names of the triggers (names[i] may be
 * NULL for a trigger without a name). GQ_ERR_INVALID with errstr for a name that is no
 * trigger's, or for any other shape (products, functions, ternaries...), saying what is
 * supported.
 */
gq_status_t gq_lag_formula_parse(gq_lag_formula_t *f, const char *text, const char *const *names,
                                 size_t names_cnt, char *errstr, size_t errstr_size);

/** The formula over the triggers' metric values (values[i] for names[i]). */
double gq_lag_formula_eval(const gq_lag_formula_t *f, const double *values);

/** How a deployment's triggers become one replica count (see gq_lag_combine). */
typedef struct gq_lag_scale {
    gq_lag_combine_t combine;
    gq_lag_formula_t formula; /**< GQ_LAG_SUM */
    double target;            /**< GQ_LAG_SUM: scalingModifiers.target (> 0) */
    double activation;        /**< GQ_LAG_SUM: scalingModifiers.activationTarget */
    int64_t min_replicas, max_replicas;
} gq_lag_scale_t;

typedef struct gq_lag_total {
    double value;         /**< GQ_LAG_SUM: the composite metric (KEDA keeps it in milli units) */
    bool active;          /**< KEDA's activity for the whole ScaledObject */
    int64_t replicas;     /**< what the HPA would ask for, as combined */
    int64_t replicas_max; /**< the largest count of one trigger alone (what GQ_LAG_MAX takes) */
    int64_t replicas_sum; /**< the summed metrics against the first trigger's lagThreshold,
                               active or not (what a formula summing every trigger asks for) */
} gq_lag_total_t;

/**
 * Combines the triggers' results (res[i] computed with opts[i]) as KEDA 2.21 and the HPA
 * do (see lag.c for the code followed).
 */
void gq_lag_combine(const gq_lag_scale_t *s, const gq_lag_opts_t *opts, const gq_lag_result_t *res,
                    size_t cnt, gq_lag_total_t *t);

/** Fills parts[i].lag, lag_persistent and the result. */
void gq_lag_compute(gq_lag_part_t *parts, size_t cnt, const gq_lag_opts_t *o, gq_lag_result_t *r);

/**
 * Parses KEDA's partitionLimitation ("1,2,10-20,31") into a new array of partition ids.
 * Returns GQ_ERR_INVALID with errstr on a bad list.
 */
gq_status_t gq_lag_parse_partitions(const char *s, int32_t **out, size_t *cnt, char *errstr,
                                    size_t errstr_size);

/**
 * Applies a KEDA ScaledObject (one document of `docs`, as lib/yaml.h reads it) to cfg:
 * its first kafka trigger's metadata and min/maxReplicaCount, each absent key at KEDA's
 * default, with the source GQ_SRC_FILE, so that a flag still wins. `topic` missing means
 * all topics; `*FromEnv` names are read from this process's environment; `tls` and `sasl`
 * become librdkafka's security.protocol and sasl.mechanism (before GENQ_KAFKA_* and -X).
 * The credentials stay in the TriggerAuthentication's Secret: pass them as GENQ_KAFKA_*.
 * Several kafka triggers must share bootstrapServers, consumerGroup, tls and sasl (one
 * client reads them all); each is checked here, and gq_lag_plan_init reads them all.
 */
gq_status_t gq_lag_apply_scaledobject(gq_cfg_t *cfg, const json_t *docs, const char *path,
                                      char *errstr, size_t errstr_size);

/** One kafka trigger as genq lag computes it: its own copy of the settings. */
typedef struct gq_lag_trigger {
    char name[256];    /**< the trigger's name; a lane's topic; "" when none */
    gq_cfg_t cfg;      /**< topic, all_topics, partition_limitation and the lag options */
    bool value_metric; /**< metricType: Value (the HPA then divides by the current count) */
} gq_lag_trigger_t;

/** What genq lag computes: the triggers, and how they combine. */
typedef struct gq_lag_plan {
    gq_lag_trigger_t trigger[GQ_LAG_MAX_TRIGGERS];
    size_t cnt;
    gq_lag_scale_t scale;
    char formula_text[256]; /**< GQ_LAG_SUM: as written (lanes: the topics joined by +) */
    bool value_metric;      /**< scalingModifiers.metricType: Value */
    bool lanes;             /**< from lanes, not from a ScaledObject */
} gq_lag_plan_t;

/**
 * The plan for cfg: the ScaledObject's kafka triggers (scaled_object; each trigger's copy
 * of cfg with its metadata applied, flags still winning), else one trigger per lane
 * (lanes, several: summed as the priority-lanes component's formula does, with
 * lag_threshold as target and activation_lag_threshold as activationTarget), else the
 * one trigger cfg describes. GQ_ERR_INVALID with errstr.
 */
gq_status_t gq_lag_plan_init(gq_lag_plan_t *plan, const gq_cfg_t *cfg, char *errstr,
                             size_t errstr_size);
void gq_lag_plan_release(gq_lag_plan_t *plan);

/** The plan of a ScaledObject (gq_lag_plan_init with scaled_object, the file read). */
gq_status_t gq_lag_plan_scaledobject(gq_lag_plan_t *plan, const gq_cfg_t *cfg, const json_t *docs,
                                     const char *path, char *errstr, size_t errstr_size);

/** The lag options of a trigger's settings. */
void gq_lag_opts_from_cfg(gq_lag_opts_t *o, const gq_cfg_t *cfg);

#endif
