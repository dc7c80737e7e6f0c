/* genq migrate: applies the PostgreSQL migrations (or lists them with --status). */
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char migrate_synopsis[] =
    "usage: genq migrate [--status] [--dir DIR] [options]\n"
    "\n"
    "Applies the migrations compiled into genq, in order, each in its own transaction under an\n"
    "advisory lock: running it from many processes at once is safe. Exit codes: 0 up to date,\n"
    "1 a migration failed (or --status: some are pending), 69 database unreachable,\n"
    "78 an applied migration differs from this genq's copy (or a bad database URL).\n"
    "\n"
    "  --status                   list applied and pending migrations on stdout, change nothing\n"
    "  --dir DIR                  use DIR/*.sql instead of the compiled-in files (development)\n";

/* Exit code for a failed gq_migrate_* call. */
static int migrate_exit(gq_status_t st) {
    switch (st) {
    case GQ_OK: return GQ_EXIT_OK;
    case GQ_ERR_INVALID: return GQ_EXIT_CONFIG;
    case GQ_ERR_TRANSIENT:
    case GQ_ERR_TIMEOUT: return GQ_EXIT_UNAVAILABLE;
    default: return GQ_EXIT_FAILURE;
    }
}

static int migrate_status(gq_pg_t *pg, const gq_migration_set_t *set) {
    char err[1024];
    gq_migration_status_t *status = calloc(set->cnt ? set->cnt : 1, sizeof(*status));
    if (!status) {
        gq_err("out of memory");
        return GQ_EXIT_SOFTWARE;
    }
    size_t unknown = 0;
    gq_status_t st = gq_migrate_inspect(pg, set, status, &unknown, err, sizeof(err));
    if (st != GQ_OK) {
        gq_err("%s", err);
        free(status);
        return migrate_exit(st);
    }
    size_t pending = 0, changed = 0;
    printf("%-32s %-8s %-21s %s\n", "VERSION", "STATE", "APPLIED_AT", "CHECKSUM");
    for (size_t i = 0; i < set->cnt; i++) {
        const gq_migration_t *m = &set->items[i];
        printf("%-32s %-8s %-21s %.12s\n", m->version, gq_migration_state_name(status[i].state),
               status[i].applied_at[0] ? status[i].applied_at : "-", m->checksum);
        pending += status[i].state == GQ_MIGRATION_PENDING;
        changed += status[i].state == GQ_MIGRATION_CHANGED;
    }
    fflush(stdout);
    if (unknown)
        gq_warn("%zu applied migration(s) are unknown to this genq (a newer version migrated "
                "this database)",
                unknown);
    for (size_t i = 0; i < set->cnt; i++)
        if (status[i].state == GQ_MIGRATION_CHANGED)
            gq_err("migration %s was changed after it was applied", set->items[i].name);
    free(status);
    if (changed)
        return GQ_EXIT_CONFIG;
    return pending ? GQ_EXIT_FAILURE : GQ_EXIT_OK;
}

int gq_cmd_migrate(int argc, char **argv) {
    /* --status and --dir belong to this command alone, so they are taken out here rather
     * than added to the shared configuration table. */
    bool want_status = false;
    const char *dir = NULL;
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args) {
        gq_err("out of memory");
        return GQ_EXIT_SOFTWARE;
    }
    int nargs = 0;
    args[nargs++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                args[nargs++] = argv[i++];
            break;
        }
        if (strcmp(a, "--status") == 0) {
            want_status = true;
        } else if (strcmp(a, "--dir") == 0) {
            if (i + 1 >= argc) {
                gq_err("--dir needs a directory; try genq migrate --help");
                free(args);
                return GQ_EXIT_USAGE;
            }
            dir = argv[++i];
        } else if (strncmp(a, "--dir=", 6) == 0) {
            dir = a + 6;
        } else {
            args[nargs++] = argv[i];
        }
    }

    gq_cfg_t cfg;
    int argi = 0;
    int rc = gq_cli_setup(&cfg, GQ_CMD_MIGRATE, "migrate", migrate_synopsis, nargs, args, &argi);
    if (rc >= 0) {
        free(args);
        return rc;
    }
    if (argi != nargs) {
        gq_err("unexpected argument \"%s\"; try genq migrate --help", args[argi]);
        gq_cfg_release(&cfg);
        free(args);
        return GQ_EXIT_USAGE;
    }
    free(args);

    char err[1024];
    gq_migration_set_t set;
    gq_status_t st = dir ? gq_migrate_set_dir(&set, dir, err, sizeof(err))
                         : gq_migrate_set_embedded(&set, err, sizeof(err));
    if (st != GQ_OK) {
        gq_err("%s", err);
        gq_cfg_release(&cfg);
        return dir ? GQ_EXIT_USAGE : GQ_EXIT_SOFTWARE;
    }

    gq_pg_t *pg = gq_pg_connect(gq_cfg_str(&cfg, "database_url"), GQ_PG_CONNECT_TIMEOUT_S, &st, err,
                                sizeof(err));
    gq_cfg_release(&cfg);
    if (!pg) {
        gq_err("%s", err);
        gq_migrate_set_release(&set);
        return st == GQ_ERR_INVALID ? GQ_EXIT_CONFIG : GQ_EXIT_UNAVAILABLE;
    }

    int exit_code;
    if (want_status) {
        exit_code = migrate_status(pg, &set);
    } else {
        gq_debug("migrating %s: %zu migration(s)%s%s", gq_pg_url_redacted(pg), set.cnt,
                 dir ? " from " : "", dir ? dir : "");
        size_t applied = 0;
        st = gq_migrate_apply(pg, &set, &applied, err, sizeof(err));
        if (st != GQ_OK) {
            gq_err("%s", err);
            exit_code = migrate_exit(st);
        } else {
            gq_info("database is up to date: %zu migration(s), %zu applied now", set.cnt, applied);
            exit_code = GQ_EXIT_OK;
        }
    }
    gq_pg_destroy(pg);
    gq_migrate_set_release(&set);
    return exit_code;
}
