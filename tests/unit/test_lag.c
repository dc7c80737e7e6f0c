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

static void test_formula(void) {
    const char *const names[] = {"high", "normal", "low", NULL};
    gq_lag_formula_t f;
    char err[512];
    double v[] = {7, 4, 4, 100};
    CHECK(gq_lag_formula_parse(&f, "high + normal + low", names, 4, err, sizeof(err)) == GQ_OK);
    CHECK_INT(f.n, 3);
    CHECK(f.term[0] == 0 && f.term[1] == 1 && f.term[2] == 2);
    CHECK(gq_lag_formula_eval(&f, v) == 15);
    /* spaces anywhere, numbers summed, a name twice counts twice */
    CHECK(gq_lag_formula_parse(&f, " high+normal +low + 2.5 + 1", names, 4, err, sizeof(err)) ==
          GQ_OK);
    CHECK(gq_lag_formula_eval(&f, v) == 18.5);
    CHECK(gq_lag_formula_parse(&f, "low + low", names, 4, err, sizeof(err)) == GQ_OK);
    CHECK(gq_lag_formula_eval(&f, v) == 8);
    /* everything else is refused, saying what is supported */
    static const char *const bad[][2] = {
        {"high * 2", "expected + at column 6"},
        {"high - low", "expected + at column 6"},
        {"high ?? 0", "expected + at column 6"},
        {"(high + low)", "expected a trigger name or a number at column 1"},
        {"max(high, low)", "a function call at column 4"},
        {"float(high + low)", "a function call"},
        {"high + ", "nothing to add up at column 8"},
        {"", "nothing to add up"},
        {"2 + 3", "no trigger named"},
        {"high + medium", "medium is not the name of a kafka trigger"},
        {"High + low", "High is not the name"},
        {"high + normal + low > 4 ? 1 : 0", "expected + at column 21"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        CHECK(gq_lag_formula_parse(&f, bad[i][0], names, 4, err, sizeof(err)) == GQ_ERR_INVALID);
        CHECK(strstr(err, bad[i][1]) != NULL);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "  \"%s\": got \"%s\", wanted \"%s\"\n", bad[i][0], err, bad[i][1]);
    }
    CHECK(gq_lag_formula_parse(&f, "high * 2", names, 4, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "only a sum of trigger names and numbers") != NULL);
}

/* Three lanes of six partitions each, lagThreshold 5, as k8s/components/priority-lanes. */
static void lanes_results(const int64_t *lags, gq_lag_opts_t *o, gq_lag_result_t *res) {
    for (int k = 0; k < 3; k++) {
        gq_lag_part_t p[6] = {part(0, lags[k], 0, 0), part(1, 0, 0, 0), part(2, 0, 0, 0),
                              part(3, 0, 0, 0),       part(4, 0, 0, 0), part(5, 0, 0, 0)};
        o[k] = opts(5, true);
        o[k].max_replicas = 12;
        gq_lag_compute(p, 6, &o[k], &res[k]);
    }
}

static void test_combine(void) {
    const char *const names[] = {"high", "normal", "low"};
    gq_lag_opts_t o[3];
    gq_lag_result_t res[3];
    gq_lag_total_t t;
    char err[256];
    gq_lag_scale_t sum = {.combine = GQ_LAG_SUM, .target = 5, .max_replicas = 12};
    CHECK(gq_lag_formula_parse(&sum.formula, "high + normal + low", names, 3, err, sizeof(err)) ==
          GQ_OK);
    gq_lag_scale_t max = {.combine = GQ_LAG_MAX, .max_replicas = 12};

    /* 7 + 4 + 4: the sum asks for ceil(15 / 5) = 3, the largest lane alone for 2 */
    lanes_results((int64_t[]){7, 4, 4}, o, res);
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(t.value == 15);
    CHECK(t.active);
    CHECK_INT(t.replicas, 3);
    CHECK_INT(t.replicas_max, 2);
    CHECK_INT(t.replicas_sum, 3);
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK(t.active);
    CHECK_INT(t.replicas, 2);
    CHECK_INT(t.replicas_sum, 3);

    /* a backlog spread evenly over the lanes: max under-scales to 1 where 3 are due */
    lanes_results((int64_t[]){5, 5, 5}, o, res);
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK_INT(t.replicas, 1);
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK_INT(t.replicas, 3);

    /* nothing anywhere: inactive, zero replicas either way; minReplicaCount 1 holds one */
    lanes_results((int64_t[]){0, 0, 0}, o, res);
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(!t.active);
    CHECK_INT(t.replicas, 0);
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK(!t.active);
    CHECK_INT(t.replicas, 0);
    sum.min_replicas = max.min_replicas = 1;
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK_INT(t.replicas, 1);
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK_INT(t.replicas, 1);
    sum.min_replicas = max.min_replicas = 0;

    /* with a formula, activity is the composite against activationTarget (strictly above),
     * whatever the triggers' own activationLagThreshold says */
    lanes_results((int64_t[]){1, 1, 1}, o, res);
    for (int k = 0; k < 3; k++) {
        o[k].activation = 100;
        res[k].active = false;
    }
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(t.active);
    CHECK_INT(t.replicas, 1);
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK(!t.active);
    CHECK_INT(t.replicas, 0);
    sum.activation = 3;
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(!t.active);
    CHECK_INT(t.replicas, 0);
    sum.activation = 2.5;
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(t.active);
    sum.activation = 0;

    /* each trigger's metric is capped at its own partitions first (6 x 5 = 30), the sum is
     * then clamped at maxReplicaCount */
    lanes_results((int64_t[]){1000, 1000, 0}, o, res);
    CHECK_INT(res[0].metric, 30);
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(t.value == 60);
    CHECK_INT(t.replicas, 12);
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK_INT(t.replicas, 6);

    /* numbers in the formula, a fractional target: milli units as KEDA and the HPA keep them */
    lanes_results((int64_t[]){7, 4, 4}, o, res);
    CHECK(gq_lag_formula_parse(&sum.formula, "high + normal + low + 0.5", names, 3, err,
                               sizeof(err)) == GQ_OK);
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(t.value == 15.5);
    CHECK_INT(t.replicas, 4); /* ceil(15500 / 5000) */
    sum.target = 2.5;
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK_INT(t.replicas, 7); /* ceil(15500 / 2500) */
    sum.target = 5;

    /* a formula that leaves a trigger out: that lane does not scale at all */
    CHECK(gq_lag_formula_parse(&sum.formula, "high + normal", names, 3, err, sizeof(err)) == GQ_OK);
    lanes_results((int64_t[]){0, 0, 40}, o, res);
    gq_lag_combine(&sum, o, res, 3, &t);
    CHECK(!t.active);
    CHECK_INT(t.replicas, 0);

    /* lagThresholds that differ: no summed count to compare with */
    lanes_results((int64_t[]){7, 4, 4}, o, res);
    o[2].threshold = 10;
    gq_lag_combine(&max, o, res, 3, &t);
    CHECK_INT(t.replicas_sum, -1);
    CHECK_INT(t.replicas, 2);

    /* one trigger: its own count, as before */
    gq_lag_scale_t one = {.combine = GQ_LAG_ONE, .max_replicas = 12};
    gq_lag_combine(&one, o, res, 1, &t);
    CHECK_INT(t.replicas, res[0].replicas);
    CHECK(t.active == res[0].active);
}

#define SO_HEAD                                                                                    \
    "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: genq-worker\nspec:\n"    \
    "  scaleTargetRef:\n    name: genq-worker\n  maxReplicaCount: 12\n"
#define SO_MODIFIERS                                                                               \
    "  advanced:\n    scalingModifiers:\n      formula: high + normal + low\n"                     \
    "      target: \"5\"\n      activationTarget: \"0\"\n      metricType: AverageValue\n"
#define SO_TRIGGER(name, topic, extra)                                                             \
    "    - type: kafka\n      name: " name "\n      metadata:\n"                                   \
    "        bootstrapServers: b:9093\n        consumerGroup: genq-workers\n"                      \
    "        topic: " topic "\n        offsetResetPolicy: earliest\n"                              \
    "        lagThreshold: \"5\"\n        tls: enable\n        sasl: scram_sha512\n" extra
static gq_status_t plan_of(gq_lag_plan_t *plan, gq_cfg_t *cfg, const char *yaml, char *err,
                           size_t err_size) {
    json_t *docs = gq_yaml_parse(yaml, strlen(yaml), err, err_size);
    gq_status_t st =
        docs ? gq_lag_plan_scaledobject(plan, cfg, docs, "so.yaml", err, err_size) : GQ_ERR_INVALID;
    json_decref(docs);
    return st;
}

static void test_plan(void) {
    gq_cfg_t cfg;
    gq_lag_plan_t plan;
    char err[1024];
    /* three named triggers and a formula: each trigger with its own settings */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    const char *so = SO_HEAD SO_MODIFIERS
        "  triggers:\n" SO_TRIGGER("high", "genq.requests.high", "") SO_TRIGGER(
            "normal", "genq.requests",
            "") "    - type: cpu\n      metricType: Utilization\n      metadata: {value: \"50\"}\n"
                "    - type: kafka\n      name: low\n      metadata:\n"
                "        bootstrapServers: b:9093\n        consumerGroup: genq-workers\n"
                "        topic: genq.requests.low\n        offsetResetPolicy: earliest\n"
                "        lagThreshold: \"10\"\n        tls: enable\n        sasl: scram_sha512\n";
    CHECK(plan_of(&plan, &cfg, so, err, sizeof(err)) == GQ_OK);
    CHECK_INT(plan.cnt, 3);
    CHECK_INT(plan.scale.combine, GQ_LAG_SUM);
    CHECK(plan.scale.target == 5 && plan.scale.activation == 0);
    CHECK_INT(plan.scale.max_replicas, 12);
    CHECK_INT(plan.scale.formula.n, 3);
    CHECK_STR(plan.formula_text, "high + normal + low");
    if (plan.cnt == 3) {
        CHECK_STR(plan.trigger[0].name, "high");
        CHECK_STR(plan.trigger[2].name, "low");
        CHECK_STR(gq_cfg_str(&plan.trigger[0].cfg, "requests_topic"), "genq.requests.high");
        CHECK_STR(gq_cfg_str(&plan.trigger[1].cfg, "requests_topic"), "genq.requests");
        CHECK_STR(gq_cfg_str(&plan.trigger[2].cfg, "requests_topic"), "genq.requests.low");
        CHECK_INT(gq_cfg_int(&plan.trigger[0].cfg, "lag_threshold"), 5);
        CHECK_INT(gq_cfg_int(&plan.trigger[2].cfg, "lag_threshold"), 10);
        CHECK_STR(gq_cfg_str(&plan.trigger[2].cfg, "offset_reset_policy"), "earliest");
    }
    gq_lag_plan_release(&plan);
    gq_cfg_release(&cfg);

    /* a flag wins over every trigger */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    char *argv[] = {"lag", "--lag-threshold", "2", NULL};
    int argi;
    CHECK(gq_cfg_parse_args(&cfg, 3, argv, &argi, err, sizeof(err)) == GQ_OK);
    CHECK(plan_of(&plan, &cfg, so, err, sizeof(err)) == GQ_OK);
    for (size_t k = 0; k < plan.cnt; k++)
        CHECK_INT(gq_cfg_int(&plan.trigger[k].cfg, "lag_threshold"), 2);
    gq_lag_plan_release(&plan);
    gq_cfg_release(&cfg);

    /* no scalingModifiers: the HPA's max; one trigger with a formula: still the formula */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    CHECK(plan_of(&plan, &cfg,
                  SO_HEAD "  triggers:\n" SO_TRIGGER("high", "genq.requests.high", "")
                      SO_TRIGGER("normal", "genq.requests", ""),
                  err, sizeof(err)) == GQ_OK);
    CHECK_INT(plan.cnt, 2);
    CHECK_INT(plan.scale.combine, GQ_LAG_MAX);
    gq_lag_plan_release(&plan);
    CHECK(plan_of(&plan, &cfg,
                  SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: normal + 1\n"
                          "      target: \"2.5\"\n      activationTarget: \"3\"\n"
                          "  triggers:\n" SO_TRIGGER("normal", "genq.requests", ""),
                  err, sizeof(err)) == GQ_OK);
    CHECK_INT(plan.cnt, 1);
    CHECK_INT(plan.scale.combine, GQ_LAG_SUM);
    CHECK(plan.scale.target == 2.5 && plan.scale.activation == 3);
    CHECK(plan.scale.formula.constant == 1);
    gq_lag_plan_release(&plan);
    /* (gq_lag_apply_scaledobject, for --dump-config, takes the first trigger) */
    CHECK(apply(&cfg, so, err, sizeof(err)) == GQ_OK);
    CHECK_STR(gq_cfg_str(&cfg, "requests_topic"), "genq.requests.high");
    gq_cfg_release(&cfg);

    /* refused, each with its reason */
    static const char *const bad[][2] = {
        {SO_HEAD "  triggers:\n" SO_TRIGGER(
             "high", "a",
             "") "    - type: kafka\n      name: low\n"
                 "      metadata:\n        bootstrapServers: b:9093\n"
                 "        consumerGroup: other\n        topic: c\n        tls: enable\n"
                 "        sasl: scram_sha512\n",
         "the kafka triggers differ in consumerGroup (\"genq-workers\", \"other\")"},
        {SO_HEAD "  triggers:\n" SO_TRIGGER(
             "high", "a", "") "    - type: kafka\n      name: low\n"
                              "      metadata:\n        bootstrapServers: b:9093\n"
                              "        consumerGroup: genq-workers\n        topic: c\n",
         "differ in tls"},
        {SO_HEAD "  triggers:\n" SO_TRIGGER("high", "a", "") SO_TRIGGER("high", "b", ""),
         "two triggers are named high"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: high + medium\n"
                 "      target: \"5\"\n  triggers:\n" SO_TRIGGER("high", "a", ""),
         "medium is not the name of a kafka trigger"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: high * 2\n"
                 "      target: \"5\"\n  triggers:\n" SO_TRIGGER("high", "a", ""),
         "only a sum of trigger names and numbers"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: high\n"
                 "  triggers:\n" SO_TRIGGER("high", "a", ""),
         "scalingModifiers.target \"\": a number above 0"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: high\n      target: \"0\"\n"
                 "  triggers:\n" SO_TRIGGER("high", "a", ""),
         "a number above 0"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      target: \"5\"\n"
                 "  triggers:\n" SO_TRIGGER("high", "a", ""),
         "scalingModifiers without a formula"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: high\n      target: \"5\"\n"
                 "      metricType: Utilization\n  triggers:\n" SO_TRIGGER("high", "a", ""),
         "metricType Utilization"},
        {SO_HEAD "  advanced:\n    scalingModifiers:\n      formula: high\n      target: \"5\"\n"
                 "      activationTarget: none\n  triggers:\n" SO_TRIGGER("high", "a", ""),
         "activationTarget \"none\" is not a number"},
        {SO_HEAD "  triggers:\n" SO_TRIGGER("high", "a", "")
             SO_TRIGGER("low", "b", "        activationLagThreshold: \"-1\"\n"),
         "trigger low: metadata.activationLagThreshold"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
        err[0] = '\0';
        gq_status_t st = plan_of(&plan, &cfg, bad[i][0], err, sizeof(err));
        if (st == GQ_OK)
            gq_lag_plan_release(&plan);
        CHECK(st == GQ_ERR_INVALID);
        CHECK(strstr(err, bad[i][1]) != NULL);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "  bad[%zu]: got \"%s\", wanted \"%s\"\n", i, err, bad[i][1]);
        gq_cfg_release(&cfg);
    }

    /* -t cannot choose one topic for several triggers */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    char *argv_t[] = {"lag", "-t", "x", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, argv_t, &argi, err, sizeof(err)) == GQ_OK);
    CHECK(plan_of(&plan, &cfg, so, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "each names its own topic") != NULL);
    gq_cfg_release(&cfg);
}

static void test_plan_lanes(void) {
    gq_cfg_t cfg;
    gq_lag_plan_t plan;
    char err[512];
    /* no lanes: one trigger on requests_topic */
    CHECK(gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK);
    CHECK(gq_lag_plan_init(&plan, &cfg, err, sizeof(err)) == GQ_OK);
    CHECK_INT(plan.cnt, 1);
    CHECK_INT(plan.scale.combine, GQ_LAG_ONE);
    CHECK_STR(gq_cfg_str(&plan.trigger[0].cfg, "requests_topic"), "genq.requests");
    gq_lag_plan_release(&plan);
    /* three lanes: three triggers, summed against lag_threshold */
    CHECK(gq_cfg_set(&cfg, "lanes", "genq.requests.high,genq.requests,genq.requests.low",
                     GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cfg_set(&cfg, "lag_threshold", "4", GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    CHECK(gq_lag_plan_init(&plan, &cfg, err, sizeof(err)) == GQ_OK);
    CHECK_INT(plan.cnt, 3);
    CHECK_INT(plan.scale.combine, GQ_LAG_SUM);
    CHECK(plan.scale.target == 4 && plan.scale.activation == 0);
    CHECK_INT(plan.scale.formula.n, 3);
    CHECK_STR(plan.formula_text, "genq.requests.high + genq.requests + genq.requests.low");
    CHECK_STR(gq_cfg_str(&plan.trigger[2].cfg, "requests_topic"), "genq.requests.low");
    CHECK_STR(plan.trigger[0].name, "genq.requests.high");
    gq_lag_plan_release(&plan);
    /* one lane: just that topic */
    CHECK(gq_cfg_set(&cfg, "lanes", "only", GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    CHECK(gq_lag_plan_init(&plan, &cfg, err, sizeof(err)) == GQ_OK);
    CHECK_INT(plan.scale.combine, GQ_LAG_ONE);
    CHECK_STR(gq_cfg_str(&plan.trigger[0].cfg, "requests_topic"), "only");
    gq_lag_plan_release(&plan);
    /* refused */
    CHECK(gq_cfg_set(&cfg, "lanes", "a,,b", GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    CHECK(gq_lag_plan_init(&plan, &cfg, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_cfg_set(&cfg, "lanes", "a,b", GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    CHECK(gq_cfg_set(&cfg, "all_topics", "true", GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    CHECK(gq_lag_plan_init(&plan, &cfg, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "lanes and all_topics") != NULL);
    gq_cfg_release(&cfg);
}

int main(void) {
    test_rules();
    test_options();
    test_partition_limitation();
    test_scaledobject();
    test_formula();
    test_combine();
    test_plan();
    test_plan_lanes();
    return CHECK_DONE("test_lag");
}
