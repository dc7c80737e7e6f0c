"""comfysim: minimal PNG writing/reading (stdlib only: zlib + struct).

Images are synthetic: a seed-dependent gradient with low-amplitude noise.  Rows are
built with bytes arithmetic (int XOR + bytes.translate), never per-pixel Python loops
over the whole image, so a 1024x1024 image encodes in a few tens of milliseconds.
"""

import random
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# _SHIFT[s] maps byte v -> (v + s) & 255
_SHIFT = [bytes(((v + s) & 255) for v in range(256)) for s in range(256)]
# keep the 4 low bits (noise amplitude 0..15)
_LOW4 = bytes((v & 15) for v in range(256))


def _chunk(tag, data):
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def _text_chunk(key, value):
    k = str(key).encode("latin-1", "replace")[:79] or b"?"
    v = str(value).encode("latin-1", "replace")
    return _chunk(b"tEXt", k + b"\0" + v)


def encode_png(width, height, raw, texts=(), compress_level=4, color_type=2):
    """raw: filtered scanlines (each row = filter byte + pixel bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", ihdr)]
    for key, value in texts:
        parts.append(_text_chunk(key, value))
    parts.append(_chunk(b"IDAT", zlib.compress(raw, compress_level)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def synth_raw(width, height, seed, index=0, color=None):
    """Filtered RGB scanlines for a deterministic synthetic image."""
    if color is not None:
        row = bytes(((color >> 16) & 255, (color >> 8) & 255, color & 255)) * width
        return (b"\0" + row) * height
    rng = random.Random("comfysim:%s:%d" % (seed, index))
    base = [rng.randrange(256) for _ in range(3)]
    span = [rng.randrange(64, 256) for _ in range(3)]
    row = bytearray(width * 3)
    wdiv = max(1, width - 1)
    for c in range(3):
        b, s = base[c], span[c]
        row[c::3] = bytes(((b + x * s // wdiv) & 255) for x in range(width))
    nbytes = width * 3
    base_int = int.from_bytes(row, "big")
    variants = []
    for _ in range(8):
        noise = rng.randbytes(nbytes).translate(_LOW4)
        variants.append(b"\0" + (base_int ^ int.from_bytes(noise, "big")).to_bytes(nbytes, "big"))
    vspan = rng.randrange(64, 256)
    voff = rng.randrange(256)
    hdiv = max(1, height - 1)
    rows = []
    for y in range(height):
        shift = (voff + y * vspan // hdiv) & 255
        v = variants[(y * 5 + (y >> 3)) & 7]
        # translate would also shift the filter byte 0; rebuild it
        rows.append(b"\0" + v[1:].translate(_SHIFT[shift]))
    return b"".join(rows)


def synth_png(width, height, seed, index=0, color=None, texts=(), compress_level=4):
    return encode_png(width, height, synth_raw(width, height, seed, index, color),
                      texts=texts, compress_level=compress_level)


def alpha_png(width, height, alpha=255):
    """RGBA image, RGB zero, constant alpha (used for /view?channel=a)."""
    row = bytes((0, 0, 0, alpha)) * width
    return encode_png(width, height, (b"\0" + row) * height, color_type=6)


def read_png_info(data):
    """(width, height, bit_depth, color_type) of a PNG byte string, or None."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return w, h, depth, ctype


def read_png_file_info(path):
    try:
        with open(path, "rb") as f:
            return read_png_info(f.read(33))
    except OSError:
        return None
