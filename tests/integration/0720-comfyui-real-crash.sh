#!/usr/bin/env bash
# timeout: 600
# The real ComfyUI killed (SIGKILL) in the middle of a render and started again: the job whose
# prompt died with it is rendered again (a new attempt, the lost one recorded as failed) and
# succeeds once; the job queued behind it too; each has one record and one completion event.
# Without GENQ_COMFYUI_OUTPUT_DIR the worker says once that ComfyUI's copies are kept, and keeps
# them.
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_COMFYUI_REAL_URL:-}" ] || fail "GENQ_COMFYUI_REAL_URL is not set (the stack has no real ComfyUI)"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1 GENQ_STALL_TIMEOUT=60
unset GENQ_COMFYUI_OUTPUT_DIR GENQ_COMFYUI_TEMP_DIR

/usr/bin/python3 - "$T_TMP" <<'PY' || fail "writing the requests"
import json, sys, uuid
tmp = sys.argv[1]
def empty(w, h, color):
    return {"class_type": "EmptyImage", "inputs": {"width": w, "height": h, "batch_size": 1, "color": color}}
def blur(src, sigma):
    return {"class_type": "ImageBlur", "inputs": {"image": [src, 0], "blur_radius": 31, "sigma": sigma}}
# Silent blurs of a large image: seconds each, so the kill lands inside the render.
long = {"1": empty(1024, 1024, 0x0F0F0F), "2": blur("1", 1.0), "3": blur("2", 2.0), "4": blur("3", 3.0),
        "5": {"class_type": "ImageScale", "inputs": {"image": ["4", 0], "upscale_method": "bilinear", "width": 48, "height": 48, "crop": "disabled"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}}}
short = {"1": empty(32, 32, 0xF0F0F0), "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
expect, names = {}, {}
with open(tmp + "/requests.jsonl", "w") as f:
    for name, g, out in (("crashed", long, (48, 48)), ("behind", short, (32, 32))):
        job = str(uuid.uuid4())
        f.write(json.dumps({"job_id": job, "prompt": "", "workflow": name, "workflow_json": json.dumps(g), "source": "it-real"}) + "\n")
        expect[job] = {"name": name, "status": "succeeded", "outputs": [{"mime": "image/png", "width": out[0], "height": out[1]}]}
        names[name] = job
expect[names["crashed"]]["attempts"] = 2
json.dump(expect, open(tmp + "/expect.json", "w"))
PY
crashed=$(/usr/bin/python3 -c 'import json,sys; print([k for k, v in json.load(open(sys.argv[1])).items() if v["name"] == "crashed"][0])' "$T_TMP/expect.json")
t0=$SECONDS
"$GENQ" produce --file "$T_TMP/requests.jsonl" >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce"
t_worker w1 "$GENQ_COMFYUI_REAL_URL"
running_in_comfy() {
    local pid
    pid=$(sql "SELECT comfy_prompt_id FROM genq.jobs WHERE job_id = '$crashed' AND status = 'running'")
    [ -n "$pid" ] && curl -fsS "$GENQ_COMFYUI_REAL_URL/queue" | grep -q "\"$pid\"" &&
        curl -fsS "$GENQ_COMFYUI_REAL_URL/queue" | /usr/bin/python3 -c \
            'import json,sys; q = json.load(sys.stdin); sys.exit(0 if any(i[1] == sys.argv[1] for i in q["queue_running"]) else 1)' "$pid"
}
t_wait 120 "the long job rendering in ComfyUI" running_in_comfy
sleep 1 # inside its first blur
note "ComfyUI killed mid-render and started again"
"$GENQ_ROOT/tests/stack" kill comfyui-real >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack kill comfyui-real: $(tail -3 "$T_TMP/stack.log")"
sleep 2
"$GENQ_ROOT/tests/stack" start comfyui-real >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start comfyui-real: $(tail -3 "$T_TMP/stack.log")"
t_wait 300 "2 terminal jobs" sql_is 2 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
# This worker keeps ComfyUI's copies: the checker must not look for their deletion.
GENQ_COMFYUI_REAL_DIR="" /usr/bin/python3 "$GENQ_ROOT/tests/integration/check_jobs.py" "$T_TMP/expect.json" "$T_TMP/events.jsonl" >&2 ||
    fail "jobs checked end to end"
lost=$(sql "SELECT status || ' ' || coalesce(error_code, '') FROM genq.job_attempts WHERE job_id = '$crashed' AND attempt = 1")
[[ "$lost" == "failed "* ]] || fail "the lost attempt is recorded as '$lost', expected failed"
grep -q "ComfyUI's copies of the outputs are kept" "$T_TMP/w1.log" || fail "the worker did not say ComfyUI's copies are kept"
for j in $(cat "$T_TMP/ids.txt"); do
    ls "$GENQ_COMFYUI_REAL_DIR/output/genq/$j"_* >/dev/null 2>&1 || fail "ComfyUI's copy of job $j is gone, but should be kept"
    rm -f "$GENQ_COMFYUI_REAL_DIR/output/genq/$j"_*
done
note "the render killed with ComfyUI was rendered again ($lost on attempt 1); both jobs succeeded once in $((SECONDS - t0)) s"
