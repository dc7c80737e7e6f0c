"""Reference Avro helpers for genq's cross-checks, built on Debian's python3-avro 1.11.1.

python3-avro 1.11.1 has Parsing Canonical Form (Schema.canonical_form) but no fingerprint,
and its canonical form has two bugs against the specification and against Java's
SchemaNormalization (whose output the spec's test vectors in Avro's
share/test/data/schema-tests.txt were checked with):

  * a primitive with extra attributes, e.g. {"type": "string", "logicalType": "uuid"},
    comes out as {"type":"string"} instead of "string" (PRIMITIVES + STRIP);
  * a fixed type used a second time is written in full again instead of by its name.

canonical_form() below fixes exactly those two methods and nothing else, so the rest
(FULLNAMES, ORDER, STRINGS, ...) is python-avro's own independent code. crc64() is the
spec's CRC-64-AVRO. Run this file to check both against the spec's published values.
Use /usr/bin/python3 (the system interpreter that has python3-avro).
"""
import json
import struct

import avro.schema
from avro.name import Names

EMPTY64 = 0xC15D213AA4D7A795


def _fp_table():
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _fp_table()


def crc64(data: bytes) -> int:
    """CRC-64-AVRO (64-bit Rabin fingerprint) of a byte string, as an unsigned int."""
    fp = EMPTY64
    for b in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ b) & 0xFF]
    return fp


def _primitive_canonical(self, names=None):
    return self.fullname


def _fixed_canonical(self, names=None):
    names = names if names is not None else Names()
    if self.fullname in names.names:
        return self.fullname
    names.names[self.fullname] = self
    to_dump = self.canonical_properties
    to_dump["name"] = self.fullname
    return to_dump


avro.schema.PrimitiveSchema.to_canonical_json = _primitive_canonical
avro.schema.FixedSchema.to_canonical_json = _fixed_canonical


def canonical_form(schema_text: str) -> str:
    """Parsing Canonical Form of a schema given as JSON text."""
    schema = avro.schema.parse(schema_text)
    return json.dumps(schema.to_canonical_json(Names()), separators=(",", ":"))


def fingerprint(schema_text: str) -> int:
    return crc64(canonical_form(schema_text).encode("utf-8"))


def single_object_header(schema_text: str) -> bytes:
    """C3 01 + the little-endian fingerprint: the single-object encoding prefix."""
    return b"\xc3\x01" + struct.pack("<Q", fingerprint(schema_text))


def to_signed(fp: int) -> int:
    """The fingerprint as Java's long prints it (the spec's test vectors use this)."""
    return fp - (1 << 64) if fp >= (1 << 63) else fp


# Inputs, canonical forms and fingerprints published with the spec (schema-tests.txt).
SPEC_VECTORS = [
    ('"null"', '"null"', 7195948357588979594),
    ('{"type":"null"}', '"null"', 7195948357588979594),
    ('"boolean"', '"boolean"', -6970731678124411036),
    ('"int"', '"int"', 8247732601305521295),
    ('{"type":"int"}', '"int"', 8247732601305521295),
    ('"long"', '"long"', -3434872931120570953),
    ('"float"', '"float"', 5583340709985441680),
    ('"double"', '"double"', -8181574048448539266),
    ('"bytes"', '"bytes"', 5746618253357095269),
    ('"string"', '"string"', -8142146995180207161),
    ('[  ]', '[]', -1241056759729112623),
    ('[ "int"  ]', '["int"]', -5232228896498058493),
    ('[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090),
    ('{"fields":[], "type":"record", "name":"foo"}',
     '{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
    ('{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
     '{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771),
    ('{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
     '{"name":"a.b.foo","type":"record","fields":[]}', -4616218487480524110),
    ('{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}',
     '{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
    ('{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}',
     '{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
    ('{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
     '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
     7843277075252814651),
    ('{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},\n'
     '            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],\n'
     '  "type":"record", "name":"foo"\n}',
     '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},'
     '{"name":"f2","type":"int"}]}', -4860222112080293046),
    ('{"type":"enum", "name":"foo", "symbols":["A1"]}',
     '{"name":"foo","type":"enum","symbols":["A1"]}', -6342190197741309591),
    ('{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}',
     '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245),
    ('{"name":"foo","type":"fixed","size":15}',
     '{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
     '{"name":"x.y.z.foo","type":"fixed","size":32}', -3064184465700546786),
    ('{ "items":{"type":"null"}, "type":"array"}',
     '{"type":"array","items":"null"}', -589620603366471059),
    ('{ "values":"string", "type":"map"}',
     '{"type":"map","values":"string"}', -8732877298790414990),
    ('{"name":"PigValue","type":"record",\n'
     ' "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
     '{"name":"PigValue","type":"record","fields":[{"name":"value",'
     '"type":["null","int","long","PigValue"]}]}', -1759257747318642341),
]


def check_spec_vectors():
    for text, canon, fp in SPEC_VECTORS:
        got = canonical_form(text)
        assert got == canon, f"{text}: canonical form {got} != {canon}"
        assert to_signed(fingerprint(text)) == fp, f"{text}: fingerprint differs"


if __name__ == "__main__":
    check_spec_vectors()
    print(f"avro_ref: {len(SPEC_VECTORS)} spec vectors agree")
