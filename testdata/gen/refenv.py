"""Reference environment shared by the generator scripts (imported first by each of them).

Makes nothing by itself. On import it:
  * puts the reference library trees on sys.path: `$HARMONY_REFSRC/site` (diffusers v0.25.1,
    transformers v4.36.2, huggingface_hub v0.20.3 installed there by setup.sh with
    `pip install --no-deps --target`), then `shims/` (the pure-Python `safetensors` stand-in);
  * sets HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / DIFFUSERS_OFFLINE so nothing is downloaded;
  * pins torch to CPU, float32, `torch.set_num_threads(2)` (override with HARMONY_THREADS);
  * selects the CPU kernels of the machine the goldens were made on (OpenBLAS Haswell sgemm,
    oneDNN avx512_core, ATen AVX2; see below -- needed for bit-identity).

`apply_tokenizer_shim()` repairs transformers' fallback `AddedToken` (see README.md),
`bert_cache(vocab_txt)` makes the Q-Former's hard-coded
`BertTokenizer.from_pretrained("bert-base-uncased")` resolve offline to the given vocab.txt.
"""

import hashlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _refsrc():
    for i, a in enumerate(sys.argv):
        if a == "--refsrc" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--refsrc="):
            return a.split("=", 1)[1]
    v = os.environ.get("HARMONY_REFSRC")
    if not v:
        sys.exit("set HARMONY_REFSRC (or --refsrc) to the folder setup.sh filled")
    return v


REFSRC = os.path.abspath(_refsrc())
SITE = os.path.join(REFSRC, "site")
if not os.path.isdir(os.path.join(SITE, "diffusers")):
    sys.exit(f"{SITE} has no diffusers: run setup.sh {REFSRC} first")
sys.path.insert(0, os.path.join(HERE, "shims"))
sys.path.insert(0, SITE)
sys.path.insert(0, HERE)

# CPU kernels of the machine the goldens were made on. Must be set before torch (and with it
# OpenBLAS and oneDNN) is loaded. The goldens match: OpenBLAS sgemm with its Haswell (AVX2)
# kernel, oneDNN convolutions with its avx512_core kernels, ATen's AVX2 kernels -- what an
# AVX-512 machine that OpenBLAS 0.3.21 does not classify as an AVX-512 core (e.g. AMD Zen 4) picks
# by default. On an Intel AVX-512 CPU, OpenBLAS would otherwise pick its SkylakeX/Cooperlake
# kernels, which round differently (about 1e-6 relative). On a CPU without AVX-512 the oneDNN
# convolutions cannot match bit for bit (the UNet/VAE goldens then differ by ~1e-6 relative).
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

_shim_done = False


def apply_tokenizer_shim():
    """Give transformers' fallback AddedToken the semantics of `tokenizers.AddedToken`.

    Without the Rust `tokenizers` package, transformers v4.36.2 defines AddedToken as a
    `@dataclass(frozen=False, eq=True)` with no annotated fields: its generated `__eq__`
    compares empty tuples (every two tokens are equal) and `__hash__` is None (unhashable),
    so every slow tokenizer's __init__ raises `TypeError: unhashable type: 'AddedToken'`
    (transformers issues #27566, #30696). The real class compares and hashes by `content`
    and pickles its attributes. Only those dunder methods are set; nothing else changes.
    """
    global _shim_done
    if _shim_done:
        return
    import transformers.tokenization_utils_base as tub
    from transformers.utils import is_tokenizers_available

    if not is_tokenizers_available():
        cls = tub.AddedToken

        def __eq__(self, other):
            if isinstance(other, cls):
                return self.content == other.content
            return NotImplemented

        def __hash__(self):
            return hash(self.content)

        def __setstate__(self, state):
            self.__dict__.update(state)

        cls.__eq__ = __eq__
        cls.__hash__ = __hash__
        cls.__setstate__ = __setstate__
    _shim_done = True


def bert_cache(vocab_txt):
    """Offline Hub cache holding `bert-base-uncased/vocab.txt` (HF_HUB_CACHE is pointed at it).

    diffusers' Blip2QFormerModel.__init__ calls BertTokenizer.from_pretrained("bert-base-uncased")
    unconditionally. The cache entry makes that call load the given vocab.txt, under the same
    name (so the tokenizer's defaults for that name, e.g. model_max_length 512, apply).
    """
    data = open(vocab_txt, "rb").read()
    root = tempfile.mkdtemp(prefix="harmony_hfcache_")
    rev = hashlib.sha1(data).hexdigest()
    snap = os.path.join(root, "models--bert-base-uncased", "snapshots", rev)
    os.makedirs(snap)
    os.makedirs(os.path.join(root, "models--bert-base-uncased", "refs"))
    with open(os.path.join(root, "models--bert-base-uncased", "refs", "main"), "w") as f:
        f.write(rev)
    with open(os.path.join(snap, "vocab.txt"), "wb") as f:
        f.write(data)
    with open(os.path.join(root, "version.txt"), "w") as f:  # no cache-migration notice
        f.write("1")
    if "huggingface_hub" in sys.modules or "transformers" in sys.modules:
        raise RuntimeError("call bert_cache() before importing transformers / huggingface_hub")
    os.environ["HF_HUB_CACHE"] = root
    return root
