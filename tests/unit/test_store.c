/* Unit tests of consumers/worker/store/store.c: the content-addressed output store. */
#include "worker/store/outputs.h"
#include "worker/store/store.h"

#include "cfg.h"
#include "check.h"

#include <dirent.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* A tiny PNG: signature, IHDR (w x h, 8-bit RGB), IEND. CRCs are not checked by the store. */
static size_t make_png(unsigned char *p, uint32_t w, uint32_t h) {
    static const unsigned char head[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                         0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    size_t n = 0;
    memcpy(p, head, sizeof(head));
    n += sizeof(head);
    unsigned char dims[8] = {(unsigned char)(w >> 24), (unsigned char)(w >> 16),
                             (unsigned char)(w >> 8),  (unsigned char)w,
                             (unsigned char)(h >> 24), (unsigned char)(h >> 16),
                             (unsigned char)(h >> 8),  (unsigned char)h};
    memcpy(p + n, dims, 8);
    n += 8;
    static const unsigned char rest[] = {8, 2, 0,   0,   0,   0xde, 0xad, 0xbe, 0xef, 0,   0,
                                         0, 0, 'I', 'E', 'N', 'D',  0xae, 0x42, 0x60, 0x82};
    memcpy(p + n, rest, sizeof(rest));
    return n + sizeof(rest);
}

/* Independent of gq_sha256_hex, so the test does not check the store against itself. */
static void sha256_hex(const void *data, size_t len, char out[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

/* Counts entries starting with '.' (temporary or probe files) anywhere under dir. */
static int count_hidden(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_name[0] == '.')
            n++;
        char sub[1024];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            n += count_hidden(sub);
    }
    closedir(d);
    return n;
}

static void test_png_size(void) {
    unsigned char png[64];
    size_t n = make_png(png, 640, 480);
    int32_t w = -1, h = -1;
    CHECK(gq_png_size(png, n, &w, &h) == GQ_OK);
    CHECK_INT(w, 640);
    CHECK_INT(h, 480);
    CHECK(gq_png_size(png, 33, &w, &h) == GQ_OK); /* the header is all it reads */
    CHECK(gq_png_size(png, 32, &w, &h) == GQ_ERR_INVALID);
    CHECK_INT(w, 0);
    CHECK(gq_png_size(png, 8, &w, &h) == GQ_ERR_INVALID);
    CHECK(gq_png_size(png, 0, &w, &h) == GQ_ERR_INVALID);
    CHECK(gq_png_size(NULL, 100, &w, &h) == GQ_ERR_INVALID);

    unsigned char bad[64];
    memcpy(bad, png, n);
    bad[1] = 'p'; /* signature */
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_ERR_INVALID);
    memcpy(bad, png, n);
    bad[15] = 'X'; /* chunk type IHDX */
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_ERR_INVALID);
    memcpy(bad, png, n);
    bad[11] = 14; /* IHDR length must be 13 */
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_ERR_INVALID);

    n = make_png(bad, 0, 480);
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_ERR_INVALID);
    n = make_png(bad, 640, 0);
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_ERR_INVALID);
    n = make_png(bad, 0x80000000u, 1);
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_ERR_INVALID);
    n = make_png(bad, 0x7fffffffu, 1);
    CHECK(gq_png_size(bad, n, &w, &h) == GQ_OK && w == INT32_MAX && h == 1);
}

static void check_stored(const gq_store_t *s, const gq_stored_t *o, const void *data, size_t len,
                         const char *ext, const char *mime) {
    char sha[65], want[1200];
    sha256_hex(data, len, sha);
    CHECK_STR(o->sha256, sha);
    snprintf(want, sizeof(want), "%s/%.2s/%s.%s", s->root, sha, sha, ext);
    CHECK_STR(o->path, want);
    snprintf(want, sizeof(want), "%s/%.2s/%s.%s", s->url_prefix, sha, sha, ext);
    CHECK_STR(o->uri, want);
    CHECK_STR(o->mime, mime);
    CHECK_INT(o->bytes, (long long)len);

    size_t got_len = 0;
    unsigned char *got = read_all(o->path, &got_len);
    CHECK(got != NULL && got_len == len && (len == 0 || memcmp(got, data, len) == 0));
    char got_sha[65];
    sha256_hex(got ? got : (const unsigned char *)"", got_len, got_sha);
    CHECK_STR(got_sha, sha);
    free(got);

    struct stat sb;
    CHECK(stat(o->path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
}

static void test_put(void) {
    char root[256], err[512] = "";
    snprintf(root, sizeof(root), "%s/x/../out/nested", tmp_root);
    gq_store_t s;
    CHECK(gq_store_init(&s, root, NULL, err, sizeof(err)) == GQ_OK);
    char *abs = realpath(root, NULL);
    CHECK(abs != NULL);
    if (!abs)
        return;
    CHECK_STR(s.root, abs);
    char want[600];
    snprintf(want, sizeof(want), "file://%s", abs);
    CHECK_STR(s.url_prefix, want);
    free(abs);
    CHECK(count_hidden(s.root) == 0); /* the writability probe is gone */

    unsigned char png[64];
    size_t n = make_png(png, 3, 2);
    gq_stored_t a, b;
    CHECK(gq_store_put(&s, png, n, &a, err, sizeof(err)) == GQ_OK);
    check_stored(&s, &a, png, n, "png", "image/png");
    CHECK_INT(a.width, 3);
    CHECK_INT(a.height, 2);

    /* Same content again: same path, no error, the file is left alone. */
    struct stat before, after;
    CHECK(stat(a.path, &before) == 0);
    CHECK(gq_store_put(&s, png, n, &b, err, sizeof(err)) == GQ_OK);
    CHECK_STR(b.path, a.path);
    CHECK_STR(b.uri, a.uri);
    CHECK(stat(b.path, &after) == 0 && after.st_ino == before.st_ino);
    CHECK_INT(b.width, 3);

    /* A truncated copy under the final name (tampering) is replaced, not trusted. */
    FILE *f = fopen(a.path, "wb");
    if (f) {
        fwrite(png, 1, 10, f);
        fclose(f);
    }
    CHECK(gq_store_put(&s, png, n, &b, err, sizeof(err)) == GQ_OK);
    check_stored(&s, &b, png, n, "png", "image/png");

    static const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0};
    CHECK(gq_store_put(&s, jpg, sizeof(jpg), &b, err, sizeof(err)) == GQ_OK);
    check_stored(&s, &b, jpg, sizeof(jpg), "jpg", "image/jpeg");
    CHECK(b.width == 0 && b.height == 0);

    static const unsigned char webp[] = "RIFF\x24\0\0\0WEBPVP8 ";
    CHECK(gq_store_put(&s, webp, sizeof(webp) - 1, &b, err, sizeof(err)) == GQ_OK);
    check_stored(&s, &b, webp, sizeof(webp) - 1, "webp", "image/webp");

    static const char text[] = "not an image";
    CHECK(gq_store_put(&s, text, sizeof(text) - 1, &b, err, sizeof(err)) == GQ_OK);
    check_stored(&s, &b, text, sizeof(text) - 1, "bin", "application/octet-stream");

    /* A PNG signature with a broken header is still a PNG file, of unknown size. */
    unsigned char broken[64];
    n = make_png(broken, 0, 0);
    CHECK(gq_store_put(&s, broken, n, &b, err, sizeof(err)) == GQ_OK);
    check_stored(&s, &b, broken, n, "png", "image/png");
    CHECK(b.width == 0 && b.height == 0);

    CHECK(gq_store_put(&s, NULL, 0, &b, err, sizeof(err)) == GQ_OK);
    CHECK_STR(b.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_INT(b.bytes, 0);
    CHECK(gq_store_put(&s, NULL, 5, &b, err, sizeof(err)) == GQ_ERR_INVALID);

    CHECK_INT(count_hidden(s.root), 0); /* no temporary file is left behind */

    /* A configured URL prefix replaces file://; a trailing slash is dropped. */
    gq_store_t web;
    CHECK(gq_store_init(&web, root, "https://cdn.example.com/out/", err, sizeof(err)) == GQ_OK);
    CHECK_STR(web.url_prefix, "https://cdn.example.com/out");
    CHECK(gq_store_put(&web, png, make_png(png, 3, 2), &b, err, sizeof(err)) == GQ_OK);
    snprintf(want, sizeof(want), "https://cdn.example.com/out/%.2s/%s.png", a.sha256, a.sha256);
    CHECK_STR(b.uri, want);
    CHECK_STR(b.path, a.path);

    gq_store_t none;
    memset(&none, 0, sizeof(none));
    CHECK(gq_store_put(&none, png, 10, &b, err, sizeof(err)) == GQ_ERR_INVALID);
}

static void test_init_errors(void) {
    char err[512] = "", path[512];
    gq_store_t s;
    CHECK(gq_store_init(&s, NULL, NULL, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(gq_store_init(&s, "", NULL, err, sizeof(err)) == GQ_ERR_INVALID);

    /* A root below a regular file cannot be created. */
    snprintf(path, sizeof(path), "%s/file", tmp_root);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK(gq_store_init(&s, path, NULL, err, sizeof(err)) != GQ_OK);
    CHECK(strstr(err, "not a directory") != NULL);
    CHECK(s.root[0] == '\0');
    snprintf(path, sizeof(path), "%s/file/sub", tmp_root);
    CHECK(gq_store_init(&s, path, NULL, err, sizeof(err)) != GQ_OK);
    CHECK(strstr(err, "cannot create directory") != NULL);

    /* Not writable: procfs refuses even root, a mode 0555 directory refuses everyone else. */
    CHECK(gq_store_init(&s, "/proc/self", NULL, err, sizeof(err)) != GQ_OK);
    CHECK(strstr(err, "not writable") != NULL);
    CHECK(s.root[0] == '\0');
    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/ro", tmp_root);
        CHECK(mkdir(path, 0555) == 0);
        CHECK(gq_store_init(&s, path, NULL, err, sizeof(err)) != GQ_OK);
        CHECK(strstr(err, "not writable") != NULL);
        chmod(path, 0755);
    }

    /* The root must leave room for the file names in gq_stored_t. */
    char deep[700];
    int n = snprintf(deep, sizeof(deep), "%s", tmp_root);
    while (n < 600)
        n += snprintf(deep + n, sizeof(deep) - (size_t)n, "/%s",
                      "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    CHECK(gq_store_init(&s, deep, NULL, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "longer than") != NULL);

    /* An over-long URL prefix is refused. */
    char url[700];
    memset(url, 'u', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    snprintf(path, sizeof(path), "%s/ok", tmp_root);
    CHECK(gq_store_init(&s, path, url, err, sizeof(err)) == GQ_ERR_INVALID);
}

/* Files written by the libraries ComfyUI's saving nodes use (PIL, PyAV), made by
 * tests/unit/data/media/make_media.py: each is recognised by its bytes, with its size. */
static void test_media(void) {
    static const struct {
        const char *file, *ext, *mime;
        int32_t w, h;
        bool animated;
    } cases[] = {
        {"still.png", "png", "image/png", 24, 16, false},
        {"anim.png", "png", "image/apng", 24, 16, true},
        {"lossy.webp", "webp", "image/webp", 30, 20, false},
        {"lossless.webp", "webp", "image/webp", 31, 21, false},
        {"anim.webp", "webp", "image/webp", 32, 22, true},
        {"still.jpg", "jpg", "image/jpeg", 33, 23, false},
        {"anim.gif", "gif", "image/gif", 34, 24, true},
        {"clip.webm", "webm", "video/webm", 32, 16, false},
        {"clip.mp4", "mp4", "video/mp4", 48, 32, false},
        {"tone.flac", "flac", "audio/flac", 0, 0, false},
        {"tone.wav", "wav", "audio/wav", 0, 0, false},
        {"tone.mp3", "mp3", "audio/mpeg", 0, 0, false},
        {"tone.opus", "opus", "audio/ogg", 0, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char rel[128], path[PATH_MAX];
        snprintf(rel, sizeof(rel), "tests/unit/data/media/%s", cases[i].file);
        if (!check_find_src(rel, path, sizeof(path))) {
            fprintf(stderr, "FAIL: fixture %s not found\n", rel);
            CHECK(0);
            continue;
        }
        size_t len = 0;
        unsigned char *data = read_all(path, &len);
        CHECK(data != NULL && len > 0);
        gq_media_t m;
        gq_media_detect(data, len, &m);
        if (strcmp(m.mime, cases[i].mime) != 0 || m.width != cases[i].w || m.height != cases[i].h ||
            m.animated != cases[i].animated)
            fprintf(stderr, "%s: %s %s %dx%d animated %d\n", cases[i].file, m.ext, m.mime,
                    (int)m.width, (int)m.height, (int)m.animated);
        CHECK_STR(m.ext, cases[i].ext);
        CHECK_STR(m.mime, cases[i].mime);
        CHECK_INT(m.width, cases[i].w);
        CHECK_INT(m.height, cases[i].h);
        CHECK(m.animated == cases[i].animated);
        /* Every cut of the file is read safely (the sanitizer build checks the bounds). */
        for (size_t cut = 0; data && cut < len; cut++) {
            unsigned char *part = malloc(cut ? cut : 1);
            memcpy(part, data, cut);
            gq_media_detect(part, cut, &m);
            CHECK(m.ext && m.mime && m.width >= 0 && m.height >= 0);
            free(part);
        }
        free(data);
    }
    gq_media_t m;
    gq_media_detect("hello", 5, &m);
    CHECK_STR(m.ext, "bin");
    CHECK_STR(m.mime, "application/octet-stream");
    gq_media_detect(NULL, 0, &m);
    CHECK_STR(m.ext, "bin");
}

/* The file store behind gq_outputs: puts are written on the store's thread, in order, and
 * the fd is readable exactly while an answer waits; destroying with puts queued frees them. */
static void test_outputs_async(void) {
    char dir[128], err[256];
    snprintf(dir, sizeof(dir), "%s/async", tmp_root);
    gq_cfg_t cfg;
    CHECK(gq_cfg_init(&cfg, GQ_CMD_WORKER, "worker", err, sizeof(err)) == GQ_OK);
    CHECK(gq_cfg_set(&cfg, "output_dir", dir, GQ_SRC_FLAG, err, sizeof(err)) == GQ_OK);
    gq_status_t st;
    gq_outputs_t *o = gq_outputs_new(&cfg, NULL, &st, err, sizeof(err));
    CHECK(o != NULL && st == GQ_OK);
    if (!o)
        return;
    int fd = gq_outputs_fd(o);
    CHECK(fd >= 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 0); /* nothing yet */
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        gq_buf_t b;
        gq_buf_init(&b, 1 << 20);
        unsigned char png[64];
        size_t n = make_png(png, 1 + (uint32_t)i, 2);
        CHECK(gq_buf_append(&b, png, n) == GQ_OK);
        gq_outputs_put(o, &b, 100 + (uint64_t)i, i);
        CHECK(b.data == NULL && b.len == 0); /* taken */
    }
    int got = 0, in_order = 1;
    while (got < N) {
        pfd.revents = 0;
        if (poll(&pfd, 1, 10000) != 1)
            break; /* a lost wake-up: fails below, after 10 s instead of hanging */
        gq_outputs_done_t d;
        while (gq_outputs_next_done(o, &d)) {
            CHECK(d.status == GQ_OK);
            in_order &= d.tag == 100 + (uint64_t)got && d.idx == got;
            struct stat sb;
            CHECK(stat(d.stored.path, &sb) == 0 && sb.st_size == d.stored.bytes);
            CHECK(d.stored.width == 1 + got && d.stored.height == 2);
            got++;
        }
    }
    CHECK(got == N);
    CHECK(in_order);
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 0); /* all taken: no longer readable */
    int64_t waiting;
    uint64_t failures;
    gq_outputs_stats(o, &waiting, &failures);
    CHECK(waiting == 0 && failures == 0);
    /* Queued and never taken: freed by destroy (ASan's leak check holds it). */
    for (int i = 0; i < 5; i++) {
        gq_buf_t b;
        gq_buf_init(&b, 1 << 20);
        CHECK(gq_buf_appends(&b, "not a picture") == GQ_OK);
        gq_outputs_put(o, &b, 900 + (uint64_t)i, 0);
    }
    gq_outputs_destroy(o);
    gq_cfg_release(&cfg);
}

int main(void) {
    umask(022);
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/genq-test-store-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_png_size();
    test_put();
    test_init_errors();
    test_outputs_async();
    rm_rf(tmp_root);
    struct stat sb;
    CHECK(stat(tmp_root, &sb) != 0);
    test_media();
    return CHECK_DONE("test_store");
}
