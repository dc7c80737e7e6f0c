#!/usr/bin/env bash
# 0700-comfyui-real-transcripts: the ComfyUI simulator and the real ComfyUI 0.3.64 (CPU, from
# tests/stack up --comfyui real) give the same transcripts for the same prompts: WebSocket
# messages in order, /history entries, /queue, POST /prompt errors (tests/comfyreal/
# test_transcripts.py). Needs $GENQ_COMFYUI_REAL_URL.
# timeout: 900
set -euo pipefail
root=${GENQ_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
if [[ -z ${GENQ_COMFYUI_REAL_URL:-} ]]; then
  echo "0700: FAIL: GENQ_COMFYUI_REAL_URL is not set (the stack has no real ComfyUI)" >&2
  exit 1
fi
cd "$root"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider -s tests/comfyreal/test_transcripts.py
