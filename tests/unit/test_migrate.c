/* migrations/migrate: loading migration sets (embedded and from a directory). Applying them
 * needs a server: see test_recorder and tests/integration/0030-recorder.sh. */
#include "migrate.h"
#include "util.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        CHECK(f != NULL);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void remove_dir(const char *dir, const char *const *names, size_t cnt) {
    char path[512];
    for (size_t i = 0; i < cnt; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(dir);
}

static void test_embedded(void) {
    char err[256];
    gq_migration_set_t set;
    CHECK(gq_migrate_set_embedded(&set, err, sizeof(err)) == GQ_OK);
    CHECK(set.cnt >= 1);
    if (set.cnt >= 1) {
        CHECK_STR(set.items[0].name, "0001_init.sql");
        CHECK_STR(set.items[0].version, "0001_init");
        CHECK(strstr(set.items[0].sql, "CREATE TABLE genq.jobs") != NULL);
        char hex[65];
        gq_sha256_hex(set.items[0].sql, set.items[0].len, hex);
        CHECK_STR(set.items[0].checksum, hex);
        CHECK_INT(strlen(set.items[0].checksum), 64);
    }
    for (size_t i = 1; i < set.cnt; i++)
        CHECK(strcmp(set.items[i - 1].name, set.items[i].name) < 0);
    gq_migrate_set_release(&set);
    gq_migrate_set_release(&set); /* release twice is harmless */
    CHECK_STR(gq_migration_state_name(GQ_MIGRATION_CHANGED), "changed");
}

static void test_dir(void) {
    char err[512];
    char dir[] = "/tmp/genq-test-migrate.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    static const char *const names[] = {"0002_b.sql",  "0001_a.sql", "README",
                                        ".0000_x.sql", "sub.sql",    "bad name.sql"};
    write_file(dir, names[0], "SELECT 2;\n");
    write_file(dir, names[1], "SELECT 1;\n");
    write_file(dir, names[2], "not a migration\n");
    write_file(dir, names[3], "hidden\n");
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/%s", dir, names[4]);
    CHECK(mkdir(sub, 0700) == 0);

    gq_migration_set_t set;
    CHECK(gq_migrate_set_dir(&set, dir, err, sizeof(err)) == GQ_OK);
    CHECK_INT(set.cnt, 2);
    if (set.cnt == 2) {
        CHECK_STR(set.items[0].name, "0001_a.sql");
        CHECK_STR(set.items[0].version, "0001_a");
        CHECK_STR(set.items[0].sql, "SELECT 1;\n");
        CHECK_INT(set.items[0].len, 10);
        CHECK_STR(set.items[1].name, "0002_b.sql");
        char hex[65];
        gq_sha256_hex("SELECT 2;\n", 10, hex);
        CHECK_STR(set.items[1].checksum, hex);
    }
    gq_migrate_set_release(&set);

    /* A .sql name that is not a safe file name is refused, not skipped. */
    write_file(dir, names[5], "SELECT 3;\n");
    CHECK(gq_migrate_set_dir(&set, dir, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "bad name.sql") != NULL);
    CHECK_INT(set.cnt, 0);
    remove_dir(dir, names, GQ_ARRAY_LEN(names));

    CHECK(gq_migrate_set_dir(&set, "/nonexistent/genq", err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "/nonexistent/genq") != NULL);
}

int main(void) {
    test_embedded();
    test_dir();
    return CHECK_DONE("test_migrate");
}
