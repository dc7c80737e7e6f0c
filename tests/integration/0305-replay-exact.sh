#!/usr/bin/env bash
# timeout: 180
# genq replay jobs publishes the request as it was received, not as the job's columns tell
# it: an inline workflow with overrides (here, one setting the latent width to 96) fails
# once, is replayed, and renders exactly as asked. genq 0.1 rebuilt the request from the
# columns, which hold neither the inline workflow nor the overrides, and rendered the plain
# template instead. The record shows what was rendered: genq.jobs.request.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
url=$GENQ_COMFYUI_URL
cp "$GENQ_ROOT/workflows/txt2img.json" "$T_TMP/inline.json"
node=$(/usr/bin/python3 -c '
import json, sys
wf = json.load(open(sys.argv[1]))
print(next(k for k, v in wf.items() if v.get("class_type") == "EmptyLatentImage"))' "$T_TMP/inline.json")
curl -fsS -X POST "$url/_sim/faults" -d '{"fault": "error", "count": 1}' >/dev/null || fail "fault"
/usr/bin/python3 - "$T_TMP/inline.json" "$node" >"$T_TMP/request.jsonl" <<'PY'
import json, sys
print(json.dumps({"prompt": "exact replay", "model": "sd15.safetensors", "width": 64, "height": 64,
                  "steps": 2, "workflow": "inline-test", "workflow_json": open(sys.argv[1]).read(),
                  "overrides": {f"{sys.argv[2]}.width": "96"}, "max_attempts": 1}))
PY
job=$("$GENQ" produce --file "$T_TMP/request.jsonl" 2>"$T_TMP/produce.log") || fail "produce"
t_worker w1 "$url"
t_wait 60 "the first attempt failed" sql_is failed "SELECT status FROM genq.jobs WHERE job_id = '$job'"
[ "$(sql "SELECT request->'overrides'->>'$node.width' IS NOT NULL AND request->>'workflow_json' IS NOT NULL FROM genq.jobs WHERE job_id = '$job'")" = t ] ||
    fail "the record does not hold the request as received: $(sql "SELECT request FROM genq.jobs WHERE job_id = '$job'")"
"$GENQ" replay jobs >"$T_TMP/replay.txt" 2>"$T_TMP/replay.log" || fail "replay: $(cat "$T_TMP/replay.log")"
t_wait 60 "the replayed job succeeded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$job'"
t_stop_workers w1
[ "$(sql "SELECT width || 'x' || height FROM genq.job_outputs WHERE job_id = '$job'")" = "96x64" ] ||
    fail "the replay rendered $(sql "SELECT width || 'x' || height FROM genq.job_outputs WHERE job_id = '$job'"), not the inline workflow with its override (96x64)"
note "an inline workflow with an override, replayed: rendered 96x64 as first asked"
