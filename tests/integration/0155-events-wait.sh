#!/usr/bin/env bash
# timeout: 180
# Readers of completion events wait for a topic that is not there yet instead of failing:
# `genq events --follow` started before any worker created the completed topic waits for it
# (it used to exit 69 after 10 s) and prints the event once a job completes; `genq produce
# --wait` creates the completed topic itself and reads it at once, before a worker runs
# (its reader used to ask for the offsets of partitions that had no leader yet, and give up).
# A stop (SIGTERM) while waiting ends genq events cleanly.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=3
"$GENQ" events --follow >"$T_TMP/follow.jsonl" 2>"$T_TMP/follow.log" &
pid_f=$!
T_PIDS+=("$pid_f")
t_wait 30 "genq events --follow to wait for the topic" \
    grep -qs "waiting for topic $GENQ_COMPLETED_TOPIC: it does not exist" "$T_TMP/follow.log"
kill -0 "$pid_f" 2>/dev/null || fail "genq events --follow exited: $(cat "$T_TMP/follow.log")"

# A second reader, stopped while it waits for a topic that never comes.
"$GENQ" events --follow --completed-topic "$GENQ_COMPLETED_TOPIC.never" >/dev/null 2>"$T_TMP/never.log" &
pid_n=$!
T_PIDS+=("$pid_n")
t_wait 30 "the second reader to wait" grep -qs "waiting for topic $GENQ_COMPLETED_TOPIC.never" "$T_TMP/never.log"
kill -TERM "$pid_n"
rc=0
wait "$pid_n" || rc=$?
[ "$rc" -eq 0 ] || fail "genq events stopped while waiting exited $rc: $(cat "$T_TMP/never.log")"

"$GENQ" produce -p "waited for" -m sd15.safetensors --width 64 --height 64 --steps 2 --wait \
    --wait-timeout 100 >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" &
pid_p=$!
T_PIDS+=("$pid_p")
t_wait 30 "the request" grep -qs "1 request(s) delivered" "$T_TMP/produce.log"
t_worker w1 "$GENQ_COMFYUI_URL"
rc=0
wait "$pid_p" || rc=$?
[ "$rc" -eq 0 ] || fail "genq produce --wait exited $rc: $(cat "$T_TMP/produce.log")"
grep -q "1 of 1 jobs finished: 1 succeeded, 0 failed" "$T_TMP/produce.log" || fail "--wait: $(cat "$T_TMP/produce.log")"
job=$(cat "$T_TMP/ids.txt")
t_wait 30 "genq events --follow to print the job's event" grep -q "\"job_id\": *\"$job\"" "$T_TMP/follow.jsonl"
kill -TERM "$pid_f"
rc=0
wait "$pid_f" || rc=$?
[ "$rc" -eq 0 ] || fail "genq events --follow exited $rc after SIGTERM"
t_stop_workers w1
note "events --follow waited for the topic and printed the event; produce --wait read the topic it created; a stop while waiting exits 0"
