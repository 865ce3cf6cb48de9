"""Makes the tiny random ELITE model folder `elite-tiny/` (see testdata/elite/README.md).

    HARMONY_ELITE_REFSRC=DIR /usr/bin/python3 testdata/gen/make_elite_model.py --out OUT [--testdata T]

Layout (Stable Diffusion folder + ELITE's parts), written under OUT/elite-tiny/:
  unet/, vae/, text_encoder/, tokenizer/   relative symlinks to the BLIP-Diffusion tiny model's
      files (T = the testdata folder holding blipdiffusion-tiny/ and blipdiffusion-tiny-bin/):
      UNet, text encoder (CLIP text, 32 wide, vocabulary 49408) and tokenizer from
      blipdiffusion-tiny/, the VAE as blipdiffusion-tiny-bin's `.bin` (diffusers-0.11-era
      attention names query/key/value/proj_attn, as Stable Diffusion v1-4's own VAE file has them)
      with blipdiffusion-tiny's config.json. No weights are duplicated.
  scheduler/scheduler_config.json   ELITE's LMSDiscreteScheduler(beta_start=0.00085,
      beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000), saved by
      diffusers 0.11.1.
  model_index.json                  Stable Diffusion-style component index.
  image_encoder/                    transformers 4.26.1 CLIPVisionModel: 17 layers, width 16,
      2 heads, MLP 48, 224² input, patch 14 (16×16 = 256 patches + CLS, as ELITE needs),
      config.json + model.safetensors.
  global_mapper.pt, local_mapper.pt ELITE's `Mapper(16, 32)` / `MapperLocal(16, 32)` state dicts
      plus the K/V Linear layers `pww_load_tools` adds for every attn2 of the UNet, saved with
      torch.save (zip pickle). Every mapper matrix and vector is an `as_strided` view
      (storage offset + strides) of one of four short random storages per file, so the
      1024-wide layers cost kilobytes; the K/V weights are ordinary contiguous tensors.
"""

import argparse
import json
import math
import os
import shutil
import sys

import elite_env  # noqa: F401  (sys.path, env vars, ELITE modules)
import torch
from torch import nn

import safetensors_io

TEXT_HIDDEN = 32  # blipdiffusion-tiny text encoder width = its UNet's cross_attention_dim
VISION = dict(
    hidden_size=16,
    intermediate_size=48,
    num_hidden_layers=17,
    num_attention_heads=2,
    image_size=224,
    patch_size=14,
    num_channels=3,
    projection_dim=16,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
SEED_VISION = 5101
SEED_GLOBAL = 5102
SEED_LOCAL = 5103

LINKS = {
    "unet/config.json": "blipdiffusion-tiny/unet/config.json",
    "unet/diffusion_pytorch_model.safetensors": "blipdiffusion-tiny/unet/diffusion_pytorch_model.safetensors",
    "vae/config.json": "blipdiffusion-tiny/vae/config.json",
    "vae/diffusion_pytorch_model.bin": "blipdiffusion-tiny-bin/vae/diffusion_pytorch_model.bin",
    "text_encoder/config.json": "blipdiffusion-tiny/text_encoder/config.json",
    "text_encoder/model.safetensors": "blipdiffusion-tiny/text_encoder/model.safetensors",
    "tokenizer/merges.txt": "blipdiffusion-tiny/tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json": "blipdiffusion-tiny/tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json": "blipdiffusion-tiny/tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json": "blipdiffusion-tiny/tokenizer/vocab.json",
}


def init_weights(model, seed):
    """The BLIP-Diffusion tiny model's recipe (tiny_model.init_weights): per-module parameters in
    named_modules() order from torch.Generator(seed); Linear/Conv weight N(0,1)/sqrt(fan_in),
    bias 0.1·N; LayerNorm weight 1 + 0.1·N, bias 0.1·N; embeddings 0.5·N."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                r = torch.randn(p.shape, generator=g, dtype=torch.float32)
                if isinstance(mod, (nn.Linear, nn.Conv2d)):
                    v = r / math.sqrt(p[0].numel()) if pname == "weight" else 0.1 * r
                elif isinstance(mod, (nn.LayerNorm, nn.GroupNorm)):
                    v = 1 + 0.1 * r if pname == "weight" else 0.1 * r
                else:
                    v = 0.5 * r
                p.copy_(v)
    return model


def attn2_names(unet):
    """The attn2 module names exactly as pww_load_tools walks them (inference_local.py:78-95)."""
    out = []
    for name, module in unet.named_modules():
        if module.__class__.__name__ == "CrossAttention":
            if "attn1" in name:
                continue
            out.append((name, tuple(module.to_k.weight.shape), tuple(module.to_v.weight.shape)))
    return out


def build_mappers(unet, in_dim, out_dim):
    """ELITE's Mapper/MapperLocal with the K/V layers added as pww_load_tools adds them (same
    names, same order), for a UNet whose attn2 sizes are read from the model."""
    from train_local import Mapper, MapperLocal

    mapper = Mapper(input_dim=in_dim, output_dim=out_dim)
    mapper_local = MapperLocal(input_dim=in_dim, output_dim=out_dim)
    for name, kshape, vshape in attn2_names(unet):
        key = name.replace(".", "_")
        mapper.add_module(f"{key}_to_k", nn.Linear(kshape[1], kshape[0], bias=False))
        mapper.add_module(f"{key}_to_v", nn.Linear(vshape[1], vshape[0], bias=False))
        mapper_local.add_module(f"{key}_to_v", nn.Linear(vshape[1], vshape[0], bias=False))
        mapper_local.add_module(f"{key}_to_k", nn.Linear(kshape[1], kshape[0], bias=False))
    return mapper, mapper_local


# (row stride, column stride) choices for the 2-D views; never (C, 1), so no view is contiguous.
STRIDES_2D = [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2), (1, 5), (5, 1), (2, 5), (5, 2), (3, 4), (4, 3)]
STORAGE = {"w_fan1024": 8192, "w_fan_in": 4096, "ln_weight": 4096, "bias": 4096}


def strided_state_dict(module, seed, in_dim):
    """module.state_dict() with every mapping_* tensor replaced by an as_strided view of one of
    four random storages (scaled per class as init_weights would scale them: weights
    N(0,1)/sqrt(fan_in) with fan_in 1024 or in_dim, LayerNorm weights 1 + 0.1·N, biases 0.1·N,
    LayerNorm biases included); K/V weights
    (names ending in _to_k/_to_v.weight) are fresh contiguous N(0,1)/sqrt(fan_in) tensors."""
    g = torch.Generator().manual_seed(seed)
    st = {}
    for k, n in STORAGE.items():
        r = torch.randn(n, generator=g, dtype=torch.float32)
        st[k] = {"w_fan1024": r / 32.0, "w_fan_in": r / math.sqrt(in_dim), "ln_weight": 1 + 0.1 * r, "bias": 0.1 * r}[k]
    counters = {k: 0 for k in STORAGE}
    out = {}
    for name, p in module.state_dict().items():
        shape = tuple(p.shape)
        if not name.startswith("mapping"):
            out[name] = torch.randn(shape, generator=g, dtype=torch.float32) / math.sqrt(shape[1])
            continue
        leaf = name.rsplit(".", 1)[1]
        layer = int(name.rsplit(".", 2)[1])
        if len(shape) == 2:
            kind = "w_fan1024" if shape[1] == 1024 else "w_fan_in"
        elif layer in (1, 4):
            kind = "ln_weight" if leaf == "weight" else "bias"
        else:
            kind = "bias"
        storage = st[kind]
        i = counters[kind]
        counters[kind] += 1
        if len(shape) == 2:
            cands = [s for s in STRIDES_2D if (shape[0] - 1) * s[0] + (shape[1] - 1) * s[1] + 1 <= storage.numel() - 64]
            stride = cands[i % len(cands)]
            span = (shape[0] - 1) * stride[0] + (shape[1] - 1) * stride[1] + 1
        else:
            stride = (1 + i % 2,)
            span = (shape[0] - 1) * stride[0] + 1
        room = storage.numel() - span
        offset = (i * 193 + 7) % (room + 1)
        out[name] = torch.as_strided(storage, shape, stride, offset)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--testdata", default=os.path.join(os.path.dirname(elite_env.HERE), ""))
    ap.add_argument("--refsrc")
    args = ap.parse_args()
    from diffusers import LMSDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModel

    root = os.path.join(args.out, "elite-tiny")
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    td = os.path.abspath(args.testdata)
    for base in ("blipdiffusion-tiny", "blipdiffusion-tiny-bin"):
        # outside the testdata folder, make the links resolve through OUT/<base>
        if os.path.abspath(args.out) != td and not os.path.exists(os.path.join(args.out, base)):
            os.symlink(os.path.join(td, base), os.path.join(args.out, base))
    for rel, target in LINKS.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(os.path.join(td, target)):
            sys.exit(f"{td}/{target} is missing")
        os.symlink(os.path.join("..", "..", target), path)

    sched = LMSDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    sched.save_config(os.path.join(root, "scheduler"))

    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.11.1",
        "scheduler": ["diffusers", "LMSDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")

    torch.manual_seed(0)
    vcfg = CLIPVisionConfig(**VISION)
    vision = init_weights(CLIPVisionModel(vcfg).eval(), SEED_VISION)
    vdir = os.path.join(root, "image_encoder")
    os.makedirs(vdir)
    vcfg.architectures = ["CLIPVisionModel"]
    vcfg.torch_dtype = "float32"
    vcfg.to_json_file(os.path.join(vdir, "config.json"))
    safetensors_io.save({k: v.contiguous() for k, v in vision.state_dict().items()},
                        os.path.join(vdir, "model.safetensors"), metadata={"format": "pt"})

    unet = UNet2DConditionModel.from_pretrained(os.path.join(root, "unet"))
    mapper, mapper_local = build_mappers(unet, VISION["hidden_size"], TEXT_HIDDEN)
    for mod, seed, fname in ((mapper, SEED_GLOBAL, "global_mapper.pt"), (mapper_local, SEED_LOCAL, "local_mapper.pt")):
        sd = strided_state_dict(mod, seed, VISION["hidden_size"])
        torch.save(sd, os.path.join(root, fname))
        # the file must load into ELITE's module as pww_load_tools loads it
        mod.load_state_dict(torch.load(os.path.join(root, fname), map_location="cpu"))
    print("wrote", root)


if __name__ == "__main__":
    main()
