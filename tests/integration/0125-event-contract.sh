#!/usr/bin/env bash
# timeout: 180
# The completion-event contract, seen from a consumer's side (genq events, and a plain Kafka
# consumer): exactly one event per job, published when the job ends, never one per failed
# attempt. A job that failed once and then succeeded: one SUCCEEDED event (attempt 2). A job
# that ran out of attempts on a transient error: one FAILED event, retryable = true, and its
# dead letter. A request that can never work: one FAILED event, retryable = false.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
url=$GENQ_COMFYUI_URL
fault() { curl -fsS -X POST "$url/_sim/faults" -d "$1" >/dev/null || fail "fault $1"; }
produce() { "$GENQ" produce -m sd15.safetensors --width 64 --height 64 --steps 2 "$@" 2>>"$T_TMP/produce.log"; }
t_worker w1 "$url"
fault '{"fault": "oom", "count": 1}'
a=$(produce -p "fails once") || fail "produce a"
t_wait 60 "a done" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$a'"
fault '{"fault": "oom", "count": 2}'
b=$(produce -p "runs out" --max-attempts 2) || fail "produce b"
t_wait 60 "b done" sql_is failed "SELECT status FROM genq.jobs WHERE job_id = '$b'"
c=$(produce -p "never works" --workflow no-such-template) || fail "produce c"
t_wait 60 "c done" sql_is failed "SELECT status FROM genq.jobs WHERE job_id = '$c'"
t_stop_workers w1
# A plain Kafka consumer: how many messages per key.
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_COMPLETED_TOPIC" -o beginning -e -q -f '%k\n' >"$T_TMP/keys.txt" 2>/dev/null || fail "kcat"
for j in "$a" "$b" "$c"; do
    [ "$(grep -c "^$j$" "$T_TMP/keys.txt")" -eq 1 ] || fail "job $j: $(grep -c "^$j$" "$T_TMP/keys.txt") events on the topic, expected exactly 1"
done
[ "$(wc -l <"$T_TMP/keys.txt")" -eq 3 ] || fail "$(wc -l <"$T_TMP/keys.txt") events for 3 jobs"
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>/dev/null || fail "genq events"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$a" "$b" "$c" <<'PY' || fail "events"
import json, sys
ev = {e["job_id"]: e for e in map(json.loads, open(sys.argv[1]))}
a, b, c = (ev[j] for j in sys.argv[2:5])
assert a["status"] == "SUCCEEDED" and a["attempt"] == 2 and a["error"] is None, a
assert b["status"] == "FAILED" and b["attempt"] == 2 and b["error"]["retryable"] is True, b
assert b["error"]["code"] == "out_of_memory", b
assert c["status"] == "FAILED" and c["error"]["retryable"] is False, c
assert c["error"]["code"] == "unknown_template", c
PY
dlq=$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -o beginning -e -q -f '%k\n' 2>/dev/null)
[ "$dlq" = "$b" ] || fail "dead letters: '$dlq', expected b's only"
note "one event per job: SUCCEEDED after a retry (attempt 2); FAILED retryable after running out (dead-lettered); FAILED not retryable for a request that cannot work"
