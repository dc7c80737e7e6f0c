/* Unit tests of consumers/worker/store/sigv4.c: SigV4 query signing (presigned URLs), held to
 * the example AWS publishes in "Authenticating Requests: Using Query Parameters (AWS
 * Signature Version 4)" of the Amazon S3 API reference. */
#include "worker/store/sigv4.h"

#include "check.h"

#include <string.h>

static const gq_sigv4_creds_t aws_example = {"AKIAIOSFODNN7EXAMPLE",
                                             "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};

/* The published example: GET examplebucket/test.txt, us-east-1, 2013-05-24T00:00:00Z, 86400 s. */
static void test_aws_example(void) {
    gq_sigv4_presign_t p = {"GET",       "https",     "examplebucket.s3.amazonaws.com",
                            "/test.txt", "us-east-1", "s3",
                            1369353600,  86400};
    char url[2048], err[256];
    CHECK_INT(gq_sigv4_presign(&p, &aws_example, url, sizeof(url), err, sizeof(err)), GQ_OK);
    CHECK_STR(url,
              "https://examplebucket.s3.amazonaws.com/test.txt"
              "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
              "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
              "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
              "&X-Amz-Signature="
              "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    /* One second later, or another key: another signature. */
    p.now_s++;
    CHECK_INT(gq_sigv4_presign(&p, &aws_example, url, sizeof(url), err, sizeof(err)), GQ_OK);
    CHECK(strstr(url, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") == NULL);
}

/* The signing key chain of the same page: HMAC over "AWS4"+secret, date, region, service. */
static void test_hmac(void) {
    /* RFC 4231 test case 2. */
    unsigned char md[32];
    gq_sigv4_hmac("Jefe", 4, "what do ya want for nothing?", 28, md);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_encode(void) {
    char out[64];
    CHECK_INT(gq_sigv4_encode("a b/c~d_e-f.g+h=", 1, out, sizeof(out)), GQ_OK);
    CHECK_STR(out, "a%20b/c~d_e-f.g%2Bh%3D");
    CHECK_INT(gq_sigv4_encode("a/b", 0, out, sizeof(out)), GQ_OK);
    CHECK_STR(out, "a%2Fb");
    CHECK_INT(gq_sigv4_encode("\xc3\xa9", 0, out, sizeof(out)), GQ_OK);
    CHECK_STR(out, "%C3%A9");
    CHECK_INT(gq_sigv4_encode("abcdef", 0, out, 6), GQ_ERR_TOOBIG);
    CHECK_INT(gq_sigv4_encode(" ", 0, out, 3), GQ_ERR_TOOBIG);
}

/* A session token is signed in the query, sorted between X-Amz-Expires and -SignedHeaders;
 * a path with spaces and a port in the host stay as the client sends them. */
static void test_token_and_path(void) {
    gq_sigv4_creds_t c = {"AKID", "secret", "tok/en+=="};
    gq_sigv4_presign_t p = {"GET",       "http", "127.0.0.1:8333", "/bucket/a b.png",
                            "us-east-1", "s3",   1700000000,       60};
    char url[2048], err[256];
    CHECK_INT(gq_sigv4_presign(&p, &c, url, sizeof(url), err, sizeof(err)), GQ_OK);
    CHECK(strncmp(url, "http://127.0.0.1:8333/bucket/a%20b.png?", 39) == 0);
    const char *e = strstr(url, "X-Amz-Expires=60&");
    const char *t = strstr(url, "X-Amz-Security-Token=tok%2Fen%2B%3D%3D&");
    const char *s = strstr(url, "X-Amz-SignedHeaders=host&");
    CHECK(e && t && s && e < t && t < s);
    CHECK(strstr(url, "secret") == NULL);
}

static void test_errors(void) {
    gq_sigv4_presign_t p = {"GET", "https", "h", "/k", "us-east-1", "s3", 1700000000, 0};
    char url[2048], err[256];
    CHECK_INT(gq_sigv4_presign(&p, &aws_example, url, sizeof(url), err, sizeof(err)),
              GQ_ERR_INVALID);
    p.expires_s = 604801;
    CHECK_INT(gq_sigv4_presign(&p, &aws_example, url, sizeof(url), err, sizeof(err)),
              GQ_ERR_INVALID);
    p.expires_s = 604800;
    CHECK_INT(gq_sigv4_presign(&p, &aws_example, url, 40, err, sizeof(err)), GQ_ERR_TOOBIG);
    p.path = "k";
    CHECK_INT(gq_sigv4_presign(&p, &aws_example, url, sizeof(url), err, sizeof(err)),
              GQ_ERR_INVALID);
}

int main(void) {
    test_aws_example();
    test_hmac();
    test_encode();
    test_token_and_path();
    test_errors();
    return CHECK_DONE("test_sigv4");
}
