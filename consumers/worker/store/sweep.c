/**
 * @file sweep.c
 * @brief Deleting ComfyUI's copies of recorded files (see sweep.h).
 */
#include "sweep.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SWEEP_NAME_MAX 255
#define SWEEP_DEPTH_MAX 8

static void sweep_dir_set(char *dst, size_t size, const char *dir) {
    dst[0] = '\0';
    if (!dir || !*dir)
        return;
    /* Resolved once when it exists, so the log says where files really go. */
    char *abs = realpath(dir, NULL);
    gq_strlcpy(dst, abs ? abs : dir, size);
    free(abs);
}

gq_status_t gq_sweep_init(gq_sweep_t *s, const char *output_dir, const char *temp_dir, char *errstr,
                          size_t errstr_size) {
    memset(s, 0, sizeof(*s));
    if ((output_dir && strlen(output_dir) >= sizeof(s->output)) ||
        (temp_dir && strlen(temp_dir) >= sizeof(s->temp))) {
        gq_errf(errstr, errstr_size, "ComfyUI output or temp directory path is too long");
        return GQ_ERR_INVALID;
    }
    sweep_dir_set(s->output, sizeof(s->output), output_dir);
    sweep_dir_set(s->temp, sizeof(s->temp), temp_dir);
    struct stat sb;
    if (s->output[0] && (stat(s->output, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        gq_warn("ComfyUI's output directory %s is not there (yet?); its copies of the outputs "
                "are deleted once it is (GENQ_COMFYUI_OUTPUT_DIR)",
                s->output);
    if (s->output[0])
        gq_info("ComfyUI's copies of recorded outputs are deleted from %s%s%s", s->output,
                s->temp[0] ? ", previews from " : "", s->temp);
    else if (s->temp[0])
        gq_info("ComfyUI's previews are deleted from %s; its copies of the outputs are kept "
                "(GENQ_COMFYUI_OUTPUT_DIR is not set)",
                s->temp);
    else
        gq_info("ComfyUI's copies of the outputs are kept: GENQ_COMFYUI_OUTPUT_DIR is not set, "
                "so its output directory fills up unless something else cleans it");
    return GQ_OK;
}

bool gq_sweep_enabled(const gq_sweep_t *s) { return s->output[0] || s->temp[0]; }

/* Opens subfolder (a '/'-separated relative path of safe names) below base, one component
 * at a time, never following a symlink. Returns a directory fd or -1 (errno set). */
static int sweep_open_dir(const char *base, const char *subfolder) {
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *p = subfolder;
    while (fd >= 0 && *p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char comp[SWEEP_NAME_MAX + 1];
        memcpy(comp, p, n);
        comp[n] = '\0';
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
        p += n + (slash ? 1 : 0);
    }
    return fd;
}

/* The subfolder: empty, or safe names joined by single '/' (no "..", no leading '/'). */
static bool sweep_subfolder_ok(const char *sub) {
    int depth = 0;
    for (const char *p = sub; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char comp[SWEEP_NAME_MAX + 1];
        if (n == 0 || n > SWEEP_NAME_MAX || ++depth > SWEEP_DEPTH_MAX)
            return false;
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (!gq_name_safe(comp, SWEEP_NAME_MAX))
            return false;
        p += n;
        if (*p == '/' && !*++p)
            return false; /* a trailing slash */
    }
    return true;
}

gq_status_t gq_sweep_file(gq_sweep_t *s, const gq_comfy_image_t *f, char *errstr,
                          size_t errstr_size) {
    const char *base = strcmp(f->type, "output") == 0 ? s->output
                       : strcmp(f->type, "temp") == 0 ? s->temp
                                                      : NULL;
    if (!base) {
        /* "input": the user's uploads, never ours to delete. */
        gq_errf(errstr, errstr_size, "type \"%.15s\" is not deleted", f->type);
        return GQ_ERR_INVALID;
    }
    if (!base[0]) {
        gq_errf(errstr, errstr_size, "ComfyUI's %s directory is not configured", f->type);
        return GQ_ERR_NOTFOUND;
    }
    if (!gq_name_safe(f->filename, SWEEP_NAME_MAX) || !sweep_subfolder_ok(f->subfolder)) {
        gq_errf(errstr, errstr_size, "unsafe name \"%.80s\" in \"%.80s\": left alone", f->filename,
                f->subfolder);
        return GQ_ERR_INVALID;
    }
    int dir = sweep_open_dir(base, f->subfolder);
    if (dir < 0) {
        int e = errno;
        gq_errf(errstr, errstr_size, "%s/%s: %s", base, f->subfolder, strerror(e));
        return e == ENOENT ? GQ_ERR_NOTFOUND : e == ELOOP || e == ENOTDIR ? GQ_ERR_INVALID : GQ_ERR;
    }
    struct stat sb;
    gq_status_t st = GQ_OK;
    if (fstatat(dir, f->filename, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        int e = errno;
        gq_errf(errstr, errstr_size, "%s/%s/%s: %s", base, f->subfolder, f->filename, strerror(e));
        st = e == ENOENT ? GQ_ERR_NOTFOUND : GQ_ERR;
    } else if (!S_ISREG(sb.st_mode)) {
        gq_errf(errstr, errstr_size, "%s/%s/%s is not a regular file: left alone", base,
                f->subfolder, f->filename);
        st = GQ_ERR_INVALID;
    } else if (unlinkat(dir, f->filename, 0) != 0) {
        int e = errno;
        gq_errf(errstr, errstr_size, "cannot delete %s/%s/%s: %s", base, f->subfolder, f->filename,
                strerror(e));
        st = e == ENOENT ? GQ_ERR_NOTFOUND : GQ_ERR;
    }
    close(dir);
    return st;
}

void gq_sweep_result(gq_sweep_t *s, const char *job_id, const gq_comfy_result_t *r) {
    if (!gq_sweep_enabled(s) || !r)
        return;
    for (size_t i = 0; i < r->images_cnt; i++) {
        const gq_comfy_image_t *f = &r->images[i];
        char err[512];
        gq_status_t st = gq_sweep_file(s, f, err, sizeof(err));
        if (st == GQ_OK) {
            s->deleted++;
        } else if (st == GQ_ERR_NOTFOUND) {
            s->missing++;
            /* A preview cached from an earlier prompt points at a file swept then; an
             * output never should, unless the directory is not ComfyUI's. */
            if (strcmp(f->type, "output") == 0 && s->output[0] && s->missing % 100 == 1)
                gq_log_job(GQ_LOG_WARN, job_id,
                           "ComfyUI's copy of an output is not where genq looks (%s); is "
                           "GENQ_COMFYUI_OUTPUT_DIR ComfyUI's --output-directory? (%llu so far)",
                           err, (unsigned long long)s->missing);
        } else if (st == GQ_ERR_INVALID) {
            if (strcmp(f->type, "input") != 0) {
                s->refused++;
                gq_log_job(GQ_LOG_WARN, job_id, "not deleting ComfyUI's file: %s", err);
            }
        } else {
            s->failed++;
            gq_log_job(GQ_LOG_WARN, job_id, "%s", err);
        }
    }
}
