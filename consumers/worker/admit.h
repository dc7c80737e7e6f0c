/**
 * @file admit.h
 * @brief Admission of a message: decode, validate and bind it into the workflow ComfyUI will
 * run, or say why it cannot be. No I/O beyond reading a template file.
 */
#ifndef GQ_ADMIT_H
#define GQ_ADMIT_H

#include "genq_schema.h"
#include "gq.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum gq_admit_verdict {
    GQ_ADMIT_OK,     /**< a request, bound: ready to render */
    GQ_ADMIT_FAIL,   /**< a job id, but no usable request: a FAILED record (code, message) */
    GQ_ADMIT_REJECT, /**< not even a job id: kept as a rejected message and dead-lettered */
    GQ_ADMIT_LATER,  /**< cannot be decided now (a schema registry unreachable): ask again */
} gq_admit_verdict_t;

typedef struct gq_admit {
    gq_admit_verdict_t verdict;
    char job_id[37];  /**< from the request, else from a uuid key; "" when neither */
    bool decoded;     /**< req holds a decoded request (even when it did not validate) */
    gq_request_t req; /**< owned; release with gq_admit_release */
    json_t *workflow; /**< OK: the bound API workflow (owned) */
    char *model;      /**< OK: the checkpoint it loads, NULL if none (owned) */
    int timeout_s;    /**< OK: the request's, else the template's, else the default */
    int32_t max_attempts;
    bool dead_letter; /**< FAIL/REJECT: the message goes to the dead-letter topic too */
    size_t dead_cut;  /**< the dead letter carries only this many bytes (0: all of it) */
    char code[32];    /**< FAIL/REJECT: a code of codes.h (decode_error, invalid_request...) */
    char message[512];
} gq_admit_t;

/** Parsed templates, kept while their file is unchanged (parsing one costs more than binding
 * it). Owned by the caller; gq_admit_cache_release frees it. */
#define GQ_ADMIT_CACHE_MAX 32
typedef struct gq_admit_cache {
    struct {
        char name[129];
        json_t *tmpl;           /**< NULL: empty slot */
        bool builtin;           /**< from the binary: never changes */
        int64_t mtime_ns, size; /**< of the file it was read from */
        uint64_t ino;
    } e[GQ_ADMIT_CACHE_MAX];
    size_t next; /**< the slot to reuse when full */
} gq_admit_cache_t;

void gq_admit_cache_release(gq_admit_cache_t *c);

typedef struct gq_admit_cfg {
    const char *workflows_dir;
    int job_timeout_s;
    int32_t max_attempts;
    size_t max_message_bytes;     /**< larger messages fail as message_too_large (0: no limit) */
    gq_admit_cache_t *cache;      /**< may be NULL */
    const struct gq_guard *guard; /**< what a request may make ComfyUI do (guard.h); NULL:
                                       gq_guard_default(), which the worker's main sets */
} gq_admit_cfg_t;

/**
 * Admits the message (payload, and key when it is a uuid job id, may be NULL). *out is
 * initialised here; release it with gq_admit_release (ownership of its parts may be taken
 * first, setting them to NULL).
 */
void gq_admit_message(const void *payload, size_t len, const char *key_job_id,
                      const gq_admit_cfg_t *cfg, gq_admit_t *out);
void gq_admit_release(gq_admit_t *a);

/** The checkpoint a bound workflow loads (borrowed from wf), or NULL. */
const char *gq_admit_model_of(json_t *wf);

#endif
