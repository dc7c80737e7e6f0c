#!/usr/bin/env bash
# timeout: 600
# Cancel and progress on the real ComfyUI 0.3.64 (which sends a binary latent preview frame
# per sampler step, --preview-method latent2rgb): a txt2img job of 20 steps renders; its
# progress events count steps of max steps and the previews while it does; `genq cancel
# --wait` interrupts it by its prompt id: ComfyUI's history of the prompt ends in
# execution_interrupted, the job is recorded cancelled (its attempt cancelled, with the time it
# rendered) and its one completion event is FAILED with error.code cancelled.
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_COMFYUI_REAL_URL:-}" ] || fail "GENQ_COMFYUI_REAL_URL is not set (the stack has no real ComfyUI)"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1 GENQ_STALL_TIMEOUT=60
export GENQ_COMFYUI_OUTPUT_DIR=$GENQ_COMFYUI_REAL_DIR/output GENQ_COMFYUI_TEMP_DIR=$GENQ_COMFYUI_REAL_DIR/temp
ckpt=${GENQ_COMFYUI_REAL_CHECKPOINT:-sd15-random.safetensors}
GENQ_PROGRESS_INTERVAL=200 t_worker w1 "$GENQ_COMFYUI_REAL_URL"
a=$("$GENQ" produce -p "cancel me" -m "$ckpt" --width 64 --height 64 --steps 20 --seed 71 2>"$T_TMP/produce.log") ||
    fail "genq produce: $(cat "$T_TMP/produce.log")"
t0=$SECONDS
# Rendering, as its progress events say: sampler steps under way, previews counted.
sampling() {
    "$GENQ" events --progress --from beginning 2>/dev/null | /usr/bin/python3 -c '
import json, sys
evs = [e for e in map(json.loads, sys.stdin) if e["job_id"] == sys.argv[1]]
sys.exit(0 if any(e["state"] == "RUNNING" and e["step"] >= 2 and e["previews"] >= 1 for e in evs) else 1)' "$a"
}
t_wait 400 "job a sampling, with previews" sampling
pid=$(sql "SELECT comfy_prompt_id FROM genq.jobs WHERE job_id = '$a'")
"$GENQ" cancel --wait --wait-timeout 180 --reason "real" "$a" >"$T_TMP/cancel.out" 2>"$T_TMP/cancel.log" ||
    fail "genq cancel --wait: exit $?: $(cat "$T_TMP/cancel.out" "$T_TMP/cancel.log")"
grep -q "^$a cancelled " "$T_TMP/cancel.out" || fail "genq cancel said: $(cat "$T_TMP/cancel.out")"
t_stop_workers w1

row=$(sql "SELECT concat_ws('|', j.status, j.error_code, a.status, a.render_ms > 0) FROM genq.jobs j
           JOIN genq.job_attempts a USING (job_id) WHERE j.job_id = '$a'")
[ "$row" = "cancelled|cancelled|cancelled|t" ] || fail "record: $row"
last=$(curl -fsS "$GENQ_COMFYUI_REAL_URL/history/$pid" | /usr/bin/python3 -c \
    'import json,sys; h = json.load(sys.stdin); print(h[sys.argv[1]]["status"]["messages"][-1][0] if h else "gone")' "$pid")
[ "$last" = execution_interrupted ] || fail "the cancelled render's prompt ended with $last, not interrupted"
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
"$GENQ" events --progress --from beginning >"$T_TMP/progress.jsonl" 2>>"$T_TMP/events.log" || fail "genq events --progress"
summary=$(/usr/bin/python3 - "$T_TMP/events.jsonl" "$T_TMP/progress.jsonl" "$a" <<'PY'
import json, sys
done = [e for e in map(json.loads, open(sys.argv[1])) if e["job_id"] == sys.argv[3]]
assert len(done) == 1, done
e = done[0]
assert e["status"] == "FAILED" and e["error"]["code"] == "cancelled" and not e["error"]["retryable"], e
assert e["error"]["message"] == "cancelled by genq-cli: real", e
prog = [p for p in map(json.loads, open(sys.argv[2])) if p["job_id"] == sys.argv[3]]
run = [p for p in prog if p["state"] == "RUNNING"]
assert run and all(p["max_steps"] == 20 for p in run), run
assert [p["seq"] for p in prog] == list(range(1, len(prog) + 1))
last = run[-1]
assert 1 <= last["previews"] <= 20 and last["step"] < 20, last
print(f"{len(prog)} progress events, the last at step {last['step']}/20 with {last['previews']} previews")
PY
) || fail "events: $(cat "$T_TMP/events.jsonl" "$T_TMP/progress.jsonl")"
note "a real render cancelled mid-sampling, interrupted in ComfyUI; $summary; in $((SECONDS - t0)) s"
