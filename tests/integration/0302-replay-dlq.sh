#!/usr/bin/env bash
# timeout: 240
# genq replay dlq replays what was asked and says when it could not: it reads the dead-letter
# topic up to the end each partition had at start and stops there, also when the last
# record of a partition is a transaction marker (it used to wait out a fixed 60 s); --model
# (the job's recorded checkpoint, else the request's) and --limit are honoured; --since and
# --until take ISO 8601 (replay jobs too) besides unix ms and relative times, and refuse
# what is neither; a producer that cannot be created is an error (exit 78, it used to
# crash), a message Kafka does not take is an error (exit 1, it used to count as replayed).
# Truncated copies of oversized messages and letters from a topic that is not a requests
# topic are skipped.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }
# letter PARTITION JOB MODEL REASON [SOURCE-TOPIC [extra kcat args]]: one dead letter, written
# in a transaction of its own (a commit marker follows it).
letter() {
    local p=$1 job=$2 model=$3 reason=$4 src=${5:-$GENQ_REQUESTS_TOPIC}
    shift 5 2>/dev/null || shift $#
    local m='null'
    [ "$model" = - ] || m="\"$model\""
    /usr/bin/python3 "$GENQ_ROOT/tests/schemas/encode_request.py" \
        "{\"job_id\": \"$job\", \"prompt\": \"dead letter\", \"model\": $m, \"width\": 64, \"height\": 64, \"steps\": 2}" \
        >"$T_TMP/$job.bin" || fail "encoding a request"
    kcat -P -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -p "$p" -k "$job" -H "genq-reason=$reason" \
        -H "genq-source-topic=$src" -X "transactional.id=genq-$T_ID-$job" "$@" "$T_TMP/$job.bin" \
        2>>"$T_TMP/kcat.log" || fail "writing a dead letter: $(tail -3 "$T_TMP/kcat.log")"
}
a1=$(uuid) a2=$(uuid) a3=$(uuid) b1=$(uuid) b2=$(uuid) cut=$(uuid) lost=$(uuid)
letter 0 "$a1" sd15.safetensors attempts_exhausted
letter 0 "$b1" sdxl.safetensors attempts_exhausted
letter 0 "$a2" sd15.safetensors attempts_exhausted
letter 1 "$a3" - attempts_exhausted # no model asked: the record says which one was used
letter 1 "$b2" sdxl.safetensors attempts_exhausted
letter 1 "$cut" sd15.safetensors message_too_large "$GENQ_REQUESTS_TOPIC" -H genq-truncated=true
letter 2 "$lost" sd15.safetensors lost "$GENQ_REQUESTS_TOPIC.gone"
printf 'not avro' | kcat -P -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -p 2 -H genq-reason=decode_error
sql "INSERT INTO genq.jobs (job_id, status, attempts, model, error_code, finished_at)
     VALUES ('$a3', 'failed', 3, 'sd15.safetensors', 'timeout', now())" >/dev/null

# rd FILE ARGS...: a dry run of replay dlq into FILE, which must end within 40 s, exit 0.
rd() {
    local out=$1 rc=0
    shift
    timeout 40 "$GENQ" replay dlq --dry-run "$@" >"$out" 2>>"$T_TMP/replay.log" || rc=$?
    [ "$rc" -ne 124 ] || fail "replay dlq $* did not end within 40 s (read up to the end offsets, then stop)"
    [ "$rc" -eq 0 ] || fail "replay dlq $*: exit $rc: $(tail -3 "$T_TMP/replay.log")"
}
would() { grep '^would' "$1" | grep -oE 'key [0-9a-f-]{36}' | cut -c5- | sort | tr '\n' ' '; }
set_of() { printf '%s\n' "$@" | sort | tr '\n' ' '; }

rd "$T_TMP/all.txt" --reason attempts_exhausted
[ "$(would "$T_TMP/all.txt")" = "$(set_of "$a1" "$a2" "$a3" "$b1" "$b2")" ] ||
    fail "--reason attempts_exhausted: $(cat "$T_TMP/all.txt")"
rd "$T_TMP/any.txt"
grep -q "key $cut: a truncated copy" "$T_TMP/any.txt" || fail "a truncated copy should be skipped: $(cat "$T_TMP/any.txt")"
grep -q "key $lost: its source topic \"$GENQ_REQUESTS_TOPIC.gone\" is not a requests topic" "$T_TMP/any.txt" ||
    fail "a letter from another topic should be skipped: $(cat "$T_TMP/any.txt")"
grep -q 'key -: undecodable' "$T_TMP/any.txt" || fail "an undecodable letter should be skipped: $(cat "$T_TMP/any.txt")"

rd "$T_TMP/sdxl.txt" --reason attempts_exhausted --model sdxl.safetensors
[ "$(would "$T_TMP/sdxl.txt")" = "$(set_of "$b1" "$b2")" ] || fail "--model sdxl: $(cat "$T_TMP/sdxl.txt")"
rd "$T_TMP/sd15.txt" --reason attempts_exhausted --model sd15.safetensors
[ "$(would "$T_TMP/sd15.txt")" = "$(set_of "$a1" "$a2" "$a3")" ] || fail "--model sd15 (a3 by its record): $(cat "$T_TMP/sd15.txt")"
rd "$T_TMP/two.txt" --reason attempts_exhausted --limit 2
[ "$(grep -c '^would' "$T_TMP/two.txt")" -eq 2 ] || fail "--limit 2: $(cat "$T_TMP/two.txt")"

# Times: ISO 8601 with and without an offset, a date, relative, unix ms.
hour_ago=$(date -d '-1 hour' +%Y-%m-%dT%H:%M:%S%:z)
in_an_hour=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
rd "$T_TMP/t1.txt" --reason attempts_exhausted --since "$hour_ago" --until "$in_an_hour"
[ "$(grep -c '^would' "$T_TMP/t1.txt")" -eq 5 ] || fail "--since $hour_ago --until $in_an_hour: $(cat "$T_TMP/t1.txt")"
rd "$T_TMP/t2.txt" --reason attempts_exhausted --since "$in_an_hour"
[ "$(grep -c '^would' "$T_TMP/t2.txt")" -eq 0 ] || fail "--since $in_an_hour: $(cat "$T_TMP/t2.txt")"
rd "$T_TMP/t3.txt" --reason attempts_exhausted --until 2020-01-01
[ "$(grep -c '^would' "$T_TMP/t3.txt")" -eq 0 ] || fail "--until 2020-01-01: $(cat "$T_TMP/t3.txt")"
rd "$T_TMP/t4.txt" --reason attempts_exhausted --since -1h --until "$(($(date +%s) * 1000 + 60000))"
[ "$(grep -c '^would' "$T_TMP/t4.txt")" -eq 5 ] || fail "--since -1h --until <ms>: $(cat "$T_TMP/t4.txt")"
rc=0
"$GENQ" replay dlq --dry-run --since 2026-13-01 >/dev/null 2>"$T_TMP/bad.log" || rc=$?
[ "$rc" -eq 64 ] && grep -q 'ISO 8601' "$T_TMP/bad.log" || fail "--since 2026-13-01: exit $rc, $(cat "$T_TMP/bad.log")"
"$GENQ" replay jobs --dry-run --since "$hour_ago" >"$T_TMP/jobs.txt" 2>>"$T_TMP/replay.log" ||
    fail "replay jobs --since $hour_ago: $(tail -3 "$T_TMP/replay.log")"
grep -q "would replay job $a3" "$T_TMP/jobs.txt" || fail "replay jobs --since ISO: $(cat "$T_TMP/jobs.txt")"

# For real: one sdxl letter, and nothing else, reaches the requests topic.
"$GENQ" replay dlq --reason attempts_exhausted --model sdxl.safetensors --limit 1 >"$T_TMP/real.txt" 2>>"$T_TMP/replay.log" ||
    fail "replay dlq --limit 1: $(tail -3 "$T_TMP/replay.log")"
[ "$(grep -c '^replay' "$T_TMP/real.txt")" -eq 1 ] || fail "--limit 1: $(cat "$T_TMP/real.txt")"
keys=$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -e -q -f '%k\n' 2>/dev/null)
[ "$keys" = "$b1" ] || [ "$keys" = "$b2" ] || fail "the requests topic holds: ${keys:-nothing}, expected one sdxl job"

# The producer: one that cannot be made, and a message Kafka refuses.
rc=0
"$GENQ" replay dlq --reason attempts_exhausted -X linger.ms=900000 -X message.timeout.ms=1000 \
    >/dev/null 2>"$T_TMP/prod.log" || rc=$?
[ "$rc" -eq 78 ] && grep -q 'kafka producer: `message.timeout.ms` must be greater than `linger.ms`' "$T_TMP/prod.log" ||
    fail "a producer librdkafka refuses: exit $rc, $(cat "$T_TMP/prod.log")"
rc=0
"$GENQ" replay dlq --reason lost --requests-topic "$GENQ_REQUESTS_TOPIC.gone" -X allow.auto.create.topics=false \
    -X topic.metadata.propagation.max.ms=1000 -X message.timeout.ms=5000 >"$T_TMP/gone.txt" 2>"$T_TMP/gone.log" || rc=$?
[ "$rc" -eq 1 ] && grep -q "job $lost: not delivered to $GENQ_REQUESTS_TOPIC.gone" "$T_TMP/gone.log" &&
    grep -q ' 0 replayed, [0-9]* skipped, 1 failed' "$T_TMP/gone.log" ||
    fail "a letter Kafka does not take: exit $rc, $(cat "$T_TMP/gone.log")"
note "read to the end and stopped (transaction markers included); --model, --limit, ISO times honoured; producer errors reported (78, 1)"
