#!/usr/bin/env bash
# timeout: 180
# The result cache: a request identical to one already rendered (same workflow as bound,
# model, seed, parameters; another job id) is answered from the first job's outputs without
# a render: its own SUCCEEDED record (cache_hit, cache_source), the same content-addressed
# outputs, its own completion event, and no prompt reaching ComfyUI. A request that opts out
# (metadata genq-cache=off) and one with another seed are rendered.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=1
url=$GENQ_COMFYUI_URL
prompts() { curl -fsS "$url/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prompts_received"])'; }
req() { # seed, metadata json
    /usr/bin/python3 -c 'import json,sys; print(json.dumps({"prompt": "cache me", "model": "sd15.safetensors", "width": 64, "height": 64, "steps": 2, "seed": int(sys.argv[1]), "metadata": json.loads(sys.argv[2])}))' "$1" "$2" >"$T_TMP/req.jsonl"
    "$GENQ" produce --file "$T_TMP/req.jsonl" 2>>"$T_TMP/produce.log"
}
done_ok() { t_wait 60 "job $1 succeeded" sql_is succeeded "SELECT status FROM genq.jobs WHERE job_id = '$1'"; }
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t_worker w1 "$url" --http-listen "127.0.0.1:$port"
a=$(req 42 '{}') || fail "produce a"
done_ok "$a"
n0=$(prompts)
b=$(req 42 '{"caller": "b"}') || fail "produce b" # metadata is not part of the render
done_ok "$b"
[ "$(prompts)" = "$n0" ] || fail "the identical request reached ComfyUI ($n0 -> $(prompts) prompts)"
row=$(sql "SELECT concat_ws('|', cache_hit, cache_source, attempts, render_ms) FROM genq.jobs WHERE job_id = '$b'")
[ "$row" = "t|$a|0|0" ] || fail "b's record: $row, expected t|$a|0|0"
[ "$(sql "SELECT string_agg(uri || sha256, ',' ORDER BY idx) FROM genq.job_outputs WHERE job_id = '$b'")" = \
  "$(sql "SELECT string_agg(uri || sha256, ',' ORDER BY idx) FROM genq.job_outputs WHERE job_id = '$a'")" ] ||
    fail "b's outputs are not a's"
[ "$(sql "SELECT count(*) FROM genq.job_attempts WHERE job_id = '$b'")" = 0 ] || fail "b has an attempt"
c=$(req 42 '{"genq-cache": "off"}') || fail "produce c"
done_ok "$c"
d=$(req 43 '{}') || fail "produce d"
done_ok "$d"
[ "$(prompts)" = "$((n0 + 2))" ] || fail "the opted-out and the other-seed requests: $(($(prompts) - n0)) prompts, expected 2"
[ "$(sql "SELECT string_agg(cache_hit::text, ',' ORDER BY job_id = '$d') FROM genq.jobs WHERE job_id IN ('$c', '$d')")" = "false,false" ] ||
    fail "c or d recorded as a hit"
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE job_id = '$c' AND cache_key IS NULL")" = 1 ] || fail "c has a cache key"
hits=$(curl -fsS "http://127.0.0.1:$port/metrics" | sed -n 's/^genq_cache_lookups_total{result="hit"} //p')
[ "$hits" = 1 ] || fail "genq_cache_lookups_total{result=\"hit\"}: '$hits', expected 1"
t_stop_workers w1
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>/dev/null || fail "genq events"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$a" "$b" <<'PY' || fail "events"
import json, sys
ev = {e["job_id"]: e for e in map(json.loads, open(sys.argv[1]))}
a, b = ev[sys.argv[2]], ev[sys.argv[3]]
assert b["status"] == "SUCCEEDED" and b["render_ms"] == 0, b
assert [o["sha256"] for o in b["outputs"]] == [o["sha256"] for o in a["outputs"]], (a, b)
assert b["metadata"] == {"caller": "b"}, b
PY
note "identical request answered from the cache (no prompt, same outputs, own event); opt-out and another seed rendered; the hit counted in /metrics"
