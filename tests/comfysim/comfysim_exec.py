"""comfysim: prompt queue, single worker, simulated node execution, cache and faults.

Follows main.prompt_worker / execution.PromptExecutor / PromptQueue of ComfyUI 0.3.64 as
described in the fact sheet (sections 4, 5.4, 6).  "Rendering" is waiting: a model load
costs --model-load-ms whenever the wanted checkpoint is not the loaded one, every KSampler
step costs --step-ms; SaveImage writes real PNGs.
"""

import asyncio
import base64
import copy
import functools
import hashlib
import heapq
import json
import logging
import os
import random
import struct
import sys
import time
import traceback
import uuid

import comfysim_control as control
import comfysim_nodes as cn
import comfysim_png as cpng

log = logging.getLogger("comfysim")

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")

# A 64x64 grey JPEG (quality 95): the picture of every simulated sampler preview frame. The real
# server sends latent2rgb previews scaled to --preview-size (512): ~37 KB each.
PREVIEW_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgr/wAARCABAAEADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwD5/ooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooA//2Q==")

# The smallest lossless WebP bitstream (1x1): each frame of a simulated animated WebP.
WEBP_1X1_VP8L = bytes.fromhex("2f00000010071011118888fe07")

OOM_TIPS = ("This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked "
            "before you might have accidentally set the batch_size to a large number.")


BINARY = "binary"       # send_sync event of a binary frame (data: the bytes after nothing)


class InterruptProcessingException(Exception):
    pass


InterruptProcessingException.__module__ = "comfy.model_management"


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.OutOfMemoryError (full type name 'torch.OutOfMemoryError')."""


OutOfMemoryError.__module__ = "torch"


# ----------------------------------------------------------------------------------------
# Values flowing between simulated nodes

_VALUE_STR = {
    "MODEL": "<comfy.model_patcher.ModelPatcher object at 0x{addr:x}>",
    "CLIP": "<comfy.sd.CLIP object at 0x{addr:x}>",
    "VAE": "<comfy.sd.VAE object at 0x{addr:x}>",
    "CONDITIONING": "[[tensor([[[-0.3885,  0.0230, -0.0522,  ..., -0.4902, -0.3066,  0.0675]]]), "
                    "{{'pooled_output': tensor([[-0.5933,  0.1543,  0.2754,  ...,  0.0811]])}}]]",
    "LATENT": "{{'samples': tensor([[[[0., 0., 0.,  ..., 0., 0., 0.]]]])}}",
    "IMAGE": "tensor([[[[0.5020, 0.4980, 0.5059],\n          ...,\n          [0.4941, 0.5020, 0.5098]]]])",
    "MASK": "tensor([[[0., 0., 0.,  ..., 0., 0., 0.]]])",
}


class SimValue:
    def __init__(self, kind, **attrs):
        self.kind = kind
        self.addr = 0x7F0000000000 + (id(self) & 0xFFFFFFFF)
        self.__dict__.update(attrs)

    def __str__(self):
        return _VALUE_STR.get(self.kind, "<%s>" % self.kind).format(addr=self.addr)

    __repr__ = __str__


def format_value(x):
    if x is None or isinstance(x, (int, float, bool, str)):
        return x
    if isinstance(x, dict) and not any(isinstance(v, SimValue) for v in x.values()):
        return x
    return str(x)


def is_link(obj):
    return (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], (int, float)) and not isinstance(obj[1], bool))


# ----------------------------------------------------------------------------------------
# Queue + history (execution.PromptQueue)

class _HeapEntry:
    __slots__ = ("item", "seq")

    def __init__(self, item, seq):
        self.item = item
        self.seq = seq

    def __lt__(self, other):
        # ComfyUI compares the tuples; ties past (number, prompt_id) would compare dicts and
        # crash there, here they fall back to submission order.
        a, b = self.item, other.item
        if a[0] != b[0]:
            return a[0] < b[0]
        if a[1] != b[1]:
            return a[1] < b[1]
        return self.seq < other.seq


class PromptQueue:
    def __init__(self, server):
        self.server = server
        self.queue = []
        self.seq = 0
        self.task_counter = 0
        self.currently_running = {}
        self.history = {}
        self.flags = {}
        self.wake = asyncio.Event()

    def put(self, item):
        self.seq += 1
        heapq.heappush(self.queue, _HeapEntry(item, self.seq))
        self.server.queue_updated()
        self.wake.set()

    async def get(self):
        while len(self.queue) == 0:
            if self.flags:
                return None
            self.wake.clear()
            await self.wake.wait()
        item = heapq.heappop(self.queue).item
        i = self.task_counter
        # ComfyUI deep-copies the item here so that execution cannot alter what /queue and
        # /history show. The simulated execution never mutates the prompt, extra_data (the
        # worker copies it) or the output list, so a shallow copy shows the same and spares
        # a deep copy of the whole graph per job.
        self.currently_running[i] = tuple(item)
        self.task_counter += 1
        self.server.queue_updated()
        return item, i

    def task_done(self, item_id, history_result, status):
        prompt = self.currently_running.pop(item_id)
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        prompt = list(prompt)
        if isinstance(prompt[3], dict):
            prompt[3] = {k: v for k, v in prompt[3].items() if k not in SENSITIVE_EXTRA_DATA_KEYS}
        # status is built fresh for each prompt and its messages are never changed after
        # they are sent: a new list of them is copy enough (ComfyUI deep-copies)
        status = dict(status, messages=list(status["messages"]))
        self.history[prompt[1]] = {"prompt": prompt, "outputs": {}, "status": status}
        self.history[prompt[1]].update(history_result)
        self.server.queue_updated()

    def get_current_queue(self):
        running = [copy.deepcopy(x) for x in self.currently_running.values()]
        return running, [e.item for e in self.queue]

    def get_tasks_remaining(self):
        return len(self.queue) + len(self.currently_running)

    def wipe_queue(self):
        self.queue = []
        self.server.queue_updated()

    def delete_queue_item(self, function):
        for x in range(len(self.queue)):
            if function(self.queue[x].item):
                if len(self.queue) == 1:
                    self.wipe_queue()
                else:
                    self.queue.pop(x)
                    heapq.heapify(self.queue)
                self.server.queue_updated()
                return True
        return False

    def get_history(self, prompt_id=None, max_items=None, offset=-1):
        if prompt_id is None:
            out = {}
            i = 0
            if offset < 0 and max_items is not None:
                offset = len(self.history) - max_items
            for k in self.history:
                if i >= offset:
                    out[k] = self.history[k]
                    if max_items is not None and len(out) >= max_items:
                        break
                i += 1
            return out
        if prompt_id in self.history:
            # no deep copy (ComfyUI makes one): every caller serialises the answer at once
            return {prompt_id: self.history[prompt_id]}
        return {}

    def wipe_history(self):
        self.history = {}

    def delete_history_item(self, id_to_delete):
        self.history.pop(id_to_delete, None)

    def set_flag(self, name, data):
        self.flags[name] = data
        self.wake.set()

    def get_flags(self, reset=True):
        ret = self.flags
        if reset:
            self.flags = {}
        return ret


# ----------------------------------------------------------------------------------------
# Scheduling (comfy_execution/graph.ExecutionList, classic behaviour)

class ExecutionList:
    def __init__(self, prompt, is_cached):
        self.prompt = prompt
        self.is_cached = is_cached
        self.pending = {}
        self.block_count = {}
        self.blocking = {}

    def add_node(self, unique_id):
        node_ids = [unique_id]
        links = []
        while node_ids:
            uid = node_ids.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = True
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for _name, value in self.prompt[uid]["inputs"].items():
                if is_link(value):
                    from_id, from_socket = value
                    if not self.is_cached(from_id):
                        node_ids.append(from_id)
                    links.append((from_id, from_socket, uid))
        for link in links:
            self.add_strong_link(*link)

    def add_strong_link(self, from_id, from_socket, to_id):
        if not self.is_cached(from_id):
            self.add_node(from_id)
            if to_id not in self.blocking[from_id]:
                self.blocking[from_id][to_id] = {}
                self.block_count[to_id] += 1
            self.blocking[from_id][to_id][from_socket] = True

    def is_empty(self):
        return len(self.pending) == 0

    def _is_output(self, node_id):
        return cn.is_output_node(self.prompt[node_id]["class_type"])

    def stage(self):
        available = [i for i in self.pending if self.block_count[i] == 0]
        if not available:
            return None
        for n in available:
            if self._is_output(n):
                return n
        for n in available:
            for b in self.blocking[n]:
                if self._is_output(b):
                    return n
        for n in available:
            for b in self.blocking[n]:
                for b1 in self.blocking[b]:
                    if self._is_output(b1):
                        return n
        return available[0]

    def complete(self, node_id):
        self.pending.pop(node_id, None)
        for to_id in self.blocking.get(node_id, {}):
            self.block_count[to_id] -= 1


# ----------------------------------------------------------------------------------------

def model_bytes(ckpt_name):
    return 6_938_040_682 if "xl" in str(ckpt_name).lower() else 2_132_625_894


class Executor:
    def __init__(self, server, cfg):
        self.server = server
        self.cfg = cfg
        self.dirs = cfg.dirs
        self.stats = server.stats
        self.faults = server.faults
        self.cache = {}                 # signature -> {"outputs": tuple, "ui": dict | None}
        self.loaded_model = None
        self.active_bytes = 0
        self.interrupt_flag = False
        self.interrupt_event = asyncio.Event()
        self.running_prompt_id = None
        self.success = True
        self.status_messages = []
        self.history_result = {}

    # -- interrupts (comfy.model_management) --------------------------------------------
    def interrupt_processing(self, value=True):
        self.interrupt_flag = value
        if value:
            self.interrupt_event.set()
        else:
            self.interrupt_event.clear()

    def throw_if_interrupted(self):
        if self.interrupt_flag:
            self.interrupt_processing(False)
            raise InterruptProcessingException()

    async def sleep(self, seconds):
        """Sleep that ends early when an interrupt arrives (the caller then checks)."""
        if seconds <= 0 or self.interrupt_flag:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self.interrupt_event.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # -- models -------------------------------------------------------------------------
    def unload_all_models(self):
        if self.loaded_model is not None:
            log.info("Unloading all models (%s)", self.loaded_model)
        self.loaded_model = None

    async def ensure_model(self, ckpt_name):
        if self.loaded_model == ckpt_name:
            return
        self.loaded_model = None
        log.info("model weight dtype torch.float16, manual cast: None")
        log.info("model_type EPS")
        log.info("Using pytorch attention in VAE")
        log.info("VAE load device: cuda:0, offload device: cpu, dtype: torch.bfloat16")
        log.info("CLIP/text encoder model load device: cuda:0, offload device: cpu, current: cpu, "
                 "dtype: torch.float16")
        log.info("Requested to load BaseModel")
        await asyncio.sleep(self.cfg.model_load_ms / 1000.0)
        self.loaded_model = ckpt_name
        self.stats.model_loads += 1
        log.info("loaded completely 78493.12 %.2f True", model_bytes(ckpt_name) / 1048576.0)

    # -- messages -----------------------------------------------------------------------
    def add_message(self, event, data, broadcast):
        data = dict(data)
        data["timestamp"] = int(time.time() * 1000)
        self.status_messages.append((event, data))
        if self.server.client_id is not None or broadcast:
            self.server.send_sync(event, data, self.server.client_id)

    def _ensure_progress(self, node_id):
        if node_id not in self.progress:
            self.progress[node_id] = {"state": "pending", "value": 0, "max": 1}
        return self.progress[node_id]

    def _send_progress_state(self):
        pid = self.running_prompt_id
        nodes = {}
        for nid, st in self.progress.items():
            if st["state"] == "pending":
                continue
            nodes[nid] = {"value": st["value"], "max": st["max"], "state": st["state"],
                          "node_id": nid, "prompt_id": pid, "display_node_id": nid,
                          "parent_node_id": None, "real_node_id": nid}
        self.server.send_sync("progress_state", {"prompt_id": pid, "nodes": nodes},
                              self.server.client_id)

    def start_progress(self, node_id):
        st = self._ensure_progress(node_id)
        st.update(state="running", value=0.0, max=1.0)
        self._send_progress_state()

    def finish_progress(self, node_id):
        st = self._ensure_progress(node_id)
        st["state"] = "finished"
        st["value"] = st["max"]
        self._send_progress_state()

    def progress_hook(self, node_id, value, total, preview_frames=True):
        """main.hijack_progress hook: interrupt check, progress_state, then progress."""
        self.throw_if_interrupted()
        st = self._ensure_progress(node_id)
        st.update(state="running", value=value, max=total)
        srv = self.server
        self._send_progress_state()
        preview = preview_frames and self.cfg.preview_method != "none"
        if preview and srv.supports_preview_metadata(srv.client_id):
            meta = json.dumps({"node_id": node_id, "prompt_id": self.running_prompt_id,
                               "display_node_id": node_id, "parent_node_id": None,
                               "real_node_id": node_id, "image_type": "image/jpeg"}).encode()
            srv.send_sync(BINARY, struct.pack(">II", 4, len(meta)) + meta + PREVIEW_JPEG,
                          srv.client_id)
        srv.send_sync("progress", {"value": value, "max": total,
                                   "prompt_id": self.running_prompt_id, "node": node_id},
                      srv.client_id)
        if preview and not srv.supports_preview_metadata(srv.client_id):
            # legacy frame: event 1 (PREVIEW_IMAGE), format 1 (JPEG), the image
            srv.send_sync(BINARY, struct.pack(">II", 1, 1) + PREVIEW_JPEG, srv.client_id)

    # -- signatures (classic cache key: class, IS_CHANGED, inputs incl. ancestors) --------
    def _signatures(self, prompt):
        sigs = {}

        def sig(nid, depth=0):
            if nid in sigs:
                return sigs[nid]
            if depth > 500:
                raise RecursionError("graph too deep")
            node = prompt[nid]
            items = []
            for name in sorted(node["inputs"]):
                v = node["inputs"][name]
                if is_link(v) and v[0] in prompt:
                    items.append([name, "link", sig(v[0], depth + 1), v[1]])
                else:
                    items.append([name, "value", v])
            changed = ""
            if node["class_type"] == "LoadImage":
                changed = self._file_hash(node["inputs"].get("image"))
            text = json.dumps([node["class_type"], changed, items], sort_keys=True, default=str)
            sigs[nid] = hashlib.sha256(text.encode()).hexdigest()
            return sigs[nid]

        for nid in prompt:
            try:
                sig(nid)
            except Exception:
                sigs[nid] = "uncacheable-" + uuid.uuid4().hex
        return sigs

    def _file_hash(self, name):
        try:
            with open(self.dirs.get_annotated_filepath(name), "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        except Exception:
            return "nan-" + uuid.uuid4().hex

    def reset_cache(self):
        self.cache = {}

    # -- the worker ---------------------------------------------------------------------
    async def run(self):
        q = self.server.queue
        while True:
            got = await q.get()
            if got is not None:
                item, item_id = got
                # The real worker thread takes the prompt off the queue, then PromptExecutor.execute
                # clears the interrupt flag: an /interrupt {prompt_id} landing in between (the prompt
                # already counts as running) is forgotten and the prompt renders to the end. The
                # window is short on the real server (well under a millisecond); here it is
                # --dequeue-window-ms, or a dequeue_delay fault's ms.
                window = self.cfg.dequeue_window_ms
                for f in self.faults.take_queue_faults():
                    window = max(window, float(f["params"].get("ms", 500)))
                await asyncio.sleep(window / 1000.0)
                start = time.perf_counter()
                prompt_id = item[1]
                self.server.last_prompt_id = prompt_id
                extra_data = item[3].copy() if isinstance(item[3], dict) else {}
                self.stats.render_started()
                try:
                    await self.execute(item[2], prompt_id, extra_data, item[4])
                except Exception:
                    # a bug in the simulator must not kill the worker
                    log.error("comfysim internal error:\n%s", traceback.format_exc())
                    self.success = False
                    self.history_result = {"outputs": {}, "meta": {}}
                self.stats.render_finished()
                q.task_done(item_id, self.history_result,
                            status={"status_str": "success" if self.success else "error",
                                    "completed": self.success,
                                    "messages": self.status_messages})
                if self.server.client_id is not None:
                    self.server.send_sync("executing", {"node": None, "prompt_id": prompt_id},
                                          self.server.client_id)
                self.running_prompt_id = None
                elapsed = time.perf_counter() - start
                if elapsed > 600:
                    log.info("Prompt executed in %s", time.strftime("%H:%M:%S", time.gmtime(elapsed)))
                else:
                    log.info("Prompt executed in {:.2f} seconds".format(elapsed))

            flags = q.get_flags()
            free_memory = flags.get("free_memory", False)
            if flags.get("unload_models", free_memory):
                self.unload_all_models()
            if free_memory:
                self.reset_cache()

    async def execute(self, prompt, prompt_id, extra_data, execute_outputs):
        srv = self.server
        self.interrupt_processing(False)
        srv.client_id = extra_data["client_id"] if "client_id" in extra_data else None
        self.running_prompt_id = prompt_id
        self.extra_data = extra_data
        self.prompt = prompt
        self.status_messages = []
        self.success = True
        self.progress = {}
        self.results = {}
        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)

        self.prompt_faults = self.faults.take_exec_faults() + control.markers_in_prompt(prompt)
        self.stats.faults_fired += sum(1 for f in self.prompt_faults if f["source"] == "marker")
        self.anchor_faults_taken = False
        self.model_fault_taken = False
        self.step_ms = self.cfg.step_ms
        for f in self.prompt_faults:
            log.info("comfysim: fault %r armed for prompt %s %s", f["fault"], prompt_id, f["params"])
            if f["fault"] == "slow":
                self.step_ms = float(f["params"].get("step_ms", 100))
        # a prompt carrying faults never reads the cache, so the fault always has a node to hit
        use_cache = not self.prompt_faults

        sigs = self._signatures(prompt)
        wanted = set(sigs.values())
        self.cache = {k: v for k, v in self.cache.items() if k in wanted}

        def is_cached(nid):
            return use_cache and sigs.get(nid) in self.cache

        cached_nodes = [nid for nid in prompt if is_cached(nid)]
        self.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id},
                         broadcast=False)
        if cached_nodes and len(cached_nodes) == len(prompt):
            self.stats.renders_cached += 1

        execution_list = ExecutionList(prompt, is_cached)
        for node_id in list(execute_outputs):
            execution_list.add_node(node_id)
        self.has_sampler = any(prompt[n]["class_type"] == "KSampler" for n in execution_list.pending)
        self.has_loader = any(prompt[n]["class_type"] == "CheckpointLoaderSimple"
                              for n in execution_list.pending)
        current_outputs = list(prompt.keys())
        executed = []

        while not execution_list.is_empty():
            node_id = execution_list.stage()
            if node_id is None:
                error = {"node_id": next(iter(execution_list.pending)),
                         "exception_message": "Dependency cycle detected",
                         "exception_type": "graph.DependencyCycleError",
                         "traceback": [], "current_inputs": []}
                self.handle_execution_error(prompt_id, prompt, current_outputs, executed, error, None)
                self.success = False
                break
            ok, error, ex = await self.execute_node(prompt, prompt_id, node_id, sigs, is_cached,
                                                    executed)
            self.success = ok
            if not ok:
                self.handle_execution_error(prompt_id, prompt, current_outputs, executed, error, ex)
                break
            execution_list.complete(node_id)
        else:
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)

        if self.success:
            self.stats.renders_completed += 1
        elif self.status_messages and self.status_messages[-1][0] == "execution_interrupted":
            self.stats.renders_interrupted += 1
        else:
            self.stats.renders_failed += 1

        ui_outputs, meta_outputs = {}, {}
        for nid in prompt:
            entry = self.cache.get(sigs.get(nid))
            if entry is None or entry["ui"] is None:
                continue
            if not use_cache and nid not in executed:
                continue
            ui_outputs[nid] = entry["ui"]["output"]
            meta_outputs[nid] = entry["ui"]["meta"]
        self.history_result = {"outputs": ui_outputs, "meta": meta_outputs}
        srv.last_node_id = None
        self.active_bytes = 0

    def handle_execution_error(self, prompt_id, prompt, current_outputs, executed, error, ex):
        node_id = error["node_id"]
        class_type = prompt[node_id]["class_type"]
        if isinstance(ex, InterruptProcessingException):
            self.add_message("execution_interrupted", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": class_type,
                "executed": list(executed)}, broadcast=True)
        else:
            self.add_message("execution_error", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": class_type,
                "executed": list(executed),
                "exception_message": error["exception_message"],
                "exception_type": error["exception_type"],
                "traceback": error["traceback"],
                "current_inputs": error["current_inputs"],
                "current_outputs": list(current_outputs)}, broadcast=False)

    def _input_data(self, prompt, node_id, sigs):
        """execution.get_input_data: link values resolved, literals wrapped, hidden added."""
        node = prompt[node_id]
        cls = cn.NODE_CLASS_MAPPINGS[node["class_type"]]
        spec = cls.input_types(self.dirs)
        data = {}
        for name, value in node["inputs"].items():
            if name not in spec.get("required", {}) and name not in spec.get("optional", {}):
                continue
            if is_link(value):
                src, sock = value
                if src in self.results:
                    outs = self.results[src]
                else:
                    outs = self.cache[sigs[src]]["outputs"]
                data[name] = outs[int(sock)]
            else:
                data[name] = value
        for name, kind in spec.get("hidden", {}).items():
            if kind == "PROMPT":
                data[name] = prompt
            elif kind == "EXTRA_PNGINFO":
                data[name] = self.extra_data.get("extra_pnginfo", None)
            elif kind == "UNIQUE_ID":
                data[name] = node_id
        return data

    async def execute_node(self, prompt, prompt_id, node_id, sigs, is_cached, executed):
        srv = self.server
        class_type = prompt[node_id]["class_type"]
        sig = sigs[node_id]
        if is_cached(node_id):
            cached = self.cache[sig]
            if srv.client_id is not None:
                ui = cached["ui"] or {}
                srv.send_sync("executed", {"node": node_id, "display_node": node_id,
                                           "output": ui.get("output", None),
                                           "prompt_id": prompt_id}, srv.client_id)
            self.finish_progress(node_id)
            return True, None, None

        input_data = None
        try:
            self.start_progress(node_id)
            input_data = self._input_data(prompt, node_id, sigs)
            if srv.client_id is not None:
                srv.last_node_id = node_id
                srv.send_sync("executing", {"node": node_id, "display_node": node_id,
                                            "prompt_id": prompt_id}, srv.client_id)
            self.throw_if_interrupted()          # nodes.before_node_execution
            await self._silent_faults(node_id, class_type)
            impl = getattr(self, "node_" + class_type)
            outputs, ui = await impl(node_id, input_data)
        except InterruptProcessingException as iex:
            log.info("Processing interrupted")
            return False, {"node_id": node_id}, iex
        except Exception as ex:
            typ, _, tb = sys.exc_info()
            formatted = {}
            if input_data is not None:
                formatted = {name: [format_value(v)] for name, v in input_data.items()}
            log.error("!!! Exception during processing !!! %s", ex)
            log.error(traceback.format_exc())
            tips = ""
            if isinstance(ex, OutOfMemoryError):
                tips = OOM_TIPS
                log.error("Got an OOM, unloading all loaded models.")
                self.unload_all_models()
            return False, {"node_id": node_id,
                           "exception_message": "{}\n{}".format(ex, tips),
                           "exception_type": cn.full_type_name(typ),
                           "traceback": traceback.format_tb(tb),
                           "current_inputs": formatted}, ex

        self.results[node_id] = outputs
        ui_entry = None
        if ui:
            ui_entry = {"meta": {"node_id": node_id, "display_node": node_id, "parent_node": None,
                                 "real_node_id": node_id},
                        "output": ui}
            if srv.client_id is not None:
                srv.send_sync("executed", {"node": node_id, "display_node": node_id, "output": ui,
                                           "prompt_id": prompt_id}, srv.client_id)
        self.cache[sig] = {"outputs": outputs, "ui": ui_entry}
        self.finish_progress(node_id)
        executed.append(node_id)
        return True, None, None

    # -- faults -------------------------------------------------------------------------
    def _claim_anchor_faults(self, class_type):
        """Execution faults hit the first KSampler, or the first output node if none runs."""
        if self.anchor_faults_taken:
            return []
        if class_type != "KSampler" and self.has_sampler:
            return []
        self.anchor_faults_taken = True
        return [f for f in self.prompt_faults if f["fault"] not in ("slow", "missing_model", "silent")
                or (f["fault"] == "missing_model" and not self.has_loader)]

    async def _fire(self, fault, node_id, step):
        name, p = fault["fault"], fault["params"]
        log.info("comfysim: fault %r fires at node %s step %s", name, node_id, step)
        if name == "error":
            raise RuntimeError(p.get("message", "comfysim injected error"))
        if name == "oom":
            raise OutOfMemoryError(p.get("message", "Allocation on device"))
        if name == "missing_model":
            raise FileNotFoundError("Model in folder 'checkpoints' with filename '{}' not found."
                                    .format(p.get("filename", "model.safetensors")))
        if name == "exit":
            log.info("comfysim: fault 'exit': terminating abruptly")
            sys.stderr.flush()
            os._exit(int(p.get("code", 3)))
        if name == "drop_ws":
            await self.server.drop_websockets(p.get("mode", "abort"))
        if name == "hang":
            log.info("comfysim: fault 'hang': waiting for an interrupt")
            while not self.interrupt_flag:
                await self.interrupt_event.wait()
            self.throw_if_interrupted()

    async def _silent_faults(self, node_id, class_type):
        """Fault `silent`: the node sends nothing for `ms` before it does its work, and does not
        see an interrupt meanwhile (the real server checks the flag only when a node starts and
        at progress ticks, which most nodes have none of). Hits the node named by `node` (id or
        class), else the first KSampler, else the first output node."""
        for f in self.prompt_faults:
            if f["fault"] != "silent" or f.get("done"):
                continue
            target = f["params"].get("node")
            if target is not None:
                hit = str(target) in (node_id, class_type)
            elif self.has_sampler:
                hit = class_type == "KSampler"
            else:
                hit = cn.is_output_node(class_type)
            if hit:
                f["done"] = True
                ms = float(f["params"].get("ms", 5000))
                log.info("comfysim: fault 'silent': node %s (%s) silent for %.0f ms", node_id, class_type, ms)
                await asyncio.sleep(ms / 1000.0)

    async def image_op(self, image, factor=1.0):
        """Post-processing nodes: silent, not interruptible, --image-op-ms per megapixel."""
        ms = self.cfg.image_op_ms * factor * image.w * image.h * image.batch / 1e6
        if ms > 0:
            await asyncio.sleep(ms / 1000.0)

    @staticmethod
    def _fault_step(fault, steps):
        default = 0 if fault["fault"] in ("error", "oom", "missing_model") else max(1, steps // 2)
        step = int(fault["params"].get("step", default))
        return max(0, min(step, steps))

    # -- node implementations ------------------------------------------------------------
    async def node_CheckpointLoaderSimple(self, node_id, inp):
        ckpt_name = inp["ckpt_name"]
        if not self.model_fault_taken:
            self.model_fault_taken = True
            for f in self.prompt_faults:
                if f["fault"] == "missing_model":
                    f = {"fault": f["fault"], "source": f["source"],
                         "params": dict({"filename": ckpt_name}, **f["params"])}
                    await self._fire(f, node_id, 0)
        path = os.path.join(self.dirs.models, "checkpoints", ckpt_name)
        if not os.path.isfile(path):
            raise FileNotFoundError("Model in folder 'checkpoints' with filename '{}' not found."
                                    .format(ckpt_name))
        await self.ensure_model(ckpt_name)
        return (SimValue("MODEL", ckpt=ckpt_name), SimValue("CLIP", ckpt=ckpt_name),
                SimValue("VAE", ckpt=ckpt_name)), None

    async def node_CLIPTextEncode(self, node_id, inp):
        clip = inp["clip"]
        return (SimValue("CONDITIONING", text=inp["text"], ckpt=getattr(clip, "ckpt", None)),), None

    async def node_EmptyLatentImage(self, node_id, inp):
        return (SimValue("LATENT", w=inp["width"], h=inp["height"], batch=inp.get("batch_size", 1),
                         seed=None),), None

    async def node_KSampler(self, node_id, inp):
        steps = int(inp["steps"])
        latent = inp["latent_image"]
        model = inp["model"]
        await self.ensure_model(model.ckpt)
        faults = self._claim_anchor_faults("KSampler")
        at = {}
        for f in faults:
            at.setdefault(self._fault_step(f, steps), []).append(f)
        self.active_bytes = min(int(1.2e9 * latent.w * latent.h / (512 * 512) * latent.batch),
                                40 * 1024 ** 3)
        try:
            for f in at.get(0, []):
                await self._fire(f, node_id, 0)
            for step in range(1, steps + 1):
                await self.sleep(self.step_ms / 1000.0)
                for f in at.get(step, []):
                    await self._fire(f, node_id, step)
                self.progress_hook(node_id, step, steps)
        finally:
            self.active_bytes = 0
        return (SimValue("LATENT", w=latent.w, h=latent.h, batch=latent.batch, seed=inp["seed"],
                         ckpt=model.ckpt),), None

    async def node_VAEDecode(self, node_id, inp):
        s = inp["samples"]
        await self.sleep(self.step_ms / 1000.0)
        return (SimValue("IMAGE", w=s.w, h=s.h, batch=s.batch,
                         seed=s.seed if s.seed is not None else "empty", color=None),), None

    async def node_EmptyImage(self, node_id, inp):
        return (SimValue("IMAGE", w=inp["width"], h=inp["height"], batch=inp["batch_size"],
                         seed=None, color=inp["color"]),), None

    async def node_ImageScale(self, node_id, inp):
        image = inp["image"]
        w, h = int(inp["width"]), int(inp["height"])
        if w == 0 and h == 0:
            w, h = image.w, image.h
        elif w == 0:
            w = max(1, round(image.w * h / image.h))
        elif h == 0:
            h = max(1, round(image.h * w / image.w))
        out = SimValue("IMAGE", w=w, h=h, batch=image.batch, seed=image.seed, color=image.color)
        await self.image_op(out)
        return (out,), None

    async def node_ImageBlur(self, node_id, inp):
        image = inp["image"]
        r = int(inp["blur_radius"])
        dims = "[%d, 3, %d, %d]" % (image.batch, image.h, image.w)
        # torch.nn.functional.pad(..., 'reflect') on the [B, C, H, W] image, width checked first
        if r >= image.w:
            raise RuntimeError("Argument #4: Padding size should be less than the corresponding input "
                               "dimension, but got: padding (%d, %d) at dimension 3 of input %s" % (r, r, dims))
        if r >= image.h:
            raise RuntimeError("Argument #6: Padding size should be less than the corresponding input "
                               "dimension, but got: padding (%d, %d) at dimension 2 of input %s" % (r, r, dims))
        await self.image_op(image, factor=1.0 + r / 4.0)
        seed = image.seed if image.color is not None else "blur%d:%s" % (r, image.seed)
        return (SimValue("IMAGE", w=image.w, h=image.h, batch=image.batch, seed=seed,
                         color=image.color),), None

    async def node_ImageInvert(self, node_id, inp):
        image = inp["image"]
        await self.image_op(image, factor=0.1)
        color = None if image.color is None else image.color ^ 0xFFFFFF
        return (SimValue("IMAGE", w=image.w, h=image.h, batch=image.batch, seed="inv:%s" % (image.seed,),
                         color=color),), None

    async def node_SaveAnimatedWEBP(self, node_id, inp):
        for f in self._claim_anchor_faults("output"):
            await self._fire(f, node_id, 0)
        images = inp["images"]
        folder, filename, counter, subfolder, _ = get_save_image_path(
            inp.get("filename_prefix", "ComfyUI"), self.dirs.output, images.w, images.h)
        file = f"{filename}_{counter:05}_.webp"
        data = animated_webp(images.w, images.h, images.batch, float(inp.get("fps", 6.0)))
        await self.image_op(images, factor=0.5)

        await run_write(folder, [(file, data)])
        self.stats.images_written += 1
        return (), {"images": [{"filename": file, "subfolder": subfolder, "type": "output"}],
                    "animated": [True]}

    async def node_LoadImage(self, node_id, inp):
        path = self.dirs.get_annotated_filepath(inp["image"])
        with open(path, "rb") as f:
            data = f.read()
        info = cpng.read_png_info(data)
        w, h = (info[0], info[1]) if info else (512, 512)
        digest = hashlib.sha256(data).hexdigest()
        return (SimValue("IMAGE", w=w, h=h, batch=1, seed="file:" + digest, color=None),
                SimValue("MASK")), None

    async def node_SaveImage(self, node_id, inp):
        return (), await self._save_images(node_id, inp, self.dirs.output, "output", "", 4)

    async def node_PreviewImage(self, node_id, inp):
        append = "_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        return (), await self._save_images(node_id, inp, self.dirs.temp, "temp", append, 1)

    async def _save_images(self, node_id, inp, output_dir, type_name, prefix_append, level):
        for f in self._claim_anchor_faults("output"):
            await self._fire(f, node_id, 0)
        if not self.has_sampler and self.step_ms != self.cfg.step_ms:
            await self.sleep(self.step_ms / 1000.0)
            self.throw_if_interrupted()
        images = inp["images"]
        filename_prefix = inp.get("filename_prefix", "ComfyUI") + prefix_append
        folder, filename, counter, subfolder, _ = get_save_image_path(
            filename_prefix, output_dir, images.w, images.h)
        texts = []
        if not self.cfg.disable_metadata:
            prompt, extra_pnginfo = inp.get("prompt"), inp.get("extra_pnginfo")
            if prompt is not None:
                texts.append(("prompt", json.dumps(prompt)))
            if extra_pnginfo is not None:
                for x in extra_pnginfo:
                    texts.append((x, json.dumps(extra_pnginfo[x])))
        files = []
        results = []
        for batch_number in range(images.batch):
            name = filename.replace("%batch_num%", str(batch_number))
            file = f"{name}_{counter:05}_.png"
            files.append((file, functools.partial(
                cpng.synth_png, images.w, images.h, images.seed, batch_number, color=images.color,
                texts=texts, compress_level=level)))
            results.append({"filename": file, "subfolder": subfolder, "type": type_name})
            counter += 1
        await run_write(folder, files)
        self.stats.images_written += len(files)
        return {"images": results}


def animated_webp(width, height, frames, fps):
    """A RIFF/WEBP container with the VP8X animation flag and one ANMF frame per image (each a
    1x1 lossless bitstream): enough for a client that stores, hashes and sniffs the file."""
    def chunk(tag, payload):
        pad = b"\0" if len(payload) % 2 else b""
        return tag + struct.pack("<I", len(payload)) + payload + pad

    def u24(n):
        return struct.pack("<I", n)[:3]

    duration = max(1, int(round(1000.0 / fps)))
    body = chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(width - 1) + u24(height - 1))
    body += chunk(b"ANIM", struct.pack("<IH", 0, 0))
    for _ in range(max(1, frames)):
        frame = u24(0) + u24(0) + u24(0) + u24(0) + u24(duration) + bytes([0])
        body += chunk(b"ANMF", frame + chunk(b"VP8L", WEBP_1X1_VP8L))
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def get_save_image_path(filename_prefix, output_dir, image_width=0, image_height=0):
    """folder_paths.get_save_image_path of 0.3.64."""
    def map_filename(filename):
        prefix_len = len(os.path.basename(filename_prefix))
        prefix = filename[:prefix_len + 1]
        try:
            digits = int(filename[prefix_len + 1:].split("_")[0])
        except Exception:
            digits = 0
        return digits, prefix

    def compute_vars(text, width, height):
        text = text.replace("%width%", str(width))
        text = text.replace("%height%", str(height))
        now = time.localtime()
        text = text.replace("%year%", str(now.tm_year))
        text = text.replace("%month%", str(now.tm_mon).zfill(2))
        text = text.replace("%day%", str(now.tm_mday).zfill(2))
        text = text.replace("%hour%", str(now.tm_hour).zfill(2))
        text = text.replace("%minute%", str(now.tm_min).zfill(2))
        text = text.replace("%second%", str(now.tm_sec).zfill(2))
        return text

    if "%" in filename_prefix:
        filename_prefix = compute_vars(filename_prefix, image_width, image_height)

    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)

    common = os.path.commonpath((output_dir, os.path.abspath(full_output_folder)))
    if common != output_dir:
        err = ("**** ERROR: Saving image outside the output folder is not allowed."
               + "\n full_output_folder: " + os.path.abspath(full_output_folder)
               + "\n         output_dir: " + output_dir
               + "\n         commonpath: " + common)
        log.error(err)
        raise Exception(err)

    if len(os.path.basename(filename_prefix)) == len(filename):
        try:
            counter = SAVE_COUNTERS.next_counter(full_output_folder, filename)
        except FileNotFoundError:
            os.makedirs(full_output_folder, exist_ok=True)
            counter = 1
        return full_output_folder, filename, counter, subfolder, filename_prefix

    # A prefix whose basename normpath changes ("x/", "x/.."): ComfyUI's own scan, verbatim.
    try:
        counter = max(filter(lambda a: os.path.normcase(a[1][:-1]) == os.path.normcase(filename)
                             and a[1][-1] == "_",
                             map(map_filename, os.listdir(full_output_folder))))[0] + 1
    except ValueError:
        counter = 1
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
        counter = 1
    return full_output_folder, filename, counter, subfolder, filename_prefix


def _dir_key(folder):
    st = os.stat(folder)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class SaveCounters:
    """The counter of get_save_image_path without listing the folder for every image.

    ComfyUI lists the output folder on every save and takes max(counter)+1 over the names
    "<filename>_<counter>_..."; with everything saved under one prefix that is O(files saved),
    and the simulator slowed down as its output grew. Here each folder's listing is indexed
    once -- for every "_" in every name, the largest number after it, keyed by the text
    before it, which is what the scan computes for a filename of that length -- and reused
    while the folder's (inode, mtime, ctime, size) stay the ones seen at the listing. Files
    the simulator writes itself are added to the index (record()); anything else that
    changes the folder (an upload, a test, a person) changes its ctime, and the next save
    lists it again. Since Linux 6.13 (multigrain timestamps on ext4/xfs/btrfs/tmpfs) a
    change after a stat always gets a new ctime; on older kernels a foreign change within
    the same clock tick as the simulator's own write could go unseen.
    """

    def __init__(self):
        self.folders = {}           # folder -> [dir key, {normcase(text before "_"): max number}]

    @staticmethod
    def _add(index, name):
        i = name.find("_")
        while i >= 0:
            try:
                digits = int(name[i + 1:].split("_")[0])
            except Exception:
                digits = 0
            key = os.path.normcase(name[:i])
            if key not in index or digits > index[key]:
                index[key] = digits
            i = name.find("_", i + 1)

    def next_counter(self, folder, filename):
        key = _dir_key(folder)              # FileNotFoundError as listdir would raise it
        entry = self.folders.get(folder)
        if entry is None or entry[0] != key:
            index = {}
            for name in os.listdir(folder):
                self._add(index, name)
            # a change between the stat and the listing shows at the next stat: relisted
            entry = self.folders[folder] = [key, index]
        top = entry[1].get(os.path.normcase(filename))
        return 1 if top is None else top + 1

    def record(self, folder, before, after, names):
        """The simulator wrote `names` into `folder`, whose key was `before` just before the
        writes and `after` just after them."""
        entry = self.folders.get(folder)
        if entry is None or entry[0] != before:
            self.folders.pop(folder, None)  # changed behind our back since the listing
            return
        for name in names:
            self._add(entry[1], name)
        entry[0] = after


SAVE_COUNTERS = SaveCounters()

def write_files(folder, files):
    """Write [(name, bytes or a callable making them)] into folder, keeping SAVE_COUNTERS'
    index of the folder current."""
    before = _dir_key(folder)
    for name, data in files:
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data() if callable(data) else data)
    SAVE_COUNTERS.record(folder, before, _dir_key(folder), [name for name, _ in files])


async def run_write(folder, files):
    # On a thread, even for small images: written on the event loop (about 1 ms for a 64x64
    # PNG) they held up the HTTP and WebSocket work that then ran between two renders, and
    # the idle gap p50 at 100 ms renders rose from 0.5 to 1.3 ms (bench/sim_client.py, A/B).
    # The worker awaits this, so no other save consults SAVE_COUNTERS meanwhile.
    await asyncio.get_running_loop().run_in_executor(None, write_files, folder, files)
