#!/usr/bin/env bash
# timeout: 240
# Schema evolution end to end, with requests written by fastavro (not genq's encoder):
# a v2 writer schema (a new optional field with a default, given to the worker in
# GENQ_SCHEMA_DIR since this genq was not built with it), the released v1 (the current
# schema), and an older v0 (seed an int, width and height in the other order, timeout_s
# and metadata missing: filled from their defaults) all succeed with the values they were
# written with; a writer schema the worker does not know fails as decode_error naming its
# fingerprint, and one it knows but cannot resolve (a field without a default missing)
# names the field.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
py=$(t_fastavro)
client="$GENQ_ROOT/tests/schemas/fastavro_client.py"
dir="$T_TMP/schemas"
mkdir -p "$dir"
t_avsc_variant "$dir/GenerationRequest.v2.avsc" \
    'fields.insert(5, {"name": "style", "type": ["null", "string"], "default": None, "doc": "v2"})'
t_avsc_variant "$dir/GenerationRequest.v0.avsc" '
names = [f["name"] for f in fields]
fields[names.index("seed")]["type"] = "int"
w, h = names.index("width"), names.index("height")
fields[w], fields[h] = fields[h], fields[w]
s["fields"] = [f for f in fields if f["name"] not in ("timeout_s", "metadata")]'
t_avsc_variant "$T_TMP/v3-unknown.avsc" 'fields.append({"name": "v3", "type": "int", "default": 3})'
# Known (in the directory) but not readable: the reader's "prompt" has no default and this
# writer calls it "text".
t_avsc_variant "$dir/GenerationRequest.v9-broken.avsc" '
for f in fields:
    if f["name"] == "prompt": f["name"] = "text"'
export GENQ_SCHEMA_DIR=$dir

uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }
send() { # SCHEMA JSON: one message, key = its job id
    local id
    id=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["job_id"])' "$2")
    "$py" "$client" encode "$1" "$2" >"$T_TMP/msg.bin" || fail "fastavro could not encode with $1"
    kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$id" "$T_TMP/msg.bin" || fail "kcat"
}
req() { # JOB_ID PROMPT WIDTH HEIGHT [extra json]
    echo "{\"job_id\": \"$1\", \"prompt\": \"$2\", \"model\": \"sd15.safetensors\", \"width\": $3, \"height\": $4, \"steps\": 3, \"seed\": 77${5:+, $5}}"
}

# The topic first (genq produce creates it with its partitions), then the messages.
"$GENQ" produce -p "made by genq" -m sd15.safetensors --width 64 --height 64 --steps 2 >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce"
j1=$(uuid) j2=$(uuid) j0=$(uuid) j3=$(uuid) j9=$(uuid)
send "$GENQ_ROOT/schemas/GenerationRequest.avsc" "$(req "$j1" "written with v1" 64 96 '"metadata": {"k": "v1"}')"
send "$dir/GenerationRequest.v2.avsc" "$(req "$j2" "written with v2" 96 64 '"style": "watercolour", "metadata": {"k": "v2"}')"
send "$dir/GenerationRequest.v0.avsc" "$(req "$j0" "written with v0" 64 128)"
send "$T_TMP/v3-unknown.avsc" "$(req "$j3" "written with v3" 64 64)"
/usr/bin/python3 -c 'import json,sys; r = json.loads(sys.argv[1]); r["text"] = r.pop("prompt"); print(json.dumps(r))' \
    "$(req "$j9" "written with v9" 64 64)" >"$T_TMP/v9.json"
send "$dir/GenerationRequest.v9-broken.avsc" "$(cat "$T_TMP/v9.json")"

t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 90 "six jobs recorded" sql_is 6 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"

row() { sql "SELECT concat_ws('|', status, coalesce(width, 0) || 'x' || coalesce(height, 0), coalesce(seed, 0), coalesce(error_code, '')) FROM genq.jobs WHERE job_id = '$1'"; }
[ "$(row "$j1")" = "succeeded|64x96|77|" ] || fail "v1 job: $(row "$j1")"
[ "$(row "$j2")" = "succeeded|96x64|77|" ] || fail "v2 job: $(row "$j2")"
[ "$(row "$j0")" = "succeeded|64x128|77|" ] || fail "v0 job (fields reordered, seed promoted): $(row "$j0")"
[ "$(row "$(head -n 1 "$T_TMP/ids.txt")")" = "succeeded|64x64|$(sql "SELECT seed FROM genq.jobs WHERE job_id = '$(head -n 1 "$T_TMP/ids.txt")'")|" ] || fail "genq's own job did not succeed"
[[ "$(row "$j3")" == failed*decode_error ]] || fail "unknown writer: $(row "$j3")"
sql "SELECT error FROM genq.jobs WHERE job_id = '$j3'" | grep -q "unknown schema fingerprint" || fail "the unknown writer's error should name the fingerprint: $(sql "SELECT error FROM genq.jobs WHERE job_id = '$j3'")"
[[ "$(row "$j9")" == failed*decode_error ]] || fail "unresolvable writer: $(row "$j9")"
sql "SELECT error FROM genq.jobs WHERE job_id = '$j9'" | grep -q "prompt: not in the writer's schema" || fail "the unresolvable writer's error should name prompt: $(sql "SELECT error FROM genq.jobs WHERE job_id = '$j9'")"
# What the v0 writer lacked came from the defaults; what v2 added was read past.
grep -q "$j0" <(sql "SELECT job_id FROM genq.jobs WHERE job_id = '$j0' AND prompt = 'written with v0'") || fail "v0 prompt not recorded"
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>>"$T_TMP/events.log" || fail "genq events"
grep "\"$j2\"" "$T_TMP/events.jsonl" | grep -q '"k": *"v2"' || fail "v2 metadata not echoed: $(grep "$j2" "$T_TMP/events.jsonl")"
grep "\"$j0\"" "$T_TMP/events.jsonl" | grep -q '"metadata": *{}' || fail "v0's missing metadata should be the default {}: $(grep "$j0" "$T_TMP/events.jsonl")"
kill -0 "$PID_w1" || fail "the worker died"
t_stop_workers w1
note "v0, v1, v2 writers succeeded; an unknown and an unresolvable writer failed as decode_error with their reasons"
