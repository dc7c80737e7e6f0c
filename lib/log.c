#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

static const char *log_component = "genq";
static gq_log_level_t log_level = GQ_LOG_INFO;
static int log_json;
/* One lock so lines from the worker's threads never interleave. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void gq_log_init(const char *component) { log_component = component; }
void gq_log_set_level(gq_log_level_t level) { log_level = level; }
gq_log_level_t gq_log_get_level(void) { return log_level; }
void gq_log_set_json(int on) { log_json = on; }
int gq_log_get_json(void) { return log_json; }

int gq_log_level_parse(const char *s) {
    for (size_t i = 0; i < GQ_ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

static void log_json_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

/*
 * Masks the password of every URL in s: scheme://user:password@host -> scheme://user:***@host,
 * so that a URL with credentials (GENQ_COMFYUI_URL, a database URL in an error) never reaches
 * a log, whichever caller printed it. The user info ends at the last '@' of the authority.
 */
static void log_redact(const char *s, char *out, size_t out_size) {
    size_t o = 0;
    while (*s && o + 1 < out_size) {
        const char *sep = strstr(s, "://");
        if (!sep)
            break;
        const char *auth = sep + 3, *end = auth + strcspn(auth, "/?#\" \t'");
        const char *at = NULL, *colon = NULL;
        for (const char *c = auth; c < end; c++)
            if (*c == '@')
                at = c;
        if (at)
            colon = memchr(auth, ':', (size_t)(at - auth));
        const char *copy_to = colon ? colon + 1 : end;
        int n =
            snprintf(out + o, out_size - o, "%.*s%s", (int)(copy_to - s), s, colon ? "***" : "");
        o = n < 0 || (size_t)n >= out_size - o ? out_size - 1 : o + (size_t)n;
        s = colon ? at : end;
    }
    snprintf(out + o, out_size - o, "%s", s);
}

static void log_emit(gq_log_level_t level, const char *job_id, const char *fmt, va_list ap)
    GQ_PRINTF(3, 0);
static void log_emit(gq_log_level_t level, const char *job_id, const char *fmt, va_list ap) {
    char raw[2048], msg[2048];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    log_redact(raw, msg, sizeof(msg));

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    if (log_json) {
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",", when,
                ts.tv_nsec / 1000000, level_names[level], log_component);
        if (job_id) {
            fputs("\"job_id\":\"", stderr);
            log_json_escape(stderr, job_id);
            fputs("\",", stderr);
        }
        fputs("\"msg\":\"", stderr);
        log_json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03ldZ genq[%s] %s: %s%s%s%s\n", when, ts.tv_nsec / 1000000,
                log_component, level_names[level], job_id ? "job " : "", job_id ? job_id : "",
                job_id ? ": " : "", msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void gq_log(gq_log_level_t level, const char *fmt, ...) {
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, NULL, fmt, ap);
    va_end(ap);
}

void gq_log_job(gq_log_level_t level, const char *job_id, const char *fmt, ...) {
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, job_id, fmt, ap);
    va_end(ap);
}
