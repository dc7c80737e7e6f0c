/* genq cancel: CancelRequests for jobs, and (optionally) how the jobs ended. */
#include "cli.h"
#include "commands.h"
#include "genq_producer.h"
#include "idset.h"
#include "log.h"
#include "pg.h"
#include "reader.h"
#include "schema_cfg.h"
#include "util.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANCEL_MAX_JOBS 10000

/* What is known of each job: 0 absent; then the states below. */
enum { C_ASKED = 1, C_DELIVERED, C_NOT_DELIVERED, C_ENDED_BEFORE, C_CANCELLED, C_OTHER_END };

typedef struct cancel_state {
    gq_idset_t jobs;
    size_t delivered, failed;
} cancel_state_t;

static volatile sig_atomic_t cancel_stop;
static void cancel_on_signal(int sig) {
    (void)sig;
    cancel_stop = 1;
}

static void cancel_on_delivery(const char *job_id, gq_status_t st, const char *err, void *opaque) {
    cancel_state_t *cs = opaque;
    unsigned char *s = gq_idset_get(&cs->jobs, job_id);
    if (st == GQ_OK) {
        cs->delivered++;
        printf("%s cancel requested\n", job_id);
        if (s && *s == C_ASKED)
            *s = C_DELIVERED;
    } else {
        cs->failed++;
        gq_log_job(GQ_LOG_ERROR, job_id, "the cancel was not delivered: %s", err ? err : "?");
        if (s)
            *s = C_NOT_DELIVERED;
    }
}

/* A job id as given (any case) in canonical lowercase; false if it is not a uuid. */
static bool cancel_job_id(const char *arg, char out[37]) {
    if (strlen(arg) != 36)
        return false;
    for (int i = 0; i < 36; i++)
        out[i] = (char)tolower((unsigned char)arg[i]);
    out[36] = '\0';
    return gq_uuid_valid(out);
}

/* With a database: jobs that already ended are said so (and not cancelled again). Returns
 * false when the database cannot be asked (then every cancel is published). */
static bool cancel_lookup(const gq_cfg_t *cfg, cancel_state_t *cs, char ids[][37], size_t n) {
    char err[1024];
    gq_status_t st;
    gq_pg_t *pg = gq_pg_connect(gq_cfg_str(cfg, "database_url"), 5, &st, err, sizeof(err));
    if (!pg) {
        gq_warn("%s; publishing the cancels without looking", err);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        gq_pg_params_t p;
        gq_pg_params_init(&p);
        gq_pg_param_str(&p, ids[i]);
        PGresult *res = NULL;
        st = gq_pg_exec(pg,
                        "SELECT status, to_char(finished_at AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), coalesce(error_code, ''), "
                        "coalesce(worker_id, '') FROM genq.jobs WHERE job_id = $1::uuid",
                        &p, &res, err, sizeof(err));
        if (st != GQ_OK) {
            gq_warn("%s; publishing the cancels without looking", err);
            PQclear(res);
            gq_pg_destroy(pg);
            return false;
        }
        if (PQntuples(res) == 1) {
            const char *status = gq_pg_get(res, 0, 0), *at = gq_pg_get(res, 0, 1);
            const char *code = gq_pg_get(res, 0, 2), *worker = gq_pg_get(res, 0, 3);
            if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
                strcmp(status, "cancelled") == 0) {
                printf("%s already %s at %s%s%s: not cancelled\n", ids[i], status, at,
                       code[0] ? ", " : "", code);
                *gq_idset_get(&cs->jobs, ids[i]) = C_ENDED_BEFORE;
            } else {
                gq_log_job(GQ_LOG_INFO, ids[i], "%s%s%s", status, worker[0] ? " on " : "", worker);
            }
        } else {
            gq_log_job(GQ_LOG_INFO, ids[i], "not recorded yet (not consumed, or waiting)");
        }
        PQclear(res);
    }
    gq_pg_destroy(pg);
    return true;
}

/* --wait: the completion events of the jobs whose cancel went out, until each has one. */
static int cancel_wait(gq_reader_t *r, cancel_state_t *cs, size_t waiting, int64_t timeout_s) {
    int64_t deadline = gq_mono_ms() + timeout_s * 1000;
    size_t cancelled = 0, other = 0;
    char err[512];
    while (!cancel_stop && cancelled + other < waiting && gq_mono_ms() < deadline) {
        gq_completed_t ev;
        gq_status_t st = gq_reader_next(r, 200, &ev, err, sizeof(err));
        if (st != GQ_OK)
            continue;
        unsigned char *s = gq_idset_get(&cs->jobs, ev.job_id);
        if (s && *s == C_DELIVERED) {
            bool was = ev.status == GQ_JOB_FAILED && ev.error_code &&
                       strcmp(ev.error_code, "cancelled") == 0;
            *s = was ? C_CANCELLED : C_OTHER_END;
            if (was) {
                cancelled++;
                printf("%s cancelled (attempt %d, %lld ms rendered)\n", ev.job_id, (int)ev.attempt,
                       (long long)ev.render_ms);
            } else {
                other++;
                printf("%s %s before the cancel took effect%s%s\n", ev.job_id,
                       ev.status == GQ_JOB_SUCCEEDED ? "succeeded" : "failed",
                       ev.error_code ? ": " : "", ev.error_code ? ev.error_code : "");
            }
            fflush(stdout);
        }
        gq_completed_release(&ev);
    }
    if (cancelled + other < waiting) {
        gq_err("stopped waiting with %zu job(s) not ended", waiting - cancelled - other);
        return GQ_EXIT_FAILURE;
    }
    return other ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}

static int cancel_run(const gq_cfg_t *cfg, char ids[][37], size_t n, cancel_state_t *cs) {
    char err[1024];
    gq_framing_t framing = GQ_FRAMING_SINGLE_OBJECT;
    if (gq_schema_configure(cfg, false, err, sizeof(err)) != GQ_OK ||
        gq_schema_cfg_framing(cfg, "framing", &framing, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        return GQ_EXIT_CONFIG;
    }
    if (gq_cfg_source(cfg, "database_url") > GQ_SRC_DEFAULT)
        cancel_lookup(cfg, cs, ids, n);
    size_t todo = 0;
    for (size_t i = 0; i < n; i++)
        todo += *gq_idset_get(&cs->jobs, ids[i]) == C_ASKED;
    bool wait = gq_cfg_bool(cfg, "wait");
    gq_reader_t *waiter = NULL;
    if (wait && todo) {
        /* Opened first: its end is fixed now, so no completion can be missed. */
        gq_reader_opts_t ro = {.topic = gq_cfg_str(cfg, "completed_topic"),
                               .from = "end",
                               .follow = true,
                               .wait_ms = GQ_READER_WAIT_MS,
                               .stop = &cancel_stop};
        waiter = gq_reader_new(cfg, &ro, err, sizeof(err));
        if (!waiter) {
            gq_err("%s", err);
            return GQ_EXIT_UNAVAILABLE;
        }
    }
    gq_producer_conf_t pc = {
        .brokers = gq_cfg_str(cfg, "brokers"),
        .kafka_props = (const char *const *)cfg->kafka,
        .kafka_props_cnt = cfg->kafka_cnt,
        .on_delivery = cancel_on_delivery,
        .opaque = cs,
        .framing = framing,
        .cancel_topic = gq_cfg_str(cfg, "cancel_topic"),
    };
    int exit_code = GQ_EXIT_OK;
    gq_producer_t *p = todo ? gq_producer_new(&pc, err, sizeof(err)) : NULL;
    if (todo && !p) {
        gq_err("%s", err);
        gq_reader_destroy(waiter);
        return GQ_EXIT_CONFIG;
    }
    gq_cancel_t c;
    gq_cancel_init(&c);
    c.reason = (char *)gq_cfg_str(cfg, "reason");
    c.requested_by = (char *)gq_cfg_str(cfg, "requested_by");
    c.source = (char *)gq_cfg_str(cfg, "if_source");
    for (size_t i = 0; p && i < n && !cancel_stop; i++) {
        if (*gq_idset_get(&cs->jobs, ids[i]) != C_ASKED)
            continue;
        memcpy(c.job_id, ids[i], sizeof(c.job_id));
        c.requested_at = gq_now_ms();
        if (gq_producer_cancel(p, &c, err, sizeof(err)) != GQ_OK) {
            gq_log_job(GQ_LOG_ERROR, ids[i], "%s", err);
            exit_code = GQ_EXIT_DATAERR;
            *gq_idset_get(&cs->jobs, ids[i]) = C_NOT_DELIVERED;
        }
    }
    if (p) {
        size_t failed = 0;
        gq_status_t st = gq_producer_flush(p, 30000, &failed, err, sizeof(err));
        fflush(stdout);
        if (st != GQ_OK && st != GQ_ERR)
            gq_err("%s", err);
        if (st != GQ_OK || failed)
            exit_code = GQ_EXIT_FAILURE;
    }
    if (waiter && exit_code == GQ_EXIT_OK && cs->delivered)
        exit_code = cancel_wait(waiter, cs, cs->delivered, gq_cfg_int(cfg, "wait_timeout"));
    else if (wait && exit_code == GQ_EXIT_OK && todo < n)
        exit_code = GQ_EXIT_FAILURE; /* a job had ended before: it was not cancelled */
    gq_producer_destroy(p);
    gq_reader_destroy(waiter);
    return exit_code;
}

int gq_cmd_cancel(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup(
        &cfg, GQ_CMD_CANCEL, "cancel",
        "usage: genq cancel [options] JOB_ID...\n\n"
        "Publishes a CancelRequest for each job to the cancel topic (compacted, read whole by\n"
        "every worker, created when missing). A job not started is never rendered; a queued\n"
        "or running one is taken back from ComfyUI; it ends with status cancelled and a\n"
        "completion event FAILED with error.code \"cancelled\". A job that ended already is not\n"
        "changed, nor one whose source differs from --if-source.\n"
        "With GENQ_DATABASE_URL set, first says of each job how it stands, and publishes\n"
        "nothing for a job that ended. With --wait, follows the completion events until each\n"
        "job ended and says how.\n\n"
        "stdout, a line per job: \"<job_id> cancel requested\" once Kafka has it; \"<job_id>\n"
        "already <status> at <time>[, <error_code>]: not cancelled\"; with --wait\n"
        "\"<job_id> cancelled (...)\" or \"<job_id> succeeded|failed before the cancel took\n"
        "effect\". Exit 0: every cancel published (with --wait: every job ended cancelled);\n"
        "1: a cancel not delivered, or with --wait a job that ended otherwise or not in time.\n",
        argc, argv, &argi);
    if (rc >= 0)
        return rc;
    size_t n = (size_t)(argc - argi);
    if (n == 0 || n > CANCEL_MAX_JOBS) {
        gq_err(n ? "at most %d job ids at once" : "no job id given; try genq cancel --help",
               CANCEL_MAX_JOBS);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    char(*ids)[37] = calloc(n, sizeof(*ids));
    cancel_state_t cs = {0};
    gq_idset_init(&cs.jobs);
    int exit_code = ids ? GQ_EXIT_OK : GQ_EXIT_SOFTWARE;
    size_t k = 0;
    for (int i = argi; ids && i < argc; i++) {
        if (argv[i][0] == '-') {
            gq_err("option %s after the job ids: options go first; try genq cancel --help",
                   argv[i]);
            exit_code = GQ_EXIT_USAGE;
            break;
        }
        if (!cancel_job_id(argv[i], ids[k])) {
            gq_err("\"%.40s\" is not a job id (a uuid)", argv[i]);
            exit_code = GQ_EXIT_DATAERR;
            break;
        }
        if (!gq_idset_get(&cs.jobs, ids[k])) {
            if (gq_idset_add(&cs.jobs, ids[k], C_ASKED) != GQ_OK) {
                exit_code = GQ_EXIT_SOFTWARE;
                break;
            }
            k++;
        }
    }
    const char *reason = gq_cfg_str(&cfg, "reason"), *by = gq_cfg_str(&cfg, "requested_by");
    if (exit_code == GQ_EXIT_OK && ((reason && strlen(reason) > GQ_CANCEL_REASON_MAX) ||
                                    (by && strlen(by) > GQ_CANCEL_BY_MAX))) {
        gq_err("--reason: at most %d bytes; --requested-by: at most %d", GQ_CANCEL_REASON_MAX,
               GQ_CANCEL_BY_MAX);
        exit_code = GQ_EXIT_USAGE;
    }
    if (exit_code == GQ_EXIT_OK) {
        signal(SIGINT, cancel_on_signal);
        signal(SIGTERM, cancel_on_signal);
        setvbuf(stdout, NULL, _IOLBF, 0);
        exit_code = cancel_run(&cfg, ids, k, &cs);
    }
    gq_idset_release(&cs.jobs);
    free(ids);
    gq_cfg_release(&cfg);
    return exit_code;
}
