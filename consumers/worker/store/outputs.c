/*
 * One interface over the file store and the S3 store (see outputs.h).
 */
#include "outputs.h"

#include "log.h"
#include "s3.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A put for the file store's thread: the bytes, then the answer. */
typedef struct outputs_put {
    struct outputs_put *next;
    gq_buf_t data;
    gq_outputs_done_t done;
} outputs_put_t;

typedef struct outputs_list {
    outputs_put_t *head, *tail;
    size_t cnt;
} outputs_list_t;

struct gq_outputs {
    gq_store_t files;
    gq_s3_t *s3;
    bool presign;
    char describe[600];
    /* Answers decided at once on the loop's thread (a put S3 refused before starting). */
    gq_outputs_done_t *done;
    size_t done_cnt, done_cap;
    /* The file store writes on a thread of its own: a file costs two fsyncs, which take tens
     * of milliseconds on a network disk, and the loop must not stop meanwhile (WebSocket
     * frames, Kafka, the next prompt). One thread, so puts are stored in order. `mu` guards
     * the lists and `stopping`; `efd` (an eventfd) counts answers not yet taken. */
    pthread_t thread;
    bool thread_up, stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    outputs_list_t todo, answered;
    size_t writing;
    int efd;
};

static void outputs_list_push(outputs_list_t *l, outputs_put_t *p) {
    p->next = NULL;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->cnt++;
}

static outputs_put_t *outputs_list_pop(outputs_list_t *l) {
    outputs_put_t *p = l->head;
    if (!p)
        return NULL;
    l->head = p->next;
    if (!l->head)
        l->tail = NULL;
    l->cnt--;
    p->next = NULL;
    return p;
}

static void outputs_list_free(outputs_list_t *l) {
    outputs_put_t *p;
    while ((p = outputs_list_pop(l))) {
        gq_buf_release(&p->data);
        free(p);
    }
}

static void *outputs_writer(void *arg) {
    gq_outputs_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->todo.head && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->stopping)
            break;
        outputs_put_t *p = outputs_list_pop(&o->todo);
        o->writing++;
        pthread_mutex_unlock(&o->mu);
        p->done.status = gq_store_put(&o->files, p->data.data, p->data.len, &p->done.stored,
                                      p->done.errstr, sizeof(p->done.errstr));
        gq_buf_release(&p->data);
        pthread_mutex_lock(&o->mu);
        o->writing--;
        outputs_list_push(&o->answered, p);
        uint64_t one = 1;
        /* Cannot fail short of a full counter (2^64 - 1 answers untaken). */
        if (write(o->efd, &one, sizeof(one)) < 0)
            gq_err("output store: eventfd: %s", strerror(errno));
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static gq_status_t outputs_start_writer(gq_outputs_t *o, char *errstr, size_t errstr_size) {
    o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (o->efd < 0) {
        gq_errf(errstr, errstr_size, "eventfd: %s", strerror(errno));
        return GQ_ERR;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    int rc = pthread_create(&o->thread, NULL, outputs_writer, o);
    if (rc != 0) {
        gq_errf(errstr, errstr_size, "cannot start the output store's thread: %s", strerror(rc));
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        close(o->efd);
        o->efd = -1;
        return GQ_ERR;
    }
    o->thread_up = true;
    return GQ_OK;
}

gq_outputs_t *gq_outputs_new(const gq_cfg_t *cfg, gq_xfer_host_t *host, gq_status_t *st,
                             char *errstr, size_t errstr_size) {
    gq_outputs_t *o = calloc(1, sizeof(*o));
    if (!o) {
        *st = GQ_ERR_NOMEM;
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    o->efd = -1;
    const char *url = gq_cfg_str(cfg, "output_url");
    if (url && *url && strncmp(url, "file://", 7) != 0) {
        gq_s3_opts_t so = {
            .url = url,
            .endpoint = gq_cfg_str(cfg, "s3_endpoint"),
            .region = gq_cfg_str(cfg, "s3_region"),
            .path_style = gq_cfg_bool(cfg, "s3_path_style"),
            .access_key = gq_cfg_str(cfg, "s3_access_key_id"),
            .secret_key = gq_cfg_str(cfg, "s3_secret_access_key"),
            .session_token = gq_cfg_str(cfg, "s3_session_token"),
            .credentials_dir = gq_cfg_str(cfg, "s3_credentials_dir"),
            .part_size = gq_cfg_int(cfg, "s3_part_size"),
            .presign_s = (int)gq_cfg_int(cfg, "s3_presign"),
            .ca_file = gq_cfg_str(cfg, "s3_ca_file"),
        };
        o->s3 = gq_s3_new(&so, host, errstr, errstr_size);
        if (!o->s3) {
            *st = GQ_ERR_INVALID;
            free(o);
            return NULL;
        }
        o->presign = so.presign_s > 0;
        snprintf(o->describe, sizeof(o->describe), "%s", url);
        *st = GQ_OK;
        return o;
    }
    const char *dir = gq_cfg_str(cfg, "output_dir");
    if (url && strncmp(url, "file://", 7) == 0)
        dir = url + 7;
    *st = gq_store_init(&o->files, dir, gq_cfg_str(cfg, "output_url_prefix"), errstr, errstr_size);
    if (*st == GQ_OK)
        *st = outputs_start_writer(o, errstr, errstr_size);
    if (*st != GQ_OK) {
        free(o);
        return NULL;
    }
    snprintf(o->describe, sizeof(o->describe), "%s", o->files.url_prefix);
    return o;
}

void gq_outputs_destroy(gq_outputs_t *o) {
    if (!o)
        return;
    if (o->thread_up) {
        /* The file being written is finished (a put is never cut short); the rest are not. */
        pthread_mutex_lock(&o->mu);
        o->stopping = true;
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
        outputs_list_free(&o->todo);
        outputs_list_free(&o->answered);
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
    }
    if (o->efd >= 0)
        close(o->efd);
    gq_s3_destroy(o->s3);
    free(o->done);
    free(o);
}

int gq_outputs_fd(const gq_outputs_t *o) { return o->efd; }

static gq_outputs_done_t *outputs_slot(gq_outputs_t *o) {
    if (o->done_cnt == o->done_cap) {
        size_t cap = o->done_cap ? o->done_cap * 2 : 8;
        gq_outputs_done_t *d = realloc(o->done, cap * sizeof(*d));
        if (!d)
            return NULL;
        o->done = d;
        o->done_cap = cap;
    }
    gq_outputs_done_t *d = &o->done[o->done_cnt++];
    memset(d, 0, sizeof(*d));
    return d;
}

void gq_outputs_put(gq_outputs_t *o, gq_buf_t *data, uint64_t tag, int idx) {
    if (!o->s3) {
        outputs_put_t *p = calloc(1, sizeof(*p));
        if (!p) {
            gq_err("out of memory storing output %d of job #%llu", idx, (unsigned long long)tag);
            gq_buf_release(data);
            return;
        }
        p->data = *data; /* taken: the caller's is left empty */
        gq_buf_init(data, data->max);
        p->done.tag = tag;
        p->done.idx = idx;
        pthread_mutex_lock(&o->mu);
        outputs_list_push(&o->todo, p);
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        return;
    }
    gq_outputs_done_t *d = outputs_slot(o);
    if (!d) {
        /* No room even to say so: the job's output never answers, and its stall check and
         * the grace period at shutdown still end it (redelivered). */
        gq_err("out of memory storing output %d of job #%llu", idx, (unsigned long long)tag);
        gq_buf_release(data);
        return;
    }
    d->tag = tag;
    d->idx = idx;
    d->status = gq_s3_put(o->s3, data, tag, idx, d->errstr, sizeof(d->errstr));
    if (d->status == GQ_OK)
        o->done_cnt--; /* the answer comes from S3 */
    gq_buf_release(data);
}

/* The file store's next answer, if any; the eventfd is read once none is left, so it stays
 * readable exactly while one waits. */
static bool outputs_take_answer(gq_outputs_t *o, gq_outputs_done_t *out) {
    pthread_mutex_lock(&o->mu);
    outputs_put_t *p = outputs_list_pop(&o->answered);
    if (!o->answered.head) {
        uint64_t n;
        if (read(o->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
            gq_err("output store: eventfd: %s", strerror(errno));
    }
    pthread_mutex_unlock(&o->mu);
    if (!p)
        return false;
    *out = p->done;
    free(p);
    return true;
}

bool gq_outputs_next_done(gq_outputs_t *o, gq_outputs_done_t *out) {
    if (o->done_cnt > 0) {
        *out = o->done[0];
        memmove(o->done, o->done + 1, (o->done_cnt - 1) * sizeof(*o->done));
        o->done_cnt--;
        return true;
    }
    if (!o->s3)
        return outputs_take_answer(o, out);
    gq_s3_done_t d;
    if (!gq_s3_next_done(o->s3, &d))
        return false;
    out->tag = d.tag;
    out->idx = d.idx;
    out->status = d.status;
    memcpy(out->errstr, d.errstr, sizeof(out->errstr));
    out->stored = d.stored;
    return true;
}

void gq_outputs_service(gq_outputs_t *o, int64_t now_mono) {
    if (o->s3)
        gq_s3_service(o->s3, now_mono);
}

int64_t gq_outputs_wake(const gq_outputs_t *o) {
    if (o->done_cnt)
        return 0;
    return o->s3 ? gq_s3_wake(o->s3) : INT64_MAX;
}

void gq_outputs_stats(gq_outputs_t *o, int64_t *waiting, uint64_t *failures) {
    *waiting = (int64_t)o->done_cnt + (o->s3 ? (int64_t)gq_s3_pending(o->s3) : 0);
    if (o->thread_up) {
        pthread_mutex_lock(&o->mu);
        *waiting += (int64_t)(o->todo.cnt + o->writing + o->answered.cnt);
        pthread_mutex_unlock(&o->mu);
    }
    *failures = o->s3 ? gq_s3_failures(o->s3) : 0;
}

bool gq_outputs_ok(const gq_outputs_t *o) { return !o->s3 || !gq_s3_failing(o->s3); }

const char *gq_outputs_describe(const gq_outputs_t *o) { return o->describe; }

gq_status_t gq_outputs_event_uri(gq_outputs_t *o, const char *uri, char *out, size_t out_size,
                                 char *errstr, size_t errstr_size) {
    if (o->s3 && o->presign && strncmp(uri, "s3://", 5) == 0)
        return gq_s3_presign(o->s3, uri, 0, out, out_size, errstr, errstr_size);
    if (gq_strlcpy(out, uri, out_size) != GQ_OK) {
        gq_errf(errstr, errstr_size, "output URI too long");
        return GQ_ERR_TOOBIG;
    }
    return GQ_OK;
}
