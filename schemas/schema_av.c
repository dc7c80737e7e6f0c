/*
 * gq_av_*: typed access to fields of avro-c generic record values. Every call is a no-op
 * once a failure is recorded in the gq_av_t, so callers check once at the end.
 */
#include "schema_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gq_av_fail(gq_av_t *c, const char *field, const char *fmt, ...) {
    if (c->st != GQ_OK)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gq_errf(c->errstr, c->errstr_size, "%s: %s", field, msg);
    c->st = GQ_ERR_INVALID;
}

static void av_nomem(gq_av_t *c, const char *field) {
    gq_av_fail(c, field, "out of memory");
    c->st = GQ_ERR_NOMEM;
}

/* avro-c failed on a value we built or checked: report its reason. */
static void av_avro(gq_av_t *c, const char *field) {
    gq_av_fail(c, field, "avro-c: %s", avro_strerror());
    c->st = GQ_ERR;
}

bool gq_av_field(gq_av_t *c, avro_value_t *rec, const char *name, avro_value_t *out) {
    if (c->st != GQ_OK)
        return false;
    if (avro_value_get_by_name(rec, name, out, NULL) != 0) {
        av_avro(c, name);
        return false;
    }
    return true;
}

/* Copies a string value (its size counts the NUL avro-c keeps after it). */
static char *av_copy_str(gq_av_t *c, const char *name, avro_value_t *v) {
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_string(v, &s, &size) != 0) {
        av_avro(c, name);
        return NULL;
    }
    char *copy = malloc(size ? size : 1);
    if (!copy) {
        av_nomem(c, name);
        return NULL;
    }
    if (size)
        memcpy(copy, s, size);
    copy[size ? size - 1 : 0] = '\0';
    return copy;
}

char *gq_av_get_str(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t f;
    return gq_av_field(c, rec, name, &f) ? av_copy_str(c, name, &f) : NULL;
}

void gq_av_get_strbuf(gq_av_t *c, avro_value_t *rec, const char *name, char *out, size_t out_size) {
    avro_value_t f;
    const char *s = NULL;
    size_t size = 0;
    if (!gq_av_field(c, rec, name, &f))
        return;
    if (avro_value_get_string(&f, &s, &size) != 0) {
        av_avro(c, name);
        return;
    }
    if (size > out_size) {
        gq_av_fail(c, name, "%zu bytes long; at most %zu allowed", size - 1, out_size - 1);
        return;
    }
    memcpy(out, s, size);
    out[size ? size - 1 : 0] = '\0';
}

/* The branch a ["null", X] field holds, or false for null (or a failure). */
static bool av_branch(gq_av_t *c, avro_value_t *rec, const char *name, avro_value_t *branch) {
    avro_value_t f;
    int disc = 0;
    if (!gq_av_field(c, rec, name, &f))
        return false;
    if (avro_value_get_discriminant(&f, &disc) != 0 ||
        avro_value_get_current_branch(&f, branch) != 0) {
        av_avro(c, name);
        return false;
    }
    return disc != 0;
}

char *gq_av_get_opt_str(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t b;
    return av_branch(c, rec, name, &b) ? av_copy_str(c, name, &b) : NULL;
}

int32_t gq_av_get_int(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t f;
    int32_t v = 0;
    if (gq_av_field(c, rec, name, &f) && avro_value_get_int(&f, &v) != 0)
        av_avro(c, name);
    return v;
}

bool gq_av_get_opt_int(gq_av_t *c, avro_value_t *rec, const char *name, int32_t *v) {
    avro_value_t b;
    *v = 0;
    if (!av_branch(c, rec, name, &b))
        return false;
    if (avro_value_get_int(&b, v) != 0) {
        av_avro(c, name);
        return false;
    }
    return true;
}

int64_t gq_av_get_long(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t f;
    int64_t v = 0;
    if (gq_av_field(c, rec, name, &f) && avro_value_get_long(&f, &v) != 0)
        av_avro(c, name);
    return v;
}

double gq_av_get_double(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t f;
    double v = 0;
    if (gq_av_field(c, rec, name, &f) && avro_value_get_double(&f, &v) != 0)
        av_avro(c, name);
    return v;
}

bool gq_av_get_bool(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t f;
    int v = 0;
    if (gq_av_field(c, rec, name, &f) && avro_value_get_boolean(&f, &v) != 0)
        av_avro(c, name);
    return v != 0;
}

int gq_av_get_enum(gq_av_t *c, avro_value_t *rec, const char *name) {
    avro_value_t f;
    int v = 0;
    if (gq_av_field(c, rec, name, &f) && avro_value_get_enum(&f, &v) != 0)
        av_avro(c, name);
    return v;
}

gq_kv_t *gq_av_get_map(gq_av_t *c, avro_value_t *rec, const char *name, size_t *cnt) {
    avro_value_t m;
    size_t n = 0;
    *cnt = 0;
    if (!gq_av_field(c, rec, name, &m))
        return NULL;
    if (avro_value_get_size(&m, &n) != 0) {
        av_avro(c, name);
        return NULL;
    }
    if (n == 0)
        return NULL;
    gq_kv_t *kv = calloc(n, sizeof(*kv));
    if (!kv) {
        av_nomem(c, name);
        return NULL;
    }
    for (size_t i = 0; i < n && c->st == GQ_OK; i++) {
        avro_value_t v;
        const char *key = NULL;
        if (avro_value_get_by_index(&m, i, &v, &key) != 0) {
            av_avro(c, name);
            break;
        }
        kv[i].key = strdup(key);
        kv[i].value = av_copy_str(c, name, &v);
        *cnt = i + 1;
        if (!kv[i].key)
            av_nomem(c, name);
    }
    return kv;
}

void gq_av_set_str(gq_av_t *c, avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f;
    if (!s) {
        gq_av_fail(c, name, "missing (NULL)");
        return;
    }
    if (gq_av_field(c, rec, name, &f) && avro_value_set_string(&f, s) != 0)
        av_avro(c, name);
}

/* Selects branch 0 (null) or 1 of a ["null", X] field. */
static bool av_set_branch(gq_av_t *c, avro_value_t *rec, const char *name, int which,
                          avro_value_t *branch) {
    avro_value_t f;
    if (!gq_av_field(c, rec, name, &f))
        return false;
    if (avro_value_set_branch(&f, which, branch) != 0 ||
        (which == 0 && avro_value_set_null(branch) != 0)) {
        av_avro(c, name);
        return false;
    }
    return true;
}

void gq_av_set_opt_str(gq_av_t *c, avro_value_t *rec, const char *name, const char *s) {
    avro_value_t b;
    if (av_set_branch(c, rec, name, s ? 1 : 0, &b) && s && avro_value_set_string(&b, s) != 0)
        av_avro(c, name);
}

void gq_av_set_int(gq_av_t *c, avro_value_t *rec, const char *name, int32_t v) {
    avro_value_t f;
    if (gq_av_field(c, rec, name, &f) && avro_value_set_int(&f, v) != 0)
        av_avro(c, name);
}

void gq_av_set_opt_int(gq_av_t *c, avro_value_t *rec, const char *name, bool present, int32_t v) {
    avro_value_t b;
    if (av_set_branch(c, rec, name, present ? 1 : 0, &b) && present &&
        avro_value_set_int(&b, v) != 0)
        av_avro(c, name);
}

void gq_av_set_long(gq_av_t *c, avro_value_t *rec, const char *name, int64_t v) {
    avro_value_t f;
    if (gq_av_field(c, rec, name, &f) && avro_value_set_long(&f, v) != 0)
        av_avro(c, name);
}

void gq_av_set_double(gq_av_t *c, avro_value_t *rec, const char *name, double v) {
    avro_value_t f;
    if (gq_av_field(c, rec, name, &f) && avro_value_set_double(&f, v) != 0)
        av_avro(c, name);
}

void gq_av_set_bool(gq_av_t *c, avro_value_t *rec, const char *name, bool v) {
    avro_value_t f;
    if (gq_av_field(c, rec, name, &f) && avro_value_set_boolean(&f, v) != 0)
        av_avro(c, name);
}

void gq_av_set_enum(gq_av_t *c, avro_value_t *rec, const char *name, int v) {
    avro_value_t f;
    if (gq_av_field(c, rec, name, &f) && avro_value_set_enum(&f, v) != 0)
        av_avro(c, name);
}

void gq_av_set_map(gq_av_t *c, avro_value_t *rec, const char *name, const gq_kv_t *kv, size_t cnt) {
    avro_value_t m;
    if (!gq_av_field(c, rec, name, &m))
        return;
    for (size_t i = 0; i < cnt; i++) {
        avro_value_t v;
        int is_new = 0;
        if (!kv[i].key || !kv[i].value) {
            gq_av_fail(c, name, "entry %zu has a NULL key or value", i);
            return;
        }
        if (avro_value_add(&m, kv[i].key, &v, NULL, &is_new) != 0 ||
            avro_value_set_string(&v, kv[i].value) != 0) {
            av_avro(c, name);
            return;
        }
        if (!is_new) {
            gq_av_fail(c, name, "key \"%s\" appears twice", kv[i].key);
            return;
        }
    }
}

void gq_kv_free(gq_kv_t *kv, size_t cnt) {
    for (size_t i = 0; kv && i < cnt; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}
