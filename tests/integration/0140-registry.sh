#!/usr/bin/env bash
# timeout: 300
# The Schema Registry (a real one: Apicurio Registry's Confluent-compatible API, started by
# tests/stack on demand). `genq schemas register` registers the schemas under the
# topic-name subjects; requests framed the Confluent way (magic byte 0, a 4-byte schema id)
# are rendered, whether written by `genq produce --framing confluent`, by the C producer API
# (a program linked to libgenq-producer.a) or by a non-C client
# (fastavro, registering its own newer writer schema through the REST API); an id the
# registry does not have fails as decode_error; completion events written in the Confluent
# framing decode with fastavro through the registry, and with `genq events` and
# `genq produce --wait`, over HTTP and HTTPS (the stack's CA), with basic auth (user info in
# the URL, or username and password settings).
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
t_registry
py=$(t_fastavro)
client="$GENQ_ROOT/tests/schemas/fastavro_client.py"
subject="$GENQ_REQUESTS_TOPIC-value"

"$GENQ" schemas register >"$T_TMP/register.txt" 2>"$T_TMP/register.log" || fail "genq schemas register: $(cat "$T_TMP/register.log")"
grep -q "^GenerationRequest (current): subject $subject, id [0-9]" "$T_TMP/register.txt" || fail "register: $(cat "$T_TMP/register.txt")"
grep -q "^GenerationCompleted (current): subject $GENQ_COMPLETED_TOPIC-value, id [0-9]" "$T_TMP/register.txt" || fail "register: $(cat "$T_TMP/register.txt")"
req_id=$(sed -n "s/^GenerationRequest (current): subject .*, id \([0-9]*\)$/\1/p" "$T_TMP/register.txt")

# genq's producer in the Confluent framing: the id of the registered schema.
GENQ_FRAMING=confluent "$GENQ" produce -p "framed by genq" -m sd15.safetensors --width 64 --height 64 --steps 2 -n 3 \
    >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce --framing confluent: $(tail -3 "$T_TMP/produce.log")"
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -e -q -f '%s' -c 1 2>/dev/null | head -c 5 | od -An -tx1 >"$T_TMP/head.txt"
[ "$(tr -d ' \n' <"$T_TMP/head.txt")" = "$(printf '00%08x' "$req_id")" ] || fail "first bytes $(cat "$T_TMP/head.txt"), expected 00 and id $req_id"

# A non-C client: fastavro with a newer writer schema it registers itself.
t_avsc_variant "$T_TMP/v2.avsc" 'fields.append({"name": "style", "type": ["null", "string"], "default": None})'
j_py=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
"$py" "$client" encode "$T_TMP/v2.avsc" \
    "{\"job_id\": \"$j_py\", \"prompt\": \"framed by fastavro\", \"model\": \"sd15.safetensors\", \"width\": 64, \"height\": 96, \"steps\": 2, \"style\": \"ink\", \"metadata\": {\"client\": \"python\"}}" \
    --confluent "$GENQ_SCHEMA_REGISTRY_URL" "$subject" >"$T_TMP/py.bin" || fail "fastavro client"
[ "$(head -c 1 "$T_TMP/py.bin" | od -An -tx1 | tr -d ' ')" = 00 ] || fail "the python message is not Confluent-framed"
kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$j_py" "$T_TMP/py.bin"
# An id the registry does not have.
j_unknown=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
{ printf '\x00\x7f\xff\xff\x00'; tail -c +6 "$T_TMP/py.bin"; } | sed "s/$j_py/$j_unknown/" >"$T_TMP/unknown.bin"
kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -k "$j_unknown" "$T_TMP/unknown.bin"

# The C producer API in the Confluent framing (a program linked to libgenq-producer.a).
cat >"$T_TMP/capi.c" <<'C'
#include "genq_producer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char err[1024];
    gq_registry_conf_t reg = {.url = argv[3]};
    gq_producer_conf_t conf = {.brokers = argv[1], .topic = argv[2],
                               .framing = GQ_FRAMING_CONFLUENT, .registry = &reg};
    gq_producer_t *p = gq_producer_new(&conf, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "gq_producer_new: %s\n", err);
        return 1;
    }
    gq_request_t req;
    gq_request_init(&req);
    free(req.prompt);
    req.prompt = strdup("framed by the C API");
    req.model = strdup("sd15.safetensors");
    req.width = req.height = 64;
    req.steps = 2;
    size_t failed = 0;
    if (gq_producer_send(p, &req, err, sizeof(err)) != GQ_OK ||
        gq_producer_flush(p, 30000, &failed, err, sizeof(err)) != GQ_OK || failed) {
        fprintf(stderr, "send: %s\n", err);
        return 1;
    }
    printf("%s %d\n", req.job_id, (int)gq_producer_schema_id(p));
    gq_request_release(&req);
    gq_producer_destroy(p);
    return 0;
}
C
# The flags the build wrote for C services (genq-producer.pc): its librdkafka and the rest.
pc=(env PKG_CONFIG_PATH="${GENQ_BINDIR:-bin}" pkg-config genq-producer)
# shellcheck disable=SC2046 # the flag lists are word-split on purpose
cc -std=c11 -D_GNU_SOURCE -Wall -Werror $("${pc[@]}" --cflags) "$T_TMP/capi.c" \
    $("${pc[@]}" --libs) -o "$T_TMP/capi" 2>"$T_TMP/cc.log" ||
    fail "the C API program does not build: $(cat "$T_TMP/cc.log")"
"$T_TMP/capi" "$GENQ_BROKERS" "$GENQ_REQUESTS_TOPIC" "$GENQ_SCHEMA_REGISTRY_URL" >"$T_TMP/capi.out" 2>"$T_TMP/capi.log" ||
    fail "the C API program: $(cat "$T_TMP/capi.log")"
read -r j_capi capi_id <"$T_TMP/capi.out"
[ "$capi_id" = "$req_id" ] || fail "the C API used schema id $capi_id, expected $req_id"

GENQ_COMPLETED_FRAMING=confluent t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 90 "six jobs recorded" sql_is 6 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
[ "$(sql "SELECT status FROM genq.jobs WHERE job_id = '$j_capi'")" = succeeded ] || fail "the C API's job did not succeed"
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'")" -eq 5 ] || fail "expected 5 succeeded: $(sql "SELECT job_id, status, error FROM genq.jobs")"
[ "$(sql "SELECT status || ' ' || width || 'x' || height FROM genq.jobs WHERE job_id = '$j_py'")" = "succeeded 64x96" ] || fail "python job: $(sql "SELECT status, error FROM genq.jobs WHERE job_id = '$j_py'")"
sql "SELECT error_code || ': ' || error FROM genq.jobs WHERE job_id = '$j_unknown'" | grep -q "^decode_error: schema id 2147483392 is not in the schema registry" ||
    fail "unknown id: $(sql "SELECT error_code, error FROM genq.jobs WHERE job_id = '$j_unknown'")"
grep -q "completion events in Confluent framing: schema id" "$T_TMP/w1.log" || fail "the worker did not say its events' schema id"

# The events, Confluent-framed, decoded by fastavro through the registry.
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_COMPLETED_TOPIC" -e -q -f '%R%s' >"$T_TMP/events.raw" 2>/dev/null
"$py" "$client" decode "$GENQ_SCHEMA_REGISTRY_URL" <"$T_TMP/events.raw" >"$T_TMP/events-py.jsonl" || fail "fastavro could not decode the events"
[ "$(grep -c '"_framing": "confluent"' "$T_TMP/events-py.jsonl")" -eq 6 ] || fail "expected 6 Confluent-framed events: $(cat "$T_TMP/events-py.jsonl")"
# Progress events are framed like them (GenerationProgress under <progress_topic>-value).
kcat -C -b "$GENQ_BROKERS" -t "$GENQ_PROGRESS_TOPIC" -e -q -f '%R%s' >"$T_TMP/progress.raw" 2>/dev/null
[ "$(head -c 1 "$T_TMP/progress.raw" | od -An -tx1 | tr -d ' \n')" = 00 ] || fail "progress events are not Confluent-framed"
"$GENQ" events --progress --from beginning >"$T_TMP/progress.jsonl" 2>"$T_TMP/progress.log" || fail "genq events --progress: $(cat "$T_TMP/progress.log")"
[ "$(grep -c '"state":"COLLECTING"' "$T_TMP/progress.jsonl")" -ge 5 ] || fail "progress events through the registry: $(cat "$T_TMP/progress.jsonl" "$T_TMP/progress.log")"
grep "\"$j_py\"" "$T_TMP/events-py.jsonl" | grep -q '"status": "SUCCEEDED"' || fail "no SUCCEEDED event for the python job"
grep "\"$j_py\"" "$T_TMP/events-py.jsonl" | grep -q '"client": "python"' || fail "the python job's metadata not echoed"
# ... and by genq itself (a fresh process fetches the id), over HTTP and HTTPS.
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
[ "$(wc -l <"$T_TMP/events.jsonl")" -eq 6 ] || fail "genq events printed $(wc -l <"$T_TMP/events.jsonl") events: $(cat "$T_TMP/events.log")"
GENQ_SCHEMA_REGISTRY_URL=$GENQ_STACK_REGISTRY_TLS_URL GENQ_SCHEMA_REGISTRY_CA_FILE=$GENQ_STACK_REGISTRY_CA \
    "$GENQ" events --from beginning >"$T_TMP/events-tls.jsonl" 2>"$T_TMP/events-tls.log" || fail "genq events over https"
[ "$(wc -l <"$T_TMP/events-tls.jsonl")" -eq 6 ] || fail "genq events over https: $(cat "$T_TMP/events-tls.log")"
# Without the CA the registry's certificate is not trusted: the event waits, and says why.
GENQ_SCHEMA_REGISTRY_URL=$GENQ_STACK_REGISTRY_TLS_URL timeout 4 "$GENQ" events -v --from beginning --limit 1 \
    >/dev/null 2>"$T_TMP/events-noca.log" || true
grep -qi "certificate" "$T_TMP/events-noca.log" || fail "no certificate error without the CA: $(tail -3 "$T_TMP/events-noca.log")"

# Basic auth (Apicurio itself authenticates through OpenID only: a forwarding proxy in front
# of it asks for the password): in the URL's user info, or in the separate settings.
/usr/bin/python3 "$GENQ_ROOT/tests/schemas/registry_auth_proxy.py" "$GENQ_SCHEMA_REGISTRY_URL" genq 's3cret' "$T_TMP/proxy.port" 2>"$T_TMP/proxy.log" &
proxy_pid=$!
T_PIDS+=($proxy_pid)
t_wait 10 "the auth proxy" test -s "$T_TMP/proxy.port"
proxy="127.0.0.1:$(cat "$T_TMP/proxy.port")"
GENQ_SCHEMA_REGISTRY_URL="http://genq:s3cret@$proxy" "$GENQ" events --from beginning >"$T_TMP/events-auth.jsonl" 2>"$T_TMP/events-auth.log" || fail "genq events with user info"
[ "$(wc -l <"$T_TMP/events-auth.jsonl")" -eq 6 ] || fail "genq events with user info: $(cat "$T_TMP/events-auth.log")"
GENQ_SCHEMA_REGISTRY_URL="http://$proxy" GENQ_SCHEMA_REGISTRY_USERNAME=genq GENQ_SCHEMA_REGISTRY_PASSWORD=s3cret \
    "$GENQ" events --from beginning >"$T_TMP/events-auth2.jsonl" 2>"$T_TMP/events-auth2.log" || fail "genq events with username/password"
[ "$(wc -l <"$T_TMP/events-auth2.jsonl")" -eq 6 ] || fail "genq events with username/password: $(cat "$T_TMP/events-auth2.log")"
GENQ_SCHEMA_REGISTRY_URL="http://genq:wrong@$proxy" timeout 4 "$GENQ" events -v --from beginning --limit 1 \
    >/dev/null 2>"$T_TMP/events-noauth.log" || true
grep -q "HTTP 401" "$T_TMP/events-noauth.log" || fail "no 401 with a wrong password: $(tail -3 "$T_TMP/events-noauth.log")"
grep -q "wrong" "$T_TMP/events-noauth.log" && fail "the password was logged"
grep -q 'GET /schemas/ids/' "$T_TMP/proxy.log" || fail "nothing went through the proxy"
kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null || true

# produce --wait follows Confluent-framed events too.
GENQ_FRAMING=confluent "$GENQ" produce -p "waited for" -m sd15.safetensors --width 64 --height 64 --steps 2 --wait --wait-timeout 60 \
    >"$T_TMP/wait.txt" 2>"$T_TMP/wait.log" || fail "genq produce --wait: $(tail -5 "$T_TMP/wait.log")"
kill -0 "$PID_w1" || fail "the worker died"
t_stop_workers w1
note "registry id $req_id; genq and fastavro Confluent-framed requests rendered; events decoded by fastavro and genq (http, https, basic auth)"
