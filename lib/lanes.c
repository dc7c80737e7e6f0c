/* Priority lanes (see lanes.h). */
#include "lanes.h"
#include "util.h"

#include <string.h>

gq_status_t gq_lanes_init(gq_lanes_t *l, const char *list, const char *default_topic, char *errstr,
                          size_t errstr_size) {
    memset(l, 0, sizeof(*l));
    const char *p = list && *list ? list : default_topic;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > GQ_LANE_TOPIC_MAX) {
            gq_errf(errstr, errstr_size, "lanes \"%.100s\": an empty or overlong topic name", list);
            return GQ_ERR_INVALID;
        }
        if (l->n == GQ_LANES_MAX) {
            gq_errf(errstr, errstr_size, "lanes: at most %d", GQ_LANES_MAX);
            return GQ_ERR_INVALID;
        }
        memcpy(l->topic[l->n], p, len);
        l->topic[l->n][len] = '\0';
        if (gq_lanes_find(l, l->topic[l->n]) >= 0) {
            gq_errf(errstr, errstr_size, "lanes: topic %s named twice", l->topic[l->n]);
            return GQ_ERR_INVALID;
        }
        l->n++;
        p = end ? end + 1 : NULL;
    }
    if (l->n == 0) {
        gq_errf(errstr, errstr_size, "lanes: no topic");
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

int gq_lanes_for_priority(const gq_lanes_t *l, int32_t priority) {
    if (l->n <= 1)
        return 0;
    if (priority > 0)
        return 0;
    if (priority < 0)
        return l->n - 1;
    return (l->n - 1) / 2;
}

int gq_lanes_find(const gq_lanes_t *l, const char *topic) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->topic[i], topic) == 0)
            return i;
    return -1;
}
