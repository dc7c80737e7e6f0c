#!/usr/bin/env bash
# timeout: 120
# W3C trace context: a traceparent given at produce travels in the request's headers, is
# stored with the job (genq.jobs.traceparent), logged with its end, and comes back as the
# completion event's traceparent header (kcat sees it; genq events shows it). Without one,
# genq produce starts a trace per request. An invalid one is refused (exit 78).
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
url=$GENQ_COMFYUI_URL
tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
produce() { "$GENQ" produce -m sd15.safetensors --width 64 --height 64 --steps 2 "$@" 2>>"$T_TMP/produce.log"; }
a=$(produce -p "traced" --traceparent "$tp") || fail "produce a"
b=$(produce -p "not traced") || fail "produce b"
rc=0
produce -p "bad" --traceparent "00-xyz" >/dev/null || rc=$?
[ "$rc" -eq 78 ] || fail "an invalid traceparent: exit $rc, expected 78"
[ "$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -o beginning -e -q -f '%h\n' 2>/dev/null | grep -c 'traceparent=00-')" -eq 2 ] ||
    fail "the requests do not both carry a traceparent header"
t_worker w1 "$url"
t_wait 60 "both jobs" sql_is 2 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_stop_workers w1
[ "$(sql "SELECT traceparent FROM genq.jobs WHERE job_id = '$a'")" = "$tp" ] || fail "a's record: $(sql "SELECT traceparent FROM genq.jobs WHERE job_id = '$a'")"
tb=$(sql "SELECT traceparent FROM genq.jobs WHERE job_id = '$b'")
[[ "$tb" =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]] || fail "b's record has no trace of its own: '$tb'"
[ "$tb" != "$tp" ] || fail "b shares a's trace"
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_COMPLETED_TOPIC" -o beginning -e -q -f '%k %h\n' >"$T_TMP/ev.txt" 2>/dev/null
grep -q "^$a .*traceparent=$tp" "$T_TMP/ev.txt" || fail "a's completion event lacks its traceparent: $(cat "$T_TMP/ev.txt")"
grep -q "^$b .*traceparent=$tb" "$T_TMP/ev.txt" || fail "b's completion event lacks its traceparent"
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>/dev/null || fail "genq events"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$a" "$tp" <<'PY' || fail "genq events does not show the traceparent"
import json, sys
ev = {e["job_id"]: e for e in map(json.loads, open(sys.argv[1]))}
assert ev[sys.argv[2]]["traceparent"] == sys.argv[3], ev[sys.argv[2]]
PY
grep -q "job $a: SUCCEEDED.*trace 4bf92f3577b34da6a3ce929d0e0e4736" "$T_TMP/w1.log" || fail "the worker's log line lacks the trace"
note "traceparent given and started at produce: on the record, the event header, genq events and the log"
