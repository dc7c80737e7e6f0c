/* Warm-up (see warmup.h). */
#include "warmup.h"
#include "admit.h"
#include "log.h"
#include "template.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define WARMUP_CHECK_MS 2000 /* between looks at /history, should an event be missed */

/* Waits for the prompt to finish: its WebSocket events, and now and then its history. */
static gq_status_t warmup_wait(gq_comfy_t *comfy, gq_metrics_t *metrics, const char *prompt_id,
                               int64_t deadline, volatile sig_atomic_t *stop, char *err,
                               size_t err_size) {
    int64_t check = gq_mono_ms() + WARMUP_CHECK_MS;
    while (!*stop) {
        /* A cold model load can outlast the liveness window; waiting on it is progress. */
        gq_metrics_heartbeat(metrics);
        int64_t now = gq_mono_ms();
        if (now >= deadline) {
            gq_errf(err, err_size, "no result in time");
            return GQ_ERR_TIMEOUT;
        }
        if (!gq_comfy_ws_connected(comfy))
            gq_comfy_ws_connect(comfy, err, err_size);
        gq_comfy_event_t ev;
        int wait = (int)(check - now > 0 ? check - now : 0);
        if (gq_comfy_ws_connected(comfy) &&
            gq_comfy_ws_next(comfy, wait, &ev, err, err_size) == GQ_OK) {
            if (strcmp(ev.prompt_id, prompt_id) == 0 && ev.type == GQ_COMFY_EV_DONE)
                return GQ_OK;
            continue;
        }
        if (!gq_comfy_ws_connected(comfy)) {
            /* ComfyUI still starting: wait as long as a check, on nothing but time. */
            gq_sleep_ms(wait);
        }
        check = gq_mono_ms() + WARMUP_CHECK_MS;
        gq_comfy_state_t cs = GQ_COMFY_PENDING;
        if (gq_comfy_prompt_state(comfy, prompt_id, &cs, NULL, err, err_size) == GQ_OK &&
            cs == GQ_COMFY_FINISHED)
            return GQ_OK;
    }
    gq_errf(err, err_size, "stopped");
    return GQ_ERR;
}

void gq_warmup_run(gq_comfy_t *comfy, gq_metrics_t *metrics, const gq_cfg_t *cfg,
                   volatile sig_atomic_t *stop) {
    const char *list = gq_cfg_str(cfg, "warmup");
    if (!list || !*list)
        return;
    gq_metrics_set_ready(metrics, false, "warming up");
    char names[512];
    gq_strlcpy(names, list, sizeof(names));
    char err[1024];
    int timeout_s = (int)gq_cfg_int(cfg, "job_timeout");
    for (char *name = names, *next; name && *name && !*stop; name = next) {
        next = strchr(name, ',');
        if (next)
            *next++ = '\0';
        json_t *tmpl = NULL, *wf = NULL;
        gq_request_t req;
        gq_request_init(&req);
        free(req.prompt);
        req.prompt = strdup("warm-up");
        req.width = req.height = 64;
        req.steps = 1;
        gq_template_info_t info = {0};
        char prompt_id[37];
        gq_uuid_v4(prompt_id);
        int64_t t0 = gq_mono_ms();
        gq_status_t st =
            gq_template_load(gq_cfg_str(cfg, "workflows_dir"), name, &tmpl, err, sizeof(err));
        if (st == GQ_OK)
            st = gq_template_bind(tmpl, &req, "genq-warmup/warmup", &wf, &info, err, sizeof(err));
        if (st == GQ_OK) {
            if (!gq_comfy_ws_connected(comfy))
                gq_comfy_ws_connect(comfy, err, sizeof(err));
            st = gq_comfy_submit(comfy, prompt_id, wf, err, sizeof(err));
        }
        if (st == GQ_OK)
            st = warmup_wait(comfy, metrics, prompt_id, t0 + (int64_t)timeout_s * 1000, stop, err,
                             sizeof(err));
        if (st == GQ_OK) {
            gq_info("warm-up %s done in %lld ms", name, (long long)(gq_mono_ms() - t0));
            gq_metrics_model_used(metrics, gq_admit_model_of(wf));
        } else {
            gq_warn("warm-up %s: %s", name, err);
        }
        json_decref(tmpl);
        json_decref(wf);
        gq_request_release(&req);
    }
}
