"""The prompts (API format) that the transcripts test and the probes send to both servers."""

import copy

CHECKPOINT = "sd15-random.safetensors"


def empty_save(prefix, width=64, height=64, batch=1, color=0x336699):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": batch, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def post_chain(prefix, width=64, height=64, scale_to=(96, 80), blur_radius=3, sigma=1.0):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0x808080}},
        "2": {"class_type": "ImageScale",
              "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "width": scale_to[0],
                         "height": scale_to[1], "crop": "disabled"}},
        "3": {"class_type": "ImageBlur",
              "inputs": {"image": ["2", 0], "blur_radius": blur_radius, "sigma": sigma}},
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }


def txt2img(prefix, width=64, height=64, steps=2, batch=1, seed=42, text="a lighthouse at dusk",
            ckpt=CHECKPOINT, sampler="euler", scheduler="normal"):
    """The default ComfyUI graph (the one the web UI starts with), small."""
    return {
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": steps, "cfg": 8, "sampler_name": sampler,
                         "scheduler": scheduler, "denoise": 1, "model": ["4", 0],
                         "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": width, "height": height, "batch_size": batch}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


def runtime_error(prefix):
    """Passes validation, raises at run time: ImageBlur's reflect padding must be smaller than
    the image (radius 8 on a 4x4 image)."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 8, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def preview(width=64, height=64):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


def animated_webp(prefix, frames=3):
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 32, "height": 32, "batch_size": frames, "color": 0x00FF00}},
        "2": {"class_type": "SaveAnimatedWEBP",
              "inputs": {"images": ["1", 0], "filename_prefix": prefix, "fps": 6.0,
                         "lossless": True, "quality": 80, "method": "default"}},
    }


def validation_error(prefix):
    g = txt2img(prefix)
    g["3"]["inputs"]["steps"] = 0
    return g


def missing_node_class(prefix):
    g = empty_save(prefix)
    g["1"]["class_type"] = "NoSuchNode"
    return g


def missing_model(prefix):
    return txt2img(prefix, ckpt="no-such-model.safetensors")


def with_prefix(graph, prefix):
    g = copy.deepcopy(graph)
    for node in g.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = prefix
    return g
