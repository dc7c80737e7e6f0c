/**
 * @file scheduler.h
 * @brief Which ready job gets the next ComfyUI slot. A pure policy over a list of
 * candidates: no job state, no I/O (tests/unit/test_sched.c drives it with made-up ones).
 *
 * In order of precedence:
 *  1. **Lanes** (priority topics): the first lane with a candidate wins (strict), or lanes
 *     take turns in proportion to their weights (weighted).
 *  2. **Aging**: a candidate passed over `max_passes` times, or the oldest of its lane for
 *     `max_wait_ms` (waiting that long beyond its FIFO turn), goes next (the oldest such
 *     first), whatever the rest says. This bounds every job's extra wait over FIFO.
 *  3. **Tenant fairness** (start-time fair queuing on the request's `source`): each tenant
 *     has a virtual time, advanced by 1/weight per job it gets; the tenant furthest behind
 *     goes next. A tenant at its in-flight quota is skipped; a tenant that was idle starts
 *     level with the others (no credit saved up while idle).
 *  4. **Model affinity** within fairness: a job for the checkpoint ComfyUI will have loaded
 *     (that of the last job submitted) goes first if its tenant is less than `quantum` jobs
 *     (of weight 1) ahead of the tenant furthest behind; among such jobs, the tenant furthest
 *     behind, then the oldest. Only when no tenant within that slack has a job for the loaded
 *     checkpoint does the model change, to the oldest job of the tenant furthest behind.
 *  5. Ties: the oldest.
 * With `fifo`, only lanes and age order count (the reference the bench compares against).
 */
#ifndef GQ_SCHED_H
#define GQ_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GQ_SCHED_MAX_LANES 8
#define GQ_SCHED_MAX_TENANTS 256

/** A ready job, as the scheduler sees it (strings borrowed for the call). */
typedef struct gq_sched_cand {
    int lane;           /**< 0 = the most preferred */
    const char *tenant; /**< the request's source ("" when none) */
    const char *model;  /**< the checkpoint it loads, NULL if none */
    uint64_t order;     /**< arrival order: lower is older */
    int64_t head_mono;  /**< since when it is the oldest candidate of its lane (0: it is not):
                             where FIFO would have given it the next slot */
    int passes;         /**< times another job was chosen while it was older */
} gq_sched_cand_t;

typedef struct gq_sched_cfg {
    bool fifo;           /**< only lanes and age order */
    bool lanes_weighted; /**< else strict */
    int lane_weight[GQ_SCHED_MAX_LANES];
    int lanes;
    int max_passes;           /**< aging: passed over this often goes next (0: no bound) */
    int64_t max_wait_ms;      /**< aging: the lane's oldest this long goes next (0: no bound) */
    int quantum;              /**< jobs a tenant may run ahead to keep the loaded model */
    int tenant_max_in_flight; /**< 0: no quota */
    const char *weights;      /**< "tenant=weight,..." (others weigh 1) */
} gq_sched_cfg_t;

/** Why a candidate was chosen (for the metrics). */
typedef enum gq_sched_why {
    GQ_SCHED_FIFO,     /**< the oldest */
    GQ_SCHED_AGED,     /**< it had waited its bound */
    GQ_SCHED_AFFINITY, /**< an older one was passed over for the loaded model */
    GQ_SCHED_FAIR,     /**< an older one of another tenant was passed over */
} gq_sched_why_t;

/** The scheduler's memory between choices: virtual times, the loaded model. */
typedef struct gq_sched {
    gq_sched_cfg_t cfg;
    char loaded[256]; /**< the checkpoint of the last job submitted */
    struct {
        char name[129];
        double vtime; /**< service received, in jobs / weight */
        int in_flight;
        int weight;
        bool used;
    } tenants[GQ_SCHED_MAX_TENANTS];
    double vclock; /**< the least virtual time among waiting tenants at the last pick */
    int lane_credit[GQ_SCHED_MAX_LANES];
} gq_sched_t;

void gq_sched_init(gq_sched_t *s, const gq_sched_cfg_t *cfg);

/**
 * Picks among cand[0..n) (n > 0): returns its index and why, or -1 when every candidate's
 * tenant is at its quota. Advances the chosen tenant's virtual time as if it is submitted; the
 * caller then calls gq_sched_submitted (and later gq_sched_finished) and bumps `passes` of the
 * older candidates left behind (gq_sched_passed says which).
 */
int gq_sched_pick(gq_sched_t *s, const gq_sched_cand_t *cand, size_t n, int64_t now_mono,
                  gq_sched_why_t *why);

/** True when cand was older than the one chosen and was left behind. */
bool gq_sched_passed(const gq_sched_cand_t *chosen, const gq_sched_cand_t *cand);

/** A job of tenant went to ComfyUI with this checkpoint (NULL: none). */
void gq_sched_submitted(gq_sched_t *s, const char *tenant, const char *model);
/** A job of tenant left ComfyUI. */
void gq_sched_finished(gq_sched_t *s, const char *tenant);

#endif
