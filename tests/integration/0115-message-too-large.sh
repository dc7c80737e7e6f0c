#!/usr/bin/env bash
# timeout: 120
# GENQ_MAX_MESSAGE_BYTES is enforced: a request over it gets a FAILED record and event
# (message_too_large), its dead letter carries the first max_message_bytes bytes with headers
# saying so, and the message behind it in the same partition is rendered as usual. genq 0.1
# documented the setting and read it nowhere.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1 GENQ_MAX_MESSAGE_BYTES=4096
long=$(/usr/bin/python3 -c 'print("a long prompt " * 600)')
big=$("$GENQ" produce -p "$long" -m sd15.safetensors --width 64 --height 64 --steps 2 2>"$T_TMP/produce.log") || fail "produce big"
small=$("$GENQ" produce -p "small" -m sd15.safetensors --width 64 --height 64 --steps 2 2>>"$T_TMP/produce.log") || fail "produce small"
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 60 "both recorded" sql_is 2 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1
row=$(sql "SELECT status || '|' || error_code || '|' || error FROM genq.jobs WHERE job_id = '$big'")
[[ "$row" == "failed|message_too_large|"*"over the limit of 4096"* ]] || fail "big: $row"
[ "$(sql "SELECT status FROM genq.jobs WHERE job_id = '$small'")" = succeeded ] || fail "the message behind it was not rendered"
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -o beginning -e -q -f '%k|%S|%h\n' >"$T_TMP/dlq.txt" 2>/dev/null || fail "kcat"
[ "$(wc -l <"$T_TMP/dlq.txt")" -eq 1 ] || fail "dead letters: $(cat "$T_TMP/dlq.txt")"
IFS='|' read -r key size headers <"$T_TMP/dlq.txt"
[ "$key" = "$big" ] || fail "dead letter key $key"
[ "$size" -eq 4096 ] || fail "dead letter of $size bytes, expected the first 4096"
[[ "$headers" == *"genq-truncated=true"* && "$headers" == *"genq-reason=message_too_large"* ]] || fail "headers: $headers"
orig=$(sed -nE 's/.*genq-original-bytes=([0-9]+).*/\1/p' <<<"$headers")
[ "${orig:-0}" -gt 4096 ] || fail "genq-original-bytes: $headers"
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>/dev/null || fail "genq events"
grep -q "\"job_id\": *\"$big\".*message_too_large" "$T_TMP/events.jsonl" || fail "no FAILED event for the big one: $(cat "$T_TMP/events.jsonl")"
note "a $orig-byte request failed as message_too_large; its dead letter holds 4096 bytes; the next one rendered"
