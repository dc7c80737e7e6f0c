/* genq report: the thin main. */
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "pg.h"
#include "report.h"
#include "timeparse.h"
#include "s3.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes the page next to its final name, then renames it: a reader never sees half a page. */
static gq_status_t report_write(const char *path, const gq_buf_t *page, char *errstr,
                                size_t errstr_size) {
    char tmp[4200];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        gq_errf(errstr, errstr_size, "--out path too long");
        return GQ_ERR_INVALID;
    }
    FILE *f = fopen(tmp, "we");
    if (!f) {
        gq_errf(errstr, errstr_size, "cannot write %s: %s", tmp, strerror(errno));
        return GQ_ERR;
    }
    bool ok = fwrite(page->data, 1, page->len, f) == page->len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        gq_errf(errstr, errstr_size, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return GQ_ERR;
    }
    return GQ_OK;
}

int gq_cmd_report(int argc, char **argv) {
    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup(
        &cfg, GQ_CMD_REPORT, "report",
        "usage: genq report [--since T] [--until T] [--model M] [--tenant S] [--out FILE]\n\n"
        "Writes one self-contained HTML page about the jobs that finished in a time range:\n"
        "a contact sheet of their outputs (each linked to its job and prompt), render time\n"
        "and queue wait per model, throughput over time, failures by reason. It opens\n"
        "without a server. Prints the page's path.\n\n"
        "T: ISO-8601 (2025-06-01, 2025-06-01T12:00:00Z), unix ms, now, or -30s/-15m/-1h/-2d/-1w.\n",
        argc, argv, &argi);
    if (rc >= 0)
        return rc;
    rc = GQ_EXIT_OK;
    gq_s3_t *s3 = NULL;
    gq_pg_t *pg = NULL;
    gq_buf_t page;
    gq_buf_init(&page, 0);
    char err[512];
    if (argi != argc) {
        gq_err("unexpected argument \"%s\"; try genq report --help", argv[argi]);
        rc = GQ_EXIT_USAGE;
        goto out;
    }
    gq_report_opts_t o = {.now_ms = gq_now_ms(),
                          .model = gq_cfg_str(&cfg, "model"),
                          .tenant = gq_cfg_str(&cfg, "tenant"),
                          .thumbs_max = (int)gq_cfg_int(&cfg, "report_thumbs"),
                          .embed_max = gq_cfg_int(&cfg, "report_embed_max")};
    o.since_ms = o.now_ms - 86400000;
    o.until_ms = o.now_ms + 1;
    if ((gq_cfg_isset(&cfg, "since") &&
         gq_time_parse(gq_cfg_str(&cfg, "since"), o.now_ms, &o.since_ms) != GQ_OK) ||
        (gq_cfg_isset(&cfg, "until") &&
         gq_time_parse(gq_cfg_str(&cfg, "until"), o.now_ms, &o.until_ms) != GQ_OK)) {
        gq_err("--since/--until: ISO-8601, unix ms, now, or -30s, -15m, -1h, -2d, -1w");
        rc = GQ_EXIT_USAGE;
        goto out;
    }
    if (o.until_ms <= o.since_ms) {
        gq_err("--until must be after --since");
        rc = GQ_EXIT_USAGE;
        goto out;
    }
    const char *url = gq_cfg_str(&cfg, "output_url");
    if (url && strncmp(url, "s3://", 5) == 0) {
        /* Only to presign links to the outputs: no request is made. */
        gq_s3_opts_t so = {.url = url,
                           .endpoint = gq_cfg_str(&cfg, "s3_endpoint"),
                           .region = gq_cfg_str(&cfg, "s3_region"),
                           .path_style = gq_cfg_bool(&cfg, "s3_path_style"),
                           .access_key = gq_cfg_str(&cfg, "s3_access_key_id"),
                           .secret_key = gq_cfg_str(&cfg, "s3_secret_access_key"),
                           .session_token = gq_cfg_str(&cfg, "s3_session_token"),
                           .credentials_dir = gq_cfg_str(&cfg, "s3_credentials_dir"),
                           .presign_s = 1};
        s3 = gq_s3_new(&so, NULL, err, sizeof(err));
        if (!s3)
            gq_warn("S3 outputs will not be shown: %s", err);
        o.s3 = s3;
        o.presign_s = gq_cfg_int(&cfg, "s3_presign") > 0 ? gq_cfg_int(&cfg, "s3_presign") : 604800;
    }
    gq_status_t st;
    pg = gq_pg_connect(gq_cfg_str(&cfg, "database_url"), 10, &st, err, sizeof(err));
    if (!pg) {
        gq_err("%s", err);
        rc = GQ_EXIT_UNAVAILABLE;
        goto out;
    }
    /* Room for every embedded picture (base64 is 4/3 of it) and the rest of the page. */
    gq_buf_init(&page, (size_t)o.thumbs_max * (size_t)o.embed_max / 3 * 4 + (64u << 20));
    gq_report_stats_t stats;
    st = gq_report_build(pg, &o, &page, &stats, err, sizeof(err));
    if (st != GQ_OK) {
        gq_err("%s", err);
        rc = st == GQ_ERR_TRANSIENT ? GQ_EXIT_UNAVAILABLE : GQ_EXIT_FAILURE;
        goto out;
    }
    const char *path = gq_cfg_str(&cfg, "out");
    if (report_write(path, &page, err, sizeof(err)) != GQ_OK) {
        gq_err("%s", err);
        rc = GQ_EXIT_FAILURE;
        goto out;
    }
    gq_info("%lld job(s), %lld succeeded, %lld failed; %lld output(s): %lld embedded, %lld "
            "linked, %lld not shown",
            (long long)stats.jobs, (long long)stats.succeeded, (long long)stats.failed,
            (long long)stats.thumbs, (long long)stats.embedded, (long long)stats.linked,
            (long long)stats.unshown);
    char *abs = realpath(path, NULL);
    printf("%s\n", abs ? abs : path);
    free(abs);
out:
    gq_buf_release(&page);
    gq_pg_destroy(pg);
    gq_s3_destroy(s3);
    gq_cfg_release(&cfg);
    return rc;
}
