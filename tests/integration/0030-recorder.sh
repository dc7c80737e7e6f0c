#!/usr/bin/env bash
# timeout: 240
# PostgreSQL: `genq migrate` (fresh database, eight runners at once, re-runs, --status,
# --dir, a tampered checksum, unreachable and malformed URLs), then the recorder's own test
# binary (migrations, the job lifecycle, offsets, rejects, races, connection loss) against
# this stack's server.
source "$(dirname "$0")/lib.sh"

TEST_RECORDER="${GENQ_BINDIR:-bin}/tests/test_recorder"
ROOT=${GENQ_ROOT:-.}
[ -x "$TEST_RECORDER" ] || fail "$TEST_RECORDER is not built"
[ -n "${GENQ_DATABASE_URL:-}" ] || fail "GENQ_DATABASE_URL is not set (run under tests/run)"

# A fresh database, deliberately not migrated (t_fresh_db would migrate it); lib.sh's
# cleanup drops it.
base=$GENQ_DATABASE_URL
name="genq_$T_ID"
psql -qX "$base" -c "CREATE DATABASE $name" >/dev/null || fail "CREATE DATABASE $name"
export GENQ_BASE_DATABASE_URL=$base
export GENQ_DATABASE_URL="${base%/*}/$name"
n_files=$(find "$ROOT/migrations" -maxdepth 1 -name '*.sql' | wc -l)
[ "$n_files" -ge 1 ] || fail "no migrations/*.sql under $ROOT"

migrate() { # expected-exit log-name args...
    local want=$1 log=$T_TMP/$2.log rc=0
    shift 2
    "$GENQ" migrate "$@" >"$log.out" 2>"$log" || rc=$?
    [ "$rc" -eq "$want" ] || { cat "$log" "$log.out" >&2; fail "genq migrate $*: exit $rc, expected $want"; }
}

note "--status on an empty database: everything pending, exit 1"
migrate 1 status0 --status
grep -q '^0001_init  *pending' "$T_TMP/status0.log.out" || fail "0001_init not listed as pending"

note "eight genq migrate at once"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$GENQ" migrate >"$T_TMP/m$i.out" 2>"$T_TMP/m$i.log" &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "concurrent genq migrate #$((i + 1)) failed: $(cat "$T_TMP/m$((i + 1)).log")"
done
recorded=$(sql "SELECT count(*) || '/' || count(DISTINCT version) FROM genq.schema_migrations")
[ "$recorded" = "$n_files/$n_files" ] ||
    fail "schema_migrations holds $recorded (rows/versions), expected $n_files/$n_files"
applied=$(cat "$T_TMP"/m[1-8].log | grep -c 'applied migration 0001_init.sql' || true)
[ "$applied" -eq 1 ] || fail "0001_init.sql applied $applied times by the concurrent runners"

note "again: nothing to do, exit 0"
migrate 0 again
grep -q '0 applied now' "$T_TMP/again.log" || fail "a second genq migrate applied something: $(cat "$T_TMP/again.log")"
migrate 0 status1 --status
[ "$(grep -c ' applied ' "$T_TMP/status1.log.out")" -eq "$n_files" ] || fail "--status: $(cat "$T_TMP/status1.log.out")"

note "a tampered checksum: exit 78, naming the file"
sql "UPDATE genq.schema_migrations SET checksum = repeat('0', 64) WHERE version = '0001_init'" >/dev/null
migrate 78 tampered
grep -q 'migration 0001_init.sql was changed after it was applied' "$T_TMP/tampered.log" ||
    fail "no naming error: $(cat "$T_TMP/tampered.log")"
migrate 78 tampered_status --status
grep -q '^0001_init  *changed' "$T_TMP/tampered_status.log.out" || fail "--status does not say changed"
sum=$(sha256sum "$ROOT/migrations/0001_init.sql" | cut -c1-64)
sql "UPDATE genq.schema_migrations SET checksum = '$sum' WHERE version = '0001_init'" >/dev/null
migrate 0 restored

note "--dir: the repository's files plus a development one"
mkdir -p "$T_TMP/mig"
cp "$ROOT"/migrations/*.sql "$T_TMP/mig/"
echo 'CREATE TABLE genq.dev_only (x int);' >"$T_TMP/mig/9999_dev.sql"
migrate 0 dir --dir "$T_TMP/mig"
grep -q 'applied migration 9999_dev.sql' "$T_TMP/dir.log" || fail "--dir did not apply 9999_dev.sql"
[ "$(sql "SELECT to_regclass('genq.dev_only') IS NOT NULL")" = t ] || fail "--dir: table missing"
# A migration this binary does not know is tolerated (a newer genq may have applied it).
migrate 0 unknown --status
grep -q 'unknown to this genq' "$T_TMP/unknown.log" || fail "--status does not mention the unknown migration"
sql "DROP TABLE genq.dev_only; DELETE FROM genq.schema_migrations WHERE version = '9999_dev'" >/dev/null
migrate 64 nodir --dir "$T_TMP/no-such-dir"

note "unreachable and malformed database URLs; the password never shows"
GENQ_DATABASE_URL="postgresql://genq:hunter2-secret@127.0.0.1:1/genq?connect_timeout=3" migrate 69 unreachable
grep -q 'hunter2' "$T_TMP/unreachable.log" && fail "the password appears in: $(cat "$T_TMP/unreachable.log")"
GENQ_DATABASE_URL="postgresql://genq:hunter2-secret@[::1/genq" migrate 78 malformed
grep -q 'hunter2' "$T_TMP/malformed.log" && fail "the password appears in: $(cat "$T_TMP/malformed.log")"
migrate 64 usage extra-argument

note "test_recorder against this server"
"$TEST_RECORDER" >"$T_TMP/test_recorder.out" 2>"$T_TMP/test_recorder.log" ||
    { cat "$T_TMP/test_recorder.log" >&2; fail "test_recorder"; }
grep -q 'test_recorder: [0-9]* checks passed, 0 failed' "$T_TMP/test_recorder.log" ||
    fail "test_recorder did not run: $(cat "$T_TMP/test_recorder.out" "$T_TMP/test_recorder.log")"
grep '^bench:' "$T_TMP/test_recorder.log" >&2 || true
note "ok"
