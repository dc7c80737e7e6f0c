#!/usr/bin/env bash
# timeout: 300
# An idle worker waits for its peers without spinning: with ComfyUI, Kafka or PostgreSQL
# down it uses at most 2% of a core (measured from /proc over 10 s each), and works again
# when each comes back. genq 0.1 spun a full core while ComfyUI was unreachable. The worker
# here is the optimised build: a sanitizer build's own costs would blur the measure.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
url=${urls[0]}
tick=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$tick" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"; }
# cpu_over PID SECONDS: the process's CPU time (ms) over that window
cpu_over() {
    local a b
    a=$(cpu_ms "$1")
    sleep "$2" # a measurement window, not a wait for something
    b=$(cpu_ms "$1")
    echo $((b - a))
}
limit=200 # 2% of one core over 10 s
GENQ_COMFYUI_URL=$url GENQ_WORKER_ID=idle "$GENQ" worker >"$T_TMP/idle.log" 2>&1 &
pid=$!
T_PIDS+=("$pid")
"$GENQ" produce -p "first" -m sd15.safetensors --width 64 --height 64 --steps 2 >/dev/null 2>>"$T_TMP/produce.log"
t_wait 60 "the first job" sql_is 1 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
one_job() { # N: produce one job and wait until N jobs succeeded
    "$GENQ" produce -p "after $2" -m sd15.safetensors --width 64 --height 64 --steps 2 >/dev/null 2>>"$T_TMP/produce.log"
    t_wait 120 "a job after $2 came back" sql_is "$1" "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
}
report=""
measure() { # label
    local used
    used=$(cpu_over "$pid" 10)
    report+="$1: ${used} ms; "
    [ "$used" -le "$limit" ] || fail "$1: the idle worker used $used ms of CPU in 10 s (limit $limit)"
}
measure "all up"

"$GENQ_ROOT/tests/stack" stop comfy 0 >/dev/null 2>>"$T_TMP/stack.log" || fail "stop comfy"
sleep 2 # let it notice
measure "ComfyUI down"
"$GENQ_ROOT/tests/stack" start comfy 0 >/dev/null 2>>"$T_TMP/stack.log" || fail "start comfy"
one_job 2 ComfyUI

"$GENQ_ROOT/tests/stack" stop kafka >/dev/null 2>>"$T_TMP/stack.log" || fail "stop kafka"
sleep 2
measure "Kafka down"
"$GENQ_ROOT/tests/stack" start kafka >/dev/null 2>>"$T_TMP/stack.log" || fail "start kafka"
one_job 3 Kafka

"$GENQ_ROOT/tests/stack" stop postgres >/dev/null 2>>"$T_TMP/stack.log" || fail "stop postgres"
sleep 2
measure "PostgreSQL down"
"$GENQ_ROOT/tests/stack" start postgres >/dev/null 2>>"$T_TMP/stack.log" || fail "start postgres"
one_job 4 PostgreSQL

kill -TERM "$pid"
wait "$pid" || fail "the worker exited with $? after SIGTERM"
note "idle CPU over 10 s: ${report}limit $limit ms"
