#include "buf.h"
#include "cfg.h"
#include "util.h"
#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

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
    gq_buf_t e;
    char *tail = NULL;
    gq_buf_init(&e, 6);
    CHECK(gq_buf_appends(&e, "ab") == GQ_OK);
    CHECK(gq_buf_extend(&e, 3, &tail) == GQ_OK && tail == e.data + 2 && e.len == 5);
    memcpy(tail, "cde", 3);
    CHECK_STR(e.data, "abcde");
    CHECK(gq_buf_extend(&e, 2, &tail) == GQ_ERR_TOOBIG && e.len == 5);
    gq_buf_release(&e);

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

static int uuid_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* Drawn from the per-thread pool, uuids are v4, and none repeats across pool refills. */
static void test_uuid_many(void) {
    enum { N = 100000 };
    char(*ids)[37] = malloc(N * sizeof(*ids));
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (gq_uuid_v4(ids[i]) != GQ_OK || !gq_uuid_valid(ids[i]) || ids[i][14] != '4' ||
            !strchr("89ab", ids[i][19]))
            bad++;
    }
    CHECK_INT(bad, 0);
    qsort(ids, N, sizeof(*ids), uuid_cmp);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK_INT(dups, 0);
    free(ids);
    unsigned char raw[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x46, 0x77,
                             0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    char u[37];
    gq_uuid_format(raw, u);
    CHECK_STR(u, "00112233-4455-4677-8899-aabbccddeeff");
    unsigned char big[4096] = {0};
    CHECK(gq_random_bytes(big, sizeof(big)) == GQ_OK); /* larger than the pool */
    int zeros = 0;
    for (size_t i = 0; i < sizeof(big); i++)
        zeros += big[i] == 0;
    CHECK(zeros < 100);
}

/* A forked child must not draw the ids its parent draws next from the pool they shared. */
static void test_uuid_fork(void) {
    char before[37], parent[37], child[37] = "";
    CHECK(gq_uuid_v4(before) == GQ_OK); /* the pool is filled and mostly unused */
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char id[37];
        ssize_t n = gq_uuid_v4(id) == GQ_OK ? write(fds[1], id, sizeof(id)) : -1;
        _exit(n == (ssize_t)sizeof(id) ? 0 : 1);
    }
    CHECK(pid > 0);
    CHECK(gq_uuid_v4(parent) == GQ_OK);
    close(fds[1]);
    CHECK(read(fds[0], child, sizeof(child)) == (ssize_t)sizeof(child));
    close(fds[0]);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(gq_uuid_valid(child) && gq_uuid_valid(parent));
    CHECK(strcmp(child, parent) != 0);
    CHECK(strcmp(child, before) != 0);
}

static void *uuid_thread(void *arg) {
    char *out = arg;
    for (int i = 0; i < 1000; i++)
        gq_uuid_v4(out + 37 * i);
    return NULL;
}

/* Each thread has its own pool: two threads never draw the same bytes. */
static void test_uuid_threads(void) {
    char *a = calloc(1000, 37), *b = calloc(1000, 37);
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, uuid_thread, a) == 0);
    CHECK(pthread_create(&tb, NULL, uuid_thread, b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int same = 0;
    for (int i = 0; i < 1000; i++)
        for (int j = 0; j < 1000; j++)
            same += strcmp(a + 37 * i, b + 37 * j) == 0;
    CHECK_INT(same, 0);
    CHECK(gq_uuid_valid(a + 37 * 999) && gq_uuid_valid(b + 37 * 999));
    free(a);
    free(b);
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
    int argi = 0;
    CHECK(gq_cfg_parse_args(&cfg, 7, argv, &argi, err, sizeof(err)) == GQ_OK);
    CHECK_STR(gq_cfg_str(&cfg, "group"), "from-flag");
    CHECK_INT(gq_cfg_int(&cfg, "queue_depth"), 3);
    CHECK_INT(cfg.kafka_cnt, 1);
    CHECK_INT(argi, 6);
    char *bad[] = {"worker", "--queue-depth", "99", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, bad, &argi, err, sizeof(err)) == GQ_ERR_INVALID);
    char *unknown[] = {"worker", "--prompt", "x", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, unknown, &argi, err, sizeof(err)) == GQ_ERR_INVALID);
    char *help[] = {"worker", "--help", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 2, help, &argi, err, sizeof(err)) == GQ_CFG_HELP);
    /* --dump-config shows the flags after it too, and never a password in comfyui_url */
    char *dumpargs[] = {"worker", "--dump-config", "-c", "http://ops:hunter2@gpu1:8188/x@y", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 4, dumpargs, &argi, err, sizeof(err)) == GQ_CFG_DUMP);
    char text[8192] = "";
    FILE *tf = fmemopen(text, sizeof(text) - 1, "w");
    CHECK(tf != NULL);
    gq_cfg_dump(&cfg, tf);
    fclose(tf);
    CHECK(strstr(text, "comfyui_url=http://ops:***@gpu1:8188/x@y\t# flag") != NULL);
    CHECK(strstr(text, "hunter2") == NULL);
    char *dumpbad[] = {"worker", "--dump-config", "--queue-depth", "99", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 4, dumpbad, &argi, err, sizeof(err)) == GQ_ERR_INVALID);
    gq_cfg_release(&cfg);
    /* GENQ_KAFKA_* become librdkafka properties, before -X so that the flag wins. */
    setenv("GENQ_KAFKA_SASL_PASSWORD", "s3cret", 1);
    setenv("GENQ_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
    CHECK(gq_cfg_init(&cfg, GQ_CMD_WORKER, "worker", err, sizeof(err)) == GQ_OK);
    CHECK_INT(cfg.kafka_cnt, 2);
    char *xargv[] = {"worker", "-X", "security.protocol=SSL", NULL};
    CHECK(gq_cfg_parse_args(&cfg, 3, xargv, &argi, err, sizeof(err)) == GQ_OK);
    CHECK_INT(cfg.kafka_cnt, 3);
    bool saw_pw = false, saw_proto = false;
    for (size_t i = 0; i < 2; i++) {
        saw_pw |= strcmp(cfg.kafka[i], "sasl.password=s3cret") == 0;
        saw_proto |= strcmp(cfg.kafka[i], "security.protocol=SASL_SSL") == 0;
    }
    CHECK(saw_pw && saw_proto);
    CHECK_STR(cfg.kafka[2], "security.protocol=SSL");
    char dump[16384] = "";
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
    /* A secret that is not a URL (the S3 secret key) is masked whole. */
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI", 1);
    CHECK(gq_cfg_init(&cfg, GQ_CMD_WORKER, "worker", err, sizeof(err)) == GQ_OK);
    char dump2[16384] = "";
    FILE *d2 = fmemopen(dump2, sizeof(dump2) - 1, "w");
    CHECK(d2 != NULL);
    gq_cfg_dump(&cfg, d2);
    fclose(d2);
    CHECK(strstr(dump2, "wJalr") == NULL);
    CHECK(strstr(dump2, "s3_secret_access_key=***\t# env") != NULL);
    gq_cfg_release(&cfg);
    unsetenv("AWS_SECRET_ACCESS_KEY");
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

/* W3C trace context: the examples of the specification, and what it forbids. */
static void test_traceparent(void) {
    const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    CHECK(gq_traceparent_valid(ok, strlen(ok)));
    CHECK(!gq_traceparent_valid(ok, strlen(ok) - 1));
    static const char *const bad[] = {
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* another version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* not hex */
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++)
        CHECK(!gq_traceparent_valid(bad[i], strlen(bad[i])));
    CHECK(!gq_traceparent_valid(NULL, 55));
    char a[GQ_TRACEPARENT_LEN + 1], b[GQ_TRACEPARENT_LEN + 1];
    CHECK(gq_traceparent_new(a) == GQ_OK && gq_traceparent_new(b) == GQ_OK);
    CHECK(gq_traceparent_valid(a, strlen(a)) && strcmp(a, b) != 0);
}

int main(void) {
    test_traceparent();
    test_parse();
    test_buf();
    test_uuid_names();
    test_uuid_many();
    test_uuid_fork();
    test_uuid_threads();
    test_cfg();
    return CHECK_DONE("test_util");
}
