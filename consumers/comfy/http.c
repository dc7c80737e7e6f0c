/* HTTP requests to ComfyUI on one reused libcurl easy handle (keep-alive). */
#include "comfy_int.h"
#include "log.h"
#include "util.h"

#include <string.h>

static size_t http_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    gq_comfy_t *c = userdata;
    size_t n = size * nmemb;
    if (!c->sink)
        return n;
    if (gq_buf_append(c->sink, ptr, n) != GQ_OK) {
        /* Returning less than n makes curl stop with CURLE_WRITE_ERROR. */
        c->sink_full = true;
        return 0;
    }
    return n;
}

static gq_status_t http_handle(gq_comfy_t *c, char *errstr, size_t errstr_size) {
    if (c->http)
        return GQ_OK;
    c->http = curl_easy_init();
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* A body never waits for "100 Continue": ComfyUI answers at once anyway. */
    struct curl_slist *h2 = c->headers ? curl_slist_append(c->headers, "Expect:") : NULL;
    if (!c->http || !h2) {
        gq_errf(errstr, errstr_size, "cannot create a libcurl handle");
        return GQ_ERR_NOMEM;
    }
    c->headers = h2;
    CURL *h = c->http;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    char ua[64];
    snprintf(ua, sizeof(ua), "genq/%s", gq_version());
    curl_easy_setopt(h, CURLOPT_USERAGENT, ua); /* curl copies it */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    return GQ_OK;
}

gq_status_t gq_comfy_http_do(gq_comfy_t *c, const char *method, const char *path, const char *query,
                             const char *body, gq_buf_t *resp, long *code, char *errstr,
                             size_t errstr_size) {
    char url[GQ_COMFY_URL_MAX + 512];
    *code = 0;
    if (gq_comfy_url_join(c->base.url, path, query, url, sizeof(url)) != GQ_OK) {
        gq_errf(errstr, errstr_size, "ComfyUI URL for %.100s too long", path);
        return GQ_ERR_TOOBIG;
    }
    gq_status_t st = http_handle(c, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    CURL *h = c->http;
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    /* Refuse early when Content-Length already says the body will not fit. */
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                     resp->max < (size_t)INT64_MAX ? (curl_off_t)resp->max : (curl_off_t)0);
    gq_buf_reset(resp);
    c->sink = resp;
    c->sink_full = false;
    c->curl_err[0] = '\0';
    int64_t t0 = gq_mono_ms();
    CURLcode rc = curl_easy_perform(h);
    c->sink = NULL;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
        gq_debug("comfy %s %s -> %ld, %zu bytes, %lld ms", method, url, *code, resp->len,
                 (long long)(gq_mono_ms() - t0));
        return GQ_OK;
    }
    if ((rc == CURLE_WRITE_ERROR && c->sink_full) || rc == CURLE_FILESIZE_EXCEEDED) {
        gq_errf(errstr, errstr_size, "ComfyUI %s %s: response larger than %zu bytes", method, url,
                resp->max);
        return GQ_ERR_TOOBIG;
    }
    /* Refused, reset, unresolvable or too slow: the server may come back, so retry later. */
    gq_errf(errstr, errstr_size, "ComfyUI %s %s: %s", method, url,
            c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    return GQ_ERR_TRANSIENT;
}

gq_status_t gq_comfy_http_class(long code) {
    if (code >= 200 && code < 300)
        return GQ_OK;
    if (code == 404)
        return GQ_ERR_NOTFOUND;
    if (code == 408 || code == 429)
        return GQ_ERR_TRANSIENT;
    if (code >= 400 && code < 500)
        return GQ_ERR_INVALID;
    return GQ_ERR_TRANSIENT;
}

void gq_comfy_http_errf(char *errstr, size_t errstr_size, long code, const char *what,
                        const gq_buf_t *body) {
    char snippet[201];
    size_t n = 0;
    for (size_t i = 0; body && body->data && i < body->len && n < sizeof(snippet) - 1; i++) {
        unsigned char ch = (unsigned char)body->data[i];
        snippet[n++] = ch < 0x20 ? ' ' : (char)ch;
    }
    snippet[n] = '\0';
    gq_errf(errstr, errstr_size, "ComfyUI %s: HTTP %ld%s%s", what, code, n ? ": " : "", snippet);
}
