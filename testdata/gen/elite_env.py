"""Reference environment of the ELITE generators (imported first by each of them).

Makes nothing by itself. On import it:
  * puts `$HARMONY_ELITE_REFSRC/site` (diffusers v0.11.1, transformers v4.26.1,
    huggingface_hub v0.13.0, installed there by setup-elite.sh) first on sys.path, then `shims/`
    (the pure-Python `safetensors` stand-in, through which diffusers 0.11.1 reads the tiny
    UNet's and VAE's safetensors files);
  * sets the offline variables, the thread count and the CPU kernel selection exactly as refenv.py
    does for the BLIP-Diffusion goldens (the same variables are needed for bit-identity);
  * after diffusers and transformers are imported, adds `shims/elite/` (import-only `accelerate`
    and `albumentations`, so diffusers still sees accelerate as absent) and ELITE's source folder
    `$HARMONY_ELITE_REFSRC/ELITE`, then imports ELITE's modules unmodified:
    `train_global` (Mapper, inj_forward_text), `train_local` (MapperLocal,
    inj_forward_crossattention, validation), `datasets` (CustomDatasetWithBG).
  * repairs transformers 4.26.1's fallback `AddedToken` (see `_added_token_shim`).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _refsrc():
    for i, a in enumerate(sys.argv):
        if a == "--refsrc" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--refsrc="):
            return a.split("=", 1)[1]
    v = os.environ.get("HARMONY_ELITE_REFSRC")
    if not v:
        sys.exit("set HARMONY_ELITE_REFSRC (or --refsrc) to the folder setup-elite.sh filled")
    return v


REFSRC = os.path.abspath(_refsrc())
SITE = os.path.join(REFSRC, "site")
ELITE_SRC = os.path.join(REFSRC, "ELITE")
for need in (os.path.join(SITE, "diffusers"), os.path.join(ELITE_SRC, "train_local.py")):
    if not os.path.exists(need):
        sys.exit(f"{need} is missing: run setup-elite.sh {REFSRC} first")
sys.path.insert(0, os.path.join(HERE, "shims"))
sys.path.insert(0, SITE)
sys.path.insert(0, HERE)

# Same kernel selection as refenv.py (see the comment there): set before torch loads.
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

THREADS = int(os.environ.get("HARMONY_THREADS", "2"))
torch.set_num_threads(THREADS)
torch.set_default_dtype(torch.float32)

import diffusers  # noqa: E402
import transformers  # noqa: E402
import huggingface_hub  # noqa: E402

assert diffusers.__version__ == "0.11.1", diffusers.__version__
assert transformers.__version__ == "4.26.1", transformers.__version__
assert huggingface_hub.__version__ == "0.13.0", huggingface_hub.__version__
assert not diffusers.utils.is_accelerate_available()


def _added_token_shim():
    """Give transformers 4.26.1's fallback AddedToken the semantics of `tokenizers.AddedToken`.

    Without the Rust `tokenizers` package, transformers 4.26.1 defines AddedToken as a frozen
    dataclass whose `str()` is its repr ("AddedToken(content='<|startoftext|>', ...)"). The slow
    CLIPTokenizer looks special tokens up by `str(token)`, so BOS becomes a new id 49408 and EOS
    `None`. tokenizers' AddedToken prints as its content and compares and hashes by content: only
    those three dunder methods are set here; the fast tokenizer is never used.
    """
    import transformers.tokenization_utils_base as tub
    from transformers.utils import is_tokenizers_available

    if is_tokenizers_available():
        return
    cls = tub.AddedToken

    def __str__(self):
        return self.content

    def __eq__(self, other):
        if isinstance(other, cls):
            return self.content == other.content
        return NotImplemented

    def __hash__(self):
        return hash(self.content)

    cls.__str__ = __str__
    cls.__eq__ = __eq__
    cls.__hash__ = __hash__


_added_token_shim()

sys.path.append(os.path.join(HERE, "shims", "elite"))
sys.path.insert(0, ELITE_SRC)

import train_global  # noqa: E402,F401
import train_local  # noqa: E402,F401
import datasets as elite_datasets  # noqa: E402,F401

assert elite_datasets.__file__.startswith(ELITE_SRC), elite_datasets.__file__


def load_tools(model_dir, dtype=torch.float32):
    """ELITE's `pww_load_tools` (inference_local.py:28-129), line for line, for a local model
    folder at any size. What differs, and why:
      * fp16 → `dtype` (float32 goldens, float64 tolerance runs) and device "cpu";
      * tokenizer / text encoder / image encoder come from the folder's `tokenizer/`,
        `text_encoder/`, `image_encoder/` instead of the hard-coded "openai/clip-vit-large-patch14";
      * `Mapper(input_dim=1024, output_dim=768)` → the image encoder's width and the text encoder's
        width (the released sizes at full size);
      * the mapper files are `global_mapper.pt` / `local_mapper.pt` at the folder's top.
    The class-level patches (CLIPTextTransformer.__call__ = inj_forward_text, CrossAttention.__call__
    = train_local.inj_forward_crossattention), module names, add_module order and
    load_state_dict calls are ELITE's own.
    """
    from diffusers import AutoencoderKL, LMSDiscreteScheduler, UNet2DConditionModel
    from torch import nn
    from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModel
    from train_local import Mapper, MapperLocal, inj_forward_crossattention, inj_forward_text

    vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae", local_files_only=True)
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(model_dir, "tokenizer"))
    text_encoder = CLIPTextModel.from_pretrained(os.path.join(model_dir, "text_encoder"))
    image_encoder = CLIPVisionModel.from_pretrained(os.path.join(model_dir, "image_encoder"))
    for _module in text_encoder.modules():
        if _module.__class__.__name__ == "CLIPTextTransformer":
            _module.__class__.__call__ = inj_forward_text
    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet", local_files_only=True)

    mapper = Mapper(input_dim=image_encoder.config.hidden_size, output_dim=text_encoder.config.hidden_size)
    mapper_local = MapperLocal(input_dim=image_encoder.config.hidden_size, output_dim=text_encoder.config.hidden_size)
    for _name, _module in unet.named_modules():
        if _module.__class__.__name__ == "CrossAttention":
            if 'attn1' in _name:
                continue
            _module.__class__.__call__ = inj_forward_crossattention
            shape = _module.to_k.weight.shape
            to_k_global = nn.Linear(shape[1], shape[0], bias=False)
            mapper.add_module(f'{_name.replace(".", "_")}_to_k', to_k_global)
            shape = _module.to_v.weight.shape
            to_v_global = nn.Linear(shape[1], shape[0], bias=False)
            mapper.add_module(f'{_name.replace(".", "_")}_to_v', to_v_global)
            to_v_local = nn.Linear(shape[1], shape[0], bias=False)
            mapper_local.add_module(f'{_name.replace(".", "_")}_to_v', to_v_local)
            to_k_local = nn.Linear(shape[1], shape[0], bias=False)
            mapper_local.add_module(f'{_name.replace(".", "_")}_to_k', to_k_local)
    mapper.load_state_dict(torch.load(os.path.join(model_dir, "global_mapper.pt"), map_location='cpu'))
    mapper_local.load_state_dict(torch.load(os.path.join(model_dir, "local_mapper.pt"), map_location='cpu'))
    for _name, _module in unet.named_modules():
        if 'attn1' in _name:
            continue
        if _module.__class__.__name__ == "CrossAttention":
            _module.add_module('to_k_global', mapper.__getattr__(f'{_name.replace(".", "_")}_to_k'))
            _module.add_module('to_v_global', mapper.__getattr__(f'{_name.replace(".", "_")}_to_v'))
            _module.add_module('to_v_local', getattr(mapper_local, f'{_name.replace(".", "_")}_to_v'))
            _module.add_module('to_k_local', getattr(mapper_local, f'{_name.replace(".", "_")}_to_k'))
    for m in (vae, unet, text_encoder, image_encoder, mapper, mapper_local):
        m.to(dtype)
        m.eval()
    scheduler = LMSDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    return vae, unet, text_encoder, tokenizer, image_encoder, mapper, mapper_local, scheduler
