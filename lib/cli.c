#include "cli.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The log format as far as it is known: a usage error is reported in it too. */
static void cli_log_format(const gq_cfg_t *cfg) {
    const char *f = cfg ? gq_cfg_str(cfg, "log_format") : getenv("GENQ_LOG_FORMAT");
    gq_log_set_json(f && strcmp(f, "json") == 0);
}

int gq_cli_setup(gq_cfg_t *cfg, unsigned cmd, const char *name, const char *synopsis, int argc,
                 char **argv, int *argi) {
    return gq_cli_setup_load(cfg, cmd, name, synopsis, NULL, argc, argv, argi);
}

int gq_cli_setup_load(gq_cfg_t *cfg, unsigned cmd, const char *name, const char *synopsis,
                      gq_cli_load_fn load, int argc, char **argv, int *argi) {
    char err[1024];
    if (gq_cfg_init(cfg, cmd, name, err, sizeof(err)) != GQ_OK) {
        cli_log_format(NULL);
        gq_err("%s", err);
        gq_cfg_release(cfg);
        return GQ_EXIT_CONFIG;
    }
    int rc = gq_cfg_parse_args(cfg, argc, argv, argi, err, sizeof(err));
    cli_log_format(cfg);
    if (rc == GQ_CFG_HELP) {
        printf("%s\n", synopsis);
        gq_cfg_usage(cfg, stdout);
        gq_cfg_release(cfg);
        return GQ_EXIT_OK;
    }
    if ((rc == GQ_OK || rc == GQ_CFG_DUMP) && load && load(cfg, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(cfg);
        return GQ_EXIT_CONFIG;
    }
    if (rc == GQ_CFG_DUMP) {
        gq_cfg_dump(cfg, stdout);
        gq_cfg_release(cfg);
        return GQ_EXIT_OK;
    }
    if (rc != GQ_OK) {
        gq_err("%s; try genq %s --help", err, name);
        gq_cfg_release(cfg);
        return GQ_EXIT_USAGE;
    }
    int lvl = gq_log_level_parse(gq_cfg_str(cfg, "log_level"));
    if (lvl < 0) {
        gq_err("log_level \"%s\": expected error, warn, info or debug",
               gq_cfg_str(cfg, "log_level"));
        gq_cfg_release(cfg);
        return GQ_EXIT_USAGE;
    }
    lvl += cfg->verbosity;
    gq_log_set_level(lvl < 0 ? GQ_LOG_ERROR : lvl > 3 ? GQ_LOG_DEBUG : (gq_log_level_t)lvl);
    return -1;
}
