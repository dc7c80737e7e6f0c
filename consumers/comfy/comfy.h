/**
 * @file comfy.h
 * @brief ComfyUI client: HTTP (libcurl) and the WebSocket event stream.
 *
 * One gq_comfy_t talks to one ComfyUI base URL (http:// or https://; a path prefix is
 * allowed). It owns one WebSocket connection registered under a client_id; prompts are
 * submitted with that client_id so their events come to us. Not thread-safe: use one per
 * thread.
 *
 * Error classes: connection failures, timeouts and 5xx are GQ_ERR_TRANSIENT; 4xx answers
 * (validation errors with node_errors) are GQ_ERR_INVALID; errstr always says which.
 */
#ifndef GQ_COMFY_H
#define GQ_COMFY_H

#include "gq.h"
#include "buf.h"

#include <stdbool.h>
#include <jansson.h>

typedef struct gq_comfy gq_comfy_t;

typedef struct gq_comfy_opts {
    const char *base_url;      /**< e.g. http://127.0.0.1:8188 (copied) */
    const char *client_id;     /**< WebSocket clientId and prompts' client_id (copied) */
    int connect_timeout_ms;    /**< default 5000 */
    int request_timeout_ms;    /**< default 30000 (per HTTP request) */
    size_t max_response_bytes; /**< JSON responses (default 64 MiB) */
    size_t max_ws_message;     /**< largest WebSocket message accepted (default 8 MiB) */
    const char *ca_file;       /**< PEM CA bundle for https (copied; default: the system's) */
    int ws_ping_interval_ms;   /**< ping after this much WebSocket silence (default 20000,
                                    < 0: never); no answer within request_timeout_ms drops it */
} gq_comfy_opts_t;

/** Creates a client. Does not connect yet. */
gq_comfy_t *gq_comfy_new(const gq_comfy_opts_t *opts, char *errstr, size_t errstr_size);
void gq_comfy_destroy(gq_comfy_t *c);

/* ---- WebSocket ---- */

/** Connects (or reconnects) the WebSocket /ws?clientId=...; idempotent when connected. */
gq_status_t gq_comfy_ws_connect(gq_comfy_t *c, char *errstr, size_t errstr_size);
bool gq_comfy_ws_connected(const gq_comfy_t *c);
void gq_comfy_ws_close(gq_comfy_t *c);

typedef enum gq_comfy_ev_type {
    GQ_COMFY_EV_OTHER = 0,   /**< an event we do not use (progress_state, unknown types, and
                                  execution_error "ExecutionBlocked", which does not end the
                                  run): ignore it */
    GQ_COMFY_EV_STATUS,      /**< queue_remaining */
    GQ_COMFY_EV_START,       /**< execution_start */
    GQ_COMFY_EV_CACHED,      /**< execution_cached */
    GQ_COMFY_EV_EXECUTING,   /**< executing with a node */
    GQ_COMFY_EV_PROGRESS,    /**< progress value/max */
    GQ_COMFY_EV_EXECUTED,    /**< a node produced UI output */
    GQ_COMFY_EV_SUCCESS,     /**< execution_success */
    GQ_COMFY_EV_ERROR,       /**< execution_error */
    GQ_COMFY_EV_INTERRUPTED, /**< execution_interrupted */
    GQ_COMFY_EV_DONE,        /**< executing with node null: finished, history written */
    GQ_COMFY_EV_PREVIEW,     /**< a binary preview image (a sampler step's latent preview);
                                  prompt_id only when ComfyUI sent metadata with it */
} gq_comfy_ev_type_t;

/** One WebSocket event, with bounded copies of the fields genq uses. */
typedef struct gq_comfy_event {
    gq_comfy_ev_type_t type;
    char prompt_id[64]; /**< "" when the message carries none */
    char node[64];
    double value, max;           /**< progress */
    int queue_remaining;         /**< status */
    int nodes;                   /**< execution_cached: how many nodes it lists */
    char exception_type[128];    /**< execution_error */
    char exception_message[512]; /**< execution_error (first line(s), truncated) */
    char node_type[64];          /**< execution_error / interrupted */
    int64_t timestamp;           /**< ms since the epoch when the message has one, else 0 */
    char name[32];               /**< the message type as sent, e.g. "progress_state" */
} gq_comfy_event_t;

/**
 * Waits up to timeout_ms for the next event (any type, GQ_COMFY_EV_OTHER included): a text
 * message, or a binary preview image (GQ_COMFY_EV_PREVIEW, nothing of the image kept); skips
 * other binary frames and answers pings. Returns GQ_OK with *ev filled, GQ_ERR_TIMEOUT if
 * nothing arrived, GQ_ERR_TRANSIENT if the connection dropped: closed by the server, reset, a
 * protocol error, a message over max_ws_message, or no answer to our keepalive ping (call
 * gq_comfy_ws_connect again; events sent meanwhile are lost, so check gq_comfy_prompt_state).
 * Malformed messages are skipped (logged at debug), never fatal. A frame split across reads
 * stays buffered between calls.
 */
gq_status_t gq_comfy_ws_next(gq_comfy_t *c, int timeout_ms, gq_comfy_event_t *ev, char *errstr,
                             size_t errstr_size);

/**
 * Until until_mono (gq_mono_ms), gq_comfy_wait does not wake for the WebSocket's bytes: they
 * wait in the socket for the first gq_comfy_ws_next after it, or before it on a turn woken by
 * something else, and gq_comfy_ws_wake says when it ends. 0 or a time past: none.
 */
void gq_comfy_ws_hold(gq_comfy_t *c, int64_t until_mono);

/* ---- HTTP ---- */

/**
 * POST /prompt with {"prompt": workflow, "client_id", "prompt_id"}. workflow is borrowed.
 * prompt_id must be a canonical lowercase uuid (newer ComfyUI insists) and workflow an
 * API-format graph (a UI-format file is refused here, GQ_ERR_INVALID, before any request).
 * GQ_OK: queued. GQ_ERR_INVALID: 400 (errstr summarises error.type/message and every
 * node_errors entry "node 3 (KSampler): Value 0 smaller than min of 1: steps"), or 200 with
 * non-empty node_errors (some outputs would be skipped; the prompt was queued, and this call
 * deletes/interrupts it before returning). GQ_ERR_TRANSIENT: unreachable/5xx/timeout.
 */
gq_status_t gq_comfy_submit(gq_comfy_t *c, const char *prompt_id, json_t *workflow, char *errstr,
                            size_t errstr_size);

typedef enum gq_comfy_state {
    GQ_COMFY_UNKNOWN = 0, /**< ComfyUI does not know the prompt (e.g. it restarted) */
    GQ_COMFY_PENDING,     /**< in queue_pending */
    GQ_COMFY_RUNNING,     /**< in queue_running */
    GQ_COMFY_FINISHED,    /**< history entry exists (see the result for success/error) */
} gq_comfy_state_t;

/** One file a node left in /history: an image, an animation, a video, a sound... */
typedef struct gq_comfy_image {
    char filename[256];
    char subfolder[256];
    char type[16]; /**< output, temp (previews: not results), input */
    char node[64];
    char kind[16]; /**< the ui key it was listed under: images, audio, video, gifs... */
    bool animated; /**< the node said "animated": one file of many frames */
} gq_comfy_image_t;

typedef struct gq_comfy_result {
    bool success;         /**< status_str "success" and completed */
    bool interrupted;     /**< messages end in execution_interrupted */
    char error_type[128]; /**< exception_type from execution_error, else "" */
    char error_message[512];
    char error_node[64];      /**< node id of execution_error / execution_interrupted */
    char error_node_type[64]; /**< its class_type */
    int64_t start_ms, end_ms; /**< timestamps of execution_start and the last message */
    gq_comfy_image_t *images; /**< owned; every file of every output node (all ui keys whose
                                   entries are {filename, subfolder, type}), node order */
    size_t images_cnt;
} gq_comfy_result_t;

void gq_comfy_result_release(gq_comfy_result_t *r);

/**
 * Where is this prompt? Checks GET /history/{id} first, then GET /queue, then the history
 * once more (it may have finished in between). GQ_OK for every state, UNKNOWN included.
 * When FINISHED, fills *result (may be NULL if not wanted; the caller releases it).
 */
gq_status_t gq_comfy_prompt_state(gq_comfy_t *c, const char *prompt_id, gq_comfy_state_t *state,
                                  gq_comfy_result_t *result, char *errstr, size_t errstr_size);

/** GET /history/{id}: GQ_ERR_NOTFOUND when {} (unknown or not finished yet). */
gq_status_t gq_comfy_history(gq_comfy_t *c, const char *prompt_id, gq_comfy_result_t *result,
                             char *errstr, size_t errstr_size);

/**
 * GET /view for one image into out (a bounded buffer, reset first and left empty on failure:
 * GQ_ERR_TOOBIG beyond out->max). GQ_ERR_NOTFOUND on 404, GQ_ERR_INVALID when the server
 * refuses the name (400/403). filename/subfolder/type are URL-encoded; they are never used
 * as local paths here.
 */
gq_status_t gq_comfy_view(gq_comfy_t *c, const gq_comfy_image_t *img, gq_buf_t *out, char *errstr,
                          size_t errstr_size);

/** POST /interrupt {"prompt_id"} (only that prompt, if it is running). */
gq_status_t gq_comfy_interrupt(gq_comfy_t *c, const char *prompt_id, char *errstr,
                               size_t errstr_size);
/** POST /queue {"delete": [prompt_id]} (a pending prompt). */
gq_status_t gq_comfy_dequeue(gq_comfy_t *c, const char *prompt_id, char *errstr,
                             size_t errstr_size);
/** POST /free {"unload_models": unload, "free_memory": free_memory}. */
gq_status_t gq_comfy_free(gq_comfy_t *c, bool unload, bool free_memory, char *errstr,
                          size_t errstr_size);

typedef struct gq_comfy_stats {
    char version[32];
    int64_t vram_total, vram_free; /**< first device, bytes */
    char device[128];
} gq_comfy_stats_t;

/** GET /system_stats: used as the health check. */
gq_status_t gq_comfy_system_stats(gq_comfy_t *c, gq_comfy_stats_t *st, char *errstr,
                                  size_t errstr_size);

/* ---- asynchronous operations ----
 *
 * The calls above block. A worker loop starts the same calls as operations instead, waits
 * for them together with its other descriptors in gq_comfy_wait, and takes finished ones from
 * gq_comfy_op_next_done. Several operations run at once on separate keep-alive connections
 * (libcurl's multi interface). Each operation's outcome is in the op itself; the classes
 * are those of the blocking calls. */

typedef enum gq_comfy_op_kind {
    GQ_COMFY_OP_SUBMIT,  /**< POST /prompt (see gq_comfy_submit) */
    GQ_COMFY_OP_HISTORY, /**< GET /history/{id} (see gq_comfy_history): result */
    GQ_COMFY_OP_STATE,   /**< history, queue, history (see gq_comfy_prompt_state): state, result */
    GQ_COMFY_OP_VIEW,    /**< GET /view of one file: body */
    GQ_COMFY_OP_INTERRUPT, /**< POST /interrupt {"prompt_id"} */
    GQ_COMFY_OP_DEQUEUE,   /**< POST /queue {"delete": [id]} */
    GQ_COMFY_OP_CANCEL,    /**< DEQUEUE, then INTERRUPT: the prompt, queued or running */
    GQ_COMFY_OP_FREE,      /**< POST /free */
    GQ_COMFY_OP_STATS,     /**< GET /system_stats: stats */
    GQ_COMFY_OP_RAW,       /**< any request: http_code and body, status GQ_OK whatever the code */
} gq_comfy_op_kind_t;

typedef struct gq_comfy_op gq_comfy_op_t;

/** An operation. The caller reads the public part once gq_comfy_op_next_done returned it. */
struct gq_comfy_op {
    gq_comfy_op_kind_t kind;
    uint64_t tag; /**< the caller's (e.g. a job's serial), returned unchanged */
    int idx;      /**< the caller's (e.g. which output file), returned unchanged */
    gq_status_t status;
    char errstr[768];
    long http_code;                /**< of the last request made */
    gq_comfy_state_t state;        /**< STATE */
    gq_comfy_result_t result;      /**< HISTORY, and STATE when FINISHED */
    gq_buf_t body;                 /**< VIEW (the file) and RAW */
    gq_comfy_stats_t stats;        /**< STATS */
    int64_t elapsed_ms;            /**< from start to done */
    struct gq_comfy_op_priv *priv; /**< the client's */
};

/**
 * Starts an operation; never blocks. Returns NULL only when out of memory. The op belongs
 * to the client until gq_comfy_op_next_done hands it out; then to the caller, who frees it
 * with gq_comfy_op_destroy. Strings and the workflow are copied; max_bytes bounds a VIEW.
 */
gq_comfy_op_t *gq_comfy_op_submit(gq_comfy_t *c, const char *prompt_id, json_t *workflow,
                                  uint64_t tag);
gq_comfy_op_t *gq_comfy_op_history(gq_comfy_t *c, const char *prompt_id, uint64_t tag);
gq_comfy_op_t *gq_comfy_op_state(gq_comfy_t *c, const char *prompt_id, uint64_t tag);
gq_comfy_op_t *gq_comfy_op_view(gq_comfy_t *c, const gq_comfy_image_t *img, size_t max_bytes,
                                uint64_t tag, int idx);
gq_comfy_op_t *gq_comfy_op_interrupt(gq_comfy_t *c, const char *prompt_id, uint64_t tag);
gq_comfy_op_t *gq_comfy_op_dequeue(gq_comfy_t *c, const char *prompt_id, uint64_t tag);
/**
 * Takes a prompt back: removes it from the queue, then interrupts it in case it is running.
 * Its status is the interrupt's. ComfyUI forgets an interrupt that lands just before a prompt
 * starts, so only asking afterwards (GQ_COMFY_OP_STATE) tells whether it worked.
 */
gq_comfy_op_t *gq_comfy_op_cancel(gq_comfy_t *c, const char *prompt_id, uint64_t tag);
gq_comfy_op_t *gq_comfy_op_free(gq_comfy_t *c, bool unload, bool free_memory, uint64_t tag);
gq_comfy_op_t *gq_comfy_op_stats(gq_comfy_t *c, uint64_t tag);
gq_comfy_op_t *gq_comfy_op_raw(gq_comfy_t *c, const char *method, const char *path,
                               const char *query, const char *body, size_t max_bytes, uint64_t tag);
void gq_comfy_op_destroy(gq_comfy_op_t *op);

/** Operations started and not yet handed out by gq_comfy_op_next_done. */
size_t gq_comfy_ops_pending(const gq_comfy_t *c);

/**
 * The client's multi handle as a host for other modules' libcurl transfers (xfer.h), so
 * they progress in gq_comfy_wait like the client's own. They must be aborted before
 * gq_comfy_destroy.
 */
struct gq_xfer_host *gq_comfy_xfer_host(gq_comfy_t *c);

/** An extra descriptor for gq_comfy_wait (the same layout as curl_waitfd). */
typedef struct gq_comfy_waitfd {
    int fd;
    short events;  /**< POLLIN, POLLOUT */
    short revents; /**< set by gq_comfy_wait */
} gq_comfy_waitfd_t;

/**
 * The one place a loop blocks: waits up to timeout_ms for the client's HTTP transfers, its
 * WebSocket (when connected) and the extra descriptors, then advances the transfers. Returns
 * at once when an operation is already done. After it, take finished operations with
 * gq_comfy_op_next_done and read the WebSocket with gq_comfy_ws_next(c, 0, ...).
 */
void gq_comfy_wait(gq_comfy_t *c, gq_comfy_waitfd_t *extra, unsigned extra_cnt, int timeout_ms);

/** The next finished operation (now the caller's), or NULL. */
gq_comfy_op_t *gq_comfy_op_next_done(gq_comfy_t *c);

/**
 * When the WebSocket next needs a turn for its keepalive (a ping to send or an answer
 * overdue), as a gq_mono_ms time; INT64_MAX when not connected or pings are off.
 */
int64_t gq_comfy_ws_wake(const gq_comfy_t *c);

#endif
