/* The worker's HTTP endpoint: /healthz, /readyz and /metrics (see endpoint.h). */
#include "endpoint.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static gq_status_t gq_endpoint_listen(gq_endpoint_t *m, const char *addr, int stuck_after_ms,
                                      char *errstr, size_t errstr_size);

struct gq_endpoint {
    gq_metrics_t *m;
    int fd, wake[2], port, stuck_after_ms;
    pthread_t thread;
    bool running;
};

static void m_reply(int fd, int code, const char *ctype, const char *body) {
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                                       : "Service Unavailable";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, strlen(body));
    ssize_t w = send(fd, head, (size_t)n, MSG_NOSIGNAL);
    size_t len = strlen(body), off = 0;
    while (w >= 0 && off < len) {
        w = send(fd, body + off, len - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
    }
}

static void m_serve(gq_endpoint_t *ep, int fd) {
    gq_metrics_t *m = ep->m;
    char req[8192];
    size_t got = 0;
    int64_t deadline = gq_mono_ms() + 2000;
    while (got < sizeof(req) - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(deadline - gq_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return;
        ssize_t n = recv(fd, req + got, sizeof(req) - 1 - got, 0);
        if (n <= 0)
            return;
        got += (size_t)n;
    }
    req[got] = '\0';
    char method[8] = "", path[256] = "";
    if (sscanf(req, "%7s %255s", method, path) != 2)
        return;
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (strcmp(method, "GET") != 0) {
        m_reply(fd, 405, "text/plain", "method not allowed\n");
    } else if (strcmp(path, "/healthz") == 0) {
        bool alive = gq_metrics_alive(m, ep->stuck_after_ms);
        m_reply(fd, alive ? 200 : 503, "text/plain", alive ? "ok\n" : "worker loop stuck\n");
    } else if (strcmp(path, "/readyz") == 0) {
        char why[300], line[302];
        bool ready = gq_metrics_ready(m, why, sizeof(why));
        snprintf(line, sizeof(line), "%s\n", why);
        m_reply(fd, ready ? 200 : 503, "text/plain", line);
    } else if (strcmp(path, "/metrics") == 0) {
        char *body = gq_metrics_render(m);
        m_reply(fd, 200, "text/plain; version=0.0.4; charset=utf-8", body ? body : "");
        free(body);
    } else {
        m_reply(fd, 404, "text/plain", "not found\n");
    }
}

static void *m_thread(void *arg) {
    gq_endpoint_t *m = arg;
    for (;;) {
        struct pollfd p[2] = {{m->fd, POLLIN, 0}, {m->wake[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            int c = accept(m->fd, NULL, NULL);
            if (c >= 0) {
                m_serve(m, c);
                close(c);
            }
        }
    }
    return NULL;
}

gq_endpoint_t *gq_endpoint_new(gq_metrics_t *metrics, const char *addr, int stuck_after_ms,
                               char *errstr, size_t errstr_size) {
    gq_endpoint_t *m = calloc(1, sizeof(*m));
    if (!m) {
        gq_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    m->m = metrics;
    m->fd = m->wake[0] = m->wake[1] = -1;
    if (gq_endpoint_listen(m, addr, stuck_after_ms, errstr, errstr_size) != GQ_OK) {
        gq_endpoint_destroy(m);
        return NULL;
    }
    return m;
}

static gq_status_t gq_endpoint_listen(gq_endpoint_t *m, const char *addr, int stuck_after_ms,
                                      char *errstr, size_t errstr_size) {
    char host[64] = "0.0.0.0";
    const char *colon = strrchr(addr, ':');
    int64_t port;
    if (!colon || gq_parse_i64(colon + 1, 0, 65535, &port) != GQ_OK ||
        (size_t)(colon - addr) >= sizeof(host)) {
        gq_errf(errstr, errstr_size, "http_listen \"%s\": expected host:port or :port", addr);
        return GQ_ERR_INVALID;
    }
    if (colon > addr) {
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        gq_errf(errstr, errstr_size, "http_listen: \"%s\" is not an IPv4 address", host);
        return GQ_ERR_INVALID;
    }
    m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(m->fd, 16) < 0) {
        gq_errf(errstr, errstr_size, "http_listen %s: %s", addr, strerror(errno));
        return GQ_ERR;
    }
    socklen_t sl = sizeof(sa);
    getsockname(m->fd, (struct sockaddr *)&sa, &sl);
    m->port = ntohs(sa.sin_port);
    m->stuck_after_ms = stuck_after_ms;
    if (pipe(m->wake) < 0 || pthread_create(&m->thread, NULL, m_thread, m) != 0) {
        gq_errf(errstr, errstr_size, "starting the HTTP endpoint: %s", strerror(errno));
        return GQ_ERR;
    }
    m->running = true;
    return GQ_OK;
}

int gq_endpoint_port(const gq_endpoint_t *m) { return m->port; }

void gq_endpoint_destroy(gq_endpoint_t *m) {
    if (!m)
        return;
    if (m->running) {
        ssize_t w = write(m->wake[1], "x", 1);
        (void)w;
        pthread_join(m->thread, NULL);
    }
    if (m->fd >= 0)
        close(m->fd);
    if (m->wake[0] >= 0) {
        close(m->wake[0]);
        close(m->wake[1]);
    }
    free(m);
}
