#!/usr/bin/env python3
"""A non-C client of genq's contract: fastavro and the Schema Registry's REST API (urllib),
nothing of genq's. Used by the integration tests of schema evolution and Confluent framing.
Run it with the cached venv's python (tests/integration/lib.sh: t_fastavro).

    fastavro_client.py encode SCHEMA.avsc JSON [--confluent REGISTRY_URL SUBJECT] > msg.bin
        One message with the given writer schema: single-object encoded (C3 01, the
        little-endian CRC-64-AVRO fingerprint of its Parsing Canonical Form, the datum), or
        Confluent-framed (00, the big-endian id the registry answers when the schema is
        registered under SUBJECT, the datum). Fields missing from JSON take the schema's
        defaults; submitted_at defaults to now.
    fastavro_client.py decode REGISTRY_URL < messages
        Reads messages framed as kcat -f '%R%s' writes them (a 4-byte big-endian length,
        the payload), decodes each with the writer schema the registry has for its id
        (Confluent framing) or, for single-object ones, with the .avsc files given in
        GENQ_AVSC (colon-separated), and prints one JSON object per line with "_framing"
        and "_schema_id" added.
"""
import base64
import io
import json
import os
import struct
import sys
import time
import urllib.request

import fastavro
import fastavro.schema


def registry_request(url, method="GET", body=None):
    headers = {"Accept": "application/vnd.schemaregistry.v1+json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"
    user = os.environ.get("REGISTRY_USER")
    if user:
        token = base64.b64encode(f"{user}:{os.environ.get('REGISTRY_PASSWORD', '')}".encode())
        headers["Authorization"] = "Basic " + token.decode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def fingerprint(schema_json):
    canon = fastavro.schema.to_parsing_canonical_form(schema_json)
    return bytes.fromhex(fastavro.schema.fingerprint(canon, "CRC-64-AVRO"))


def encode(argv):
    path, given = argv[0], json.loads(argv[1])
    text = open(path).read()
    schema_json = json.loads(text)
    parsed = fastavro.parse_schema(schema_json)
    values = {}
    for field in schema_json["fields"]:
        name = field["name"]
        if name in given:
            values[name] = given[name]
        elif "default" in field:
            values[name] = field["default"]
        elif name == "submitted_at":
            values[name] = int(time.time() * 1000)
        else:
            sys.exit(f"fastavro_client.py: field {name} has no default; give it")
    out = io.BytesIO()
    if len(argv) >= 4 and argv[2] == "--confluent":
        url, subject = argv[3].rstrip("/"), argv[4]
        answer = registry_request(f"{url}/subjects/{subject}/versions", "POST", {"schema": text})
        out.write(b"\x00" + struct.pack(">I", answer["id"]))
    else:
        out.write(b"\xc3\x01" + fingerprint(schema_json))
    fastavro.schemaless_writer(out, parsed, values)
    sys.stdout.buffer.write(out.getvalue())


def decode(argv):
    url = argv[0].rstrip("/")
    known = {}
    for path in filter(None, os.environ.get("GENQ_AVSC", "").split(":")):
        s = json.load(open(path))
        known[fingerprint(s)] = fastavro.parse_schema(s)
    by_id = {}
    data = sys.stdin.buffer.read()
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack(">i", data[pos:pos + 4])
        pos += 4
        msg = data[pos:pos + n]
        pos += n
        if msg[:1] == b"\x00":
            (sid,) = struct.unpack(">I", msg[1:5])
            if sid not in by_id:
                text = registry_request(f"{url}/schemas/ids/{sid}")["schema"]
                by_id[sid] = fastavro.parse_schema(json.loads(text))
            rec = fastavro.schemaless_reader(io.BytesIO(msg[5:]), by_id[sid], by_id[sid])
            rec["_framing"], rec["_schema_id"] = "confluent", sid
        elif msg[:2] == b"\xc3\x01" and msg[2:10] in known:
            s = known[msg[2:10]]
            rec = fastavro.schemaless_reader(io.BytesIO(msg[10:]), s, s)
            rec["_framing"], rec["_schema_id"] = "single-object", None
        else:
            sys.exit(f"fastavro_client.py: a message framed neither way: {msg[:10].hex()}")
        print(json.dumps(rec, default=str))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("encode", "decode"):
        sys.exit(__doc__)
    {"encode": encode, "decode": decode}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
