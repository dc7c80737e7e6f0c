/**
 * @file kafka.h
 * @brief librdkafka wrapper: configuration from the genq config table plus -X pass-through,
 * librdkafka's logs routed to ours, topic creation, and errors turned into gq_status_t.
 */
#ifndef GQ_KAFKA_H
#define GQ_KAFKA_H

#include "cfg.h"
#include "gq.h"

#include <librdkafka/rdkafka.h>

/**
 * Makes a configuration with bootstrap.servers = brokers, client.id, our log callback,
 * then the -X properties of cfg (they win over our defaults). Returns NULL with errstr
 * naming the bad property. The caller owns the result (rd_kafka_conf_destroy, or hand it
 * to rd_kafka_new which takes it).
 */
rd_kafka_conf_t *gq_kafka_conf_new(const gq_cfg_t *cfg, const char *client_id, char *errstr,
                                   size_t errstr_size);

/**
 * rd_kafka_new() that always takes conf: on failure it is destroyed and errstr says
 * "kafka WHAT: why". Returns the handle (the caller's) or NULL.
 */
rd_kafka_t *gq_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                         char *errstr, size_t errstr_size);

/** librdkafka's log lines into ours (syslog levels mapped to gq levels). */
void gq_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/** Sets one property, with errstr on failure. */
gq_status_t gq_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                              char *errstr, size_t errstr_size);

/** Applies cfg's -X properties (after our defaults, so the user's word wins). */
gq_status_t gq_kafka_conf_apply_user(rd_kafka_conf_t *conf, const gq_cfg_t *cfg, char *errstr,
                                     size_t errstr_size);

/**
 * Creates the topics that do not exist yet (partitions, replication factor -1 = broker
 * default). Existing topics are left alone. Waits up to timeout_ms.
 */
gq_status_t gq_kafka_topics_ensure(rd_kafka_t *rk, const char *const *topics, size_t cnt,
                                   int partitions, int timeout_ms, char *errstr,
                                   size_t errstr_size);

/** The same for one topic created compacted (cleanup.policy=compact) when it does not exist
 * (an existing topic is left as it is, whatever its policy). */
gq_status_t gq_kafka_topic_ensure_compacted(rd_kafka_t *rk, const char *topic, int partitions,
                                            int timeout_ms, char *errstr, size_t errstr_size);

/** Number of partitions of a topic (from metadata), or GQ_ERR_NOTFOUND. */
gq_status_t gq_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *cnt,
                                     char *errstr, size_t errstr_size);

/** Maps a librdkafka error to our classes: retriable/transport → transient, else error. */
gq_status_t gq_kafka_status(rd_kafka_resp_err_t err);

#endif
