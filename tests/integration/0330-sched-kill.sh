#!/usr/bin/env bash
# timeout: 300
# Everything the scheduler does, under kill -9: three priority lanes, three tenants, two
# checkpoints (affinity reorders), repeated identical requests (cache hits), two workers,
# each killed -9 once mid-run and restarted. Nothing is lost and nothing is done twice:
# every job has exactly one terminal record (succeeded), its outputs, and its event.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=3 GENQ_MAX_ATTEMPTS=10
export GENQ_LANES="$GENQ_REQUESTS_TOPIC.high,$GENQ_REQUESTS_TOPIC,$GENQ_REQUESTS_TOPIC.low"
read -r -a urls <<<"${GENQ_COMFYUI_URLS:-$GENQ_COMFYUI_URL}"
KX=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
/usr/bin/python3 - >"$T_TMP/requests.jsonl" <<'PY'
import json
for i in range(90):
    tenant = ["big", "big", "big", "mid", "small"][i % 5]
    # every 9th request repeats an earlier one exactly (a cache hit once that one is done)
    seed = 1000 + (i - 9 if i % 9 == 8 and i >= 9 else i)
    print(json.dumps({"prompt": f"mix {seed} [[sim:slow:step_ms=30]]", "width": 64, "height": 64,
                      "model": ["sd15.safetensors", "sdxl.safetensors"][(seed // 3) % 2],
                      "steps": 4, "seed": seed, "source": tenant, "priority": [1, 0, -1][i % 3]}))
PY
"$GENQ" produce --file "$T_TMP/requests.jsonl" >"$T_TMP/ids.txt" 2>>"$T_TMP/produce.log" || fail "produce"
n=$(sort -u "$T_TMP/ids.txt" | wc -l)
[ "$n" -eq 90 ] || fail "$n job ids published"
t_worker w1 "${urls[0]}" "${KX[@]}"
t_worker w2 "${urls[1]:-${urls[0]}}" "${KX[@]}"
for k in 1 2; do
    t_wait 90 "progress before kill $k" sql_is_at_least $((k * 25)) "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
    kill -9 "$(eval echo "\$PID_w$k")"
    wait "$(eval echo "\$PID_w$k")" 2>/dev/null || true
    mv "$T_TMP/w$k.log" "$T_TMP/w$k.killed.log"
    t_worker "w$k" "${urls[$((k - 1))]:-${urls[0]}}" "${KX[@]}"
done
t_wait 180 "90 terminal jobs" sql_is 90 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1 w2
t_expect_succeeded 90
t_expect_events >/dev/null
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE lane IS NULL")" = 0 ] || fail "jobs without their lane"
[ "$(sql "SELECT count(DISTINCT source) FROM genq.jobs")" = 3 ] || fail "tenants"
hits=$(sql "SELECT count(*) FROM genq.jobs WHERE cache_hit")
[ "$(sql "SELECT count(*) FROM genq.outbox")" -eq 0 ] || fail "outbox not drained"
note "90 jobs over 3 lanes, 3 tenants, 2 checkpoints, $hits cache hits, 2 kill -9: each recorded once with its event"
