/*
 * Avro schema resolution on the bytes (see avro_resolve.h): a schema model read with
 * jansson, a plan compiled once per (writer, reader) pair, and a transcoder that reads a
 * writer's datum under the same limits as avro_check.c and writes the reader's.
 */
#include "avro_resolve.h"
#include "avro_check.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RES_MAX_DEPTH 32   /* nesting of data and of schema definitions */
#define RES_MAX_NODES 4096 /* schema nodes in one schema */

typedef enum avs_type {
    T_NULL,
    T_BOOLEAN,
    T_INT,
    T_LONG,
    T_FLOAT,
    T_DOUBLE,
    T_BYTES,
    T_STRING,
    T_RECORD,
    T_ENUM,
    T_ARRAY,
    T_MAP,
    T_UNION,
    T_FIXED,
} avs_type_t;

static const char *const avs_type_names[] = {
    "null",   "boolean", "int",  "long",  "float", "double", "bytes",
    "string", "record",  "enum", "array", "map",   "union",  "fixed",
};

typedef struct avs avs_t;

typedef struct avs_field {
    const char *name;
    const char **aliases;
    size_t aliases_cnt;
    avs_t *type;
    json_t *dflt; /* borrowed from the schema's JSON; NULL: no default */
} avs_field_t;

struct avs {
    avs_type_t t;
    char *fullname;   /* named types */
    const char *name; /* the unqualified part of fullname */
    char **aliases;   /* named types: full names */
    size_t aliases_cnt;
    avs_field_t *fields;
    size_t fields_cnt;
    const char **symbols;
    size_t symbols_cnt;
    int enum_default; /* -1: none */
    avs_t *items;     /* array items, map values */
    avs_t **branches;
    size_t branches_cnt;
    size_t size; /* fixed */
};

struct gq_avsc {
    json_t *json;
    avs_t *root;
    avs_t **all; /* every node, for lookup by name and for freeing */
    size_t all_cnt, all_cap;
};

/* ------------------------------------------------------------------------------------------
 * The schema model */

typedef struct parse {
    gq_avsc_t *s;
    char *errstr;
    size_t errstr_size;
} parse_t;

static avs_t *parse_fail(parse_t *ps, const char *fmt, ...) GQ_PRINTF(2, 3);
static avs_t *parse_fail(parse_t *ps, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (ps->errstr && ps->errstr_size)
        vsnprintf(ps->errstr, ps->errstr_size, fmt, ap);
    va_end(ap);
    return NULL;
}

static avs_t *parse_node(parse_t *ps, avs_type_t t) {
    gq_avsc_t *s = ps->s;
    if (s->all_cnt == RES_MAX_NODES)
        return parse_fail(ps, "more than %d types in one schema", RES_MAX_NODES);
    if (s->all_cnt == s->all_cap) {
        size_t cap = s->all_cap ? s->all_cap * 2 : 32;
        avs_t **a = realloc(s->all, cap * sizeof(*a));
        if (!a)
            return parse_fail(ps, "out of memory");
        s->all = a;
        s->all_cap = cap;
    }
    avs_t *n = calloc(1, sizeof(*n));
    if (!n)
        return parse_fail(ps, "out of memory");
    n->t = t;
    n->enum_default = -1;
    s->all[s->all_cnt++] = n;
    return n;
}

static int parse_primitive(const char *name) {
    for (int t = T_NULL; t <= T_STRING; t++)
        if (strcmp(name, avs_type_names[t]) == 0)
            return t;
    return -1;
}

/* "ns.name" or "name" when ns is empty; a name with a dot is already full. */
static char *parse_qualify(const char *name, const char *ns) {
    size_t n = strlen(name), m = ns ? strlen(ns) : 0;
    bool full = strchr(name, '.') || m == 0;
    char *out = malloc(full ? n + 1 : m + 1 + n + 1);
    if (!out)
        return NULL;
    if (full) {
        memcpy(out, name, n + 1);
    } else {
        memcpy(out, ns, m);
        out[m] = '.';
        memcpy(out + m + 1, name, n + 1);
    }
    return out;
}

static avs_t *parse_lookup(const gq_avsc_t *s, const char *fullname) {
    for (size_t i = 0; i < s->all_cnt; i++)
        if (s->all[i]->fullname && strcmp(s->all[i]->fullname, fullname) == 0)
            return s->all[i];
    return NULL;
}

static bool parse_valid_name(const char *s) {
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        bool alpha = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_';
        if (!alpha && !(p > s && *p >= '0' && *p <= '9') && !(*p == '.' && p > s && p[1]))
            return false;
    }
    return true;
}

static avs_t *parse_type(parse_t *ps, json_t *j, const char *ns, int depth);

/* A named type's name, namespace and aliases; returns the namespace for what it encloses. */
static bool parse_named(parse_t *ps, avs_t *n, json_t *j, const char *ns, char **inner_ns) {
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *jns = json_object_get(j, "namespace");
    if (!name || !parse_valid_name(name)) {
        parse_fail(ps, "a %s without a valid name", avs_type_names[n->t]);
        return false;
    }
    if (json_is_string(jns))
        ns = json_string_value(jns);
    n->fullname = parse_qualify(name, ns);
    if (!n->fullname) {
        parse_fail(ps, "out of memory");
        return false;
    }
    const char *dot = strrchr(n->fullname, '.');
    n->name = dot ? dot + 1 : n->fullname;
    size_t nsl = dot ? (size_t)(dot - n->fullname) : 0;
    *inner_ns = strndup(n->fullname, nsl);
    if (!*inner_ns) {
        parse_fail(ps, "out of memory");
        return false;
    }
    for (size_t i = 0; i + 1 < ps->s->all_cnt; i++) {
        if (ps->s->all[i]->fullname && strcmp(ps->s->all[i]->fullname, n->fullname) == 0) {
            parse_fail(ps, "%s is defined twice", n->fullname);
            return false;
        }
    }
    json_t *al = json_object_get(j, "aliases");
    if (json_is_array(al) && json_array_size(al)) {
        n->aliases = calloc(json_array_size(al), sizeof(*n->aliases));
        if (!n->aliases) {
            parse_fail(ps, "out of memory");
            return false;
        }
        for (size_t i = 0; i < json_array_size(al); i++) {
            const char *a = json_string_value(json_array_get(al, i));
            if (!a)
                continue;
            if (!(n->aliases[n->aliases_cnt] = parse_qualify(a, *inner_ns))) {
                parse_fail(ps, "out of memory");
                return false;
            }
            n->aliases_cnt++;
        }
    }
    return true;
}

static bool parse_record(parse_t *ps, avs_t *n, json_t *j, const char *ns, int depth) {
    json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields)) {
        parse_fail(ps, "record %s has no fields array", n->fullname);
        return false;
    }
    n->fields_cnt = json_array_size(fields);
    n->fields = calloc(n->fields_cnt ? n->fields_cnt : 1, sizeof(*n->fields));
    if (!n->fields) {
        parse_fail(ps, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n->fields_cnt; i++) {
        json_t *f = json_array_get(fields, i);
        avs_field_t *fd = &n->fields[i];
        fd->name = json_string_value(json_object_get(f, "name"));
        if (!fd->name || !parse_valid_name(fd->name) || strchr(fd->name, '.')) {
            parse_fail(ps, "record %s: field %zu has no valid name", n->fullname, i);
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(n->fields[k].name, fd->name) == 0) {
                parse_fail(ps, "record %s: field %s appears twice", n->fullname, fd->name);
                return false;
            }
        }
        fd->dflt = json_object_get(f, "default");
        json_t *al = json_object_get(f, "aliases");
        if (json_is_array(al) && json_array_size(al)) {
            fd->aliases = calloc(json_array_size(al), sizeof(*fd->aliases));
            if (!fd->aliases) {
                parse_fail(ps, "out of memory");
                return false;
            }
            for (size_t k = 0; k < json_array_size(al); k++)
                if (json_is_string(json_array_get(al, k)))
                    fd->aliases[fd->aliases_cnt++] = json_string_value(json_array_get(al, k));
        }
        if (!(fd->type = parse_type(ps, json_object_get(f, "type"), ns, depth + 1))) {
            size_t l = ps->errstr ? strlen(ps->errstr) : 0;
            if (ps->errstr && l + 1 < ps->errstr_size) {
                char tmp[512];
                snprintf(tmp, sizeof(tmp), "field %s: %s", fd->name, ps->errstr);
                snprintf(ps->errstr, ps->errstr_size, "%s", tmp);
            }
            return false;
        }
    }
    return true;
}

static bool parse_enum(parse_t *ps, avs_t *n, json_t *j) {
    json_t *syms = json_object_get(j, "symbols");
    if (!json_is_array(syms)) {
        parse_fail(ps, "enum %s has no symbols", n->fullname);
        return false;
    }
    n->symbols_cnt = json_array_size(syms);
    n->symbols = calloc(n->symbols_cnt ? n->symbols_cnt : 1, sizeof(*n->symbols));
    if (!n->symbols) {
        parse_fail(ps, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n->symbols_cnt; i++) {
        n->symbols[i] = json_string_value(json_array_get(syms, i));
        if (!n->symbols[i] || !parse_valid_name(n->symbols[i]) || strchr(n->symbols[i], '.')) {
            parse_fail(ps, "enum %s: symbol %zu is not a valid name", n->fullname, i);
            return false;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->symbols[k], n->symbols[i]) == 0) {
                parse_fail(ps, "enum %s: symbol %s appears twice", n->fullname, n->symbols[i]);
                return false;
            }
    }
    const char *d = json_string_value(json_object_get(j, "default"));
    for (size_t i = 0; d && i < n->symbols_cnt; i++)
        if (strcmp(n->symbols[i], d) == 0)
            n->enum_default = (int)i;
    if (d && n->enum_default < 0) {
        parse_fail(ps, "enum %s: default %s is not a symbol", n->fullname, d);
        return false;
    }
    return true;
}

static avs_t *parse_object(parse_t *ps, json_t *j, const char *ns, int depth) {
    json_t *jt = json_object_get(j, "type");
    if (json_is_object(jt) || json_is_array(jt))
        return parse_type(ps, jt, ns, depth + 1);
    const char *t = json_string_value(jt);
    if (!t)
        return parse_fail(ps, "a type object without a type");
    int prim = parse_primitive(t);
    if (prim >= 0)
        return parse_node(ps, (avs_type_t)prim); /* logicalType and the like change nothing */
    avs_type_t kind;
    if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0)
        kind = T_RECORD;
    else if (strcmp(t, "enum") == 0)
        kind = T_ENUM;
    else if (strcmp(t, "fixed") == 0)
        kind = T_FIXED;
    else if (strcmp(t, "array") == 0)
        kind = T_ARRAY;
    else if (strcmp(t, "map") == 0)
        kind = T_MAP;
    else
        return parse_type(ps, jt, ns, depth + 1); /* {"type": "some.Named"} */
    avs_t *n = parse_node(ps, kind);
    if (!n)
        return NULL;
    if (kind == T_ARRAY || kind == T_MAP) {
        n->items =
            parse_type(ps, json_object_get(j, kind == T_ARRAY ? "items" : "values"), ns, depth + 1);
        return n->items ? n : NULL;
    }
    char *inner = NULL;
    bool ok = parse_named(ps, n, j, ns, &inner);
    if (ok && kind == T_RECORD)
        ok = parse_record(ps, n, j, inner, depth);
    else if (ok && kind == T_ENUM)
        ok = parse_enum(ps, n, j);
    else if (ok) {
        json_t *size = json_object_get(j, "size");
        ok = json_is_integer(size) && json_integer_value(size) >= 0 &&
             json_integer_value(size) <= (1 << 20);
        if (!ok)
            parse_fail(ps, "fixed %s has no valid size", n->fullname);
        n->size = ok ? (size_t)json_integer_value(size) : 0;
    }
    free(inner);
    return ok ? n : NULL;
}

static avs_t *parse_type(parse_t *ps, json_t *j, const char *ns, int depth) {
    if (depth > RES_MAX_DEPTH)
        return parse_fail(ps, "types nested deeper than %d", RES_MAX_DEPTH);
    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        int prim = parse_primitive(name);
        if (prim >= 0)
            return parse_node(ps, (avs_type_t)prim);
        char *full = parse_qualify(name, ns);
        avs_t *n = full ? parse_lookup(ps->s, full) : NULL;
        free(full);
        if (!n)
            n = parse_lookup(ps->s, name);
        return n ? n : parse_fail(ps, "unknown type %s", name);
    }
    if (json_is_array(j)) {
        avs_t *n = parse_node(ps, T_UNION);
        if (!n)
            return NULL;
        n->branches_cnt = json_array_size(j);
        n->branches = calloc(n->branches_cnt ? n->branches_cnt : 1, sizeof(*n->branches));
        if (!n->branches)
            return parse_fail(ps, "out of memory");
        for (size_t i = 0; i < n->branches_cnt; i++) {
            if (!(n->branches[i] = parse_type(ps, json_array_get(j, i), ns, depth + 1)))
                return NULL;
            if (n->branches[i]->t == T_UNION)
                return parse_fail(ps, "a union directly inside a union");
            for (size_t k = 0; k < i; k++) {
                const avs_t *a = n->branches[k], *b = n->branches[i];
                if (a->t == b->t && (!a->fullname || strcmp(a->fullname, b->fullname) == 0))
                    return parse_fail(ps, "a union with %s twice",
                                      a->fullname ? a->fullname : avs_type_names[a->t]);
            }
        }
        return n;
    }
    if (json_is_object(j))
        return parse_object(ps, j, ns, depth);
    return parse_fail(ps, "not a schema (expected a string, array or object)");
}

void gq_avsc_destroy(gq_avsc_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->all_cnt; i++) {
        avs_t *n = s->all[i];
        free(n->fullname);
        for (size_t k = 0; k < n->aliases_cnt; k++)
            free(n->aliases[k]);
        free(n->aliases);
        for (size_t k = 0; k < n->fields_cnt; k++)
            free(n->fields[k].aliases);
        free(n->fields);
        free(n->symbols);
        free(n->branches);
        free(n);
    }
    free(s->all);
    json_decref(s->json);
    free(s);
}

gq_avsc_t *gq_avsc_parse(const char *json, size_t len, char *errstr, size_t errstr_size) {
    gq_avsc_t *s = calloc(1, sizeof(*s));
    if (!s) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    json_error_t je;
    s->json = json_loadb(json, len, JSON_DECODE_ANY, &je);
    if (!s->json) {
        gq_errf(errstr, errstr_size, "not JSON: %s (line %d)", je.text, je.line);
        gq_avsc_destroy(s);
        return NULL;
    }
    parse_t ps = {s, errstr, errstr_size};
    s->root = parse_type(&ps, s->json, "", 0);
    if (!s->root) {
        gq_avsc_destroy(s);
        return NULL;
    }
    return s;
}

const char *gq_avsc_name(const gq_avsc_t *s) {
    return s->root->fullname ? s->root->fullname : avs_type_names[s->root->t];
}

size_t gq_avsc_field_count(const gq_avsc_t *s) {
    return s->root->t == T_RECORD ? s->root->fields_cnt : 0;
}

const char *gq_avsc_field_name(const gq_avsc_t *s, size_t i) {
    return i < gq_avsc_field_count(s) ? s->root->fields[i].name : NULL;
}

/* ------------------------------------------------------------------------------------------
 * Encoding helpers (shared by defaults and the transcoder) */

static size_t enc_varint(unsigned char out[10], int64_t v) {
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (u >= 0x80) {
        out[n++] = (unsigned char)(u | 0x80);
        u >>= 7;
    }
    out[n++] = (unsigned char)u;
    return n;
}

static gq_status_t put_varint(gq_buf_t *b, int64_t v) {
    unsigned char tmp[10];
    return b ? gq_buf_append(b, tmp, enc_varint(tmp, v)) : GQ_OK;
}

static gq_status_t put_float(gq_buf_t *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    unsigned char t[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    return b ? gq_buf_append(b, t, 4) : GQ_OK;
}

static gq_status_t put_double(gq_buf_t *b, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    unsigned char t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (unsigned char)(u >> (8 * i));
    return b ? gq_buf_append(b, t, 8) : GQ_OK;
}

/* ------------------------------------------------------------------------------------------
 * Defaults: a field's JSON default, encoded once with the reader's type */

static gq_status_t default_encode(const avs_t *t, json_t *d, gq_buf_t *b, int depth, char *errstr,
                                  size_t errstr_size);

/* The bytes of a JSON string default of bytes or fixed: code points 0..255, one byte each. */
static gq_status_t default_octets(json_t *d, gq_buf_t *b, size_t want, bool with_len, char *errstr,
                                  size_t errstr_size) {
    const unsigned char *s = (const unsigned char *)json_string_value(d);
    size_t n = json_string_length(d), cnt = 0;
    if (!s) {
        gq_errf(errstr, errstr_size, "default is not a string");
        return GQ_ERR_INVALID;
    }
    unsigned char *tmp = malloc(n ? n : 1);
    if (!tmp)
        return GQ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c >= 0x80) {
            if ((c & 0xe0) != 0xc0 || i + 1 >= n || c > 0xc3) {
                free(tmp);
                gq_errf(errstr, errstr_size, "default has a character above U+00FF");
                return GQ_ERR_INVALID;
            }
            c = ((c & 0x1f) << 6) | (s[++i] & 0x3f);
        }
        tmp[cnt++] = (unsigned char)c;
    }
    gq_status_t st = GQ_OK;
    if (!with_len && cnt != want) {
        gq_errf(errstr, errstr_size, "default of %zu bytes for a fixed of %zu", cnt, want);
        st = GQ_ERR_INVALID;
    }
    if (st == GQ_OK && with_len)
        st = put_varint(b, (int64_t)cnt);
    if (st == GQ_OK)
        st = gq_buf_append(b, tmp, cnt);
    free(tmp);
    return st;
}

static const char *type_name(avs_type_t t) {
    return (size_t)t < GQ_ARRAY_LEN(avs_type_names) ? avs_type_names[t] : "?";
}

static gq_status_t default_bad(const avs_t *t, char *errstr, size_t errstr_size) {
    gq_errf(errstr, errstr_size, "default is not a valid %s", type_name(t->t));
    return GQ_ERR_INVALID;
}

static gq_status_t default_record(const avs_t *t, json_t *d, gq_buf_t *b, int depth, char *errstr,
                                  size_t errstr_size) {
    if (!json_is_object(d))
        return default_bad(t, errstr, errstr_size);
    for (size_t i = 0; i < t->fields_cnt; i++) {
        json_t *v = json_object_get(d, t->fields[i].name);
        if (!v)
            v = t->fields[i].dflt;
        if (!v) {
            gq_errf(errstr, errstr_size, "default lacks field %s", t->fields[i].name);
            return GQ_ERR_INVALID;
        }
        gq_status_t st = default_encode(t->fields[i].type, v, b, depth + 1, errstr, errstr_size);
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}

static gq_status_t default_encode(const avs_t *t, json_t *d, gq_buf_t *b, int depth, char *errstr,
                                  size_t errstr_size) {
    if (depth > RES_MAX_DEPTH) {
        gq_errf(errstr, errstr_size, "default nested deeper than %d", RES_MAX_DEPTH);
        return GQ_ERR_INVALID;
    }
    gq_status_t st = GQ_OK;
    switch (t->t) {
    case T_NULL: return json_is_null(d) ? GQ_OK : default_bad(t, errstr, errstr_size);
    case T_BOOLEAN:
        if (!json_is_boolean(d))
            return default_bad(t, errstr, errstr_size);
        return gq_buf_append(b, json_is_true(d) ? "\1" : "\0", 1);
    case T_INT:
    case T_LONG:
        if (!json_is_integer(d) || (t->t == T_INT && (json_integer_value(d) < INT32_MIN ||
                                                      json_integer_value(d) > INT32_MAX)))
            return default_bad(t, errstr, errstr_size);
        return put_varint(b, json_integer_value(d));
    case T_FLOAT:
    case T_DOUBLE:
        if (!json_is_number(d))
            return default_bad(t, errstr, errstr_size);
        return t->t == T_FLOAT ? put_float(b, (float)json_number_value(d))
                               : put_double(b, json_number_value(d));
    case T_STRING:
        if (!json_is_string(d))
            return default_bad(t, errstr, errstr_size);
        if ((st = put_varint(b, (int64_t)json_string_length(d))) != GQ_OK)
            return st;
        return gq_buf_append(b, json_string_value(d), json_string_length(d));
    case T_BYTES: return default_octets(d, b, 0, true, errstr, errstr_size);
    case T_FIXED: return default_octets(d, b, t->size, false, errstr, errstr_size);
    case T_ENUM:
        for (size_t i = 0; json_is_string(d) && i < t->symbols_cnt; i++)
            if (strcmp(t->symbols[i], json_string_value(d)) == 0)
                return put_varint(b, (int64_t)i);
        return default_bad(t, errstr, errstr_size);
    case T_RECORD: return default_record(t, d, b, depth, errstr, errstr_size);
    case T_ARRAY:
        if (!json_is_array(d))
            return default_bad(t, errstr, errstr_size);
        if (json_array_size(d) && (st = put_varint(b, (int64_t)json_array_size(d))) != GQ_OK)
            return st;
        for (size_t i = 0; st == GQ_OK && i < json_array_size(d); i++)
            st = default_encode(t->items, json_array_get(d, i), b, depth + 1, errstr, errstr_size);
        return st == GQ_OK ? put_varint(b, 0) : st;
    case T_MAP: {
        if (!json_is_object(d))
            return default_bad(t, errstr, errstr_size);
        if (json_object_size(d) && (st = put_varint(b, (int64_t)json_object_size(d))) != GQ_OK)
            return st;
        const char *k;
        json_t *v;
        json_object_foreach(d, k, v) {
            if (st == GQ_OK)
                st = put_varint(b, (int64_t)strlen(k));
            if (st == GQ_OK)
                st = gq_buf_append(b, k, strlen(k));
            if (st == GQ_OK)
                st = default_encode(t->items, v, b, depth + 1, errstr, errstr_size);
        }
        return st == GQ_OK ? put_varint(b, 0) : st;
    }
    case T_UNION:
        /* The default of a union is a value of its first branch. */
        if (!t->branches_cnt)
            return default_bad(t, errstr, errstr_size);
        if ((st = put_varint(b, 0)) != GQ_OK)
            return st;
        return default_encode(t->branches[0], d, b, depth + 1, errstr, errstr_size);
    }
    return default_bad(t, errstr, errstr_size);
}

/* ------------------------------------------------------------------------------------------
 * Plans */

typedef enum pop {
    P_ERR, /* what the reader cannot take; fails when a datum gets there */
    P_NULL,
    P_BOOL,
    P_INT, /* int, or int read as long: the same bytes */
    P_LONG,
    P_INT_FLOAT,
    P_INT_DOUBLE,
    P_LONG_FLOAT,
    P_LONG_DOUBLE,
    P_FLOAT,
    P_FLOAT_DOUBLE,
    P_DOUBLE,
    P_STRING, /* string, or bytes read as string: must be UTF-8 without NUL */
    P_BYTES,  /* bytes, or string read as bytes */
    P_FIXED,
    P_ENUM,
    P_RECORD,
    P_ARRAY,
    P_MAP,
    P_WUNION, /* the writer's union: a plan per branch */
    P_RUNION, /* a non-union writer into a reader's union: the branch index, then sub */
} pop_t;

typedef struct pnode pnode_t;

typedef struct pfield {
    int rindex; /* the reader's field it fills, -1: skipped */
    pnode_t *p;
    const char *name;
} pfield_t;

struct pnode {
    pop_t op;
    const avs_t *w, *r;
    char *err;
    size_t size;
    int *enum_map; /* writer symbol -> reader symbol, -1: none */
    size_t enum_cnt;
    pnode_t *sub; /* array items, map values, P_RUNION's branch */
    int rindex;
    pfield_t *wf; /* record: per writer field */
    size_t wf_cnt;
    unsigned char **dflt; /* record: per reader field not written, its encoded default */
    size_t *dflt_len;
    size_t rf_cnt;
    bool in_order; /* record: the writer's fields are the reader's, in order: stream through */
    pnode_t **branches;
    size_t branches_cnt;
};

struct gq_avro_plan {
    pnode_t *root;
    pnode_t **all;
    size_t all_cnt, all_cap;
};

typedef struct compile {
    gq_avro_plan_t *plan;
    bool strict;
    const char *path[RES_MAX_DEPTH * 2 + 2];
    int path_len;
    char msg[512]; /* the first failure */
    gq_status_t st;
} compile_t;

/* "field a.b[]: msg" from the path of field names being compiled. */
static void compile_fail(compile_t *c, const char *fmt, ...) GQ_PRINTF(2, 3);
static void compile_fail(compile_t *c, const char *fmt, ...) {
    if (c->st != GQ_OK)
        return;
    char path[200] = "", msg[300];
    size_t n = 0;
    for (int i = 0; i < c->path_len && n < sizeof(path); i++) {
        int k = snprintf(path + n, sizeof(path) - n, "%s%s", n && c->path[i][0] != '[' ? "." : "",
                         c->path[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n)
        snprintf(c->msg, sizeof(c->msg), "%s: %s", path, msg);
    else
        snprintf(c->msg, sizeof(c->msg), "%s", msg);
    c->st = GQ_ERR_INVALID;
}

static pnode_t *pnode_new(compile_t *c, pop_t op, const avs_t *w, const avs_t *r) {
    gq_avro_plan_t *p = c->plan;
    if (p->all_cnt == p->all_cap) {
        size_t cap = p->all_cap ? p->all_cap * 2 : 32;
        pnode_t **a = realloc(p->all, cap * sizeof(*a));
        if (!a) {
            compile_fail(c, "out of memory");
            c->st = GQ_ERR_NOMEM;
            return NULL;
        }
        p->all = a;
        p->all_cap = cap;
    }
    pnode_t *n = calloc(1, sizeof(*n));
    if (!n) {
        compile_fail(c, "out of memory");
        c->st = GQ_ERR_NOMEM;
        return NULL;
    }
    n->op = op;
    n->w = w;
    n->r = r;
    p->all[p->all_cnt++] = n;
    return n;
}

/* A node that fails when a datum reaches it (lenient), or a failure now (strict). */
static pnode_t *pnode_err(compile_t *c, const avs_t *w, const avs_t *r, const char *fmt, ...)
    GQ_PRINTF(4, 5);
static pnode_t *pnode_err(compile_t *c, const avs_t *w, const avs_t *r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->strict) {
        compile_fail(c, "%s", msg);
        return NULL;
    }
    pnode_t *n = pnode_new(c, P_ERR, w, r);
    if (n && !(n->err = strdup(msg))) {
        compile_fail(c, "out of memory");
        return NULL;
    }
    return n;
}

static bool names_match(const avs_t *w, const avs_t *r) {
    if (strcmp(w->name, r->name) == 0)
        return true;
    for (size_t i = 0; i < r->aliases_cnt; i++)
        if (strcmp(r->aliases[i], w->fullname) == 0)
            return true;
    return false;
}

/* How a writer's type is read as a reader's: the op, 0 (P_ERR) when it cannot be. Named
 * types must have matching names. */
static pop_t compile_op(const avs_t *w, const avs_t *r) {
    switch (r->t) {
    case T_NULL: return w->t == T_NULL ? P_NULL : P_ERR;
    case T_BOOLEAN: return w->t == T_BOOLEAN ? P_BOOL : P_ERR;
    case T_INT: return w->t == T_INT ? P_INT : P_ERR;
    case T_LONG: return w->t == T_INT ? P_INT : w->t == T_LONG ? P_LONG : P_ERR;
    case T_FLOAT:
        return w->t == T_INT     ? P_INT_FLOAT
               : w->t == T_LONG  ? P_LONG_FLOAT
               : w->t == T_FLOAT ? P_FLOAT
                                 : P_ERR;
    case T_DOUBLE:
        return w->t == T_INT      ? P_INT_DOUBLE
               : w->t == T_LONG   ? P_LONG_DOUBLE
               : w->t == T_FLOAT  ? P_FLOAT_DOUBLE
               : w->t == T_DOUBLE ? P_DOUBLE
                                  : P_ERR;
    case T_STRING: return w->t == T_STRING || w->t == T_BYTES ? P_STRING : P_ERR;
    case T_BYTES: return w->t == T_STRING || w->t == T_BYTES ? P_BYTES : P_ERR;
    case T_FIXED: return w->t == T_FIXED && names_match(w, r) ? P_FIXED : P_ERR;
    case T_ENUM: return w->t == T_ENUM && names_match(w, r) ? P_ENUM : P_ERR;
    case T_RECORD: return w->t == T_RECORD && names_match(w, r) ? P_RECORD : P_ERR;
    case T_ARRAY: return w->t == T_ARRAY ? P_ARRAY : P_ERR;
    case T_MAP: return w->t == T_MAP ? P_MAP : P_ERR;
    case T_UNION: return P_ERR;
    }
    return P_ERR;
}

static const char *type_label(const avs_t *t) {
    return t->fullname ? t->fullname : avs_type_names[t->t];
}

static pnode_t *compile_node(compile_t *c, const avs_t *w, const avs_t *r);

static pnode_t *compile_record(compile_t *c, pnode_t *n, const avs_t *w, const avs_t *r) {
    n->wf_cnt = w->fields_cnt;
    n->rf_cnt = r->fields_cnt;
    n->wf = calloc(w->fields_cnt ? w->fields_cnt : 1, sizeof(*n->wf));
    n->dflt = calloc(r->fields_cnt ? r->fields_cnt : 1, sizeof(*n->dflt));
    n->dflt_len = calloc(r->fields_cnt ? r->fields_cnt : 1, sizeof(*n->dflt_len));
    if (!n->wf || !n->dflt || !n->dflt_len) {
        compile_fail(c, "out of memory");
        return NULL;
    }
    bool in_order = w->fields_cnt == r->fields_cnt;
    for (size_t i = 0; i < w->fields_cnt; i++) {
        const avs_field_t *wf = &w->fields[i];
        int found = -1;
        for (size_t k = 0; found < 0 && k < r->fields_cnt; k++) {
            const avs_field_t *rf = &r->fields[k];
            if (strcmp(rf->name, wf->name) == 0)
                found = (int)k;
            for (size_t a = 0; found < 0 && a < rf->aliases_cnt; a++)
                if (strcmp(rf->aliases[a], wf->name) == 0)
                    found = (int)k;
        }
        n->wf[i].rindex = found;
        n->wf[i].name = wf->name;
        in_order = in_order && found == (int)i;
        c->path[c->path_len++] = wf->name;
        /* A field the reader does not have is read with the writer's own type, to skip it. */
        n->wf[i].p = compile_node(c, wf->type, found >= 0 ? r->fields[found].type : wf->type);
        c->path_len--;
        if (!n->wf[i].p)
            return NULL;
    }
    n->in_order = in_order;
    for (size_t k = 0; k < r->fields_cnt; k++) {
        bool written = false;
        for (size_t i = 0; i < w->fields_cnt && !written; i++)
            written = n->wf[i].rindex == (int)k;
        if (written)
            continue;
        const avs_field_t *rf = &r->fields[k];
        c->path[c->path_len++] = rf->name;
        if (!rf->dflt) {
            compile_fail(c, "not in the writer's schema, and the reader's has no default");
            c->path_len--;
            return NULL;
        }
        gq_buf_t b;
        gq_buf_init(&b, 1u << 20);
        char err[256];
        gq_status_t st = default_encode(rf->type, rf->dflt, &b, 0, err, sizeof(err));
        unsigned char *d = st == GQ_OK ? malloc(b.len ? b.len : 1) : NULL;
        if (!d) {
            compile_fail(c, "the reader's %s", st == GQ_OK ? "out of memory" : err);
            gq_buf_release(&b);
            c->path_len--;
            return NULL;
        }
        c->path_len--;
        if (b.len)
            memcpy(d, b.data, b.len);
        n->dflt_len[k] = b.len;
        n->dflt[k] = d;
        gq_buf_release(&b);
    }
    return n;
}

static pnode_t *compile_enum(compile_t *c, pnode_t *n, const avs_t *w, const avs_t *r) {
    n->enum_cnt = w->symbols_cnt;
    n->enum_map = calloc(w->symbols_cnt ? w->symbols_cnt : 1, sizeof(*n->enum_map));
    if (!n->enum_map) {
        compile_fail(c, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < w->symbols_cnt; i++) {
        n->enum_map[i] = r->enum_default;
        for (size_t k = 0; k < r->symbols_cnt; k++)
            if (strcmp(w->symbols[i], r->symbols[k]) == 0)
                n->enum_map[i] = (int)k;
        if (n->enum_map[i] < 0 && c->strict) {
            compile_fail(c,
                         "symbol %s of enum %s is not in the reader's enum, which has no default",
                         w->symbols[i], w->fullname);
            return NULL;
        }
    }
    return n;
}

/* A writer's non-union type into a reader's union: the first branch of the same type (and
 * name), else the first it can be promoted to. */
static pnode_t *compile_into_union(compile_t *c, const avs_t *w, const avs_t *r) {
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->branches_cnt; i++) {
            const avs_t *b = r->branches[i];
            pop_t op = compile_op(w, b);
            bool same = b->t == w->t;
            if (op == P_ERR || (pass == 0 && !same))
                continue;
            pnode_t *n = pnode_new(c, P_RUNION, w, r);
            if (!n)
                return NULL;
            n->rindex = (int)i;
            n->sub = compile_node(c, w, b);
            return n->sub ? n : NULL;
        }
    }
    return pnode_err(c, w, r, "the writer's %s is not a branch of the reader's union",
                     type_label(w));
}

static pnode_t *compile_node(compile_t *c, const avs_t *w, const avs_t *r) {
    if (c->st != GQ_OK)
        return NULL;
    /* Recursive types: a pair already compiled (or being compiled) is reused. */
    for (size_t i = 0; i < c->plan->all_cnt; i++)
        if (c->plan->all[i]->w == w && c->plan->all[i]->r == r && c->plan->all[i]->op != P_ERR)
            return c->plan->all[i];
    if (c->path_len >= RES_MAX_DEPTH * 2) {
        compile_fail(c, "types nested deeper than %d", RES_MAX_DEPTH);
        return NULL;
    }
    if (w->t == T_UNION) {
        pnode_t *n = pnode_new(c, P_WUNION, w, r);
        if (!n)
            return NULL;
        n->branches_cnt = w->branches_cnt;
        n->branches = calloc(w->branches_cnt ? w->branches_cnt : 1, sizeof(*n->branches));
        if (!n->branches) {
            compile_fail(c, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < w->branches_cnt; i++) {
            n->branches[i] = compile_node(c, w->branches[i], r);
            if (!n->branches[i] && !c->strict && c->st == GQ_ERR_INVALID) {
                /* Lenient: a branch the reader cannot take fails only the data that uses it. */
                char msg[sizeof(c->msg)];
                memcpy(msg, c->msg, sizeof(msg));
                c->st = GQ_OK;
                n->branches[i] = pnode_err(c, w->branches[i], r, "%s", msg);
            }
            if (!n->branches[i])
                return NULL;
        }
        return n;
    }
    if (r->t == T_UNION)
        return compile_into_union(c, w, r);
    pop_t op = compile_op(w, r);
    if (op == P_ERR) {
        bool named = w->fullname && r->fullname && w->t == r->t;
        compile_fail(c,
                     named ? "the writer's %s %s does not match the reader's %s"
                           : "the writer's %s cannot be read as %s%s",
                     named ? avs_type_names[w->t] : type_label(w),
                     named ? w->fullname : type_label(r), named ? r->fullname : "");
        return NULL;
    }
    pnode_t *n = pnode_new(c, op, w, r);
    if (!n)
        return NULL;
    switch (op) {
    case P_FIXED:
        if (w->size != r->size) {
            compile_fail(c, "fixed %s of %zu bytes read as one of %zu", w->fullname, w->size,
                         r->size);
            return NULL;
        }
        n->size = w->size;
        return n;
    case P_ENUM: return compile_enum(c, n, w, r);
    case P_RECORD: return compile_record(c, n, w, r);
    case P_ARRAY:
    case P_MAP:
        c->path[c->path_len++] = op == P_ARRAY ? "[]" : "{}";
        n->sub = compile_node(c, w->items, r->items);
        c->path_len--;
        return n->sub ? n : NULL;
    default: return n;
    }
}

void gq_avro_plan_destroy(gq_avro_plan_t *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->all_cnt; i++) {
        pnode_t *n = p->all[i];
        free(n->err);
        free(n->enum_map);
        free(n->wf);
        for (size_t k = 0; n->dflt && k < n->rf_cnt; k++)
            free(n->dflt[k]);
        free(n->dflt);
        free(n->dflt_len);
        free(n->branches);
        free(n);
    }
    free(p->all);
    free(p);
}

gq_avro_plan_t *gq_avro_plan_new(const gq_avsc_t *writer, const gq_avsc_t *reader, bool strict,
                                 char *errstr, size_t errstr_size) {
    gq_avro_plan_t *p = calloc(1, sizeof(*p));
    if (!p) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    compile_t c = {.plan = p, .strict = strict};
    p->root = compile_node(&c, writer->root, reader->root);
    if (!p->root || c.st != GQ_OK) {
        if (c.st == GQ_OK)
            gq_errf(errstr, errstr_size, "cannot resolve %s into %s", gq_avsc_name(writer),
                    gq_avsc_name(reader));
        else
            gq_errf(errstr, errstr_size, "%s", c.msg);
        gq_avro_plan_destroy(p);
        return NULL;
    }
    return p;
}

gq_status_t gq_avro_compatible(const gq_avsc_t *newer, const gq_avsc_t *older,
                               gq_avro_compat_t level, char *errstr, size_t errstr_size) {
    char err[512];
    if (level & GQ_AVRO_BACKWARD) {
        gq_avro_plan_t *p = gq_avro_plan_new(older, newer, true, err, sizeof(err));
        if (!p) {
            gq_errf(errstr, errstr_size,
                    "not backward compatible (the new schema cannot read "
                    "data written with the old one): %s",
                    err);
            return GQ_ERR_INVALID;
        }
        gq_avro_plan_destroy(p);
    }
    if (level & GQ_AVRO_FORWARD) {
        gq_avro_plan_t *p = gq_avro_plan_new(newer, older, true, err, sizeof(err));
        if (!p) {
            gq_errf(errstr, errstr_size,
                    "not forward compatible (the old schema cannot read "
                    "data written with the new one): %s",
                    err);
            return GQ_ERR_INVALID;
        }
        gq_avro_plan_destroy(p);
    }
    return GQ_OK;
}

/* ------------------------------------------------------------------------------------------
 * The transcoder */

typedef struct xc {
    const unsigned char *p, *end;
    size_t items_left;
    int depth;
    const char *path[RES_MAX_DEPTH + 2];
    long long index[RES_MAX_DEPTH + 2];
    int path_len;
    char *errstr;
    size_t errstr_size;
} xc_t;

static size_t xc_left(const xc_t *x) { return (size_t)(x->end - x->p); }

static gq_status_t xc_fail(xc_t *x, const char *fmt, ...) GQ_PRINTF(2, 3);
static gq_status_t xc_fail(xc_t *x, const char *fmt, ...) {
    char path[256] = "datum", msg[512];
    size_t n = 0;
    for (int i = 0; i < x->path_len && n < sizeof(path); i++) {
        int k = x->path[i] ? snprintf(path + n, sizeof(path) - n, "%s%s", n ? "." : "", x->path[i])
                           : snprintf(path + n, sizeof(path) - n, "[%lld]", x->index[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gq_errf(x->errstr, x->errstr_size, "%s: %s", path, msg);
    return GQ_ERR_INVALID;
}

static gq_status_t xc_varint(xc_t *x, int max_bytes, int64_t *v) {
    switch (gq_avro_varint(&x->p, x->end, max_bytes, v)) {
    case GQ_VARINT_OK: return GQ_OK;
    case GQ_VARINT_TOO_LONG: return xc_fail(x, "varint longer than %d bytes", max_bytes);
    case GQ_VARINT_CUT: return xc_fail(x, "data cut short inside a number");
    case GQ_VARINT_OVERFLOW: return xc_fail(x, "varint does not fit in 64 bits");
    default: return xc_fail(x, "int value %lld out of range", (long long)*v);
    }
}

static gq_status_t xc_emit(gq_buf_t *out, const void *p, size_t n) {
    return out ? gq_buf_append(out, p, n) : GQ_OK;
}

static gq_status_t xc_fixed_bytes(xc_t *x, size_t n, const char *what, const unsigned char **at) {
    if (n > xc_left(x))
        return xc_fail(x, "data cut short inside a %s", what);
    *at = x->p;
    x->p += n;
    return GQ_OK;
}

/* A string or bytes value, copied as it is (length and bytes); text checks UTF-8 and NUL. */
static gq_status_t xc_blob(xc_t *x, bool text, gq_buf_t *out) {
    const unsigned char *start = x->p;
    int64_t len;
    gq_status_t st = xc_varint(x, 10, &len);
    if (st != GQ_OK)
        return st;
    if (len < 0)
        return xc_fail(x, "negative length %lld", (long long)len);
    if ((uint64_t)len > xc_left(x))
        return xc_fail(x, "%s length %lld exceeds the %zu bytes left", text ? "string" : "bytes",
                       (long long)len, xc_left(x));
    if (text && memchr(x->p, '\0', (size_t)len))
        return xc_fail(x, "string contains a NUL byte");
    if (text && !gq_utf8_valid(x->p, (size_t)len))
        return xc_fail(x, "string is not valid UTF-8");
    x->p += len;
    return xc_emit(out, start, (size_t)(x->p - start));
}

static float xc_get_float(const unsigned char *b) {
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static gq_status_t xc_node(xc_t *x, const pnode_t *n, gq_buf_t *out);

static gq_status_t xc_record(xc_t *x, const pnode_t *n, gq_buf_t *out) {
    gq_status_t st = GQ_OK;
    if (n->in_order || !out) {
        for (size_t i = 0; st == GQ_OK && i < n->wf_cnt; i++) {
            x->path[x->path_len] = n->wf[i].name;
            x->path_len++;
            st = xc_node(x, n->wf[i].p, n->wf[i].rindex >= 0 ? out : NULL);
            x->path_len--;
        }
        return st;
    }
    /* The writer's fields in its order, each noted where it landed; then the reader's, in
     * its order, with the defaults of those the writer lacks. */
    size_t base = out->len, small[2 * 32];
    size_t *seg = n->rf_cnt <= 32 ? small : calloc(2 * n->rf_cnt, sizeof(*seg));
    if (!seg)
        return GQ_ERR_NOMEM;
    for (size_t i = 0; st == GQ_OK && i < n->wf_cnt; i++) {
        int r = n->wf[i].rindex;
        x->path[x->path_len] = n->wf[i].name;
        x->path_len++;
        size_t at = out->len;
        st = xc_node(x, n->wf[i].p, r >= 0 ? out : NULL);
        x->path_len--;
        if (r >= 0) {
            seg[2 * r] = at - base;
            seg[2 * r + 1] = out->len - at;
        }
    }
    char *tmp = NULL;
    size_t tmp_len = out->len - base;
    if (st == GQ_OK && tmp_len && !(tmp = malloc(tmp_len)))
        st = GQ_ERR_NOMEM;
    if (st == GQ_OK) {
        if (tmp_len)
            memcpy(tmp, out->data + base, tmp_len);
        out->len = base;
        for (size_t r = 0; st == GQ_OK && r < n->rf_cnt; r++)
            st = n->dflt[r] ? gq_buf_append(out, n->dflt[r], n->dflt_len[r])
                            : gq_buf_append(out, tmp + seg[2 * r], seg[2 * r + 1]);
    }
    free(tmp);
    if (seg != small)
        free(seg);
    return st;
}

static gq_status_t xc_blocks(xc_t *x, const pnode_t *n, gq_buf_t *out) {
    long long index = 0;
    for (;;) {
        int64_t count, size = -1;
        gq_status_t st = xc_varint(x, 10, &count);
        if (st != GQ_OK)
            return st;
        if (count == 0)
            return put_varint(out, 0);
        if (count < 0) {
            if (count == INT64_MIN)
                return xc_fail(x, "invalid block count");
            count = -count;
            if ((st = xc_varint(x, 10, &size)) != GQ_OK)
                return st;
            if (size < 0 || (uint64_t)size > xc_left(x))
                return xc_fail(x, "block size %lld does not fit in the %zu bytes left",
                               (long long)size, xc_left(x));
        }
        if ((uint64_t)count > x->items_left)
            return xc_fail(x, "block of %lld items exceeds the limit on items in a message",
                           (long long)count);
        x->items_left -= (size_t)count;
        if ((st = put_varint(out, count)) != GQ_OK)
            return st;
        const unsigned char *start = x->p;
        for (int64_t i = 0; i < count; i++, index++) {
            x->path[x->path_len] = NULL;
            x->index[x->path_len] = index;
            x->path_len++;
            st = n->op == P_MAP ? xc_blob(x, true, out) : GQ_OK;
            if (st == GQ_OK)
                st = xc_node(x, n->sub, out);
            x->path_len--;
            if (st != GQ_OK)
                return st;
        }
        if (size >= 0 && x->p - start != size)
            return xc_fail(x, "block size %lld does not match its items", (long long)size);
    }
}

static gq_status_t xc_index(xc_t *x, size_t limit, const char *what, int64_t *v) {
    gq_status_t st = xc_varint(x, 10, v);
    if (st == GQ_OK && (*v < 0 || (uint64_t)*v >= limit))
        return xc_fail(x, "%s index %lld out of range 0..%lld", what, (long long)*v,
                       (long long)limit - 1);
    return st;
}

static gq_status_t xc_typed(xc_t *x, const pnode_t *n, gq_buf_t *out) {
    const unsigned char *start = x->p, *b = NULL;
    int64_t v;
    gq_status_t st;
    switch (n->op) {
    case P_ERR: return xc_fail(x, "%s", n->err);
    case P_NULL: return GQ_OK;
    case P_BOOL:
        if (x->p == x->end || *x->p > 1)
            return xc_fail(x, x->p == x->end ? "data cut short" : "boolean byte not 0 or 1");
        x->p++;
        return xc_emit(out, start, 1);
    case P_INT:
    case P_LONG:
        if ((st = xc_varint(x, n->op == P_INT ? 5 : 10, &v)) != GQ_OK)
            return st;
        return xc_emit(out, start, (size_t)(x->p - start));
    case P_INT_FLOAT:
    case P_LONG_FLOAT:
        if ((st = xc_varint(x, n->op == P_INT_FLOAT ? 5 : 10, &v)) != GQ_OK)
            return st;
        return put_float(out, (float)v);
    case P_INT_DOUBLE:
    case P_LONG_DOUBLE:
        if ((st = xc_varint(x, n->op == P_INT_DOUBLE ? 5 : 10, &v)) != GQ_OK)
            return st;
        return put_double(out, (double)v);
    case P_FLOAT:
    case P_DOUBLE:
        if ((st = xc_fixed_bytes(x, n->op == P_FLOAT ? 4 : 8, "number", &b)) != GQ_OK)
            return st;
        return xc_emit(out, b, n->op == P_FLOAT ? 4 : 8);
    case P_FLOAT_DOUBLE:
        if ((st = xc_fixed_bytes(x, 4, "float", &b)) != GQ_OK)
            return st;
        return put_double(out, (double)xc_get_float(b));
    case P_STRING: return xc_blob(x, true, out);
    case P_BYTES: return xc_blob(x, n->w->t == T_STRING, out);
    case P_FIXED:
        if ((st = xc_fixed_bytes(x, n->size, "fixed", &b)) != GQ_OK)
            return st;
        return xc_emit(out, b, n->size);
    case P_ENUM:
        if ((st = xc_index(x, n->enum_cnt, "enum", &v)) != GQ_OK)
            return st;
        if (n->enum_map[v] < 0)
            return xc_fail(x, "symbol %s is not in the reader's enum %s", n->w->symbols[v],
                           n->r->fullname);
        return put_varint(out, n->enum_map[v]);
    case P_RECORD: return xc_record(x, n, out);
    case P_ARRAY:
    case P_MAP: return xc_blocks(x, n, out);
    case P_WUNION:
        if ((st = xc_index(x, n->branches_cnt, "union", &v)) != GQ_OK)
            return st;
        return xc_node(x, n->branches[v], out);
    case P_RUNION:
        if ((st = put_varint(out, n->rindex)) != GQ_OK)
            return st;
        return xc_node(x, n->sub, out);
    }
    return xc_fail(x, "unknown plan step %d", (int)n->op);
}

static gq_status_t xc_node(xc_t *x, const pnode_t *n, gq_buf_t *out) {
    if (x->depth >= RES_MAX_DEPTH || x->path_len >= RES_MAX_DEPTH)
        return xc_fail(x, "nested deeper than %d levels", RES_MAX_DEPTH);
    x->depth++;
    gq_status_t st = xc_typed(x, n, out);
    x->depth--;
    return st;
}

gq_status_t gq_avro_resolve(const gq_avro_plan_t *p, const void *data, size_t len, size_t max_items,
                            gq_buf_t *out, char *errstr, size_t errstr_size) {
    xc_t x = {.p = data,
              .end = (const unsigned char *)data + len,
              .items_left = max_items,
              .errstr = errstr,
              .errstr_size = errstr_size};
    size_t base = out->len;
    gq_status_t st = xc_node(&x, p->root, out);
    if (st == GQ_OK && x.p != x.end)
        st = xc_fail(&x, "%zu bytes left over after the datum", xc_left(&x));
    if (st == GQ_ERR_TOOBIG)
        gq_errf(errstr, errstr_size, "the resolved datum exceeds %zu bytes", out->max);
    else if (st == GQ_ERR_NOMEM)
        gq_errf(errstr, errstr_size, "out of memory");
    if (st != GQ_OK)
        out->len = base;
    return st;
}
