/**
 * @file gq.h
 * @brief Types every genq module shares: the status code and a few macros.
 *
 * Conventions (see docs/hacking.md):
 *  - functions are named gq_<module>_<object>_<verb>() or gq_<module>_<verb>();
 *  - a fallible function returns gq_status_t and, on failure, writes a human-readable
 *    reason into a caller-supplied (errstr, errstr_size) buffer;
 *  - new/destroy for heap objects, init/release for embedded ones; destroy(NULL) is a no-op;
 *  - only main() calls exit().
 */
#ifndef GQ_H
#define GQ_H

#include <stddef.h>
#include <stdint.h>

/**
 * Status codes. The class of a failure decides what the worker does with a job:
 * GQ_ERR_TRANSIENT is retried, GQ_ERR_INVALID and GQ_ERR_NOTFOUND are permanent.
 */
typedef enum gq_status {
    GQ_OK = 0,
    GQ_ERR = -1,           /**< unclassified failure */
    GQ_ERR_INVALID = -2,   /**< bad input: permanent, retrying cannot help */
    GQ_ERR_TRANSIENT = -3, /**< a peer is down or busy: retry later */
    GQ_ERR_NOTFOUND = -4,  /**< the thing asked for does not exist */
    GQ_ERR_TIMEOUT = -5,   /**< a deadline passed */
    GQ_ERR_TOOBIG = -6,    /**< a bounded buffer would overflow */
    GQ_ERR_NOMEM = -7,
} gq_status_t;

const char *gq_status_name(gq_status_t st);
/** genq's version (git describe at build time). */
const char *gq_version(void);

#define GQ_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define GQ_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define GQ_UNUSED __attribute__((unused))
#else
#define GQ_PRINTF(fmt, args)
#define GQ_UNUSED
#endif

/** Writes a formatted message into errstr (always NUL-terminated, truncated if needed). */
void gq_errf(char *errstr, size_t errstr_size, const char *fmt, ...) GQ_PRINTF(3, 4);

/** Exit codes of the genq executable; documented in docs/exit-codes.md. */
enum {
    GQ_EXIT_OK = 0,
    GQ_EXIT_FAILURE = 1,      /**< the command ran and failed (e.g. a message not delivered) */
    GQ_EXIT_INTERRUPTED = 3,  /**< worker stopped with renders interrupted (left for redelivery) */
    GQ_EXIT_USAGE = 64,       /**< bad command line (EX_USAGE) */
    GQ_EXIT_DATAERR = 65,     /**< bad input data */
    GQ_EXIT_UNAVAILABLE = 69, /**< a service (Kafka, PostgreSQL, ComfyUI) is unreachable */
    GQ_EXIT_SOFTWARE = 70,    /**< internal error */
    GQ_EXIT_CONFIG = 78,      /**< configuration error, e.g. unmigrated database */
};

#endif
