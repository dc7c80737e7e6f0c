#!/usr/bin/env bash
# timeout: 300
# `genq lag` over priority lanes against the stack's real Kafka: three lane topics with a
# known backlog and known commits. GENQ_LANES: every lane's partitions, per-lane and total
# lag, and the replicas of their sum (as k8s/components/priority-lanes scales). -f on the
# ScaledObject kustomize renders from k8s/overlays/prod-lanes (three triggers summed by
# scalingModifiers), over the stack's SASL_SSL listener as shipped, only the address,
# topics and group substituted: the same numbers; without its formula, the HPA's largest
# count of one trigger and the warning that it under-scales; an unsupported formula is
# refused. When KEDA's own scaler is built (make keda-check), its kafka scaler and its
# scalingModifiers code (pkg/scaling/modifiers) must give the same per-trigger metrics,
# composite value and activity.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
HIGH="genq.requests.high.$T_ID" NORMAL="$GENQ_REQUESTS_TOPIC" LOW="genq.requests.low.$T_ID"
export GENQ_LANES="$HIGH,$NORMAL,$LOW"
produce() { # topic partition:count...
    local t=$1 spec
    shift
    for spec in "$@"; do
        for i in $(seq "${spec#*:}"); do echo "m$i"; done |
            kcat -P -b "$GENQ_BROKERS" -t "$t" -p "${spec%:*}" 2>/dev/null || fail "kcat produce $t"
    done
}
commit() { # topic partition offset
    "$GENQ" replay offsets -t "$1" --partition "$2" --to-offset "$3" >/dev/null 2>>"$T_TMP/off.log" ||
        fail "commit $1 [$2] at $3: $(tail -2 "$T_TMP/off.log")"
}
# high: 7 on p0, committed at 2 -> 5; normal: 10, 5, 4 committed at 3 and 5 -> 7 + 0 + 4 = 11;
# low: 9 and 3, nothing committed -> with earliest the whole log, 12. Total 28.
produce "$HIGH" 0:7
produce "$NORMAL" 0:10 1:5 2:4
produce "$LOW" 0:9 3:3
commit "$HIGH" 0 2
commit "$NORMAL" 0 3
commit "$NORMAL" 1 5
parts=$(kcat -L -b "$GENQ_BROKERS" -t "$LOW" 2>/dev/null | grep -c 'partition [0-9]')
[ "$parts" -ge 4 ] || fail "$LOW has $parts partitions"
export HIGH NORMAL LOW T_TMP parts

# expect FILE COMBINE REPLICAS: per topic and partition, per lane, total, replicas.
expect() {
    /usr/bin/python3 - "$@" <<'PY' || fail "genq lag ($2): $1 is not as expected"
import json, os, sys
d = json.load(open(sys.argv[1]))
combine, replicas = sys.argv[2], int(sys.argv[3])
H, N, L, P = os.environ["HIGH"], os.environ["NORMAL"], os.environ["LOW"], int(os.environ["parts"])
want = {H: {0: 5}, N: {0: 7, 1: 0, 2: 4}, L: {0: 9, 3: 3}}
got = {}
for p in d["partitions"]:
    got.setdefault(p["topic"], {})[p["partition"]] = p["lag"]
for t, lags in want.items():
    full = {p: lags.get(p, 0) for p in range(P)}
    assert got.get(t) == full, (t, got.get(t), full)
assert set(got) == set(want), sorted(got)
assert [t["topic"] for t in d["triggers"]] == [H, N, L], d["triggers"]
assert [t["total_lag"] for t in d["triggers"]] == [5, 11, 12], d["triggers"]
assert [t["metric"] for t in d["triggers"]] == [5, 11, 12], d["triggers"]
assert [t["replicas"] for t in d["triggers"]] == [1, 3, 3], d["triggers"]
assert d["total_lag"] == 28 and d["partitions_counted"] == 3 * P, d
assert d["combine"] == combine and d["active"] is True, d
assert d["replicas"] == replicas and d["replicas_max"] == 3 and d["replicas_sum"] == 6, d
if combine == "sum":
    assert d["metric"] == 28 and d["formula"]["value"] == 28 and d["formula"]["target"] == 5, d
else:
    assert d["metric"] is None and "formula" not in d, d
PY
}

# GENQ_LANES: summed, 28 at 5 per worker -> 6 replicas (one lane alone would ask for 3)
"$GENQ" lag --lag-threshold 5 --format json >"$T_TMP/lanes.json" 2>"$T_TMP/lanes.log" ||
    fail "genq lag with GENQ_LANES: $(cat "$T_TMP/lanes.log")"
expect "$T_TMP/lanes.json" sum 6
"$GENQ" lag --lag-threshold 5 >"$T_TMP/lanes.txt" 2>>"$T_TMP/lanes.log" || fail "genq lag (text)"
grep -q "^total lag 28; the lanes summed .*: 28, active .*, 6 replica(s) at target 5 .*: 3)$" "$T_TMP/lanes.txt" ||
    fail "text total line: $(tail -4 "$T_TMP/lanes.txt")"
[ "$(grep -c "^$LOW " "$T_TMP/lanes.txt")" -eq "$parts" ] || fail "rows of $LOW: $(cat "$T_TMP/lanes.txt")"
grep -q "^lane $NORMAL: lag 11, KEDA metric 11, active; alone 3 replica(s) at lagThreshold 5$" "$T_TMP/lanes.txt" ||
    fail "no line for lane $NORMAL: $(cat "$T_TMP/lanes.txt")"

# The deployment as rendered: k8s/overlays/prod-lanes
eval "$(tests/k8s/tools)" || fail "tests/k8s/tools"
"$K8S_KUSTOMIZE" build k8s/overlays/prod-lanes >"$T_TMP/prod-lanes.yaml" || fail "kustomize build"
sasl=${GENQ_STACK_SASL_BROKERS:-}
[ -n "$sasl" ] || fail "the stack has no SASL_SSL listener"
export GENQ_KAFKA_SASL_USERNAME=$GENQ_STACK_SASL_USERNAME GENQ_KAFKA_SASL_PASSWORD=$GENQ_STACK_SASL_PASSWORD
export GENQ_KAFKA_SSL_CA_LOCATION=$GENQ_STACK_KAFKA_CA
/usr/bin/python3 - "$T_TMP/prod-lanes.yaml" "$T_TMP" "$sasl" <<'PY' || fail "the rendered ScaledObject"
import os, sys, yaml
src, out, brokers = sys.argv[1:]
so = next(d for d in yaml.safe_load_all(open(src)) if d and d["kind"] == "ScaledObject")
lanes = {"genq.requests.high": os.environ["HIGH"], "genq.requests": os.environ["NORMAL"],
         "genq.requests.low": os.environ["LOW"]}
assert [t["name"] for t in so["spec"]["triggers"]] == ["high", "normal", "low"], so["spec"]["triggers"]
assert so["spec"]["advanced"]["scalingModifiers"]["formula"] == "high + normal + low"
for t in so["spec"]["triggers"]:
    md = t["metadata"]
    assert md["tls"] == "enable" and md["sasl"] == "scram_sha512", md
    md.update(bootstrapServers=brokers, topic=lanes[md["topic"]], consumerGroup=os.environ["GENQ_GROUP"])
yaml.safe_dump(so, open(f"{out}/so-sum.yaml", "w"), sort_keys=False)
del so["spec"]["advanced"]["scalingModifiers"]
yaml.safe_dump(so, open(f"{out}/so-max.yaml", "w"), sort_keys=False)
so["spec"]["advanced"]["scalingModifiers"] = {"formula": "high * 2 + normal + low", "target": "5"}
yaml.safe_dump(so, open(f"{out}/so-product.yaml", "w"), sort_keys=False)
PY
# (GENQ_LANES stays set: it names the same lanes as the triggers, so no warning about them)
"$GENQ" lag -f "$T_TMP/so-sum.yaml" --format json >"$T_TMP/sum.json" 2>"$T_TMP/sum.log" ||
    fail "genq lag -f prod-lanes: $(cat "$T_TMP/sum.log")"
expect "$T_TMP/sum.json" sum 6
! grep -q "warn" "$T_TMP/sum.log" || fail "unexpected warning: $(cat "$T_TMP/sum.log")"
"$GENQ" lag -f "$T_TMP/so-max.yaml" --format json >"$T_TMP/max.json" 2>"$T_TMP/max.log" ||
    fail "genq lag -f without the formula: $(cat "$T_TMP/max.log")"
expect "$T_TMP/max.json" max 3
grep -q "the HPA asks for the largest of their counts (3 replica(s)), not for their summed lag (6 replica(s)), so a backlog spread over the lanes under-scales" "$T_TMP/max.log" ||
    fail "no under-scaling warning: $(cat "$T_TMP/max.log")"
rc=0
"$GENQ" lag -f "$T_TMP/so-product.yaml" >/dev/null 2>"$T_TMP/product.log" || rc=$?
[ "$rc" -eq 78 ] && grep -q "genq lag evaluates only a sum of trigger names and numbers" "$T_TMP/product.log" ||
    fail "an unsupported formula: exit $rc, $(cat "$T_TMP/product.log")"
note "GENQ_LANES and the prod-lanes ScaledObject: 5 + 11 + 12 = 28 over three lanes, 6 replicas summed, 3 by the HPA's max (warned)"

# KEDA's own code on the same objects, when it is built here
if ! keda=$(tests/keda/tools --cached 2>/dev/null); then
    note "KEDA's scaler is not built (make keda-check): the comparison with KEDA's own code is skipped"
    exit 0
fi
eval "$keda"
export KEDA_LAG GENQ
/usr/bin/python3 - <<'PY' || fail "genq lag -f and KEDA's own code disagree"
import copy, json, os, subprocess, sys, yaml
TMP, GENQ, KEDA = os.environ["T_TMP"], os.environ["GENQ"], os.environ["KEDA_LAG"]
base = yaml.safe_load(open(f"{TMP}/so-sum.yaml"))

def variant(name, formula=None, **md):
    so = copy.deepcopy(base)
    sm = so["spec"]["advanced"]["scalingModifiers"]
    if formula is None:
        del so["spec"]["advanced"]["scalingModifiers"]
    else:
        sm.update(formula)
    for trig, values in md.items():
        next(t for t in so["spec"]["triggers"] if t["name"] == trig)["metadata"].update(values)
    path = f"{TMP}/keda-{name}.yaml"
    yaml.safe_dump(so, open(path, "w"), sort_keys=False)
    return name, path

cases = [
    variant("sum", {}),
    variant("max"),
    # each trigger below its own activationLagThreshold: inactive alone, active summed
    variant("sum-activation", {}, **{n: {"activationLagThreshold": "20"} for n in ("high", "normal", "low")}),
    variant("max-activation", None, **{n: {"activationLagThreshold": "20"} for n in ("high", "normal", "low")}),
    # the composite at activationTarget is not active (strictly above)
    variant("sum-at-activation", {"activationTarget": "28"}),
    variant("sum-over-activation", {"activationTarget": "27.5"}),
    # numbers, a lane left out, a lane capped at its partitions first
    variant("sum-constant", {"formula": "high + normal + low + 1.5"}),
    variant("sum-partial", {"formula": "high + low"}),
    variant("sum-capped", {}, low={"lagThreshold": "1"}),
]
auth = ["-auth", "username=" + os.environ["GENQ_STACK_SASL_USERNAME"],
        "-auth", "password=" + os.environ["GENQ_STACK_SASL_PASSWORD"],
        "-auth-file", "ca=" + os.environ["GENQ_STACK_KAFKA_CA"]]
bad = 0
for name, path in cases:
    k = json.loads(subprocess.run([KEDA, "scale-so", "-f", path] + auth, capture_output=True,
                                  text=True, timeout=120, check=True).stdout)
    p = subprocess.run([GENQ, "lag", "-f", path, "--format", "json"], capture_output=True,
                       text=True, timeout=120)
    g = json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr[-300:]}
    mine = {"triggers": [{"name": t["name"], "metric": t["metric"], "active": t["active"]}
                         for t in g.get("triggers", [])], "active": g.get("active")}
    if "formula" in g:
        mine["composite"] = g["formula"]["value"]
    ok = "error" not in k and "error" not in g and mine == {**k, "triggers": [
        {"name": t["name"], "metric": t["metric"], "active": t["active"]} for t in k["triggers"]]}
    bad += not ok
    print(f"{'ok  ' if ok else 'DIFF'} {name:<20} keda {json.dumps(k, sort_keys=True)}\n"
          f"{'':26}genq {json.dumps(mine, sort_keys=True)} replicas {g.get('replicas')}",
          file=sys.stderr)
print(f"{len(cases) - bad} of {len(cases)} agree", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
note "KEDA's own kafka scaler and scalingModifiers code agree with genq lag -f in every case"
