/* The failure policy (see policy.h). */
#include "policy.h"

#include "codes.h"
#include "gq.h"

#include <string.h>

#define POLICY_BACKOFF_MAX_MS 60000

/* Exceptions a node raises on its inputs: the same inputs raise them again. Python's own
 * types as ComfyUI reports them (the class name, sometimes module-qualified). */
static const char *const policy_deterministic[] = {
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "AttributeError",
    "AssertionError",
    "NotImplementedError",
    "ZeroDivisionError",
    "JSONDecodeError",
    "UnicodeDecodeError",
    "UnidentifiedImageError",
};

/* torch errors about the shapes of a node's inputs: the same inputs give them again, on any
 * GPU. The real ComfyUI 0.3.64 raises the first from ImageBlur with a radius not smaller
 * than the image (tests/comfyreal/FACTS.md (a)), as a plain RuntimeError; a RuntimeError is
 * otherwise retried, since CUDA faults are RuntimeErrors too. */
static const char *const policy_deterministic_messages[] = {
    "Padding size should be less than the corresponding input dimension",
    "shapes cannot be multiplied",
    "Sizes of tensors must match",
    "must match the size of tensor",
};

/* Out of memory as torch says it: CUDA's OutOfMemoryError, or a CPU allocation that failed
 * (a plain RuntimeError from DefaultCPUAllocator, FACTS.md (a)). */
static const char *const policy_oom_messages[] = {
    "out of memory",
    "Allocation on device",
    "DefaultCPUAllocator: can't allocate memory",
};

static bool policy_has(const char *msg, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strstr(msg, list[i]))
            return true;
    return false;
}

static bool policy_is(const char *type, const char *name) {
    /* "builtins.ValueError", "PIL.UnidentifiedImageError" or just the name. */
    size_t tl = strlen(type), nl = strlen(name);
    return tl >= nl && strcmp(type + tl - nl, name) == 0 && (tl == nl || type[tl - nl - 1] == '.');
}

gq_policy_class_t gq_policy_classify(const char *exception_type, const char *message,
                                     bool repeated) {
    const char *type = exception_type ? exception_type : "";
    const char *msg = message ? message : "";
    if (strstr(type, "OutOfMemory") ||
        policy_has(msg, policy_oom_messages, GQ_ARRAY_LEN(policy_oom_messages)))
        return (gq_policy_class_t){GQ_CODE_OUT_OF_MEMORY, true, true};
    if ((policy_is(type, "FileNotFoundError") && strstr(msg, "Model in folder")) ||
        strstr(msg, "not in list") /* a model name the loader's list lacks */)
        return (gq_policy_class_t){GQ_CODE_MISSING_MODEL, false, false};
    for (size_t i = 0; i < GQ_ARRAY_LEN(policy_deterministic); i++)
        if (policy_is(type, policy_deterministic[i]))
            return (gq_policy_class_t){GQ_CODE_NODE_ERROR, false, false};
    if (policy_is(type, "RuntimeError") &&
        policy_has(msg, policy_deterministic_messages, GQ_ARRAY_LEN(policy_deterministic_messages)))
        return (gq_policy_class_t){GQ_CODE_NODE_ERROR, false, false};
    /* Anything else may be the GPU or the host (a CUDA fault, a lost file system): retry,
     * but not an error that already happened word for word on the previous attempt. */
    if (repeated)
        return (gq_policy_class_t){GQ_CODE_EXECUTION_ERROR, false, false};
    return (gq_policy_class_t){GQ_CODE_EXECUTION_ERROR, true, false};
}

int64_t gq_policy_backoff_ms(int32_t attempt) {
    int shift = attempt - 1 < 0 ? 0 : attempt - 1 > 6 ? 6 : attempt - 1;
    int64_t ms = 1000LL << shift;
    return ms < POLICY_BACKOFF_MAX_MS ? ms : POLICY_BACKOFF_MAX_MS;
}
