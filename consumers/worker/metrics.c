/* The worker's metrics registry (see metrics.h); endpoint.c serves it over HTTP. */
#include "metrics.h"
#include "lanes.h"
#include "buf.h"
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M_MAX_MODELS 64 /* beyond this, models are folded into "other" */
#define M_MAX_REASONS 32
#define M_MAX_PARTS 1024
#define M_MAX_TENANTS 32 /* beyond this, tenants are folded into "other" */
#define M_NBUCKETS 14

static const double m_buckets[M_NBUCKETS] = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,
                                             10,   30,  60,   120, 300, 600, 1800};

typedef struct m_hist {
    uint64_t counts[M_NBUCKETS + 1];
    double sum;
    uint64_t n;
} m_hist_t;

typedef struct m_model {
    char name[128];
    uint64_t succeeded, failed, cancelled;
    m_hist_t queue, render, total;
} m_model_t;

/* Time held ready while others rendered (a summary: sum and count). */
typedef struct m_wait {
    char label[130];
    double sum;
    uint64_t n;
} m_wait_t;

typedef struct m_counter {
    char label[64];
    uint64_t n;
} m_counter_t;

struct gq_metrics {
    pthread_mutex_t lock;
    m_model_t models[M_MAX_MODELS + 1];
    size_t models_cnt;
    m_counter_t retries[M_MAX_REASONS], dead[M_MAX_REASONS];
    size_t retries_cnt, dead_cnt;
    int in_flight;
    bool comfy_up, ready;
    char why_not[256];
    int64_t vram_used, vram_total;
    char last_model[128];
    uint64_t swaps;
    char lag_topic[GQ_LANES_MAX][256]; /* per lane: lanes are topics */
    int lag_topics;
    uint64_t cache_hits, cache_misses;
    uint64_t progress_sent, progress_dropped, cancels_read;
    unsigned producer_restarts[2]; /* the record's producer, the progress producer */
    m_wait_t lane_wait[GQ_LANES_MAX];
    m_wait_t tenant_wait[M_MAX_TENANTS + 1]; /* the last one: every other tenant */
    size_t tenants_cnt;
    int64_t outbox_pending, outbox_parked;
    uint64_t sched_picks[4];
    double outbox_oldest_s;
    int64_t outputs_waiting;
    uint64_t outputs_failures;
    int64_t lag[GQ_LANES_MAX][M_MAX_PARTS];
    bool lag_set[GQ_LANES_MAX][M_MAX_PARTS];
    int64_t heartbeat_mono, heartbeat_wall;
};

gq_metrics_t *gq_metrics_new(void) {
    gq_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->heartbeat_mono = gq_mono_ms();
    m->heartbeat_wall = gq_now_ms();
    gq_strlcpy(m->why_not, "starting", sizeof(m->why_not));
    return m;
}

void gq_metrics_destroy(gq_metrics_t *m) {
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static void m_hist_add(m_hist_t *h, double v) {
    size_t i = 0;
    while (i < M_NBUCKETS && v > m_buckets[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

static m_model_t *m_model(gq_metrics_t *m, const char *name) {
    if (!name || !*name)
        name = "unknown";
    for (size_t i = 0; i < m->models_cnt; i++)
        if (strcmp(m->models[i].name, name) == 0)
            return &m->models[i];
    if (m->models_cnt == M_MAX_MODELS) {
        m_model_t *other = &m->models[M_MAX_MODELS];
        if (!other->name[0])
            gq_strlcpy(other->name, "other", sizeof(other->name));
        return other;
    }
    m_model_t *x = &m->models[m->models_cnt++];
    gq_strlcpy(x->name, name, sizeof(x->name));
    return x;
}

static void m_count(m_counter_t *c, size_t *cnt, const char *label) {
    for (size_t i = 0; i < *cnt; i++)
        if (strcmp(c[i].label, label) == 0) {
            c[i].n++;
            return;
        }
    if (*cnt < M_MAX_REASONS) {
        gq_strlcpy(c[*cnt].label, label, sizeof(c[*cnt].label));
        c[(*cnt)++].n = 1;
    }
}

void gq_metrics_heartbeat(gq_metrics_t *m) {
    pthread_mutex_lock(&m->lock);
    m->heartbeat_mono = gq_mono_ms();
    m->heartbeat_wall = gq_now_ms();
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_set_ready(gq_metrics_t *m, bool ready, const char *why_not) {
    pthread_mutex_lock(&m->lock);
    m->ready = ready;
    gq_strlcpy(m->why_not, why_not ? why_not : "", sizeof(m->why_not));
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_job_done(gq_metrics_t *m, const char *model, bool succeeded, double queue_s,
                         double render_s, double total_s) {
    pthread_mutex_lock(&m->lock);
    m_model_t *x = m_model(m, model);
    if (succeeded)
        x->succeeded++;
    else
        x->failed++;
    m_hist_add(&x->queue, queue_s);
    if (succeeded)
        m_hist_add(&x->render, render_s);
    m_hist_add(&x->total, total_s);
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_job_cancelled(gq_metrics_t *m, const char *model) {
    pthread_mutex_lock(&m->lock);
    m_model(m, model)->cancelled++;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_progress(gq_metrics_t *m, uint64_t sent, uint64_t dropped) {
    pthread_mutex_lock(&m->lock);
    m->progress_sent = sent;
    m->progress_dropped = dropped;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_producer_restarts(gq_metrics_t *m, unsigned record, unsigned progress) {
    pthread_mutex_lock(&m->lock);
    m->producer_restarts[0] = record;
    m->producer_restarts[1] = progress;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_cancel_read(gq_metrics_t *m) {
    pthread_mutex_lock(&m->lock);
    m->cancels_read++;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_retry(gq_metrics_t *m, const char *reason) {
    pthread_mutex_lock(&m->lock);
    m_count(m->retries, &m->retries_cnt, reason);
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_dead_letter(gq_metrics_t *m, const char *reason) {
    pthread_mutex_lock(&m->lock);
    m_count(m->dead, &m->dead_cnt, reason);
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_in_flight(gq_metrics_t *m, int n) {
    pthread_mutex_lock(&m->lock);
    m->in_flight = n;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_comfy(gq_metrics_t *m, bool up, int64_t vram_used, int64_t vram_total) {
    pthread_mutex_lock(&m->lock);
    m->comfy_up = up;
    if (up) {
        m->vram_used = vram_used;
        m->vram_total = vram_total;
    }
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_model_used(gq_metrics_t *m, const char *model) {
    if (!model)
        return;
    pthread_mutex_lock(&m->lock);
    if (m->last_model[0] && strcmp(m->last_model, model) != 0)
        m->swaps++;
    gq_strlcpy(m->last_model, model, sizeof(m->last_model));
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_sched_pick(gq_metrics_t *m, int why) {
    if (why < 0 || why >= 4)
        return;
    pthread_mutex_lock(&m->lock);
    m->sched_picks[why]++;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_outbox(gq_metrics_t *m, int64_t pending, int64_t parked, double oldest_s) {
    pthread_mutex_lock(&m->lock);
    m->outbox_pending = pending;
    m->outbox_parked = parked;
    m->outbox_oldest_s = oldest_s;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_outputs(gq_metrics_t *m, int64_t waiting, uint64_t failures) {
    pthread_mutex_lock(&m->lock);
    m->outputs_waiting = waiting;
    m->outputs_failures = failures;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_lag(gq_metrics_t *m, const char *topic, int32_t partition, int64_t lag) {
    if (partition < 0 || partition >= M_MAX_PARTS)
        return;
    pthread_mutex_lock(&m->lock);
    int t = 0;
    while (t < m->lag_topics && strcmp(m->lag_topic[t], topic) != 0)
        t++;
    if (t == m->lag_topics && t < GQ_LANES_MAX)
        gq_strlcpy(m->lag_topic[m->lag_topics++], topic, sizeof(m->lag_topic[0]));
    if (t < m->lag_topics) {
        m->lag[t][partition] = lag;
        m->lag_set[t][partition] = true;
    }
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_lag_clear(gq_metrics_t *m) {
    pthread_mutex_lock(&m->lock);
    memset(m->lag_set, 0, sizeof(m->lag_set));
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_cache(gq_metrics_t *m, bool hit) {
    pthread_mutex_lock(&m->lock);
    if (hit)
        m->cache_hits++;
    else
        m->cache_misses++;
    pthread_mutex_unlock(&m->lock);
}

void gq_metrics_sched_wait(gq_metrics_t *m, const char *lane, const char *tenant, double wait_s) {
    pthread_mutex_lock(&m->lock);
    for (int i = 0; lane && i < GQ_LANES_MAX; i++) {
        if (m->lane_wait[i].label[0] && strcmp(m->lane_wait[i].label, lane) != 0)
            continue;
        if (!m->lane_wait[i].label[0])
            gq_strlcpy(m->lane_wait[i].label, lane, sizeof(m->lane_wait[i].label));
        m->lane_wait[i].sum += wait_s;
        m->lane_wait[i].n++;
        break;
    }
    size_t k = 0;
    if (!tenant)
        tenant = "";
    while (k < m->tenants_cnt && strcmp(m->tenant_wait[k].label, tenant) != 0)
        k++;
    if (k == m->tenants_cnt) {
        if (m->tenants_cnt < M_MAX_TENANTS)
            gq_strlcpy(m->tenant_wait[m->tenants_cnt++].label, tenant,
                       sizeof(m->tenant_wait[0].label));
        else
            gq_strlcpy(m->tenant_wait[k = M_MAX_TENANTS].label, "other",
                       sizeof(m->tenant_wait[0].label));
    }
    m->tenant_wait[k].sum += wait_s;
    m->tenant_wait[k].n++;
    pthread_mutex_unlock(&m->lock);
}

/* Label values: backslash, double quote and newline escaped, as the format requires. */
static void m_label(gq_buf_t *b, const char *s);

static void m_wait_render(gq_buf_t *b, const char *name, const char *key, const m_wait_t *w) {
    gq_buf_appendf(b, "%s_sum{%s=\"", name, key);
    m_label(b, w->label);
    gq_buf_appendf(b, "\"} %.3f\n%s_count{%s=\"", w->sum, name, key);
    m_label(b, w->label);
    gq_buf_appendf(b, "\"} %llu\n", (unsigned long long)w->n);
}

static void m_label(gq_buf_t *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            gq_buf_appendf(b, "\\%c", *s);
        else if (*s == '\n')
            gq_buf_appends(b, "\\n");
        else
            gq_buf_append(b, s, 1);
    }
}

static void m_head(gq_buf_t *b, const char *name, const char *type, const char *help) {
    gq_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void m_hist_out(gq_buf_t *b, const char *name, const char *model, const m_hist_t *h) {
    uint64_t cum = 0;
    for (size_t i = 0; i <= M_NBUCKETS; i++) {
        cum += h->counts[i];
        gq_buf_appendf(b, "%s_bucket{model=\"", name);
        m_label(b, model);
        if (i < M_NBUCKETS)
            gq_buf_appendf(b, "\",le=\"%g\"} %llu\n", m_buckets[i], (unsigned long long)cum);
        else
            gq_buf_appendf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    gq_buf_appendf(b, "%s_sum{model=\"", name);
    m_label(b, model);
    gq_buf_appendf(b, "\"} %.6f\n%s_count{model=\"", h->sum, name);
    m_label(b, model);
    gq_buf_appendf(b, "\"} %llu\n", (unsigned long long)h->n);
}

char *gq_metrics_render(gq_metrics_t *m) {
    gq_buf_t b;
    gq_buf_init(&b, 16u << 20);
    pthread_mutex_lock(&m->lock);
    size_t nm = m->models_cnt + (m->models[M_MAX_MODELS].name[0] ? 1 : 0);
    m_head(&b, "genq_jobs_total", "counter", "Jobs that reached a terminal state.");
    for (size_t i = 0; i < nm; i++) {
        const m_model_t *x = i < m->models_cnt ? &m->models[i] : &m->models[M_MAX_MODELS];
        const char *st[3] = {"succeeded", "failed", "cancelled"};
        uint64_t v[3] = {x->succeeded, x->failed, x->cancelled};
        for (int k = 0; k < 3; k++) {
            gq_buf_appendf(&b, "genq_jobs_total{status=\"%s\",model=\"", st[k]);
            m_label(&b, x->name);
            gq_buf_appendf(&b, "\"} %llu\n", (unsigned long long)v[k]);
        }
    }
    const char *hn[3] = {"genq_queue_wait_seconds", "genq_render_duration_seconds",
                         "genq_job_duration_seconds"};
    const char *hh[3] = {"Time from submission to render start.", "Render time on the GPU.",
                         "Time from submission to the terminal record."};
    for (int k = 0; k < 3; k++) {
        m_head(&b, hn[k], "histogram", hh[k]);
        for (size_t i = 0; i < nm; i++) {
            const m_model_t *x = i < m->models_cnt ? &m->models[i] : &m->models[M_MAX_MODELS];
            m_hist_out(&b, hn[k], x->name, k == 0 ? &x->queue : k == 1 ? &x->render : &x->total);
        }
    }
    m_head(&b, "genq_jobs_in_flight", "gauge", "Jobs taken from Kafka and not finished.");
    gq_buf_appendf(&b, "genq_jobs_in_flight %d\n", m->in_flight);
    m_head(&b, "genq_retries_total", "counter", "Attempts that failed and were retried.");
    for (size_t i = 0; i < m->retries_cnt; i++)
        gq_buf_appendf(&b, "genq_retries_total{reason=\"%s\"} %llu\n", m->retries[i].label,
                       (unsigned long long)m->retries[i].n);
    m_head(&b, "genq_dead_letters_total", "counter", "Messages sent to the dead-letter topic.");
    for (size_t i = 0; i < m->dead_cnt; i++)
        gq_buf_appendf(&b, "genq_dead_letters_total{reason=\"%s\"} %llu\n", m->dead[i].label,
                       (unsigned long long)m->dead[i].n);
    m_head(&b, "genq_comfyui_up", "gauge", "1 when ComfyUI answered the last check.");
    gq_buf_appendf(&b, "genq_comfyui_up %d\n", m->comfy_up ? 1 : 0);
    m_head(&b, "genq_gpu_memory_used_bytes", "gauge", "GPU memory in use (ComfyUI /system_stats).");
    gq_buf_appendf(&b, "genq_gpu_memory_used_bytes %lld\n", (long long)m->vram_used);
    m_head(&b, "genq_gpu_memory_total_bytes", "gauge", "GPU memory (ComfyUI /system_stats).");
    gq_buf_appendf(&b, "genq_gpu_memory_total_bytes %lld\n", (long long)m->vram_total);
    m_head(&b, "genq_model_swaps_total", "counter",
           "Jobs whose checkpoint differed from the previous job's.");
    gq_buf_appendf(&b, "genq_model_swaps_total %llu\n", (unsigned long long)m->swaps);
    m_head(&b, "genq_consumer_lag", "gauge",
           "Messages behind the log end, per assigned partition.");
    for (int t = 0; t < m->lag_topics; t++)
        for (int p = 0; p < M_MAX_PARTS; p++) {
            if (!m->lag_set[t][p])
                continue;
            gq_buf_appends(&b, "genq_consumer_lag{topic=\"");
            m_label(&b, m->lag_topic[t]);
            gq_buf_appendf(&b, "\",partition=\"%d\"} %lld\n", p, (long long)m->lag[t][p]);
        }
    m_head(&b, "genq_sched_picks_total", "counter",
           "Jobs given a ComfyUI slot, by why: the oldest (fifo), waited its bound (aged), "
           "before older ones for the loaded model (affinity) or for another tenant (fair).");
    static const char *const whys[4] = {"fifo", "aged", "affinity", "fair"};
    for (int i = 0; i < 4; i++)
        gq_buf_appendf(&b, "genq_sched_picks_total{why=\"%s\"} %llu\n", whys[i],
                       (unsigned long long)m->sched_picks[i]);
    m_head(&b, "genq_cache_lookups_total", "counter",
           "Jobs looked up in the result cache: answered from an earlier job's outputs (hit) "
           "or rendered (miss).");
    gq_buf_appendf(&b, "genq_cache_lookups_total{result=\"hit\"} %llu\n",
                   (unsigned long long)m->cache_hits);
    gq_buf_appendf(&b, "genq_cache_lookups_total{result=\"miss\"} %llu\n",
                   (unsigned long long)m->cache_misses);
    m_head(&b, "genq_sched_wait_seconds", "summary",
           "Time a job was held ready while others had ComfyUI's slots, per lane.");
    for (int i = 0; i < GQ_LANES_MAX && m->lane_wait[i].label[0]; i++)
        m_wait_render(&b, "genq_sched_wait_seconds", "lane", &m->lane_wait[i]);
    m_head(&b, "genq_tenant_wait_seconds", "summary",
           "Time a job was held ready while others had ComfyUI's slots, per tenant (source; "
           "beyond 32 tenants, \"other\").");
    for (size_t i = 0; i <= M_MAX_TENANTS; i++)
        if (i < m->tenants_cnt || (i == M_MAX_TENANTS && m->tenant_wait[i].n))
            m_wait_render(&b, "genq_tenant_wait_seconds", "tenant", &m->tenant_wait[i]);
    m_head(&b, "genq_progress_events_total", "counter",
           "Progress events handed to Kafka (sent) or not (dropped: its queue was full).");
    gq_buf_appendf(&b, "genq_progress_events_total{result=\"sent\"} %llu\n",
                   (unsigned long long)m->progress_sent);
    gq_buf_appendf(&b, "genq_progress_events_total{result=\"dropped\"} %llu\n",
                   (unsigned long long)m->progress_dropped);
    m_head(&b, "genq_kafka_producer_restarts_total", "counter",
           "Kafka producers replaced because they delivered nothing for too long (a client "
           "left stuck after a broker restart).");
    gq_buf_appendf(&b, "genq_kafka_producer_restarts_total{producer=\"events\"} %u\n",
                   m->producer_restarts[0]);
    gq_buf_appendf(&b, "genq_kafka_producer_restarts_total{producer=\"progress\"} %u\n",
                   m->producer_restarts[1]);
    m_head(&b, "genq_cancel_requests_total", "counter",
           "Cancel requests read from the cancel topic (valid ones, for any job).");
    gq_buf_appendf(&b, "genq_cancel_requests_total %llu\n", (unsigned long long)m->cancels_read);
    m_head(&b, "genq_outbox_pending", "gauge",
           "Completion events and dead letters written and not yet acknowledged by Kafka.");
    gq_buf_appendf(&b, "genq_outbox_pending %lld\n", (long long)m->outbox_pending);
    m_head(&b, "genq_outbox_parked", "gauge",
           "Outbox messages set aside after failing to publish too often (see genq.outbox).");
    gq_buf_appendf(&b, "genq_outbox_parked %lld\n", (long long)m->outbox_parked);
    m_head(&b, "genq_outbox_oldest_seconds", "gauge",
           "Age of the oldest outbox message to publish.");
    gq_buf_appendf(&b, "genq_outbox_oldest_seconds %.3f\n", m->outbox_oldest_s);
    m_head(&b, "genq_output_uploads_waiting", "gauge",
           "Outputs fetched from ComfyUI and not yet stored (an object-store outage holds them).");
    gq_buf_appendf(&b, "genq_output_uploads_waiting %lld\n", (long long)m->outputs_waiting);
    m_head(&b, "genq_output_store_failures_total", "counter",
           "Object-store requests that failed and were retried.");
    gq_buf_appendf(&b, "genq_output_store_failures_total %llu\n",
                   (unsigned long long)m->outputs_failures);
    m_head(&b, "genq_ready", "gauge", "1 when Kafka, PostgreSQL and ComfyUI are reachable.");
    gq_buf_appendf(&b, "genq_ready %d\n", m->ready ? 1 : 0);
    m_head(&b, "genq_loop_last_turn_timestamp_seconds", "gauge",
           "When the worker loop last went round.");
    gq_buf_appendf(&b, "genq_loop_last_turn_timestamp_seconds %.3f\n",
                   (double)m->heartbeat_wall / 1000.0);
    pthread_mutex_unlock(&m->lock);
    return gq_buf_detach(&b, NULL);
}

bool gq_metrics_alive(gq_metrics_t *m, int stuck_after_ms) {
    pthread_mutex_lock(&m->lock);
    bool alive = gq_mono_ms() - m->heartbeat_mono <= stuck_after_ms;
    pthread_mutex_unlock(&m->lock);
    return alive;
}

bool gq_metrics_ready(gq_metrics_t *m, char *why, size_t why_size) {
    pthread_mutex_lock(&m->lock);
    bool ready = m->ready;
    snprintf(why, why_size, "%s", ready ? "ready" : m->why_not);
    pthread_mutex_unlock(&m->lock);
    return ready;
}
