/* genq events: completion events as JSON lines on stdout. */
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "reader.h"
#include "schema_cfg.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t events_stop;
static void events_on_signal(int sig) {
    (void)sig;
    events_stop = 1;
}

int gq_cmd_events(int argc, char **argv) {
    gq_cfg_t cfg;
    char err[1024];
    int argi = 0;
    int rc = gq_cli_setup(&cfg, GQ_CMD_EVENTS, "events",
                          "usage: genq events [options]\n\nPrints GenerationCompleted events as "
                          "JSON lines; without --follow it stops at the end of the topic.\n"
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
    bool follow = gq_cfg_bool(&cfg, "follow");
    /* A topic not there yet (no worker has created it, a broker is electing its leaders) is
     * waited for: with --follow until it comes, else for a while. */
    gq_reader_opts_t ro = {.topic = gq_cfg_str(&cfg, "completed_topic"),
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
                const char *tp = gq_reader_traceparent(r);
                if (tp[0] && out.len > 1 && out.data[out.len - 1] == '}')
                    out.len--;
                if (tp[0] && out.len > 0)
                    gq_buf_appendf(&out, ",\"traceparent\":\"%s\"}", tp);
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
