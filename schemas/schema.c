/*
 * The embedded schemas, loaded once; the writer schemas a reader knows (released versions,
 * a schema directory, the registry); the two framings around avro-c, and resolution of a
 * writer's datum into the reader's schema (avro_resolve.c).
 */
#include "schema_int.h"
#include "avro_canon.h"
#include "avro_check.h"
#include "avro_resolve.h"
#include "embedded.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct schema_type {
    const char *name;
    const char *path;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    uint64_t fp;
    gq_avsc_t *avsc; /* the reader's schema as avro_resolve.c models it */
} schema_type_t;

/* A writer schema this process knows: a released version, one from a schema directory, or
 * one fetched from the registry. Immutable once listed, except its plans, which are compiled
 * on first use under writers_lock; never freed before gq_schema_shutdown. */
struct gq_writer {
    struct gq_writer *next;
    uint64_t fp;
    char label[160];
    gq_avsc_t *avsc;
    bool compiled[GQ_SCHEMA_KINDS];
    gq_avro_plan_t *plan[GQ_SCHEMA_KINDS]; /* per kind; NULL with plan_err when it cannot be */
    char plan_err[GQ_SCHEMA_KINDS][320];
};

static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static gq_writer_t *writers; /* listed by fingerprint (single-object encoding) */
static size_t writers_cnt;

static schema_type_t schema_types[] = {
    [GQ_SCHEMA_REQUEST] = {"GenerationRequest", "schemas/GenerationRequest.avsc"},
    [GQ_SCHEMA_COMPLETED] = {"GenerationCompleted", "schemas/GenerationCompleted.avsc"},
    [GQ_SCHEMA_PROGRESS] = {"GenerationProgress", "schemas/GenerationProgress.avsc"},
    [GQ_SCHEMA_CANCEL] = {"CancelRequest", "schemas/CancelRequest.avsc"},
};
_Static_assert(GQ_ARRAY_LEN(schema_types) == GQ_SCHEMA_KINDS, "a schema kind without its file");

/* Loading happens under the lock; readers only test the flag, after which the types are
 * immutable (avro-c's schemas and classes are reference counted with atomics). */
static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool schema_loaded;

void gq_schema_writer_destroy(gq_writer_t *w) {
    if (!w)
        return;
    for (int k = 0; k < GQ_SCHEMA_KINDS; k++)
        gq_avro_plan_destroy(w->plan[k]);
    gq_avsc_destroy(w->avsc);
    free(w);
}

gq_writer_t *gq_schema_writer_new(const char *json, size_t len, const char *label, char *errstr,
                                  size_t errstr_size) {
    char err[256];
    gq_writer_t *w = calloc(1, sizeof(*w));
    char *text = w ? strndup(json, len) : NULL;
    if (!text) {
        free(w);
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    gq_strlcpy(w->label, label, sizeof(w->label));
    gq_status_t st = gq_avro_fingerprint(text, &w->fp, err, sizeof(err));
    free(text);
    if (st != GQ_OK || !(w->avsc = gq_avsc_parse(json, len, err, sizeof(err)))) {
        gq_errf(errstr, errstr_size, "%s: %s", label, err);
        gq_schema_writer_destroy(w);
        return NULL;
    }
    return w;
}

uint64_t gq_schema_writer_fp(const gq_writer_t *w) { return w->fp; }

const char *gq_schema_writer_label(const gq_writer_t *w) { return w->label; }

const char *gq_schema_writer_name(const gq_writer_t *w) { return gq_avsc_name(w->avsc); }

/* Lists w (taking it) unless a writer with its fingerprint is listed already. */
static void writers_add(gq_writer_t *w) {
    pthread_mutex_lock(&writers_lock);
    for (gq_writer_t *o = writers; o; o = o->next) {
        if (o->fp == w->fp) {
            pthread_mutex_unlock(&writers_lock);
            gq_schema_writer_destroy(w);
            return;
        }
    }
    w->next = writers;
    writers = w;
    writers_cnt++;
    pthread_mutex_unlock(&writers_lock);
}

static gq_writer_t *writers_find(uint64_t fp) {
    pthread_mutex_lock(&writers_lock);
    gq_writer_t *w = writers;
    while (w && w->fp != fp)
        w = w->next;
    pthread_mutex_unlock(&writers_lock);
    return w;
}

static void schema_unload(void) {
    for (size_t i = 0; i < GQ_ARRAY_LEN(schema_types); i++) {
        schema_type_t *t = &schema_types[i];
        if (t->iface)
            avro_value_iface_decref(t->iface);
        if (t->schema)
            avro_schema_decref(t->schema);
        gq_avsc_destroy(t->avsc);
        t->iface = NULL;
        t->schema = NULL;
        t->avsc = NULL;
        t->fp = 0;
    }
    pthread_mutex_lock(&writers_lock);
    while (writers) {
        gq_writer_t *w = writers;
        writers = w->next;
        gq_schema_writer_destroy(w);
    }
    writers_cnt = 0;
    pthread_mutex_unlock(&writers_lock);
}

/* The released versions compiled in (schemas/history/<Name>.v<N>.avsc), each a writer. */
static gq_status_t schema_load_history(char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < gq_embedded_count; i++) {
        const gq_embedded_t *e = &gq_embedded_files[i];
        size_t n = strlen(e->name);
        if (strncmp(e->name, "schemas/history/", 16) != 0 || n < 5 ||
            strcmp(e->name + n - 5, ".avsc") != 0)
            continue;
        gq_writer_t *w = gq_schema_writer_new(e->data, e->len, e->name, errstr, errstr_size);
        if (!w)
            return GQ_ERR;
        writers_add(w);
    }
    return GQ_OK;
}

static gq_status_t schema_load(schema_type_t *t, char *errstr, size_t errstr_size) {
    char err[256];
    const gq_embedded_t *e = gq_embedded_find(t->path);
    if (!e) {
        gq_errf(errstr, errstr_size, "%s is not compiled in", t->path);
        return GQ_ERR;
    }
    if (gq_avro_fingerprint(e->data, &t->fp, err, sizeof(err)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s: %s", t->path, err);
        return GQ_ERR;
    }
    if (avro_schema_from_json_length(e->data, e->len, &t->schema) != 0) {
        t->schema = NULL;
        gq_errf(errstr, errstr_size, "%s: avro-c: %s", t->path, avro_strerror());
        return GQ_ERR;
    }
    t->iface = avro_generic_class_from_schema(t->schema);
    if (!t->iface) {
        gq_errf(errstr, errstr_size, "%s: avro-c: %s", t->path, avro_strerror());
        return GQ_ERR;
    }
    if (!(t->avsc = gq_avsc_parse(e->data, e->len, err, sizeof(err)))) {
        gq_errf(errstr, errstr_size, "%s: %s", t->path, err);
        return GQ_ERR;
    }
    return GQ_OK;
}

gq_status_t gq_schema_init(char *errstr, size_t errstr_size) {
    if (atomic_load(&schema_loaded))
        return GQ_OK;
    gq_status_t st = GQ_OK;
    pthread_mutex_lock(&schema_lock);
    if (!atomic_load(&schema_loaded)) {
        for (size_t i = 0; st == GQ_OK && i < GQ_ARRAY_LEN(schema_types); i++)
            st = schema_load(&schema_types[i], errstr, errstr_size);
        if (st == GQ_OK)
            st = schema_load_history(errstr, errstr_size);
        if (st == GQ_OK)
            atomic_store(&schema_loaded, true);
        else
            schema_unload();
    }
    pthread_mutex_unlock(&schema_lock);
    return st;
}

void gq_schema_shutdown(void) {
    pthread_mutex_lock(&schema_lock);
    if (atomic_load(&schema_loaded)) {
        atomic_store(&schema_loaded, false);
        schema_unload();
    }
    pthread_mutex_unlock(&schema_lock);
}

/* The loaded type, loading the schemas on first use. */
static const schema_type_t *schema_get(gq_schema_kind_t kind, char *errstr, size_t errstr_size) {
    return gq_schema_init(errstr, errstr_size) == GQ_OK ? &schema_types[kind] : NULL;
}

static uint64_t schema_fp(gq_schema_kind_t kind) {
    const schema_type_t *t = schema_get(kind, NULL, 0);
    return t ? t->fp : 0;
}

uint64_t gq_schema_request_fingerprint(void) { return schema_fp(GQ_SCHEMA_REQUEST); }

uint64_t gq_schema_completed_fingerprint(void) { return schema_fp(GQ_SCHEMA_COMPLETED); }

uint64_t gq_schema_fingerprint(gq_schema_kind_t kind) {
    return (unsigned)kind < GQ_SCHEMA_KINDS ? schema_fp(kind) : 0;
}

gq_status_t gq_schema_value_new(gq_schema_kind_t kind, avro_value_t *val, char *errstr,
                                size_t errstr_size) {
    const schema_type_t *t = schema_get(kind, errstr, errstr_size);
    if (!t)
        return GQ_ERR;
    if (avro_generic_value_new(t->iface, val) != 0) {
        gq_errf(errstr, errstr_size, "avro-c: %s", avro_strerror());
        return GQ_ERR_NOMEM;
    }
    return GQ_OK;
}

gq_status_t gq_schema_load_dir(const char *dir, char *errstr, size_t errstr_size) {
    gq_status_t st = gq_schema_init(errstr, errstr_size);
    if (st != GQ_OK || !dir || !*dir)
        return st;
    DIR *d = opendir(dir);
    if (!d) {
        gq_errf(errstr, errstr_size, "schema directory %s: %s", dir, strerror(errno));
        return GQ_ERR_INVALID;
    }
    struct dirent *de;
    while (st == GQ_OK && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || de->d_name[0] == '.' || strcmp(de->d_name + n - 5, ".avsc") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *text = NULL;
        size_t len = 0;
        if (gq_read_file(path, 1u << 20, &text, &len, errstr, errstr_size) != GQ_OK) {
            st = GQ_ERR_INVALID;
            break;
        }
        gq_writer_t *w = gq_schema_writer_new(text, len, path, errstr, errstr_size);
        free(text);
        if (!w) {
            st = GQ_ERR_INVALID;
            break;
        }
        writers_add(w);
    }
    closedir(d);
    return st;
}

size_t gq_schema_writers(uint64_t *fps, const char **labels, size_t max) {
    if (gq_schema_init(NULL, 0) != GQ_OK)
        return 0;
    pthread_mutex_lock(&writers_lock);
    size_t n = 0;
    for (gq_writer_t *w = writers; w; w = w->next, n++) {
        if (n < max) {
            fps[n] = w->fp;
            labels[n] = w->label;
        }
    }
    pthread_mutex_unlock(&writers_lock);
    return n;
}

const char *gq_schema_kind_path(gq_schema_kind_t kind) { return schema_types[kind].path; }

const char *gq_schema_kind_name(gq_schema_kind_t kind) { return schema_types[kind].name; }

/* The plan that reads w's data as the kind's record (compiled on first use), or NULL with
 * errstr saying why it cannot be read. */
static const gq_avro_plan_t *writer_plan(gq_writer_t *w, const schema_type_t *t,
                                         gq_schema_kind_t kind, char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&writers_lock);
    if (!w->compiled[kind]) {
        char err[300];
        w->plan[kind] = gq_avro_plan_new(w->avsc, t->avsc, false, err, sizeof(err));
        if (!w->plan[kind])
            snprintf(w->plan_err[kind], sizeof(w->plan_err[kind]), "%s", err);
        w->compiled[kind] = true;
    }
    const gq_avro_plan_t *p = w->plan[kind];
    if (!p)
        gq_errf(errstr, errstr_size, "the writer's schema (%s, %s) cannot be read as %s: %s",
                w->label, gq_avsc_name(w->avsc), t->name, w->plan_err[kind]);
    pthread_mutex_unlock(&writers_lock);
    return p;
}

gq_status_t gq_schema_writer_check(gq_writer_t *w, gq_schema_kind_t kind, char *errstr,
                                   size_t errstr_size) {
    const schema_type_t *t = schema_get(kind, errstr, errstr_size);
    if (!t)
        return GQ_ERR;
    if (w->fp == t->fp)
        return GQ_OK;
    return writer_plan(w, t, kind, errstr, errstr_size) ? GQ_OK : GQ_ERR_INVALID;
}

/* Says what a message that is not single-object encoded looks like, to speed up
 * debugging of a producer that uses the wrong serializer. */
static void schema_bad_magic(const unsigned char *p, size_t len, char *errstr, size_t errstr_size) {
    const char *hint = "";
    if (len >= 5 && p[0] == 0x00)
        hint = "; it looks like Confluent Schema Registry framing (magic byte 0)";
    else if (len >= 1 && (p[0] == '{' || p[0] == '['))
        hint = "; it looks like JSON";
    if (len >= 5 && p[0] == 0x00)
        hint = "; it looks like Confluent Schema Registry framing (magic byte 0), which needs "
               "GENQ_SCHEMA_REGISTRY_URL";
    if (len == 0)
        gq_errf(errstr, errstr_size, "empty message (expected Avro single-object encoding)");
    else
        gq_errf(errstr, errstr_size,
                "not Avro single-object encoding: starts with %02X %02X, expected C3 01%s", p[0],
                len > 1 ? p[1] : 0, hint);
}

/* The writer of a single-object encoded message: NULL for the reader's own schema. */
static gq_status_t schema_single_object(const schema_type_t *t, const unsigned char *p, size_t len,
                                        gq_writer_t **w, char *errstr, size_t errstr_size) {
    *w = NULL;
    if (len < GQ_SCHEMA_HEADER_LEN) {
        gq_errf(errstr, errstr_size, "message of %zu bytes is shorter than the %d-byte header", len,
                GQ_SCHEMA_HEADER_LEN);
        return GQ_ERR_INVALID;
    }
    uint64_t fp = 0;
    for (int i = 7; i >= 0; i--)
        fp = (fp << 8) | p[2 + i];
    if (fp == t->fp)
        return GQ_OK;
    for (size_t i = 0; i < GQ_ARRAY_LEN(schema_types); i++) {
        if (schema_types[i].fp == fp) {
            gq_errf(errstr, errstr_size,
                    "schema fingerprint 0x%016" PRIx64 " is %s's; expected %s (0x%016" PRIx64 ")",
                    fp, schema_types[i].name, t->name, t->fp);
            return GQ_ERR_INVALID;
        }
    }
    if ((*w = writers_find(fp)))
        return GQ_OK;
    gq_errf(errstr, errstr_size,
            "unknown schema fingerprint 0x%016" PRIx64 " (this reader knows %s 0x%016" PRIx64
            " and %zu other writer schema(s); a newer writer schema can be given in "
            "GENQ_SCHEMA_DIR)",
            fp, t->name, t->fp, writers_cnt);
    return GQ_ERR_INVALID;
}

/* The datum in the reader's schema: as it is, or resolved from the writer's into tmp. */
static gq_status_t schema_resolve(const schema_type_t *t, gq_schema_kind_t kind, gq_writer_t *w,
                                  const unsigned char **p, size_t *len, gq_buf_t *tmp, char *errstr,
                                  size_t errstr_size) {
    if (!w || w->fp == t->fp)
        return GQ_OK;
    const gq_avro_plan_t *plan = writer_plan(w, t, kind, errstr, errstr_size);
    if (!plan)
        return GQ_ERR_INVALID;
    char err[512];
    gq_status_t st = gq_avro_resolve(plan, *p, *len, GQ_SCHEMA_MAX_ITEMS, tmp, err, sizeof(err));
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s (written with %s)", err, w->label);
        return st == GQ_ERR_NOMEM ? st : GQ_ERR_INVALID;
    }
    *p = (const unsigned char *)tmp->data;
    *len = tmp->len;
    return GQ_OK;
}

gq_status_t gq_schema_read(gq_schema_kind_t kind, const void *data, size_t len, avro_value_t *val,
                           char id[37], char *errstr, size_t errstr_size) {
    const unsigned char *p = data;
    id[0] = '\0';
    size_t hdr = len >= GQ_SCHEMA_HEADER_LEN && p[0] == 0xc3 && p[1] == 0x01 ? GQ_SCHEMA_HEADER_LEN
                 : len >= GQ_SCHEMA_CONFLUENT_HEADER_LEN && p[0] == 0x00
                     ? GQ_SCHEMA_CONFLUENT_HEADER_LEN
                     : 0;
    if (hdr && gq_avro_peek_string(p + hdr, len - hdr, id, 37) != GQ_OK)
        id[0] = '\0';
    const schema_type_t *t = schema_get(kind, errstr, errstr_size);
    if (!t)
        return GQ_ERR;
    gq_writer_t *w = NULL;
    gq_status_t st;
    if (len >= 2 && p[0] == 0xc3 && p[1] == 0x01) {
        st = schema_single_object(t, p, len, &w, errstr, errstr_size);
    } else if (len >= GQ_SCHEMA_CONFLUENT_HEADER_LEN && p[0] == 0x00 && gq_schema_registry_on()) {
        int32_t sid = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
                                (uint32_t)p[4]);
        st = gq_schema_registry_writer(sid, &w, errstr, errstr_size);
    } else {
        schema_bad_magic(p, len, errstr, errstr_size);
        st = GQ_ERR_INVALID;
    }
    if (st != GQ_OK)
        return st;
    p += hdr;
    len -= hdr;
    gq_buf_t tmp;
    gq_buf_init(&tmp, 64u << 20);
    st = schema_resolve(t, kind, w, &p, &len, &tmp, errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_avro_datum_check(t->schema, p, len, GQ_SCHEMA_MAX_ITEMS, errstr, errstr_size);
    if (st == GQ_OK)
        st = gq_schema_value_new(kind, val, errstr, errstr_size);
    if (st != GQ_OK) {
        gq_buf_release(&tmp);
        return st;
    }
    avro_reader_t r = avro_reader_memory((const char *)p, (int64_t)len);
    int rc = r ? avro_value_read(r, val) : ENOMEM;
    if (r)
        avro_reader_free(r);
    gq_buf_release(&tmp);
    if (rc != 0) {
        gq_errf(errstr, errstr_size, "avro-c cannot read the %s: %s", t->name, avro_strerror());
        avro_value_decref(val);
        return rc == ENOMEM ? GQ_ERR_NOMEM : GQ_ERR_INVALID;
    }
    return GQ_OK;
}

gq_status_t gq_framing_parse(const char *s, gq_framing_t *out) {
    if (s && (strcmp(s, "single-object") == 0 || strcmp(s, "single_object") == 0)) {
        *out = GQ_FRAMING_SINGLE_OBJECT;
        return GQ_OK;
    }
    if (s && strcmp(s, "confluent") == 0) {
        *out = GQ_FRAMING_CONFLUENT;
        return GQ_OK;
    }
    return GQ_ERR_INVALID;
}

gq_status_t gq_schema_reframe(gq_buf_t *msg, size_t start, gq_framing_t framing,
                              int32_t schema_id) {
    if (framing == GQ_FRAMING_SINGLE_OBJECT)
        return GQ_OK;
    if (msg->len < start + GQ_SCHEMA_HEADER_LEN || schema_id < 0)
        return GQ_ERR_INVALID;
    unsigned char *p = (unsigned char *)msg->data + start;
    uint32_t id = (uint32_t)schema_id;
    p[0] = 0x00;
    p[1] = (unsigned char)(id >> 24);
    p[2] = (unsigned char)(id >> 16);
    p[3] = (unsigned char)(id >> 8);
    p[4] = (unsigned char)id;
    size_t tail = msg->len - start - GQ_SCHEMA_HEADER_LEN;
    memmove(p + GQ_SCHEMA_CONFLUENT_HEADER_LEN, p + GQ_SCHEMA_HEADER_LEN, tail);
    msg->len -= GQ_SCHEMA_HEADER_LEN - GQ_SCHEMA_CONFLUENT_HEADER_LEN;
    return GQ_OK;
}

gq_status_t gq_schema_write(gq_schema_kind_t kind, avro_value_t *val, gq_buf_t *out, char *errstr,
                            size_t errstr_size) {
    const schema_type_t *t = schema_get(kind, errstr, errstr_size);
    if (!t)
        return GQ_ERR;
    size_t size = 0;
    if (avro_value_sizeof(val, &size) != 0) {
        gq_errf(errstr, errstr_size, "avro-c cannot size the %s: %s", t->name, avro_strerror());
        return GQ_ERR;
    }
    unsigned char *buf = malloc(GQ_SCHEMA_HEADER_LEN + size);
    if (!buf)
        return GQ_ERR_NOMEM;
    buf[0] = 0xc3;
    buf[1] = 0x01;
    for (int i = 0; i < 8; i++)
        buf[2 + i] = (unsigned char)(t->fp >> (8 * i));
    avro_writer_t w = avro_writer_memory((char *)buf + GQ_SCHEMA_HEADER_LEN, (int64_t)size);
    int rc = w ? avro_value_write(w, val) : ENOMEM;
    if (w)
        avro_writer_free(w);
    gq_status_t st = GQ_OK;
    if (rc != 0) {
        gq_errf(errstr, errstr_size, "avro-c cannot write the %s: %s", t->name, avro_strerror());
        st = GQ_ERR;
    } else if ((st = gq_buf_append(out, buf, GQ_SCHEMA_HEADER_LEN + size)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "encoded %s of %zu bytes does not fit: %s", t->name,
                GQ_SCHEMA_HEADER_LEN + size, gq_status_name(st));
    }
    free(buf);
    return st;
}
