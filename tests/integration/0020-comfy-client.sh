#!/usr/bin/env bash
# 0020-comfy-client: the C ComfyUI client (consumers/comfy) against the ComfyUI simulator.
# timeout: 240
#
# Runs bin/tests/test_comfy_live (built by `make`): WebSocket over curl CONNECT_ONLY,
# txt2img to DONE, history, /view PNG; a 400 (steps 0) and a 200 with node_errors; an OOM
# marker; hang + interrupt (RUNNING, PENDING, dequeue); unknown prompt ids; WebSocket drops
# (TCP abort and close frame) with reconnect; http500 and view_delay faults; refused
# connections; an /api prefix. Prints submit->DONE latencies.
#
# Uses $GENQ_COMFYUI_URL (the stack's first simulator, exported by tests/run); without it, it
# starts a private simulator so the test also runs on its own.
set -euo pipefail

root=${GENQ_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bindir=${GENQ_BINDIR:-$root/bin}
drv=$bindir/tests/test_comfy_live
fail() { printf '0020-comfy-client: FAIL: %s\n' "$*" >&2; exit 1; }
note() { printf '0020-comfy-client: %s\n' "$*" >&2; }

[[ -x $drv ]] || fail "$drv is not built (run make)"

sim_pid="" sim_dir=""
cleanup() {
  local rc=$?
  if [[ -n $sim_pid ]]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    if [[ $rc -ne 0 ]]; then
      echo "--- simulator log (last 40 lines)" >&2
      tail -n 40 "$sim_dir/sim.log" >&2 || true
    fi
  fi
  [[ -n $sim_dir ]] && rm -rf "$sim_dir"
  exit "$rc"
}
trap cleanup EXIT

if [[ -z ${GENQ_COMFYUI_URL:-} ]]; then
  sim_dir=$(mktemp -d "${TMPDIR:-/tmp}/genq-0020.XXXXXX")
  /usr/bin/python3 "$root/tests/comfysim/comfysim.py" --listen 127.0.0.1 --port 0 \
    --base-directory "$sim_dir/base" --port-file "$sim_dir/port" \
    --step-ms "${GENQ_SIM_STEP_MS:-2}" --model-load-ms "${GENQ_SIM_MODEL_LOAD_MS:-20}" \
    >"$sim_dir/sim.log" 2>&1 &
  sim_pid=$!
  deadline=$((SECONDS + 30))
  until [[ -s $sim_dir/port ]]; do
    kill -0 "$sim_pid" 2>/dev/null || fail "the simulator exited: $(tail -n 20 "$sim_dir/sim.log")"
    ((SECONDS < deadline)) || fail "the simulator did not start within 30 s"
    sleep 0.1
  done
  export GENQ_COMFYUI_URL="http://127.0.0.1:$(cat "$sim_dir/port")"
  note "private simulator at $GENQ_COMFYUI_URL"
fi

note "client against $GENQ_COMFYUI_URL"
out=$("$drv") || fail "test_comfy_live failed"
printf '%s\n' "$out"
grep -q '^latency submit->DONE' <<<"$out" || fail "no latency line from test_comfy_live"
echo "0020-comfy-client: ok"
