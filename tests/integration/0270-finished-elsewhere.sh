#!/usr/bin/env bash
# timeout: 180
# A job finished elsewhere while it waited here for a ComfyUI slot (another worker had a
# duplicate of it, a replay, a rebalance race). The worker takes the news when it records
# the attempt's start: it skips the job without rendering it, moves the offset past it, and
# goes on. genq 0.1 freed the job deep inside that call and then read it (a use after free,
# which this test, run against the sanitizer build, reports).
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
enc() { /usr/bin/python3 "$GENQ_ROOT/tests/schemas/encode_request.py" "$1"; }
uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }

# Two slow jobs hold both slots (one rendering, one queued ahead); X waits behind them.
l1=$(uuid) l2=$(uuid) x=$(uuid)
slow='"prompt": "slow [[sim:slow:step_ms=400]]", "steps": 8, "width": 64, "height": 64, "model": "sd15.safetensors"'
enc "{\"job_id\": \"$l1\", $slow}" >"$T_TMP/l1.bin"
enc "{\"job_id\": \"$l2\", $slow}" >"$T_TMP/l2.bin"
enc "{\"job_id\": \"$x\", \"prompt\": \"x\", \"steps\": 2, \"width\": 64, \"height\": 64, \"model\": \"sd15.safetensors\"}" >"$T_TMP/x.bin"
"$GENQ" produce -p "create the topic" -m sd15.safetensors --width 64 --height 64 --steps 1 >/dev/null 2>"$T_TMP/produce.log"
for m in l1 l2 x; do
    kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -p 0 -k "${!m}" "$T_TMP/$m.bin" || fail "kcat"
done
before=$(curl -fsS "$GENQ_COMFYUI_URL/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prompts_received"])')
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 60 "the first slow job rendering" sql_is 1 "SELECT count(*) FROM genq.jobs WHERE job_id = '$l1' AND status = 'running'"
# Another worker finishes X meanwhile (its record, as genq.job_finish writes it).
sql "INSERT INTO genq.jobs (job_id, status, attempts, finished_at, worker_id) VALUES ('$x', 'succeeded', 1, now(), 'elsewhere')" >/dev/null
t_wait 60 "both slow jobs done" sql_is 3 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded' AND worker_id <> 'elsewhere'"
t_wait 30 "X skipped" grep -q "job $x: already recorded; skipped" "$T_TMP/w1.log"
t_wait 30 "the offset past X" sql_is 4 "SELECT next_offset FROM genq.consumer_offsets WHERE topic = '$GENQ_REQUESTS_TOPIC'"
t_stop_workers w1
after=$(curl -fsS "$GENQ_COMFYUI_URL/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prompts_received"])')
[ $((after - before)) -eq 3 ] || fail "ComfyUI received $((after - before)) prompts; X must not be rendered (expected 3)"
[ "$(sql "SELECT worker_id || ' ' || attempts FROM genq.jobs WHERE job_id = '$x'")" = "elsewhere 1" ] ||
    fail "X's record was touched: $(sql "SELECT row_to_json(j) FROM genq.jobs j WHERE job_id = '$x'")"
note "X, finished elsewhere while waiting for a slot, was skipped: not rendered, its record untouched"
