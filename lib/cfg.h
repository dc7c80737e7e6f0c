/**
 * @file cfg.h
 * @brief The one configuration table: every key with its type, default, bounds,
 * environment variable and flag. Precedence: defaults < environment < (a settings file
 * that a command reads, genq lag -f) < flags.
 * `-X key=value` goes straight to librdkafka (kept in order, not validated here); so does
 * each GENQ_KAFKA_<PROPERTY> variable (sasl.password from GENQ_KAFKA_SASL_PASSWORD),
 * added before the -X flags so that a flag wins.
 */
#ifndef GQ_CFG_H
#define GQ_CFG_H

#include "gq.h"

#include <stdbool.h>
#include <stdio.h>

/** Subcommands, as a bit mask saying which ones a key applies to. */
enum {
    GQ_CMD_PRODUCE = 1 << 0,
    GQ_CMD_WORKER = 1 << 1,
    GQ_CMD_MIGRATE = 1 << 2,
    GQ_CMD_EVENTS = 1 << 3,
    GQ_CMD_REPLAY = 1 << 4,
    GQ_CMD_LAG = 1 << 5,
    GQ_CMD_SCHEMAS = 1 << 6,
    GQ_CMD_CANCEL = 1 << 7,
    GQ_CMD_REPORT = 1 << 8,
    GQ_CMD_COUNT = 9, /* the names in gq_cfg_markdown() */
    GQ_CMD_ALL = (1 << 9) - 1,
};

typedef enum gq_cfg_type { GQ_CFG_STR, GQ_CFG_INT, GQ_CFG_BOOL, GQ_CFG_DOUBLE } gq_cfg_type_t;

typedef struct gq_cfg_key {
    const char *name; /**< also the long flag: --name (underscores become dashes) */
    char short_flag;  /**< 0 if none */
    const char *env;  /**< NULL if the key is a flag only */
    gq_cfg_type_t type;
    const char *def;  /**< NULL means unset */
    int64_t min, max; /**< bounds for GQ_CFG_INT */
    unsigned cmds;    /**< GQ_CMD_* mask */
    bool secret;      /**< redacted in --dump-config and logs */
    const char *help;
} gq_cfg_key_t;

#define GQ_CFG_MAX_KEYS 192
#define GQ_CFG_MAX_KAFKA 64

/** Where a value came from, in rising precedence. GQ_SRC_FILE: a file a command reads
 * (genq lag -f), between the environment and the flags. */
typedef enum gq_cfg_source {
    GQ_SRC_UNSET,
    GQ_SRC_DEFAULT,
    GQ_SRC_ENV,
    GQ_SRC_FILE,
    GQ_SRC_FLAG
} gq_cfg_source_t;

typedef struct gq_cfg {
    unsigned cmd; /**< the running subcommand */
    const char *cmd_name;
    char *values[GQ_CFG_MAX_KEYS]; /**< owned strings, indexed like the table */
    gq_cfg_source_t source[GQ_CFG_MAX_KEYS];
    char *kafka[GQ_CFG_MAX_KAFKA]; /**< owned "key=value": env, then -X */
    size_t kafka_cnt;
    int verbosity; /**< -v adds one, -q removes one */
} gq_cfg_t;

/** Result of gq_cfg_parse_args beyond gq_status_t: help was asked for. */
#define GQ_CFG_HELP 1
#define GQ_CFG_DUMP 2

const gq_cfg_key_t *gq_cfg_table(size_t *cnt);

/** Fills defaults, then the environment, for the keys of cmd. */
gq_status_t gq_cfg_init(gq_cfg_t *cfg, unsigned cmd, const char *cmd_name, char *errstr,
                        size_t errstr_size);
void gq_cfg_release(gq_cfg_t *cfg);
/**
 * Makes dst an independent copy of src (values, sources, kafka properties), for settings
 * that vary around a common base (genq lag's one copy per trigger). On GQ_ERR_NOMEM dst
 * holds nothing to release.
 */
gq_status_t gq_cfg_copy(gq_cfg_t *dst, const gq_cfg_t *src);

/**
 * Applies flags. Returns GQ_OK, GQ_CFG_HELP (at once), GQ_CFG_DUMP (once every flag, before
 * or after --dump-config, is applied), or GQ_ERR_INVALID (errstr says why). *optind_out
 * gets the index of the first positional argument.
 */
int gq_cfg_parse_args(gq_cfg_t *cfg, int argc, char **argv, int *optind_out, char *errstr,
                      size_t errstr_size);

/** Sets a key by name, validating it; the source decides precedence bookkeeping only. */
gq_status_t gq_cfg_set(gq_cfg_t *cfg, const char *name, const char *value, gq_cfg_source_t src,
                       char *errstr, size_t errstr_size);

const char *gq_cfg_str(const gq_cfg_t *cfg, const char *name);
int64_t gq_cfg_int(const gq_cfg_t *cfg, const char *name);
bool gq_cfg_bool(const gq_cfg_t *cfg, const char *name);
double gq_cfg_double(const gq_cfg_t *cfg, const char *name);
bool gq_cfg_isset(const gq_cfg_t *cfg, const char *name);
gq_cfg_source_t gq_cfg_source(const gq_cfg_t *cfg, const char *name);

/** True when the librdkafka property `key` (first `len` bytes) holds a secret. */
bool gq_cfg_kafka_key_is_secret(const char *key, size_t len);

/** Prints the options of cfg->cmd, for --help. */
void gq_cfg_usage(const gq_cfg_t *cfg, FILE *out);
/**
 * Prints the whole table as Markdown: docs/configuration.md is this output (`genq help
 * config`; `make docs` writes it, and a test fails when the file is out of date).
 */
void gq_cfg_markdown(FILE *out);
/** Prints the effective configuration (secrets redacted) with where each value came from. */
void gq_cfg_dump(const gq_cfg_t *cfg, FILE *out);
/** Copies a URL with its password replaced by "***", for logs. */
void gq_cfg_redact_url(const char *url, char *out, size_t out_size);

#endif
