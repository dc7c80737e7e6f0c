/**
 * @file schema_cfg.h
 * @brief Applies a command's schema settings (schema_dir, schema_registry_*) to the
 * process's readers and writers.
 */
#ifndef GQ_SCHEMA_CFG_H
#define GQ_SCHEMA_CFG_H

#include "cfg.h"
#include "genq_schema.h"

/**
 * Loads the schema directory and sets the registry (or none) from cfg. async: a reader never
 * waits on the registry (the worker); otherwise decoding fetches a schema id it lacks.
 */
gq_status_t gq_schema_configure(const gq_cfg_t *cfg, bool async, char *errstr, size_t errstr_size);
/** Reads a framing key ("framing", "completed_framing"). */
gq_status_t gq_schema_cfg_framing(const gq_cfg_t *cfg, const char *key, gq_framing_t *out,
                                  char *errstr, size_t errstr_size);

#endif
