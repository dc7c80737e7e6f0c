/* The schema settings of a command (cfg_table.c): writer schemas and the Schema Registry. */
#include "genq_schema.h"
#include "cfg.h"
#include "schema_cfg.h"

gq_status_t gq_schema_configure(const gq_cfg_t *cfg, bool async, char *errstr, size_t errstr_size) {
    gq_status_t st = gq_schema_init(errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    if ((st = gq_schema_load_dir(gq_cfg_str(cfg, "schema_dir"), errstr, errstr_size)) != GQ_OK)
        return st;
    gq_registry_conf_t rc = {
        .url = gq_cfg_str(cfg, "schema_registry_url"),
        .username = gq_cfg_str(cfg, "schema_registry_username"),
        .password = gq_cfg_str(cfg, "schema_registry_password"),
        .ca_file = gq_cfg_str(cfg, "schema_registry_ca_file"),
        .timeout_ms = (int)gq_cfg_int(cfg, "schema_registry_timeout"),
        .async = async,
    };
    return gq_schema_registry_set(&rc, errstr, errstr_size);
}

gq_status_t gq_schema_cfg_framing(const gq_cfg_t *cfg, const char *key, gq_framing_t *out,
                                  char *errstr, size_t errstr_size) {
    if (gq_framing_parse(gq_cfg_str(cfg, key), out) == GQ_OK)
        return GQ_OK;
    gq_errf(errstr, errstr_size, "%s \"%s\": expected single-object or confluent", key,
            gq_cfg_str(cfg, key));
    return GQ_ERR_INVALID;
}
