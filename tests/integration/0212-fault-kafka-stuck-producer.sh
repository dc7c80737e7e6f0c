#!/usr/bin/env bash
# timeout: 300
# Fault test: a producer that acknowledges nothing is replaced, and its events still arrive.
# librdkafka can leave a client stuck after a broker restart (issue 5430: a partition given
# no leader by an incremental metadata update is never looked up again), holding a worker's
# completion events until it exits; genq 0.2 waited for that exit. The broker is frozen
# (SIGSTOP) here, which stops acknowledgements the same way but deterministically: after
# 45 s without one, the worker must start a new producer, and once the broker thaws every
# job has exactly one record and its event. Renders of 1.5 s keep jobs running through the
# freeze, so the progress producer, failing for 30 s, must be replaced too.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
kpid=$(cat "$GENQ_STACK_DIR/pids/kafka") || fail "no Kafka pid in $GENQ_STACK_DIR/pids"
thaw() { kill -CONT "$kpid" 2>/dev/null || true; }
trap 'thaw; t_cleanup' EXIT

t_produce_n 40 "stuck [[sim:slow:step_ms=250]]"
# The freeze outlasts the default 45 s session; a longer one keeps this test on the
# producers (a lost session costs a rejoin that waits out the old member's session).
GENQ_HTTP_LISTEN=127.0.0.1:0 t_worker w1 "${urls[0]}" -X session.timeout.ms=90000
t_wait 60 "the first 5 jobs" sql_is_at_least 5 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
kill -STOP "$kpid" || fail "cannot freeze the broker (pid $kpid)"
frozen=$SECONDS
replaced() { grep -q "a new producer publishes them again" "$T_TMP/w1.log"; }
t_wait 90 "the worker to replace its stuck producer" replaced
thaw
note "the producer was replaced $((SECONDS - frozen)) s after the broker froze"
grep -q "progress events have failed for 30 s: a new producer sends them" "$T_TMP/w1.log" ||
    fail "the progress producer was not replaced while the broker was frozen"
port=$(sed -n 's/.*health and metrics on .* (port \([0-9]*\)).*/\1/p' "$T_TMP/w1.log" | head -n 1)
[ -n "$port" ] || fail "the worker's log names no metrics port"
restarted() { curl -fsS "http://127.0.0.1:$port/metrics" | grep -q "^genq_kafka_producer_restarts_total{producer=\"$1\"} [1-9]"; }
t_wait 30 "/metrics to count the events producer's replacement" restarted events
t_wait 30 "/metrics to count the progress producer's replacement" restarted progress
recorded=$(sql "SELECT count(*) FROM genq.jobs")
[ "$recorded" -lt 40 ] || note "all 40 jobs were recorded before the broker thawed"
t_wait 180 "40 terminal jobs" sql_is 40 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
# the events: the outbox must be empty before the worker stops, not drained by its exit
t_wait 60 "an empty outbox" sql_is 0 "SELECT count(*) FROM genq.outbox"
t_stop_workers w1
t_expect_succeeded 40
summary=$(t_expect_events)
note "40/40 succeeded, $recorded recorded while frozen; $summary"
