#!/usr/bin/env python3
"""Offline checks of genq's Kubernetes manifests, without a cluster.

For each kustomization directory given, it renders the directory with kustomize and checks:

  schemas   every object against its upstream schema: Kubernetes API types (the
            kubernetes-validate package, strict: unknown fields are errors), KEDA's CRDs and
            the Prometheus operator's CRDs (openAPIV3Schema, made strict the same way);
  pods      every pod template meets the Pod Security Standards' restricted profile;
  keda      every kafka trigger against KEDA's list of the scaler's parameters (names, where
            each may be read from, allowed values) and the TriggerAuthentication it names;
  genq      the worker's configuration as genq itself reads it (`genq worker --dump-config`
            with the container's rendered environment) against the ScaledObject, the probes,
            the volumes, the grace period, the Service, the ServiceMonitor, the
            NetworkPolicy and the PodDisruptionBudget;
  alerts    every PrometheusRule expression parses as PromQL and names only metrics the
            worker exports (given with --metrics, a scrape of a real worker's /metrics).

Exit status: 0 all checks hold, 1 a check failed (each failure printed on stderr), 2 bad
usage or a missing tool.
"""
import argparse
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from k8s_common import Report  # noqa: E402
from k8s_genq import check_genq, metric_names  # noqa: E402
from k8s_keda import check_keda  # noqa: E402
from k8s_schemas import check_pod_security, check_schemas, load_crds  # noqa: E402


def render(kustomize, directory):
    r = subprocess.run([kustomize, "build", directory], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kustomize build {directory} failed:\n{r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="kustomization directories")
    ap.add_argument("--kustomize", default="kustomize")
    ap.add_argument("--genq", default="bin/genq")
    ap.add_argument("--crd", action="append", default=[], help="a CRD YAML file (repeatable)")
    ap.add_argument("--scaler-params", required=True, help="KEDA's scalers-schema.json")
    ap.add_argument("--k8s-versions", default="1.29.0,1.37.0",
                    help="Kubernetes versions to validate against (native sidecars need 1.29)")
    ap.add_argument("--metrics", help="a scrape of a worker's /metrics")
    a = ap.parse_args()

    crds = load_crds(a.crd)
    with open(a.scaler_params) as f:
        scaler_params = {s["type"]: {p["name"]: p for p in s["parameters"]}
                         for s in json.load(f)["scalers"]}
    metrics = metric_names(a.metrics) if a.metrics else None
    versions = a.k8s_versions.split(",")
    failed = False
    for d in a.dirs:
        rep = Report(d)
        try:
            objs = render(a.kustomize, d)
        except RuntimeError as e:
            print(f"FAIL {d}: {e}", file=sys.stderr)
            failed = True
            continue
        check_schemas(rep, objs, crds, versions)
        check_pod_security(rep, objs)
        check_keda(rep, objs, scaler_params)
        check_genq(rep, objs, a.genq, metrics)
        for e in rep.errors:
            print(f"FAIL {e}", file=sys.stderr)
        kinds = sorted({o["kind"] for o in objs})
        status = "FAIL" if rep.errors else "ok  "
        print(f"{status} {d}: {len(objs)} objects ({', '.join(kinds)}), "
              f"{len(rep.errors)} problem(s)")
        failed |= bool(rep.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
