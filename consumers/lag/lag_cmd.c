/* genq lag: the group's lag per partition, as KEDA sees it, and the replicas it asks for. */
#include "cli.h"
#include "commands.h"
#include "kafka.h"
#include "lag.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gq_cmd_lag(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup(&cfg, GQ_CMD_LAG, "lag",
                          "usage: genq lag [options]\n\n"
                          "Prints the consumer group's lag per partition exactly as KEDA's Kafka\n"
                          "scaler computes it, the metric it reports, whether it is active, and\n"
                          "the replica count the HPA would ask for.\n",
                          argc, argv, &argi);
    if (rc >= 0)
        return rc;
    char err[1024];
    const char *topic = gq_cfg_str(&cfg, "requests_topic"), *group = gq_cfg_str(&cfg, "group");
    const char *policy = gq_cfg_str(&cfg, "offset_reset_policy");
    if (strcmp(policy, "earliest") != 0 && strcmp(policy, "latest") != 0) {
        gq_err("--offset-reset-policy: earliest or latest");
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    rd_kafka_conf_t *conf = gq_kafka_conf_new(&cfg, "genq-lag", err, sizeof(err));
    if (!conf || gq_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    /* Never joins the group: committed offsets can be read without it. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    int n = 0;
    if (!rk || gq_kafka_partition_count(rk, topic, 10000, &n, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        if (rk)
            rd_kafka_destroy(rk);
        gq_cfg_release(&cfg);
        return GQ_EXIT_UNAVAILABLE;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
    gq_lag_part_t *parts = calloc(n > 0 ? (size_t)n : 1, sizeof(*parts));
    for (int p = 0; !e && p < n; p++) {
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        parts[p].partition = p;
        parts[p].end = hi;
        parts[p].committed = l->elems[p].offset >= 0 ? l->elems[p].offset : -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    if (e) {
        gq_err("reading offsets: %s", rd_kafka_err2str(e));
        free(parts);
        gq_cfg_release(&cfg);
        return GQ_EXIT_UNAVAILABLE;
    }
    gq_lag_opts_t o = {
        gq_cfg_int(&cfg, "lag_threshold"), gq_cfg_int(&cfg, "activation_lag_threshold"),
        strcmp(policy, "earliest") == 0,   gq_cfg_bool(&cfg, "scale_to_zero_on_invalid_offset"),
        gq_cfg_int(&cfg, "min_replicas"),  gq_cfg_int(&cfg, "max_replicas")};
    gq_lag_result_t r;
    gq_lag_compute(parts, (size_t)n, &o, &r);
    if (strcmp(gq_cfg_str(&cfg, "format"), "json") == 0) {
        printf("{\"topic\":\"%s\",\"group\":\"%s\",\"partitions\":[", topic, group);
        for (int p = 0; p < n; p++)
            printf("%s{\"partition\":%d,\"end\":%lld,\"committed\":%lld,\"lag\":%lld}",
                   p ? "," : "", (int)parts[p].partition, (long long)parts[p].end,
                   (long long)parts[p].committed, (long long)parts[p].lag);
        printf("],\"total_lag\":%lld,\"metric\":%lld,\"active\":%s,\"replicas\":%lld}\n",
               (long long)r.total, (long long)r.metric, r.active ? "true" : "false",
               (long long)r.replicas);
    } else {
        printf("%-10s %12s %12s %10s\n", "partition", "end", "committed", "lag");
        for (int p = 0; p < n; p++) {
            char c[24];
            snprintf(c, sizeof(c), "%lld", (long long)parts[p].committed);
            printf("%-10d %12lld %12s %10lld\n", (int)parts[p].partition, (long long)parts[p].end,
                   parts[p].committed < 0 ? "-" : c, (long long)parts[p].lag);
        }
        printf("total lag %lld, KEDA metric %lld, %s, %lld replica(s) at lagThreshold %lld\n",
               (long long)r.total, (long long)r.metric, r.active ? "active" : "inactive",
               (long long)r.replicas, (long long)o.threshold);
    }
    free(parts);
    gq_cfg_release(&cfg);
    return GQ_EXIT_OK;
}
