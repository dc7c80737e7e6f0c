/* Unit tests of consumers/worker/policy.c: how an execution_error is classified, checked
 * against what the real ComfyUI 0.3.64 reported (tests/comfyreal/FACTS.md (a)). */
#include "worker/policy.h"

#include "check.h"

static void expect(const char *type, const char *msg, bool repeated, const char *code,
                   bool retryable, bool free_first) {
    gq_policy_class_t c = gq_policy_classify(type, msg, repeated);
    if (strcmp(c.code, code) != 0 || c.retryable != retryable || c.free_first != free_first)
        fprintf(stderr, "classify(%s, %s, %d): %s %d %d\n", type ? type : "(null)",
                msg ? msg : "(null)", (int)repeated, c.code, (int)c.retryable, (int)c.free_first);
    CHECK_STR(c.code, code);
    CHECK(c.retryable == retryable);
    CHECK(c.free_first == free_first);
}

static void test_facts(void) {
    /* ImageBlur with a radius the image cannot pad: deterministic at once (it repeats
     * identically, and no GPU or host state changes it). */
    expect("RuntimeError",
           "Argument #4: Padding size should be less than the corresponding input dimension, "
           "but got: padding (8, 8) at dimension 3 of input [1, 3, 4, 4]",
           false, "node_error", false, false);
    /* A checkpoint gone between validation and the load. */
    expect("FileNotFoundError",
           "Model in folder 'checkpoints' with filename 'sd15-gone.safetensors' not found.", false,
           "missing_model", false, false);
    /* Out of memory: CUDA's class (fact sheet) and the CPU allocator (observed). */
    expect("torch.OutOfMemoryError", "Allocation on device", false, "out_of_memory", true, true);
    expect("RuntimeError",
           "[enforce fail at alloc_cpu.cpp:124] err == 0. DefaultCPUAllocator: can't allocate "
           "memory: you tried to allocate 274877906944 bytes. Error code 12 (Cannot allocate "
           "memory)",
           false, "out_of_memory", true, true);
    expect("RuntimeError", "CUDA out of memory. Tried to allocate 2.00 GiB", false, "out_of_memory",
           true, true);
    /* Out of memory stays retryable even when it repeats: other work frees the GPU. */
    expect("torch.OutOfMemoryError", "Allocation on device", true, "out_of_memory", true, true);
}

static void test_types(void) {
    expect("ValueError", "bad size", false, "node_error", false, false);
    expect("builtins.ValueError", "x", false, "node_error", false, false);
    expect("PIL.UnidentifiedImageError", "cannot identify image file", false, "node_error", false,
           false);
    expect("MyValueError", "x", false, "execution_error", true, false); /* not ValueError */
    expect("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (2x768 and 1024x320)", false,
           "node_error", false, false);
    expect("RuntimeError", "Sizes of tensors must match except in dimension 1", false, "node_error",
           false, false);
    /* A RuntimeError genq does not recognise may be the GPU: once retried, then final. */
    expect("RuntimeError", "CUDA error: an illegal memory access was encountered", false,
           "execution_error", true, false);
    expect("RuntimeError", "CUDA error: an illegal memory access was encountered", true,
           "execution_error", false, false);
    expect("Exception", "custom node failed", false, "execution_error", true, false);
    expect(NULL, NULL, false, "execution_error", true, false);
    expect("", "", true, "execution_error", false, false);
}

static void test_backoff(void) {
    CHECK_INT(gq_policy_backoff_ms(1), 1000);
    CHECK_INT(gq_policy_backoff_ms(2), 2000);
    CHECK_INT(gq_policy_backoff_ms(0), 1000);
    CHECK_INT(gq_policy_backoff_ms(7), 60000);
    CHECK_INT(gq_policy_backoff_ms(100), 60000);
}

int main(void) {
    test_facts();
    test_types();
    test_backoff();
    return CHECK_DONE("test_policy");
}
