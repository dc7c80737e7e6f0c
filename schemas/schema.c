/*
 * The embedded schemas, loaded once, and the single-object framing around avro-c.
 */
#include "schema_int.h"
#include "avro_canon.h"
#include "avro_check.h"
#include "embedded.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct schema_type {
    const char *name;
    const char *path;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    uint64_t fp;
} schema_type_t;

static schema_type_t schema_types[] = {
    [GQ_SCHEMA_REQUEST] = {"GenerationRequest", "schemas/GenerationRequest.avsc"},
    [GQ_SCHEMA_COMPLETED] = {"GenerationCompleted", "schemas/GenerationCompleted.avsc"},
};

/* Loading happens under the lock; readers only test the flag, after which the types are
 * immutable (avro-c's schemas and classes are reference counted with atomics). */
static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool schema_loaded;

static void schema_unload(void) {
    for (size_t i = 0; i < GQ_ARRAY_LEN(schema_types); i++) {
        schema_type_t *t = &schema_types[i];
        if (t->iface)
            avro_value_iface_decref(t->iface);
        if (t->schema)
            avro_schema_decref(t->schema);
        t->iface = NULL;
        t->schema = NULL;
        t->fp = 0;
    }
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

/* Says what a message that is not single-object encoded looks like, to speed up
 * debugging of a producer that uses the wrong serializer. */
static void schema_bad_magic(const unsigned char *p, size_t len, char *errstr, size_t errstr_size) {
    const char *hint = "";
    if (len >= 5 && p[0] == 0x00)
        hint = "; it looks like Confluent Schema Registry framing (magic byte 0)";
    else if (len >= 1 && (p[0] == '{' || p[0] == '['))
        hint = "; it looks like JSON";
    if (len == 0)
        gq_errf(errstr, errstr_size, "empty message (expected Avro single-object encoding)");
    else
        gq_errf(errstr, errstr_size,
                "not Avro single-object encoding: starts with %02X %02X, expected C3 01%s", p[0],
                len > 1 ? p[1] : 0, hint);
}

static gq_status_t schema_check_header(const schema_type_t *t, const unsigned char *p, size_t len,
                                       char *errstr, size_t errstr_size) {
    if (len < 2 || p[0] != 0xc3 || p[1] != 0x01) {
        schema_bad_magic(p, len, errstr, errstr_size);
        return GQ_ERR_INVALID;
    }
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
    gq_errf(errstr, errstr_size,
            "unknown schema fingerprint 0x%016" PRIx64 " (this reader knows %s 0x%016" PRIx64 ")",
            fp, t->name, t->fp);
    return GQ_ERR_INVALID;
}

gq_status_t gq_schema_read(gq_schema_kind_t kind, const void *data, size_t len, avro_value_t *val,
                           char id[37], char *errstr, size_t errstr_size) {
    const unsigned char *p = data;
    id[0] = '\0';
    if (len >= GQ_SCHEMA_HEADER_LEN && p[0] == 0xc3 && p[1] == 0x01 &&
        gq_avro_peek_string(p + GQ_SCHEMA_HEADER_LEN, len - GQ_SCHEMA_HEADER_LEN, id, 37) != GQ_OK)
        id[0] = '\0';
    const schema_type_t *t = schema_get(kind, errstr, errstr_size);
    if (!t)
        return GQ_ERR;
    gq_status_t st = schema_check_header(t, p, len, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    p += GQ_SCHEMA_HEADER_LEN;
    len -= GQ_SCHEMA_HEADER_LEN;
    st = gq_avro_datum_check(t->schema, p, len, GQ_SCHEMA_MAX_ITEMS, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    if ((st = gq_schema_value_new(kind, val, errstr, errstr_size)) != GQ_OK)
        return st;
    avro_reader_t r = avro_reader_memory((const char *)p, (int64_t)len);
    int rc = r ? avro_value_read(r, val) : ENOMEM;
    if (r)
        avro_reader_free(r);
    if (rc != 0) {
        gq_errf(errstr, errstr_size, "avro-c cannot read the %s: %s", t->name, avro_strerror());
        avro_value_decref(val);
        return rc == ENOMEM ? GQ_ERR_NOMEM : GQ_ERR_INVALID;
    }
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
