#!/usr/bin/python3
"""Checks jobs end to end, for the integration tests: the record, its durations, its outputs
(the stored file, its sha256 and size, its type read from the bytes, the picture size), exactly
one completion event that agrees with the record, and that ComfyUI's copies are gone.

    check_jobs.py EXPECT.json EVENTS.jsonl

EXPECT.json maps job ids to what is expected of them:
    {"<job_id>": {"name": "txt2img",              # for messages
                  "status": "succeeded" | "failed",
                  "attempts": 1,                   # optional
                  "error_code": "node_error",      # optional; "error": substring, optional
                  "rendered": true,                # render_ms > 0 (default: succeeded)
                  "outputs": [{"mime": "image/png", "width": 64, "height": 64}, ...],
                  "same_pixels_as": "<job_id>"}}   # optional: PNGs with the same pixel data
                                                   # (IDAT) as that job's (their text chunks
                                                   # hold each job's own prompt)
The database is $GENQ_DATABASE_URL (psql). With $GENQ_COMFYUI_REAL_DIR set, ComfyUI's output and
temp directories must hold no file of a recorded job (genq deletes them: GENQ_COMFYUI_OUTPUT_DIR).
Prints one line per job; exits 1 on the first problem list.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys


def sql(query):
    out = subprocess.run(["psql", "-qtAX", os.environ["GENQ_DATABASE_URL"], "-F", "\t", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def media(data):
    """(mime, width, height) read from the bytes, independently of genq's C code."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", data[16:24])
        # an acTL chunk before the first IDAT makes an APNG
        at, apng = 8, False
        while at + 8 <= len(data):
            n, kind = struct.unpack(">I4s", data[at:at + 8])
            if kind == b"acTL":
                apng = True
                break
            if kind == b"IDAT":
                break
            at += 12 + n
        return ("image/apng" if apng else "image/png"), w, h
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8X":
            if not data[20] & 0x02:
                raise ValueError("a VP8X WebP without the animation flag")
            return "image/webp", 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if kind == b"VP8L":
            b = int.from_bytes(data[21:25], "little")
            return "image/webp", (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
        if kind == b"VP8 ":
            return "image/webp", int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", *struct.unpack("<HH", data[6:10])
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ("video/webm" if b"webm" in data[:64] else "video/x-matroska"), None, None
    if data[4:8] == b"ftyp":
        return "video/mp4", None, None
    if data[:4] == b"fLaC":
        return "audio/flac", 0, 0
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav", 0, 0
    return "application/octet-stream", None, None


def idat(data):
    """A PNG's image data (its IDAT chunks): what stays the same when only text chunks differ."""
    out, at = b"", 8
    while data[:8] == b"\x89PNG\r\n\x1a\n" and at + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IDAT":
            out += data[at + 8:at + 8 + n]
        at += 12 + n
    return out


def main():
    expect = json.load(open(sys.argv[1]))
    events = {}
    for line in open(sys.argv[2]):
        if line.strip():
            ev = json.loads(line)
            events.setdefault(ev["job_id"], []).append(ev)
    comfy_dir = os.environ.get("GENQ_COMFYUI_REAL_DIR")
    leftovers = []
    if comfy_dir:
        for sub in ("output", "temp"):
            for d, _, files in os.walk(os.path.join(comfy_dir, sub)):
                leftovers += [os.path.join(d, f) for f in files]
    problems = []
    shas, pixels = {}, {}
    for job, want in expect.items():
        name = want.get("name", job)
        bad = []
        rows = sql(f"SELECT status, attempts, coalesce(error_code,''), coalesce(error,''), queue_ms, render_ms, total_ms "
                   f"FROM genq.jobs WHERE job_id = '{job}'")
        if len(rows) != 1:
            problems.append(f"{name} ({job}): {len(rows)} records")
            continue
        status, attempts, code, error, queue_ms, render_ms, total_ms = rows[0]
        if status != want["status"]:
            bad.append(f"status {status} ({code}: {error}), expected {want['status']}")
        if "attempts" in want and int(attempts) != want["attempts"]:
            bad.append(f"{attempts} attempts, expected {want['attempts']}")
        if "error_code" in want and code != want["error_code"]:
            bad.append(f"error_code {code!r} ({error}), expected {want['error_code']!r}")
        if "error" in want and want["error"] not in error:
            bad.append(f"error {error!r} lacks {want['error']!r}")
        if "" in (queue_ms, render_ms, total_ms):
            bad.append(f"durations missing: queue {queue_ms!r} render {render_ms!r} total {total_ms!r}")
        else:
            q, r, t = int(queue_ms), int(render_ms), int(total_ms)
            if q < 0 or r < 0 or q + r > t:
                bad.append(f"durations inconsistent: queue {q} + render {r} > total {t}")
            if want.get("rendered", want["status"] == "succeeded") and r <= 0:
                bad.append(f"render_ms {r} for a rendered job")
        outs = sql(f"SELECT idx, uri, sha256, bytes, coalesce(width, 0), coalesce(height, 0), mime "
                   f"FROM genq.job_outputs WHERE job_id = '{job}' ORDER BY idx")
        want_outs = want.get("outputs", [])
        if len(outs) != len(want_outs):
            bad.append(f"{len(outs)} outputs, expected {len(want_outs)}: {[o[6] for o in outs]}")
        shas[job] = [o[2] for o in outs]
        pixels[job] = []
        for o, w in zip(outs, want_outs):
            idx, uri, sha, nbytes, width, height, mime = o
            if not uri.startswith("file://"):
                bad.append(f"output {idx}: uri {uri}")
                continue
            data = open(uri[len("file://"):], "rb").read()
            pixels[job].append(idat(data))
            if hashlib.sha256(data).hexdigest() != sha or len(data) != int(nbytes):
                bad.append(f"output {idx}: sha256 or size does not match the file {uri}")
            real_mime, rw, rh = media(data)
            if mime != w["mime"] or real_mime != w["mime"]:
                bad.append(f"output {idx}: mime {mime} (bytes say {real_mime}), expected {w['mime']}")
            if (int(width), int(height)) != (w.get("width", 0), w.get("height", 0)):
                bad.append(f"output {idx}: recorded {width}x{height}, expected {w.get('width', 0)}x{w.get('height', 0)}")
            if rw is not None and w.get("width") and (rw, rh) != (w["width"], w["height"]):
                bad.append(f"output {idx}: the file is {rw}x{rh}, expected {w['width']}x{w['height']}")
            ext = uri.rsplit(".", 1)[-1]
            if not uri.endswith(f"/{sha[:2]}/{sha}.{ext}"):
                bad.append(f"output {idx}: not content-addressed: {uri}")
        evs = events.get(job, [])
        if len(evs) != 1:
            bad.append(f"{len(evs)} completion events, expected exactly one")
        else:
            ev = evs[0]
            if ev["status"] != status.upper() or ev["attempt"] != int(attempts):
                bad.append(f"event {ev['status']} attempt {ev['attempt']}, record {status} attempt {attempts}")
            if [o["sha256"] for o in ev["outputs"]] != shas[job]:
                bad.append("the event's outputs differ from the record's")
            if status == "failed" and (ev.get("error") or {}).get("code") != code:
                bad.append(f"event error {ev.get('error')}, record {code}")
        mine = [f for f in leftovers if os.path.basename(f).startswith(job)]
        if mine:
            bad.append(f"ComfyUI's copies were not deleted: {mine[:3]}")
        if bad:
            problems.append(f"{name} ({job}): " + "; ".join(bad))
        else:
            kinds = ",".join(o[6].split("/")[1] + (f" {o[4]}x{o[5]}" if o[4] != "0" else "") for o in outs)
            print(f"ok {name}: {status} after {attempts} attempt(s)"
                  + (f" [{code}]" if code else "") + (f", {kinds}" if kinds else "")
                  + f", queue {queue_ms} render {render_ms} total {total_ms} ms")
    for job, want in expect.items():
        other = want.get("same_pixels_as")
        if other and (pixels.get(job) != pixels.get(other) or not pixels.get(job)):
            problems.append(f"{want.get('name', job)}: pixels differ from {expect[other].get('name', other)}'s")
    if problems:
        print("\n".join("FAIL " + p for p in problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
