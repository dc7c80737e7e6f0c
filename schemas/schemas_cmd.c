/*
 * genq schemas: list, show, check (compatibility with every released version), register
 * (with the Schema Registry, under the topic-name subjects).
 */
#include "avro_canon.h"
#include "avro_resolve.h"
#include "cli.h"
#include "commands.h"
#include "embedded.h"
#include "genq_schema.h"
#include "log.h"
#include "schema_cfg.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMAS_MAX 64

/* One .avsc: a current schema (version 0) or a released one (version >= 1). */
typedef struct avsc_file {
    char name[128]; /* file name without .avsc and version: "GenerationRequest" */
    int version;
    char path[512];
    char *text; /* owned */
    size_t len;
} avsc_file_t;

typedef struct avsc_set {
    avsc_file_t f[SCHEMAS_MAX];
    size_t cnt;
} avsc_set_t;

static void set_release(avsc_set_t *s) {
    for (size_t i = 0; i < s->cnt; i++)
        free(s->f[i].text);
    s->cnt = 0;
}

/* "GenerationRequest.v2.avsc" -> name and version 2; "GenerationRequest.avsc" -> 0. */
static bool split_name(const char *file, bool history, char *name, size_t name_size, int *version) {
    size_t n = strlen(file);
    if (n < 6 || strcmp(file + n - 5, ".avsc") != 0 || file[0] == '.')
        return false;
    n -= 5;
    *version = 0;
    if (history) {
        const char *v = NULL;
        for (size_t i = n; i-- > 0;)
            if (file[i] == '.') {
                v = file + i;
                break;
            }
        int64_t ver;
        char num[16];
        if (!v || v[1] != 'v' || (size_t)(file + n - v - 2) >= sizeof(num))
            return false;
        memcpy(num, v + 2, (size_t)(file + n - v - 2));
        num[file + n - v - 2] = '\0';
        if (gq_parse_i64(num, 1, 100000, &ver) != GQ_OK)
            return false;
        *version = (int)ver;
        n = (size_t)(v - file);
    }
    if (n >= name_size)
        return false;
    memcpy(name, file, n);
    name[n] = '\0';
    return true;
}

static gq_status_t set_add(avsc_set_t *s, const char *file, bool history, const char *path,
                           const char *text, size_t len) {
    avsc_file_t *f = &s->f[s->cnt];
    if (s->cnt == SCHEMAS_MAX || !split_name(file, history, f->name, sizeof(f->name), &f->version))
        return GQ_OK; /* not a schema file of this kind: ignored */
    gq_strlcpy(f->path, path, sizeof(f->path));
    if (!(f->text = strndup(text, len)))
        return GQ_ERR_NOMEM;
    f->len = len;
    s->cnt++;
    return GQ_OK;
}

/* The compiled-in schemas: "schemas/X.avsc" (current) or "schemas/history/X.vN.avsc". */
static gq_status_t set_embedded(avsc_set_t *s, bool history) {
    const char *prefix = history ? "schemas/history/" : "schemas/";
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < gq_embedded_count; i++) {
        const gq_embedded_t *e = &gq_embedded_files[i];
        if (strncmp(e->name, prefix, pl) != 0 || strchr(e->name + pl, '/'))
            continue;
        gq_status_t st = set_add(s, e->name + pl, history, e->name, e->data, e->len);
        if (st != GQ_OK)
            return st;
    }
    return GQ_OK;
}

static gq_status_t set_dir(avsc_set_t *s, const char *dir, bool history, char *errstr,
                           size_t errstr_size) {
    DIR *d = opendir(dir);
    if (!d) {
        gq_errf(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        return GQ_ERR_INVALID;
    }
    gq_status_t st = GQ_OK;
    struct dirent *de;
    while (st == GQ_OK && (de = readdir(d))) {
        char path[1024], name[128];
        int version;
        if (!split_name(de->d_name, history, name, sizeof(name), &version))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *text = NULL;
        size_t len = 0;
        if ((st = gq_read_file(path, 1u << 20, &text, &len, errstr, errstr_size)) == GQ_OK)
            st = set_add(s, de->d_name, history, path, text, len);
        free(text);
    }
    closedir(d);
    return st;
}

static int schemas_list(void) {
    char err[512];
    avsc_set_t cur = {0}, hist = {0};
    if (set_embedded(&cur, false) != GQ_OK || set_embedded(&hist, true) != GQ_OK) {
        gq_err("out of memory");
        return GQ_EXIT_SOFTWARE;
    }
    printf("%-28s %-8s %-18s %s\n", "SCHEMA", "VERSION", "FINGERPRINT", "FILE");
    avsc_set_t *sets[] = {&cur, &hist};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sets[k]->cnt; i++) {
            const avsc_file_t *f = &sets[k]->f[i];
            uint64_t fp = 0;
            char ver[16] = "current";
            if (f->version)
                snprintf(ver, sizeof(ver), "v%d", f->version);
            if (gq_avro_fingerprint(f->text, &fp, err, sizeof(err)) != GQ_OK)
                printf("%-28s %-8s %-18s %s (%s)\n", f->name, ver, "?", f->path, err);
            else
                printf("%-28s %-8s 0x%016" PRIx64 " %s\n", f->name, ver, fp, f->path);
        }
    }
    /* Writers from GENQ_SCHEMA_DIR (the compiled-in versions are listed above). */
    uint64_t fps[256];
    const char *labels[256];
    size_t n = gq_schema_writers(fps, labels, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        if (strncmp(labels[i], "schemas/history/", 16) != 0)
            printf("%-28s %-8s 0x%016" PRIx64 " %s\n", "(writer schema)", "dir", fps[i], labels[i]);
    set_release(&cur);
    set_release(&hist);
    return GQ_EXIT_OK;
}

/* `show NAME`: NAME, NAME.vN, or a fingerprint (0x...) of a compiled-in schema. */
static int schemas_show(const char *what, bool canonical) {
    char err[512];
    avsc_set_t cur = {0}, hist = {0};
    if (set_embedded(&cur, false) != GQ_OK || set_embedded(&hist, true) != GQ_OK) {
        gq_err("out of memory");
        return GQ_EXIT_SOFTWARE;
    }
    const avsc_file_t *hit = NULL;
    avsc_set_t *sets[] = {&cur, &hist};
    for (size_t k = 0; !hit && k < 2; k++) {
        for (size_t i = 0; !hit && i < sets[k]->cnt; i++) {
            const avsc_file_t *f = &sets[k]->f[i];
            char label[160], fph[24];
            uint64_t fp = 0;
            snprintf(label, sizeof(label), f->version ? "%s.v%d" : "%s", f->name, f->version);
            fph[0] = '\0';
            if (gq_avro_fingerprint(f->text, &fp, err, sizeof(err)) == GQ_OK)
                snprintf(fph, sizeof(fph), "0x%016" PRIx64, fp);
            if (strcmp(what, label) == 0 || strcmp(what, fph) == 0)
                hit = f;
        }
    }
    int rc = GQ_EXIT_OK;
    if (!hit) {
        gq_err("no schema \"%s\" (genq schemas list shows them)", what);
        rc = GQ_EXIT_DATAERR;
    } else if (canonical) {
        gq_buf_t b;
        gq_buf_init(&b, 1u << 20);
        if (gq_avro_canonical_form(hit->text, &b, err, sizeof(err)) == GQ_OK) {
            fwrite(b.data, 1, b.len, stdout);
            fputc('\n', stdout);
        } else {
            gq_err("%s", err);
            rc = GQ_EXIT_DATAERR;
        }
        gq_buf_release(&b);
    } else {
        fwrite(hit->text, 1, hit->len, stdout);
    }
    set_release(&cur);
    set_release(&hist);
    return rc;
}

/* genq's own rule: job_id stays the first field (a reader that cannot decode the rest still
 * reads it). Applies to records whose released versions start with job_id. */
static bool check_job_id_first(const gq_avsc_t *cur, const gq_avsc_t *old) {
    const char *o = gq_avsc_field_name(old, 0), *c = gq_avsc_field_name(cur, 0);
    return !o || strcmp(o, "job_id") != 0 || (c && strcmp(c, "job_id") == 0);
}

static int check_one(const avsc_file_t *c, const avsc_set_t *hist, gq_avro_compat_t level,
                     const char *level_name) {
    char err[768];
    gq_avsc_t *cur = gq_avsc_parse(c->text, c->len, err, sizeof(err));
    uint64_t fp = 0;
    if (!cur || gq_avro_fingerprint(c->text, &fp, err, sizeof(err)) != GQ_OK) {
        printf("FAIL %s: %s\n", c->path, err);
        gq_avsc_destroy(cur);
        return 1;
    }
    int bad = 0, latest = 0, released = 0;
    uint64_t latest_fp = 0;
    for (size_t i = 0; i < hist->cnt; i++) {
        const avsc_file_t *h = &hist->f[i];
        if (strcmp(h->name, c->name) != 0)
            continue;
        released++;
        uint64_t hfp = 0;
        gq_avsc_t *old = gq_avsc_parse(h->text, h->len, err, sizeof(err));
        if (!old || gq_avro_fingerprint(h->text, &hfp, err, sizeof(err)) != GQ_OK) {
            printf("FAIL %s: %s\n", h->path, err);
            bad++;
        } else if (!check_job_id_first(cur, old)) {
            printf("FAIL %s v%d: job_id is no longer the first field (genq's rule: a reader "
                   "that cannot decode a message still reads its job id there)\n",
                   c->name, h->version);
            bad++;
        } else if (gq_avro_compatible(cur, old, level, err, sizeof(err)) != GQ_OK) {
            printf("FAIL %s v%d (0x%016" PRIx64 "): %s\n", c->name, h->version, hfp, err);
            bad++;
        } else {
            printf("ok   %s v%d (0x%016" PRIx64 "): %s compatible\n", c->name, h->version, hfp,
                   level_name);
        }
        if (h->version > latest) {
            latest = h->version;
            latest_fp = hfp;
        }
        gq_avsc_destroy(old);
    }
    if (!released) {
        printf("note %s (0x%016" PRIx64 "): no released version yet; when it ships, add it as "
               "history/%s.v1.avsc\n",
               c->name, fp, c->name);
    } else if (latest_fp != fp) {
        printf("FAIL %s (0x%016" PRIx64 "): changed since its latest released version v%d "
               "(0x%016" PRIx64 "); release it as history/%s.v%d.avsc so that readers know its "
               "fingerprint\n",
               c->name, fp, latest, latest_fp, c->name, latest + 1);
        bad++;
    }
    gq_avsc_destroy(cur);
    return bad;
}

static int schemas_check(const gq_cfg_t *cfg) {
    char err[512];
    const char *lv = gq_cfg_str(cfg, "level");
    gq_avro_compat_t level = strcmp(lv, "backward") == 0  ? GQ_AVRO_BACKWARD
                             : strcmp(lv, "forward") == 0 ? GQ_AVRO_FORWARD
                             : strcmp(lv, "full") == 0    ? GQ_AVRO_FULL
                                                          : 0;
    if (!level) {
        gq_err("--level must be backward, forward or full");
        return GQ_EXIT_USAGE;
    }
    avsc_set_t cur = {0}, hist = {0};
    const char *from = gq_cfg_str(cfg, "schemas_from"), *hdir = gq_cfg_str(cfg, "history_dir");
    char hpath[1024];
    if (from && !hdir) {
        snprintf(hpath, sizeof(hpath), "%s/history", from);
        hdir = hpath;
    }
    gq_status_t st =
        from ? set_dir(&cur, from, false, err, sizeof(err)) : set_embedded(&cur, false);
    if (st == GQ_OK)
        st = hdir ? set_dir(&hist, hdir, true, err, sizeof(err)) : set_embedded(&hist, true);
    if (st != GQ_OK) {
        gq_err("%s", err);
        set_release(&cur);
        set_release(&hist);
        return GQ_EXIT_DATAERR;
    }
    int bad = 0;
    for (size_t i = 0; i < cur.cnt; i++)
        bad += check_one(&cur.f[i], &hist, level, lv);
    /* A released version whose schema is gone is a removal nobody can read any more. */
    for (size_t i = 0; i < hist.cnt; i++) {
        bool found = false;
        for (size_t k = 0; k < cur.cnt && !found; k++)
            found = strcmp(cur.f[k].name, hist.f[i].name) == 0;
        if (!found) {
            printf("FAIL %s: released (v%d) but its current .avsc is gone\n", hist.f[i].name,
                   hist.f[i].version);
            bad++;
        }
    }
    printf("%zu schema(s), %zu released version(s): %s\n", cur.cnt, hist.cnt,
           bad ? "INCOMPATIBLE" : "compatible");
    set_release(&cur);
    set_release(&hist);
    return bad ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}

/* Registers the released versions (oldest first) and the current schema of each record
 * (requests, completion and progress events, cancels) under the topic-name subjects. */
static int schemas_register(const gq_cfg_t *cfg) {
    char err[1024];
    if (!gq_cfg_str(cfg, "schema_registry_url")) {
        gq_err("set GENQ_SCHEMA_REGISTRY_URL");
        return GQ_EXIT_USAGE;
    }
    avsc_set_t hist = {0};
    if (set_embedded(&hist, true) != GQ_OK) {
        gq_err("out of memory");
        return GQ_EXIT_SOFTWARE;
    }
    const struct {
        const char *name, *topic_key;
        gq_schema_kind_t kind;
    } kinds[] = {{"GenerationRequest", "requests_topic", GQ_SCHEMA_REQUEST},
                 {"GenerationCompleted", "completed_topic", GQ_SCHEMA_COMPLETED},
                 {"GenerationProgress", "progress_topic", GQ_SCHEMA_PROGRESS},
                 {"CancelRequest", "cancel_topic", GQ_SCHEMA_CANCEL}};
    int rc = GQ_EXIT_OK;
    for (size_t k = 0; k < GQ_ARRAY_LEN(kinds) && rc == GQ_EXIT_OK; k++) {
        char subject[512];
        snprintf(subject, sizeof(subject), "%s-value", gq_cfg_str(cfg, kinds[k].topic_key));
        gq_status_t st = GQ_OK;
        int32_t id = -1;
        for (int v = 1; st == GQ_OK && v < 100000; v++) {
            const avsc_file_t *h = NULL;
            for (size_t i = 0; !h && i < hist.cnt; i++)
                if (hist.f[i].version == v && strcmp(hist.f[i].name, kinds[k].name) == 0)
                    h = &hist.f[i];
            if (!h)
                break;
            st = gq_schema_registry_register(subject, h->text, h->len, &id, err, sizeof(err));
            if (st == GQ_OK)
                printf("%s v%d: subject %s, id %d\n", kinds[k].name, v, subject, (int)id);
        }
        if (st == GQ_OK)
            st = gq_schema_registry_id_of(kinds[k].kind, subject, &id, err, sizeof(err));
        if (st == GQ_OK) {
            printf("%s (current): subject %s, id %d\n", kinds[k].name, subject, (int)id);
        } else {
            gq_err("%s", err);
            rc = st == GQ_ERR_TRANSIENT ? GQ_EXIT_UNAVAILABLE : GQ_EXIT_DATAERR;
        }
    }
    set_release(&hist);
    return rc;
}

int gq_cmd_schemas(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    const char *mode = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (mode) {
        argc--;
        argv++;
    }
    int rc = gq_cli_setup(
        &cfg, GQ_CMD_SCHEMAS, "schemas",
        "usage: genq schemas list|show NAME|check|register [options]\n\n"
        "  list      the schemas compiled in (current and released versions) with their\n"
        "            fingerprints, and the writer schemas of GENQ_SCHEMA_DIR\n"
        "  show      the .avsc of NAME (GenerationRequest, GenerationRequest.v1, or a\n"
        "            fingerprint 0x...); show NAME canonical: its Parsing Canonical Form\n"
        "  check     each current schema against every released version of it\n"
        "            (schemas/history/<Name>.v<N>.avsc) at --level (backward, forward, full),\n"
        "            by the Avro resolution rules; also that job_id stays the first field and\n"
        "            that a changed schema is released as a new version. Exit 1 when not.\n"
        "            --schemas-from DIR checks DIR/*.avsc against DIR/history (or\n"
        "            --history-dir) instead of what is compiled in.\n"
        "  register  registers the released versions and the current schemas with the\n"
        "            Schema Registry under <requests_topic>-value, <completed_topic>-value,\n"
        "            <progress_topic>-value and <cancel_topic>-value\n",
        argc, argv, &argi);
    if (rc >= 0)
        return rc;
    char err[1024];
    if (!mode) {
        gq_err("expected list, show, check or register; try --help");
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    if (gq_schema_configure(&cfg, false, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_CONFIG;
    }
    if (strcmp(mode, "show") == 0 && argi < argc) {
        bool canonical = argi + 1 < argc && strcmp(argv[argi + 1], "canonical") == 0;
        if (argi + 1 + (canonical ? 1 : 0) == argc)
            rc = schemas_show(argv[argi], canonical);
        else
            rc = GQ_EXIT_USAGE;
    } else if (argi != argc) {
        rc = GQ_EXIT_USAGE;
    } else if (strcmp(mode, "list") == 0) {
        rc = schemas_list();
    } else if (strcmp(mode, "check") == 0) {
        rc = schemas_check(&cfg);
    } else if (strcmp(mode, "register") == 0) {
        rc = schemas_register(&cfg);
    } else {
        rc = GQ_EXIT_USAGE;
    }
    if (rc == GQ_EXIT_USAGE)
        gq_err("bad arguments; try --help");
    gq_cfg_release(&cfg);
    return rc;
}
