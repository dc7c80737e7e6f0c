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
    "HPA would ask for. -f reads a KEDA ScaledObject and computes with its kafka triggers'\n"
    "settings and replica bounds; a flag still wins over the file (--brokers, for a\n"
    "bootstrapServers only reachable in the cluster; credentials as GENQ_KAFKA_*). Several\n"
    "kafka triggers (one per priority lane) are combined as KEDA and the HPA do: summed by\n"
    "an advanced.scalingModifiers formula, or else the largest count of one trigger.\n"
    "With lanes (GENQ_LANES) and no -f, every lane topic is a trigger and they are summed.\n";

typedef struct lag_run {
    gq_cfg_t *cfg;
    const gq_lag_plan_t *plan;
    rd_kafka_t *rk;
    char **topics; /**< owned: every topic named, once */
    size_t topics_cnt;
    const char **group_topics; /**< owned array (names in topics): the group's topics */
    size_t group_topics_cnt;
    bool group_topics_read;
    gq_lag_part_t *parts; /**< owned; topic points into topics */
    size_t cnt;
    size_t first[GQ_LAG_MAX_TRIGGERS + 1]; /**< trigger i's parts: [first[i], first[i + 1]) */
    gq_lag_opts_t opts[GQ_LAG_MAX_TRIGGERS];
    gq_lag_result_t res[GQ_LAG_MAX_TRIGGERS];
    gq_lag_total_t total;
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

/* Stores topic once; *stored (may be NULL) gets the stored copy. */
static gq_status_t lag_add_topic(lag_run_t *r, const char *topic, const char **stored) {
    for (size_t i = 0; i < r->topics_cnt; i++)
        if (strcmp(r->topics[i], topic) == 0) {
            if (stored)
                *stored = r->topics[i];
            return GQ_OK;
        }
    char **more = realloc(r->topics, (r->topics_cnt + 1) * sizeof(*more));
    if (!more || !(more[r->topics_cnt] = strdup(topic))) {
        if (more)
            r->topics = more;
        gq_errf(r->err, sizeof(r->err), "out of memory");
        return GQ_ERR_NOMEM;
    }
    r->topics = more;
    if (stored)
        *stored = r->topics[r->topics_cnt];
    r->topics_cnt++;
    return GQ_OK;
}

/* Adds topic to the group's topics (once). */
static gq_status_t lag_add_group_topic(lag_run_t *r, const char *topic) {
    const char *stored;
    if (lag_add_topic(r, topic, &stored) != GQ_OK)
        return GQ_ERR_NOMEM;
    for (size_t i = 0; i < r->group_topics_cnt; i++)
        if (r->group_topics[i] == stored)
            return GQ_OK;
    const char **more = realloc(r->group_topics, (r->group_topics_cnt + 1) * sizeof(*more));
    if (!more) {
        gq_errf(r->err, sizeof(r->err), "out of memory");
        return GQ_ERR_NOMEM;
    }
    r->group_topics = more;
    r->group_topics[r->group_topics_cnt++] = stored;
    return GQ_OK;
}

/* Without a topic: every topic the group has committed offsets for, as KEDA asks Kafka
 * (OffsetFetch for the whole group). */
static gq_status_t lag_group_topics(lag_run_t *r) {
    if (r->group_topics_read)
        return GQ_OK;
    r->group_topics_read = true;
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
            st = lag_add_group_topic(r, l->elems[i].topic);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    if (st != GQ_OK || r->group_topics_cnt > 0)
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
        st = lag_add_group_topic(r, md->topics[i].topic);
    rd_kafka_metadata_destroy(md);
    return st;
}

/* The partitions of one trigger (tc its settings): every partition of each of its topics,
 * or those of partitionLimitation (ignored without a topic, as KEDA does). */
static gq_status_t lag_partitions(lag_run_t *r, const gq_cfg_t *tc) {
    int32_t *only = NULL;
    size_t only_cnt = 0;
    const char *lim = gq_cfg_str(tc, "partition_limitation");
    bool all = gq_cfg_bool(tc, "all_topics");
    const char *one = NULL;
    if (lim && lim[strspn(lim, " ")] &&
        gq_lag_parse_partitions(lim, &only, &only_cnt, r->err, sizeof(r->err)) != GQ_OK)
        return GQ_ERR_INVALID;
    if (all) {
        free(only);
        only = NULL;
        only_cnt = 0;
    }
    gq_status_t st =
        all ? lag_group_topics(r) : lag_add_topic(r, gq_cfg_str(tc, "requests_topic"), &one);
    const char *const *topics = all ? r->group_topics : &one;
    size_t topics_cnt = all ? r->group_topics_cnt : 1;
    for (size_t t = 0; st == GQ_OK && t < topics_cnt; t++) {
        int n = 0;
        size_t before = r->cnt;
        st = gq_kafka_partition_count(r->rk, topics[t], LAG_TIMEOUT_MS, &n, r->err, sizeof(r->err));
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
                r->parts[r->cnt++] = (gq_lag_part_t){.topic = topics[t], .partition = p};
        }
        if (st == GQ_OK && r->cnt == before) {
            gq_errf(r->err, sizeof(r->err), "partition_limitation %s names no partition of %s", lim,
                    topics[t]);
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
    for (size_t i = 0; i < r->cnt; i++) {
        bool again = false; /* a partition two triggers watch: one line */
        for (size_t j = 0; j < i && !again; j++)
            again = r->parts[j].topic == r->parts[i].topic &&
                    r->parts[j].partition == r->parts[i].partition;
        if (!again && !r->parts[i].no_end && r->parts[i].committed != GQ_LAG_NO_COMMIT)
            fprintf(out, "%s %d %lld\n", r->parts[i].topic, (int)r->parts[i].partition,
                    (long long)r->parts[i].committed);
    }
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        gq_errf(r->err, sizeof(r->err), "%s: cannot write", path);
        return GQ_ERR;
    }
    return GQ_OK;
}

static const char *const lag_combine_names[] = {"one", "max", "sum"};

/* A trigger's topic for output: NULL for all the group's topics. */
static const char *lag_trigger_topic(const gq_lag_trigger_t *t) {
    return gq_cfg_bool(&t->cfg, "all_topics") ? NULL : gq_cfg_str(&t->cfg, "requests_topic");
}

/* A composite value in milli units as JSON: an integer when it is whole. */
static json_t *lag_json_number(double v) {
    return v == (double)(json_int_t)v ? json_integer((json_int_t)v) : json_real(v);
}

static void lag_print_json(const lag_run_t *r) {
    const gq_lag_plan_t *plan = r->plan;
    const gq_lag_total_t *t = &r->total;
    json_t *parts = json_array(), *topics = json_array(), *triggers = json_array();
    int64_t total = 0, persistent = 0, counted = 0;
    for (size_t k = 0; k < plan->cnt; k++) {
        const gq_lag_result_t *res = &r->res[k];
        const char *topic = lag_trigger_topic(&plan->trigger[k]);
        for (size_t i = r->first[k]; i < r->first[k + 1]; i++) {
            const gq_lag_part_t *p = &r->parts[i];
            json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I}", "topic", p->topic, "partition",
                                  (int)p->partition, "start", (json_int_t)p->start, "end",
                                  (json_int_t)p->end, "committed", (json_int_t)p->committed, "lag",
                                  (json_int_t)p->lag);
            if (p->no_end)
                json_object_set_new(j, "missing", json_true());
            if (p->lag_persistent != p->lag)
                json_object_set_new(j, "lag_with_persistent", json_integer(p->lag_persistent));
            if (plan->cnt > 1)
                json_object_set_new(j, "trigger", json_string(plan->trigger[k].name));
            json_array_append_new(parts, j);
        }
        json_array_append_new(
            triggers,
            json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:b, s:I}", "name",
                      plan->trigger[k].name, "topic", topic ? json_string(topic) : json_null(),
                      "lag_threshold", (json_int_t)r->opts[k].threshold, "total_lag",
                      (json_int_t)res->total, "total_lag_with_persistent",
                      (json_int_t)res->total_persistent, "partitions_counted",
                      (json_int_t)res->partitions, "metric", (json_int_t)res->metric, "active",
                      res->active, "replicas", (json_int_t)res->replicas));
        if (topic)
            json_array_append_new(topics, json_string(topic));
        total += res->total;
        persistent += res->total_persistent;
        counted += res->partitions;
    }
    const char *one = plan->cnt == 1 ? lag_trigger_topic(&plan->trigger[0]) : NULL;
    json_t *metric = plan->scale.combine == GQ_LAG_MAX ? json_null() : lag_json_number(t->value);
    json_t *out = json_pack("{s:o, s:o, s:s, s:o, s:I, s:I, s:I, s:o, s:b, s:I, s:s, s:o}", "topic",
                            one ? json_string(one) : json_null(), "topics", topics, "group",
                            gq_cfg_str(r->cfg, "group"), "partitions", parts, "total_lag",
                            (json_int_t)total, "total_lag_with_persistent", (json_int_t)persistent,
                            "partitions_counted", (json_int_t)counted, "metric", metric, "active",
                            t->active, "replicas", (json_int_t)t->replicas, "combine",
                            lag_combine_names[plan->scale.combine], "triggers", triggers);
    if (out && plan->scale.combine == GQ_LAG_SUM)
        json_object_set_new(out, "formula",
                            json_pack("{s:s, s:o, s:o, s:o, s:s}", "text", plan->formula_text,
                                      "value", lag_json_number(t->value), "target",
                                      lag_json_number(plan->scale.target), "activation_target",
                                      lag_json_number(plan->scale.activation), "metric_type",
                                      plan->value_metric ? "Value" : "AverageValue"));
    if (out && plan->cnt > 1) {
        json_object_set_new(out, "replicas_max", json_integer(t->replicas_max));
        json_object_set_new(out, "replicas_sum",
                            t->replicas_sum < 0 ? json_null() : json_integer(t->replicas_sum));
    }
    char *str = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    printf("%s\n", str ? str : "{}");
    free(str);
    json_decref(out);
}

static void lag_print(const lag_run_t *r) {
    const gq_lag_plan_t *plan = r->plan;
    const gq_lag_total_t *t = &r->total;
    if (strcmp(gq_cfg_str(r->cfg, "format"), "json") == 0) {
        lag_print_json(r);
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
    if (plan->scale.combine == GQ_LAG_ONE && plan->cnt == 1) {
        const gq_lag_result_t *res = &r->res[0];
        printf("total lag %lld, KEDA metric %lld, %s, %lld replica(s) at lagThreshold %lld\n",
               (long long)res->total, (long long)res->metric, res->active ? "active" : "inactive",
               (long long)res->replicas, (long long)r->opts[0].threshold);
        return;
    }
    int64_t total = 0;
    for (size_t k = 0; k < plan->cnt; k++) {
        const gq_lag_result_t *res = &r->res[k];
        const char *topic = lag_trigger_topic(&plan->trigger[k]);
        total += res->total;
        const char *name = *plan->trigger[k].name ? plan->trigger[k].name : "(no name)";
        char what[600];
        if (topic && strcmp(name, topic) == 0)
            snprintf(what, sizeof(what), "lane %s", topic);
        else
            snprintf(what, sizeof(what), "trigger %s (%s)", name,
                     topic ? topic : "all the group's topics");
        printf("%s: lag %lld, KEDA metric %lld, %s; alone %lld replica(s) at lagThreshold %lld\n",
               what, (long long)res->total, (long long)res->metric,
               res->active ? "active" : "inactive", (long long)res->replicas,
               (long long)r->opts[k].threshold);
    }
    if (plan->scale.combine == GQ_LAG_SUM && plan->lanes)
        printf("total lag %lld; the lanes summed (as k8s/components/priority-lanes scales): "
               "%g, %s (activationTarget %g), %lld replica(s) at target %g (without the sum, the "
               "largest lane's count: %lld)\n",
               (long long)total, t->value, t->active ? "active" : "inactive",
               plan->scale.activation, (long long)t->replicas, plan->scale.target,
               (long long)t->replicas_max);
    else if (plan->scale.combine == GQ_LAG_SUM)
        printf("total lag %lld; scalingModifiers formula %s = %g, %s (activationTarget %g), "
               "%lld replica(s) at target %g (without the formula, the largest trigger's count: "
               "%lld)\n",
               (long long)total, plan->formula_text, t->value, t->active ? "active" : "inactive",
               plan->scale.activation, (long long)t->replicas, plan->scale.target,
               (long long)t->replicas_max);
    else
        printf("total lag %lld over %zu triggers, no scalingModifiers: %s, %lld replica(s), "
               "the largest trigger's count\n",
               (long long)total, plan->cnt, t->active ? "active" : "inactive",
               (long long)t->replicas);
}

static void lag_release(lag_run_t *r) {
    if (r->rk)
        rd_kafka_destroy(r->rk);
    for (size_t i = 0; i < r->topics_cnt; i++)
        free(r->topics[i]);
    free(r->topics);
    free(r->group_topics);
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

/* Warnings about what the replica count cannot show. */
static void lag_warn(const lag_run_t *r) {
    const gq_lag_plan_t *plan = r->plan;
    if (plan->scale.combine == GQ_LAG_SUM && plan->value_metric)
        gq_warn("scalingModifiers.metricType Value: the HPA multiplies the current replica count "
                "by value / target; the count shown assumes AverageValue");
    for (size_t k = 0; k < plan->cnt && plan->scale.combine != GQ_LAG_SUM; k++)
        if (plan->trigger[k].value_metric)
            gq_warn("trigger %s has metricType Value: the count shown assumes AverageValue",
                    plan->trigger[k].name);
    if (plan->scale.combine != GQ_LAG_MAX)
        return;
    char sum[96] = "";
    if (r->total.replicas_sum >= 0)
        snprintf(sum, sizeof(sum), " (%lld replica(s))", (long long)r->total.replicas_sum);
    gq_warn("%zu kafka triggers without advanced.scalingModifiers: the HPA asks for the largest "
            "of their counts (%lld replica(s)), not for their summed lag%s, so a backlog spread "
            "over the lanes under-scales; sum them with a formula (k8s/components/priority-lanes)",
            plan->cnt, (long long)r->total.replicas, sum);
}

/* Reads the offsets of every trigger's partitions and computes each, then the whole. */
static gq_status_t lag_run(lag_run_t *r) {
    const gq_lag_plan_t *plan = r->plan;
    gq_status_t st = GQ_OK;
    bool exclude = false;
    for (size_t k = 0; st == GQ_OK && k < plan->cnt; k++) {
        r->first[k] = r->cnt;
        st = lag_partitions(r, &plan->trigger[k].cfg);
        r->first[k + 1] = r->cnt;
        gq_lag_opts_from_cfg(&r->opts[k], &plan->trigger[k].cfg);
        exclude |= r->opts[k].exclude_persistent;
    }
    if (st == GQ_OK)
        st = lag_offsets(r);
    const char *state = gq_cfg_str(r->cfg, "lag_state");
    if (st == GQ_OK && state && exclude)
        st = lag_state(r, state, false);
    if (st != GQ_OK)
        return st;
    for (size_t k = 0; k < plan->cnt; k++)
        gq_lag_compute(r->parts + r->first[k], r->first[k + 1] - r->first[k], &r->opts[k],
                       &r->res[k]);
    gq_lag_combine(&plan->scale, r->opts, r->res, plan->cnt, &r->total);
    if (state && exclude)
        st = lag_state(r, state, true);
    return st;
}

int gq_cmd_lag(int argc, char **argv) {
    gq_cfg_t cfg;
    gq_lag_plan_t plan;
    int argi = 0;
    int rc = gq_cli_setup_load(&cfg, GQ_CMD_LAG, "lag", lag_synopsis, lag_load, argc, argv, &argi);
    if (rc >= 0)
        return rc;
    lag_run_t r = {.cfg = &cfg, .plan = &plan};
    /* settings KEDA would refuse are the file's (or the environment's) fault */
    bool from_file =
        gq_cfg_isset(&cfg, "scaled_object") || gq_cfg_source(&cfg, "lanes") == GQ_SRC_ENV;
    if (argi != argc) {
        gq_err("unexpected argument \"%s\"; try genq lag --help", argv[argi]);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    if (gq_lag_plan_init(&plan, &cfg, r.err, sizeof(r.err)) != GQ_OK) {
        gq_err("%s; try genq lag --help", r.err);
        gq_cfg_release(&cfg);
        return from_file ? GQ_EXIT_CONFIG : GQ_EXIT_USAGE;
    }
    for (size_t k = 0; k < plan.cnt; k++) {
        char why[512];
        if (lag_validate(&plan.trigger[k].cfg, why, sizeof(why)) == GQ_OK)
            continue;
        if (plan.cnt > 1)
            gq_err("trigger %s: %s; try genq lag --help", plan.trigger[k].name, why);
        else
            gq_err("%s; try genq lag --help", why);
        gq_lag_plan_release(&plan);
        gq_cfg_release(&cfg);
        return from_file ? GQ_EXIT_CONFIG : GQ_EXIT_USAGE;
    }
    rd_kafka_conf_t *conf = gq_kafka_conf_new(&cfg, "genq-lag", r.err, sizeof(r.err));
    if (!conf || lag_conf(&cfg, conf, r.err, sizeof(r.err)) != GQ_OK) {
        gq_err("%s", r.err);
        if (conf)
            rd_kafka_conf_destroy(conf);
        gq_lag_plan_release(&plan);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    /* Never joins the group: committed offsets can be read without it. */
    r.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, r.err, sizeof(r.err));
    gq_status_t st = r.rk ? lag_run(&r) : GQ_ERR_TRANSIENT;
    if (st == GQ_OK) {
        lag_warn(&r);
        lag_print(&r);
    } else {
        gq_err("%s", r.err);
    }
    lag_release(&r);
    gq_lag_plan_release(&plan);
    gq_cfg_release(&cfg);
    return st == GQ_OK ? GQ_EXIT_OK : st == GQ_ERR_INVALID ? GQ_EXIT_CONFIG : GQ_EXIT_UNAVAILABLE;
}
