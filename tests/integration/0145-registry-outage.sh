#!/usr/bin/env bash
# timeout: 300
# A Schema Registry outage mid-run delays jobs and loses none. Requests of a schema id the
# worker has cached keep rendering while the registry is down; those of an id it has not
# seen wait (the message stays in flight, nothing is recorded or dead-lettered) until the
# registry is back, then render. Every job ends succeeded, exactly once.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
t_registry
py=$(t_fastavro)
client="$GENQ_ROOT/tests/schemas/fastavro_client.py"
subject="$GENQ_REQUESTS_TOPIC-value"
# Two writer schemas of this test's own (a field named after it): two ids nobody cached.
t_avsc_variant "$T_TMP/a.avsc" "fields.append({'name': 'a_$T_ID', 'type': 'int', 'default': 1})"
t_avsc_variant "$T_TMP/b.avsc" "fields.append({'name': 'b_$T_ID', 'type': 'int', 'default': 2})"

# A template message per schema, encoded (and its schema registered) while the registry is up.
tmpl_id=00000000-0000-4000-8000-000000000000
for x in a b; do
    "$py" "$client" encode "$T_TMP/$x.avsc" "{\"job_id\": \"$tmpl_id\", \"prompt\": \"schema $x\", \"model\": \"sd15.safetensors\", \"width\": 64, \"height\": 64, \"steps\": 2}" \
        --confluent "$GENQ_SCHEMA_REGISTRY_URL" "$subject" >"$T_TMP/$x.bin" || fail "fastavro client"
done
send() { # a|b N: N copies of the template with new job ids (no registry needed)
    local i id
    for ((i = 0; i < $2; i++)); do
        id=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
        sed "s/$tmpl_id/$id/" "$T_TMP/$1.bin" >"$T_TMP/m.bin"
        kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$id" "$T_TMP/m.bin"
        echo "$id" >>"$T_TMP/ids.txt"
    done
}
"$GENQ" produce -p "topic maker" -m sd15.safetensors --width 64 --height 64 --steps 2 >>"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce"
send a 5
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 60 "the first 6 jobs" sql_is 6 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"

# The registry goes; then 6 requests of schema b (registered, never seen by the worker) and
# 5 more of a (cached by the worker).
"$GENQ_ROOT/tests/stack" stop registry >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack stop registry"
note "registry stopped"
send b 6
send a 5
[ "$(sort -u "$T_TMP/ids.txt" | wc -l)" -eq 17 ] || fail "expected 17 distinct job ids, have $(sort -u "$T_TMP/ids.txt" | wc -l)"

t_wait 60 "the cached schema's jobs during the outage" sql_is 11 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
sleep 5 # the outage goes on: b's six wait
[ "$(sql "SELECT count(*) FROM genq.jobs")" -eq 11 ] || fail "jobs of the unreachable schema were recorded during the outage: $(sql "SELECT job_id, status, error FROM genq.jobs WHERE status <> 'succeeded'")"
grep -q "cannot be read yet" "$T_TMP/w1.log" || fail "the worker did not say it waits"
[ "$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -e -q -f '%k\n' 2>/dev/null | grep -c .)" -eq 0 ] || fail "dead letters during the outage"

"$GENQ_ROOT/tests/stack" start registry >/dev/null 2>>"$T_TMP/stack.log" || fail "tests/stack start registry"
note "registry back"
t_wait 90 "all 17 jobs" sql_is 17 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1
t_expect_succeeded 17
sort -u "$T_TMP/ids.txt" >"$T_TMP/want.txt"
sql "SELECT job_id FROM genq.jobs" | sort >"$T_TMP/have.txt"
cmp -s "$T_TMP/want.txt" "$T_TMP/have.txt" || fail "the recorded jobs are not the ones sent"
[ "$(kcat -C -b "$GENQ_BROKERS" -t "$GENQ_DLQ_TOPIC" -e -q -f '%k\n' 2>/dev/null | grep -c .)" -eq 0 ] || fail "dead letters"
summary=$(t_expect_events)
note "17/17 succeeded across a registry outage (6 waited for it); $summary"
