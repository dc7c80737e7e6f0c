/**
 * @file cli.h
 * @brief What every subcommand does first: config from defaults, environment and flags,
 * --help, --dump-config, log level and format.
 */
#ifndef GQ_CLI_H
#define GQ_CLI_H

#include "cfg.h"

/**
 * Sets cfg up for a subcommand. Returns -1 when the command should run (positional
 * arguments start at *argi), else the exit code to return right away (help shown,
 * config dumped, or a usage/config error already reported on stderr). On a return other
 * than -1, cfg is already released.
 */
int gq_cli_setup(gq_cfg_t *cfg, unsigned cmd, const char *name, const char *synopsis, int argc,
                 char **argv, int *argi);

/**
 * A command's settings file: called once the flags are parsed (and before --dump-config),
 * it sets keys with GQ_SRC_FILE where no flag set them. A failure is reported and exits 78.
 */
typedef gq_status_t (*gq_cli_load_fn)(gq_cfg_t *cfg, char *errstr, size_t errstr_size);

/** gq_cli_setup with a settings file read by load (NULL: none). */
int gq_cli_setup_load(gq_cfg_t *cfg, unsigned cmd, const char *name, const char *synopsis,
                      gq_cli_load_fn load, int argc, char **argv, int *argi);

#endif
