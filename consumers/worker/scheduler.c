/* Which ready job goes next (see scheduler.h). */
#include "scheduler.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sched_weight_of(const char *weights, const char *tenant) {
    /* "a=3,b=2": a plain scan; the list is short and read once per new tenant. */
    size_t tl = strlen(tenant);
    for (const char *p = weights; p && *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (eq && eq < end && (size_t)(eq - p) == tl && memcmp(p, tenant, tl) == 0) {
            char num[16];
            size_t nl =
                (size_t)(end - eq - 1) < sizeof(num) - 1 ? (size_t)(end - eq - 1) : sizeof(num) - 1;
            memcpy(num, eq + 1, nl);
            num[nl] = '\0';
            int64_t w;
            if (gq_parse_i64(num, 1, 1000, &w) == GQ_OK)
                return (int)w;
        }
        p = *end ? end + 1 : end;
    }
    return 1;
}

void gq_sched_init(gq_sched_t *s, const gq_sched_cfg_t *cfg) {
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    if (s->cfg.quantum < 1)
        s->cfg.quantum = 1;
    if (s->cfg.lanes < 1)
        s->cfg.lanes = 1;
    for (int i = 0; i < GQ_SCHED_MAX_LANES; i++)
        if (s->cfg.lane_weight[i] < 1)
            s->cfg.lane_weight[i] = 1;
}

/* The tenant's slot (made when new); the last slot takes whoever finds the table full. */
static size_t sched_tenant(gq_sched_t *s, const char *name) {
    size_t free_slot = GQ_SCHED_MAX_TENANTS;
    for (size_t i = 0; i < GQ_SCHED_MAX_TENANTS; i++) {
        if (s->tenants[i].used && strcmp(s->tenants[i].name, name) == 0)
            return i;
        /* A slot is reused only once its tenant is idle and not ahead of the others: its
         * virtual time would be raised to the clock anyway when it comes back. */
        if (free_slot == GQ_SCHED_MAX_TENANTS &&
            (!s->tenants[i].used ||
             (s->tenants[i].in_flight == 0 && s->tenants[i].vtime <= s->vclock)))
            free_slot = i;
    }
    size_t i = free_slot < GQ_SCHED_MAX_TENANTS - 1 ? free_slot : GQ_SCHED_MAX_TENANTS - 1;
    if (!s->tenants[i].used || strcmp(s->tenants[i].name, name) != 0) {
        bool shared = i == GQ_SCHED_MAX_TENANTS - 1 && s->tenants[i].used;
        if (!shared) {
            memset(&s->tenants[i], 0, sizeof(s->tenants[i]));
            snprintf(s->tenants[i].name, sizeof(s->tenants[i].name), "%s", name);
            s->tenants[i].weight = sched_weight_of(s->cfg.weights, name);
            s->tenants[i].vtime = s->vclock;
            s->tenants[i].used = true;
        }
    }
    return i;
}

static bool sched_older(const gq_sched_cand_t *a, const gq_sched_cand_t *b) {
    return a->order < b->order;
}

static bool sched_same_model(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* The lane to serve: the first with a candidate (strict), or smooth weighted round robin. */
static int sched_lane(gq_sched_t *s, const bool *has) {
    if (!s->cfg.lanes_weighted) {
        for (int l = 0; l < GQ_SCHED_MAX_LANES; l++)
            if (has[l])
                return l;
        return -1;
    }
    int best = -1, total = 0;
    for (int l = 0; l < GQ_SCHED_MAX_LANES; l++) {
        if (!has[l])
            continue;
        s->lane_credit[l] += s->cfg.lane_weight[l];
        total += s->cfg.lane_weight[l];
        if (best < 0 || s->lane_credit[l] > s->lane_credit[best])
            best = l;
    }
    if (best >= 0)
        s->lane_credit[best] -= total;
    return best;
}

int gq_sched_pick(gq_sched_t *s, const gq_sched_cand_t *cand, size_t n, int64_t now_mono,
                  gq_sched_why_t *why) {
    /* Candidates whose tenant may take one more slot, and the lanes they are in. */
    bool has_lane[GQ_SCHED_MAX_LANES] = {false};
    size_t eligible = 0;
    for (size_t i = 0; i < n; i++) {
        size_t t = sched_tenant(s, cand[i].tenant ? cand[i].tenant : "");
        bool quota = s->cfg.tenant_max_in_flight > 0 &&
                     s->tenants[t].in_flight >= s->cfg.tenant_max_in_flight;
        int lane = cand[i].lane >= 0 && cand[i].lane < GQ_SCHED_MAX_LANES ? cand[i].lane : 0;
        if (!quota) {
            has_lane[lane] = true;
            eligible++;
        }
    }
    if (eligible == 0)
        return -1;
    int lane = sched_lane(s, has_lane);
#define SCHED_OK(i)                                                                                \
    ((cand[i].lane >= 0 && cand[i].lane < GQ_SCHED_MAX_LANES ? cand[i].lane : 0) == lane &&        \
     !(s->cfg.tenant_max_in_flight > 0 &&                                                          \
       s->tenants[sched_tenant(s, cand[i].tenant ? cand[i].tenant : "")].in_flight >=              \
           s->cfg.tenant_max_in_flight))
    /* The oldest in the lane, and the oldest overdue one. */
    int oldest = -1, aged = -1;
    for (size_t i = 0; i < n; i++) {
        if (!SCHED_OK(i))
            continue;
        if (oldest < 0 || sched_older(&cand[i], &cand[oldest]))
            oldest = (int)i;
        bool overdue = (s->cfg.max_passes > 0 && cand[i].passes >= s->cfg.max_passes) ||
                       (s->cfg.max_wait_ms > 0 && cand[i].head_mono > 0 &&
                        now_mono - cand[i].head_mono >= s->cfg.max_wait_ms);
        if (overdue && (aged < 0 || sched_older(&cand[i], &cand[aged])))
            aged = (int)i;
    }
    int pick = -1;
    if (s->cfg.fifo) {
        pick = oldest;
    } else if (aged >= 0) {
        pick = aged;
    } else {
        /* The least virtual time among tenants with a candidate; a tenant that was idle
         * comes back level with it. */
        double vmin = 0;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (!SCHED_OK(i))
                continue;
            size_t t = sched_tenant(s, cand[i].tenant ? cand[i].tenant : "");
            if (s->tenants[t].vtime < s->vclock)
                s->tenants[t].vtime = s->vclock;
            if (!any || s->tenants[t].vtime < vmin)
                vmin = s->tenants[t].vtime;
            any = true;
        }
        /* The loaded model's jobs of tenants within the slack, else the furthest behind. */
        int near = -1, behind = -1;
        double near_v = 0, behind_v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!SCHED_OK(i))
                continue;
            double v = s->tenants[sched_tenant(s, cand[i].tenant ? cand[i].tenant : "")].vtime;
            if (behind < 0 || v < behind_v ||
                (v == behind_v && sched_older(&cand[i], &cand[behind]))) {
                behind = (int)i;
                behind_v = v;
            }
            if (v - vmin < (double)s->cfg.quantum && sched_same_model(cand[i].model, s->loaded) &&
                (near < 0 || v < near_v || (v == near_v && sched_older(&cand[i], &cand[near])))) {
                near = (int)i;
                near_v = v;
            }
        }
        pick = near >= 0 ? near : behind;
        if (pick < 0)
            pick = oldest;
        size_t t = sched_tenant(s, cand[pick].tenant ? cand[pick].tenant : "");
        s->tenants[t].vtime += 1.0 / s->tenants[t].weight;
        s->vclock = vmin;
    }
#undef SCHED_OK
    if (why) {
        const char *ta = cand[pick].tenant ? cand[pick].tenant : "";
        const char *tb = cand[oldest].tenant ? cand[oldest].tenant : "";
        *why = pick == aged     ? GQ_SCHED_AGED
               : pick == oldest ? GQ_SCHED_FIFO
               : strcmp(ta, tb) ? GQ_SCHED_FAIR
                                : GQ_SCHED_AFFINITY;
    }
    return pick;
}

bool gq_sched_passed(const gq_sched_cand_t *chosen, const gq_sched_cand_t *cand) {
    return cand != chosen && cand->lane == chosen->lane && sched_older(cand, chosen);
}

void gq_sched_submitted(gq_sched_t *s, const char *tenant, const char *model) {
    s->tenants[sched_tenant(s, tenant ? tenant : "")].in_flight++;
    snprintf(s->loaded, sizeof(s->loaded), "%s", model ? model : "");
}

void gq_sched_finished(gq_sched_t *s, const char *tenant) {
    size_t t = sched_tenant(s, tenant ? tenant : "");
    if (s->tenants[t].in_flight > 0)
        s->tenants[t].in_flight--;
}
