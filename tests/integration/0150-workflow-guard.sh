#!/usr/bin/env bash
# timeout: 240
# What a request may make ComfyUI run (docs/operations.md, "What a request may run").
# With GENQ_INLINE_WORKFLOWS=off: an inline workflow is refused; a template's overrides are
# only those its "_genq".overrides lists (one listed override renders, with its effect; an
# unlisted one and any override of a template without the list are refused); an override
# of the output filename_prefix is refused. With allowlist: an inline workflow of allowed
# node classes renders, one with another class is refused, and a LoadImage naming a file of
# ComfyUI's output directory ("x.png [output]") is refused. Each refusal is a FAILED record
# and one FAILED event with workflow_not_allowed, not retryable, and ComfyUI never sees it.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
url=$GENQ_COMFYUI_URL
mkdir -p "$T_TMP/wf"
/usr/bin/python3 - "$GENQ_ROOT/workflows/txt2img.json" "$T_TMP/wf/listed.json" <<'PY'
import json, sys
wf = json.load(open(sys.argv[1]))
wf["_genq"] = {"overrides": ["KSampler.denoise", "Empty Latent Image.width"]}
json.dump(wf, open(sys.argv[2], "w"))
PY
# An inline graph: EmptyImage 40x24 [-> ImageInvert] -> SaveImage, or LoadImage -> SaveImage.
inline() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
kind, tag = sys.argv[1], sys.argv[2]
src = {"class_type": "EmptyImage", "inputs": {"width": 40, "height": 24, "batch_size": 1, "color": 0}}
if kind == "load":
    src = {"class_type": "LoadImage", "inputs": {"image": "ComfyUI_00001_.png [output]"}}
wf = {"1": src, "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["1", 0]}}}
if kind == "invert":
    wf["2"] = {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}
    wf["3"]["inputs"]["images"] = ["2", 0]
print(json.dumps({"prompt": "", "workflow": "inline-" + tag, "workflow_json": json.dumps(wf)}))
PY
}
template() { # NAME OVERRIDES-JSON
    printf '{"prompt": "guarded", "model": "sd15.safetensors", "width": 64, "height": 64, "steps": 2, "workflow": "%s", "overrides": %s}\n' "$1" "$2"
}
produce_line() { "$GENQ" produce --file - 2>>"$T_TMP/produce.log" <<<"$1" || fail "produce $1"; }
renders0=$(t_sim_renders)

export GENQ_INLINE_WORKFLOWS=off GENQ_WORKFLOWS_DIR="$T_TMP/wf"
t_worker w1 "$url"
j_off=$(produce_line "$(inline plain off)")
j_listed=$(produce_line "$(template listed '{"Empty Latent Image.width": "96", "KSampler.denoise": "0.5"}')")
j_unlisted=$(produce_line "$(template listed '{"3.cfg": "2"}')")
j_nolist=$(produce_line "$(template txt2img '{"KSampler.denoise": "0.5"}')")
j_prefix=$(produce_line "$(template listed '{"9.filename_prefix": "\"genq/someone-else\""}')")
t_wait 60 "five jobs terminal" sql_is 5 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded', 'failed')"
t_stop_workers w1

export GENQ_INLINE_WORKFLOWS=allowlist GENQ_INLINE_NODE_CLASSES="EmptyImage, SaveImage, LoadImage"
t_worker w2 "$url"
j_allowed=$(produce_line "$(inline plain allowed)")
j_class=$(produce_line "$(inline invert class)")
j_output=$(produce_line "$(inline load output)")
t_wait 60 "eight jobs terminal" sql_is 8 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded', 'failed')"
t_stop_workers w2
unset GENQ_INLINE_WORKFLOWS GENQ_INLINE_NODE_CLASSES

refused() { # JOB MESSAGE-SUBSTRING
    local row
    row=$(sql "SELECT status || '|' || coalesce(error_code, '') || '|' || coalesce(error_retryable::text, '') || '|' || attempts || '|' || coalesce(error, '') FROM genq.jobs WHERE job_id = '$1'")
    [[ "$row" == "failed|workflow_not_allowed|false|1|"*"$2"* ]] ||
        fail "job $1: expected failed, workflow_not_allowed, not retryable, saying \"$2\"; got: $row"
}
refused "$j_off" "inline workflows are off"
refused "$j_unlisted" 'override "3.cfg" is not one template "listed" allows'
refused "$j_nolist" 'template "txt2img" lists no overrides a request may set'
refused "$j_prefix" "genq sets every filename_prefix itself"
refused "$j_class" "ImageInvert, not allowed on this worker"
refused "$j_output" "ComfyUI's output directory"
[ "$(sql "SELECT j.status || ' ' || o.width || 'x' || o.height FROM genq.jobs j JOIN genq.job_outputs o USING (job_id) WHERE job_id = '$j_listed'")" = "succeeded 96x64" ] ||
    fail "the listed override: $(sql "SELECT status, error FROM genq.jobs WHERE job_id = '$j_listed'") $(sql "SELECT width, height FROM genq.job_outputs WHERE job_id = '$j_listed'")"
[ "$(sql "SELECT o.width || 'x' || o.height FROM genq.jobs j JOIN genq.job_outputs o USING (job_id) WHERE job_id = '$j_allowed' AND status = 'succeeded'")" = 40x24 ] ||
    fail "the allowed inline workflow: $(sql "SELECT status, error FROM genq.jobs WHERE job_id = '$j_allowed'")"
[ "$(($(t_sim_renders) - renders0))" -eq 2 ] || fail "ComfyUI rendered $(($(t_sim_renders) - renders0)) prompts; only the 2 allowed jobs should reach it"

# One FAILED event per refused job, with its code, not retryable; no dead letter.
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>>"$T_TMP/events.log" || fail "genq events"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$j_off" "$j_unlisted" "$j_nolist" "$j_prefix" "$j_class" "$j_output" <<'PY' || fail "events"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
for job in sys.argv[2:]:
    mine = [e for e in evs if e["job_id"] == job]
    assert len(mine) == 1, f"{job}: {len(mine)} events"
    e = mine[0]
    assert e["status"] == "FAILED" and e["error"]["code"] == "workflow_not_allowed", e
    assert e["error"]["retryable"] is False, e
assert sum(e["status"] == "SUCCEEDED" for e in evs) == 2, evs
PY
[ -z "$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -o beginning -e -q 2>/dev/null)" ] || fail "a refused request was dead-lettered"
grep -q 'inline workflows: off' "$T_TMP/w1.log" || fail "the worker does not say its mode"
note "off: inline, unlisted overrides and a filename_prefix override refused, a listed override rendered; allowlist: an allowed inline graph rendered, another class and an [output] file refused; ComfyUI saw only the 2 allowed"
