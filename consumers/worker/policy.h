/**
 * @file policy.h
 * @brief The failure policy: what a ComfyUI error means for a job (retry or not, free the
 * GPU first or not) and how long to wait before the next attempt. Pure functions.
 */
#ifndef GQ_POLICY_H
#define GQ_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gq_policy_class {
    const char *code; /**< error code for the record: out_of_memory, missing_model, ... */
    bool retryable;
    bool free_first; /**< POST /free before the next attempt */
} gq_policy_class_t;

/**
 * Classifies an execution_error by its exception type and message. `repeated`: the job's
 * previous attempt failed with word for word the same error, which makes it deterministic
 * (retrying it again would only repeat it).
 */
gq_policy_class_t gq_policy_classify(const char *exception_type, const char *message,
                                     bool repeated);

/** Backoff before attempt `attempt` + 1: 1 s, 2 s, 4 s ... capped at 60 s. */
int64_t gq_policy_backoff_ms(int32_t attempt);

#endif
