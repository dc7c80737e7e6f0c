#!/usr/bin/env bash
# 0002-stack-eval: `eval "$(tests/stack up)"` returns. The services that `up` starts must not
# keep the command substitution's pipe open (they used to inherit it as fd 3, and the
# substitution never ended). A second, small stack, with the real ComfyUI when the main one
# has it; bounded with timeout; torn down.
# timeout: 300
set -euo pipefail

fail() { printf '0002-stack-eval: FAIL: %s\n' "$*" >&2; exit 1; }
note() { printf '0002-stack-eval: %s\n' "$*" >&2; }

root=${GENQ_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
args=(--comfy 1)
[[ -n ${GENQ_COMFYUI_REAL_URL:-} ]] && args+=(--comfyui real)
out=$(mktemp -d "${TMPDIR:-/tmp}/genq-it-eval.XXXXXX")
trap 'rm -rf "$out"' EXIT
t0=$SECONDS
# The inner shell owns the second stack, prints its env and takes it down again; all within
# the outer command substitution, which must end.
rc=0
limit=${GENQ_EVAL_TIMEOUT:-240}
res=$(timeout --kill-after=10 "$limit" env -u GENQ_STACK_DIR bash -c '
  set -e
  eval "$("$1"/tests/stack up "${@:2}" 2>"'"$out"'/up.log")"
  echo "dir=$GENQ_STACK_DIR"
  echo "real=${GENQ_COMFYUI_REAL_URL:-}"
  curl -fsS -m 10 -o /dev/null "$GENQ_COMFYUI_URL/system_stats"
  if [[ -n ${GENQ_COMFYUI_REAL_URL:-} ]]; then curl -fsS -m 10 -o /dev/null "$GENQ_COMFYUI_REAL_URL/system_stats"; fi
  "$1"/tests/stack down "$GENQ_STACK_DIR" 2>>"'"$out"'/up.log"
' _ "$root" "${args[@]}") || rc=$?
if ((rc != 0)); then
  tail -n 20 "$out/up.log" >&2 || true
  "$root/tests/stack" gc >/dev/null 2>&1 || true # the stack whose owner was killed
  ((rc == 124 || rc == 137)) && fail "eval \"\$(tests/stack up ${args[*]})\" did not return within $limit s"
  fail "eval \"\$(tests/stack up ${args[*]})\" failed (exit $rc)"
fi
dir=$(sed -n 's/^dir=//p' <<<"$res")
[[ -n $dir ]] || fail "no stack directory printed: $res"
[[ ! -d $dir ]] || fail "$dir still exists after tests/stack down"
note "eval \"\$(tests/stack up ${args[*]})\" returned; stack up and down in $((SECONDS - t0)) s"
