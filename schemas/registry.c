/*
 * The Schema Registry client (Confluent REST API, libcurl) and the cache of writer schemas
 * by id. One per process, like the loaded schemas (schema.c).
 *
 * Reading: GET <url>/schemas/ids/<id> answers {"schema": "<the writer's schema as JSON
 * text>"}. An id is cached for good once fetched (a registry never changes what an id
 * means), and so is an id the registry says it does not have (error_code 40403): that is a
 * permanent failure for the message. Anything else (no connection, a timeout, 5xx, 401/403,
 * an answer that is not the API's) is an outage: the message waits (GQ_ERR_TRANSIENT).
 *
 * In the asynchronous mode (the worker) nothing waits on the network in the caller: a miss
 * queues the id for a fetch thread and answers GQ_ERR_TRANSIENT; a failed fetch is tried
 * again when asked after REG_RETRY_MS.
 *
 * Writing: POST <url>/subjects/<subject>/versions with {"schema": "..."} registers the
 * schema or, when the subject has it already, answers its existing id.
 */
#include "schema_int.h"
#include "cfg.h"
#include "embedded.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define REG_MAX_RESPONSE (1u << 20) /* a schema is a few KB; refuse anything near this */
#define REG_MAX_IDS 4096            /* ids cached; beyond, each is fetched when needed */
#define REG_RETRY_MS 2000           /* a failed fetch is not tried again sooner */
#define REG_DEFAULT_TIMEOUT_MS 5000

typedef enum reg_state { REG_FETCHING, REG_FAILED, REG_UNKNOWN, REG_OK } reg_state_t;

typedef struct reg_entry {
    int32_t id;
    reg_state_t state;
    gq_writer_t *w; /* REG_OK */
    int64_t retry_mono;
    char err[256];
} reg_entry_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER;
static atomic_bool reg_on;
static struct {
    char *url, *username, *password, *ca_file;
    long timeout_ms;
    bool async;
    reg_entry_t *e;
    size_t cnt;
    bool thread_started, stop;
    pthread_t thread;
    struct {
        char subject[256];
        gq_schema_kind_t kind;
        int32_t id;
    } ids[16]; /* subjects registered or looked up by gq_schema_registry_id */
    size_t ids_cnt;
} reg;

bool gq_schema_registry_on(void) { return atomic_load(&reg_on); }

/* ------------------------------------------------------------------------------------------
 * HTTP */

typedef struct reg_body {
    char *data;
    size_t len;
    bool too_big;
} reg_body_t;

static size_t reg_write_cb(char *p, size_t size, size_t n, void *opaque) {
    reg_body_t *b = opaque;
    size_t add = size * n;
    if (b->len + add > REG_MAX_RESPONSE) {
        b->too_big = true;
        return 0;
    }
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

typedef struct reg_cfg {
    char url[1024], username[256], password[256], ca_file[1024];
    long timeout_ms;
} reg_cfg_t;

static void reg_cfg_copy(reg_cfg_t *c) {
    pthread_mutex_lock(&reg_lock);
    gq_strlcpy(c->url, reg.url ? reg.url : "", sizeof(c->url));
    gq_strlcpy(c->username, reg.username ? reg.username : "", sizeof(c->username));
    gq_strlcpy(c->password, reg.password ? reg.password : "", sizeof(c->password));
    gq_strlcpy(c->ca_file, reg.ca_file ? reg.ca_file : "", sizeof(c->ca_file));
    c->timeout_ms = reg.timeout_ms;
    pthread_mutex_unlock(&reg_lock);
}

/* The registry's error_code in a JSON error body, or 0. */
static long reg_error_code(const reg_body_t *b) {
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    long code = (long)json_integer_value(json_object_get(j, "error_code"));
    json_decref(j);
    return code;
}

/* One request; *http is the status (0 without an answer). body may be NULL (GET). */
static gq_status_t reg_http(const reg_cfg_t *c, const char *path, const char *body, long *http,
                            reg_body_t *out, char *errstr, size_t errstr_size) {
    *http = 0;
    char url[2048];
    size_t ul = strlen(c->url);
    while (ul && c->url[ul - 1] == '/')
        ul--;
    int n = snprintf(url, sizeof(url), "%.*s%s", (int)ul, c->url, path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        gq_errf(errstr, errstr_size, "registry URL too long");
        return GQ_ERR_INVALID;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        gq_errf(errstr, errstr_size, "curl_easy_init failed");
        return GQ_ERR_TRANSIENT;
    }
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, application/json");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reg_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (c->username[0]) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
    }
    if (c->ca_file[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (out->too_big) {
        gq_errf(errstr, errstr_size, "registry answer to %s larger than %u bytes", path,
                REG_MAX_RESPONSE);
        return GQ_ERR_TRANSIENT;
    }
    if (rc != CURLE_OK) {
        char shown[1100];
        gq_cfg_redact_url(c->url, shown, sizeof(shown)); /* no password in logs */
        gq_errf(errstr, errstr_size, "schema registry unreachable (%s%s): %s", shown, path,
                curl_easy_strerror(rc));
        return GQ_ERR_TRANSIENT;
    }
    return GQ_OK;
}

/* Fetches the schema of id: GQ_OK with *w, GQ_ERR_INVALID when the registry has no such id,
 * GQ_ERR_TRANSIENT otherwise. */
static gq_status_t reg_fetch(int32_t id, gq_writer_t **w, char *errstr, size_t errstr_size) {
    reg_cfg_t c;
    reg_cfg_copy(&c);
    char path[64];
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    reg_body_t b = {0};
    long http = 0;
    gq_status_t st = reg_http(&c, path, NULL, &http, &b, errstr, errstr_size);
    if (st == GQ_OK && http == 404 && reg_error_code(&b) == 40403) {
        gq_errf(errstr, errstr_size, "schema id %d is not in the schema registry", (int)id);
        st = GQ_ERR_INVALID;
    } else if (st == GQ_OK && http != 200) {
        gq_errf(errstr, errstr_size, "schema registry answered HTTP %ld to GET %s: %.200s", http,
                path, b.data ? b.data : "");
        st = GQ_ERR_TRANSIENT;
    } else if (st == GQ_OK) {
        json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
        json_t *s = json_object_get(j, "schema");
        const char *type = json_string_value(json_object_get(j, "schemaType"));
        char label[64];
        snprintf(label, sizeof(label), "registry schema id %d", (int)id);
        if (type && strcmp(type, "AVRO") != 0) {
            gq_errf(errstr, errstr_size, "schema id %d is a %s schema, not Avro", (int)id, type);
            st = GQ_ERR_INVALID;
        } else if (!json_is_string(s)) {
            gq_errf(errstr, errstr_size, "schema registry's answer to GET %s has no schema", path);
            st = GQ_ERR_TRANSIENT;
        } else if (!(*w = gq_schema_writer_new(json_string_value(s), json_string_length(s), label,
                                               errstr, errstr_size))) {
            st = GQ_ERR_INVALID;
        }
        json_decref(j);
    }
    free(b.data);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * The cache */

static reg_entry_t *reg_find(int32_t id) {
    for (size_t i = 0; i < reg.cnt; i++)
        if (reg.e[i].id == id)
            return &reg.e[i];
    return NULL;
}

/* Called with reg_lock held. */
static reg_entry_t *reg_add(int32_t id) {
    if (reg.cnt == REG_MAX_IDS)
        return NULL;
    if (!reg.e && !(reg.e = calloc(REG_MAX_IDS, sizeof(*reg.e))))
        return NULL;
    reg_entry_t *e = &reg.e[reg.cnt++];
    memset(e, 0, sizeof(*e));
    e->id = id;
    return e;
}

/* Stores a fetch's outcome (reg_lock held). */
static void reg_store(reg_entry_t *e, gq_status_t st, gq_writer_t *w, const char *err) {
    e->w = w;
    e->state = st == GQ_OK ? REG_OK : st == GQ_ERR_INVALID ? REG_UNKNOWN : REG_FAILED;
    e->retry_mono = gq_mono_ms() + REG_RETRY_MS;
    gq_strlcpy(e->err, err, sizeof(e->err));
}

static void *reg_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&reg_lock);
    while (!reg.stop) {
        reg_entry_t *todo = NULL;
        for (size_t i = 0; !todo && i < reg.cnt; i++)
            if (reg.e[i].state == REG_FETCHING)
                todo = &reg.e[i];
        if (!todo) {
            pthread_cond_wait(&reg_cond, &reg_lock);
            continue;
        }
        int32_t id = todo->id;
        pthread_mutex_unlock(&reg_lock);
        gq_writer_t *w = NULL;
        char err[256] = "";
        gq_status_t st = reg_fetch(id, &w, err, sizeof(err));
        if (st == GQ_OK)
            gq_info("schema registry: id %d is %s (fingerprint 0x%016llx)", (int)id,
                    gq_schema_writer_name(w), (unsigned long long)gq_schema_writer_fp(w));
        else
            gq_warn("schema registry: id %d: %s", (int)id, err);
        pthread_mutex_lock(&reg_lock);
        reg_entry_t *e = reg_find(id); /* entries do not move: the array is allocated once */
        if (e)
            reg_store(e, st, w, err);
        else
            gq_schema_writer_destroy(w);
    }
    pthread_mutex_unlock(&reg_lock);
    return NULL;
}

gq_status_t gq_schema_registry_writer(int32_t id, gq_writer_t **w, char *errstr,
                                      size_t errstr_size) {
    *w = NULL;
    pthread_mutex_lock(&reg_lock);
    reg_entry_t *e = reg_find(id);
    if (e && e->state == REG_OK) {
        *w = e->w;
        pthread_mutex_unlock(&reg_lock);
        return GQ_OK;
    }
    if (e && e->state == REG_UNKNOWN) {
        gq_errf(errstr, errstr_size, "%s", e->err);
        pthread_mutex_unlock(&reg_lock);
        return GQ_ERR_INVALID;
    }
    if (reg.async) {
        gq_status_t st = GQ_ERR_TRANSIENT;
        if (!e)
            e = reg_add(id);
        if (!e) {
            gq_errf(errstr, errstr_size, "more than %d schema ids in use", REG_MAX_IDS);
            st = GQ_ERR_INVALID;
        } else if (e->state == REG_FAILED && gq_mono_ms() < e->retry_mono) {
            gq_errf(errstr, errstr_size, "%s", e->err);
        } else {
            if (e->state != REG_FETCHING)
                gq_errf(errstr, errstr_size, "schema id %d: fetching it from the schema registry",
                        (int)id);
            else
                gq_errf(errstr, errstr_size,
                        "schema id %d: still fetching it from the schema "
                        "registry",
                        (int)id);
            e->state = REG_FETCHING;
            if (!reg.thread_started) {
                reg.stop = false;
                reg.thread_started = pthread_create(&reg.thread, NULL, reg_thread, NULL) == 0;
                if (!reg.thread_started)
                    gq_errf(errstr, errstr_size, "cannot start the schema registry thread");
            }
            pthread_cond_signal(&reg_cond);
        }
        pthread_mutex_unlock(&reg_lock);
        return st;
    }
    pthread_mutex_unlock(&reg_lock);
    gq_writer_t *nw = NULL;
    char err[256] = "";
    gq_status_t st = reg_fetch(id, &nw, err, sizeof(err));
    gq_errf(errstr, errstr_size, "%s", err);
    if (st == GQ_ERR_TRANSIENT)
        return st;
    pthread_mutex_lock(&reg_lock);
    if (!(e = reg_find(id)))
        e = reg_add(id);
    if (!e) {
        gq_schema_writer_destroy(nw);
        gq_errf(errstr, errstr_size, "more than %d schema ids in use", REG_MAX_IDS);
        st = GQ_ERR_INVALID;
    } else if (e->state == REG_OK) { /* another thread stored it meanwhile */
        gq_schema_writer_destroy(nw);
        *w = e->w;
        st = GQ_OK;
    } else {
        reg_store(e, st, nw, err);
        if (st == GQ_OK)
            *w = nw;
    }
    pthread_mutex_unlock(&reg_lock);
    return st;
}

static void reg_clear(void) {
    if (reg.thread_started) {
        reg.stop = true;
        pthread_cond_broadcast(&reg_cond);
        pthread_mutex_unlock(&reg_lock);
        pthread_join(reg.thread, NULL);
        pthread_mutex_lock(&reg_lock);
        reg.thread_started = false;
    }
    for (size_t i = 0; i < reg.cnt; i++)
        gq_schema_writer_destroy(reg.e[i].w);
    free(reg.e);
    reg.ids_cnt = 0;
    free(reg.url);
    free(reg.username);
    free(reg.password);
    free(reg.ca_file);
    reg.e = NULL;
    reg.cnt = 0;
    reg.url = reg.username = reg.password = reg.ca_file = NULL;
}

static char *reg_dup(const char *s) { return s && *s ? strdup(s) : NULL; }

gq_status_t gq_schema_registry_set(const gq_registry_conf_t *conf, char *errstr,
                                   size_t errstr_size) {
    pthread_mutex_lock(&reg_lock);
    reg_clear();
    atomic_store(&reg_on, false);
    if (!conf || !conf->url || !*conf->url) {
        pthread_mutex_unlock(&reg_lock);
        return GQ_OK;
    }
    if (strncmp(conf->url, "http://", 7) != 0 && strncmp(conf->url, "https://", 8) != 0) {
        pthread_mutex_unlock(&reg_lock);
        gq_errf(errstr, errstr_size, "schema registry URL must be http:// or https://");
        return GQ_ERR_INVALID;
    }
    reg.url = reg_dup(conf->url);
    reg.username = reg_dup(conf->username);
    reg.password = reg_dup(conf->password);
    reg.ca_file = reg_dup(conf->ca_file);
    reg.timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : REG_DEFAULT_TIMEOUT_MS;
    reg.async = conf->async != 0;
    bool ok = reg.url && (!conf->username || reg.username) && (!conf->password || reg.password);
    if (ok)
        atomic_store(&reg_on, true);
    pthread_mutex_unlock(&reg_lock);
    if (!ok)
        gq_errf(errstr, errstr_size, "out of memory");
    return ok ? GQ_OK : GQ_ERR_NOMEM;
}

/* "genq.requests-value" with '/' and the like percent-encoded for the path. */
static void reg_escape(const char *s, char *out, size_t out_size) {
    size_t n = 0;
    for (; *s && n + 4 < out_size; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        n += (size_t)snprintf(out + n, out_size - n, plain ? "%c" : "%%%02X", c);
    }
    out[n] = '\0';
}

gq_status_t gq_schema_registry_id(bool completed, const char *subject, int32_t *id, char *errstr,
                                  size_t errstr_size) {
    return gq_schema_registry_id_of(completed ? GQ_SCHEMA_COMPLETED : GQ_SCHEMA_REQUEST, subject,
                                    id, errstr, errstr_size);
}

gq_status_t gq_schema_registry_id_of(gq_schema_kind_t kind, const char *subject, int32_t *id,
                                     char *errstr, size_t errstr_size) {
    *id = -1;
    if ((unsigned)kind >= GQ_SCHEMA_KINDS) {
        gq_errf(errstr, errstr_size, "no schema of kind %d", (int)kind);
        return GQ_ERR_INVALID;
    }
    gq_status_t st = gq_schema_init(errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < reg.ids_cnt; i++) {
        if (reg.ids[i].kind == kind && strcmp(reg.ids[i].subject, subject) == 0) {
            *id = reg.ids[i].id;
            pthread_mutex_unlock(&reg_lock);
            return GQ_OK;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    const gq_embedded_t *e = gq_embedded_find(gq_schema_kind_path(kind));
    if (!e) {
        gq_errf(errstr, errstr_size, "%s is not compiled in", gq_schema_kind_path(kind));
        return GQ_ERR;
    }
    if ((st = gq_schema_registry_register(subject, e->data, e->len, id, errstr, errstr_size)) !=
        GQ_OK)
        return st;
    pthread_mutex_lock(&reg_lock);
    if (reg.ids_cnt < GQ_ARRAY_LEN(reg.ids) && strlen(subject) < sizeof(reg.ids[0].subject)) {
        gq_strlcpy(reg.ids[reg.ids_cnt].subject, subject, sizeof(reg.ids[0].subject));
        reg.ids[reg.ids_cnt].kind = kind;
        reg.ids[reg.ids_cnt].id = *id;
        reg.ids_cnt++;
    }
    pthread_mutex_unlock(&reg_lock);
    return GQ_OK;
}

gq_status_t gq_schema_registry_register(const char *subject, const char *schema, size_t len,
                                        int32_t *id, char *errstr, size_t errstr_size) {
    *id = -1;
    if (!gq_schema_registry_on()) {
        gq_errf(errstr, errstr_size, "no schema registry configured (GENQ_SCHEMA_REGISTRY_URL)");
        return GQ_ERR_INVALID;
    }
    gq_status_t st;
    json_t *req = json_pack("{s:s%}", "schema", schema, len);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    char esc[512], path[640];
    reg_escape(subject, esc, sizeof(esc));
    snprintf(path, sizeof(path), "/subjects/%s/versions", esc);
    reg_cfg_t c;
    reg_cfg_copy(&c);
    reg_body_t b = {0};
    long http = 0;
    st = reg_http(&c, path, body, &http, &b, errstr, errstr_size);
    free(body);
    if (st == GQ_OK) {
        json_t *j = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
        json_t *jid = json_object_get(j, "id");
        if (http == 200 && json_is_integer(jid) && json_integer_value(jid) >= 0 &&
            json_integer_value(jid) <= INT32_MAX) {
            *id = (int32_t)json_integer_value(jid);
        } else if (http == 409 || http == 422) {
            gq_errf(errstr, errstr_size,
                    "schema registry refused the schema under %s (HTTP %ld): "
                    "%.300s",
                    subject, http, b.data ? b.data : "");
            st = GQ_ERR_INVALID;
        } else {
            gq_errf(errstr, errstr_size, "schema registry answered HTTP %ld to POST %s: %.300s",
                    http, path, b.data ? b.data : "");
            st = GQ_ERR_TRANSIENT;
        }
        json_decref(j);
    }
    free(b.data);
    return st;
}
