/*
 * The times genq's commands accept (see gq_time_parse in timeparse.h). No time zone of the
 * process is involved: offsets are read, and a time without one is UTC.
 */
#include "timeparse.h"

#include "util.h"

#include <stdbool.h>
#include <string.h>

/* Reads exactly n digits at *p into *v. */
static bool time_digits(const char **p, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil), so no time zone of the process is involved. */
static int64_t time_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* ISO 8601: 2026-12-01, 2026-12-01T18:30, 2026-12-01T18:30:05.250Z, 2026-12-01 18:30:05+01:00.
 * A date and time without an offset are UTC. */
static gq_status_t time_iso(const char *s, int64_t *out) {
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!time_digits(&p, 4, &y) || *p++ != '-' || !time_digits(&p, 2, &mo) || *p++ != '-' ||
        !time_digits(&p, 2, &d))
        return GQ_ERR_INVALID;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return GQ_ERR_INVALID;
    int64_t offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!time_digits(&p, 2, &h) || *p++ != ':' || !time_digits(&p, 2, &mi))
            return GQ_ERR_INVALID;
        if (*p == ':') {
            p++;
            if (!time_digits(&p, 2, &sec))
                return GQ_ERR_INVALID;
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0;
                for (; *p >= '0' && *p <= '9'; p++, n++)
                    if (n < 3)
                        ms = ms * 10 + (*p - '0');
                if (n == 0)
                    return GQ_ERR_INVALID;
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return GQ_ERR_INVALID;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!time_digits(&p, 2, &oh))
                return GQ_ERR_INVALID;
            if (*p == ':')
                p++;
            if (*p && !time_digits(&p, 2, &om))
                return GQ_ERR_INVALID;
            if (oh > 23 || om > 59)
                return GQ_ERR_INVALID;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*p)
        return GQ_ERR_INVALID;
    int64_t secs = time_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out = secs * 1000 + ms;
    return GQ_OK;
}

gq_status_t gq_time_parse(const char *s, int64_t now_ms, int64_t *out) {
    if (!s || !*s)
        return GQ_ERR_INVALID;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return GQ_OK;
    }
    size_t n = strlen(s);
    if (s[0] != '-') {
        /* Unix ms is all digits; anything with a '-' or a 'T' after the first digits is a date. */
        if (strspn(s, "0123456789") == n)
            return gq_parse_i64(s, 0, INT64_MAX, out);
        return time_iso(s, out);
    }
    char num[32];
    if (n < 3 || n - 2 >= sizeof(num))
        return GQ_ERR_INVALID;
    memcpy(num, s + 1, n - 2);
    num[n - 2] = '\0';
    int64_t v;
    if (gq_parse_i64(num, 0, 100000000, &v) != GQ_OK)
        return GQ_ERR_INVALID;
    int64_t unit = s[n - 1] == 's'   ? 1000
                   : s[n - 1] == 'm' ? 60000
                   : s[n - 1] == 'h' ? 3600000
                   : s[n - 1] == 'd' ? 86400000
                   : s[n - 1] == 'w' ? 604800000
                                     : 0;
    if (!unit)
        return GQ_ERR_INVALID;
    *out = now_ms - v * unit;
    return GQ_OK;
}
