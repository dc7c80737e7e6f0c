/* genq worker: the thin main of the GPU worker. */
#include "cli.h"
#include "commands.h"
#include "guard.h"
#include "log.h"
#include "worker.h"

#include <signal.h>
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

int gq_cmd_worker(int argc, char **argv) {
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
    /* The policy on requests' workflows (guard.h), read once; admission asks it. */
    gq_guard_t guard;
    if (gq_guard_init(&guard, gq_cfg_str(&cfg, "inline_workflows"),
                      gq_cfg_str(&cfg, "inline_node_classes"), err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_CONFIG;
    }
    gq_guard_set_default(&guard);
    gq_info("inline workflows: %s%s", gq_guard_mode_name(guard.inline_mode),
            guard.inline_mode == GQ_INLINE_ALLOWLIST ? " (GENQ_INLINE_NODE_CLASSES)" : "");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    gq_status_t st = GQ_OK;
    gq_worker_t *w = gq_worker_new(&cfg, &worker_stop, &st, err, sizeof(err));
    if (!w) {
        gq_err("%s", err);
        gq_guard_set_default(NULL);
        gq_guard_release(&guard);
        gq_cfg_release(&cfg);
        return st == GQ_ERR_TRANSIENT ? GQ_EXIT_UNAVAILABLE : GQ_EXIT_CONFIG;
    }
    worker_wake_fd = gq_worker_signal_fd(w);
    gq_worker_end_t end = gq_worker_run(w, &worker_stop);
    worker_wake_fd = -1;
    gq_worker_destroy(w);
    gq_guard_set_default(NULL);
    gq_guard_release(&guard);
    gq_cfg_release(&cfg);
    switch (end) {
    case GQ_WORKER_DRAINED: return GQ_EXIT_OK;
    case GQ_WORKER_INTERRUPTED: return GQ_EXIT_INTERRUPTED;
    default: return GQ_EXIT_SOFTWARE;
    }
}
