"""Write a Stable Diffusion 1.5 checkpoint with random weights, built from ComfyUI's own classes.

Test infrastructure: no weights can be downloaded on the project's machines, but the default
txt2img graph (CheckpointLoaderSimple -> CLIPTextEncode -> KSampler -> VAEDecode -> SaveImage)
needs a checkpoint that ComfyUI detects as SD1.5. The module layout (UNet, CLIP-L text encoder,
VAE) comes from ComfyUI 0.3.64's own model classes, the key names from its own
state_dict_for_saving; every tensor is then filled from one seeded generator, so the file is the
same bytes on every machine. The images it renders are noise.

  python make_checkpoint.py COMFYUI_SRC_DIR OUT.safetensors      (run with the ComfyUI venv)
"""

import os
import sys
import time

SEED = 20251012
RECIPE = "sd15-random rev 1 (seed %d, fp16, fan-in normal weights, unit norms, zero biases)" % SEED


def build_state_dict():
    import torch
    import comfy.model_detection as md
    import comfy.sd1_clip
    from comfy.ldm.models.autoencoder import AutoencodingEngine

    # The SD1.5 UNet config, as comfy.model_detection writes it for a diffusers SD1.5 UNet.
    unet_config = {
        "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
        "legacy": False, "adm_in_channels": None, "dtype": torch.float16, "in_channels": 4,
        "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
        "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4],
        "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768,
        "num_heads": 8, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }
    model_config = md.model_config_from_unet_config(unet_config)
    if model_config is None or type(model_config).__name__ != "SD15":
        raise SystemExit("ComfyUI did not take the UNet config for SD15: %r" % (model_config,))
    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
                "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
                "dropout": 0.0}
    # Shapes only: the modules are built on the meta device (no memory, no init).
    with torch.device("meta"):
        model = model_config.get_model({}, device="meta")
        clip = comfy.sd1_clip.SD1ClipModel(device="meta", dtype=torch.float16)
        vae = AutoencodingEngine(
            regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
            encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": ddconfig},
            decoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Decoder", "params": ddconfig})
    clip_sd = clip.state_dict()
    vae_sd = vae.state_dict()
    return model.state_dict_for_saving(clip_sd, vae_sd, None)


def fill(sd):
    import torch
    gen = torch.Generator().manual_seed(SEED)
    out = {}
    for key in sorted(sd):
        meta = sd[key]
        shape = tuple(meta.shape)
        if not meta.dtype.is_floating_point:
            raise SystemExit("unexpected non-float tensor %s %s" % (key, meta.dtype))
        if key.endswith(".bias"):
            t = torch.zeros(shape)
        elif len(shape) <= 1:
            t = torch.ones(shape)              # norm scales (and any scalar parameters)
        elif "embedding" in key:
            t = torch.randn(shape, generator=gen) * 0.02
        else:
            fan_in = 1
            for n in shape[1:]:
                fan_in *= n
            t = torch.randn(shape, generator=gen) * (fan_in ** -0.5)
        out[key] = t.to(torch.float16).contiguous()
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    src, dest = argv[1], argv[2]
    sys.path.insert(0, os.path.abspath(src))
    sys.argv = [sys.argv[0], "--cpu"]          # comfy.cli_args parses these at import
    import comfy.options
    comfy.options.enable_args_parsing()
    t0 = time.monotonic()
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    import comfy.utils
    sd = fill(build_state_dict())
    n = sum(t.numel() for t in sd.values())
    tmp = dest + ".tmp.%d" % os.getpid()
    comfy.utils.save_torch_file(sd, tmp, metadata={"genq": RECIPE})
    os.replace(tmp, dest)
    print("wrote %s: %d tensors, %.0fM parameters, %d bytes, %.1f s" % (
        dest, len(sd), n / 1e6, os.path.getsize(dest), time.monotonic() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
