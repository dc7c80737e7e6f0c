#!/usr/bin/python3
"""The kind of worker genq replaces, as the reference for wall time and CPU: for each job in
turn, POST the prompt, poll GET /history every 0.5 s until it is there, download the outputs
and write them to a directory. No queue ahead, no Kafka, no database. Prints one JSON line:
{"jobs", "seconds", "cpu_ms"}.

    polling_worker.py URL N STEP_MS STEPS OUTDIR
"""
import json
import os
import resource
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sim_client import workflow  # noqa: E402


def call(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def main():
    url, n, step_ms, steps, outdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), sys.argv[5]
    os.makedirs(outdir, exist_ok=True)
    t0 = time.monotonic()
    for i in range(n):
        wf = workflow(i, steps)
        wf["6"]["inputs"]["text"] = f"polling {i} [[sim:slow:step_ms={step_ms}]]"
        pid = str(uuid.uuid4())
        call(f"{url}/prompt", {"prompt": wf, "client_id": "polling", "prompt_id": pid})
        while True:
            time.sleep(0.5)
            h = json.loads(call(f"{url}/history/{pid}"))
            if pid in h:
                break
        for out in h[pid]["outputs"].values():
            for img in out.get("images", []):
                data = call(f"{url}/view?" + urllib.parse.urlencode(img))
                with open(os.path.join(outdir, f"{pid}-{img['filename']}"), "wb") as f:
                    f.write(data)
    secs = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"jobs": n, "seconds": round(secs, 3),
                      "cpu_ms": round((ru.ru_utime + ru.ru_stime) * 1000)}))


if __name__ == "__main__":
    main()
