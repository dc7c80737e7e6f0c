#!/usr/bin/env bash
# timeout: 300
# Fault test: the ComfyUI simulator killed mid-render and restarted, while 150 jobs flow through two workers. Ends with every job in
# exactly one terminal row (all succeeded), one output each, an event for every job
# (repeats only with the recorded attempt), and the renders thrown away reported.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_MAX_ATTEMPTS=10 GENQ_STALL_TIMEOUT=20
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
t_produce_n 150 "comfy-fault"
t_worker w1 "${urls[0]}"
t_worker w2 "${urls[1]:-${urls[0]}}"
t_wait 60 "the first 30 jobs" sql_is_at_least 30 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
note "the ComfyUI simulator killed mid-render and restarted"
"$GENQ_ROOT/tests/stack" kill comfy 0 >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack kill comfy 0: $(tail -3 "$T_TMP/stack.log")"
sleep 3
"$GENQ_ROOT/tests/stack" start comfy 0 >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start comfy 0: $(tail -3 "$T_TMP/stack.log")"
t_wait 240 "150 terminal jobs" sql_is 150 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1 w2
t_expect_succeeded 150
summary=$(t_expect_events)
# The crashed simulator's counters died with it: count the renders started again instead.
again=$(sql "SELECT coalesce(sum(attempts - 1), 0) FROM genq.jobs")
note "150/150 succeeded; $summary; $again render(s) started again after the crash"
