/* Base URL checks and URL building for the ComfyUI client. */
#include "comfy_int.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* Fetches one part; *out is NULL (and GQ_OK) when the URL does not have it. */
static gq_status_t url_part(CURLU *u, CURLUPart part, char **out) {
    *out = NULL;
    CURLUcode rc = curl_url_get(u, part, out, 0);
    if (rc == CURLUE_OK)
        return GQ_OK;
    if (rc == CURLUE_OUT_OF_MEMORY)
        return GQ_ERR_NOMEM;
    return GQ_OK;
}

static gq_status_t base_fill(CURLU *u, const char *url, gq_comfy_base_t *b, char *errstr,
                             size_t errstr_size) {
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *frag = NULL,
         *user = NULL;
    gq_status_t st = GQ_ERR_NOMEM;
    if (url_part(u, CURLUPART_SCHEME, &scheme) || url_part(u, CURLUPART_HOST, &host) ||
        url_part(u, CURLUPART_PORT, &port) || url_part(u, CURLUPART_PATH, &path) ||
        url_part(u, CURLUPART_QUERY, &query) || url_part(u, CURLUPART_FRAGMENT, &frag) ||
        url_part(u, CURLUPART_USER, &user))
        goto out;
    st = GQ_ERR_INVALID;
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        gq_errf(errstr, errstr_size, "ComfyUI URL %s: scheme must be http or https", url);
        goto out;
    }
    if (!host || !*host) {
        gq_errf(errstr, errstr_size, "ComfyUI URL %s: no host", url);
        goto out;
    }
    if (query || frag) {
        gq_errf(errstr, errstr_size, "ComfyUI URL %s: a query or fragment is not allowed", url);
        goto out;
    }
    if (user) {
        /* The WebSocket handshake is written by hand and would not carry them. */
        gq_errf(errstr, errstr_size, "ComfyUI URL %s: credentials in the URL are not supported",
                url);
        goto out;
    }
    size_t plen = path ? strlen(path) : 0;
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    b->tls = strcmp(scheme, "https") == 0;
    int n = snprintf(b->host_hdr, sizeof(b->host_hdr), "%s%s%s", host, port ? ":" : "",
                     port ? port : "");
    int m = snprintf(b->prefix, sizeof(b->prefix), "%.*s", (int)plen, path ? path : "");
    int k = snprintf(b->url, sizeof(b->url), "%s://%s%s", scheme, b->host_hdr, b->prefix);
    if (n < 0 || (size_t)n >= sizeof(b->host_hdr) || m < 0 || (size_t)m >= sizeof(b->prefix) ||
        k < 0 || (size_t)k >= sizeof(b->url)) {
        gq_errf(errstr, errstr_size, "ComfyUI URL %.200s...: too long", url);
        st = GQ_ERR_TOOBIG;
        goto out;
    }
    st = GQ_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_free(user);
    if (st == GQ_ERR_NOMEM)
        gq_errf(errstr, errstr_size, "out of memory parsing the ComfyUI URL");
    return st;
}

gq_status_t gq_comfy_base_parse(const char *url, gq_comfy_base_t *b, char *errstr,
                                size_t errstr_size) {
    memset(b, 0, sizeof(*b));
    if (!url || !*url) {
        gq_errf(errstr, errstr_size, "no ComfyUI URL given");
        return GQ_ERR_INVALID;
    }
    CURLU *u = curl_url();
    if (!u) {
        gq_errf(errstr, errstr_size, "out of memory parsing the ComfyUI URL");
        return GQ_ERR_NOMEM;
    }
    gq_status_t st;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (rc != CURLUE_OK) {
        gq_errf(errstr, errstr_size, "ComfyUI URL %s: %s", url, curl_url_strerror(rc));
        st = GQ_ERR_INVALID;
    } else {
        st = base_fill(u, url, b, errstr, errstr_size);
    }
    curl_url_cleanup(u);
    return st;
}

gq_status_t gq_comfy_url_join(const char *base, const char *path, const char *query, char *out,
                              size_t out_size) {
    int n = snprintf(out, out_size, "%s%s%s%s", base, path, query ? "?" : "", query ? query : "");
    if (n < 0 || (size_t)n >= out_size)
        return GQ_ERR_TOOBIG;
    return GQ_OK;
}
