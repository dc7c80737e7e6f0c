/* lib/pg: what can be checked without a server (error classes, parameters, connect
 * failures). The live behaviour is in test_recorder. */
#include "pg.h"
#include "check.h"

#include <string.h>

static void test_sqlstate(void) {
    CHECK(gq_pg_sqlstate_status("40001", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("40P01", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("57P01", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("57P03", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("08006", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("08001", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("53300", false) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("22P02", false) == GQ_ERR_INVALID);
    CHECK(gq_pg_sqlstate_status("22001", false) == GQ_ERR_INVALID);
    CHECK(gq_pg_sqlstate_status("23505", false) == GQ_ERR);
    CHECK(gq_pg_sqlstate_status("42P01", false) == GQ_ERR);
    CHECK(gq_pg_sqlstate_status("42601", false) == GQ_ERR);
    /* libpq's own errors have no SQLSTATE: the connection's state decides. */
    CHECK(gq_pg_sqlstate_status(NULL, true) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status("", true) == GQ_ERR_TRANSIENT);
    CHECK(gq_pg_sqlstate_status(NULL, false) == GQ_ERR);
    CHECK(gq_pg_sqlstate_status("42P01", true) == GQ_ERR_TRANSIENT);
}

static void test_params(void) {
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, "a");
    gq_pg_param_str_or_null(&p, "");
    gq_pg_param_i64(&p, INT64_MIN);
    gq_pg_param_i64_or_null(&p, 0);
    gq_pg_param_double(&p, 0.1);
    gq_pg_param_bool(&p, true);
    gq_pg_param_bytes(&p, "\0\1", 2);
    gq_pg_param_bytes(&p, NULL, 0);
    CHECK_INT(p.cnt, 8);
    CHECK(!p.overflow);
    CHECK_STR(p.values[0], "a");
    CHECK(p.values[1] == NULL);
    CHECK_STR(p.values[2], "-9223372036854775808");
    CHECK(p.values[3] == NULL);
    CHECK_STR(p.values[4], "0.10000000000000001");
    CHECK_STR(p.values[5], "t");
    CHECK_INT(p.formats[6], 1);
    CHECK_INT(p.lengths[6], 2);
    CHECK(p.values[7] != NULL && p.lengths[7] == 0);
    CHECK_INT(p.formats[0], 0);
    for (int i = p.cnt; i < GQ_PG_MAX_PARAMS; i++)
        gq_pg_param_null(&p);
    CHECK(!p.overflow);
    gq_pg_param_null(&p);
    CHECK(p.overflow);
    CHECK_INT(p.cnt, GQ_PG_MAX_PARAMS);
}

static void test_connect_errors(void) {
    char err[1024];
    gq_status_t st = GQ_OK;
    gq_pg_t *pg = gq_pg_connect("postgresql://genq:s3cret@[::1", 2, &st, err, sizeof(err));
    CHECK(pg == NULL);
    CHECK(st == GQ_ERR_INVALID);
    CHECK(strstr(err, "s3cret") == NULL);
    pg = gq_pg_connect("postgresql://genq@127.0.0.1/genq?nonsense=1", 2, &st, err, sizeof(err));
    CHECK(pg == NULL);
    CHECK(st == GQ_ERR_INVALID);
    /* Port 1 on loopback: refused at once, an outage (transient), and no password shown. */
    pg = gq_pg_connect("postgresql://genq:s3cret@127.0.0.1:1/genq", 2, &st, err, sizeof(err));
    CHECK(pg == NULL);
    CHECK(st == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "s3cret") == NULL);
    CHECK(strstr(err, "127.0.0.1") != NULL);
    pg = gq_pg_connect("host=127.0.0.1 port=1 password=s3cret dbname=genq", 2, &st, err,
                       sizeof(err));
    CHECK(pg == NULL);
    CHECK(st == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "s3cret") == NULL);
}

int main(void) {
    test_sqlstate();
    test_params();
    test_connect_errors();
    return CHECK_DONE("test_pg");
}
