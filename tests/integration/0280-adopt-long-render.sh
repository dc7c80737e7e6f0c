#!/usr/bin/env bash
# timeout: 240
# A long render survives its worker. Worker w1 submits a render that takes ~16 s, then is
# killed with SIGKILL. Worker w2 (another worker id, so ComfyUI sends it none of the
# render's events) takes the partition over, finds the prompt still running and adopts it:
# it follows it through /queue and /history for longer than stall_timeout (5 s here) without
# a single event, and records it when it ends. genq 0.1 interrupted such a render as
# "stalled" and rendered it again.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1 GENQ_STALL_TIMEOUT=5
KX=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
stat() { curl -fsS "$GENQ_COMFYUI_URL/_sim/stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
completed0=$(stat renders_completed) interrupted0=$(stat renders_interrupted) started0=$(stat renders_started)
job=$("$GENQ" produce -p "a long one [[sim:slow:step_ms=2000]]" -m sd15.safetensors --width 64 --height 64 --steps 8 2>"$T_TMP/produce.log") ||
    fail "genq produce"
t_worker w1 "$GENQ_COMFYUI_URL" "${KX[@]}"
started() { [ "$(stat renders_started)" -gt "$started0" ]; }
t_wait 60 "the render started" started
sleep 2 # a little of the render goes by under w1, as it would
kill -9 "$PID_w1"
wait "$PID_w1" 2>/dev/null || true
note "w1 killed mid-render"
t_worker w2 "$GENQ_COMFYUI_URL" "${KX[@]}"
t_wait 60 "w2 adopting the render" grep -q "job $job: reattached to prompt" "$T_TMP/w2.log"
t_wait 90 "the job recorded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$job'"
t_stop_workers w2
[ "$(stat renders_completed)" -eq $((completed0 + 1)) ] || fail "ComfyUI completed $(($(stat renders_completed) - completed0)) renders, expected exactly 1"
[ "$(stat renders_interrupted)" -eq "$interrupted0" ] || fail "the adopted render was interrupted"
[ "$(sql "SELECT attempts || ' ' || worker_id FROM genq.jobs WHERE job_id = '$job'")" = "1 w2" ] ||
    fail "record: $(sql "SELECT attempts, worker_id FROM genq.jobs WHERE job_id = '$job'")"
[ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE job_id = '$job'")" -eq 1 ] || fail "more than one attempt"
grep -q "stalled" "$T_TMP/w2.log" && fail "w2 called the render stalled"
t_check_outputs >/dev/null || fail "output check failed"
note "adopted after SIGKILL, followed without events past stall_timeout, recorded once: $(sql "SELECT render_ms FROM genq.jobs WHERE job_id = '$job'") ms render"
