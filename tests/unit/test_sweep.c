/* Unit tests of consumers/worker/store/sweep.c: deleting ComfyUI's copies of recorded files,
 * and nothing else. */
#include "worker/store/sweep.h"

#include "check.h"
#include "util.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void touch(const char *rel) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, "x", 1) == 1);
        close(fd);
    }
}

static bool exists(const char *rel) {
    char path[512];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return lstat(path, &sb) == 0;
}

static void mkdir_rel(const char *rel) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    CHECK(mkdir(path, 0755) == 0);
}

static gq_comfy_image_t file(const char *type, const char *subfolder, const char *name) {
    gq_comfy_image_t f;
    memset(&f, 0, sizeof(f));
    gq_strlcpy(f.type, type, sizeof(f.type));
    gq_strlcpy(f.subfolder, subfolder, sizeof(f.subfolder));
    gq_strlcpy(f.filename, name, sizeof(f.filename));
    return f;
}

static gq_status_t sweep_one(gq_sweep_t *s, const char *type, const char *sub, const char *name) {
    char err[512];
    gq_comfy_image_t f = file(type, sub, name);
    return gq_sweep_file(s, &f, err, sizeof(err));
}

static void test_sweep(void) {
    char out[256], tmp[256], err[256];
    snprintf(out, sizeof(out), "%s/output", root);
    snprintf(tmp, sizeof(tmp), "%s/temp", root);
    mkdir_rel("output");
    mkdir_rel("output/genq");
    mkdir_rel("output/genq/deep");
    mkdir_rel("temp");
    mkdir_rel("outside");
    touch("output/genq/j_00001_.png");
    touch("output/genq/deep/j_00001_.webm");
    touch("output/top.png");
    touch("temp/ComfyUI_temp_abcde_00001_.png");
    touch("outside/secret.png");
    touch("output/genq/input.png");
    char target[300], link[300];
    snprintf(target, sizeof(target), "%s/outside", root);
    snprintf(link, sizeof(link), "%s/output/escape", root);
    CHECK(symlink(target, link) == 0);
    snprintf(target, sizeof(target), "%s/outside/secret.png", root);
    snprintf(link, sizeof(link), "%s/output/genq/link.png", root);
    CHECK(symlink(target, link) == 0);
    mkdir_rel("output/genq/adir.png");

    gq_sweep_t s;
    CHECK(gq_sweep_init(&s, out, tmp, err, sizeof(err)) == GQ_OK);
    CHECK(gq_sweep_enabled(&s));
    CHECK(sweep_one(&s, "output", "genq", "j_00001_.png") == GQ_OK);
    CHECK(!exists("output/genq/j_00001_.png"));
    CHECK(exists("output/genq")); /* ComfyUI may be writing into it right now */
    CHECK(sweep_one(&s, "output", "genq/deep", "j_00001_.webm") == GQ_OK);
    CHECK(sweep_one(&s, "output", "", "top.png") == GQ_OK);
    CHECK(sweep_one(&s, "temp", "", "ComfyUI_temp_abcde_00001_.png") == GQ_OK);
    CHECK(!exists("temp/ComfyUI_temp_abcde_00001_.png"));
    /* Gone already (a preview cached from an earlier prompt): not found. */
    CHECK(sweep_one(&s, "output", "genq", "j_00001_.png") == GQ_ERR_NOTFOUND);
    CHECK(sweep_one(&s, "output", "nope", "x.png") == GQ_ERR_NOTFOUND);

    /* Names that could reach outside, or are not plain, are refused and nothing moves. */
    static const char *const bad_subs[] = {"..",    "../outside", "/abs", "genq/..",    "genq//x",
                                           "genq/", ".hid",       "a b",  "genq/../..", "escape"};
    for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++) {
        gq_status_t st = sweep_one(&s, "output", bad_subs[i], "secret.png");
        if (st != GQ_ERR_INVALID)
            fprintf(stderr, "subfolder \"%s\": %d\n", bad_subs[i], st);
        CHECK(st == GQ_ERR_INVALID);
    }
    static const char *const bad_names[] = {"..",  ".",       "",           "../outside/secret.png",
                                            "a/b", ".hidden", "sp ace.png", "new\nline"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        CHECK(sweep_one(&s, "output", "genq", bad_names[i]) == GQ_ERR_INVALID);
    CHECK(exists("outside/secret.png"));
    /* A symlink is not a regular file: left alone, and so is its target. */
    CHECK(sweep_one(&s, "output", "genq", "link.png") == GQ_ERR_INVALID);
    CHECK(exists("output/genq/link.png") && exists("outside/secret.png"));
    CHECK(sweep_one(&s, "output", "genq", "adir.png") == GQ_ERR_INVALID);
    CHECK(exists("output/genq/adir.png"));
    /* Uploads are the user's; unknown types are not touched. */
    CHECK(sweep_one(&s, "input", "genq", "input.png") == GQ_ERR_INVALID);
    CHECK(sweep_one(&s, "weird", "genq", "input.png") == GQ_ERR_INVALID);
    CHECK(exists("output/genq/input.png"));

    /* A whole result: counted. */
    gq_comfy_result_t r = {0};
    touch("output/genq/j_00002_.png");
    touch("output/genq/j_00003_.png");
    r.images = calloc(4, sizeof(*r.images));
    r.images_cnt = 4;
    r.images[0] = file("output", "genq", "j_00002_.png");
    r.images[1] = file("output", "genq", "j_00003_.png");
    r.images[2] = file("temp", "", "gone.png");
    r.images[3] = file("output", "..", "x.png");
    gq_sweep_result(&s, "job", &r);
    CHECK(!exists("output/genq/j_00002_.png") && !exists("output/genq/j_00003_.png"));
    CHECK_INT(s.deleted, 2);
    CHECK_INT(s.missing, 1);
    CHECK_INT(s.refused, 1);
    gq_comfy_result_release(&r);

    /* Not configured: kept. */
    CHECK(gq_sweep_init(&s, NULL, "", err, sizeof(err)) == GQ_OK);
    CHECK(!gq_sweep_enabled(&s));
    CHECK(sweep_one(&s, "output", "genq", "input.png") == GQ_ERR_NOTFOUND);
    CHECK(exists("output/genq/input.png"));
    /* Only the temp directory: outputs are kept, previews go. */
    touch("temp/p.png");
    CHECK(gq_sweep_init(&s, NULL, tmp, err, sizeof(err)) == GQ_OK);
    CHECK(sweep_one(&s, "output", "genq", "input.png") == GQ_ERR_NOTFOUND);
    CHECK(sweep_one(&s, "temp", "", "p.png") == GQ_OK);
    /* A directory that is not there yet is no error at start. */
    char later[300];
    snprintf(later, sizeof(later), "%s/not-yet", root);
    CHECK(gq_sweep_init(&s, later, NULL, err, sizeof(err)) == GQ_OK);
    CHECK(sweep_one(&s, "output", "", "x.png") == GQ_ERR_NOTFOUND);
}

int main(void) {
    snprintf(root, sizeof(root), "/tmp/genq-test-sweep-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_sweep();
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return CHECK_DONE("test_sweep");
}
