#!/usr/bin/env bash
# timeout: 180
# Progress events. Job a renders 16 sampler steps of 250 ms; job b waits behind it in
# ComfyUI's queue. The worker publishes GenerationProgress on the progress topic, throttled to
# one event per job per GENQ_PROGRESS_INTERVAL (300 ms) plus one at each change: b QUEUED
# behind one prompt, then each job LOADING, RUNNING with step of max steps up to 16/16,
# COLLECTING with every node done; sequence numbers 1, 2, 3...; each message with the
# request's traceparent header. `genq produce --wait` (stderr not a terminal) logs a's
# progress as it comes; `genq events --progress` prints the events as JSON lines. With
# GENQ_PROGRESS_INTERVAL=0 the worker publishes none.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
stat() { curl -fsS "$GENQ_COMFYUI_URL/_sim/stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# For t_wait (evaluated on every poll): the simulator's counter $1 is at least $2.
stat_at_least() { [ "$(stat "$1")" -ge "$2" ]; }
GENQ_PROGRESS_INTERVAL=300 t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 60 "w1 ready" grep -q "cancel topic read to its end" "$T_TMP/w1.log"

tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
started=$(stat renders_started)
"$GENQ" produce -p "a [[sim:slow:step_ms=250]]" -m sd15.safetensors --width 64 --height 64 \
    --steps 16 --seed 11 --traceparent "$tp" --wait --wait-timeout 90 >"$T_TMP/a.id" 2>"$T_TMP/a.log" &
pa=$!
t_wait 30 "a rendering" sql_is 1 "SELECT count(*) FROM genq.jobs WHERE status = 'running'"
t_wait 30 "a started in ComfyUI" stat_at_least renders_started $((started + 1))
b=$("$GENQ" produce -p "b [[sim:slow:step_ms=50]]" -m sd15.safetensors --width 64 --height 64 \
    --steps 4 --seed 12 2>>"$T_TMP/produce.log")
wait "$pa" || fail "genq produce --wait for a: exit $? ($(tail -3 "$T_TMP/a.log"))"
a=$(cat "$T_TMP/a.id")
t_wait 60 "b succeeded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$b'"

# --wait showed a's progress, a log line per event (stderr is no terminal here).
grep -q "job $a: progress: RUNNING .* [0-9]*/16 KSampler" "$T_TMP/a.log" ||
    fail "genq produce --wait showed no progress: $(cat "$T_TMP/a.log")"
[ "$(grep -c "job $a: progress: " "$T_TMP/a.log")" -ge 3 ] || fail "too few progress lines: $(cat "$T_TMP/a.log")"

# Every event of both jobs, in order.
"$GENQ" events --progress --from beginning >"$T_TMP/progress.jsonl" 2>"$T_TMP/events.log" ||
    fail "genq events --progress: $(cat "$T_TMP/events.log")"
summary=$(/usr/bin/python3 - "$T_TMP/progress.jsonl" "$a" "$b" "$tp" <<'PY'

import json, sys
path, a, b, tp = sys.argv[1:]
evs = {}
for line in open(path):
    e = json.loads(line)
    evs.setdefault(e["job_id"], []).append(e)
order = ["QUEUED", "LOADING", "RUNNING", "COLLECTING"]
for job, steps in ((a, 16), (b, 4)):
    es = evs.get(job, [])
    assert len(es) >= 3, f"{job}: {len(es)} events"
    assert [e["seq"] for e in es] == list(range(1, len(es) + 1)), [e["seq"] for e in es]
    assert all(e["attempt"] == 1 and e["worker_id"] == "w1" and e["nodes_total"] == 7 for e in es)
    states = [order.index(e["state"]) for e in es]
    assert states == sorted(states), [e["state"] for e in es]
    run = [e for e in es if e["state"] == "RUNNING"]
    assert run and max(e["step"] for e in run) == steps and all(e["max_steps"] == steps for e in run), run
    assert all(e["queue_position"] is None for e in es if e["state"] != "QUEUED")
    last = es[-1]
    assert last["state"] == "COLLECTING" and last["nodes_done"] == 7, last
    # the throttle: same state and node and position, at least the interval apart
    for p, q in zip(es, es[1:]):
        if (p["state"], p["node"], p["queue_position"]) == (q["state"], q["node"], q["queue_position"]):
            assert q["at"] - p["at"] >= 290, (p, q)
    assert len(es) <= 30, len(es)
# b waited behind a in ComfyUI's queue: its first event says so.
first = evs[b][0]
assert first["state"] == "QUEUED" and first["queue_position"] == 1 and first["node"] is None, first
assert evs[a][0]["traceparent"] == tp, evs[a][0]
assert all(e.get("traceparent") == evs[b][0]["traceparent"] for e in evs[b]) and evs[b][0]["traceparent"]
span = (evs[a][-1]["at"] - evs[a][0]["at"]) / 1000
print(f"a: {len(evs[a])} events in {span:.1f} s ({len(evs[a]) / max(span, 0.001):.1f}/s); "
      f"b: {len(evs[b])} events, first QUEUED behind 1")
PY
) || fail "progress events: $(cat "$T_TMP/progress.jsonl")"
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_PROGRESS_TOPIC" -o beginning -e -q -f '%k %h\n' >"$T_TMP/headers.txt" 2>/dev/null
[ "$(grep -c "^$a .*traceparent=$tp" "$T_TMP/headers.txt")" -eq "$(grep -c "^$a " "$T_TMP/headers.txt")" ] ||
    fail "a's progress messages without its traceparent: $(grep "^$a " "$T_TMP/headers.txt" | head -3)"
t_stop_workers w1

# Off: no progress event for c.
before=$(wc -l <"$T_TMP/progress.jsonl")
GENQ_PROGRESS_INTERVAL=0 t_worker w2 "$GENQ_COMFYUI_URL"
c=$("$GENQ" produce -p "c [[sim:slow:step_ms=100]]" -m sd15.safetensors --width 64 --height 64 \
    --steps 6 --seed 13 2>>"$T_TMP/produce.log")
t_wait 60 "c succeeded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$c'"
t_stop_workers w2
"$GENQ" events --progress --from beginning >"$T_TMP/progress2.jsonl" 2>>"$T_TMP/events.log" || fail "genq events --progress"
[ "$(wc -l <"$T_TMP/progress2.jsonl")" -eq "$before" ] || fail "progress events with GENQ_PROGRESS_INTERVAL=0"
! grep -q "$c" "$T_TMP/progress2.jsonl" || fail "c has progress events"
t_expect_events >/dev/null
note "$summary; produce --wait showed them; none when off"
