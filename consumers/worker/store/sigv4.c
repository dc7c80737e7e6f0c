/*
 * SigV4 query signing (see sigv4.h). Steps, as AWS documents them:
 *   1. the canonical request: method, encoded path, sorted encoded query (without the
 *      signature), canonical headers (host only), signed headers, "UNSIGNED-PAYLOAD";
 *   2. the string to sign: algorithm, timestamp, scope, hex SHA-256 of the canonical request;
 *   3. the signing key: HMAC chain over "AWS4"+secret, date, region, service, "aws4_request";
 *   4. the signature: hex HMAC of the string to sign, appended as X-Amz-Signature.
 */
#include "sigv4.h"

#include "util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIGV4_MAX_EXPIRES 604800

gq_status_t gq_sigv4_encode(const char *s, int keep_slash, char *out, size_t out_size) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        size_t need = plain ? 1 : 3;
        if (o + need >= out_size)
            return GQ_ERR_TOOBIG;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= out_size)
        return GQ_ERR_TOOBIG;
    out[o] = '\0';
    return GQ_OK;
}

void gq_sigv4_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   unsigned char out[32]) {
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &n);
}

static void sigv4_hex(const unsigned char *md, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

typedef struct sigv4_param {
    char name[32];
    char value[2200]; /* encoded; a session token is the long one */
} sigv4_param_t;

static int sigv4_param_cmp(const void *a, const void *b) {
    return strcmp(((const sigv4_param_t *)a)->name, ((const sigv4_param_t *)b)->name);
}

gq_status_t gq_sigv4_presign(const gq_sigv4_presign_t *p, const gq_sigv4_creds_t *c, char *url,
                             size_t url_size, char *errstr, size_t errstr_size) {
    if (!p->method || !p->scheme || !p->host || !p->path || p->path[0] != '/' || !p->region ||
        !p->service || !c->access_key || !*c->access_key || !c->secret_key) {
        gq_errf(errstr, errstr_size, "presigning: a field is missing");
        return GQ_ERR_INVALID;
    }
    if (p->expires_s < 1 || p->expires_s > SIGV4_MAX_EXPIRES) {
        gq_errf(errstr, errstr_size, "presigning: expiry %lld s is not within 1 to %d s",
                (long long)p->expires_s, SIGV4_MAX_EXPIRES);
        return GQ_ERR_INVALID;
    }
    time_t t = (time_t)p->now_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char amz_date[17], date[9];
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    strftime(date, sizeof(date), "%Y%m%d", &tm);

    char scope[256], cred[512];
    int n = snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, p->region, p->service);
    if (n < 0 || (size_t)n >= sizeof(scope))
        goto toobig;
    n = snprintf(cred, sizeof(cred), "%s/%s", c->access_key, scope);
    if (n < 0 || (size_t)n >= sizeof(cred))
        goto toobig;

    enum { NPARAM = 6 };
    sigv4_param_t *q = calloc(NPARAM, sizeof(*q));
    char *canon = NULL, *query = NULL;
    gq_status_t st = GQ_ERR_TOOBIG;
    if (!q) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    size_t nq = 0;
    char expires[24];
    snprintf(expires, sizeof(expires), "%lld", (long long)p->expires_s);
    const char *raw[NPARAM][2] = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                                  {"X-Amz-Credential", cred},
                                  {"X-Amz-Date", amz_date},
                                  {"X-Amz-Expires", expires},
                                  {"X-Amz-SignedHeaders", "host"},
                                  {"X-Amz-Security-Token", c->session_token}};
    for (size_t i = 0; i < NPARAM; i++) {
        if (!raw[i][1] || !*raw[i][1])
            continue;
        snprintf(q[nq].name, sizeof(q[nq].name), "%s", raw[i][0]);
        if (gq_sigv4_encode(raw[i][1], 0, q[nq].value, sizeof(q[nq].value)) != GQ_OK)
            goto out;
        nq++;
    }
    qsort(q, nq, sizeof(*q), sigv4_param_cmp);

    size_t qcap = nq * (sizeof(q->name) + sizeof(q->value) + 2) + 1;
    query = malloc(qcap);
    size_t pcap = 3 * strlen(p->path) + 1;
    char *path = malloc(pcap);
    size_t ccap = qcap + pcap + strlen(p->host) + 128;
    canon = malloc(ccap);
    if (!query || !path || !canon) {
        free(path);
        st = GQ_ERR_NOMEM;
        gq_errf(errstr, errstr_size, "out of memory");
        goto out;
    }
    size_t qo = 0;
    for (size_t i = 0; i < nq; i++)
        qo +=
            (size_t)snprintf(query + qo, qcap - qo, "%s%s=%s", i ? "&" : "", q[i].name, q[i].value);
    if (gq_sigv4_encode(p->path, 1, path, pcap) != GQ_OK) {
        free(path);
        goto out;
    }
    n = snprintf(canon, ccap, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", p->method, path,
                 query, p->host);
    if (n < 0 || (size_t)n >= ccap) {
        free(path);
        goto out;
    }
    char canon_hash[65];
    gq_sha256_hex(canon, (size_t)n, canon_hash);
    char sts[512];
    n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, canon_hash);
    if (n < 0 || (size_t)n >= sizeof(sts)) {
        free(path);
        goto out;
    }

    char ksecret[300];
    int kn = snprintf(ksecret, sizeof(ksecret), "AWS4%s", c->secret_key);
    if (kn < 0 || (size_t)kn >= sizeof(ksecret)) {
        free(path);
        goto out;
    }
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    gq_sigv4_hmac(ksecret, (size_t)kn, date, strlen(date), k1);
    gq_sigv4_hmac(k1, 32, p->region, strlen(p->region), k2);
    gq_sigv4_hmac(k2, 32, p->service, strlen(p->service), k3);
    gq_sigv4_hmac(k3, 32, "aws4_request", 12, k4);
    gq_sigv4_hmac(k4, 32, sts, (size_t)n, sig);
    memset(ksecret, 0, sizeof(ksecret));
    char sig_hex[65];
    sigv4_hex(sig, 32, sig_hex);

    n = snprintf(url, url_size, "%s://%s%s?%s&X-Amz-Signature=%s", p->scheme, p->host, path, query,
                 sig_hex);
    free(path);
    if (n < 0 || (size_t)n >= url_size)
        goto out;
    st = GQ_OK;
out:
    if (st == GQ_ERR_TOOBIG)
        gq_errf(errstr, errstr_size, "presigning: the URL is too long");
    free(q);
    free(query);
    free(canon);
    return st;
toobig:
    gq_errf(errstr, errstr_size, "presigning: the credential scope is too long");
    return GQ_ERR_TOOBIG;
}
