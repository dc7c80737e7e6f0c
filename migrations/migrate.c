#include "migrate.h"
#include "buf.h"
#include "embedded.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIGRATE_MAX_FILE (16u << 20)
#define MIGRATE_MAX_FILES 10000

/* The runner's own bookkeeping, created before the first migration rather than by one, so
 * that migration 0001 is recorded like any other. */
static const char migrate_bootstrap_sql[] =
    "CREATE SCHEMA IF NOT EXISTS genq;\n"
    "CREATE TABLE IF NOT EXISTS genq.schema_migrations (\n"
    "    version    text        PRIMARY KEY,\n"
    "    checksum   text        NOT NULL,\n"
    "    applied_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "COMMENT ON TABLE genq.schema_migrations IS\n"
    "    'Migrations applied by `genq migrate`, one row each; written by the runner in the\n"
    "same transaction as the migration itself.';\n"
    "COMMENT ON COLUMN genq.schema_migrations.version IS\n"
    "    'Migration file name without .sql, e.g. 0001_init.';\n"
    "COMMENT ON COLUMN genq.schema_migrations.checksum IS\n"
    "    'SHA-256 (hex) of the file as applied; genq refuses to run against a database whose\n"
    "migration differs from its own copy.';\n"
    "COMMENT ON COLUMN genq.schema_migrations.applied_at IS 'When the migration was applied.';\n";

const char *gq_migration_state_name(gq_migration_state_t st) {
    switch (st) {
    case GQ_MIGRATION_PENDING: return "pending";
    case GQ_MIGRATION_APPLIED: return "applied";
    case GQ_MIGRATION_CHANGED: return "changed";
    }
    return "unknown";
}

void gq_migrate_set_release(gq_migration_set_t *set) {
    for (size_t i = 0; set->items && i < set->cnt; i++) {
        free(set->items[i].name);
        free(set->items[i].version);
        free(set->items[i].sql);
    }
    free(set->items);
    set->items = NULL;
    set->cnt = 0;
}

/* Appends a migration, copying name and taking ownership of sql. */
static gq_status_t migrate_set_add(gq_migration_set_t *set, size_t cap, const char *name, char *sql,
                                   size_t len, char *errstr, size_t errstr_size) {
    size_t nlen = strlen(name);
    if (nlen <= 4 || strcmp(name + nlen - 4, ".sql") != 0 || !gq_name_safe(name, 200)) {
        gq_errf(errstr, errstr_size, "migration file name \"%s\" is not NNNN_name.sql", name);
        free(sql);
        return GQ_ERR_INVALID;
    }
    if (set->cnt >= cap) {
        free(sql);
        gq_errf(errstr, errstr_size, "too many migration files");
        return GQ_ERR_TOOBIG;
    }
    gq_migration_t *m = &set->items[set->cnt];
    m->name = strdup(name);
    m->version = strndup(name, nlen - 4);
    m->sql = sql;
    m->len = len;
    if (!m->name || !m->version) {
        free(m->name);
        free(m->version);
        free(sql);
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    gq_sha256_hex(sql, len, m->checksum);
    set->cnt++;
    return GQ_OK;
}

static int migrate_cmp(const void *a, const void *b) {
    return strcmp(((const gq_migration_t *)a)->name, ((const gq_migration_t *)b)->name);
}

gq_status_t gq_migrate_set_embedded(gq_migration_set_t *set, char *errstr, size_t errstr_size) {
    static const char prefix[] = "migrations/";
    set->items = NULL;
    set->cnt = 0;
    size_t n = 0;
    for (size_t i = 0; i < gq_embedded_count; i++)
        if (strncmp(gq_embedded_files[i].name, prefix, sizeof(prefix) - 1) == 0)
            n++;
    if (n == 0)
        return GQ_OK;
    set->items = calloc(n, sizeof(*set->items));
    if (!set->items) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < gq_embedded_count; i++) {
        const gq_embedded_t *e = &gq_embedded_files[i];
        if (strncmp(e->name, prefix, sizeof(prefix) - 1) != 0)
            continue;
        char *sql = strndup(e->data, e->len);
        if (!sql) {
            gq_migrate_set_release(set);
            gq_errf(errstr, errstr_size, "out of memory");
            return GQ_ERR_NOMEM;
        }
        gq_status_t st =
            migrate_set_add(set, n, e->name + sizeof(prefix) - 1, sql, e->len, errstr, errstr_size);
        if (st != GQ_OK) {
            gq_migrate_set_release(set);
            return st;
        }
    }
    /* The Makefile sorts them already; sorting again keeps the order a property of this
     * module rather than of the build. */
    qsort(set->items, set->cnt, sizeof(*set->items), migrate_cmp);
    return GQ_OK;
}

static gq_status_t migrate_read_file(const char *path, char **out, size_t *len, char *errstr,
                                     size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return GQ_ERR_INVALID;
    }
    gq_buf_t b;
    gq_buf_init(&b, MIGRATE_MAX_FILE);
    char chunk[8192];
    size_t n;
    gq_status_t st = GQ_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        st = gq_buf_append(&b, chunk, n);
        if (st != GQ_OK)
            break;
    }
    if (st == GQ_OK && ferror(f))
        st = GQ_ERR_INVALID;
    fclose(f);
    if (st == GQ_OK && !b.data)
        st = gq_buf_append(&b, "", 0);
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "%s: %s", path,
                st == GQ_ERR_TOOBIG ? "larger than 16 MiB" : "read error");
        gq_buf_release(&b);
        return st;
    }
    *out = gq_buf_detach(&b, len);
    return GQ_OK;
}

gq_status_t gq_migrate_set_dir(gq_migration_set_t *set, const char *dir, char *errstr,
                               size_t errstr_size) {
    set->items = NULL;
    set->cnt = 0;
    DIR *d = opendir(dir);
    if (!d) {
        gq_errf(errstr, errstr_size, "migrations directory %s: %s", dir, strerror(errno));
        return GQ_ERR_INVALID;
    }
    size_t cap = 0;
    gq_status_t st = GQ_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nlen = strlen(de->d_name);
        if (de->d_name[0] == '.' || nlen <= 4 || strcmp(de->d_name + nlen - 4, ".sql") != 0)
            continue;
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path)) {
            gq_errf(errstr, errstr_size, "%s/%s: path too long", dir, de->d_name);
            st = GQ_ERR_INVALID;
            break;
        }
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (set->cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            gq_migration_t *p =
                ncap <= MIGRATE_MAX_FILES ? realloc(set->items, ncap * sizeof(*p)) : NULL;
            if (!p) {
                gq_errf(errstr, errstr_size, "%s: too many migration files", dir);
                st = GQ_ERR_TOOBIG;
                break;
            }
            set->items = p;
            cap = ncap;
        }
        char *sql = NULL;
        size_t len = 0;
        st = migrate_read_file(path, &sql, &len, errstr, errstr_size);
        if (st == GQ_OK)
            st = migrate_set_add(set, cap, de->d_name, sql, len, errstr, errstr_size);
        if (st != GQ_OK)
            break;
    }
    closedir(d);
    if (st != GQ_OK) {
        gq_migrate_set_release(set);
        return st;
    }
    if (set->cnt)
        qsort(set->items, set->cnt, sizeof(*set->items), migrate_cmp);
    return GQ_OK;
}

/* True when genq.schema_migrations exists (no lock, creates nothing). */
static gq_status_t migrate_table_exists(gq_pg_t *pg, bool *exists, char *errstr,
                                        size_t errstr_size) {
    PGresult *res = NULL;
    gq_status_t st = gq_pg_exec(pg, "SELECT to_regclass('genq.schema_migrations') IS NOT NULL",
                                NULL, &res, errstr, errstr_size);
    if (st == GQ_OK)
        *exists = strcmp(gq_pg_get(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

gq_status_t gq_migrate_inspect(gq_pg_t *pg, const gq_migration_set_t *set,
                               gq_migration_status_t *status, size_t *unknown, char *errstr,
                               size_t errstr_size) {
    for (size_t i = 0; i < set->cnt; i++)
        memset(&status[i], 0, sizeof(status[i]));
    if (unknown)
        *unknown = 0;
    bool exists = false;
    gq_status_t st = migrate_table_exists(pg, &exists, errstr, errstr_size);
    if (st != GQ_OK || !exists)
        return st;
    PGresult *res = NULL;
    st = gq_pg_exec(pg,
                    "SELECT version, checksum, to_char(applied_at AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM genq.schema_migrations "
                    "ORDER BY version",
                    NULL, &res, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        const char *version = gq_pg_get(res, r, 0);
        size_t i = 0;
        while (i < set->cnt && strcmp(set->items[i].version, version) != 0)
            i++;
        if (i == set->cnt) {
            if (unknown)
                (*unknown)++;
            continue;
        }
        gq_strlcpy(status[i].db_checksum, gq_pg_get(res, r, 1), sizeof(status[i].db_checksum));
        gq_strlcpy(status[i].applied_at, gq_pg_get(res, r, 2), sizeof(status[i].applied_at));
        status[i].state = strcmp(status[i].db_checksum, set->items[i].checksum) == 0
                              ? GQ_MIGRATION_APPLIED
                              : GQ_MIGRATION_CHANGED;
    }
    PQclear(res);
    return GQ_OK;
}

/*
 * One migration in one transaction: lock, bootstrap the bookkeeping table if this is the
 * very first run, then decide from what is committed *now* (another runner may have applied
 * it while we waited for the lock). *did_apply tells whether this call ran it.
 */
static gq_status_t migrate_one(gq_pg_t *pg, const gq_migration_t *m, bool *did_apply, char *errstr,
                               size_t errstr_size) {
    char e[1024];
    PGresult *res = NULL;
    gq_pg_params_t p;
    *did_apply = false;
    gq_status_t st = gq_pg_begin(pg, e, sizeof(e));
    if (st != GQ_OK)
        goto fail;
    gq_pg_params_init(&p);
    gq_pg_param_i64(&p, GQ_MIGRATE_LOCK_KEY);
    st = gq_pg_exec(pg, "SELECT pg_advisory_xact_lock($1::bigint)", &p, NULL, e, sizeof(e));
    if (st != GQ_OK)
        goto fail;
    bool exists = false;
    st = migrate_table_exists(pg, &exists, e, sizeof(e));
    if (st != GQ_OK)
        goto fail;
    if (!exists) {
        st = gq_pg_exec_script(pg, migrate_bootstrap_sql, e, sizeof(e));
        if (st != GQ_OK)
            goto fail;
    }
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, m->version);
    st = gq_pg_exec(pg,
                    "SELECT (SELECT checksum FROM genq.schema_migrations WHERE version = $1), "
                    "(SELECT max(version) FROM genq.schema_migrations)",
                    &p, &res, e, sizeof(e));
    if (st != GQ_OK)
        goto fail;
    if (!PQgetisnull(res, 0, 0)) {
        char db_sum[65];
        gq_strlcpy(db_sum, gq_pg_get(res, 0, 0), sizeof(db_sum));
        PQclear(res);
        gq_pg_rollback(pg);
        if (strcmp(db_sum, m->checksum) == 0)
            return GQ_OK;
        gq_errf(errstr, errstr_size,
                "migration %s was changed after it was applied (database has sha256 %.12s..., "
                "this genq has %.12s...); restore the file and add a new migration instead",
                m->name, db_sum, m->checksum);
        return GQ_ERR_INVALID;
    }
    if (!PQgetisnull(res, 0, 1) && strcmp(gq_pg_get(res, 0, 1), m->version) > 0)
        gq_warn("applying %s after the later %s: migrations were added out of order", m->name,
                gq_pg_get(res, 0, 1));
    PQclear(res);
    res = NULL;

    int64_t t0 = gq_mono_ms();
    st = gq_pg_exec_script(pg, m->sql, e, sizeof(e));
    if (st != GQ_OK) {
        if (st != GQ_ERR_TRANSIENT)
            st = GQ_ERR;
        gq_pg_rollback(pg);
        gq_errf(errstr, errstr_size, "migration %s failed: %s", m->name, e);
        return st;
    }
    gq_pg_params_init(&p);
    gq_pg_param_str(&p, m->version);
    gq_pg_param_str(&p, m->checksum);
    st = gq_pg_exec(pg, "INSERT INTO genq.schema_migrations (version, checksum) VALUES ($1, $2)",
                    &p, NULL, e, sizeof(e));
    if (st != GQ_OK)
        goto fail;
    st = gq_pg_commit(pg, e, sizeof(e));
    if (st != GQ_OK)
        goto fail;
    *did_apply = true;
    gq_info("applied migration %s (%" PRId64 " ms)", m->name, gq_mono_ms() - t0);
    return GQ_OK;
fail:
    PQclear(res);
    gq_pg_rollback(pg);
    gq_errf(errstr, errstr_size, "migration %s: %s", m->name, e);
    return st;
}

gq_status_t gq_migrate_apply(gq_pg_t *pg, const gq_migration_set_t *set, size_t *applied,
                             char *errstr, size_t errstr_size) {
    if (applied)
        *applied = 0;
    for (size_t i = 0; i < set->cnt; i++) {
        bool did = false;
        gq_status_t st = migrate_one(pg, &set->items[i], &did, errstr, errstr_size);
        if (st != GQ_OK)
            return st;
        if (did && applied)
            (*applied)++;
    }
    return GQ_OK;
}

gq_status_t gq_migrate_check(gq_pg_t *pg, char *errstr, size_t errstr_size) {
    gq_migration_set_t set;
    gq_status_t st = gq_migrate_set_embedded(&set, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    if (set.cnt == 0)
        return GQ_OK;
    gq_migration_status_t *status = calloc(set.cnt, sizeof(*status));
    if (!status) {
        gq_migrate_set_release(&set);
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    st = gq_migrate_inspect(pg, &set, status, NULL, errstr, errstr_size);
    if (st == GQ_OK) {
        char missing[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < set.cnt && st == GQ_OK; i++) {
            if (status[i].state == GQ_MIGRATION_CHANGED) {
                gq_errf(errstr, errstr_size,
                        "database schema does not match this genq: migration %s was changed "
                        "after it was applied",
                        set.items[i].name);
                st = GQ_ERR_INVALID;
            } else if (status[i].state == GQ_MIGRATION_PENDING && used < sizeof(missing)) {
                int n = snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "",
                                 set.items[i].version);
                used = n < 0 ? sizeof(missing) : used + (size_t)n;
            }
        }
        if (st == GQ_OK && missing[0]) {
            gq_errf(errstr, errstr_size, "database not migrated (missing %s): run `genq migrate`",
                    missing);
            st = GQ_ERR_NOTFOUND;
        }
    }
    free(status);
    gq_migrate_set_release(&set);
    return st;
}
