/* Unit tests of the time forms of genq replay and genq report (lib/timeparse.c): unix ms,
 * ISO 8601, now and relative times, for --since, --until and --to-time. */
#include "timeparse.h"

#include "check.h"

#include <stdint.h>

static int64_t parse(const char *s, int64_t now) {
    int64_t v = INT64_MIN;
    if (gq_time_parse(s, now, &v) != GQ_OK)
        return INT64_MIN;
    return v;
}

int main(void) {
    const int64_t now = INT64_C(1764612000000); /* 2025-12-01T18:00:00Z */
    /* unix ms and relative times, as before */
    CHECK_INT(parse("1764612000000", now), INT64_C(1764612000000));
    CHECK_INT(parse("0", now), 0);
    CHECK_INT(parse("-30s", now), now - 30000);
    CHECK_INT(parse("-15m", now), now - 900000);
    CHECK_INT(parse("-2h", now), now - 7200000);
    CHECK_INT(parse("-1d", now), now - 86400000);
    CHECK_INT(parse("-2w", now), now - 2 * INT64_C(604800000));
    CHECK_INT(parse("now", now), now);
    /* ISO 8601: UTC, an offset, a fraction, a date alone, a space instead of T */
    CHECK_INT(parse("2025-12-01T18:00:00Z", now), INT64_C(1764612000000));
    CHECK_INT(parse("2025-12-01T18:00:00.250Z", now), INT64_C(1764612000250));
    CHECK_INT(parse("2025-12-01T18:00:00.5Z", now), INT64_C(1764612000500));
    CHECK_INT(parse("2025-12-01T18:00:00.123456Z", now), INT64_C(1764612000123));
    CHECK_INT(parse("2025-12-01T19:00:00+01:00", now), INT64_C(1764612000000));
    CHECK_INT(parse("2025-12-01T13:30:00-0430", now), INT64_C(1764612000000));
    CHECK_INT(parse("2025-12-01T18:00:00+01", now), INT64_C(1764608400000));
    CHECK_INT(parse("2025-12-01T18:00:00", now), INT64_C(1764612000000));
    CHECK_INT(parse("2025-12-01 18:00", now), INT64_C(1764612000000));
    CHECK_INT(parse("2025-12-01", now), INT64_C(1764547200000));
    CHECK_INT(parse("1970-01-01T00:00:00Z", now), 0);
    CHECK_INT(parse("2024-02-29T12:00:00Z", now), INT64_C(1709208000000));
    CHECK_INT(parse("2000-03-01", now), INT64_C(951868800000));
    /* not times */
    static const char *const bad[] = {
        "",
        "yesterday",
        "2025-13-01",
        "2025-02-30",
        "2023-02-29",
        "2025-12-01T24:00:00Z",
        "2025-12-01T18:60Z",
        "2025-12-01T18",
        "2025-12-01T18:00:00Q",
        "2025-12-01T18:00:00.Z",
        "2025-12-01T18:00:00+25:00",
        "2025-1-1",
        "25-12-01",
        "-h",
        "1764612000000x",
        "2025-12-01T18:00:00Z trailing",
    };
    for (size_t i = 0; i < GQ_ARRAY_LEN(bad); i++) {
        int64_t v = 42;
        gq_status_t st = gq_time_parse(bad[i], now, &v);
        if (st == GQ_OK)
            fprintf(stderr, "\"%s\" parsed as %lld\n", bad[i], (long long)v);
        CHECK(st == GQ_ERR_INVALID);
    }
    return CHECK_DONE("test_replay");
}
