/**
 * @file genq_producer.h
 * @brief The publish API for upstream C services: link libgenq-producer.a.
 *
 *   gq_producer_t *p = gq_producer_new(&conf, errstr, sizeof(errstr));
 *   gq_request_t req; gq_request_init(&req);            (fills defaults and a job_id)
 *   req.prompt = strdup("a lighthouse at dusk");
 *   gq_producer_send(p, &req, errstr, sizeof(errstr));  (asynchronous; key = job_id)
 *   gq_producer_flush(p, 30000, &failed, ...);          (waits for every delivery report)
 *   gq_producer_destroy(p);
 *
 * The producer is idempotent with acks=all, so a retried send never duplicates a message
 * within a session, and a delivered message is on every in-sync replica.
 */
#ifndef GQ_PRODUCER_H
#define GQ_PRODUCER_H

#include "genq_schema.h"
#include "gq.h"

#include <stdbool.h>

typedef struct gq_producer gq_producer_t;

/** Called from gq_producer_poll/flush for each delivery: err is NULL on success. */
typedef void(gq_producer_dr_cb_t)(const char *job_id, gq_status_t st, const char *err,
                                  void *opaque);

typedef struct gq_producer_conf {
    const char *brokers;            /**< bootstrap servers */
    const char *topic;              /**< default "genq.requests" */
    const char *const *kafka_props; /**< "key=value" librdkafka properties, may be NULL */
    size_t kafka_props_cnt;
    gq_producer_dr_cb_t *on_delivery; /**< may be NULL */
    void *opaque;
    int create_partitions; /**< >0: create the topic with this many partitions if missing */
} gq_producer_conf_t;

gq_producer_t *gq_producer_new(const gq_producer_conf_t *conf, char *errstr, size_t errstr_size);
/** Flushes (up to 10 s) and frees. NULL-safe. */
void gq_producer_destroy(gq_producer_t *p);

/**
 * Validates, encodes and enqueues one request (the request stays the caller's). A full
 * local queue is waited out, serving delivery reports meanwhile.
 */
gq_status_t gq_producer_send(gq_producer_t *p, const gq_request_t *req, char *errstr,
                             size_t errstr_size);
/** Serves delivery reports without blocking longer than timeout_ms. */
void gq_producer_poll(gq_producer_t *p, int timeout_ms);
/**
 * Waits until every message sent so far has its delivery report (or timeout_ms passes).
 * *failed (may be NULL) gets the number of messages that failed since the producer began.
 */
gq_status_t gq_producer_flush(gq_producer_t *p, int timeout_ms, size_t *failed, char *errstr,
                              size_t errstr_size);

/** For callers that want the underlying handle (e.g. to add their own topics). */
struct rd_kafka_s *gq_producer_handle(gq_producer_t *p);

#endif
