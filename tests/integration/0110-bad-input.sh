#!/usr/bin/env bash
# timeout: 300
# Bad input of every kind among valid requests: garbage bytes (with and without a job-id
# key), an unknown schema fingerprint, a request with invalid fields, an unknown template,
# a UI-format workflow, a checkpoint ComfyUI rejects (400 with node_errors), a model file
# missing at run time, and out-of-memory on every attempt. Each gets a FAILED record and
# a FAILED completion event with its reason (poison messages also a dead letter); every
# valid job still succeeds, and the worker keeps running throughout.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
produce() { "$GENQ" produce "$@" 2>>"$T_TMP/produce.log" || fail "genq produce $*"; }
uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }

# Ten valid requests first, so the topic exists with its partitions.
produce -p "valid" -m sd15.safetensors --width 64 --height 64 --steps 2 -n 10 >"$T_TMP/valid.txt"

# Poison: garbage without a key (nothing names the job) and with a job-id key.
k_garbage=$(uuid) k_fprint=$(uuid) k_invalid=$(uuid)
printf 'this is not avro' | kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -p 0
printf 'still not avro' | kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$k_garbage" -p 1
# Single-object header with a fingerprint nobody knows.
printf '\xc3\x01\x01\x02\x03\x04\x05\x06\x07\x08\x02\x00' |
    kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$k_fprint" -p 2
# Well-formed Avro, invalid values (width 10, steps 0), written by another Avro library.
/usr/bin/python3 "$GENQ_ROOT/tests/schemas/encode_request.py" \
    "{\"job_id\": \"$k_invalid\", \"prompt\": \"x\", \"width\": 10, \"steps\": 0}" >"$T_TMP/invalid.bin" ||
    fail "encoding the invalid request with python3-avro"
kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$k_invalid" -p 3 "$T_TMP/invalid.bin"

# Requests that decode but cannot be rendered.
j_template=$(produce -p "x" --workflow no-such-template --width 64 --height 64)
echo '{"last_node_id": 9, "last_link_id": 9, "nodes": [], "links": [], "version": 0.4}' >"$T_TMP/ui.json"
j_ui=$(produce -p "x" --workflow "@$T_TMP/ui.json" --width 64 --height 64)
j_ckpt=$(produce -p "x" -m no-such-model.safetensors --width 64 --height 64 --steps 2)
j_missing=$(produce -p "x [[sim:missing_model]]" -m sd15.safetensors --width 64 --height 64 --steps 2)
j_oom=$(produce -p "x [[sim:oom]]" -m sd15.safetensors --width 64 --height 64 --steps 2 --max-attempts 2)

produce -p "valid after" -m sdxl.safetensors --width 64 --height 64 --steps 2 -n 10 >>"$T_TMP/valid.txt"

t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 120 "all jobs terminal" sql_is 28 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_wait 30 "the unkeyed poison message recorded" sql_is 1 "SELECT count(*) FROM genq.rejected_messages"
kill -0 "$PID_w1" || fail "the worker died"

[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'")" -eq 20 ] || fail "valid jobs did not all succeed"
expect() { # job_id code message-substring
    local row
    row=$(sql "SELECT status || '|' || coalesce(error_code,'') || '|' || coalesce(error,'') FROM genq.jobs WHERE job_id = '$1'")
    [[ "$row" == "failed|$2|"* ]] || fail "job $1: expected failed/$2, got: $row"
    [[ "$row" == *"$3"* ]] || fail "job $1: error should mention '$3': $row"
}
expect "$k_garbage" decode_error ""
expect "$k_fprint" decode_error "fingerprint"
expect "$k_invalid" invalid_request "width"
expect "$j_template" unknown_template "no-such-template"
expect "$j_ui" invalid_workflow "UI format"
expect "$j_ckpt" comfy_validation "ckpt_name"
expect "$j_missing" missing_model "not found"
expect "$j_oom" out_of_memory "OutOfMemory"
[ "$(sql "SELECT attempts FROM genq.jobs WHERE job_id = '$j_oom'")" -eq 2 ] || fail "oom job should have used 2 attempts"
[ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE job_id = '$j_oom'")" -eq 2 ] || fail "oom job should have 2 attempt rows"
[ "$(sql "SELECT reason FROM genq.rejected_messages")" = decode_error ] || fail "rejected message reason"

# Completion events: FAILED with the same code for each bad job, SUCCEEDED for the rest.
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>>"$T_TMP/events.log"
for pair in "$k_garbage:decode_error" "$k_fprint:decode_error" "$k_invalid:invalid_request" \
    "$j_template:unknown_template" "$j_ui:invalid_workflow" "$j_ckpt:comfy_validation" \
    "$j_missing:missing_model" "$j_oom:out_of_memory"; do
    grep "\"job_id\": *\"${pair%%:*}\"" "$T_TMP/events.jsonl" | grep '"FAILED"' | grep -q "\"${pair#*:}\"" ||
        fail "no FAILED ${pair#*:} event for ${pair%%:*}"
done
[ "$(grep -c '"SUCCEEDED"' "$T_TMP/events.jsonl")" -eq 20 ] || fail "expected 20 SUCCEEDED events"

# Dead letters: the three undecodable messages and the exhausted out-of-memory job.
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -e -q -f '%h\n' >"$T_TMP/dlq.txt" 2>/dev/null
[ "$(wc -l <"$T_TMP/dlq.txt")" -eq 4 ] || fail "expected 4 dead letters, got $(wc -l <"$T_TMP/dlq.txt")"
[ "$(grep -c 'genq-reason=decode_error' "$T_TMP/dlq.txt")" -eq 3 ] || fail "dead letters: decode_error count"
grep -q 'genq-reason=attempts_exhausted' "$T_TMP/dlq.txt" || fail "dead letters: no attempts_exhausted"
grep -q 'genq-source-offset=' "$T_TMP/dlq.txt" || fail "dead letters lack their source offset"

kill -TERM "$PID_w1"
wait "$PID_w1" || fail "worker exit code $?"
note "8 bad requests failed with their reasons, 20 valid ones succeeded"
