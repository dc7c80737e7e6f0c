/* The worker's Kafka consumer (see intake.h). */
#include "intake.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INTAKE_MAX_CHANGES 2048
#define INTAKE_CLOSE_MS 10000 /* at exit: how long leaving the group may take */

struct gq_intake {
    const gq_cfg_t *cfg;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /**< the consumer queue, which wakes io[0] */
    gq_recorder_t *rec;
    gq_lanes_t lanes;
    const char *group;
    int io[2];
    bool subscribed, fatal, closed;
    bool close_abandoned; /* leaving the group did not finish: see gq_intake_close */
    bool paused[GQ_LANES_MAX];
    /* Partition changes seen by the rebalance callback, handed out before later messages. */
    gq_intake_item_t changes[INTAKE_MAX_CHANGES];
    size_t changes_head, changes_cnt;
    /* A message that one poll returned after serving a rebalance: it waits for the changes
     * queued before it (its partition's assignment among them). */
    rd_kafka_message_t *stash;
};

static void intake_change(gq_intake_t *in, gq_intake_kind_t kind, int lane, int32_t partition,
                          int64_t start, bool lost) {
    if (in->changes_cnt == INTAKE_MAX_CHANGES) {
        gq_err("more than %d partition changes at once; some are lost", INTAKE_MAX_CHANGES);
        return;
    }
    size_t at = (in->changes_head + in->changes_cnt++) % INTAKE_MAX_CHANGES;
    in->changes[at] = (gq_intake_item_t){kind, NULL, lane, partition, start, lost};
}

/* The partitions of one lane's topic in parts get their starts from PostgreSQL. */
static void intake_assign_lane(gq_intake_t *in, rd_kafka_topic_partition_list_t *parts, int lane) {
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++)
        n += strcmp(parts->elems[i].topic, in->lanes.topic[lane]) == 0;
    if (n == 0)
        return;
    int32_t *ids = calloc(n, sizeof(*ids));
    int64_t *offs = calloc(n, sizeof(*offs));
    size_t k = 0;
    for (int i = 0; ids && i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, in->lanes.topic[lane]) == 0)
            ids[k++] = parts->elems[i].partition;
    char err[512] = "out of memory";
    /* PostgreSQL holds the truth: the offset written with the last terminal record. If it
     * cannot be read, Kafka's committed offset is a safe fallback: it never runs ahead. */
    gq_status_t st = ids && offs
                         ? gq_recorder_offsets_load(in->rec, in->group, in->lanes.topic[lane], ids,
                                                    offs, n, err, sizeof(err))
                         : GQ_ERR_NOMEM;
    if (st != GQ_OK)
        gq_warn("could not read stored offsets (%s); starting from Kafka's committed ones", err);
    for (int i = 0, j = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *e = &parts->elems[i];
        if (strcmp(e->topic, in->lanes.topic[lane]) != 0)
            continue;
        bool stored = st == GQ_OK && offs[j] >= 0;
        if (stored)
            e->offset = offs[j];
        gq_info("assigned %s [%d] from %s offset %lld", e->topic, (int)e->partition,
                stored ? "PostgreSQL" : "Kafka", (long long)e->offset);
        intake_change(in, GQ_INTAKE_ASSIGN, lane, e->partition, stored ? offs[j] : -1, false);
        j++;
    }
    free(ids);
    free(offs);
}

static void intake_assign(gq_intake_t *in, rd_kafka_topic_partition_list_t *parts) {
    for (int lane = 0; lane < in->lanes.n; lane++)
        intake_assign_lane(in, parts, lane);
}

/* The partitions of parts in the lanes that are paused. */
static void intake_pause_new(gq_intake_t *in, rd_kafka_t *rk,
                             rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        int lane = gq_lanes_find(&in->lanes, parts->elems[i].topic);
        if (lane >= 0 && in->paused[lane])
            rd_kafka_topic_partition_list_add(p, parts->elems[i].topic, parts->elems[i].partition);
    }
    if (p->cnt)
        rd_kafka_pause_partitions(rk, p);
    rd_kafka_topic_partition_list_destroy(p);
}

static void intake_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque) {
    gq_intake_t *in = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        intake_assign(in, parts);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        intake_pause_new(in, rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        for (int i = 0; i < parts->cnt; i++) {
            int lane = gq_lanes_find(&in->lanes, parts->elems[i].topic);
            gq_info("%s %s [%d]", lost ? "lost" : "revoked", parts->elems[i].topic,
                    (int)parts->elems[i].partition);
            if (lane >= 0)
                intake_change(in, GQ_INTAKE_REVOKE, lane, parts->elems[i].partition, -1, lost);
        }
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    } else {
        gq_err("rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
    if (e) {
        gq_err("rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

gq_intake_t *gq_intake_new(const gq_cfg_t *cfg, const char *worker_id, gq_recorder_t *rec,
                           char *errstr, size_t errstr_size) {
    gq_intake_t *in = calloc(1, sizeof(*in));
    if (!in) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    in->cfg = cfg;
    in->rec = rec;
    in->group = gq_cfg_str(cfg, "group");
    if (gq_lanes_init(&in->lanes, gq_cfg_str(cfg, "lanes"), gq_cfg_str(cfg, "requests_topic"),
                      errstr, errstr_size) != GQ_OK) {
        free(in);
        return NULL;
    }
    in->io[0] = in->io[1] = -1;
    if (pipe2(in->io, O_NONBLOCK | O_CLOEXEC) != 0) {
        gq_errf(errstr, errstr_size, "pipe: %s", strerror(errno));
        free(in);
        return NULL;
    }
    rd_kafka_conf_t *conf = gq_kafka_conf_new(cfg, worker_id, errstr, errstr_size);
    if (!conf)
        goto fail;
    /* Defaults first, then -X again so the user's word wins. Offsets are stored only after
     * the job's record is durable; the auto-committer then commits them (KEDA reads them).
     * The prefetch is bounded: the worker's own backlog is where messages wait. */
    struct {
        const char *k, *v;
    } defaults[] = {
        {"group.id", in->group},
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.partition.eof", "false"},
        {"session.timeout.ms", "45000"},
        {"max.poll.interval.ms", "300000"},
        {"queued.min.messages", "1000"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(defaults); i++)
        if (gq_kafka_conf_set(conf, defaults[i].k, defaults[i].v, errstr, errstr_size) != GQ_OK) {
            rd_kafka_conf_destroy(conf);
            goto fail;
        }
    /* A message over max_message_bytes is failed, not left unread: fetches and the local
     * queue must take one (the broker sends a first message even beyond the fetch sizes). */
    int64_t max_msg = gq_cfg_int(cfg, "max_message_bytes");
    char fetch[32], queued[32];
    snprintf(fetch, sizeof(fetch), "%lld", (long long)(max_msg + 65536));
    snprintf(queued, sizeof(queued), "%lld", (long long)((max_msg + 65536) / 1024 + 4096));
    if (gq_kafka_conf_set(conf, "max.partition.fetch.bytes", fetch, errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "queued.max.messages.kbytes", queued, errstr, errstr_size) !=
            GQ_OK) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    if (gq_kafka_conf_apply_user(conf, cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, intake_rebalance_cb);
    rd_kafka_conf_set_opaque(conf, in);
    in->rk = gq_kafka_new(RD_KAFKA_CONSUMER, conf, "consumer", errstr, errstr_size);
    if (!in->rk)
        goto fail;
    char err[512];
    rd_kafka_poll_set_consumer(in->rk);
    in->queue = rd_kafka_queue_get_consumer(in->rk);
    rd_kafka_queue_io_event_enable(in->queue, in->io[1], "1", 1);
    /* All of them exist from the start: a first message to a topic the producer has not seen
     * yet would wait for a metadata refresh. */
    const char *topics[GQ_LANES_MAX + 2];
    size_t nt = 0;
    for (int l = 0; l < in->lanes.n; l++)
        topics[nt++] = in->lanes.topic[l];
    topics[nt++] = gq_cfg_str(cfg, "completed_topic");
    topics[nt++] = gq_cfg_str(cfg, "dlq_topic");
    if (gq_kafka_topics_ensure(in->rk, topics, nt, (int)gq_cfg_int(cfg, "partitions"), 10000, err,
                               sizeof(err)) != GQ_OK)
        gq_warn("could not ensure topics exist: %s", err);
    return in;
fail:
    gq_intake_destroy(in);
    return NULL;
}

gq_status_t gq_intake_subscribe(gq_intake_t *in, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(in->lanes.n);
    for (int l = 0; l < in->lanes.n; l++)
        rd_kafka_topic_partition_list_add(sub, in->lanes.topic[l], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(in->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        gq_errf(errstr, errstr_size, "subscribe %s: %s", in->lanes.topic[0], rd_kafka_err2str(e));
        return GQ_ERR;
    }
    in->subscribed = true;
    return GQ_OK;
}

bool gq_intake_subscribed(const gq_intake_t *in) { return in->subscribed; }

int gq_intake_fd(const gq_intake_t *in) { return in->io[0]; }

bool gq_intake_fatal(const gq_intake_t *in) { return in->fatal; }

void gq_intake_next(gq_intake_t *in, gq_intake_item_t *out) {
    memset(out, 0, sizeof(*out));
    if (!in->rk || in->closed)
        return;
    /* The wake-up bytes only say "look"; what there is comes from the queue itself. */
    char drain[64];
    while (read(in->io[0], drain, sizeof(drain)) > 0) {
    }
    for (;;) {
        if (in->changes_cnt) {
            *out = in->changes[in->changes_head];
            in->changes_head = (in->changes_head + 1) % INTAKE_MAX_CHANGES;
            in->changes_cnt--;
            return;
        }
        rd_kafka_message_t *m = in->stash;
        in->stash = NULL;
        if (!m) {
            m = rd_kafka_consumer_poll(in->rk, 0);
            /* One poll can serve a rebalance and then return a message: the assignment it
             * made must be handed out first, or the message would seem to come from a
             * partition not ours (and be dropped, and its offset passed over). */
            if (m && in->changes_cnt) {
                in->stash = m;
                continue;
            }
        }
        if (!m) {
            if (in->changes_cnt)
                continue; /* the poll served a rebalance */
            return;
        }
        if (!m->err) {
            out->kind = GQ_INTAKE_MESSAGE;
            out->msg = m;
            out->partition = m->partition;
            out->lane = gq_lanes_find(&in->lanes, rd_kafka_topic_name(m->rkt));
            if (out->lane < 0) {
                rd_kafka_message_destroy(m);
                out->kind = GQ_INTAKE_NONE;
                continue; /* a topic we did not ask for */
            }
            return;
        }
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            char why[256];
            rd_kafka_fatal_error(in->rk, why, sizeof(why));
            gq_err("fatal consumer error: %s", why);
            in->fatal = true;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            gq_warn("consumer: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
}

void gq_intake_pause(gq_intake_t *in, int lane, bool pause) {
    if (!in->rk)
        return;
    if (lane < 0) {
        for (int l = 0; l < in->lanes.n; l++)
            gq_intake_pause(in, l, pause);
        return;
    }
    if (lane >= in->lanes.n || pause == in->paused[lane])
        return;
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(in->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_topic_partition_list_t *mine = rd_kafka_topic_partition_list_new(a->cnt);
    for (int i = 0; i < a->cnt; i++)
        if (strcmp(a->elems[i].topic, in->lanes.topic[lane]) == 0)
            rd_kafka_topic_partition_list_add(mine, a->elems[i].topic, a->elems[i].partition);
    if (mine->cnt) {
        if (pause)
            rd_kafka_pause_partitions(in->rk, mine);
        else
            rd_kafka_resume_partitions(in->rk, mine);
    }
    rd_kafka_topic_partition_list_destroy(mine);
    rd_kafka_topic_partition_list_destroy(a);
    in->paused[lane] = pause;
}

bool gq_intake_paused(const gq_intake_t *in, int lane) {
    return lane >= 0 && lane < in->lanes.n && in->paused[lane];
}

void gq_intake_commit(gq_intake_t *in, int lane, int32_t partition, int64_t next) {
    if (lane < 0 || lane >= in->lanes.n)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, in->lanes.topic[lane], partition)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(in->rk, l);
    if (err || l->elems[0].err)
        gq_debug("offset store %s [%d] @%lld: %s", in->lanes.topic[lane], (int)partition,
                 (long long)next, rd_kafka_err2str(err ? err : l->elems[0].err));
    rd_kafka_topic_partition_list_destroy(l);
}

bool gq_intake_watermarks(gq_intake_t *in, int lane, int32_t partition, int64_t *lo, int64_t *hi) {
    return lane >= 0 && lane < in->lanes.n &&
           rd_kafka_get_watermark_offsets(in->rk, in->lanes.topic[lane], partition, lo, hi) ==
               RD_KAFKA_RESP_ERR_NO_ERROR &&
           *hi >= 0;
}

bool gq_intake_connected(gq_intake_t *in) { return rd_kafka_controllerid(in->rk, 0) >= 0; }

void gq_intake_close(gq_intake_t *in) {
    if (!in->rk || in->closed)
        return;
    in->closed = true;
    /* Commits the stored offsets, revokes (our callback runs, served from q) and leaves the
     * group, within a bound: rd_kafka_consumer_close() waits forever for a group coordinator
     * that never comes back (seen after the broker froze, with librdkafka 2.12.1). */
    rd_kafka_queue_t *q = rd_kafka_queue_new(in->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(in->rk, q);
    if (e) {
        gq_warn("closing the consumer: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        int64_t deadline = gq_mono_ms() + INTAKE_CLOSE_MS;
        while (!rd_kafka_consumer_closed(in->rk)) {
            int64_t left = deadline - gq_mono_ms();
            if (left <= 0) {
                in->close_abandoned = true;
                gq_warn("leaving the consumer group did not finish in %d s (no group "
                        "coordinator): the last offsets may not be committed, so the next "
                        "owner may take those jobs again and find them recorded",
                        INTAKE_CLOSE_MS / 1000);
                break;
            }
            rd_kafka_queue_poll_callback(q, left > 100 ? 100 : (int)left);
        }
    }
    rd_kafka_queue_destroy(q);
}

void gq_intake_destroy(gq_intake_t *in) {
    if (!in)
        return;
    if (in->stash)
        rd_kafka_message_destroy(in->stash);
    if (in->queue)
        rd_kafka_queue_destroy(in->queue);
    /* A close that never finished would block rd_kafka_destroy() the same way: the handle
     * is left to the process's exit, which is what follows. */
    if (in->rk && !in->close_abandoned)
        rd_kafka_destroy(in->rk);
    if (in->io[0] >= 0)
        close(in->io[0]);
    if (in->io[1] >= 0)
        close(in->io[1]);
    free(in);
}

const gq_lanes_t *gq_intake_lanes(const gq_intake_t *in) { return &in->lanes; }
const char *gq_intake_group(const gq_intake_t *in) { return in->group; }
