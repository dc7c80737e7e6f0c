#!/usr/bin/env bash
# timeout: 300
# genq replay: failed jobs (from PostgreSQL) and dead letters go back to the requests
# topic once the cause is gone and then succeed, keeping one row per job and their attempt
# history; dry runs change nothing; succeeded jobs are not rendered again without --force;
# the group's offsets can be rewound (only with the workers stopped) and the rewound
# messages are skipped, not rendered twice.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
url=$GENQ_COMFYUI_URL
fault() { curl -fsS -X POST "$url/_sim/faults" -d "$1" >/dev/null || fail "queueing fault $1"; }
produce() { "$GENQ" produce --width 64 --height 64 --steps 2 -m sd15.safetensors "$@" 2>>"$T_TMP/produce.log"; }

t_worker w1 "$url"
fault '{"fault": "missing_model", "count": 3}'
produce -p "replay me" -n 3 >"$T_TMP/mm.txt" || fail "produce"
t_wait 60 "3 missing_model failures" sql_is 3 "SELECT count(*) FROM genq.jobs WHERE error_code = 'missing_model'"
fault '{"fault": "oom", "count": 1}'
oom=$(produce -p "oom once" --max-attempts 1) || fail "produce"
t_wait 60 "the oom job failed" sql_is failed "SELECT status FROM genq.jobs WHERE job_id = '$oom'"

"$GENQ" replay jobs --error-code missing_model --dry-run >"$T_TMP/dry.txt" 2>>"$T_TMP/replay.log" || fail "dry run"
[ "$(grep -c '^would replay' "$T_TMP/dry.txt")" -eq 3 ] || fail "dry run should list 3 jobs: $(cat "$T_TMP/dry.txt")"
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'failed'")" -eq 4 ] || fail "the dry run changed something"

"$GENQ" replay jobs --error-code missing_model >"$T_TMP/jobs.txt" 2>>"$T_TMP/replay.log" || fail "replay jobs"
t_wait 60 "replayed jobs succeeded" sql_is 3 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
for j in $(cat "$T_TMP/mm.txt"); do
    [ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE job_id = '$j'")" -ge 2 ] || fail "job $j lost its attempt history"
done

dlq_count() { [ "$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -e -q 2>/dev/null | wc -l)" -ge 1 ]; }
t_wait 30 "the dead letter" dlq_count
"$GENQ" replay dlq --reason attempts_exhausted >"$T_TMP/dlq.txt" 2>>"$T_TMP/replay.log" || fail "replay dlq"
grep -q "$oom" "$T_TMP/dlq.txt" || fail "the oom job was not replayed from the dead letters"
t_wait 60 "the oom job succeeded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$oom'"
[ "$(sql "SELECT count(*) FROM genq.jobs")" -eq 4 ] || fail "replay must not add rows"

renders=$(t_sim_renders)
rc=0
"$GENQ" replay jobs --status succeeded >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 64 ] || fail "replaying succeeded jobs without --force should be refused (got $rc)"
"$GENQ" replay dlq --reason attempts_exhausted >"$T_TMP/dlq2.txt" 2>>"$T_TMP/replay.log" || fail "replay dlq (2)"
grep -q "already succeeded" "$T_TMP/dlq2.txt" || fail "a succeeded job should be skipped: $(cat "$T_TMP/dlq2.txt")"

rc=0
"$GENQ" replay offsets --to-offset 0 >/dev/null 2>"$T_TMP/off.log" || rc=$?
[ "$rc" -ne 0 ] || fail "moving offsets under a running worker should be refused"
t_stop_workers w1
"$GENQ" replay offsets --to-offset 0 >"$T_TMP/off.txt" 2>>"$T_TMP/off.log" || fail "replay offsets: $(cat "$T_TMP/off.log")"
[ "$(sql "SELECT max(next_offset) FROM genq.consumer_offsets")" -eq 0 ] || fail "offsets not moved in PostgreSQL"
t_worker w2 "$url"
t_wait 60 "the rewound messages read again" sql_is_at_least 1 "SELECT min(next_offset) FROM genq.consumer_offsets WHERE next_offset > 0"
t_wait 60 "the rewound messages skipped" grep -q "skipped" "$T_TMP/w2.log"
sleep 1
t_stop_workers w2
[ "$(t_sim_renders)" -eq "$renders" ] || fail "rewound messages were rendered again"
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'")" -eq 4 ] || fail "records changed"
note "3 failed jobs and 1 dead letter replayed and succeeded; succeeded jobs left alone; offsets rewound and skipped"
