/* KEDA's Kafka scaler lag rules (v2.21, kafka_scaler.go getTotalLag/getLagForPartition),
 * one by one, and a ScaledObject read into genq lag's settings. */
#include "lag.h"
#include "yaml.h"
#include "check.h"

#include <stdlib.h>

#define NONE GQ_LAG_NO_COMMIT

/* partition, log end, log start, committed */
static gq_lag_part_t part(int32_t p, int64_t end, int64_t start, int64_t committed) {
    gq_lag_part_t x = {
        .topic = "t", .partition = p, .end = end, .start = start, .committed = committed};
    return x;
}

static gq_lag_opts_t opts(int64_t threshold, bool earliest) {
    gq_lag_opts_t o = {.threshold = threshold, .earliest = earliest, .max_replicas = 100};
    return o;
}

static void test_rules(void) {
    gq_lag_result_t r;
    /* committed: end - committed; no commit: earliest = end - log start, latest = 1 */
    gq_lag_part_t p[4] = {part(0, 10, 0, 3), part(1, 5, 0, 5), part(2, 4, 0, NONE),
                          part(3, 0, 0, NONE)};
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
    o = opts(10, true);
    o.zero_on_invalid = true;
    gq_lag_compute(p, 4, &o, &r);
    CHECK_INT(p[2].lag, 0);

    /* (a) earliest, no commit, log start above 0 (retention, deleted records): KEDA 2.21
     * counts the retained log, end - start (2.20 counted the end offset); never below 0 */
    gq_lag_part_t ret[3] = {part(0, 10, 6, NONE), part(1, 10, 12, NONE), part(2, 10, -1, NONE)};
    o = opts(100, true);
    gq_lag_compute(ret, 3, &o, &r);
    CHECK_INT(ret[0].lag, 4);
    CHECK_INT(ret[1].lag, 0);
    CHECK_INT(ret[2].lag, 10); /* log start unknown: the end offset */
    CHECK_INT(r.total, 14);

    /* (b) a commit past the end: the partition's lag is negative, the metric never is */
    gq_lag_part_t past[2] = {part(0, 3, 0, 4), part(1, 0, 0, 0)};
    gq_lag_compute(past, 2, &o, &r);
    CHECK_INT(past[0].lag, -1);
    CHECK_INT(r.total, -1);
    CHECK_INT(r.metric, 0);
    CHECK(!r.active);
    CHECK_INT(r.replicas, 0);
    /* ... and it offsets another partition's lag in the total */
    gq_lag_part_t mixed[2] = {part(0, 3, 0, 5), part(1, 7, 0, 2)};
    gq_lag_compute(mixed, 2, &o, &r);
    CHECK_INT(r.total, 3);
    CHECK_INT(r.metric, 3);

    /* (c) only -1 means "no commit": -2 is an offset like any other, end + 2 */
    gq_lag_part_t neg[1] = {part(0, 5, 0, -2)};
    o = opts(10, false);
    o.zero_on_invalid = true;
    gq_lag_compute(neg, 1, &o, &r);
    CHECK_INT(neg[0].lag, 7);
    CHECK_INT(r.metric, 7);

    /* a partition missing from the end-offset answer: not seen (lag 0, not counted) */
    gq_lag_part_t miss[3] = {part(0, 50, 0, 0), part(1, 0, 0, 0), part(2, 9, 0, 1)};
    miss[2].no_end = true;
    o = opts(10, true);
    gq_lag_compute(miss, 3, &o, &r);
    CHECK_INT(miss[2].lag, 0);
    CHECK_INT(r.partitions, 2);
    CHECK_INT(r.total, 50);
    CHECK_INT(r.metric, 20);

    /* activation is strictly greater; inactive with min 0 means zero replicas */
    gq_lag_part_t q[2] = {part(0, 5, 0, 0), part(1, 0, 0, 0)};
    o = opts(10, true);
    o.activation = 5;
    gq_lag_compute(q, 2, &o, &r);
    CHECK(!r.active);
    CHECK_INT(r.replicas, 0);
    o.min_replicas = 1;
    gq_lag_compute(q, 2, &o, &r);
    CHECK_INT(r.replicas, 1);

    /* the cap: total / threshold (integer division) > partitions -> partitions x threshold */
    gq_lag_part_t big[2] = {part(0, 1000, 0, 0), part(1, 0, 0, 0)};
    o = opts(10, true);
    gq_lag_compute(big, 2, &o, &r);
    CHECK_INT(r.total, 1000);
    CHECK_INT(r.metric, 20);
    CHECK_INT(r.replicas, 2);
    /* ... and its floor-division quirk: 29 / 10 = 2, not > 2, so 29 stays and asks for 3 */
    gq_lag_part_t edge[2] = {part(0, 29, 0, 0), part(1, 0, 0, 0)};
    gq_lag_compute(edge, 2, &o, &r);
    CHECK_INT(r.metric, 29);
    CHECK_INT(r.replicas, 3);
    /* clamp at maxReplicaCount */
    o.max_replicas = 2;
    gq_lag_compute(edge, 2, &o, &r);
    CHECK_INT(r.replicas, 2);
}

static void test_options(void) {
    gq_lag_result_t r;
    /* six partitions, lag on two of them: 40 + 15 */
    gq_lag_part_t p[6] = {part(0, 40, 0, 0), part(1, 15, 0, 0), part(2, 0, 0, 0),
                          part(3, 0, 0, 0),  part(4, 0, 0, 0),  part(5, 0, 0, 0)};
    gq_lag_opts_t o = opts(5, true);
    gq_lag_compute(p, 6, &o, &r);
    CHECK_INT(r.with_lag, 2);
    CHECK_INT(r.metric, 30); /* 55 / 5 = 11 > 6 partitions */
    /* allowIdleConsumers: no cap */
    o.allow_idle = true;
    gq_lag_compute(p, 6, &o, &r);
    CHECK_INT(r.metric, 55);
    CHECK_INT(r.replicas, 11);
    /* limitToPartitionsWithLag: cap at the two partitions that have lag */
    o = opts(5, true);
    o.limit_to_lag = true;
    gq_lag_compute(p, 6, &o, &r);
    CHECK_INT(r.metric, 10);
    CHECK_INT(r.replicas, 2);
    /* ensureEvenDistributionOfPartitions: the next divisor of 6 covering the lag */
    gq_lag_part_t e[6] = {part(0, 12, 0, 0), part(1, 0, 0, 0), part(2, 0, 0, 0),
                          part(3, 0, 0, 0),  part(4, 0, 0, 0), part(5, 0, 0, 0)};
    o = opts(5, true);
    o.even_distribution = true;
    gq_lag_compute(e, 6, &o, &r);
    CHECK_INT(r.metric, 15); /* 12 lag: 3 replicas (3 divides 6), 3 x 5 */
    CHECK_INT(r.replicas, 3);
    e[0].end = 21; /* 21 lag: 5 would do, but 6 divides 6 */
    gq_lag_compute(e, 6, &o, &r);
    CHECK_INT(r.metric, 30);
    e[0].end = 0; /* no lag: the smallest divisor, 1 x threshold, yet inactive */
    gq_lag_compute(e, 6, &o, &r);
    CHECK_INT(r.metric, 5);
    CHECK(!r.active);
    CHECK_INT(r.replicas, 0);
    /* excludePersistentLag: a commit unchanged since the previous poll counts 0 for the
     * metric but still makes the scaler active */
    gq_lag_part_t s[2] = {part(0, 10, 0, 3), part(1, 8, 0, 6)};
    s[0].has_previous = true;
    s[0].previous = 3;
    s[1].has_previous = true;
    s[1].previous = 4;
    o = opts(10, true);
    o.exclude_persistent = true;
    o.activation = 8;
    gq_lag_compute(s, 2, &o, &r);
    CHECK_INT(s[0].lag, 0);
    CHECK_INT(s[0].lag_persistent, 7);
    CHECK_INT(s[1].lag, 2);
    CHECK_INT(r.metric, 2);
    CHECK(r.active); /* 9 > 8 */
    o.exclude_persistent = false;
    gq_lag_compute(s, 2, &o, &r);
    CHECK_INT(r.metric, 9);
}

static void test_partition_limitation(void) {
    int32_t *ids;
    size_t n;
    char err[256];
    CHECK(gq_lag_parse_partitions("1, 2,10-12 ,31", &ids, &n, err, sizeof(err)) == GQ_OK);
    CHECK_INT(n, 6);
    if (n == 6)
        CHECK(ids[0] == 1 && ids[1] == 2 && ids[2] == 10 && ids[4] == 12 && ids[5] == 31);
    free(ids);
    CHECK(gq_lag_parse_partitions("5-3", &ids, &n, err, sizeof(err)) == GQ_OK && n == 0);
    free(ids);
    CHECK(gq_lag_parse_partitions("1,,2", &ids, &n, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_lag_parse_partitions("1-2-3", &ids, &n, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_lag_parse_partitions("a", &ids, &n, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "bad item \"a\"") != NULL);
}

static gq_status_t apply(gq_cfg_t *cfg, const char *yaml, char *err, size_t err_size) {
    json_t *docs = gq_yaml_parse(yaml, strlen(yaml), err, err_size);
    gq_status_t st =
        docs ? gq_lag_apply_scaledobject(cfg, docs, "so.yaml", err, err_size) : GQ_ERR_INVALID;
    json_decref(docs);
    return st;
}

static void test_scaledobject(void) {
    gq_cfg_t cfg;
    char err[512], path[4096];
    /* the manifest genq ships, its settings with no flag, a flag winning over the file */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    char *argv[] = {"lag", "--brokers", "127.0.0.1:9092", NULL};
    int argi;
    CHECK(gq_cfg_parse_args(&cfg, 3, argv, &argi, err, sizeof(err)) == GQ_OK);
    CHECK(check_find_src("k8s/base/keda-scaledobject.yaml", path, sizeof(path)));
    json_t *docs = gq_yaml_load(path, err, sizeof(err));
    CHECK(docs && gq_lag_apply_scaledobject(&cfg, docs, path, err, sizeof(err)) == GQ_OK);
    json_decref(docs);
    CHECK_STR(gq_cfg_str(&cfg, "brokers"), "127.0.0.1:9092");
    CHECK_STR(gq_cfg_str(&cfg, "requests_topic"), "genq.requests");
    CHECK(!gq_cfg_bool(&cfg, "all_topics"));
    CHECK_STR(gq_cfg_str(&cfg, "group"), "genq-workers");
    CHECK_INT(gq_cfg_int(&cfg, "lag_threshold"), 5);
    CHECK_STR(gq_cfg_str(&cfg, "offset_reset_policy"), "earliest");
    CHECK_INT(gq_cfg_int(&cfg, "min_replicas"), 0);
    CHECK_INT(gq_cfg_int(&cfg, "max_replicas"), 12);
    CHECK_INT(gq_cfg_source(&cfg, "lag_threshold"), GQ_SRC_FILE);
    CHECK_INT(cfg.kafka_cnt, 2);
    if (cfg.kafka_cnt == 2) {
        CHECK_STR(cfg.kafka[0], "security.protocol=SASL_SSL");
        CHECK_STR(cfg.kafka[1], "sasl.mechanism=SCRAM-SHA-512");
    }
    gq_cfg_release(&cfg);

    /* KEDA's defaults for what the trigger leaves out; no topic means all topics */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    CHECK(apply(&cfg,
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec:\n  triggers:\n"
                "  - type: cpu\n    metadata: {value: \"50\"}\n  - type: kafka\n    metadata:\n"
                "      bootstrapServers: b:9092\n      consumerGroup: g\n"
                "      allowIdleConsumers: \"True\"\n      partitionLimitation: \"1-3\"\n",
                err, sizeof(err)) == GQ_OK);
    CHECK(gq_cfg_bool(&cfg, "all_topics"));
    CHECK_STR(gq_cfg_str(&cfg, "offset_reset_policy"), "latest");
    CHECK_INT(gq_cfg_int(&cfg, "lag_threshold"), 10);
    CHECK_INT(gq_cfg_int(&cfg, "max_replicas"), 100);
    CHECK(gq_cfg_bool(&cfg, "allow_idle_consumers"));
    CHECK_STR(gq_cfg_str(&cfg, "partition_limitation"), "1-3");
    CHECK_STR(cfg.kafka[0], "security.protocol=PLAINTEXT");
    gq_cfg_release(&cfg);

    /* refused: KEDA would refuse these too */
    static const char *const bad[][2] = {
        {"kind: Deployment\n", "0 ScaledObjects"},
        {"kind: ScaledObject\nspec:\n  triggers:\n  - type: apache-kafka\n    metadata: {}\n",
         "0 triggers of type kafka"},
        {"kind: ScaledObject\nspec:\n  triggers:\n  - type: kafka\n    metadata:\n"
         "      consumerGroup: g\n",
         "metadata.bootstrapServers is required"},
        {"kind: ScaledObject\nspec:\n  triggers:\n  - type: kafka\n    metadata:\n"
         "      bootstrapServers: b\n      consumerGroup: g\n      lagThreshold: \"0\"\n",
         "metadata.lagThreshold: lag_threshold: \"0\" is not an integer"},
        {"kind: ScaledObject\nspec:\n  triggers:\n  - type: kafka\n    metadata:\n"
         "      bootstrapServers: b\n      consumerGroup: g\n      excludePersistentLag: yes\n",
         "metadata.excludePersistentLag: \"yes\" is not a boolean"},
        {"kind: ScaledObject\nspec:\n  triggers:\n  - type: kafka\n    metadata:\n"
         "      bootstrapServers: b\n      consumerGroupFromEnv: GENQ_TEST_NO_SUCH_VAR\n",
         "GENQ_TEST_NO_SUCH_VAR is not set"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
        CHECK(apply(&cfg, bad[i][0], err, sizeof(err)) == GQ_ERR_INVALID);
        CHECK(strstr(err, bad[i][1]) != NULL);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "  got \"%s\", wanted \"%s\"\n", err, bad[i][1]);
        gq_cfg_release(&cfg);
    }
}

int main(void) {
    test_rules();
    test_options();
    test_partition_limitation();
    test_scaledobject();
    return CHECK_DONE("test_lag");
}
