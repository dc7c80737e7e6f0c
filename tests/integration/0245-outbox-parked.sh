#!/usr/bin/env bash
# timeout: 180
# An outbox message Kafka will not take (here a dead letter larger than the producer's
# message.max.bytes) is tried again after GENQ_OUTBOX_RETRY, never in a tight loop, counted
# with its error, parked after GENQ_OUTBOX_MAX_ATTEMPTS, shown in /metrics, and never lost.
# Meanwhile everything else is published. genq 0.1 re-claimed such a row every 60 s forever.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1 GENQ_OUTBOX_RETRY=2 GENQ_OUTBOX_MAX_ATTEMPTS=3
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }
ok=$("$GENQ" produce -p "fine" -m sd15.safetensors --width 64 --height 64 --steps 2 2>"$T_TMP/produce.log")
poison=$(uuid)
/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(b"\x00" * 5000)' >"$T_TMP/poison.bin"
kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -p 0 -k "$poison" "$T_TMP/poison.bin" || fail "kcat"
# The producer takes messages of up to 4000 bytes: the dead letter (5000 bytes) is refused.
t_worker w1 "$GENQ_COMFYUI_URL" -X message.max.bytes=4000 --http-listen "127.0.0.1:$port"
t_wait 60 "both recorded" sql_is 2 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_wait 60 "the dead letter parked" sql_is 1 "SELECT count(*) FROM genq.outbox WHERE parked_at IS NOT NULL"
row=$(sql "SELECT topic || '|' || attempts || '|' || coalesce(last_error, '') FROM genq.outbox WHERE parked_at IS NOT NULL")
[[ "$row" == "$GENQ_DLQ_TOPIC|3|"*[Ss]ize* ]] || fail "parked row: $row"
metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
parked_metric() { [ "$(metric genq_outbox_parked)" = 1 ]; }
t_wait 30 "genq_outbox_parked 1" parked_metric
# Parked means left alone: no more attempts while it stays parked.
sleep 5 # a window in which a tight loop would show, not a wait for something
[ "$(sql "SELECT attempts FROM genq.outbox WHERE parked_at IS NOT NULL")" = 3 ] || fail "a parked row was tried again"
# The good job's event went out all the same.
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>/dev/null || fail "genq events"
grep -q "$ok" "$T_TMP/events.jsonl" || fail "the completion event of the good job is missing"
t_stop_workers w1
[ "$(sql "SELECT count(*) FROM genq.outbox")" -ge 1 ] || fail "the parked message was lost"
note "a refused dead letter: 3 attempts, 2 s apart, parked with '$(cut -d'|' -f3 <<<"$row")', in /metrics; other events published"
