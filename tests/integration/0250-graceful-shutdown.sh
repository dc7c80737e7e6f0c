#!/usr/bin/env bash
# timeout: 240
# Graceful shutdown: SIGTERM during a long render lets it finish within the grace period
# (exit 0, job succeeded, queued-ahead prompt handed back); SIGTERM during a render that
# hangs interrupts it when the grace period runs out (exit 3), leaves the job for
# redelivery, and the next worker finishes it.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
url=$GENQ_COMFYUI_URL

# 1. A render of ~3 s (slow fault), one more queued behind it; SIGTERM mid-render. Job 2 is
# published once job 1 runs: published together, they land on different partitions and the
# worker may take either first.
j1=$("$GENQ" produce -p "slow [[sim:slow:step_ms=300]]" -m sd15.safetensors --width 64 --height 64 --steps 10 2>>"$T_TMP/produce.log")
t_worker w1 "$url" --grace-period 30
t_wait 30 "job 1 running" sql_is running "SELECT status FROM genq.jobs WHERE job_id = '$j1'"
j2=$("$GENQ" produce -p "second" -m sd15.safetensors --width 64 --height 64 --steps 2 2>>"$T_TMP/produce.log")
t_wait 30 "job 2 queued behind it" sql_is running "SELECT status FROM genq.jobs WHERE job_id = '$j2'"
kill -TERM "$PID_w1"
rc=0
wait "$PID_w1" || rc=$?
[ "$rc" -eq 0 ] || fail "worker exited with $rc after draining, expected 0"
[ "$(sql "SELECT status FROM genq.jobs WHERE job_id = '$j1'")" = succeeded ] || fail "the running render was not finished"
s2=$(sql "SELECT coalesce((SELECT status FROM genq.jobs WHERE job_id = '$j2'), 'none')")
[ "$s2" != succeeded ] || note "job 2 had already finished before SIGTERM"
grep -q "stopping: finishing" "$T_TMP/w1.log" || fail "no drain message"

# 2. The next worker takes job 2 (its message was not committed).
t_worker w2 "$url"
t_wait 60 "job 2 done by the next worker" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$j2'"
t_stop_workers w2

# 3. A render that hangs: the grace period (2 s) runs out, it is interrupted, exit 3.
j3=$("$GENQ" produce -p "hang [[sim:hang]]" -m sd15.safetensors --width 64 --height 64 --steps 5 2>>"$T_TMP/produce.log")
t_worker w3 "$url" --grace-period 2 --stall-timeout 600
t_wait 30 "job 3 running" sql_is running "SELECT status FROM genq.jobs WHERE job_id = '$j3'"
kill -TERM "$PID_w3"
rc=0
wait "$PID_w3" || rc=$?
[ "$rc" -eq 3 ] || fail "worker exited with $rc after the grace period, expected 3"
[ "$(sql "SELECT status FROM genq.jobs WHERE job_id = '$j3'")" != succeeded ] || fail "job 3 cannot have succeeded"
note "drained (exit 0) and interrupted (exit 3) as documented"
