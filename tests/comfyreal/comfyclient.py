"""A small ComfyUI client for tests: HTTP + one WebSocket, recording every message.

Used by the transcripts test (test_transcripts.py) and the probes that found the facts in
FACTS.md. Debian's /usr/bin/python3 with python3-aiohttp is enough. Everything has a deadline.
"""

import asyncio
import json
import struct
import time
import uuid

import aiohttp


class Message:
    """One WebSocket message: a JSON text message or a binary frame, with its arrival time."""

    def __init__(self, t, kind, data=None, raw=None):
        self.t = t              # time.monotonic() at arrival
        self.kind = kind        # the JSON "type", or "binary:<event>"
        self.data = data        # the JSON "data", or the decoded binary header
        self.raw = raw          # binary frames: the bytes

    def __repr__(self):
        return "Message(%r, %r)" % (self.kind, self.data)


def decode_binary(raw):
    """The 4-byte big-endian event type and what follows it (fact sheet 5.5)."""
    if len(raw) < 4:
        return "binary:short", {"length": len(raw)}
    (event,) = struct.unpack(">I", raw[:4])
    info = {"event": event, "length": len(raw)}
    if event == 1 and len(raw) >= 8:
        (fmt,) = struct.unpack(">I", raw[4:8])
        info["format"] = fmt
        info["image_magic"] = raw[8:12].hex()
    elif event == 4 and len(raw) >= 8:
        (n,) = struct.unpack(">I", raw[4:8])
        info["metadata"] = json.loads(raw[8:8 + n].decode("utf-8"))
        info["image_magic"] = raw[8 + n:12 + n].hex()
    elif event == 3 and len(raw) >= 8:
        (n,) = struct.unpack(">I", raw[4:8])
        info["node_id"] = raw[8:8 + n].decode("utf-8", "replace")
        info["text"] = raw[8 + n:].decode("utf-8", "replace")
    return "binary:%d" % event, info


class Client:
    def __init__(self, url, client_id=None, session=None):
        self.url = url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self._session = session
        self._own_session = session is None
        self.ws = None
        self.messages = []
        self._reader = None
        self._new = asyncio.Event()

    async def __aenter__(self):
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        await self.disconnect()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- HTTP -----------------------------------------------------------------------------
    async def request(self, method, path, body=None, raw=None):
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        async with self._session.request(method, self.url + path, data=data) as r:
            payload = await r.read()
            ctype = r.headers.get("Content-Type", "")
            value = payload
            if "json" in ctype:
                value = json.loads(payload)
            elif ctype.startswith("text/"):
                value = payload.decode("utf-8", "replace")
            return r.status, value

    async def get(self, path):
        return await self.request("GET", path)

    async def post(self, path, body=None):
        return await self.request("POST", path, body=body, raw=b"" if body is None else None)

    async def submit(self, prompt, prompt_id=None, with_client_id=True, **fields):
        body = dict(fields)
        body["prompt"] = prompt
        if with_client_id:
            body["client_id"] = self.client_id
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        return await self.post("/prompt", body)

    async def history(self, prompt_id):
        status, h = await self.get("/history/" + prompt_id)
        assert status == 200, (status, h)
        return h.get(prompt_id)

    async def wait_history(self, prompt_id, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            h = await self.history(prompt_id)
            if h:
                return h
            if time.monotonic() > deadline:
                raise TimeoutError("no history for %s within %ss" % (prompt_id, timeout))
            await asyncio.sleep(0.05)

    async def queue(self):
        status, q = await self.get("/queue")
        assert status == 200, (status, q)
        return q

    async def wait_idle(self, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            q = await self.queue()
            if not q["queue_running"] and not q["queue_pending"]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("server still busy after %ss: %s" % (timeout, q))
            await asyncio.sleep(0.05)

    # -- WebSocket --------------------------------------------------------------------------
    async def connect(self, feature_flags=None, client_id=None):
        if client_id is not None:
            self.client_id = client_id
        self.ws = await self._session.ws_connect(self.url + "/ws?clientId=" + self.client_id,
                                                 autoping=True, max_msg_size=0)
        if feature_flags is not None:
            await self.ws.send_str(json.dumps({"type": "feature_flags", "data": feature_flags}))
        self._reader = asyncio.ensure_future(self._read(self.ws))
        return self

    async def disconnect(self):
        if self.ws is not None:
            await self.ws.close()
            self.ws = None
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
            self._reader = None

    async def _read(self, ws):
        async for msg in ws:
            now = time.monotonic()
            if msg.type == aiohttp.WSMsgType.TEXT:
                m = json.loads(msg.data)
                self.messages.append(Message(now, m.get("type"), m.get("data")))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                kind, info = decode_binary(msg.data)
                self.messages.append(Message(now, kind, info, raw=msg.data))
            else:
                break
            self._new.set()

    async def wait_for(self, pred, timeout=120, start=0):
        """Waits until a message at index >= start satisfies pred; returns its index."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.messages):
                if pred(self.messages[i]):
                    return i
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such message within %ss; last: %r" % (timeout, self.messages[-5:]))
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def wait_done(self, prompt_id, timeout=120, start=0):
        """Until `executing` with node null for prompt_id (the end of a prompt)."""
        return await self.wait_for(lambda m: m.kind == "executing" and m.data.get("node") is None
                                   and m.data.get("prompt_id") == prompt_id, timeout, start)

    def mark(self):
        return len(self.messages)

    def since(self, start, end=None):
        return self.messages[start:end]


def is_done(m, prompt_id):
    return m.kind == "executing" and m.data.get("node") is None and m.data.get("prompt_id") == prompt_id
