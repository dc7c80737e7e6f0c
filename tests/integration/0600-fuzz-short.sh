#!/usr/bin/env bash
# timeout: 420
# A short libFuzzer run (10 s per target) of the request decoder, the completion decoder, the
# workflow binder (graph.c), media type detection, the report's PNG thumbnails,
# JSON request input and the canonical-form code, from the committed corpus. Any crash,
# leak or sanitizer report fails. `make fuzz-long` runs the long campaign.
set -euo pipefail
cd "$GENQ_ROOT"
make --no-print-directory MODE=fuzz build/fuzz/libgenq.a >/dev/null
tests/fuzz/run --bindir build/fuzz/bin --seconds "${FUZZ_SECONDS:-10}"
