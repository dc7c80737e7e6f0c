/**
 * @file genq_schema.h
 * @brief The C binding of the Avro contract in the .avsc files of schemas/.
 *
 * Messages are Avro single-object encoded: C3 01, the 8-byte little-endian CRC-64-AVRO
 * fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary datum.
 * avro-c offers neither canonical form nor fingerprint; avro_canon.c provides both.
 */
#ifndef GQ_SCHEMA_H
#define GQ_SCHEMA_H

#include "gq.h"
#include "buf.h"

#include <stdbool.h>

/** A string key/value pair (Avro map<string> entries). Both strings owned. */
typedef struct gq_kv {
    char *key;
    char *value;
} gq_kv_t;

/** A GenerationRequest. All char* are owned, NUL-terminated, and never NULL after a
 * successful decode unless documented as optional. */
typedef struct gq_request {
    char job_id[37];      /**< canonical lowercase uuid */
    int64_t submitted_at; /**< ms since the epoch */
    char *workflow;       /**< template name (a label when workflow_json is set) */
    char *workflow_json;  /**< optional (NULL): inline API-format workflow */
    char *prompt;
    char *negative_prompt;
    int32_t width, height;
    int64_t seed;
    int32_t steps;
    double cfg;
    char *sampler;
    char *scheduler;
    char *model; /**< optional (NULL): the template's checkpoint */
    int32_t batch_size;
    gq_kv_t *overrides; /**< "<node id or title>.<input>" -> JSON literal */
    size_t overrides_cnt;
    int32_t priority;
    char *source;         /**< tenant or calling service */
    int32_t max_attempts; /**< 0: not given (worker default) */
    int32_t timeout_s;    /**< 0: not given (template or worker default) */
    gq_kv_t *metadata;
    size_t metadata_cnt;
} gq_request_t;

/** The fields of GenerationRequest by index: their order in the .avsc (test_schema_prep
 * checks it), which is also the order of the Avro binary encoding. */
typedef enum gq_request_field {
    GQ_REQ_JOB_ID = 0,
    GQ_REQ_SUBMITTED_AT,
    GQ_REQ_WORKFLOW,
    GQ_REQ_WORKFLOW_JSON,
    GQ_REQ_PROMPT,
    GQ_REQ_NEGATIVE_PROMPT,
    GQ_REQ_WIDTH,
    GQ_REQ_HEIGHT,
    GQ_REQ_SEED,
    GQ_REQ_STEPS,
    GQ_REQ_CFG,
    GQ_REQ_SAMPLER,
    GQ_REQ_SCHEDULER,
    GQ_REQ_MODEL,
    GQ_REQ_BATCH_SIZE,
    GQ_REQ_OVERRIDES,
    GQ_REQ_PRIORITY,
    GQ_REQ_SOURCE,
    GQ_REQ_MAX_ATTEMPTS,
    GQ_REQ_TIMEOUT_S,
    GQ_REQ_METADATA,
    GQ_REQ_FIELD_CNT
} gq_request_field_t;

/** Limits gq_request_validate() enforces (the .avsc docs state them too). */
#define GQ_REQUEST_NAME_MAX 128     /**< workflow (a template file name) */
#define GQ_REQUEST_SAMPLER_MAX 64   /**< sampler, scheduler */
#define GQ_REQUEST_MODEL_MAX 255    /**< model: '/'-separated safe names */
#define GQ_REQUEST_PROMPT_MAX 65536 /**< prompt, negative_prompt, bytes */
#define GQ_REQUEST_WORKFLOW_JSON_MAX (1u << 20)
#define GQ_REQUEST_OVERRIDES_MAX 256
#define GQ_REQUEST_OVERRIDE_KEY_MAX 256
#define GQ_REQUEST_OVERRIDE_VALUE_MAX 65536
#define GQ_REQUEST_SOURCE_MAX 128
#define GQ_REQUEST_METADATA_MAX 64
#define GQ_REQUEST_METADATA_KEY_MAX 128
#define GQ_REQUEST_METADATA_VALUE_MAX 4096

typedef enum gq_job_status { GQ_JOB_SUCCEEDED = 0, GQ_JOB_FAILED = 1 } gq_job_status_t;

typedef struct gq_output {
    char *uri;
    char sha256[65];
    int64_t bytes;
    int32_t width, height;
    char *mime;
} gq_output_t;

/** A GenerationCompleted event. */
typedef struct gq_completed {
    char job_id[37];
    int32_t attempt;
    gq_job_status_t status;
    gq_output_t *outputs;
    size_t outputs_cnt;
    int64_t queue_ms, render_ms, total_ms;
    char *worker_id;
    bool has_error;
    char *error_code;    /**< set iff has_error */
    char *error_message; /**< set iff has_error */
    bool error_retryable;
    int64_t finished_at;
    char *model;       /**< optional (NULL) */
    char *source;      /**< optional (NULL) */
    gq_kv_t *metadata; /**< echoed from the request */
    size_t metadata_cnt;
} gq_completed_t;

/**
 * Loads and parses the embedded schemas. Idempotent and thread-safe; encode and decode call
 * it on first use, so calling it early only moves a (never expected) failure to startup.
 */
gq_status_t gq_schema_init(char *errstr, size_t errstr_size);
void gq_schema_shutdown(void);

/** The records of the contract, one .avsc each. */
typedef enum gq_schema_kind {
    GQ_SCHEMA_REQUEST = 0,   /**< GenerationRequest.avsc */
    GQ_SCHEMA_COMPLETED = 1, /**< GenerationCompleted.avsc */
    GQ_SCHEMA_PROGRESS = 2,  /**< GenerationProgress.avsc */
    GQ_SCHEMA_CANCEL = 3,    /**< CancelRequest.avsc */
    GQ_SCHEMA_KINDS
} gq_schema_kind_t;

/** Fingerprints (CRC-64-AVRO of the Parsing Canonical Form) of the current schemas. */
uint64_t gq_schema_request_fingerprint(void);
uint64_t gq_schema_completed_fingerprint(void);
uint64_t gq_schema_fingerprint(gq_schema_kind_t kind);

/**
 * Writer schemas. Besides its own schemas, a reader knows every released version compiled
 * in (schemas/history/), the .avsc files of a schema directory given here (GENQ_SCHEMA_DIR:
 * newer writer schemas, before a genq built with them is deployed), and, with a registry,
 * the schemas of Confluent-framed messages. Data written with any of them is resolved into
 * the reader's schema by the Avro rules (defaults filled, fields skipped, promotions,
 * aliases, enum defaults). Loading a directory twice adds what is new.
 */
gq_status_t gq_schema_load_dir(const char *dir, char *errstr, size_t errstr_size);
/** The writer schemas known by fingerprint: fills up to max entries, returns how many there
 * are. labels stay valid until gq_schema_shutdown. */
size_t gq_schema_writers(uint64_t *fps, const char **labels, size_t max);

/** How messages are framed. */
typedef enum gq_framing {
    GQ_FRAMING_SINGLE_OBJECT = 0, /**< C3 01, 8-byte LE fingerprint, datum (the default) */
    GQ_FRAMING_CONFLUENT = 1,     /**< 00, 4-byte BE Schema Registry id, datum */
} gq_framing_t;

/** Parses "single-object" or "confluent". */
gq_status_t gq_framing_parse(const char *s, gq_framing_t *out);

/**
 * Turns the single-object encoded message at msg->data + start (up to msg->len) into the
 * given framing in place (Confluent: 5 bytes shorter). GQ_ERR_INVALID when there is no
 * message there or schema_id is negative.
 */
gq_status_t gq_schema_reframe(gq_buf_t *msg, size_t start, gq_framing_t framing, int32_t schema_id);

/**
 * The Schema Registry (Confluent REST API; Apicurio's ccompat/v7 speaks it). One per process:
 * readers use it for Confluent-framed messages (magic byte 0 and a schema id), writers to
 * register or look up their schema id.
 */
typedef struct gq_registry_conf {
    const char *url;      /**< base URL, e.g. http://host:8081 or .../apis/ccompat/v7; user
                               info in it (https://user:pass@host) is basic auth */
    const char *username; /**< basic auth (overrides the URL's) */
    const char *password;
    const char *ca_file; /**< PEM bundle to verify an https registry with */
    int timeout_ms;      /**< per request (0: 5000) */
    /** Nonzero: a reader never waits on the registry. A schema id not cached yet is fetched
     * in the background, and decoding answers GQ_ERR_TRANSIENT until it is there (the
     * worker's admission retries such a message later). Zero: fetched while decoding. */
    int async;
} gq_registry_conf_t;

/** Sets (or with a NULL/empty url, turns off) the registry. Call before decoding. */
gq_status_t gq_schema_registry_set(const gq_registry_conf_t *conf, char *errstr,
                                   size_t errstr_size);
/**
 * The registry's id for the current schema of requests (completed false) or completion
 * events (true) under subject, registering it there when it is not (POST
 * /subjects/<subject>/versions: the registry answers the existing id for a schema it has).
 * The topic-name strategy's subject is "<topic>-value". GQ_ERR_TRANSIENT when the
 * registry cannot be reached, GQ_ERR_INVALID when it refuses the schema (incompatible).
 */
gq_status_t gq_schema_registry_id(bool completed, const char *subject, int32_t *id, char *errstr,
                                  size_t errstr_size);
/** gq_schema_registry_id for the current schema of any kind. */
gq_status_t gq_schema_registry_id_of(gq_schema_kind_t kind, const char *subject, int32_t *id,
                                     char *errstr, size_t errstr_size);
/** Registers (or looks up) the schema given as JSON text under subject; *id is its id. */
gq_status_t gq_schema_registry_register(const char *subject, const char *schema, size_t len,
                                        int32_t *id, char *errstr, size_t errstr_size);

/** Fills defaults for every field (as the .avsc defaults say), a new job_id and
 * submitted_at = now. */
void gq_request_init(gq_request_t *req);
/** Every field at its .avsc default, job_id "" and submitted_at 0 (release it too). */
void gq_request_defaults(gq_request_t *req);
void gq_request_release(gq_request_t *req);
/** Checks a request's values (uuid, sizes, steps, names...); errstr says which field. */
gq_status_t gq_request_validate(const gq_request_t *req, char *errstr, size_t errstr_size);
/** Checks one field of req with the rules of gq_request_validate() (which checks every field
 * in schema order); the other fields are not looked at. */
gq_status_t gq_request_validate_field(const gq_request_t *req, gq_request_field_t field,
                                      char *errstr, size_t errstr_size);

/**
 * Appends the single-object encoding of req to out (out is unchanged on failure). It does
 * not validate: call gq_request_validate() first. A NULL string field that has a default in
 * the .avsc (workflow, negative_prompt, sampler, scheduler, source) is encoded as that
 * default; a NULL prompt is an error; max_attempts/timeout_s 0 are encoded as null; a map
 * with a NULL key or value, or a key twice, is an error.
 * @remark Writes the Avro binary encoding directly (no avro-c value is built); the bytes are
 * those avro-c writes for the same request (test_schema_prep compares them).
 */
gq_status_t gq_request_encode(const gq_request_t *req, gq_buf_t *out, char *errstr,
                              size_t errstr_size);

/**
 * A prepared request: one request kept encoded, whose fields can be changed one at a time
 * (by index) at the cost of encoding that field alone, for a producer that publishes many
 * requests that differ in a few fields (a new job_id, a seed, submitted_at):
 *
 *   gq_request_prep_t *prep = gq_request_prep_new(&req, errstr, sizeof(errstr));
 *   for (...) {
 *       gq_request_prep_new_job_id(prep, errstr, sizeof(errstr));
 *       gq_request_prep_set_int(prep, GQ_REQ_SEED, seed + i, errstr, sizeof(errstr));
 *       gq_producer_send_prepared(p, prep, errstr, sizeof(errstr));
 *   }
 *   gq_request_prep_destroy(prep);
 *
 * Every value is validated when it is set (gq_request_validate_field), so the encoding is
 * always that of a valid request. A setter that fails leaves the prepared request unchanged.
 * Not thread-safe: one prepared request per thread.
 */
typedef struct gq_request_prep gq_request_prep_t;

/** Validates and encodes req (which stays the caller's); NULL with errstr on failure. */
gq_request_prep_t *gq_request_prep_new(const gq_request_t *req, char *errstr, size_t errstr_size);
/** NULL-safe. */
void gq_request_prep_destroy(gq_request_prep_t *prep);
/**
 * Sets a string field (job_id, workflow, workflow_json, prompt, negative_prompt, sampler,
 * scheduler, model, source); s is copied. NULL means null for the optional ones
 * (workflow_json, model) and the .avsc default for the others, except prompt and job_id.
 */
gq_status_t gq_request_prep_set_str(gq_request_prep_t *prep, gq_request_field_t field,
                                    const char *s, char *errstr, size_t errstr_size);
/** Sets an int or long field (submitted_at, width, height, seed, steps, batch_size, priority,
 * and max_attempts/timeout_s where 0 means null); int fields must fit in 32 bits. */
gq_status_t gq_request_prep_set_int(gq_request_prep_t *prep, gq_request_field_t field, int64_t v,
                                    char *errstr, size_t errstr_size);
/** Sets cfg. */
gq_status_t gq_request_prep_set_double(gq_request_prep_t *prep, gq_request_field_t field, double v,
                                       char *errstr, size_t errstr_size);
/** Sets overrides or metadata to cnt entries (copied; kv may be NULL when cnt is 0). */
gq_status_t gq_request_prep_set_map(gq_request_prep_t *prep, gq_request_field_t field,
                                    const gq_kv_t *kv, size_t cnt, char *errstr,
                                    size_t errstr_size);
/** Gives the request a new random (v4) job_id; fails only without kernel entropy. */
gq_status_t gq_request_prep_new_job_id(gq_request_prep_t *prep, char *errstr, size_t errstr_size);
/** The current job_id (canonical uuid, NUL-terminated; valid until the next change). */
const char *gq_request_prep_job_id(const gq_request_prep_t *prep);
/** The current single-object encoding, *len bytes; valid until the next change. */
const void *gq_request_prep_data(const gq_request_prep_t *prep, size_t *len);
/** The request's priority as it stands (a producer routes by it to a priority lane). */
int32_t gq_request_prep_priority(const gq_request_prep_t *prep);
/**
 * Decodes a single-object encoded (or, with a registry, Confluent-framed) request into req
 * (initialised by this call; release it even on failure). A writer schema other than the
 * current one is resolved into it (gq_schema_load_dir). GQ_ERR_TRANSIENT: the writer's
 * schema is in the registry, which cannot be asked now: try again later. Safe on any byte string:
 * lengths are checked against the input before avro-c allocates anything. On bad input, returns
 * GQ_ERR_INVALID with errstr naming the problem (and the field path), and req->job_id is set if the
 * job id could still be read and is a canonical uuid (job_id is the first field in every version of
 * the schema, so this works even for an unknown fingerprint); otherwise it is "". Success does not
 * mean the values are acceptable: call gq_request_validate().
 */
gq_status_t gq_request_decode(const void *data, size_t len, gq_request_t *req, char *errstr,
                              size_t errstr_size);
/**
 * Reads a request from a JSON object with the .avsc field names. A missing field takes its
 * default (job_id: a new uuid; submitted_at: now), except prompt, which is required.
 * Unknown fields and wrong types are errors that name the field. overrides values may be
 * strings (taken as the JSON literal text) or any other JSON value (serialised). req is
 * initialised by this call: release it even on failure. Does not validate.
 */
gq_status_t gq_request_from_json(const char *json, size_t len, gq_request_t *req, char *errstr,
                                 size_t errstr_size);

/**
 * The request as a JSON object with the .avsc field names (the inverse of
 * gq_request_from_json: overrides values are the JSON literal texts, as strings; an optional
 * field not given is null). A new reference, NULL when out of memory or when a string is not
 * valid UTF-8 (a validated request's strings are).
 */
struct json_t;
struct json_t *gq_request_to_json(const gq_request_t *req);

/** Zeroes ev (status SUCCEEDED, no outputs, no error, every string NULL). */
void gq_completed_init(gq_completed_t *ev);
void gq_completed_release(gq_completed_t *ev);
/** Appends the single-object encoding of ev to out; worker_id, each output's uri and mime,
 * and error_code/error_message when has_error must not be NULL (gq_schema_reframe() turns
 * it into the Confluent framing). */
gq_status_t gq_completed_encode(const gq_completed_t *ev, gq_buf_t *out, char *errstr,
                                size_t errstr_size);
/** Decodes like gq_request_decode() (same guarantees); ev is initialised by this call. */
gq_status_t gq_completed_decode(const void *data, size_t len, gq_completed_t *ev, char *errstr,
                                size_t errstr_size);
/** Appends ev as one JSON object (no newline), for `genq events`: the .avsc field names
 * in .avsc order, status as "SUCCEEDED"/"FAILED", error null or {code, message, retryable},
 * model and source null or a string. */
gq_status_t gq_completed_to_json(const gq_completed_t *ev, gq_buf_t *out);

const char *gq_job_status_name(gq_job_status_t st);

/* ---- GenerationProgress ---- */

/** ProgressState, in .avsc symbol order. */
typedef enum gq_progress_state {
    GQ_PROGRESS_QUEUED = 0,
    GQ_PROGRESS_LOADING,
    GQ_PROGRESS_RUNNING,
    GQ_PROGRESS_COLLECTING,
    GQ_PROGRESS_OTHER, /**< a state a later version adds (the enum's default) */
} gq_progress_state_t;

/** A GenerationProgress event. */
typedef struct gq_progress {
    char job_id[37];
    int32_t attempt;
    int64_t seq;
    int64_t at; /**< ms since the epoch */
    gq_progress_state_t state;
    int32_t queue_position; /**< < 0: null (not QUEUED) */
    char *node;             /**< optional (NULL) */
    int32_t step, max_steps, nodes_done, nodes_total, previews;
    char *worker_id; /**< NULL is encoded as "" */
} gq_progress_t;

/** Zeroes ev (state QUEUED, queue_position null, no strings). */
void gq_progress_init(gq_progress_t *ev);
void gq_progress_release(gq_progress_t *ev);
/** Appends the single-object encoding of ev to out (gq_schema_reframe() for Confluent's). */
gq_status_t gq_progress_encode(const gq_progress_t *ev, gq_buf_t *out, char *errstr,
                               size_t errstr_size);
/** Decodes like gq_request_decode() (same guarantees); ev is initialised by this call. */
gq_status_t gq_progress_decode(const void *data, size_t len, gq_progress_t *ev, char *errstr,
                               size_t errstr_size);
/** Appends ev as one JSON object (no newline): the .avsc field names in .avsc order, state as
 * its symbol, queue_position and node null or a value. */
gq_status_t gq_progress_to_json(const gq_progress_t *ev, gq_buf_t *out);
const char *gq_progress_state_name(gq_progress_state_t st);

/* ---- CancelRequest ---- */

#define GQ_CANCEL_REASON_MAX 512 /**< bytes of reason */
#define GQ_CANCEL_BY_MAX 128     /**< bytes of requested_by */
#define GQ_CANCEL_SOURCE_MAX GQ_REQUEST_SOURCE_MAX

/** A CancelRequest. */
typedef struct gq_cancel {
    char job_id[37];      /**< canonical lowercase uuid */
    int64_t requested_at; /**< ms since the epoch */
    char *reason;         /**< NULL is encoded as "" */
    char *requested_by;   /**< NULL is encoded as "" */
    char *source;         /**< optional (NULL: the cancel applies whatever the job's source) */
} gq_cancel_t;

/** Zeroes c (job_id "", requested_at 0, every string NULL). */
void gq_cancel_init(gq_cancel_t *c);
void gq_cancel_release(gq_cancel_t *c);
/** Checks job_id (a canonical uuid), requested_at (>= 0) and the strings' sizes (the limits
 * above; UTF-8 without NUL). errstr names the field. */
gq_status_t gq_cancel_validate(const gq_cancel_t *c, char *errstr, size_t errstr_size);
/** Appends the single-object encoding of c to out. Does not validate. */
gq_status_t gq_cancel_encode(const gq_cancel_t *c, gq_buf_t *out, char *errstr, size_t errstr_size);
/** Decodes like gq_request_decode() (same guarantees); c is initialised by this call. Does
 * not validate: a cancel from Kafka is untrusted, call gq_cancel_validate(). */
gq_status_t gq_cancel_decode(const void *data, size_t len, gq_cancel_t *c, char *errstr,
                             size_t errstr_size);
/** Appends c as one JSON object (no newline), the .avsc field names, source null or a string. */
gq_status_t gq_cancel_to_json(const gq_cancel_t *c, gq_buf_t *out);

#endif
