#!/usr/bin/env bash
# timeout: 300
# Fault test (e): poison messages mixed into the flow of 120 valid requests, with workers
# killed twice along the way. Valid jobs all succeed; keyed poison gets a FAILED record
# and event; unkeyed poison is kept in genq.rejected_messages; and the dead-letter topic
# holds exactly the poison messages, each once.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_MAX_ATTEMPTS=10
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
KX=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
t_produce_n 40 poison-a
for i in 1 2 3 4 5; do
    printf 'garbage %d' "$i" | kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -p $((i % 6))
    printf '\xc3\x01garbage %d' "$i" |
        kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')" -p $((i % 6))
done
t_produce_n 80 poison-b
t_worker w1 "${urls[0]}" "${KX[@]}"
t_worker w2 "${urls[1]:-${urls[0]}}" "${KX[@]}"
RANDOM=99
for k in 1 2; do
    t_wait 60 "progress before kill $k" sql_is_at_least $((k * 35)) "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
    victim=w$((RANDOM % 2 + 1))
    pid_var=PID_$victim
    kill -9 "${!pid_var}"
    wait "${!pid_var}" 2>/dev/null || true
    mv "$T_TMP/$victim.log" "$T_TMP/$victim.killed$k.log"
    t_worker "$victim" "${urls[$((${victim#w} - 1))]:-${urls[0]}}" "${KX[@]}"
done
t_wait 180 "125 terminal jobs" sql_is 125 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_wait 30 "5 rejected messages" sql_is 5 "SELECT count(*) FROM genq.rejected_messages"
t_stop_workers w1 w2

[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'")" -eq 120 ] || fail "valid jobs did not all succeed"
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'failed' AND error_code = 'decode_error'")" -eq 5 ] || fail "keyed poison not recorded as decode_error"
[ "$(sql "SELECT count(*) FROM genq.job_outputs")" -eq 120 ] || fail "outputs"
t_expect_events >/dev/null
[ "$(sql "SELECT count(*) FROM genq.outbox")" -eq 0 ] || fail "outbox not drained"
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -e -q -f '%h\n' >"$T_TMP/dlq.txt" 2>/dev/null
[ "$(wc -l <"$T_TMP/dlq.txt")" -eq 10 ] || fail "expected exactly 10 dead letters, got $(wc -l <"$T_TMP/dlq.txt")"
[ "$(sed -E 's/.*genq-source-partition=([0-9]+).*genq-source-offset=([0-9]+).*/\1:\2/' "$T_TMP/dlq.txt" | sort -u | wc -l)" -eq 10 ] ||
    fail "dead letters are not 10 distinct source messages"
[ "$(grep -c 'genq-reason=decode_error' "$T_TMP/dlq.txt")" -eq 10 ] || fail "dead-letter reasons"
note "120 valid succeeded, 10 poison: 5 FAILED records, 5 rejected, 10 dead letters, 2 kills"
