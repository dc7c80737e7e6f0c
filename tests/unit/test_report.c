/* Unit tests of consumers/report: the times genq report reads, HTML escaping, base64. */
#include "report/report.h"
#include "timeparse.h"

#include "check.h"

#include <openssl/evp.h>
#include <string.h>

static void test_times(void) {
    const int64_t now = 1750000000000;
    int64_t t = 0;
    CHECK_INT(gq_time_parse("2025-06-01", now, &t), GQ_OK);
    CHECK_INT(t, 1748736000000);
    CHECK_INT(gq_time_parse("2025-06-01T12:30:15Z", now, &t), GQ_OK);
    CHECK_INT(t, 1748736000000 + (12 * 3600 + 30 * 60 + 15) * 1000LL);
    CHECK_INT(gq_time_parse("2025-06-01T12:30:15.250Z", now, &t), GQ_OK);
    CHECK_INT(t, 1748736000000 + (12 * 3600 + 30 * 60 + 15) * 1000LL + 250);
    CHECK_INT(gq_time_parse("2025-06-01T14:30:15+02:00", now, &t), GQ_OK);
    CHECK_INT(t, 1748736000000 + (12 * 3600 + 30 * 60 + 15) * 1000LL);
    CHECK_INT(gq_time_parse("2025-06-01T10:00-0230", now, &t), GQ_OK);
    CHECK_INT(t, 1748736000000 + (12 * 3600 + 30 * 60) * 1000LL);
    CHECK_INT(gq_time_parse("2024-02-29T00:00:00Z", now, &t), GQ_OK);
    CHECK_INT(t, 1709164800000);
    CHECK_INT(gq_time_parse("1970-01-01T00:00:00Z", now, &t), GQ_OK);
    CHECK_INT(t, 0);
    CHECK_INT(gq_time_parse("1700000000000", now, &t), GQ_OK);
    CHECK_INT(t, 1700000000000);
    CHECK_INT(gq_time_parse("now", now, &t), GQ_OK);
    CHECK_INT(t, now);
    CHECK_INT(gq_time_parse("-1h", now, &t), GQ_OK);
    CHECK_INT(t, now - 3600000);
    CHECK_INT(gq_time_parse("-30s", now, &t), GQ_OK);
    CHECK_INT(t, now - 30000);
    CHECK_INT(gq_time_parse("-2w", now, &t), GQ_OK);
    CHECK_INT(t, now - 2 * 604800000LL);
    const char *bad[] = {"",
                         "-1y",
                         "-h",
                         "2025-13-01",
                         "2025-02-30",
                         "2023-02-29",
                         "2025-06-01T25:00",
                         "2025-06-01T12",
                         "12abc",
                         "2025-06-01T12:00:00+",
                         "2025-06-01X",
                         "-1.5h",
                         "yesterday"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = gq_time_parse(bad[i], now, &t);
        if (rc != GQ_ERR_INVALID)
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
        CHECK_INT(rc, GQ_ERR_INVALID);
    }
}

static void test_escape(void) {
    gq_buf_t b;
    gq_buf_init(&b, 1024);
    CHECK_INT(gq_report_esc(&b, "<img src=x onerror='a&b'>\"\x01\x1b[31m\ttab"), GQ_OK);
    CHECK_STR(b.data, "&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;&quot;[31m\ttab");
    gq_buf_reset(&b);
    CHECK_INT(gq_report_esc(&b, NULL), GQ_OK);
    CHECK_INT(b.len, 0);
    gq_buf_release(&b);
    gq_buf_init(&b, 8);
    CHECK_INT(gq_report_esc(&b, "<<<"), GQ_ERR_TOOBIG);
    gq_buf_release(&b);
}

static void test_base64(void) {
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    for (size_t n = 0; n <= 10; n++) {
        gq_buf_t b;
        gq_buf_init(&b, 4096);
        size_t len = n == 10 ? sizeof(data) : n;
        CHECK_INT(gq_report_base64(&b, data, len), GQ_OK);
        unsigned char want[512];
        int wn = EVP_EncodeBlock(want, data, (int)len);
        CHECK_INT(b.len, wn);
        CHECK(b.len == (size_t)wn && memcmp(b.data ? b.data : "", want, (size_t)wn) == 0);
        gq_buf_release(&b);
    }
}

int main(void) {
    test_times();
    test_escape();
    test_base64();
    return CHECK_DONE("test_report");
}
