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
import copy
import json
import os
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

# The worker sets auto.offset.reset=earliest unless -X/GENQ_KAFKA_AUTO_OFFSET_RESET says
# otherwise (consumers/worker/intake.c); KEDA's offsetResetPolicy must mirror it.
WORKER_AUTO_OFFSET_RESET = "earliest"
# Seconds the worker needs after its grace period to record, commit and leave the group.
SHUTDOWN_MARGIN_S = 30
# KEDA's sasl values and the librdkafka sasl.mechanism each stands for.
SASL_MECHANISMS = {
    "plaintext": "PLAIN",
    "scram_sha256": "SCRAM-SHA-256",
    "scram_sha512": "SCRAM-SHA-512",
    "oauthbearer": "OAUTHBEARER",
    "gssapi": "GSSAPI",
}


class Report:
    def __init__(self, where):
        self.where = where
        self.errors = []

    def fail(self, what, msg):
        self.errors.append(f"{self.where}: {what}: {msg}")


def obj_name(o):
    return f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"


def render(kustomize, directory):
    r = subprocess.run([kustomize, "build", directory], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kustomize build {directory} failed:\n{r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


# ---------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------

def strictify(schema):
    """An openAPIV3Schema where unknown fields are errors, as kubectl --validate=strict
    reports them (the API server would silently prune them, which hides typos)."""
    s = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node
                    and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(s)
    # metadata is typed only as "object" in CRDs: check it as ObjectMeta's basics.
    s.setdefault("properties", {})["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                     "maxLength": 253},
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    return s


def load_crds(paths):
    """{(apiVersion, kind): strict schema} for every served version of every CRD file."""
    crds = {}
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for v in spec["versions"]:
                    if v.get("served"):
                        key = (f"{spec['group']}/{v['name']}", spec["names"]["kind"])
                        crds[key] = strictify(v["schema"]["openAPIV3Schema"])
    return crds


def check_schemas(rep, objs, crds, k8s_versions):
    for o in objs:
        key = (o.get("apiVersion"), o.get("kind"))
        if key in crds:
            v = jsonschema.Draft7Validator(crds[key])
            for e in sorted(v.iter_errors(o), key=lambda e: list(e.absolute_path)):
                path = "/".join(str(p) for p in e.absolute_path)
                rep.fail(obj_name(o), f"schema ({key[0]}): {path}: {e.message}")
            continue
        if "." in (o.get("apiVersion") or "").split("/")[0]:
            group = o["apiVersion"].split("/")[0]
            if not group.endswith(".k8s.io"):
                rep.fail(obj_name(o), f"no schema known for {key[0]} {key[1]}")
                continue
        for ver in k8s_versions:
            try:
                kubernetes_validate.validate(o, ver, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                rep.fail(obj_name(o), f"schema (Kubernetes {ver}): {path}: {e.message}")
            except kubernetes_validate.InvalidSchemaError as e:
                rep.fail(obj_name(o), f"no Kubernetes {ver} schema: {e}")


# ---------------------------------------------------------------------------------------
# Pod Security Standards, "restricted" profile (the overlays' namespaces enforce it)
# ---------------------------------------------------------------------------------------

PSS_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                    "persistentVolumeClaim", "projected", "secret"}


def check_pod_security(rep, objs):
    for o in objs:
        tpl = (o.get("spec") or {}).get("template") if o.get("kind") in (
            "Deployment", "StatefulSet", "DaemonSet", "Job") else None
        if not tpl:
            continue
        pod, what = tpl["spec"], obj_name(o)
        psc = pod.get("securityContext", {})
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(k):
                rep.fail(what, f"restricted pods may not use {k}")
        for v in pod.get("volumes", []):
            kinds = set(v) - {"name"}
            if not kinds <= PSS_VOLUME_TYPES:
                rep.fail(what, f"volume {v['name']}: {sorted(kinds)} not allowed in restricted pods")
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            sc = c.get("securityContext", {})
            name = f"{what} container {c['name']}"
            if sc.get("privileged"):
                rep.fail(name, "privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                rep.fail(name, "must set allowPrivilegeEscalation: false")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                rep.fail(name, "must drop ALL capabilities")
            if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
                rep.fail(name, f"adds capabilities {caps['add']}")
            if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
                rep.fail(name, "must run with runAsNonRoot")
            if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                rep.fail(name, "runAsUser 0 (root)")
            sp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            if sp.get("type") not in ("RuntimeDefault", "Localhost"):
                rep.fail(name, "needs seccompProfile RuntimeDefault")
            if any(p.get("hostPort") for p in c.get("ports", [])):
                rep.fail(name, "hostPort")


# ---------------------------------------------------------------------------------------
# KEDA's Kafka trigger
# ---------------------------------------------------------------------------------------

def check_keda(rep, objs, scaler_params):
    auths = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "TriggerAuthentication"}
    for so in (o for o in objs if o.get("kind") == "ScaledObject"):
        for i, trig in enumerate(so["spec"].get("triggers", [])):
            what = f"{obj_name(so)} trigger {i} ({trig.get('type')})"
            params = scaler_params.get(trig.get("type"))
            if params is None:
                rep.fail(what, "unknown scaler type")
                continue
            md = trig.get("metadata") or {}
            given = set()
            for key, value in md.items():
                name, from_env = (key[:-7], True) if key.endswith("FromEnv") else (key, False)
                p = params.get(name)
                if p is None:
                    rep.fail(what, f"unknown parameter {key!r} (known: {', '.join(sorted(params))})")
                    continue
                if from_env and not p.get("envVariableReadable"):
                    rep.fail(what, f"{name} cannot be read from the environment")
                elif not from_env and not p.get("metadataVariableReadable"):
                    rep.fail(what, f"{name} belongs in a TriggerAuthentication, not in metadata")
                if not isinstance(value, str):
                    rep.fail(what, f"{key} must be a string (quote it), not {value!r}")
                elif not from_env and p.get("allowedValue") and value not in p["allowedValue"]:
                    rep.fail(what, f"{key}={value!r} is not one of {p['allowedValue']}")
                given.add(name)
            ref = trig.get("authenticationRef")
            if ref:
                if ref.get("kind", "TriggerAuthentication") != "TriggerAuthentication":
                    rep.fail(what, "only namespaced TriggerAuthentications are checked here")
                elif ref.get("name") not in auths:
                    rep.fail(what, f"authenticationRef names {ref.get('name')!r}, "
                                   "which is not among the rendered TriggerAuthentications")
                else:
                    ta = auths[ref["name"]]
                    for s in ta["spec"].get("secretTargetRef", []) + ta["spec"].get("env", []):
                        p = params.get(s.get("parameter"))
                        if p is None or not p.get("triggerAuthenticationVariableReadable"):
                            rep.fail(obj_name(ta), f"parameter {s.get('parameter')!r} is not "
                                                   f"one the {trig['type']} scaler authenticates with")
                        else:
                            given.add(s["parameter"])
            for name, p in params.items():
                if not p.get("optional") and "default" not in p and name not in given:
                    rep.fail(what, f"required parameter {name} is missing")
            for name, low in (("lagThreshold", 1), ("activationLagThreshold", 0)):
                v = md.get(name)
                if v is not None and (not re.fullmatch(r"\d+", str(v)) or int(v) < low):
                    rep.fail(what, f"{name} must be an integer >= {low}, not {v!r}")


# ---------------------------------------------------------------------------------------
# genq's own configuration against the manifests
# ---------------------------------------------------------------------------------------

def pod_env(container, objs, namespace_objs):
    """The container's environment as the kubelet would set it; Secret values are
    placeholders (the Secrets are not in the manifests)."""
    cms = {o["metadata"]["name"]: o.get("data") or {} for o in objs if o.get("kind") == "ConfigMap"}
    env, problems = {}, []
    for ef in container.get("envFrom", []):
        if "configMapRef" in ef:
            name = ef["configMapRef"]["name"]
            if name not in cms:
                problems.append(f"envFrom names ConfigMap {name!r}, which is not rendered")
            env.update({ef.get("prefix", "") + k: v for k, v in cms.get(name, {}).items()})
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "configMapKeyRef" in vf:
                env[e["name"]] = cms.get(vf["configMapKeyRef"]["name"], {}).get(
                    vf["configMapKeyRef"]["key"], "")
            elif "secretKeyRef" in vf:
                env[e["name"]] = ("postgresql://genq@postgres/genq" if e["name"].endswith("_URL")
                                  else "from-secret")
            else:
                env[e["name"]] = "from-field"
    return env, problems


def genq_config(genq, env):
    """genq's effective worker configuration for `env`: ({key: value}, {kafka prop: value})."""
    clean = {k: v for k, v in env.items() if k.startswith("GENQ_")}
    clean["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    r = subprocess.run([genq, "worker", "--dump-config"], env=clean, capture_output=True, text=True)
    if r.returncode != 0:
        raise ValueError(r.stderr.strip() or f"genq worker --dump-config exited {r.returncode}")
    cfg, props = {}, {}
    for line in r.stdout.splitlines():
        if line.startswith("X "):
            k, _, v = line[2:].partition("=")
            props[k] = v
        elif "=" in line:
            k, _, v = line.partition("=")
            cfg[k] = v.split("\t#", 1)[0]
    return cfg, props


def selects(selector, labels):
    ml = (selector or {}).get("matchLabels", selector or {})
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def under_mount(container, path, writable):
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            return not (writable and m.get("readOnly"))
    return False


def check_genq(rep, objs, genq, metrics_names):
    deps = [o for o in objs if o.get("kind") == "Deployment"]
    sos = [o for o in objs if o.get("kind") == "ScaledObject"]
    if len(deps) != 1 or len(sos) != 1:
        rep.fail("layout", f"expected one Deployment and one ScaledObject, found {len(deps)} and {len(sos)}")
        return
    dep, so = deps[0], sos[0]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    genq_c = next((c for c in pod["containers"] if c["name"] == "genq"), None)
    comfy_c = next((c for c in pod.get("initContainers", []) + pod["containers"]
                    if c["name"] == "comfyui"), None)
    what = obj_name(dep)
    if genq_c is None or comfy_c is None:
        rep.fail(what, "needs a container named genq and a ComfyUI sidecar named comfyui")
        return
    env, problems = pod_env(genq_c, objs, None)
    for p in problems:
        rep.fail(what, p)
    try:
        cfg, props = genq_config(genq, env)
    except ValueError as e:
        rep.fail(what, f"genq refuses the container's configuration: {e}")
        return

    # --- the ScaledObject against the worker ---
    sw = obj_name(so)
    spec = so["spec"]
    target = spec.get("scaleTargetRef", {})
    if target.get("kind", "Deployment") != "Deployment" or target.get("name") != dep["metadata"]["name"]:
        rep.fail(sw, f"scaleTargetRef {target} is not the worker Deployment {dep['metadata']['name']}")
    kafka = [t for t in spec.get("triggers", []) if t.get("type") in ("kafka", "apache-kafka")]
    if len(kafka) != 1:
        rep.fail(sw, f"expected one kafka trigger, found {len(kafka)}")
        return
    md = kafka[0].get("metadata", {})

    def md_value(name):
        if name in md:
            return md[name]
        if name + "FromEnv" in md:
            return env.get(md[name + "FromEnv"], f"<unset {md[name + 'FromEnv']}>")
        return None

    for param, key in (("bootstrapServers", "brokers"), ("topic", "requests_topic"),
                       ("consumerGroup", "group")):
        if md_value(param) != cfg[key]:
            rep.fail(sw, f"{param} is {md_value(param)!r} but the worker's {key} is {cfg[key]!r}")
    reset = props.get("auto.offset.reset", WORKER_AUTO_OFFSET_RESET)
    if md.get("offsetResetPolicy", "latest") != reset:
        rep.fail(sw, f"offsetResetPolicy is {md.get('offsetResetPolicy', 'latest')!r} but the "
                     f"worker's auto.offset.reset is {reset!r}")
    parts = int(cfg["partitions"])
    max_r = spec.get("maxReplicaCount", 100)
    if max_r > parts:
        rep.fail(sw, f"maxReplicaCount {max_r} exceeds the partition count {parts} "
                     "(GENQ_PARTITIONS): the extra workers would hold GPUs and get no partition")
    if spec.get("minReplicaCount", 0) != 0:
        rep.fail(sw, f"minReplicaCount is {spec.get('minReplicaCount')}, not 0: idle GPUs are paid for")
    proto = props.get("security.protocol", "plaintext").upper()
    tls_on = proto in ("SSL", "SASL_SSL")
    if (md.get("tls", "disable") == "enable") != tls_on:
        rep.fail(sw, f"tls is {md.get('tls', 'disable')!r} but the worker's security.protocol is {proto}")
    sasl = md.get("sasl", "none")
    mech = props.get("sasl.mechanism", "GSSAPI") if proto.startswith("SASL") else None
    if (sasl != "none") != (mech is not None) or (mech and SASL_MECHANISMS.get(sasl) != mech):
        rep.fail(sw, f"sasl is {sasl!r} but the worker uses security.protocol {proto}"
                     + (f", sasl.mechanism {mech}" if mech else ""))

    # --- shutdown: the running render finishes before the kubelet kills the pod ---
    timeouts = [int(cfg["job_timeout"])]
    wf_dir = cfg["workflows_dir"]
    for vol_name, cm in workflow_configmaps(pod, genq_c, wf_dir, objs):
        for fname, body in (cm.get("data") or {}).items():
            try:
                t = (json.loads(body).get("_genq") or {}).get("timeout_s")
            except (ValueError, AttributeError) as e:
                rep.fail(obj_name(cm), f"{fname} is not a JSON object: {e}")
                continue
            if t is not None:
                timeouts.append(int(t))
    grace = int(cfg["grace_period"])
    if grace < max(timeouts):
        rep.fail(what, f"GENQ_GRACE_PERIOD {grace} s is shorter than the longest render "
                       f"({max(timeouts)} s, job timeout and templates): draining would interrupt it")
    tgp = pod.get("terminationGracePeriodSeconds", 30)
    if tgp < grace + SHUTDOWN_MARGIN_S:
        rep.fail(what, f"terminationGracePeriodSeconds {tgp} does not cover GENQ_GRACE_PERIOD "
                       f"{grace} s plus {SHUTDOWN_MARGIN_S} s to record and commit")

    # --- health endpoint and probes ---
    listen = cfg["http_listen"]
    m = re.fullmatch(r"(?:\[.*\]|[^:]*):(\d+)", listen or "")
    if not m:
        rep.fail(what, f"GENQ_HTTP_LISTEN is {listen!r}: the probes and metrics need host:port")
        return
    if listen.split(":")[0] in ("127.0.0.1", "localhost", "[::1]"):
        rep.fail(what, f"GENQ_HTTP_LISTEN {listen} is loopback: the kubelet cannot probe it")
    http_port = int(m.group(1))
    want = {"livenessProbe": "/healthz", "startupProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in want.items():
        pr = genq_c.get(probe)
        if probe != "startupProbe" and not pr:
            rep.fail(what, f"genq has no {probe}")
        if not pr:
            continue
        hg = pr.get("httpGet")
        if not hg or hg.get("path") != path or port_number(genq_c, hg.get("port")) != http_port:
            rep.fail(what, f"genq {probe} should GET {path} on port {http_port} "
                           f"(GENQ_HTTP_LISTEN), not {hg}")

    # --- ComfyUI sidecar ---
    curl = re.fullmatch(r"http://(127\.0\.0\.1|localhost):(\d+)/?", cfg["comfyui_url"])
    if not curl:
        rep.fail(what, f"GENQ_COMFYUI_URL {cfg['comfyui_url']} is not the sidecar on localhost")
    else:
        cport = int(curl.group(2))
        if cport not in [p["containerPort"] for p in comfy_c.get("ports", [])]:
            rep.fail(what, f"ComfyUI sidecar does not declare port {cport} (GENQ_COMFYUI_URL)")
        args = comfy_c.get("args", [])
        if "--port" in args and args[args.index("--port") + 1] != str(cport):
            rep.fail(what, f"ComfyUI listens on --port {args[args.index('--port') + 1]}, genq "
                           f"expects {cport}")
    cargs = comfy_c.get("args", [])
    for flag in ("--output-directory", "--temp-directory", "--user-directory", "--input-directory"):
        if flag in cargs and not under_mount(comfy_c, cargs[cargs.index(flag) + 1], writable=True):
            rep.fail(what, f"ComfyUI {flag} {cargs[cargs.index(flag) + 1]} is not on a writable "
                           "volume (the root filesystem may be read-only or not its user's)")
    if "--input-directory" in cargs and cargs[cargs.index("--input-directory") + 1].rstrip("/") not in [
            m["mountPath"].rstrip("/") for m in comfy_c.get("volumeMounts", [])]:
        rep.fail(what, "ComfyUI --input-directory must be a mount point: ComfyUI does not create "
                       "it, and listing it fails")
    if "--extra-model-paths-config" in cargs and not under_mount(
            comfy_c, cargs[cargs.index("--extra-model-paths-config") + 1], writable=False):
        rep.fail(what, "ComfyUI --extra-model-paths-config is not on a mounted volume")
    if comfy_c in pod.get("initContainers", []) and comfy_c.get("restartPolicy") != "Always":
        rep.fail(what, "ComfyUI as an init container must be a native sidecar (restartPolicy: Always)")
    if "nvidia.com/gpu" not in (comfy_c.get("resources", {}).get("limits") or {}):
        rep.fail(what, "ComfyUI has no nvidia.com/gpu limit")

    # --- security and volumes ---
    # (non-root and the rest: check_pod_security)
    if not genq_c.get("securityContext", {}).get("readOnlyRootFilesystem"):
        rep.fail(what, "genq must run with readOnlyRootFilesystem")
    if not under_mount(genq_c, cfg["output_dir"], writable=True):
        rep.fail(what, f"GENQ_OUTPUT_DIR {cfg['output_dir']} is not on a writable volume")
    if not under_mount(genq_c, wf_dir, writable=False):
        rep.fail(what, f"GENQ_WORKFLOWS_DIR {wf_dir} is not mounted")
    for k, v in props.items():
        if k.endswith(".location") and not under_mount(genq_c, v, writable=False):
            rep.fail(what, f"{k}={v} is not on a mounted volume")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for mnt in comfy_c.get("volumeMounts", []):
        vol = vols.get(mnt["name"], {})
        if "persistentVolumeClaim" in vol and vol["persistentVolumeClaim"]["claimName"].endswith("models") \
                and not mnt.get("readOnly"):
            rep.fail(what, "the models volume must be mounted read-only")
    for v in vols.values():
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and not any(o.get("kind") == "PersistentVolumeClaim" and o["metadata"]["name"] == claim
                             for o in objs):
            rep.fail(what, f"volume {v['name']} names PersistentVolumeClaim {claim}, not rendered")

    # --- Service, ServiceMonitor, PDB, NetworkPolicy select the workers ---
    svcs = [o for o in objs if o.get("kind") == "Service" and selects(o["spec"].get("selector"), labels)]
    if not svcs:
        rep.fail(what, "no Service selects the worker pods (the ServiceMonitor needs one)")
    svc_ports = {}
    for s in svcs:
        for p in s["spec"].get("ports", []):
            if port_number(genq_c, p.get("targetPort", p["port"])) == http_port:
                svc_ports[p.get("name")] = s
    for sm in (o for o in objs if o.get("kind") == "ServiceMonitor"):
        if not any(selects(sm["spec"].get("selector"), s["metadata"].get("labels", {})) for s in svcs):
            rep.fail(obj_name(sm), "selects no Service of the workers")
        for ep in sm["spec"].get("endpoints", []):
            if ep.get("port") not in svc_ports:
                rep.fail(obj_name(sm), f"endpoint port {ep.get('port')!r} is not the Service port "
                                       f"of the metrics listener ({sorted(filter(None, svc_ports))})")
    if not any(o.get("kind") == "PodDisruptionBudget" and selects(o["spec"].get("selector"), labels)
               for o in objs):
        rep.fail(what, "no PodDisruptionBudget covers the worker pods")
    for np in (o for o in objs if o.get("kind") == "NetworkPolicy"
               and selects(o["spec"].get("podSelector"), labels)):
        if "Ingress" in np["spec"].get("policyTypes", ["Ingress"]):
            ok = any(not rule.get("ports") or any(port_number(genq_c, p.get("port")) == http_port
                                                  for p in rule["ports"])
                     for rule in np["spec"].get("ingress", []))
            if not ok:
                rep.fail(obj_name(np), f"lets nothing reach the metrics port {http_port}")

    # --- alerts ---
    for rule_obj in (o for o in objs if o.get("kind") == "PrometheusRule"):
        check_rules(rep, rule_obj, metrics_names)


def workflow_configmaps(pod, container, wf_dir, objs):
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cms = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "ConfigMap"}
    for m in container.get("volumeMounts", []):
        if m["mountPath"].rstrip("/") == wf_dir.rstrip("/"):
            cm = (vols.get(m["name"]) or {}).get("configMap")
            if cm and cm["name"] in cms:
                yield m["name"], cms[cm["name"]]


def check_rules(rep, rule_obj, metrics_names):
    try:
        import promql_parser
    except ImportError:
        promql_parser = None
    for g in rule_obj["spec"].get("groups", []):
        for r in g.get("rules", []):
            what = f"{obj_name(rule_obj)} {r.get('alert') or r.get('record')}"
            expr = str(r.get("expr", ""))
            if promql_parser is not None:
                try:
                    promql_parser.parse(expr)
                except Exception as e:  # the parser raises plain ValueErrors
                    rep.fail(what, f"expr does not parse as PromQL: {e}")
            if metrics_names is None:
                continue
            for name in set(re.findall(r"\bgenq_[a-z0-9_]+", expr)):
                if name not in metrics_names:
                    rep.fail(what, f"{name} is not a metric the worker exports")


def metric_names(path):
    """Sample names in a Prometheus text-format scrape (histogram series included)."""
    names = set()
    with open(path) as f:
        for line in f:
            if line.startswith("# TYPE "):
                fam = line.split()[2]
                names.update({fam, fam + "_bucket", fam + "_sum", fam + "_count"})
            elif line.strip() and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, 1)[0])
    return names


# ---------------------------------------------------------------------------------------

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
