/* genq lag: the group's lag per partition, as KEDA sees it, and the replicas it asks for. */
#include "cli.h"
#include "commands.h"
#include "kafka.h"
#include "lag.h"
#include "log.h"
#include "yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAG_TIMEOUT_MS 10000

static const char lag_synopsis[] =
    "usage: genq lag [-f scaledobject.yaml] [options]\n\n"
    "Prints the consumer group's lag per partition exactly as KEDA's Kafka scaler (v2.21)\n"
    "computes it, the metric it reports, whether it is active, and the replica count the\n"
    "HPA would ask for. -f reads a KEDA ScaledObject and computes with its kafka trigger's\n"
    "settings and replica bounds; a flag still wins over the file (--brokers, for a\n"
    "bootstrapServers only reachable in the cluster; credentials as GENQ_KAFKA_*).\n";

typedef struct lag_run {
    gq_cfg_t *cfg;
    rd_kafka_t *rk;
    char **topics; /**< owned */
    size_t topics_cnt;
    gq_lag_part_t *parts; /**< owned; topic points into topics */
    size_t cnt;
    char err[1024];
} lag_run_t;

static gq_status_t lag_load(gq_cfg_t *cfg, char *errstr, size_t errstr_size) {
    const char *path = gq_cfg_str(cfg, "scaled_object");
    if (!path)
        return GQ_OK;
    json_t *docs = gq_yaml_load(path, errstr, errstr_size);
    if (!docs)
        return GQ_ERR_INVALID;
    gq_status_t st = gq_lag_apply_scaledobject(cfg, docs, path, errstr, errstr_size);
    json_decref(docs);
    return st;
}

/* KEDA's own checks of the trigger (kafkaMetadata.Validate). */
static gq_status_t lag_validate(const gq_cfg_t *cfg, char *errstr, size_t errstr_size) {
    const char *policy = gq_cfg_str(cfg, "offset_reset_policy");
    bool all = gq_cfg_bool(cfg, "all_topics");
    bool limit = gq_cfg_bool(cfg, "limit_to_partitions_with_lag");
    bool even = gq_cfg_bool(cfg, "ensure_even_distribution_of_partitions");
    const char *why = NULL;
    if (strcmp(policy, "earliest") != 0 && strcmp(policy, "latest") != 0)
        why = "offset_reset_policy: earliest or latest";
    else if (limit && gq_cfg_bool(cfg, "allow_idle_consumers"))
        why = "allow_idle_consumers and limit_to_partitions_with_lag cannot be set together";
    else if (limit && all)
        why = "limit_to_partitions_with_lag needs a topic";
    else if (even && all)
        why = "ensure_even_distribution_of_partitions needs a topic";
    else if (limit && even)
        why = "limit_to_partitions_with_lag and ensure_even_distribution_of_partitions cannot be "
              "set together";
    if (why) {
        gq_errf(errstr, errstr_size, "%s", why);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

static gq_status_t lag_add_topic(lag_run_t *r, const char *topic) {
    for (size_t i = 0; i < r->topics_cnt; i++)
        if (strcmp(r->topics[i], topic) == 0)
            return GQ_OK;
    char **more = realloc(r->topics, (r->topics_cnt + 1) * sizeof(*more));
    if (!more || !(more[r->topics_cnt] = strdup(topic))) {
        if (more)
            r->topics = more;
        gq_errf(r->err, sizeof(r->err), "out of memory");
        return GQ_ERR_NOMEM;
    }
    r->topics = more;
    r->topics_cnt++;
    return GQ_OK;
}

/* Without a topic: every topic the group has committed offsets for, as KEDA asks Kafka
 * (OffsetFetch for the whole group). */
static gq_status_t lag_group_topics(lag_run_t *r) {
    const char *group = gq_cfg_str(r->cfg, "group");
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(r->rk);
    rd_kafka_ListConsumerGroupOffsets(r->rk, &req, 1, NULL, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, LAG_TIMEOUT_MS + 5000);
    gq_status_t st = GQ_OK;
    if (!ev || rd_kafka_event_error(ev)) {
        gq_errf(r->err, sizeof(r->err), "listing the offsets of group %s: %s", group,
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        st = GQ_ERR_TRANSIENT;
    } else {
        size_t n;
        const rd_kafka_group_result_t **g = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(g[0]) : NULL;
        const rd_kafka_topic_partition_list_t *l =
            n ? rd_kafka_group_result_partitions(g[0]) : NULL;
        if (ge) {
            gq_errf(r->err, sizeof(r->err), "offsets of group %s: %s", group,
                    rd_kafka_error_string(ge));
            st = GQ_ERR_TRANSIENT;
        }
        for (int i = 0; st == GQ_OK && l && i < l->cnt; i++)
            st = lag_add_topic(r, l->elems[i].topic);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    if (st != GQ_OK || r->topics_cnt > 0)
        return st;
    /* A group that committed nothing: KEDA then describes an empty list of topics, which
     * Kafka answers with every topic of the cluster, internal ones included, and counts
     * them all. Shown here as KEDA sees it. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(r->rk, 1, NULL, &md, LAG_TIMEOUT_MS);
    if (e) {
        gq_errf(r->err, sizeof(r->err), "metadata: %s", rd_kafka_err2str(e));
        return GQ_ERR_TRANSIENT;
    }
    gq_warn("group %s has committed no offsets: without a topic, KEDA counts every topic of "
            "the cluster",
            group);
    for (int i = 0; st == GQ_OK && i < md->topic_cnt; i++)
        st = lag_add_topic(r, md->topics[i].topic);
    rd_kafka_metadata_destroy(md);
    return st;
}

/* The partitions to look at: every partition of each topic, or those of partitionLimitation
 * (ignored without a topic, as KEDA does). */
static gq_status_t lag_partitions(lag_run_t *r) {
    int32_t *only = NULL;
    size_t only_cnt = 0;
    const char *lim = gq_cfg_str(r->cfg, "partition_limitation");
    if (lim && lim[strspn(lim, " ")] &&
        gq_lag_parse_partitions(lim, &only, &only_cnt, r->err, sizeof(r->err)) != GQ_OK)
        return GQ_ERR_INVALID;
    if (gq_cfg_bool(r->cfg, "all_topics")) {
        free(only);
        only = NULL;
        only_cnt = 0;
    }
    gq_status_t st = GQ_OK;
    for (size_t t = 0; st == GQ_OK && t < r->topics_cnt; t++) {
        int n = 0;
        size_t before = r->cnt;
        st = gq_kafka_partition_count(r->rk, r->topics[t], LAG_TIMEOUT_MS, &n, r->err,
                                      sizeof(r->err));
        gq_lag_part_t *more =
            st == GQ_OK ? realloc(r->parts, (r->cnt + (size_t)n + 1) * sizeof(*more)) : NULL;
        if (st == GQ_OK && !more) {
            gq_errf(r->err, sizeof(r->err), "out of memory");
            st = GQ_ERR_NOMEM;
        }
        if (more)
            r->parts = more;
        for (int p = 0; st == GQ_OK && p < n; p++) {
            bool active = !only;
            for (size_t i = 0; i < only_cnt && !active; i++)
                active = only[i] == p;
            if (active)
                r->parts[r->cnt++] = (gq_lag_part_t){.topic = r->topics[t], .partition = p};
        }
        if (st == GQ_OK && r->cnt == before) {
            gq_errf(r->err, sizeof(r->err), "partition_limitation %s names no partition of %s", lim,
                    r->topics[t]);
            st = GQ_ERR_INVALID;
        }
    }
    free(only);
    return st;
}

/* Committed offsets, log start and end offsets, as KEDA reads them. */
static gq_status_t lag_offsets(lag_run_t *r) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)r->cnt + 1);
    for (size_t i = 0; i < r->cnt; i++)
        rd_kafka_topic_partition_list_add(l, r->parts[i].topic, r->parts[i].partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(r->rk, l, LAG_TIMEOUT_MS);
    for (size_t i = 0; !e && i < r->cnt; i++) {
        gq_lag_part_t *p = &r->parts[i];
        const rd_kafka_topic_partition_t *c = &l->elems[i];
        if (c->err) {
            gq_errf(r->err, sizeof(r->err), "committed offset of %s [%d]: %s", p->topic,
                    (int)p->partition, rd_kafka_err2str(c->err));
            rd_kafka_topic_partition_list_destroy(l);
            return GQ_ERR_TRANSIENT;
        }
        /* librdkafka turns Kafka's -1 (nothing committed) into RD_KAFKA_OFFSET_INVALID and
         * passes any other value through, -2 included, as KEDA sees it. */
        p->committed = c->offset == RD_KAFKA_OFFSET_INVALID ? GQ_LAG_NO_COMMIT : c->offset;
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t we = rd_kafka_query_watermark_offsets(r->rk, p->topic, p->partition,
                                                                  &lo, &hi, LAG_TIMEOUT_MS);
        /* __BAD_MSG: the partition was not in the ListOffsets answer */
        p->no_end = we == RD_KAFKA_RESP_ERR__BAD_MSG;
        if (we && !p->no_end)
            e = we;
        p->end = hi;
        p->start = lo;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        gq_errf(r->err, sizeof(r->err), "reading offsets: %s", rd_kafka_err2str(e));
        return GQ_ERR_TRANSIENT;
    }
    return GQ_OK;
}

/*
 * excludePersistentLag compares each commit with the one KEDA saw at its previous poll;
 * KEDA keeps them in memory, genq lag in the lag_state file: "topic partition offset" lines.
 * Entries of partitions not seen this time are kept, as KEDA keeps them.
 */
static gq_status_t lag_state(lag_run_t *r, const char *path, bool save) {
    FILE *f = fopen(path, "r");
    char line[512], topic[256];
    long long offset;
    int partition;
    FILE *out = NULL;
    char tmp[4096];
    if (save) {
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if (!(out = fopen(tmp, "w"))) {
            if (f)
                fclose(f);
            gq_errf(r->err, sizeof(r->err), "%s: cannot write", tmp);
            return GQ_ERR;
        }
    }
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%255s %d %lld", topic, &partition, &offset) != 3)
            continue;
        bool current = false;
        for (size_t i = 0; i < r->cnt; i++) {
            gq_lag_part_t *p = &r->parts[i];
            if (p->partition != partition || strcmp(p->topic, topic) != 0)
                continue;
            p->has_previous = true;
            p->previous = offset;
            current = !p->no_end && p->committed != GQ_LAG_NO_COMMIT;
        }
        if (out && !current)
            fputs(line, out);
    }
    if (f)
        fclose(f);
    if (!out)
        return GQ_OK;
    for (size_t i = 0; i < r->cnt; i++)
        if (!r->parts[i].no_end && r->parts[i].committed != GQ_LAG_NO_COMMIT)
            fprintf(out, "%s %d %lld\n", r->parts[i].topic, (int)r->parts[i].partition,
                    (long long)r->parts[i].committed);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        gq_errf(r->err, sizeof(r->err), "%s: cannot write", path);
        return GQ_ERR;
    }
    return GQ_OK;
}

static void lag_print(const lag_run_t *r, const gq_lag_opts_t *o, const gq_lag_result_t *res) {
    const gq_cfg_t *cfg = r->cfg;
    bool all = gq_cfg_bool(cfg, "all_topics");
    if (strcmp(gq_cfg_str(cfg, "format"), "json") == 0) {
        json_t *parts = json_array();
        for (size_t i = 0; i < r->cnt; i++) {
            const gq_lag_part_t *p = &r->parts[i];
            json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I}", "topic", p->topic, "partition",
                                  (int)p->partition, "start", (json_int_t)p->start, "end",
                                  (json_int_t)p->end, "committed", (json_int_t)p->committed, "lag",
                                  (json_int_t)p->lag);
            if (p->no_end)
                json_object_set_new(j, "missing", json_true());
            if (p->lag_persistent != p->lag)
                json_object_set_new(j, "lag_with_persistent", json_integer(p->lag_persistent));
            json_array_append_new(parts, j);
        }
        json_t *out = json_pack("{s:o, s:s, s:o, s:I, s:I, s:I, s:I, s:b, s:I}", "topic",
                                all ? json_null() : json_string(gq_cfg_str(cfg, "requests_topic")),
                                "group", gq_cfg_str(cfg, "group"), "partitions", parts, "total_lag",
                                (json_int_t)res->total, "total_lag_with_persistent",
                                (json_int_t)res->total_persistent, "partitions_counted",
                                (json_int_t)res->partitions, "metric", (json_int_t)res->metric,
                                "active", res->active, "replicas", (json_int_t)res->replicas);
        char *s = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(out);
        return;
    }
    printf("%-24s %9s %10s %10s %10s %8s\n", "topic", "partition", "start", "end", "committed",
           "lag");
    for (size_t i = 0; i < r->cnt; i++) {
        const gq_lag_part_t *p = &r->parts[i];
        char c[24], lag[48];
        snprintf(c, sizeof(c), "%lld", (long long)p->committed);
        if (p->no_end)
            snprintf(lag, sizeof(lag), "not in the end-offset answer");
        else if (p->lag != p->lag_persistent)
            snprintf(lag, sizeof(lag), "%lld (persistent %lld)", (long long)p->lag,
                     (long long)p->lag_persistent);
        else
            snprintf(lag, sizeof(lag), "%lld", (long long)p->lag);
        printf("%-24s %9d %10lld %10lld %10s %8s\n", p->topic, (int)p->partition,
               (long long)p->start, (long long)p->end, p->committed == GQ_LAG_NO_COMMIT ? "-" : c,
               lag);
    }
    printf("total lag %lld, KEDA metric %lld, %s, %lld replica(s) at lagThreshold %lld\n",
           (long long)res->total, (long long)res->metric, res->active ? "active" : "inactive",
           (long long)res->replicas, (long long)o->threshold);
}

static void lag_release(lag_run_t *r) {
    if (r->rk)
        rd_kafka_destroy(r->rk);
    for (size_t i = 0; i < r->topics_cnt; i++)
        free(r->topics[i]);
    free(r->topics);
    free(r->parts);
}

/* KEDA reads the high watermark; librdkafka's consumer default (read_committed) would give
 * the last stable offset instead. A -X isolation.level still wins. */
static gq_status_t lag_conf(const gq_cfg_t *cfg, rd_kafka_conf_t *conf, char *errstr,
                            size_t errstr_size) {
    bool user = false;
    for (size_t i = 0; i < cfg->kafka_cnt; i++)
        user |= strncmp(cfg->kafka[i], "isolation.level=", 16) == 0;
    if (!user && gq_kafka_conf_set(conf, "isolation.level", "read_uncommitted", errstr,
                                   errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    return gq_kafka_conf_set(conf, "group.id", gq_cfg_str(cfg, "group"), errstr, errstr_size);
}

int gq_cmd_lag(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup_load(&cfg, GQ_CMD_LAG, "lag", lag_synopsis, lag_load, argc, argv, &argi);
    if (rc >= 0)
        return rc;
    lag_run_t r = {.cfg = &cfg};
    if (argi != argc)
        gq_errf(r.err, sizeof(r.err), "unexpected argument \"%s\"", argv[argi]);
    if (argi != argc || lag_validate(&cfg, r.err, sizeof(r.err)) != GQ_OK) {
        gq_err("%s; try genq lag --help", r.err);
        /* settings KEDA would refuse are the file's fault when there is one */
        rc = argi == argc && gq_cfg_isset(&cfg, "scaled_object") ? GQ_EXIT_CONFIG : GQ_EXIT_USAGE;
        gq_cfg_release(&cfg);
        return rc;
    }
    rd_kafka_conf_t *conf = gq_kafka_conf_new(&cfg, "genq-lag", r.err, sizeof(r.err));
    if (!conf || lag_conf(&cfg, conf, r.err, sizeof(r.err)) != GQ_OK) {
        gq_err("%s", r.err);
        if (conf)
            rd_kafka_conf_destroy(conf);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    /* Never joins the group: committed offsets can be read without it. */
    r.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, r.err, sizeof(r.err));
    gq_status_t st = r.rk ? GQ_OK : GQ_ERR_TRANSIENT;
    if (st == GQ_OK)
        st = gq_cfg_bool(&cfg, "all_topics")
                 ? lag_group_topics(&r)
                 : lag_add_topic(&r, gq_cfg_str(&cfg, "requests_topic"));
    if (st == GQ_OK)
        st = lag_partitions(&r);
    if (st == GQ_OK)
        st = lag_offsets(&r);
    const char *state = gq_cfg_str(&cfg, "lag_state");
    bool exclude = gq_cfg_bool(&cfg, "exclude_persistent_lag");
    if (st == GQ_OK && state && exclude)
        st = lag_state(&r, state, false);
    gq_lag_opts_t o = {
        .threshold = gq_cfg_int(&cfg, "lag_threshold"),
        .activation = gq_cfg_int(&cfg, "activation_lag_threshold"),
        .earliest = strcmp(gq_cfg_str(&cfg, "offset_reset_policy"), "earliest") == 0,
        .zero_on_invalid = gq_cfg_bool(&cfg, "scale_to_zero_on_invalid_offset"),
        .allow_idle = gq_cfg_bool(&cfg, "allow_idle_consumers"),
        .limit_to_lag = gq_cfg_bool(&cfg, "limit_to_partitions_with_lag"),
        .even_distribution = gq_cfg_bool(&cfg, "ensure_even_distribution_of_partitions"),
        .exclude_persistent = exclude,
        .min_replicas = gq_cfg_int(&cfg, "min_replicas"),
        .max_replicas = gq_cfg_int(&cfg, "max_replicas"),
    };
    gq_lag_result_t res;
    if (st == GQ_OK) {
        gq_lag_compute(r.parts, r.cnt, &o, &res);
        if (state && exclude)
            st = lag_state(&r, state, true);
    }
    if (st == GQ_OK)
        lag_print(&r, &o, &res);
    else
        gq_err("%s", r.err);
    lag_release(&r);
    gq_cfg_release(&cfg);
    return st == GQ_OK ? GQ_EXIT_OK : st == GQ_ERR_INVALID ? GQ_EXIT_CONFIG : GQ_EXIT_UNAVAILABLE;
}
