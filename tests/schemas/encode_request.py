#!/usr/bin/env python3
"""Encodes one GenerationRequest with python3-avro and the .avsc file alone (another Avro
implementation than genq's), in single-object encoding, to stdout. Fields missing from the
JSON argument take the schema's defaults. Used by tests to publish requests that genq's
own producer would refuse (it validates before sending).

    encode_request.py '{"job_id": "...", "prompt": "x", "width": 10}' > msg.bin
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_python_interop as interop  # noqa: E402


def main():
    given = json.loads(sys.argv[1])
    schema = json.loads(interop.schema_text("request"))
    values = {}
    for field in schema["fields"]:
        name = field["name"]
        if name in given:
            values[name] = given[name]
        elif "default" in field:
            values[name] = field["default"]
        elif name == "submitted_at":
            values[name] = int(time.time() * 1000)
        else:
            sys.exit(f"encode_request.py: field {name} has no default; give it")
    sys.stdout.buffer.write(interop.encode("request", values))


if __name__ == "__main__":
    main()
