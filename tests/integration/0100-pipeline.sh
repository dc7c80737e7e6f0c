#!/usr/bin/env bash
# timeout: 420
# The pipeline end to end: 200 requests through `genq produce`, two workers in one group,
# each beside its own ComfyUI simulator; every job recorded once, with consistent
# durations, every PNG stored with the requested size and its sha256, and a SUCCEEDED
# completion event for every job.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
url2=${urls[1]:-${urls[0]}}

/usr/bin/python3 - >"$T_TMP/requests.jsonl" <<'PY'
import json
sizes = [(64, 64), (128, 64), (64, 96), (96, 128)]
for i in range(200):
    w, h = sizes[i % 4]
    print(json.dumps({"prompt": f"test image {i}", "model": "sd15.safetensors" if i % 2 else "sdxl.safetensors",
                      "width": w, "height": h, "steps": 4, "seed": 1000 + i, "source": "it-pipeline"}))
PY
"$GENQ" produce --file "$T_TMP/requests.jsonl" >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce"
[ "$(sort -u "$T_TMP/ids.txt" | wc -l)" -eq 200 ] || fail "produce printed $(wc -l <"$T_TMP/ids.txt") ids, expected 200"

t_worker w1 "${urls[0]}"
t_worker w2 "$url2"
t_wait 300 "200 terminal jobs" sql_is 200 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"

kill -TERM "$PID_w1" "$PID_w2"
wait "$PID_w1" || fail "worker 1 exited with $?"
wait "$PID_w2" || fail "worker 2 exited with $?"

[ "$(sql "SELECT count(*) FROM genq.jobs")" -eq 200 ] || fail "genq.jobs has $(sql 'SELECT count(*) FROM genq.jobs') rows"
bad=$(sql "SELECT count(*) FROM genq.jobs WHERE status <> 'succeeded'")
[ "$bad" -eq 0 ] || fail "$bad jobs not succeeded: $(sql "SELECT job_id, error_code, error FROM genq.jobs WHERE status <> 'succeeded' LIMIT 5")"
incons=$(sql "SELECT count(*) FROM genq.jobs WHERE queue_ms IS NULL OR render_ms IS NULL OR total_ms IS NULL
              OR queue_ms < 0 OR render_ms <= 0 OR queue_ms + render_ms > total_ms")
[ "$incons" -eq 0 ] || fail "$incons jobs with missing or inconsistent durations"
[ "$(sql "SELECT count(DISTINCT worker_id) FROM genq.jobs")" -eq 2 ] || fail "expected both workers to render"
nout=$(t_check_outputs) || fail "output check failed"
[ "$nout" -eq 200 ] || fail "expected 200 outputs, found $nout"
[ "$(sql "SELECT count(*) FROM genq.jobs j WHERE NOT EXISTS (SELECT 1 FROM genq.job_outputs o WHERE o.job_id = j.job_id)")" -eq 0 ] \
    || fail "jobs without outputs"
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE job_id::text IN ($(sed "s/.*/'&'/" "$T_TMP/ids.txt" | paste -sd,))")" -eq 200 ] \
    || fail "recorded job ids differ from the published ones"

"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$T_TMP/ids.txt" <<'PY' || fail "completion events incomplete"
import json, sys
ids = set(open(sys.argv[2]).read().split())
ok = {}
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev["status"] == "SUCCEEDED":
        assert ev["outputs"] and ev["outputs"][0]["sha256"], ev
        ok.setdefault(ev["job_id"], set()).add(ev["attempt"])
missing = ids - set(ok)
assert not missing, f"{len(missing)} jobs without SUCCEEDED event, e.g. {sorted(missing)[:3]}"
extra = set(ok) - ids
assert not extra, f"events for unknown jobs: {sorted(extra)[:3]}"
print(f"{len(ok)} jobs with SUCCEEDED events")
PY
note "200 jobs, 2 workers, $nout outputs verified"
