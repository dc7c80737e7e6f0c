#include "cfg.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

#define CFG_KAFKA_ENV_PREFIX "GENQ_KAFKA_"

static int cfg_find(const char *name) {
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Flags are spelled with dashes, keys with underscores. */
static int cfg_find_flag(const char *flag, size_t len, unsigned cmd) {
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (!(t[i].cmds & cmd) || strlen(t[i].name) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char c = flag[j] == '-' ? '_' : flag[j];
            if (c != t[i].name[j])
                break;
        }
        if (j == len)
            return (int)i;
    }
    return -1;
}

static gq_status_t cfg_validate(const gq_cfg_key_t *k, const char *v, char *errstr,
                                size_t errstr_size) {
    int64_t i;
    double d;
    bool b;
    switch (k->type) {
    case GQ_CFG_STR: return GQ_OK;
    case GQ_CFG_INT:
        if (gq_parse_i64(v, k->min, k->max, &i) != GQ_OK) {
            gq_errf(errstr, errstr_size, "%s: \"%s\" is not an integer in [%lld, %lld]", k->name, v,
                    (long long)k->min, (long long)k->max);
            return GQ_ERR_INVALID;
        }
        return GQ_OK;
    case GQ_CFG_BOOL:
        if (gq_parse_bool(v, &b) != GQ_OK) {
            gq_errf(errstr, errstr_size, "%s: \"%s\" is not a boolean", k->name, v);
            return GQ_ERR_INVALID;
        }
        return GQ_OK;
    case GQ_CFG_DOUBLE:
        if (gq_parse_double(v, &d) != GQ_OK) {
            gq_errf(errstr, errstr_size, "%s: \"%s\" is not a number", k->name, v);
            return GQ_ERR_INVALID;
        }
        return GQ_OK;
    }
    return GQ_ERR_INVALID;
}

gq_status_t gq_cfg_set(gq_cfg_t *cfg, const char *name, const char *value, gq_cfg_source_t src,
                       char *errstr, size_t errstr_size) {
    int i = cfg_find(name);
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    if (i < 0) {
        gq_errf(errstr, errstr_size, "unknown configuration key \"%s\"", name);
        return GQ_ERR_INVALID;
    }
    if (value && cfg_validate(&t[i], value, errstr, errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return GQ_ERR_NOMEM;
    free(cfg->values[i]);
    cfg->values[i] = copy;
    cfg->source[i] = value ? src : GQ_SRC_UNSET;
    return GQ_OK;
}

/*
 * GENQ_KAFKA_SASL_PASSWORD=x becomes the librdkafka property sasl.password=x, so that
 * credentials can come from a Kubernetes Secret as environment variables instead of the
 * command line (visible in ps). librdkafka names use only lower case, digits and dots.
 * They are added before any -X flag, and librdkafka keeps the last value set, so -X wins.
 */
static gq_status_t cfg_kafka_from_env(gq_cfg_t *cfg, char *errstr, size_t errstr_size) {
    const size_t plen = sizeof(CFG_KAFKA_ENV_PREFIX) - 1;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, CFG_KAFKA_ENV_PREFIX, plen) != 0)
            continue;
        const char *name = *e + plen;
        const char *eq = strchr(name, '=');
        if (!eq || eq == name)
            continue;
        if (cfg->kafka_cnt >= GQ_CFG_MAX_KAFKA) {
            gq_errf(errstr, errstr_size, "too many %s* variables", CFG_KAFKA_ENV_PREFIX);
            return GQ_ERR_INVALID;
        }
        size_t klen = (size_t)(eq - name);
        size_t vlen = strlen(eq + 1);
        char *kv = malloc(klen + 1 + vlen + 1);
        if (!kv) {
            gq_errf(errstr, errstr_size, "out of memory");
            return GQ_ERR;
        }
        for (size_t i = 0; i < klen; i++) {
            char c = name[i];
            kv[i] = c == '_' ? '.' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        kv[klen] = '=';
        memcpy(kv + klen + 1, eq + 1, vlen + 1);
        cfg->kafka[cfg->kafka_cnt++] = kv;
    }
    return GQ_OK;
}

gq_status_t gq_cfg_init(gq_cfg_t *cfg, unsigned cmd, const char *cmd_name, char *errstr,
                        size_t errstr_size) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->cmd = cmd;
    cfg->cmd_name = cmd_name;
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (!(t[i].cmds & cmd))
            continue;
        if (t[i].def &&
            gq_cfg_set(cfg, t[i].name, t[i].def, GQ_SRC_DEFAULT, errstr, errstr_size) != GQ_OK)
            return GQ_ERR;
        const char *ev = t[i].env ? getenv(t[i].env) : NULL;
        if (ev && *ev) {
            if (gq_cfg_set(cfg, t[i].name, ev, GQ_SRC_ENV, errstr, errstr_size) != GQ_OK) {
                size_t len = strlen(errstr);
                gq_errf(errstr + len, errstr_size - len, " (from %s)", t[i].env);
                return GQ_ERR_INVALID;
            }
        }
    }
    return cfg_kafka_from_env(cfg, errstr, errstr_size);
}

void gq_cfg_release(gq_cfg_t *cfg) {
    for (size_t i = 0; i < GQ_CFG_MAX_KEYS; i++) {
        free(cfg->values[i]);
        cfg->values[i] = NULL;
    }
    for (size_t i = 0; i < cfg->kafka_cnt; i++)
        free(cfg->kafka[i]);
    cfg->kafka_cnt = 0;
}

gq_status_t gq_cfg_copy(gq_cfg_t *dst, const gq_cfg_t *src) {
    *dst = *src;
    for (size_t i = 0; i < GQ_CFG_MAX_KEYS; i++)
        dst->values[i] = NULL;
    dst->kafka_cnt = 0;
    for (size_t i = 0; i < GQ_CFG_MAX_KEYS; i++)
        if (src->values[i] && !(dst->values[i] = strdup(src->values[i])))
            goto nomem;
    for (; dst->kafka_cnt < src->kafka_cnt; dst->kafka_cnt++)
        if (!(dst->kafka[dst->kafka_cnt] = strdup(src->kafka[dst->kafka_cnt])))
            goto nomem;
    return GQ_OK;
nomem:
    gq_cfg_release(dst);
    return GQ_ERR_NOMEM;
}

static int cfg_short(unsigned cmd, char c) {
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    for (size_t i = 0; i < n; i++)
        if ((t[i].cmds & cmd) && t[i].short_flag == c)
            return (int)i;
    return -1;
}

int gq_cfg_parse_args(gq_cfg_t *cfg, int argc, char **argv, int *optind_out, char *errstr,
                      size_t errstr_size) {
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    int i = 1;
    bool dump = false;
    for (; i < argc; i++) {
        const char *a = argv[i];
        int k = -1;
        const char *val = NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return GQ_CFG_HELP;
        if (strcmp(a, "--dump-config") == 0) {
            dump = true; /* after the other flags, so that it shows what they set */
            continue;
        }
        if (strcmp(a, "-v") == 0) {
            cfg->verbosity++;
            continue;
        }
        if (strcmp(a, "-q") == 0) {
            cfg->verbosity--;
            continue;
        }
        if (strcmp(a, "-X") == 0) {
            if (i + 1 >= argc || !strchr(argv[i + 1], '=')) {
                gq_errf(errstr, errstr_size, "-X needs key=value (a librdkafka property)");
                return GQ_ERR_INVALID;
            }
            if (cfg->kafka_cnt >= GQ_CFG_MAX_KAFKA) {
                gq_errf(errstr, errstr_size, "too many -X properties");
                return GQ_ERR_INVALID;
            }
            cfg->kafka[cfg->kafka_cnt++] = strdup(argv[++i]);
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            k = cfg_find_flag(a + 2, len, cfg->cmd);
            if (k < 0) {
                gq_errf(errstr, errstr_size, "unknown option %.*s", (int)(len + 2), a);
                return GQ_ERR_INVALID;
            }
            if (eq)
                val = eq + 1;
        } else {
            k = a[2] == '\0' ? cfg_short(cfg->cmd, a[1]) : -1;
            if (k < 0) {
                gq_errf(errstr, errstr_size, "unknown option %s", a);
                return GQ_ERR_INVALID;
            }
        }
        if (!val) {
            if (t[k].type == GQ_CFG_BOOL) {
                val = "true";
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                gq_errf(errstr, errstr_size, "option %s needs a value", a);
                return GQ_ERR_INVALID;
            }
        }
        if (gq_cfg_set(cfg, t[k].name, val, GQ_SRC_FLAG, errstr, errstr_size) != GQ_OK)
            return GQ_ERR_INVALID;
    }
    *optind_out = i;
    return dump ? GQ_CFG_DUMP : GQ_OK;
}

static const char *cfg_get(const gq_cfg_t *cfg, const char *name) {
    int i = cfg_find(name);
    return i < 0 ? NULL : cfg->values[i];
}

const char *gq_cfg_str(const gq_cfg_t *cfg, const char *name) { return cfg_get(cfg, name); }

bool gq_cfg_isset(const gq_cfg_t *cfg, const char *name) { return cfg_get(cfg, name) != NULL; }

gq_cfg_source_t gq_cfg_source(const gq_cfg_t *cfg, const char *name) {
    int i = cfg_find(name);
    return i < 0 ? GQ_SRC_UNSET : cfg->source[i];
}

int64_t gq_cfg_int(const gq_cfg_t *cfg, const char *name) {
    const char *v = cfg_get(cfg, name);
    int64_t out = 0;
    if (v)
        gq_parse_i64(v, INT64_MIN, INT64_MAX, &out);
    return out;
}

bool gq_cfg_bool(const gq_cfg_t *cfg, const char *name) {
    const char *v = cfg_get(cfg, name);
    bool out = false;
    if (v)
        gq_parse_bool(v, &out);
    return out;
}

double gq_cfg_double(const gq_cfg_t *cfg, const char *name) {
    const char *v = cfg_get(cfg, name);
    double out = 0;
    if (v)
        gq_parse_double(v, &out);
    return out;
}

void gq_cfg_usage(const gq_cfg_t *cfg, FILE *out) {
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    fprintf(out, "Options:\n");
    for (size_t i = 0; i < n; i++) {
        if (!(t[i].cmds & cfg->cmd))
            continue;
        char flag[64];
        size_t j = 0;
        for (; t[i].name[j] && j < sizeof(flag) - 1; j++)
            flag[j] = t[i].name[j] == '_' ? '-' : t[i].name[j];
        flag[j] = '\0';
        char left[96];
        if (t[i].short_flag)
            snprintf(left, sizeof(left), "-%c, --%s%s", t[i].short_flag, flag,
                     t[i].type == GQ_CFG_BOOL ? "" : " V");
        else
            snprintf(left, sizeof(left), "    --%s%s", flag, t[i].type == GQ_CFG_BOOL ? "" : " V");
        fprintf(out, "  %-28s %s", left, t[i].help);
        if (t[i].def && t[i].type != GQ_CFG_BOOL)
            fprintf(out, " [%s]", t[i].def);
        if (t[i].env)
            fprintf(out, " (env %s)", t[i].env);
        fputc('\n', out);
    }
    fprintf(out, "  %-28s %s\n", "-X key=value", "librdkafka property, passed through");
    fprintf(out, "  %-28s %s\n", "-v, -q", "more or less logging");
    fprintf(out, "  %-28s %s\n", "--dump-config", "print the effective configuration and exit");
    fprintf(out, "  %-28s %s\n", "-h, --help", "this help");
}

/* A Markdown table cell: '|' would end the cell. */
static void cfg_md_cell(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void gq_cfg_markdown(FILE *out) {
    static const char *const cmd_names[] = {"produce", "worker",  "migrate", "events", "replay",
                                            "lag",     "schemas", "cancel",  "report"};
    _Static_assert(GQ_ARRAY_LEN(cmd_names) == GQ_CMD_COUNT, "a name for every GQ_CMD_ bit");
    static const char *const type_names[] = {"string", "integer", "boolean", "number"};
    static const char intro[] =
        "# Configuration\n"
        "\n"
        "<!-- Generated by `genq help config` from lib/cfg_table.c (`make docs`); do not edit. "
        "-->\n"
        "\n"
        "Every key is set, from lowest to highest precedence, by its default, its environment\n"
        "variable, (for `genq lag`, a ScaledObject read with `-f`), then its flag (`--key-name V`\n"
        "or `--key-name=V`). `genq <command> --dump-config` prints the effective values and\n"
        "where each came from, secrets masked.\n"
        "\n"
        "librdkafka properties: `-X key=value` on the command line, or `GENQ_KAFKA_<NAME>` in\n"
        "the environment for the property `<name>` with `_` read as `.`\n"
        "(`GENQ_KAFKA_SASL_PASSWORD` is `sasl.password`); `-X` wins. `-v`/`-q` raise or lower\n"
        "`log_level`.\n"
        "\n"
        "| key | flag | environment | type | default | commands | meaning |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n";
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    fputs(intro, out);
    for (size_t i = 0; i < n; i++) {
        const gq_cfg_key_t *k = &t[i];
        fprintf(out, "| `%s` | ", k->name);
        if (k->short_flag)
            fprintf(out, "`-%c`, ", k->short_flag);
        fputs("`--", out);
        for (const char *c = k->name; *c; c++)
            fputc(*c == '_' ? '-' : *c, out);
        fprintf(out, "` | %s%s%s | %s", k->env ? "`" : "", k->env ? k->env : "", k->env ? "`" : "",
                type_names[k->type]);
        if (k->type == GQ_CFG_INT && k->max == INT64_MAX)
            fprintf(out, " ≥ %lld", (long long)k->min);
        else if (k->type == GQ_CFG_INT)
            fprintf(out, " %lld..%lld", (long long)k->min, (long long)k->max);
        fputs(" | ", out);
        if (k->def && *k->def) {
            fputc('`', out);
            cfg_md_cell(out, k->def);
            fputc('`', out);
        } else if (k->def) {
            fputs("empty", out);
        }
        fputs(" | ", out);
        if (k->cmds == GQ_CMD_ALL)
            fputs("all", out);
        for (size_t c = 0; k->cmds != GQ_CMD_ALL && c < GQ_ARRAY_LEN(cmd_names); c++)
            if (k->cmds & (1u << c))
                fprintf(out, "%s%s", (k->cmds & ((1u << c) - 1)) ? ", " : "", cmd_names[c]);
        fputs(" | ", out);
        cfg_md_cell(out, k->help);
        fprintf(out, "%s |\n", k->secret ? " (secret: masked in --dump-config and logs)" : "");
    }
}

void gq_cfg_redact_url(const char *url, char *out, size_t out_size) {
    /* scheme://user:password@host -> scheme://user:***@host; key=value strings: password=*** */
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : NULL, *at = NULL, *colon = NULL;
    /* The user info ends at the authority's last '@' (an '@' in the path is not one). */
    for (size_t i = 0; auth && auth[i] && !strchr("/?#", auth[i]); i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at)
        colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon) {
        snprintf(out, out_size, "%.*s:***%s", (int)(colon - url), url, at);
        return;
    }
    const char *pw = strstr(url, "password=");
    if (pw) {
        const char *end = strchr(pw, ' ');
        snprintf(out, out_size, "%.*spassword=***%s", (int)(pw - url), url, end ? end : "");
        return;
    }
    snprintf(out, out_size, "%s", url);
}

/* librdkafka properties whose values are credentials or private keys. */
bool gq_cfg_kafka_key_is_secret(const char *key, size_t len) {
    static const char *const words[] = {"password", "secret", ".pem", "oauthbearer.config",
                                        "ssl.key"};
    char k[256];
    if (len >= sizeof(k))
        return true;
    memcpy(k, key, len);
    k[len] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(k, words[i]))
            return true;
    return false;
}

void gq_cfg_dump(const gq_cfg_t *cfg, FILE *out) {
    static const char *const src_names[] = {"unset", "default", "env", "file", "flag"};
    size_t n;
    const gq_cfg_key_t *t = gq_cfg_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (!(t[i].cmds & cfg->cmd))
            continue;
        const char *v = cfg->values[i];
        char red[512];
        if (v && t[i].secret) {
            /* A URL keeps all but its password; any other secret (a key) is masked whole. */
            if (strstr(v, "://"))
                gq_cfg_redact_url(v, red, sizeof(red));
            else
                snprintf(red, sizeof(red), "***");
            v = red;
        }
        fprintf(out, "%s=%s\t# %s\n", t[i].name, v ? v : "", src_names[cfg->source[i]]);
    }
    for (size_t i = 0; i < cfg->kafka_cnt; i++) {
        const char *kv = cfg->kafka[i];
        int klen = (int)(strchr(kv, '=') - kv);
        if (gq_cfg_kafka_key_is_secret(kv, (size_t)klen))
            fprintf(out, "X %.*s=***\n", klen, kv);
        else
            fprintf(out, "X %s\n", kv);
    }
}
