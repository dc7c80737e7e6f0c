/* The worker loop. One thread: Kafka poll, ComfyUI events, timers, completions. */
#include "log.h"
#include "util.h"
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_EVENT_WAIT_MS 50
#define WORKER_STATS_EVERY_MS 30000
#define WORKER_FINISH_GRACE_MS 15000 /* after the grace period: time to record finished jobs */

job_t *worker_job_new(gq_worker_t *w, int32_t partition, int64_t offset) {
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->state = JOB_NEW;
    j->partition = partition;
    j->offset = offset;
    j->received_at = gq_now_ms();
    gq_request_init(&j->req);
    j->req.job_id[0] = '\0';
    /* Append: the list stays in arrival order, which is offset order per partition. */
    job_t **tail = &w->jobs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    w->jobs_cnt++;
    return j;
}

void worker_job_free(job_t *j) {
    if (!j)
        return;
    gq_request_release(&j->req);
    json_decref(j->workflow);
    if (j->has_result)
        gq_completed_release(&j->result);
    free(j->payload);
    free(j);
}

void worker_job_remove(gq_worker_t *w, job_t *j) {
    for (job_t **pp = &w->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            w->jobs_cnt--;
            return;
        }
    }
}

job_t *worker_job_find(gq_worker_t *w, const char *job_id) {
    for (job_t *j = w->jobs; j; j = j->next)
        if (strcmp(j->job_id, job_id) == 0)
            return j;
    return NULL;
}

size_t worker_jobs_in_comfy(const gq_worker_t *w) {
    size_t n = 0;
    for (const job_t *j = w->jobs; j; j = j->next)
        if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
            n++;
    return n;
}

/* Connects the recorder. With start_wait, an unreachable or not yet migrated PostgreSQL is
 * retried (a migration Job may still be running; the database may still be starting) while
 * /healthz says alive and /readyz says why not ready, instead of a crash loop. */
static gq_status_t worker_connect_db(gq_worker_t *w, volatile sig_atomic_t *stop, char *errstr,
                                     size_t errstr_size) {
    int64_t deadline = gq_mono_ms() + gq_cfg_int(w->cfg, "start_wait") * 1000;
    int backoff_ms = 500;
    gq_status_t st;
    for (;;) {
        w->rec = gq_recorder_new(gq_cfg_str(w->cfg, "database_url"), &st, errstr, errstr_size);
        if (w->rec)
            return GQ_OK;
        int64_t left = deadline - gq_mono_ms();
        if ((st != GQ_ERR_TRANSIENT && st != GQ_ERR_NOTFOUND) || left <= 0 || (stop && *stop))
            return st;
        char why[300];
        snprintf(why, sizeof(why), "waiting for PostgreSQL: %s", errstr);
        gq_metrics_set_ready(w->metrics, false, why);
        gq_warn("%s (retrying for %lld s more)", errstr, (long long)(left / 1000));
        for (int64_t until = gq_mono_ms() + backoff_ms; gq_mono_ms() < until && !(stop && *stop);) {
            gq_metrics_heartbeat(w->metrics);
            gq_sleep_ms(100);
        }
        backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
    }
}

gq_worker_t *gq_worker_new(const gq_cfg_t *cfg, volatile sig_atomic_t *stop, gq_status_t *st,
                           char *errstr, size_t errstr_size) {
    gq_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        *st = GQ_ERR_NOMEM;
        return NULL;
    }
    w->cfg = cfg;
    w->group = gq_cfg_str(cfg, "group");
    w->topic = gq_cfg_str(cfg, "requests_topic");
    if (gq_cfg_isset(cfg, "worker_id")) {
        gq_strlcpy(w->worker_id, gq_cfg_str(cfg, "worker_id"), sizeof(w->worker_id));
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        snprintf(w->worker_id, sizeof(w->worker_id), "%s-%d", host, (int)getpid());
    }
    gq_uuid_v4(w->client_id);
    gq_strlcpy(w->workflows_dir, gq_cfg_str(cfg, "workflows_dir"), sizeof(w->workflows_dir));
    w->queue_depth = (int)gq_cfg_int(cfg, "queue_depth");
    w->job_timeout_s = (int)gq_cfg_int(cfg, "job_timeout");
    w->stall_timeout_s = (int)gq_cfg_int(cfg, "stall_timeout");
    w->max_attempts = (int)gq_cfg_int(cfg, "max_attempts");
    w->max_output_bytes = gq_cfg_int(cfg, "max_output_bytes");
    /* Enough jobs on hand to keep ComfyUI's queue full while finished ones are recorded. */
    w->max_jobs = (size_t)(1 + w->queue_depth + 2);

    *st = gq_schema_init(errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    w->metrics = gq_metrics_new();
    if (gq_cfg_isset(cfg, "http_listen")) {
        /* A loop stuck this long is dead: the slowest call it makes is bounded well below. */
        *st = gq_metrics_listen(w->metrics, gq_cfg_str(cfg, "http_listen"), 120000, errstr,
                                errstr_size);
        if (*st != GQ_OK)
            goto fail;
        gq_info("health and metrics on %s (port %d)", gq_cfg_str(cfg, "http_listen"),
                gq_metrics_port(w->metrics));
    }
    *st = worker_connect_db(w, stop, errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    *st = gq_store_init(&w->store, gq_cfg_str(cfg, "output_dir"),
                        gq_cfg_str(cfg, "output_url_prefix"), errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    gq_comfy_opts_t co = {.base_url = gq_cfg_str(cfg, "comfyui_url"), .client_id = w->client_id};
    w->comfy = gq_comfy_new(&co, errstr, errstr_size);
    if (!w->comfy) {
        *st = GQ_ERR_INVALID;
        goto fail;
    }
    *st = finish_init(w, errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    *st = intake_init(w, errstr, errstr_size);
    if (*st != GQ_OK)
        goto fail;
    return w;
fail:
    gq_worker_destroy(w);
    return NULL;
}

void gq_worker_destroy(gq_worker_t *w) {
    if (!w)
        return;
    if (w->consumer) {
        rd_kafka_destroy(w->consumer);
        w->consumer = NULL;
    }
    finish_close(w);
    while (w->jobs) {
        job_t *j = w->jobs;
        worker_job_remove(w, j);
        worker_job_free(j);
    }
    gq_comfy_destroy(w->comfy);
    gq_recorder_destroy(w->rec);
    gq_metrics_destroy(w->metrics);
    free(w);
}

/* SIGTERM: take nothing new; what was not started yet is left for redelivery. */
static void worker_begin_stop(gq_worker_t *w) {
    w->stopping = true;
    intake_flow_control(w);
    for (job_t *j = w->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->state == JOB_NEW || j->state == JOB_READY || j->state == JOB_BACKOFF ||
            j->state == JOB_QUEUED)
            render_cancel(w, j);
    }
}

static void worker_events(gq_worker_t *w, int wait_ms) {
    char err[512];
    for (int n = 0; n < 64; n++) {
        gq_comfy_event_t ev;
        gq_status_t st = gq_comfy_ws_next(w->comfy, n == 0 ? wait_ms : 0, &ev, err, sizeof(err));
        if (st == GQ_OK) {
            render_on_event(w, &ev);
            continue;
        }
        if (st != GQ_ERR_TIMEOUT) {
            gq_warn("ComfyUI WebSocket dropped: %s", err);
            gq_comfy_ws_close(w->comfy);
            w->comfy_retry_mono = gq_mono_ms() + 200;
        }
        return;
    }
}

/* Readiness (Kafka, PostgreSQL, ComfyUI reachable; warm-up done), GPU memory and the lag
 * of our partitions, for the endpoint. Cheap: cached watermarks, one HTTP call, one query. */
static void worker_health(gq_worker_t *w) {
    char err[512];
    gq_comfy_stats_t cs = {0};
    bool comfy = gq_comfy_system_stats(w->comfy, &cs, err, sizeof(err)) == GQ_OK;
    gq_metrics_comfy(w->metrics, comfy, cs.vram_total - cs.vram_free, cs.vram_total);
    bool pg = gq_recorder_ping(w->rec, err, sizeof(err)) == GQ_OK;
    bool kafka = rd_kafka_controllerid(w->consumer, 0) >= 0;
    const char *why = !w->warmed_up ? "warming up"
                      : !comfy      ? "ComfyUI unreachable"
                      : !pg         ? "PostgreSQL unreachable"
                      : !kafka      ? "Kafka unreachable"
                      : w->stopping ? "stopping"
                                    : NULL;
    gq_metrics_set_ready(w->metrics, why == NULL, why);
    gq_metrics_in_flight(w->metrics, (int)w->jobs_cnt);
    gq_metrics_lag_clear(w->metrics);
    for (int p = 0; p < WORKER_MAX_PARTS; p++) {
        int64_t lo, hi;
        if (!w->parts[p].assigned ||
            rd_kafka_get_watermark_offsets(w->consumer, w->topic, p, &lo, &hi) || hi < 0)
            continue;
        int64_t at = w->parts[p].next_commit >= 0 ? w->parts[p].next_commit : lo;
        gq_metrics_lag(w->metrics, w->topic, p, hi > at ? hi - at : 0);
    }
}

gq_worker_end_t gq_worker_run(gq_worker_t *w, volatile sig_atomic_t *stop) {
    int grace_ms = (int)gq_cfg_int(w->cfg, "grace_period") * 1000;
    int64_t stop_deadline = 0, last_stats = gq_mono_ms();
    bool interrupted = false;
    gq_info("worker %s: group %s, topic %s, ComfyUI %s, %d prompt(s) queued ahead", w->worker_id,
            w->group, w->topic, gq_cfg_str(w->cfg, "comfyui_url"), w->queue_depth);
    render_warmup(w, stop);
    w->warmed_up = true;
    while (!w->fatal) {
        int64_t now = gq_mono_ms();
        gq_metrics_heartbeat(w->metrics);
        if (now >= w->health_mono) {
            w->health_mono = now + 5000;
            worker_health(w);
        }
        if (*stop && !w->stopping) {
            gq_info("stopping: finishing %zu running render(s) within %d s",
                    worker_jobs_in_comfy(w), grace_ms / 1000);
            worker_begin_stop(w);
            stop_deadline = now + grace_ms;
        }
        if (w->stopping) {
            if (!w->jobs)
                break;
            if (now >= stop_deadline && !interrupted) {
                gq_warn("grace period over: interrupting %zu render(s)", worker_jobs_in_comfy(w));
                for (job_t *j = w->jobs, *nx; j; j = nx) {
                    nx = j->next;
                    if (j->state == JOB_QUEUED || j->state == JOB_RUNNING) {
                        render_cancel(w, j);
                        interrupted = true;
                    }
                }
                interrupted = true;
            }
            if (now >= stop_deadline + WORKER_FINISH_GRACE_MS) {
                gq_err("%zu job(s) could not be recorded before exit; they will be redelivered",
                       w->jobs_cnt);
                break;
            }
        }
        bool busy = worker_jobs_in_comfy(w) > 0;
        intake_poll(w, busy || !gq_comfy_ws_connected(w->comfy) ? 0 : WORKER_EVENT_WAIT_MS);
        for (job_t *j = w->jobs, *nx; j; j = nx) {
            nx = j->next;
            if (j->state == JOB_NEW)
                intake_process(w, j);
        }
        render_pump(w);
        if (gq_comfy_ws_connected(w->comfy))
            worker_events(w, busy ? WORKER_EVENT_WAIT_MS : 0);
        else if (busy)
            gq_sleep_ms(WORKER_EVENT_WAIT_MS);
        render_check(w);
        finish_poll(w);
        if (now - last_stats >= WORKER_STATS_EVERY_MS) {
            last_stats = now;
            gq_info("in flight %zu, succeeded %llu, failed %llu, retries %llu, skipped %llu, "
                    "adopted %llu, rejected %llu",
                    w->jobs_cnt, (unsigned long long)w->n_succeeded,
                    (unsigned long long)w->n_failed, (unsigned long long)w->n_retries,
                    (unsigned long long)w->n_skipped, (unsigned long long)w->n_adopted,
                    (unsigned long long)w->n_rejected);
        }
    }
    intake_close(w);
    finish_close(w);
    if (w->fatal)
        return GQ_WORKER_FATAL;
    return interrupted ? GQ_WORKER_INTERRUPTED : GQ_WORKER_DRAINED;
}
