# Helpers for integration tests. Source it; the stack's env (GENQ_BROKERS, ...) and
# GENQ_BINDIR are exported by tests/run. Every test gets its own database, topics,
# group and output directory, so tests never see each other's data.
set -euo pipefail

GENQ="${GENQ_BINDIR:-bin}/genq"
T_ID="t$(date +%s%N | tail -c 9)$$"
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/genq-it.XXXXXX")
T_PIDS=()

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
    export GENQ_GROUP="genq-workers-$T_ID"
    export GENQ_OUTPUT_DIR="$T_TMP/outputs"
    export GENQ_PARTITIONS=${GENQ_PARTITIONS:-6}
}

sql() { psql -qtAX "$GENQ_DATABASE_URL" -c "$1"; }

# For t_wait: true when QUERY returns exactly N (the query runs anew on every poll).
sql_is() { [ "$(sql "$2" 2>/dev/null)" = "$1" ]; }

# t_worker NAME COMFY_URL [args...]: starts a worker in the background, logs in $T_TMP/NAME.log
t_worker() {
    local name=$1 url=$2
    shift 2
    GENQ_COMFYUI_URL=$url GENQ_WORKER_ID=$name "$GENQ" worker "$@" >"$T_TMP/$name.log" 2>&1 &
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
