/**
 * @file sweep.h
 * @brief Deleting ComfyUI's own copies of a job's files once genq has recorded them.
 *
 * ComfyUI writes every output into its output directory (previews into its temp directory)
 * and never deletes them; it has no HTTP API to (0.3.64). genq copies each result into its
 * own store, so after the job's terminal record is committed ComfyUI's copies are waste,
 * and on Kubernetes they fill the pod's scratch volume until the kubelet evicts it. The
 * worker therefore sees ComfyUI's directories (GENQ_COMFYUI_OUTPUT_DIR, GENQ_COMFYUI_TEMP_DIR:
 * a shared volume) and removes the files /history listed.
 *
 * Names come from ComfyUI's /history and are checked before anything is removed: the file
 * name and every subfolder component must be plain names ([A-Za-z0-9._-], not starting
 * with '.'), at most 8 components; directories are opened one component at a time with
 * O_NOFOLLOW below the configured directory (a symlinked subfolder is never followed), and
 * only a regular file is unlinked. Anything else is left alone and counted as refused.
 * Subfolders are not removed: ComfyUI may be creating a file in one at the same moment.
 */
#ifndef GQ_SWEEP_H
#define GQ_SWEEP_H

#include "comfy/comfy.h"
#include "gq.h"

#include <stdbool.h>

typedef struct gq_sweep {
    char output[1024]; /**< ComfyUI's output directory ("" when not configured) */
    char temp[1024];   /**< its temp directory ("" when not configured) */
    uint64_t deleted, missing, refused, failed;
} gq_sweep_t;

/**
 * Sets up the directories (either may be NULL or "": those files are kept). Logs once
 * which copies will be deleted or kept. A directory that does not exist (yet: ComfyUI
 * creates its temp directory on first use) is not an error.
 */
gq_status_t gq_sweep_init(gq_sweep_t *s, const char *output_dir, const char *temp_dir, char *errstr,
                          size_t errstr_size);

/** True when there is anything to delete (a directory is configured). */
bool gq_sweep_enabled(const gq_sweep_t *s);

/**
 * Deletes one file ComfyUI listed. GQ_OK: deleted. GQ_ERR_NOTFOUND: not there (or its
 * type's directory is not configured). GQ_ERR_INVALID: refused (an unsafe name, not a
 * regular file, a type other than output and temp). GQ_ERR: unlink failed (errstr).
 */
gq_status_t gq_sweep_file(gq_sweep_t *s, const gq_comfy_image_t *f, char *errstr,
                          size_t errstr_size);

/** Deletes every output and temp file of r; problems are logged (a missing output file
 * once in a while: is the directory really ComfyUI's?). */
void gq_sweep_result(gq_sweep_t *s, const char *job_id, const gq_comfy_result_t *r);

#endif
