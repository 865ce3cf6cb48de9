"""Reference outputs of the evaluation metrics' image preprocessing.

CLIP: transformers v4.36.2 CLIPImageProcessor() with its defaults (the openai checkpoints'
settings: RGB conversion, shortest side 224 with PIL bicubic, centre crop 224 with a floored
offset, 1/255, CLIP mean/std). DINO: torchvision 0.14 (Debian python3-torchvision)
Compose([Resize(256, BICUBIC), CenterCrop(224), ToTensor(), Normalize(ImageNet mean/std)]) on the
PIL image converted to RGB, as the DINO metric code runs it.

Cases (images are not stored twice: two are testdata/inputs/, two are synthetic(), which the
tests recompute):
  rgba300x200  testdata/inputs/reference2_300x200_rgba.png (RGBA: alpha dropped, not composited)
  rgb96x64     testdata/inputs/reference_96x64.png (upscaled)
  synth260x180 synthetic(260, 180): CLIP margin 99 (transformers floors to 49, half-even rounding would give 50)
  synth181x254 synthetic(181, 254): portrait; DINO margin 135 (torchvision 67.5 -> 68, a floor would give 67)

Writes --out/eval/preprocess.safetensors (default: the repository's testdata/):
  {clip,dino}.<case>.rows      f32 [4, 224, 3]  rows 0, 37, 111, 223 of the normalized output (HWC)
  {clip,dino}.<case>.crop_sha  u8  [32]         SHA-256 of the uint8 image after resize and crop (HWC bytes)
  {clip,dino}.<case>.resized   i64 [2]          (width, height) after the resize
The generator asserts that the full normalized output equals the normalization of that uint8 crop.

Run: HARMONY_REFSRC=DIR /usr/bin/python3 testdata/gen/make_eval_preprocess.py [--out DIR]
"""

import argparse
import hashlib
import os
import sys

import refenv  # noqa: F401  (sys.path, threads, offline)
import numpy as np
import torch
from PIL import Image

import safetensors_io

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = [0, 37, 111, 223]
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def synthetic(w, h):
    """A textured RGB test image; value of (x, y, c) = (7x + 13y + 50c + (x*y mod 31)) mod 256."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return Image.fromarray(((7 * x + 13 * y + 50 * c + (x * y) % 31) % 256).astype(np.uint8), "RGB")


def cases(root):
    inputs = os.path.join(root, "inputs")
    return {
        "rgba300x200": Image.open(os.path.join(inputs, "reference2_300x200_rgba.png")),
        "rgb96x64": Image.open(os.path.join(inputs, "reference_96x64.png")),
        "synth260x180": synthetic(260, 180),
        "synth181x254": synthetic(181, 254),
    }


def record(out, key, crop_u8, resized, normalized_hwc):
    out[key + ".rows"] = np.ascontiguousarray(normalized_hwc[ROWS]).astype(np.float32)
    out[key + ".crop_sha"] = np.frombuffer(hashlib.sha256(np.ascontiguousarray(crop_u8).tobytes()).digest(), np.uint8).copy()
    out[key + ".resized"] = np.array(resized, np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, ".."))
    ap.add_argument("--refsrc")
    a = ap.parse_args()
    from torchvision import transforms
    from transformers import CLIPImageProcessor

    clip = CLIPImageProcessor()
    assert clip.size == {"shortest_edge": 224} and clip.resample == Image.BICUBIC
    tv_resize = transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC)
    tv_crop = transforms.CenterCrop(224)
    tv_norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    out = {}
    for name, img in cases(os.path.join(HERE, "..")).items():
        rgb = img.convert("RGB")
        # CLIP: the processor's output, and its uint8 crop recomputed to digest it.
        px = clip(images=img, return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
        w, h = rgb.size
        s, l = (w, h) if w <= h else (h, w)
        nl = int(224 * l / s)
        nw, nh = (224, nl) if w <= h else (nl, 224)
        r = np.asarray(rgb.resize((nw, nh), Image.BICUBIC))
        top, left = (nh - 224) // 2, (nw - 224) // 2
        crop = r[top:top + 224, left:left + 224]
        again = ((crop.astype(np.float64) * (1 / 255)).astype(np.float32) - np.float32(CLIP_MEAN)) / np.float32(CLIP_STD)
        assert np.array_equal(again, px), name
        record(out, "clip." + name, crop, (nw, nh), px)
        # DINO: torchvision on the PIL image.
        rs = tv_resize(rgb)
        crop = np.asarray(tv_crop(rs))
        px = tv_norm(tv_crop(rs)).numpy().transpose(1, 2, 0)
        ref = transforms.Compose([tv_resize, tv_crop, tv_norm])(rgb).numpy().transpose(1, 2, 0)
        assert np.array_equal(ref, px), name
        again = ((torch.from_numpy(crop.copy()).float() / 255).numpy() - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
        assert np.array_equal(again.astype(np.float32), px), name
        record(out, "dino." + name, crop, rs.size, px)
        print(name, "clip resized", out["clip." + name + ".resized"], "dino resized", rs.size)
    edir = os.path.join(a.out, "eval")
    os.makedirs(edir, exist_ok=True)
    safetensors_io.save(out, os.path.join(edir, "preprocess.safetensors"),
                        {"generator": "testdata/gen/make_eval_preprocess.py", "transformers": "4.36.2",
                         "torchvision": "0.14.1"})


if __name__ == "__main__":
    sys.exit(main())
