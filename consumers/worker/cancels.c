/* The cancel topic, followed by every worker (see cancels.h). */
#include "cancels.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CANCELS_RETRY_MS 10000 /* partitions not known: look again after this */

typedef enum { CE_PENDING, CE_FLIGHT, CE_RECORDED } ce_state_t;

/* One kept cancel: in its hash chain, and in the list of all of them, oldest first. */
typedef struct cancel_entry {
    struct cancel_entry *hnext;
    struct cancel_entry *older, *newer;
    gq_cancel_t cancel;
    int32_t partition;
    int64_t offset;
    ce_state_t state;
    bool dirty; /* replaced while being recorded: record it again */
} cancel_entry_t;

struct gq_cancels {
    const char *topic;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    int io[2];
    int partitions; /* 0: not known yet */
    int64_t retry_mono;
    bool *eof;
    int at_eof;
    cancel_entry_t **buckets;
    size_t nbuckets, cnt, unrecorded;
    cancel_entry_t *oldest, *newest;
    cancel_entry_t *flight[GQ_CANCELS_BATCH];
    size_t flight_cnt;
    uint64_t skipped;
    bool warned;
};

/* ---- the kept cancels ---- */

static size_t ce_hash(const char *id) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)h;
}

static cancel_entry_t *ce_find(const gq_cancels_t *c, const char *id) {
    if (!c->nbuckets)
        return NULL;
    for (cancel_entry_t *e = c->buckets[ce_hash(id) & (c->nbuckets - 1)]; e; e = e->hnext)
        if (strcmp(e->cancel.job_id, id) == 0)
            return e;
    return NULL;
}

/* Keeps the table at most one entry per bucket on average. */
static bool ce_grow(gq_cancels_t *c) {
    if (c->cnt < c->nbuckets)
        return true;
    size_t n = c->nbuckets ? c->nbuckets * 2 : 1024;
    cancel_entry_t **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (cancel_entry_t *e = c->buckets[i], *nx; e; e = nx) {
            nx = e->hnext;
            size_t k = ce_hash(e->cancel.job_id) & (n - 1);
            e->hnext = b[k];
            b[k] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
    return true;
}

static void ce_remove(gq_cancels_t *c, cancel_entry_t *e) {
    cancel_entry_t **pp = &c->buckets[ce_hash(e->cancel.job_id) & (c->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->state != CE_RECORDED)
        c->unrecorded--;
    c->cnt--;
    gq_cancel_release(&e->cancel);
    free(e);
}

/* Beyond GQ_CANCELS_KEEP, the oldest cancel already in PostgreSQL is forgotten. The walk
 * stops once none is left to forget (PostgreSQL down: all unrecorded), so that it is not
 * repeated over the whole list for every cancel read during an outage. */
static void ce_evict(gq_cancels_t *c) {
    for (cancel_entry_t *e = c->oldest, *nx;
         e && c->cnt > GQ_CANCELS_KEEP && c->cnt > c->unrecorded; e = nx) {
        nx = e->newer;
        if (e->state == CE_RECORDED)
            ce_remove(c, e);
    }
}

/* Keeps a cancel read at (partition, offset), taking its strings; NULL when it changes
 * nothing (a message older than the one kept) or memory ran out. */
static cancel_entry_t *ce_put(gq_cancels_t *c, gq_cancel_t *x, int32_t partition, int64_t offset) {
    cancel_entry_t *e = ce_find(c, x->job_id);
    if (e) {
        if (e->partition == partition && offset <= e->offset)
            return NULL; /* read again (a restart, a rewind): nothing new */
        gq_cancel_release(&e->cancel);
        e->cancel = *x;
        e->partition = partition;
        e->offset = offset;
        if (e->state == CE_FLIGHT) {
            e->dirty = true;
        } else if (e->state == CE_RECORDED) {
            e->state = CE_PENDING;
            c->unrecorded++;
        }
        gq_cancel_init(x);
        return e;
    }
    if (!ce_grow(c) || !(e = calloc(1, sizeof(*e)))) {
        gq_err("out of memory keeping the cancel of job %s (it applies when the job begins)",
               x->job_id);
        return NULL;
    }
    e->cancel = *x;
    gq_cancel_init(x);
    e->partition = partition;
    e->offset = offset;
    e->state = CE_PENDING;
    size_t k = ce_hash(e->cancel.job_id) & (c->nbuckets - 1);
    e->hnext = c->buckets[k];
    c->buckets[k] = e;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
    c->cnt++;
    c->unrecorded++;
    ce_evict(c);
    return e;
}

/* ---- the consumer ---- */

/* Assigns every partition from the beginning; false when they cannot be known now. */
static bool cancels_assign(gq_cancels_t *c, int timeout_ms) {
    char err[512];
    int n = 0;
    if (gq_kafka_partition_count(c->rk, c->topic, timeout_ms, &n, err, sizeof(err)) != GQ_OK ||
        n <= 0) {
        if (!c->warned)
            gq_warn("cancel topic %s: %s (looked up again every %d s)", c->topic, err,
                    CANCELS_RETRY_MS / 1000);
        c->warned = true;
        return false;
    }
    bool *eof = calloc((size_t)n, sizeof(*eof));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; eof && p < n; p++)
        rd_kafka_topic_partition_list_add(parts, c->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = eof ? rd_kafka_assign(c->rk, parts) : RD_KAFKA_RESP_ERR__FAIL;
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        gq_warn("cancel topic %s: assign: %s", c->topic, rd_kafka_err2str(e));
        free(eof);
        return false;
    }
    c->eof = eof;
    c->at_eof = 0;
    c->partitions = n;
    gq_info("following cancel topic %s (%d partition(s)) from the beginning", c->topic, n);
    return true;
}

gq_cancels_t *gq_cancels_new(const gq_cfg_t *cfg, const char *worker_id, char *errstr,
                             size_t errstr_size) {
    gq_cancels_t *c = calloc(1, sizeof(*c));
    if (!c) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->io[0] = c->io[1] = -1;
    c->topic = gq_cfg_str(cfg, "cancel_topic");
    if (pipe2(c->io, O_NONBLOCK | O_CLOEXEC) != 0) {
        gq_errf(errstr, errstr_size, "pipe: %s", strerror(errno));
        gq_cancels_destroy(c);
        return NULL;
    }
    char client[160];
    snprintf(client, sizeof(client), "%s-cancels", worker_id);
    rd_kafka_conf_t *conf = gq_kafka_conf_new(cfg, client, errstr, errstr_size);
    if (!conf) {
        gq_cancels_destroy(c);
        return NULL;
    }
    /* No group: nothing is committed, every worker reads everything. */
    if (gq_kafka_conf_set(conf, "group.id", "genq-cancels-unused", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) !=
            GQ_OK ||
        gq_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) != GQ_OK ||
        /* The broker answers a fetch as soon as a cancel arrives; this only spaces the empty
         * answers of a topic that is mostly quiet (2 a second by default, each a wake-up). */
        gq_kafka_conf_set(conf, "fetch.wait.max.ms", "5000", errstr, errstr_size) != GQ_OK ||
        gq_kafka_conf_apply_user(conf, cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        gq_cancels_destroy(c);
        return NULL;
    }
    c->rk = gq_kafka_new(RD_KAFKA_CONSUMER, conf, "consumer (cancels)", errstr, errstr_size);
    if (!c->rk) {
        gq_cancels_destroy(c);
        return NULL;
    }
    char err[512];
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_queue_io_event_enable(c->queue, c->io[1], "1", 1);
    if (gq_kafka_topic_ensure_compacted(c->rk, c->topic, 1, 10000, err, sizeof(err)) != GQ_OK)
        gq_warn("could not ensure cancel topic %s exists: %s", c->topic, err);
    if (!cancels_assign(c, 10000))
        c->retry_mono = gq_mono_ms() + CANCELS_RETRY_MS;
    return c;
}

void gq_cancels_destroy(gq_cancels_t *c) {
    if (!c)
        return;
    if (c->queue)
        rd_kafka_queue_destroy(c->queue);
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    while (c->oldest)
        ce_remove(c, c->oldest);
    free(c->buckets);
    free(c->eof);
    if (c->io[0] >= 0)
        close(c->io[0]);
    if (c->io[1] >= 0)
        close(c->io[1]);
    free(c);
}

int gq_cancels_fd(const gq_cancels_t *c) { return c->io[0]; }

void gq_cancels_service(gq_cancels_t *c, int64_t now_mono) {
    if (c->partitions > 0 || now_mono < c->retry_mono)
        return;
    if (!cancels_assign(c, 500))
        c->retry_mono = now_mono + CANCELS_RETRY_MS;
}

/* One message: a cancel kept (returned), or NULL (an end of partition, an error, a message
 * skipped, nothing new). */
static cancel_entry_t *cancels_take(gq_cancels_t *c, const rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < c->partitions && !c->eof[m->partition]) {
            c->eof[m->partition] = true;
            c->at_eof++;
        }
        return NULL;
    }
    if (m->err) {
        gq_warn("cancel topic %s: %s", c->topic, rd_kafka_message_errstr(m));
        return NULL;
    }
    if (!m->payload || m->len == 0)
        return NULL; /* a tombstone: it does not undo a cancel */
    char err[512];
    if (m->len > GQ_CANCELS_MAX_MESSAGE) {
        c->skipped++;
        gq_warn("cancel topic %s [%d] @%lld: a message of %zu bytes (at most %u); skipped",
                c->topic, (int)m->partition, (long long)m->offset, m->len, GQ_CANCELS_MAX_MESSAGE);
        return NULL;
    }
    gq_cancel_t x;
    gq_status_t st = gq_cancel_decode(m->payload, m->len, &x, err, sizeof(err));
    if (st == GQ_OK)
        st = gq_cancel_validate(&x, err, sizeof(err));
    if (st != GQ_OK) {
        c->skipped++;
        gq_warn("cancel topic %s [%d] @%lld: not a valid CancelRequest (%s); skipped", c->topic,
                (int)m->partition, (long long)m->offset, err);
        gq_cancel_release(&x);
        return NULL;
    }
    cancel_entry_t *e = ce_put(c, &x, m->partition, m->offset);
    gq_cancel_release(&x);
    return e;
}

gq_status_t gq_cancels_catch_up(gq_cancels_t *c, int timeout_ms, volatile sig_atomic_t *stop,
                                size_t *read, char *errstr, size_t errstr_size) {
    int64_t deadline = gq_mono_ms() + timeout_ms;
    *read = 0;
    while (!(stop && *stop)) {
        int64_t left = deadline - gq_mono_ms();
        if (c->partitions == 0 && left > 0 && !cancels_assign(c, left > 2000 ? 2000 : (int)left)) {
            gq_sleep_ms(left > 500 ? 500 : left);
            continue;
        }
        if (c->partitions > 0 && c->at_eof >= c->partitions)
            return GQ_OK;
        if (left <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, left > 200 ? 200 : (int)left);
        if (!m)
            continue;
        if (cancels_take(c, m))
            (*read)++;
        rd_kafka_message_destroy(m);
    }
    if (c->partitions == 0)
        c->retry_mono = gq_mono_ms() + CANCELS_RETRY_MS;
    gq_errf(errstr, errstr_size, "cancel topic %s not read to its end (%d of %d partitions)",
            c->topic, c->at_eof, c->partitions);
    return GQ_ERR_TIMEOUT;
}

const gq_cancel_t *gq_cancels_next(gq_cancels_t *c) {
    char drain[64];
    while (read(c->io[0], drain, sizeof(drain)) > 0) {
    }
    if (c->partitions == 0)
        return NULL;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m)
            return NULL;
        cancel_entry_t *e = cancels_take(c, m);
        rd_kafka_message_destroy(m);
        if (e)
            return &e->cancel;
    }
}

const gq_cancel_t *gq_cancels_find(const gq_cancels_t *c, const char *job_id) {
    const cancel_entry_t *e = job_id && job_id[0] ? ce_find(c, job_id) : NULL;
    return e ? &e->cancel : NULL;
}

size_t gq_cancels_to_record(gq_cancels_t *c, gq_rec_cancel_t *out, size_t max) {
    if (c->flight_cnt || c->unrecorded == 0)
        return 0;
    if (max > GQ_CANCELS_BATCH)
        max = GQ_CANCELS_BATCH;
    /* The newest are the ones not recorded yet, as a rule. */
    for (cancel_entry_t *e = c->newest; e && c->flight_cnt < max; e = e->older) {
        if (e->state != CE_PENDING)
            continue;
        e->state = CE_FLIGHT;
        e->dirty = false;
        out[c->flight_cnt] = (gq_rec_cancel_t){&e->cancel, c->topic, e->partition, e->offset};
        c->flight[c->flight_cnt++] = e;
    }
    return c->flight_cnt;
}

void gq_cancels_recorded(gq_cancels_t *c, bool ok) {
    for (size_t i = 0; i < c->flight_cnt; i++) {
        cancel_entry_t *e = c->flight[i];
        if (ok && !e->dirty) {
            e->state = CE_RECORDED;
            c->unrecorded--;
        } else {
            e->state = CE_PENDING;
        }
    }
    c->flight_cnt = 0;
    ce_evict(c);
}

size_t gq_cancels_count(const gq_cancels_t *c) { return c->cnt; }

size_t gq_cancels_unrecorded(const gq_cancels_t *c) { return c->unrecorded; }
