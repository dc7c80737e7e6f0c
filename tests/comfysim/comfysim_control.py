"""comfysim: fault injection book and benchmark counters (the /_sim/ control API state).

Not part of ComfyUI's API; exists only so tests and benchmarks can steer the simulator.
"""

import json
import re
import time

# Faults applied while a prompt executes (bound to a prompt when the worker takes it).
EXEC_FAULTS = ("error", "oom", "missing_model", "hang", "exit", "drop_ws", "slow", "silent")
# Faults applied to HTTP requests.
HTTP_FAULTS = ("http500", "view_delay")
# Faults applied when the worker takes the next prompt off the queue.
QUEUE_FAULTS = ("dequeue_delay",)
ALL_FAULTS = EXEC_FAULTS + HTTP_FAULTS + QUEUE_FAULTS

# the bare ARG of a "[[sim:NAME:ARG]]" marker sets this parameter
_PRIMARY_PARAM = {
    "error": "message", "oom": "message", "missing_model": "filename", "hang": "step",
    "exit": "step", "drop_ws": "step", "slow": "step_ms", "http500": "route", "view_delay": "ms",
    "silent": "ms", "dequeue_delay": "ms",
}
_NUMERIC_PARAMS = {"step": int, "step_ms": float, "ms": float, "code": int}

MARKER_RE = re.compile(r"\[\[sim:([A-Za-z0-9_]+)(?::([^\]]*))?\]\]")


def _coerce_params(params):
    out = {}
    for k, v in params.items():
        if k in _NUMERIC_PARAMS and v is not None:
            v = _NUMERIC_PARAMS[k](v)
        out[k] = v
    return out


def parse_marker_arg(name, arg):
    """'[[sim:slow:50]]' -> {'step_ms': 50.0}; '[[sim:error:message=x;step=3]]' -> {...}."""
    if arg is None or arg == "":
        return {}
    if "=" in arg:
        params = {}
        for part in arg.split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                params[k.strip()] = v.strip()
        return _coerce_params(params)
    return _coerce_params({_PRIMARY_PARAM.get(name, "arg"): arg})


def markers_in_prompt(prompt):
    """Faults requested by [[sim:...]] markers in CLIPTextEncode texts of an API prompt."""
    found = []
    if not isinstance(prompt, dict):
        return found
    for node in prompt.values():
        if not isinstance(node, dict) or node.get("class_type") != "CLIPTextEncode":
            continue
        inputs = node.get("inputs")
        text = inputs.get("text") if isinstance(inputs, dict) else None
        if not isinstance(text, str):
            continue
        for m in MARKER_RE.finditer(text):
            name = m.group(1)
            if name in EXEC_FAULTS:
                found.append({"fault": name, "params": parse_marker_arg(name, m.group(2)),
                              "source": "marker"})
    return found


class FaultBook:
    def __init__(self):
        self.pending = []
        self.next_id = 1
        self.fired = 0

    def add(self, spec):
        """spec: {"fault": NAME, "count": N, ...params}.  Raises ValueError when malformed."""
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        name = spec.get("fault")
        if name not in ALL_FAULTS:
            raise ValueError("unknown fault %r; known: %s" % (name, ", ".join(ALL_FAULTS)))
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        params = {k: v for k, v in spec.items() if k not in ("fault", "count")}
        try:
            params = _coerce_params(params)
        except (TypeError, ValueError) as ex:
            raise ValueError("bad parameter: %s" % ex)
        if name == "http500":
            params["route"] = normalize_route(params.get("route", "/prompt"))
        entry = {"id": self.next_id, "fault": name, "remaining": count, "params": params}
        self.next_id += 1
        self.pending.append(entry)
        return entry

    def listing(self):
        return [dict(e) for e in self.pending if e["remaining"] > 0]

    def clear(self):
        n = len(self.pending)
        self.pending = []
        return n

    def _consume(self, entry):
        entry["remaining"] -= 1
        self.fired += 1
        if entry["remaining"] <= 0:
            self.pending.remove(entry)

    def take_queue_faults(self):
        """Faults queued through the API for the prompt being taken off the queue now."""
        taken = []
        for entry in list(self.pending):
            if entry["fault"] in QUEUE_FAULTS:
                taken.append({"fault": entry["fault"], "params": dict(entry["params"]), "source": "api"})
                self._consume(entry)
        return taken

    def take_exec_faults(self):
        """Faults queued through the API for the prompt that starts executing now."""
        taken = []
        for entry in list(self.pending):
            if entry["fault"] in EXEC_FAULTS:
                taken.append({"fault": entry["fault"], "params": dict(entry["params"]),
                              "source": "api"})
                self._consume(entry)
        return taken

    def take_http_faults(self, method, path):
        route = normalize_route(path)
        taken = []
        for entry in list(self.pending):
            p = entry["params"]
            if entry["fault"] == "http500":
                if p["route"] != route:
                    continue
                if p.get("method") and str(p["method"]).upper() != method.upper():
                    continue
            elif entry["fault"] == "view_delay":
                if route != "/view":
                    continue
            else:
                continue
            taken.append({"fault": entry["fault"], "params": dict(p)})
            self._consume(entry)
        return taken


def normalize_route(path):
    path = str(path) or "/"
    if not path.startswith("/"):
        path = "/" + path
    if path == "/api" or path.startswith("/api/"):
        path = path[4:] or "/"
    return path


def parse_seed_faults(text):
    """--seed-faults: JSON (object or list of objects) or 'name[:count][,name[:count]...]'."""
    text = (text or "").strip()
    if not text:
        return []
    if text[0] in "[{":
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    specs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        spec = {"fault": name.strip()}
        if count:
            spec["count"] = int(count)
        specs.append(spec)
    return specs


class Stats:
    COUNTERS = ("prompts_received", "prompts_accepted", "prompts_rejected", "renders_started",
                "renders_completed", "renders_failed", "renders_interrupted", "renders_cached",
                "model_loads", "images_written", "faults_fired")

    def __init__(self):
        self.started_at = time.monotonic()
        self.reset()

    def reset(self):
        for c in self.COUNTERS:
            setattr(self, c, 0)
        self.busy_ms = 0.0
        self.gap_count = 0
        self.gap_total_ms = 0.0
        self.gap_max_ms = 0.0
        self.gaps = []                   # every gap (ms) since the reset, for percentiles
        self.first_render_start = None   # the window the busy fraction is measured over
        self.last_render_end = None      # monotonic seconds; gaps restart after a reset
        self.render_start = getattr(self, "render_start", None)   # a running render survives
        self.reset_at = time.monotonic()

    def render_started(self):
        now = time.monotonic()
        if self.last_render_end is not None:
            gap = (now - self.last_render_end) * 1000.0
            self.gap_count += 1
            self.gap_total_ms += gap
            self.gap_max_ms = max(self.gap_max_ms, gap)
            if len(self.gaps) < 1_000_000:
                self.gaps.append(gap)
        if self.first_render_start is None:
            self.first_render_start = now
        self.render_start = now
        self.renders_started += 1

    def render_finished(self):
        now = time.monotonic()
        if self.render_start is not None:
            self.busy_ms += (now - max(self.render_start, self.reset_at)) * 1000.0
        self.render_start = None
        self.last_render_end = now

    def snapshot(self, queue_pending, queue_running, loaded_model, ws_clients):
        out = {c: getattr(self, c) for c in self.COUNTERS}
        busy = self.busy_ms
        if self.render_start is not None:
            busy += (time.monotonic() - max(self.render_start, self.reset_at)) * 1000.0
        out["busy_ms"] = round(busy, 3)
        gaps = sorted(self.gaps)

        def pct(q):
            return round(gaps[min(len(gaps) - 1, int(q * len(gaps)))], 3) if gaps else 0.0

        out["idle_gaps"] = {"count": self.gap_count, "total_ms": round(self.gap_total_ms, 3),
                            "max_ms": round(self.gap_max_ms, 3), "p50_ms": pct(0.50),
                            "p99_ms": pct(0.99)}
        # From the first render's start to the last one's end: busy_ms over this is the
        # fraction of the time the (simulated) GPU worked once work had arrived.
        end = self.last_render_end if self.render_start is None else time.monotonic()
        out["window_ms"] = (round((end - self.first_render_start) * 1000.0, 3)
                            if self.first_render_start is not None and end is not None else 0.0)
        out["queue_length"] = queue_pending
        out["queue_running"] = queue_running
        out["uptime_ms"] = int((time.monotonic() - self.started_at) * 1000)
        out["loaded_model"] = loaded_model
        out["ws_clients"] = ws_clients
        return out
