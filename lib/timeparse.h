/**
 * @file timeparse.h
 * @brief The times genq's commands accept on their command lines (replay's --since, --until
 * and --to-time, report's --since and --until): one parser, so they all mean the same.
 */
#ifndef GQ_TIMEPARSE_H
#define GQ_TIMEPARSE_H

#include "gq.h"

#include <stdint.h>

/**
 * Parses s as unix ms (digits only), "now", a time before now_ms (-30s, -15m, -2h, -1d, -2w),
 * or ISO 8601 (2026-12-01, 2026-12-01T18:30, 2026-12-01T18:30:05.250Z,
 * 2026-12-01 19:30:05+01:00; a date and time without an offset are UTC) into *out_ms.
 * GQ_ERR_INVALID for anything else, *out_ms untouched.
 */
gq_status_t gq_time_parse(const char *s, int64_t now_ms, int64_t *out_ms);

#endif
