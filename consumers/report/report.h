/**
 * @file report.h
 * @brief genq report: one self-contained HTML page about the jobs of a time range.
 *
 * The page holds a contact sheet of the outputs (each thumbnail linked to its job's line,
 * with its prompt), the render-time and queue-wait distributions per model, the throughput
 * over time and the failures by reason, as inline SVG. It needs no server to open: file
 * outputs are embedded (data: URIs, after their sha256 is checked) up to a size and linked
 * beyond it; S3 outputs are linked by presigned URLs when credentials are configured.
 * Everything read from the database is HTML-escaped; every query takes parameters.
 */
#ifndef GQ_REPORT_H
#define GQ_REPORT_H

#include "buf.h"
#include "gq.h"
#include "pg.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct gq_s3 gq_s3_t;

typedef struct gq_report_opts {
    int64_t since_ms, until_ms; /**< finished_at in [since, until) */
    const char *model;          /**< NULL: every model */
    const char *tenant;         /**< NULL: every source */
    int thumbs_max;             /**< outputs shown at most (the latest) */
    int64_t embed_max;          /**< file outputs up to this size are embedded */
    gq_s3_t *s3;                /**< presigns s3:// outputs; NULL: they are not shown */
    int64_t presign_s;          /**< how long the presigned links last */
    int64_t now_ms;             /**< "generated at" */
} gq_report_opts_t;

/** What the page shows, counted (for the command's summary line and the tests). */
typedef struct gq_report_stats {
    int64_t jobs, succeeded, failed;
    int64_t thumbs, embedded, linked, unshown;
} gq_report_stats_t;

/** Writes the page into out (bounded by out's max). */
gq_status_t gq_report_build(gq_pg_t *pg, const gq_report_opts_t *o, gq_buf_t *out,
                            gq_report_stats_t *stats, char *errstr, size_t errstr_size);

/** Appends s HTML-escaped (& < > " ' as entities; control characters but \n and \t dropped). */
gq_status_t gq_report_esc(gq_buf_t *b, const char *s);

/** Appends len bytes as base64. */
gq_status_t gq_report_base64(gq_buf_t *b, const unsigned char *p, size_t len);

#endif
