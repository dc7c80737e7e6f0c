/**
 * @file replay.h
 * @brief `genq replay`: re-publish dead letters or failed jobs, move the group's offsets.
 */
#ifndef GQ_REPLAY_H
#define GQ_REPLAY_H

#include "cfg.h"
#include "gq.h"
#include "pg.h"

/** The time forms replay takes, for messages. */
#define GQ_REPLAY_TIME_FORMS                                                                       \
    "unix ms (1764612000000), ISO 8601 (2026-12-01, 2026-12-01T18:00:00Z, "                        \
    "2026-12-01T19:00:00+01:00; UTC without an offset), now, or relative: -30s, -15m, -2h, -1d, "  \
    "-2w"

/** --since and --until of cfg (default: all time); logs and fails on a bad value. */
gq_status_t gq_replay_time_range(const gq_cfg_t *cfg, int64_t *since, int64_t *until);

/**
 * Makes a finished job renderable again: status queued, error and prompt id cleared.
 * Attempts are kept (genq.job_attempts keeps the history); the caller raises the request's
 * max_attempts above them. Succeeded jobs only with force. *reset false: left alone, and
 * status (16 bytes, may be NULL) says why: "succeeded", or "queued"/"running" (a retry or an
 * earlier replay is under way); "" when the job was never recorded.
 */
gq_status_t gq_replay_reset_job(gq_pg_t *pg, const char *job_id, bool force, bool dry_run,
                                bool *reset, int32_t *attempts, char *status, char *errstr,
                                size_t errstr_size);

int gq_replay_dlq(const gq_cfg_t *cfg, gq_pg_t *pg);
int gq_replay_jobs(const gq_cfg_t *cfg, gq_pg_t *pg);
int gq_replay_offsets(const gq_cfg_t *cfg, gq_pg_t *pg);

#endif
