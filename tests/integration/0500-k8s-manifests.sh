#!/usr/bin/env bash
# timeout: 420
# The Kubernetes deployment, checked without a cluster: the Dockerfile's stages against the
# binary built here; the ConfigMap's site template rendered by a real worker; then
# tests/k8s/run (every overlay against the Kubernetes, KEDA and Prometheus operator
# schemas, the KEDA trigger against the scaler's parameters, genq's own configuration
# against the manifests, each bad fixture failing as it should), with the alerts checked
# against this worker's /metrics.
source "$(dirname "$0")/lib.sh"

/usr/bin/python3 tests/k8s/check_dockerfile.py Dockerfile "$GENQ" || fail "Dockerfile check"

t_fresh_db
t_fresh_names
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GENQ_WORKFLOWS_DIR=k8s/base/workflows t_worker w1 "$GENQ_COMFYUI_URL" --http-listen "127.0.0.1:$port"
id=$("$GENQ" produce -w txt2img-hd -m sdxl.safetensors -p "site template" --width 64 --height 64 \
     --steps 2 2>>"$T_TMP/produce.log") || fail "genq produce"
t_wait 90 "the txt2img-hd job" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$id'"
# No built-in template has that name: success means the worker read k8s/base/workflows.
[ "$(sql "SELECT workflow FROM genq.jobs WHERE job_id = '$id'")" = txt2img-hd ] || fail "workflow not recorded"
curl -fsS "http://127.0.0.1:$port/metrics" >"$T_TMP/metrics.txt" || fail "GET /metrics"
t_stop_workers w1

GENQ="$GENQ" tests/k8s/run --metrics "$T_TMP/metrics.txt" || fail "tests/k8s/run"
note "Dockerfile, ConfigMap template rendered, overlays and bad fixtures checked"
