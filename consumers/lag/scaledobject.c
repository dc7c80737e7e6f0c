/* genq lag -f: a KEDA ScaledObject's kafka triggers as genq lag settings (lag.h). */
#include "lag.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Sets key from the file unless a flag set it. */
static gq_status_t so_set(gq_cfg_t *cfg, const char *key, const char *value, const char *from,
                          char *errstr, size_t errstr_size) {
    if (gq_cfg_source(cfg, key) == GQ_SRC_FLAG)
        return GQ_OK;
    char why[512];
    if (gq_cfg_set(cfg, key, value, GQ_SRC_FILE, why, sizeof(why)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s: %s", from, why);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* A metadata value: a string (KEDA's metadata is map[string]string), or NULL if absent. */
static gq_status_t so_meta(const json_t *md, const char *key, const char **out, char *errstr,
                           size_t errstr_size) {
    const json_t *v = json_object_get(md, key);
    *out = json_string_value(v);
    if (v && !*out) {
        gq_errf(errstr, errstr_size, "metadata.%s: must be a string (quote it)", key);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* key, else keyFromEnv (read from our environment, where KEDA reads the target's). */
static gq_status_t so_meta_env(const json_t *md, const char *key, const char **out, char *errstr,
                               size_t errstr_size) {
    char env_key[64];
    const char *name;
    snprintf(env_key, sizeof(env_key), "%sFromEnv", key);
    if (so_meta(md, key, out, errstr, errstr_size) != GQ_OK ||
        so_meta(md, env_key, &name, errstr, errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    if (*out && **out)
        return GQ_OK;
    *out = name ? getenv(name) : NULL;
    if (name && (!*out || !**out)) {
        gq_errf(errstr, errstr_size, "metadata.%s: %s is not set in the environment", env_key,
                name);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* KEDA parses booleans with Go's strconv.ParseBool. */
static gq_status_t so_bool(const json_t *md, const char *key, const char **out, char *errstr,
                           size_t errstr_size) {
    static const char *const truths[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const lies[] = {"0", "f", "F", "FALSE", "false", "False"};
    const char *v;
    if (so_meta(md, key, &v, errstr, errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    *out = "false";
    for (size_t i = 0; v && i < GQ_ARRAY_LEN(truths); i++) {
        if (strcmp(v, truths[i]) == 0)
            *out = "true";
        if (strcmp(v, truths[i]) == 0 || strcmp(v, lies[i]) == 0)
            return GQ_OK;
    }
    if (v) {
        gq_errf(errstr, errstr_size, "metadata.%s: \"%s\" is not a boolean", key, v);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* security.protocol and sasl.mechanism from the trigger's tls and sasl, put before the
 * GENQ_KAFKA_* and -X properties so that those win. */
static gq_status_t so_kafka(gq_cfg_t *cfg, const json_t *md, char *errstr, size_t errstr_size) {
    static const char *const sasl_from[] = {"plaintext", "scram_sha256", "scram_sha512",
                                            "oauthbearer", "gssapi"};
    static const char *const sasl_to[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER",
                                          "GSSAPI"};
    const char *tls, *sasl, *unsafe;
    if (so_meta(md, "tls", &tls, errstr, errstr_size) != GQ_OK ||
        so_meta(md, "sasl", &sasl, errstr, errstr_size) != GQ_OK ||
        so_bool(md, "unsafeSsl", &unsafe, errstr, errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    if (tls && strcmp(tls, "enable") != 0 && strcmp(tls, "disable") != 0) {
        gq_errf(errstr, errstr_size, "metadata.tls: enable or disable, not \"%s\"", tls);
        return GQ_ERR_INVALID;
    }
    const char *mech = NULL;
    for (size_t i = 0; sasl && i < GQ_ARRAY_LEN(sasl_from); i++)
        if (strcmp(sasl, sasl_from[i]) == 0)
            mech = sasl_to[i];
    if (sasl && !mech && strcmp(sasl, "none") != 0) {
        gq_errf(errstr, errstr_size, "metadata.sasl: unknown mechanism \"%s\"", sasl);
        return GQ_ERR_INVALID;
    }
    bool ssl = tls && strcmp(tls, "enable") == 0;
    char props[3][64];
    size_t n = 0;
    snprintf(props[n++], sizeof(props[0]), "security.protocol=%s",
             mech ? (ssl ? "SASL_SSL" : "SASL_PLAINTEXT") : (ssl ? "SSL" : "PLAINTEXT"));
    if (mech)
        snprintf(props[n++], sizeof(props[0]), "sasl.mechanism=%s", mech);
    if (strcmp(unsafe, "true") == 0)
        snprintf(props[n++], sizeof(props[0]), "enable.ssl.certificate.verification=false");
    if (cfg->kafka_cnt + n > GQ_CFG_MAX_KAFKA) {
        gq_errf(errstr, errstr_size, "too many kafka properties");
        return GQ_ERR_INVALID;
    }
    memmove(cfg->kafka + n, cfg->kafka, cfg->kafka_cnt * sizeof(cfg->kafka[0]));
    cfg->kafka_cnt += n;
    for (size_t i = 0; i < n; i++)
        if (!(cfg->kafka[i] = strdup(props[i]))) {
            gq_errf(errstr, errstr_size, "out of memory");
            return GQ_ERR_NOMEM;
        }
    return GQ_OK;
}

/* The one ScaledObject in docs, and its kafka triggers (each with a metadata object). */
static gq_status_t so_find(const json_t *docs, const json_t **so, const json_t **kafka,
                           size_t *kafka_cnt, char *errstr, size_t errstr_size) {
    size_t i, found = 0, n = 0;
    const json_t *d, *t;
    *so = NULL;
    json_array_foreach(docs, i, d) {
        const char *kind = json_string_value(json_object_get(d, "kind"));
        if (kind && strcmp(kind, "ScaledObject") == 0) {
            *so = d;
            found++;
        }
    }
    if (found != 1) {
        gq_errf(errstr, errstr_size, "%zu ScaledObjects (kind: ScaledObject); expected one", found);
        return GQ_ERR_INVALID;
    }
    json_array_foreach(json_object_get(json_object_get(*so, "spec"), "triggers"), i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type || strcmp(type, "kafka") != 0)
            continue;
        if (!json_is_object(json_object_get(t, "metadata"))) {
            gq_errf(errstr, errstr_size, "trigger %zu (kafka) has no metadata", i);
            return GQ_ERR_INVALID;
        }
        if (n == GQ_LAG_MAX_TRIGGERS) {
            gq_errf(errstr, errstr_size, "more than %d kafka triggers", GQ_LAG_MAX_TRIGGERS);
            return GQ_ERR_INVALID;
        }
        kafka[n++] = t;
    }
    *kafka_cnt = n;
    if (n == 0) {
        gq_errf(errstr, errstr_size,
                "0 triggers of type kafka with metadata; expected at least one (apache-kafka "
                "is another scaler)");
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* One kafka trigger's metadata and the ScaledObject's replica bounds, onto cfg. */
static gq_status_t so_apply_trigger(gq_cfg_t *cfg, const json_t *so, const json_t *md,
                                    const char *path, bool warn, char *err, size_t err_size) {
    /* metadata key -> genq lag key, default (KEDA's) */
    static const char *const plain[][3] = {
        {"lagThreshold", "lag_threshold", "10"},
        {"activationLagThreshold", "activation_lag_threshold", "0"},
        {"offsetResetPolicy", "offset_reset_policy", "latest"},
        {"partitionLimitation", "partition_limitation", NULL},
    };
    static const char *const bools[][2] = {
        {"allowIdleConsumers", "allow_idle_consumers"},
        {"excludePersistentLag", "exclude_persistent_lag"},
        {"scaleToZeroOnInvalidOffset", "scale_to_zero_on_invalid_offset"},
        {"limitToPartitionsWithLag", "limit_to_partitions_with_lag"},
        {"ensureEvenDistributionOfPartitions", "ensure_even_distribution_of_partitions"},
    };
    /* read elsewhere, or not about lag (the protocol version, credentials, AWS, Kerberos) */
    static const char *const known[] = {"bootstrapServers",
                                        "bootstrapServersFromEnv",
                                        "consumerGroup",
                                        "consumerGroupFromEnv",
                                        "topic",
                                        "topicFromEnv",
                                        "tls",
                                        "sasl",
                                        "unsafeSsl",
                                        "version",
                                        "fullMetadata",
                                        "awsRegion",
                                        "saslTokenProvider"};
    const char *v, *brokers, *group, *topic;
    if (so_meta_env(md, "bootstrapServers", &brokers, err, err_size) != GQ_OK ||
        so_meta_env(md, "consumerGroup", &group, err, err_size) != GQ_OK ||
        so_meta_env(md, "topic", &topic, err, err_size) != GQ_OK)
        return GQ_ERR_INVALID;
    if (!brokers || !group) {
        gq_errf(err, err_size, "metadata.%s is required",
                brokers ? "consumerGroup" : "bootstrapServers");
        return GQ_ERR_INVALID;
    }
    const json_t *spec = json_object_get(so, "spec");
    const json_t *mn = json_object_get(spec, "minReplicaCount");
    const json_t *mx = json_object_get(spec, "maxReplicaCount");
    if ((mn && !json_is_string(mn)) || (mx && !json_is_string(mx))) {
        gq_errf(err, err_size, "spec.minReplicaCount and maxReplicaCount must be numbers");
        return GQ_ERR_INVALID;
    }
    bool all = !topic || !*topic;
    const char *const direct[][3] = {
        {"brokers", brokers, "metadata.bootstrapServers"},
        {"group", group, "metadata.consumerGroup"},
        {"all_topics", all ? "true" : "false", "metadata.topic"},
        {"requests_topic", topic, "metadata.topic"},
        {"min_replicas", mn ? json_string_value(mn) : "0", "spec.minReplicaCount"},
        {"max_replicas", mx ? json_string_value(mx) : "100", "spec.maxReplicaCount"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(direct); i++)
        if (direct[i][1] && *direct[i][1] &&
            so_set(cfg, direct[i][0], direct[i][1], direct[i][2], err, err_size) != GQ_OK)
            return GQ_ERR_INVALID;
    for (size_t i = 0; i < GQ_ARRAY_LEN(plain); i++) {
        char from[64];
        snprintf(from, sizeof(from), "metadata.%s", plain[i][0]);
        if (so_meta(md, plain[i][0], &v, err, err_size) != GQ_OK ||
            so_set(cfg, plain[i][1], v ? v : plain[i][2], from, err, err_size) != GQ_OK)
            return GQ_ERR_INVALID;
    }
    for (size_t i = 0; i < GQ_ARRAY_LEN(bools); i++)
        if (so_bool(md, bools[i][0], &v, err, err_size) != GQ_OK ||
            so_set(cfg, bools[i][1], v, "metadata", err, err_size) != GQ_OK)
            return GQ_ERR_INVALID;
    if (so_kafka(cfg, md, err, err_size) != GQ_OK)
        return GQ_ERR_INVALID;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)md, key, value) {
        bool ok = false;
        for (size_t i = 0; i < GQ_ARRAY_LEN(known) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        for (size_t i = 0; i < GQ_ARRAY_LEN(plain) && !ok; i++)
            ok = strcmp(key, plain[i][0]) == 0;
        for (size_t i = 0; i < GQ_ARRAY_LEN(bools) && !ok; i++)
            ok = strcmp(key, bools[i][0]) == 0;
        if (!ok && warn)
            gq_warn("%s: ignoring trigger metadata %s (not a kafka scaler setting genq knows)",
                    path, key);
    }
    return GQ_OK;
}

/* Two strings, either of them NULL, are the same. */
static bool so_same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The settings one client reads every trigger with must be the same in all of them. */
static gq_status_t so_check_shared(const json_t *const *kafka, size_t n, char *err,
                                   size_t err_size) {
    static const char *const shared[] = {"bootstrapServers", "consumerGroup",    "tls", "sasl",
                                         "unsafeSsl",        "saslTokenProvider"};
    for (size_t k = 0; k < GQ_ARRAY_LEN(shared); k++) {
        const char *first = NULL;
        for (size_t i = 0; i < n; i++) {
            const json_t *md = json_object_get(kafka[i], "metadata");
            const char *v;
            if ((k < 2 ? so_meta_env(md, shared[k], &v, err, err_size)
                       : so_meta(md, shared[k], &v, err, err_size)) != GQ_OK)
                return GQ_ERR_INVALID;
            if (i == 0)
                first = v;
            else if (!so_same(first, v)) {
                gq_errf(err, err_size,
                        "the kafka triggers differ in %s (\"%s\", \"%s\"): genq lag reads every "
                        "trigger with one client, so they must share bootstrapServers, "
                        "consumerGroup, tls and sasl",
                        shared[k], first ? first : "(unset)", v ? v : "(unset)");
                return GQ_ERR_INVALID;
            }
        }
    }
    return GQ_OK;
}

/* A string field of scalingModifiers, or NULL. */
static gq_status_t so_modifier(const json_t *sm, const char *key, const char **out, char *err,
                               size_t err_size) {
    const json_t *v = json_object_get(sm, key);
    *out = json_string_value(v);
    if (v && !json_is_null(v) && !*out) {
        gq_errf(err, err_size, "advanced.scalingModifiers.%s must be a string", key);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

/* advanced.scalingModifiers, checked as KEDA's admission webhook checks them
 * (ValidateAndCompileScalingModifiers, apis/keda/v1alpha1/scaledobject_webhook.go, v2.21.0). */
static gq_status_t so_modifiers(const json_t *so, const char *const *names, size_t n,
                                gq_lag_plan_t *plan, char *err, size_t err_size) {
    const json_t *sm = json_object_get(json_object_get(json_object_get(so, "spec"), "advanced"),
                                       "scalingModifiers");
    if (!sm || json_is_null(sm) || (json_is_object(sm) && json_object_size(sm) == 0))
        return GQ_OK;
    if (!json_is_object(sm)) {
        gq_errf(err, err_size, "advanced.scalingModifiers must be a mapping");
        return GQ_ERR_INVALID;
    }
    const char *formula, *target, *activation, *type;
    if (so_modifier(sm, "formula", &formula, err, err_size) != GQ_OK ||
        so_modifier(sm, "target", &target, err, err_size) != GQ_OK ||
        so_modifier(sm, "activationTarget", &activation, err, err_size) != GQ_OK ||
        so_modifier(sm, "metricType", &type, err, err_size) != GQ_OK)
        return GQ_ERR_INVALID;
    double t = 0, a = 0;
    if (!formula || !*formula) {
        gq_errf(err, err_size, "advanced.scalingModifiers without a formula (KEDA refuses it)");
        return GQ_ERR_INVALID;
    }
    if (!target || gq_parse_double(target, &t) != GQ_OK || !(t > 0)) {
        gq_errf(err, err_size,
                "advanced.scalingModifiers.target \"%s\": a number above 0 is required with a "
                "formula",
                target ? target : "");
        return GQ_ERR_INVALID;
    }
    if (activation && *activation && gq_parse_double(activation, &a) != GQ_OK) {
        gq_errf(err, err_size, "advanced.scalingModifiers.activationTarget \"%s\" is not a number",
                activation);
        return GQ_ERR_INVALID;
    }
    if (type && *type && strcmp(type, "AverageValue") != 0 && strcmp(type, "Value") != 0) {
        gq_errf(err, err_size,
                "advanced.scalingModifiers.metricType %s: AverageValue or Value (KEDA refuses "
                "Utilization for external metrics)",
                type);
        return GQ_ERR_INVALID;
    }
    gq_lag_formula_t f;
    if (gq_lag_formula_parse(&f, formula, names, n, err, err_size) != GQ_OK)
        return GQ_ERR_INVALID;
    if (plan) {
        plan->scale.combine = GQ_LAG_SUM;
        plan->scale.formula = f;
        plan->scale.target = t;
        plan->scale.activation = a;
        plan->value_metric = type && strcmp(type, "Value") == 0;
        snprintf(plan->formula_text, sizeof(plan->formula_text), "%s", formula);
    }
    return GQ_OK;
}

/*
 * Reads the ScaledObject: every kafka trigger is applied to its own copy of base (into
 * plan when given, else only checked), and the first one to apply_to when given.
 */
static gq_status_t so_read(const gq_cfg_t *base, gq_cfg_t *apply_to, const json_t *docs,
                           const char *path, gq_lag_plan_t *plan, char *err, size_t err_size) {
    const json_t *so, *kafka[GQ_LAG_MAX_TRIGGERS];
    const char *names[GQ_LAG_MAX_TRIGGERS];
    size_t n;
    if (so_find(docs, &so, kafka, &n, err, err_size) != GQ_OK ||
        so_check_shared(kafka, n, err, err_size) != GQ_OK)
        return GQ_ERR_INVALID;
    if (n > 1 && (gq_cfg_source(base, "requests_topic") == GQ_SRC_FLAG ||
                  gq_cfg_source(base, "all_topics") == GQ_SRC_FLAG)) {
        gq_errf(err, err_size,
                "--requests-topic/--all-topics cannot apply to %zu kafka triggers: each names "
                "its own topic",
                n);
        return GQ_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *nm = json_object_get(kafka[i], "name");
        names[i] = json_string_value(nm);
        if (nm && !json_is_null(nm) && !names[i]) {
            gq_errf(err, err_size, "a trigger's name must be a string");
            return GQ_ERR_INVALID;
        }
        for (size_t j = 0; j < i && names[i]; j++)
            if (names[j] && strcmp(names[i], names[j]) == 0) {
                gq_errf(err, err_size, "two triggers are named %s", names[i]);
                return GQ_ERR_INVALID;
            }
    }
    if (so_modifiers(so, names, n, plan, err, err_size) != GQ_OK)
        return GQ_ERR_INVALID;
    if (plan && plan->scale.combine != GQ_LAG_SUM)
        plan->scale.combine = n > 1 ? GQ_LAG_MAX : GQ_LAG_ONE;
    for (size_t i = 0; i < n; i++) {
        gq_cfg_t copy;
        char why[512];
        const json_t *md = json_object_get(kafka[i], "metadata");
        if (gq_cfg_copy(&copy, base) != GQ_OK) {
            gq_errf(err, err_size, "out of memory");
            return GQ_ERR_NOMEM;
        }
        gq_status_t st = so_apply_trigger(&copy, so, md, path, apply_to != NULL, why, sizeof(why));
        if (st != GQ_OK) {
            gq_cfg_release(&copy);
            if (n == 1)
                gq_errf(err, err_size, "%s", why);
            else
                gq_errf(err, err_size, "trigger %s: %s", names[i] ? names[i] : "(no name)", why);
            return st;
        }
        if (!plan) {
            gq_cfg_release(&copy);
            continue;
        }
        gq_lag_trigger_t *t = &plan->trigger[plan->cnt++];
        t->cfg = copy;
        snprintf(t->name, sizeof(t->name), "%s", names[i] ? names[i] : "");
        const char *mt = json_string_value(json_object_get(kafka[i], "metricType"));
        t->value_metric = mt && strcmp(mt, "Value") == 0;
        if (i == 0) {
            plan->scale.min_replicas = gq_cfg_int(&copy, "min_replicas");
            plan->scale.max_replicas = gq_cfg_int(&copy, "max_replicas");
        }
    }
    if (apply_to)
        return so_apply_trigger(apply_to, so, json_object_get(kafka[0], "metadata"), path, false,
                                err, err_size);
    return GQ_OK;
}

gq_status_t gq_lag_apply_scaledobject(gq_cfg_t *cfg, const json_t *docs, const char *path,
                                      char *errstr, size_t errstr_size) {
    char err[1024];
    if (so_read(cfg, cfg, docs, path, NULL, err, sizeof(err)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s: %s", path, err);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

gq_status_t gq_lag_plan_scaledobject(gq_lag_plan_t *plan, const gq_cfg_t *cfg, const json_t *docs,
                                     const char *path, char *errstr, size_t errstr_size) {
    char err[1024];
    memset(plan, 0, sizeof(*plan));
    plan->scale.min_replicas = gq_cfg_int(cfg, "min_replicas");
    plan->scale.max_replicas = gq_cfg_int(cfg, "max_replicas");
    if (so_read(cfg, NULL, docs, path, plan, err, sizeof(err)) != GQ_OK) {
        gq_lag_plan_release(plan);
        gq_errf(errstr, errstr_size, "%s: %s", path, err);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}
