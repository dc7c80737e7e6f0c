/*
 * GenerationRequest written straight to Avro binary, without building an avro-c value:
 * gq_request_encode() and the prepared requests (gq_request_prep_*). The bytes are those
 * avro-c writes (test_schema_prep compares them with gq_request_encode_avro() for many
 * random requests; test_schema_interop has python3-avro read them):
 *   int, long: zig-zag varint; double: 8 bytes little-endian; string: long length, bytes;
 *   ["null", X]: the branch index as a long (0 null, 1 X), then X;
 *   map: one block of all entries (long count, then key and value strings) unless empty,
 *   then the long 0 that ends the map.
 * Fields follow each other in .avsc order, which is gq_request_field_t's.
 */
#include "schema_int.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A writer that only counts while p is NULL, so that one function both sizes and writes. */
typedef struct enc {
    unsigned char *p;
    size_t n;
} enc_t;

static void enc_raw(enc_t *e, const void *data, size_t len) {
    if (e->p && len)
        memcpy(e->p + e->n, data, len);
    e->n += len;
}

static void enc_long(enc_t *e, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
    unsigned char b[10];
    size_t k = 0;
    while (z > 0x7f) {
        b[k++] = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    b[k++] = (unsigned char)z;
    enc_raw(e, b, k);
}

static void enc_double(enc_t *e, double d) {
    uint64_t u;
    unsigned char b[8];
    memcpy(&u, &d, sizeof(u));
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    enc_raw(e, b, sizeof(b));
}

static void enc_str(enc_t *e, const char *s) {
    size_t len = strlen(s);
    enc_long(e, (int64_t)len);
    enc_raw(e, s, len);
}

static void enc_opt_str(enc_t *e, const char *s) {
    enc_long(e, s ? 1 : 0);
    if (s)
        enc_str(e, s);
}

/* 0 stands for null in max_attempts and timeout_s. */
static void enc_opt_int(enc_t *e, int32_t v) {
    enc_long(e, v ? 1 : 0);
    if (v)
        enc_long(e, v);
}

static void enc_map(enc_t *e, const gq_kv_t *kv, size_t cnt) {
    if (cnt) {
        enc_long(e, (int64_t)cnt);
        for (size_t i = 0; i < cnt; i++) {
            enc_str(e, kv[i].key);
            enc_str(e, kv[i].value);
        }
    }
    enc_long(e, 0);
}

static const char *enc_or(const char *s, const char *dflt) { return s ? s : dflt; }

/* One field of r; the field must be encodable (request_field_check). */
static void request_field_write(enc_t *e, const gq_request_t *r, gq_request_field_t f) {
    switch (f) {
    case GQ_REQ_JOB_ID: enc_str(e, r->job_id); break;
    case GQ_REQ_SUBMITTED_AT: enc_long(e, r->submitted_at); break;
    case GQ_REQ_WORKFLOW: enc_str(e, enc_or(r->workflow, GQ_REQ_DEFAULT_WORKFLOW)); break;
    case GQ_REQ_WORKFLOW_JSON: enc_opt_str(e, r->workflow_json); break;
    case GQ_REQ_PROMPT: enc_str(e, r->prompt); break;
    case GQ_REQ_NEGATIVE_PROMPT: enc_str(e, enc_or(r->negative_prompt, "")); break;
    case GQ_REQ_WIDTH: enc_long(e, r->width); break;
    case GQ_REQ_HEIGHT: enc_long(e, r->height); break;
    case GQ_REQ_SEED: enc_long(e, r->seed); break;
    case GQ_REQ_STEPS: enc_long(e, r->steps); break;
    case GQ_REQ_CFG: enc_double(e, r->cfg); break;
    case GQ_REQ_SAMPLER: enc_str(e, enc_or(r->sampler, GQ_REQ_DEFAULT_SAMPLER)); break;
    case GQ_REQ_SCHEDULER: enc_str(e, enc_or(r->scheduler, GQ_REQ_DEFAULT_SCHEDULER)); break;
    case GQ_REQ_MODEL: enc_opt_str(e, r->model); break;
    case GQ_REQ_BATCH_SIZE: enc_long(e, r->batch_size); break;
    case GQ_REQ_OVERRIDES: enc_map(e, r->overrides, r->overrides_cnt); break;
    case GQ_REQ_PRIORITY: enc_long(e, r->priority); break;
    case GQ_REQ_SOURCE: enc_str(e, enc_or(r->source, "")); break;
    case GQ_REQ_MAX_ATTEMPTS: enc_opt_int(e, r->max_attempts); break;
    case GQ_REQ_TIMEOUT_S: enc_opt_int(e, r->timeout_s); break;
    case GQ_REQ_METADATA: enc_map(e, r->metadata, r->metadata_cnt); break;
    case GQ_REQ_FIELD_CNT: break;
    }
}

typedef struct kv_ref {
    const char *key;
    size_t i;
} kv_ref_t;

static int kv_ref_cmp(const void *a, const void *b) {
    const kv_ref_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* The index of the first entry among kv[0..n) whose key an earlier entry has, or n. The keys
 * are sorted (with their index) rather than compared pairwise, so a huge map costs
 * n log n. */
static gq_status_t map_first_dup(const gq_kv_t *kv, size_t n, size_t *dup) {
    *dup = n;
    if (n < 2)
        return GQ_OK;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(kv[i].key, kv[j].key) == 0) {
                    *dup = i;
                    return GQ_OK;
                }
        return GQ_OK;
    }
    kv_ref_t *refs = malloc(n * sizeof(*refs));
    if (!refs)
        return GQ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        refs[i] = (kv_ref_t){kv[i].key, i};
    qsort(refs, n, sizeof(*refs), kv_ref_cmp);
    /* In a run of equal keys, sorted by index, every entry but the first is a repeat. */
    for (size_t k = 1; k < n; k++)
        if (refs[k].i < *dup && strcmp(refs[k].key, refs[k - 1].key) == 0)
            *dup = refs[k].i;
    free(refs);
    return GQ_OK;
}

/* What avro-c would refuse in a map: a NULL key or value, a key twice; the message is the
 * reference encoder's, for the entry where it would stop. */
static gq_status_t map_check(gq_av_t *c, const char *name, const gq_kv_t *kv, size_t cnt) {
    size_t first_null = cnt, dup;
    for (size_t i = 0; i < cnt; i++)
        if (!kv[i].key || !kv[i].value) {
            first_null = i;
            break;
        }
    if (map_first_dup(kv, first_null, &dup) != GQ_OK) {
        gq_av_fail(c, name, "out of memory");
        return c->st = GQ_ERR_NOMEM;
    }
    if (dup < first_null)
        gq_av_fail(c, name, "key \"%s\" appears twice", kv[dup].key);
    else if (first_null < cnt)
        gq_av_fail(c, name, "entry %zu has a NULL key or value", first_null);
    return c->st;
}

/* Whether a field can be encoded at all (gq_request_encode does not validate values). */
static gq_status_t request_field_check(gq_av_t *c, const gq_request_t *r, gq_request_field_t f) {
    if (f == GQ_REQ_PROMPT && !r->prompt)
        gq_av_fail(c, "prompt", "missing (NULL)");
    else if (f == GQ_REQ_OVERRIDES)
        map_check(c, "overrides", r->overrides, r->overrides_cnt);
    else if (f == GQ_REQ_METADATA)
        map_check(c, "metadata", r->metadata, r->metadata_cnt);
    return c->st;
}

static void request_header(unsigned char *p) {
    uint64_t fp = gq_schema_request_fingerprint();
    p[0] = 0xc3;
    p[1] = 0x01;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)(fp >> (8 * i));
}

gq_status_t gq_request_encode(const gq_request_t *req, gq_buf_t *out, char *errstr,
                              size_t errstr_size) {
    if (gq_schema_init(errstr, errstr_size) != GQ_OK)
        return GQ_ERR;
    gq_av_t c = {GQ_OK, errstr, errstr_size};
    enc_t e = {NULL, GQ_SCHEMA_HEADER_LEN};
    for (int f = 0; f < GQ_REQ_FIELD_CNT; f++) {
        if (request_field_check(&c, req, (gq_request_field_t)f) != GQ_OK)
            return c.st;
        request_field_write(&e, req, (gq_request_field_t)f);
    }
    char *tail = NULL;
    gq_status_t st = gq_buf_extend(out, e.n, &tail);
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "encoded GenerationRequest of %zu bytes does not fit: %s", e.n,
                gq_status_name(st));
        return st;
    }
    e = (enc_t){(unsigned char *)tail, GQ_SCHEMA_HEADER_LEN};
    request_header(e.p);
    for (int f = 0; f < GQ_REQ_FIELD_CNT; f++)
        request_field_write(&e, req, (gq_request_field_t)f);
    return GQ_OK;
}

/* ---- prepared requests ---- */

struct gq_request_prep {
    unsigned char *buf; /* header, then the datum */
    size_t cap;
    /* Field f is buf[off[f] .. off[f + 1]); off[GQ_REQ_FIELD_CNT] is the length. */
    size_t off[GQ_REQ_FIELD_CNT + 1];
    char job_id[37];
    int32_t priority; /* kept for routing to a priority lane */
};

typedef enum prep_kind {
    PK_ID,      /* job_id */
    PK_STR,     /* string; NULL: the .avsc default (except prompt) */
    PK_OPT_STR, /* ["null","string"] */
    PK_INT,     /* int */
    PK_OPT_INT, /* ["null","int"], 0 for null */
    PK_LONG,    /* long */
    PK_DOUBLE,  /* double */
    PK_MAP,     /* map<string> */
} prep_kind_t;

typedef struct prep_field {
    const char *name;
    prep_kind_t kind;
    size_t off;     /* of the member in gq_request_t */
    size_t cnt_off; /* of the entry count, for maps */
} prep_field_t;

#define PF(field, member, kind) [field] = {#member, kind, offsetof(gq_request_t, member), 0}
#define PF_MAP(field, member)                                                                      \
    [field] = {#member, PK_MAP, offsetof(gq_request_t, member),                                    \
               offsetof(gq_request_t, member##_cnt)}

static const prep_field_t prep_fields[GQ_REQ_FIELD_CNT] = {
    PF(GQ_REQ_JOB_ID, job_id, PK_ID),
    PF(GQ_REQ_SUBMITTED_AT, submitted_at, PK_LONG),
    PF(GQ_REQ_WORKFLOW, workflow, PK_STR),
    PF(GQ_REQ_WORKFLOW_JSON, workflow_json, PK_OPT_STR),
    PF(GQ_REQ_PROMPT, prompt, PK_STR),
    PF(GQ_REQ_NEGATIVE_PROMPT, negative_prompt, PK_STR),
    PF(GQ_REQ_WIDTH, width, PK_INT),
    PF(GQ_REQ_HEIGHT, height, PK_INT),
    PF(GQ_REQ_SEED, seed, PK_LONG),
    PF(GQ_REQ_STEPS, steps, PK_INT),
    PF(GQ_REQ_CFG, cfg, PK_DOUBLE),
    PF(GQ_REQ_SAMPLER, sampler, PK_STR),
    PF(GQ_REQ_SCHEDULER, scheduler, PK_STR),
    PF(GQ_REQ_MODEL, model, PK_OPT_STR),
    PF(GQ_REQ_BATCH_SIZE, batch_size, PK_INT),
    PF_MAP(GQ_REQ_OVERRIDES, overrides),
    PF(GQ_REQ_PRIORITY, priority, PK_INT),
    PF(GQ_REQ_SOURCE, source, PK_STR),
    PF(GQ_REQ_MAX_ATTEMPTS, max_attempts, PK_OPT_INT),
    PF(GQ_REQ_TIMEOUT_S, timeout_s, PK_OPT_INT),
    PF_MAP(GQ_REQ_METADATA, metadata),
};

gq_request_prep_t *gq_request_prep_new(const gq_request_t *req, char *errstr, size_t errstr_size) {
    if (gq_request_validate(req, errstr, errstr_size) != GQ_OK ||
        gq_schema_init(errstr, errstr_size) != GQ_OK)
        return NULL;
    enc_t e = {NULL, GQ_SCHEMA_HEADER_LEN};
    for (int f = 0; f < GQ_REQ_FIELD_CNT; f++)
        request_field_write(&e, req, (gq_request_field_t)f);
    gq_request_prep_t *prep = calloc(1, sizeof(*prep));
    if (prep)
        prep->buf = malloc(e.n);
    if (!prep || !prep->buf) {
        free(prep);
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    prep->cap = e.n;
    e = (enc_t){prep->buf, GQ_SCHEMA_HEADER_LEN};
    request_header(e.p);
    for (int f = 0; f < GQ_REQ_FIELD_CNT; f++) {
        prep->off[f] = e.n;
        request_field_write(&e, req, (gq_request_field_t)f);
    }
    prep->off[GQ_REQ_FIELD_CNT] = e.n;
    memcpy(prep->job_id, req->job_id, sizeof(prep->job_id));
    prep->priority = req->priority;
    return prep;
}

void gq_request_prep_destroy(gq_request_prep_t *prep) {
    if (!prep)
        return;
    free(prep->buf);
    free(prep);
}

/* Re-encodes field f from the (validated) view v, moving the fields after it as needed. */
static gq_status_t prep_replace(gq_request_prep_t *prep, const gq_request_t *v,
                                gq_request_field_t f, char *errstr, size_t errstr_size) {
    enc_t e = {NULL, 0};
    request_field_write(&e, v, f);
    size_t *off = prep->off, old = off[f + 1] - off[f], len = off[GQ_REQ_FIELD_CNT];
    if (e.n != old) {
        size_t need = len - old + e.n;
        if (need > prep->cap) {
            size_t cap = prep->cap * 2 > need ? prep->cap * 2 : need;
            unsigned char *p = realloc(prep->buf, cap);
            if (!p) {
                gq_errf(errstr, errstr_size, "%s: out of memory", prep_fields[f].name);
                return GQ_ERR_NOMEM;
            }
            prep->buf = p;
            prep->cap = cap;
        }
        memmove(prep->buf + off[f] + e.n, prep->buf + off[f + 1], len - off[f + 1]);
        for (int g = f + 1; g <= GQ_REQ_FIELD_CNT; g++)
            off[g] = off[g] - old + e.n;
    }
    e = (enc_t){prep->buf + off[f], 0};
    request_field_write(&e, v, f);
    return GQ_OK;
}

/* The field's descriptor if it is one of the kinds a setter accepts. */
static const prep_field_t *prep_field(gq_request_field_t f, const prep_kind_t *kinds, size_t cnt,
                                      const char *what, char *errstr, size_t errstr_size) {
    if ((int)f < 0 || f >= GQ_REQ_FIELD_CNT) {
        gq_errf(errstr, errstr_size, "no field %d in GenerationRequest", (int)f);
        return NULL;
    }
    for (size_t i = 0; i < cnt; i++)
        if (prep_fields[f].kind == kinds[i])
            return &prep_fields[f];
    gq_errf(errstr, errstr_size, "%s: not %s field", prep_fields[f].name, what);
    return NULL;
}

/* Validates the view (a request holding only the new value) and encodes that field. */
static gq_status_t prep_set(gq_request_prep_t *prep, const gq_request_t *v, gq_request_field_t f,
                            char *errstr, size_t errstr_size) {
    gq_status_t st = gq_request_validate_field(v, f, errstr, errstr_size);
    return st == GQ_OK ? prep_replace(prep, v, f, errstr, errstr_size) : st;
}

gq_status_t gq_request_prep_set_str(gq_request_prep_t *prep, gq_request_field_t field,
                                    const char *s, char *errstr, size_t errstr_size) {
    static const prep_kind_t kinds[] = {PK_ID, PK_STR, PK_OPT_STR};
    const prep_field_t *pf =
        prep_field(field, kinds, GQ_ARRAY_LEN(kinds), "a string", errstr, errstr_size);
    if (!pf)
        return GQ_ERR_INVALID;
    gq_request_t v;
    memset(&v, 0, sizeof(v));
    if (pf->kind == PK_ID) {
        if (!s || gq_strlcpy(v.job_id, s, sizeof(v.job_id)) != GQ_OK) {
            gq_errf(errstr, errstr_size, "job_id: %s", s ? "longer than a uuid" : "missing (NULL)");
            return GQ_ERR_INVALID;
        }
    } else {
        /* The view only lends s to validation and encoding, which do not write to it. */
        *(char **)((char *)&v + pf->off) = (char *)s;
    }
    gq_status_t st = prep_set(prep, &v, field, errstr, errstr_size);
    if (st == GQ_OK && pf->kind == PK_ID)
        memcpy(prep->job_id, v.job_id, sizeof(prep->job_id));
    return st;
}

gq_status_t gq_request_prep_set_int(gq_request_prep_t *prep, gq_request_field_t field, int64_t x,
                                    char *errstr, size_t errstr_size) {
    static const prep_kind_t kinds[] = {PK_INT, PK_OPT_INT, PK_LONG};
    const prep_field_t *pf =
        prep_field(field, kinds, GQ_ARRAY_LEN(kinds), "an int or long", errstr, errstr_size);
    if (!pf)
        return GQ_ERR_INVALID;
    gq_request_t v;
    memset(&v, 0, sizeof(v));
    if (pf->kind == PK_LONG) {
        *(int64_t *)((char *)&v + pf->off) = x;
    } else if (x < INT32_MIN || x > INT32_MAX) {
        gq_errf(errstr, errstr_size, "%s: %lld does not fit in an int", pf->name, (long long)x);
        return GQ_ERR_INVALID;
    } else {
        *(int32_t *)((char *)&v + pf->off) = (int32_t)x;
    }
    gq_status_t st = prep_set(prep, &v, field, errstr, errstr_size);
    if (st == GQ_OK && field == GQ_REQ_PRIORITY)
        prep->priority = (int32_t)x;
    return st;
}

int32_t gq_request_prep_priority(const gq_request_prep_t *prep) { return prep->priority; }

gq_status_t gq_request_prep_set_double(gq_request_prep_t *prep, gq_request_field_t field, double x,
                                       char *errstr, size_t errstr_size) {
    static const prep_kind_t kinds[] = {PK_DOUBLE};
    const prep_field_t *pf =
        prep_field(field, kinds, GQ_ARRAY_LEN(kinds), "a double", errstr, errstr_size);
    if (!pf)
        return GQ_ERR_INVALID;
    gq_request_t v;
    memset(&v, 0, sizeof(v));
    *(double *)((char *)&v + pf->off) = x;
    return prep_set(prep, &v, field, errstr, errstr_size);
}

gq_status_t gq_request_prep_set_map(gq_request_prep_t *prep, gq_request_field_t field,
                                    const gq_kv_t *kv, size_t cnt, char *errstr,
                                    size_t errstr_size) {
    static const prep_kind_t kinds[] = {PK_MAP};
    const prep_field_t *pf =
        prep_field(field, kinds, GQ_ARRAY_LEN(kinds), "a map", errstr, errstr_size);
    if (!pf)
        return GQ_ERR_INVALID;
    if (cnt && !kv) {
        gq_errf(errstr, errstr_size, "%s: %zu entries but no array", pf->name, cnt);
        return GQ_ERR_INVALID;
    }
    gq_request_t v;
    memset(&v, 0, sizeof(v));
    *(const gq_kv_t **)((char *)&v + pf->off) = kv;
    *(size_t *)((char *)&v + pf->cnt_off) = cnt;
    return prep_set(prep, &v, field, errstr, errstr_size);
}

gq_status_t gq_request_prep_new_job_id(gq_request_prep_t *prep, char *errstr, size_t errstr_size) {
    char id[37];
    if (gq_uuid_v4(id) != GQ_OK) {
        gq_errf(errstr, errstr_size, "job_id: no random bytes from the kernel");
        return GQ_ERR;
    }
    /* A valid job_id is always 36 characters, so only the characters change in place: the
     * length (one byte, 36 zig-zag encoded) stays. */
    memcpy(prep->job_id, id, sizeof(prep->job_id));
    memcpy(prep->buf + prep->off[GQ_REQ_JOB_ID] + 1, id, 36);
    return GQ_OK;
}

const char *gq_request_prep_job_id(const gq_request_prep_t *prep) { return prep->job_id; }

const void *gq_request_prep_data(const gq_request_prep_t *prep, size_t *len) {
    *len = prep->off[GQ_REQ_FIELD_CNT];
    return prep->buf;
}
