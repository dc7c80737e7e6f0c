/* The logger: one JSON object per line in JSON mode, job ids as a field (gq_log_job), and
 * URL passwords masked whoever prints them. */
#include "log.h"
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

static char lines[8192];

/* Runs fn with stderr sent to a file, then reads what it wrote into lines. */
static void capture(void (*fn)(void)) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    size_t n = fread(lines, 1, sizeof(lines) - 1, f);
    lines[n] = '\0';
    fclose(f);
}

static void say(void) {
    gq_info("ComfyUI http://ops:hunter2@gpu1:8188, queue \"a\"");
    gq_log_job(GQ_LOG_WARN, "5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11", "failed: %s", "oom");
    gq_debug("below the level: not written");
}

static void test_json(void) {
    gq_log_set_json(1);
    capture(say);
    gq_log_set_json(0);
    int n = 0;
    for (char *line = lines, *nl = strchr(line, '\n'); nl; line = nl + 1, nl = strchr(line, '\n')) {
        *nl = '\0';
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        CHECK(j != NULL);
        if (!j) {
            fprintf(stderr, "not JSON: %s\n", line);
            continue;
        }
        const char *msg = json_string_value(json_object_get(j, "msg"));
        const char *job = json_string_value(json_object_get(j, "job_id"));
        if (n == 0) {
            CHECK_STR(msg, "ComfyUI http://ops:***@gpu1:8188, queue \"a\"");
            CHECK(job == NULL);
            CHECK_STR(json_string_value(json_object_get(j, "level")), "info");
        } else {
            CHECK_STR(job, "5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11");
            CHECK_STR(msg, "failed: oom");
            CHECK_STR(json_string_value(json_object_get(j, "level")), "warn");
        }
        json_decref(j);
        n++;
    }
    CHECK_INT(n, 2);
}

static void test_text(void) {
    capture(say);
    CHECK(strstr(lines, "genq[test_log] info: ComfyUI http://ops:***@gpu1:8188, queue") != NULL);
    CHECK(strstr(lines, "genq[test_log] warn: job 5b0d9c57-5a6e-4a34-9d4c-2f5f1b7b9a11: failed: "
                        "oom\n") != NULL);
    CHECK(strstr(lines, "hunter2") == NULL);
    CHECK(strstr(lines, "below the level") == NULL);
}

int main(void) {
    gq_log_init("test_log");
    test_json();
    test_text();
    return CHECK_DONE("test_log");
}
