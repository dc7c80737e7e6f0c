# Helpers for integration tests. Source it; the stack's env (GENQ_BROKERS, ...) and
# GENQ_BINDIR are exported by tests/run. Every test gets its own database, topics,
# group and output directory, so tests never see each other's data.
set -euo pipefail

GENQ="${GENQ_BINDIR:-bin}/genq"
# Workers run the AddressSanitizer + UBSan build when tests/run has one (make test builds
# it): every report lands in $T_TMP/sanitizer.* and fails the test (see t_cleanup).
GENQ_WORKER="${GENQ_ASAN_BINDIR:-${GENQ_BINDIR:-bin}}/genq"
T_ID="t$(date +%s%N | tail -c 9)$$"
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/genq-it.XXXXXX")
T_PIDS=()
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$T_TMP/sanitizer.asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$T_TMP/sanitizer.ubsan"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

note() { echo "# $*" >&2; }

# A fresh, migrated database for this test.
t_fresh_db() {
    local base=$GENQ_DATABASE_URL name="genq_$T_ID"
    psql -qX "$base" -c "CREATE DATABASE $name" >/dev/null
    export GENQ_BASE_DATABASE_URL=$base
    export GENQ_DATABASE_URL="${base%/*}/$name"
    "$GENQ" migrate >/dev/null 2>"$T_TMP/migrate.log" || { cat "$T_TMP/migrate.log" >&2; fail "genq migrate"; }
}

# Topics, group and output directory of our own.
t_fresh_names() {
    export GENQ_REQUESTS_TOPIC="genq.requests.$T_ID"
    export GENQ_COMPLETED_TOPIC="genq.completed.$T_ID"
    export GENQ_DLQ_TOPIC="genq.requests.dlq.$T_ID"
    export GENQ_PROGRESS_TOPIC="genq.progress.$T_ID"
    export GENQ_CANCEL_TOPIC="genq.cancel.$T_ID"
    export GENQ_GROUP="genq-workers-$T_ID"
    export GENQ_OUTPUT_DIR="$T_TMP/outputs"
    export GENQ_PARTITIONS=${GENQ_PARTITIONS:-6}
}

sql() { psql -qtAX "$GENQ_DATABASE_URL" -c "$1"; }

# For t_wait: true when QUERY returns exactly N (the query runs anew on every poll).
sql_is_at_least() { [ "$(sql "$2" 2>/dev/null || echo 0)" -ge "$1" ]; }
sql_is() { [ "$(sql "$2" 2>/dev/null)" = "$1" ]; }

# t_worker NAME COMFY_URL [args...]: starts a worker in the background, logs in $T_TMP/NAME.log
t_worker() {
    local name=$1 url=$2
    shift 2
    GENQ_COMFYUI_URL=$url GENQ_WORKER_ID=$name "$GENQ_WORKER" worker "$@" >"$T_TMP/$name.log" 2>&1 &
    T_PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}

# t_wait SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds or time runs out.
t_wait() {
    local limit=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@"; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}

t_cleanup() {
    local rc=$?
    for p in "${T_PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    local f
    for f in "$T_TMP"/sanitizer.*; do
        [ -s "$f" ] || continue
        echo "FAIL: sanitizer report in $(basename "$f"):" >&2
        head -n 60 "$f" >&2
        rc=1
    done
    if [ "$rc" -ne 0 ]; then
        for f in "$T_TMP"/*.log; do
            [ -f "$f" ] || continue
            echo "--- $(basename "$f") (last 30 lines)" >&2
            tail -n 30 "$f" >&2
        done
    fi
    if [ -n "${GENQ_BASE_DATABASE_URL:-}" ] && [ -z "${KEEP_T_TMP:-}" ]; then
        psql -qX "$GENQ_BASE_DATABASE_URL" -c "DROP DATABASE IF EXISTS genq_$T_ID WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    [ -n "${KEEP_T_TMP:-}" ] || rm -rf "$T_TMP"
    exit "$rc"
}
trap t_cleanup EXIT

# Checks every output row: the file exists, its sha256 matches, its PNG size is the
# requested one. Prints the number of files checked.
t_check_outputs() {
    sql "SELECT o.uri, o.sha256, o.width, o.height, j.width, j.height FROM genq.job_outputs o
         JOIN genq.jobs j USING (job_id)" | /usr/bin/python3 -c '
import hashlib, struct, sys
n = 0
for line in sys.stdin:
    uri, sha, ow, oh, jw, jh = line.rstrip("\n").split("|")
    assert uri.startswith("file://"), uri
    data = open(uri[len("file://"):], "rb").read()
    assert hashlib.sha256(data).hexdigest() == sha, "sha256 mismatch for " + uri
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: " + uri
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (int(jw), int(jh)) == (int(ow), int(oh)), f"{uri}: {w}x{h}, asked {jw}x{jh}"
    n += 1
print(n)'
}

# t_produce_n N PREFIX: publishes N small valid requests; their ids go to $T_TMP/ids.txt.
t_produce_n() {
    /usr/bin/python3 - "$1" "$2" >"$T_TMP/requests.jsonl" <<'PY'
import json, sys
n, prefix = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(json.dumps({"prompt": f"{prefix} {i}", "model": ["sd15.safetensors", "sdxl.safetensors"][i % 2],
                      "width": 64, "height": 64, "steps": 6, "seed": 100 + i, "source": prefix}))
PY
    "$GENQ" produce --file "$T_TMP/requests.jsonl" >>"$T_TMP/ids.txt" 2>>"$T_TMP/produce.log" || fail "genq produce"
}

# t_expect_succeeded N: exactly N job rows, all succeeded, one verified output each,
# consistent durations.
t_expect_succeeded() {
    local n=$1 bad nout
    [ "$(sql "SELECT count(*) FROM genq.jobs")" -eq "$n" ] || fail "genq.jobs has $(sql 'SELECT count(*) FROM genq.jobs') rows, expected $n"
    bad=$(sql "SELECT count(*) FROM genq.jobs WHERE status <> 'succeeded'")
    [ "$bad" -eq 0 ] || fail "$bad jobs not succeeded: $(sql "SELECT job_id, attempts, error_code, error FROM genq.jobs WHERE status <> 'succeeded' LIMIT 5")"
    [ "$(sql "SELECT count(*) FROM genq.job_outputs")" -eq "$n" ] || fail "expected $n outputs, found $(sql 'SELECT count(*) FROM genq.job_outputs')"
    nout=$(t_check_outputs) || fail "output check failed"
    [ "$nout" -eq "$n" ] || fail "verified $nout outputs, expected $n"
    [ "$(sql "SELECT count(*) FROM genq.jobs WHERE queue_ms + render_ms > total_ms")" -eq 0 ] || fail "inconsistent durations"
}

# t_expect_events: every recorded job has a completion event with its status, and every
# repeat carries the recorded attempt. Prints a summary line.
t_expect_events() {
    "$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
    # a cache hit made no attempt (attempts 0); its event says 1, as for a refused request (and
    # a job cancelled before its first attempt); a cancelled job's event says FAILED
    sql "SELECT job_id, CASE WHEN cache_hit OR attempts = 0 THEN 1 ELSE attempts END,
                upper(CASE status WHEN 'cancelled' THEN 'failed' ELSE status END) FROM genq.jobs" >"$T_TMP/recorded.txt"
    /usr/bin/python3 - "$T_TMP/events.jsonl" "$T_TMP/recorded.txt" <<'PY' || fail "completion events do not match the records"
import json, sys
recorded = {}
for line in open(sys.argv[2]):
    if line.strip():
        job, attempts, status = line.strip().split("|")
        recorded[job] = (int(attempts), status)
seen, repeats = {}, 0
for line in open(sys.argv[1]):
    ev = json.loads(line)
    key = (ev["attempt"], ev["status"])
    if ev["job_id"] in seen:
        repeats += 1
    seen.setdefault(ev["job_id"], set()).add(key)
missing = set(recorded) - set(seen)
assert not missing, f"{len(missing)} jobs without an event, e.g. {sorted(missing)[:3]}"
extra = set(seen) - set(recorded)
assert not extra, f"events for unrecorded jobs: {sorted(extra)[:3]}"
for job, keys in seen.items():
    assert keys == {recorded[job]}, f"job {job}: events {keys}, recorded {recorded[job]}"
print(f"events: {len(seen)} jobs, {repeats} repeats (same job and attempt)")
PY
}

# t_sim_renders: renders completed by all simulators so far.
t_sim_renders() {
    local total=0 u
    for u in ${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}; do
        total=$((total + $(curl -fsS "$u/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["renders_completed"])')))
    done
    echo "$total"
}

# t_stop_workers NAME...: SIGTERM, and each must exit 0 (drained).
t_stop_workers() {
    local w pid_var
    for w in "$@"; do pid_var=PID_$w; kill -TERM "${!pid_var}" 2>/dev/null || true; done
    for w in "$@"; do pid_var=PID_$w; wait "${!pid_var}" || fail "worker $w exited with $? after SIGTERM"; done
}

# t_service_fault SERVICE LABEL: 150 jobs through two workers, SERVICE (a tests/stack
# service: kafka, postgres) stopped after the first 30 and restarted 6 s later. Every job
# must end in exactly one terminal row (all succeeded), one output each, an event for every
# job published while the workers run (repeats only with the recorded attempt); the renders
# thrown away are reported.
t_service_fault() {
    local svc=$1 label=$2 before wasted summary urls
    t_fresh_db
    t_fresh_names
    export GENQ_MAX_ATTEMPTS=10 GENQ_STALL_TIMEOUT=20
    read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
    before=$(t_sim_renders)
    t_produce_n 150 "$svc-fault"
    t_worker w1 "${urls[0]}"
    t_worker w2 "${urls[1]:-${urls[0]}}"
    t_wait 60 "the first 30 jobs" sql_is_at_least 30 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
    note "$label stopped and restarted mid-run"
    "$GENQ_ROOT/tests/stack" stop "$svc" >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack stop $svc: $(tail -3 "$T_TMP/stack.log")"
    sleep 6 # the outage itself, not a wait for something
    "$GENQ_ROOT/tests/stack" start "$svc" >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start $svc: $(tail -3 "$T_TMP/stack.log")"
    t_wait 240 "150 terminal jobs" sql_is 150 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
    # Events are due once the outbox is empty, while the workers run: a producer librdkafka
    # left stuck by the restart (its issue 5430) is replaced within 45 s (0212).
    t_wait 120 "an empty outbox" sql_is 0 "SELECT count(*) FROM genq.outbox"
    t_stop_workers w1 w2
    t_expect_succeeded 150
    summary=$(t_expect_events)
    wasted=$(($(t_sim_renders) - before - 150))
    note "150/150 succeeded; $summary; $(sql "SELECT count(*) FROM genq.jobs WHERE attempts > 1") jobs retried; $wasted renders thrown away"
}

# t_registry: the stack's Schema Registry (Apicurio, Confluent-compatible API), started by the
# first test that asks (tests/stack start registry does nothing when it runs); exports
# GENQ_SCHEMA_REGISTRY_URL and the stack's GENQ_STACK_REGISTRY_* (TLS URL, CA).
t_registry() {
    "$GENQ_ROOT/tests/stack" start registry >/dev/null 2>>"$T_TMP/stack.log" ||
        fail "tests/stack start registry: $(tail -n 5 "$T_TMP/stack.log")"
    # shellcheck disable=SC1091
    source "$GENQ_STACK_DIR/registry.env"
    export GENQ_SCHEMA_REGISTRY_URL=$GENQ_STACK_REGISTRY_URL
}

# t_fastavro: the python of a cached venv with fastavro (a non-C Avro client), installed
# once into ~/.cache/genq/venv-avro from PyPI.
t_fastavro() {
    local venv=${GENQ_CACHE_DIR:-$HOME/.cache/genq}/venv-avro
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import fastavro' 2>/dev/null; then
        (flock -w 300 9 && { "$venv/bin/python" -c 'import fastavro' 2>/dev/null ||
            { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q 'fastavro==1.13.1'; }; }) \
            9>"$venv.lock" >/dev/null 2>&1 || fail "installing fastavro into $venv"
    fi
    echo "$venv/bin/python"
}

# t_avsc_variant OUT EDIT: writes the current GenerationRequest.avsc changed by the python
# statement EDIT (on `fields`, the list of field objects) to OUT.
t_avsc_variant() {
    /usr/bin/python3 - "$GENQ_ROOT/schemas/GenerationRequest.avsc" "$1" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
fields = s["fields"]
exec(sys.argv[3])
json.dump(s, open(sys.argv[2], "w"), indent=1)
PY
}
