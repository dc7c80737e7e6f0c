#!/usr/bin/env bash
# timeout: 180
# Priority lanes (GENQ_LANES): the producer routes a request by its priority to a lane topic;
# the worker serves the high lane first. A high-priority request published behind a backlog
# of low-priority ones starts within about one render: at most the renders already handed
# to ComfyUI (queue_depth + the one running) go before it. The record names its lane.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=2
export GENQ_LANES="$GENQ_REQUESTS_TOPIC.high,$GENQ_REQUESTS_TOPIC,$GENQ_REQUESTS_TOPIC.low"
url=$GENQ_COMFYUI_URL
produce() { "$GENQ" produce -m sd15.safetensors --width 64 --height 64 --steps 3 "$@" 2>>"$T_TMP/produce.log"; }
# 30 low-priority renders of ~0.45 s each (3 steps of 150 ms): a backlog of ~14 s.
produce -p "low [[sim:slow:step_ms=150]]" --priority -1 -n 30 >"$T_TMP/low.txt" || fail "produce low"
low_in=$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC.low" -o beginning -e -q -f '%k\n' 2>/dev/null | wc -l)
[ "$low_in" -eq 30 ] || fail "the low lane holds $low_in messages, expected 30"
t_worker w1 "$url"
t_wait 60 "the backlog started" sql_is_at_least 3 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t0=$(sql "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
high=$(produce -p "high [[sim:slow:step_ms=150]]" --priority 5) || fail "produce high"
[ "$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC.high" -o beginning -e -q -f '%k\n' 2>/dev/null)" = "$high" ] ||
    fail "the high-priority request is not (only) in the high lane"
t_wait 60 "the high-priority job" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$high'"
# Low jobs begun between the high one's publication and its start: only those ComfyUI held.
before=$(sql "SELECT count(*) FROM genq.jobs WHERE job_id <> '$high' AND started_at > genq.ms_to_ts($t0)
              AND started_at < (SELECT started_at FROM genq.jobs WHERE job_id = '$high')")
# (a job gets its row when its attempt begins: those without one were still waiting too)
after=$((30 - $(sql "SELECT count(*) FROM genq.jobs WHERE job_id <> '$high' AND started_at <
              (SELECT started_at FROM genq.jobs WHERE job_id = '$high')")))
[ "$before" -le 2 ] || fail "$before low-priority jobs started between the high one's publication and its start"
[ "$after" -ge 10 ] || fail "only $after low-priority jobs were still waiting when the high one started: it did not overtake a backlog"
[ "$(sql "SELECT lane FROM genq.jobs WHERE job_id = '$high'")" = "$GENQ_REQUESTS_TOPIC.high" ] || fail "the record's lane"
[ "$(sql "SELECT count(DISTINCT lane) FROM genq.jobs WHERE lane = '$GENQ_REQUESTS_TOPIC.low'")" = 1 ] || fail "low lane not recorded"
t_wait 90 "all 31 jobs" sql_is 31 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_stop_workers w1
note "high priority overtook $after waiting low-priority jobs; $before started between its publication and its start"
