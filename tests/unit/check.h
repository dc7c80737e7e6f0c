/**
 * @file check.h
 * @brief The unit-test assertion macros: every CHECK counts and reports, so a failing
 * check always fails the test binary (exit 1) and the runner's summary.
 */
#ifndef GQ_CHECK_H
#define GQ_CHECK_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {                             \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, #a,   \
                    #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");           \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ == check_b_) {                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #b,   \
                    check_a_, check_b_);                                                           \
        }                                                                                          \
    } while (0)

/** Finds a file of the source tree from the working directory or the binary's location,
 * so the test runs from the repository root, from bin/tests or from build/<mode>/bin. */
static inline int check_find_src(const char *rel, char *out, size_t out_size) {
    char base[PATH_MAX];
    const char *env = getenv("GENQ_SRCDIR");
    if (env) {
        int n = snprintf(out, out_size, "%s/%s", env, rel);
        return n > 0 && (size_t)n < out_size && access(out, R_OK) == 0;
    }
    for (int from = 0; from < 2; from++) {
        if (from == 0 && !getcwd(base, sizeof(base)))
            continue;
        if (from == 1) {
            ssize_t n = readlink("/proc/self/exe", base, sizeof(base) - 1);
            if (n <= 0)
                continue;
            base[n] = '\0';
        }
        for (int up = 0; up < 6; up++) {
            int n = snprintf(out, out_size, "%s/%s", base, rel);
            if (n > 0 && (size_t)n < out_size && access(out, R_OK) == 0)
                return 1;
            char *slash = strrchr(base, '/');
            if (!slash || slash == base)
                break;
            *slash = '\0';
        }
    }
    return 0;
}

/** The exit status of a test that could not run here (automake's convention): tests/run
 * counts it as skipped, neither passed nor failed. */
#define CHECK_SKIP 77

/** Returns from main() when a test cannot run here: prints "name: skipped: why". */
#define CHECK_SKIPPED(name, why) (printf("%s: skipped: %s\n", name, why), CHECK_SKIP)

/** Ends main(): prints "name: N checks passed, N failed" and returns the exit status. */
#define CHECK_DONE(name)                                                                           \
    (fprintf(stderr, "%s: %d checks passed, %d failed\n", name, check_passed, check_failed),       \
     (check_failed || !check_passed) ? 1 : 0)

#endif
