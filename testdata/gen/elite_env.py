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
