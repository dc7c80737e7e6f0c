#include "pg.h"
#include "pg_int.h"
#include "cfg.h"
#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gq_pg {
    PGconn *conn;
    /* Ours, not PQtransactionStatus(): a dead connection reports PQTRANS_UNKNOWN, and then
     * only we remember that a transaction was open and must not be silently reset away. */
    bool in_tx;
    bool lost_logged;
    char url_redacted[512];
};

/* libpq's messages end with a newline and may span lines; logs and errstr want one line. */
void gq_pg_one_line(const char *msg, char *out, size_t out_size) {
    size_t j = 0;
    if (out_size == 0)
        return;
    for (size_t i = 0; msg && msg[i] && j + 1 < out_size; i++) {
        char c = msg[i];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c == ' ' && (j == 0 || out[j - 1] == ' '))
            continue;
        out[j++] = c;
    }
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

/* The password of url (as gq_cfg_redact_url finds it) into pw, "" if none. */
static void pg_url_password(const char *url, char *pw, size_t pw_size) {
    pw[0] = '\0';
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon) {
        snprintf(pw, pw_size, "%.*s", (int)(at - colon - 1), colon + 1);
        return;
    }
    const char *v = strstr(url, "password=");
    if (v) {
        v += strlen("password=");
        if (*v == '\'')
            v++;
        size_t n = strcspn(v, " '&");
        snprintf(pw, pw_size, "%.*s", (int)n, v);
    }
}

/* libpq quotes the connection string in some messages ("invalid URI ... in
 * \"postgresql://u:pw@...\""): every copy of the password in msg becomes "***". */
void gq_pg_scrub(char *msg, size_t msg_size, const char *url) {
    char pw[256];
    pg_url_password(url, pw, sizeof(pw));
    size_t pwlen = strlen(pw);
    if (pwlen == 0 || !strstr(msg, pw))
        return;
    char out[1024];
    size_t j = 0;
    for (const char *s = msg; *s && j + 1 < sizeof(out);) {
        if (strncmp(s, pw, pwlen) == 0) {
            for (const char *r = "***"; *r && j + 1 < sizeof(out); r++)
                out[j++] = *r;
            s += pwlen;
        } else {
            out[j++] = *s++;
        }
    }
    out[j] = '\0';
    gq_strlcpy(msg, out, msg_size);
}

/* Server notices ("relation already exists, skipping") would otherwise go straight to
 * stderr through libpq's default processor, bypassing our log format. */
void gq_pg_notice(void *arg, const char *message) {
    (void)arg;
    char line[1024];
    gq_pg_one_line(message, line, sizeof(line));
    gq_debug("postgres: %s", line);
}

gq_status_t gq_pg_sqlstate_status(const char *sqlstate, bool conn_bad) {
    static const char *const transient[] = {"40001", "40P01", "57P01", "57P02",
                                            "57P03", "57014", "55P03"};
    if (!sqlstate || !*sqlstate)
        return conn_bad ? GQ_ERR_TRANSIENT : GQ_ERR;
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0)
        return GQ_ERR_TRANSIENT;
    for (size_t i = 0; i < GQ_ARRAY_LEN(transient); i++)
        if (strcmp(sqlstate, transient[i]) == 0)
            return GQ_ERR_TRANSIENT;
    if (conn_bad)
        return GQ_ERR_TRANSIENT;
    if (strncmp(sqlstate, "22", 2) == 0)
        return GQ_ERR_INVALID;
    return GQ_ERR;
}

gq_status_t gq_pg_url_check(const char *url, char *red, size_t red_size, char *errstr,
                            size_t errstr_size) {
    gq_cfg_redact_url(url ? url : "", red, red_size);
    /* Parse first so a malformed URL is a configuration error, not an outage to retry. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url ? url : "", &perr);
    if (!opts) {
        char line[512];
        gq_pg_one_line(perr ? perr : "out of memory", line, sizeof(line));
        gq_pg_scrub(line, sizeof(line), url ? url : "");
        gq_errf(errstr, errstr_size, "database URL %s: %s", red, line);
        PQfreemem(perr);
        return GQ_ERR_INVALID;
    }
    PQconninfoFree(opts);
    return GQ_OK;
}

void gq_pg_conn_params(const char *url, int connect_timeout_s, const char *keys[9],
                       const char *vals[9], char timeout[16]) {
    snprintf(timeout, 16, "%d", connect_timeout_s > 0 ? connect_timeout_s : 10);
    /* Our defaults come before dbname: libpq lets later keywords win, so anything the URL
     * itself says (its own application_name, connect_timeout...) overrides them. */
    static const char *const k[] = {"connect_timeout",  "application_name", "client_encoding",
                                    "keepalives",       "keepalives_idle",  "keepalives_interval",
                                    "keepalives_count", "dbname",           NULL};
    const char *const v[] = {timeout, "genq", "UTF8", "1", "30", "10", "3", url, NULL};
    for (int i = 0; i < 9; i++) {
        keys[i] = k[i];
        vals[i] = v[i];
    }
}

gq_pg_t *gq_pg_connect(const char *url, int connect_timeout_s, gq_status_t *st, char *errstr,
                       size_t errstr_size) {
    gq_status_t dummy;
    if (!st)
        st = &dummy;
    char red[512];
    *st = gq_pg_url_check(url, red, sizeof(red), errstr, errstr_size);
    if (*st != GQ_OK)
        return NULL;
    const char *keys[9], *vals[9];
    char timeout[16];
    gq_pg_conn_params(url, connect_timeout_s, keys, vals, timeout);
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        gq_errf(errstr, errstr_size, "connecting to %s: out of memory", red);
        *st = GQ_ERR_NOMEM;
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char line[768];
        gq_pg_one_line(PQerrorMessage(conn), line, sizeof(line));
        gq_pg_scrub(line, sizeof(line), url);
        gq_errf(errstr, errstr_size, "connecting to %s: %s", red, line);
        PQfinish(conn);
        *st = GQ_ERR_TRANSIENT;
        return NULL;
    }
    gq_pg_t *pg = calloc(1, sizeof(*pg));
    if (!pg) {
        PQfinish(conn);
        gq_errf(errstr, errstr_size, "out of memory");
        *st = GQ_ERR_NOMEM;
        return NULL;
    }
    pg->conn = conn;
    snprintf(pg->url_redacted, sizeof(pg->url_redacted), "%s", red);
    PQsetNoticeProcessor(conn, gq_pg_notice, NULL);
    *st = GQ_OK;
    return pg;
}

void gq_pg_destroy(gq_pg_t *pg) {
    if (!pg)
        return;
    PQfinish(pg->conn);
    free(pg);
}

PGconn *gq_pg_conn(gq_pg_t *pg) { return pg->conn; }

const char *gq_pg_url_redacted(const gq_pg_t *pg) { return pg->url_redacted; }

gq_status_t gq_pg_ensure(gq_pg_t *pg, char *errstr, size_t errstr_size) {
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return GQ_OK;
    if (pg->in_tx) {
        gq_errf(errstr, errstr_size, "PostgreSQL connection lost inside a transaction");
        return GQ_ERR_TRANSIENT;
    }
    gq_info("reconnecting to PostgreSQL at %s", pg->url_redacted);
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        char line[768];
        gq_pg_one_line(PQerrorMessage(pg->conn), line, sizeof(line));
        gq_errf(errstr, errstr_size, "reconnecting to %s: %s", pg->url_redacted, line);
        return GQ_ERR_TRANSIENT;
    }
    pg->lost_logged = false;
    gq_info("reconnected to PostgreSQL");
    return GQ_OK;
}

gq_status_t gq_pg_result_check(PGconn *conn, const PGresult *res, char *errstr,
                               size_t errstr_size) {
    ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK || es == PGRES_EMPTY_QUERY)
        return GQ_OK;
    bool bad = PQstatus(conn) != CONNECTION_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[768], det[512];
    gq_pg_one_line(primary ? primary : PQerrorMessage(conn), msg, sizeof(msg));
    gq_pg_one_line(detail, det, sizeof(det));
    if (!msg[0])
        snprintf(msg, sizeof(msg), "%s", res ? PQresStatus(es) : "no result (out of memory?)");
    gq_errf(errstr, errstr_size, "%s%s%s (SQLSTATE %s)", msg, det[0] ? "; " : "", det,
            state && *state ? state : (bad ? "none, connection lost" : "none"));
    return gq_pg_sqlstate_status(state, bad);
}

/* Turns a result into a status and, on failure, errstr. Takes no ownership of res. */
static gq_status_t pg_result_status(gq_pg_t *pg, const PGresult *res, char *errstr,
                                    size_t errstr_size) {
    gq_status_t st = gq_pg_result_check(pg->conn, res, errstr, errstr_size);
    if (st != GQ_OK && PQstatus(pg->conn) != CONNECTION_OK && !pg->lost_logged) {
        pg->lost_logged = true;
        gq_warn("PostgreSQL connection to %s lost: %s", pg->url_redacted, errstr);
    }
    return st;
}

gq_status_t gq_pg_exec(gq_pg_t *pg, const char *sql, const gq_pg_params_t *params, PGresult **res,
                       char *errstr, size_t errstr_size) {
    if (res)
        *res = NULL;
    if (params && params->overflow) {
        gq_errf(errstr, errstr_size, "too many statement parameters, or one too large");
        return GQ_ERR;
    }
    gq_status_t st = gq_pg_ensure(pg, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    PGresult *r =
        PQexecParams(pg->conn, sql, params ? params->cnt : 0, NULL, params ? params->values : NULL,
                     params ? params->lengths : NULL, params ? params->formats : NULL,
                     params && params->binary_result ? 1 : 0);
    st = pg_result_status(pg, r, errstr, errstr_size);
    if (st != GQ_OK || !res)
        PQclear(r);
    else
        *res = r;
    return st;
}

gq_status_t gq_pg_exec_script(gq_pg_t *pg, const char *sql, char *errstr, size_t errstr_size) {
    gq_status_t st = gq_pg_ensure(pg, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    PGresult *r = PQexec(pg->conn, sql);
    st = pg_result_status(pg, r, errstr, errstr_size);
    PQclear(r);
    return st;
}

gq_status_t gq_pg_begin(gq_pg_t *pg, char *errstr, size_t errstr_size) {
    /* A transaction left open (by a caller's bug or a script's own BEGIN) would swallow
     * ours; close it rather than nest silently. */
    if (pg->in_tx ||
        (PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE))
        gq_pg_rollback(pg);
    gq_status_t st = gq_pg_exec(pg, "BEGIN", NULL, NULL, errstr, errstr_size);
    if (st == GQ_OK)
        pg->in_tx = true;
    return st;
}

gq_status_t gq_pg_commit(gq_pg_t *pg, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    gq_status_t st = gq_pg_exec(pg, "COMMIT", NULL, &r, errstr, errstr_size);
    pg->in_tx = false;
    /* COMMIT of a transaction that already failed "succeeds" with tag ROLLBACK. */
    if (st == GQ_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        gq_errf(errstr, errstr_size, "COMMIT rolled back: an earlier statement failed");
        st = GQ_ERR;
    }
    PQclear(r);
    return st;
}

void gq_pg_rollback(gq_pg_t *pg) {
    pg->in_tx = false;
    if (PQstatus(pg->conn) != CONNECTION_OK || PQtransactionStatus(pg->conn) == PQTRANS_IDLE)
        return;
    PQclear(PQexec(pg->conn, "ROLLBACK"));
}

void gq_pg_params_init(gq_pg_params_t *p) {
    p->cnt = 0;
    p->overflow = false;
    p->binary_result = false;
}

/* Returns the slot for the next parameter, or -1 (and marks overflow) when full. */
static int pg_param_slot(gq_pg_params_t *p) {
    if (p->cnt >= GQ_PG_MAX_PARAMS) {
        p->overflow = true;
        return -1;
    }
    int i = p->cnt++;
    p->values[i] = NULL;
    p->lengths[i] = 0;
    p->formats[i] = 0;
    return i;
}

void gq_pg_param_str(gq_pg_params_t *p, const char *s) {
    int i = pg_param_slot(p);
    if (i >= 0)
        p->values[i] = s;
}

void gq_pg_param_str_or_null(gq_pg_params_t *p, const char *s) {
    gq_pg_param_str(p, s && *s ? s : NULL);
}

void gq_pg_param_null(gq_pg_params_t *p) { gq_pg_param_str(p, NULL); }

void gq_pg_param_i64(gq_pg_params_t *p, int64_t v) {
    int i = pg_param_slot(p);
    if (i < 0)
        return;
    snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64, v);
    p->values[i] = p->num[i];
}

void gq_pg_param_i64_or_null(gq_pg_params_t *p, int64_t v) {
    if (v == 0)
        gq_pg_param_null(p);
    else
        gq_pg_param_i64(p, v);
}

void gq_pg_param_double(gq_pg_params_t *p, double v) {
    int i = pg_param_slot(p);
    if (i < 0)
        return;
    /* 17 significant digits round-trip any double exactly. */
    snprintf(p->num[i], sizeof(p->num[i]), "%.17g", v);
    p->values[i] = p->num[i];
}

void gq_pg_param_bool(gq_pg_params_t *p, bool v) { gq_pg_param_str(p, v ? "t" : "f"); }

void gq_pg_param_bytes(gq_pg_params_t *p, const void *data, size_t len) {
    if (len > INT_MAX) {
        p->overflow = true;
        return;
    }
    int i = pg_param_slot(p);
    if (i < 0)
        return;
    /* libpq wants a non-NULL pointer for a non-NULL value, even an empty one. */
    p->values[i] = data ? data : "";
    p->lengths[i] = (int)len;
    p->formats[i] = 1;
}

const char *gq_pg_get(const PGresult *res, int row, int col) {
    if (!res || row >= PQntuples(res) || col >= PQnfields(res) || PQgetisnull(res, row, col))
        return "";
    return PQgetvalue(res, row, col);
}

int64_t gq_pg_get_i64(const PGresult *res, int row, int col, int64_t def) {
    const char *s = gq_pg_get(res, row, col);
    if (!*s)
        return def;
    int64_t v;
    return gq_parse_i64(s, INT64_MIN, INT64_MAX, &v) == GQ_OK ? v : def;
}
