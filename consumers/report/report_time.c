/*
 * The times genq report accepts (see gq_report_parse_time in report.h).
 */
#include "report.h"

#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Reads exactly n digits at *p. */
static bool time_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's). */
static int64_t time_days(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool time_iso(const char *s, int64_t *out) {
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!time_digits(&p, 4, &y) || *p++ != '-' || !time_digits(&p, 2, &mo) || *p++ != '-' ||
        !time_digits(&p, 2, &d))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return false;
    int64_t off_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!time_digits(&p, 2, &h) || *p++ != ':' || !time_digits(&p, 2, &mi))
            return false;
        if (*p == ':') {
            p++;
            if (!time_digits(&p, 2, &sec))
                return false;
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0, scale = 100;
                while (isdigit((unsigned char)*p)) {
                    if (n < 3)
                        ms += (*p - '0') * scale;
                    scale /= 10;
                    n++;
                    p++;
                }
                if (n == 0)
                    return false;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!time_digits(&p, 2, &oh))
                return false;
            if (*p == ':')
                p++;
            if (*p && !time_digits(&p, 2, &om))
                return false;
            if (oh > 23 || om > 59)
                return false;
            off_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p)
        return false;
    *out = ((time_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - off_s) * 1000 + ms;
    return true;
}

gq_status_t gq_report_parse_time(const char *s, int64_t now_ms, int64_t *out_ms) {
    if (!s || !*s)
        return GQ_ERR_INVALID;
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return GQ_OK;
    }
    if (s[0] == '-') {
        size_t n = strlen(s);
        char num[24];
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
        *out_ms = now_ms - v * unit;
        return GQ_OK;
    }
    if (strchr(s, '-'))
        return time_iso(s, out_ms) ? GQ_OK : GQ_ERR_INVALID;
    return gq_parse_i64(s, 0, INT64_MAX / 2, out_ms);
}
