/**
 * @file lanes.h
 * @brief Priority lanes: the request topics a deployment uses, most preferred first
 * (GENQ_LANES, e.g. "genq.requests.high,genq.requests,genq.requests.low"; by default the one
 * requests topic). Producers route a request by its priority: above 0 to the first lane,
 * below 0 to the last, 0 to the middle one; workers serve the lanes in that order.
 */
#ifndef GQ_LANES_H
#define GQ_LANES_H

#include "gq.h"

#define GQ_LANES_MAX 8
#define GQ_LANE_TOPIC_MAX 249 /* Kafka's limit on a topic name */

typedef struct gq_lanes {
    int n;
    char topic[GQ_LANES_MAX][GQ_LANE_TOPIC_MAX + 1];
} gq_lanes_t;

/**
 * Reads a comma-separated list of topics (NULL or "": just default_topic). GQ_ERR_INVALID
 * for an empty, repeated or overlong name or more than GQ_LANES_MAX lanes.
 */
gq_status_t gq_lanes_init(gq_lanes_t *l, const char *list, const char *default_topic, char *errstr,
                          size_t errstr_size);
/** The lane a request of this priority goes to. */
int gq_lanes_for_priority(const gq_lanes_t *l, int32_t priority);
/** The lane of a topic, -1 when it is none of them. */
int gq_lanes_find(const gq_lanes_t *l, const char *topic);

#endif
