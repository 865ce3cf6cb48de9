"""Tiny random DINO ViT in both layouts and its reference outputs (CPU, float32).

Makes, under --out (default: the repository's testdata/):
  dino-tiny/config.json, dino-tiny/model.safetensors
      a transformers v4.36.2 ViTModel (with its pooler, which DINO never reads): image 224,
      patch 16, hidden 16, 2 layers, 2 heads, intermediate 64, gelu, eps 1e-6 (the original
      DINO eps), qkv bias; weights from tiny_model.init_weights, seed 1601.
  dino-tiny/dino_tiny16_pretrain.pth
      the same weights under the original DINO names (cls_token, pos_embed, patch_embed.proj,
      blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}, norm), torch.save'd (zip) like
      dino_deitsmall16_pretrain.pth: a plain state dict, no config.
  eval/dino.safetensors
      hf.last_hidden_state [2, 197, 16]  ViTModel(pixels).last_hidden_state (after the final norm)
      hf.cls               [2, 16]       its class token
      original.cls         [2, 16]       facebookresearch/dino VisionTransformer(pixels) on the .pth
The input pixels are not stored: pixels() below, NHWC [2, 224, 224, 3], is recomputed by the tests
(value at flat NHWC index i = ((i * 2654435761) mod 2^32 >> 22) / 512 - 1, exact in float32).

The original model code is facebookresearch/dino vision_transformer.py at
7c446df5b9f45747937fb0d72314eb9f7b66930a (`git archive` it into a folder named by DINO_SRC);
its `from utils import trunc_normal_` is served by a stub (only weight init uses it).

Run: HARMONY_REFSRC=DIR DINO_SRC=DIR /usr/bin/python3 testdata/gen/make_dino.py [--out DIR]
"""

import argparse
import os
import sys
import types
from functools import partial

import refenv  # noqa: F401  (sys.path, threads, offline)
import numpy as np
import torch

import safetensors_io
from tiny_model import init_weights

HERE = os.path.dirname(os.path.abspath(__file__))
VIT = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
           hidden_act="gelu", layer_norm_eps=1e-6, image_size=224, patch_size=16, qkv_bias=True)
SEED = 1601


def pixels(n, h, w):
    """The deterministic test input, NHWC float32."""
    i = np.arange(n * h * w * 3, dtype=np.uint64)
    v = ((i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(22)
    return (v.astype(np.float64) / 512 - 1).astype(np.float32).reshape(n, h, w, 3)


def to_original(sd, layers):
    """transformers ViTModel names → original DINO names (qkv fused as rows q, k, v)."""
    out = {
        "cls_token": sd["embeddings.cls_token"],
        "pos_embed": sd["embeddings.position_embeddings"],
        "patch_embed.proj.weight": sd["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": sd["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": sd["layernorm.weight"],
        "norm.bias": sd["layernorm.bias"],
    }
    for n in range(layers):
        p, q = f"encoder.layer.{n}.", f"blocks.{n}."
        a = p + "attention.attention."
        for s in ("weight", "bias"):
            out[q + "norm1." + s] = sd[p + "layernorm_before." + s]
            out[q + "norm2." + s] = sd[p + "layernorm_after." + s]
            out[q + "attn.qkv." + s] = torch.cat([sd[a + "query." + s], sd[a + "key." + s], sd[a + "value." + s]])
            out[q + "attn.proj." + s] = sd[p + "attention.output.dense." + s]
            out[q + "mlp.fc1." + s] = sd[p + "intermediate.dense." + s]
            out[q + "mlp.fc2." + s] = sd[p + "output.dense." + s]
    return {k: v.clone().contiguous() for k, v in out.items()}


def original_model():
    src = os.environ.get("DINO_SRC")
    if not src:
        sys.exit("set DINO_SRC to a folder holding facebookresearch/dino's vision_transformer.py")
    stub = types.ModuleType("utils")
    stub.trunc_normal_ = torch.nn.init.trunc_normal_
    sys.modules["utils"] = stub
    sys.path.insert(0, src)
    from vision_transformer import VisionTransformer

    return VisionTransformer(patch_size=VIT["patch_size"], embed_dim=VIT["hidden_size"], depth=VIT["num_hidden_layers"],
                             num_heads=VIT["num_attention_heads"], mlp_ratio=VIT["intermediate_size"] / VIT["hidden_size"],
                             qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, ".."))
    ap.add_argument("--refsrc")
    a = ap.parse_args()
    from transformers import ViTConfig, ViTModel

    hf = init_weights(ViTModel(ViTConfig(**VIT)), SEED).eval()
    mdir = os.path.join(a.out, "dino-tiny")
    os.makedirs(mdir, exist_ok=True)
    hf.save_pretrained(mdir, safe_serialization=True)
    sd = to_original(hf.state_dict(), VIT["num_hidden_layers"])
    pth = os.path.join(mdir, "dino_tiny16_pretrain.pth")
    torch.save(sd, pth)
    orig = original_model()
    orig.load_state_dict(torch.load(pth), strict=True)
    orig.eval()

    x = torch.from_numpy(pixels(2, 224, 224)).permute(0, 3, 1, 2).contiguous()
    out = {}
    with torch.no_grad():
        last = hf(pixel_values=x).last_hidden_state
        out["hf.last_hidden_state"] = last
        out["hf.cls"] = last[:, 0].contiguous()
        out["original.cls"] = orig(x)
    d = (out["hf.cls"] - out["original.cls"]).abs().max().item()
    print("max |hf.cls - original.cls| =", d)
    edir = os.path.join(a.out, "eval")
    os.makedirs(edir, exist_ok=True)
    safetensors_io.save(out, os.path.join(edir, "dino.safetensors"),
                        {"generator": "testdata/gen/make_dino.py", "transformers": "4.36.2",
                         "dino": "7c446df5b9f45747937fb0d72314eb9f7b66930a"})


if __name__ == "__main__":
    sys.exit(main())
