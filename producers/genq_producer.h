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
 * Many requests that differ in a few fields go faster as one prepared request
 * (gq_request_prep_t, genq_schema.h): encoded once, each change re-encodes only its field,
 * and gq_producer_send_prepared() publishes the bytes as they stand, with .bulk set:
 *
 *   gq_request_prep_t *prep = gq_request_prep_new(&req, errstr, sizeof(errstr));
 *   for (i = 0; i < n; i++) {
 *       gq_request_prep_new_job_id(prep, errstr, sizeof(errstr));
 *       gq_request_prep_set_int(prep, GQ_REQ_SEED, seed + i, errstr, sizeof(errstr));
 *       gq_producer_send_prepared(p, prep, errstr, sizeof(errstr));
 *   }
 *
 * With .lanes set, each request goes to the priority lane its priority names (the topics
 * the workers serve most preferred first), for the C API and `genq produce` alike.
 *
 * The producer is idempotent with acks=all, so a retried send never duplicates a message
 * within a session, and a delivered message is on every in-sync replica.
 *
 * Messages are single-object encoded unless .framing is GQ_FRAMING_CONFLUENT: then each
 * carries the Schema Registry id of GenerationRequest under the topic-name subject
 * "<topic>-value" (registered there, or looked up, once by gq_producer_new):
 *
 *   gq_registry_conf_t reg = {.url = "https://user:pass@registry:8081"};
 *   gq_producer_conf_t conf = {.brokers = "...", .framing = GQ_FRAMING_CONFLUENT,
 *                              .registry = &reg};
 *
 * libgenq-producer.a then also needs libcurl (pkg-config libcurl), as it always does for
 * reading Confluent-framed messages.
 *
 * A job is cancelled with a CancelRequest on the cancel topic (compacted; every worker reads
 * it, so it works whichever worker holds the job, and for a job not consumed yet):
 *
 *   gq_cancel_t c; gq_cancel_init(&c);
 *   memcpy(c.job_id, job_id, 37); c.reason = "wrong prompt"; c.requested_by = "svc-a";
 *   gq_producer_cancel(p, &c, errstr, sizeof(errstr));  (asynchronous; key = job_id)
 *
 * (c's strings are the caller's; do not gq_cancel_release() literals.) The job then ends with
 * its record (status cancelled) and its GenerationCompleted (FAILED, error.code "cancelled"),
 * unless it ended before: a job gets one end, whichever comes first.
 */
#ifndef GQ_PRODUCER_H
#define GQ_PRODUCER_H

#include "genq_schema.h"
#include "gq.h"

#include <stdbool.h>

typedef struct gq_producer gq_producer_t;

/** The content-type header of every request message. */
#define GQ_PRODUCER_CONTENT_TYPE "application/vnd.genq.request+avro"

/** librdkafka settings of a bulk producer (gq_producer_conf_t.bulk): batches wait up to
 * linger.ms to fill up to batch.size (1 MB by default) rather than batch.num.messages.
 * kafka_props override each of them. */
#define GQ_PRODUCER_BULK_LINGER_MS "50"
#define GQ_PRODUCER_BULK_BATCH_MESSAGES "100000"

/** Called from gq_producer_poll/flush for each delivery: err is NULL on success. */
typedef void(gq_producer_dr_cb_t)(const char *job_id, gq_status_t st, const char *err,
                                  void *opaque);

typedef struct gq_producer_conf {
    const char *brokers; /**< bootstrap servers */
    const char *topic;   /**< default "genq.requests" */
    /** Priority lanes (GENQ_LANES: topics, most preferred first, comma-separated): each
     * request goes to the lane of its priority (> 0 the first, < 0 the last, 0 the middle
     * one; lanes.h), and `topic` is not used. NULL or "": every request goes to `topic`. */
    const char *lanes;
    /** Nonzero: a request sent without a traceparent starts a new trace (a random W3C
     * traceparent header), so that its completion event and its record can be found by it. */
    int start_traces;
    /** A traceparent every request sent without its own carries (NULL: none). */
    const char *traceparent;
    const char *const *kafka_props; /**< "key=value" librdkafka properties, may be NULL */
    size_t kafka_props_cnt;
    gq_producer_dr_cb_t *on_delivery; /**< may be NULL */
    void *opaque;
    int create_partitions; /**< >0: create the topic with this many partitions if missing */
    /** Nonzero: tuned for throughput, for a producer that sends many requests in a row
     * (GQ_PRODUCER_BULK_*); zero: linger.ms=5, librdkafka's defaults otherwise. Both are
     * idempotent with acks=all. */
    int bulk;
    /** GQ_FRAMING_SINGLE_OBJECT (0, the default) or GQ_FRAMING_CONFLUENT. */
    gq_framing_t framing;
    /** When set, the process's Schema Registry is set to it (gq_schema_registry_set);
     * otherwise the one set before is used. Needed for GQ_FRAMING_CONFLUENT. */
    const gq_registry_conf_t *registry;
    /** The topic of gq_producer_cancel (default "genq.cancel"); the first cancel creates it,
     * compacted with one partition, when it does not exist (up to 10 s). */
    const char *cancel_topic;
} gq_producer_conf_t;

/**
 * Creates the producer; with create_partitions, creates the topic if missing (up to 10 s).
 * With GQ_FRAMING_CONFLUENT it first registers or looks up the schema id (NULL when the
 * registry cannot be reached or refuses the schema: errstr says which).
 * It then asks for the topic's metadata (up to 1 s) so that the first message does not wait
 * for librdkafka's periodic topic scan. Kafka being down is not an error here: messages wait
 * in the local queue until it is reachable or their delivery times out.
 */
gq_producer_t *gq_producer_new(const gq_producer_conf_t *conf, char *errstr, size_t errstr_size);
/** Flushes (up to 10 s) and frees. NULL-safe. */
void gq_producer_destroy(gq_producer_t *p);

/**
 * Validates, encodes and enqueues one request (the request stays the caller's). A full
 * local queue is waited out, serving delivery reports meanwhile.
 */
gq_status_t gq_producer_send(gq_producer_t *p, const gq_request_t *req, char *errstr,
                             size_t errstr_size);
/**
 * gq_producer_send with the W3C trace context the request belongs to: traceparent (the
 * header's value, "00-<trace id>-<parent id>-<flags>") travels as the message's traceparent
 * header to the completion event and the job's record. NULL: none, or a new one with
 * .start_traces. An invalid value: GQ_ERR_INVALID.
 */
gq_status_t gq_producer_send_traced(gq_producer_t *p, const gq_request_t *req,
                                    const char *traceparent, char *errstr, size_t errstr_size);
/**
 * Enqueues the request prep holds as it stands (key = its job_id), like gq_producer_send but
 * without validating or encoding anything: prep's setters validated each value and keep it
 * encoded. The bytes are copied, so prep may change as soon as this returns.
 */
gq_status_t gq_producer_send_prepared(gq_producer_t *p, const gq_request_prep_t *prep, char *errstr,
                                      size_t errstr_size);
/**
 * Validates (gq_cancel_validate) and enqueues a CancelRequest for c->job_id (key = job_id) on
 * the cancel topic; requested_at 0 means now. c stays the caller's. With GQ_FRAMING_CONFLUENT
 * the first cancel looks up (or registers) CancelRequest under "<cancel topic>-value".
 * Delivery is reported like a request's (on_delivery, gq_producer_flush).
 */
gq_status_t gq_producer_cancel(gq_producer_t *p, const gq_cancel_t *c, char *errstr,
                               size_t errstr_size);
/** Serves delivery reports without blocking longer than timeout_ms. */
void gq_producer_poll(gq_producer_t *p, int timeout_ms);
/**
 * Waits until every message sent so far has its delivery report (or timeout_ms passes).
 * *failed (may be NULL) gets the number of messages that failed since the producer began.
 */
gq_status_t gq_producer_flush(gq_producer_t *p, int timeout_ms, size_t *failed, char *errstr,
                              size_t errstr_size);

/** The Schema Registry id the messages carry (GQ_FRAMING_CONFLUENT), else -1. */
int32_t gq_producer_schema_id(const gq_producer_t *p);

/** For callers that want the underlying handle (e.g. to add their own topics). */
struct rd_kafka_s *gq_producer_handle(gq_producer_t *p);

#endif
