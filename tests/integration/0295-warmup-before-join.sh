#!/usr/bin/env bash
# timeout: 180
# A worker joins the consumer group only once warmed up. w2's warm-up takes ~12 s while
# max.poll.interval.ms is 7 s: it must not hold partitions meanwhile (w1 takes every job),
# must not be evicted for not polling, and is assigned partitions only after its warm-up.
# genq 0.1 subscribed first: w2 held half the partitions through its warm-up and was then
# evicted ("maximum poll interval exceeded").
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=4
KX=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X max.poll.interval.ms=7000)
t_worker w1 "$GENQ_COMFYUI_URL" "${KX[@]}"
t_wait 60 "w1 assigned" grep -q "assigned $GENQ_REQUESTS_TOPIC" "$T_TMP/w1.log"
# w2's ComfyUI renders the next prompt (its warm-up) slowly: one step of 12 s.
url2=${GENQ_COMFYUI_URLS##* }
curl -fsS -X POST "$url2/_sim/faults" -d '{"fault": "slow", "step_ms": 12000, "count": 1}' >/dev/null || fail "fault"
GENQ_WARMUP=txt2img t_worker w2 "$url2" "${KX[@]}"
t_wait 30 "w2 warming up" grep -q "ComfyUI WebSocket\|warm-up\|group" "$T_TMP/w2.log"
t_produce_n 30 warm
t_wait 60 "30 jobs done" sql_is 30 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_wait 60 "w2 warmed up" grep -q "warm-up txt2img done" "$T_TMP/w2.log"
done_by_w2=$(sql "SELECT count(*) FROM genq.jobs WHERE worker_id = 'w2'")
t_wait 30 "w2 assigned after its warm-up" grep -q "assigned $GENQ_REQUESTS_TOPIC" "$T_TMP/w2.log"
first_assign=$(grep -n "assigned $GENQ_REQUESTS_TOPIC" "$T_TMP/w2.log" | head -1 | cut -d: -f1)
warm_line=$(grep -n "warm-up txt2img done" "$T_TMP/w2.log" | head -1 | cut -d: -f1)
[ "$first_assign" -gt "$warm_line" ] || fail "w2 was assigned partitions before its warm-up ended"
grep -qi "maximum poll interval" "$T_TMP/w2.log" && fail "w2 was evicted for not polling: $(grep -i 'maximum poll' "$T_TMP/w2.log" | head -2)"
[ "$done_by_w2" -eq 0 ] || fail "w2 recorded $done_by_w2 jobs before its warm-up ended"
# w1 kept every partition while w2 warmed up: no rebalance took them away before then.
warm_ts=$(grep -m1 "warm-up txt2img done" "$T_TMP/w2.log" | cut -d' ' -f1)
revoke_ts=$(grep -m1 "revoked $GENQ_REQUESTS_TOPIC" "$T_TMP/w1.log" | cut -d' ' -f1)
[ -z "$revoke_ts" ] || [[ "$revoke_ts" > "$warm_ts" ]] ||
    fail "w1 lost partitions at $revoke_ts, while w2 was still warming up (until $warm_ts)"
t_stop_workers w1 w2
note "30 jobs done by w1 while w2 warmed up for 12 s; w2 joined afterwards, never evicted"
