#!/usr/bin/env bash
# timeout: 180
# GENQ_LOG_FORMAT=json: every line any command writes on stderr is a JSON object with ts,
# level, component and msg (usage errors, configuration errors, librdkafka's own lines,
# database errors, genq events waiting for its topic, genq replay dlq's producer), and a
# line about one job carries it as "job_id" (gq_log_job), here a delivery that times out
# and a dead letter that replay could not deliver. A password in GENQ_COMFYUI_URL never shows, neither in the
# worker's log (today it refuses such a URL, naming it) nor in --dump-config, which also
# shows flags given after it.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_LOG_FORMAT=json
run() { "$GENQ" "$@" >/dev/null 2>>"$T_TMP/stderr.log" || true; }
run
run nope
run produce --bogus
run produce -p x -m m extra
run produce -b 127.0.0.1:1 -p x -m m -X message.timeout.ms=2000 --partitions 1
run events extra
run events --from beginning --limit 1 -b 127.0.0.1:1 -X socket.connection.setup.timeout.ms=1000
run migrate --dir
run migrate extra
run migrate --status
run migrate --database-url postgresql://genq:s3cret@127.0.0.1:1/nowhere
run replay
run replay sideways
run replay jobs --dry-run
run lag --offset-reset-policy sometimes
run lag
run worker --bogus
run worker extra
GENQ_QUEUE_DEPTH=many run worker
# Configuration errors a worker must refuse at start (bounded: one that did not would run).
GENQ_INLINE_WORKFLOWS=sometimes timeout -s TERM 10 "$GENQ" worker >/dev/null 2>>"$T_TMP/stderr.log" || true
GENQ_INLINE_WORKFLOWS=allowlist GENQ_INLINE_NODE_CLASSES=/nonexistent/classes \
    timeout -s TERM 10 "$GENQ" worker >/dev/null 2>>"$T_TMP/stderr.log" || true
grep -q 'inline_workflows \\"sometimes\\": expected off, allowlist or allow' "$T_TMP/stderr.log" ||
    fail "GENQ_INLINE_WORKFLOWS=sometimes was not refused"
run replay dlq --dry-run --since 2026-13-01
run replay dlq --dry-run -b 127.0.0.1:1 -X socket.connection.setup.timeout.ms=1000
run replay dlq -X linger.ms=900000 -X message.timeout.ms=1000
# genq events waiting for a topic that does not exist, stopped while it waits.
timeout -s TERM 4 "$GENQ" events --follow --completed-topic "$GENQ_COMPLETED_TOPIC.none" \
    >/dev/null 2>>"$T_TMP/stderr.log" || true
# genq replay dlq: a dead letter Kafka does not take is a line about its job.
lost=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
/usr/bin/python3 "$GENQ_ROOT/tests/schemas/encode_request.py" "{\"job_id\": \"$lost\", \"prompt\": \"x\"}" >"$T_TMP/lost.bin"
kcat -P -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -k "$lost" -H genq-reason=lost \
    -H "genq-source-topic=$GENQ_REQUESTS_TOPIC.gone" "$T_TMP/lost.bin" 2>/dev/null || fail "kcat"
run replay dlq --requests-topic "$GENQ_REQUESTS_TOPIC.gone" -X allow.auto.create.topics=false \
    -X topic.metadata.propagation.max.ms=1000 -X message.timeout.ms=5000
GENQ_LOG_FORMAT=text run produce --log-format json --bogus
GENQ_COMFYUI_URL=http://ops:s3cret@127.0.0.1:9 timeout -s TERM 8 "$GENQ" worker \
    >/dev/null 2>>"$T_TMP/stderr.log" || true
grep -q '"component":"worker".*http://ops:\*\*\*@127.0.0.1:9' "$T_TMP/stderr.log" ||
    fail "no worker line with the masked ComfyUI URL"
dump=$("$GENQ" worker --dump-config -c http://ops:s3cret@gpu7:8188) || fail "--dump-config"
grep -qx 'comfyui_url=http://ops:\*\*\*@gpu7:8188.# flag' <<<"$dump" ||
    fail "--dump-config -c: $(grep comfyui_url <<<"$dump")"
/usr/bin/python3 - "$T_TMP/stderr.log" <<'PY' || fail "non-JSON lines on stderr: $(cat "$T_TMP/stderr.log")"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
jobs = replays = waits = 0
for l in lines:
    try:
        d = json.loads(l)
    except ValueError:
        sys.exit(f"not JSON: {l!r}")
    assert {"ts", "level", "component", "msg"} <= set(d), l
    assert "s3cret" not in l, l
    jobs += "job_id" in d and d["msg"].startswith("delivery failed")
    replays += "job_id" in d and d["msg"].startswith("not delivered to")
    waits += d["component"] == "events" and d["msg"].startswith("waiting for topic")
assert jobs == 1, f"{jobs} delivery lines with a job_id field"
assert replays == 1, f"{replays} replay lines with a job_id field"
assert waits >= 1, "no line of genq events waiting for its topic"
print(f"{len(lines)} lines, all JSON, job ids as fields", file=sys.stderr)
PY
note "GENQ_LOG_FORMAT=json: every command's stderr is JSON lines, job ids as a field"
