/**
 * @file warmup.h
 * @brief Warm-up: renders each template of GENQ_WARMUP once (64x64, one step) before the
 * worker joins the consumer group, so that the first real job does not pay the model load.
 */
#ifndef GQ_WARMUP_H
#define GQ_WARMUP_H

#include "cfg.h"
#include "comfy/comfy.h"
#include "metrics.h"

#include <signal.h>

/** Renders the warm-up templates one after the other; failures are logged, never fatal. */
void gq_warmup_run(gq_comfy_t *comfy, gq_metrics_t *metrics, const gq_cfg_t *cfg,
                   volatile sig_atomic_t *stop);

#endif
