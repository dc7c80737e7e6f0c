/**
 * @file pgq.h
 * @brief PostgreSQL without waiting: statements sent in libpq's pipeline mode on a
 * non-blocking connection, their results collected when the socket says so.
 *
 * A loop sends statements (each one its own unit: a failure never aborts the next), puts
 * gq_pgq_fd / gq_pgq_events in its poll set, calls gq_pgq_service after the poll and takes
 * finished statements from gq_pgq_next_done in the order they were sent. Each statement
 * runs as its own transaction unless it is a call to a function that does more: genq's
 * multi-row writes are SQL functions (migrations/), so one statement is one transaction.
 *
 * Connection loss: every statement in flight ends with GQ_ERR_TRANSIENT (its outcome is
 * unknown, so genq's statements are idempotent), statements sent while disconnected end so
 * at once, and the connection is made again in the background (non-blocking connect, backoff
 * 0.5 s doubling to 10 s). Errors are classed as in pg.h.
 */
#ifndef GQ_PGQ_H
#define GQ_PGQ_H

#include "gq.h"
#include "pg.h"

#include <stdbool.h>

typedef struct gq_pgq gq_pgq_t;

/** A finished statement, handed to the caller with its result. */
typedef struct gq_pgq_done {
    uint64_t tag; /**< the caller's, as given to gq_pgq_send */
    int kind;     /**< the caller's */
    gq_status_t status;
    char errstr[512];
    PGresult *res; /**< the caller's (PQclear); NULL unless status is GQ_OK */
} gq_pgq_done_t;

/**
 * Connects (blocking, like gq_pg_connect, so that a bad URL or an unreachable database is
 * known at start) and switches to pipeline mode. NULL with *st and errstr on failure.
 */
gq_pgq_t *gq_pgq_new(const char *url, int connect_timeout_s, gq_status_t *st, char *errstr,
                     size_t errstr_size);
void gq_pgq_destroy(gq_pgq_t *q);

/**
 * Sends one statement (parameters are copied into libpq's buffer here, so they need not
 * outlive the call). Never blocks. GQ_OK: it will be handed out by gq_pgq_next_done, with
 * GQ_ERR_TRANSIENT if the connection is down. GQ_ERR (too many parameters) or GQ_ERR_NOMEM
 * when it could not even be queued.
 */
gq_status_t gq_pgq_send(gq_pgq_t *q, const char *sql, const gq_pg_params_t *params, uint64_t tag,
                        int kind, char *errstr, size_t errstr_size);

/** The socket to wait on (-1 when there is none: then wait until gq_pgq_wake). */
int gq_pgq_fd(const gq_pgq_t *q);
/** POLLIN and/or POLLOUT: what the connection waits for. */
short gq_pgq_events(const gq_pgq_t *q);
/** When a reconnection is due (gq_mono_ms), INT64_MAX when none is. */
int64_t gq_pgq_wake(const gq_pgq_t *q);

/** Reads, writes and reconnects as far as it can without blocking. */
void gq_pgq_service(gq_pgq_t *q);

/** Takes the next finished statement; false when there is none. */
bool gq_pgq_next_done(gq_pgq_t *q, gq_pgq_done_t *out);

/** Statements sent and not yet handed out. */
size_t gq_pgq_pending(const gq_pgq_t *q);
/** True when the connection is up. */
bool gq_pgq_connected(const gq_pgq_t *q);

/**
 * Sends one statement and waits for its result (up to timeout_ms), for the rare calls that
 * cannot wait for the loop (a partition assignment's offsets). Statements sent before it
 * finish first and stay for gq_pgq_next_done. *res is the caller's.
 */
gq_status_t gq_pgq_exec(gq_pgq_t *q, const char *sql, const gq_pg_params_t *params, int timeout_ms,
                        PGresult **res, char *errstr, size_t errstr_size);

#endif
