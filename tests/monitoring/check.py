#!/usr/bin/python3
"""Checks genq's Grafana dashboards and PrometheusRule offline (and their SQL against a
migrated database when one is given):

  dashboards  valid JSON; unique uid, panel ids and refIds; every panel and target on the
              dashboard's data source variable; every PromQL expression (Grafana's variables
              substituted) parses with Prometheus's own parser (promtool) and selects only metrics genq
              exports (read from consumers/worker/metrics.c) or the KEDA and kube-state-metrics
              names listed in external-metrics.txt (KEDA's checked against KEDA's source);
              with --database-url, every SQL query (Grafana's macros expanded) runs against
              the schema in a read-only transaction;
  rules       the PrometheusRule's groups pass `promtool check rules`, every expression the
              same name check, and `promtool test rules` runs the alerts' unit tests.

    check.py --promtool P --promql-python PY --keda-src F [--database-url URL]
             [--dashboard FILE]... [--rule FILE] [--rules-test FILE]
Prints one line per finding; exit status 1 when anything failed.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

failures = []


def fail(what, why):
    failures.append(f"{what}: {why}")
    print(f"FAIL {what}: {why}")


def genq_metrics(source):
    """The metric names the worker exports, from its m_head() calls (histograms with their series)."""
    text = open(source).read()
    names = set()
    for name, kind in re.findall(r'm_head\(&b,\s*"(genq_[a-z0-9_]+)",\s*"(\w+)"', text):
        names.add(name)
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    # The three histograms are written from one array of names.
    for name in re.findall(r'"(genq_[a-z0-9_]+_seconds)"', text):
        names.update({name + "_bucket", name + "_sum", name + "_count"})
    if not names:
        raise SystemExit(f"no metric names found in {source}")
    return names


def external_metrics(path, keda_src):
    """KEDA's and kube-state-metrics' names the dashboards and alerts may use. KEDA's are held
    to KEDA's own source (namespace keda, Subsystem + Name)."""
    names = set()
    keda = open(keda_src).read() if keda_src else ""
    found = {f"keda_{s}_{n}" for s, n in re.findall(r'Subsystem:\s*"(\w+)",\s*Name:\s*"(\w+)"', keda)}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("keda_") and keda and line not in found:
            fail("external-metrics.txt", f"{line} is not a metric of KEDA's ({keda_src})")
        names.add(line)
    return names


# Grafana's variables and interval macros, replaced by values a query may hold.
PROM_VARS = [
    (r"\$__rate_interval|\$\{__rate_interval\}", "5m"),
    (r"\$__interval|\$\{__interval\}", "1m"),
    (r"\$__range|\$\{__range\}", "6h"),
    (r"\$\{?namespace\}?", "genq"),
    (r"\$\{?model(:\w+)?\}?", ".*"),
    (r"\$\{?pod\}?", "genq-worker-0"),
]


def prom_expand(expr):
    for pat, val in PROM_VARS:
        expr = re.sub(pat, val, expr)
    return expr


def sql_expand(sql):
    """Grafana's PostgreSQL macros and this dashboard's variables, as Grafana expands them."""
    t0, t1 = "'2000-01-01T00:00:00Z'::timestamptz", "'2100-01-01T00:00:00Z'::timestamptz"
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def group(m, alias):
        col, iv = m.group(1).strip(), m.group(2).strip().strip("'")
        secs = int(iv[:-1]) * units[iv[-1]]
        g = f"floor(extract(epoch from {col})/{secs})*{secs}"
        return g + (' AS "time"' if alias else "")

    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*([^)]+)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^,]+),\s*([^)]+)\)", lambda m: group(m, False), sql)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1)} BETWEEN {t0} AND {t1}", sql)
    sql = sql.replace("$__timeFrom()", t0).replace("$__timeTo()", t1)
    sql = re.sub(r"\$\{?model\}?", "'sd15.safetensors','sdxl.safetensors'", sql)
    sql = re.sub(r"\$\{?tenant\}?", "'demo','genq-cli'", sql)
    if "$" in re.sub(r"'[^']*'", "", sql):
        raise ValueError("a variable or macro the check does not know: " + sql)
    return sql


def check_dashboard(path, queries, sqls):
    what = os.path.relpath(path, ROOT) if path.startswith(ROOT) else path
    try:
        d = json.load(open(path))
    except (OSError, ValueError) as e:
        fail(what, f"not valid JSON: {e}")
        return
    for k in ("uid", "title", "panels", "templating", "schemaVersion"):
        if k not in d:
            fail(what, f"no {k}")
            return
    ds_vars = {v["name"]: v["query"] for v in d["templating"].get("list", []) if v.get("type") == "datasource"}
    if not ds_vars:
        fail(what, "no data source variable")
    ids = set()
    panels = []
    for p in d["panels"]:
        panels.append(p)
        panels.extend(p.get("panels", []))
    for v in d["templating"].get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query")
            if v["datasource"]["type"] == "prometheus":
                m = re.match(r"label_values\((.*),\s*\w+\)$", q)
                queries.append((f"{what} variable {v['name']}", prom_expand(m.group(1) if m else q)))
            else:
                sqls.append((f"{what} variable {v['name']}", q))
    for p in panels:
        pid = p.get("id")
        name = f"{what} panel {pid} ({p.get('title')})"
        if pid in ids:
            fail(name, "duplicate panel id")
        ids.add(pid)
        if not isinstance(p.get("gridPos"), dict):
            fail(name, "no gridPos")
        if p.get("type") == "row":
            continue
        ds = p.get("datasource") or {}
        var = str(ds.get("uid", "")).strip("${}")
        if var not in ds_vars:
            fail(name, f"data source {ds} is not one of the dashboard's variables {sorted(ds_vars)}")
            continue
        refs = set()
        for t in p.get("targets", []):
            if t.get("refId") in refs:
                fail(name, f"duplicate refId {t.get('refId')}")
            refs.add(t.get("refId"))
            if (t.get("datasource") or ds) != ds:
                fail(name, "a target on another data source than its panel")
            if ds.get("type") == "prometheus":
                if not t.get("expr"):
                    fail(name, "a Prometheus target without expr")
                else:
                    queries.append((f"{name} {t.get('refId')}", prom_expand(t["expr"])))
            else:
                if not t.get("rawSql"):
                    fail(name, "an SQL target without rawSql")
                else:
                    sqls.append((f"{name} {t.get('refId')}", t["rawSql"]))
        if not p.get("targets"):
            fail(name, "no query")


def check_names(python, promtool, queries, known):
    if not queries:
        return
    out = subprocess.run([python, os.path.join(HERE, "promql-names"), "--promtool", promtool], input=json.dumps([{"id": i, "expr": e} for i, e in queries]),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"promql-names failed: {out.stderr}")
    for a in json.loads(out.stdout):
        if a["error"]:
            fail(a["id"], f"does not parse as PromQL: {a['error']}")
            continue
        for m in a["metrics"]:
            if not m:
                fail(a["id"], "a selector without a metric name")
            elif m not in known:
                fail(a["id"], f"{m} is not a metric genq exports (nor a listed KEDA or kube-state-metrics one)")


def check_sql(database_url, sqls):
    for what, raw in sqls:
        try:
            sql = sql_expand(raw)
        except ValueError as e:
            fail(what, str(e))
            continue
        script = ("BEGIN READ ONLY;\nSET LOCAL statement_timeout = '20s';\n"
                  f"{sql.rstrip().rstrip(';')};\nROLLBACK;\n")
        r = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", database_url],
                           input=script, capture_output=True, text=True)
        if r.returncode != 0:
            fail(what, "SQL does not run against the schema: " + r.stderr.strip().replace("\n", " | "))


def check_rules(promtool, rule_path, test_path, queries):
    what = os.path.relpath(rule_path, ROOT) if rule_path.startswith(ROOT) else rule_path
    try:
        obj = yaml.safe_load(open(rule_path))
    except (OSError, yaml.YAMLError) as e:
        fail(what, f"not valid YAML: {e}")
        return
    groups = (obj or {}).get("spec", {}).get("groups")
    if not groups:
        fail(what, "no spec.groups")
        return
    for g in groups:
        for r in g.get("rules", []):
            queries.append((f"{what} {r.get('alert') or r.get('record')}", str(r.get("expr", ""))))
    tmp = tempfile.mkdtemp(prefix="genq-rules.")
    try:
        rules = os.path.join(tmp, "genq-rules.yaml")
        with open(rules, "w") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
        if r.returncode != 0:
            fail(what, "promtool check rules: " + (r.stdout + r.stderr).strip().replace("\n", " | "))
        if test_path:
            shutil.copy(test_path, os.path.join(tmp, "test.yaml"))
            r = subprocess.run([promtool, "test", "rules", "test.yaml"], cwd=tmp, capture_output=True, text=True)
            if r.returncode != 0:
                fail(what, "promtool test rules: " + (r.stdout + r.stderr).strip().replace("\n", " | ")[-1500:])
            else:
                print(f"ok   {what}: promtool test rules ({os.path.basename(test_path)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--promql-python", required=True, help="a Python with promql_parser")
    ap.add_argument("--keda-src")
    ap.add_argument("--metrics-source", default=os.path.join(ROOT, "consumers/worker/metrics.c"))
    ap.add_argument("--external", default=os.path.join(HERE, "external-metrics.txt"))
    ap.add_argument("--database-url")
    ap.add_argument("--dashboard", action="append", default=[])
    ap.add_argument("--rule")
    ap.add_argument("--rules-test")
    a = ap.parse_args()
    known = genq_metrics(a.metrics_source) | external_metrics(a.external, a.keda_src)
    queries, sqls = [], []
    for d in a.dashboard:
        check_dashboard(d, queries, sqls)
    if a.rule:
        check_rules(a.promtool, a.rule, a.rules_test, queries)
    check_names(a.promql_python, a.promtool, queries, known)
    if a.database_url:
        check_sql(a.database_url, sqls)
    print(f"{len(queries)} PromQL expressions, {len(sqls)} SQL queries"
          f"{'' if a.database_url else ' (SQL not run: no --database-url)'}, {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
