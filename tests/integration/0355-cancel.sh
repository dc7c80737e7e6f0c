#!/usr/bin/env bash
# timeout: 240
# genq cancel. (1) Cancels published before any worker runs: j1's request is never rendered
# (ComfyUI never receives it); j2's cancel names another source and does not apply. (2) With
# L rendering (10 s), Q1 queued in ComfyUI behind it and Q2, Q3 waiting in the worker: Q2 is
# cancelled and never reaches ComfyUI; then Q1 is taken off ComfyUI's queue and L interrupted
# (`genq cancel --wait` says both ended cancelled); Q3 renders. Each cancelled job ends with
# status cancelled, error_code cancelled, and one completion event FAILED with error.code
# cancelled, not retryable. (3) Cancelling j2, which succeeded: genq cancel says so and
# publishes nothing; published anyway (no database given), it is recorded in genq.cancels and
# changes nothing. Every job has exactly one record and one event.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
stat() { curl -fsS "$GENQ_COMFYUI_URL/_sim/stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# For t_wait (evaluated on every poll): the simulator's counter $1 is at least $2.
stat_at_least() { [ "$(stat "$1")" -ge "$2" ]; }
produce() { "$GENQ" produce -m sd15.safetensors --width 64 --height 64 "$@" 2>>"$T_TMP/produce.log"; }
status() { sql "SELECT status FROM genq.jobs WHERE job_id = '$1'"; }

# (1) Not consumed yet.
j1=$(produce -p "j1 never" --steps 2 --seed 1) || fail "produce j1"
j2=$(produce -p "j2 other tenant" --steps 2 --seed 2 --source tenant-a) || fail "produce j2"
"$GENQ" cancel --reason "not needed" --requested-by ops "$j1" >"$T_TMP/c1.out" 2>"$T_TMP/c1.log" ||
    fail "genq cancel j1: $(cat "$T_TMP/c1.log")"
grep -q "^$j1 cancel requested$" "$T_TMP/c1.out" || fail "genq cancel j1 said: $(cat "$T_TMP/c1.out")"
grep -q "job $j1: not recorded yet" "$T_TMP/c1.log" || fail "genq cancel j1 did not look: $(cat "$T_TMP/c1.log")"
"$GENQ" cancel --if-source tenant-b "$j2" >"$T_TMP/c2.out" 2>"$T_TMP/c2.log" || fail "genq cancel j2: $(cat "$T_TMP/c2.log")"
received=$(stat prompts_received) started=$(stat renders_started) interrupted=$(stat renders_interrupted)
GENQ_HTTP_LISTEN=127.0.0.1:0 t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 60 "j1 cancelled, j2 succeeded" sql_is "cancelled succeeded" \
    "SELECT string_agg(status, ' ' ORDER BY prompt) FROM genq.jobs"
grep -q "cancel topic read to its end: 2 cancel request(s)" "$T_TMP/w1.log" || fail "w1 did not read the cancels first"
[ "$(stat prompts_received)" -eq $((received + 1)) ] || fail "ComfyUI received $(($(stat prompts_received) - received)) prompts, expected 1 (j2)"
row=$(sql "SELECT concat_ws('|', status, attempts, error_code, error, error_retryable) FROM genq.jobs WHERE job_id = '$j1'")
[ "$row" = "cancelled|0|cancelled|cancelled by ops: not needed|f" ] || fail "j1: $row"
[ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE job_id = '$j1'")" -eq 0 ] || fail "j1 has an attempt"

# (2) In the worker and in ComfyUI. L renders 20 steps of 500 ms; queue_depth 1 puts Q1 in
# ComfyUI's queue behind it; Q2 and Q3 wait in the worker.
received=$(stat prompts_received) started=$(stat renders_started)
L=$(produce -p "L [[sim:slow:step_ms=500]]" --steps 20 --seed 3) || fail "produce L"
t_wait 30 "L rendering" stat_at_least renders_started $((started + 1))
q1=$(produce -p "Q1 [[sim:slow:step_ms=100]]" --steps 4 --seed 4) || fail "produce Q1"
q2=$(produce -p "Q2 [[sim:slow:step_ms=100]]" --steps 4 --seed 5) || fail "produce Q2"
q3=$(produce -p "Q3" --steps 2 --seed 6) || fail "produce Q3"
t_wait 30 "Q1 in ComfyUI's queue" stat_at_least prompts_received $((received + 2))
port=$(sed -n 's/.*health and metrics on .* (port \([0-9]*\)).*/\1/p' "$T_TMP/w1.log" | head -n 1)
in_flight_is() { [ "$(curl -fsS "http://127.0.0.1:$port/metrics" | sed -n 's/^genq_jobs_in_flight //p')" = "$1" ]; }
t_wait 30 "L, Q1, Q2 and Q3 held by the worker" in_flight_is 4
[ "$(stat renders_started)" -eq $((started + 1)) ] || fail "more than L started"
"$GENQ" cancel --reason "changed my mind" "$q2" >"$T_TMP/c3.out" 2>"$T_TMP/c3.log" || fail "genq cancel Q2: $(cat "$T_TMP/c3.log")"
t_wait 30 "Q2 cancelled" sql_is cancelled "SELECT status FROM genq.jobs WHERE job_id = '$q2'"
"$GENQ" cancel --wait --wait-timeout 60 "$q1" "$L" >"$T_TMP/c4.out" 2>"$T_TMP/c4.log" ||
    fail "genq cancel --wait Q1 L: exit $?: $(cat "$T_TMP/c4.out" "$T_TMP/c4.log")"
grep -q "^$q1 cancelled " "$T_TMP/c4.out" && grep -q "^$L cancelled " "$T_TMP/c4.out" ||
    fail "genq cancel --wait said: $(cat "$T_TMP/c4.out")"
[ "$(status "$L")$(status "$q1")" = cancelledcancelled ] || fail "L $(status "$L"), Q1 $(status "$q1")"
t_wait 60 "Q3 succeeded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$q3'"
# ComfyUI: L, Q1 and Q3 received (never Q2); L and Q3 started (Q1 was taken off the queue);
# L interrupted.
[ "$(stat prompts_received)" -eq $((received + 3)) ] || fail "ComfyUI received $(($(stat prompts_received) - received)) prompts, expected 3 (L, Q1, Q3)"
[ "$(stat renders_started)" -eq $((started + 2)) ] || fail "$(($(stat renders_started) - started)) renders started, expected 2 (L, Q3)"
[ "$(stat renders_interrupted)" -eq $((interrupted + 1)) ] || fail "L was not interrupted"
att=$(sql "SELECT string_agg(p.prompt || ':' || a.status || ':' || (a.render_ms > 0), ' ' ORDER BY p.prompt)
           FROM genq.job_attempts a JOIN genq.jobs p USING (job_id) WHERE p.status = 'cancelled'")
[[ "$att" == "L [[sim:slow:step_ms=500]]:cancelled:true Q1 [[sim:slow:step_ms=100]]:cancelled:false" ]] ||
    fail "attempts of the cancelled jobs: $att"
[ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE job_id = '$q2'")" -eq 0 ] || fail "Q2 has an attempt"

# (3) A job that ended: nothing to cancel. With the database, genq cancel says how it ended and
# publishes nothing; without, the cancel goes out and changes nothing.
"$GENQ" cancel "$j2" >"$T_TMP/c5.out" 2>"$T_TMP/c5.log" || fail "genq cancel j2 (ended): $(cat "$T_TMP/c5.log")"
grep -q "^$j2 already succeeded at .*: not cancelled$" "$T_TMP/c5.out" || fail "genq cancel j2 said: $(cat "$T_TMP/c5.out")"
rc=0
"$GENQ" cancel --wait "$j2" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "genq cancel --wait of an ended job: exit $rc, expected 1"
env -u GENQ_DATABASE_URL "$GENQ" cancel --reason late "$j2" >"$T_TMP/c6.out" 2>"$T_TMP/c6.log" || fail "genq cancel j2 (no database)"
grep -q "^$j2 cancel requested$" "$T_TMP/c6.out" || fail "genq cancel j2 said: $(cat "$T_TMP/c6.out")"
t_wait 30 "j2's late cancel recorded" sql_is "late" "SELECT reason FROM genq.cancels WHERE job_id = '$j2'"
[ "$(status "$j2")" = succeeded ] || fail "j2 is $(status "$j2") after a late cancel"
t_stop_workers w1

# Records and events: one each, the cancelled ones FAILED with code cancelled.
summary=$(t_expect_events)
/usr/bin/python3 - "$T_TMP/events.jsonl" "$j1" "$q2" "$q1" "$L" <<'PY' || fail "events of the cancelled jobs"
import json, sys
ev = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    ev[e["job_id"]] = e
for job in sys.argv[2:]:
    e = ev[job]
    assert e["status"] == "FAILED" and e["error"]["code"] == "cancelled", e
    assert e["error"]["retryable"] is False and e["outputs"] == [], e
    assert e["error"]["message"].startswith("cancelled"), e
assert ev[sys.argv[2]]["error"]["message"] == "cancelled by ops: not needed"
assert ev[sys.argv[3]]["error"]["message"] == "cancelled by genq-cli: changed my mind"
assert ev[sys.argv[5]]["render_ms"] > 0 and ev[sys.argv[4]]["render_ms"] == 0
PY
[ "$(sql "SELECT count(*) FROM genq.cancels")" -eq 5 ] || fail "genq.cancels: $(sql "SELECT job_id, source, reason FROM genq.cancels")"
[ "$(sql "SELECT cancelled || ' ' || succeeded || ' ' || failed FROM genq.model_stats WHERE model = 'sd15.safetensors'")" = "4 2 0" ] ||
    fail "model_stats: $(sql "SELECT * FROM genq.model_stats")"
note "cancelled before consumption, in the worker, queued in ComfyUI, rendering; a mismatched source and an ended job unchanged; $summary"
