/**
 * @file store.c
 * @brief The content-addressed output store (see store.h).
 *
 * Durability order: write a temporary file in the final directory, fsync it, rename it over
 * the final name, fsync the directory. A reader therefore sees either no file or the whole
 * file, and after a crash the rename is either done or not.
 */
#include "store.h"

#include "media.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_DIR_MODE 0755
#define STORE_FILE_MODE 0644

/* A full disk or an I/O error may pass (another worker, a later retry); a permission or a
 * read-only filesystem will not. */
static gq_status_t store_errno_status(int e) {
    switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EAGAIN:
    case EINTR:
    case ENOMEM: return GQ_ERR_TRANSIENT;
    default: return GQ_ERR;
    }
}

/* fsync on a directory makes its entries (a rename, a new subdirectory) durable. */
static gq_status_t store_sync_dir(const char *dir, char *errstr, size_t errstr_size) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        gq_errf(errstr, errstr_size, "cannot sync directory %s: %s", dir, strerror(e));
        if (fd >= 0)
            close(fd);
        return store_errno_status(e);
    }
    close(fd);
    return GQ_OK;
}

/* mkdir -p; path is modified temporarily. */
static gq_status_t store_mkdir_p(char *path, char *errstr, size_t errstr_size) {
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(path, STORE_DIR_MODE);
        int e = errno;
        if (rc != 0 && e != EEXIST) {
            gq_errf(errstr, errstr_size, "cannot create directory %s: %s", path, strerror(e));
            *p = c;
            return store_errno_status(e);
        }
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        gq_errf(errstr, errstr_size, "output directory %s is not a directory", path);
        return GQ_ERR;
    }
    return GQ_OK;
}

/* Creating (and removing) a file is the only reliable test: access() ignores read-only
 * mounts and answers for the real, not the effective, user. */
static gq_status_t store_probe(const char *root, char *errstr, size_t errstr_size) {
    char probe[600];
    int n = snprintf(probe, sizeof(probe), "%s/.genq-probe-XXXXXX", root);
    if (n < 0 || (size_t)n >= sizeof(probe)) {
        gq_errf(errstr, errstr_size, "output directory path is too long: %s", root);
        return GQ_ERR_INVALID;
    }
    int fd = mkstemp(probe);
    if (fd < 0) {
        int e = errno;
        gq_errf(errstr, errstr_size, "output directory %s is not writable: %s", root, strerror(e));
        return store_errno_status(e);
    }
    close(fd);
    unlink(probe);
    return GQ_OK;
}

gq_status_t gq_store_init(gq_store_t *s, const char *root, const char *url_prefix, char *errstr,
                          size_t errstr_size) {
    memset(s, 0, sizeof(*s));
    if (!root || !*root) {
        gq_errf(errstr, errstr_size, "the output directory is not set");
        return GQ_ERR_INVALID;
    }
    char tmp[PATH_MAX];
    if (gq_strlcpy(tmp, root, sizeof(tmp)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "output directory path is too long");
        return GQ_ERR_INVALID;
    }
    gq_status_t st = store_mkdir_p(tmp, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    char *abs = realpath(root, NULL);
    if (!abs) {
        int e = errno;
        gq_errf(errstr, errstr_size, "cannot resolve output directory %s: %s", root, strerror(e));
        return store_errno_status(e);
    }
    /* Room is kept for "/aa/<64 hex>.webp" in gq_stored_t.path. */
    st = gq_strlcpy(s->root, abs, sizeof(s->root));
    free(abs);
    if (st != GQ_OK) {
        gq_errf(errstr, errstr_size, "output directory path is longer than %zu bytes: %s",
                sizeof(s->root) - 1, root);
        memset(s, 0, sizeof(*s));
        return GQ_ERR_INVALID;
    }
    st = store_probe(s->root, errstr, errstr_size);
    if (st != GQ_OK) {
        memset(s, 0, sizeof(*s));
        return st;
    }
    int n;
    if (url_prefix && *url_prefix) {
        size_t len = strlen(url_prefix);
        /* Strip a trailing slash, but leave "scheme://" whole. */
        while (len > 1 && url_prefix[len - 1] == '/' && url_prefix[len - 2] != '/')
            len--;
        n = snprintf(s->url_prefix, sizeof(s->url_prefix), "%.*s", (int)len, url_prefix);
    } else {
        /* realpath gives "/" only for the root itself; drop it so the uri has one slash. */
        n = snprintf(s->url_prefix, sizeof(s->url_prefix), "file://%s",
                     strcmp(s->root, "/") == 0 ? "" : s->root);
    }
    if (n < 0 || (size_t)n >= sizeof(s->url_prefix)) {
        gq_errf(errstr, errstr_size, "output URL prefix is longer than %zu bytes",
                sizeof(s->url_prefix) - 1);
        memset(s, 0, sizeof(*s));
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

static gq_status_t store_write_all(int fd, const unsigned char *p, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return GQ_ERR;
        p += n;
        len -= (size_t)n;
    }
    return GQ_OK;
}

/* Writes data to a new temporary file in dir, fsyncs it, and renames it to final. */
static gq_status_t store_write_file(const char *dir, const char *final, const char *sha,
                                    const void *data, size_t len, char *errstr,
                                    size_t errstr_size) {
    char tmp[1100];
    int fd = -1, e = 0;
    /* A random suffix and O_EXCL: two workers storing the same image never share a temp
     * file, and a leftover from a crash is never reused. */
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        snprintf(tmp, sizeof(tmp), "%s/.tmp-%.16s-%016llx", dir, sha,
                 (unsigned long long)gq_random_u64());
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, STORE_FILE_MODE);
        e = errno;
        if (fd < 0 && e != EEXIST)
            break;
    }
    if (fd < 0) {
        gq_errf(errstr, errstr_size, "cannot create a file in %s: %s", dir, strerror(e));
        return store_errno_status(e);
    }
    const char *what = NULL;
    if (store_write_all(fd, data, len) != GQ_OK)
        what = "write";
    else if (fsync(fd) != 0)
        what = "fsync";
    e = errno;
    /* close() can report a deferred write error (NFS); it must be checked too. */
    if (close(fd) != 0 && !what) {
        what = "close";
        e = errno;
    }
    if (!what && rename(tmp, final) != 0) {
        what = "rename";
        e = errno;
    }
    if (what) {
        gq_errf(errstr, errstr_size, "cannot store %s (%s): %s", final, what, strerror(e));
        unlink(tmp);
        return store_errno_status(e);
    }
    return store_sync_dir(dir, errstr, errstr_size);
}

gq_status_t gq_store_put(const gq_store_t *s, const void *data, size_t len, gq_stored_t *out,
                         char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    if (!data && len > 0) {
        gq_errf(errstr, errstr_size, "no data to store");
        return GQ_ERR_INVALID;
    }
    if (!s->root[0]) {
        gq_errf(errstr, errstr_size, "the output store is not initialised");
        return GQ_ERR_INVALID;
    }
    static const unsigned char empty[1];
    const unsigned char *p = data ? data : empty;
    /* The type is read from the bytes, never from a name ComfyUI or a message supplied. */
    gq_media_t type;
    gq_media_detect(p, len, &type);
    gq_sha256_hex(p, len, out->sha256);

    char dir[600];
    int n = snprintf(dir, sizeof(dir), "%s/%.2s", s->root, out->sha256);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return GQ_ERR_TOOBIG;
    n = snprintf(out->path, sizeof(out->path), "%s/%s.%s", dir, out->sha256, type.ext);
    if (n < 0 || (size_t)n >= sizeof(out->path))
        return GQ_ERR_TOOBIG;
    n = snprintf(out->uri, sizeof(out->uri), "%s/%.2s/%s.%s", s->url_prefix, out->sha256,
                 out->sha256, type.ext);
    if (n < 0 || (size_t)n >= sizeof(out->uri))
        return GQ_ERR_TOOBIG;
    out->mime = type.mime;
    out->bytes = (int64_t)len;
    out->width = type.width;
    out->height = type.height;

    gq_status_t st = GQ_OK;
    if (mkdir(dir, STORE_DIR_MODE) == 0) {
        st = store_sync_dir(s->root, errstr, errstr_size);
    } else if (errno != EEXIST) {
        int e = errno;
        gq_errf(errstr, errstr_size, "cannot create directory %s: %s", dir, strerror(e));
        st = store_errno_status(e);
    }
    if (st != GQ_OK)
        return st;
    /* Same name, same size: the same bytes were stored before (the name is their hash, and
     * the rename makes a partial file impossible). */
    struct stat sb;
    if (stat(out->path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == len)
        return GQ_OK;
    return store_write_file(dir, out->path, out->sha256, p, len, errstr, errstr_size);
}
