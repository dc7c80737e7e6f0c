/**
 * @file comfy_int.h
 * @brief Internals of the ComfyUI client, shared by its files and by tests/unit/test_comfy.c.
 *
 * Everything here is pure (no sockets, no curl handles) except the struct gq_comfy itself,
 * so the unit tests can drive the WebSocket codec and the JSON parsers with crafted input.
 */
#ifndef GQ_COMFY_INT_H
#define GQ_COMFY_INT_H

#include "comfy.h"
#include "xfer.h"

#include <stdbool.h>
#include <curl/curl.h>

#define GQ_COMFY_URL_MAX 1024
#define GQ_COMFY_HOST_MAX 300
#define GQ_COMFY_WS_MAX_MESSAGE (8u * 1024 * 1024)
/** Bytes read from the socket per curl_easy_recv call. */
#define GQ_COMFY_WS_READ_CHUNK 16384
/** Largest WebSocket frame header: 2 + 8 (length) + 4 (mask). */
#define GQ_COMFY_WS_HEADER_MAX 14
/** The upgrade response's header block; aiohttp sends about 200 bytes. */
#define GQ_COMFY_WS_HANDSHAKE_MAX 16384

/* ---- base URL ---- */

/** A parsed, normalised base URL. */
typedef struct gq_comfy_base {
    char url[GQ_COMFY_URL_MAX];       /**< scheme://host[:port][/prefix], no trailing '/' */
    char host_hdr[GQ_COMFY_HOST_MAX]; /**< value for the Host header: host[:port] */
    char prefix[GQ_COMFY_URL_MAX];    /**< path prefix, "" or "/comfy" (no trailing '/') */
    bool tls;
} gq_comfy_base_t;

/**
 * Checks and normalises a base URL: http or https, a host, an optional path prefix; no
 * query, fragment or credentials. GQ_ERR_INVALID with the reason otherwise.
 */
gq_status_t gq_comfy_base_parse(const char *url, gq_comfy_base_t *b, char *errstr,
                                size_t errstr_size);

/**
 * Writes base + path (+ '?' + query when query is not NULL) into out. path starts with '/'
 * and, like query, must already be URL-encoded. GQ_ERR_TOOBIG if out is too small.
 */
gq_status_t gq_comfy_url_join(const char *base, const char *path, const char *query, char *out,
                              size_t out_size);

/* ---- WebSocket frames (RFC 6455) ---- */

enum {
    GQ_WS_OP_CONT = 0x0,
    GQ_WS_OP_TEXT = 0x1,
    GQ_WS_OP_BINARY = 0x2,
    GQ_WS_OP_CLOSE = 0x8,
    GQ_WS_OP_PING = 0x9,
    GQ_WS_OP_PONG = 0xA,
};

/**
 * Incremental decoder: bytes go in with feed() in pieces of any size, complete messages
 * (reassembled from fragments) and control frames come out of next().
 */
typedef struct gq_comfy_wsdec {
    gq_buf_t in; /**< received bytes; in.data[pos..len) not decoded yet */
    size_t pos;
    gq_buf_t msg;       /**< payload of a fragmented message being reassembled */
    int msg_op;         /**< opcode of that message, 0 when none is in progress */
    bool msg_done;      /**< msg was handed out: reset it on the next call */
    size_t max_msg;     /**< largest message accepted (its payload, all fragments) */
    bool reject_masked; /**< a client must reject masked frames from the server */
} gq_comfy_wsdec_t;

/** One decoded unit; data points into the decoder and is valid until its next call. */
typedef struct gq_comfy_wsmsg {
    int opcode; /**< 0: nothing complete yet; else TEXT/BINARY/CLOSE/PING/PONG */
    const unsigned char *data;
    size_t len;
} gq_comfy_wsmsg_t;

void gq_comfy_wsdec_init(gq_comfy_wsdec_t *d, size_t max_msg, bool reject_masked);
void gq_comfy_wsdec_release(gq_comfy_wsdec_t *d);
/** Forgets all buffered state (a new connection). */
void gq_comfy_wsdec_reset(gq_comfy_wsdec_t *d);
/** Appends received bytes (at most GQ_COMFY_WS_READ_CHUNK between two drained next() calls). */
gq_status_t gq_comfy_wsdec_feed(gq_comfy_wsdec_t *d, const void *p, size_t n);
/**
 * Decodes the next message. GQ_OK with m->opcode 0 when more bytes are needed.
 * GQ_ERR_INVALID on a protocol error, GQ_ERR_TOOBIG when a message exceeds max_msg (checked
 * from the frame header, before its payload arrives): either way the connection is unusable.
 */
gq_status_t gq_comfy_wsdec_next(gq_comfy_wsdec_t *d, gq_comfy_wsmsg_t *m, char *errstr,
                                size_t errstr_size);

/**
 * Appends one frame to out. mask: 4 bytes for a masked (client) frame, NULL for unmasked.
 * Control frames (opcode >= 8) must have fin set and at most 125 bytes (GQ_ERR_INVALID).
 */
gq_status_t gq_comfy_wsframe_encode(gq_buf_t *out, int opcode, bool fin, const void *payload,
                                    size_t len, const unsigned char *mask);

/* ---- WebSocket handshake ---- */

/** A fresh random Sec-WebSocket-Key (base64 of 16 random bytes). */
gq_status_t gq_comfy_ws_key_new(char out[25]);
/** Sec-WebSocket-Accept for key: base64(SHA-1(key + the RFC 6455 GUID)). */
gq_status_t gq_comfy_ws_accept(const char *key, char out[29]);
/**
 * Checks the upgrade response head (status line and headers up to and including the empty
 * line): 101, Upgrade: websocket, Connection: upgrade, the right Sec-WebSocket-Accept, and no
 * extension or subprotocol (we offered none). On a non-101 answer *http_code has its code.
 */
gq_status_t gq_comfy_ws_check_upgrade(const char *head, size_t len, const char *key,
                                      long *http_code, char *errstr, size_t errstr_size);

/* ---- JSON ---- */

/**
 * Parses a JSON document from ComfyUI. Integers beyond int64 (seeds up to 2^64-1) become
 * reals and Python's NaN/Infinity tokens become null, so such values never make a whole
 * response unreadable. Returns a new reference or NULL with errstr set.
 */
json_t *gq_comfy_json_parse(const char *text, size_t len, char *errstr, size_t errstr_size);
/** An integer or integral real as int64; false when absent, not a number or out of range. */
bool gq_comfy_json_i64(const json_t *v, int64_t *out);
/** Copies a string value into dst, cutting at a UTF-8 boundary; "" when v is not a string. */
void gq_comfy_json_str_copy(char *dst, size_t dst_size, const json_t *v);

/** Parses one WebSocket text message. GQ_ERR_INVALID when it is not a {type, data} object. */
/** A binary message: true (and *ev a GQ_COMFY_EV_PREVIEW) when it is a preview image, event
 * type 1, or 4 with its metadata (the prompt id is read from there). */
bool gq_comfy_event_binary(const unsigned char *data, size_t len, gq_comfy_event_t *ev);
gq_status_t gq_comfy_event_parse(const char *text, size_t len, gq_comfy_event_t *ev, char *errstr,
                                 size_t errstr_size);

/**
 * Fills r from a GET /history/{id} document. GQ_ERR_NOTFOUND when it has no entry for
 * prompt_id (the server answers {} until the prompt finished), GQ_ERR_INVALID when the entry
 * is malformed. r is released and zeroed first; the caller releases it.
 */
gq_status_t gq_comfy_history_parse(const json_t *root, const char *prompt_id, gq_comfy_result_t *r,
                                   char *errstr, size_t errstr_size);

/** Looks prompt_id up in a GET /queue document: RUNNING, PENDING or UNKNOWN. */
gq_comfy_state_t gq_comfy_queue_find(const json_t *root, const char *prompt_id);

/**
 * Summarises a POST /prompt rejection ({"error": {...}, "node_errors": {...}}) as one line:
 * "type: message [details]; node 3 (KSampler): Value 0 smaller than min of 1: steps; ...".
 * Returns the number of node errors listed.
 */
size_t gq_comfy_prompt_errors_format(const json_t *root, char *out, size_t out_size);

/** Fills st from a GET /system_stats document. */
gq_status_t gq_comfy_stats_parse(const json_t *root, gq_comfy_stats_t *st, char *errstr,
                                 size_t errstr_size);

/* ---- the client ---- */

#define GQ_COMFY_MAX_CONNECTIONS 4 /* parallel requests to one ComfyUI */

/** The private part of an operation, allocated with it. */
struct gq_comfy_op_priv {
    gq_comfy_op_t *next; /**< in the client's running or done list */
    gq_comfy_t *client;
    CURL *easy;
    bool running, done;
    bool internal; /**< started by the client itself: destroyed when done, never handed out */
    int step;      /**< of a compound operation (STATE: history, queue, history) */
    char prompt_id[64];
    char method[8];
    char *path, *query, *post; /**< owned */
    gq_buf_t resp;             /**< the body of the current request */
    bool resp_full;
    char curl_err[CURL_ERROR_SIZE];
    int64_t t0;
};

struct gq_comfy {
    gq_comfy_base_t base;
    char client_id[64];
    int connect_timeout_ms;
    int request_timeout_ms;
    size_t max_response_bytes;
    size_t max_ws_message;
    char *ca_file; /**< owned; NULL for the system's CA bundle */

    CURLM *multi;         /**< every HTTP request, blocking ones included */
    gq_xfer_host_t xfers; /**< other modules' transfers on the same multi (xfer.h) */
    struct curl_slist *headers;
    char user_agent[64];
    CURL *idle[GQ_COMFY_MAX_CONNECTIONS]; /**< easy handles kept for reuse */
    size_t idle_cnt;
    gq_comfy_op_t *running; /**< started, not done */
    gq_comfy_op_t *done_head, *done_tail;
    size_t pending; /**< started and not handed out */

    CURL *ws; /**< CONNECT_ONLY handle carrying the WebSocket */
    curl_socket_t ws_sock;
    bool ws_up;
    int ws_ping_interval_ms; /**< idle time before we ping; <= 0: never */
    int64_t ws_last_rx_ms;   /**< monotonic time of the last bytes received */
    int64_t ws_ping_sent_ms; /**< our unanswered ping, 0 when none */
    int64_t ws_hold_until;   /**< gq_comfy_ws_hold: no wake for its bytes before (0: none) */
    gq_comfy_wsdec_t wsdec;
};

/** Creates the multi handle and shared headers (gq_comfy_new); GQ_ERR_NOMEM. */
gq_status_t gq_comfy_http_setup(gq_comfy_t *c, char *errstr, size_t errstr_size);
/** Aborts every operation and frees the HTTP side (gq_comfy_destroy). */
void gq_comfy_http_teardown(gq_comfy_t *c);

/**
 * Starts one HTTP request for op (kind and request fields set by the caller): method "GET"
 * or "POST" (body may be NULL for an empty POST), the answer's body bounded by max_bytes.
 * Returns GQ_OK or GQ_ERR_NOMEM; a request that fails later ends as the op's status.
 */
gq_status_t gq_comfy_op_send(gq_comfy_t *c, gq_comfy_op_t *op, size_t max_bytes);

/** A new op of kind (NULL when out of memory); not started. */
gq_comfy_op_t *gq_comfy_op_new(gq_comfy_t *c, gq_comfy_op_kind_t kind, uint64_t tag);
/** Sets the op's request (copies); GQ_ERR_NOMEM. */
gq_status_t gq_comfy_op_request(gq_comfy_op_t *op, const char *method, const char *path,
                                const char *query, const char *body);
/** Fails op at once (it is handed out by the next gq_comfy_op_next_done). */
void gq_comfy_op_fail(gq_comfy_t *c, gq_comfy_op_t *op, gq_status_t st, const char *fmt, ...)
    GQ_PRINTF(4, 5);

/**
 * Called by op.c when a request of op finished at the transport level (status GQ_OK: an
 * answer came, in op->http_code and priv->resp). Returns true when the op is complete;
 * false when it started its next request (compound operations).
 */
bool gq_comfy_op_finish(gq_comfy_t *c, gq_comfy_op_t *op, gq_status_t transport);

/** Runs op to its end, blocking (for the blocking calls); it is not handed out. */
void gq_comfy_op_run(gq_comfy_t *c, gq_comfy_op_t *op);

/**
 * One HTTP request, blocking. The body of the answer goes to resp (bounded; reset first).
 * GQ_OK whatever the HTTP status (in *code); GQ_ERR_TRANSIENT when the server could not be
 * reached or did not answer in time; GQ_ERR_TOOBIG when the body exceeded resp->max.
 */
gq_status_t gq_comfy_http_do(gq_comfy_t *c, const char *method, const char *path, const char *query,
                             const char *body, gq_buf_t *resp, long *code, char *errstr,
                             size_t errstr_size);

/**
 * The class of an HTTP status: 2xx GQ_OK, 404 GQ_ERR_NOTFOUND, 408/429/5xx
 * GQ_ERR_TRANSIENT, other 4xx GQ_ERR_INVALID, anything else GQ_ERR_TRANSIENT.
 */
gq_status_t gq_comfy_http_class(long code);

/** Writes "HTTP <code> from <what>: <first bytes of the body>" into errstr. */
void gq_comfy_http_errf(char *errstr, size_t errstr_size, long code, const char *what,
                        const gq_buf_t *body);

#endif
