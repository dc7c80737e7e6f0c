#!/usr/bin/python3
"""Cross-checks genq's Avro messages against python3-avro, using only the .avsc files.

    check_python_interop.py encode request|completed DIR
        Writes DIR/<kind>-full.avro and DIR/<kind>-min.avro (single-object encoded by
        python3-avro: C3 01, the little-endian CRC-64-AVRO fingerprint of the schema's
        Parsing Canonical Form, the datum) and, next to each, <name>.json: the same values
        as a JSON object with the .avsc field names (timestamps as epoch milliseconds;
        for completed, the shape of gq_completed_to_json).
    check_python_interop.py decode request|completed FILE.avro EXPECTED.json
        Decodes a message written by genq's C code with python3-avro, checks its header
        and fingerprint, and compares every field with EXPECTED.json. Exit 1 on mismatch.
    check_python_interop.py selftest
        Both directions within python.

tests/unit/test_schema.c runs it in both directions. Run with /usr/bin/python3.
"""
import datetime
import io
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avro.io  # noqa: E402
import avro.schema  # noqa: E402
import avro_ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
AVSC = {"request": "schemas/GenerationRequest.avsc", "completed": "schemas/GenerationCompleted.avsc"}
TIMESTAMPS = {"request": ("submitted_at",), "completed": ("finished_at",)}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

SAMPLES = {
    "request": {
        "full": {
            "job_id": "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "submitted_at": 1767225600123,
            "workflow": "sdxl_base",
            "workflow_json": '{"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}',
            "prompt": 'a lighthouse at dusk \U0001f305 \u00abn\u00efce\u00bb "quoted"\nline 2\ttab',
            "negative_prompt": "blurry, low quality",
            "width": 1024,
            "height": 768,
            "seed": 9007199254740993,
            "steps": 30,
            "cfg": 6.5,
            "sampler": "dpmpp_2m",
            "scheduler": "karras",
            "model": "sdxl/sd_xl_base_1.0.safetensors",
            "batch_size": 2,
            "overrides": {"3.denoise": "0.75", "CLIP Text Encode.text": '"a cat"'},
            "priority": -5,
            "source": "tenant-a/web",
            "max_attempts": 3,
            "timeout_s": 600,
            "metadata": {"request_id": "r-1", "\u00fcn\u00ef": "\u00e7\u00f8d\u00e9"},
        },
        "min": {
            "job_id": "ffffffff-0000-4000-8000-000000000000",
            "submitted_at": 0,
            "workflow": "txt2img",
            "workflow_json": None,
            "prompt": "",
            "negative_prompt": "",
            "width": 512,
            "height": 512,
            "seed": 0,
            "steps": 20,
            "cfg": 7.0,
            "sampler": "euler",
            "scheduler": "normal",
            "model": None,
            "batch_size": 1,
            "overrides": {},
            "priority": 0,
            "source": "",
            "max_attempts": None,
            "timeout_s": None,
            "metadata": {},
        },
    },
    "completed": {
        "full": {
            "job_id": "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "attempt": 2,
            "status": "SUCCEEDED",
            "outputs": [
                {"uri": "file:///data/out/0b7a3f0e_00001_.png", "sha256": "ab" * 32,
                 "bytes": 1234567, "width": 1024, "height": 768, "mime": "image/png"},
                {"uri": "s3://bucket/k\u00e9y.png", "sha256": "0" * 64, "bytes": 1 << 40,
                 "width": 16, "height": 16, "mime": "image/png"},
            ],
            "queue_ms": 1500,
            "render_ms": 42000,
            "total_ms": 43600,
            "worker_id": "genq-worker-7d9f-0",
            "error": None,
            "finished_at": 1767225643723,
            "model": "sdxl/sd_xl_base_1.0.safetensors",
            "source": "tenant-a/web",
            "metadata": {"request_id": "r-1", "\u00fcn\u00ef": "\u00e7\u00f8d\u00e9"},
        },
        "min": {
            "job_id": "ffffffff-0000-4000-8000-000000000000",
            "attempt": 1,
            "status": "FAILED",
            "outputs": [],
            "queue_ms": 0,
            "render_ms": 0,
            "total_ms": 0,
            "worker_id": "",
            "error": {"code": "timeout", "message": "render took longer than 600 s \u2014 \u00fc",
                      "retryable": True},
            "finished_at": 0,
            "model": None,
            "source": None,
            "metadata": {},
        },
    },
}


def schema_text(kind):
    with open(os.path.join(ROOT, AVSC[kind]), encoding="utf-8") as f:
        return f.read()


def encode(kind, values):
    text = schema_text(kind)
    datum = dict(values)
    for field in TIMESTAMPS[kind]:  # python3-avro wants datetimes for timestamp-millis
        datum[field] = EPOCH + datetime.timedelta(milliseconds=datum[field])
    buf = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(text)).write(datum, avro.io.BinaryEncoder(buf))
    return avro_ref.single_object_header(text) + buf.getvalue()


def decode(kind, data):
    text = schema_text(kind)
    want = avro_ref.fingerprint(text)
    if data[:2] != b"\xc3\x01":
        raise ValueError(f"bad single-object marker {data[:2].hex()}")
    if len(data) < 10:
        raise ValueError("shorter than the single-object header")
    (fp,) = struct.unpack("<Q", data[2:10])
    if fp != want:
        raise ValueError(f"fingerprint 0x{fp:016x}, expected 0x{want:016x} ({AVSC[kind]})")
    schema = avro.schema.parse(text)
    buf = io.BytesIO(data[10:])
    datum = avro.io.DatumReader(schema, schema).read(avro.io.BinaryDecoder(buf))
    if buf.tell() != len(data) - 10:
        raise ValueError(f"{len(data) - 10 - buf.tell()} bytes left over after the datum")
    for field in TIMESTAMPS[kind]:
        datum[field] = (datum[field] - EPOCH) // datetime.timedelta(milliseconds=1)
    return datum


def compare(got, want):
    problems = []
    for key in sorted(set(got) | set(want)):
        if key not in got or key not in want:
            problems.append(f"{key}: only in {'decoded' if key in got else 'expected'}")
        elif got[key] != want[key] or type(got[key]) is not type(want[key]):
            problems.append(f"{key}: decoded {got[key]!r}, expected {want[key]!r}")
    return problems


def cmd_encode(kind, outdir):
    for variant, values in SAMPLES[kind].items():
        base = os.path.join(outdir, f"{kind}-{variant}")
        with open(base + ".avro", "wb") as f:
            f.write(encode(kind, values))
        with open(base + ".json", "w", encoding="utf-8") as f:
            json.dump(values, f, ensure_ascii=False)
    return 0


def cmd_decode(kind, path, expected_path):
    with open(path, "rb") as f:
        data = f.read()
    with open(expected_path, encoding="utf-8") as f:
        want = json.load(f)
    try:
        got = decode(kind, data)
    except Exception as e:  # noqa: BLE001 - any failure is a finding
        print(f"{path}: python3-avro cannot decode it: {e}", file=sys.stderr)
        return 1
    problems = compare(got, want)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if not problems:
        print(f"{path}: python3-avro decodes it; {len(want)} fields equal", file=sys.stderr)
    return 1 if problems else 0


def cmd_selftest():
    rc = 0
    with tempfile.TemporaryDirectory() as d:
        for kind in SAMPLES:
            cmd_encode(kind, d)
            for variant in SAMPLES[kind]:
                base = os.path.join(d, f"{kind}-{variant}")
                rc |= cmd_decode(kind, base + ".avro", base + ".json")
    return rc


def main(argv):
    if len(argv) == 2 and argv[1] == "selftest":
        return cmd_selftest()
    if len(argv) == 4 and argv[1] == "encode" and argv[2] in AVSC:
        return cmd_encode(argv[2], argv[3])
    if len(argv) == 5 and argv[1] == "decode" and argv[2] in AVSC:
        return cmd_decode(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
