/**
 * @file migrate.h
 * @brief The schema migration runner behind `genq migrate`, and the start-up check that
 * the database is migrated.
 *
 * Migrations are the files migrations/NNNN_name.sql, embedded in the binary and applied in
 * name order. Each is applied in its own transaction together with its row in
 * genq.schema_migrations (version = file name without ".sql", checksum = SHA-256 of the
 * file's bytes). Every such transaction first takes pg_advisory_xact_lock(GQ_MIGRATE_LOCK_KEY)
 * and only then looks at what is applied, so any number of `genq migrate` running at once
 * (one per starting pod) apply each migration exactly once, and the others wait and then
 * find nothing to do.
 *
 * A migration file must not contain BEGIN/COMMIT, nor statements that cannot run in a
 * transaction block (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE before PG 12).
 */
#ifndef GQ_MIGRATE_H
#define GQ_MIGRATE_H

#include "gq.h"
#include "pg.h"

#include <stdbool.h>
#include <stdio.h>

/** The advisory lock of the runner: "genqmigr" in ASCII. */
#define GQ_MIGRATE_LOCK_KEY INT64_C(0x67656e716d696772)

typedef struct gq_migration {
    char *name;    /**< file name, e.g. "0001_init.sql" (owned) */
    char *version; /**< name without ".sql", e.g. "0001_init" (owned) */
    char *sql;     /**< the file's text (owned, NUL-terminated) */
    size_t len;
    char checksum[65]; /**< SHA-256 of the file, lowercase hex */
} gq_migration_t;

typedef struct gq_migration_set {
    gq_migration_t *items; /**< sorted by name */
    size_t cnt;
} gq_migration_set_t;

/** The migrations compiled into this binary (migrations/ *.sql). */
gq_status_t gq_migrate_set_embedded(gq_migration_set_t *set, char *errstr, size_t errstr_size);

/**
 * The *.sql files of a directory, for development (`genq migrate --dir`). Names must be
 * safe file names; each file at most 16 MiB. An empty directory is an empty set.
 */
gq_status_t gq_migrate_set_dir(gq_migration_set_t *set, const char *dir, char *errstr,
                               size_t errstr_size);

void gq_migrate_set_release(gq_migration_set_t *set);

typedef enum gq_migration_state {
    GQ_MIGRATION_PENDING = 0, /**< not applied yet */
    GQ_MIGRATION_APPLIED,     /**< applied with the same checksum */
    GQ_MIGRATION_CHANGED,     /**< applied, but the file differs from what was applied */
} gq_migration_state_t;

typedef struct gq_migration_status {
    gq_migration_state_t state;
    char applied_at[40];  /**< ISO 8601 UTC when applied, "" when pending */
    char db_checksum[65]; /**< checksum recorded in the database, "" when pending */
} gq_migration_status_t;

/**
 * Reads genq.schema_migrations (no lock; creates nothing) and fills status[i] for each
 * migration of set. A database without the table has everything pending. *unknown gets the
 * number of applied versions that set does not have (a newer genq migrated this database);
 * may be NULL.
 */
gq_status_t gq_migrate_inspect(gq_pg_t *pg, const gq_migration_set_t *set,
                               gq_migration_status_t *status, size_t *unknown, char *errstr,
                               size_t errstr_size);

/**
 * Applies every pending migration of set, in order, each in its own locked transaction.
 * *applied (may be NULL) gets how many this call applied. Returns GQ_ERR_INVALID, naming the
 * file ("migration 0001_init.sql was changed after it was applied"), when an applied
 * migration's checksum differs: nothing after it is applied. A failing migration: GQ_ERR
 * with the file name and PostgreSQL's message; transient connection trouble:
 * GQ_ERR_TRANSIENT. Migrations applied before a failure stay applied.
 */
gq_status_t gq_migrate_apply(gq_pg_t *pg, const gq_migration_set_t *set, size_t *applied,
                             char *errstr, size_t errstr_size);

/**
 * The worker's start-up check: every embedded migration is applied with the same checksum.
 * Otherwise GQ_ERR_NOTFOUND, "database not migrated (missing 0001_init): run `genq migrate`"
 * (a migration Job may still be running: worth waiting for), or GQ_ERR_INVALID, "migration
 * 0001_init.sql was changed after it was applied". Applied migrations this binary does not
 * know (a newer genq ran `genq migrate`) are accepted.
 */
gq_status_t gq_migrate_check(gq_pg_t *pg, char *errstr, size_t errstr_size);

/** "pending", "applied" or "changed". */
const char *gq_migration_state_name(gq_migration_state_t st);

#endif
