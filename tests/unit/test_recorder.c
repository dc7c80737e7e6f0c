/*
 * The job recorder, the migration runner and lib/pg against a live PostgreSQL.
 *
 * Needs GENQ_DATABASE_URL (a role allowed to CREATE DATABASE); without it the test is
 * skipped. It never touches the database the URL names: it creates genq_test_<random>
 * databases next to it and drops them at the end. tests/integration/0030-recorder.sh runs
 * it against the test stack. GENQ_TEST_BENCH_N sets the benchmark's iterations (1000).
 */
#include "migrate.h"
#include "pg.h"
#include "pgq.h"
#include "worker/db/recorder.h"
#include "util.h"
#include "check.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gq_pg_t *admin;
static char created[4][64];
static size_t created_cnt;

/* ---------------------------------------------------------------------------------------
 * helpers */

/* Runs sql with up to three text parameters; returns field (0,0) as a string ("" for
 * NULL or no row, "ERROR <status>" on failure). Four rotating buffers, so that two results
 * can be compared in one CHECK_STR. */
static const char *q3(gq_pg_t *pg, const char *sql, const char *a, const char *b, const char *c) {
    static char bufs[4][4096];
    static int next;
    char *out = bufs[next++ % 4];
    gq_pg_params_t p;
    gq_pg_params_init(&p);
    if (a)
        gq_pg_param_str(&p, a);
    if (b)
        gq_pg_param_str(&p, b);
    if (c)
        gq_pg_param_str(&p, c);
    PGresult *res = NULL;
    char err[1024];
    gq_status_t st = gq_pg_exec(pg, sql, &p, &res, err, sizeof(err));
    if (st != GQ_OK) {
        snprintf(out, 4096, "ERROR %s: %s", gq_status_name(st), err);
        return out;
    }
    gq_strlcpy(out, gq_pg_get(res, 0, 0), 4096);
    PQclear(res);
    return out;
}
static const char *q1(gq_pg_t *pg, const char *sql, const char *a) {
    return q3(pg, sql, a, NULL, NULL);
}
static const char *q0(gq_pg_t *pg, const char *sql) { return q3(pg, sql, NULL, NULL, NULL); }

/* A conninfo string for database dbname on the server of url (same user, host, options). */
static void url_for_db(const char *url, const char *dbname, char *out, size_t out_size) {
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    size_t used = 0;
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? NULL : o->val;
        if (!v)
            continue;
        used += (size_t)snprintf(out + used, out_size - used, "%s='", o->keyword);
        for (; *v && used + 3 < out_size; v++) {
            if (*v == '\'' || *v == '\\')
                out[used++] = '\\';
            out[used++] = *v;
        }
        used += (size_t)snprintf(out + used, out_size - used, "' ");
    }
    snprintf(out + used, out_size - used, "dbname='%s'", dbname);
    PQconninfoFree(opts);
    PQfreemem(err);
}

static gq_status_t db_create(char *name, size_t name_size, char *url, size_t url_size,
                             const char *base_url) {
    snprintf(name, name_size, "genq_test_%016" PRIx64, gq_random_u64());
    /* Identifiers cannot be parameters; the name is ours (hex) and quoted anyway. */
    char *ident = PQescapeIdentifier(gq_pg_conn(admin), name, strlen(name));
    char sql[256], err[1024];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", ident);
    PQfreemem(ident);
    gq_status_t st = gq_pg_exec(admin, sql, NULL, NULL, err, sizeof(err));
    if (st != GQ_OK) {
        fprintf(stderr, "test_recorder: %s: %s\n", sql, err);
        return st;
    }
    if (created_cnt < GQ_ARRAY_LEN(created))
        gq_strlcpy(created[created_cnt++], name, sizeof(created[0]));
    url_for_db(base_url, name, url, url_size);
    return GQ_OK;
}

static void db_drop_all(void) {
    for (size_t i = 0; i < created_cnt; i++) {
        char *ident = PQescapeIdentifier(gq_pg_conn(admin), created[i], strlen(created[i]));
        char sql[256], err[1024];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
        PQfreemem(ident);
        if (gq_pg_exec(admin, sql, NULL, NULL, err, sizeof(err)) != GQ_OK)
            fprintf(stderr, "test_recorder: %s: %s\n", sql, err);
    }
}

static gq_pg_t *connect_or_die(const char *url) {
    char err[1024];
    gq_status_t st;
    gq_pg_t *pg = gq_pg_connect(url, 5, &st, err, sizeof(err));
    if (!pg)
        fprintf(stderr, "test_recorder: %s\n", err);
    return pg;
}

/* Terminates every other backend of the current database, and waits until they are gone. */
static int terminate_others(gq_pg_t *pg) {
    int64_t n = 0;
    gq_parse_i64(q0(pg, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"),
                 0, 1000, &n);
    for (int i = 0; i < 100; i++) {
        if (strcmp(q0(pg, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                          "current_database() AND pid <> pg_backend_pid()"),
                   "0") == 0)
            break;
        gq_sleep_ms(20);
    }
    return (int)n;
}

static gq_kv_t test_meta[] = {{"team", "vision"}, {"note", "quote \" and 'apostrophe' and \\"}};

static void make_req(gq_request_t *req, const char *job_id) {
    memset(req, 0, sizeof(*req));
    gq_strlcpy(req->job_id, job_id, sizeof(req->job_id));
    req->submitted_at = INT64_C(1763820000123);
    req->workflow = "txt2img";
    req->prompt = "a red fox'); DROP TABLE genq.jobs; --";
    req->negative_prompt = "blurry";
    req->width = 768;
    req->height = 512;
    req->seed = INT64_C(9007199254740993);
    req->steps = 30;
    req->cfg = 6.5;
    req->sampler = "euler";
    req->scheduler = "karras";
    req->model = "sdxl.safetensors";
    req->batch_size = 2;
    req->priority = -3;
    req->source = "unit-test";
    req->max_attempts = 3;
    req->timeout_s = 0;
    req->metadata = test_meta;
    req->metadata_cnt = GQ_ARRAY_LEN(test_meta);
}

static gq_output_t test_outputs[2];

static void make_ev(gq_completed_t *ev, const char *job_id, int32_t attempt, gq_job_status_t status,
                    size_t outputs) {
    memset(ev, 0, sizeof(*ev));
    gq_strlcpy(ev->job_id, job_id, sizeof(ev->job_id));
    ev->attempt = attempt;
    ev->status = status;
    for (size_t i = 0; i < 2; i++) {
        test_outputs[i].uri = i ? "file:///out/bb.png" : "file:///out/aa.png";
        gq_sha256_hex(i ? "b" : "a", 1, test_outputs[i].sha256);
        test_outputs[i].bytes = 1000 + (int64_t)i;
        test_outputs[i].width = 768;
        test_outputs[i].height = 512;
        test_outputs[i].mime = "image/png";
    }
    ev->outputs = outputs ? test_outputs : NULL;
    ev->outputs_cnt = outputs;
    ev->queue_ms = 150;
    ev->render_ms = 4200;
    ev->total_ms = 4500;
    ev->worker_id = "worker-a";
    ev->finished_at = INT64_C(1763820004623);
    if (status == GQ_JOB_FAILED) {
        ev->has_error = true;
        ev->error_code = "comfy_error";
        ev->error_message = "node 3: out of memory";
        ev->error_retryable = true;
    }
    ev->model = "ev-model";
    ev->source = "ev-source";
}

/* ---------------------------------------------------------------------------------------
 * migrations */

static void test_unmigrated(const char *url) {
    char err[1024];
    gq_status_t st = GQ_OK;
    gq_recorder_t *r = gq_recorder_new(url, &st, err, sizeof(err));
    CHECK(r == NULL);
    CHECK(st == GQ_ERR_NOTFOUND);
    CHECK(strstr(err, "database not migrated (missing 0001_init") != NULL);
    CHECK(strstr(err, "run `genq migrate`") != NULL);
    gq_recorder_destroy(r);
}

static void test_migrate(const char *url) {
    char err[1024];
    gq_pg_t *pg = connect_or_die(url);
    if (!pg) {
        CHECK(pg != NULL);
        return;
    }
    gq_migration_set_t set;
    CHECK(gq_migrate_set_embedded(&set, err, sizeof(err)) == GQ_OK);
    gq_migration_status_t status[16];
    size_t unknown = 99;
    CHECK(set.cnt <= GQ_ARRAY_LEN(status));
    CHECK(gq_migrate_inspect(pg, &set, status, &unknown, err, sizeof(err)) == GQ_OK);
    CHECK(status[0].state == GQ_MIGRATION_PENDING);
    CHECK_INT(unknown, 0);

    size_t applied = 0;
    CHECK(gq_migrate_apply(pg, &set, &applied, err, sizeof(err)) == GQ_OK);
    CHECK_INT(applied, set.cnt);
    CHECK(gq_migrate_apply(pg, &set, &applied, err, sizeof(err)) == GQ_OK);
    CHECK_INT(applied, 0);
    CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_OK);
    CHECK(gq_migrate_inspect(pg, &set, status, &unknown, err, sizeof(err)) == GQ_OK);
    CHECK(status[0].state == GQ_MIGRATION_APPLIED);
    CHECK_STR(status[0].db_checksum, set.items[0].checksum);
    CHECK_INT(strlen(status[0].applied_at), 20);
    char cnt[16];
    snprintf(cnt, sizeof(cnt), "%zu", set.cnt);
    CHECK_STR(q0(pg, "SELECT count(*) FROM genq.schema_migrations"), cnt);

    /* Analysts' documentation: every table, view and column of schema genq is commented. */
    CHECK_STR(q0(pg, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                     "c.relnamespace WHERE n.nspname = 'genq' AND c.relkind IN ('r', 'v') "
                     "AND obj_description(c.oid, 'pg_class') IS NULL"),
              "0");
    CHECK_STR(q0(pg, "SELECT coalesce(string_agg(c.relname || '.' || a.attname, ', '), '') "
                     "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'genq' "
                     "AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped "
                     "AND col_description(c.oid, a.attnum) IS NULL"),
              "");

    /* A tampered checksum: refused by apply (naming the file) and by the worker's check. */
    q1(pg, "UPDATE genq.schema_migrations SET checksum = 'x' || checksum WHERE version = $1",
       "0001_init");
    CHECK(gq_migrate_apply(pg, &set, &applied, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "migration 0001_init.sql was changed after it was applied") != NULL);
    CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "0001_init.sql was changed") != NULL);
    CHECK(gq_migrate_inspect(pg, &set, status, &unknown, err, sizeof(err)) == GQ_OK);
    CHECK(status[0].state == GQ_MIGRATION_CHANGED);
    q1(pg, "UPDATE genq.schema_migrations SET checksum = substr(checksum, 2) WHERE version = $1",
       "0001_init");
    CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_OK);

    /* Migrations this genq does not know (a newer genq ran): accepted, counted. */
    gq_migration_set_t extra = {0};
    gq_migration_t items[2] = {
        {"9001_extra.sql", "9001_extra", "CREATE TABLE genq.t_extra (x int);", 0, ""},
        {"9002_bad.sql", "9002_bad", "CREATE TABLE genq.t_bad (x int); SELEC 1;", 0, ""},
    };
    items[0].len = strlen(items[0].sql);
    items[1].len = strlen(items[1].sql);
    gq_sha256_hex(items[0].sql, items[0].len, items[0].checksum);
    gq_sha256_hex(items[1].sql, items[1].len, items[1].checksum);
    extra.items = items;
    extra.cnt = 1;
    CHECK(gq_migrate_apply(pg, &extra, &applied, err, sizeof(err)) == GQ_OK);
    CHECK_INT(applied, 1);
    CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_OK);
    CHECK(gq_migrate_inspect(pg, &set, status, &unknown, err, sizeof(err)) == GQ_OK);
    CHECK_INT(unknown, 1);
    /* A failing migration: named, not recorded, and its earlier statements rolled back. */
    extra.cnt = 2;
    CHECK(gq_migrate_apply(pg, &extra, &applied, err, sizeof(err)) == GQ_ERR);
    CHECK(strstr(err, "migration 9002_bad.sql failed") != NULL);
    CHECK(strstr(err, "SQLSTATE 42601") != NULL);
    CHECK_STR(q0(pg, "SELECT to_regclass('genq.t_bad') IS NULL"), "t");
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.schema_migrations WHERE version = $1", "9002_bad"),
              "0");
    q0(pg, "DROP TABLE genq.t_extra");
    q1(pg, "DELETE FROM genq.schema_migrations WHERE version = $1", "9001_extra");

    /* A partly migrated database (here: 0001 unrecorded) is refused with the missing name. */
    q1(pg, "DELETE FROM genq.schema_migrations WHERE version = $1", "0001_init");
    CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_ERR_NOTFOUND);
    CHECK(strstr(err, "database not migrated (missing 0001_init): run `genq migrate`") != NULL);
    q3(pg, "INSERT INTO genq.schema_migrations (version, checksum) VALUES ($1, $2)", "0001_init",
       set.items[0].checksum, NULL);
    CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_OK);
    gq_migrate_set_release(&set);
    gq_pg_destroy(pg);
}

typedef struct mig_thread {
    const char *url;
    gq_status_t st;
    size_t applied;
    char err[1024];
} mig_thread_t;

static void *mig_thread_run(void *arg) {
    mig_thread_t *t = arg;
    gq_migration_set_t set;
    t->st = gq_migrate_set_embedded(&set, t->err, sizeof(t->err));
    if (t->st != GQ_OK)
        return NULL;
    gq_pg_t *pg = gq_pg_connect(t->url, 10, &t->st, t->err, sizeof(t->err));
    if (pg)
        t->st = gq_migrate_apply(pg, &set, &t->applied, t->err, sizeof(t->err));
    gq_pg_destroy(pg);
    gq_migrate_set_release(&set);
    return NULL;
}

/* Eight runners at once on a fresh database: all succeed, each migration applied once. */
static void test_migrate_concurrent(const char *base_url) {
    char name[64], url[2048];
    if (db_create(name, sizeof(name), url, sizeof(url), base_url) != GQ_OK) {
        CHECK(!"create database");
        return;
    }
    mig_thread_t t[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].url = url;
        pthread_create(&th[i], NULL, mig_thread_run, &t[i]);
    }
    size_t total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CHECK(t[i].st == GQ_OK);
        if (t[i].st != GQ_OK)
            fprintf(stderr, "runner %d: %s\n", i, t[i].err);
        total += t[i].applied;
    }
    gq_migration_set_t set;
    char err[256];
    CHECK(gq_migrate_set_embedded(&set, err, sizeof(err)) == GQ_OK);
    CHECK_INT(total, set.cnt);
    gq_pg_t *pg = connect_or_die(url);
    if (pg) {
        char want[16];
        snprintf(want, sizeof(want), "%zu", set.cnt);
        CHECK_STR(q0(pg, "SELECT count(DISTINCT version) FROM genq.schema_migrations"), want);
        CHECK(gq_migrate_check(pg, err, sizeof(err)) == GQ_OK);
    }
    gq_pg_destroy(pg);
    gq_migrate_set_release(&set);
}

/* ---------------------------------------------------------------------------------------
 * the recorder */

/* The arguments of an attempt's start, with the message at (partition, offset). */
static gq_rec_begin_t begin_args(const gq_request_t *req, const char *worker, const char *prompt,
                                 int64_t partition, int64_t offset, int64_t started_at,
                                 bool force) {
    gq_rec_begin_t a = {
        req,        NULL,   3,
        worker,     prompt, (gq_msg_ref_t){"g1", "genq.requests", (int32_t)partition, offset, 0},
        started_at, force};
    return a;
}

static gq_rec_begun_t begin(gq_recorder_t *r, const gq_rec_begin_t *a) {
    char err[1024];
    gq_rec_begun_t out = {.outcome = (gq_rec_outcome_t)-1};
    gq_status_t st = gq_recorder_begin(r, a, &out, err, sizeof(err));
    CHECK(st == GQ_OK);
    if (st != GQ_OK)
        fprintf(stderr, "begin: %s\n", err);
    return out;
}

static gq_status_t finish(gq_recorder_t *r, const gq_request_t *req, const gq_completed_t *ev,
                          gq_msg_ref_t ref, bool *already, char *err, size_t err_size) {
    gq_rec_finish_t a = {req, ev, ref, "test", {0}, {0}};
    gq_rec_finished_t out = {0}; /* left as it is when the statement cannot even be built */
    gq_status_t st = gq_recorder_finish(r, &a, &out, err, err_size);
    *already = out.already;
    return st;
}

static gq_status_t fail(gq_recorder_t *r, const char *id, int32_t attempt, const char *code,
                        const char *msg, int64_t at) {
    char err[1024];
    gq_rec_fail_t a = {id, attempt, code, msg, at, 20, 300};
    return gq_recorder_fail(r, &a, err, sizeof(err));
}

static gq_status_t reject(gq_recorder_t *r, gq_msg_ref_t ref, const char *job_id,
                          const char *reason, const char *error, const void *payload, size_t len,
                          bool *first) {
    char err[1024];
    gq_rec_reject_t a = {ref, job_id, reason, error, payload, len, "test", {0}};
    gq_rec_rejected_t out;
    gq_status_t st = gq_recorder_reject(r, &a, &out, err, sizeof(err));
    if (first)
        *first = out.first;
    return st;
}

static void test_lifecycle(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024], id[37];
    gq_uuid_v4(id);
    gq_request_t req;
    make_req(&req, id);
    gq_job_row_t row;

    CHECK(gq_recorder_job_get(r, id, &row, err, sizeof(err)) == GQ_OK);
    CHECK(!row.exists);

    int64_t t1 = INT64_C(1763820001234);
    gq_rec_begin_t a = begin_args(&req, "worker-a", "p-1", 2, 41, t1, false);
    gq_rec_begun_t b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN);
    CHECK_INT(b.attempt, 1);
    CHECK(gq_recorder_job_get(r, id, &row, err, sizeof(err)) == GQ_OK);
    CHECK(row.exists);
    CHECK_STR(row.status, "running");
    CHECK_INT(row.attempts, 1);
    CHECK_STR(row.comfy_prompt_id, "p-1");
    CHECK_STR(row.worker_id, "worker-a");
    CHECK_INT(row.started_at, t1);
    CHECK_STR(q1(pg, "SELECT prompt FROM genq.jobs WHERE job_id = $1", id), req.prompt);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', model, workflow, negative_prompt, width, height, seed, "
                 "steps, cfg, sampler, scheduler, batch_size, priority, source, max_attempts, "
                 "coalesce(timeout_s::text, 'null'), kafka_topic, kafka_partition, "
                 "kafka_offset, (extract(epoch FROM submitted_at) * 1000)::bigint) "
                 "FROM genq.jobs WHERE job_id = $1",
                 id),
              "sdxl.safetensors|txt2img|blurry|768|512|9007199254740993|30|6.5|euler|karras|"
              "2|-3|unit-test|3|null|genq.requests|2|41|1763820000123");
    CHECK_STR(q1(pg, "SELECT metadata->>'note' FROM genq.jobs WHERE job_id = $1", id),
              test_meta[1].value);
    CHECK_STR(q1(pg, "SELECT metadata->>'team' FROM genq.jobs WHERE job_id = $1", id), "vision");
    /* The request as received, every field: what replay publishes again. */
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', request->>'job_id', request->>'prompt', "
                 "request->'overrides', request->'workflow_json', request->>'seed') "
                 "FROM genq.jobs WHERE job_id = $1",
                 id),
              (snprintf(err, sizeof(err), "%s|%s|{}|null|9007199254740993", id, req.prompt), err));
    CHECK_STR(q1(pg,
                 "SELECT status || ' ' || worker_id FROM genq.job_attempts "
                 "WHERE job_id = $1 AND attempt = 1",
                 id),
              "running worker-a");

    /* A retryable failure: the attempt is failed with its durations, the job queued. */
    CHECK(fail(r, id, 1, "comfy_down", "connection refused", t1 + 1000) == GQ_OK);
    CHECK_STR(q1(pg, "SELECT status || ' ' || error_code FROM genq.jobs WHERE job_id = $1", id),
              "queued comfy_down");
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', status, error_code, error, queue_ms, render_ms, "
                 "(extract(epoch FROM finished_at) * 1000)::bigint) FROM genq.job_attempts "
                 "WHERE job_id = $1 AND attempt = 1",
                 id),
              "failed|comfy_down|connection refused|20|300|1763820002234");

    /* Attempt 2 starts and its worker dies. The next owner is told to probe prompt p-2;
     * ComfyUI does not know it, so it starts attempt 3, and 2 is abandoned. */
    a = begin_args(&req, "worker-b", "p-2", 2, 41, t1 + 2000, false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN && b.attempt == 2);
    a = begin_args(&req, "worker-c", "p-3", 2, 41, t1 + 3000, false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_PROBE);
    CHECK_INT(b.attempt, 2);
    CHECK_STR(b.prev_prompt_id, "p-2");
    CHECK_INT(b.prev_started_at, t1 + 2000);
    CHECK_STR(
        q1(pg, "SELECT attempts || ' ' || comfy_prompt_id FROM genq.jobs WHERE job_id = $1", id),
        "2 p-2");
    a.force = true;
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN && b.attempt == 3);
    CHECK_STR(q1(pg,
                 "SELECT string_agg(attempt || ':' || status, ',' ORDER BY attempt) "
                 "FROM genq.job_attempts WHERE job_id = $1",
                 id),
              "1:failed,2:abandoned,3:running");
    CHECK(gq_recorder_job_get(r, id, &row, err, sizeof(err)) == GQ_OK);
    CHECK_INT(row.attempts, 3);
    CHECK_STR(row.comfy_prompt_id, "p-3");
    CHECK_STR(row.worker_id, "worker-c");

    /* The terminal record: job, outputs, attempt and offset together. */
    gq_completed_t ev;
    make_ev(&ev, id, 3, GQ_JOB_SUCCEEDED, 2);
    ev.worker_id = "worker-c";
    bool already = true;
    gq_msg_ref_t ref = {"g1", "genq.requests", 2, 41, 0};
    CHECK(finish(r, &req, &ev, ref, &already, err, sizeof(err)) == GQ_OK);
    CHECK(!already);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', status, attempts, queue_ms, render_ms, total_ms, "
                 "worker_id, coalesce(error_code, 'null'), coalesce(error_retryable::text, "
                 "'null'), (extract(epoch FROM finished_at) * 1000)::bigint, model, source, "
                 "kafka_offset) FROM genq.jobs WHERE job_id = $1",
                 id),
              "succeeded|3|150|4200|4500|worker-c|null|null|1763820004623|sdxl.safetensors|"
              "unit-test|41");
    CHECK_STR(q1(pg,
                 "SELECT string_agg(concat_ws(' ', idx, uri, sha256, bytes, width, height, "
                 "mime), ';' ORDER BY idx) FROM genq.job_outputs WHERE job_id = $1",
                 id),
              "0 file:///out/aa.png "
              "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb 1000 768 512 "
              "image/png;1 file:///out/bb.png "
              "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d 1001 768 512 "
              "image/png");
    CHECK_STR(q1(pg,
                 "SELECT string_agg(attempt || ':' || status || ':' || "
                 "coalesce(render_ms::text, '-'), ',' ORDER BY attempt) "
                 "FROM genq.job_attempts WHERE job_id = $1",
                 id),
              "1:failed:300,2:abandoned:-,3:succeeded:4200");
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets WHERE consumer_group = 'g1' "
                     "AND topic = 'genq.requests' AND kafka_partition = 2"),
              "42");
    const char *before =
        q1(pg, "SELECT row_to_json(j)::text FROM genq.jobs j WHERE job_id = $1", id);
    char snapshot[8192];
    gq_strlcpy(snapshot, before, sizeof(snapshot));

    /* Finished again (a redelivery, a replay, another worker): only the offset moves. */
    gq_completed_t ev2;
    make_ev(&ev2, id, 4, GQ_JOB_FAILED, 0);
    gq_msg_ref_t ref2 = {"g1", "genq.requests", 2, 77, 0};
    CHECK(finish(r, NULL, &ev2, ref2, &already, err, sizeof(err)) == GQ_OK);
    CHECK(already);
    CHECK_STR(q1(pg, "SELECT row_to_json(j)::text FROM genq.jobs j WHERE job_id = $1", id),
              snapshot);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_outputs WHERE job_id = $1", id), "2");
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_attempts WHERE job_id = $1", id), "3");
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets WHERE consumer_group = 'g1' "
                     "AND kafka_partition = 2"),
              "78");

    /* A terminal job is never reopened by attempt_begin, whose message is then done. */
    a = begin_args(&req, "worker-d", "p-5", 2, 90, t1 + 9000, true);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_TERMINAL);
    CHECK_STR(q1(pg, "SELECT row_to_json(j)::text FROM genq.jobs j WHERE job_id = $1", id),
              snapshot);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_attempts WHERE job_id = $1", id), "3");
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets WHERE consumer_group = 'g1' "
                     "AND kafka_partition = 2"),
              "91");
    /* Nor by attempt_fail. */
    CHECK(fail(r, id, 3, "x", "y", t1) == GQ_OK);
    CHECK_STR(q1(pg, "SELECT row_to_json(j)::text FROM genq.jobs j WHERE job_id = $1", id),
              snapshot);
    CHECK_STR(q1(pg, "SELECT status FROM genq.job_attempts WHERE job_id = $1 AND attempt = 3", id),
              "succeeded");
}

/* max_attempts: the attempt after the last is refused, the job left as it was. */
static void test_exhausted(gq_recorder_t *r, gq_pg_t *pg) {
    char id[37];
    gq_uuid_v4(id);
    gq_request_t req;
    make_req(&req, id);
    for (int i = 1; i <= 3; i++) {
        gq_rec_begin_t a = begin_args(&req, "w", "p", 0, i, 0, false);
        gq_rec_begun_t b = begin(r, &a);
        CHECK(b.outcome == GQ_REC_BEGUN && b.attempt == i);
        CHECK(fail(r, id, i, "execution_error", "boom", 0) == GQ_OK);
    }
    gq_rec_begin_t a = begin_args(&req, "w", "p", 0, 9, 0, false);
    gq_rec_begun_t b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_EXHAUSTED);
    CHECK_INT(b.attempt, 3);
    CHECK_STR(q1(pg, "SELECT status || ' ' || attempts FROM genq.jobs WHERE job_id = $1", id),
              "queued 3");
}

/* Jobs finished without attempt_begin: from the request, or from the event alone. */
static void test_finish_new(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024], id[37], id2[37];
    gq_uuid_v4(id);
    gq_uuid_v4(id2);
    gq_request_t req;
    make_req(&req, id);
    req.model = NULL;
    req.timeout_s = 90;
    req.metadata_cnt = 0;
    gq_completed_t ev;
    make_ev(&ev, id, 1, GQ_JOB_SUCCEEDED, 1);
    gq_msg_ref_t ref = {"g1", "genq.requests", 0, 5, 0};
    bool already = true;
    CHECK(finish(r, &req, &ev, ref, &already, err, sizeof(err)) == GQ_OK);
    CHECK(!already);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', status, prompt, model, source, timeout_s, metadata, "
                 "kafka_offset, started_at IS NULL) FROM genq.jobs WHERE job_id = $1",
                 id),
              "succeeded|a red fox'); DROP TABLE genq.jobs; --|ev-model|unit-test|90|{}|5|t");
    CHECK_STR(q1(pg,
                 "SELECT status || ' ' || worker_id || ' ' || (started_at IS NULL) "
                 "FROM genq.job_attempts WHERE job_id = $1",
                 id),
              "succeeded worker-a true");

    /* A message that did not decode, keyed by its job id: no request, no attempt, the
     * event's fields. */
    make_ev(&ev, id2, 0, GQ_JOB_FAILED, 0);
    ev.error_retryable = false;
    ev.error_code = "decode_error";
    ref.offset = 6;
    CHECK(finish(r, NULL, &ev, ref, &already, err, sizeof(err)) == GQ_OK);
    CHECK(!already);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', status, attempts, coalesce(prompt, 'null'), model, "
                 "source, metadata, error_code, error, error_retryable, "
                 "coalesce(request::text, 'null')) FROM genq.jobs WHERE job_id = $1",
                 id2),
              "failed|0|null|ev-model|ev-source|{}|decode_error|node 3: out of memory|f|null");
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_attempts WHERE job_id = $1", id2), "0");

    /* The views see them. */
    CHECK_STR(q0(pg, "SELECT jobs || ' ' || succeeded || ' ' || failed || ' ' || failure_rate "
                     "|| ' ' || render_ms_p50 FROM genq.model_stats WHERE model = 'ev-model'"),
              "2 1 1 0.5000 4200");

    /* Bad input is permanent, and nothing is half-written. */
    CHECK(gq_recorder_job_get(r, "not-a-uuid", &(gq_job_row_t){0}, err, sizeof(err)) ==
          GQ_ERR_INVALID);
    CHECK(strstr(err, "22P02") != NULL);
    make_ev(&ev, "also-not-a-uuid", 1, GQ_JOB_SUCCEEDED, 1);
    ref.offset = 100;
    CHECK(finish(r, NULL, &ev, ref, &already, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets WHERE consumer_group = 'g1' "
                     "AND kafka_partition = 0"),
              "7");
    char id3[37];
    gq_uuid_v4(id3);
    make_ev(&ev, id3, 1, GQ_JOB_SUCCEEDED, 1);
    test_outputs[0].uri = NULL;
    CHECK(finish(r, NULL, &ev, ref, &already, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.jobs WHERE job_id = $1", id3), "0");
}

/* The result cache: a job with the key of a succeeded job with outputs is answered from them,
 * before any attempt; the hit is recorded without an attempt; no key, no lookup. */
static void test_cache(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024], a_id[37], b_id[37], c_id[37];
    gq_uuid_v4(a_id);
    gq_uuid_v4(b_id);
    gq_uuid_v4(c_id);
    const char *key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    gq_request_t req;

    /* A renders: its begin carries the key, its record the scheduling columns. */
    make_req(&req, a_id);
    gq_rec_begin_t a = begin_args(&req, "w", "p-a", 3, 1, 0, false);
    a.cache_key = key;
    gq_rec_begun_t b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN && b.outputs == NULL);
    /* Not yet succeeded: B, with the same key, renders too. */
    make_req(&req, b_id);
    gq_rec_begin_t bb = begin_args(&req, "w", "p-b", 3, 2, 0, false);
    bb.cache_key = key;
    b = begin(r, &bb);
    CHECK(b.outcome == GQ_REC_BEGUN);
    make_req(&req, a_id);
    gq_completed_t ev;
    make_ev(&ev, a_id, 1, GQ_JOB_SUCCEEDED, 2);
    gq_rec_finish_t fa = {&req,
                          &ev,
                          {"g1", "genq.requests.high", 3, 1, 0},
                          "test",
                          {0},
                          {0},
                          "genq.requests.high",
                          1234,
                          key,
                          NULL};
    gq_rec_finished_t fo;
    CHECK(gq_recorder_finish(r, &fa, &fo, err, sizeof(err)) == GQ_OK);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', lane, sched_wait_ms, cache_key = "
                 "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', cache_hit, "
                 "coalesce(cache_source::text, 'null')) FROM genq.jobs WHERE job_id = $1",
                 a_id),
              "genq.requests.high|1234|t|f|null");

    /* C, the same key: cached, with A's outputs in order; nothing written yet. */
    make_req(&req, c_id);
    gq_rec_begin_t ca = begin_args(&req, "w", "p-c", 3, 4, 0, false);
    ca.cache_key = key;
    b = begin(r, &ca);
    CHECK(b.outcome == GQ_REC_CACHED);
    CHECK_STR(b.prev_prompt_id, a_id);
    CHECK_INT(b.outputs_cnt, 2);
    if (b.outputs_cnt == 2) {
        CHECK_STR(b.outputs[0].uri, "file:///out/aa.png");
        CHECK_STR(b.outputs[1].uri, "file:///out/bb.png");
        CHECK_STR(b.outputs[1].sha256, test_outputs[1].sha256);
        CHECK_INT(b.outputs[1].bytes, 1001);
        CHECK_INT(b.outputs[0].width, 768);
        CHECK_STR(b.outputs[0].mime, "image/png");
    }
    CHECK_STR(q1(pg, "SELECT status || attempts FROM genq.jobs WHERE job_id = $1", c_id),
              "queued0");
    gq_rec_begun_release(&b);
    CHECK(b.outputs == NULL && b.outputs_cnt == 0);

    /* No key: no lookup, even for an identical request. */
    char d_id[37];
    gq_uuid_v4(d_id);
    make_req(&req, d_id);
    gq_rec_begin_t da = begin_args(&req, "w", "p-d", 3, 5, 0, false);
    b = begin(r, &da);
    CHECK(b.outcome == GQ_REC_BEGUN);
    CHECK_STR(q1(pg, "SELECT coalesce(cache_key, 'null') FROM genq.jobs WHERE job_id = $1", d_id),
              "null");
}

/* A cache hit's record: cache_hit, its source, no attempt row, the source's outputs. */
static void test_cache_hit_record(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024], src[37], id[37];
    gq_uuid_v4(src);
    gq_uuid_v4(id);
    gq_request_t req;
    make_req(&req, id);
    gq_completed_t ev;
    make_ev(&ev, id, 1, GQ_JOB_SUCCEEDED, 2);
    ev.render_ms = 0;
    gq_rec_finish_t f = {&req, &ev, {"g1", "genq.requests", 0, 9, 0}, "test", {0}, {0}, NULL, 50,
                         "k",  src};
    gq_rec_finished_t out;
    CHECK(gq_recorder_finish(r, &f, &out, err, sizeof(err)) == GQ_OK);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', status, attempts, cache_hit, cache_source::text = "
                 "(SELECT cache_source::text FROM genq.jobs WHERE job_id = $1), render_ms, "
                 "coalesce(lane, 'null')) FROM genq.jobs WHERE job_id = $1",
                 id),
              "succeeded|0|t|t|0|null");
    CHECK_STR(q1(pg, "SELECT cache_source::text FROM genq.jobs WHERE job_id = $1", id), src);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_attempts WHERE job_id = $1", id), "0");
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_outputs WHERE job_id = $1", id), "2");
}

/* ---------------------------------------------------------------------------------------
 * cancels */

static int64_t cancels_record(gq_recorder_t *r, const char *job_id, int64_t offset,
                              const char *reason, const char *source) {
    char err[1024];
    gq_cancel_t c = {.requested_at = INT64_C(1763820000000) + offset,
                     .reason = (char *)reason,
                     .requested_by = "ops",
                     .source = (char *)source};
    gq_strlcpy(c.job_id, job_id, sizeof(c.job_id));
    gq_rec_cancel_t rc = {&c, "genq.cancel", 0, offset};
    int64_t written = -1;
    gq_status_t st = gq_recorder_cancels(r, &rc, 1, "worker-c", &written, err, sizeof(err));
    CHECK(st == GQ_OK);
    if (st != GQ_OK)
        fprintf(stderr, "cancels_record: %s\n", err);
    return written;
}

/* A cancelled job's record: status cancelled, the event FAILED with code cancelled. */
static gq_status_t finish_cancelled(gq_recorder_t *r, const gq_request_t *req, const char *id,
                                    int32_t attempt, bool no_attempt, int64_t offset,
                                    bool *already) {
    char err[1024];
    gq_completed_t ev;
    make_ev(&ev, id, attempt, GQ_JOB_FAILED, 0);
    ev.error_code = "cancelled";
    ev.error_message = "cancelled by ops: wrong prompt";
    ev.error_retryable = false;
    ev.render_ms = no_attempt ? 0 : 800;
    gq_rec_finish_t a = {.req = req,
                         .ev = &ev,
                         .ref = {"g1", "genq.requests", 7, offset, 0},
                         .claimer = "test",
                         .sched_wait_ms = -1,
                         .cancelled = true,
                         .no_attempt = no_attempt};
    gq_rec_finished_t out = {0};
    gq_status_t st = gq_recorder_finish(r, &a, &out, err, sizeof(err));
    if (st != GQ_OK)
        fprintf(stderr, "finish_cancelled: %s\n", err);
    *already = out.already;
    return st;
}

/* genq.cancels is written idempotently (the later message of a job wins, whatever the order
 * and however often); attempt_begin refuses a cancelled job (when the source matches) and
 * names the prompt of an attempt still marked running; the record `cancelled` is terminal,
 * keeps attempts that failed before, and is counted apart in the views. */
static void test_cancels(gq_recorder_t *r, gq_pg_t *pg) {
    char x[37], y[37], z[37], w[37], v[37], s[37];
    gq_uuid_v4(x);
    gq_uuid_v4(y);
    gq_uuid_v4(z);
    gq_uuid_v4(w);
    gq_uuid_v4(v);
    gq_uuid_v4(s);

    /* Idempotence: the same message twice, an older one, a newer one, a batch with repeats. */
    CHECK_INT(cancels_record(r, x, 10, "first", NULL), 1);
    CHECK_INT(cancels_record(r, x, 10, "first", NULL), 0);
    CHECK_INT(cancels_record(r, x, 5, "older", NULL), 0);
    CHECK_STR(q1(pg,
                 "SELECT reason || ' ' || kafka_offset || ' ' || recorded_by FROM "
                 "genq.cancels WHERE job_id = $1",
                 x),
              "first 10 worker-c");
    CHECK_INT(cancels_record(r, x, 12, "second", NULL), 1);
    char err[1024];
    gq_cancel_t c1 = {.requested_at = 1, .reason = "third"},
                c2 = {.requested_at = 2, .reason = "fourth"};
    gq_strlcpy(c1.job_id, x, sizeof(c1.job_id));
    gq_strlcpy(c2.job_id, x, sizeof(c2.job_id));
    gq_rec_cancel_t batch[2] = {{&c2, "genq.cancel", 0, 14}, {&c1, "genq.cancel", 0, 13}};
    int64_t written = -1;
    CHECK(gq_recorder_cancels(r, batch, 2, "worker-d", &written, err, sizeof(err)) == GQ_OK);
    CHECK_INT(written, 1);
    CHECK(gq_recorder_cancels(r, batch, 2, "worker-d", &written, err, sizeof(err)) == GQ_OK);
    CHECK_INT(written, 0);
    CHECK_STR(q1(pg,
                 "SELECT reason || ' ' || kafka_offset || ' ' || requested_by || ' ' || "
                 "(source IS NULL) FROM genq.cancels WHERE job_id = $1",
                 x),
              "fourth 14  true");
    CHECK(gq_recorder_cancels(r, batch, 0, "worker-d", &written, err, sizeof(err)) == GQ_OK);
    CHECK_INT(written, 0);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.cancels WHERE job_id = $1", x), "1");

    /* A job never seen: refused, nothing begun; the cancel's words come back. */
    gq_request_t req;
    make_req(&req, x);
    req.model = "cancel-model.safetensors";
    gq_rec_begin_t a = begin_args(&req, "worker-a", "p-x", 7, 1, 0, false);
    gq_rec_begun_t b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_CANCELLED);
    CHECK_INT(b.attempt, 0);
    CHECK_STR(b.prev_prompt_id, "");
    CHECK_STR(b.cancel_reason, "fourth");
    CHECK_STR(q1(pg, "SELECT status || ' ' || attempts FROM genq.jobs WHERE job_id = $1", x),
              "queued 0");
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_attempts WHERE job_id = $1", x), "0");
    /* Even forced, even with the result cache asked. */
    a.force = true;
    a.cache_key = "k";
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_CANCELLED);
    bool already = true;
    CHECK(finish_cancelled(r, &req, x, 1, true, 1, &already) == GQ_OK);
    CHECK(!already);
    CHECK_STR(q1(pg,
                 "SELECT concat_ws('|', status, attempts, error_code, error, error_retryable, "
                 "finished_at IS NOT NULL) FROM genq.jobs WHERE job_id = $1",
                 x),
              "cancelled|0|cancelled|cancelled by ops: wrong prompt|f|t");
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.job_attempts WHERE job_id = $1", x), "0");
    /* Terminal: a redelivery is done, a second record changes nothing. */
    a.force = false;
    a.cache_key = NULL;
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_TERMINAL);
    CHECK(finish_cancelled(r, &req, x, 1, true, 2, &already) == GQ_OK);
    CHECK(already);

    /* A cancel for another tenant's job does not apply; one for this tenant's does. */
    CHECK_INT(cancels_record(r, y, 20, "not yours", "other-tenant"), 1);
    make_req(&req, y);
    a = begin_args(&req, "worker-a", "p-y", 7, 2, 0, false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN);
    CHECK_INT(cancels_record(r, z, 21, "yours", "unit-test"), 1);
    make_req(&req, z);
    a = begin_args(&req, "worker-a", "p-z", 7, 3, 0, false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_CANCELLED);

    /* Cancelled while rendering elsewhere: the new owner is told the running prompt (to
     * remove it from ComfyUI), and records the attempt as cancelled. */
    make_req(&req, w);
    req.model = "cancel-model.safetensors";
    a = begin_args(&req, "worker-a", "p-w", 7, 4, INT64_C(1763820001000), false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN && b.attempt == 1);
    CHECK_INT(cancels_record(r, w, 22, "", NULL), 1);
    a = begin_args(&req, "worker-b", "p-w2", 7, 4, 0, false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_CANCELLED);
    CHECK_INT(b.attempt, 1);
    CHECK_STR(b.prev_prompt_id, "p-w");
    CHECK_INT(b.prev_started_at, INT64_C(1763820001000));
    CHECK_STR(b.cancel_reason, "");
    CHECK_STR(b.cancel_by, "ops");
    CHECK(finish_cancelled(r, &req, w, 1, false, 4, &already) == GQ_OK);
    CHECK(!already);
    CHECK_STR(q1(pg, "SELECT status || ' ' || attempts FROM genq.jobs WHERE job_id = $1", w),
              "cancelled 1");
    CHECK_STR(q1(pg,
                 "SELECT string_agg(attempt || ':' || status || ':' || render_ms, ',') "
                 "FROM genq.job_attempts WHERE job_id = $1",
                 w),
              "1:cancelled:800");
    /* attempt_fail (a late failure of the interrupted attempt) changes nothing now. */
    CHECK(fail(r, w, 1, "interrupted", "late", 0) == GQ_OK);
    CHECK_STR(q1(pg, "SELECT status FROM genq.jobs WHERE job_id = $1", w), "cancelled");
    CHECK_STR(q1(pg, "SELECT status FROM genq.job_attempts WHERE job_id = $1", w), "cancelled");

    /* Cancelled while waiting for a retry: the failed attempt stays failed. */
    make_req(&req, v);
    req.model = "cancel-model.safetensors";
    a = begin_args(&req, "worker-a", "p-v", 7, 5, 0, false);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_BEGUN);
    CHECK(fail(r, v, 1, "comfy_unavailable", "down", 0) == GQ_OK);
    CHECK(finish_cancelled(r, &req, v, 1, true, 5, &already) == GQ_OK);
    CHECK_STR(q1(pg, "SELECT status || ' ' || attempts FROM genq.jobs WHERE job_id = $1", v),
              "cancelled 1");
    CHECK_STR(q1(pg,
                 "SELECT string_agg(attempt || ':' || status, ',') FROM genq.job_attempts "
                 "WHERE job_id = $1",
                 v),
              "1:failed");

    /* A job that ended before its cancel: nothing changes, whoever asks. */
    make_req(&req, s);
    req.model = "cancel-model.safetensors";
    gq_completed_t ev;
    make_ev(&ev, s, 1, GQ_JOB_SUCCEEDED, 1);
    CHECK(finish(r, &req, &ev, (gq_msg_ref_t){"g1", "genq.requests", 7, 6, 0}, &already, err,
                 sizeof(err)) == GQ_OK);
    CHECK_INT(cancels_record(r, s, 23, "too late", NULL), 1);
    a = begin_args(&req, "worker-b", "p-s", 7, 6, 0, true);
    b = begin(r, &a);
    CHECK(b.outcome == GQ_REC_TERMINAL);
    CHECK(finish_cancelled(r, &req, s, 1, false, 6, &already) == GQ_OK);
    CHECK(already);
    CHECK_STR(q1(pg, "SELECT status FROM genq.jobs WHERE job_id = $1", s), "succeeded");

    /* The views count cancelled jobs apart: not failures, not in flight. */
    CHECK_STR(q0(pg, "SELECT concat_ws(' ', jobs, succeeded, failed, in_flight, cancelled, "
                     "coalesce(failure_rate::text, 'null')) FROM genq.model_stats "
                     "WHERE model = 'cancel-model.safetensors'"),
              "4 1 0 0 3 0.0000");
    CHECK_STR(q0(pg, "SELECT sum(cancelled) || ' ' || sum(jobs) FROM genq.hourly_stats "
                     "WHERE model = 'cancel-model.safetensors'"),
              "3 4");
    /* A status outside the five is refused by the table itself. */
    CHECK(strncmp(q1(pg, "UPDATE genq.jobs SET status = 'paused' WHERE job_id = $1", s), "ERROR",
                  5) == 0);
}

/* The outbox messages go in with the record (and only with the first record). */
static void test_finish_outbox(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024], id[37];
    gq_uuid_v4(id);
    gq_completed_t ev;
    make_ev(&ev, id, 1, GQ_JOB_FAILED, 0);
    static const unsigned char event[] = {0xc3, 0x01, 0, 1, 2};
    static const unsigned char dead[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
    gq_kv_t hdr[] = {{"genq-reason", "attempts_exhausted"}, {"genq-error", "a \"quoted\" one"}};
    gq_rec_finish_t a = {NULL,
                         &ev,
                         {"g-ob", "t-ob", 0, 3, 0},
                         "worker-x",
                         {"completed", event, sizeof(event), NULL, 0},
                         {"dlq", dead, sizeof(dead), hdr, 2}};
    gq_rec_finished_t out;
    CHECK(gq_recorder_finish(r, &a, &out, err, sizeof(err)) == GQ_OK);
    CHECK(!out.already && out.event_id > 0 && out.dead_id > out.event_id);
    CHECK_STR(q1(pg,
                 "SELECT string_agg(concat_ws('|', topic, msg_key, encode(payload, 'hex'), "
                 "headers->>'genq-error', claimed_by), ';' ORDER BY id) FROM genq.outbox "
                 "WHERE job_id = $1",
                 id),
              (snprintf(err, sizeof(err),
                        "completed|%s|c301000102|worker-x;dlq|%s|dead00beef|a \"quoted\" one|"
                        "worker-x",
                        id, id),
               err));
    /* Claimed in binary: the bytes come back as they went in. */
    gq_outbox_row_t *rows = NULL;
    size_t cnt = 0;
    CHECK(gq_recorder_outbox_claim(r, "worker-x", 60000, true, 100, &rows, &cnt, err,
                                   sizeof(err)) == GQ_OK);
    bool seen = false;
    for (size_t i = 0; i < cnt; i++) {
        if (rows[i].id != out.dead_id)
            continue;
        seen = true;
        CHECK(rows[i].len == sizeof(dead) && memcmp(rows[i].payload, dead, sizeof(dead)) == 0);
        CHECK_STR(rows[i].topic, "dlq");
        CHECK_STR(rows[i].key, id);
        CHECK_INT(rows[i].headers_cnt, 2);
    }
    CHECK(seen);
    gq_outbox_rows_free(rows, cnt);
    CHECK(finish(r, NULL, &ev, (gq_msg_ref_t){"g-ob", "t-ob", 0, 4, 0}, &(bool){false}, err,
                 sizeof(err)) == GQ_OK);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.outbox WHERE job_id = $1", id), "2");
    int64_t ids[2] = {out.event_id, out.dead_id};
    CHECK(gq_recorder_outbox_done(r, ids, 2, err, sizeof(err)) == GQ_OK);
    CHECK_STR(q1(pg, "SELECT count(*) FROM genq.outbox WHERE job_id = $1", id), "0");
}

static void test_offsets(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024];
    int32_t parts[4] = {0, 1, 2, 3};
    int64_t offs[4];
    gq_msg_ref_t ref = {"g-off", "t-off", 1, 10, 0};
    CHECK(gq_recorder_offsets_load(r, "g-off", "t-off", parts, offs, 4, err, sizeof(err)) == GQ_OK);
    for (int i = 0; i < 4; i++)
        CHECK_INT(offs[i], -1001);
    CHECK(gq_recorder_offset_advance(r, &ref, err, sizeof(err)) == GQ_OK);
    ref.offset = 5; /* older: ignored */
    CHECK(gq_recorder_offset_advance(r, &ref, err, sizeof(err)) == GQ_OK);
    ref.next_offset = -1; /* not ours any more: nothing */
    ref.offset = 50;
    CHECK(gq_recorder_offset_advance(r, &ref, err, sizeof(err)) == GQ_OK);
    ref.next_offset = 0;
    ref.partition = 3;
    ref.offset = 0;
    CHECK(gq_recorder_offset_advance(r, &ref, err, sizeof(err)) == GQ_OK);
    ref.topic = "t-other";
    ref.offset = 500;
    CHECK(gq_recorder_offset_advance(r, &ref, err, sizeof(err)) == GQ_OK);
    CHECK(gq_recorder_offsets_load(r, "g-off", "t-off", parts, offs, 4, err, sizeof(err)) == GQ_OK);
    CHECK_INT(offs[0], -1001);
    CHECK_INT(offs[1], 11);
    CHECK_INT(offs[2], -1001);
    CHECK_INT(offs[3], 1);
    CHECK(gq_recorder_offsets_load(r, "g-other", "t-off", parts, offs, 4, err, sizeof(err)) ==
          GQ_OK);
    CHECK_INT(offs[1], -1001);
    CHECK(gq_recorder_offsets_load(r, "g-off", "t-off", parts, offs, 0, err, sizeof(err)) == GQ_OK);
    CHECK_STR(q0(pg, "SELECT count(*) FROM genq.consumer_offsets WHERE consumer_group = 'g-off'"),
              "3");
}

static void test_reject(gq_recorder_t *r, gq_pg_t *pg) {
    gq_msg_ref_t ref = {"g-rej", "t-rej", 0, 7, 0};
    static const unsigned char bin[] = {0xc3, 0x01, 0x00, 0xff, 0x27, 0x5c};
    bool first = false;
    CHECK(reject(r, ref, NULL, "decode_error", "bad magic", bin, sizeof(bin), &first) == GQ_OK);
    CHECK(first);
    CHECK(reject(r, ref, NULL, "decode_error", "bad magic again", bin, 1, &first) == GQ_OK);
    CHECK(!first);
    CHECK_STR(q0(pg, "SELECT concat_ws('|', count(*), min(encode(payload, 'hex')), min(error), "
                     "min(payload_bytes), bool_and(job_id IS NULL)) FROM genq.rejected_messages "
                     "WHERE topic = 't-rej'"),
              "1|c30100ff275c|bad magic|6|t");
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets "
                     "WHERE consumer_group = 'g-rej'"),
              "8");
    /* The job id is kept when it is a uuid (any case), dropped otherwise. */
    ref.offset = 8;
    CHECK(reject(r, ref, "5B0D9C57-5A6E-4A34-9D4C-2F5F1B7B9A11", "invalid", "x", NULL, 0, NULL) ==
          GQ_OK);
    ref.offset = 9;
    CHECK(reject(r, ref, "'; DROP TABLE x; --", "invalid", "x", "", 0, NULL) == GQ_OK);
    CHECK_STR(q0(pg, "SELECT string_agg(kafka_offset || '=' || coalesce(job_id::text, 'null') "
                     "|| '/' || coalesce(length(payload)::text, 'null'), ',' ORDER BY "
                     "kafka_offset) FROM genq.rejected_messages WHERE topic = 't-rej'"),
              "7=null/6,8=5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11/null,9=null/0");
    /* Payloads are cut at 1 MiB; the original size is kept. */
    size_t big = (1u << 20) + 4096;
    unsigned char *payload = malloc(big);
    if (payload) {
        memset(payload, 'z', big);
        ref.offset = 10;
        CHECK(reject(r, ref, NULL, "too_big", "x", payload, big, NULL) == GQ_OK);
        CHECK_STR(q0(pg, "SELECT length(payload) || ' ' || payload_bytes FROM "
                         "genq.rejected_messages WHERE topic = 't-rej' AND kafka_offset = 10"),
                  "1048576 1052672");
        free(payload);
    }
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets "
                     "WHERE consumer_group = 'g-rej'"),
              "11");
}

/* Many statements in flight at once on the pipeline: answers come in order, a failing one
 * in the middle spoils none of the others. */
static void test_pipeline(gq_recorder_t *r, gq_pg_t *pg) {
    char err[1024];
    enum { N = 40 };
    char ids[N][37];
    gq_request_t reqs[N];
    for (int i = 0; i < N; i++) {
        gq_uuid_v4(ids[i]);
        if (i == 17)
            gq_strlcpy(ids[i], "not-a-uuid-at-all-not-a-uuid-at-all0", sizeof(ids[i]));
        make_req(&reqs[i], ids[i]);
        gq_rec_begin_t a = begin_args(&reqs[i], "w-pipe", "p", 5, 1000 + i, 0, false);
        CHECK(gq_recorder_begin_send(r, &a, (uint64_t)(100 + i), err, sizeof(err)) == GQ_OK);
    }
    gq_pgq_t *q = gq_recorder_pgq(r);
    CHECK(gq_pgq_pending(q) == N);
    int got = 0, ok = 0;
    int64_t deadline = gq_mono_ms() + 10000;
    while (got < N && gq_mono_ms() < deadline) {
        gq_pgq_service(q);
        gq_pgq_done_t d;
        while (gq_pgq_next_done(q, &d)) {
            CHECK_INT(d.tag, 100 + got);
            CHECK_INT(d.kind, GQ_REC_BEGIN);
            if (got == 17) {
                CHECK(d.status == GQ_ERR_INVALID);
            } else {
                gq_rec_begun_t b;
                CHECK(d.status == GQ_OK &&
                      gq_recorder_begin_result(d.res, &b, err, sizeof(err)) == GQ_OK &&
                      b.outcome == GQ_REC_BEGUN);
                ok += d.status == GQ_OK;
            }
            PQclear(d.res);
            got++;
        }
        gq_sleep_ms(1);
    }
    CHECK_INT(got, N);
    CHECK_INT(ok, N - 1);
    CHECK_INT(gq_pgq_pending(q), 0);
    CHECK_STR(q0(pg, "SELECT count(*) FROM genq.jobs WHERE worker_id = 'w-pipe'"), "39");
}

typedef struct finish_thread {
    const char *url;
    const char *job_id;
    int64_t offset;
    gq_recorder_t *r; /* NULL: make one */
    gq_status_t st;
    bool already;
    char err[1024];
} finish_thread_t;

static void *finish_thread_run(void *arg) {
    finish_thread_t *t = arg;
    gq_recorder_t *r = t->r;
    if (!r)
        r = gq_recorder_new(t->url, &t->st, t->err, sizeof(t->err));
    if (!r)
        return NULL;
    gq_completed_t ev;
    make_ev(&ev, t->job_id, 1, GQ_JOB_SUCCEEDED, 0);
    gq_msg_ref_t ref = {"g-race", "t-race", 0, t->offset, 0};
    t->st = finish(r, NULL, &ev, ref, &t->already, t->err, sizeof(t->err));
    if (r != t->r)
        gq_recorder_destroy(r);
    return NULL;
}

/* Eight workers finish the same new job at once: one writes it, seven see it written. */
static void test_finish_race(const char *url, gq_pg_t *pg) {
    char id[37];
    gq_uuid_v4(id);
    finish_thread_t t[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].url = url;
        t[i].job_id = id;
        t[i].offset = 100 + i;
        pthread_create(&th[i], NULL, finish_thread_run, &t[i]);
    }
    int written = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CHECK(t[i].st == GQ_OK);
        if (t[i].st != GQ_OK)
            fprintf(stderr, "finisher %d: %s\n", i, t[i].err);
        written += t[i].st == GQ_OK && !t[i].already;
    }
    CHECK_INT(written, 1);
    CHECK_STR(q0(pg, "SELECT next_offset FROM genq.consumer_offsets "
                     "WHERE consumer_group = 'g-race'"),
              "108");
}

/* Connection loss: what is in flight fails as transient, the connection comes back by
 * itself, and the same statement then succeeds. */
static void test_transient(const char *url, gq_pg_t *pg) {
    char err[1024], id[37];
    gq_status_t st;
    gq_recorder_t *r = gq_recorder_new(url, &st, err, sizeof(err));
    CHECK(r != NULL);
    if (!r)
        return;
    gq_job_row_t row;
    gq_uuid_v4(id);

    CHECK(terminate_others(pg) >= 1);
    st = gq_recorder_job_get(r, id, &row, err, sizeof(err));
    CHECK(st == GQ_ERR_TRANSIENT);
    /* The reconnection is in the background; a blocking call waits for it. */
    for (int i = 0; i < 100 && st != GQ_OK; i++) {
        gq_sleep_ms(50);
        gq_pgq_service(gq_recorder_pgq(r));
        st = gq_recorder_job_get(r, id, &row, err, sizeof(err));
    }
    CHECK(st == GQ_OK);

    /* Statements in flight when the connection dies: each gets its transient answer. */
    gq_completed_t ev;
    make_ev(&ev, id, 1, GQ_JOB_SUCCEEDED, 1);
    gq_rec_finish_t fa = {NULL, &ev, {"g-tr", "t-tr", 0, 1, 0}, "w", {0}, {0}};
    CHECK(gq_pg_begin(pg, err, sizeof(err)) == GQ_OK);
    q1(pg, "INSERT INTO genq.jobs (job_id, status) VALUES ($1::uuid, 'queued')", id);
    q1(pg, "SELECT 1 FROM genq.jobs WHERE job_id = $1 FOR UPDATE", id);
    CHECK(gq_recorder_finish_send(r, &fa, 7, err, sizeof(err)) == GQ_OK);
    CHECK(gq_recorder_finish_send(r, &fa, 8, err, sizeof(err)) == GQ_OK);
    const char *pid = "";
    for (int i = 0; i < 250 && !*pid; i++) {
        gq_sleep_ms(20);
        gq_pgq_service(gq_recorder_pgq(r));
        pid = q0(pg, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                     "wait_event_type = 'Lock' AND pid <> pg_backend_pid()");
    }
    CHECK(*pid != '\0');
    CHECK_STR(q1(pg, "SELECT pg_terminate_backend($1::int)", pid), "t");
    gq_pg_rollback(pg);
    int transient = 0;
    for (int i = 0; i < 200 && transient < 2; i++) {
        gq_sleep_ms(10);
        gq_pgq_service(gq_recorder_pgq(r));
        gq_pgq_done_t d;
        while (gq_pgq_next_done(gq_recorder_pgq(r), &d)) {
            transient += d.status == GQ_ERR_TRANSIENT && (d.tag == 7 || d.tag == 8);
            PQclear(d.res);
        }
    }
    CHECK_INT(transient, 2);
    gq_rec_finished_t out = {0};
    st = GQ_ERR;
    for (int i = 0; i < 100 && st != GQ_OK; i++) {
        gq_sleep_ms(50);
        gq_pgq_service(gq_recorder_pgq(r));
        st = gq_recorder_finish(r, &fa, &out, err, sizeof(err));
    }
    CHECK(st == GQ_OK);
    CHECK(!out.already);
    CHECK_STR(q1(pg, "SELECT status FROM genq.jobs WHERE job_id = $1", id), "succeeded");

    /* While the database is away, a send answers at once (transient), never blocks. */
    terminate_others(pg);
    gq_recorder_job_get(r, id, &row, err, sizeof(err));
    int64_t t0 = gq_mono_ms();
    gq_recorder_job_get(r, id, &row, err, sizeof(err));
    CHECK(gq_mono_ms() - t0 < 5000);
    gq_recorder_destroy(r);

    /* Unreachable server: transient; malformed URL: invalid. */
    r = gq_recorder_new("postgresql://genq@127.0.0.1:1/genq?connect_timeout=2", &st, err,
                        sizeof(err));
    CHECK(r == NULL && st == GQ_ERR_TRANSIENT);
    r = gq_recorder_new("postgresql://genq@[::1/genq", &st, err, sizeof(err));
    CHECK(r == NULL && st == GQ_ERR_INVALID);
}

/* Pipelined begin + finish, as the worker sends them: the database's side of a job's cost. */
static void bench(gq_recorder_t *r) {
    const char *env = getenv("GENQ_TEST_BENCH_N");
    int n = env ? (int)strtol(env, NULL, 10) : 1000;
    if (n <= 0)
        return;
    enum { WINDOW = 8 };
    char err[1024];
    static char ids[WINDOW][37];
    gq_request_t req[WINDOW];
    gq_completed_t ev[WINDOW];
    gq_pgq_t *q = gq_recorder_pgq(r);
    int fails = 0, sent = 0, answered = 0;
    int64_t t0 = gq_mono_ms();
    while (answered < 2 * n) {
        while (sent < n && (int)gq_pgq_pending(q) < WINDOW) {
            int k = sent % WINDOW;
            gq_uuid_v4(ids[k]);
            make_req(&req[k], ids[k]);
            make_ev(&ev[k], ids[k], 1, GQ_JOB_SUCCEEDED, 1);
            gq_rec_begin_t a = begin_args(&req[k], "w", "p", 9, sent, 0, false);
            gq_rec_finish_t f = {&req[k], &ev[k], {"g-bench", "t-bench", 9, sent, 0},
                                 "w",     {0},    {0}};
            fails += gq_recorder_begin_send(r, &a, 1, err, sizeof(err)) != GQ_OK;
            fails += gq_recorder_finish_send(r, &f, 2, err, sizeof(err)) != GQ_OK;
            sent++;
        }
        gq_pgq_service(q);
        gq_pgq_done_t d;
        while (gq_pgq_next_done(q, &d)) {
            fails += d.status != GQ_OK;
            answered++;
            PQclear(d.res);
        }
    }
    int64_t t1 = gq_mono_ms();
    CHECK_INT(fails, 0);
    double ms = (double)(t1 - t0);
    fprintf(stderr,
            "bench: %d jobs (attempt_begin + job_finish, pipelined) in %.0f ms: "
            "%.0f jobs/s, %.3f ms each\n",
            n, ms, n * 1000.0 / (ms > 0 ? ms : 1), ms / n);
}

int main(void) {
    const char *base = getenv("GENQ_DATABASE_URL");
    if (!base || !*base)
        return CHECK_SKIPPED("test_recorder", "GENQ_DATABASE_URL not set");
    admin = connect_or_die(base);
    if (!admin)
        return 1;
    char name[64], url[2048];
    if (db_create(name, sizeof(name), url, sizeof(url), base) != GQ_OK) {
        gq_pg_destroy(admin);
        return 1;
    }
    test_unmigrated(url);
    test_migrate(url);
    test_migrate_concurrent(base);

    char err[1024];
    gq_status_t st;
    gq_recorder_t *r = gq_recorder_new(url, &st, err, sizeof(err));
    gq_pg_t *pg = connect_or_die(url);
    CHECK(r != NULL);
    if (r && pg) {
        CHECK(gq_recorder_ping(r, err, sizeof(err)) == GQ_OK);
        test_lifecycle(r, pg);
        test_exhausted(r, pg);
        test_finish_new(r, pg);
        test_finish_outbox(r, pg);
        test_cache(r, pg);
        test_cache_hit_record(r, pg);
        test_cancels(r, pg);
        test_offsets(r, pg);
        test_reject(r, pg);
        test_pipeline(r, pg);
        test_finish_race(url, pg);
        bench(r);
        test_transient(url, pg);
    } else {
        fprintf(stderr, "test_recorder: %s\n", err);
    }
    gq_recorder_destroy(r);
    gq_pg_destroy(pg);
    db_drop_all();
    gq_pg_destroy(admin);
    return CHECK_DONE("test_recorder");
}
