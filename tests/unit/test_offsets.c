/* The offset tracker (consumers/worker/offsets.c): what may be committed, and what the record
 * of a finished message may move the stored offset to, while older messages are in flight. */
#include "worker/offsets.h"
#include "check.h"

static gq_offsets_t o;

/* The record of a message that finishes while older ones are in flight moves nothing; the
 * oldest one in flight being offset 0 included (0 means "offset + 1" to the recorder, so a
 * record of @10 stored 11 and skipped @0..@9 after a crash: test 0240 lost five jobs). */
static void test_next_if_done(void) {
    gq_offsets_init(&o);
    CHECK(gq_offsets_assign(&o, 0, 2, -1001)); /* Kafka's "no stored offset" */
    for (int64_t off = 0; off <= 10; off++)
        CHECK(gq_offsets_take(&o, 0, 2, off) == GQ_OK);
    CHECK(gq_offsets_next_if_done(&o, 0, 2, 10) < 0);
    CHECK(gq_offsets_next_if_done(&o, 0, 2, 4) < 0);
    /* @0 itself: everything up to the next in flight (@1). */
    CHECK_INT(gq_offsets_next_if_done(&o, 0, 2, 0), 1);
    CHECK_INT(gq_offsets_done(&o, 0, 2, 0), 1);
    CHECK_INT(gq_offsets_next_if_done(&o, 0, 2, 10), 1);
    for (int64_t off = 1; off < 10; off++)
        gq_offsets_done(&o, 0, 2, off);
    /* The last one in flight: past itself. */
    CHECK_INT(gq_offsets_next_if_done(&o, 0, 2, 10), 11);
    CHECK_INT(gq_offsets_done(&o, 0, 2, 10), 11);
    /* Not ours: nothing. */
    CHECK(gq_offsets_next_if_done(&o, 0, 3, 0) < 0);
    gq_offsets_revoke(&o, 0, 2);
    CHECK(gq_offsets_next_if_done(&o, 0, 2, 12) < 0);
    gq_offsets_release(&o);
}

/* Out of order: done @5 before @3 commits nothing past @3. */
static void test_done_out_of_order(void) {
    gq_offsets_init(&o);
    CHECK(gq_offsets_assign(&o, 1, 0, 3));
    for (int64_t off = 3; off <= 6; off++)
        CHECK(gq_offsets_take(&o, 1, 0, off) == GQ_OK);
    CHECK(gq_offsets_done(&o, 1, 0, 5) < 0);
    CHECK_INT(gq_offsets_done(&o, 1, 0, 3), 4);
    CHECK_INT(gq_offsets_done(&o, 1, 0, 4), 6);
    CHECK_INT(gq_offsets_done(&o, 1, 0, 6), 7);
    CHECK_INT(gq_offsets_in_flight(&o, 1, 0), 0);
    gq_offsets_release(&o);
}

int main(void) {
    test_next_if_done();
    test_done_out_of_order();
    return CHECK_DONE("test_offsets");
}
