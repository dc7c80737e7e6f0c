#!/usr/bin/env bash
# timeout: 420
# Fault test: the S3 server stopped mid-run and restarted while 60 jobs flow through two
# workers. An object-store outage delays jobs, it never fails or loses them: every job ends
# succeeded with no attempt failed on the store (the uploads wait and are retried),
# with its object in the bucket under the recorded sha256 and exactly one event; the workers
# said they were waiting. (Attempts are not limited to one: a job moved by the rebalance when
# the second worker joins may begin a second attempt, which has nothing to do with S3; what
# must hold is that no attempt failed because of the store.)
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_STACK_S3_ENDPOINT:-}" ] || { echo "skipped: no S3 server in the stack (tests/stack up --s3)"; exit 77; }
t_fresh_db
t_fresh_names
export GENQ_OUTPUT_URL="s3://$GENQ_STACK_S3_BUCKET/outage/$T_ID" GENQ_S3_ENDPOINT=$GENQ_STACK_S3_ENDPOINT \
    GENQ_S3_REGION=$GENQ_STACK_S3_REGION GENQ_S3_PATH_STYLE=true \
    AWS_ACCESS_KEY_ID=$GENQ_STACK_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$GENQ_STACK_S3_SECRET_KEY \
    GENQ_MAX_ATTEMPTS=10
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
t_produce_n 60 s3-outage
t_worker w1 "${urls[0]}"
t_worker w2 "${urls[1]:-${urls[0]}}"
t_wait 90 "the first 10 jobs" sql_is_at_least 10 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
note "S3 stopped mid-run"
"$GENQ_ROOT/tests/stack" stop s3 >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack stop s3: $(tail -3 "$T_TMP/stack.log")"
at_stop=$(sql "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')")
# While it is down: renders go on, their uploads wait, nothing is recorded as failed.
t_wait 60 "an upload to wait for S3" grep -q "the job waits" "$T_TMP/w1.log" "$T_TMP/w2.log"
sleep 8 # the outage itself, not a wait for something
during=$(sql "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')")
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'failed'")" = 0 ] || fail "a job failed during the outage"
"$GENQ_ROOT/tests/stack" start s3 >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start s3: $(tail -3 "$T_TMP/stack.log")"
note "S3 restarted ($at_stop recorded at the stop, $during after the outage)"
t_wait 240 "60 terminal jobs" sql_is 60 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1 w2
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'")" = 60 ] ||
    fail "not every job succeeded: $(sql "SELECT job_id, status, attempts, error_code, error FROM genq.jobs WHERE status <> 'succeeded' LIMIT 5")"
[ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE error_code LIKE 'output%'")" = 0 ] ||
    fail "an attempt failed on the output store: $(sql "SELECT job_id, attempt, error_code, error FROM genq.job_attempts WHERE error_code LIKE 'output%' LIMIT 3")"
# Every object exists with the recorded bytes.
n=0
while IFS='|' read -r uri sha; do
    curl -fsS -m 30 --aws-sigv4 "aws:amz:$GENQ_STACK_S3_REGION:s3" \
        --user "$GENQ_STACK_S3_ACCESS_KEY:$GENQ_STACK_S3_SECRET_KEY" -o "$T_TMP/obj" \
        "$GENQ_STACK_S3_ENDPOINT/$GENQ_STACK_S3_BUCKET/${uri#s3://$GENQ_STACK_S3_BUCKET/}" || fail "GET $uri"
    [ "$(sha256sum <"$T_TMP/obj" | cut -c1-64)" = "$sha" ] || fail "$uri: sha256 differs from the record"
    n=$((n + 1))
done < <(sql "SELECT uri, sha256 FROM genq.job_outputs")
[ "$n" -eq 60 ] || fail "$n outputs recorded, expected 60"
summary=$(t_expect_events)
retries=$(grep -ho "S3 [A-Za-z]* s3://[^:]*: [^(]*(try [0-9]*" "$T_TMP"/w*.log | wc -l)
note "60/60 succeeded, $(sql "SELECT count(*) FROM genq.jobs WHERE attempts > 1") with a second attempt (none failed on the store), 60 objects verified; $summary; $retries upload retries logged"
