#!/usr/bin/python3
"""Writes the seed corpora under tests/fuzz/corpus/ (committed; rerun after a schema change).

    /usr/bin/python3 tests/fuzz/make_corpus.py

Valid messages come from python3-avro (tests/schemas/check_python_interop.py); the edge
cases are written by hand: negative block counts with byte sizes, huge lengths and counts,
cut-short messages, a wrong fingerprint.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "schemas"))
import avro_ref  # noqa: E402
import check_python_interop as interop  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")


def varint(v):
    u = (v << 1) ^ (v >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        out.append(b | (0x80 if u else 0))
        if not u:
            return bytes(out)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    mode = "w" if isinstance(data, str) else "wb"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


def request_head():
    """Header and fields up to batch_size of a request with defaults (hand-written)."""
    return (avro_ref.single_object_header(interop.schema_text("request"))
            + string("0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b") + varint(1) + string("txt2img")
            + varint(0) + string("p") + string("") + varint(512) + varint(512) + varint(0)
            + varint(20) + struct.pack("<d", 7.0) + string("euler") + string("normal")
            + varint(0) + varint(1))


def request_tail():
    return varint(0) + string("") + varint(2) + varint(3) + varint(0) + varint(0)


def main():
    for kind in ("request", "completed"):
        for variant, values in interop.SAMPLES[kind].items():
            full = interop.encode(kind, values)
            write(f"{kind}_decode", f"{variant}.avro", full)
            write(f"{kind}_decode", f"{variant}-cut.avro", full[: len(full) // 2])
        other = "completed" if kind == "request" else "request"
        write(f"{kind}_decode", "other-schema.avro",
              interop.encode(other, interop.SAMPLES[other]["min"]))
    head, tail = request_head(), request_tail()
    # overrides as one block with a negative count and its byte size
    block = string("3.seed") + string("42") + string("KSampler.cfg") + string("7.5")
    write("request_decode", "negative-block.avro",
          head + varint(-2) + varint(len(block)) + block + varint(0) + tail)
    write("request_decode", "huge-count.avro", head + varint(1 << 40) + tail)
    write("request_decode", "huge-string.avro", head + varint(1) + varint(1 << 62) + b"abc")
    fp = avro_ref.single_object_header(interop.schema_text("request"))
    write("request_decode", "unknown-fingerprint.avro",
          b"\xc3\x01" + bytes(8) + (head + varint(0) + tail)[len(fp):])
    write("request_decode", "confluent.bin", b"\x00\x00\x00\x00\x07" + b"\x02")
    for kind in ("request",):
        for variant, values in interop.SAMPLES[kind].items():
            write("request_json", f"{variant}.json", json.dumps(values, ensure_ascii=False))
    write("request_json", "typed-overrides.json",
          '{"prompt": "p", "overrides": {"3.seed": 42, "4.x": [1, {"a": null}], "5.t": "\\"s\\""}}')
    with open(os.path.join(HERE, "..", "schemas", "vectors.json"), encoding="utf-8") as f:
        vectors = json.load(f)
    for v in vectors["vectors"] + vectors["invalid"]:
        if "schema" in v:
            write("avro_canon", v["name"].replace("/", "_") + ".json", v["schema"])
    for path in interop.AVSC.values():
        write("avro_canon", os.path.basename(path), interop.schema_text(
            "request" if "Request" in path else "completed"))
    schema_resolve()


def schema_resolve():
    """fuzz_schema_resolve: byte 0 picks the way (0: v0/v2 by the schema directory, 2: a
    writer schema given inline), then its input. Needs no Avro library."""
    def ln(v):
        return varint(v)

    def s(x):
        b = x.encode()
        return ln(len(b)) + b
    job = "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    head = s(job) + ln(1767225600123) + s("txt2img") + ln(0) + s("a lighthouse")
    mid = (s("") + ln(512) + ln(512) + ln(42) + ln(20) + struct.pack("<d", 7.0) + s("euler")
           + s("normal") + ln(1) + s("sd15.safetensors") + ln(1) + ln(1) + s("3.denoise")
           + s("0.5") + ln(0) + ln(0) + s("tenant"))
    v0 = head + mid + ln(0)                       # max_attempts null; no timeout_s, metadata
    v2 = head + ln(1) + s("watercolour") + mid + ln(0) + ln(0) + ln(1) + s("k") + s("v") + ln(0)
    write("schema_resolve", "v0.bin", b"\x00\x00" + v0)
    write("schema_resolve", "v2.bin", b"\x00\x01" + v2)
    write("schema_resolve", "v2-cut.bin", b"\x00\x01" + v2[:-7])
    tiny = ('{"type":"record","name":"GenerationRequest","namespace":"genq.v1","fields":['
            '{"name":"job_id","type":"string"},{"name":"prompt","type":"bytes"},'
            '{"name":"width","type":"long","aliases":["w"]},'
            '{"name":"extra","type":{"type":"array","items":["null","float"]}}]}')
    write("schema_resolve", "inline-schema.bin", b"\x02" + tiny.encode() + b"\x00"
          + s(job) + s("p") + ln(64) + ln(2) + ln(1) + struct.pack("<f", 1.5) + ln(0) + ln(0))


if __name__ == "__main__":
    if sys.argv[1:] == ["schema_resolve"]:
        schema_resolve()
    else:
        main()
