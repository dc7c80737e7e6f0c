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
 * its one kafka trigger's metadata and min/maxReplicaCount, each absent key at KEDA's
 * default, with the source GQ_SRC_FILE, so that a flag still wins. `topic` missing means
 * all topics; `*FromEnv` names are read from this process's environment; `tls` and `sasl`
 * become librdkafka's security.protocol and sasl.mechanism (before GENQ_KAFKA_* and -X).
 * The credentials stay in the TriggerAuthentication's Secret: pass them as GENQ_KAFKA_*.
 */
gq_status_t gq_lag_apply_scaledobject(gq_cfg_t *cfg, const json_t *docs, const char *path,
                                      char *errstr, size_t errstr_size);

#endif
