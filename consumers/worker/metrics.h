/**
 * @file metrics.h
 * @brief The worker's Prometheus metrics and its HTTP endpoint (/healthz, /readyz,
 * /metrics). The worker loop reports into a gq_metrics_t; the endpoint runs in its own
 * thread and only reads it (under the metrics lock), so a slow ComfyUI call in the loop
 * never makes a probe time out. Liveness is the loop's heartbeat: /healthz fails when
 * the loop has not turned for `stuck_after_ms`.
 *
 * Metric names (Prometheus conventions, all prefixed genq_):
 *   genq_jobs_total{status,model}            counter  terminal jobs
 *   genq_queue_wait_seconds{model}           histogram submitted → render start
 *   genq_render_duration_seconds{model}      histogram render start → end
 *   genq_job_duration_seconds{model}         histogram submitted → recorded
 *   genq_jobs_in_flight                      gauge
 *   genq_retries_total{reason}               counter
 *   genq_dead_letters_total{reason}          counter
 *   genq_comfyui_up                          gauge 1/0
 *   genq_gpu_memory_used_bytes / _total_bytes gauge (from /system_stats)
 *   genq_model_swaps_total                   counter (checkpoint differs from the last job's)
 *   genq_consumer_lag{topic,partition}       gauge  log end offset - committed offset
 *   genq_ready                               gauge 1/0
 *   genq_loop_last_turn_timestamp_seconds    gauge
 */
#ifndef GQ_METRICS_H
#define GQ_METRICS_H

#include "gq.h"

#include <stdbool.h>

typedef struct gq_metrics gq_metrics_t;

gq_metrics_t *gq_metrics_new(void);
void gq_metrics_destroy(gq_metrics_t *m);

/**
 * Starts the HTTP endpoint on "host:port" (":9090" or "0.0.0.0:9090"; port 0 picks one,
 * see gq_metrics_port). Runs in its own thread until gq_metrics_destroy.
 */
gq_status_t gq_metrics_listen(gq_metrics_t *m, const char *addr, int stuck_after_ms, char *errstr,
                              size_t errstr_size);
int gq_metrics_port(const gq_metrics_t *m);

/* Reports from the worker loop (thread-safe, cheap). Strings are copied. */
void gq_metrics_heartbeat(gq_metrics_t *m);
void gq_metrics_set_ready(gq_metrics_t *m, bool ready, const char *why_not);
void gq_metrics_job_done(gq_metrics_t *m, const char *model, bool succeeded, double queue_s,
                         double render_s, double total_s);
void gq_metrics_retry(gq_metrics_t *m, const char *reason);
void gq_metrics_dead_letter(gq_metrics_t *m, const char *reason);
void gq_metrics_in_flight(gq_metrics_t *m, int n);
void gq_metrics_comfy(gq_metrics_t *m, bool up, int64_t vram_used, int64_t vram_total);
void gq_metrics_model_used(gq_metrics_t *m, const char *model);
void gq_metrics_lag(gq_metrics_t *m, const char *topic, int32_t partition, int64_t lag);
/** Forgets partitions no longer assigned (their lag is another worker's to report). */
void gq_metrics_lag_clear(gq_metrics_t *m);

/** Writes the exposition text (for tests and for the endpoint). Caller frees. */
char *gq_metrics_render(gq_metrics_t *m);

#endif
