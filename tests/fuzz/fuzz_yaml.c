/*
 * libFuzzer target: gq_yaml_parse (genq lag -f reads a user's ScaledObject with it) on any
 * bytes. It must parse or refuse with a message, never crash, leak or read out of bounds;
 * a document it reads is then applied as a ScaledObject to a lag configuration, and read
 * into a plan (every kafka trigger, the scalingModifiers formula).
 */
#include "lag.h"
#include "yaml.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512] = "";
    json_t *docs = gq_yaml_parse((const char *)data, size, err, sizeof(err));
    if (!docs) {
        if (!err[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    gq_cfg_t cfg;
    gq_lag_plan_t plan;
    if (gq_cfg_init(&cfg, GQ_CMD_LAG, "lag", err, sizeof(err)) == GQ_OK &&
        gq_lag_apply_scaledobject(&cfg, docs, "fuzz.yaml", err, sizeof(err)) == GQ_OK &&
        gq_lag_plan_scaledobject(&plan, &cfg, docs, "fuzz.yaml", err, sizeof(err)) == GQ_OK)
        gq_lag_plan_release(&plan);
    gq_cfg_release(&cfg);
    json_decref(docs);
    return 0;
}
