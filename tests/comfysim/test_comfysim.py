"""Tests for comfysim, the ComfyUI protocol simulator (tests/comfysim/comfysim.py).

Each test starts its own simulator subprocess on a free port with a temporary base
directory and holds it to /work/shared/reference/comfyui-api.md.  Every wait has a
deadline.  Run: /usr/bin/python3 -m pytest -q tests/comfysim
"""

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

import aiohttp
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "comfysim.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
sys.path.insert(0, HERE)

import comfysim_png  # noqa: E402

GENERIC_500 = "500 Internal Server Error\n\nServer got itself in trouble"
OOM_TIPS = ("This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked "
            "before you might have accidentally set the batch_size to a large number.")
STEPS_TOOLTIP = "The number of steps used in the denoising process."


# ----------------------------------------------------------------------------------------
# harness

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class Sim:
    def __init__(self, tmp_path, args=(), base=None, name="sim"):
        self.tmp = str(tmp_path)
        self.base = base or os.path.join(self.tmp, "base")
        self.port_file = os.path.join(self.tmp, name + ".port")
        self.log_path = os.path.join(self.tmp, name + ".log")
        self.args = list(args)
        self.proc = None
        self.start()

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        cmd = [PY, SIM, "--listen", "127.0.0.1", "--port", "0", "--base-directory", self.base,
               "--port-file", self.port_file, "--model-load-ms", "20", "--step-ms", "1"] + self.args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("comfysim exited early:\n" + self.read_log())
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.01)
        else:
            raise RuntimeError("comfysim did not write its port file:\n" + self.read_log())
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # synchronous HTTP (urllib: POST bodies go out with the form content type, as in
    # ComfyUI's own script examples)
    def http(self, method, path, body=None, headers=None, timeout=10):
        data = body
        if body is not None and not isinstance(body, bytes):
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())

    def get(self, path, **kw):
        return self.http("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.http("POST", path, body=body if body is not None else b"", **kw)

    def submit(self, prompt, **fields):
        body = dict(fields)
        body["prompt"] = prompt
        r = self.post("/prompt", body)
        assert r.status == 200, r.text
        return r.json()["prompt_id"]

    def wait_history(self, prompt_id, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.get("/history/" + prompt_id).json()
            if h:
                return h[prompt_id]
            time.sleep(0.01)
        raise AssertionError("no history for %s within %ss\n%s" % (prompt_id, timeout, self.read_log()))

    def wait_until(self, pred, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.01)
        raise AssertionError("timed out waiting for " + what)

    def stats(self):
        return self.get("/_sim/stats").json()

    def fault(self, **spec):
        r = self.post("/_sim/faults", spec)
        assert r.status == 200, r.text
        return r.json()


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def make_sim(tmp_path):
    sims = []

    def factory(*args, **kw):
        s = Sim(tmp_path, args=args, name="sim%d" % len(sims), **kw)
        sims.append(s)
        return s
    yield factory
    for s in sims:
        s.stop()


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class WS:
    """aiohttp WebSocket client that yields JSON messages (binary frames skipped)."""

    def __init__(self, session, ws):
        self.session = session
        self.ws = ws
        self.ended_by = None

    @classmethod
    async def connect(cls, session, sim, client_id=None, path="/ws"):
        url = sim.url + path + ("?clientId=" + client_id if client_id else "")
        ws = await session.ws_connect(url, timeout=5, autoping=True)
        return cls(session, ws)

    async def recv(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError("no ws message within %ss" % timeout)
            msg = await asyncio.wait_for(self.ws.receive(), left)
            if msg.type == aiohttp.WSMsgType.TEXT:
                return json.loads(msg.data)
            if msg.type == aiohttp.WSMsgType.BINARY:
                continue
            # What ended it as it arrived: a close frame (CLOSE, its code) or a cut socket.
            # ws.close_code is not that: aiohttp sets it to 1006 when its own close reply
            # cannot be written because the server has already gone.
            self.ended_by = (msg.type, msg.data)
            raise ConnectionError("websocket closed: %s" % msg.type)

    async def until(self, pred, timeout=10.0):
        """Messages up to and including the first one for which pred is true."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            m = await self.recv(max(0.001, deadline - time.monotonic()))
            out.append(m)
            if pred(m):
                return out

    async def quiet(self, seconds):
        """Messages arriving within `seconds` (used to prove that nothing else arrives)."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                msg = await asyncio.wait_for(self.ws.receive(), left)
            except asyncio.TimeoutError:
                return out
            if msg.type == aiohttp.WSMsgType.TEXT:
                out.append(json.loads(msg.data))
            elif msg.type != aiohttp.WSMsgType.BINARY:
                return out

    async def close(self):
        await self.ws.close()


async def apost(session, sim, path, body):
    async with session.post(sim.url + path, data=json.dumps(body).encode()) as r:
        text = await r.text()
        return r.status, (json.loads(text) if text else None)


async def aget(session, sim, path):
    async with session.get(sim.url + path) as r:
        text = await r.text()
        return r.status, (json.loads(text) if text else None)


def done_for(pid):
    return lambda m: (m["type"] == "executing" and m["data"].get("node") is None
                      and m["data"].get("prompt_id") == pid)


def graph(seed=5, steps=3, width=64, height=48, batch=1, prefix="ComfyUI",
          ckpt="sd15.safetensors", text="a cat", sampler="euler", scheduler="normal"):
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt},
              "_meta": {"title": "Load Checkpoint"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": width, "height": height, "batch_size": batch}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 8, "sampler_name": sampler,
            "scheduler": scheduler, "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


def png_chunks(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    chunks = []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, "bad CRC in %r" % tag
        chunks.append((tag, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def png_decode(data):
    """(width, height, texts, raw scanlines) of an 8-bit RGB PNG."""
    chunks = png_chunks(data)
    w, h, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, ctype, comp, filt, inter) == (8, 2, 0, 0, 0)
    texts = {}
    for tag, body in chunks:
        if tag == b"tEXt":
            k, v = body.split(b"\0", 1)
            texts[k.decode("latin-1")] = v.decode("latin-1")
    raw = zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT"))
    assert len(raw) == h * (1 + 3 * w)
    return w, h, texts, raw


def output_files(sim, sub=""):
    d = os.path.join(sim.base, "output", sub)
    return sorted(f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))


# ----------------------------------------------------------------------------------------
# startup, CLI contract

def test_startup_port_file_dirs_and_default_checkpoints(sim):
    with open(sim.port_file) as f:
        assert f.read() == "%d\n" % sim.port
    for d in ("output", "input", "temp", "models/checkpoints"):
        assert os.path.isdir(os.path.join(sim.base, d))
    assert sim.get("/models/checkpoints").json() == ["sd15.safetensors", "sdxl.safetensors"]
    assert "comfysim listening on http://127.0.0.1:%d" % sim.port in sim.read_log()


def test_sigterm_exits_cleanly_and_wipes_temp(sim):
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
         "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    sim.wait_history(sim.submit(g))
    assert os.listdir(os.path.join(sim.base, "temp"))
    sim.proc.terminate()
    assert sim.proc.wait(10) == 0
    assert not os.path.exists(os.path.join(sim.base, "temp"))


def test_checkpoints_flag_and_existing_files(tmp_path, make_sim):
    base = str(tmp_path / "b")
    os.makedirs(os.path.join(base, "models", "checkpoints", "sub"))
    open(os.path.join(base, "models", "checkpoints", "sub", "x.ckpt"), "wb").close()
    s = make_sim("--checkpoints", "a.safetensors,b.safetensors", base=base)
    assert s.get("/models/checkpoints").json() == ["a.safetensors", "b.safetensors", "sub/x.ckpt"]
    info = s.get("/object_info/CheckpointLoaderSimple").json()
    assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == \
        ["a.safetensors", "b.safetensors", "sub/x.ckpt"]


def test_api_prefix_parity_and_json_format(sim):
    for path in ("/object_info", "/object_info/KSampler", "/features", "/queue", "/prompt",
                 "/history", "/models", "/models/checkpoints", "/embeddings", "/extensions",
                 "/history/nope", "/object_info/Nope"):
        a, b = sim.get(path), sim.get("/api" + path)
        assert a.status == b.status == 200, path
        assert a.body == b.body, path
    r = sim.get("/api/features")
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.text == '{"supports_preview_metadata": true, "max_upload_size": 104857600.0}'
    assert sim.get("/system_stats").status == sim.get("/api/system_stats").status == 200
    assert sim.get("/nonexistent").status == 404
    assert sim.http("PUT", "/prompt", body=b"{}").status == 405
    assert sim.get("/object_info/Nope").text == "{}"
    assert sim.get("/embeddings").json() == []


def test_object_info_shapes(sim):
    r = sim.get("/object_info")
    assert "18446744073709551615" in r.text
    info = r.json()
    assert set(info) >= {"CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
                         "VAEDecode", "SaveImage", "PreviewImage", "LoadImage", "EmptyImage"}
    assert info["EmptyImage"] == {
        "input": {"required": {
            "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            "color": ["INT", {"default": 0, "min": 0, "max": 16777215, "step": 1, "display": "color"}]}},
        "input_order": {"required": ["width", "height", "batch_size", "color"]},
        "output": ["IMAGE"], "output_is_list": [False], "output_name": ["IMAGE"],
        "name": "EmptyImage", "display_name": "EmptyImage", "description": "",
        "python_module": "nodes", "category": "image", "output_node": False}
    ks = info["KSampler"]
    assert ks["input"]["required"]["seed"][1]["max"] == 18446744073709551615
    assert ks["input_order"]["required"] == ["model", "seed", "steps", "cfg", "sampler_name",
                                             "scheduler", "positive", "negative", "latent_image",
                                             "denoise"]
    samplers = ks["input"]["required"]["sampler_name"][0]
    assert len(samplers) == 42
    for name in ("euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_sde", "ddim", "uni_pc"):
        assert name in samplers
    assert len(ks["input"]["required"]["scheduler"][0]) == 9
    assert info["SaveImage"]["output_node"] is True
    assert info["SaveImage"]["input_order"]["hidden"] == ["prompt", "extra_pnginfo"]
    assert info["CheckpointLoaderSimple"]["output"] == ["MODEL", "CLIP", "VAE"]
    assert info["CheckpointLoaderSimple"]["display_name"] == "Load Checkpoint"
    assert sim.get("/object_info/KSampler").json() == {"KSampler": ks}


def test_system_stats_shape_and_vram_tracks_model(sim):
    st = sim.get("/system_stats").json()
    assert st["system"]["os"] == "posix" and st["system"]["comfyui_version"] == "0.3.64"
    assert isinstance(st["system"]["ram_total"], int)
    dev = st["devices"][0]
    assert dev["name"] == "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
    assert dev["type"] == "cuda" and dev["index"] == 0
    free_idle = dev["vram_free"]
    assert 0 < free_idle < dev["vram_total"]
    sim.wait_history(sim.submit(graph(ckpt="sdxl.safetensors")))
    dev2 = sim.get("/system_stats").json()["devices"][0]
    assert dev2["vram_free"] < free_idle - 5 * 10**9
    assert dev2["torch_vram_total"] > 0
    assert sim.post("/free", {"unload_models": True}).status == 200
    sim.wait_until(lambda: sim.stats()["loaded_model"] is None, what="unload")
    assert sim.get("/system_stats").json()["devices"][0]["vram_free"] == free_idle


# ----------------------------------------------------------------------------------------
# POST /prompt: 400/500 shapes

def test_no_prompt(sim):
    expected = {"error": {"type": "no_prompt", "message": "No prompt provided",
                          "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}
    for body in ({}, [], {"client_id": "x"}):
        r = sim.post("/prompt", body)
        assert r.status == 400 and r.json() == expected
    r = sim.post("/prompt", {"client_id": "x"})
    assert r.text == json.dumps(expected)


def test_invalid_prompt_missing_or_unknown_class_type(sim):
    g = graph()
    g["5"] = {"inputs": {}}
    r = sim.post("/prompt", {"prompt": g})
    assert r.status == 400
    assert r.json() == {"error": {"type": "invalid_prompt",
                                  "message": "Cannot execute because a node is missing the class_type property.",
                                  "details": "Node ID '#5'", "extra_info": {}}, "node_errors": {}}
    g = graph()
    g["7"]["class_type"] = "NoSuchNode"
    r = sim.post("/prompt", {"prompt": g})
    assert r.status == 400
    assert r.json()["error"] == {"type": "invalid_prompt",
                                 "message": "Cannot execute because node NoSuchNode does not exist.",
                                 "details": "Node ID '#7'", "extra_info": {}}


def test_ui_format_workflow(sim):
    ui_new = {"id": "9e5c0d3a-aaaa-bbbb-cccc-0123456789ab", "revision": 0, "last_node_id": 9,
              "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [1, "randomize"]}],
              "links": [[1, 4, 0, 3, 0, "MODEL"]], "version": 0.4}
    r = sim.post("/prompt", {"prompt": ui_new})
    assert r.status == 400
    assert r.json()["error"]["type"] == "invalid_prompt"
    assert r.json()["error"]["details"] == "Node ID '#id'"
    ui_old = {"last_node_id": 9, "last_link_id": 9, "nodes": [], "links": []}
    r = sim.post("/prompt", {"prompt": ui_old})
    assert r.status == 500 and r.text == GENERIC_500
    r = sim.post("/prompt", ui_new)          # whole body, no "prompt" key
    assert r.status == 400 and r.json()["error"]["type"] == "no_prompt"


def test_prompt_no_outputs(sim):
    expected = {"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                          "details": "", "extra_info": {}}, "node_errors": {}}
    g = graph()
    del g["9"]
    for body in ({"prompt": g}, {"prompt": {}}, {"prompt": []},
                 {"prompt": graph(), "partial_execution_targets": ["3"]}):
        r = sim.post("/prompt", body)
        assert r.status == 400 and r.json() == expected, body


def test_failed_validation_example_from_sheet(sim):
    g = graph(steps=0)
    r = sim.post("/prompt", {"prompt": g})
    assert r.status == 400
    assert r.json() == {
        "error": {"type": "prompt_outputs_failed_validation",
                  "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
        "node_errors": {"3": {"errors": [{
            "type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
            "details": "steps",
            "extra_info": {"input_name": "steps",
                           "input_config": ["INT", {"default": 20, "min": 1, "max": 10000,
                                                    "tooltip": STEPS_TOOLTIP}],
                           "received_value": 0}}],
            "dependent_outputs": ["9"], "class_type": "KSampler"}}}


def _node_error(sim, g):
    r = sim.post("/prompt", {"prompt": g})
    assert r.status == 400, r.text
    body = r.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    return body


def test_node_error_types(sim):
    # required_input_missing
    g = graph()
    del g["3"]["inputs"]["cfg"]
    e = _node_error(sim, g)["node_errors"]["3"]["errors"]
    assert e == [{"type": "required_input_missing", "message": "Required input is missing",
                  "details": "cfg", "extra_info": {"input_name": "cfg"}}]

    # bad_linked_input
    g = graph()
    g["8"]["inputs"]["vae"] = ["4", 2, 7]
    e = _node_error(sim, g)["node_errors"]["8"]["errors"][0]
    assert e["type"] == "bad_linked_input"
    assert e["message"] == "Bad linked input, must be a length-2 list of [node_id, slot_index]"
    assert e["extra_info"]["received_value"] == ["4", 2, 7]
    assert e["extra_info"]["input_config"] == ["VAE", {"tooltip": "The VAE model used for decoding the latent."}]

    # return_type_mismatch
    g = graph()
    g["8"]["inputs"]["vae"] = ["4", 0]
    e = _node_error(sim, g)["node_errors"]["8"]["errors"][0]
    assert e["type"] == "return_type_mismatch"
    assert e["message"] == "Return type mismatch between linked nodes"
    assert e["details"] == "vae, received_type(MODEL) mismatch input_type(VAE)"
    assert e["extra_info"]["received_type"] == "MODEL" and e["extra_info"]["linked_node"] == ["4", 0]

    # invalid_input_type
    g = graph()
    g["3"]["inputs"]["steps"] = "5.7"
    e = _node_error(sim, g)["node_errors"]["3"]["errors"][0]
    assert e["type"] == "invalid_input_type"
    assert e["message"] == "Failed to convert an input value to a INT value"
    assert e["details"] == "steps, 5.7, invalid literal for int() with base 10: '5.7'"

    # value_bigger_than_max (uint64 seed overflow) and float max
    g = graph(seed=18446744073709551616)
    e = _node_error(sim, g)["node_errors"]["3"]["errors"][0]
    assert e["type"] == "value_bigger_than_max"
    assert e["message"] == "Value 18446744073709551616 bigger than max of 18446744073709551615"
    g = graph()
    g["3"]["inputs"]["cfg"] = 101
    e = _node_error(sim, g)["node_errors"]["3"]["errors"][0]
    assert e["message"] == "Value 101.0 bigger than max of 100.0"

    # value_not_in_list: unknown checkpoint (<= 20 options) and sampler (> 20 options)
    g = graph(ckpt="x.safetensors")
    body = _node_error(sim, g)
    e = body["node_errors"]["4"]["errors"][0]
    assert e == {"type": "value_not_in_list", "message": "Value not in list",
                 "details": "ckpt_name: 'x.safetensors' not in ['sd15.safetensors', 'sdxl.safetensors']",
                 "extra_info": {"input_name": "ckpt_name",
                                "input_config": [["sd15.safetensors", "sdxl.safetensors"],
                                                 {"tooltip": "The name of the checkpoint (model) to load."}],
                                "received_value": "x.safetensors"}}
    assert body["node_errors"]["4"]["dependent_outputs"] == ["9"]
    assert body["error"]["details"] == ""      # the bad input is upstream of the output
    g = graph(sampler="nope")
    e = _node_error(sim, g)["node_errors"]["3"]["errors"][0]
    assert e["details"] == "sampler_name: 'nope' not in (list of length 42)"
    assert e["extra_info"]["input_config"] is None

    # exception_during_validation: the output node links to a missing node
    g = graph()
    g["9"]["inputs"]["images"] = ["99", 0]
    body = _node_error(sim, g)
    e = body["node_errors"]["9"]["errors"][0]
    assert e["type"] == "exception_during_validation"
    assert e["message"] == "Exception when validating node" and e["details"] == "'99'"
    assert e["extra_info"]["exception_type"] == "KeyError"
    assert isinstance(e["extra_info"]["traceback"], list)
    assert body["error"]["details"] == "Exception when validating node: '99'"

    # exception_during_inner_validation: an upstream node links to a missing node
    g = graph()
    g["8"]["inputs"]["vae"] = ["42", 2]
    e = _node_error(sim, g)["node_errors"]["8"]["errors"][0]
    assert e["type"] == "exception_during_inner_validation"
    assert e["details"] == "'42'" and e["extra_info"]["linked_node"] == ["8", 0]

    # custom_validation_failed: LoadImage with a file missing from input/
    g = {"1": {"class_type": "LoadImage", "inputs": {"image": "missing.png"}},
         "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["1", 0]}}}
    e = _node_error(sim, g)["node_errors"]["1"]["errors"]
    assert e == [{"type": "custom_validation_failed", "message": "Custom validation failed for node",
                  "details": "image - Invalid image file: missing.png",
                  "extra_info": {"input_name": "image"}}]


def test_value_coercion_in_place(sim):
    g = graph()
    g["3"]["inputs"]["steps"] = "2"
    g["3"]["inputs"]["cfg"] = 7
    g["5"]["inputs"]["width"] = 64.9
    g["6"]["inputs"]["text"] = {"__value__": 12}
    pid = sim.submit(g)
    entry = sim.wait_history(pid)
    queued = entry["prompt"][2]
    assert queued["3"]["inputs"]["steps"] == 2
    assert queued["3"]["inputs"]["cfg"] == 7.0 and isinstance(queued["3"]["inputs"]["cfg"], float)
    assert queued["5"]["inputs"]["width"] == 64
    assert queued["6"]["inputs"]["text"] == "12"


def test_partial_node_errors_on_200(sim):
    g = graph()
    g["10"] = {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 0]}}
    g["11"] = {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}}
    r = sim.post("/prompt", {"prompt": g})
    assert r.status == 200
    body = r.json()
    assert list(body) == ["prompt_id", "number", "node_errors"]
    assert body["node_errors"]["10"]["errors"][0]["type"] == "return_type_mismatch"
    assert body["node_errors"]["10"]["dependent_outputs"] == ["11"]
    entry = sim.wait_history(body["prompt_id"])
    assert entry["prompt"][4] == ["9"]
    assert list(entry["outputs"]) == ["9"]


def test_malformed_json_and_odd_bodies_are_500(sim):
    for body in (b"{bad json", b"", b"5", b"null", b'{"prompt": "abc"}', b'{"prompt": {"a": 1}}',
                 b'{"number": "x", "prompt": {}}'):
        r = sim.post("/prompt", body)
        assert r.status == 500, body
        assert r.text == GENERIC_500
        assert r.headers["Content-Type"].startswith("text/plain")
    for path in ("/queue", "/history", "/free"):
        assert sim.post(path, b"{nope").status == 500
    assert sim.post("/free", b"[]").status == 500
    assert sim.post("/interrupt", b"").status == 200
    assert sim.post("/interrupt", b"{garbage").status == 200


def test_number_counter_front_and_prompt_id(sim):
    assert sim.post("/prompt", {}).status == 400                      # number 0 used up
    assert sim.post("/prompt", {"prompt": {}}).status == 400          # number 1 used up
    r = sim.post("/prompt", {"prompt": graph(), "prompt_id": "my-own-id"}).json()
    assert r["number"] == 2 and r["prompt_id"] == "my-own-id"
    r = sim.post("/prompt", {"prompt": graph(seed=6), "number": 3}).json()
    assert r["number"] == 3.0
    assert '"number": 3.0' in json.dumps(r)
    r = sim.post("/prompt", {"prompt": graph(seed=7), "front": True}).json()
    assert r["number"] == -3
    r = sim.post("/prompt", {"prompt": graph(seed=8), "prompt_id": 123}).json()
    assert r["prompt_id"] == "123" and r["number"] == 4
    r = sim.post("/prompt", {"prompt": graph(seed=9)}).json()
    assert len(r["prompt_id"]) == 36 and str(uuid.UUID(r["prompt_id"])) == r["prompt_id"]
    assert sim.wait_history("my-own-id")["status"]["status_str"] == "success"


def test_request_too_large_413(make_sim):
    s = make_sim("--max-upload-size", "0.001")
    r = s.post("/prompt", {"prompt": graph(text="x" * 4000)})
    assert r.status == 413
    assert s.get("/features").json()["max_upload_size"] == 1048.576


# ----------------------------------------------------------------------------------------
# WebSocket

def test_ws_message_order_for_one_prompt(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "client-a")
            first = await ws.recv()
            assert first == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                         "sid": "client-a"}}
            pid = str(uuid.uuid4())
            status, body = await apost(session, sim, "/prompt",
                                       {"prompt": graph(steps=3), "client_id": "client-a", "prompt_id": pid})
            assert status == 200 and body["prompt_id"] == pid
            msgs = await ws.until(lambda m: m["type"] == "executing" and m["data"]["node"] is None)
            # executing null only after the history entry exists
            status, hist = await aget(session, sim, "/history/" + pid)
            assert pid in hist
            await ws.close()
            return pid, msgs
    pid, msgs = run(go())
    expected = ["status", "status", "execution_start", "execution_cached"]
    order = ["4", "5", "7", "6", "3", "8", "9"]
    for n in order:
        expected += ["progress_state", "executing"]
        if n == "3":
            expected += ["progress_state", "progress"] * 3
        if n == "9":
            expected += ["executed"]
        expected += ["progress_state"]
    expected += ["execution_success", "status", "executing"]
    assert [m["type"] for m in msgs] == expected
    assert [m["data"]["status"]["exec_info"]["queue_remaining"]
            for m in msgs if m["type"] == "status"] == [1, 1, 0]
    for m in msgs:
        if m["type"] != "status":
            assert m["data"]["prompt_id"] == pid, m
        assert "sid" not in m["data"]
    assert [m["data"]["node"] for m in msgs if m["type"] == "executing"] == order + [None]
    assert msgs[-1]["data"] == {"node": None, "prompt_id": pid}
    for m in msgs:
        if m["type"] in ("execution_start", "execution_cached", "execution_success"):
            assert isinstance(m["data"]["timestamp"], int) and m["data"]["timestamp"] > 1.6e12
    assert msgs[3]["data"]["nodes"] == []
    progress = [m["data"] for m in msgs if m["type"] == "progress"]
    assert progress == [{"value": i, "max": 3, "prompt_id": pid, "node": "3"} for i in (1, 2, 3)]
    ps = [m["data"] for m in msgs if m["type"] == "progress_state"]
    assert ps[0]["nodes"] == {"4": {"value": 0.0, "max": 1.0, "state": "running", "node_id": "4",
                                    "prompt_id": pid, "display_node_id": "4", "parent_node_id": None,
                                    "real_node_id": "4"}}
    assert ps[-1]["nodes"]["3"]["state"] == "finished" and ps[-1]["nodes"]["3"]["value"] == 3
    assert set(ps[-1]["nodes"]) == set(order)
    assert all(v["state"] == "finished" for v in ps[-1]["nodes"].values())
    executed = [m["data"] for m in msgs if m["type"] == "executed"][0]
    assert executed == {"node": "9", "display_node": "9", "prompt_id": pid,
                        "output": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "",
                                               "type": "output"}]}}


def test_ws_api_path_feature_flags_and_generated_sid(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, None, path="/api/ws")
            first = await ws.recv()
            sid = first["data"]["sid"]
            assert len(sid) == 32 and all(c in "0123456789abcdef" for c in sid)
            await ws.ws.send_str(json.dumps({"type": "feature_flags",
                                             "data": {"supports_preview_metadata": False}}))
            reply = await ws.recv()
            assert reply == {"type": "feature_flags",
                             "data": {"supports_preview_metadata": True, "max_upload_size": 104857600.0}}
            await ws.ws.send_str(json.dumps({"type": "feature_flags", "data": {}}))
            assert await ws.quiet(0.3) == []        # only the first message is interpreted
            await ws.close()
    run(go())


def test_ws_routing_targeted_vs_broadcast(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            a = await WS.connect(session, sim, "A")
            b = await WS.connect(session, sim, "B")
            await a.recv(), await b.recv()
            pid = sim.submit(graph(), client_id="A")
            await a.until(done_for(pid))
            b_msgs = await b.quiet(0.3)
            assert {m["type"] for m in b_msgs} == {"status"}      # status is broadcast
            assert len(b_msgs) == 3
            # no client_id: progress/progress_state broadcast, targeted events not sent at all
            pid2 = sim.submit(graph(seed=77))
            sim.wait_history(pid2)
            a_msgs = await a.quiet(0.3)
            types = {m["type"] for m in a_msgs}
            assert types == {"status", "progress", "progress_state"}
            assert all(m["data"].get("prompt_id") == pid2 for m in a_msgs if m["type"] != "status")
            await a.close()
            await b.close()
    run(go())


def test_ws_reconnect_gets_current_node(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            a = await WS.connect(session, sim, "R")
            await a.recv()
            g = graph(text="[[sim:hang]]", steps=4)
            pid = sim.submit(g, client_id="R")
            await a.until(lambda m: m["type"] == "progress" and m["data"]["value"] == 1)
            await a.close()
            a2 = await WS.connect(session, sim, "R")
            first = await a2.recv()
            assert first["type"] == "status" and first["data"]["sid"] == "R"
            assert await a2.recv() == {"type": "executing", "data": {"node": "3"}}
            assert sim.post("/interrupt", {"prompt_id": pid}).status == 200
            await a2.until(done_for(pid))
            await a2.close()
    run(go())


# ----------------------------------------------------------------------------------------
# history

def test_history_entry_shape_and_queries(sim):
    g = graph()
    pid = sim.submit(g, client_id="h", extra_data={"extra_pnginfo": {"workflow": {"v": 1}},
                                                   "api_key_comfy_org": "secret"})
    entry = sim.wait_history(pid)
    assert list(entry) == ["prompt", "outputs", "status", "meta"]
    number, p_id, prompt, extra, outs = entry["prompt"]
    assert (number, p_id, outs) == (0, pid, ["9"])
    assert extra == {"extra_pnginfo": {"workflow": {"v": 1}}, "client_id": "h"}
    assert prompt["3"]["inputs"]["cfg"] == 8.0
    assert entry["outputs"] == {"9": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "",
                                                   "type": "output"}]}}
    st = entry["status"]
    assert st["status_str"] == "success" and st["completed"] is True
    assert [m[0] for m in st["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert all(isinstance(m[1]["timestamp"], int) and m[1]["prompt_id"] == pid for m in st["messages"])
    assert entry["meta"] == {"9": {"node_id": "9", "display_node": "9", "parent_node": None,
                                   "real_node_id": "9"}}
    assert sim.get("/history/unknown-id").text == "{}"

    pids = [pid] + [sim.submit(graph(seed=s)) for s in (11, 12, 13)]
    sim.wait_history(pids[-1])
    assert list(sim.get("/history").json()) == pids
    assert list(sim.get("/history?max_items=2").json()) == pids[2:]
    assert list(sim.get("/history?max_items=2&offset=1").json()) == pids[1:3]
    assert list(sim.get("/history?offset=3").json()) == pids[3:]
    assert sim.get("/history?max_items=x").status == 500
    assert sim.post("/history", {"delete": [pids[0], "nope"]}).body == b""
    assert list(sim.get("/history").json()) == pids[1:]
    assert sim.post("/history", {"clear": True}).status == 200
    assert sim.get("/history").json() == {}


def test_history_unfinished_is_empty_and_queue_shapes(sim):
    hang = sim.submit(graph(text="[[sim:hang]]", steps=10), client_id="q")
    sim.wait_until(lambda: sim.get("/queue").json()["queue_running"], what="running")
    assert sim.get("/history/" + hang).json() == {}
    p1 = sim.submit(graph(seed=1))
    p2 = sim.submit(graph(seed=2))
    p3 = sim.submit(graph(seed=3), front=True)
    q = sim.get("/queue").json()
    assert list(q) == ["queue_running", "queue_pending"]
    running = q["queue_running"]
    assert len(running) == 1 and len(running[0]) == 5
    assert running[0][:2] == [0, hang] and running[0][3] == {"client_id": "q"} and running[0][4] == ["9"]
    pending = q["queue_pending"]
    assert all(len(item) == 5 for item in pending)
    assert sorted((item[0], item[1]) for item in pending) == [(-3, p3), (1, p1), (2, p2)]
    assert pending[0][1] == p3                       # heap top = next to run
    assert sim.get("/prompt").json() == {"exec_info": {"queue_remaining": 4}}
    assert sim.post("/queue", {"delete": [p1]}).status == 200
    assert sorted(i[1] for i in sim.get("/queue").json()["queue_pending"]) == sorted([p2, p3])
    assert sim.post("/queue", {"clear": True}).body == b""
    q = sim.get("/queue").json()
    assert q["queue_pending"] == [] and len(q["queue_running"]) == 1   # running unaffected
    assert sim.post("/interrupt").status == 200
    entry = sim.wait_history(hang)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert sim.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}


# ----------------------------------------------------------------------------------------
# interrupt

def test_interrupt_with_prompt_id_only_hits_running_prompt(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "i")
            await ws.recv()
            pid = sim.submit(graph(text="[[sim:hang]]", steps=6), client_id="i")
            await ws.until(lambda m: m["type"] == "progress" and m["data"]["value"] == 2)
            assert sim.post("/interrupt", {"prompt_id": "not-running"}).status == 200
            assert [m for m in await ws.quiet(0.3) if m["type"] != "status"] == []
            assert sim.post("/interrupt", {"prompt_id": pid}).body == b""
            msgs = await ws.until(done_for(pid))
            assert [m["type"] for m in msgs] == ["execution_interrupted", "status", "executing"]
            data = msgs[0]["data"]
            assert data["prompt_id"] == pid and data["node_id"] == "3" and data["node_type"] == "KSampler"
            assert data["executed"] == ["4", "5", "7", "6"] and isinstance(data["timestamp"], int)
            await ws.close()
    run(go())
    assert "Processing interrupted" in sim.read_log()
    assert sim.stats()["renders_interrupted"] == 1


def test_interrupt_while_idle_does_nothing(sim):
    assert sim.post("/interrupt", {}).status == 200
    pid = sim.submit(graph())
    assert sim.wait_history(pid)["status"]["status_str"] == "success"


# ----------------------------------------------------------------------------------------
# outputs: PNGs, naming, cache, view, upload

def test_png_valid_dimensions_metadata_and_seed_dependence(sim):
    pid = sim.submit(graph(width=80, height=56, batch=2, seed=1),
                     extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}})
    images = sim.wait_history(pid)["outputs"]["9"]["images"]
    assert [i["filename"] for i in images] == ["ComfyUI_00001_.png", "ComfyUI_00002_.png"]
    datas = []
    for img in images:
        r = sim.get("/view?" + urllib.parse.urlencode(img))
        assert r.status == 200 and r.headers["Content-Type"] == "image/png"
        assert r.headers["Content-Disposition"] == 'filename="%s"' % img["filename"]
        w, h, texts, raw = png_decode(r.body)
        assert (w, h) == (80, 56)
        assert json.loads(texts["prompt"]) == sim.get("/history/" + pid).json()[pid]["prompt"][2]
        assert json.loads(texts["workflow"]) == {"nodes": []}
        datas.append(raw)
    assert datas[0] != datas[1]                       # batch items differ
    pid2 = sim.submit(graph(width=80, height=56, seed=2, prefix="other"))
    img2 = sim.wait_history(pid2)["outputs"]["9"]["images"][0]
    raw2 = png_decode(sim.get("/view?" + urllib.parse.urlencode(img2)).body)[3]
    assert raw2 != datas[0]                           # seed changes the picture
    pid3 = sim.submit(graph(width=80, height=56, seed=1, prefix="again", steps=4))
    img3 = sim.wait_history(pid3)["outputs"]["9"]["images"][0]
    assert png_decode(sim.get("/view?" + urllib.parse.urlencode(img3)).body)[3] == datas[0]


def test_empty_image_and_big_png():
    # (its speed is bench material, not a test's: a timed assertion fails on a busy machine)
    data = comfysim_png.synth_png(1024, 1024, 123, texts=[("prompt", "{}")])
    w, h, texts, raw = png_decode(data)
    assert (w, h, texts) == (1024, 1024, {"prompt": "{}"})
    w, h, _, raw = png_decode(comfysim_png.synth_png(3, 2, 0, color=0x102030))
    assert raw == (b"\0" + b"\x10\x20\x30" * 3) * 2


def test_naming_counter_substitutions_and_restart(sim):
    prefix = "sub/dir/img_%width%x%height%_b%batch_num%"
    pid = sim.submit(graph(prefix=prefix, width=64, height=48, batch=2))
    imgs = sim.wait_history(pid)["outputs"]["9"]["images"]
    assert imgs == [{"filename": "img_64x48_b0_00001_.png", "subfolder": "sub/dir", "type": "output"},
                    {"filename": "img_64x48_b1_00002_.png", "subfolder": "sub/dir", "type": "output"}]
    pid = sim.submit(graph(prefix="plain"))
    assert sim.wait_history(pid)["outputs"]["9"]["images"][0]["filename"] == "plain_00001_.png"
    pid = sim.submit(graph(prefix="plain", seed=99))
    assert sim.wait_history(pid)["outputs"]["9"]["images"][0]["filename"] == "plain_00002_.png"
    year = time.strftime("%Y")
    pid = sim.submit(graph(prefix="y%year%"))
    assert sim.wait_history(pid)["outputs"]["9"]["images"][0]["filename"] == "y%s_00001_.png" % year
    sim.restart()                                     # counter comes from the directory listing
    assert sim.get("/history").json() == {}
    pid = sim.submit(graph(prefix="plain"))
    assert sim.wait_history(pid)["outputs"]["9"]["images"][0]["filename"] == "plain_00003_.png"
    assert output_files(sim, "sub/dir") == ["img_64x48_b0_00001_.png", "img_64x48_b1_00002_.png"]


def test_save_outside_output_is_execution_error(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "o")
            await ws.recv()
            pid = sim.submit(graph(prefix="../../escape"), client_id="o")
            msgs = await ws.until(done_for(pid))
            await ws.close()
            return pid, msgs
    pid, msgs = run(go())
    err = [m["data"] for m in msgs if m["type"] == "execution_error"][0]
    assert err["node_id"] == "9" and err["node_type"] == "SaveImage"
    assert err["exception_type"] == "Exception"
    assert "Saving image outside the output folder is not allowed." in err["exception_message"]
    assert err["exception_message"].endswith("\n")
    assert err["executed"] == ["4", "5", "7", "6", "3", "8"]
    assert sorted(err["current_outputs"]) == sorted(graph())
    assert err["current_inputs"]["filename_prefix"] == ["../../escape"]
    assert isinstance(err["traceback"], list) and err["traceback"]
    assert [m["type"] for m in msgs[-3:]] == ["execution_error", "status", "executing"]
    entry = sim.wait_history(pid)
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}


def test_cache_resubmission_writes_no_file_and_free_resets(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "c")
            await ws.recv()
            pid1 = sim.submit(graph(), client_id="c")
            await ws.until(done_for(pid1))
            files = output_files(sim)
            pid2 = sim.submit(graph(), client_id="c")
            msgs = await ws.until(done_for(pid2))
            assert output_files(sim) == files == ["ComfyUI_00001_.png"]
            types = [m["type"] for m in msgs]
            assert types == ["status", "status", "execution_start", "execution_cached", "executed",
                             "progress_state", "execution_success", "status", "executing"]
            assert sorted(msgs[3]["data"]["nodes"]) == sorted(graph())
            assert msgs[4]["data"]["output"]["images"][0]["filename"] == "ComfyUI_00001_.png"
            assert msgs[5]["data"]["nodes"]["9"]["state"] == "finished"
            h = sim.wait_history(pid2)
            assert h["outputs"]["9"]["images"][0]["filename"] == "ComfyUI_00001_.png"
            # a changed seed re-runs only the sampler and what follows it
            pid3 = sim.submit(graph(seed=6), client_id="c")
            msgs = await ws.until(done_for(pid3))
            assert sorted(msgs[3]["data"]["nodes"]) == ["4", "5", "6", "7"]
            assert [m["data"]["node"] for m in msgs if m["type"] == "executing"] == ["3", "8", "9", None]
            # /free free_memory drops the cache and the model
            assert sim.post("/free", {"free_memory": True}).body == b""
            sim.wait_until(lambda: sim.stats()["loaded_model"] is None, what="unload")
            pid4 = sim.submit(graph(seed=6), client_id="c")
            msgs = await ws.until(done_for(pid4))
            assert msgs[3]["data"]["nodes"] == []
            await ws.close()
    run(go())
    assert output_files(sim) == ["ComfyUI_00001_.png", "ComfyUI_00002_.png", "ComfyUI_00003_.png"]
    st = sim.stats()
    assert st["model_loads"] == 2 and st["renders_cached"] == 1 and st["images_written"] == 3


def test_view_rules(sim):
    pid = sim.submit(graph(prefix="sub/pic"))
    sim.wait_history(pid)
    ok = sim.get("/view?filename=pic_00001_.png&subfolder=sub&type=output")
    assert ok.status == 200 and ok.headers["Content-Type"] == "image/png"
    assert "Cache-Control" not in ok.headers
    assert sim.get("/api/view?filename=pic_00001_.png&subfolder=sub").body == ok.body
    assert sim.get("/view?filename=" + urllib.parse.quote("pic_00001_.png [output]")
                   + "&subfolder=sub&type=input").status == 200
    cases = [
        ("filename=", 400),
        ("filename=/etc/passwd", 400),
        ("filename=a..b.png", 400),
        ("filename=../x.png", 400),
        ("filename=pic_00001_.png&subfolder=sub&type=bogus", 400),
        ("filename=pic_00001_.png&subfolder=../../", 403),
        ("filename=pic_00001_.png&subfolder=/etc", 403),
        ("filename=nothere.png", 404),
        ("filename=pic_00001_.png", 404),              # wrong subfolder
        ("type=output", 404),                          # no filename at all
    ]
    for query, status in cases:
        r = sim.get("/view?" + query)
        assert r.status == status, (query, r.status)
        assert r.body == b"", query
    for name, ctype in (("note.txt", "text/plain"), ("page.html", "application/octet-stream"),
                        ("clip.mp4", "video/mp4"), ("blob.unknownext", "application/octet-stream"),
                        ("pic.webp", "image/webp")):
        with open(os.path.join(sim.base, "input", name), "wb") as f:
            f.write(b"data")
        r = sim.get("/view?type=input&filename=" + name)
        assert r.status == 200 and r.headers["Content-Type"].split(";")[0] == ctype, name


def _multipart(fields, filename="cat.png", content=b"\x89PNG fake", boundary="XbOuNdArY"):
    parts = []
    for k, v in fields.items():
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                      % (boundary, k, v)).encode())
    if filename is not None:
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"%s\"\r\n"
                      "Content-Type: image/png\r\n\r\n" % (boundary, filename)).encode() + content + b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode())
    return b"".join(parts), {"Content-Type": "multipart/form-data; boundary=" + boundary}


def test_upload_image_dedupe_and_load_image(sim):
    def up(fields=None, **kw):
        body, headers = _multipart(fields or {}, **kw)
        return sim.post("/upload/image", body, headers=headers)

    png = comfysim_png.synth_png(40, 30, 5)
    r = up(content=png)
    assert r.status == 200 and r.json() == {"name": "cat.png", "subfolder": "", "type": "input"}
    assert up(content=png).json()["name"] == "cat.png"                  # identical bytes
    assert up(content=b"other").json()["name"] == "cat (1).png"
    assert up(content=b"third").json()["name"] == "cat (2).png"
    assert up(content=b"other").json()["name"] == "cat (1).png"         # matches existing (1)
    assert up({"overwrite": "true"}, content=b"new").json()["name"] == "cat.png"
    with open(os.path.join(sim.base, "input", "cat.png"), "rb") as f:
        assert f.read() == b"new"
    r = up({"subfolder": "pets", "type": "temp"}, content=png)
    assert r.json() == {"name": "cat.png", "subfolder": "pets", "type": "temp"}
    assert os.path.isfile(os.path.join(sim.base, "temp", "pets", "cat.png"))
    assert up({"subfolder": "../../x"}, content=png).status == 400
    assert up({"type": "bogus"}, content=png).status == 500
    assert up({}, filename=None).status == 400
    # filename="" : aiohttp's request.post() then yields a plain (non-file) field, so
    # ComfyUI's `image.file` raises -> 500 with non-empty content, 400 with empty content
    assert up(filename="", content=png).status == 500
    assert up(filename="", content=b"").status == 400

    up({"subfolder": "pets"}, content=png)
    g = {"1": {"class_type": "LoadImage", "inputs": {"image": "pets/cat.png"}},
         "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "loaded", "images": ["1", 0]}}}
    entry = sim.wait_history(sim.submit(g))
    img = entry["outputs"]["2"]["images"][0]
    w, h, _, _ = png_decode(sim.get("/view?" + urllib.parse.urlencode(img)).body)
    assert (w, h) == (40, 30)
    assert "cat.png" in sim.get("/object_info/LoadImage").json()["LoadImage"]["input"]["required"]["image"][0]


def test_empty_image_and_preview_image_temp(sim):
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": 20, "height": 10, "batch_size": 1,
                                                      "color": 0xFF0000}},
         "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
         "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "red", "images": ["1", 0]}}}
    entry = sim.wait_history(sim.submit(g))
    prev = entry["outputs"]["2"]["images"][0]
    assert prev["type"] == "temp" and prev["filename"].startswith("ComfyUI_temp_")
    assert prev["filename"].endswith("_00001_.png") and len(prev["filename"]) == len("ComfyUI_temp_abcde_00001_.png")
    r = sim.get("/view?" + urllib.parse.urlencode(prev))
    w, h, _, raw = png_decode(r.body)
    assert (w, h) == (20, 10) and raw[1:4] == b"\xff\x00\x00"
    assert entry["outputs"]["3"]["images"][0] == {"filename": "red_00001_.png", "subfolder": "",
                                                   "type": "output"}
    sim.restart()
    assert os.listdir(os.path.join(sim.base, "temp")) == []           # temp wiped at startup


# ----------------------------------------------------------------------------------------
# faults and control API

def _run_with_ws(sim, g, client="f", timeout=15):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, client)
            await ws.recv()
            pid = sim.submit(g, client_id=client)
            msgs = await ws.until(done_for(pid), timeout=timeout)
            await ws.close()
            return pid, msgs
    return run(go())


def test_fault_api_list_and_clear(sim):
    assert sim.get("/_sim/faults").json() == {"faults": []}
    r = sim.post("/_sim/faults", {"fault": "nope"})
    assert r.status == 400 and "unknown fault" in r.json()["error"]
    assert sim.post("/_sim/faults", {"fault": "error", "count": 0}).status == 400
    sim.fault(fault="error", count=2, message="boom")
    sim.fault(fault="http500", route="/api/queue")
    faults = sim.get("/_sim/faults").json()["faults"]
    assert [(f["fault"], f["remaining"]) for f in faults] == [("error", 2), ("http500", 1)]
    assert faults[1]["params"]["route"] == "/queue"
    assert sim.http("DELETE", "/_sim/faults").json() == {"cleared": 2}
    assert sim.get("/_sim/faults").json() == {"faults": []}


def test_fault_error_via_api_applies_to_next_prompts(sim):
    sim.fault(fault="error", count=1, message="sampler exploded")
    pid, msgs = _run_with_ws(sim, graph())
    err = [m["data"] for m in msgs if m["type"] == "execution_error"][0]
    assert err["exception_type"] == "RuntimeError"
    assert err["exception_message"] == "sampler exploded\n"
    assert err["node_id"] == "3" and err["node_type"] == "KSampler"
    assert set(err) == {"prompt_id", "node_id", "node_type", "executed", "exception_message",
                        "exception_type", "traceback", "current_inputs", "current_outputs", "timestamp"}
    assert err["current_inputs"]["seed"] == [5] and err["current_inputs"]["sampler_name"] == ["euler"]
    assert isinstance(err["current_inputs"]["model"][0], str)
    h = sim.wait_history(pid)
    assert h["status"]["status_str"] == "error" and h["status"]["messages"][-1][0] == "execution_error"
    # count exhausted: the same prompt now succeeds
    pid2 = sim.submit(graph())
    assert sim.wait_history(pid2)["status"]["status_str"] == "success"
    st = sim.stats()
    assert st["renders_failed"] == 1 and st["renders_completed"] == 1 and st["faults_fired"] == 1


def test_fault_oom_marker_unloads_model(sim):
    sim.wait_history(sim.submit(graph(seed=1)))
    assert sim.stats()["model_loads"] == 1
    pid, msgs = _run_with_ws(sim, graph(seed=2, text="a cat [[sim:oom]]"))
    err = [m["data"] for m in msgs if m["type"] == "execution_error"][0]
    assert err["exception_type"] == "torch.OutOfMemoryError"
    assert err["exception_message"] == "Allocation on device\n" + OOM_TIPS
    assert "Got an OOM, unloading all loaded models." in sim.read_log()
    assert sim.stats()["loaded_model"] is None
    sim.wait_history(sim.submit(graph(seed=3)))
    st = sim.stats()
    assert st["model_loads"] == 2 and st["loaded_model"] == "sd15.safetensors"


def test_fault_missing_model(sim):
    pid, msgs = _run_with_ws(sim, graph(text="[[sim:missing_model]]"))
    err = [m["data"] for m in msgs if m["type"] == "execution_error"][0]
    assert err["exception_type"] == "FileNotFoundError" and err["node_id"] == "4"
    assert err["exception_message"] == \
        "Model in folder 'checkpoints' with filename 'sd15.safetensors' not found.\n"
    # a checkpoint deleted after validation fails the same way
    os.unlink(os.path.join(sim.base, "models", "checkpoints", "sdxl.safetensors"))
    bad = graph(ckpt="sdxl.safetensors")
    r = sim.post("/prompt", {"prompt": bad})
    assert r.status == 400 and r.json()["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"


def test_fault_hang_then_interrupt(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "h")
            await ws.recv()
            pid = sim.submit(graph(steps=8, text="[[sim:hang:3]]"), client_id="h")
            msgs = await ws.until(lambda m: m["type"] == "progress" and m["data"]["value"] == 2)
            assert [m for m in await ws.quiet(0.4) if m["type"] in ("progress", "progress_state")] == []
            assert sim.get("/history/" + pid).json() == {}
            assert sim.post("/interrupt").status == 200
            msgs = await ws.until(done_for(pid))
            assert msgs[0]["type"] == "execution_interrupted"
            await ws.close()
            return pid
    pid = run(go())
    assert sim.wait_history(pid)["status"]["messages"][-1][0] == "execution_interrupted"


def test_fault_exit_kills_process(sim):
    sim.fault(fault="exit")

    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "x")
            await ws.recv()
            sim.submit(graph(steps=6), client_id="x")
            with pytest.raises(ConnectionError):
                await ws.until(lambda m: False, timeout=10)
    run(go())
    assert sim.proc.wait(10) == 3


def test_fault_drop_ws_render_continues(sim):
    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "d")
            await ws.recv()
            pid = sim.submit(graph(steps=6, text="[[sim:drop_ws]]"), client_id="d")
            with pytest.raises(ConnectionError):
                await ws.until(lambda m: False, timeout=10)
            entry = sim.wait_history(pid)
            assert entry["status"]["status_str"] == "success"
            ws2 = await WS.connect(session, sim, "d")           # reconnecting works
            assert (await ws2.recv())["data"]["sid"] == "d"
            await ws2.close()
    run(go())
    assert output_files(sim) == ["ComfyUI_00001_.png"]


def test_fault_drop_ws_close_mode(sim):
    sim.fault(fault="drop_ws", mode="close", step=2)

    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await WS.connect(session, sim, "d")
            await ws.recv()
            pid = sim.submit(graph(steps=4), client_id="d")
            with pytest.raises(ConnectionError):
                await ws.until(lambda m: False, timeout=10)
            assert ws.ended_by == (aiohttp.WSMsgType.CLOSE, 1001)   # a close frame, going away
            assert sim.wait_history(pid)["status"]["completed"] is True
    run(go())


def test_fault_http500(sim):
    sim.fault(fault="http500", count=2)                          # default route /prompt
    for path in ("/prompt", "/api/prompt"):
        r = sim.post(path, {"prompt": graph()})
        assert r.status == 500 and r.text == GENERIC_500
    assert sim.post("/prompt", {"prompt": graph()}).status == 200
    sim.fault(fault="http500", route="/history", method="GET")
    assert sim.post("/history", {"clear": False}).status == 200     # method does not match
    assert sim.get("/history").status == 500
    assert sim.get("/history").status == 200


def test_fault_view_delay_and_slow(sim):
    pid = sim.submit(graph())
    img = sim.wait_history(pid)["outputs"]["9"]["images"][0]
    sim.fault(fault="view_delay", ms=400)
    t = time.monotonic()
    assert sim.get("/view?" + urllib.parse.urlencode(img)).status == 200
    assert time.monotonic() - t >= 0.38
    t = time.monotonic()
    assert sim.get("/view?" + urllib.parse.urlencode(img)).status == 200
    assert time.monotonic() - t < 0.35
    t = time.monotonic()
    sim.wait_history(sim.submit(graph(seed=2, steps=5, text="[[sim:slow:80]]")))
    assert time.monotonic() - t >= 0.4


def test_seed_faults_flag(make_sim):
    s = make_sim("--seed-faults", "error:1")
    assert [f["fault"] for f in s.get("/_sim/faults").json()["faults"]] == ["error"]
    h = s.wait_history(s.submit(graph()))
    assert h["status"]["status_str"] == "error"


def test_stats_model_swaps_renders_and_reset(sim):
    st = sim.stats()
    assert st["model_loads"] == 0 and st["loaded_model"] is None and st["idle_gaps"]["count"] == 0
    for i, ck in enumerate(["sd15.safetensors", "sdxl.safetensors", "sd15.safetensors"]):
        sim.wait_history(sim.submit(graph(seed=i, ckpt=ck)))
    st = sim.stats()
    assert st["model_loads"] == 3 and st["loaded_model"] == "sd15.safetensors"
    sim.wait_history(sim.submit(graph(seed=50)))                  # same model: no swap
    assert sim.stats()["model_loads"] == 3
    sim.post("/free", {"unload_models": True})
    sim.wait_until(lambda: sim.stats()["loaded_model"] is None, what="unload")
    sim.wait_history(sim.submit(graph(seed=50, steps=4)))         # loader cached, model reloaded
    st = sim.stats()
    assert st["model_loads"] == 4
    assert st["prompts_received"] == 5 and st["renders_started"] == 5 and st["renders_completed"] == 5
    assert st["images_written"] == 5 and st["queue_length"] == 0 and st["queue_running"] == 0
    assert st["busy_ms"] >= 4 * 20                                # at least the model loads
    assert st["idle_gaps"]["count"] == 4 and st["idle_gaps"]["max_ms"] <= st["idle_gaps"]["total_ms"]
    assert 0 < st["idle_gaps"]["p50_ms"] <= st["idle_gaps"]["p99_ms"] <= st["idle_gaps"]["max_ms"]
    assert st["busy_ms"] <= st["window_ms"]
    assert st["uptime_ms"] > 0
    z = sim.post("/_sim/stats/reset").json()
    assert z["model_loads"] == 0 and z["renders_completed"] == 0 and z["idle_gaps"]["count"] == 0
    assert z["loaded_model"] == "sd15.safetensors"


def test_anti_csrf_origin_check(sim):
    host = "127.0.0.1:%d" % sim.port
    r = sim.get("/queue", headers={"Origin": "http://evil.example"})
    assert r.status == 403 and r.body == b""
    r = sim.get("/queue", headers={"Origin": "http://%s" % host})
    assert r.status == 200
    assert sim.get("/queue").status == 200


# ----------------------------------------------------------------------------------------
# what the real server showed (tests/comfyreal/FACTS.md)

def post_chain(width=64, height=64, radius=3, prefix="chain"):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": 1,
                                                     "color": 0x808080}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                     "width": 96, "height": 0, "crop": "disabled"}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": radius, "sigma": 1.0}},
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }


def test_post_processing_chain_and_object_info(sim):
    h = sim.wait_history(sim.submit(post_chain()))
    assert h["status"]["status_str"] == "success"
    img = h["outputs"]["5"]["images"][0]
    w, hh, _, _ = png_decode(sim.get("/view?filename=" + img["filename"]).body)
    assert (w, hh) == (96, 96)            # height 0 keeps the aspect ratio
    info = sim.get("/object_info/ImageBlur").json()["ImageBlur"]
    assert info["display_name"] is None and info["output_tooltips"] == [None]
    assert info["python_module"] == "comfy_extras.nodes_post_processing"
    assert (info["deprecated"], info["experimental"], info["api_node"]) == (False, False, False)
    assert sim.get("/object_info/ImageScale").json()["ImageScale"]["display_name"] == "Upscale Image"


def test_image_blur_radius_raises_at_run_time(sim):
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
         "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 8, "sigma": 1.0}},
         "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}
    h = sim.wait_history(sim.submit(g))
    name, err = h["status"]["messages"][-1]
    assert name == "execution_error" and h["status"]["status_str"] == "error"
    assert err["exception_type"] == "RuntimeError"
    assert err["exception_message"] == (
        "Argument #4: Padding size should be less than the corresponding input dimension, but got: "
        "padding (8, 8) at dimension 3 of input [1, 3, 4, 4]\n")
    assert err["node_id"] == "2" and err["node_type"] == "ImageBlur" and err["executed"] == ["1"]
    assert set(err["current_inputs"]) == {"image", "blur_radius", "sigma"}
    assert err["current_inputs"]["blur_radius"] == [8] and err["current_inputs"]["sigma"] == [1.0]
    assert sorted(err["current_outputs"]) == ["1", "2", "3"]
    assert all(isinstance(t, str) for t in err["traceback"]) and err["traceback"]
    assert h["outputs"] == {} and h["meta"] == {}


def test_save_animated_webp_history(sim):
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 16, "batch_size": 3, "color": 9}},
         "2": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["1", 0], "filename_prefix": "anim/w",
                                                            "fps": 6.0, "lossless": True, "quality": 80,
                                                            "method": "default"}}}
    h = sim.wait_history(sim.submit(g))
    assert h["outputs"] == {"2": {"images": [{"filename": "w_00001_.webp", "subfolder": "anim", "type": "output"}],
                                  "animated": [True]}}
    data = sim.get("/view?filename=w_00001_.webp&subfolder=anim").body
    assert data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8X" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert data.count(b"ANMF") == 3


def _frames(sim, g, flags=None, client="pv", timeout=15):
    async def go():
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(sim.url + "/ws?clientId=" + client)
            if flags is not None:
                await ws.send_str(json.dumps({"type": "feature_flags", "data": flags}))
            st, body = await apost(s, sim, "/prompt", {"prompt": g, "client_id": client})
            pid = body["prompt_id"]
            out = []
            while True:
                msg = await asyncio.wait_for(ws.receive(), timeout)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    out.append(("binary", msg.data))
                    continue
                m = json.loads(msg.data)
                out.append((m["type"], m["data"]))
                if done_for(pid)(m):
                    await ws.close()
                    return out
    return run(go())


def test_binary_preview_frames(make_sim):
    sim = make_sim("--preview-method", "latent2rgb")
    msgs = _frames(sim, graph(steps=2))
    kinds = [k for k, _ in msgs if k in ("progress", "binary")]
    assert kinds == ["progress", "binary", "progress", "binary"]       # legacy: after progress
    frame = [d for k, d in msgs if k == "binary"][0]
    assert struct.unpack(">II", frame[:8]) == (1, 1) and frame[8:11] == b"\xff\xd8\xff"
    msgs = _frames(sim, graph(steps=2, seed=6), flags={"supports_preview_metadata": True}, client="pv2")
    kinds = [k for k, _ in msgs if k in ("progress", "binary")]
    assert kinds == ["binary", "progress", "binary", "progress"]       # with metadata: before
    frame = [d for k, d in msgs if k == "binary"][0]
    (event, n) = struct.unpack(">II", frame[:8])
    meta = json.loads(frame[8:8 + n])
    assert event == 4 and meta["node_id"] == "3" and meta["image_type"] == "image/jpeg"
    assert frame[8 + n:11 + n] == b"\xff\xd8\xff"
    # no previews by default
    assert not [k for k, _ in _frames(make_sim(), graph(steps=2)) if k == "binary"]


def test_fault_silent_node_sends_nothing_and_ignores_interrupt(sim):
    sim.fault(fault="silent", ms=1500, node="ImageBlur")

    async def go():
        async with aiohttp.ClientSession() as s:
            ws = await WS.connect(s, sim, "quiet")
            st, body = await apost(s, sim, "/prompt", {"prompt": post_chain(), "client_id": "quiet"})
            pid = body["prompt_id"]
            await ws.until(lambda m: m["type"] == "executing" and m["data"].get("node") == "3")
            t0 = time.monotonic()
            await apost(s, sim, "/interrupt", {"prompt_id": pid})
            silent = await ws.quiet(1.0)
            rest = await ws.until(done_for(pid))
            return silent, rest, time.monotonic() - t0
    silent, rest, took = run(go())
    assert silent == []                      # nothing at all while the node runs
    assert took >= 1.0
    # the interrupt is seen when the next node starts
    assert [m["type"] for m in rest if m["type"].startswith("execution_")] == ["execution_interrupted"]
    assert [m for m in rest if m["type"] == "execution_interrupted"][0]["data"]["node_id"] == "4"


def test_interrupt_race_lost_between_dequeue_and_start(sim):
    """ComfyUI clears its interrupt flag when a prompt starts: an /interrupt {prompt_id} that
    lands after the prompt left the queue but before it started is lost."""
    sim.fault(fault="dequeue_delay", ms=800)
    pid = sim.submit(post_chain(prefix="race"))
    sim.wait_until(lambda: sim.get("/queue").json()["queue_running"], what="running")
    sim.post("/queue", {"delete": [pid]})                      # too late: it is running
    sim.post("/interrupt", {"prompt_id": pid})                 # accepted ...
    h = sim.wait_history(pid)
    assert h["status"]["status_str"] == "success"              # ... and forgotten
    assert "Interrupting prompt " + pid in sim.read_log()
    # once the prompt has started, the same sequence interrupts it
    sim.fault(fault="silent", ms=800, node="ImageScale")
    pid = sim.submit(post_chain(prefix="race2"))
    sim.wait_until(lambda: sim.get("/queue").json()["queue_running"], what="running")
    time.sleep(0.2)
    sim.post("/queue", {"delete": [pid]})
    sim.post("/interrupt", {"prompt_id": pid})
    h = sim.wait_history(pid)
    assert h["status"]["messages"][-1][0] == "execution_interrupted"
