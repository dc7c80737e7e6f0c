/**
 * @file endpoint.h
 * @brief The worker's HTTP endpoint, in a thread of its own that only reads the metrics
 * registry (under its lock), so a slow call in the worker loop never makes a probe time out:
 *   /healthz  200 while the loop turns (its heartbeat is younger than stuck_after_ms)
 *   /readyz   200 when ready to take work, else 503 with the reason
 *   /metrics  Prometheus text exposition
 */
#ifndef GQ_ENDPOINT_H
#define GQ_ENDPOINT_H

#include "gq.h"
#include "metrics.h"

typedef struct gq_endpoint gq_endpoint_t;

/**
 * Listens on "host:port" (":9090" or "0.0.0.0:9090"; port 0 picks one, see
 * gq_endpoint_port) and serves until gq_endpoint_destroy. metrics is borrowed.
 */
gq_endpoint_t *gq_endpoint_new(gq_metrics_t *metrics, const char *addr, int stuck_after_ms,
                               char *errstr, size_t errstr_size);
void gq_endpoint_destroy(gq_endpoint_t *ep);
int gq_endpoint_port(const gq_endpoint_t *ep);

#endif
