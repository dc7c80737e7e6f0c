#!/usr/bin/python3
"""comfysim: a ComfyUI-compatible SIMULATOR for genq's tests and benchmarks.

This is test infrastructure, not ComfyUI.  It speaks ComfyUI 0.3.64's HTTP + WebSocket
protocol as written down in /work/shared/reference/comfyui-api.md, "renders" by waiting,
writes real (synthetic) PNGs, and adds a test-only control API under /_sim/ for fault
injection and counters.  Run with Debian's /usr/bin/python3 (stdlib + aiohttp only):

  /usr/bin/python3 tests/comfysim/comfysim.py --listen 127.0.0.1 --port 0 \
      --base-directory DIR [--port-file FILE] [--model-load-ms 300] [--step-ms 5] \
      [--checkpoints a.safetensors,b.safetensors] [--seed-faults SPEC]

See tests/comfysim/README.md.
"""

import argparse
import asyncio
import ipaddress
import json
import logging
import mimetypes
import os
import shutil
import signal
import socket
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp                                   # noqa: E402
from aiohttp import web                          # noqa: E402

import comfysim_control as control               # noqa: E402
import comfysim_exec as cexec                    # noqa: E402
import comfysim_nodes as cn                      # noqa: E402
import comfysim_png as cpng                      # noqa: E402

log = logging.getLogger("comfysim")

COMFYUI_VERSION = "0.3.64"
DEVICE_NAME = "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
VRAM_TOTAL = 84929347584
VRAM_CONTEXT = 547356672          # CUDA context + other processes
TORCH_CACHE_SLACK = 268435456     # allocator cache kept while a model is resident
INTERNAL_ERROR_TEXT = "500 Internal Server Error\n\nServer got itself in trouble"

mimetypes.init()
mimetypes.add_type("application/javascript; charset=utf-8", ".js")
mimetypes.add_type("image/webp", ".webp")


class Config:
    def __init__(self, args):
        self.dirs = cn.Dirs(args.base_directory)
        self.listen = args.listen
        self.port = args.port
        self.port_file = args.port_file
        self.model_load_ms = float(args.model_load_ms)
        self.step_ms = float(args.step_ms)
        self.max_upload_size = float(args.max_upload_size)
        self.disable_metadata = bool(args.disable_metadata)
        self.enable_cors_header = args.enable_cors_header
        self.checkpoints = [c.strip() for c in (args.checkpoints or "").split(",") if c.strip()]
        self.seed_faults = args.seed_faults
        self.preview_method = args.preview_method
        self.dequeue_window_ms = float(args.dequeue_window_ms)
        self.image_op_ms = float(args.image_op_ms)


def is_loopback(host):
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    loopback = False
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            for _f, _t, _p, _c, sockaddr in socket.getaddrinfo(host, None, family, socket.SOCK_STREAM):
                if not ipaddress.ip_address(sockaddr[0]).is_loopback:
                    return loopback
                loopback = True
        except socket.gaierror:
            pass
    return loopback


def internal_error_response(request):
    """The body aiohttp produces for an unhandled exception in a handler."""
    if "text/html" in request.headers.get("Accept", ""):
        text = ("<html><head><title>500 Internal Server Error</title></head><body>\n"
                "<h1>500 Internal Server Error</h1>\nServer got itself in trouble\n</body></html>\n")
        resp = web.Response(status=500, text=text, content_type="text/html")
    else:
        resp = web.Response(status=500, text=INTERNAL_ERROR_TEXT, content_type="text/plain")
    resp.force_close()
    return resp


class SimServer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.dirs = cfg.dirs
        self.sockets = {}
        self.socket_requests = {}
        self.sockets_metadata = {}
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.number = 0
        self.stats = control.Stats()
        self.faults = control.FaultBook()
        for spec in control.parse_seed_faults(cfg.seed_faults):
            self.faults.add(spec)
        self.messages = asyncio.Queue()
        self.queue = cexec.PromptQueue(self)
        self.executor = cexec.Executor(self, cfg)
        self.tasks = []

        middlewares = []
        if cfg.enable_cors_header:
            middlewares.append(self.cors_middleware(cfg.enable_cors_header))
        else:
            middlewares.append(self.origin_only_middleware)
        middlewares.append(self.sim_fault_middleware)
        self.app = web.Application(client_max_size=int(cfg.max_upload_size * 1024 * 1024),
                                   middlewares=middlewares)
        self.app.on_shutdown.append(self._on_shutdown)
        self.add_routes()

    # -- messaging ----------------------------------------------------------------------
    def queue_info(self):
        return {"exec_info": {"queue_remaining": self.queue.get_tasks_remaining()}}

    def queue_updated(self):
        self.send_sync("status", {"status": self.queue_info()})

    def send_sync(self, event, data, sid=None):
        self.messages.put_nowait((event, data, sid))

    def supports_preview_metadata(self, sid):
        """comfy_api.feature_flags.supports_feature for the prompt's client."""
        meta = self.sockets_metadata.get(sid) if sid is not None else None
        return bool(meta and meta.get("feature_flags", {}).get("supports_preview_metadata", False))

    async def send(self, event, data, sid=None, corked=None):
        message = data if event == cexec.BINARY else {"type": event, "data": data}
        if sid is None:
            for sid2, ws in list(self.sockets.items()):
                self._cork(sid2, corked)
                await self._send_catch(ws, message)
        elif sid in self.sockets:
            self._cork(sid, corked)
            await self._send_catch(self.sockets[sid], message)

    def _tcp_socket(self, sid):
        request = self.socket_requests.get(sid)
        transport = request.transport if request is not None else None
        return transport.get_extra_info("socket") if transport is not None else None

    def _cork(self, sid, corked):
        """TCP_CORK a client's socket for the rest of a burst (corked: sid -> socket, or
        None when the burst is a single message)."""
        if corked is None or sid in corked or not hasattr(socket, "TCP_CORK"):
            return
        sock = self._tcp_socket(sid)
        corked[sid] = sock
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            except OSError:
                corked[sid] = None

    @staticmethod
    def _uncork(corked):
        for sock in corked.values():
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
                except OSError:
                    pass

    async def _send_catch(self, ws, message):
        try:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_json(message)
        except (aiohttp.ClientError, aiohttp.ClientPayloadError, ConnectionResetError,
                BrokenPipeError, ConnectionError, RuntimeError) as err:
            log.warning("send error: %s", err)

    # Most messages come in bursts: a prompt's progress_state, executing, progress, executed
    # ... are queued by the worker in one go. Each WebSocket frame used to be its own TCP
    # segment, i.e. a trip through the loopback stack and a wake-up of the client per frame;
    # a burst is now sent with the client's socket corked, so the kernel coalesces its frames
    # into as few segments as fit, pushed out when the burst ends. The frames, their order
    # and content are unchanged; only how they are packed into TCP segments differs.
    PUBLISH_BURST = 256

    async def publish_loop(self):
        while True:
            event, data, sid = await self.messages.get()
            corked = {} if not self.messages.empty() else None
            try:
                sent = 0
                while True:
                    try:
                        await self.send(event, data, sid, corked)
                    except Exception as err:     # never let the publisher die
                        log.error("publish error: %r", err)
                    sent += 1
                    if self.messages.empty() or sent >= self.PUBLISH_BURST:
                        break
                    event, data, sid = self.messages.get_nowait()
            finally:
                if corked:
                    self._uncork(corked)

    async def drop_websockets(self, mode):
        """Fault drop_ws: cut every WebSocket (mode 'abort': TCP abort; 'close': close frame)."""
        for sid, ws in list(self.sockets.items()):
            ws._comfysim_dropped = True
            self.sockets.pop(sid, None)
            request = self.socket_requests.pop(sid, None)
            log.info("comfysim: dropping websocket %s (%s)", sid, mode)
            if mode == "close":
                # the handler closes with this code once its receive loop is broken
                ws._comfysim_close = (aiohttp.WSCloseCode.GOING_AWAY, b"comfysim drop_ws")
                asyncio.ensure_future(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY,
                                               message=b"comfysim drop_ws"))
            else:
                transport = request.transport if request is not None else None
                if transport is not None:
                    transport.abort()

    async def _on_shutdown(self, app):
        for ws in list(self.sockets.values()):
            try:
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY,
                                                message=b"Server shutdown"), 1.0)
            except Exception:
                pass

    # -- middlewares --------------------------------------------------------------------
    @web.middleware
    async def origin_only_middleware(self, request, handler):
        if "Host" in request.headers and "Origin" in request.headers:
            host = request.headers["Host"]
            origin = request.headers["Origin"]
            host_domain = host.lower()
            parsed = urllib.parse.urlparse(origin)
            origin_domain = parsed.netloc.lower()
            host_domain_parsed = urllib.parse.urlsplit("//" + host_domain)
            loopback = is_loopback(host_domain_parsed.hostname)
            try:
                origin_port = parsed.port
                host_port = host_domain_parsed.port
            except ValueError:
                origin_port = host_port = None
            if origin_port is None:
                host_domain = host_domain_parsed.hostname
            if host_port is None:
                origin_domain = parsed.hostname
            if (loopback and host_domain is not None and origin_domain is not None
                    and len(host_domain) > 0 and len(origin_domain) > 0):
                if host_domain != origin_domain:
                    log.warning("WARNING: request with non matching host and origin %s != %s, "
                                "returning 403", host_domain, origin_domain)
                    return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    @staticmethod
    def cors_middleware(allowed_origin):
        @web.middleware
        async def cors(request, handler):
            if request.method == "OPTIONS":
                response = web.Response()
            else:
                response = await handler(request)
            response.headers["Access-Control-Allow-Origin"] = allowed_origin
            response.headers["Access-Control-Allow-Methods"] = "POST, GET, DELETE, PUT, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Access-Control-Allow-Credentials"] = "true"
            return response
        return cors

    @web.middleware
    async def sim_fault_middleware(self, request, handler):
        if not request.path.startswith("/_sim/"):
            for fault in self.faults.take_http_faults(request.method, request.path):
                if fault["fault"] == "http500":
                    log.info("comfysim: fault http500 on %s %s", request.method, request.path)
                    return internal_error_response(request)
                if fault["fault"] == "view_delay":
                    await asyncio.sleep(float(fault["params"].get("ms", 1000)) / 1000.0)
        return await handler(request)

    # -- routes -------------------------------------------------------------------------
    def add_routes(self):
        routes = web.RouteTableDef()
        s = self

        @routes.get("/ws")
        async def websocket_handler(request):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            sid = request.rel_url.query.get("clientId", "")
            if sid:
                s.sockets.pop(sid, None)
            else:
                sid = uuid.uuid4().hex
            s.sockets[sid] = ws
            s.socket_requests[sid] = request
            s.sockets_metadata[sid] = {"feature_flags": {}}
            try:
                await s.send("status", {"status": s.queue_info(), "sid": sid}, sid)
                if s.client_id == sid and s.last_node_id is not None:
                    await s.send("executing", {"node": s.last_node_id}, sid)
                first_message = True
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.ERROR:
                        log.warning("ws connection closed with exception %s", ws.exception())
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        try:
                            data = json.loads(msg.data)
                            if first_message and data.get("type") == "feature_flags":
                                client_flags = data.get("data", {})
                                if sid in s.sockets_metadata:
                                    s.sockets_metadata[sid]["feature_flags"] = client_flags
                                await s.send("feature_flags", s.server_features(), sid)
                                log.info("Feature flags negotiated for client %s: %s", sid, client_flags)
                            first_message = False
                        except json.JSONDecodeError:
                            log.warning("Invalid JSON received from client %s: %s", sid, msg.data)
                        except Exception as e:
                            log.error("Error processing WebSocket message: %s", e)
                drop = getattr(ws, "_comfysim_close", None)
                if drop is not None:
                    await ws.close(code=drop[0], message=drop[1])
            finally:
                # 0.3.64 pops by id unconditionally: an old socket closing after a new one
                # registered with the same clientId unregisters the new one (sheet 5.1).
                # Exception (simulator only): a socket cut by the drop_ws fault was already
                # unregistered, so its late cleanup leaves a reconnected client alone.
                if not (getattr(ws, "_comfysim_dropped", False) and s.sockets.get(sid) is not ws):
                    s.sockets.pop(sid, None)
                    s.socket_requests.pop(sid, None)
                    s.sockets_metadata.pop(sid, None)
            return ws

        @routes.get("/")
        async def get_root(request):
            return web.Response(text="<!doctype html><title>comfysim</title>"
                                     "<p>comfysim: ComfyUI protocol simulator (test infrastructure)</p>",
                                content_type="text/html")

        @routes.get("/embeddings")
        async def get_embeddings(request):
            names = s.dirs.filename_list("embeddings")
            return web.json_response([os.path.splitext(n)[0] for n in names])

        @routes.get("/models")
        async def list_model_types(request):
            return web.json_response(list(cn.MODEL_FOLDERS))

        @routes.get("/models/{folder}")
        async def get_models(request):
            folder = request.match_info.get("folder", None)
            if folder not in cn.MODEL_FOLDERS:
                return web.Response(status=404)
            return web.json_response(s.dirs.filename_list(folder))

        @routes.get("/extensions")
        async def get_extensions(request):
            return web.json_response([])

        @routes.post("/upload/image")
        async def upload_image(request):
            post = await request.post()
            return s.image_upload(post)

        @routes.get("/view")
        async def view_image(request):
            return await s.view_image(request)

        @routes.get("/system_stats")
        async def system_stats(request):
            return web.json_response(s.system_stats())

        @routes.get("/features")
        async def get_features(request):
            return web.json_response(s.server_features())

        @routes.get("/prompt")
        async def get_prompt(request):
            return web.json_response(s.queue_info())

        @routes.get("/object_info")
        async def get_object_info(request):
            return web.json_response(cn.object_info(s.dirs))

        @routes.get("/object_info/{node_class}")
        async def get_object_info_node(request):
            node_class = request.match_info.get("node_class", None)
            out = {}
            if node_class is not None and node_class in cn.NODE_CLASS_MAPPINGS:
                out[node_class] = cn.NODE_CLASS_MAPPINGS[node_class].info(s.dirs)
            return web.json_response(out)

        @routes.get("/history")
        async def get_history(request):
            max_items = request.rel_url.query.get("max_items", None)
            if max_items is not None:
                max_items = int(max_items)
            offset = request.rel_url.query.get("offset", None)
            offset = int(offset) if offset is not None else -1
            return web.json_response(s.queue.get_history(max_items=max_items, offset=offset))

        @routes.get("/history/{prompt_id}")
        async def get_history_prompt_id(request):
            prompt_id = request.match_info.get("prompt_id", None)
            return web.json_response(s.queue.get_history(prompt_id=prompt_id))

        @routes.get("/queue")
        async def get_queue(request):
            running, pending = s.queue.get_current_queue()
            return web.json_response({"queue_running": running, "queue_pending": pending})

        @routes.post("/prompt")
        async def post_prompt(request):
            return await s.post_prompt(request)

        @routes.post("/queue")
        async def post_queue(request):
            json_data = await request.json()
            if "clear" in json_data:
                if json_data["clear"]:
                    s.queue.wipe_queue()
            if "delete" in json_data:
                for id_to_delete in json_data["delete"]:
                    s.queue.delete_queue_item(lambda a, i=id_to_delete: a[1] == i)
            return web.Response(status=200)

        @routes.post("/interrupt")
        async def post_interrupt(request):
            try:
                json_data = await request.json()
            except json.JSONDecodeError:
                json_data = {}
            prompt_id = json_data.get("prompt_id")
            if prompt_id:
                running, _ = s.queue.get_current_queue()
                should_interrupt = False
                for item in running:
                    if item[1] == prompt_id:
                        log.info("Interrupting prompt %s", prompt_id)
                        should_interrupt = True
                        break
                if should_interrupt:
                    s.executor.interrupt_processing()
                else:
                    log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)
            else:
                log.info("Global interrupt (no prompt_id specified)")
                if s.queue.currently_running:
                    s.executor.interrupt_processing()
                # idle: ComfyUI sets a flag that the next prompt clears at its start, i.e. a no-op
            return web.Response(status=200)

        @routes.post("/free")
        async def post_free(request):
            json_data = await request.json()
            unload_models = json_data.get("unload_models", False)
            free_memory = json_data.get("free_memory", False)
            if unload_models:
                s.queue.set_flag("unload_models", unload_models)
            if free_memory:
                s.queue.set_flag("free_memory", free_memory)
            return web.Response(status=200)

        @routes.post("/history")
        async def post_history(request):
            json_data = await request.json()
            if "clear" in json_data:
                if json_data["clear"]:
                    s.queue.wipe_history()
            if "delete" in json_data:
                for id_to_delete in json_data["delete"]:
                    s.queue.delete_history_item(id_to_delete)
            return web.Response(status=200)

        # every route also under /api (server.add_routes)
        api_routes = web.RouteTableDef()
        for route in routes:
            if isinstance(route, web.RouteDef):
                api_routes.route(route.method, "/api" + route.path)(route.handler, **route.kwargs)
        # aiohttp 3.8 matches a request against the routes one by one, in this order: the
        # plain paths (what genq and the benchmarks use) go first. No path matches both.
        self.app.add_routes(routes)
        self.app.add_routes(api_routes)

        # test-only control API (not ComfyUI)
        self.app.add_routes([
            web.get("/_sim/faults", self.sim_get_faults),
            web.post("/_sim/faults", self.sim_post_faults),
            web.delete("/_sim/faults", self.sim_delete_faults),
            web.get("/_sim/stats", self.sim_get_stats),
            web.post("/_sim/stats/reset", self.sim_reset_stats),
            web.get("/_sim/info", self.sim_info),
        ])

    # -- handlers with more logic -------------------------------------------------------
    async def post_prompt(self, request):
        log.info("got prompt")
        self.stats.prompts_received += 1
        json_data = await request.json()

        if "number" in json_data:
            number = float(json_data["number"])
        else:
            number = self.number
            if "front" in json_data:
                if json_data["front"]:
                    number = -number
            self.number += 1

        if "prompt" in json_data:
            prompt = json_data["prompt"]
            prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
            partial_execution_targets = None
            if "partial_execution_targets" in json_data:
                partial_execution_targets = json_data["partial_execution_targets"]
            valid = cn.validate_prompt(self.dirs, prompt, partial_execution_targets, log)
            extra_data = {}
            if "extra_data" in json_data:
                extra_data = json_data["extra_data"]
            if "client_id" in json_data:
                extra_data["client_id"] = json_data["client_id"]
            if valid[0]:
                self.stats.prompts_accepted += 1
                self.queue.put((number, prompt_id, prompt, extra_data, valid[2]))
                return web.json_response({"prompt_id": prompt_id, "number": number,
                                          "node_errors": valid[3]})
            self.stats.prompts_rejected += 1
            log.warning("invalid prompt: %s", valid[1])
            return web.json_response({"error": valid[1], "node_errors": valid[3]}, status=400)

        self.stats.prompts_rejected += 1
        error = {"type": "no_prompt", "message": "No prompt provided",
                 "details": "No prompt provided", "extra_info": {}}
        return web.json_response({"error": error, "node_errors": {}}, status=400)

    async def view_image(self, request):
        query = request.rel_url.query
        if "filename" in query:
            filename, output_dir = self.dirs.annotated_filepath(query["filename"])
            if not filename:
                return web.Response(status=400)
            if filename[0] == "/" or ".." in filename:
                return web.Response(status=400)
            if output_dir is None:
                output_dir = self.dirs.by_type(query.get("type", "output"))
            if output_dir is None:
                return web.Response(status=400)
            if "subfolder" in query:
                full_output_dir = os.path.join(output_dir, query["subfolder"])
                if os.path.commonpath((os.path.abspath(full_output_dir), output_dir)) != output_dir:
                    return web.Response(status=403)
                output_dir = full_output_dir
            filename = os.path.basename(filename)
            file = os.path.join(output_dir, filename)
            if os.path.isfile(file):
                channel = query.get("channel", "rgba")
                disposition = {"Content-Disposition": f"filename=\"{filename}\""}
                info = cpng.read_png_file_info(file)
                if channel == "a" and info is not None:
                    # simplification: synthetic alpha is constant 255 unless the PNG has alpha
                    body = cpng.alpha_png(info[0], info[1])
                    return web.Response(body=body, content_type="image/png", headers=disposition)
                if channel == "rgb" and info is not None and info[3] == 2:
                    with open(file, "rb") as f:
                        body = f.read()
                    return web.Response(body=body, content_type="image/png", headers=disposition)
                # 'preview' (webp/jpeg re-encoding) is not simulated: the raw file is returned
                content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
                if content_type in {"text/html", "text/html-sandboxed", "application/xhtml+xml",
                                    "text/javascript", "text/css"}:
                    content_type = "application/octet-stream"
                return web.FileResponse(file, headers={
                    "Content-Disposition": f"filename=\"{filename}\"",
                    "Content-Type": content_type})
        return web.Response(status=404)

    def image_upload(self, post):
        image = post.get("image")
        overwrite = post.get("overwrite")
        image_is_duplicate = False
        image_upload_type = post.get("type")
        if image_upload_type is None:
            image_upload_type = "input"
        if image_upload_type == "input":
            upload_dir = self.dirs.input
        elif image_upload_type == "temp":
            upload_dir = self.dirs.temp
        elif image_upload_type == "output":
            upload_dir = self.dirs.output
        else:
            raise ValueError("unknown upload type %r" % (image_upload_type,))   # -> 500

        if image and image.file:
            filename = image.filename
            if not filename:
                return web.Response(status=400)
            subfolder = post.get("subfolder", "")
            full_output_folder = os.path.join(upload_dir, os.path.normpath(subfolder))
            filepath = os.path.abspath(os.path.join(full_output_folder, filename))
            if os.path.commonpath((upload_dir, filepath)) != upload_dir:
                return web.Response(status=400)
            if not os.path.exists(full_output_folder):
                os.makedirs(full_output_folder)
            split = os.path.splitext(filename)
            content = image.file.read()
            if overwrite is not None and (overwrite == "true" or overwrite == "1"):
                pass
            else:
                i = 1
                while os.path.exists(filepath):
                    with open(filepath, "rb") as f:
                        if f.read() == content:
                            image_is_duplicate = True
                            break
                    filename = f"{split[0]} ({i}){split[1]}"
                    filepath = os.path.join(full_output_folder, filename)
                    i += 1
            if not image_is_duplicate:
                with open(filepath, "wb") as f:
                    f.write(content)
            return web.json_response({"name": filename, "subfolder": subfolder,
                                      "type": image_upload_type})
        return web.Response(status=400)

    def server_features(self):
        return {"supports_preview_metadata": True,
                "max_upload_size": self.cfg.max_upload_size * 1024 * 1024}

    def system_stats(self):
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            ram_total = os.sysconf("SC_PHYS_PAGES") * page
            ram_free = os.sysconf("SC_AVPHYS_PAGES") * page
        except (ValueError, OSError):
            ram_total, ram_free = 135090184192, 120001234944
        model = self.executor.loaded_model
        active = (cexec.model_bytes(model) if model else 0) + self.executor.active_bytes
        reserved = active + (TORCH_CACHE_SLACK if model else 0)
        device_free = VRAM_TOTAL - VRAM_CONTEXT - reserved
        argv = ["main.py", "--listen", self.cfg.listen or "127.0.0.1", "--port",
                str(self.bound_port)]
        return {
            "system": {
                "os": os.name,
                "ram_total": ram_total,
                "ram_free": ram_free,
                "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": "1.27.10",
                "installed_templates_version": "0.1.95",
                "required_templates_version": "0.1.95",
                "python_version": sys.version,
                "pytorch_version": "2.8.0+cu128",
                "embedded_python": False,
                "argv": argv,
            },
            "devices": [{
                "name": DEVICE_NAME,
                "type": "cuda",
                "index": 0,
                "vram_total": VRAM_TOTAL,
                "vram_free": device_free + (reserved - active),
                "torch_vram_total": reserved,
                "torch_vram_free": reserved - active,
            }],
        }

    # -- /_sim/ control API -------------------------------------------------------------
    async def sim_get_faults(self, request):
        return web.json_response({"faults": self.faults.listing()})

    async def sim_post_faults(self, request):
        try:
            body = await request.json()
        except json.JSONDecodeError as ex:
            return web.json_response({"error": "invalid JSON: %s" % ex}, status=400)
        specs = body if isinstance(body, list) else [body]
        queued = []
        try:
            for spec in specs:
                queued.append(self.faults.add(spec))
        except ValueError as ex:
            return web.json_response({"error": str(ex)}, status=400)
        for entry in queued:
            log.info("comfysim: fault queued %s", entry)
        return web.json_response({"queued": queued, "faults": self.faults.listing()})

    async def sim_delete_faults(self, request):
        return web.json_response({"cleared": self.faults.clear()})

    def stats_snapshot(self):
        snap = self.stats.snapshot(len(self.queue.queue), len(self.queue.currently_running),
                                   self.executor.loaded_model, len(self.sockets))
        snap["faults_fired"] += self.faults.fired
        return snap

    async def sim_get_stats(self, request):
        return web.json_response(self.stats_snapshot())

    async def sim_reset_stats(self, request):
        self.stats.reset()
        self.faults.fired = 0
        return web.json_response(self.stats_snapshot())

    async def sim_info(self, request):
        return web.json_response({
            "name": "comfysim", "emulates": "ComfyUI " + COMFYUI_VERSION, "pid": os.getpid(),
            "port": self.bound_port, "base_directory": self.dirs.base,
            "model_load_ms": self.cfg.model_load_ms, "step_ms": self.cfg.step_ms,
            "checkpoints": self.dirs.filename_list("checkpoints")})

    bound_port = 0


# ----------------------------------------------------------------------------------------

def prepare_directories(cfg):
    d = cfg.dirs
    for path in (d.output, d.input, d.models):
        os.makedirs(path, exist_ok=True)
    for folder in cn.MODEL_FOLDERS:
        os.makedirs(os.path.join(d.models, folder), exist_ok=True)
    shutil.rmtree(d.temp, ignore_errors=True)       # temp/ is wiped at startup
    os.makedirs(d.temp, exist_ok=True)
    ckpt_dir = os.path.join(d.models, "checkpoints")
    names = list(cfg.checkpoints)
    if not names and not d.filename_list("checkpoints"):
        names = ["sd15.safetensors", "sdxl.safetensors"]
    for name in names:
        path = os.path.abspath(os.path.join(ckpt_dir, name))
        if os.path.commonpath((ckpt_dir, path)) != ckpt_dir:
            raise SystemExit("comfysim: checkpoint name escapes models/checkpoints: %r" % name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "wb").close()


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


async def serve(cfg):
    server = SimServer(cfg)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    loop = asyncio.get_running_loop()
    server.tasks.append(loop.create_task(server.publish_loop()))
    server.tasks.append(loop.create_task(server.executor.run()))

    hosts = [h.strip() for h in (cfg.listen or "127.0.0.1").split(",") if h.strip()]
    port = cfg.port
    for host in hosts:
        site = web.TCPSite(runner, host, port, shutdown_timeout=1.0)
        await site.start()
        if port == 0:
            port = site._server.sockets[0].getsockname()[1]
    server.bound_port = port

    shown = hosts[0] if len(hosts) == 1 else "127.0.0.1"
    if ":" in shown:
        shown = "[%s]" % shown
    log.info("Starting server\n")
    log.info("To see the GUI go to: http://%s:%d", shown, port)
    if cfg.port_file:
        write_port_file(cfg.port_file, port)
    print("comfysim listening on http://%s:%d" % (shown, port), file=sys.stderr, flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("comfysim: shutting down")
    for t in server.tasks:
        t.cancel()
    try:
        await asyncio.wait_for(runner.cleanup(), 5.0)
    except asyncio.TimeoutError:
        pass
    shutil.rmtree(cfg.dirs.temp, ignore_errors=True)   # ... and at clean exit


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="comfysim.py",
        description="ComfyUI 0.3.64 protocol simulator (test infrastructure, not ComfyUI).")
    p.add_argument("--listen", nargs="?", const="0.0.0.0,::", default=env("COMFYSIM_LISTEN", "127.0.0.1"),
                   help="IP[,IP...] to bind (bare flag: 0.0.0.0,::)")
    p.add_argument("--port", type=int, default=int(env("COMFYSIM_PORT", "8188")),
                   help="port; 0 picks a free one")
    p.add_argument("--base-directory", default=env("COMFYSIM_BASE_DIRECTORY"),
                   help="directory receiving output/ input/ temp/ models/")
    p.add_argument("--port-file", default=env("COMFYSIM_PORT_FILE"),
                   help="write the bound port here (atomically) once listening")
    p.add_argument("--model-load-ms", type=float, default=float(env("COMFYSIM_MODEL_LOAD_MS", "300")),
                   help="simulated checkpoint load time")
    p.add_argument("--step-ms", type=float, default=float(env("COMFYSIM_STEP_MS", "5")),
                   help="simulated time per KSampler step")
    p.add_argument("--checkpoints", default=env("COMFYSIM_CHECKPOINTS"),
                   help="comma-separated checkpoint names to create in models/checkpoints")
    p.add_argument("--seed-faults", default=env("COMFYSIM_SEED_FAULTS"),
                   help="faults queued at startup: JSON object/list, or name[:count],...")
    p.add_argument("--max-upload-size", type=float, default=float(env("COMFYSIM_MAX_UPLOAD_SIZE", "100")),
                   help="max request body in MB (413 beyond)")
    p.add_argument("--disable-metadata", action="store_true", help="no PNG text chunks")
    p.add_argument("--enable-cors-header", nargs="?", const="*", default=None,
                   help="send CORS headers (disables the Host/Origin 403 check)")
    p.add_argument("--preview-method", default=env("COMFYSIM_PREVIEW_METHOD", "none"),
                   choices=["none", "auto", "latent2rgb", "taesd"],
                   help="anything but none: a binary preview frame per sampler step (a fixed JPEG)")
    p.add_argument("--dequeue-window-ms", type=float, default=float(env("COMFYSIM_DEQUEUE_WINDOW_MS", "0")),
                   help="time between taking a prompt off the queue and clearing the interrupt "
                        "flag (an interrupt landing there is lost, as on the real server)")
    p.add_argument("--image-op-ms", type=float, default=float(env("COMFYSIM_IMAGE_OP_MS", "20")),
                   help="silent cost of image post-processing nodes per megapixel")
    p.add_argument("--log-stdout", action="store_true", help="log to stdout instead of stderr")
    args = p.parse_args(argv)
    if not args.base_directory:
        p.error("--base-directory is required")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s",
                        stream=sys.stdout if args.log_stdout else sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    cfg = Config(args)
    prepare_directories(cfg)
    try:
        for spec in control.parse_seed_faults(cfg.seed_faults):
            control.FaultBook().add(spec)
    except (ValueError, json.JSONDecodeError) as ex:
        print("comfysim: bad --seed-faults: %s" % ex, file=sys.stderr)
        return 2
    log.info("Total VRAM %d MB, total RAM %d MB", VRAM_TOTAL // 1048576,
             (os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 1048576)
    log.info("pytorch version: 2.8.0+cu128")
    log.info("Set vram state to: NORMAL_VRAM")
    log.info("Device: %s", DEVICE_NAME)
    log.info("Using pytorch attention")
    log.info("Python version: %s", sys.version)
    log.info("ComfyUI version: %s (comfysim simulator, not ComfyUI)", COMFYUI_VERSION)
    log.info("[Prompt Server] web root: (comfysim: none)")
    log.info("comfysim: base directory %s, model load %.0f ms, step %.1f ms, checkpoints %s",
             cfg.dirs.base, cfg.model_load_ms, cfg.step_ms, cfg.dirs.filename_list("checkpoints"))
    asyncio.run(serve(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
