/* Unit tests of the completion reader (consumers/events/reader.c) against librdkafka's mock
 * cluster: a topic whose partition has no leader yet, or that does not exist yet, is waited
 * for (genq produce --wait opens the reader on a topic it has just created; genq events may
 * start before the first worker created it), within a bound, and then read. */
#include "events/reader.h"

#include "buf.h"
#include "check.h"
#include "log.h"
#include "util.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>

static rd_kafka_mock_cluster_t *mock;

typedef struct later {
    int delay_ms;
    const char *topic;
    bool appear; /* the topic's metadata error goes away; else partition 1 gets its leader */
} later_t;

static void *later_run(void *arg) {
    const later_t *l = arg;
    gq_sleep_ms(l->delay_ms);
    if (l->appear)
        rd_kafka_mock_topic_set_error(mock, l->topic, RD_KAFKA_RESP_ERR_NO_ERROR);
    else
        rd_kafka_mock_partition_set_leader(mock, l->topic, 1, 1);
    return NULL;
}

static void cfg_for(gq_cfg_t *cfg) {
    char err[256];
    CHECK(gq_cfg_init(cfg, GQ_CMD_EVENTS, "events", err, sizeof(err)) == GQ_OK);
    CHECK(gq_cfg_set(cfg, "brokers", rd_kafka_mock_cluster_bootstraps(mock), GQ_SRC_FLAG, err,
                     sizeof(err)) == GQ_OK);
}

/* One GenerationCompleted event for job_id on partition 0 of topic. */
static void publish_event(rd_kafka_t *prod, const char *topic, const char *job_id) {
    gq_completed_t ev;
    gq_completed_init(&ev);
    gq_strlcpy(ev.job_id, job_id, sizeof(ev.job_id));
    ev.worker_id = strdup("w");
    ev.finished_at = gq_now_ms();
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    char err[256];
    gq_status_t st = gq_completed_encode(&ev, &b, err, sizeof(err));
    if (st != GQ_OK)
        fprintf(stderr, "encode: %s\n", err);
    CHECK(st == GQ_OK);
    CHECK(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                            RD_KAFKA_V_VALUE(b.data, b.len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
    CHECK(rd_kafka_flush(prod, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    gq_buf_release(&b);
    gq_completed_release(&ev);
}

/* Partition 1 has no leader when the reader opens; it gets one 1.5 s later. */
static void test_no_leader_yet(rd_kafka_t *prod) {
    const char *topic = "genq.completed.noleader";
    CHECK(rd_kafka_mock_topic_create(mock, topic, 2, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    publish_event(prod, topic, "5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11");
    CHECK(rd_kafka_mock_partition_set_leader(mock, topic, 1, -1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    later_t l = {1500, topic, false};
    pthread_t th;
    pthread_create(&th, NULL, later_run, &l);
    gq_cfg_t cfg;
    cfg_for(&cfg);
    char err[512] = "";
    int64_t t0 = gq_mono_ms();
    gq_reader_opts_t o = {.topic = topic, .from = "beginning", .wait_ms = 20000};
    gq_reader_t *r = gq_reader_new(&cfg, &o, err, sizeof(err));
    if (!r)
        fprintf(stderr, "reader: %s\n", err);
    CHECK(r != NULL);
    CHECK(gq_mono_ms() - t0 >= 1000); /* it did wait for the leader */
    if (r) {
        gq_completed_t ev;
        gq_status_t st = GQ_ERR_TIMEOUT;
        for (int i = 0; i < 50 && st == GQ_ERR_TIMEOUT; i++)
            st = gq_reader_next(r, 200, &ev, err, sizeof(err));
        CHECK(st == GQ_OK);
        if (st == GQ_OK) {
            CHECK_STR(ev.job_id, "5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11");
            gq_completed_release(&ev);
        }
        for (int i = 0; i < 50 && (st == GQ_OK || st == GQ_ERR_TIMEOUT); i++)
            st = gq_reader_next(r, 200, &ev, err, sizeof(err));
        CHECK(st == GQ_ERR_NOTFOUND); /* then the end: nothing waits forever */
    }
    gq_reader_destroy(r);
    pthread_join(th, NULL);
    gq_cfg_release(&cfg);
}

/* The topic is being created (Kafka answers LEADER_NOT_AVAILABLE for it) when the reader
 * starts, and is there a second later. */
static void test_created_later(void) {
    const char *topic = "genq.completed.later";
    CHECK(rd_kafka_mock_topic_create(mock, topic, 2, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_mock_topic_set_error(mock, topic, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    later_t l = {1000, topic, true};
    pthread_t th;
    pthread_create(&th, NULL, later_run, &l);
    gq_cfg_t cfg;
    cfg_for(&cfg);
    char err[512] = "";
    gq_reader_opts_t o = {.topic = topic, .from = "end", .follow = true, .wait_ms = 20000};
    gq_reader_t *r = gq_reader_new(&cfg, &o, err, sizeof(err));
    if (!r)
        fprintf(stderr, "reader: %s\n", err);
    CHECK(r != NULL);
    gq_reader_destroy(r);
    pthread_join(th, NULL);
    gq_cfg_release(&cfg);
}

/* A topic that never comes: an error naming it once the wait is over, not before (the mock
 * broker would create any topic asked for; a real one is told not to). */
static void test_never(void) {
    rd_kafka_mock_topic_set_error(mock, "genq.completed.never",
                                  RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    gq_cfg_t cfg;
    cfg_for(&cfg);
    char err[512] = "";
    int64_t t0 = gq_mono_ms();
    gq_reader_opts_t o = {.topic = "genq.completed.never", .from = "end", .wait_ms = 1500};
    gq_reader_t *r = gq_reader_new(&cfg, &o, err, sizeof(err));
    int64_t took = gq_mono_ms() - t0;
    CHECK(r == NULL);
    CHECK(strstr(err, "genq.completed.never") != NULL);
    CHECK(took >= 1400 && took < 8000);
    gq_reader_destroy(r);

    /* A stop asked for while waiting ends the wait. */
    volatile sig_atomic_t stop = 1;
    o.wait_ms = 60000;
    o.stop = &stop;
    t0 = gq_mono_ms();
    r = gq_reader_new(&cfg, &o, err, sizeof(err));
    CHECK(r == NULL && gq_mono_ms() - t0 < 5000);
    gq_reader_destroy(r);
    gq_cfg_release(&cfg);
}

int main(void) {
    gq_log_init("test");
    gq_log_set_level(GQ_LOG_ERROR); /* librdkafka warns about the leaderless partition */
    char err[256];
    if (gq_schema_init(err, sizeof(err)) != GQ_OK) {
        fprintf(stderr, "schema: %s\n", err);
        return 1;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", "", NULL, 0);
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!host) {
        fprintf(stderr, "kafka: %s\n", err);
        return 1;
    }
    mock = rd_kafka_mock_cluster_new(host, 1);
    if (!mock) {
        rd_kafka_destroy(host);
        printf("test_reader: skipped: librdkafka has no mock cluster\n");
        return 77;
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock), NULL, 0);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CHECK(prod != NULL);
    test_no_leader_yet(prod);
    test_created_later();
    test_never();
    rd_kafka_destroy(prod);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(host);
    return CHECK_DONE("test_reader");
}
