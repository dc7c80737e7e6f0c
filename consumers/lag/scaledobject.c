/* genq lag -f: a KEDA ScaledObject's kafka trigger as genq lag settings (lag.h). */
#include "lag.h"
#include "log.h"

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

/* The one ScaledObject in docs, and its one kafka trigger's metadata. */
static gq_status_t so_find(const json_t *docs, const json_t **so, const json_t **md, char *errstr,
                           size_t errstr_size) {
    size_t i, found = 0, kafka = 0;
    const json_t *d, *t;
    *so = *md = NULL;
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
        if (type && strcmp(type, "kafka") == 0) {
            *md = json_object_get(t, "metadata");
            kafka++;
            const char *mt = json_string_value(json_object_get(t, "metricType"));
            if (mt && strcmp(mt, "AverageValue") != 0)
                gq_warn("trigger metricType %s: the replica count shown assumes AverageValue", mt);
        }
    }
    if (kafka != 1 || !json_is_object(*md)) {
        gq_errf(errstr, errstr_size,
                "%zu triggers of type kafka with metadata; expected one (apache-kafka is "
                "another scaler)",
                kafka);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

gq_status_t gq_lag_apply_scaledobject(gq_cfg_t *cfg, const json_t *docs, const char *path,
                                      char *errstr, size_t errstr_size) {
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
    char err[512];
    const json_t *so, *md;
    const char *v, *brokers, *group, *topic;
    if (so_find(docs, &so, &md, err, sizeof(err)) != GQ_OK)
        goto bad;
    if (so_meta_env(md, "bootstrapServers", &brokers, err, sizeof(err)) != GQ_OK ||
        so_meta_env(md, "consumerGroup", &group, err, sizeof(err)) != GQ_OK ||
        so_meta_env(md, "topic", &topic, err, sizeof(err)) != GQ_OK)
        goto bad;
    if (!brokers || !group) {
        gq_errf(err, sizeof(err), "metadata.%s is required",
                brokers ? "consumerGroup" : "bootstrapServers");
        goto bad;
    }
    const json_t *spec = json_object_get(so, "spec");
    const json_t *mn = json_object_get(spec, "minReplicaCount");
    const json_t *mx = json_object_get(spec, "maxReplicaCount");
    if ((mn && !json_is_string(mn)) || (mx && !json_is_string(mx))) {
        gq_errf(err, sizeof(err), "spec.minReplicaCount and maxReplicaCount must be numbers");
        goto bad;
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
            so_set(cfg, direct[i][0], direct[i][1], direct[i][2], err, sizeof(err)) != GQ_OK)
            goto bad;
    for (size_t i = 0; i < GQ_ARRAY_LEN(plain); i++) {
        char from[64];
        snprintf(from, sizeof(from), "metadata.%s", plain[i][0]);
        if (so_meta(md, plain[i][0], &v, err, sizeof(err)) != GQ_OK ||
            so_set(cfg, plain[i][1], v ? v : plain[i][2], from, err, sizeof(err)) != GQ_OK)
            goto bad;
    }
    for (size_t i = 0; i < GQ_ARRAY_LEN(bools); i++)
        if (so_bool(md, bools[i][0], &v, err, sizeof(err)) != GQ_OK ||
            so_set(cfg, bools[i][1], v, "metadata", err, sizeof(err)) != GQ_OK)
            goto bad;
    if (so_kafka(cfg, md, err, sizeof(err)) != GQ_OK)
        goto bad;
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
        if (!ok)
            gq_warn("%s: ignoring trigger metadata %s (not a kafka scaler setting genq knows)",
                    path, key);
    }
    return GQ_OK;
bad:
    gq_errf(errstr, errstr_size, "%s: %s", path, err);
    return GQ_ERR_INVALID;
}
