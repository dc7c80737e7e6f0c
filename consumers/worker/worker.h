/**
 * @file worker.h
 * @brief The GPU worker: a member of the consumer group that renders requests through
 * its ComfyUI, records them in PostgreSQL and publishes completion events.
 *
 * The loop lives in worker.c; a job's life is one state machine in job.c; the other files
 * are the leaves the loop uses: intake.c (Kafka), offsets.c, admit.c (decode, validate,
 * bind), policy.c (failure classes), record.c (the terminal record and its outbox),
 * warmup.c, metrics.c and endpoint.c; db/, bind/ and store/ hold the recorder (PostgreSQL),
 * template binding and the output store.
 */
#ifndef GQ_WORKER_H
#define GQ_WORKER_H

#include "cfg.h"
#include "gq.h"

#include <signal.h>

typedef struct gq_worker gq_worker_t;

/** How run() ended; worker_cmd.c turns it into the exit code. */
typedef enum gq_worker_end {
    GQ_WORKER_DRAINED = 0,     /**< stopped on a signal after finishing in-flight renders */
    GQ_WORKER_INTERRUPTED = 1, /**< stopped on a signal; the grace period ran out and renders
                                    were interrupted, left for redelivery */
    GQ_WORKER_FATAL = 2,       /**< a fatal error (e.g. fenced by the group, bad config) */
} gq_worker_end_t;

/** Builds a worker from cfg (borrowed for the worker's lifetime). */
gq_worker_t *gq_worker_new(const gq_cfg_t *cfg, volatile sig_atomic_t *stop, gq_status_t *st,
                           char *errstr, size_t errstr_size);
/**
 * Runs until *stop becomes non-zero (set from a signal handler), then drains within the
 * grace period, commits, and leaves the group.
 */
gq_worker_end_t gq_worker_run(gq_worker_t *w, volatile sig_atomic_t *stop);
void gq_worker_destroy(gq_worker_t *w);

/** The descriptor a signal handler writes a byte to, after setting *stop, to wake the loop. */
int gq_worker_signal_fd(const gq_worker_t *w);

#endif
