/**
 * @file pg.h
 * @brief libpq wrapper: connecting with a timeout, parameterised statements, transactions,
 * reconnection, and PostgreSQL errors turned into gq_status_t.
 *
 * Error classes (by SQLSTATE; the message in errstr always carries it):
 *  - GQ_ERR_TRANSIENT: the connection is gone or not usable (no SQLSTATE and a bad
 *    connection, class 08), 40001 serialization failure, 40P01 deadlock, 57P01/57P02/57P03
 *    (server shutting down or starting), class 53 (out of resources, too many connections),
 *    55P03 (lock not available). Retrying the whole transaction later can succeed.
 *  - GQ_ERR_INVALID: class 22 (data exception: a value the column cannot hold, a malformed
 *    uuid): the same input fails again, so retrying cannot help.
 *  - GQ_ERR: everything else (a bug, a constraint, a missing table).
 *
 * Reconnection: a statement that finds the connection broken fails with GQ_ERR_TRANSIENT;
 * the next statement outside a transaction (or the next gq_pg_begin) resets it first. A
 * connection is never reset in the middle of a transaction, because the work done before
 * the loss is gone and only the caller can redo it.
 *
 * A gq_pg_t is not thread-safe: one per thread.
 */
#ifndef GQ_PG_H
#define GQ_PG_H

#include "gq.h"

#include <stdbool.h>

#include <libpq-fe.h>

typedef struct gq_pg gq_pg_t;

/** connect_timeout used when the URL does not set one, in seconds. */
#define GQ_PG_CONNECT_TIMEOUT_S 10

/**
 * Connects to url (a postgresql:// URI or a key=value string) with application_name=genq,
 * connect_timeout=connect_timeout_s and TCP keepalives; the URL's own settings win.
 * On failure returns NULL and sets *st: GQ_ERR_INVALID for a URL libpq cannot parse,
 * GQ_ERR_TRANSIENT when the server is unreachable or refuses us. errstr never contains the
 * password.
 */
gq_pg_t *gq_pg_connect(const char *url, int connect_timeout_s, gq_status_t *st, char *errstr,
                       size_t errstr_size);
void gq_pg_destroy(gq_pg_t *pg);

/** The libpq connection, for what this wrapper does not cover (PQbackendPID in tests). */
PGconn *gq_pg_conn(gq_pg_t *pg);

/** The URL with its password replaced by "***", for logs. */
const char *gq_pg_url_redacted(const gq_pg_t *pg);

/**
 * Makes sure the connection is usable: if it is broken and no transaction is open, resets
 * it (PQreset, blocking up to the connect timeout). GQ_ERR_TRANSIENT if that fails, or if the
 * connection broke inside a transaction (call gq_pg_rollback, then retry the transaction).
 */
gq_status_t gq_pg_ensure(gq_pg_t *pg, char *errstr, size_t errstr_size);

/** Most parameters one statement takes (genq.jobs has about 40 columns). */
#define GQ_PG_MAX_PARAMS 48

/**
 * The parameters of one statement, in text format except for gq_pg_param_bytes (binary).
 * Strings are not copied: they must outlive the gq_pg_exec call. Numbers are formatted
 * into the struct. Adding more than GQ_PG_MAX_PARAMS makes gq_pg_exec fail (GQ_ERR).
 */
typedef struct gq_pg_params {
    int cnt;
    bool overflow;
    bool binary_result; /**< ask for the result in binary (bytea as raw bytes, text as is) */
    const char *values[GQ_PG_MAX_PARAMS];
    int lengths[GQ_PG_MAX_PARAMS];
    int formats[GQ_PG_MAX_PARAMS];
    char num[GQ_PG_MAX_PARAMS][32];
} gq_pg_params_t;

void gq_pg_params_init(gq_pg_params_t *p);
/** A text parameter; NULL is SQL NULL. */
void gq_pg_param_str(gq_pg_params_t *p, const char *s);
/** A text parameter, or SQL NULL when s is NULL or "". */
void gq_pg_param_str_or_null(gq_pg_params_t *p, const char *s);
void gq_pg_param_null(gq_pg_params_t *p);
void gq_pg_param_i64(gq_pg_params_t *p, int64_t v);
/** An integer, or SQL NULL when v == 0 (for "0 means not given" fields). */
void gq_pg_param_i64_or_null(gq_pg_params_t *p, int64_t v);
void gq_pg_param_double(gq_pg_params_t *p, double v);
void gq_pg_param_bool(gq_pg_params_t *p, bool v);
/** A bytea parameter sent in binary (no escaping); len must fit an int. */
void gq_pg_param_bytes(gq_pg_params_t *p, const void *data, size_t len);

/**
 * Runs one statement with parameters (params may be NULL for none). On success, if res is
 * not NULL, *res is the result (the caller PQclear()s it); otherwise the result is freed.
 * On failure *res is NULL and errstr has "message (SQLSTATE xxxxx)".
 */
gq_status_t gq_pg_exec(gq_pg_t *pg, const char *sql, const gq_pg_params_t *params, PGresult **res,
                       char *errstr, size_t errstr_size);

/**
 * Runs a script of several statements without parameters (a migration file). Inside a
 * transaction opened by gq_pg_begin it runs in that transaction.
 */
gq_status_t gq_pg_exec_script(gq_pg_t *pg, const char *sql, char *errstr, size_t errstr_size);

/** BEGIN, resetting a broken connection first (a transaction is where a retry starts). */
gq_status_t gq_pg_begin(gq_pg_t *pg, char *errstr, size_t errstr_size);
/**
 * COMMIT. On a lost connection the outcome is unknown (GQ_ERR_TRANSIENT): callers make
 * their transactions idempotent so that running them again is safe either way.
 */
gq_status_t gq_pg_commit(gq_pg_t *pg, char *errstr, size_t errstr_size);
/** ROLLBACK if a transaction is open; never fails (a dead connection has rolled back). */
void gq_pg_rollback(gq_pg_t *pg);

/**
 * The class of a failed result, from its SQLSTATE (NULL or "" when libpq made the error
 * itself: then conn_bad decides between transient and error). See the top of this file.
 */
gq_status_t gq_pg_sqlstate_status(const char *sqlstate, bool conn_bad);

/** A result's field as text, "" when NULL. */
const char *gq_pg_get(const PGresult *res, int row, int col);
/** A result's field parsed as an integer; def when NULL or not a number. */
int64_t gq_pg_get_i64(const PGresult *res, int row, int col, int64_t def);

#endif
