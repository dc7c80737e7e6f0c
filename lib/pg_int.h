/* Helpers shared by the blocking (pg.c) and pipelined (pgq.c) PostgreSQL wrappers. */
#ifndef GQ_PG_INT_H
#define GQ_PG_INT_H

#include "gq.h"

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/** Copies a libpq message as one line (newlines and runs of blanks become one space). */
void gq_pg_one_line(const char *msg, char *out, size_t out_size);
/** Replaces every copy of url's password in msg with "***". */
void gq_pg_scrub(char *msg, size_t msg_size, const char *url);
/** libpq notice processor: server notices go to our debug log. */
void gq_pg_notice(void *arg, const char *message);
/** Checks that libpq can parse url; red gets the URL without its password. */
gq_status_t gq_pg_url_check(const char *url, char *red, size_t red_size, char *errstr,
                            size_t errstr_size);
/** The keywords and values genq connects with (timeout is their storage for the number). */
void gq_pg_conn_params(const char *url, int connect_timeout_s, const char *keys[9],
                       const char *vals[9], char timeout[16]);

/**
 * The status of a statement's result (see pg.h for the classes); on failure errstr has
 * "message; detail (SQLSTATE xxxxx)". Takes no ownership of res (which may be NULL).
 */
gq_status_t gq_pg_result_check(PGconn *conn, const PGresult *res, char *errstr, size_t errstr_size);

#endif
