/**
 * @file log.h
 * @brief Diagnostics on stderr. stdout is for data only.
 *
 * Lines look like "2026-11-22T14:00:00.123Z genq[worker] warn: message".
 * GENQ_LOG_LEVEL (error|warn|info|debug) or -v/-q set the threshold;
 * GENQ_LOG_FORMAT=json writes one JSON object per line for log shippers.
 */
#ifndef GQ_LOG_H
#define GQ_LOG_H

#include "gq.h"

typedef enum gq_log_level {
    GQ_LOG_ERROR = 0,
    GQ_LOG_WARN = 1,
    GQ_LOG_INFO = 2,
    GQ_LOG_DEBUG = 3,
} gq_log_level_t;

/** Sets the component name shown in every line (not copied: pass a literal). */
void gq_log_init(const char *component);
void gq_log_set_level(gq_log_level_t level);
gq_log_level_t gq_log_get_level(void);
/** Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int gq_log_level_parse(const char *s);
void gq_log_set_json(int on);

void gq_log(gq_log_level_t level, const char *fmt, ...) GQ_PRINTF(2, 3);

#define gq_err(...) gq_log(GQ_LOG_ERROR, __VA_ARGS__)
#define gq_warn(...) gq_log(GQ_LOG_WARN, __VA_ARGS__)
#define gq_info(...) gq_log(GQ_LOG_INFO, __VA_ARGS__)
#define gq_debug(...) gq_log(GQ_LOG_DEBUG, __VA_ARGS__)

#endif
