/*
 * One interface over the file store and the S3 store (see outputs.h).
 */
#include "outputs.h"

#include "log.h"
#include "s3.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gq_outputs {
    gq_store_t files;
    gq_s3_t *s3;
    bool presign;
    char describe[600];
    /* the file store's outcomes, handed out in the same turn */
    gq_outputs_done_t *done;
    size_t done_cnt, done_cap;
};

gq_outputs_t *gq_outputs_new(const gq_cfg_t *cfg, gq_xfer_host_t *host, gq_status_t *st,
                             char *errstr, size_t errstr_size) {
    gq_outputs_t *o = calloc(1, sizeof(*o));
    if (!o) {
        *st = GQ_ERR_NOMEM;
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
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
    gq_s3_destroy(o->s3);
    free(o->done);
    free(o);
}

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
    if (o->s3) {
        d->status = gq_s3_put(o->s3, data, tag, idx, d->errstr, sizeof(d->errstr));
        if (d->status == GQ_OK)
            o->done_cnt--; /* the answer comes from S3 */
        gq_buf_release(data);
        return;
    }
    d->status =
        gq_store_put(&o->files, data->data, data->len, &d->stored, d->errstr, sizeof(d->errstr));
    gq_buf_release(data);
}

bool gq_outputs_next_done(gq_outputs_t *o, gq_outputs_done_t *out) {
    if (o->done_cnt > 0) {
        *out = o->done[0];
        memmove(o->done, o->done + 1, (o->done_cnt - 1) * sizeof(*o->done));
        o->done_cnt--;
        return true;
    }
    gq_s3_done_t d;
    if (!o->s3 || !gq_s3_next_done(o->s3, &d))
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

void gq_outputs_stats(const gq_outputs_t *o, int64_t *waiting, uint64_t *failures) {
    *waiting = (int64_t)o->done_cnt + (o->s3 ? (int64_t)gq_s3_pending(o->s3) : 0);
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
