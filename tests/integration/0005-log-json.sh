#!/usr/bin/env bash
# timeout: 120
# GENQ_LOG_FORMAT=json: every line any command writes on stderr is a JSON object with ts,
# level, component and msg (usage errors, configuration errors, librdkafka's own lines,
# database errors), and a line about one job carries it as "job_id" (gq_log_job), here a
# delivery that times out. A password in GENQ_COMFYUI_URL never shows, neither in the
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
GENQ_QUEUE_DEPTH=many run worker
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
jobs = 0
for l in lines:
    try:
        d = json.loads(l)
    except ValueError:
        sys.exit(f"not JSON: {l!r}")
    assert {"ts", "level", "component", "msg"} <= set(d), l
    assert "s3cret" not in l, l
    jobs += "job_id" in d and d["msg"].startswith("delivery failed")
assert jobs == 1, f"{jobs} delivery lines with a job_id field"
print(f"{len(lines)} lines, all JSON, one with a job_id field", file=sys.stderr)
PY
note "GENQ_LOG_FORMAT=json: every command's stderr is JSON lines, job ids as a field"
