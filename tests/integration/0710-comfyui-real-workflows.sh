#!/usr/bin/env bash
# timeout: 900
# Every kind of workflow through the real ComfyUI 0.3.64 (CPU): Kafka -> one genq worker (the
# ASan build) -> ComfyUI -> PostgreSQL -> completion events. The default template (txt2img with
# the stack's random checkpoint, 64x64, 2 steps), the same request again (answered from
# ComfyUI's cache, same bytes), a batch, SamplerCustomAdvanced with its noise, guider, sampler
# and scheduler nodes, weight-free and post-processing graphs (an inline workflow keeps its own
# size unless the request sets one), every output kind ComfyUI 0.3.64 has (animated WebP, APNG,
# WebM, MP4, FLAC, SaveImageWebsocket, PreviewImage beside a SaveImage), a node silent for
# longer than the stall timeout, a node that raises at run time (FAILED at once, not retried),
# a validation error, a missing model, a field the graph cannot take (refused before ComfyUI),
# and a deadline that cancels a render. Every job is checked end to end (check_jobs.py), and
# ComfyUI's copies of the recorded files (outputs and previews) are deleted.
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_COMFYUI_REAL_URL:-}" ] || fail "GENQ_COMFYUI_REAL_URL is not set (the stack has no real ComfyUI)"
t_fresh_db
t_fresh_names
# One partition: the jobs reach ComfyUI in the order they are published (the cached re-run
# follows its original).
export GENQ_PARTITIONS=1
export GENQ_COMFYUI_OUTPUT_DIR=$GENQ_COMFYUI_REAL_DIR/output GENQ_COMFYUI_TEMP_DIR=$GENQ_COMFYUI_REAL_DIR/temp
# Shorter than ComfyUI's silent nodes here (a text encoder, a big blur, a checkpoint load):
# genq must see them alive in /queue and not call them stalled.
export GENQ_STALL_TIMEOUT=5
ckpt=${GENQ_COMFYUI_REAL_CHECKPOINT:-sd15-random.safetensors}
# LoadAudio reads ComfyUI's input directory.
cp "$GENQ_ROOT/tests/unit/data/media/tone.flac" "$GENQ_COMFYUI_REAL_DIR/input/genq-it-tone.flac"

/usr/bin/python3 - "$ckpt" "$T_TMP" <<'PY' || fail "writing the requests"
import json, sys, uuid
ckpt, tmp = sys.argv[1], sys.argv[2]

def empty(w, h, batch=1, color=0x336699):
    return {"class_type": "EmptyImage", "inputs": {"width": w, "height": h, "batch_size": batch, "color": color}}

def saver(cls, src, **inputs):
    return {"class_type": cls, "inputs": dict({"images": [src, 0], "filename_prefix": "mine"}, **inputs)}

graphs = {
    "custom-advanced": {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["4", 2]}},
        "9": saver("SaveImage", "8"),
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0], "sigmas": ["17", 0], "latent_image": ["5", 0]}},
        "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "17": {"class_type": "BasicScheduler", "inputs": {"scheduler": "normal", "steps": 1, "denoise": 1.0, "model": ["4", 0]}},
        "22": {"class_type": "CFGGuider", "inputs": {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "cfg": 5.0}},
        "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 1}},
    },
    "empty-own-size": {"1": empty(40, 24), "2": saver("SaveImage", "1")},
    "post-chain": {
        "1": empty(64, 64, color=0x808080),
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "width": 96, "height": 80, "crop": "disabled"}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": 3, "sigma": 1.0}},
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "5": saver("SaveImage", "4"),
    },
    "silent": {
        "1": empty(1024, 1024, color=0x123456),
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 1.0}},
        "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bilinear", "width": 64, "height": 64, "crop": "disabled"}},
        "4": saver("SaveImage", "3"),
    },
    "deadline": {
        "1": empty(1024, 1024, color=0x654321),
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 1.0}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": 31, "sigma": 2.0}},
        "4": {"class_type": "ImageBlur", "inputs": {"image": ["3", 0], "blur_radius": 31, "sigma": 3.0}},
        "5": {"class_type": "ImageScale", "inputs": {"image": ["4", 0], "upscale_method": "bilinear", "width": 64, "height": 64, "crop": "disabled"}},
        "6": saver("SaveImage", "5"),
    },
    # Two frames that differ (PIL drops repeated frames: an EmptyImage batch would be a still).
    "webp": {"1": empty(32, 32, 2, 0x00FF00), "3": empty(32, 32, 1, 0xFF0000),
             "4": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["3", 0]}},
             "2": saver("SaveAnimatedWEBP", "4", fps=6.0, lossless=True, quality=80, method="default")},
    "apng": {"1": empty(16, 16, 1, 0x0000FF), "3": empty(16, 16, 1, 0xFFFF00),
             "4": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["3", 0]}},
             "2": saver("SaveAnimatedPNG", "4", fps=6.0, compress_level=4)},
    "webm": {"1": empty(32, 32, 4, 0x00FFFF), "2": saver("SaveWEBM", "1", codec="vp9", fps=8.0, crf=32.0)},
    "mp4": {"1": empty(32, 32, 4, 0xFF00FF),
            "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
            "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "filename_prefix": "v", "format": "auto", "codec": "auto"}}},
    "audio": {"1": {"class_type": "LoadAudio", "inputs": {"audio": "genq-it-tone.flac"}},
              "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "a"}}},
    "websocket": {"1": empty(24, 24, color=0xFFFF00), "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}},
    "preview": {"1": empty(20, 20, color=0xFF0000), "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
                "3": saver("SaveImage", "1")},
    "runtime-error": {"1": empty(4, 4), "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 8, "sigma": 1.0}},
                      "3": saver("SaveImage", "2")},
    "validation": {"1": empty(0, 8), "2": saver("SaveImage", "1")},
    "refused": {"1": empty(8, 8), "2": saver("SaveImage", "1")},
}
t2i = {"prompt": "a lighthouse at dusk", "model": ckpt, "width": 64, "height": 64, "steps": 2, "seed": 42}
png = lambda w, h, n=1: [{"mime": "image/png", "width": w, "height": h}] * n
plan = [
    # First, so that its deadline passes while it renders (not while it waits its turn): three
    # silent blurs (seconds each); the interrupt takes effect when the next node starts.
    ("deadline", {"prompt": "", "timeout_s": 4, "max_attempts": 1},
     {"status": "failed", "attempts": 1, "error_code": "timeout", "error": "(running)", "rendered": False}),
    ("t2i", dict(t2i), {"status": "succeeded", "attempts": 1, "outputs": png(64, 64)}),
    # The same request again: ComfyUI answers all but the SaveImage (genq's per-job prefix)
    # from its cache; the pixels are the same (the PNG's text chunks hold each job's prompt).
    ("t2i-cached", dict(t2i), {"status": "succeeded", "attempts": 1, "outputs": png(64, 64), "same_pixels_as": "t2i"}),
    ("t2i-batch", dict(t2i, seed=43, batch_size=2), {"status": "succeeded", "outputs": png(64, 64, 2)}),
    ("custom-advanced", {"prompt": "a red fox", "steps": 2, "seed": 7, "width": 64, "height": 64},
     {"status": "succeeded", "outputs": png(64, 64)}),
    ("empty-own-size", {"prompt": ""}, {"status": "succeeded", "outputs": png(40, 24)}),
    ("post-chain", {"prompt": "", "width": 72, "height": 56}, {"status": "succeeded", "outputs": png(72, 56)}),
    ("silent", {"prompt": ""}, {"status": "succeeded", "attempts": 1, "outputs": png(64, 64)}),
    ("webp", {"prompt": ""}, {"status": "succeeded", "outputs": [{"mime": "image/webp", "width": 32, "height": 32}]}),
    ("apng", {"prompt": ""}, {"status": "succeeded", "outputs": [{"mime": "image/apng", "width": 16, "height": 16}]}),
    ("webm", {"prompt": ""}, {"status": "succeeded", "outputs": [{"mime": "video/webm", "width": 32, "height": 32}]}),
    ("mp4", {"prompt": ""}, {"status": "succeeded", "outputs": [{"mime": "video/mp4", "width": 32, "height": 32}]}),
    ("audio", {"prompt": ""}, {"status": "succeeded", "outputs": [{"mime": "audio/flac"}]}),
    ("websocket", {"prompt": ""}, {"status": "succeeded", "outputs": png(24, 24)}),
    ("preview", {"prompt": ""}, {"status": "succeeded", "outputs": png(20, 20)}),
    ("runtime-error", {"prompt": ""}, {"status": "failed", "attempts": 1, "error_code": "node_error",
                                        "error": "RuntimeError: Argument #4: Padding size should be less than", "rendered": False}),
    ("validation", {"prompt": ""}, {"status": "failed", "attempts": 1, "error_code": "comfy_validation", "error": "width", "rendered": False}),
    ("missing-model", dict(t2i, model="no-such-model.safetensors"),
     {"status": "failed", "attempts": 1, "error_code": "comfy_validation", "error": "ckpt_name", "rendered": False}),
    ("refused", {"prompt": "", "steps": 30},
     {"status": "failed", "error_code": "invalid_workflow", "rendered": False,
      "error": "the request sets steps=30 (not the default 20) but the inline workflow has no sampler to take it"}),
]
expect, names = {}, {}
with open(tmp + "/requests.jsonl", "w") as f:
    for name, req, want in plan:
        job = str(uuid.uuid4())
        req = dict(req, job_id=job, source="it-real", workflow=name)
        if name in graphs:
            req["workflow_json"] = json.dumps(graphs[name])
        else:
            req["workflow"] = "txt2img"
        f.write(json.dumps(req) + "\n")
        if "same_pixels_as" in want:
            want["same_pixels_as"] = names[want["same_pixels_as"]]
        expect[job] = dict(want, name=name)
        names[name] = job
json.dump(expect, open(tmp + "/expect.json", "w"), indent=1)
json.dump(names, open(tmp + "/names.json", "w"))
PY
n=$(wc -l <"$T_TMP/requests.jsonl")
job() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T_TMP/names.json" "$1"; }
t0=$SECONDS
"$GENQ" produce --file "$T_TMP/requests.jsonl" >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce"
t_worker w1 "$GENQ_COMFYUI_REAL_URL"
t_wait 600 "$n terminal jobs" sql_is "$n" "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1
note "$n jobs terminal in $((SECONDS - t0)) s"
grep -q "ComfyUI's copies of recorded outputs are deleted from $GENQ_COMFYUI_REAL_DIR/output" "$T_TMP/w1.log" ||
    fail "the worker did not say it deletes ComfyUI's copies"
! grep -q "stalled" "$T_TMP/w1.log" || fail "a silent node was taken for a stall: $(grep stalled "$T_TMP/w1.log" | head -3)"

"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
/usr/bin/python3 "$GENQ_ROOT/tests/integration/check_jobs.py" "$T_TMP/expect.json" "$T_TMP/events.jsonl" >&2 ||
    fail "jobs checked end to end"

cached=$(sql "SELECT render_ms FROM genq.jobs WHERE job_id = '$(job t2i-cached)'")
first=$(sql "SELECT render_ms FROM genq.jobs WHERE job_id = '$(job t2i)'")
[ "$cached" -lt "$first" ] || fail "the cached re-run rendered for $cached ms, the first for $first ms"

# What ComfyUI itself saw, from its history: the request's values bound into the custom
# sampler's nodes; the deadline interrupted a running render; the preview was deleted too.
/usr/bin/python3 - "$GENQ_COMFYUI_REAL_URL" "$GENQ_COMFYUI_REAL_DIR" \
    "$(sql "SELECT comfy_prompt_id FROM genq.jobs WHERE job_id = '$(job custom-advanced)'")" \
    "$(sql "SELECT comfy_prompt_id FROM genq.jobs WHERE job_id = '$(job deadline)'")" \
    "$(sql "SELECT comfy_prompt_id FROM genq.jobs WHERE job_id = '$(job preview)'")" <<'PY' || fail "ComfyUI's history"
import json, os, sys, urllib.request
url, base, custom, deadline, preview = sys.argv[1:6]
def hist(pid):
    return json.load(urllib.request.urlopen(f"{url}/history/{pid}")).get(pid)
h = hist(custom)
g = h["prompt"][2]
bound = (g["25"]["inputs"]["noise_seed"], g["17"]["inputs"]["steps"], g["6"]["inputs"]["text"],
         g["5"]["inputs"]["width"], g["22"]["inputs"]["cfg"], g["16"]["inputs"]["sampler_name"])
assert bound == (7, 2, "a red fox", 64, 5.0, "euler"), f"custom sampler bound as {bound}"
h = hist(deadline)
assert h and h["status"]["messages"][-1][0] == "execution_interrupted", \
    f"the deadline's prompt: {h and h['status']['messages'][-1][0]}"
h = hist(preview)
temp = [i for o in h["outputs"].values() for i in o.get("images", []) if i["type"] == "temp"]
assert temp, "no preview in the history"
for i in temp:
    p = os.path.join(base, "temp", i["subfolder"], i["filename"])
    assert not os.path.exists(p), f"the preview {p} was not deleted"
print(f"# ComfyUI bound {bound}; the deadline interrupted its render; {len(temp)} preview(s) deleted")
PY
rm -f "$GENQ_COMFYUI_REAL_DIR/input/genq-it-tone.flac"
note "$n jobs through the real ComfyUI in $((SECONDS - t0)) s, each checked end to end"
