/*
 * Pipelined PostgreSQL (see pgq.h). Every statement is followed by its own sync point, so
 * libpq returns, per statement: its result, a NULL that ends it, and a PIPELINE_SYNC; an
 * error aborts nothing but its own statement.
 */
#include "pgq.h"
#include "log.h"
#include "pg_int.h"
#include "util.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define PGQ_BACKOFF_MIN_MS 500
#define PGQ_BACKOFF_MAX_MS 10000

typedef enum pgq_phase {
    PGQ_WANT_RESULT, /* sent; its result is still to come */
    PGQ_WANT_END,    /* result in; the NULL that ends the statement is still to come */
} pgq_phase_t;

typedef struct pgq_item {
    struct pgq_item *next;
    uint64_t tag;
    int kind;
    pgq_phase_t phase;
    bool waited;    /* gq_pgq_exec waits for it: not handed out */
    bool abandoned; /* its waiter gave up: freed when it ends */
    bool finished;
    gq_status_t status;
    char errstr[512];
    PGresult *res;
} pgq_item_t;

typedef enum pgq_conn { PGQ_DOWN, PGQ_CONNECTING, PGQ_UP } pgq_conn_t;

struct gq_pgq {
    PGconn *conn;
    pgq_conn_t state;
    PostgresPollingStatusType connect_poll;
    int64_t connect_deadline, retry_mono;
    int backoff_ms;
    int connect_timeout_s;
    char *url;
    char red[512];
    bool want_write; /* PQflush left bytes to send */
    int await_sync;  /* sync points still to come for statements already finished */
    pgq_item_t *flight, *flight_tail;
    pgq_item_t *done, *done_tail;
    size_t pending;
};

static void pgq_append(pgq_item_t **head, pgq_item_t **tail, pgq_item_t *it) {
    it->next = NULL;
    if (*tail)
        (*tail)->next = it;
    else
        *head = it;
    *tail = it;
}

/* An item's outcome is known: hand it out (or to its waiter, or away). */
static void pgq_finish(gq_pgq_t *q, pgq_item_t *it) {
    it->finished = true;
    if (it->abandoned) {
        PQclear(it->res);
        free(it);
        q->pending--;
        return;
    }
    if (!it->waited)
        pgq_append(&q->done, &q->done_tail, it);
}

/* The connection is gone: whatever was in flight has an unknown outcome. */
static void pgq_lost(gq_pgq_t *q, const char *why) {
    if (q->state == PGQ_UP)
        gq_warn("PostgreSQL connection to %s lost: %s", q->red, why);
    while (q->flight) {
        pgq_item_t *it = q->flight;
        q->flight = it->next;
        PQclear(it->res);
        it->res = NULL;
        it->status = GQ_ERR_TRANSIENT;
        gq_errf(it->errstr, sizeof(it->errstr), "PostgreSQL connection lost: %s", why);
        pgq_finish(q, it);
    }
    q->flight_tail = NULL;
    q->await_sync = 0;
    if (q->conn)
        PQfinish(q->conn);
    q->conn = NULL;
    q->state = PGQ_DOWN;
    q->want_write = false;
    q->retry_mono = gq_mono_ms() + q->backoff_ms;
    q->backoff_ms = q->backoff_ms * 2 > PGQ_BACKOFF_MAX_MS ? PGQ_BACKOFF_MAX_MS : q->backoff_ms * 2;
}

static void pgq_conn_message(gq_pgq_t *q, char *out, size_t out_size) {
    gq_pg_one_line(q->conn ? PQerrorMessage(q->conn) : "out of memory", out, out_size);
    gq_pg_scrub(out, out_size, q->url);
}

/* A connection just became usable: non-blocking, pipelined. */
static bool pgq_ready(gq_pgq_t *q) {
    PQsetNoticeProcessor(q->conn, gq_pg_notice, NULL);
    if (PQsetnonblocking(q->conn, 1) != 0 || PQenterPipelineMode(q->conn) != 1)
        return false;
    q->state = PGQ_UP;
    q->backoff_ms = PGQ_BACKOFF_MIN_MS;
    return true;
}

static void pgq_connect_start(gq_pgq_t *q) {
    const char *keys[9], *vals[9];
    char timeout[16];
    gq_pg_conn_params(q->url, q->connect_timeout_s, keys, vals, timeout);
    q->conn = PQconnectStartParams(keys, vals, 1);
    if (!q->conn || PQstatus(q->conn) == CONNECTION_BAD) {
        char line[512];
        pgq_conn_message(q, line, sizeof(line));
        gq_debug("reconnecting to PostgreSQL at %s: %s", q->red, line);
        pgq_lost(q, line);
        return;
    }
    q->state = PGQ_CONNECTING;
    q->connect_poll = PGRES_POLLING_WRITING;
    q->connect_deadline = gq_mono_ms() + (int64_t)q->connect_timeout_s * 1000;
}

/* One step of a non-blocking connect, when its socket is ready or its time is up. */
static void pgq_connect_step(gq_pgq_t *q) {
    int fd = PQsocket(q->conn);
    struct pollfd p = {.fd = fd,
                       .events = q->connect_poll == PGRES_POLLING_READING ? POLLIN : POLLOUT};
    bool ready = fd >= 0 && poll(&p, 1, 0) > 0;
    if (!ready) {
        if (gq_mono_ms() >= q->connect_deadline) {
            q->state = PGQ_CONNECTING; /* not up: no "lost" warning */
            pgq_lost(q, "connection timed out");
        }
        return;
    }
    q->connect_poll = PQconnectPoll(q->conn);
    if (q->connect_poll == PGRES_POLLING_OK) {
        if (pgq_ready(q)) {
            gq_info("connected to PostgreSQL at %s", q->red);
            return;
        }
        pgq_lost(q, "cannot enter pipeline mode");
    } else if (q->connect_poll == PGRES_POLLING_FAILED) {
        char line[512];
        pgq_conn_message(q, line, sizeof(line));
        gq_debug("reconnecting to PostgreSQL at %s: %s", q->red, line);
        pgq_lost(q, line);
    }
}

gq_pgq_t *gq_pgq_new(const char *url, int connect_timeout_s, gq_status_t *st, char *errstr,
                     size_t errstr_size) {
    gq_pgq_t *q = calloc(1, sizeof(*q));
    if (!q || !(q->url = strdup(url ? url : ""))) {
        free(q);
        *st = GQ_ERR_NOMEM;
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    q->connect_timeout_s = connect_timeout_s > 0 ? connect_timeout_s : GQ_PG_CONNECT_TIMEOUT_S;
    q->backoff_ms = PGQ_BACKOFF_MIN_MS;
    *st = gq_pg_url_check(url, q->red, sizeof(q->red), errstr, errstr_size);
    if (*st != GQ_OK) {
        gq_pgq_destroy(q);
        return NULL;
    }
    const char *keys[9], *vals[9];
    char timeout[16];
    gq_pg_conn_params(url, q->connect_timeout_s, keys, vals, timeout);
    q->conn = PQconnectdbParams(keys, vals, 1);
    if (!q->conn || PQstatus(q->conn) != CONNECTION_OK || !pgq_ready(q)) {
        char line[768];
        pgq_conn_message(q, line, sizeof(line));
        gq_errf(errstr, errstr_size, "connecting to %s: %s", q->red, line);
        *st = q->conn ? GQ_ERR_TRANSIENT : GQ_ERR_NOMEM;
        gq_pgq_destroy(q);
        return NULL;
    }
    *st = GQ_OK;
    return q;
}

void gq_pgq_destroy(gq_pgq_t *q) {
    if (!q)
        return;
    for (pgq_item_t *it = q->flight, *nx; it; it = nx) {
        nx = it->next;
        PQclear(it->res);
        if (!it->waited)
            free(it);
    }
    for (pgq_item_t *it = q->done, *nx; it; it = nx) {
        nx = it->next;
        PQclear(it->res);
        free(it);
    }
    if (q->conn)
        PQfinish(q->conn);
    free(q->url);
    free(q);
}

static void pgq_flush(gq_pgq_t *q) {
    int r = PQflush(q->conn);
    if (r < 0) {
        char line[512];
        pgq_conn_message(q, line, sizeof(line));
        pgq_lost(q, line);
        return;
    }
    q->want_write = r == 1;
}

static pgq_item_t *pgq_item_new(gq_pgq_t *q, uint64_t tag, int kind) {
    pgq_item_t *it = calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    it->tag = tag;
    it->kind = kind;
    q->pending++;
    return it;
}

static gq_status_t pgq_send_item(gq_pgq_t *q, pgq_item_t *it, const char *sql,
                                 const gq_pg_params_t *params) {
    if (q->state != PGQ_UP) {
        it->status = GQ_ERR_TRANSIENT;
        gq_errf(it->errstr, sizeof(it->errstr), "PostgreSQL at %s unreachable", q->red);
        pgq_finish(q, it);
        return GQ_OK;
    }
    int n = params ? params->cnt : 0;
    if (!PQsendQueryParams(q->conn, sql, n, NULL, params ? params->values : NULL,
                           params ? params->lengths : NULL, params ? params->formats : NULL,
                           params && params->binary_result ? 1 : 0) ||
        !PQpipelineSync(q->conn)) {
        char line[512];
        pgq_conn_message(q, line, sizeof(line));
        it->status = GQ_ERR_TRANSIENT;
        gq_errf(it->errstr, sizeof(it->errstr), "sending a statement: %s", line);
        pgq_finish(q, it);
        if (PQstatus(q->conn) != CONNECTION_OK)
            pgq_lost(q, line);
        return GQ_OK;
    }
    pgq_append(&q->flight, &q->flight_tail, it);
    pgq_flush(q);
    return GQ_OK;
}

gq_status_t gq_pgq_send(gq_pgq_t *q, const char *sql, const gq_pg_params_t *params, uint64_t tag,
                        int kind, char *errstr, size_t errstr_size) {
    if (params && params->overflow) {
        gq_errf(errstr, errstr_size, "too many statement parameters, or one too large");
        return GQ_ERR;
    }
    pgq_item_t *it = pgq_item_new(q, tag, kind);
    if (!it) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    return pgq_send_item(q, it, sql, params);
}

/* Takes every result libpq has complete, without blocking. */
static void pgq_collect(gq_pgq_t *q) {
    while (q->state == PGQ_UP && (q->flight || q->await_sync) && !PQisBusy(q->conn)) {
        PGresult *r = PQgetResult(q->conn);
        if (q->await_sync) {
            /* Right after a statement's end comes its sync point. */
            if (!r)
                break;
            if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
                q->await_sync--;
            PQclear(r);
            continue;
        }
        pgq_item_t *it = q->flight;
        if (!r) {
            if (it->phase != PGQ_WANT_END)
                break; /* nothing more yet */
            q->flight = it->next;
            if (!q->flight)
                q->flight_tail = NULL;
            it->status = gq_pg_result_check(q->conn, it->res, it->errstr, sizeof(it->errstr));
            if (it->status != GQ_OK) {
                PQclear(it->res);
                it->res = NULL;
            }
            q->await_sync++;
            pgq_finish(q, it);
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r); /* a sync with no statement before it: not ours to count */
            continue;
        }
        PQclear(it->res);
        it->res = r;
        it->phase = PGQ_WANT_END;
    }
}

void gq_pgq_service(gq_pgq_t *q) {
    if (q->state == PGQ_DOWN) {
        if (gq_mono_ms() >= q->retry_mono)
            pgq_connect_start(q);
        return;
    }
    if (q->state == PGQ_CONNECTING) {
        pgq_connect_step(q);
        return;
    }
    if (q->want_write)
        pgq_flush(q);
    if (q->state != PGQ_UP)
        return;
    if (!PQconsumeInput(q->conn)) {
        char line[512];
        pgq_conn_message(q, line, sizeof(line));
        pgq_lost(q, line);
        return;
    }
    pgq_collect(q);
    if (q->state == PGQ_UP && PQstatus(q->conn) != CONNECTION_OK)
        pgq_lost(q, "connection closed");
}

bool gq_pgq_next_done(gq_pgq_t *q, gq_pgq_done_t *out) {
    pgq_item_t *it = q->done;
    if (!it)
        return false;
    q->done = it->next;
    if (!q->done)
        q->done_tail = NULL;
    out->tag = it->tag;
    out->kind = it->kind;
    out->status = it->status;
    memcpy(out->errstr, it->errstr, sizeof(out->errstr));
    out->res = it->res;
    free(it);
    q->pending--;
    return true;
}

int gq_pgq_fd(const gq_pgq_t *q) {
    return q->conn && q->state != PGQ_DOWN ? PQsocket(q->conn) : -1;
}

short gq_pgq_events(const gq_pgq_t *q) {
    if (q->state == PGQ_CONNECTING)
        return q->connect_poll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (q->state != PGQ_UP)
        return 0;
    return (short)(POLLIN | (q->want_write ? POLLOUT : 0));
}

int64_t gq_pgq_wake(const gq_pgq_t *q) {
    if (q->state == PGQ_DOWN)
        return q->retry_mono;
    if (q->state == PGQ_CONNECTING)
        return q->connect_deadline;
    return INT64_MAX;
}

size_t gq_pgq_pending(const gq_pgq_t *q) { return q->pending; }

bool gq_pgq_connected(const gq_pgq_t *q) { return q->state == PGQ_UP; }

gq_status_t gq_pgq_exec(gq_pgq_t *q, const char *sql, const gq_pg_params_t *params, int timeout_ms,
                        PGresult **res, char *errstr, size_t errstr_size) {
    *res = NULL;
    if (params && params->overflow) {
        gq_errf(errstr, errstr_size, "too many statement parameters, or one too large");
        return GQ_ERR;
    }
    if (q->state != PGQ_UP)
        gq_pgq_service(q);
    pgq_item_t *it = pgq_item_new(q, 0, 0);
    if (!it) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    it->waited = true;
    pgq_send_item(q, it, sql, params);
    int64_t deadline = gq_mono_ms() + timeout_ms;
    while (!it->finished) {
        int64_t left = deadline - gq_mono_ms();
        if (left <= 0) {
            /* It is still in flight: it frees itself when its answer comes. */
            it->abandoned = true;
            it->waited = false;
            gq_errf(errstr, errstr_size, "PostgreSQL did not answer within %d ms", timeout_ms);
            return GQ_ERR_TRANSIENT;
        }
        struct pollfd p = {.fd = gq_pgq_fd(q), .events = gq_pgq_events(q)};
        if (p.fd >= 0)
            poll(&p, 1, left > 100 ? 100 : (int)left);
        else
            gq_sleep_ms(left > 100 ? 100 : left); /* reconnecting: nothing to wait on */
        gq_pgq_service(q);
    }
    gq_status_t st = it->status;
    if (st == GQ_OK)
        *res = it->res;
    else
        gq_strlcpy(errstr, it->errstr, errstr_size);
    free(it);
    q->pending--;
    return st;
}
