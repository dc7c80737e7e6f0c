#!/usr/bin/env bash
# timeout: 180
# The worker's HTTP endpoint: /healthz, /readyz (after a warm-up render), /metrics in the
# Prometheus text format, checked with the reference parser (prometheus_client, from PyPI
# into a cached venv), with the counters matching the jobs rendered.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
venv=${GENQ_CACHE_DIR:-$HOME/.cache/genq}/venv-prom
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
    /usr/bin/python3 -m venv "$venv" >/dev/null && "$venv/bin/pip" install -q 'prometheus_client==0.20.0' >/dev/null ||
        fail "installing prometheus_client"
fi
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$GENQ" produce -p metrics -m sd15.safetensors --width 64 --height 64 --steps 2 -n 5 >/dev/null 2>>"$T_TMP/produce.log"
t_worker w1 "$GENQ_COMFYUI_URL" --http-listen "127.0.0.1:$port" --warmup txt2img-sdxl
up() { curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; }
ready() { curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; }
t_wait 30 "/healthz" up
t_wait 60 "/readyz" ready
t_wait 60 "5 jobs" sql_is 5 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
grep -q "warm-up txt2img-sdxl done" "$T_TMP/w1.log" || fail "no warm-up before ready"
sleep 6 # one health cycle, so the lag and GPU gauges are fresh
curl -fsS "http://127.0.0.1:$port/metrics" >"$T_TMP/metrics.txt" || fail "GET /metrics"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
[ "$code" = 404 ] || fail "unknown path answered $code"
"$venv/bin/python" - "$T_TMP/metrics.txt" <<'PY' || fail "metrics do not parse or do not match"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
want = {"genq_jobs": "counter", "genq_queue_wait_seconds": "histogram",
        "genq_render_duration_seconds": "histogram", "genq_job_duration_seconds": "histogram",
        "genq_jobs_in_flight": "gauge", "genq_retries": "counter", "genq_dead_letters": "counter",
        "genq_comfyui_up": "gauge", "genq_gpu_memory_used_bytes": "gauge",
        "genq_gpu_memory_total_bytes": "gauge", "genq_model_swaps": "counter",
        "genq_consumer_lag": "gauge", "genq_ready": "gauge"}
for name, typ in want.items():
    assert name in fams, f"missing {name}: {sorted(fams)}"
    assert fams[name].type == typ, (name, fams[name].type)
ok = sum(s.value for s in fams["genq_jobs"].samples
         if s.name == "genq_jobs_total" and s.labels == {"status": "succeeded", "model": "sd15.safetensors"})
assert ok == 5, ok
count = [s.value for s in fams["genq_render_duration_seconds"].samples
         if s.name.endswith("_count") and s.labels["model"] == "sd15.safetensors"]
assert count == [5], count
assert [s.value for s in fams["genq_comfyui_up"].samples] == [1]
assert [s.value for s in fams["genq_ready"].samples] == [1]
assert fams["genq_gpu_memory_total_bytes"].samples[0].value > 0
swaps = fams["genq_model_swaps"].samples[0].value
assert swaps == 1, f"warm-up on sdxl then sd15 jobs: 1 swap, got {swaps}"
lags = [s for s in fams["genq_consumer_lag"].samples]
assert lags and all(s.value == 0 for s in lags), lags
print("metrics ok:", len(fams), "families")
PY
t_stop_workers w1
note "healthz, readyz after warm-up, metrics parsed by prometheus_client"
