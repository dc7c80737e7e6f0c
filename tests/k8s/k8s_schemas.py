"""tests/k8s/check.py: objects against their upstream schemas, pods against the
Pod Security Standards' restricted profile."""
import copy

import jsonschema
import kubernetes_validate
import yaml

from k8s_common import obj_name

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

