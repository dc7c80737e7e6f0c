"""comfysim: node definitions, /object_info shapes and prompt validation.

Mirrors the behaviour of ComfyUI 0.3.64 (nodes.py / execution.py) as described in
/work/shared/reference/comfyui-api.md, sections 3.2 and 4.  The validation code is written
to follow the same control flow as the real server so that the accidental behaviours
(Python `in` on strings, KeyError text for missing link targets, in-place coercion, the
order in which errors are attached) come out the same.

Test infrastructure only; not ComfyUI.
"""

import os
import sys
import traceback

MAX_RESOLUTION = 16384

# comfy/samplers.py, 0.3.64: KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"] (42 entries)
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis",
    "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece",
    "ddim", "uni_pc", "uni_pc_bh2",
]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta",
              "normal", "linear_quadratic", "kl_optimal"]

# folder_paths.supported_pt_extensions
MODEL_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

# /models default folder order in 0.3.64
MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
                 "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx",
                 "controlnet", "gligen", "upscale_models", "custom_nodes", "hypernetworks",
                 "photomaker", "classifiers", "model_patches", "audio_encoders"]

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _dir_stamp(path):
    """What changes when a directory's entries change (Linux >= 6.13 gives a change after a
    stat a new ctime even within one clock tick); None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _dir_stamps_unchanged(stamps):
    return all(_dir_stamp(path) == stamp for path, stamp in stamps)


class Dirs:
    """The directory layout below --base-directory (absolute paths)."""

    def __init__(self, base):
        self._filename_lists = {}       # models/<folder> -> (directory stamps, names)
        self.base = os.path.abspath(base)
        self.output = os.path.join(self.base, "output")
        self.input = os.path.join(self.base, "input")
        self.temp = os.path.join(self.base, "temp")
        self.models = os.path.join(self.base, "models")

    def by_type(self, type_name):
        # folder_paths.get_directory_by_type
        if type_name == "output":
            return self.output
        if type_name == "input":
            return self.input
        if type_name == "temp":
            return self.temp
        return None

    def annotated_filepath(self, name):
        # folder_paths.annotated_filepath (note: strips len(" [x]") chars blindly)
        if name.endswith("[output]"):
            return name[:-9], self.output
        if name.endswith("[input]"):
            return name[:-8], self.input
        if name.endswith("[temp]"):
            return name[:-7], self.temp
        return name, None

    def exists_annotated_filepath(self, name):
        name, base_dir = self.annotated_filepath(name)
        if base_dir is None:
            base_dir = self.input
        return os.path.exists(os.path.join(base_dir, name))

    def get_annotated_filepath(self, name):
        name, base_dir = self.annotated_filepath(name)
        if base_dir is None:
            base_dir = self.input
        return os.path.join(base_dir, name)

    def filename_list(self, folder):
        """folder_paths.get_filename_list: sorted relative paths with a known extension.

        Like ComfyUI's own cache of these lists, the walk is reused while every directory it
        went through keeps its modification (and change) time: validating a prompt needs the
        checkpoint list, and walking the folder for every prompt was a measurable cost."""
        root = os.path.join(self.models, folder)
        cached = self._filename_lists.get(root)
        if cached is not None and _dir_stamps_unchanged(cached[0]):
            return list(cached[1])
        exts = {".yaml"} if folder == "configs" else MODEL_EXTENSIONS
        out = []
        stamps = []
        if os.path.isdir(root):
            # os.walk(root, followlinks=True), with each directory stamped before it is read
            pending = [root]
            while pending:
                dirpath = pending.pop()
                stamps.append((dirpath, _dir_stamp(dirpath)))
                try:
                    entries = list(os.scandir(dirpath))
                except OSError:
                    continue
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        pending.append(entry.path)
                    elif os.path.splitext(entry.name)[1].lower() in exts:
                        out.append(os.path.relpath(entry.path, root))
        out.sort()
        if stamps and all(s is not None for _, s in stamps):
            self._filename_lists[root] = (stamps, out)
        else:
            self._filename_lists.pop(root, None)
        return list(out)

    def input_images(self):
        try:
            names = os.listdir(self.input)
        except FileNotFoundError:
            return []
        files = [f for f in names if os.path.isfile(os.path.join(self.input, f))
                 and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        return sorted(files)


# ----------------------------------------------------------------------------------------
# Node classes.  INPUT_TYPES takes the Dirs so combo lists reflect the current disk state.

class NodeDef:
    NAME = ""
    DISPLAY_NAME = None
    RETURN_TYPES = ()
    RETURN_NAMES = None
    OUTPUT_TOOLTIPS = None
    OUTPUT_NODE = False
    CATEGORY = "sd"
    DESCRIPTION = ""
    VALIDATE_ARGS = ()          # names taken by a VALIDATE_INPUTS classmethod
    PYTHON_MODULE = "nodes"
    V3 = False                  # a comfy_api "io" schema node: /object_info has extra keys

    @classmethod
    def input_types(cls, dirs):
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, dirs, **kw):   # only called when VALIDATE_ARGS is non-empty
        return True

    @classmethod
    def info(cls, dirs):
        """server.node_info for a legacy (V1) node; key order as in 0.3.64."""
        it = cls.input_types(dirs)
        info = {
            "input": it,
            "input_order": {key: list(value.keys()) for key, value in it.items()},
            "output": list(cls.RETURN_TYPES),
            "output_is_list": [False] * len(cls.RETURN_TYPES),
            "output_name": list(cls.RETURN_NAMES or cls.RETURN_TYPES),
        }
        if cls.V3:
            # comfy_api/latest/_io.py: tooltips (null when none), display_name null when unset
            info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS or [None] * len(cls.RETURN_TYPES))
        info.update({
            "name": cls.NAME,
            "display_name": cls.DISPLAY_NAME if cls.V3 else (cls.DISPLAY_NAME or cls.NAME),
            "description": cls.DESCRIPTION,
            "python_module": cls.PYTHON_MODULE,
            "category": cls.CATEGORY,
            "output_node": bool(cls.OUTPUT_NODE),
        })
        if cls.V3:
            info.update({"deprecated": False, "experimental": False, "api_node": False})
        elif cls.OUTPUT_TOOLTIPS is not None:
            info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
        return info


class CheckpointLoaderSimple(NodeDef):
    NAME = "CheckpointLoaderSimple"
    DISPLAY_NAME = "Load Checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The model used for denoising latents.",
                       "The CLIP model used for encoding text prompts.",
                       "The VAE model used for encoding and decoding images to and from latent space.")
    CATEGORY = "loaders"
    DESCRIPTION = "Loads a diffusion model checkpoint, diffusion models are used to denoise latents."

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "ckpt_name": (dirs.filename_list("checkpoints"),
                          {"tooltip": "The name of the checkpoint (model) to load."}),
        }}


class CLIPTextEncode(NodeDef):
    NAME = "CLIPTextEncode"
    DISPLAY_NAME = "CLIP Text Encode (Prompt)"
    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("A conditioning containing the embedded text used to guide the diffusion model.",)
    CATEGORY = "conditioning"
    DESCRIPTION = ("Encodes a text prompt using a CLIP model into an embedding that can be used to "
                   "guide the diffusion model towards generating specific images.")

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "text": ("STRING", {"multiline": True, "dynamicPrompts": True,
                                "tooltip": "The text to be encoded."}),
            "clip": ("CLIP", {"tooltip": "The CLIP model used for encoding the text."}),
        }}


class EmptyLatentImage(NodeDef):
    NAME = "EmptyLatentImage"
    DISPLAY_NAME = "Empty Latent Image"
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The empty latent image batch.",)
    CATEGORY = "latent"
    DESCRIPTION = "Create a new batch of empty latent images to be denoised via sampling."

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                              "tooltip": "The width of the latent images in pixels."}),
            "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                               "tooltip": "The height of the latent images in pixels."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096,
                                   "tooltip": "The number of latent images in the batch."}),
        }}


class KSampler(NodeDef):
    NAME = "KSampler"
    DISPLAY_NAME = "KSampler"
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent.",)
    CATEGORY = "sampling"
    DESCRIPTION = "Uses the provided model, positive and negative conditioning to denoise the latent image."

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model used for denoising the input latent."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                             "control_after_generate": True,
                             "tooltip": "The random seed used for creating the noise."}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000,
                              "tooltip": "The number of steps used in the denoising process."}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "The Classifier-Free Guidance scale balances creativity and "
                                         "adherence to the prompt. Higher values result in images more "
                                         "closely matching the prompt however too high values will "
                                         "negatively impact quality."}),
            "sampler_name": (list(SAMPLERS), {"tooltip": "The algorithm used when sampling, this can "
                                              "affect the quality, speed, and style of the generated output."}),
            "scheduler": (list(SCHEDULERS), {"tooltip": "The scheduler controls how noise is gradually "
                                             "removed to form the image."}),
            "positive": ("CONDITIONING", {"tooltip": "The conditioning describing the attributes you "
                                          "want to include in the image."}),
            "negative": ("CONDITIONING", {"tooltip": "The conditioning describing the attributes you "
                                          "want to exclude from the image."}),
            "latent_image": ("LATENT", {"tooltip": "The latent image to denoise."}),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "The amount of denoising applied, lower values will maintain "
                                             "the structure of the initial image allowing for image to "
                                             "image sampling."}),
        }}


class VAEDecode(NodeDef):
    NAME = "VAEDecode"
    DISPLAY_NAME = "VAE Decode"
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The decoded image.",)
    CATEGORY = "latent"
    DESCRIPTION = "Decodes latent images back into pixel space images."

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "samples": ("LATENT", {"tooltip": "The latent to be decoded."}),
            "vae": ("VAE", {"tooltip": "The VAE model used for decoding the latent."}),
        }}


class SaveImage(NodeDef):
    NAME = "SaveImage"
    DISPLAY_NAME = "Save Image"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."

    @classmethod
    def input_types(cls, dirs):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {
                    "default": "ComfyUI",
                    "tooltip": "The prefix for the file to save. This may include formatting "
                               "information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% "
                               "to include values from nodes."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }


class PreviewImage(SaveImage):
    NAME = "PreviewImage"
    DISPLAY_NAME = "Preview Image"

    @classmethod
    def input_types(cls, dirs):
        return {"required": {"images": ("IMAGE",)},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}


class LoadImage(NodeDef):
    NAME = "LoadImage"
    DISPLAY_NAME = "Load Image"
    RETURN_TYPES = ("IMAGE", "MASK")
    CATEGORY = "image"
    VALIDATE_ARGS = ("s", "image")   # getfullargspec of the bound classmethod keeps `s`

    @classmethod
    def input_types(cls, dirs):
        return {"required": {"image": (dirs.input_images(), {"image_upload": True})}}

    @classmethod
    def validate_inputs(cls, dirs, **kw):
        if "image" not in kw:
            raise TypeError("LoadImage.VALIDATE_INPUTS() missing 1 required positional argument: 'image'")
        image = kw["image"]
        if not dirs.exists_annotated_filepath(image):
            return "Invalid image file: {}".format(image)
        return True


class EmptyImage(NodeDef):
    NAME = "EmptyImage"
    RETURN_TYPES = ("IMAGE",)
    CATEGORY = "image"

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
            "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}),
        }}


class ImageScale(NodeDef):
    NAME = "ImageScale"
    DISPLAY_NAME = "Upscale Image"
    RETURN_TYPES = ("IMAGE",)
    CATEGORY = "image/upscaling"

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "image": ("IMAGE",),
            "upscale_method": (["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],),
            "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "crop": (["disabled", "center"],),
        }}


class ImageBlur(NodeDef):
    """A V3 node (comfy_extras.nodes_post_processing). Raises at run time when the radius is
    not smaller than the image (reflect padding), which validation does not catch."""
    NAME = "ImageBlur"
    DISPLAY_NAME = None
    RETURN_TYPES = ("IMAGE",)
    CATEGORY = "image/postprocessing"
    PYTHON_MODULE = "comfy_extras.nodes_post_processing"
    V3 = True

    @classmethod
    def input_types(cls, dirs):
        return {"required": {
            "image": ("IMAGE", {}),
            "blur_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1}),
            "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}),
        }}


class ImageInvert(NodeDef):
    NAME = "ImageInvert"
    DISPLAY_NAME = "Invert Image"
    RETURN_TYPES = ("IMAGE",)
    CATEGORY = "image"

    @classmethod
    def input_types(cls, dirs):
        return {"required": {"image": ("IMAGE",)}}


class SaveAnimatedWEBP(NodeDef):
    """An output node other than SaveImage: one animated file for the whole batch; its UI (and
    /history) is {"images": [...], "animated": [true]}."""
    NAME = "SaveAnimatedWEBP"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    CATEGORY = "image/animation"
    PYTHON_MODULE = "comfy_extras.nodes_images"

    @classmethod
    def input_types(cls, dirs):
        return {
            "required": {
                "images": ("IMAGE",),
                "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                "lossless": ("BOOLEAN", {"default": True}),
                "quality": ("INT", {"default": 80, "min": 0, "max": 100}),
                "method": (["default", "fastest", "slowest"],),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }


NODE_CLASS_MAPPINGS = {c.NAME: c for c in (
    KSampler, CheckpointLoaderSimple, CLIPTextEncode, VAEDecode, EmptyLatentImage,
    SaveImage, PreviewImage, LoadImage, EmptyImage, ImageScale, ImageBlur, ImageInvert,
    SaveAnimatedWEBP)}


def is_output_node(class_type):
    cls = NODE_CLASS_MAPPINGS.get(class_type)
    return cls is not None and cls.OUTPUT_NODE is True


def object_info(dirs):
    return {name: cls.info(dirs) for name, cls in NODE_CLASS_MAPPINGS.items()}


# ----------------------------------------------------------------------------------------
# Validation (execution.validate_prompt / validate_inputs of 0.3.64)

def full_type_name(klass):
    module = klass.__module__
    if module == "builtins":
        return klass.__qualname__
    return module + "." + klass.__qualname__


def validate_node_input(received_type, input_type):
    if not received_type != input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = set(t.strip() for t in received_type.split(","))
    wanted = set(t.strip() for t in input_type.split(","))
    if "*" in received or "*" in wanted:
        return True
    return len(received.intersection(wanted)) > 0


def _input_info(class_inputs, name):
    for category in ("required", "optional"):
        section = class_inputs.get(category, {})
        if name in section:
            spec = section[name]
            extra = spec[1] if len(spec) > 1 else {}
            return spec[0], category, extra
    return None, None, None


def validate_inputs(dirs, prompt, item, validated):
    unique_id = item
    if unique_id in validated:
        return validated[unique_id]

    inputs = prompt[unique_id]["inputs"]
    class_type = prompt[unique_id]["class_type"]
    obj_class = NODE_CLASS_MAPPINGS[class_type]

    class_inputs = obj_class.input_types(dirs)
    valid_inputs = list(class_inputs.get("required", {})) + list(class_inputs.get("optional", {}))

    errors = []
    valid = True
    validate_function_inputs = list(obj_class.VALIDATE_ARGS)

    for x in valid_inputs:
        input_type, input_category, extra_info = _input_info(class_inputs, x)
        if x not in inputs:
            if input_category == "required":
                errors.append({
                    "type": "required_input_missing",
                    "message": "Required input is missing",
                    "details": f"{x}",
                    "extra_info": {"input_name": x},
                })
            continue

        val = inputs[x]
        info = (input_type, extra_info)
        if isinstance(val, list):
            if len(val) != 2:
                errors.append({
                    "type": "bad_linked_input",
                    "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                    "details": f"{x}",
                    "extra_info": {"input_name": x, "input_config": info, "received_value": val},
                })
                continue

            o_id = val[0]
            o_class_type = prompt[o_id]["class_type"]      # KeyError for a missing node
            r = NODE_CLASS_MAPPINGS[o_class_type].RETURN_TYPES
            received_type = r[val[1]]                      # IndexError / TypeError
            if "input_types" not in validate_function_inputs and not validate_node_input(received_type, input_type):
                errors.append({
                    "type": "return_type_mismatch",
                    "message": "Return type mismatch between linked nodes",
                    "details": f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                    "extra_info": {"input_name": x, "input_config": info,
                                   "received_type": received_type, "linked_node": val},
                })
                continue
            try:
                r = validate_inputs(dirs, prompt, o_id, validated)
                if r[0] is False:
                    valid = False
                    continue
            except Exception as ex:
                typ, _, tb = sys.exc_info()
                valid = False
                reasons = [{
                    "type": "exception_during_inner_validation",
                    "message": "Exception when validating inner node",
                    "details": str(ex),
                    "extra_info": {
                        "input_name": x,
                        "input_config": info,
                        "exception_message": str(ex),
                        "exception_type": full_type_name(typ),
                        "traceback": traceback.format_tb(tb),
                        "linked_node": val,
                    },
                }]
                validated[o_id] = (False, reasons, o_id)
                continue
        else:
            try:
                if isinstance(val, dict) and "__value__" in val:
                    val = val["__value__"]
                    inputs[x] = val
                if input_type == "INT":
                    val = int(val)
                    inputs[x] = val
                if input_type == "FLOAT":
                    val = float(val)
                    inputs[x] = val
                if input_type == "STRING":
                    val = str(val)
                    inputs[x] = val
                if input_type == "BOOLEAN":
                    val = bool(val)
                    inputs[x] = val
            except Exception as ex:
                errors.append({
                    "type": "invalid_input_type",
                    "message": f"Failed to convert an input value to a {input_type} value",
                    "details": f"{x}, {val}, {ex}",
                    "extra_info": {"input_name": x, "input_config": info,
                                   "received_value": val, "exception_message": str(ex)},
                })
                continue

            if x not in validate_function_inputs:
                if "min" in extra_info and val < extra_info["min"]:
                    errors.append({
                        "type": "value_smaller_than_min",
                        "message": "Value {} smaller than min of {}".format(val, extra_info["min"]),
                        "details": f"{x}",
                        "extra_info": {"input_name": x, "input_config": info, "received_value": val},
                    })
                    continue
                if "max" in extra_info and val > extra_info["max"]:
                    errors.append({
                        "type": "value_bigger_than_max",
                        "message": "Value {} bigger than max of {}".format(val, extra_info["max"]),
                        "details": f"{x}",
                        "extra_info": {"input_name": x, "input_config": info, "received_value": val},
                    })
                    continue
                if isinstance(input_type, list):
                    combo_options = input_type
                    if val not in combo_options:
                        input_config = info
                        if len(combo_options) > 20:
                            list_info = f"(list of length {len(combo_options)})"
                            input_config = None
                        else:
                            list_info = str(combo_options)
                        errors.append({
                            "type": "value_not_in_list",
                            "message": "Value not in list",
                            "details": f"{x}: '{val}' not in {list_info}",
                            "extra_info": {"input_name": x, "input_config": input_config,
                                           "received_value": val},
                        })
                        continue

    if len(validate_function_inputs) > 0:
        # get_input_data during validation: literal inputs only, each wrapped in a list
        input_filtered = {}
        for x in validate_function_inputs:
            if x in inputs and not isinstance(inputs[x], list):
                input_filtered[x] = [inputs[x]]
        ret = obj_class.validate_inputs(dirs, **{k: v[0] for k, v in input_filtered.items()})
        for x in input_filtered:
            for r in [ret]:
                if r is not True:
                    details = f"{x}"
                    if r is not False:
                        details += f" - {str(r)}"
                    errors.append({
                        "type": "custom_validation_failed",
                        "message": "Custom validation failed for node",
                        "details": details,
                        "extra_info": {"input_name": x},
                    })

    if len(errors) > 0 or valid is not True:
        ret = (False, errors, unique_id)
    else:
        ret = (True, [], unique_id)
    validated[unique_id] = ret
    return ret


def validate_prompt(dirs, prompt, partial_execution_list, log):
    """Returns (ok, error, good_outputs, node_errors) like execution.validate_prompt.

    Python exceptions escaping from here (TypeError for odd body shapes) are meant to
    become HTTP 500 just as in the real server."""
    outputs = []
    for x in prompt:
        if "class_type" not in prompt[x]:
            return (False, {
                "type": "invalid_prompt",
                "message": "Cannot execute because a node is missing the class_type property.",
                "details": f"Node ID '#{x}'",
                "extra_info": {},
            }, [], {})
        class_type = prompt[x]["class_type"]
        class_ = NODE_CLASS_MAPPINGS.get(class_type, None)
        if class_ is None:
            return (False, {
                "type": "invalid_prompt",
                "message": f"Cannot execute because node {class_type} does not exist.",
                "details": f"Node ID '#{x}'",
                "extra_info": {},
            }, [], {})
        if class_.OUTPUT_NODE is True:
            if partial_execution_list is None or x in partial_execution_list:
                if x not in outputs:
                    outputs.append(x)

    if len(outputs) == 0:
        return (False, {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                        "details": "", "extra_info": {}}, [], {})

    good_outputs = []
    errors = []
    node_errors = {}
    validated = {}
    for o in outputs:
        valid = False
        reasons = []
        try:
            m = validate_inputs(dirs, prompt, o, validated)
            valid = m[0]
            reasons = m[1]
        except Exception as ex:
            typ, _, tb = sys.exc_info()
            valid = False
            reasons = [{
                "type": "exception_during_validation",
                "message": "Exception when validating node",
                "details": str(ex),
                "extra_info": {"exception_type": full_type_name(typ),
                               "traceback": traceback.format_tb(tb)},
            }]
            validated[o] = (False, reasons, o)

        if valid is True:
            good_outputs.append(o)
        else:
            log.error(f"Failed to validate prompt for output {o}:")
            if len(reasons) > 0:
                log.error("* (prompt):")
                for reason in reasons:
                    log.error(f"  - {reason['message']}: {reason['details']}")
            errors += [(o, reasons)]
            for node_id, result in validated.items():
                if result[0] is not True and len(result[1]) > 0:
                    if node_id not in node_errors:
                        class_type = prompt[node_id]["class_type"]
                        node_errors[node_id] = {"errors": result[1], "dependent_outputs": [],
                                                "class_type": class_type}
                        log.error(f"* {class_type} {node_id}:")
                        for reason in result[1]:
                            log.error(f"  - {reason['message']}: {reason['details']}")
                    node_errors[node_id]["dependent_outputs"].append(o)
            log.error("Output will be ignored")

    if len(good_outputs) == 0:
        lines = []
        for _o, errs in errors:
            for error in errs:
                lines.append(f"{error['message']}: {error['details']}")
        return (False, {"type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                        "details": "\n".join(lines), "extra_info": {}}, list(good_outputs), node_errors)

    return (True, None, list(good_outputs), node_errors)
