/* genq replay: the thin main. */
#include "schema_cfg.h"
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "replay.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

gq_status_t gq_replay_parse_time(const char *s, int64_t now_ms, int64_t *out) {
    if (!s || !*s)
        return GQ_ERR_INVALID;
    if (s[0] != '-')
        return gq_parse_i64(s, 0, INT64_MAX, out);
    size_t n = strlen(s);
    char num[32];
    if (n < 3 || n - 2 >= sizeof(num))
        return GQ_ERR_INVALID;
    memcpy(num, s + 1, n - 2);
    num[n - 2] = '\0';
    int64_t v;
    if (gq_parse_i64(num, 0, 100000000, &v) != GQ_OK)
        return GQ_ERR_INVALID;
    int64_t unit = s[n - 1] == 's'   ? 1000
                   : s[n - 1] == 'm' ? 60000
                   : s[n - 1] == 'h' ? 3600000
                   : s[n - 1] == 'd' ? 86400000
                                     : 0;
    if (!unit)
        return GQ_ERR_INVALID;
    *out = now_ms - v * unit;
    return GQ_OK;
}

gq_status_t gq_replay_time_range(const gq_cfg_t *cfg, int64_t *since, int64_t *until) {
    int64_t now = gq_now_ms();
    *since = 0;
    *until = INT64_MAX;
    if ((gq_cfg_isset(cfg, "since") &&
         gq_replay_parse_time(gq_cfg_str(cfg, "since"), now, since) != GQ_OK) ||
        (gq_cfg_isset(cfg, "until") &&
         gq_replay_parse_time(gq_cfg_str(cfg, "until"), now, until) != GQ_OK)) {
        gq_err("--since/--until: expected unix ms or -30m, -2h, -1d");
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
        "           (--reason, --since, --until; decode_error ones only with\n"
        "           --include-undecodable)\n"
        "  jobs     re-publish jobs selected in PostgreSQL (--status failed|succeeded,\n"
        "           --model, --error-code, --since, --until, --limit)\n"
        "  offsets  move the group's offsets (PostgreSQL and Kafka) to --to-offset or\n"
        "           --to-time; stop the workers first\n\n"
        "A replayed job keeps its job id and its attempt history; its row goes back to\n"
        "queued so a worker renders it again. Jobs that succeeded are left alone unless\n"
        "--force. --dry-run shows what would happen and changes nothing.\n",
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
