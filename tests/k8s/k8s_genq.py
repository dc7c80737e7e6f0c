"""tests/k8s/check.py: the manifests held to genq's own reading of the worker's
configuration (`genq worker --dump-config` on the container's rendered environment)."""
import json
import os
import re
import subprocess
import types

from k8s_common import obj_name

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


def pod_env(container, objs):
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


def log_message(line):
    """A genq log line, JSON (GENQ_LOG_FORMAT=json) or text, as "genq <component>: <msg>"."""
    try:
        d = json.loads(line)
        return f"genq {d['component']}: {d['msg']}"
    except (ValueError, KeyError, TypeError):
        m = re.match(r"\S+ genq\[(\w+)\] \w+: (.*)", line)
        return f"genq {m[1]}: {m[2]}" if m else line


def genq_config(genq, env):
    """genq's effective worker configuration for `env`: ({key: value}, {kafka prop: value})."""
    clean = {k: v for k, v in env.items() if k.startswith("GENQ_")}
    clean["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    r = subprocess.run([genq, "worker", "--dump-config"], env=clean, capture_output=True, text=True)
    if r.returncode != 0:
        raise ValueError("; ".join(log_message(l) for l in r.stderr.strip().splitlines())
                         or f"genq worker --dump-config exited {r.returncode}")
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
    """The manifests against the worker's configuration as genq reads it."""
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
    env, problems = pod_env(genq_c, objs)
    for p in problems:
        rep.fail(what, p)
    try:
        cfg, props = genq_config(genq, env)
    except ValueError as e:
        rep.fail(what, f"genq refuses the container's configuration: {e}")
        return
    w = types.SimpleNamespace(objs=objs, dep=dep, so=so, pod=pod, labels=labels, genq_c=genq_c,
                              comfy_c=comfy_c, what=what, env=env, cfg=cfg, props=props,
                              http_port=None)
    check_scaledobject(rep, w)
    check_shutdown(rep, w)
    check_http(rep, w)
    check_comfyui(rep, w)
    check_volumes(rep, w)
    check_comfyui_copies(rep, w)
    check_selectors(rep, w)
    check_inline(rep, w)
    for rule_obj in (o for o in objs if o.get("kind") == "PrometheusRule"):
        check_rules(rep, rule_obj, metrics_names)


def worker_lanes(cfg):
    """The request topics the worker consumes: GENQ_LANES, or requests_topic alone."""
    lanes = cfg.get("lanes", "")
    if lanes in ("", "(null)"):
        return [cfg["requests_topic"]]
    return lanes.split(",")


def formula_terms(formula):
    """The names a formula sums ('high + normal + low + 1' -> ['high', 'normal', 'low']),
    or None when it is not a plain sum of names and numbers."""
    terms = [t.strip() for t in str(formula).split("+")]
    if not all(re.fullmatch(r"[A-Za-z_]\w*|\d+(\.\d+)?", t) for t in terms):
        return None
    return [t for t in terms if not t[0].isdigit()]


def check_inline(rep, w):
    """Requests' own workflows: a deployment takes the safe side (docs/operations.md)."""
    mode = w.cfg.get("inline_workflows")
    if mode not in ("off", "allowlist"):
        rep.fail(w.what, f"GENQ_INLINE_WORKFLOWS is {mode or 'unset'}: whoever may write to the "
                         "requests topic could run any ComfyUI node, custom nodes included; "
                         "set off or allowlist")


def check_scaledobject(rep, w):
    """The ScaledObject against the worker: one kafka trigger per lane (GENQ_LANES, or the
    requests topic), each with the worker's brokers, group, offset policy and security;
    several triggers summed by a scalingModifiers formula; no more replicas than partitions."""
    dep, so, cfg, props = w.dep, w.so, w.cfg, w.props
    sw = obj_name(so)
    spec = so["spec"]
    target = spec.get("scaleTargetRef", {})
    if target.get("kind", "Deployment") != "Deployment" or target.get("name") != dep["metadata"]["name"]:
        rep.fail(sw, f"scaleTargetRef {target} is not the worker Deployment {dep['metadata']['name']}")
    kafka = [t for t in spec.get("triggers", []) if t.get("type") in ("kafka", "apache-kafka")]
    if not kafka:
        rep.fail(sw, "expected a kafka trigger, found none")
        return
    lanes = worker_lanes(cfg)
    topics = []
    for i, trig in enumerate(kafka):
        label = sw if len(kafka) == 1 else f"{sw} trigger {trig.get('name') or i}"
        topics.append(check_trigger(rep, w, label, trig, lanes))
    if len(lanes) > 1:
        for lane in lanes:
            if lane not in topics:
                rep.fail(sw, f"lane {lane!r} (GENQ_LANES) has no kafka trigger: its backlog "
                             "would never scale the workers")
    if len(kafka) > 1:
        check_lane_formula(rep, sw, spec, kafka)
    parts = int(cfg["partitions"])
    max_r = spec.get("maxReplicaCount", 100)
    if max_r > parts:
        rep.fail(sw, f"maxReplicaCount {max_r} exceeds the partition count {parts} "
                     "(GENQ_PARTITIONS): the extra workers would hold GPUs and get no partition")
    if spec.get("minReplicaCount", 0) != 0:
        rep.fail(sw, f"minReplicaCount is {spec.get('minReplicaCount')}, not 0: idle GPUs are paid for")


def check_trigger(rep, w, sw, trig, lanes):
    """One kafka trigger against the worker; returns its topic."""
    env, cfg, props = w.env, w.cfg, w.props
    md = trig.get("metadata", {})

    def md_value(name):
        if name in md:
            return md[name]
        if name + "FromEnv" in md:
            return env.get(md[name + "FromEnv"], f"<unset {md[name + 'FromEnv']}>")
        return None

    for param, key in (("bootstrapServers", "brokers"), ("consumerGroup", "group")):
        if md_value(param) != cfg[key]:
            rep.fail(sw, f"{param} is {md_value(param)!r} but the worker's {key} is {cfg[key]!r}")
    topic = md_value("topic")
    if len(lanes) == 1 and topic != lanes[0]:
        rep.fail(sw, f"topic is {topic!r} but the worker's requests_topic is {lanes[0]!r}")
    elif len(lanes) > 1 and topic not in lanes:
        rep.fail(sw, f"topic is {topic!r}, none of the worker's lanes "
                     f"(GENQ_LANES={','.join(lanes)})")
    reset = props.get("auto.offset.reset", WORKER_AUTO_OFFSET_RESET)
    if md.get("offsetResetPolicy", "latest") != reset:
        rep.fail(sw, f"offsetResetPolicy is {md.get('offsetResetPolicy', 'latest')!r} but the "
                     f"worker's auto.offset.reset is {reset!r}")
    proto = props.get("security.protocol", "plaintext").upper()
    tls_on = proto in ("SSL", "SASL_SSL")
    if (md.get("tls", "disable") == "enable") != tls_on:
        rep.fail(sw, f"tls is {md.get('tls', 'disable')!r} but the worker's security.protocol is {proto}")
    sasl = md.get("sasl", "none")
    mech = props.get("sasl.mechanism", "GSSAPI") if proto.startswith("SASL") else None
    if (sasl != "none") != (mech is not None) or (mech and SASL_MECHANISMS.get(sasl) != mech):
        rep.fail(sw, f"sasl is {sasl!r} but the worker uses security.protocol {proto}"
                     + (f", sasl.mechanism {mech}" if mech else ""))
    return topic


# Why several triggers need a formula: KEDA gives the HPA one metric per trigger and the HPA
# takes the largest replica count among them (KEDA 2.21, controllers/keda/hpa.go; Kubernetes'
# HPA computeReplicasForMetrics), so lanes are not added up.
MAX_VS_SUM = ("without a formula KEDA gives the HPA one metric per trigger and the HPA takes "
              "the LARGEST of their replica counts, not their sum: a backlog spread over the "
              "lanes under-scales (three lanes 5 behind each at lagThreshold 5 get 1 worker, "
              "not 3)")


def check_lane_formula(rep, sw, spec, kafka):
    """Several kafka triggers: advanced.scalingModifiers sums every one of them."""
    names = [t.get("name") for t in kafka]
    want = " + ".join(n or "?" for n in names)
    sm = (spec.get("advanced") or {}).get("scalingModifiers") or {}
    if not sm.get("formula"):
        rep.fail(sw, f"{len(kafka)} kafka triggers but no advanced.scalingModifiers.formula: "
                     f"{MAX_VS_SUM}; sum them: formula '{want}' (k8s/components/priority-lanes)")
        return
    if not all(names):
        rep.fail(sw, "every kafka trigger needs a name for the scalingModifiers formula to "
                     "sum it (KEDA leaves an unnamed trigger out of the formula)")
        return
    terms = formula_terms(sm["formula"])
    if terms is None:
        rep.fail(sw, f"scalingModifiers.formula {sm['formula']!r} is not a sum of the "
                     f"triggers: sum them, '{want}'")
        return
    missing = [n for n in names if n not in terms]
    if missing:
        rep.fail(sw, f"scalingModifiers.formula {sm['formula']!r} leaves out trigger(s) "
                     f"{', '.join(missing)}: a lane left out of the formula never scales the "
                     f"workers; sum them all, '{want}'")
    unknown = [t for t in terms if t not in names]
    if unknown:
        rep.fail(sw, f"scalingModifiers.formula names {', '.join(unknown)}, which is no "
                     "kafka trigger's name (KEDA refuses it)")
    if sm.get("metricType", "AverageValue") != "AverageValue":
        rep.fail(sw, f"scalingModifiers.metricType is {sm['metricType']!r}: AverageValue "
                     "divides the summed lag by target to get replicas")
    thresholds = {t.get("metadata", {}).get("lagThreshold", "10") for t in kafka}
    if len(thresholds) == 1:
        lt = thresholds.pop()
        try:
            same = float(sm.get("target", "nan")) == float(lt)
        except ValueError:
            same = False
        if not same:
            rep.fail(sw, f"scalingModifiers.target is {sm.get('target')!r} but the triggers' "
                         f"lagThreshold is {lt!r}: the summed lag would be divided by another "
                         "number of requests per worker than one lane's")


def check_shutdown(rep, w):
    """Shutdown: the running render finishes before the kubelet kills the pod."""
    objs, pod, genq_c, what, cfg = w.objs, w.pod, w.genq_c, w.what, w.cfg
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


def check_http(rep, w):
    """The health endpoint and the probes on it."""
    genq_c, what, cfg = w.genq_c, w.what, w.cfg
    listen = cfg["http_listen"]
    m = re.fullmatch(r"(?:\[.*\]|[^:]*):(\d+)", listen or "")
    if not m:
        rep.fail(what, f"GENQ_HTTP_LISTEN is {listen!r}: the probes and metrics need host:port")
        return
    if listen.split(":")[0] in ("127.0.0.1", "localhost", "[::1]"):
        rep.fail(what, f"GENQ_HTTP_LISTEN {listen} is loopback: the kubelet cannot probe it")
    http_port = w.http_port = int(m.group(1))
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


def check_comfyui(rep, w):
    """The ComfyUI sidecar: where genq expects it, with a GPU and its directories mounted."""
    pod, comfy_c, what, cfg = w.pod, w.comfy_c, w.what, w.cfg
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


def check_volumes(rep, w):
    """What genq writes and reads is on the volumes the pod mounts."""
    objs, pod, genq_c, comfy_c = w.objs, w.pod, w.genq_c, w.comfy_c
    what, cfg, props = w.what, w.cfg, w.props
    wf_dir = cfg["workflows_dir"]
    # (non-root and the rest: check_pod_security)
    if not genq_c.get("securityContext", {}).get("readOnlyRootFilesystem"):
        rep.fail(what, "genq must run with readOnlyRootFilesystem")
    if str(cfg.get("output_url") or "").startswith("s3://"):
        # Outputs go to a bucket: no volume for them; the Secret's files must be mounted.
        creds = cfg.get("s3_credentials_dir")
        if creds and not under_mount(genq_c, creds, writable=False):
            rep.fail(what, f"GENQ_S3_CREDENTIALS_DIR {creds} is not on a volume")
    elif not under_mount(genq_c, cfg["output_dir"], writable=True):
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


def volume_at(container, path):
    """(volume name, path inside the volume) of the mount that holds path, or None."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[0]):
                best = (mp, m)
    if best is None:
        return None
    mp, m = best
    inner = "/".join(p for p in (m.get("subPath", "").strip("/"), path[len(mp):].strip("/")) if p)
    return m["name"], inner


def check_comfyui_copies(rep, w):
    """genq deletes ComfyUI's copies of recorded outputs: it must see ComfyUI's own output and
    temp directories (the same volume and place), writable, or the scratch volume fills up."""
    genq_c, comfy_c, what, cfg = w.genq_c, w.comfy_c, w.what, w.cfg
    cargs = comfy_c.get("args", [])
    for key, flag, suffix in (("comfyui_output_dir", "--output-directory", ""),
                              ("comfyui_temp_dir", "--temp-directory", "/temp")):
        env_name = "GENQ_" + key.upper()
        mine = cfg.get(key, "")
        if not mine or mine == "(null)":
            rep.fail(what, f"{env_name} is not set: ComfyUI's copies of the outputs would fill its "
                           "volume until the pod is evicted")
            continue
        if flag not in cargs:
            rep.fail(what, f"ComfyUI has no {flag}: genq cannot know where its files go")
            continue
        theirs = cargs[cargs.index(flag) + 1].rstrip("/") + suffix
        a, b = volume_at(genq_c, mine), volume_at(comfy_c, theirs)
        if a is None or b is None or a != b:
            rep.fail(what, f"{env_name} {mine} (genq: {a}) is not ComfyUI's {theirs} (ComfyUI: {b})")
        elif not under_mount(genq_c, mine, writable=True):
            rep.fail(what, f"{env_name} {mine} is mounted read-only in genq: it cannot delete")


def check_selectors(rep, w):
    """The Service, ServiceMonitor, PDB and NetworkPolicy select the workers and their port."""
    objs, labels, genq_c, what, http_port = w.objs, w.labels, w.genq_c, w.what, w.http_port
    if http_port is None:
        return
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

