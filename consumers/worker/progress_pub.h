/**
 * @file progress_pub.h
 * @brief Progress events (GenerationProgress) of the jobs a worker holds, published on the
 * progress topic with a producer of their own: best effort, throttled per job, batched for
 * 20 ms, never blocking.
 *
 * A job's progress (gq_jobprog_t) is filled by job.c from ComfyUI's events; once per turn the
 * loop hands each job in ComfyUI to gq_progpub_job(), which decides with gq_progpub_due()
 * whether an event goes out now (a change of state, node or queue position, or the interval
 * has passed since the last one) or later, and when. Events go straight to Kafka (no
 * outbox): a message Kafka has not taken within 10 s is dropped, and none is sent while the
 * producer's queue holds more than GQ_PROGPUB_QUEUE_MAX messages, so progress can never hold
 * up completion events or the loop. A producer whose deliveries have failed for 30 s with no
 * success is replaced (a client librdkafka left stuck would otherwise end progress for good).
 */
#ifndef GQ_PROGRESS_PUB_H
#define GQ_PROGRESS_PUB_H

#include "cfg.h"
#include "genq_schema.h"
#include "gq.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

/** Messages in the producer's queue beyond which progress events are dropped. */
#define GQ_PROGPUB_QUEUE_MAX 10000

/** What a job reports of its progress in ComfyUI (job.c keeps it; one attempt's). */
typedef struct gq_jobprog {
    char node[64];    /**< the executing node's title, class or id ("": none yet) */
    char exec_id[64]; /**< the executing node's id */
    int32_t step, max_steps;
    int32_t nodes_done, nodes_total;
    int32_t previews;
    int32_t executing; /**< nodes seen executing */
} gq_jobprog_t;

/** What was last published for a job (the publisher's bookkeeping, kept in the job). */
typedef struct gq_progpub_mark {
    int32_t attempt;   /**< the attempt the sequence counts (0: none published) */
    int64_t seq;       /**< the last event's sequence number */
    int64_t last_mono; /**< when it went out */
    gq_progress_state_t state;
    int32_t queue_position;
    char node[64];
    int32_t step, max_steps, nodes_done, previews;
} gq_progpub_mark_t;

/** A job as it stands, for one event. */
typedef struct gq_progpub_snap {
    const char *job_id;
    int32_t attempt;
    gq_progress_state_t state;
    int32_t queue_position; /**< < 0: not queued */
    const gq_jobprog_t *prog;
    const char *traceparent; /**< "" or NULL: none */
} gq_progpub_snap_t;

typedef enum gq_progpub_when {
    GQ_PROGPUB_NOTHING, /**< nothing new since the last event */
    GQ_PROGPUB_NOW,     /**< publish now */
    GQ_PROGPUB_LATER,   /**< something new, but within the interval: at *at */
} gq_progpub_when_t;

/**
 * The throttle: NOW for the first event of an attempt and at each change of state, node or
 * queue position; for a change of the counters (step, nodes done, previews), NOW once
 * interval_ms have passed since the last event, else LATER with *at (gq_mono_ms) set to
 * twice the interval after the last event: the next turn after the interval publishes them,
 * and *at only bounds their delay when no turn comes.
 */
gq_progpub_when_t gq_progpub_due(const gq_progpub_snap_t *s, const gq_progpub_mark_t *m,
                                 int interval_ms, int64_t now_mono, int64_t *at);

/**
 * How long the producer lingers to batch events: half the interval, 5 to 250 ms. A job's
 * events come in clusters about 100 ms apart, and each batch wakes the producer's broker
 * thread three times; a viewer refreshed every interval sees them no later.
 */
int gq_progpub_linger_ms(int interval_ms);

typedef struct gq_progpub gq_progpub_t;

/**
 * The publisher of progress_topic, every progress_interval ms (0: off, and NULL is returned
 * with *st GQ_OK), with its own producer (the cluster and -X settings of cfg). cfg and
 * worker_id are borrowed and must outlive the publisher. With completed_framing confluent, the
 * schema's registry id is looked up or registered now.
 */
gq_progpub_t *gq_progpub_new(const gq_cfg_t *cfg, const char *worker_id, gq_status_t *st,
                             char *errstr, size_t errstr_size);
void gq_progpub_destroy(gq_progpub_t *p);

/**
 * Publishes the job's progress when gq_progpub_due says so (mark updated). Returns when it
 * next wants to look at the job (gq_mono_ms; INT64_MAX: only after a change).
 */
int64_t gq_progpub_job(gq_progpub_t *p, const gq_progpub_snap_t *s, gq_progpub_mark_t *mark,
                       int64_t now_mono, int64_t now_wall);

/** Events published (handed to the producer) and dropped, since the start. */
uint64_t gq_progpub_sent(const gq_progpub_t *p);
uint64_t gq_progpub_dropped(const gq_progpub_t *p);
/** How many times its producer was replaced (see above); 0 for NULL. */
unsigned gq_progpub_restarts(const gq_progpub_t *p);

#endif
