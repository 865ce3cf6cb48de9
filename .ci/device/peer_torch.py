#!/usr/bin/env python3
"""PyTorch peer of the engine's UNet timings: the same UNet call on the same GPU.

Rebuilds diffusers' UNet2DConditionModel (the reference architecture, v0.25.1 source) from the
synthetic checkpoint's unet/config.json, loads its weights (unet/diffusion_pytorch_model.safetensors
of `harmony synth --out DIR`; read here with a small safetensors reader, no Rust wheel needed), and
times, eager (no torch.compile), the calls the engine's benchmarks time:

  b2  one classifier-free-guidance call: batch 2, 64x64 latents, 77x768 context
  b4  the Harmony batch: batch 4 (the plain UNet; the engine's call adds the Harmony hook:
      probability read-back at the mask layers and the self-attention swap)

each at fp32 and fp16 (weights and activations in that dtype, diffusers' default attention
processor: scaled_dot_product_attention on torch >= 2, the explicit bmm/softmax before),
on CUDA when present, else on the CPU (slow: a proof that the script works, not a peer).
Writes one JSON object: device, torch and diffusers versions, per configuration the median and
min milliseconds of `--repeats` timed calls after `--warmup` calls, the peak CUDA memory, the
GFLOP of one call (2 x multiply-adds of every conv, linear and attention product, counted on the
call itself), the achieved TFLOP/s, and the fraction of the GPU's dense peak for that dtype
(--peak-fp32 / --peak-fp16 in TFLOP/s; known for H100/H200: 67 fp32 non-tensor, 989 fp16
dense tensor).

diffusers is imported from --diffusers (a folder holding the `diffusers` and `huggingface_hub`
packages, or a zip of them, which Python imports directly), else from $HARMONY_REFSRC/site, else
from the environment. `--pack-diffusers OUT.zip` writes that zip (their .py files and packaging's, about 2 MB)
from $HARMONY_REFSRC/site, for machines without them. Besides torch, the machine needs numpy;
filelock, requests, urllib3, regex, tqdm, yaml and PIL are replaced by inert stand-ins when missing (the UNet
never uses them).

Usage:
  python3 .ci/device/peer_torch.py --synth DIR --out peer.json [--diffusers diffusers.zip]
         [--configs b2-fp32,b4-fp32,b2-fp16,b4-fp16] [--repeats 10] [--warmup 3] [--device cuda|cpu]
  python3 .ci/device/peer_torch.py --pack-diffusers out.zip
"""

import argparse
import json
import mmap
import os
import statistics
import struct
import sys
import time
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHIMS = os.path.join(ROOT, "testdata", "gen", "shims")  # pure-Python `safetensors` stand-in

# Dense peaks in TFLOP/s by GPU name: fp32 without tensor cores, fp16 dense tensor cores.
PEAKS = {"H100": (67.0, 989.0), "H200": (67.0, 989.0)}


def pack_diffusers(out):
    site = os.path.join(os.environ.get("HARMONY_REFSRC", ""), "site")
    if not os.path.isdir(os.path.join(site, "diffusers")):
        sys.exit("set HARMONY_REFSRC to the folder whose site/ holds diffusers and huggingface_hub")
    # packaging (pure Python; diffusers compares versions with it at import) from this Python.
    import packaging

    roots = [(site, "diffusers"), (site, "huggingface_hub"), (os.path.dirname(os.path.dirname(packaging.__file__)), "packaging")]
    n = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for root, pkg in roots:
            for dp, _, fs in sorted(os.walk(os.path.join(root, pkg))):
                for f in sorted(fs):
                    if f.endswith(".py"):
                        p = os.path.join(dp, f)
                        z.write(p, os.path.relpath(p, root))
                        n += 1
    print(f"wrote {out}: {n} files, {os.path.getsize(out)} bytes")


class _Anything:
    """Stands in for any attribute, call, base class or value of a missing module."""

    def __getattr__(self, attr):
        return _Anything()

    def __call__(self, *a, **kw):
        return _Anything()

    def __mro_entries__(self, bases):
        return ()


class _StubFinder:
    """Serves every module under the given top-level names as an inert stand-in."""

    def __init__(self, roots):
        self.roots = roots

    def find_spec(self, name, path=None, target=None):
        import importlib.util

        if name.split(".")[0] in self.roots:
            return importlib.util.spec_from_loader(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []
        m.__version__ = "10.0.0"
        m.__getattr__ = lambda attr: _Anything()
        return m

    def exec_module(self, module):
        pass


def import_diffusers(path):
    if path:
        sys.path.insert(0, os.path.abspath(path))
    else:
        site = os.path.join(os.environ.get("HARMONY_REFSRC", ""), "site")
        if os.path.isdir(os.path.join(site, "diffusers")):
            sys.path.insert(0, site)
    sys.path.append(SHIMS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DIFFUSERS_OFFLINE", "1")
    # Third-party modules diffusers and huggingface_hub import at load time but never use for
    # building a model from a config: inert stand-ins (any submodule, attribute or call) where a
    # machine lacks them.
    missing = set()
    for name in ("filelock", "requests", "regex", "tqdm", "yaml", "PIL", "urllib3"):
        try:
            __import__(name)
        except ImportError:
            missing.add(name)
    if missing:
        sys.meta_path.insert(0, _StubFinder(missing))
    import diffusers
    from diffusers import UNet2DConditionModel

    return diffusers, UNet2DConditionModel


_DT = {"F16": "float16", "F32": "float32", "BF16": "bfloat16", "I64": "int64", "F64": "float64"}


def read_safetensors(path, torch):
    """name -> tensor (copies out of an mmap of the file)."""
    f = open(path, "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = getattr(torch, _DT[e["dtype"]])
        t = torch.frombuffer(bytearray(mm[base + b : base + end]), dtype=dt) if end > b else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"])
    mm.close()
    f.close()
    return out


class FlopCounter:
    """2 x multiply-adds of Conv2d, Linear and attention (q.k and p.v) of one call."""

    def __init__(self, torch, unet):
        self.n, self.on, self.handles = 0, False, []
        nn = torch.nn
        for m in unet.modules():
            if isinstance(m, nn.Conv2d):
                self.handles.append(m.register_forward_hook(self._conv))
            elif isinstance(m, nn.Linear):
                self.handles.append(m.register_forward_hook(self._linear))
        procs = unet.attn_processors
        unet.set_attn_processor({k: self._wrap(p) for k, p in procs.items()})

    def _conv(self, m, inp, out):
        if self.on:
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            self.n += 2 * out.numel() * k

    def _linear(self, m, inp, out):
        if self.on:
            self.n += 2 * out.numel() * m.in_features

    def _wrap(self, proc):
        counter = self

        class Counted:
            def __call__(self, attn, hidden_states, encoder_hidden_states=None, *a, **kw):
                if counter.on:
                    hs = hidden_states
                    b = hs.shape[0]
                    nq = hs.shape[1] if hs.ndim == 3 else hs.shape[2] * hs.shape[3]
                    nk = nq if encoder_hidden_states is None else encoder_hidden_states.shape[1]
                    inner = attn.to_q.out_features
                    counter.n += 2 * 2 * b * nq * nk * inner
                return proc(attn, hidden_states, encoder_hidden_states, *a, **kw)

        return Counted()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", help="folder written by `harmony synth --out` (its unet/ is used)")
    ap.add_argument("--out", help="JSON file to write (default: stdout)")
    ap.add_argument("--diffusers", help="folder or zip holding diffusers and huggingface_hub")
    ap.add_argument("--configs", default="b2-fp32,b4-fp32,b2-fp16,b4-fp16")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls (default 10 on CUDA, 1 on CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 3 on CUDA, 0 on CPU)")
    ap.add_argument("--latent", type=int, default=0, help="latent size (default: the config's sample_size)")
    ap.add_argument("--timestep", type=float, default=981)
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--peak-fp32", type=float, default=None, help="TFLOP/s (default: by GPU name)")
    ap.add_argument("--peak-fp16", type=float, default=None, help="TFLOP/s (default: by GPU name)")
    ap.add_argument("--pack-diffusers", metavar="OUT.zip")
    args = ap.parse_args()
    if args.pack_diffusers:
        pack_diffusers(args.pack_diffusers)
        return
    if not args.synth:
        ap.error("--synth is required")

    import torch

    diffusers, UNet = import_diffusers(args.diffusers)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    repeats = args.repeats if args.repeats is not None else (10 if cuda else 1)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 0)
    udir = os.path.join(args.synth, "unet")
    cfg = json.load(open(os.path.join(udir, "config.json")))
    t0 = time.time()
    torch.manual_seed(0)
    unet = UNet.from_config(cfg)
    sd = read_safetensors(os.path.join(udir, "diffusion_pytorch_model.safetensors"), torch)
    missing, unexpected = unet.load_state_dict(sd, strict=False)
    if missing or unexpected:
        sys.exit(f"peer_torch: weights do not fit the config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    del sd
    unet.eval().requires_grad_(False)
    load_s = time.time() - t0
    gpu_name = torch.cuda.get_device_name(dev) if cuda else ""
    peaks = next((v for k, v in PEAKS.items() if k in gpu_name), (None, None))
    peak = {"fp32": args.peak_fp32 or peaks[0], "fp16": args.peak_fp16 or peaks[1]}
    lat = args.latent or cfg.get("sample_size", 64)
    cross = cfg.get("cross_attention_dim", 768)
    cross = cross[0] if isinstance(cross, list) else cross
    proc_name = type(next(iter(unet.attn_processors.values()))).__name__
    counter = FlopCounter(torch, unet)
    res = {
        "what": "diffusers UNet2DConditionModel, eager, synthetic full-size weights",
        "device": str(dev), "gpu": gpu_name, "torch": torch.__version__, "diffusers": diffusers.__version__,
        "cuda": torch.version.cuda if cuda else None, "attention_processor": proc_name,
        "latent": lat, "timestep": args.timestep, "repeats": repeats, "warmup": warmup,
        "load_seconds": round(load_s, 2), "peak_tflops": peak, "configs": {},
    }
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 arithmetic, as the engine's
        torch.backends.cudnn.allow_tf32 = False
    for name in args.configs.split(","):
        bs, dtn = name.split("-")
        batch = int(bs[1:])
        dt = {"fp32": torch.float32, "fp16": torch.float16}[dtn]
        if dt == torch.float16 and not cuda:
            res["configs"][name] = {"skipped": "fp16 convolutions are not offered on the CPU"}
            continue
        unet.to(dev, dt)
        g = torch.Generator().manual_seed(batch)
        x = torch.randn((batch, cfg.get("in_channels", 4), lat, lat), generator=g).to(dev, dt)
        ctx = torch.randn((batch, 77, cross), generator=g).to(dev, dt)
        ts = torch.tensor([args.timestep] * batch, device=dev)

        def call():
            with torch.no_grad():
                return unet(x, ts, encoder_hidden_states=ctx, return_dict=False)[0]

        counter.on, counter.n = True, 0
        y = call()
        counter.on = False
        flops = counter.n
        finite = bool(torch.isfinite(y).all())
        for _ in range(warmup):
            call()
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        ms = []
        for _ in range(repeats):
            t = time.perf_counter()
            call()
            if cuda:
                torch.cuda.synchronize(dev)
            ms.append((time.perf_counter() - t) * 1e3)
        med = statistics.median(ms)
        tflops = flops / (med / 1e3) / 1e12
        r = {
            "batch": batch, "dtype": dtn, "median_ms": round(med, 3), "min_ms": round(min(ms), 3),
            "ms": [round(v, 3) for v in ms], "gflop": round(flops / 1e9, 1), "tflops": round(tflops, 3),
            "output_finite": finite,
        }
        if peak[dtn]:
            r["fraction_of_peak"] = round(tflops / peak[dtn], 4)
        if cuda:
            r["peak_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
        res["configs"][name] = r
        print(f"peer_torch: {name}: median {med:.1f} ms, {flops / 1e9:.0f} GFLOP, {tflops:.2f} TFLOP/s", file=sys.stderr, flush=True)
    text = json.dumps(res, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
