#!/usr/bin/env bash
# timeout: 180
# A job's deadline counts the time its prompt waits in ComfyUI's queue. Job a renders for
# ~8 s; job b (timeout_s 3, one attempt) is queued behind it in ComfyUI. b is taken back
# from the queue when its deadline passes, and fails as "timeout" without ever rendering.
# genq 0.1 ran the deadline only once a render had started.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
stat() { curl -fsS "$GENQ_COMFYUI_URL/_sim/stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
started0=$(stat renders_started)
a=$("$GENQ" produce -p "long [[sim:slow:step_ms=1000]]" -m sd15.safetensors --width 64 --height 64 --steps 8 2>>"$T_TMP/produce.log")
b=$("$GENQ" produce -p "short deadline" -m sd15.safetensors --width 64 --height 64 --steps 2 --timeout 3 --max-attempts 1 2>>"$T_TMP/produce.log")
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 60 "b failed" sql_is failed "SELECT status FROM genq.jobs WHERE job_id = '$b'"
row=$(sql "SELECT error_code || '|' || error FROM genq.jobs WHERE job_id = '$b'")
[[ "$row" == timeout\|*"still queued"* ]] || fail "b: $row"
t_wait 60 "a done" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$a'"
t_stop_workers w1
[ "$(stat renders_started)" -eq $((started0 + 1)) ] || fail "b was rendered after all ($(($(stat renders_started) - started0)) renders)"
note "b timed out while queued in ComfyUI: $row"
