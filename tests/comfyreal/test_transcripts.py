"""The simulator (tests/comfysim) and the real ComfyUI 0.3.64 held to the same transcripts.

The same prompts, in the same order, go to the real server ($GENQ_COMFYUI_REAL_URL, started
by `tests/stack up --comfyui real`) and to a simulator this test starts; each server's
WebSocket messages (types and fields, in order), POST /prompt answers, /history entries and
/queue snapshots are normalised (transcript.py) and must be equal. A difference fails with a
diff of the two transcripts. Without $GENQ_COMFYUI_REAL_URL the test is skipped.

  GENQ_COMFYUI_REAL_URL=http://127.0.0.1:PORT /usr/bin/python3 -m pytest -q tests/comfyreal
"""

import asyncio
import difflib
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import comfyclient   # noqa: E402
import graphs        # noqa: E402
import transcript    # noqa: E402

REAL_URL = os.environ.get("GENQ_COMFYUI_REAL_URL")
SIM = os.path.join(os.path.dirname(HERE), "comfysim", "comfysim.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TIMEOUT = float(os.environ.get("GENQ_TRANSCRIPT_TIMEOUT", "240"))   # per prompt, real server

pytestmark = pytest.mark.skipif(not REAL_URL, reason="no real ComfyUI ($GENQ_COMFYUI_REAL_URL)")


def server_preview_method(url):
    import urllib.request
    with urllib.request.urlopen(url + "/system_stats", timeout=10) as r:
        argv = json.load(r)["system"]["argv"]
    for i, a in enumerate(argv):
        if a == "--preview-method" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--preview-method="):
            return a.split("=", 1)[1]
    return "none"


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("sim"))
    port_file = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "sim.log"), "ab")
    cmd = [PY, SIM, "--listen", "127.0.0.1", "--port", "0", "--base-directory", os.path.join(tmp, "base"),
           "--port-file", port_file, "--model-load-ms", "50", "--step-ms", "20",
           "--checkpoints", graphs.CHECKPOINT, "--preview-method", server_preview_method(REAL_URL)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 20
    url = None
    while time.monotonic() < deadline and url is None:
        if proc.poll() is not None:
            raise RuntimeError("comfysim exited early")
        try:
            with open(port_file) as f:
                text = f.read()
            if text.endswith("\n"):
                url = "http://127.0.0.1:%d" % int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    if url is None:
        raise RuntimeError("comfysim did not start")
    yield url
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# ----------------------------------------------------------------------------------------
# the scenario: one sequence of prompts, recorded the same way on any server

async def run_prompt(c, norm, out, graph, interrupt_after_progress=False, queue_snapshot=False):
    start = c.mark()
    st, body = await c.submit(graph)
    out.append(norm.post(st, body))
    if st != 200:
        return None
    pid = body["prompt_id"]
    if interrupt_after_progress:
        await c.wait_for(lambda m: m.kind == "progress" and m.data.get("prompt_id") == pid,
                         timeout=TIMEOUT, start=start)
        if queue_snapshot:
            out.append(norm.queue(await c.queue()))
        await c.post("/interrupt", {"prompt_id": pid})
    end = await c.wait_done(pid, timeout=TIMEOUT, start=start)
    entries = [norm.message(m) for m in c.since(start, end + 1)]
    out.extend(transcript.fold_steps(entries, exact=not interrupt_after_progress))
    out.append(norm.history(await c.wait_history(pid, timeout=30)))
    return pid


async def scenario(url, prefix):
    """Returns {section name: normalised entries}."""
    sections = {}
    async with comfyclient.Client(url, client_id="genq-transcripts-" + uuid.uuid4().hex[:8]) as c:
        norm = transcript.Normaliser(c.client_id)
        await c.wait_idle(timeout=TIMEOUT)
        # a known start: no cached node outputs, no model loaded
        await c.post("/free", {"unload_models": True, "free_memory": True})
        await c.connect()
        await c.wait_for(lambda m: m.kind == "status")
        sections["connect"] = [norm.message(m) for m in c.messages]

        async def section(name, *prompts, **kw):
            out = []
            for g in prompts:
                await run_prompt(c, norm, out, g, **kw)
            sections[name] = out

        p = prefix + "/"
        await section("empty_image_save", graphs.empty_save(p + "empty"))
        await section("post_processing_chain", graphs.post_chain(p + "chain"))
        await section("txt2img_64x64_2_steps", graphs.txt2img(p + "t2i", seed=42))
        batch = graphs.txt2img(p + "batch", seed=43, batch=2)
        await section("batch_of_2", batch)
        await section("cached_rerun", batch)
        await section("validation_error", graphs.validation_error(p + "bad"))
        await section("missing_node_class", graphs.missing_node_class(p + "bad"))
        await section("missing_model", graphs.missing_model(p + "bad"))
        await section("runtime_error", graphs.runtime_error(p + "err"))
        await section("animated_webp_output", graphs.animated_webp(p + "webp"))
        await section("preview_image_output", graphs.preview())
        await section("interrupt_running_prompt", graphs.txt2img(p + "int", seed=44, steps=20),
                      interrupt_after_progress=True, queue_snapshot=True)
    return sections


def test_simulator_matches_real_server(sim_url):
    prefix = "transcripts-" + uuid.uuid4().hex[:8]

    async def both():
        return await asyncio.gather(scenario(REAL_URL, prefix), scenario(sim_url, prefix))

    t0 = time.monotonic()
    real, sim = asyncio.run(asyncio.wait_for(both(), 14 * TIMEOUT))
    took = time.monotonic() - t0
    out_dir = os.environ.get("GENQ_TRANSCRIPT_DIR")
    if out_dir:
        for name, data in (("real", real), ("sim", sim)):
            with open(os.path.join(out_dir, "transcript-%s.json" % name), "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
    diffs = []
    for name in real:
        a, b = transcript.dumps(real[name]), transcript.dumps(sim.get(name, []))
        if a != b:
            diffs.append("== %s\n%s" % (name, "\n".join(difflib.unified_diff(
                a, b, "real ComfyUI 0.3.64", "comfysim", lineterm="", n=2))))
    print("transcripts: %d sections, %d entries, %.1f s" % (len(real), sum(map(len, real.values())), took))
    assert not diffs, "the simulator differs from the real server:\n" + "\n".join(diffs)
