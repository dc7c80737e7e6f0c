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

void gq_log(gq_log_level_t level, const char *fmt, ...) {
    if (level > log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    if (log_json) {
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"",
                when, ts.tv_nsec / 1000000, level_names[level], log_component);
        log_json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03ldZ genq[%s] %s: %s\n", when, ts.tv_nsec / 1000000, log_component,
                level_names[level], msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
