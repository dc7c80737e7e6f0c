#include "buf.h"
#include "cfg.h"
#include "util.h"
#include "check.h"

#include <stdlib.h>

static void test_parse(void) {
    int64_t v;
    CHECK(gq_parse_i64("42", 0, 100, &v) == GQ_OK && v == 42);
    CHECK(gq_parse_i64("42x", 0, 100, &v) == GQ_ERR_INVALID);
    CHECK(gq_parse_i64("", 0, 100, &v) == GQ_ERR_INVALID);
    CHECK(gq_parse_i64("101", 0, 100, &v) == GQ_ERR_INVALID);
    CHECK(gq_parse_i64("-1", 0, 100, &v) == GQ_ERR_INVALID);
    CHECK(gq_parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v) == GQ_ERR_INVALID);
    double d;
    CHECK(gq_parse_double("7.5", &d) == GQ_OK && d == 7.5);
    CHECK(gq_parse_double("nan", &d) == GQ_ERR_INVALID);
    bool b;
    CHECK(gq_parse_bool("on", &b) == GQ_OK && b);
    CHECK(gq_parse_bool("nope", &b) == GQ_ERR_INVALID);
}

static void test_buf(void) {
    gq_buf_t b;
    gq_buf_init(&b, 8);
    CHECK(gq_buf_appends(&b, "abcd") == GQ_OK);
    CHECK(gq_buf_appendf(&b, "%d", 1234) == GQ_OK);
    CHECK_STR(b.data, "abcd1234");
    CHECK(gq_buf_appends(&b, "x") == GQ_ERR_TOOBIG);
    CHECK_INT(b.len, 8);
    gq_buf_reset(&b);
    CHECK(gq_buf_append(&b, "123456789", 9) == GQ_ERR_TOOBIG);
    gq_buf_release(&b);
}

static void test_uuid_names(void) {
    char u[37];
    CHECK(gq_uuid_v4(u) == GQ_OK);
    CHECK(gq_uuid_valid(u));
    CHECK(u[14] == '4');
    CHECK(!gq_uuid_valid("5B0D9C57-5A6E-4A34-9D4C-2F5F1B7B9A11"));
    CHECK(!gq_uuid_valid("5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a1"));
    CHECK(gq_name_safe("ComfyUI_00001_.png", 255));
    CHECK(!gq_name_safe("../etc/passwd", 255));
    CHECK(!gq_name_safe(".hidden", 255));
    CHECK(!gq_name_safe("a/b", 255));
    CHECK(!gq_name_safe("", 255));
    char hex[65];
    gq_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_cfg(void) {
    gq_cfg_t cfg;
    char err[256];
    setenv("GENQ_GROUP", "from-env", 1);
    setenv("GENQ_QUEUE_DEPTH", "2", 1);
    CHECK(gq_cfg_init(&cfg, GQ_CMD_WORKER, "worker", err, sizeof(err)) == GQ_OK);
    CHECK_STR(gq_cfg_str(&cfg, "group"), "from-env");
    CHECK_STR(gq_cfg_str(&cfg, "requests_topic"), "genq.requests");
    CHECK_INT(gq_cfg_int(&cfg, "queue_depth"), 2);
    char *argv[] = {"worker", "--group=from-flag", "-X", "debug=cgrp", "--queue-depth", "3", "rest",
                    NULL};
    int optind = 0;
    CHECK(gq_cfg_parse_args(&cfg, 7, argv, &optind, err, sizeof(err)) == GQ_OK);
    CHECK_STR(gq_cfg_str(&cfg, "group"), "from-flag");
    CHECK_INT(gq_cfg_int(&cfg, "queue_depth"), 3);
    CHECK_INT(cfg.kafka_cnt, 1);
    CHECK_INT(optind, 6);
    char *bad[] = {"worker", "--queue-depth", "99", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, bad, &optind, err, sizeof(err)) == GQ_ERR_INVALID);
    char *unknown[] = {"worker", "--prompt", "x", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, unknown, &optind, err, sizeof(err)) == GQ_ERR_INVALID);
    char *help[] = {"worker", "--help", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 2, help, &optind, err, sizeof(err)) == GQ_CFG_HELP);
    /* --dump-config shows the flags after it too, and never a password in comfyui_url */
    char *dumpargs[] = {"worker", "--dump-config", "-c", "http://ops:hunter2@gpu1:8188/x@y", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 4, dumpargs, &optind, err, sizeof(err)) == GQ_CFG_DUMP);
    char text[8192] = "";
    FILE *tf = fmemopen(text, sizeof(text) - 1, "w");
    CHECK(tf != NULL);
    gq_cfg_dump(&cfg, tf);
    fclose(tf);
    CHECK(strstr(text, "comfyui_url=http://ops:***@gpu1:8188/x@y\t# flag") != NULL);
    CHECK(strstr(text, "hunter2") == NULL);
    char *dumpbad[] = {"worker", "--dump-config", "--queue-depth", "99", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 4, dumpbad, &optind, err, sizeof(err)) == GQ_ERR_INVALID);
    gq_cfg_release(&cfg);
    /* GENQ_KAFKA_* become librdkafka properties, before -X so that the flag wins. */
    setenv("GENQ_KAFKA_SASL_PASSWORD", "s3cret", 1);
    setenv("GENQ_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
    CHECK(gq_cfg_init(&cfg, GQ_CMD_WORKER, "worker", err, sizeof(err)) == GQ_OK);
    CHECK_INT(cfg.kafka_cnt, 2);
    char *xargv[] = {"worker", "-X", "security.protocol=SSL", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, xargv, &optind, err, sizeof(err)) == GQ_OK);
    CHECK_INT(cfg.kafka_cnt, 3);
    bool saw_pw = false, saw_proto = false;
    for (size_t i = 0; i < 2; i++) {
        saw_pw |= strcmp(cfg.kafka[i], "sasl.password=s3cret") == 0;
        saw_proto |= strcmp(cfg.kafka[i], "security.protocol=SASL_SSL") == 0;
    }
    CHECK(saw_pw && saw_proto);
    CHECK_STR(cfg.kafka[2], "security.protocol=SSL");
    char dump[4096] = "";
    FILE *df = fmemopen(dump, sizeof(dump) - 1, "w");
    CHECK(df != NULL);
    gq_cfg_dump(&cfg, df);
    fclose(df);
    CHECK(strstr(dump, "s3cret") == NULL);
    CHECK(strstr(dump, "X sasl.password=***") != NULL);
    CHECK(gq_cfg_kafka_key_is_secret("ssl.key.pem", 11));
    CHECK(!gq_cfg_kafka_key_is_secret("security.protocol", 17));
    gq_cfg_release(&cfg);
    unsetenv("GENQ_KAFKA_SASL_PASSWORD");
    unsetenv("GENQ_KAFKA_SECURITY_PROTOCOL");
    setenv("GENQ_QUEUE_DEPTH", "many", 1);
    CHECK(gq_cfg_init(&cfg, GQ_CMD_WORKER, "worker", err, sizeof(err)) == GQ_ERR_INVALID);
    gq_cfg_release(&cfg);
    unsetenv("GENQ_QUEUE_DEPTH");
    unsetenv("GENQ_GROUP");
    char red[128];
    gq_cfg_redact_url("postgresql://genq:s3cret@db:5432/genq", red, sizeof(red));
    CHECK_STR(red, "postgresql://genq:***@db:5432/genq");
    gq_cfg_redact_url("host=db password=s3cret dbname=genq", red, sizeof(red));
    CHECK_STR(red, "host=db password=*** dbname=genq");
    /* an '@' in the path is not user info */
    gq_cfg_redact_url("http://gpu1:8188/view?f=a@b", red, sizeof(red));
    CHECK_STR(red, "http://gpu1:8188/view?f=a@b");
}

int main(void) {
    test_parse();
    test_buf();
    test_uuid_names();
    test_cfg();
    return CHECK_DONE("test_util");
}
