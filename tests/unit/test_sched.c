/* The scheduler's policy (consumers/worker/sched.c) on made-up candidates. */
#include "worker/scheduler.h"
#include "check.h"

#include <stdio.h>
#include <string.h>

static gq_sched_cfg_t cfg_default(void) {
    gq_sched_cfg_t c = {.lanes = 1, .max_passes = 8, .max_wait_ms = 60000, .quantum = 4};
    return c;
}

static gq_sched_cand_t cand(int lane, const char *tenant, const char *model, uint64_t order) {
    gq_sched_cand_t c = {lane, tenant, model, order, 0, 0};
    return c;
}

/* Picks until nothing is left, removing each choice and aging the ones passed; returns the
 * order of picks in out (orders) and the largest number of passes any candidate saw. */
static int drain(gq_sched_t *s, gq_sched_cand_t *c, size_t n, uint64_t *out) {
    int worst = 0;
    for (size_t k = 0; k < n; k++) {
        gq_sched_why_t why;
        int i = gq_sched_pick(s, c, n - k, 0, &why);
        if (i < 0)
            return -1;
        out[k] = c[i].order;
        gq_sched_submitted(s, c[i].tenant, c[i].model);
        gq_sched_finished(s, c[i].tenant);
        for (size_t j = 0; j < n - k; j++)
            if (gq_sched_passed(&c[i], &c[j]) && ++c[j].passes > worst)
                worst = c[j].passes;
        c[i] = c[n - k - 1];
    }
    return worst;
}

static void test_fifo(void) {
    gq_sched_cfg_t cfg = cfg_default();
    cfg.fifo = true;
    gq_sched_t s;
    gq_sched_init(&s, &cfg);
    gq_sched_submitted(&s, "t", "a");
    gq_sched_cand_t c[] = {cand(0, "t", "b", 5), cand(0, "u", "a", 7), cand(0, "t", "a", 3)};
    gq_sched_why_t why;
    CHECK_INT(gq_sched_pick(&s, c, 3, 0, &why), 2);
    CHECK(why == GQ_SCHED_FIFO);
}

static void test_affinity(void) {
    gq_sched_cfg_t cfg = cfg_default();
    gq_sched_t s;
    gq_sched_init(&s, &cfg);
    gq_sched_submitted(&s, "t", "a");
    gq_sched_finished(&s, "t");
    gq_sched_cand_t c[] = {cand(0, "t", "b", 1), cand(0, "t", "a", 2), cand(0, "t", "b", 3)};
    gq_sched_why_t why;
    CHECK_INT(gq_sched_pick(&s, c, 3, 0, &why), 1);
    CHECK(why == GQ_SCHED_AFFINITY);
    /* Nothing for the loaded model: the oldest. */
    gq_sched_cand_t d[] = {cand(0, "t", "c", 4), cand(0, "t", "b", 3)};
    CHECK_INT(gq_sched_pick(&s, d, 2, 0, &why), 1);
    CHECK(why == GQ_SCHED_FIFO);
}

static void test_aging(void) {
    gq_sched_cfg_t cfg = cfg_default();
    gq_sched_t s;
    gq_sched_init(&s, &cfg);
    gq_sched_submitted(&s, "t", "a");
    gq_sched_cand_t c[] = {cand(0, "t", "b", 1), cand(0, "t", "a", 2)};
    c[0].passes = cfg.max_passes;
    gq_sched_why_t why;
    CHECK_INT(gq_sched_pick(&s, c, 2, 0, &why), 0);
    c[0].passes = 0;
    c[0].head_mono = 1;
    CHECK_INT(gq_sched_pick(&s, c, 2, 60000, &why), 1); /* the oldest for 60 s less 1 ms */
    CHECK_INT(gq_sched_pick(&s, c, 2, 60001, &why), 0); /* 60 s beyond its FIFO turn: overdue */
    CHECK(why == GQ_SCHED_AGED);
    /* A long mixed run: no job passed over more than max_passes times. */
    gq_sched_cand_t many[300];
    static const char *const models[] = {"a", "b", "c"};
    static const char *const tenants[] = {"x", "y"};
    for (int i = 0; i < 300; i++)
        many[i] = cand(0, tenants[(i * 7) % 2], models[(i * 13 + i / 5) % 3], (uint64_t)i);
    uint64_t order[300];
    int worst = drain(&s, many, 300, order);
    CHECK(worst >= 0 && worst <= cfg.max_passes);
}

static void test_fairness(void) {
    gq_sched_cfg_t cfg = cfg_default();
    cfg.quantum = 2;
    gq_sched_t s;
    gq_sched_init(&s, &cfg);
    /* A burst of 40 from tenant big, then 4 from small: small's go within the first picks. */
    gq_sched_cand_t c[44];
    for (int i = 0; i < 40; i++)
        c[i] = cand(0, "big", "m", (uint64_t)i);
    for (int i = 0; i < 4; i++)
        c[40 + i] = cand(0, "small", "m", (uint64_t)(40 + i));
    uint64_t order[44];
    CHECK(drain(&s, c, 44, order) >= 0);
    int small_done_at = -1, small_seen = 0;
    for (int k = 0; k < 44; k++)
        if (order[k] >= 40 && ++small_seen == 4)
            small_done_at = k;
    CHECK(small_done_at >= 0 && small_done_at < 12);
    /* Weights: a=3 against b=1 takes three times the turns. */
    cfg.quantum = 1;
    cfg.weights = "a=3,b=1";
    gq_sched_init(&s, &cfg);
    gq_sched_cand_t w[40];
    for (int i = 0; i < 20; i++) {
        w[2 * i] = cand(0, "a", "m", (uint64_t)(2 * i));
        w[2 * i + 1] = cand(0, "b", "m", (uint64_t)(2 * i + 1));
    }
    uint64_t o[40];
    drain(&s, w, 40, o);
    int a_first16 = 0;
    for (int k = 0; k < 16; k++)
        a_first16 += o[k] % 2 == 0;
    CHECK(a_first16 >= 11 && a_first16 <= 13);
}

/* The bench's workload (bench/run sched) on the policy alone: a big tenant's burst, then a
 * medium and a small one, over three checkpoints at random. Fair takes at most a third of
 * FIFO's model changes, the small tenant is done early, and aging still holds. */
static int swaps_of(const gq_sched_cand_t *c, size_t n, const uint64_t *order) {
    int swaps = 0;
    const char *last = NULL;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < n; i++)
            if (c[i].order == order[k]) {
                swaps += !last || strcmp(last, c[i].model) != 0;
                last = c[i].model;
            }
    return swaps;
}

static void test_mixed(void) {
    enum { N = 52 };
    static const char *const models[] = {"a", "b", "c"};
    gq_sched_cand_t base[N], c[N];
    uint32_t rnd = 20261201;
    for (int i = 0; i < N; i++) {
        rnd = rnd * 1103515245u + 12345u;
        base[i] = cand(0,
                       i < 36   ? "big"
                       : i < 48 ? "mid"
                                : "small",
                       models[(rnd >> 16) % 3], (uint64_t)i);
    }
    int swaps[2], small_done[2], worst[2];
    for (int fair = 0; fair < 2; fair++) {
        gq_sched_cfg_t cfg = cfg_default();
        cfg.fifo = !fair;
        cfg.max_passes = 32;
        gq_sched_t s;
        gq_sched_init(&s, &cfg);
        memcpy(c, base, sizeof(c));
        uint64_t order[N];
        worst[fair] = drain(&s, c, N, order);
        swaps[fair] = swaps_of(base, N, order);
        small_done[fair] = 0;
        for (int k = 0; k < N; k++)
            if (order[k] >= 48)
                small_done[fair] = k;
    }
    fprintf(stderr,
            "test_sched: mixed: model changes fifo %d, fair %d; small tenant done at pick "
            "%d (fifo %d); most passes %d\n",
            swaps[0], swaps[1], small_done[1], small_done[0], worst[1]);
    CHECK(swaps[1] * 3 <= swaps[0]);
    CHECK(small_done[1] < small_done[0] / 2);
    CHECK(worst[1] >= 0 && worst[1] <= 32);
}

static void test_quota(void) {
    gq_sched_cfg_t cfg = cfg_default();
    cfg.tenant_max_in_flight = 1;
    gq_sched_t s;
    gq_sched_init(&s, &cfg);
    gq_sched_submitted(&s, "x", "m");
    gq_sched_cand_t c[] = {cand(0, "x", "m", 1), cand(0, "y", "m", 2)};
    gq_sched_why_t why;
    CHECK_INT(gq_sched_pick(&s, c, 2, 0, &why), 1);
    gq_sched_submitted(&s, "y", "m");
    CHECK_INT(gq_sched_pick(&s, c, 2, 0, &why), -1);
    gq_sched_finished(&s, "x");
    CHECK_INT(gq_sched_pick(&s, c, 2, 0, &why), 0);
}

static void test_lanes(void) {
    gq_sched_cfg_t cfg = cfg_default();
    cfg.lanes = 2;
    gq_sched_t s;
    gq_sched_init(&s, &cfg);
    gq_sched_cand_t c[] = {cand(1, "t", "m", 1), cand(0, "t", "m", 9)};
    gq_sched_why_t why;
    CHECK_INT(gq_sched_pick(&s, c, 2, 0, &why), 1); /* strict: lane 0 first, however young */
    /* Weighted 3:1 */
    cfg.lanes_weighted = true;
    cfg.lane_weight[0] = 3;
    cfg.lane_weight[1] = 1;
    gq_sched_init(&s, &cfg);
    gq_sched_cand_t w[40];
    for (int i = 0; i < 20; i++) {
        w[2 * i] = cand(0, "t", "m", (uint64_t)(100 + i));
        w[2 * i + 1] = cand(1, "t", "m", (uint64_t)i);
    }
    uint64_t o[40];
    drain(&s, w, 40, o);
    int lane0 = 0;
    for (int k = 0; k < 16; k++)
        lane0 += o[k] >= 100;
    CHECK_INT(lane0, 12);
}

int main(void) {
    test_fifo();
    test_affinity();
    test_aging();
    test_fairness();
    test_mixed();
    test_quota();
    test_lanes();
    return CHECK_DONE("test_sched");
}
