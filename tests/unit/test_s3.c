/* Unit tests of consumers/worker/store/s3.c that need no server: the s3:// URL, the options,
 * the credentials from a Secret's files, and presigned links in both addressing styles. (The
 * uploads themselves are tested against a real S3-compatible server: integration tests 0800
 * and 0805.) */
#include "worker/store/s3.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void test_parse_url(void) {
    char b[64], p[256], err[256];
    CHECK_INT(gq_s3_parse_url("s3://my-bucket/a/b/", b, sizeof(b), p, sizeof(p), err, sizeof(err)),
              GQ_OK);
    CHECK_STR(b, "my-bucket");
    CHECK_STR(p, "a/b");
    CHECK_INT(gq_s3_parse_url("s3://bkt", b, sizeof(b), p, sizeof(p), err, sizeof(err)), GQ_OK);
    CHECK_STR(p, "");
    const char *bad[] = {"file:///x",    "s3://",          "s3://ab",         "s3://Bucket/x",
                         "s3://-bkt/x",  "s3://bkt/../x",  "s3://bkt/a//b",   "s3://bkt/a b",
                         "s3://bkt/./x", "s3://bkt/a?x=1", "s3://bkt/%2e%2e", NULL};
    for (int i = 0; bad[i]; i++) {
        int rc = gq_s3_parse_url(bad[i], b, sizeof(b), p, sizeof(p), err, sizeof(err));
        if (rc != GQ_ERR_INVALID)
            fprintf(stderr, "accepted %s\n", bad[i]);
        CHECK_INT(rc, GQ_ERR_INVALID);
    }
}

static void test_options(void) {
    char err[512];
    gq_s3_opts_t o = {.url = "s3://bkt/p",
                      .endpoint = "http://127.0.0.1:9000",
                      .access_key = "AK",
                      .secret_key = "SK",
                      .part_size = 5 << 20};
    gq_s3_t *s = gq_s3_new(&o, NULL, err, sizeof(err));
    CHECK(s != NULL);
    gq_s3_destroy(s);
    /* no credentials, a part under S3's minimum, an endpoint with a path or user, a bad region */
    gq_s3_opts_t x = o;
    x.secret_key = NULL;
    CHECK(gq_s3_new(&x, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "credentials") != NULL);
    x = o;
    x.part_size = 1 << 20;
    CHECK(gq_s3_new(&x, NULL, err, sizeof(err)) == NULL);
    x = o;
    x.endpoint = "http://127.0.0.1:9000/bucket";
    CHECK(gq_s3_new(&x, NULL, err, sizeof(err)) == NULL);
    x.endpoint = "http://user@127.0.0.1:9000";
    CHECK(gq_s3_new(&x, NULL, err, sizeof(err)) == NULL);
    x.endpoint = "ftp://127.0.0.1";
    CHECK(gq_s3_new(&x, NULL, err, sizeof(err)) == NULL);
    x = o;
    x.region = "us-east-1/../x";
    CHECK(gq_s3_new(&x, NULL, err, sizeof(err)) == NULL);
}

/* The Secret's files win over the variables; a missing secret file is an error at start. */
static void test_credentials_dir(void) {
    char dir[] = "/tmp/genq-test-s3-XXXXXX", path[128], err[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/AWS_ACCESS_KEY_ID", dir);
    FILE *f = fopen(path, "w");
    fputs("FILEKEY\n", f);
    fclose(f);
    gq_s3_opts_t o = {.url = "s3://bkt",
                      .endpoint = "http://127.0.0.1:9000",
                      .path_style = true,
                      .access_key = "ENVKEY",
                      .secret_key = "ENVSECRET",
                      .credentials_dir = dir,
                      .presign_s = 60};
    CHECK(gq_s3_new(&o, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "AWS_SECRET_ACCESS_KEY") != NULL);
    snprintf(path, sizeof(path), "%s/AWS_SECRET_ACCESS_KEY", dir);
    f = fopen(path, "w");
    fputs("FILESECRET", f);
    fclose(f);
    gq_s3_t *s = gq_s3_new(&o, NULL, err, sizeof(err));
    CHECK(s != NULL);
    char url[4096];
    CHECK_INT(gq_s3_presign(s, "s3://bkt/p/ab/abcd.png", 0, url, sizeof(url), err, sizeof(err)),
              GQ_OK);
    CHECK(strncmp(url, "http://127.0.0.1:9000/bkt/p/ab/abcd.png?", 40) == 0);
    CHECK(strstr(url, "X-Amz-Credential=FILEKEY%2F") != NULL);
    CHECK(strstr(url, "X-Amz-Expires=60&") != NULL);
    CHECK(strstr(url, "SECRET") == NULL);
    /* another bucket's object is not ours to sign */
    CHECK_INT(gq_s3_presign(s, "s3://other/x.png", 0, url, sizeof(url), err, sizeof(err)),
              GQ_ERR_INVALID);
    gq_s3_destroy(s);
    snprintf(path, sizeof(path), "%s/AWS_ACCESS_KEY_ID", dir);
    remove(path);
    snprintf(path, sizeof(path), "%s/AWS_SECRET_ACCESS_KEY", dir);
    remove(path);
    rmdir(dir);
}

/* Virtual-host addressing: the bucket goes into the host, the key alone into the path. */
static void test_virtual_host(void) {
    char err[256], url[4096];
    gq_s3_opts_t o = {.url = "s3://bkt/out",
                      .region = "eu-west-1",
                      .access_key = "AK",
                      .secret_key = "SK",
                      .presign_s = 3600};
    gq_s3_t *s = gq_s3_new(&o, NULL, err, sizeof(err));
    CHECK(s != NULL);
    CHECK_INT(gq_s3_presign(s, "s3://bkt/out/ab/x.png", 0, url, sizeof(url), err, sizeof(err)),
              GQ_OK);
    CHECK(strncmp(url, "https://bkt.s3.eu-west-1.amazonaws.com/out/ab/x.png?", 52) == 0);
    CHECK(strstr(url, "%2Feu-west-1%2Fs3%2Faws4_request") != NULL);
    gq_s3_destroy(s);
    /* a bucket with dots cannot be a host name under TLS: path style is forced */
    o.url = "s3://my.bkt/out";
    s = gq_s3_new(&o, NULL, err, sizeof(err));
    CHECK(s != NULL);
    CHECK_INT(gq_s3_presign(s, "s3://my.bkt/out/x.png", 0, url, sizeof(url), err, sizeof(err)),
              GQ_OK);
    CHECK(strncmp(url, "https://s3.eu-west-1.amazonaws.com/my.bkt/out/x.png?", 52) == 0);
    gq_s3_destroy(s);
}

int main(void) {
    test_parse_url();
    test_options();
    test_credentials_dir();
    test_virtual_host();
    return CHECK_DONE("test_s3");
}
