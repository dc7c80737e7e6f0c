/**
 * @file lag.h
 * @brief Consumer lag exactly as KEDA's Kafka scaler computes it (v2.20), and the replica
 * count the HPA would ask for. See docs/operations.md and the KEDA Kafka scaler docs.
 */
#ifndef GQ_LAG_H
#define GQ_LAG_H

#include "gq.h"

#include <stdbool.h>

typedef struct gq_lag_part {
    int32_t partition;
    int64_t end;       /**< log end offset (high watermark) */
    int64_t committed; /**< the group's committed offset, -1 when none */
    int64_t lag;       /**< filled by gq_lag_compute */
} gq_lag_part_t;

typedef struct gq_lag_opts {
    int64_t threshold;    /**< lagThreshold (> 0) */
    int64_t activation;   /**< activationLagThreshold */
    bool earliest;        /**< offsetResetPolicy: earliest (else latest) */
    bool zero_on_invalid; /**< scaleToZeroOnInvalidOffset */
    int64_t min_replicas, max_replicas;
} gq_lag_opts_t;

typedef struct gq_lag_result {
    int64_t total;    /**< sum of the partitions' lag */
    int64_t metric;   /**< what KEDA reports: total, capped at partitions x threshold */
    bool active;      /**< metric-independent: total > activation */
    int64_t replicas; /**< what the HPA would ask for (0 when inactive and min is 0) */
} gq_lag_result_t;

/** Fills parts[i].lag and the result. */
void gq_lag_compute(gq_lag_part_t *parts, size_t cnt, const gq_lag_opts_t *o, gq_lag_result_t *r);

#endif
