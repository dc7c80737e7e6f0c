/* The Kafka side of the worker: group membership, offsets, flow control, and turning a
 * message into a job (decode, validate, dedupe, reattach). */
#include "kafka.h"
#include "log.h"
#include "util.h"
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>

part_t *intake_part(gq_worker_t *w, int32_t partition) {
    if (partition < 0 || partition >= WORKER_MAX_PARTS)
        return NULL;
    return &w->parts[partition];
}

/* The next offset to commit for a partition: the oldest offset still in flight, or the
 * one after the last message taken. `skip` (may be NULL) is treated as finished. */
static int64_t intake_next_commit(gq_worker_t *w, int32_t partition, const job_t *skip) {
    part_t *p = intake_part(w, partition);
    int64_t next = p->consumed_next;
    for (job_t *j = w->jobs; j; j = j->next)
        if (j != skip && j->partition == partition && !j->revoked && j->offset < next)
            next = j->offset;
    return next;
}

gq_msg_ref_t intake_ref(gq_worker_t *w, const job_t *j) {
    gq_msg_ref_t ref = {w->group, w->topic, j->partition, j->offset, -1};
    part_t *p = intake_part(w, j->partition);
    /* Not ours any more: the new owner moves the offset. */
    if (!j->revoked && p && p->assigned) {
        int64_t next = intake_next_commit(w, j->partition, j);
        ref.next_offset = next > 0 ? next : -1;
    }
    return ref;
}

static void intake_store_offset(gq_worker_t *w, int32_t partition) {
    part_t *p = intake_part(w, partition);
    if (!p || !p->assigned)
        return;
    int64_t next = intake_next_commit(w, partition, NULL);
    if (next <= p->next_commit)
        return;
    p->next_commit = next;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->topic, partition)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, l);
    if (err || l->elems[0].err)
        gq_debug("offset store %s [%d] @%lld: %s", w->topic, (int)partition, (long long)next,
                 rd_kafka_err2str(err ? err : l->elems[0].err));
    rd_kafka_topic_partition_list_destroy(l);
}

void intake_job_done(gq_worker_t *w, job_t *j) {
    int32_t partition = j->partition;
    worker_job_remove(w, j);
    worker_job_free(j);
    intake_store_offset(w, partition);
    intake_flow_control(w);
}

static void intake_assign(gq_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    size_t n = (size_t)parts->cnt;
    int32_t *ids = calloc(n ? n : 1, sizeof(*ids));
    int64_t *offs = calloc(n ? n : 1, sizeof(*offs));
    for (size_t i = 0; i < n; i++)
        ids[i] = parts->elems[i].partition;
    char err[512];
    /* PostgreSQL holds the truth: the offset written with the last terminal record. If it
     * cannot be read, Kafka's committed offset is a safe fallback: it never runs ahead. */
    gq_status_t st =
        gq_recorder_offsets_load(w->rec, w->group, w->topic, ids, offs, n, err, sizeof(err));
    if (st != GQ_OK)
        gq_warn("could not read stored offsets (%s); starting from Kafka's committed ones", err);
    for (size_t i = 0; i < n; i++) {
        part_t *p = intake_part(w, ids[i]);
        if (!p) {
            gq_err("partition %d is beyond what this worker tracks", (int)ids[i]);
            continue;
        }
        p->partition = ids[i];
        p->assigned = true;
        p->next_commit = -1;
        p->consumed_next = -1;
        if (st == GQ_OK && offs[i] >= 0) {
            parts->elems[i].offset = offs[i];
            p->next_commit = offs[i];
            p->consumed_next = offs[i];
        }
        gq_info("assigned %s [%d] from %s offset %lld", w->topic, (int)ids[i],
                st == GQ_OK && offs[i] >= 0 ? "PostgreSQL" : "Kafka",
                (long long)parts->elems[i].offset);
    }
    free(ids);
    free(offs);
}

static void intake_revoke(gq_worker_t *w, rd_kafka_topic_partition_list_t *parts, bool lost) {
    for (int i = 0; i < parts->cnt; i++) {
        part_t *p = intake_part(w, parts->elems[i].partition);
        if (!p)
            continue;
        for (job_t *j = w->jobs, *nx; j; j = nx) {
            nx = j->next;
            if (j->partition != p->partition)
                continue;
            render_cancel(w, j);
        }
        p->assigned = false;
        gq_info("%s %s [%d]", lost ? "lost" : "revoked", w->topic, (int)p->partition);
    }
}

static void intake_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque) {
    gq_worker_t *w = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        intake_assign(w, parts);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (w->paused)
            rd_kafka_pause_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        intake_revoke(w, parts, rd_kafka_assignment_lost(rk));
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

gq_status_t intake_init(gq_worker_t *w, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = gq_kafka_conf_new(w->cfg, w->worker_id, errstr, errstr_size);
    if (!conf)
        return GQ_ERR_INVALID;
    /* Defaults first, then -X again so the user's word wins. Offsets are stored only after
     * the job's record is durable; the auto-committer then commits them (KEDA reads them). */
    struct {
        const char *k, *v;
    } defaults[] = {
        {"group.id", w->group},
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.partition.eof", "false"},
        {"session.timeout.ms", "45000"},
        {"max.poll.interval.ms", "300000"},
        {"queued.max.messages.kbytes", "4096"},
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(defaults); i++)
        if (gq_kafka_conf_set(conf, defaults[i].k, defaults[i].v, errstr, errstr_size) != GQ_OK) {
            rd_kafka_conf_destroy(conf);
            return GQ_ERR_INVALID;
        }
    if (gq_kafka_conf_apply_user(conf, w->cfg, errstr, errstr_size) != GQ_OK) {
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    rd_kafka_conf_set_rebalance_cb(conf, intake_rebalance_cb);
    rd_kafka_conf_set_opaque(conf, w);
    char err[512];
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!w->consumer) {
        gq_errf(errstr, errstr_size, "kafka consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return GQ_ERR_INVALID;
    }
    /* conf is owned by the consumer now. */
    rd_kafka_poll_set_consumer(w->consumer);
    /* All three exist from the start: a first message to a topic the producer has not seen
     * yet would wait for a metadata refresh. */
    const char *topics[] = {w->topic, gq_cfg_str(w->cfg, "completed_topic"),
                            gq_cfg_str(w->cfg, "dlq_topic")};
    if (gq_kafka_topics_ensure(w->consumer, topics, 3, (int)gq_cfg_int(w->cfg, "partitions"), 10000,
                               err, sizeof(err)) != GQ_OK)
        gq_warn("could not ensure topics exist: %s", err);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, w->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        gq_errf(errstr, errstr_size, "subscribe %s: %s", w->topic, rd_kafka_err2str(e));
        return GQ_ERR;
    }
    return GQ_OK;
}

void intake_flow_control(gq_worker_t *w) {
    bool want_pause = w->stopping || w->jobs_cnt >= w->max_jobs;
    if (want_pause == w->paused)
        return;
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(w->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (want_pause)
        rd_kafka_pause_partitions(w->consumer, a);
    else
        rd_kafka_resume_partitions(w->consumer, a);
    rd_kafka_topic_partition_list_destroy(a);
    w->paused = want_pause;
}

static void intake_message(gq_worker_t *w, rd_kafka_message_t *m) {
    part_t *p = intake_part(w, m->partition);
    if (!p || !p->assigned) {
        gq_warn("message from unassigned partition %d ignored", (int)m->partition);
        return;
    }
    job_t *j = worker_job_new(w, m->partition, m->offset);
    if (!j)
        return;
    if (p->next_commit < 0)
        p->next_commit = m->offset;
    p->consumed_next = m->offset + 1;
    j->payload = malloc(m->len ? m->len : 1);
    if (j->payload && m->len)
        memcpy(j->payload, m->payload, m->len);
    j->payload_len = m->len;
    /* A key that is a uuid names the job even when the value is garbage. */
    if (m->key && m->key_len == 36) {
        char key[37];
        memcpy(key, m->key, 36);
        key[36] = '\0';
        if (gq_uuid_valid(key))
            memcpy(j->job_id, key, sizeof(key));
    }
    intake_process(w, j);
}

void intake_poll(gq_worker_t *w, int timeout_ms) {
    /* Take a few messages per turn: the loop must come back to the WebSocket quickly. */
    for (int n = 0; n < 8; n++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, n == 0 ? timeout_ms : 0);
        if (!m)
            return;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[256];
                rd_kafka_fatal_error(w->consumer, why, sizeof(why));
                gq_err("fatal consumer error: %s", why);
                w->fatal = true;
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                gq_warn("consumer: %s", rd_kafka_message_errstr(m));
            }
        } else if (w->stopping) {
            /* Not taken: it stays uncommitted and is redelivered to the next owner. */
        } else {
            intake_message(w, m);
        }
        rd_kafka_message_destroy(m);
        intake_flow_control(w);
    }
}

/* Skips a message whose job already has its terminal record (a redelivery or a replay). */
void intake_skip(gq_worker_t *w, job_t *j, const char *why) {
    gq_msg_ref_t ref = intake_ref(w, j);
    char e[512];
    if (gq_recorder_offset_advance(w->rec, &ref, e, sizeof(e)) != GQ_OK) {
        w->pg_retry_mono = gq_mono_ms() + 1000;
        return;
    }
    gq_info("job %s: %s; skipped", j->job_id, why);
    w->n_skipped++;
    intake_job_done(w, j);
}

void intake_process(gq_worker_t *w, job_t *j) {
    char err[1024];
    if (gq_mono_ms() < w->pg_retry_mono)
        return;
    if (!j->decoded) {
        char keyed_id[37];
        memcpy(keyed_id, j->job_id, sizeof(keyed_id));
        gq_request_release(&j->req);
        gq_status_t dst = gq_request_decode(j->payload, j->payload_len, &j->req, err, sizeof(err));
        gq_status_t st = dst == GQ_OK ? gq_request_validate(&j->req, err, sizeof(err)) : dst;
        if (j->req.job_id[0] && gq_uuid_valid(j->req.job_id))
            memcpy(j->job_id, j->req.job_id, sizeof(j->job_id));
        if (st != GQ_OK) {
            if (!j->job_id[0] && keyed_id[0])
                memcpy(j->job_id, keyed_id, sizeof(keyed_id));
            if (!j->job_id[0]) {
                finish_reject(w, j, "decode_error", err);
                return;
            }
            j->attempt = 1;
            j->max_attempts = 1;
            if (dst != GQ_OK) {
                /* It did not even decode: poison, so it goes to the dead-letter topic too. */
                j->to_dlq = true;
                gq_strlcpy(j->dlq_reason, "decode_error", sizeof(j->dlq_reason));
            }
            render_fail(w, j, j->to_dlq ? "decode_error" : "invalid_request", false, "%s", err);
            return;
        }
        j->decoded = true;
        j->max_attempts = j->req.max_attempts > 0 ? j->req.max_attempts : w->max_attempts;
    }
    for (job_t *o = w->jobs; o; o = o->next) {
        if (o != j && o->decoded && strcmp(o->job_id, j->job_id) == 0) {
            /* Same job twice in flight (a duplicate publish): the first one decides. Its
             * offset is lower, so ours cannot be committed before it is done. */
            gq_info("job %s: duplicate message @%lld while in flight; skipped", j->job_id,
                    (long long)j->offset);
            w->n_skipped++;
            intake_job_done(w, j);
            return;
        }
    }
    gq_job_row_t row;
    gq_status_t st = gq_recorder_job_get(w->rec, j->job_id, &row, err, sizeof(err));
    if (st != GQ_OK) {
        gq_warn("looking up job %s: %s (will retry)", j->job_id, err);
        w->pg_retry_mono = gq_mono_ms() + 1000;
        return;
    }
    if (row.exists && (strcmp(row.status, "succeeded") == 0 || strcmp(row.status, "failed") == 0)) {
        intake_skip(w, j, row.status);
        return;
    }
    j->attempt = row.exists ? row.attempts : 0;
    if (row.exists && row.comfy_prompt_id[0] && j->attempt > 0) {
        gq_comfy_state_t cs = GQ_COMFY_UNKNOWN;
        gq_comfy_result_t res = {0};
        if (gq_comfy_prompt_state(w->comfy, row.comfy_prompt_id, &cs, &res, err, sizeof(err)) ==
                GQ_OK &&
            cs != GQ_COMFY_UNKNOWN) {
            /* The previous owner's render is still here: adopt it instead of rendering again. */
            gq_strlcpy(j->prompt_id, row.comfy_prompt_id, sizeof(j->prompt_id));
            j->adopted = true;
            j->started_at = row.started_at;
            j->submitted_mono = j->last_event_mono = j->started_mono = gq_mono_ms();
            j->last_check_mono = 0;
            w->n_adopted++;
            gq_info("job %s: reattached to prompt %s (attempt %d, %s)", j->job_id, j->prompt_id,
                    (int)j->attempt,
                    cs == GQ_COMFY_FINISHED  ? "finished"
                    : cs == GQ_COMFY_RUNNING ? "running"
                                             : "queued");
            render_prepare(w, j);
            if (j->state != JOB_READY) {
                gq_comfy_result_release(&res);
                return;
            }
            j->state = cs == GQ_COMFY_PENDING ? JOB_QUEUED : JOB_RUNNING;
            if (cs == GQ_COMFY_FINISHED) {
                j->state = JOB_RENDERED;
                finish_rendered(w, j, &res);
            }
            gq_comfy_result_release(&res);
            return;
        }
        gq_comfy_result_release(&res);
        gq_info("job %s: attempt %d (prompt %s) is gone from ComfyUI; rendering again", j->job_id,
                (int)j->attempt, row.comfy_prompt_id);
    }
    if (j->attempt >= j->max_attempts) {
        j->to_dlq = true;
        gq_strlcpy(j->dlq_reason, "attempts_exhausted", sizeof(j->dlq_reason));
        render_fail(w, j, "attempts_exhausted", false, "%d attempt(s) made, the limit is %d",
                    (int)j->attempt, (int)j->max_attempts);
        return;
    }
    j->attempt++;
    render_prepare(w, j);
}

void intake_close(gq_worker_t *w) {
    if (!w->consumer)
        return;
    /* Commits the stored offsets, revokes (our callback runs) and leaves the group. */
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(w->consumer);
    if (err)
        gq_warn("closing the consumer: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(w->consumer);
    w->consumer = NULL;
}
