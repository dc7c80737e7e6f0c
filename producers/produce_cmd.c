/* genq produce: publish requests from flags or JSON lines; optionally wait for them. */
#include "cli.h"
#include "commands.h"
#include "genq_producer.h"
#include "idset.h"
#include "log.h"
#include "reader.h"
#include "schema_cfg.h"
#include "util.h"
#include "view.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRODUCE_MAX_LINE (1u << 20)
#define PRODUCE_MAX_WORKFLOW (4u << 20)

enum { JOB_SENT = 1, JOB_DELIVERED, JOB_SUCCEEDED, JOB_FAILED };

typedef struct produce_state {
    gq_idset_t jobs; /* with --wait: every job sent, and how far it got */
    bool track;
    size_t delivered, failed_delivery;
    gq_producer_t *p; /* where requests go: Kafka, */
    FILE *messages;   /* or, with --write-messages, a file */
    const char *messages_path;
    gq_framing_t framing; /* of the messages */
    int32_t schema_id;    /* GQ_FRAMING_CONFLUENT: the registry's id of GenerationRequest */
} produce_state_t;

static volatile sig_atomic_t produce_stop;
static void produce_on_signal(int sig) {
    (void)sig;
    produce_stop = 1;
}

/* Job ids go to stdout as their delivery is confirmed: a printed id is durably queued. */
static void produce_on_delivery(const char *job_id, gq_status_t st, const char *err, void *opaque) {
    produce_state_t *ps = opaque;
    (void)err;
    if (st == GQ_OK) {
        fputs(job_id, stdout);
        putc('\n', stdout);
        ps->delivered++;
        unsigned char *s = ps->track ? gq_idset_get(&ps->jobs, job_id) : NULL;
        if (s && *s == JOB_SENT)
            *s = JOB_DELIVERED;
    } else {
        ps->failed_delivery++;
    }
}

static char *produce_read_file(const char *path, size_t max, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(errstr, errstr_size, "cannot open %s", path);
        return NULL;
    }
    gq_buf_t b;
    gq_buf_init(&b, max);
    char chunk[65536];
    size_t n;
    gq_status_t st = GQ_OK;
    while (st == GQ_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        st = gq_buf_append(&b, chunk, n);
    fclose(f);
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s is larger than %zu bytes", path, max);
        gq_buf_release(&b);
        return NULL;
    }
    return gq_buf_detach(&b, NULL);
}

static char *produce_strdup_opt(const gq_cfg_t *cfg, const char *key) {
    const char *v = gq_cfg_str(cfg, key);
    return v ? strdup(v) : NULL;
}

/* The seed of the i-th request: --seed (given, a value >= 0) plus i, or a random one plus i;
 * -1 (refused by validation) if that overflows. */
static int64_t produce_seed(int64_t given, int64_t i) {
    int64_t base = given >= 0 ? given : (int64_t)(gq_random_u64() >> 33);
    return base > INT64_MAX - i ? -1 : base + i;
}

static int64_t produce_seed_flag(const gq_cfg_t *cfg) {
    return gq_cfg_isset(cfg, "seed") ? gq_cfg_int(cfg, "seed") : -1;
}

/* Fills a request from the flags; the caller owns req. */
static gq_status_t produce_from_flags(const gq_cfg_t *cfg, gq_request_t *req, char *errstr,
                                      size_t errstr_size) {
    gq_request_init(req);
    if (gq_cfg_isset(cfg, "job_id"))
        gq_strlcpy(req->job_id, gq_cfg_str(cfg, "job_id"), sizeof(req->job_id));
    const char *wf = gq_cfg_str(cfg, "workflow");
    if (wf[0] == '@') {
        req->workflow_json = produce_read_file(wf + 1, PRODUCE_MAX_WORKFLOW, errstr, errstr_size);
        if (!req->workflow_json)
            return GQ_ERR_INVALID;
        free(req->workflow);
        req->workflow = strdup("inline");
    } else {
        free(req->workflow);
        req->workflow = strdup(wf);
    }
    if (!gq_cfg_isset(cfg, "prompt")) {
        gq_errf(errstr, errstr_size, "--prompt is required (or --file for JSON lines)");
        return GQ_ERR_INVALID;
    }
    free(req->prompt);
    req->prompt = produce_strdup_opt(cfg, "prompt");
    free(req->negative_prompt);
    req->negative_prompt = produce_strdup_opt(cfg, "negative_prompt");
    free(req->model);
    req->model = produce_strdup_opt(cfg, "model");
    req->width = (int32_t)gq_cfg_int(cfg, "width");
    req->height = (int32_t)gq_cfg_int(cfg, "height");
    req->steps = (int32_t)gq_cfg_int(cfg, "steps");
    req->cfg = gq_cfg_double(cfg, "cfg_scale");
    free(req->sampler);
    req->sampler = produce_strdup_opt(cfg, "sampler");
    free(req->scheduler);
    req->scheduler = produce_strdup_opt(cfg, "scheduler");
    req->batch_size = (int32_t)gq_cfg_int(cfg, "batch_size");
    req->priority = (int32_t)gq_cfg_int(cfg, "priority");
    free(req->source);
    req->source = produce_strdup_opt(cfg, "source");
    if (gq_cfg_isset(cfg, "timeout"))
        req->timeout_s = (int32_t)gq_cfg_int(cfg, "timeout");
    /* Only an explicit max_attempts goes into the request; else the worker's default rules. */
    if (gq_cfg_source(cfg, "max_attempts") > GQ_SRC_DEFAULT)
        req->max_attempts = (int32_t)gq_cfg_int(cfg, "max_attempts");
    req->seed = produce_seed(produce_seed_flag(cfg), 0);
    return GQ_OK;
}

/* --write-messages: the message as Kafka would get it, framed as u32 big-endian key length,
 * key, u32 big-endian value length, value. The job id is printed as if delivered. */
static gq_status_t produce_write(produce_state_t *ps, const char *job_id, const void *data,
                                 size_t len, char *errstr, size_t errstr_size) {
    unsigned char hdr[5];
    const unsigned char *datum = data;
    size_t hlen = 0;
    if (ps->framing == GQ_FRAMING_CONFLUENT && len >= 10) {
        uint32_t id = (uint32_t)ps->schema_id;
        hdr[0] = 0;
        hdr[1] = (unsigned char)(id >> 24);
        hdr[2] = (unsigned char)(id >> 16);
        hdr[3] = (unsigned char)(id >> 8);
        hdr[4] = (unsigned char)id;
        hlen = 5;
        datum += 10;
        len -= 10;
    }
    size_t klen = strlen(job_id), vlen = hlen + len;
    unsigned char kl[4] = {(unsigned char)(klen >> 24), (unsigned char)(klen >> 16),
                           (unsigned char)(klen >> 8), (unsigned char)klen};
    unsigned char vl[4] = {(unsigned char)(vlen >> 24), (unsigned char)(vlen >> 16),
                           (unsigned char)(vlen >> 8), (unsigned char)vlen};
    if (fwrite(kl, 1, 4, ps->messages) != 4 || fwrite(job_id, 1, klen, ps->messages) != klen ||
        fwrite(vl, 1, 4, ps->messages) != 4 || fwrite(hdr, 1, hlen, ps->messages) != hlen ||
        fwrite(datum, 1, len, ps->messages) != len) {
        gq_errf(errstr, errstr_size, "cannot write to %s", ps->messages_path);
        return GQ_ERR;
    }
    produce_on_delivery(job_id, GQ_OK, NULL, ps);
    return GQ_OK;
}

/* Sends (or writes) one request, which stays the caller's. */
static gq_status_t produce_one(produce_state_t *ps, gq_request_t *req, char *errstr,
                               size_t errstr_size) {
    gq_status_t st;
    if (ps->messages) {
        gq_buf_t b;
        gq_buf_init(&b, 16u << 20);
        st = gq_request_validate(req, errstr, errstr_size);
        if (st == GQ_OK)
            st = gq_request_encode(req, &b, errstr, errstr_size);
        if (st == GQ_OK)
            st = produce_write(ps, req->job_id, b.data, b.len, errstr, errstr_size);
        gq_buf_release(&b);
    } else {
        st = gq_producer_send(ps->p, req, errstr, errstr_size);
    }
    if (st == GQ_OK && ps->track)
        gq_idset_add(&ps->jobs, req->job_id, JOB_SENT);
    return st;
}

/* The request of the flags, validated and encoded once (before anything is connected). */
static gq_request_prep_t *produce_prepare(const gq_cfg_t *cfg) {
    char err[1024];
    gq_request_t req;
    gq_request_prep_t *prep = NULL;
    if (produce_from_flags(cfg, &req, err, sizeof(err)) != GQ_OK)
        gq_err("%s", err);
    else if (!(prep = gq_request_prep_new(&req, err, sizeof(err))))
        gq_err("request: %s", err);
    gq_request_release(&req);
    return prep;
}

/* -n N: each message changes job_id, submitted_at and seed in the prepared request only. */
static void produce_count(produce_state_t *ps, gq_request_prep_t *prep, const gq_cfg_t *cfg,
                          int *bad) {
    char err[1024];
    int64_t count = gq_cfg_int(cfg, "count");
    bool fixed_id = gq_cfg_isset(cfg, "job_id");
    int64_t seed = produce_seed_flag(cfg);
    for (int64_t i = 0; i < count && !produce_stop; i++) {
        gq_status_t st = GQ_OK;
        if (!fixed_id)
            st = gq_request_prep_new_job_id(prep, err, sizeof(err));
        if (st == GQ_OK)
            st = gq_request_prep_set_int(prep, GQ_REQ_SUBMITTED_AT, gq_now_ms(), err, sizeof(err));
        if (st == GQ_OK && i > 0)
            st =
                gq_request_prep_set_int(prep, GQ_REQ_SEED, produce_seed(seed, i), err, sizeof(err));
        if (st == GQ_OK && ps->messages) {
            size_t len = 0;
            const void *data = gq_request_prep_data(prep, &len);
            st = produce_write(ps, gq_request_prep_job_id(prep), data, len, err, sizeof(err));
        } else if (st == GQ_OK) {
            st = gq_producer_send_prepared(ps->p, prep, err, sizeof(err));
        }
        if (st != GQ_OK) {
            gq_err("request %lld: %s", (long long)i + 1, err);
            *bad += (int)(count - i);
            break;
        }
        if (ps->track)
            gq_idset_add(&ps->jobs, gq_request_prep_job_id(prep), JOB_SENT);
    }
}

static int produce_lines(produce_state_t *ps, const char *path, int *bad) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        gq_err("cannot open %s", path);
        return GQ_EXIT_DATAERR;
    }
    char *line = malloc(PRODUCE_MAX_LINE + 2);
    long lineno = 0;
    while (!produce_stop && fgets(line, PRODUCE_MAX_LINE + 2, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > PRODUCE_MAX_LINE) {
            gq_err("%s:%ld: line longer than %u bytes", path, lineno, PRODUCE_MAX_LINE);
            (*bad)++;
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        gq_request_t req;
        char err[1024];
        if (gq_request_from_json(line, len, &req, err, sizeof(err)) != GQ_OK ||
            produce_one(ps, &req, err, sizeof(err)) != GQ_OK) {
            gq_err("%s:%ld: %s", path, lineno, err);
            (*bad)++;
        }
        gq_request_release(&req);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return GQ_EXIT_OK;
}

/* --write-messages: everything but the publishing; the messages go to path. */
static int produce_to_file(produce_state_t *ps, gq_request_prep_t *prep, const gq_cfg_t *cfg,
                           const char *path, int *bad) {
    int exit_code = GQ_EXIT_OK;
    ps->messages_path = path;
    ps->messages = fopen(path, "wb");
    if (!ps->messages) {
        gq_err("cannot create %s", path);
        return GQ_EXIT_FAILURE;
    }
    setvbuf(ps->messages, NULL, _IOFBF, 1u << 20);
    if (gq_cfg_isset(cfg, "file"))
        exit_code = produce_lines(ps, gq_cfg_str(cfg, "file"), bad);
    else
        produce_count(ps, prep, cfg, bad);
    if (fclose(ps->messages) != 0) {
        gq_err("cannot write to %s", path);
        exit_code = GQ_EXIT_FAILURE;
    }
    ps->messages = NULL;
    gq_info("%zu request(s) written to %s, %d rejected", ps->delivered, path, *bad);
    return exit_code == GQ_EXIT_OK && *bad ? GQ_EXIT_DATAERR : exit_code;
}

/* A progress bar for a person at a terminal; never in JSON mode, where stderr is for a
 * log shipper. */
static bool produce_progress_on(void) { return isatty(STDERR_FILENO) && !gq_log_get_json(); }

static void produce_progress(size_t done, size_t ok, size_t failed, size_t total, int64_t t0,
                             const char *detail) {
    if (!produce_progress_on())
        return;
    int width = 30, filled = total ? (int)(done * (size_t)width / total) : width;
    fprintf(stderr, /* lint: terminal */ "\r[%.*s%*s] %zu/%zu  ok %zu  failed %zu  %llds%s%s\033[K",
            filled, "==============================", width - filled, "", done, total, ok, failed,
            (long long)((gq_mono_ms() - t0) / 1000), detail[0] ? "  " : "", detail);
    fflush(stderr);
}

/* The progress events of our jobs that came meanwhile: the latest one in the bar's line on a
 * terminal, else a log line each. */
static void produce_job_progress(gq_reader_t *pr, produce_state_t *ps, gq_view_seen_t *seen,
                                 char *detail, size_t detail_size) {
    char err[512], line[256];
    for (int n = 0; pr && n < 1000; n++) {
        gq_progress_t ev;
        gq_status_t st = gq_reader_next_progress(pr, 0, &ev, err, sizeof(err));
        if (st == GQ_ERR_TIMEOUT || st == GQ_ERR_TRANSIENT || st == GQ_ERR_NOTFOUND)
            return;
        if (st != GQ_OK)
            continue;
        unsigned char *s = gq_idset_get(&ps->jobs, ev.job_id);
        if (s && *s != JOB_SUCCEEDED && *s != JOB_FAILED && gq_view_fresh(seen, &ev)) {
            gq_view_progress(&ev, 16, line, sizeof(line));
            if (produce_progress_on())
                snprintf(detail, detail_size, "%.8s %s", ev.job_id, line);
            else
                gq_log_job(GQ_LOG_INFO, ev.job_id, "progress: %s", line);
        }
        gq_progress_release(&ev);
    }
}

/* Follows completion events until every published job has a terminal one, and their progress
 * events meanwhile (pr may be NULL: none). */
static int produce_wait(gq_reader_t *r, gq_reader_t *pr, produce_state_t *ps, int64_t timeout_s) {
    size_t total = ps->jobs.cnt, ok = 0, failed = 0;
    int64_t t0 = gq_mono_ms(), deadline = t0 + timeout_s * 1000, last_draw = 0;
    char err[512], detail[320] = "";
    gq_view_seen_t seen = {0};
    while (!produce_stop && ok + failed < total && gq_mono_ms() < deadline) {
        produce_job_progress(pr, ps, &seen, detail, sizeof(detail));
        gq_completed_t ev;
        gq_status_t st = gq_reader_next(r, 200, &ev, err, sizeof(err));
        if (st == GQ_OK) {
            unsigned char *s = gq_idset_get(&ps->jobs, ev.job_id);
            if (s && *s != JOB_SUCCEEDED && *s != JOB_FAILED) {
                bool good = ev.status == GQ_JOB_SUCCEEDED;
                *s = good ? JOB_SUCCEEDED : JOB_FAILED;
                detail[0] = '\0';
                if (good) {
                    ok++;
                } else {
                    failed++;
                    gq_log_job(GQ_LOG_WARN, ev.job_id, "failed: %s: %s",
                               ev.error_code ? ev.error_code : "?",
                               ev.error_message ? ev.error_message : "");
                }
            }
            gq_completed_release(&ev);
        }
        if (gq_mono_ms() - last_draw > 200) {
            produce_progress(ok + failed, ok, failed, total, t0, detail);
            last_draw = gq_mono_ms();
        }
    }
    produce_progress(ok + failed, ok, failed, total, t0, "");
    if (produce_progress_on())
        fputc('\n', stderr); /* lint: terminal */
    gq_info("%zu of %zu jobs finished: %zu succeeded, %zu failed", ok + failed, total, ok, failed);
    if (ok + failed < total) {
        gq_err("stopped waiting with %zu job(s) unfinished", total - ok - failed);
        return GQ_EXIT_FAILURE;
    }
    return failed ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}

/* Writer schemas, the registry, and the framing (with Confluent's, the schema id, looked up
 * or registered once here). An exit code. */
static int produce_schemas(const gq_cfg_t *cfg, produce_state_t *ps) {
    char err[1024];
    ps->schema_id = -1;
    gq_status_t st = gq_schema_configure(cfg, false, err, sizeof(err));
    if (st == GQ_OK)
        st = gq_schema_cfg_framing(cfg, "framing", &ps->framing, err, sizeof(err));
    if (st == GQ_OK && ps->framing == GQ_FRAMING_CONFLUENT) {
        char subject[512];
        snprintf(subject, sizeof(subject), "%s-value", gq_cfg_str(cfg, "requests_topic"));
        st = gq_schema_registry_id(false, subject, &ps->schema_id, err, sizeof(err));
    }
    if (st == GQ_OK)
        return GQ_EXIT_OK;
    gq_err("%s", err);
    return st == GQ_ERR_TRANSIENT ? GQ_EXIT_UNAVAILABLE : GQ_EXIT_CONFIG;
}

int gq_cmd_produce(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup(
        &cfg, GQ_CMD_PRODUCE, "produce",
        "usage: genq produce [options]\n\n"
        "Publishes GenerationRequest messages (Avro single-object encoding, key = job_id),\n"
        "one from the flags (or --count of them), or one per JSON line with --file.\n"
        "Prints each job id on stdout once Kafka acknowledged it (acks=all, idempotent).\n"
        "Exit 0 when every message was delivered (and, with --wait, succeeded).\n",
        argc, argv, &argi);
    if (rc >= 0)
        return rc;
    if (argi != argc) {
        gq_err("unexpected argument \"%s\"; try genq produce --help", argv[argi]);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    bool from_file = gq_cfg_isset(&cfg, "file"), wait = gq_cfg_bool(&cfg, "wait");
    const char *messages_path = gq_cfg_str(&cfg, "write_messages");
    if (messages_path && wait) {
        gq_err("--write-messages publishes nothing to --wait for; try genq produce --help");
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    signal(SIGINT, produce_on_signal);
    signal(SIGTERM, produce_on_signal);
    /* Ids are data for the next program: whole blocks into a pipe or file, lines on a tty. */
    bool tty = isatty(STDOUT_FILENO);
    setvbuf(stdout, NULL, tty ? _IOLBF : _IOFBF, tty ? 0 : 1u << 16);

    /* The request of the flags is checked before anything is connected. */
    gq_request_prep_t *prep = NULL;
    if (!from_file && !(prep = produce_prepare(&cfg))) {
        gq_cfg_release(&cfg);
        return GQ_EXIT_DATAERR;
    }
    produce_state_t ps = {0};
    gq_idset_init(&ps.jobs);
    ps.track = wait;
    char err[1024];
    int schemas_rc = produce_schemas(&cfg, &ps);
    if (schemas_rc != GQ_EXIT_OK) {
        gq_request_prep_destroy(prep);
        gq_idset_release(&ps.jobs);
        gq_cfg_release(&cfg);
        return schemas_rc;
    }
    int partitions = (int)gq_cfg_int(&cfg, "partitions");
    int bad = 0;
    int exit_code = GQ_EXIT_OK;
    if (messages_path) {
        exit_code = produce_to_file(&ps, prep, &cfg, messages_path, &bad);
        gq_request_prep_destroy(prep);
        gq_idset_release(&ps.jobs);
        gq_cfg_release(&cfg);
        return exit_code;
    }
    gq_reader_t *waiter = NULL, *progress = NULL;
    if (wait) {
        /* Open the reader first: its "end" is fixed now, so no completion can be missed. */
        gq_reader_opts_t ro = {.topic = gq_cfg_str(&cfg, "completed_topic"),
                               .from = "end",
                               .partitions = partitions,
                               .follow = true,
                               .wait_ms = GQ_READER_WAIT_MS,
                               .stop = &produce_stop};
        waiter = gq_reader_new(&cfg, &ro, err, sizeof(err));
        if (!waiter) {
            gq_err("%s", err);
            gq_request_prep_destroy(prep);
            gq_cfg_release(&cfg);
            return GQ_EXIT_UNAVAILABLE;
        }
        /* Progress is shown when it can be (best effort, like the events themselves). */
        ro.topic = gq_cfg_str(&cfg, "progress_topic");
        progress = gq_reader_new(&cfg, &ro, err, sizeof(err));
        if (!progress)
            gq_warn("no progress shown: %s", err);
    }
    gq_producer_conf_t pc = {
        .brokers = gq_cfg_str(&cfg, "brokers"),
        .topic = gq_cfg_str(&cfg, "requests_topic"),
        .lanes = gq_cfg_str(&cfg, "lanes"),
        .start_traces = 1,
        .traceparent = gq_cfg_str(&cfg, "traceparent"),
        .kafka_props = (const char *const *)cfg.kafka,
        .kafka_props_cnt = cfg.kafka_cnt,
        .on_delivery = produce_on_delivery,
        .opaque = &ps,
        .create_partitions = partitions,
        .bulk = from_file || gq_cfg_int(&cfg, "count") > 1,
        .framing = ps.framing,
    };
    ps.p = gq_producer_new(&pc, err, sizeof(err));
    if (!ps.p) {
        gq_err("%s", err);
        gq_reader_destroy(waiter);
        gq_reader_destroy(progress);
        gq_request_prep_destroy(prep);
        gq_cfg_release(&cfg);
        return GQ_EXIT_CONFIG;
    }
    if (from_file)
        exit_code = produce_lines(&ps, gq_cfg_str(&cfg, "file"), &bad);
    else
        produce_count(&ps, prep, &cfg, &bad);
    gq_request_prep_destroy(prep);
    size_t failed = 0;
    gq_status_t st = gq_producer_flush(ps.p, 60000, &failed, err, sizeof(err));
    fflush(stdout);
    if (st != GQ_OK && st != GQ_ERR)
        gq_err("%s", err);
    gq_info("%zu request(s) delivered, %zu failed, %d rejected before sending", ps.delivered,
            failed, bad);
    if (exit_code == GQ_EXIT_OK && bad)
        exit_code = GQ_EXIT_DATAERR;
    if (st != GQ_OK || failed)
        exit_code = GQ_EXIT_FAILURE;
    if (waiter && exit_code == GQ_EXIT_OK && ps.jobs.cnt)
        exit_code = produce_wait(waiter, progress, &ps, gq_cfg_int(&cfg, "wait_timeout"));
    gq_producer_destroy(ps.p);
    gq_reader_destroy(waiter);
    gq_reader_destroy(progress);
    gq_idset_release(&ps.jobs);
    gq_cfg_release(&cfg);
    return exit_code;
}
