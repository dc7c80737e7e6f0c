/**
 * @file metrics.h
 * @brief The worker's metrics registry: the loop reports into it, the HTTP endpoint
 * (endpoint.h) reads it from its own thread; every call takes the registry's lock.
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
 *   genq_sched_picks_total{why}              counter jobs given a slot: fifo, aged, affinity, fair
 *   genq_sched_wait_seconds{lane}            summary held ready while others had the slots
 *   genq_tenant_wait_seconds{tenant}         summary the same per tenant (32, then "other")
 *   genq_cache_lookups_total{result}         counter result cache: hit, miss
 *   genq_outbox_pending / _parked            gauge  genq.outbox rows to publish / set aside
 *   genq_outbox_oldest_seconds               gauge  age of the oldest row to publish
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

/* Reports from the worker loop (thread-safe, cheap). Strings are copied. */
void gq_metrics_heartbeat(gq_metrics_t *m);
void gq_metrics_set_ready(gq_metrics_t *m, bool ready, const char *why_not);
void gq_metrics_job_done(gq_metrics_t *m, const char *model, bool succeeded, double queue_s,
                         double render_s, double total_s);
/** A job recorded as cancelled (genq_jobs_total{status="cancelled"}: not a failure). */
void gq_metrics_job_cancelled(gq_metrics_t *m, const char *model);
/** Progress events handed to Kafka and dropped, cancel requests read (totals so far). */
/** How many times each producer was replaced (gq_record_restarts, gq_progpub_restarts). */
void gq_metrics_producer_restarts(gq_metrics_t *m, unsigned record, unsigned progress);
void gq_metrics_progress(gq_metrics_t *m, uint64_t sent, uint64_t dropped);
void gq_metrics_cancel_read(gq_metrics_t *m);
void gq_metrics_retry(gq_metrics_t *m, const char *reason);
void gq_metrics_dead_letter(gq_metrics_t *m, const char *reason);
void gq_metrics_in_flight(gq_metrics_t *m, int n);
void gq_metrics_comfy(gq_metrics_t *m, bool up, int64_t vram_used, int64_t vram_total);
void gq_metrics_model_used(gq_metrics_t *m, const char *model);
/** The scheduler chose a job (why: gq_sched_why_t: fifo, aged, affinity, fair). */
void gq_metrics_sched_pick(gq_metrics_t *m, int why);
/** A job looked up in the result cache: answered from it (hit) or not. */
void gq_metrics_cache(gq_metrics_t *m, bool hit);
/** A job got its slot after wait_s held ready (lane: its topic; tenant: its source). */
void gq_metrics_sched_wait(gq_metrics_t *m, const char *lane, const char *tenant, double wait_s);
/** genq.outbox: rows to publish, rows parked, age of the oldest to publish. */
void gq_metrics_outbox(gq_metrics_t *m, int64_t pending, int64_t parked, double oldest_s);
/** The output store: outputs waiting to be stored, failed object-store requests so far. */
void gq_metrics_outputs(gq_metrics_t *m, int64_t waiting, uint64_t failures);
void gq_metrics_lag(gq_metrics_t *m, const char *topic, int32_t partition, int64_t lag);
/** Forgets partitions no longer assigned (their lag is another worker's to report). */
void gq_metrics_lag_clear(gq_metrics_t *m);

/** Liveness: the loop turned within the last stuck_after_ms. */
bool gq_metrics_alive(gq_metrics_t *m, int stuck_after_ms);
/** Readiness, and why not ("ready" when ready). */
bool gq_metrics_ready(gq_metrics_t *m, char *why, size_t why_size);

/** Writes the exposition text (for tests and for the endpoint). Caller frees. */
char *gq_metrics_render(gq_metrics_t *m);

#endif
