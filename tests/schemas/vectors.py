#!/usr/bin/python3
"""Prints the Parsing Canonical Form and CRC-64-AVRO fingerprint test vectors that
tests/unit/test_avro_canon.c compares genq's C implementation against.

    /usr/bin/python3 tests/schemas/vectors.py > tests/schemas/vectors.json

Every vector says who vouches for its expected value ("checked_by"):
  spec         the input, canonical form and fingerprint published with the Avro spec;
               the fingerprints are also recomputed here and must agree.
  python-avro  computed by python3-avro 1.11.1 (two documented bugs patched, see
               avro_ref.py) plus avro_ref.crc64.
  hand         python3-avro 1.11.1 gets this case wrong or cannot parse it; the expected
               form was worked out by hand from the spec (and Java's behaviour) and is
               written below. "python_avro_1_11_1" records what that library says.
"invalid" lists schemas that must be rejected; python3-avro rejects them too.
Rerun after changing a schema under schemas/: the .avsc fingerprints are part of
the wire contract, so test_avro_canon fails until this file is regenerated.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avro.schema  # noqa: E402
import avro_ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

NAMESPACES = """{"type": "record", "name": "Outer", "namespace": "ns1", "fields": [
  {"name": "a", "type": {"type": "record", "name": "Inner",
                         "fields": [{"name": "x", "type": "int"}]}},
  {"name": "b", "type": "Inner"},
  {"name": "c", "type": "ns1.Inner"},
  {"name": "d", "type": {"type": "enum", "name": "E", "namespace": "ns2", "symbols": ["X"]}},
  {"name": "e", "type": "ns2.E"},
  {"name": "f", "type": {"type": "fixed", "name": "other.F", "namespace": "ignored", "size": 4}},
  {"name": "g", "type": "other.F"},
  {"name": "h", "type": {"type": "record", "name": "deep.Rec", "fields": [
      {"name": "y", "type": {"type": "enum", "name": "Color", "symbols": ["RED"]}},
      {"name": "z", "type": "Color"},
      {"name": "w", "type": "ns1.Inner"}]}},
  {"name": "k", "type": ["null", "Inner", "deep.Color"]}
]}"""

PYTHON_CASES = [
    ("primitive_bare", '"string"'),
    ("primitive_object_with_logical_type",
     '{"type": "long", "logicalType": "timestamp-millis", "doc": "ms"}'),
    ("decimal_bytes", '{"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}'),
    ("strings_unescaped",
     r'{"type": "\u0072ecord", "name": "\u0041b", "namespace": "n\u0073",'
     r' "fields": [{"name": "f\u005f1", "type": "\u0069nt"}]}'),
    ("whitespace_order_strip", """
      {
        "fields" : [
          {"default": 3, "type": {"type": "int", "foo": "bar"}, "doc": "d", "name": "a",
           "order": "descending", "aliases": ["aa"]},
          {"name": "b", "type": {"values": {"items": "bytes", "type": "array"}, "type": "map"},
           "default": {}}
        ],
        "aliases": ["Old"], "doc": "a record", "custom": {"x": [1, 2]},
        "namespace": "org.example", "name": "R", "type": "record"
      }"""),
    ("namespaces_nested", NAMESPACES),
    ("recursive_union",
     '{"type": "record", "name": "Node", "namespace": "l", "fields": ['
     '{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]}'),
    ("nested_collections",
     '{"type": "map", "values": {"type": "array", "items": {"type": "record", "name": "R",'
     ' "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},'
     ' {"name": "e2", "type": "E"}]}}}'),
    ("fixed_reuse",
     '{"type": "record", "name": "R", "fields": ['
     '{"name": "a", "type": {"type": "fixed", "name": "MD5", "size": 16}},'
     '{"name": "b", "type": "MD5"}, {"name": "c", "type": {"type": "array", "items": "MD5"}}]}'),
    ("union_named",
     '["null", "string", {"type": "enum", "name": "S", "namespace": "q", "symbols": ["Z"]},'
     ' {"type": "array", "items": "q.S"}]'),
]

HAND_CASES = [
    ("empty_namespace_and_null_namespace_fallback",
     '{"type": "record", "name": "Outer", "namespace": "ns1", "fields": ['
     '{"name": "i", "type": {"type": "record", "name": "NoNs", "namespace": "", "fields": ['
     '{"name": "q", "type": {"type": "fixed", "name": "G", "size": 1}}]}},'
     '{"name": "r", "type": "G"}, {"name": "s", "type": "NoNs"}]}',
     '{"name":"ns1.Outer","type":"record","fields":[{"name":"i","type":{"name":"NoNs",'
     '"type":"record","fields":[{"name":"q","type":{"name":"G","type":"fixed","size":1}}]}},'
     '{"name":"r","type":"G"},{"name":"s","type":"NoNs"}]}',
     '"namespace": "" means the null namespace, so NoNs and G (inside it) have no namespace; '
     'a bare reference that is not found in the enclosing namespace (ns1) is looked up in '
     'the null namespace, as Java does. python-avro 1.11.1 turns "" into "inherit".'),
    ("object_type_reference",
     '{"type": "record", "name": "R", "namespace": "p", "fields": ['
     '{"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},'
     '{"name": "b", "type": {"type": "E", "doc": "a reference in object form"}}]}',
     '{"name":"p.R","type":"record","fields":[{"name":"a","type":{"name":"p.E","type":"enum",'
     '"symbols":["X"]}},{"name":"b","type":"p.E"}]}',
     '{"type": "<defined name>"} is a reference (the spec allows a derived type name as '
     '"type"); python-avro 1.11.1 rejects it.'),
]

INVALID = [
    ("unknown_type", '"Unknown"'),
    ("bad_name", '{"type": "record", "name": "1bad", "fields": []}'),
    ("redefined",
     '{"type": "record", "name": "R", "fields": ['
     '{"name": "a", "type": {"type": "fixed", "name": "F", "size": 1}},'
     '{"name": "b", "type": {"type": "fixed", "name": "F", "size": 2}}]}'),
    ("fixed_without_size", '{"type": "fixed", "name": "F"}'),
    ("duplicate_symbol", '{"type": "enum", "name": "E", "symbols": ["A", "A"]}'),
    ("record_without_fields", '{"type": "record", "name": "R"}'),
    ("reserved_name", '{"type": "record", "name": "int", "fields": []}'),
    ("forward_reference",
     '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "Later"},'
     '{"name": "b", "type": {"type": "record", "name": "Later", "fields": []}}]}'),
    ("not_json", '{"type": "int"'),
    ("number", "42"),
]


def vector(name, text, canon, checked_by, **extra):
    fp = avro_ref.crc64(canon.encode("utf-8"))
    v = {"name": name, "checked_by": checked_by}
    if name.startswith("schemas/"):
        v["file"] = name
    else:
        v["schema"] = text
    v.update(canonical=canon, fingerprint=f"0x{fp:016x}", fingerprint_signed=avro_ref.to_signed(fp))
    v.update(extra)
    return v


def python_says(text):
    try:
        return avro.schema.parse(text).canonical_form
    except Exception as e:  # noqa: BLE001 - any failure is what we record
        return f"error: {e}"


def main():
    avro_ref.check_spec_vectors()
    out = []
    for i, (text, canon, _fp) in enumerate(avro_ref.SPEC_VECTORS):
        out.append(vector(f"spec_{i:03d}", text, canon, "spec"))
    for path in ("schemas/GenerationRequest.avsc", "schemas/GenerationCompleted.avsc",
                 "schemas/GenerationProgress.avsc", "schemas/CancelRequest.avsc"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        out.append(vector(path, text, avro_ref.canonical_form(text), "python-avro"))
    for name, text in PYTHON_CASES:
        out.append(vector(name, text, avro_ref.canonical_form(text), "python-avro"))
    for name, text, canon, why in HAND_CASES:
        out.append(vector(name, text, canon, "hand", why=why, python_avro_1_11_1=python_says(text)))
    invalid = []
    for name, text in INVALID:
        try:
            avro.schema.parse(text)
        except Exception as e:  # noqa: BLE001
            invalid.append({"name": name, "schema": text, "python_avro_1_11_1": f"error: {e}"})
            continue
        sys.exit(f"vectors.py: python-avro accepts the invalid schema {name}")
    json.dump({"generator": "tests/schemas/vectors.py", "vectors": out, "invalid": invalid},
              sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
