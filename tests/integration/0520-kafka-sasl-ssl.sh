#!/usr/bin/env bash
# timeout: 240
# The Kafka security of the Kubernetes manifests, against a real broker: the stack's
# SASL_SSL listener (SCRAM-SHA-512, a private CA). The worker, the producer, `genq events`
# and `genq lag` run with the GENQ_KAFKA_* settings exactly as k8s/overlays/prod renders
# them; only the brokers, the credentials (a Secret there) and the CA file's path (the
# Secret's mount there) are the stack's. A wrong password must fail, and say why.
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_STACK_SASL_BROKERS:-}" ] || fail "the stack exports no SASL_SSL listener"
eval "$(tests/k8s/tools)"
"$K8S_KUSTOMIZE" build k8s/overlays/prod >"$T_TMP/prod.yaml" || fail "kustomize build"
"$K8S_PYTHON" - "$T_TMP/prod.yaml" >"$T_TMP/kafka.env" <<'PY' || fail "reading the rendered ConfigMap"
import shlex, sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("genq-worker-"):
        for k, v in sorted(doc["data"].items()):
            if k.startswith("GENQ_KAFKA_"):
                print(f"export {k}={shlex.quote(v)}")
PY
grep -q GENQ_KAFKA_SECURITY_PROTOCOL=SASL_SSL "$T_TMP/kafka.env" || fail "prod does not render SASL_SSL: $(cat "$T_TMP/kafka.env")"
source "$T_TMP/kafka.env"
export GENQ_KAFKA_SSL_CA_LOCATION=$GENQ_STACK_KAFKA_CA
export GENQ_KAFKA_SASL_USERNAME=$GENQ_STACK_SASL_USERNAME GENQ_KAFKA_SASL_PASSWORD=$GENQ_STACK_SASL_PASSWORD
export GENQ_BROKERS=$GENQ_STACK_SASL_BROKERS
t_fresh_db
t_fresh_names

"$GENQ" produce -p "over SASL_SSL" -m sd15.safetensors --width 64 --height 64 --steps 2 -n 3 \
    >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce over SASL_SSL: $(tail -3 "$T_TMP/produce.log")"
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 90 "3 jobs over SASL_SSL" sql_is 3 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_stop_workers w1
t_expect_succeeded 3
summary=$(t_expect_events)
"$GENQ" lag --format json >"$T_TMP/lag.json" 2>"$T_TMP/lag.log" || fail "genq lag over SASL_SSL: $(tail -3 "$T_TMP/lag.log")"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["total_lag"] == 0, d' "$T_TMP/lag.json" ||
    fail "lag after the jobs: $(cat "$T_TMP/lag.json")"

# The password is wrong: the command fails (not hangs), names the cause, never prints it.
rc=0
GENQ_KAFKA_SASL_PASSWORD=not-the-password timeout 60 "$GENQ" lag >/dev/null 2>"$T_TMP/badauth.log" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "genq lag with a wrong password: exit $rc"
grep -q "Authentication failed" "$T_TMP/badauth.log" || fail "no authentication error reported: $(tail -3 "$T_TMP/badauth.log")"
! grep -q "not-the-password\|$GENQ_STACK_SASL_PASSWORD" "$T_TMP"/*.log || fail "a password reached a log"
note "prod's Kafka settings against SASL_SSL + SCRAM-SHA-512: 3 jobs, $summary; wrong password exits $rc"
