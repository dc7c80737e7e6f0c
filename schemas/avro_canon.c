/*
 * Parsing Canonical Form (Avro 1.11 specification, "Transforming into Parsing Canonical
 * Form") and the CRC-64-AVRO fingerprint.
 *
 * The form is produced straight from the schema's JSON: a schema that is not valid enough
 * to be canonicalised (unknown type, bad name, missing attribute) is an error, because a
 * fingerprint of a schema that other implementations reject would identify nothing.
 * Like Java's SchemaNormalization (the reference the spec's test vectors come from), a
 * primitive with extra attributes such as logicalType becomes its bare name, and a named
 * type is written in full at its first occurrence, by full name after that.
 */
#include "avro_canon.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A schema nested deeper than this is hostile or broken; the bound keeps recursion safe. */
#define CANON_MAX_DEPTH 64

static const char *const canon_primitives[] = {"null",  "boolean", "int",   "long",
                                               "float", "double",  "bytes", "string"};

typedef struct canon {
    gq_buf_t *out;
    char **names; /* full names of the named types defined so far, in order */
    size_t names_cnt, names_cap;
    char *errstr;
    size_t errstr_size;
} canon_t;

static bool canon_is_primitive(const char *s) {
    for (size_t i = 0; i < GQ_ARRAY_LEN(canon_primitives); i++)
        if (strcmp(s, canon_primitives[i]) == 0)
            return true;
    return false;
}

/* One name component: [A-Za-z_][A-Za-z0-9_]* (the spec's name rule). */
static bool canon_ident_ok(const char *s, size_t n) {
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* A dotted name (or namespace): components separated by single dots. */
static bool canon_dotted_ok(const char *s) {
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!canon_ident_ok(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static bool canon_defined(const canon_t *c, const char *fullname) {
    for (size_t i = 0; i < c->names_cnt; i++)
        if (strcmp(c->names[i], fullname) == 0)
            return true;
    return false;
}

static gq_status_t canon_define(canon_t *c, char *fullname) {
    if (c->names_cnt == c->names_cap) {
        size_t cap = c->names_cap ? c->names_cap * 2 : 16;
        char **p = realloc(c->names, cap * sizeof(*p));
        if (!p)
            return GQ_ERR_NOMEM;
        c->names = p;
        c->names_cap = cap;
    }
    c->names[c->names_cnt++] = fullname;
    return GQ_OK;
}

/* "ns.name", or name alone when ns is NULL or empty; NULL when out of memory. */
static char *canon_join(const char *ns, const char *name) {
    size_t nl = ns ? strlen(ns) : 0, ml = strlen(name);
    char *s = malloc(nl + ml + 2);
    if (!s)
        return NULL;
    if (nl) {
        memcpy(s, ns, nl);
        s[nl++] = '.';
    }
    memcpy(s + nl, name, ml + 1);
    return s;
}

static gq_status_t canon_put(canon_t *c, const char *s) {
    gq_status_t st = gq_buf_appends(c->out, s);
    if (st != GQ_OK)
        gq_errf(c->errstr, c->errstr_size, "canonical form does not fit (%s)", gq_status_name(st));
    return st;
}

/* Writes a JSON string. Every string we write passed canon_dotted_ok, so needs no escape. */
static gq_status_t canon_put_str(canon_t *c, const char *s) {
    gq_status_t st = canon_put(c, "\"");
    if (st == GQ_OK)
        st = canon_put(c, s);
    if (st == GQ_OK)
        st = canon_put(c, "\"");
    return st;
}

/*
 * A reference to a named type. A dotted name is a full name; a bare one is looked up in
 * the enclosing namespace first, then in the null namespace (as Java does, so a type
 * defined without a namespace stays reachable from inside a namespaced record).
 */
static gq_status_t canon_reference(canon_t *c, const char *ref, const char *ns) {
    if (!canon_dotted_ok(ref)) {
        gq_errf(c->errstr, c->errstr_size, "\"%s\" is not a valid type name", ref);
        return GQ_ERR_INVALID;
    }
    if (strchr(ref, '.') || !ns || !*ns) {
        if (canon_defined(c, ref))
            return canon_put_str(c, ref);
    } else {
        char *full = canon_join(ns, ref);
        if (!full)
            return GQ_ERR_NOMEM;
        bool found = canon_defined(c, full);
        gq_status_t st = found ? canon_put_str(c, full) : GQ_OK;
        free(full);
        if (found)
            return st;
        if (canon_defined(c, ref))
            return canon_put_str(c, ref);
    }
    gq_errf(c->errstr, c->errstr_size, "unknown type \"%s\"", ref);
    return GQ_ERR_INVALID;
}

static gq_status_t canon_schema(canon_t *c, json_t *s, const char *ns, int depth);

static gq_status_t canon_fields(canon_t *c, json_t *fields, const char *ns, int depth) {
    if (!json_is_array(fields)) {
        gq_errf(c->errstr, c->errstr_size, "record \"fields\" must be an array");
        return GQ_ERR_INVALID;
    }
    gq_status_t st = canon_put(c, ",\"fields\":[");
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *type = json_object_get(f, "type");
        if (!json_is_object(f) || !name || !canon_ident_ok(name, strlen(name)) || !type) {
            gq_errf(c->errstr, c->errstr_size,
                    "record field %zu needs a valid \"name\" and a \"type\"", i);
            return GQ_ERR_INVALID;
        }
        if (st == GQ_OK && i > 0)
            st = canon_put(c, ",");
        if (st == GQ_OK)
            st = canon_put(c, "{\"name\":");
        if (st == GQ_OK)
            st = canon_put_str(c, name);
        if (st == GQ_OK)
            st = canon_put(c, ",\"type\":");
        if (st == GQ_OK)
            st = canon_schema(c, type, ns, depth + 1);
        if (st == GQ_OK)
            st = canon_put(c, "}");
        if (st != GQ_OK)
            return st;
    }
    return st == GQ_OK ? canon_put(c, "]") : st;
}

static gq_status_t canon_symbols(canon_t *c, json_t *symbols) {
    if (!json_is_array(symbols)) {
        gq_errf(c->errstr, c->errstr_size, "enum \"symbols\" must be an array");
        return GQ_ERR_INVALID;
    }
    gq_status_t st = canon_put(c, ",\"symbols\":[");
    for (size_t i = 0; st == GQ_OK && i < json_array_size(symbols); i++) {
        const char *sym = json_string_value(json_array_get(symbols, i));
        if (!sym || !canon_ident_ok(sym, strlen(sym))) {
            gq_errf(c->errstr, c->errstr_size, "enum symbol %zu is not a valid name", i);
            return GQ_ERR_INVALID;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sym, json_string_value(json_array_get(symbols, j))) == 0) {
                gq_errf(c->errstr, c->errstr_size, "enum symbol \"%s\" appears twice", sym);
                return GQ_ERR_INVALID;
            }
        }
        if (i > 0)
            st = canon_put(c, ",");
        if (st == GQ_OK)
            st = canon_put_str(c, sym);
    }
    return st == GQ_OK ? canon_put(c, "]") : st;
}

static gq_status_t canon_size(canon_t *c, json_t *size) {
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
        gq_errf(c->errstr, c->errstr_size, "fixed \"size\" must be a non-negative integer");
        return GQ_ERR_INVALID;
    }
    gq_status_t st = canon_put(c, ",\"size\":");
    return st == GQ_OK ? gq_buf_appendf(c->out, "%lld", (long long)json_integer_value(size)) : st;
}

/*
 * Full name of a named type (FULLNAMES): a dotted name is already full and the namespace
 * attribute is ignored; otherwise the namespace attribute if present ("" is the null
 * namespace), else the enclosing one.
 */
static char *canon_fullname(canon_t *c, json_t *s, const char *ns) {
    const char *name = json_string_value(json_object_get(s, "name"));
    if (!name || !canon_dotted_ok(name)) {
        gq_errf(c->errstr, c->errstr_size, "a named type needs a valid \"name\" (got %s)",
                name ? name : "none");
        return NULL;
    }
    json_t *jns = json_object_get(s, "namespace");
    if (jns && !json_is_null(jns)) {
        const char *v = json_string_value(jns);
        if (!v || (*v && !canon_dotted_ok(v))) {
            gq_errf(c->errstr, c->errstr_size, "type \"%s\": invalid \"namespace\"", name);
            return NULL;
        }
        ns = v;
    }
    char *full = strchr(name, '.') ? canon_join(NULL, name) : canon_join(ns, name);
    if (!full)
        gq_errf(c->errstr, c->errstr_size, "out of memory");
    return full;
}

static gq_status_t canon_named_type(canon_t *c, json_t *s, const char *type, const char *ns,
                                    int depth) {
    char *full = canon_fullname(c, s, ns);
    if (!full)
        return GQ_ERR_INVALID;
    const char *last_dot = strrchr(full, '.');
    if (canon_is_primitive(last_dot ? last_dot + 1 : full) || canon_defined(c, full)) {
        gq_errf(c->errstr, c->errstr_size, "type name \"%s\" is %s", full,
                canon_defined(c, full) ? "defined twice" : "reserved");
        free(full);
        return GQ_ERR_INVALID;
    }
    /* Defined before its body, so the body may refer to it (recursive types). */
    if (canon_define(c, full) != GQ_OK) {
        free(full);
        return GQ_ERR_NOMEM;
    }
    gq_status_t st = canon_put(c, "{\"name\":");
    if (st == GQ_OK)
        st = canon_put_str(c, full);
    if (st == GQ_OK)
        st = canon_put(c, ",\"type\":");
    if (st == GQ_OK)
        st = canon_put_str(c, type);
    if (st != GQ_OK)
        return st;
    if (strcmp(type, "record") == 0) {
        /* Types defined inside inherit the namespace of this record's full name. */
        char *inner = last_dot ? strndup(full, (size_t)(last_dot - full)) : NULL;
        if (last_dot && !inner)
            return GQ_ERR_NOMEM;
        st = canon_fields(c, json_object_get(s, "fields"), inner, depth);
        free(inner);
    } else if (strcmp(type, "enum") == 0) {
        st = canon_symbols(c, json_object_get(s, "symbols"));
    } else {
        st = canon_size(c, json_object_get(s, "size"));
    }
    return st == GQ_OK ? canon_put(c, "}") : st;
}

static gq_status_t canon_object(canon_t *c, json_t *s, const char *ns, int depth) {
    const char *type = json_string_value(json_object_get(s, "type"));
    if (!type) {
        gq_errf(c->errstr, c->errstr_size, "a schema object needs a string \"type\"");
        return GQ_ERR_INVALID;
    }
    if (canon_is_primitive(type))
        return canon_put_str(c, type); /* PRIMITIVES and STRIP: extra attributes go */
    if (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)
        return canon_named_type(c, s, type, ns, depth);
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        const char *key = type[0] == 'a' ? "items" : "values";
        json_t *sub = json_object_get(s, key);
        if (!sub) {
            gq_errf(c->errstr, c->errstr_size, "%s schema without \"%s\"", type, key);
            return GQ_ERR_INVALID;
        }
        gq_status_t st = canon_put(c, "{\"type\":");
        if (st == GQ_OK)
            st = canon_put_str(c, type);
        if (st == GQ_OK)
            st = gq_buf_appendf(c->out, ",\"%s\":", key);
        if (st == GQ_OK)
            st = canon_schema(c, sub, ns, depth + 1);
        return st == GQ_OK ? canon_put(c, "}") : st;
    }
    return canon_reference(c, type, ns); /* {"type": "SomeNamedType"} */
}

static gq_status_t canon_schema(canon_t *c, json_t *s, const char *ns, int depth) {
    if (depth > CANON_MAX_DEPTH) {
        gq_errf(c->errstr, c->errstr_size, "schema nested deeper than %d levels", CANON_MAX_DEPTH);
        return GQ_ERR_INVALID;
    }
    if (json_is_string(s)) {
        const char *name = json_string_value(s);
        return canon_is_primitive(name) ? canon_put_str(c, name) : canon_reference(c, name, ns);
    }
    if (json_is_object(s))
        return canon_object(c, s, ns, depth);
    if (json_is_array(s)) {
        gq_status_t st = canon_put(c, "[");
        for (size_t i = 0; st == GQ_OK && i < json_array_size(s); i++) {
            if (i > 0)
                st = canon_put(c, ",");
            if (st == GQ_OK)
                st = canon_schema(c, json_array_get(s, i), ns, depth + 1);
        }
        return st == GQ_OK ? canon_put(c, "]") : st;
    }
    gq_errf(c->errstr, c->errstr_size, "a schema must be a string, an object or an array");
    return GQ_ERR_INVALID;
}

gq_status_t gq_avro_canonical_form(const char *schema_json, gq_buf_t *out, char *errstr,
                                   size_t errstr_size) {
    json_error_t jerr;
    json_t *root = json_loads(schema_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        gq_errf(errstr, errstr_size, "schema is not JSON: %s (line %d)", jerr.text, jerr.line);
        return GQ_ERR_INVALID;
    }
    canon_t c = {.out = out, .errstr = errstr, .errstr_size = errstr_size};
    size_t start = out->len;
    gq_status_t st = canon_schema(&c, root, NULL, 0);
    if (st != GQ_OK && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    if (st == GQ_ERR_NOMEM)
        gq_errf(errstr, errstr_size, "out of memory");
    for (size_t i = 0; i < c.names_cnt; i++)
        free(c.names[i]);
    free(c.names);
    json_decref(root);
    return st;
}

/* The spec's table-driven Rabin fingerprint; the table is cheap enough to build per call. */
uint64_t gq_avro_crc64(const void *data, size_t len) {
    const uint64_t empty = UINT64_C(0xc15d213aa4d7a795);
    uint64_t table[256];
    for (unsigned i = 0; i < 256; i++) {
        uint64_t fp = i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (empty & (0 - (fp & 1)));
        table[i] = fp;
    }
    const unsigned char *p = data;
    uint64_t fp = empty;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ table[(fp ^ p[i]) & 0xff];
    return fp;
}

gq_status_t gq_avro_fingerprint(const char *schema_json, uint64_t *fp, char *errstr,
                                size_t errstr_size) {
    gq_buf_t b;
    gq_buf_init(&b, 1u << 20);
    gq_status_t st = gq_avro_canonical_form(schema_json, &b, errstr, errstr_size);
    if (st == GQ_OK)
        *fp = gq_avro_crc64(b.data ? b.data : "", b.len);
    gq_buf_release(&b);
    return st;
}
