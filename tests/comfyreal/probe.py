#!/usr/bin/python3
"""Experiments against a ComfyUI server (the real one, or the simulator) that FACTS.md reports.

  /usr/bin/python3 tests/comfyreal/probe.py URL EXPERIMENT [--n N] [--log FILE]

Experiments:
  transcript NAME   one prompt of graphs.py (empty_save, post_chain, txt2img, runtime_error, ...):
                    every WebSocket message with the time since the previous one, then /history
  errors            POST /prompt error shapes: validation error, missing node class, missing model
  race              submit, then at once POST /queue {"delete": [id]} and POST /interrupt
                    {"prompt_id": id}, N times: how often the prompt slips through and renders
  cancel            /interrupt and /queue delete at each moment of a prompt's life
  reconnect         a client that reconnects with the same clientId mid-render
  silent            how long single nodes stay silent (blur, scale, decode, checkpoint load)
  outputs           what /history says for each kind of output node
  oom               an allocation that fails (the CPU's out-of-memory)

--log FILE: the server's log, to quote what it printed. Every wait has a deadline.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import comfyclient  # noqa: E402
import graphs       # noqa: E402

RUN = uuid.uuid4().hex[:8]


def show(m, prev):
    d = json.dumps(m.data)
    if len(d) > 600:
        d = d[:600] + "..."
    return "%+8.3f %-22s %s" % (m.t - prev, m.kind, d)


def dump_messages(msgs, t0=None):
    prev = t0 if t0 is not None else (msgs[0].t if msgs else 0)
    for m in msgs:
        print(show(m, prev))
        prev = m.t


def log_tail(path, since):
    if not path:
        return []
    with open(path, "rb") as f:
        f.seek(since)
        return f.read().decode("utf-8", "replace").splitlines()


def log_size(path):
    return os.path.getsize(path) if path else 0


async def exp_transcript(url, args):
    async with comfyclient.Client(url) as c:
        await c.connect()
        await c.wait_for(lambda m: m.kind == "status")
        g = getattr(graphs, args.name)("probe-%s/%s" % (RUN, args.name))
        t0 = time.monotonic()
        st, body = await c.submit(g)
        print("POST /prompt ->", st, json.dumps(body))
        if st != 200:
            return
        pid = body["prompt_id"]
        await c.wait_done(pid, timeout=args.timeout)
        print("total %.3f s" % (time.monotonic() - t0))
        dump_messages(c.messages, t0)
        print("GET /history/id ->", json.dumps(await c.history(pid), indent=1))


async def exp_errors(url, args):
    async with comfyclient.Client(url) as c:
        for name in ("validation_error", "missing_node_class", "missing_model"):
            st, body = await c.submit(getattr(graphs, name)("probe-%s/e" % RUN))
            print("%s: HTTP %s" % (name, st))
            print(json.dumps(body, indent=1))


async def exp_race(url, args):
    """Dequeue-then-interrupt right after submitting, as a canceller does."""
    outcomes = {}
    async with comfyclient.Client(url) as c:
        await c.connect()
        for i in range(args.n):
            await c.wait_idle()
            g = graphs.post_chain("probe-%s/race" % RUN, width=1024, height=1024, scale_to=(1536, 1536),
                                  blur_radius=15, sigma=5.0)
            g["1"]["inputs"]["color"] = i          # never cached
            delay = (i % 10) * 0.002
            st, body = await c.submit(g)
            pid = body["prompt_id"]
            await asyncio.sleep(delay)
            await c.post("/queue", {"delete": [pid]})
            await c.post("/interrupt", {"prompt_id": pid})
            q = await c.queue()
            where = ("running" if any(x[1] == pid for x in q["queue_running"]) else
                     "pending" if any(x[1] == pid for x in q["queue_pending"]) else "gone")
            deadline = time.monotonic() + 60
            h = None
            while time.monotonic() < deadline:
                h = await c.history(pid)
                q = await c.queue()
                if h or not any(x[1] == pid for x in q["queue_running"] + q["queue_pending"]):
                    break
                await asyncio.sleep(0.05)
            h = await c.history(pid)
            if not h:
                outcome = "deleted (never ran, no history)"
            else:
                last = h["status"]["messages"][-1][0]
                outcome = {"execution_success": "RENDERED TO THE END (interrupt lost)",
                           "execution_interrupted": "interrupted",
                           "execution_error": "error"}.get(last, last)
            outcomes.setdefault(outcome, []).append((round(delay * 1000), where))
            print("try %2d delay %2d ms: /queue right after: %-7s -> %s" % (i, delay * 1000, where, outcome))
    print(json.dumps({k: len(v) for k, v in outcomes.items()}))


async def exp_race_behind(url, args):
    """B queued behind A; the moment A's end is seen on the WebSocket, dequeue-then-interrupt B
    (what a canceller that reacts to a finished render does)."""
    outcomes = {}
    async with comfyclient.Client(url) as c:
        await c.connect()
        for i in range(args.n):
            await c.wait_idle()
            start = c.mark()
            a = graphs.post_chain("probe-%s/ra" % RUN, width=256, height=256, scale_to=(256, 256))
            base = int(time.time() * 10) % 0xFFFF00
            a["1"]["inputs"]["color"] = base + 2 * i % 200
            b = graphs.post_chain("probe-%s/rb" % RUN, width=1024, height=1024, scale_to=(1536, 1536),
                                  blur_radius=15, sigma=5.0)
            b["1"]["inputs"]["color"] = base + (2 * i + 1) % 200
            _, ra = await c.submit(a)
            _, rb = await c.submit(b)
            pa, pb = ra["prompt_id"], rb["prompt_id"]
            if args.trigger == "end":
                await c.wait_done(pa, start=start)
            else:       # A's last node started: A ends within milliseconds
                await c.wait_for(lambda m: m.kind == "executing" and m.data.get("node") == "5"
                                 and m.data.get("prompt_id") == pa, start=start)
            await asyncio.sleep(0.0005 * (i % args.sweep))
            d = await c.post("/queue", {"delete": [pb]})
            s = await c.post("/interrupt", {"prompt_id": pb})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                q = await c.queue()
                if not any(x[1] == pb for x in q["queue_running"] + q["queue_pending"]):
                    break
                await asyncio.sleep(0.05)
            h = await c.history(pb)
            if not h:
                outcome = "deleted (never ran, no history)"
            else:
                last = h["status"]["messages"][-1][0]
                outcome = {"execution_success": "RENDERED TO THE END (interrupt lost)",
                           "execution_interrupted": "interrupted",
                           "execution_error": "error"}.get(last, last)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            print("try %2d: %s" % (i, outcome), flush=True)
    print(json.dumps(outcomes))


async def exp_cancel(url, args):
    """What /interrupt {prompt_id} and /queue {delete} do at each moment."""
    async with comfyclient.Client(url) as c:
        await c.connect()
        await c.wait_idle()

        def slow(tag, color):
            g = graphs.post_chain("probe-%s/%s" % (RUN, tag), width=1024, height=1024,
                                  scale_to=(2048, 2048), blur_radius=15, sigma=5.0)
            g["1"]["inputs"]["color"] = color
            return g

        print("== A running, B pending: interrupt B by id, delete A, then look")
        _, a = await c.submit(slow("a", 1))
        _, b = await c.submit(slow("b", 2))
        a, b = a["prompt_id"], b["prompt_id"]
        await c.wait_for(lambda m: m.kind == "executing" and m.data.get("prompt_id") == a
                         and m.data.get("node") == "3")
        await c.post("/interrupt", {"prompt_id": b})
        await c.post("/queue", {"delete": [a]})
        q = await c.queue()
        print("queue after: running %s pending %s" % ([x[1] == a for x in q["queue_running"]],
                                                    [x[1] == b for x in q["queue_pending"]]))
        await c.wait_done(b, timeout=args.timeout)
        ha, hb = await c.history(a), await c.history(b)
        print("A:", ha["status"]["status_str"], [m[0] for m in ha["status"]["messages"]])
        print("B:", hb["status"]["status_str"], [m[0] for m in hb["status"]["messages"]])

        print("== A running, B pending: delete B (pending), interrupt A by id")
        start = c.mark()
        _, a = await c.submit(slow("c", 3))
        _, b = await c.submit(slow("d", 4))
        a, b = a["prompt_id"], b["prompt_id"]
        await c.wait_for(lambda m: m.kind == "executing" and m.data.get("prompt_id") == a
                         and m.data.get("node") == "3", start=start)
        s, _ = await c.post("/queue", {"delete": [b]})
        q = await c.queue()
        print("delete B -> HTTP %s; pending now %d" % (s, len(q["queue_pending"])))
        s, _ = await c.post("/interrupt", {"prompt_id": a})
        await c.wait_done(a, timeout=args.timeout, start=start)
        ha = await c.history(a)
        print("A:", ha["status"]["status_str"], ha["status"]["completed"], json.dumps(ha["status"]["messages"][-1]))
        print("A outputs:", json.dumps(ha["outputs"]))
        print("B history:", json.dumps(await c.history(b)))
        print("messages for A after the interrupt:")
        i = start
        dump_messages([m for m in c.since(start) if m.data and m.data.get("prompt_id") == a][-4:])

        print("== interrupt while idle, then submit: is the new prompt interrupted?")
        await c.wait_idle()
        await c.post("/interrupt", {})
        start = c.mark()
        _, e = await c.submit(graphs.empty_save("probe-%s/idle" % RUN, color=5))
        await c.wait_done(e["prompt_id"], start=start)
        he = await c.history(e["prompt_id"])
        print("E:", he["status"]["status_str"])

        print("== global interrupt during the LAST node (a silent SaveImage of a big batch)")
        g = graphs.empty_save("probe-%s/last" % RUN, width=1024, height=1024, batch=24, color=7)
        start = c.mark()
        _, f = await c.submit(g)
        f = f["prompt_id"]
        await c.wait_for(lambda m: m.kind == "executing" and m.data.get("node") == "2"
                         and m.data.get("prompt_id") == f, start=start)
        await asyncio.sleep(0.2)
        await c.post("/interrupt", {})
        await c.wait_done(f, timeout=args.timeout, start=start)
        hf = await c.history(f)
        print("F:", hf["status"]["status_str"], [m[0] for m in hf["status"]["messages"]],
              "images:", len(hf["outputs"].get("2", {}).get("images", [])))
        start = c.mark()
        _, g2 = await c.submit(graphs.empty_save("probe-%s/after" % RUN, color=8))
        await c.wait_done(g2["prompt_id"], start=start)
        print("next prompt after it:", (await c.history(g2["prompt_id"]))["status"]["status_str"])


async def exp_reconnect(url, args):
    cid = "genq-probe-" + RUN
    async with comfyclient.Client(url, client_id=cid) as c1:
        await c1.connect()
        await c1.wait_idle()
        g = graphs.post_chain("probe-%s/rc" % RUN, width=1024, height=1024, scale_to=(2048, 2048),
                              blur_radius=15, sigma=5.0)
        g["1"]["inputs"]["color"] = int(time.time()) % 1000
        st, body = await c1.submit(g)
        pid = body["prompt_id"]
        await c1.wait_for(lambda m: m.kind == "executing" and m.data.get("node") == "3")
        print("client 1 saw up to executing 3; disconnects")
        await c1.disconnect()
        async with comfyclient.Client(url, client_id=cid) as c2:
            await c2.connect()
            await c2.wait_done(pid, timeout=args.timeout)
            print("client 2 (same clientId, new socket) saw:")
            dump_messages(c2.messages)
        print("== old socket still open when the new one connects, then the old one closes")
        g["1"]["inputs"]["color"] += 1
        c1.messages = []
        await c1.connect()
        st, body = await c1.submit(g)
        pid = body["prompt_id"]
        await c1.wait_for(lambda m: m.kind == "executing" and m.data.get("node") == "3")
        async with comfyclient.Client(url, client_id=cid) as c3:
            await c3.connect()
            await c3.wait_for(lambda m: m.kind == "status")
            await c1.disconnect()
            try:
                await c3.wait_done(pid, timeout=min(args.timeout, 30))
                print("client 3 got the end")
            except TimeoutError:
                print("client 3 got NOTHING more after the old socket closed")
            dump_messages(c3.messages)
            h = await c3.wait_history(pid)
            print("history:", h["status"]["status_str"])
        print("== a client connecting after the prompt finished, same clientId")
        async with comfyclient.Client(url, client_id=cid) as c4:
            await c4.connect()
            await asyncio.sleep(1)
            dump_messages(c4.messages)


async def timed_node(c, g, node, label, timeout):
    start = c.mark()
    st, body = await c.submit(g)
    if st != 200:
        print(label, "HTTP", st, json.dumps(body)[:300])
        return
    pid = body["prompt_id"]
    await c.wait_done(pid, timeout=timeout, start=start)
    msgs = c.since(start)
    for i, m in enumerate(msgs):
        if m.kind == "executing" and m.data.get("node") == node:
            nxt = msgs[i + 1]
            print("%-44s silent %.2f s (executing %s .. %s)" % (label, nxt.t - m.t, node, nxt.kind))
            return
    print(label, "node", node, "did not run")


async def exp_silent(url, args):
    async with comfyclient.Client(url) as c:
        await c.connect()
        await c.wait_idle()
        n = int(time.time()) % 1000
        for size in (512, 1024, 2048):
            g = graphs.post_chain("probe-%s/s" % RUN, width=size, height=size, scale_to=(size, size),
                                  blur_radius=15, sigma=5.0)
            g["1"]["inputs"]["color"] = n + size
            await timed_node(c, g, "3", "ImageBlur r15 %dx%d" % (size, size), args.timeout)
        g = graphs.post_chain("probe-%s/s" % RUN, width=512, height=512, scale_to=(4096, 4096))
        g["2"]["inputs"]["upscale_method"] = "lanczos"
        g["1"]["inputs"]["color"] = n + 1
        await timed_node(c, g, "2", "ImageScale lanczos 512->4096", args.timeout)
        await c.post("/free", {"unload_models": True, "free_memory": True})
        await asyncio.sleep(1)
        await timed_node(c, graphs.txt2img("probe-%s/s" % RUN, seed=n), "4",
                         "CheckpointLoaderSimple (after /free)", args.timeout)
        g = graphs.txt2img("probe-%s/s" % RUN, seed=n + 1, width=256, height=256, steps=1)
        await timed_node(c, g, "8", "VAEDecode 256x256", args.timeout)


async def exp_outputs(url, args):
    async with comfyclient.Client(url) as c:
        await c.connect()
        wav = make_wav()
        form = __import__("aiohttp").FormData()
        form.add_field("image", wav, filename="probe-%s.wav" % RUN, content_type="audio/wav")
        async with c._session.post(c.url + "/upload/image", data=form) as r:
            up = await r.json()
        print("upload ->", up)
        cases = {
            "PreviewImage": graphs.preview(),
            "SaveAnimatedWEBP": graphs.animated_webp("probe-%s/webp" % RUN),
            "SaveAnimatedPNG": {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 2, "color": 1}},
                "2": {"class_type": "SaveAnimatedPNG", "inputs": {"images": ["1", 0], "filename_prefix": "probe-%s/apng" % RUN,
                                                                   "fps": 6.0, "compress_level": 4}}},
            "SaveAudio": {
                "1": {"class_type": "LoadAudio", "inputs": {"audio": up["name"]}},
                "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "probe-%s/audio" % RUN}}},
            "SaveVideo": {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 4, "color": 2}},
                "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
                "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "filename_prefix": "probe-%s/video" % RUN,
                                                            "format": "auto", "codec": "auto"}}},
            "SaveWEBM": {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 4, "color": 3}},
                "2": {"class_type": "SaveWEBM", "inputs": {"images": ["1", 0], "filename_prefix": "probe-%s/webm" % RUN,
                                                           "codec": "vp9", "fps": 8.0, "crf": 32.0}}},
            "SaveImageWebsocket": {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 4}},
                "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}},
        }
        for name, g in cases.items():
            start = c.mark()
            st, body = await c.submit(g)
            if st != 200:
                print("%s: HTTP %s %s" % (name, st, json.dumps(body)[:800]))
                continue
            pid = body["prompt_id"]
            await c.wait_done(pid, timeout=args.timeout, start=start)
            h = await c.history(pid)
            executed = [m.data for m in c.since(start) if m.kind == "executed"]
            binary = [m.data for m in c.since(start) if m.kind.startswith("binary")]
            print("%s: status %s; history outputs %s" % (name, h["status"]["status_str"], json.dumps(h["outputs"])))
            if h["status"]["status_str"] != "success":
                print("   ", json.dumps(h["status"]["messages"][-1])[:1500])
            print("    executed.output:", json.dumps([e["output"] for e in executed]))
            if binary:
                print("    binary frames:", json.dumps(binary))


def make_wav(seconds=0.25, rate=8000):
    import struct as st
    n = int(seconds * rate)
    data = b"".join(st.pack("<h", int(8000 * ((i // 20) % 2 * 2 - 1))) for i in range(n))
    return (b"RIFF" + st.pack("<I", 36 + len(data)) + b"WAVEfmt " +
            st.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + st.pack("<I", len(data)) + data)


async def exp_oom(url, args):
    async with comfyclient.Client(url) as c:
        await c.connect()
        g = graphs.empty_save("probe-%s/oom" % RUN, width=16384, height=16384, batch=256)
        st, body = await c.submit(g)
        pid = body["prompt_id"]
        await c.wait_done(pid, timeout=args.timeout)
        err = [m.data for m in c.messages if m.kind == "execution_error"]
        print(json.dumps(err, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("experiment")
    p.add_argument("name", nargs="?", default="txt2img")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--trigger", default="last-node", help="race_behind: end | last-node")
    p.add_argument("--sweep", type=int, default=16, help="race_behind: delays 0, 0.5, ... ms")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--log")
    args = p.parse_args()
    fn = globals().get("exp_" + args.experiment)
    if fn is None:
        p.error("unknown experiment " + args.experiment)
    since = log_size(args.log)
    asyncio.run(asyncio.wait_for(fn(args.url, args), 1800))
    if args.log:
        print("---- server log ----")
        for line in log_tail(args.log, since):
            print(line)


if __name__ == "__main__":
    main()
