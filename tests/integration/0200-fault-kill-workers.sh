#!/usr/bin/env bash
# timeout: 480
# Fault test (a): 500 jobs through 3 workers while workers are killed with SIGKILL at
# random moments (fixed seed), at least 20 kills, each restarted at once. Two of the
# workers share a ComfyUI, so a job whose worker died mid-render can be adopted. At the
# end: every job has exactly one terminal row, all succeeded, one output each, a
# SUCCEEDED event for every job (repeats only with the recorded attempt), and the number
# of renders thrown away is reported.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=6 GENQ_MAX_ATTEMPTS=10
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
comfy_for() { case $1 in w1 | w3) echo "${urls[0]}" ;; *) echo "${urls[1]:-${urls[0]}}" ;; esac; }
# A dead member's partitions move after session.timeout.ms: the broker's minimum, 6 s.
KX=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
renders_before=0
for u in "${urls[@]}"; do
    renders_before=$((renders_before + $(curl -fsS "$u/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["renders_completed"])')))
done

/usr/bin/python3 - >"$T_TMP/requests.jsonl" <<'PY'
import json
for i in range(500):
    print(json.dumps({"prompt": f"chaos {i}", "model": ["sd15.safetensors", "sdxl.safetensors"][i % 2],
                      "width": 64, "height": 64, "steps": 6, "seed": 7000 + i, "source": "it-chaos"}))
PY
"$GENQ" produce --file "$T_TMP/requests.jsonl" >"$T_TMP/ids.txt" 2>"$T_TMP/produce.log" || fail "genq produce"

start() { t_worker "$1" "$(comfy_for "$1")" "${KX[@]}"; }
for w in w1 w2 w3; do start "$w"; done

RANDOM=4242
kills=0
deadline=$((SECONDS + 240))
while [ $kills -lt 24 ] && [ $SECONDS -lt $deadline ]; do
    # 0.4 to 2.4 s apart: 24 kills take about 40 s, well inside the time 500 jobs take
    # (faster workers ran out of jobs after 17 kills at 1 to 4 s apart).
    ms=$((400 + RANDOM % 2000))
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    done_now=$(sql "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')")
    [ "$done_now" -ge 480 ] && break
    victim=w$((RANDOM % 3 + 1))
    pid_var=PID_$victim
    kill -9 "${!pid_var}" 2>/dev/null && kills=$((kills + 1))
    wait "${!pid_var}" 2>/dev/null || true
    mv "$T_TMP/$victim.log" "$T_TMP/$victim.killed$kills.log"
    start "$victim"
done
note "$kills kills; $(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'") jobs done when the killing stopped"
[ $kills -ge 20 ] || fail "only $kills kills happened before the jobs ran out; expected at least 20"

t_wait 240 "500 terminal jobs" sql_is 500 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
for w in w1 w2 w3; do
    pid_var=PID_$w
    kill -TERM "${!pid_var}"
done
for w in w1 w2 w3; do
    pid_var=PID_$w
    wait "${!pid_var}" || fail "worker $w exited with $? after SIGTERM"
done

[ "$(sql "SELECT count(*) FROM genq.jobs")" -eq 500 ] || fail "genq.jobs has $(sql 'SELECT count(*) FROM genq.jobs') rows"
bad=$(sql "SELECT count(*) FROM genq.jobs WHERE status <> 'succeeded'")
[ "$bad" -eq 0 ] || fail "$bad jobs not succeeded: $(sql "SELECT job_id, attempts, error_code, error FROM genq.jobs WHERE status <> 'succeeded' LIMIT 5")"
[ "$(sql "SELECT count(*) FROM genq.job_outputs")" -eq 500 ] || fail "expected exactly 500 outputs, found $(sql 'SELECT count(*) FROM genq.job_outputs')"
nout=$(t_check_outputs) || fail "output check failed"
incons=$(sql "SELECT count(*) FROM genq.jobs WHERE queue_ms + render_ms > total_ms")
[ "$incons" -eq 0 ] || fail "$incons jobs with inconsistent durations"

"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
sql "SELECT job_id, attempts FROM genq.jobs" >"$T_TMP/attempts.txt"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$T_TMP/attempts.txt" <<'PY' || fail "completion events"
import json, sys
recorded = dict(line.strip().split("|") for line in open(sys.argv[2]) if line.strip())
seen, repeats = {}, 0
for line in open(sys.argv[1]):
    ev = json.loads(line)
    assert ev["status"] == "SUCCEEDED", ev
    if ev["job_id"] in seen:
        repeats += 1
    seen.setdefault(ev["job_id"], set()).add(ev["attempt"])
missing = set(recorded) - set(seen)
assert not missing, f"{len(missing)} jobs without an event, e.g. {sorted(missing)[:3]}"
for job, attempts in seen.items():
    assert attempts == {int(recorded[job])}, f"job {job}: events for attempts {attempts}, recorded {recorded[job]}"
print(f"events: {len(seen)} jobs, {repeats} repeated events (same job and attempt)", file=sys.stderr)
PY

renders_after=0
for u in "${urls[@]}"; do
    renders_after=$((renders_after + $(curl -fsS "$u/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["renders_completed"])')))
done
wasted=$((renders_after - renders_before - 500))
adopted=$(cat "$T_TMP"/w*.log | grep -c "reattached to prompt" || true)
retried=$(sql "SELECT count(*) FROM genq.jobs WHERE attempts > 1")
note "$kills kills: 500/500 succeeded, $nout outputs verified, $adopted renders adopted, $retried jobs re-rendered, $wasted renders thrown away"
