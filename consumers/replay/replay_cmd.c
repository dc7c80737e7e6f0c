/* genq replay: the thin main. */
#include "schema_cfg.h"
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "replay.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Reads exactly n digits at *p into *v. */
static bool replay_digits(const char **p, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil), so no time zone of the process is involved. */
static int64_t replay_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* ISO 8601: 2026-12-01, 2026-12-01T18:30, 2026-12-01T18:30:05.250Z, 2026-12-01 18:30:05+01:00.
 * A date and time without an offset are UTC. */
static gq_status_t replay_parse_iso(const char *s, int64_t *out) {
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!replay_digits(&p, 4, &y) || *p++ != '-' || !replay_digits(&p, 2, &mo) || *p++ != '-' ||
        !replay_digits(&p, 2, &d))
        return GQ_ERR_INVALID;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return GQ_ERR_INVALID;
    int64_t offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!replay_digits(&p, 2, &h) || *p++ != ':' || !replay_digits(&p, 2, &mi))
            return GQ_ERR_INVALID;
        if (*p == ':') {
            p++;
            if (!replay_digits(&p, 2, &sec))
                return GQ_ERR_INVALID;
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0;
                for (; *p >= '0' && *p <= '9'; p++, n++)
                    if (n < 3)
                        ms = ms * 10 + (*p - '0');
                if (n == 0)
                    return GQ_ERR_INVALID;
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return GQ_ERR_INVALID;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!replay_digits(&p, 2, &oh))
                return GQ_ERR_INVALID;
            if (*p == ':')
                p++;
            if (*p && !replay_digits(&p, 2, &om))
                return GQ_ERR_INVALID;
            if (oh > 23 || om > 59)
                return GQ_ERR_INVALID;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*p)
        return GQ_ERR_INVALID;
    int64_t secs = replay_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out = secs * 1000 + ms;
    return GQ_OK;
}

gq_status_t gq_replay_parse_time(const char *s, int64_t now_ms, int64_t *out) {
    if (!s || !*s)
        return GQ_ERR_INVALID;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return GQ_OK;
    }
    size_t n = strlen(s);
    if (s[0] != '-') {
        /* Unix ms is all digits; anything with a '-' or a 'T' after the first digits is a date. */
        if (strspn(s, "0123456789") == n)
            return gq_parse_i64(s, 0, INT64_MAX, out);
        return replay_parse_iso(s, out);
    }
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
    static const char *const keys[] = {"since", "until"};
    for (int i = 0; i < 2; i++) {
        const char *v = gq_cfg_str(cfg, keys[i]);
        if (gq_cfg_isset(cfg, keys[i]) &&
            gq_replay_parse_time(v, now, i == 0 ? since : until) != GQ_OK) {
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
