#!/usr/bin/env bash
# 0001-stack: the test stack is real and answers.
# Run with the stack env exported:  eval "$(tests/stack up)"; tests/integration/0001-stack.sh
# Checks: a real Kafka broker (a java kafka.Kafka process, listed by kcat), the
# PostgreSQL database, and one full text-to-image prompt on the first ComfyUI
# simulator over HTTP + WebSocket (PNG fetched through /view, 64x64).
set -euo pipefail

fail() { printf '0001-stack: FAIL: %s\n' "$*" >&2; exit 1; }
note() { printf '0001-stack: %s\n' "$*" >&2; }

for v in GENQ_STACK_DIR GENQ_BROKERS GENQ_DATABASE_URL GENQ_COMFYUI_URL; do
  [[ -n ${!v:-} ]] || fail "$v is not set (run: eval \"\$(tests/stack up)\")"
done
[[ -d $GENQ_STACK_DIR ]] || fail "GENQ_STACK_DIR=$GENQ_STACK_DIR is not a directory"

# --- Kafka -----------------------------------------------------------------
meta=$(timeout 20 kcat -b "$GENQ_BROKERS" -L -m 10 2>&1) || fail "kcat -L failed: $meta"
grep -Eq '^ +broker [0-9]+ at ' <<<"$meta" || fail "kcat -L lists no broker: $meta"
grep -q " at $GENQ_BROKERS" <<<"$meta" || fail "kcat -L does not list $GENQ_BROKERS: $meta"
kpid=$(cat "$GENQ_STACK_DIR/pids/kafka" 2>/dev/null) || fail "no kafka pid in $GENQ_STACK_DIR/pids"
[[ -r /proc/$kpid/cmdline ]] || fail "kafka pid $kpid is not running"
kcmd=$(tr '\0' ' ' <"/proc/$kpid/cmdline")
kexe=$(readlink "/proc/$kpid/exe" 2>/dev/null || true)
[[ ${kexe##*/} == java ]] || fail "kafka pid $kpid is not a java process ($kexe: $kcmd)"
[[ " $kcmd " == *" kafka.Kafka "* ]] || fail "kafka pid $kpid does not run kafka.Kafka: $kcmd"
note "kafka ok: $(grep -Em1 '^ +broker ' <<<"$meta" | sed 's/^ *//') pid $kpid"

# --- PostgreSQL --------------------------------------------------------------
out=$(PGCONNECT_TIMEOUT=10 psql "$GENQ_DATABASE_URL" -X -At -c 'select 1' 2>&1) || fail "psql failed: $out"
[[ $out == 1 ]] || fail "psql 'select 1' answered '$out'"
note "postgres ok: $GENQ_DATABASE_URL"

# --- ComfyUI simulator: one prompt end to end ---------------------------------
timeout 60 /usr/bin/python3 - "$GENQ_COMFYUI_URL" <<'EOF' || fail "ComfyUI prompt round trip failed"
import asyncio, json, struct, sys, uuid
import aiohttp

BASE = sys.argv[1].rstrip("/")
TIMEOUT = 30.0


def die(msg):
    print("0001-stack: FAIL: comfy: " + msg, file=sys.stderr)
    sys.exit(1)


async def get_json(session, path):
    async with session.get(BASE + path) as r:
        if r.status != 200:
            die("GET %s -> HTTP %d" % (path, r.status))
        return await r.json(content_type=None)


async def main():
    client_id = str(uuid.uuid4())
    prompt_id = str(uuid.uuid4())
    tmo = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=tmo) as s:
        info = await get_json(s, "/object_info/CheckpointLoaderSimple")
        try:
            spec = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
        except (KeyError, TypeError):
            die("unexpected /object_info/CheckpointLoaderSimple: %r" % (info,))
        if isinstance(spec[0], list):
            ckpts = spec[0]
        else:  # V3 style ["COMBO", {"options": [...]}]
            ckpts = spec[1].get("options", [])
        if not ckpts:
            die("the simulator offers no checkpoint")
        ckpt = ckpts[0]

        graph = {
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red cube", "clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
            "3": {"class_type": "KSampler", "inputs": {
                "seed": int(uuid.uuid4().int % 1000000), "steps": 3, "cfg": 7.0,
                "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": ["5", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "stack0001", "images": ["8", 0]}},
        }

        async with s.ws_connect(BASE + "/ws?clientId=" + client_id, autoping=True,
                                compress=0, max_msg_size=0) as ws:
            # The server greets with a status message: the socket is registered.
            first = await asyncio.wait_for(ws.receive(), TIMEOUT)
            if first.type != aiohttp.WSMsgType.TEXT:
                die("first WebSocket frame is %r" % (first.type,))

            body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
            async with s.post(BASE + "/prompt", json=body) as r:
                text = await r.text()
                if r.status != 200:
                    die("POST /prompt -> HTTP %d: %s" % (r.status, text))
                resp = json.loads(text)
            if resp.get("prompt_id") != prompt_id:
                die("POST /prompt answered prompt_id %r, sent %r" % (resp.get("prompt_id"), prompt_id))
            if resp.get("node_errors"):
                die("node_errors: %r" % (resp["node_errors"],))

            seen = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    die("no executing(node=null) within %.0fs; saw %s" % (TIMEOUT, seen))
                msg = await asyncio.wait_for(ws.receive(), left)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    die("WebSocket closed (%r); saw %s" % (msg.type, seen))
                m = json.loads(msg.data)
                data = m.get("data") or {}
                if data.get("prompt_id") != prompt_id:
                    continue
                seen.append(m["type"])
                if m["type"] == "execution_error":
                    die("execution_error: %s" % data.get("exception_message"))
                if m["type"] == "executing" and data.get("node") is None:
                    break
            if "execution_start" not in seen:
                die("no execution_start before the end; saw %s" % seen)
            if seen.index("execution_start") != 0:
                die("execution_start is not the first event of the prompt; saw %s" % seen)

        hist = await get_json(s, "/history/" + prompt_id)
        entry = hist.get(prompt_id)
        if not entry:
            die("history has no entry for %s" % prompt_id)
        status = entry.get("status") or {}
        if status.get("status_str") != "success" or not status.get("completed"):
            die("history status %r" % (status,))
        images = (entry.get("outputs", {}).get("9") or {}).get("images") or []
        if not images:
            die("history has no images for node 9: %r" % (entry.get("outputs"),))
        img = images[0]
        params = {"filename": img["filename"], "subfolder": img.get("subfolder", ""),
                  "type": img.get("type", "output")}
        async with s.get(BASE + "/view", params=params) as r:
            if r.status != 200:
                die("GET /view %r -> HTTP %d" % (params, r.status))
            png = await r.read()
        if png[:8] != b"\x89PNG\r\n\x1a\n":
            die("/view did not return a PNG (starts %r)" % (png[:8],))
        if png[12:16] != b"IHDR":
            die("PNG does not start with IHDR")
        w, h = struct.unpack(">II", png[16:24])
        if (w, h) != (64, 64):
            die("PNG is %dx%d, expected 64x64" % (w, h))
        print("0001-stack: comfy ok: prompt %s ckpt %s events %d -> %s (%d bytes, %dx%d)"
              % (prompt_id, ckpt, len(seen), img["filename"], len(png), w, h), file=sys.stderr)


asyncio.run(main())
EOF

echo "0001-stack: ok (kafka, postgres, comfy)"
