"""Normalised transcripts of a ComfyUI server's behaviour, comparable across servers.

A transcript is a list of JSON-able entries, one per observable event: each WebSocket message
(type and fields, in order), each POST /prompt answer, /history entries and /queue snapshots.
What legitimately differs between two servers or two runs is replaced by placeholders:
prompt ids (P1, P2, ... in order of appearance), the client id (C), timestamps (T), the
priority number (N), tensor reprs, tracebacks, temp-file letters, binary frame lengths.
What ComfyUI produces in arbitrary order (it comes from Python sets: `executed`,
`current_outputs`) is sorted. Runs of sampler steps are folded into one entry
{"steps": node, "count": n} so that an interrupt landing one step earlier or later does not
matter where the caller says so (count None).
"""

import json
import re

TEMP_NAME = re.compile(r"^(ComfyUI_temp_)[a-z]{5}(_\d{5}_\.png)$")


class Normaliser:
    def __init__(self, client_id):
        self.client_id = client_id
        self.ids = {}

    def pid(self, value):
        if value is None:
            return None
        if value not in self.ids:
            self.ids[value] = "P%d" % (len(self.ids) + 1)
        return self.ids[value]

    def value(self, key, v):
        if key == "prompt_id":
            return self.pid(v)
        if key in ("sid", "client_id") and v == self.client_id:
            return "C"
        if key == "timestamp":
            assert isinstance(v, int), ("timestamp not an integer", v)
            return "T"
        if key == "traceback":
            assert isinstance(v, list), ("traceback not a list", v)
            return "<traceback: %s>" % ("strings" if all(isinstance(x, str) for x in v) else "?")
        if key in ("executed", "current_outputs"):
            return sorted(v)
        if key == "current_inputs" and isinstance(v, dict):
            return {k: [self.tensor(x) for x in vals] for k, vals in v.items()}
        if key == "filename" and isinstance(v, str):
            return TEMP_NAME.sub(r"\1?????\2", v)
        return self.walk(v)

    @staticmethod
    def tensor(x):
        if isinstance(x, str) and (x.startswith("tensor(") or x.startswith("[[tensor(")
                                   or x.startswith("{'samples': tensor(") or x.startswith("<comfy.")):
            return "<%s>" % x.split("(")[0].split(" ")[0].strip("<[{'")
        return x

    def walk(self, v):
        if isinstance(v, dict):
            return {k: self.value(k, x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.walk(x) for x in v]
        return v

    def message(self, m):
        if m.kind.startswith("binary"):
            d = dict(m.data)
            d.pop("length", None)
            if "metadata" in d:
                d["metadata"] = self.walk(d["metadata"])
            return {"binary": d}
        return {"ws": m.kind, "data": self.walk(m.data)}

    def history(self, h):
        h = dict(h)
        prompt = list(h["prompt"])
        assert isinstance(prompt[0], (int, float)), prompt[0]
        prompt[0] = "N"
        prompt[1] = self.pid(prompt[1])
        prompt[3] = self.walk(prompt[3])
        prompt[4] = sorted(prompt[4])
        h["prompt"] = prompt
        h["outputs"] = self.walk(h["outputs"])
        h["status"] = self.walk(h["status"])
        return {"history": h}

    def queue(self, q):
        out = {}
        for key in ("queue_running", "queue_pending"):
            items = []
            for item in q[key]:
                item = list(item)
                assert isinstance(item[0], (int, float)), item[0]
                item[0] = "N"
                item[1] = self.pid(item[1])
                item[3] = self.walk(item[3])
                item[4] = sorted(item[4])
                items.append(item)
            out[key] = items
        return {"queue": out}

    def post(self, status, body):
        if isinstance(body, dict):
            body = dict(body)
            if "prompt_id" in body:
                body["prompt_id"] = self.pid(body["prompt_id"])
            if "number" in body:
                assert isinstance(body["number"], (int, float))
                body["number"] = "N"
        return {"post": status, "body": body}


def is_step(entry, node=None):
    """A message that belongs to one sampler step (progress, its progress_state, a preview)."""
    if "binary" in entry:
        return True
    if entry.get("ws") == "progress":
        return True
    if entry.get("ws") == "progress_state":
        nodes = entry["data"]["nodes"]
        return any(n["state"] == "running" and n["value"] not in (0, 0.0) for n in nodes.values())
    return False


def fold_steps(entries, exact=True):
    """Folds each run of sampler-step messages into {"steps": [pattern], "count": n}: the pattern
    is the message kinds of one step, n the number of steps (None when not exact)."""
    out = []
    i = 0
    while i < len(entries):
        if not is_step(entries[i]):
            out.append(entries[i])
            i += 1
            continue
        j = i
        while j < len(entries) and is_step(entries[j]):
            j += 1
        run = entries[i:j]
        kinds = [("binary:%s" % e["binary"].get("event")) if "binary" in e else e["ws"] for e in run]
        n = kinds.count("progress")
        per = kinds[:len(kinds) // n] if n and len(kinds) % n == 0 else kinds
        last = [e for e in run if e.get("ws") == "progress"]
        out.append({"steps": per, "count": n if exact else None,
                    "last_progress": last[-1]["data"] if last and exact else None})
        i = j
    return out


def dumps(entries):
    return [json.dumps(e, sort_keys=True) for e in entries]
