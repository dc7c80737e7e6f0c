#!/usr/bin/env bash
# timeout: 600
# A revoke during a render, on the real ComfyUI 0.3.64: worker w1 renders a txt2img job (10
# steps) with the next job queued behind it in ComfyUI; a second worker joins the group. The eager
# range assignor (-X partition.assignment.strategy=range, both workers) takes every partition
# back from w1 at once, so A is revoked while it renders: w1 interrupts it in ComfyUI and
# leaves it for redelivery; the partitions' new owners render them again (w1 may get the
# revoked job's partition straight back: its old job, still cancelling, is no duplicate of the
# message read again; before, the worker skipped that message as one and the job was lost). Each job ends
# succeeded once, with one completion event, and the revoked render's prompt was interrupted
# in ComfyUI, not rendered to the end. (The default cooperative-sticky assignor moves one partition of
# the two, A's or B's, at random; this makes the running job's revoke certain.)
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_COMFYUI_REAL_URL:-}" ] || fail "GENQ_COMFYUI_REAL_URL is not set (the stack has no real ComfyUI)"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=2 GENQ_STALL_TIMEOUT=60
export GENQ_COMFYUI_OUTPUT_DIR=$GENQ_COMFYUI_REAL_DIR/output GENQ_COMFYUI_TEMP_DIR=$GENQ_COMFYUI_REAL_DIR/temp
ckpt=${GENQ_COMFYUI_REAL_CHECKPOINT:-sd15-random.safetensors}
uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }
a=$(uuid) b=$(uuid)
# The topics first (genq creates them with the partitions asked for), then A and B, one per
# partition.
"$GENQ" produce -p "" --workflow @/dev/stdin --job-id "$(uuid)" >"$T_TMP/first.txt" 2>"$T_TMP/produce.log" <<'EOF' || fail "genq produce"
{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
EOF
first=$(cat "$T_TMP/first.txt")
for p in 0 1; do
    job=$([ $p = 0 ] && echo "$a" || echo "$b")
    /usr/bin/python3 "$GENQ_ROOT/tests/schemas/encode_request.py" \
        "{\"job_id\": \"$job\", \"prompt\": \"revoke $p\", \"model\": \"$ckpt\", \"width\": 64, \"height\": 64, \"steps\": 10, \"seed\": $((50 + p)), \"source\": \"it-real\"}" \
        >"$T_TMP/$p.bin" || fail "encoding a request"
    kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -p "$p" -k "$job" "$T_TMP/$p.bin" || fail "kcat"
done
t0=$SECONDS
t_worker w1 "$GENQ_COMFYUI_REAL_URL" -X partition.assignment.strategy=range
# A or B, whichever w1 took first, rendering: sampler steps under way.
rendering() {
    local pid
    for j in "$a" "$b"; do
        pid=$(sql "SELECT comfy_prompt_id FROM genq.jobs WHERE job_id = '$j' AND status = 'running'")
        [ -n "$pid" ] || continue
        if curl -fsS "$GENQ_COMFYUI_REAL_URL/queue" | /usr/bin/python3 -c \
            'import json,sys; q = json.load(sys.stdin); sys.exit(0 if any(i[1] == sys.argv[1] for i in q["queue_running"]) else 1)' "$pid"; then
            echo "$j $pid" >"$T_TMP/rendering.txt"
            return 0
        fi
    done
    return 1
}
t_wait 180 "a job rendering in ComfyUI" rendering
read -r running running_pid <"$T_TMP/rendering.txt"
note "job $running rendering (prompt $running_pid); a second worker joins"
t_worker w2 "$GENQ_COMFYUI_REAL_URL" -X partition.assignment.strategy=range
t_wait 30 "w1 to give its partitions up" grep -q "revoked $GENQ_REQUESTS_TOPIC" "$T_TMP/w1.log"
t_wait 400 "3 terminal jobs" sql_is 3 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1 w2

/usr/bin/python3 - "$T_TMP/expect.json" "$a" "$b" "$first" <<'PY'
import json, sys
path, a, b, first = sys.argv[1:5]
png = [{"mime": "image/png", "width": 64, "height": 64}]
json.dump({a: {"name": "A", "status": "succeeded", "outputs": png},
           b: {"name": "B", "status": "succeeded", "outputs": png},
           first: {"name": "first", "status": "succeeded", "outputs": [{"mime": "image/png", "width": 8, "height": 8}]}},
          open(path, "w"))
PY
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
/usr/bin/python3 "$GENQ_ROOT/tests/integration/check_jobs.py" "$T_TMP/expect.json" "$T_TMP/events.jsonl" >&2 ||
    fail "jobs checked end to end"
grep -q "job $running: left for redelivery" "$T_TMP/w1.log" || fail "w1 did not leave the revoked render for redelivery"
attempts=$(sql "SELECT attempts FROM genq.jobs WHERE job_id = '$running'")
[ "$attempts" -ge 2 ] || fail "the revoked job was not rendered again (attempts $attempts)"
last=$(curl -fsS "$GENQ_COMFYUI_REAL_URL/history/$running_pid" | /usr/bin/python3 -c \
    'import json,sys; h = json.load(sys.stdin); print(h[sys.argv[1]]["status"]["messages"][-1][0] if h else "gone")' "$running_pid")
[ "$last" = execution_interrupted ] || fail "the revoked render's prompt ended with $last, not interrupted"
note "the render revoked from w1 was interrupted in ComfyUI and rendered again ($attempts attempts); 3 jobs, one event each, in $((SECONDS - t0)) s"
