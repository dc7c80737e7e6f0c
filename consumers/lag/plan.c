/* genq lag: which triggers to compute, and how they combine (lag.h). */
#include "lag.h"
#include "lanes.h"
#include "log.h"
#include "util.h"
#include "yaml.h"

#include <string.h>

void gq_lag_plan_release(gq_lag_plan_t *plan) {
    for (size_t i = 0; i < plan->cnt; i++)
        gq_cfg_release(&plan->trigger[i].cfg);
    plan->cnt = 0;
}

/* A trigger on one topic: cfg with requests_topic set to it. */
static gq_status_t plan_add_topic(gq_lag_plan_t *plan, const gq_cfg_t *cfg, const char *topic,
                                  char *errstr, size_t errstr_size) {
    gq_lag_trigger_t *t = &plan->trigger[plan->cnt];
    if (gq_cfg_copy(&t->cfg, cfg) != GQ_OK) {
        gq_errf(errstr, errstr_size, "out of memory");
        return GQ_ERR_NOMEM;
    }
    plan->cnt++;
    snprintf(t->name, sizeof(t->name), "%s", topic ? topic : "");
    if (topic &&
        gq_cfg_set(&t->cfg, "requests_topic", topic, GQ_SRC_FLAG, errstr, errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    return GQ_OK;
}

/*
 * Lanes: one trigger per lane topic, summed as k8s/components/priority-lanes does (formula
 * "high + normal + low", target the lagThreshold, activationTarget 0), so that genq lag
 * without -f shows what that deployment asks for.
 */
static gq_status_t plan_lanes(gq_lag_plan_t *plan, const gq_cfg_t *cfg, const gq_lanes_t *l,
                              char *errstr, size_t errstr_size) {
    if (gq_cfg_bool(cfg, "all_topics")) {
        gq_errf(errstr, errstr_size, "lanes and all_topics cannot be used together");
        return GQ_ERR_INVALID;
    }
    size_t used = 0;
    for (int i = 0; i < l->n; i++) {
        if (plan_add_topic(plan, cfg, l->topic[i], errstr, errstr_size) != GQ_OK)
            return GQ_ERR_INVALID;
        plan->scale.formula.term[plan->scale.formula.n++] = i;
        int w = snprintf(plan->formula_text + used, sizeof(plan->formula_text) - used, "%s%s",
                         i ? " + " : "", l->topic[i]);
        used = w < 0 || (size_t)w >= sizeof(plan->formula_text) - used
                   ? sizeof(plan->formula_text) - 1
                   : used + (size_t)w;
    }
    plan->scale.combine = l->n > 1 ? GQ_LAG_SUM : GQ_LAG_ONE;
    plan->lanes = true;
    plan->scale.target = (double)gq_cfg_int(cfg, "lag_threshold");
    plan->scale.activation = (double)gq_cfg_int(cfg, "activation_lag_threshold");
    return GQ_OK;
}

/* With -f and lanes both given: the lanes the ScaledObject does not watch, and back. */
static void plan_check_lanes(const gq_lag_plan_t *plan, const gq_lanes_t *l, const char *path) {
    for (int i = 0; i < l->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < plan->cnt && !seen; j++)
            seen = !gq_cfg_bool(&plan->trigger[j].cfg, "all_topics") &&
                   strcmp(gq_cfg_str(&plan->trigger[j].cfg, "requests_topic"), l->topic[i]) == 0;
        if (!seen)
            gq_warn("lane %s has no kafka trigger in %s: its backlog does not scale the workers "
                    "(k8s/components/priority-lanes has one per lane)",
                    l->topic[i], path);
    }
    for (size_t j = 0; j < plan->cnt; j++) {
        const gq_cfg_t *c = &plan->trigger[j].cfg;
        if (!gq_cfg_bool(c, "all_topics") && gq_lanes_find(l, gq_cfg_str(c, "requests_topic")) < 0)
            gq_warn("%s: a trigger watches %s, which is none of the lanes", path,
                    gq_cfg_str(c, "requests_topic"));
    }
}

gq_status_t gq_lag_plan_init(gq_lag_plan_t *plan, const gq_cfg_t *cfg, char *errstr,
                             size_t errstr_size) {
    memset(plan, 0, sizeof(*plan));
    plan->scale.min_replicas = gq_cfg_int(cfg, "min_replicas");
    plan->scale.max_replicas = gq_cfg_int(cfg, "max_replicas");
    const char *path = gq_cfg_str(cfg, "scaled_object");
    const char *lanes = gq_cfg_str(cfg, "lanes");
    gq_lanes_t l;
    if (lanes &&
        gq_lanes_init(&l, lanes, gq_cfg_str(cfg, "requests_topic"), errstr, errstr_size) != GQ_OK)
        return GQ_ERR_INVALID;
    gq_status_t st;
    if (path) {
        json_t *docs = gq_yaml_load(path, errstr, errstr_size);
        if (!docs)
            return GQ_ERR_INVALID;
        st = gq_lag_plan_scaledobject(plan, cfg, docs, path, errstr, errstr_size);
        json_decref(docs);
        if (st != GQ_OK)
            return st;
        if (st == GQ_OK && lanes)
            plan_check_lanes(plan, &l, path);
    } else if (lanes) {
        st = plan_lanes(plan, cfg, &l, errstr, errstr_size);
    } else {
        st = plan_add_topic(plan, cfg, NULL, errstr, errstr_size);
        plan->scale.combine = GQ_LAG_ONE;
    }
    if (st != GQ_OK)
        gq_lag_plan_release(plan);
    return st;
}
