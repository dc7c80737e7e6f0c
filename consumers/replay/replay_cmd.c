/* genq replay: the thin main. */
#include "schema_cfg.h"
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "replay.h"
#include "timeparse.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

gq_status_t gq_replay_time_range(const gq_cfg_t *cfg, int64_t *since, int64_t *until) {
    int64_t now = gq_now_ms();
    *since = 0;
    *until = INT64_MAX;
    static const char *const keys[] = {"since", "until"};
    for (int i = 0; i < 2; i++) {
        const char *v = gq_cfg_str(cfg, keys[i]);
        if (gq_cfg_isset(cfg, keys[i]) && gq_time_parse(v, now, i == 0 ? since : until) != GQ_OK) {
            gq_err("--%s \"%.64s\": expected " GQ_REPLAY_TIME_FORMS, keys[i], v ? v : "");
            return GQ_ERR_INVALID;
        }
    }
    if (*since > *until) {
        gq_err("--since is after --until: nothing can be in between");
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

int gq_cmd_replay(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    /* `genq replay MODE [options]`: the mode comes first, the options after it. */
    const char *mode = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (mode) {
        argc--;
        argv++;
    }
    int rc = gq_cli_setup(
        &cfg, GQ_CMD_REPLAY, "replay",
        "usage: genq replay dlq|jobs|offsets [options]\n\n"
        "  dlq      re-publish dead letters (original bytes) to their source topic\n"
        "           (--reason, --model, --since, --until, --limit; decode_error ones only\n"
        "           with --include-undecodable); reads each partition up to the end it\n"
        "           had at start, then stops (--idle-timeout: give up when Kafka is silent)\n"
        "  jobs     re-publish jobs selected in PostgreSQL (--status failed|succeeded,\n"
        "           --model, --error-code, --since, --until, --limit)\n"
        "  offsets  move the group's offsets (PostgreSQL and Kafka) to --to-offset or\n"
        "           --to-time; stop the workers first\n\n"
        "A replayed job keeps its job id and its attempt history; its row goes back to\n"
        "queued so a worker renders it again. Jobs that succeeded are left alone unless\n"
        "--force. --dry-run shows what would happen and changes nothing.\n"
        "Times: unix ms, ISO 8601 (2026-12-01T18:00:00Z; UTC without an offset), now, or\n"
        "relative (-30m, -2h, -1d). Exit 0: everything selected was replayed (Kafka\n"
        "acknowledged it); 1: something was not; 64 usage; 69 Kafka or PostgreSQL\n"
        "unreachable; 78 configuration (a producer librdkafka refuses).\n",
        argc, argv, &argi);
    if (rc >= 0)
        return rc;
    if (!mode || argi != argc) {
        gq_err("expected one of dlq, jobs, offsets, then options; try genq replay --help");
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    if (strcmp(mode, "dlq") != 0 && strcmp(mode, "jobs") != 0 && strcmp(mode, "offsets") != 0) {
        gq_err("unknown mode \"%s\"; try genq replay --help", mode);
        gq_cfg_release(&cfg);
        return GQ_EXIT_USAGE;
    }
    char err[1024];
    gq_status_t st;
    if (gq_schema_configure(&cfg, false, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_CONFIG;
    }
    gq_pg_t *pg = gq_pg_connect(gq_cfg_str(&cfg, "database_url"), 10, &st, err, sizeof(err));
    if (!pg) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return GQ_EXIT_UNAVAILABLE;
    }
    rc = strcmp(mode, "dlq") == 0    ? gq_replay_dlq(&cfg, pg)
         : strcmp(mode, "jobs") == 0 ? gq_replay_jobs(&cfg, pg)
                                     : gq_replay_offsets(&cfg, pg);
    gq_pg_destroy(pg);
    gq_cfg_release(&cfg);
    return rc;
}
