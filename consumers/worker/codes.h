/**
 * @file codes.h
 * @brief Every error code the worker writes: genq.jobs.error_code, genq.job_attempts
 * .error_code, the completion event's error.code, a dead letter's genq-reason and
 * genq-error-code headers, genq.rejected_messages.reason.
 *
 * docs/analysts.md has one table of them (meaning, retried or not); tests/error-codes-check
 * fails when this list, the table and the places that write a code disagree. A new code
 * goes here, into that table, and is written by its name.
 */
#ifndef GQ_CODES_H
#define GQ_CODES_H

/* Admission (admit.c): never retried. */
#define GQ_CODE_DECODE_ERROR "decode_error"
#define GQ_CODE_MESSAGE_TOO_LARGE "message_too_large"
#define GQ_CODE_INVALID_REQUEST "invalid_request"
#define GQ_CODE_UNKNOWN_TEMPLATE "unknown_template"
#define GQ_CODE_INVALID_WORKFLOW "invalid_workflow"
#define GQ_CODE_WORKFLOW_NOT_ALLOWED "workflow_not_allowed"

/* ComfyUI's answers and execution errors (job.c, policy.c). */
#define GQ_CODE_COMFY_VALIDATION "comfy_validation"
#define GQ_CODE_MISSING_MODEL "missing_model"
#define GQ_CODE_OUT_OF_MEMORY "out_of_memory"
#define GQ_CODE_NODE_ERROR "node_error"
#define GQ_CODE_EXECUTION_ERROR "execution_error"
#define GQ_CODE_INTERRUPTED "interrupted"
#define GQ_CODE_PROMPT_LOST "prompt_lost"
#define GQ_CODE_COMFY_UNAVAILABLE "comfy_unavailable"

/* Deadlines (job.c). */
#define GQ_CODE_TIMEOUT "timeout"
#define GQ_CODE_STALLED "stalled"

/* Outputs (job.c). */
#define GQ_CODE_NO_OUTPUTS "no_outputs"
#define GQ_CODE_OUTPUT_TOO_LARGE "output_too_large"
#define GQ_CODE_OUTPUT_ERROR "output_error"

/* The job's end (job.c). */
#define GQ_CODE_ATTEMPTS_EXHAUSTED "attempts_exhausted"
#define GQ_CODE_RECORD_ERROR "record_error"
#define GQ_CODE_CANCELLED "cancelled" /* a cancel request stopped it (job.c) */

#endif
