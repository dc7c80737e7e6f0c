#!/usr/bin/env bash
# timeout: 240
# Starting before the database is ready, as a pod may (the migration Job still running,
# PostgreSQL restarting). Without GENQ_START_WAIT the worker exits at once: 78 on an
# unmigrated database, 69 on an unreachable one. With it, the worker stays alive (/healthz
# 200), says why it is not ready (/readyz 503), and goes to work once the database is there.
source "$(dirname "$0")/lib.sh"
t_fresh_names
base=$GENQ_DATABASE_URL name="genq_$T_ID"
psql -qX "$base" -c "CREATE DATABASE $name" >/dev/null
export GENQ_BASE_DATABASE_URL=$base GENQ_DATABASE_URL="${base%/*}/$name"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
code() { curl -s -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$port/$1"; }
healthz_ok() { [ "$(code healthz)" = 200 ]; }
readyz_ok() { [ "$(code readyz)" = 200 ]; }
readyz_says() { [ "$(code readyz)" = 503 ] && grep -q "$1" "$T_TMP/body"; }

rc=0
GENQ_COMFYUI_URL=$GENQ_COMFYUI_URL timeout 30 "$GENQ_WORKER" worker >/dev/null 2>"$T_TMP/nowait.log" || rc=$?
[ "$rc" = 78 ] || fail "unmigrated database without GENQ_START_WAIT: exit $rc, expected 78"

"$GENQ" produce -p "start wait" -m sd15.safetensors --width 64 --height 64 --steps 2 -n 2 >/dev/null 2>>"$T_TMP/produce.log"
GENQ_START_WAIT=120 t_worker w1 "$GENQ_COMFYUI_URL" --http-listen "127.0.0.1:$port"
t_wait 30 "/healthz while waiting" healthz_ok
t_wait 30 "/readyz naming the missing migration" readyz_says "waiting for PostgreSQL: database not migrated"
kill -0 "$PID_w1" || fail "the worker exited while waiting: $(tail -3 "$T_TMP/w1.log")"
"$GENQ" migrate >/dev/null 2>"$T_TMP/migrate.log" || fail "genq migrate"
t_wait 60 "2 jobs after the migration" sql_is 2 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_wait 30 "/readyz 200" readyz_ok
t_stop_workers w1

"$GENQ_ROOT/tests/stack" stop postgres >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack stop postgres"
rc=0
GENQ_COMFYUI_URL=$GENQ_COMFYUI_URL timeout 60 "$GENQ_WORKER" worker >/dev/null 2>"$T_TMP/nowait2.log" || rc=$?
[ "$rc" = 69 ] || fail "unreachable database without GENQ_START_WAIT: exit $rc, expected 69"
GENQ_START_WAIT=120 t_worker w2 "$GENQ_COMFYUI_URL" --http-listen "127.0.0.1:$port"
t_wait 30 "/readyz while PostgreSQL is down" readyz_says "waiting for PostgreSQL"
healthz_ok || fail "/healthz not 200 while waiting"
"$GENQ_ROOT/tests/stack" start postgres >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start postgres"
"$GENQ" produce -p "after the outage" -m sd15.safetensors --width 64 --height 64 --steps 2 >/dev/null 2>>"$T_TMP/produce.log"
t_wait 90 "the job after PostgreSQL came back" sql_is 3 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_stop_workers w2
note "unmigrated: 78 at once, or wait and work after genq migrate; unreachable: 69 at once, or wait and work"
