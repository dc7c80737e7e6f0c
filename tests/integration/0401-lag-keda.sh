#!/usr/bin/env bash
# timeout: 3600
# `genq lag -f` against KEDA's own Kafka scaler (the version k8s/ names, built from the Go
# module proxy by tests/keda/tools; the first build takes up to half an hour on two busy
# cores, later runs reuse it from ~/.cache/genq and take about 20 s): the same broker,
# groups and trigger settings, 40+ cases, and the metric and activity must agree in every
# one. The cases cover no commit under both offsetResetPolicy values, a log start above 0
# (deleted records), a commit past the end, a committed -2, partitionLimitation,
# allowIdleConsumers, limitToPartitionsWithLag, ensureEvenDistributionOfPartitions,
# scaleToZeroOnInvalidOffset, activation, no topic (all the group's topics; every topic of
# the cluster for a group that never committed), settings KEDA refuses,
# excludePersistentLag over two polls, and the shipped k8s/base/keda-scaledobject.yaml
# over SASL_SSL.
source "$(dirname "$0")/lib.sh"
# Building KEDA's scaler costs half an hour and 5 GB once: `make test` runs this comparison
# when that build is cached (`make keda-check` makes it and runs it); GENQ_TEST_KEDA=1 builds
# it here if needed. The rules themselves are unit-tested in test_lag either way.
if [ "${GENQ_TEST_KEDA:-}" != 1 ] && ! tests/keda/tools --cached >/dev/null 2>&1; then
    echo "skipped: KEDA's scaler is not built yet (make keda-check builds it and runs this)"
    exit 77
fi
command -v go >/dev/null || fail "needs Go (KEDA's scaler is built from the Go module proxy)"
eval "$(tests/keda/tools)" || fail "tests/keda/tools"
t_fresh_names
export T_ID KEDA_LAG GENQ T_TMP

/usr/bin/python3 - <<'PY' || fail "genq lag and KEDA's scaler disagree"
import json, os, subprocess, sys, time

B, ID, GENQ, KEDA, TMP = (os.environ[k] for k in ("GENQ_BROKERS", "T_ID", "GENQ", "KEDA_LAG", "T_TMP"))

def run(*args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout

def topic(name, parts, counts):
    run(KEDA, "create-topic", B, name, str(parts))
    for p, n in counts.items():
        run("kcat", "-P", "-b", B, "-t", name, "-p", str(p), input="".join(f"m{i}\n" for i in range(n)))

def commit(group, t, p, off):
    run(KEDA, "commit", B, group, t, str(p), str(off))

TA, TB, TC, TD = (f"lag-{x}.{ID}" for x in "abcd")
GA, GB, GC, GD, GE, GP, GN = (f"lag-{x}-{ID}" for x in "abcdepn")
# TA: 10 committed at 3, 5 at 5, 4 never committed, an empty one never committed
topic(TA, 4, {0: 10, 1: 5, 2: 4})
commit(GA, TA, 0, 3); commit(GA, TA, 1, 5)
# TB: 6 records with the first 4 deleted, never committed; 3 committed at 5 (past the
# end); 5 committed at -2
topic(TB, 3, {0: 6, 1: 3, 2: 5})
run(KEDA, "delete-records", B, TB, "0", "4")
commit(GB, TB, 1, 5); commit(GB, TB, 2, -2)
# TC: the only partition committed past its end
topic(TC, 1, {0: 3})
commit(GC, TC, 0, 4)
# TD: 40 and 15 behind on two of six partitions
topic(TD, 6, {0: 40, 1: 15})
for p in range(6):
    commit(GD, TD, p, 0)
# GE has committed on TA and TD only; GP is polled twice
commit(GE, TA, 0, 3); commit(GE, TD, 1, 10)
commit(GP, TD, 0, 10); commit(GP, TD, 1, 5)

cases = []
def case(group, t, polls=None, **md):
    md = {k: str(v) for k, v in md.items()}
    if t:
        md["topic"] = t
    cases.append((group, md, polls))

for pol in ("latest", "earliest"):
    case(GA, TA, offsetResetPolicy=pol)
    case(GA, TA, offsetResetPolicy=pol, scaleToZeroOnInvalidOffset="true")
    case(GB, TB, offsetResetPolicy=pol)
    case(GB, TB, offsetResetPolicy=pol, scaleToZeroOnInvalidOffset="true")
    case(GC, TC, offsetResetPolicy=pol)
    case(GE, None, offsetResetPolicy=pol)
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=3)
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=1)
case(GA, TA, offsetResetPolicy="earliest", activationLagThreshold=11)
case(GA, TA, offsetResetPolicy="earliest", activationLagThreshold=10)
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=1, allowIdleConsumers="true")
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=1, limitToPartitionsWithLag="true")
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=1, ensureEvenDistributionOfPartitions="true")
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=3, ensureEvenDistributionOfPartitions="true")
case(GA, TA, offsetResetPolicy="earliest", lagThreshold=1, partitionLimitation="0,2")
case(GA, TA, offsetResetPolicy="latest", partitionLimitation="1-3")
case(GA, TA, partitionLimitation="7")                              # refused by both
case(GA, TA, allowIdleConsumers="true", limitToPartitionsWithLag="true")  # refused by both
case(GB, TB, offsetResetPolicy="earliest", lagThreshold=1, limitToPartitionsWithLag="true")
case(GB, TB, offsetResetPolicy="latest", scaleToZeroOnInvalidOffset="true", activationLagThreshold=4)
for p in "012":
    case(GB, TB, offsetResetPolicy="earliest", partitionLimitation=p)
case(GC, TC, offsetResetPolicy="earliest", allowIdleConsumers="true")
for md in ({}, {"allowIdleConsumers": "true"}, {"limitToPartitionsWithLag": "true"},
           {"activationLagThreshold": 55}):
    case(GD, TD, offsetResetPolicy="earliest", lagThreshold=5, **md)
for thr in (5, 10, 20):
    case(GD, TD, offsetResetPolicy="earliest", lagThreshold=thr, ensureEvenDistributionOfPartitions="true")
case(GD, TD, offsetResetPolicy="earliest", lagThreshold=100)
case(GE, None, offsetResetPolicy="earliest", partitionLimitation="0")  # ignored without topic
case(GE, None, offsetResetPolicy="latest", lagThreshold=1)
case(GE, None, limitToPartitionsWithLag="true")                       # refused by both
# GN never committed: without a topic KEDA counts every topic of the cluster (latest: 1
# per partition, so the metric is the cluster's partition count, whatever they hold)
case(GN, None, offsetResetPolicy="latest", lagThreshold=1)
case(GP, TD, polls=[None, (GP, TD, 1, 10)], offsetResetPolicy="earliest", lagThreshold=5,
     excludePersistentLag="true")
case(GP, TD, polls=[None, None], offsetResetPolicy="earliest", lagThreshold=5,
     excludePersistentLag="true", activationLagThreshold=30)

def scaledobject(path, group, md):
    with open(path, "w") as f:
        f.write("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: genq-worker\n"
                "spec:\n  scaleTargetRef:\n    name: genq-worker\n  triggers:\n    - type: kafka\n"
                f"      metadata:\n        bootstrapServers: {B}\n        consumerGroup: {group}\n"
                '        version: "3.9.0"\n')
        for k, v in md.items():
            f.write(f'        {k}: "{v}"\n')

def genq(so, state=None):
    args = [GENQ, "lag", "-f", so, "--format", "json"] + (["--lag-state", state] if state else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"}
    d = json.loads(p.stdout)
    return {"metric": d["metric"], "active": d["active"]}

def same(g, k):
    if "error" in g or "error" in k:
        return "error" in g and "error" in k
    return g == k

rows, bad = [], 0
for i, (group, md, polls) in enumerate(cases):
    so = f"{TMP}/so{i}.yaml"
    scaledobject(so, group, md)
    steps = polls or [None]
    keda = subprocess.Popen([KEDA, "scale", "-f", so, "-polls", str(len(steps))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    state = f"{TMP}/state{i}" if polls else None
    for n, step in enumerate(steps):
        if step:
            commit(*step)
        if n:
            keda.stdin.write("\n")
            keda.stdin.flush()
        k = json.loads(keda.stdout.readline())
        g = genq(so, state)
        ok = same(g, k)
        bad += not ok
        desc = ",".join(f"{a}={b}" for a, b in md.items() if a != "topic")
        where = md.get("topic", "(all topics)").split(".")[0]
        rows.append(f"{'ok  ' if ok else 'DIFF'} {i + 1:2}{'.' + str(n + 1) if polls else '  '} "
                    f"{where:<6} {group.split('-')[1]}  {desc:<75} keda {json.dumps(k):<32} genq {json.dumps(g)}")
    keda.stdin.close()
    keda.wait(timeout=60)

# The shipped ScaledObject, as it is, against the stack's SASL_SSL listener: only the
# address, topic and group change (flags for genq, metadata for KEDA); the credentials
# are the TriggerAuthentication's (GENQ_KAFKA_* for genq).
sasl = os.environ.get("GENQ_STACK_SASL_BROKERS")
if sasl:
    env = dict(os.environ, GENQ_KAFKA_SASL_USERNAME=os.environ["GENQ_STACK_SASL_USERNAME"],
               GENQ_KAFKA_SASL_PASSWORD=os.environ["GENQ_STACK_SASL_PASSWORD"],
               GENQ_KAFKA_SSL_CA_LOCATION=os.environ["GENQ_STACK_KAFKA_CA"])
    p = subprocess.run([GENQ, "lag", "-f", "k8s/base/keda-scaledobject.yaml", "--brokers", sasl,
                        "-t", TA, "-g", GA, "--format", "json"], capture_output=True, text=True,
                       env=env, timeout=120)
    g = ({"metric": json.loads(p.stdout)["metric"], "active": json.loads(p.stdout)["active"]}
         if p.returncode == 0 else {"error": p.stderr[-300:]})
    k = json.loads(run(KEDA, "scale", "-f", "k8s/base/keda-scaledobject.yaml",
                       "-auth", "username=" + env["GENQ_KAFKA_SASL_USERNAME"],
                       "-auth", "password=" + env["GENQ_KAFKA_SASL_PASSWORD"],
                       "-auth-file", "ca=" + env["GENQ_KAFKA_SSL_CA_LOCATION"],
                       f"bootstrapServers={sasl}", f"topic={TA}", f"consumerGroup={GA}"))
    ok = same(g, k) and "error" not in g
    bad += not ok
    rows.append(f"{'ok  ' if ok else 'DIFF'} k8s/base/keda-scaledobject.yaml over SASL_SSL"
                f"{'':<46} keda {json.dumps(k):<32} genq {json.dumps(g)}")

print("\n".join(rows), file=sys.stderr)
print(f"{len(rows) - bad} of {len(rows)} agree", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
note "genq lag -f agrees with KEDA's own scaler in every case"
