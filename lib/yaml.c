#include "yaml.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct yaml_line {
    int indent;
    int lineno;
    char *text;      /**< after the indentation; comment and trailing blanks cut (owned by buf) */
    const char *raw; /**< after the indentation, as written (for block scalars) */
} yaml_line_t;

typedef struct yaml {
    yaml_line_t *lines;
    size_t cnt, pos, end; /**< end: the end of the current document */
    char *errstr;
    size_t errstr_size;
    bool failed;
} yaml_t;

static json_t *yaml_node(yaml_t *y);

static json_t *yaml_fail(yaml_t *y, int lineno, const char *fmt, ...) GQ_PRINTF(3, 4);
static json_t *yaml_fail(yaml_t *y, int lineno, const char *fmt, ...) {
    if (y->failed)
        return NULL;
    y->failed = true;
    int n = snprintf(y->errstr, y->errstr_size, "line %d: ", lineno);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < y->errstr_size)
        vsnprintf(y->errstr + n, y->errstr_size - (size_t)n, fmt, ap);
    va_end(ap);
    return NULL;
}

/* The next line with content, or NULL at the end of the document. */
static yaml_line_t *yaml_peek(yaml_t *y) {
    while (y->pos < y->end && y->lines[y->pos].text[0] == '\0')
        y->pos++;
    return y->pos < y->end ? &y->lines[y->pos] : NULL;
}

static bool yaml_is_item(const char *s) { return s[0] == '-' && (s[1] == ' ' || s[1] == '\0'); }

/* Where a quoted scalar starting at s ends (just past the closing quote), or NULL. */
static const char *yaml_quote_end(const char *s) {
    char q = *s;
    for (s++; *s; s++) {
        if (q == '"' && *s == '\\' && s[1])
            s++;
        else if (q == '\'' && *s == '\'' && s[1] == '\'')
            s++;
        else if (*s == q)
            return s + 1;
    }
    return NULL;
}

/* Cuts a "# comment" (a '#' at the start or after a blank, outside quotes) and trailing
 * blanks. A quote opens a scalar only where one can start: first, or after ": " / "- ". */
static void yaml_cut_comment(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '#' && (i == 0 || s[i - 1] == ' ')) {
            n = i;
            break;
        }
        if (s[i] == '"' || s[i] == '\'') {
            size_t p = i;
            while (p > 0 && s[p - 1] == ' ')
                p--;
            if (i == 0 || (p > 0 && strchr(":-?[{,", s[p - 1]) && (p < i || s[p - 1] != ':'))) {
                const char *e = yaml_quote_end(s + i);
                if (!e)
                    break;
                i = (size_t)(e - s) - 1;
            }
        }
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = '\0';
}

/* The ':' that ends a mapping key in s, or -1 when s is not "key: ..." / "key:". */
static int yaml_key_colon(const char *s) {
    const char *p = s;
    if (*p == '[' || *p == '{')
        return -1;
    if (*p == '"' || *p == '\'') {
        if (!(p = yaml_quote_end(p)))
            return -1;
        while (*p == ' ')
            p++;
        return *p == ':' && (p[1] == ' ' || p[1] == '\0') ? (int)(p - s) : -1;
    }
    for (; *p; p++)
        if (*p == ':' && (p[1] == ' ' || p[1] == '\0'))
            return (int)(p - s);
    return -1;
}

static void yaml_utf8(char **o, unsigned long cp) {
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) {
        *u++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char)(0xc0 | (cp >> 6));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *u++ = (unsigned char)(0xe0 | (cp >> 12));
        *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *o = (char *)u;
}

/* The quoted scalar from s to e (just past its closing quote), unescaped. */
static json_t *yaml_quoted(yaml_t *y, const yaml_line_t *l, const char *s, const char *e) {
    char *out = malloc((size_t)(e - s)), *o = out;
    if (!out)
        return yaml_fail(y, l->lineno, "out of memory");
    for (const char *c = s + 1; c < e - 1; c++) {
        if (*s == '\'' || *c != '\\') {
            *o++ = *c;
            c += *s == '\'' && *c == '\'';
            continue;
        }
        static const char from[] = "\\\"/ nt0r", to[] = "\\\"/ \n\t\0\r";
        const char *k = *++c ? strchr(from, *c) : NULL;
        if (k) {
            *o++ = to[k - from];
        } else if ((*c == 'x' || *c == 'u') &&
                   strspn(c + 1, "0123456789abcdefABCDEF") >= (*c == 'x' ? 2u : 4u)) {
            char hex[5] = {0};
            memcpy(hex, c + 1, *c == 'x' ? 2 : 4);
            yaml_utf8(&o, strtoul(hex, NULL, 16));
            c += *c == 'x' ? 2 : 4;
        } else {
            free(out);
            return yaml_fail(y, l->lineno, "unsupported escape \\%c", *c ? *c : ' ');
        }
    }
    json_t *v = json_stringn(out, (size_t)(o - out));
    free(out);
    return v ? v : yaml_fail(y, l->lineno, "not UTF-8");
}

/* "|" or ">" (with chomping or indentation indicators): the more indented lines after l. */
static json_t *yaml_block(yaml_t *y, const yaml_line_t *l, const char *s, int parent) {
    bool folded = *s == '>', strip = strchr(s, '-') != NULL;
    if (strspn(s + 1, "+-123456789") != strlen(s + 1))
        return yaml_fail(y, l->lineno, "bad block scalar header %s", s);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return yaml_fail(y, l->lineno, "out of memory");
    int at = -1;
    for (; y->pos < y->end; y->pos++) {
        const yaml_line_t *c = &y->lines[y->pos];
        if (c->raw[0] == '\0')
            continue;
        if (c->indent <= parent)
            break;
        if (at < 0)
            at = c->indent;
        fprintf(f, "%s%*s%s", ftell(f) ? (folded ? " " : "\n") : "",
                c->indent > at ? c->indent - at : 0, "", c->raw);
    }
    if (!strip && ftell(f))
        fputc('\n', f);
    fclose(f);
    json_t *v = json_stringn(out ? out : "", len);
    free(out);
    return v ? v : yaml_fail(y, l->lineno, "not UTF-8");
}

/* A plain scalar of n bytes: ~ and null are JSON null, anything else a string. */
static json_t *yaml_plain(yaml_t *y, const yaml_line_t *l, const char *s, size_t n) {
    if (n && (*s == '&' || *s == '*' || *s == '!'))
        return yaml_fail(y, l->lineno, "anchors, aliases and tags are not supported: %s", s);
    if (n == 0 || (n == 1 && *s == '~') || (n == 4 && strncmp(s, "null", 4) == 0))
        return json_null();
    json_t *v = json_stringn(s, n);
    return v ? v : yaml_fail(y, l->lineno, "not UTF-8");
}

/* A flow collection ([a, "b"], {k: v}) or a scalar inside one, at *s; advances *s. */
static json_t *yaml_flow(yaml_t *y, const yaml_line_t *l, const char **s, int depth) {
    const char *p = *s + strspn(*s, " ");
    if (depth > 32)
        return yaml_fail(y, l->lineno, "flow collections nested too deep");
    if (*p == '"' || *p == '\'') {
        const char *e = yaml_quote_end(p);
        *s = e;
        return e ? yaml_quoted(y, l, p, e)
                 : yaml_fail(y, l->lineno, "a quoted scalar must end on its line");
    }
    if (*p != '[' && *p != '{') {
        size_t n = strcspn(p, ",[]{}");
        const char *colon = strstr(p, ": ");
        if (colon && (size_t)(colon - p) < n)
            n = (size_t)(colon - p);
        *s = p + n;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        return yaml_plain(y, l, p, n);
    }
    char close = *p == '[' ? ']' : '}';
    json_t *c = close == ']' ? json_array() : json_object();
    for (p++;;) {
        p += strspn(p, " ");
        if (*p == close)
            break;
        json_t *k = NULL, *v = yaml_flow(y, l, &p, depth + 1);
        if (v && close == '}') {
            k = v;
            v = NULL;
            p += strspn(p, " ");
            if (*p == ':' && json_is_string(k)) {
                p++;
                v = yaml_flow(y, l, &p, depth + 1);
            } else {
                yaml_fail(y, l->lineno, "expected key: value in a flow mapping");
            }
        }
        /* on failure p may be NULL (an unterminated quote): leave it alone */
        int bad = !v || (k ? json_object_set_new(c, json_string_value(k), v)
                           : json_array_append_new(c, v));
        json_decref(k);
        if (!bad)
            p += strspn(p, " ");
        if (bad || (*p != ',' && *p != close)) {
            json_decref(c);
            return yaml_fail(y, l->lineno, "bad flow collection");
        }
        p += *p == ',';
    }
    *s = p + 1;
    return c;
}

/* The scalar or flow collection s written on line l, in a node indented > parent. */
static json_t *yaml_scalar(yaml_t *y, const yaml_line_t *l, const char *s, int parent) {
    if (*s == '|' || *s == '>')
        return yaml_block(y, l, s, parent);
    if (*s != '"' && *s != '\'' && *s != '[' && *s != '{')
        return yaml_plain(y, l, s, strlen(s));
    const char *p = s;
    json_t *v = yaml_flow(y, l, &p, 0);
    const char *rest = v ? p + strspn(p, " ") : p;
    if (v && *rest) {
        json_decref(v);
        return yaml_fail(y, l->lineno, "unexpected text after %.*s: %s", (int)(p - s), s, rest);
    }
    return v;
}

static json_t *yaml_map(yaml_t *y, int indent) {
    json_t *map = json_object();
    yaml_line_t *l;
    while (map && (l = yaml_peek(y)) && l->indent == indent && !yaml_is_item(l->text)) {
        int colon = yaml_key_colon(l->text);
        if (colon < 0) {
            json_decref(map);
            return yaml_fail(y, l->lineno, "expected \"key: value\": %s", l->text);
        }
        char *rest = l->text + colon + 1;
        while (*rest == ' ')
            rest++;
        l->text[colon] = '\0';
        while (colon > 0 && l->text[colon - 1] == ' ')
            l->text[--colon] = '\0';
        json_t *key = yaml_scalar(y, l, l->text, indent), *val = NULL;
        y->pos++;
        yaml_line_t *n = yaml_peek(y);
        if (!key || !json_is_string(key))
            val = key ? yaml_fail(y, l->lineno, "a key must be a string") : NULL;
        else if (*rest)
            val = yaml_scalar(y, l, rest, indent);
        else if (n && (n->indent > indent || (n->indent == indent && yaml_is_item(n->text))))
            val = yaml_node(y);
        else
            val = json_null();
        if (val && json_object_get(map, json_string_value(key))) {
            json_decref(val);
            val = yaml_fail(y, l->lineno, "duplicate key %s", json_string_value(key));
        }
        if (!val || json_object_set_new(map, json_string_value(key), val) != 0) {
            json_decref(key);
            json_decref(map);
            return yaml_fail(y, l->lineno, "out of memory");
        }
        json_decref(key);
    }
    return map;
}

static json_t *yaml_seq(yaml_t *y, int indent) {
    json_t *seq = json_array();
    yaml_line_t *l;
    while (seq && (l = yaml_peek(y)) && l->indent == indent && yaml_is_item(l->text)) {
        char *rest = l->text + 1;
        while (*rest == ' ')
            rest++;
        json_t *val;
        if (*rest == '\0') {
            y->pos++;
            yaml_line_t *n = yaml_peek(y);
            val = n && n->indent > indent ? yaml_node(y) : json_null();
        } else if (yaml_is_item(rest) || yaml_key_colon(rest) >= 0) {
            /* "- key: v" opens a mapping whose keys line up with "key" */
            l->indent += (int)(rest - l->text);
            l->text = rest;
            val = yaml_node(y);
        } else {
            y->pos++;
            val = yaml_scalar(y, l, rest, indent);
        }
        if (!val || json_array_append_new(seq, val) != 0) {
            json_decref(seq);
            return yaml_fail(y, l->lineno, "out of memory");
        }
    }
    return seq;
}

/* The node that starts at the next line, and every line under it. */
static json_t *yaml_node(yaml_t *y) {
    yaml_line_t *l = yaml_peek(y);
    json_t *v;
    if (yaml_is_item(l->text)) {
        v = yaml_seq(y, l->indent);
    } else if (yaml_key_colon(l->text) >= 0) {
        v = yaml_map(y, l->indent);
    } else {
        y->pos++;
        v = yaml_scalar(y, l, l->text, l->indent - 1);
    }
    yaml_line_t *n = v ? yaml_peek(y) : NULL;
    if (n && n->indent > l->indent) {
        json_decref(v);
        return yaml_fail(y, n->lineno,
                         "bad indentation (multi-line plain scalars are not supported): %s",
                         n->text);
    }
    return v;
}

/* Splits buf into lines, in place; text gets a second copy to cut comments from. */
static gq_status_t yaml_lines(yaml_t *y, char *buf, char *text, size_t len) {
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += buf[i] == '\n';
    if (!(y->lines = calloc(cap, sizeof(*y->lines))))
        return GQ_ERR_NOMEM;
    for (size_t start = 0, i = 0; i <= len; i++) {
        if (i < len && buf[i] == '\0') {
            yaml_fail(y, (int)y->cnt + 1, "a NUL byte");
            return GQ_ERR_INVALID;
        }
        if (i < len && buf[i] != '\n')
            continue;
        buf[i] = text[i] = '\0';
        if (i > start && buf[i - 1] == '\r')
            buf[i - 1] = text[i - 1] = '\0';
        yaml_line_t *l = &y->lines[y->cnt];
        l->lineno = (int)++y->cnt;
        size_t ws = strspn(buf + start, " \t"), sp = strspn(buf + start, " ");
        if (ws != sp && buf[start + ws] != '\0') {
            yaml_fail(y, l->lineno, "a tab in the indentation");
            return GQ_ERR_INVALID;
        }
        l->indent = (int)sp;
        l->raw = buf + start + ws;
        l->text = text + start + ws;
        yaml_cut_comment(l->text);
        start = i + 1;
    }
    return GQ_OK;
}

json_t *gq_yaml_parse(const char *data, size_t len, char *errstr, size_t errstr_size) {
    yaml_t y = {.errstr = errstr, .errstr_size = errstr_size};
    char *buf = malloc(2 * len + 2);
    json_t *docs = json_array();
    if (buf) {
        memcpy(buf, data, len);
        memcpy(buf + len + 1, data, len);
    }
    if (!buf || !docs || yaml_lines(&y, buf, buf + len + 1, len) != GQ_OK) {
        if (!y.failed)
            gq_errf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    for (size_t start = 0; start < y.cnt;) {
        size_t end = start;
        while (end < y.cnt) {
            const yaml_line_t *l = &y.lines[end];
            bool marker =
                l->indent == 0 && (strcmp(l->text, "---") == 0 || strcmp(l->text, "...") == 0);
            if (l->indent == 0 && strncmp(l->text, "--- ", 4) == 0) {
                yaml_fail(&y, l->lineno, "content after --- is not supported");
                goto fail;
            }
            if (l->indent == 0 && l->text[0] == '%') {
                yaml_fail(&y, l->lineno, "directives are not supported");
                goto fail;
            }
            if (marker)
                break;
            end++;
        }
        y.pos = start;
        y.end = end;
        json_t *doc = yaml_peek(&y) ? yaml_node(&y) : NULL;
        if (y.failed)
            goto fail;
        const yaml_line_t *left = yaml_peek(&y);
        if (left) {
            json_decref(doc);
            yaml_fail(&y, left->lineno, "bad indentation: %s", left->text);
            goto fail;
        }
        /* only "---" opens a document that may be empty */
        bool opened = start > 0 && strcmp(y.lines[start - 1].text, "---") == 0;
        if (doc || opened || (start == 0 && end == y.cnt))
            json_array_append_new(docs, doc ? doc : json_null());
        start = end + 1;
    }
    free(y.lines);
    free(buf);
    return docs;
fail:
    free(y.lines);
    free(buf);
    json_decref(docs);
    return NULL;
}

json_t *gq_yaml_load(const char *path, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(errstr, errstr_size, "%s: cannot open", path);
        return NULL;
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            char *more = cap < (8u << 20) ? realloc(data, cap ? cap * 2 : 8192) : NULL;
            if (!more) {
                free(data);
                fclose(f);
                gq_errf(errstr, errstr_size, "%s: too large", path);
                return NULL;
            }
            data = more;
            cap = cap ? cap * 2 : 8192;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    char err[512];
    json_t *docs = bad ? NULL : gq_yaml_parse(data, len, err, sizeof(err));
    free(data);
    if (!docs)
        gq_errf(errstr, errstr_size, "%s: %s", path, bad ? "read error" : err);
    return docs;
}
