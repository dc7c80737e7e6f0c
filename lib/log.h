/**
 * @file log.h
 * @brief Diagnostics on stderr. stdout is for data only.
 *
 * Lines look like "2026-11-22T14:00:00.123Z genq[worker] warn: message".
 * GENQ_LOG_LEVEL (error|warn|info|debug) or -v/-q set the threshold;
 * GENQ_LOG_FORMAT=json writes one JSON object per line for log shippers:
 *   {"ts":"2026-11-22T14:00:00.123Z","level":"warn","component":"worker","msg":"message"}
 * with "job_id" added by gq_log_job. Every diagnostic goes through here (never
 * fprintf(stderr, ...); scripts/lint checks), so a log shipper sees JSON only. The password
 * of any URL in a message (scheme://user:password@host) is printed as "***".
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
/** True when lines are JSON: a caller drawing on a terminal (a progress bar) stays quiet. */
int gq_log_get_json(void);

void gq_log(gq_log_level_t level, const char *fmt, ...) GQ_PRINTF(2, 3);

/**
 * A line about one job: in JSON mode job_id is a field of its own ("job_id":"..."), so a
 * log shipper can index and join on it; in text mode the message is prefixed "job <id>: ".
 * Write the message without the id:
 *   gq_log_job(GQ_LOG_WARN, ev.job_id, "failed: %s", ev.error_code);
 */
void gq_log_job(gq_log_level_t level, const char *job_id, const char *fmt, ...) GQ_PRINTF(3, 4);

#define gq_err(...) gq_log(GQ_LOG_ERROR, __VA_ARGS__)
#define gq_warn(...) gq_log(GQ_LOG_WARN, __VA_ARGS__)
#define gq_info(...) gq_log(GQ_LOG_INFO, __VA_ARGS__)
#define gq_debug(...) gq_log(GQ_LOG_DEBUG, __VA_ARGS__)

#endif
