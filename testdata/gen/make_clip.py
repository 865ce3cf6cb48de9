"""Tiny random CLIPModel and its reference outputs (transformers v4.36.2, CPU, float32).

Makes, under --out (default: the repository's testdata/):
  clip-tiny/config.json, clip-tiny/model.safetensors
      a whole CLIPModel (vision tower 17 layers, so that hidden states 4/8/12/16 exist as in
      ELITE; text tower 2 layers, vocabulary 500, legacy eos_token_id 2 = pooled at the
      arg-max id like the released openai configs), weights from tiny_model.init_weights.
  eval/clip.safetensors
      vision.pixel_values      [2, H, W, 3]  NHWC input (the model saw its NCHW transpose)
      vision.hidden_states.K   [2, T, D]     K = 0..17 (output_hidden_states; 17 = last_hidden_state)
      vision.pooler_output     [2, D]
      vision.image_embeds      [2, P]        get_image_features (visual_projection, not normalized)
      text.input_ids           [2, 77] i64
      text.last_hidden_state   [2, 77, Dt]
      text.pooler_output       [2, Dt]
      text.text_embeds         [2, P]        get_text_features

Run: HARMONY_REFSRC=DIR /usr/bin/python3 testdata/gen/make_clip.py [--out DIR]
"""

import argparse
import json
import os
import sys

import refenv  # noqa: F401  (sys.path, threads, offline)
import numpy as np
import torch

import safetensors_io
from tiny_model import init_weights

HERE = os.path.dirname(os.path.abspath(__file__))

VISION = dict(hidden_size=24, intermediate_size=37, num_hidden_layers=17, num_attention_heads=3,
              image_size=30, patch_size=6, hidden_act="quick_gelu", layer_norm_eps=1e-5)
TEXT = dict(vocab_size=500, hidden_size=32, intermediate_size=45, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
            layer_norm_eps=1e-5, bos_token_id=498, eos_token_id=2, pad_token_id=1)
PROJECTION = 20
SEED = 1507


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, ".."))
    ap.add_argument("--refsrc")
    a = ap.parse_args()
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=PROJECTION)
    model = init_weights(CLIPModel(cfg), SEED).eval()
    mdir = os.path.join(a.out, "clip-tiny")
    os.makedirs(mdir, exist_ok=True)
    model.save_pretrained(mdir, safe_serialization=True)

    g = torch.Generator().manual_seed(SEED + 1)
    s = VISION["image_size"]
    pixels = torch.randn(2, 3, s, s, generator=g)
    # Two prompts: BOS, words, EOS (the highest id, 499), then padding with EOS as
    # CLIPTokenizer pads; rows of different lengths so the pooled position differs.
    ids = torch.full((2, 77), 499, dtype=torch.int64)
    ids[0, :6] = torch.tensor([498, 320, 17, 240, 3, 499])
    ids[1, :11] = torch.tensor([498, 5, 6, 400, 401, 402, 88, 89, 90, 12, 499])
    out = {}
    with torch.no_grad():
        v = model.vision_model(pixel_values=pixels, output_hidden_states=True)
        out["vision.pixel_values"] = pixels.permute(0, 2, 3, 1).contiguous()
        assert torch.equal(v.hidden_states[-1], v.last_hidden_state)
        for k, h in enumerate(v.hidden_states):
            out[f"vision.hidden_states.{k}"] = h
        out["vision.pooler_output"] = v.pooler_output
        out["vision.image_embeds"] = model.get_image_features(pixel_values=pixels)
        t = model.text_model(input_ids=ids)
        out["text.input_ids"] = ids
        out["text.last_hidden_state"] = t.last_hidden_state
        out["text.pooler_output"] = t.pooler_output
        out["text.text_embeds"] = model.get_text_features(input_ids=ids)
    edir = os.path.join(a.out, "eval")
    os.makedirs(edir, exist_ok=True)
    safetensors_io.save(out, os.path.join(edir, "clip.safetensors"),
                        {"generator": "testdata/gen/make_clip.py", "transformers": "4.36.2"})
    print(json.dumps({k: list(v.shape) for k, v in out.items()}))


if __name__ == "__main__":
    sys.exit(main())
