"""tests/k8s/check.py: every kafka trigger against KEDA's list of the scaler's parameters."""
import re

from k8s_common import obj_name

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

