/* genq worker: the thin main of the GPU worker. */
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "schema_cfg.h"
#include "util.h"
#include "worker.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t worker_stop;
static int worker_wake_fd = -1;

static void worker_on_signal(int sig) {
    (void)sig;
    worker_stop = 1;
    if (worker_wake_fd >= 0) {
        /* write() is async-signal-safe; a full pipe already holds a wake-up. */
        ssize_t n = write(worker_wake_fd, "s", 1);
        (void)n;
    }
}

/* Writer schemas and the registry; with Confluent-framed events, the events' schema id (the
 * registry is asked until start_wait runs out; the record module finds the id cached). */
static gq_status_t worker_schemas(const gq_cfg_t *cfg, char *errstr, size_t errstr_size) {
    gq_status_t st = gq_schema_configure(cfg, true, errstr, errstr_size);
    gq_framing_t framing;
    if (st == GQ_OK)
        st = gq_schema_cfg_framing(cfg, "completed_framing", &framing, errstr, errstr_size);
    if (st != GQ_OK || framing == GQ_FRAMING_SINGLE_OBJECT)
        return st;
    char subject[512];
    snprintf(subject, sizeof(subject), "%s-value", gq_cfg_str(cfg, "completed_topic"));
    int64_t until = gq_mono_ms() + gq_cfg_int(cfg, "start_wait") * 1000;
    int32_t id;
    while ((st = gq_schema_registry_id(true, subject, &id, errstr, errstr_size)) ==
               GQ_ERR_TRANSIENT &&
           gq_mono_ms() < until && !worker_stop) {
        gq_warn("%s (retrying)", errstr);
        gq_sleep_ms(1000);
    }
    if (st == GQ_OK)
        gq_info("completion events in Confluent framing: schema id %d (subject %s)", (int)id,
                subject);
    return st;
}

/* librdkafka's fetch responses (up to max.partition.fetch.bytes, about 1.7 MB at the default
 * max_message_bytes) are allocated and freed on its broker threads. Freeing the first one
 * raises glibc's dynamic mmap threshold to its size; every later one is then carved from
 * that thread's heap, whose top stays mapped: RSS rose by steps of a few hundred KiB to
 * 1.5 MB at moments that differed from run to run (make bench, memory). A fixed threshold
 * keeps them mapped apart and unmapped when freed: 3 to 5 MB less RSS, and no ratchet, at
 * no CPU cost measured (zero-time jobs, alternated runs). MALLOC_MMAP_THRESHOLD_ wins. */
static void worker_malloc_tune(void) {
#ifdef __GLIBC__
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

int gq_cmd_worker(int argc, char **argv) {
    worker_malloc_tune();
    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup(
        &cfg, GQ_CMD_WORKER, "worker",
        "usage: genq worker [options]\n\n"
        "Joins the consumer group and renders requests through ComfyUI, recording each job\n"
        "in PostgreSQL and publishing a completion event.\n"
        "Exit codes: 0 drained after SIGTERM/SIGINT, 3 stopped with renders interrupted\n"
        "(left for redelivery), 69 a service unreachable at start, 78 configuration\n"
        "(e.g. database not migrated), 70 fatal runtime error.\n",
        argc, argv, &argi);
    if (rc >= 0)
        return rc;
    if (argi != argc) {
        gq_err("unexpected argument \"%s\"; try genq worker --help", argv[argi]);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    char err[1024];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    gq_status_t st = worker_schemas(&cfg, err, sizeof(err));
    if (st != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return st == GQ_ERR_TRANSIENT ? GQ_EXIT_UNAVAILABLE : GQ_EXIT_CONFIG;
    }
    gq_worker_t *w = gq_worker_new(&cfg, &worker_stop, &st, err, sizeof(err));
    if (!w) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return st == GQ_ERR_TRANSIENT ? GQ_EXIT_UNAVAILABLE : GQ_EXIT_CONFIG;
    }
    worker_wake_fd = gq_worker_signal_fd(w);
    gq_worker_end_t end = gq_worker_run(w, &worker_stop);
    worker_wake_fd = -1;
    gq_worker_destroy(w);
    gq_cfg_release(&cfg);
    switch (end) {
    case GQ_WORKER_DRAINED: return GQ_EXIT_OK;
    case GQ_WORKER_INTERRUPTED: return GQ_EXIT_INTERRUPTED;
    default: return GQ_EXIT_SOFTWARE;
    }
}
