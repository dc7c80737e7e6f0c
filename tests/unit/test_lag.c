/* KEDA's Kafka scaler lag rules (v2.20), one by one. */
#include "lag.h"
#include "check.h"

static gq_lag_opts_t opts(int64_t threshold, bool earliest) {
    gq_lag_opts_t o = {threshold, 0, earliest, false, 0, 100};
    return o;
}

int main(void) {
    gq_lag_result_t r;
    /* committed: end - committed; no commit: earliest = log end, latest = 1 */
    gq_lag_part_t p[4] = {{0, 10, 3, 0}, {1, 5, 5, 0}, {2, 4, -1, 0}, {3, 0, -1, 0}};
    gq_lag_opts_t o = opts(10, true);
    gq_lag_compute(p, 4, &o, &r);
    CHECK_INT(p[0].lag, 7);
    CHECK_INT(p[1].lag, 0);
    CHECK_INT(p[2].lag, 4);
    CHECK_INT(p[3].lag, 0);
    CHECK_INT(r.total, 11);
    CHECK(r.active);
    CHECK_INT(r.replicas, 2);
    o = opts(10, false);
    gq_lag_compute(p, 4, &o, &r);
    CHECK_INT(p[2].lag, 1);
    CHECK_INT(p[3].lag, 1);
    CHECK_INT(r.total, 9);
    CHECK_INT(r.replicas, 1);
    /* scaleToZeroOnInvalidOffset: no commit counts 0 under both policies */
    o.zero_on_invalid = true;
    gq_lag_compute(p, 4, &o, &r);
    CHECK_INT(p[2].lag, 0);
    CHECK_INT(r.total, 7);
    /* activation is strictly greater; inactive with min 0 means zero replicas */
    gq_lag_part_t q[2] = {{0, 5, 0, 0}, {1, 0, 0, 0}};
    o = opts(10, true);
    o.activation = 5;
    gq_lag_compute(q, 2, &o, &r);
    CHECK(!r.active);
    CHECK_INT(r.replicas, 0);
    o.min_replicas = 1;
    gq_lag_compute(q, 2, &o, &r);
    CHECK_INT(r.replicas, 1);
    /* the cap: total / threshold (integer division) > partitions -> partitions x threshold */
    gq_lag_part_t big[2] = {{0, 1000, 0, 0}, {1, 0, 0, 0}};
    o = opts(10, true);
    gq_lag_compute(big, 2, &o, &r);
    CHECK_INT(r.total, 1000);
    CHECK_INT(r.metric, 20);
    CHECK_INT(r.replicas, 2);
    /* ... and its floor-division quirk: 29 / 10 = 2, not > 2, so 29 stays and asks for 3 */
    gq_lag_part_t edge[2] = {{0, 29, 0, 0}, {1, 0, 0, 0}};
    gq_lag_compute(edge, 2, &o, &r);
    CHECK_INT(r.metric, 29);
    CHECK_INT(r.replicas, 3);
    /* clamp at maxReplicaCount */
    o.max_replicas = 2;
    gq_lag_compute(edge, 2, &o, &r);
    CHECK_INT(r.replicas, 2);
    return CHECK_DONE("test_lag");
}
