"""Makes the small media files test_store checks type detection and sizes against.

Run with the real ComfyUI's venv (PIL and PyAV, the libraries ComfyUI's own saving nodes use):
    ~/.cache/genq/comfyui-0.3.64/venv/bin/python tests/unit/data/media/make_media.py
The files are committed; rerunning rewrites them (bytes may differ with library versions).
"""
import fractions
import io
import os

import av
import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))


def frames(n, w, h):
    return [Image.new("RGB", (w, h), (40 * i % 256, 80, 160)) for i in range(n)]


def save(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)


def pil(name, imgs, fmt, **kw):
    b = io.BytesIO()
    if len(imgs) > 1:
        imgs[0].save(b, fmt, save_all=True, append_images=imgs[1:], **kw)
    else:
        imgs[0].save(b, fmt, **kw)
    save(name, b.getvalue())


pil("still.png", frames(1, 24, 16), "PNG")
pil("anim.png", frames(3, 24, 16), "PNG", duration=100)          # SaveAnimatedPNG: APNG
pil("lossy.webp", frames(1, 30, 20), "WEBP", quality=50)
pil("lossless.webp", frames(1, 31, 21), "WEBP", lossless=True)
pil("anim.webp", frames(3, 32, 22), "WEBP", duration=100, lossless=True)  # SaveAnimatedWEBP
pil("still.jpg", frames(1, 33, 23), "JPEG", quality=70)
pil("anim.gif", frames(3, 34, 24), "GIF", duration=100, loop=0)


def video(name, fmt, codec, w, h, n=3):
    b = io.BytesIO()
    c = av.open(b, mode="w", format=fmt)
    s = c.add_stream(codec, rate=8)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for i in range(n):
        arr = np.full((h, w, 3), 30 * i, dtype=np.uint8)
        for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    save(name, b.getvalue())


video("clip.webm", "webm", "libvpx-vp9", 32, 16)   # SaveWEBM
video("clip.mp4", "mp4", "libx264", 48, 32)         # SaveVideo (format auto: mp4, h264)


def audio(name, fmt, codec, rate=8000, layout="mono"):
    b = io.BytesIO()
    c = av.open(b, mode="w", format=fmt)
    s = c.add_stream(codec, rate=rate)
    s.layout = layout
    samples = (np.sin(np.arange(rate // 4) / 5.0) * 8000).astype(np.int16).reshape(1, -1)
    f = av.AudioFrame.from_ndarray(samples, format="s16", layout=layout)
    f.sample_rate = rate
    f.time_base = fractions.Fraction(1, rate)
    f.pts = 0
    for p in s.encode(f):
        c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    save(name, b.getvalue())


audio("tone.flac", "flac", "flac")                  # SaveAudio
audio("tone.wav", "wav", "pcm_s16le")
audio("tone.mp3", "mp3", "libmp3lame")              # SaveAudioMP3
audio("tone.opus", "ogg", "libopus", rate=48000)    # SaveAudioOpus
