/*
 * The ComfyUI client over real sockets against a scripted in-process server (a thread on
 * 127.0.0.1): what the simulator does not do on purpose. Frames split across reads and
 * across ws_next calls, pings, fragments, oversized and masked frames, close codes, broken
 * handshakes, and the HTTP side: status classes, empty bodies, size limits, timeouts, the
 * exact requests sent (escaping, prefix, the cancel after a 200 with node_errors).
 */
#include "comfy/comfy_int.h"
#include "buf.h"
#include "util.h"
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct srv srv_t;
typedef void (*srv_script_t)(srv_t *s);

struct srv {
    int lfd;
    int port;
    pthread_t th;
    srv_script_t script;
    char url[64];
    /* What the server saw, for the client side to check after the join. */
    gq_buf_t log;
    int failures;
    /* HTTP script: canned responses, one per connection. */
    const char *const *responses;
    size_t responses_cnt;
};

#define SRV_FAIL(s, ...)                                                                           \
    do {                                                                                           \
        (s)->failures++;                                                                           \
        fprintf(stderr, "server: " __VA_ARGS__);                                                   \
        fputc('\n', stderr);                                                                       \
    } while (0)

static void set_timeout(int fd, int ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int srv_accept(srv_t *s) {
    int fd = accept(s->lfd, NULL, NULL);
    if (fd >= 0)
        set_timeout(fd, 3000);
    return fd;
}

static void srv_send(int fd, const void *p, size_t n) {
    const char *q = p;
    while (n > 0) {
        ssize_t k = send(fd, q, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        q += k;
        n -= (size_t)k;
    }
}

static void srv_sends(int fd, const char *s) { srv_send(fd, s, strlen(s)); }

/* Reads one request (head and Content-Length body) into req. */
static bool srv_read_request(int fd, gq_buf_t *req) {
    gq_buf_reset(req);
    size_t head_len = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return false;
        if (gq_buf_append(req, buf, (size_t)n) != GQ_OK)
            return false;
        const char *end = memmem(req->data, req->len, "\r\n\r\n", 4);
        if (!end)
            continue;
        head_len = (size_t)(end - req->data) + 4;
        const char *cl = strcasestr(req->data, "Content-Length:");
        size_t body = 0;
        if (cl && cl < end)
            body = strtoul(cl + 15, NULL, 10);
        if (req->len >= head_len + body)
            return true;
    }
}

static void frame(int fd, int op, bool fin, const void *p, size_t n) {
    gq_buf_t b;
    gq_buf_init(&b, n + 16);
    gq_comfy_wsframe_encode(&b, op, fin, p, n, NULL);
    srv_send(fd, b.data, b.len);
    gq_buf_release(&b);
}

/* Answers the upgrade request on fd; returns false when it is not one. */
static bool srv_upgrade(srv_t *s, int fd, const char *override_status) {
    gq_buf_t req;
    gq_buf_init(&req, 65536);
    bool ok = srv_read_request(fd, &req);
    const char *k = ok ? strcasestr(req.data, "Sec-WebSocket-Key: ") : NULL;
    char key[25] = "";
    if (k)
        memcpy(key, k + 19, 24);
    if (!k || !strstr(req.data, "Sec-WebSocket-Version: 13\r\n") ||
        strcasestr(req.data, "Sec-WebSocket-Extensions") || strcasestr(req.data, "Origin:")) {
        SRV_FAIL(s, "bad upgrade request: %s", req.data ? req.data : "(none)");
        gq_buf_release(&req);
        return false;
    }
    gq_buf_appendf(&s->log, "%.*s|", (int)(strchr(req.data, '\r') - req.data), req.data);
    gq_buf_release(&req);
    if (override_status) {
        srv_sends(fd, override_status);
        return true;
    }
    char acc[29];
    gq_comfy_ws_accept(key, acc);
    char resp[256];
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n",
             acc);
    srv_sends(fd, resp);
    return true;
}

/* Reads client frames until one complete message; checks that it was masked. */
static bool srv_read_msg(srv_t *s, int fd, gq_comfy_wsdec_t *d, int *op, gq_buf_t *payload) {
    for (;;) {
        gq_comfy_wsmsg_t m;
        char err[128];
        if (gq_comfy_wsdec_next(d, &m, err, sizeof(err)) != GQ_OK) {
            SRV_FAIL(s, "client frame: %s", err);
            return false;
        }
        if (m.opcode) {
            *op = m.opcode;
            gq_buf_reset(payload);
            gq_buf_append(payload, m.data, m.len);
            return true;
        }
        unsigned char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return false;
        /* Every client frame starts a new read here only by chance; check the mask bit of
         * frames that do. */
        if (d->in.len == d->pos && n >= 2 && !(buf[1] & 0x80))
            SRV_FAIL(s, "unmasked client frame");
        gq_comfy_wsdec_feed(d, buf, (size_t)n);
    }
}

static void *srv_main(void *arg) {
    srv_t *s = arg;
    s->script(s);
    return NULL;
}

static void srv_start(srv_t *s, srv_script_t script, const char *const *responses, size_t cnt) {
    memset(s, 0, sizeof(*s));
    gq_buf_init(&s->log, 1 << 20);
    s->script = script;
    s->responses = responses;
    s->responses_cnt = cnt;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof(a));
    listen(s->lfd, 8);
    socklen_t len = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    set_timeout(s->lfd, 5000);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_join(srv_t *s) {
    pthread_join(s->th, NULL);
    close(s->lfd);
    CHECK_INT(s->failures, 0);
}

static gq_comfy_t *client(const char *url, int request_timeout_ms, size_t max_ws) {
    char err[256];
    gq_comfy_opts_t o = {.base_url = url,
                         .client_id = "cid-1",
                         .connect_timeout_ms = 2000,
                         .request_timeout_ms = request_timeout_ms,
                         .max_response_bytes = 1 << 20,
                         .max_ws_message = max_ws};
    gq_comfy_t *c = gq_comfy_new(&o, err, sizeof(err));
    CHECK(c != NULL);
    if (!c)
        fprintf(stderr, "gq_comfy_new: %s\n", err);
    return c;
}

/* ---- WebSocket scenarios ---- */

static const char ev_status[] = "{\"type\": \"status\", \"data\": {\"status\": {\"exec_info\": "
                                "{\"queue_remaining\": 0}}, \"sid\": \"cid-1\"}}";

static void script_ws_main(srv_t *s) {
    int fd = srv_accept(s);
    if (fd < 0 || !srv_upgrade(s, fd, NULL)) {
        SRV_FAIL(s, "no WebSocket client");
        if (fd >= 0)
            close(fd);
        return;
    }
    /* 1. a frame in three pieces, with pauses longer than the client's first wait */
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, true, ev_status, strlen(ev_status), NULL);
    srv_send(fd, b.data, 1);
    gq_sleep_ms(150);
    srv_send(fd, b.data + 1, 10);
    gq_sleep_ms(150);
    srv_send(fd, b.data + 11, b.len - 11);
    /* 2. one write: binary preview, ping, text fragmented around a ping, a 200 KB event */
    gq_buf_reset(&b);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_BINARY, true, "\0\0\0\1\0\0\0\1jpeg", 12, NULL);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_PING, true, "abc", 3, NULL);
    const char *f1 = "{\"type\": \"executing\", \"data\": {\"node\": ";
    const char *f2 = "\"3\", \"prompt_id\": ";
    const char *f3 = "\"p1\"}}";
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, false, f1, strlen(f1), NULL);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_PING, true, "", 0, NULL);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_CONT, false, f2, strlen(f2), NULL);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_CONT, true, f3, strlen(f3), NULL);
    gq_buf_t big;
    gq_buf_init(&big, 1 << 20);
    gq_buf_appends(&big, "{\"type\": \"execution_error\", \"data\": {\"prompt_id\": \"p1\", "
                         "\"exception_type\": \"RuntimeError\", \"traceback\": [\"");
    for (int i = 0; i < 200000; i++)
        gq_buf_append(&big, "x", 1);
    gq_buf_appends(&big, "\"], \"exception_message\": \"boom\\n\"}}");
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, true, big.data, big.len, NULL);
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, true, "not json", 8, NULL);
    const char *done =
        "{\"type\": \"executing\", \"data\": {\"node\": null, \"prompt_id\": \"p1\"}}";
    gq_comfy_wsframe_encode(&b, GQ_WS_OP_TEXT, true, done, strlen(done), NULL);
    srv_send(fd, b.data, b.len);
    gq_buf_release(&big);

    /* the two pongs, echoing the ping payloads */
    gq_comfy_wsdec_t d;
    gq_comfy_wsdec_init(&d, 1 << 20, false);
    int op = 0;
    gq_buf_t got;
    gq_buf_init(&got, 1 << 20);
    if (!srv_read_msg(s, fd, &d, &op, &got) || op != GQ_WS_OP_PONG || got.len != 3 ||
        memcmp(got.data, "abc", 3) != 0)
        SRV_FAIL(s, "first pong: op %d len %zu", op, got.len);
    if (!srv_read_msg(s, fd, &d, &op, &got) || op != GQ_WS_OP_PONG || got.len != 0)
        SRV_FAIL(s, "second pong: op %d len %zu", op, got.len);
    /* 3. the server leaves: close 1001 with a reason; the client must answer with 1001 */
    gq_sleep_ms(100);
    frame(fd, GQ_WS_OP_CLOSE, true, "\x03\xe9going away", 12);
    if (!srv_read_msg(s, fd, &d, &op, &got) || op != GQ_WS_OP_CLOSE || got.len != 2 ||
        memcmp(got.data, "\x03\xe9", 2) != 0)
        SRV_FAIL(s, "close reply: op %d len %zu", op, got.len);
    gq_comfy_wsdec_release(&d);
    gq_buf_release(&got);
    gq_buf_release(&b);
    close(fd);
}

static void test_ws_main(void) {
    srv_t s;
    srv_start(&s, script_ws_main, NULL, 0);
    gq_comfy_t *c = client(s.url, 2000, 0);
    char err[256];
    gq_comfy_event_t ev;
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_OK);
    CHECK(gq_comfy_ws_connected(c));
    /* the first byte of the frame is there, the rest is not yet */
    CHECK(gq_comfy_ws_next(c, 100, &ev, err, sizeof(err)) == GQ_ERR_TIMEOUT);
    CHECK(gq_comfy_ws_next(c, 2000, &ev, err, sizeof(err)) == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_STATUS && ev.queue_remaining == 0);
    /* the binary preview frame: counted as one, its image not kept */
    CHECK(gq_comfy_ws_next(c, 2000, &ev, err, sizeof(err)) == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_PREVIEW && ev.prompt_id[0] == '\0');
    CHECK(gq_comfy_ws_next(c, 2000, &ev, err, sizeof(err)) == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_EXECUTING && strcmp(ev.node, "3") == 0 &&
          strcmp(ev.prompt_id, "p1") == 0);
    CHECK(gq_comfy_ws_next(c, 2000, &ev, err, sizeof(err)) == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_ERROR && strcmp(ev.exception_message, "boom") == 0);
    /* "not json" is skipped */
    CHECK(gq_comfy_ws_next(c, 2000, &ev, err, sizeof(err)) == GQ_OK);
    CHECK(ev.type == GQ_COMFY_EV_DONE && strcmp(ev.prompt_id, "p1") == 0);
    CHECK(gq_comfy_ws_next(c, 3000, &ev, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "code 1001: going away") != NULL);
    CHECK(!gq_comfy_ws_connected(c));
    CHECK(gq_comfy_ws_next(c, 0, &ev, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    srv_join(&s);
    CHECK_STR(s.log.data, "GET /ws?clientId=cid-1 HTTP/1.1|");
    gq_buf_release(&s.log);
    gq_comfy_destroy(c);
}

/* Two connections: an oversized frame header, then a message too big in fragments; then a
 * masked frame, then a reserved opcode. Each time the client must drop, saying why. */
static void script_ws_bad(srv_t *s) {
    static const char *const bad[] = {
        "\x81\x7f\x00\x00\x00\x00\x00\x90\x00\x00", /* 9 MiB text header */
        NULL,                                       /* fragments over 1 KiB */
        "\x81\x81\x01\x02\x03\x04x",                /* masked */
        "\x83\x00",                                 /* reserved opcode */
    };
    static const unsigned codes[] = {1009, 1009, 1002, 1002};
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        int fd = srv_accept(s);
        if (fd < 0 || !srv_upgrade(s, fd, NULL)) {
            SRV_FAIL(s, "no client for case %zu", i);
            if (fd >= 0)
                close(fd);
            return;
        }
        if (bad[i]) {
            srv_send(fd, bad[i], i == 0 ? 10 : i == 2 ? 7 : 2);
        } else {
            char chunk[600];
            memset(chunk, 'a', sizeof(chunk));
            frame(fd, GQ_WS_OP_TEXT, false, chunk, sizeof(chunk));
            frame(fd, GQ_WS_OP_CONT, true, chunk, sizeof(chunk));
        }
        gq_comfy_wsdec_t d;
        gq_comfy_wsdec_init(&d, 1024, false);
        int op = 0;
        gq_buf_t got;
        gq_buf_init(&got, 4096);
        if (!srv_read_msg(s, fd, &d, &op, &got) || op != GQ_WS_OP_CLOSE || got.len != 2 ||
            (unsigned)((unsigned char)got.data[0] << 8 | (unsigned char)got.data[1]) != codes[i])
            SRV_FAIL(s, "case %zu: wanted close %u, got op %d len %zu", i, codes[i], op, got.len);
        gq_comfy_wsdec_release(&d);
        gq_buf_release(&got);
        close(fd);
    }
}

static void test_ws_bad(void) {
    srv_t s;
    srv_start(&s, script_ws_bad, NULL, 0);
    char err[256];
    gq_comfy_event_t ev;
    static const char *const why[] = {"limit", "limit", "masked", "reserved opcode"};
    for (size_t i = 0; i < GQ_ARRAY_LEN(why); i++) {
        /* the default limit (8 MiB) for the first case, 1 KiB after */
        gq_comfy_t *c = client(s.url, 2000, i == 0 ? 0 : 1024);
        CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_OK);
        CHECK(gq_comfy_ws_next(c, 2000, &ev, err, sizeof(err)) == GQ_ERR_TRANSIENT);
        CHECK(strstr(err, why[i]) != NULL);
        if (!strstr(err, why[i]))
            fprintf(stderr, "case %zu: %s\n", i, err);
        CHECK(!gq_comfy_ws_connected(c));
        gq_comfy_destroy(c);
    }
    srv_join(&s);
    gq_buf_release(&s.log);
}

static void script_handshakes(srv_t *s) {
    static const char *const answers[] = {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        "",   /* close without an answer */
        NULL, /* no answer at all */
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(answers); i++) {
        int fd = srv_accept(s);
        if (fd < 0 || !srv_upgrade(s, fd, answers[i] ? answers[i] : "")) {
            SRV_FAIL(s, "no client for handshake case %zu", i);
            if (fd >= 0)
                close(fd);
            return;
        }
        if (!answers[i])
            gq_sleep_ms(600);
        close(fd);
    }
}

static void test_ws_handshakes(void) {
    srv_t s;
    srv_start(&s, script_handshakes, NULL, 0);
    gq_comfy_t *c = client(s.url, 300, 0);
    char err[256];
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "Sec-WebSocket-Accept") != NULL);
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "403") != NULL);
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "503") != NULL);
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    int64_t t0 = gq_mono_ms();
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(gq_mono_ms() - t0 < 550);
    CHECK(strstr(err, "in time") != NULL);
    CHECK(!gq_comfy_ws_connected(c));
    srv_join(&s);
    gq_buf_release(&s.log);
    gq_comfy_destroy(c);
}

/* Upgrades, sends nothing, waits for the client to leave. */
static void script_silent(srv_t *s) {
    int fd = srv_accept(s);
    if (fd < 0 || !srv_upgrade(s, fd, NULL)) {
        SRV_FAIL(s, "no WebSocket client");
        if (fd >= 0)
            close(fd);
        return;
    }
    char b[64];
    while (recv(fd, b, sizeof(b), 0) > 0)
        ;
    close(fd);
}

/* A silent server: the client pings; one pong keeps the connection, a missing one ends it. */
static void script_keepalive(srv_t *s) {
    int fd = srv_accept(s);
    if (fd < 0 || !srv_upgrade(s, fd, NULL)) {
        SRV_FAIL(s, "no WebSocket client");
        if (fd >= 0)
            close(fd);
        return;
    }
    gq_comfy_wsdec_t d;
    gq_comfy_wsdec_init(&d, 4096, false);
    gq_buf_t got;
    gq_buf_init(&got, 4096);
    int op = 0;
    if (!srv_read_msg(s, fd, &d, &op, &got) || op != GQ_WS_OP_PING)
        SRV_FAIL(s, "wanted a first ping, got op %d", op);
    frame(fd, GQ_WS_OP_PONG, true, got.data, got.len);
    gq_buf_appends(&s->log, "pong|");
    if (!srv_read_msg(s, fd, &d, &op, &got) || op != GQ_WS_OP_PING)
        SRV_FAIL(s, "wanted a second ping, got op %d", op);
    gq_buf_appends(&s->log, "silence|");
    /* the client gives up and closes the socket */
    char b[64];
    if (recv(fd, b, sizeof(b), 0) != 0)
        SRV_FAIL(s, "wanted the client to close");
    gq_comfy_wsdec_release(&d);
    gq_buf_release(&got);
    close(fd);
}

static void test_ws_keepalive(void) {
    srv_t s;
    srv_start(&s, script_keepalive, NULL, 0);
    char err[256];
    gq_comfy_opts_t o = {.base_url = s.url, .request_timeout_ms = 300, .ws_ping_interval_ms = 150};
    gq_comfy_t *c = gq_comfy_new(&o, err, sizeof(err));
    gq_comfy_event_t ev;
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_OK);
    int64_t t0 = gq_mono_ms();
    /* ping at ~150 ms, pong, ping at ~300 ms, no answer: dropped at ~600 ms */
    CHECK(gq_comfy_ws_next(c, 5000, &ev, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    int64_t took = gq_mono_ms() - t0;
    CHECK(took >= 550 && took < 2000);
    CHECK(strstr(err, "no answer to a ping within 300 ms") != NULL);
    CHECK(!gq_comfy_ws_connected(c));
    gq_comfy_destroy(c);
    srv_join(&s);
    CHECK(s.log.data && strstr(s.log.data, "|pong|silence|") != NULL);
    gq_buf_release(&s.log);

    /* pings off: a silent connection only times out */
    srv_start(&s, script_silent, NULL, 0);
    o = (gq_comfy_opts_t){.base_url = s.url, .request_timeout_ms = 100, .ws_ping_interval_ms = -1};
    c = gq_comfy_new(&o, err, sizeof(err));
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_OK);
    CHECK(gq_comfy_ws_next(c, 400, &ev, err, sizeof(err)) == GQ_ERR_TIMEOUT);
    CHECK(gq_comfy_ws_connected(c));
    gq_comfy_destroy(c);
    srv_join(&s);
    gq_buf_release(&s.log);
}

/* ---- HTTP scenarios ---- */

static void script_http(srv_t *s) {
    gq_buf_t req;
    gq_buf_init(&req, 1 << 20);
    for (size_t i = 0; i < s->responses_cnt; i++) {
        int fd = srv_accept(s);
        if (fd < 0) {
            SRV_FAIL(s, "request %zu never came", i);
            break;
        }
        if (!srv_read_request(fd, &req)) {
            SRV_FAIL(s, "request %zu unreadable", i);
            close(fd);
            break;
        }
        const char *body = strstr(req.data, "\r\n\r\n") + 4;
        /* "METHOD PATH BODY": the request line without its HTTP version */
        const char *line_end = strstr(req.data, " HTTP/1.1\r\n");
        gq_buf_appendf(&s->log, "%.*s %s\n", line_end ? (int)(line_end - req.data) : 0, req.data,
                       body);
        if (s->responses[i])
            srv_sends(fd, s->responses[i]);
        else
            gq_sleep_ms(600);
        close(fd);
    }
    gq_buf_release(&req);
}

static char *reply(int code, const char *ctype, const char *body) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    gq_buf_appendf(&b,
                   "HTTP/1.1 %d X\r\nContent-Type: %s\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   code, ctype, strlen(body), body);
    return gq_buf_detach(&b, NULL);
}

static void test_http(void) {
    const char *pid = "5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11";
    char *r[16];
    size_t n = 0;
    const char *json = "application/json; charset=utf-8";
    /* submit: 200 with node_errors, then the two cancel requests */
    r[n++] = reply(200, json,
                   "{\"prompt_id\": \"5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11\", \"number\": 3, "
                   "\"node_errors\": {\"11\": {\"errors\": [{\"type\": \"required_input_missing\","
                   " \"message\": \"Required input is missing\", \"details\": \"images\"}], "
                   "\"dependent_outputs\": [\"11\"], \"class_type\": \"PreviewImage\"}}}");
    r[n++] = reply(200, "application/octet-stream", "");
    r[n++] = reply(200, "application/octet-stream", "");
    /* submit: 500 page, 400 that is not JSON, 200 clean */
    r[n++] = reply(500, "text/plain; charset=utf-8",
                   "500 Internal Server Error\n\nServer got itself in trouble");
    r[n++] = reply(400, "text/html", "<html>bad</html>");
    r[n++] = reply(200, json,
                   "{\"prompt_id\": \"5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11\", "
                   "\"number\": 4, \"node_errors\": {}}");
    /* prompt_state: history {}, queue without it, history {} again */
    r[n++] = reply(200, json, "{}");
    r[n++] = reply(200, json, "{\"queue_running\": [], \"queue_pending\": []}");
    r[n++] = reply(200, json, "{}");
    /* view: 404 with an empty body */
    r[n++] = reply(404, "text/plain", "");
    /* system_stats: not JSON, then a body announced far over the limit, then no answer */
    r[n++] = reply(200, json, "<html>");
    r[n++] = strdup("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n{");
    r[n++] = NULL;
    /* free: fine */
    r[n++] = reply(200, "application/octet-stream", "");

    srv_t s;
    srv_start(&s, script_http, (const char *const *)r, n);
    char base[128];
    snprintf(base, sizeof(base), "%s/pfx/", s.url);
    gq_comfy_t *c = client(base, 400, 0);
    char err[512];
    json_t *wf = json_pack("{s:{s:s,s:{}}}", "9", "class_type", "SaveImage", "inputs");
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "node 11 (PreviewImage): Required input is missing: images") != NULL);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "HTTP 500: 500 Internal Server Error") != NULL);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_ERR_INVALID);
    CHECK(strstr(err, "HTTP 400: <html>bad</html>") != NULL);
    CHECK(gq_comfy_submit(c, pid, wf, err, sizeof(err)) == GQ_OK);
    json_decref(wf);
    gq_comfy_state_t state = GQ_COMFY_RUNNING;
    CHECK(gq_comfy_prompt_state(c, pid, &state, NULL, err, sizeof(err)) == GQ_OK);
    CHECK_INT(state, GQ_COMFY_UNKNOWN);
    gq_comfy_image_t img = {.filename = "a b&c.png", .subfolder = "x/y", .type = "output"};
    gq_buf_t out;
    gq_buf_init(&out, 1024);
    CHECK(gq_comfy_view(c, &img, &out, err, sizeof(err)) == GQ_ERR_NOTFOUND);
    gq_buf_release(&out);
    gq_comfy_stats_t st;
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(strstr(err, "bad JSON") != NULL);
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_ERR_TOOBIG);
    int64_t t0 = gq_mono_ms();
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(gq_mono_ms() - t0 < 590);
    CHECK(gq_comfy_free(c, false, true, err, sizeof(err)) == GQ_OK);
    srv_join(&s);
    const char *want =
        "POST /pfx/prompt {\"prompt\":{\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{}}},"
        "\"client_id\":\"cid-1\",\"prompt_id\":\"5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11\"}\n"
        "POST /pfx/queue {\"delete\":[\"5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11\"]}\n"
        "POST /pfx/interrupt {\"prompt_id\":\"5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11\"}\n";
    CHECK(s.log.data && strncmp(s.log.data, want, strlen(want)) == 0);
    CHECK(s.log.data && strstr(s.log.data, "GET /pfx/history/5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11 "
                                           "\nGET /pfx/queue \nGET /pfx/history/") != NULL);
    CHECK(s.log.data &&
          strstr(s.log.data, "GET /pfx/view?filename=a%20b%26c.png&subfolder=x%2Fy&type=output "
                             "\n") != NULL);
    CHECK(s.log.data && strstr(s.log.data, "POST /pfx/free {\"unload_models\":false,"
                                           "\"free_memory\":true}\n") != NULL);
    if (check_failed && s.log.data)
        fprintf(stderr, "server saw:\n%s", s.log.data);
    gq_buf_release(&s.log);
    for (size_t i = 0; i < n; i++)
        free(r[i]);
    gq_comfy_destroy(c);
}

static void test_refused(void) {
    /* a port that was just free: nothing listens */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    char url[64], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    gq_comfy_t *c = client(url, 1000, 0);
    gq_comfy_stats_t st;
    CHECK(gq_comfy_system_stats(c, &st, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(gq_comfy_ws_connect(c, err, sizeof(err)) == GQ_ERR_TRANSIENT);
    CHECK(gq_comfy_interrupt(c, "x", err, sizeof(err)) == GQ_ERR_TRANSIENT);
    gq_comfy_destroy(c);
    gq_comfy_opts_t o = {.base_url = "gopher://x"};
    CHECK(gq_comfy_new(&o, err, sizeof(err)) == NULL);
    gq_comfy_destroy(NULL);
    gq_comfy_ws_close(NULL);
}

int main(void) {
    test_ws_main();
    test_ws_bad();
    test_ws_handshakes();
    test_ws_keepalive();
    test_http();
    test_refused();
    return CHECK_DONE("test_comfy_net");
}
