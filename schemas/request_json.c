/*
 * gq_request_from_json: a GenerationRequest from a JSON object with the .avsc field names,
 * for `genq produce --file` and for tests. Strict about names and types, so a typo in a
 * field name is an error instead of a silently defaulted field.
 *
 * Most lines of a --file are flat objects of plain values, which a hand-written scanner reads
 * several times faster than jansson builds and walks a tree. It takes only what it can read
 * exactly as jansson would, to the same request; anything else (maps, \u escapes, bad input
 * of any kind) goes to jansson, which also words every error. test_schema_json compares the
 * two on many random lines.
 */
#include "genq_schema.h"
#include "schema_int.h"

#include "avro_check.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum json_kind {
    JK_ID,        /* job_id: a string into the char array */
    JK_STR,       /* string */
    JK_OPT_STR,   /* ["null","string"] */
    JK_INT,       /* int */
    JK_OPT_INT,   /* ["null","int"], 0 meaning null */
    JK_LONG,      /* long */
    JK_DOUBLE,    /* double */
    JK_MAP,       /* map<string> */
    JK_OVERRIDES, /* map<string> of JSON literals: other JSON values are serialised */
} json_kind_t;

typedef struct json_field {
    const char *name;
    json_kind_t kind;
    size_t off;     /* of the member in gq_request_t */
    size_t cnt_off; /* of the count, for maps */
    size_t name_len;
} json_field_t;

#define JF(name, kind)                                                                             \
    { #name, kind, offsetof(gq_request_t, name), 0, sizeof(#name) - 1 }
#define JF_MAP(name, kind)                                                                         \
    {                                                                                              \
#name, kind, offsetof(gq_request_t, name), offsetof(gq_request_t, name##_cnt),             \
            sizeof(#name) - 1                                                                      \
    }

static const json_field_t json_fields[] = {
    JF(job_id, JK_ID),
    JF(submitted_at, JK_LONG),
    JF(workflow, JK_STR),
    JF(workflow_json, JK_OPT_STR),
    JF(prompt, JK_STR),
    JF(negative_prompt, JK_STR),
    JF(width, JK_INT),
    JF(height, JK_INT),
    JF(seed, JK_LONG),
    JF(steps, JK_INT),
    JF(cfg, JK_DOUBLE),
    JF(sampler, JK_STR),
    JF(scheduler, JK_STR),
    JF(model, JK_OPT_STR),
    JF(batch_size, JK_INT),
    JF_MAP(overrides, JK_OVERRIDES),
    JF(priority, JK_INT),
    JF(source, JK_STR),
    JF(max_attempts, JK_OPT_INT),
    JF(timeout_s, JK_OPT_INT),
    JF_MAP(metadata, JK_MAP),
};

/* In schema order, which is gq_request_field_t's: vals[GQ_REQ_PROMPT] below relies on it. */
_Static_assert(GQ_ARRAY_LEN(json_fields) == GQ_REQ_FIELD_CNT, "one entry per field");

static const char *json_type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static gq_status_t json_wrong(const char *field, const char *want, const json_t *got, char *errstr,
                              size_t errstr_size) {
    gq_errf(errstr, errstr_size, "%s: expected %s, got %s", field, want, json_type_name(got));
    return GQ_ERR_INVALID;
}

static gq_status_t json_set_str(char **dst, const char *s) {
    char *copy = strdup(s);
    if (!copy)
        return GQ_ERR_NOMEM;
    free(*dst);
    *dst = copy;
    return GQ_OK;
}

static gq_status_t json_map(const json_field_t *f, json_t *v, gq_request_t *req, char *errstr,
                            size_t errstr_size) {
    gq_kv_t **kvp = (gq_kv_t **)((char *)req + f->off);
    size_t *cnt = (size_t *)((char *)req + f->cnt_off);
    if (!json_is_object(v))
        return json_wrong(f->name, "an object", v, errstr, errstr_size);
    gq_kv_free(*kvp, *cnt);
    *cnt = 0;
    *kvp = json_object_size(v) ? calloc(json_object_size(v), sizeof(**kvp)) : NULL;
    if (json_object_size(v) && !*kvp)
        return GQ_ERR_NOMEM;
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
        gq_kv_t *kv = &(*kvp)[(*cnt)++];
        kv->key = strdup(key);
        if (json_is_string(item))
            kv->value = strdup(json_string_value(item));
        else if (f->kind == JK_OVERRIDES)
            kv->value = json_dumps(item, JSON_ENCODE_ANY | JSON_COMPACT);
        else {
            gq_errf(errstr, errstr_size, "%s[\"%.64s\"]: expected a string, got %s", f->name, key,
                    json_type_name(item));
            return GQ_ERR_INVALID;
        }
        if (!kv->key || !kv->value)
            return GQ_ERR_NOMEM;
    }
    return GQ_OK;
}

static gq_status_t json_int(const json_field_t *f, json_t *v, int64_t min, int64_t max,
                            int64_t *out, char *errstr, size_t errstr_size) {
    if (!json_is_integer(v))
        return json_wrong(f->name, "an integer", v, errstr, errstr_size);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        gq_errf(errstr, errstr_size, "%s: %lld is out of range %lld..%lld", f->name, (long long)x,
                (long long)min, (long long)max);
        return GQ_ERR_INVALID;
    }
    *out = x;
    return GQ_OK;
}

static gq_status_t json_field(const json_field_t *f, json_t *v, gq_request_t *req, char *errstr,
                              size_t errstr_size) {
    void *dst = (char *)req + f->off;
    int64_t x = 0;
    gq_status_t st;
    switch (f->kind) {
    case JK_ID:
        if (!json_is_string(v))
            return json_wrong(f->name, "a uuid string", v, errstr, errstr_size);
        if (json_string_length(v) >= sizeof(req->job_id)) {
            gq_errf(errstr, errstr_size, "job_id: longer than a uuid");
            return GQ_ERR_INVALID;
        }
        memcpy(req->job_id, json_string_value(v), json_string_length(v) + 1);
        return GQ_OK;
    case JK_OPT_STR:
        if (json_is_null(v)) {
            free(*(char **)dst);
            *(char **)dst = NULL;
            return GQ_OK;
        }
        /* fall through */
    case JK_STR:
        if (!json_is_string(v))
            return json_wrong(f->name, f->kind == JK_STR ? "a string" : "a string or null", v,
                              errstr, errstr_size);
        return json_set_str((char **)dst, json_string_value(v));
    case JK_INT:
        st = json_int(f, v, INT32_MIN, INT32_MAX, &x, errstr, errstr_size);
        *(int32_t *)dst = (int32_t)x;
        return st;
    case JK_OPT_INT:
        if (json_is_null(v)) {
            *(int32_t *)dst = 0;
            return GQ_OK;
        }
        st = json_int(f, v, 1, INT32_MAX, &x, errstr, errstr_size);
        *(int32_t *)dst = (int32_t)x;
        return st;
    case JK_LONG: return json_int(f, v, INT64_MIN, INT64_MAX, (int64_t *)dst, errstr, errstr_size);
    case JK_DOUBLE:
        if (!json_is_number(v))
            return json_wrong(f->name, "a number", v, errstr, errstr_size);
        *(double *)dst = json_number_value(v);
        return GQ_OK;
    case JK_MAP:
    case JK_OVERRIDES: return json_map(f, v, req, errstr, errstr_size);
    }
    return GQ_ERR;
}

static const json_field_t *json_find(const char *name) {
    for (size_t i = 0; i < GQ_ARRAY_LEN(json_fields); i++)
        if (strcmp(json_fields[i].name, name) == 0)
            return &json_fields[i];
    return NULL;
}

/* Names every unknown key at once, so one round of fixing is enough. */
static gq_status_t json_unknown(json_t *obj, char *errstr, size_t errstr_size) {
    gq_buf_t b;
    gq_buf_init(&b, 512);
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (json_find(key))
            continue;
        if (gq_buf_appendf(&b, "%s\"%.64s\"", n ? ", " : "", key) != GQ_OK)
            break;
        n++;
    }
    if (n)
        gq_errf(errstr, errstr_size,
                "unknown field%s %s (GenerationRequest fields are named as "
                "in schemas/GenerationRequest.avsc)",
                n > 1 ? "s" : "", b.data);
    gq_buf_release(&b);
    return n ? GQ_ERR_INVALID : GQ_OK;
}

gq_status_t gq_request_from_json_jansson(const char *json, size_t len, gq_request_t *req,
                                         char *errstr, size_t errstr_size) {
    gq_request_init(req);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        gq_errf(errstr, errstr_size, "not JSON: %s (column %d)", jerr.text, jerr.column);
        return GQ_ERR_INVALID;
    }
    gq_status_t st = GQ_OK;
    if (!json_is_object(root)) {
        gq_errf(errstr, errstr_size, "expected a JSON object, got %s", json_type_name(root));
        st = GQ_ERR_INVALID;
    } else if ((st = json_unknown(root, errstr, errstr_size)) == GQ_OK &&
               !json_object_get(root, "prompt")) {
        gq_errf(errstr, errstr_size, "prompt: missing (it has no default)");
        st = GQ_ERR_INVALID;
    }
    for (size_t i = 0; st == GQ_OK && i < GQ_ARRAY_LEN(json_fields); i++) {
        json_t *v = json_object_get(root, json_fields[i].name);
        if (v)
            st = json_field(&json_fields[i], v, req, errstr, errstr_size);
    }
    if (st == GQ_ERR_NOMEM)
        gq_errf(errstr, errstr_size, "out of memory");
    json_decref(root);
    return st;
}

/* One field of req as a JSON value (a new reference; NULL when out of memory). */
static json_t *json_out_field(const json_field_t *f, const gq_request_t *req) {
    const char *base = (const char *)req;
    switch (f->kind) {
    case JK_ID: return json_string(req->job_id);
    case JK_STR:
    case JK_OPT_STR: {
        const char *s = *(char *const *)(base + f->off);
        return s ? json_string(s) : json_null();
    }
    case JK_INT: return json_integer(*(const int32_t *)(base + f->off));
    case JK_OPT_INT: {
        int32_t v = *(const int32_t *)(base + f->off);
        return v ? json_integer(v) : json_null();
    }
    case JK_LONG: return json_integer(*(const int64_t *)(base + f->off));
    case JK_DOUBLE: return json_real(*(const double *)(base + f->off));
    case JK_MAP:
    case JK_OVERRIDES: {
        const gq_kv_t *kv = *(gq_kv_t *const *)(base + f->off);
        size_t cnt = *(const size_t *)(base + f->cnt_off);
        json_t *o = json_object();
        for (size_t i = 0; o && i < cnt; i++)
            if (kv[i].key && json_object_set_new(
                                 o, kv[i].key, json_string(kv[i].value ? kv[i].value : "")) != 0) {
                json_decref(o);
                return NULL;
            }
        return o;
    }
    }
    return NULL;
}

json_t *gq_request_to_json(const gq_request_t *req) {
    json_t *o = json_object();
    for (size_t i = 0; o && i < GQ_ARRAY_LEN(json_fields); i++) {
        json_t *v = json_out_field(&json_fields[i], req);
        if (!v || json_object_set_new(o, json_fields[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- the fast path ---- */

typedef enum fast_kind { FV_NONE = 0, FV_STR, FV_INT, FV_REAL, FV_NULL } fast_kind_t;

/* One value as scanned: a string's raw text between its quotes, or a number. */
typedef struct fast_val {
    fast_kind_t kind;
    const char *p;
    size_t n;
    bool escaped;
    int64_t i;
    double d;
} fast_val_t;

typedef struct fast {
    const char *p, *end;
} fast_t;

static void fast_ws(fast_t *f) {
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

/* A string without \u escapes, control characters or invalid UTF-8 (what jansson rejects
 * or decodes differently is left to jansson). */
static bool fast_string(fast_t *f, fast_val_t *v) {
    if (f->p >= f->end || *f->p != '"')
        return false;
    const char *start = ++f->p;
    bool escaped = false, ascii = true;
    while (f->p < f->end) {
        unsigned char c = (unsigned char)*f->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (f->p + 1 >= f->end || !strchr("\"\\/bfnrt", f->p[1]) || !f->p[1])
                return false;
            escaped = true;
            f->p++;
        }
        ascii = ascii && c < 0x80;
        f->p++;
    }
    if (f->p >= f->end)
        return false;
    *v = (fast_val_t){.kind = FV_STR, .p = start, .n = (size_t)(f->p - start), .escaped = escaped};
    f->p++;
    return ascii || gq_utf8_valid(start, v->n);
}

static bool fast_digits(fast_t *f) {
    const char *start = f->p;
    while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
        f->p++;
    return f->p > start;
}

/* A JSON number: an integer (strtoll, as jansson) or a real (strtod), neither out of range. */
static bool fast_number(fast_t *f, fast_val_t *v) {
    const char *start = f->p;
    bool real = false;
    if (f->p < f->end && *f->p == '-')
        f->p++;
    if (f->p < f->end && *f->p == '0') {
        f->p++;
        if (f->p < f->end && *f->p >= '0' && *f->p <= '9')
            return false;
    } else if (!fast_digits(f)) {
        return false;
    }
    if (f->p < f->end && *f->p == '.') {
        f->p++;
        real = true;
        if (!fast_digits(f))
            return false;
    }
    if (f->p < f->end && (*f->p == 'e' || *f->p == 'E')) {
        f->p++;
        real = true;
        if (f->p < f->end && (*f->p == '+' || *f->p == '-'))
            f->p++;
        if (!fast_digits(f))
            return false;
    }
    char tok[40];
    size_t n = (size_t)(f->p - start);
    if (n >= sizeof(tok))
        return false;
    memcpy(tok, start, n);
    tok[n] = '\0';
    char *stop = NULL;
    errno = 0;
    if (real) {
        v->kind = FV_REAL;
        v->d = strtod(tok, &stop);
        return errno == 0 && stop == tok + n && isfinite(v->d);
    }
    v->kind = FV_INT;
    v->i = strtoll(tok, &stop, 10);
    return errno == 0 && stop == tok + n;
}

static bool fast_value(fast_t *f, fast_val_t *v) {
    if (f->p >= f->end)
        return false;
    if (*f->p == '"')
        return fast_string(f, v);
    if (*f->p == '-' || (*f->p >= '0' && *f->p <= '9'))
        return fast_number(f, v);
    if ((size_t)(f->end - f->p) >= 4 && memcmp(f->p, "null", 4) == 0) {
        f->p += 4;
        v->kind = FV_NULL;
        return true;
    }
    return false;
}

/* Whether the scanned value suits the field the way json_field() would take it. */
static bool fast_fits(const json_field_t *jf, const fast_val_t *v) {
    switch (jf->kind) {
    case JK_ID:
        return v->kind == FV_STR && v->n < sizeof(((gq_request_t *)0)->job_id) && !v->escaped;
    case JK_STR: return v->kind == FV_STR;
    case JK_OPT_STR: return v->kind == FV_STR || v->kind == FV_NULL;
    case JK_INT: return v->kind == FV_INT && v->i >= INT32_MIN && v->i <= INT32_MAX;
    case JK_OPT_INT:
        return v->kind == FV_NULL || (v->kind == FV_INT && v->i >= 1 && v->i <= INT32_MAX);
    case JK_LONG: return v->kind == FV_INT;
    case JK_DOUBLE: return v->kind == FV_INT || v->kind == FV_REAL;
    case JK_MAP:
    case JK_OVERRIDES: return false;
    }
    return false;
}

/* The string's text with its escapes decoded (owned by the caller), or NULL (no memory). */
static char *fast_decode(const fast_val_t *v) {
    char *s = malloc(v->n + 1), *o = s;
    if (!s)
        return NULL;
    if (!v->escaped) {
        memcpy(s, v->p, v->n);
        s[v->n] = '\0';
        return s;
    }
    for (size_t i = 0; i < v->n; i++) {
        char c = v->p[i];
        if (c == '\\') {
            c = v->p[++i];
            c = c == 'b'   ? '\b'
                : c == 'f' ? '\f'
                : c == 'n' ? '\n'
                : c == 'r' ? '\r'
                : c == 't' ? '\t'
                           : c;
        }
        *o++ = c;
    }
    *o = '\0';
    return s;
}

static bool fast_set(const json_field_t *jf, const fast_val_t *v, gq_request_t *req) {
    void *dst = (char *)req + jf->off;
    switch (jf->kind) {
    case JK_ID:
        memcpy(req->job_id, v->p, v->n);
        req->job_id[v->n] = '\0';
        return true;
    case JK_STR:
    case JK_OPT_STR: {
        char *s = v->kind == FV_NULL ? NULL : fast_decode(v);
        if (v->kind != FV_NULL && !s)
            return false;
        free(*(char **)dst);
        *(char **)dst = s;
        return true;
    }
    case JK_INT:
    case JK_OPT_INT: *(int32_t *)dst = v->kind == FV_NULL ? 0 : (int32_t)v->i; return true;
    case JK_LONG: *(int64_t *)dst = v->i; return true;
    case JK_DOUBLE: *(double *)dst = v->kind == FV_REAL ? v->d : (double)v->i; return true;
    case JK_MAP:
    case JK_OVERRIDES: break;
    }
    return false;
}

bool gq_request_from_json_fast(const char *json, size_t len, gq_request_t *req) {
    fast_val_t vals[GQ_ARRAY_LEN(json_fields)];
    memset(vals, 0, sizeof(vals));
    fast_t f = {json, json + len};
    size_t next = 0;
    fast_ws(&f);
    if (f.p >= f.end || *f.p++ != '{')
        return false;
    for (;;) {
        fast_val_t key;
        fast_ws(&f);
        if (!fast_string(&f, &key) || key.escaped)
            return false;
        /* Fields mostly come in schema order: look from the one after the last. */
        size_t i = next, k = 0;
        for (; k < GQ_ARRAY_LEN(json_fields); k++, i = (i + 1) % GQ_ARRAY_LEN(json_fields))
            if (json_fields[i].name_len == key.n && memcmp(json_fields[i].name, key.p, key.n) == 0)
                break;
        next = (i + 1) % GQ_ARRAY_LEN(json_fields);
        if (k == GQ_ARRAY_LEN(json_fields) || vals[i].kind != FV_NONE)
            return false; /* unknown or repeated: jansson says which */
        fast_ws(&f);
        if (f.p >= f.end || *f.p++ != ':')
            return false;
        fast_ws(&f);
        if (!fast_value(&f, &vals[i]) || !fast_fits(&json_fields[i], &vals[i]))
            return false;
        fast_ws(&f);
        if (f.p < f.end && *f.p == ',') {
            f.p++;
            continue;
        }
        if (f.p < f.end && *f.p == '}') {
            f.p++;
            break;
        }
        return false;
    }
    fast_ws(&f);
    if (f.p != f.end || vals[GQ_REQ_PROMPT].kind == FV_NONE) /* trailing text, or no prompt */
        return false;
    gq_request_init(req);
    for (size_t i = 0; i < GQ_ARRAY_LEN(json_fields); i++) {
        if (vals[i].kind != FV_NONE && !fast_set(&json_fields[i], &vals[i], req)) {
            gq_request_release(req);
            return false;
        }
    }
    return true;
}

gq_status_t gq_request_from_json(const char *json, size_t len, gq_request_t *req, char *errstr,
                                 size_t errstr_size) {
    if (gq_request_from_json_fast(json, len, req))
        return GQ_OK;
    return gq_request_from_json_jansson(json, len, req, errstr, errstr_size);
}
