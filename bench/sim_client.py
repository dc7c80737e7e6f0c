#!/usr/bin/python3
"""The simulator's own limit: the fastest a client can push zero-time renders through it on
the path genq uses (POST /prompt, the WebSocket's "done", GET /history, GET /view), with
`depth` prompts queued ahead as genq keeps them. Nothing else: no Kafka, no database, no
store. Prints one JSON line: {"jobs", "seconds", "jobs_per_s"}.

    sim_client.py URL N [DEPTH] [STEPS] [STEP_MS]   (STEP_MS: each step takes that long)

With --latency RATE, the floor of genq's added latency instead: N prompts offered at RATE a
second (not waiting for each other), each timed from its POST to its last /view, less its
render (execution_start to the "done" event, as they reach the client). Prints
{"jobs", "p50_ms", "p99_ms", "max_ms"}.

    sim_client.py --latency RATE URL N STEPS STEP_MS
"""
import asyncio
import json
import sys
import time
import uuid

import aiohttp


def workflow(i, steps, step_ms=0):
    text = f"limit {i}" + (f" [[sim:slow:step_ms={step_ms}]]" if step_ms else "")
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": i, "steps": steps, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": f"limit/{i}", "images": ["8", 0]}},
    }


async def main():
    url, n = sys.argv[1], int(sys.argv[2])
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    step_ms = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    client = str(uuid.uuid4())
    done = asyncio.Queue()
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(f"{url}/ws?clientId={client}")

        async def reader():
            async for m in ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    continue
                d = json.loads(m.data)
                if d.get("type") == "executing" and d["data"].get("node") is None \
                        and d["data"].get("prompt_id"):
                    await done.put(d["data"]["prompt_id"])

        rt = asyncio.create_task(reader())
        sent = finished = 0

        async def submit():
            nonlocal sent
            pid = str(uuid.uuid4())
            body = {"prompt": workflow(sent, steps, step_ms), "client_id": client, "prompt_id": pid}
            sent += 1
            async with s.post(f"{url}/prompt", json=body) as r:
                await r.read()

        t0 = time.monotonic()
        for _ in range(min(n, depth + 1)):
            await submit()
        while finished < n:
            pid = await done.get()
            if sent < n:
                await submit()
            async with s.get(f"{url}/history/{pid}") as r:
                h = await r.json()
            for out in h[pid]["outputs"].values():
                for img in out.get("images", []):
                    async with s.get(f"{url}/view", params=img) as r:
                        await r.read()
            finished += 1
        secs = time.monotonic() - t0
        rt.cancel()
        await ws.close()
    print(json.dumps({"jobs": n, "seconds": round(secs, 3), "jobs_per_s": round(n / secs, 1)}))


async def latency(rate, url, n, steps, step_ms):
    client = str(uuid.uuid4())
    started, done = {}, {}
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(f"{url}/ws?clientId={client}")

        async def reader():
            async for m in ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    continue
                d = json.loads(m.data)
                pid = (d.get("data") or {}).get("prompt_id")
                if d.get("type") == "execution_start" and pid:
                    started[pid] = time.monotonic()
                elif d.get("type") == "executing" and d["data"].get("node") is None and pid \
                        and pid in waiting:
                    done[pid] = time.monotonic()
                    waiting.pop(pid).set()

        waiting = {}
        rt = asyncio.create_task(reader())
        added = []

        async def one(i):
            pid = str(uuid.uuid4())
            ev = waiting[pid] = asyncio.Event()
            body = {"prompt": workflow(i, steps, step_ms), "client_id": client, "prompt_id": pid}
            t0 = time.monotonic()
            async with s.post(f"{url}/prompt", json=body) as r:
                await r.read()
            await ev.wait()
            async with s.get(f"{url}/history/{pid}") as r:
                h = await r.json()
            for out in h[pid]["outputs"].values():
                for img in out.get("images", []):
                    async with s.get(f"{url}/view", params=img) as r:
                        await r.read()
            added.append((time.monotonic() - t0 - (done[pid] - started[pid])) * 1000)

        tasks = []
        t_next = time.monotonic()
        for i in range(n):
            t_next += 1.0 / rate
            await asyncio.sleep(max(0.0, t_next - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        rt.cancel()
        await ws.close()
    added.sort()
    print(json.dumps({"jobs": len(added), "p50_ms": round(added[len(added) // 2], 1),
                      "p99_ms": round(added[min(len(added) - 1, int(0.99 * len(added)))], 1),
                      "max_ms": round(added[-1], 1)}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--latency":
        a = sys.argv[2:]
        asyncio.run(latency(float(a[0]), a[1], int(a[2]), int(a[3]), int(a[4])))
    else:
        asyncio.run(main())
