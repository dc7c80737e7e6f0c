#!/usr/bin/env bash
# timeout: 300
# Fault test: PostgreSQL stopped and restarted mid-run, while 150 jobs flow through two workers. Ends with every job in
# exactly one terminal row (all succeeded), one output each, an event for every job
# (repeats only with the recorded attempt), and the renders thrown away reported.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_MAX_ATTEMPTS=10 GENQ_STALL_TIMEOUT=20
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
before=$(t_sim_renders)
t_produce_n 150 "postgres-fault"
t_worker w1 "${urls[0]}"
t_worker w2 "${urls[1]:-${urls[0]}}"
t_wait 60 "the first 30 jobs" sql_is_at_least 30 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
note "PostgreSQL stopped and restarted mid-run"
"$GENQ_ROOT/tests/stack" stop postgres >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack stop postgres: $(tail -3 "$T_TMP/stack.log")"
sleep 6
"$GENQ_ROOT/tests/stack" start postgres >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start postgres: $(tail -3 "$T_TMP/stack.log")"
t_wait 240 "150 terminal jobs" sql_is 150 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1 w2
t_expect_succeeded 150
summary=$(t_expect_events)
wasted=$(($(t_sim_renders) - before - 150))
note "150/150 succeeded; $summary; $(sql "SELECT count(*) FROM genq.jobs WHERE attempts > 1") jobs retried; $wasted renders thrown away"
