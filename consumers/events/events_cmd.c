/* genq events: completion events as JSON lines on stdout; --progress: progress events, as
 * JSON lines or (a person at a terminal) a live line per job. */
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "reader.h"
#include "schema_cfg.h"
#include "view.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t events_stop;
static void events_on_signal(int sig) {
    (void)sig;
    events_stop = 1;
}

/* Appends the traceparent header (it travels beside the datum) to a JSON object. */
static void events_add_traceparent(gq_buf_t *out, const char *tp) {
    if (tp[0] && out->len > 1 && out->data[out->len - 1] == '}') {
        out->len--;
        gq_buf_appendf(out, ",\"traceparent\":\"%s\"}", tp);
    }
}

/* --progress: every progress event as a JSON line, or, on a terminal with text logs and
 * without --json, a line per job redrawn in place while the same job goes on. */
static int events_progress(gq_reader_t *r, const gq_cfg_t *cfg) {
    const char *job = gq_cfg_str(cfg, "job");
    bool bars = !gq_cfg_bool(cfg, "json") && isatty(STDOUT_FILENO) && !gq_log_get_json();
    int64_t limit = gq_cfg_int(cfg, "limit"), printed = 0;
    char err[1024], line[512], last[37] = "";
    bool waiting = false;
    gq_view_seen_t seen = {0};
    gq_buf_t out;
    gq_buf_init(&out, 1u << 20);
    while (!events_stop && (limit == 0 || printed < limit)) {
        gq_progress_t ev;
        gq_status_t st = gq_reader_next_progress(r, 200, &ev, err, sizeof(err));
        if (st == GQ_ERR_TIMEOUT)
            continue;
        if (st == GQ_ERR_TRANSIENT) {
            if (!waiting)
                gq_warn("%s (waiting for the schema registry)", err);
            waiting = true;
            continue;
        }
        waiting = false;
        if (st == GQ_ERR_NOTFOUND)
            break;
        if (st != GQ_OK) {
            gq_warn("skipping an undecodable progress event: %s", err);
            continue;
        }
        if (!job || strcmp(job, ev.job_id) == 0) {
            if (bars) {
                /* Only news: an event older than the one shown for its job is dropped. */
                if (gq_view_fresh(&seen, &ev)) {
                    gq_view_progress(&ev, 24, line, sizeof(line));
                    bool same = strcmp(last, ev.job_id) == 0;
                    printf("%s%.8s %s\033[K", same ? "\r" : last[0] ? "\n" : "", ev.job_id, line);
                    fflush(stdout);
                    memcpy(last, ev.job_id, sizeof(last));
                    printed++;
                }
            } else {
                gq_buf_reset(&out);
                if (gq_progress_to_json(&ev, &out) == GQ_OK) {
                    events_add_traceparent(&out, gq_reader_traceparent(r));
                    fwrite(out.data, 1, out.len, stdout);
                    fputc('\n', stdout);
                    fflush(stdout);
                    printed++;
                }
            }
        }
        gq_progress_release(&ev);
    }
    if (bars && last[0])
        fputc('\n', stdout);
    gq_buf_release(&out);
    return GQ_EXIT_OK;
}

int gq_cmd_events(int argc, char **argv) {
    gq_cfg_t cfg;
    char err[1024];
    int argi = 0;
    int rc = gq_cli_setup(&cfg, GQ_CMD_EVENTS, "events",
                          "usage: genq events [options]\n\nPrints GenerationCompleted events as "
                          "JSON lines; without --follow it stops at the end of the topic.\n"
                          "--progress: GenerationProgress events instead (the progress topic):\n"
                          "JSON lines, or on a terminal (text logs, no --json) a live line per "
                          "job.\n"
                          "A topic that does not exist yet, or whose partitions have no leader "
                          "yet, is\nwaited for: 30 s, with --follow until it comes.\n",
                          argc, argv, &argi);
    if (rc >= 0)
        return rc;
    if (argi != argc) {
        gq_err("unexpected argument \"%s\"; try genq events --help", argv[argi]);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    if (gq_schema_configure(&cfg, false, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_CONFIG;
    }
    signal(SIGINT, events_on_signal);
    signal(SIGTERM, events_on_signal);
    bool follow = gq_cfg_bool(&cfg, "follow"), progress = gq_cfg_bool(&cfg, "progress");
    /* A topic not there yet (no worker has created it, a broker is electing its leaders) is
     * waited for: with --follow until it comes, else for a while. */
    gq_reader_opts_t ro = {.topic =
                               gq_cfg_str(&cfg, progress ? "progress_topic" : "completed_topic"),
                           .from = gq_cfg_str(&cfg, "from"),
                           .follow = follow,
                           .wait_ms = follow ? -1 : GQ_READER_WAIT_MS,
                           .stop = &events_stop};
    gq_reader_t *r = gq_reader_new(&cfg, &ro, err, sizeof(err));
    if (!r) {
        if (events_stop) { /* asked to stop while it waited for the topic: nothing went wrong */
            gq_info("%s", err);
            gq_cfg_release(&cfg);
            return GQ_EXIT_OK;
        }
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_UNAVAILABLE;
    }
    if (progress) {
        int prc = events_progress(r, &cfg);
        gq_reader_destroy(r);
        gq_cfg_release(&cfg);
        return prc;
    }
    const char *job = gq_cfg_str(&cfg, "job");
    int64_t limit = gq_cfg_int(&cfg, "limit"), printed = 0;
    int exit_code = GQ_EXIT_OK;
    bool waiting = false; /* the next event waits for its schema (said once) */
    gq_buf_t out;
    gq_buf_init(&out, 64u << 20);
    while (!events_stop && (limit == 0 || printed < limit)) {
        gq_completed_t ev;
        gq_status_t st = gq_reader_next(r, 200, &ev, err, sizeof(err));
        if (st == GQ_ERR_TIMEOUT)
            continue;
        if (st == GQ_ERR_TRANSIENT) {
            if (!waiting)
                gq_warn("%s (waiting for the schema registry)", err);
            waiting = true;
            continue;
        }
        waiting = false;
        if (st == GQ_ERR_NOTFOUND)
            break;
        if (st != GQ_OK) {
            gq_warn("skipping an undecodable event: %s", err);
            continue;
        }
        if (!job || strcmp(job, ev.job_id) == 0) {
            gq_buf_reset(&out);
            if (gq_completed_to_json(&ev, &out) == GQ_OK) {
                /* The trace context travels in the headers: shown beside the event's fields. */
                events_add_traceparent(&out, gq_reader_traceparent(r));
                fwrite(out.data, 1, out.len, stdout);
                fputc('\n', stdout);
                fflush(stdout);
                printed++;
            }
        }
        gq_completed_release(&ev);
    }
    gq_buf_release(&out);
    gq_reader_destroy(r);
    gq_cfg_release(&cfg);
    return exit_code;
}
