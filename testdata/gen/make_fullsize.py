"""Computes the full-size parity goldens: the reference implementation (diffusers v0.25.1 +
transformers v4.36.2, CPU, float32) on the shape-faithful synthetic BLIP-Diffusion checkpoint that
`harmony synth --out DIR` writes (random fp16 weights under the released names, shapes and
configs; every value is a function of the tensor's name, so the folder is the same on every
machine and is never committed).

Reads SYNTH (the synth folder), engine/tokenizer/bert-base-uncased-vocab.txt (the Q-Former's
tokenizer) and testdata/inputs/reference_96x64.png, and writes OUT/fullsize.safetensors
(testdata/fullsize/README.md lists every tensor). Four computations, each from inputs stored in
the file (fp16 where the value is an input, so both sides start from the same numbers):

  qformer  the photo preprocessed to 224x224 by the pipeline's BlipImageProcessor, "dog" through
           the Q-Former's BERT tokenizer -> query embeddings [1, 16, 768]
  text     ContextCLIPTextModel on the amplified prompt ids [1, 61] with the (fp16-rounded)
           subject embeddings inserted at ctx_begin_pos 2 -> [1, 77, 768]
  unet     one Harmony UNet call, batch 4 = [uncond-main, uncond-vis, cond-main, cond-vis], 64x64
           latents, timestep 981, with harmony_method.py's processors: the subject-column
           probabilities of the mask layers recorded, the masks computed (min-max normalized
           map > 0.3 on the 16x16 grid), and the `kv` self-attention swap of the up blocks done with
           a disc-shaped mask from "the call before" in both processes -> noise prediction
           [4, 4, 64, 64], soft masks and binary masks of both processes
  vae      AutoencoderKL.decode(latents / scaling_factor), [1, 4, 64, 64] -> [1, 3, 512, 512]; only
           a fixed subsample is kept (see README): every 7th pixel from (3, 3), the 8x8 block
           means of the whole image, and global statistics in float64

Usage:
  harmony synth --out /tmp/synth --pack none
  HARMONY_REFSRC=/path/refsrc /usr/bin/python3 make_fullsize.py --synth /tmp/synth --out testdata/fullsize
Needs 10 GB of memory; 85 s of CPU on 2 cores (minutes of wall time on a loaded machine).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

PRODUCER = "testdata/gen/make_fullsize.py"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT, SUBJECT = "swimming underwater", "dog"
NEG_PROMPT = (
    "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, "
    "low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, "
    "deformed, blurry, duplicate"
)
VISUAL_PROMPT = "a dog"
PROMPT_STRENGTH, PROMPT_REPS = 1.0, 20
PHOTO = os.path.join(ROOT, "testdata", "inputs", "reference_96x64.png")
BERT_VOCAB = os.path.join(ROOT, "engine", "tokenizer", "bert-base-uncased-vocab.txt")
TIMESTEP = 981
TAU = 0.3
LAT = 64
SEEDS = {"unet_latents": 2101, "vae_latents": 2102}
SUB_START, SUB_STEP = 3, 7  # VAE subsample lattice: 3, 10, ..., 507 (73 positions per axis)
POOL = 8  # VAE block means


def disc_mask(gh, gw):
    """The disc the Go side primes the hook with (engine/bench: harmonyHook)."""
    m = torch.zeros(gh, gw, dtype=torch.bool)
    for y in range(gh):
        for x in range(gw):
            dy, dx = y + 0.5 - gh / 2, x + 0.5 - gw / 2
            m[y, x] = dy * dy + dx * dx <= gh * gw / 8
    return m


WEIGHT_FILES = ["text_encoder/model.safetensors", "qformer/model.safetensors", "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"]


def synth_digests(synth):
    """SHA-256 of the checkpoint's weight files: the Go side checks that it compares against the
    checkpoint the goldens were made from."""
    import hashlib

    out = {}
    for name in WEIGHT_FILES:
        h = hashlib.sha256()
        with open(os.path.join(synth, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                h.update(chunk)
        out[name] = h.hexdigest()
    return out


def log(msg, t0=[time.time()]):
    print(f"[{time.time() - t0[0]:6.1f} s] {msg}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", required=True, help="folder written by `harmony synth --out`")
    ap.add_argument("--out", required=True)
    ap.add_argument("--refsrc", help="overrides $HARMONY_REFSRC")
    args = ap.parse_args()
    refenv.bert_cache(BERT_VOCAB)
    refenv.apply_tokenizer_shim()
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.blip_diffusion.blip_image_processing import BlipImageProcessor
    from diffusers.pipelines.blip_diffusion.modeling_blip2 import Blip2QFormerModel
    from diffusers.pipelines.blip_diffusion.modeling_ctx_clip import ContextCLIPTextModel
    from diffusers.pipelines.blip_diffusion.pipeline_blip_diffusion import BlipDiffusionPipeline
    from PIL import Image
    from transformers import CLIPTokenizer

    import harmony_method as H
    import safetensors_io

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    S = args.synth
    T = {}

    def f32(m):
        m = m.float().eval()
        for p in m.parameters():
            assert p.dtype == torch.float32
        return m

    with torch.no_grad():
        # Q-Former
        qf = f32(Blip2QFormerModel.from_pretrained(os.path.join(S, "qformer")))
        proc = BlipImageProcessor.from_pretrained(os.path.join(S, "image_processor"))
        mi = json.load(open(os.path.join(S, "model_index.json")))
        pixels = proc.preprocess(Image.open(PHOTO), image_mean=mi["mean"], image_std=mi["std"], return_tensors="pt")["pixel_values"]
        log(f"qformer: pixels {tuple(pixels.shape)}")
        q = qf(image_input=pixels, text_input=[SUBJECT], return_dict=False)
        T["qformer.out"] = q.float()
        del qf
        log(f"qformer: out {tuple(q.shape)}")

        # text encoder: the amplified prompt with the subject embeddings; the negative prompt and
        # the visual-only prompt only make the UNet's context
        tok = CLIPTokenizer.from_pretrained(os.path.join(S, "tokenizer"))
        te = f32(ContextCLIPTextModel.from_pretrained(os.path.join(S, "text_encoder")))
        ctx = q.half()
        built = BlipDiffusionPipeline._build_prompt(None, [PROMPT], [SUBJECT], PROMPT_STRENGTH, PROMPT_REPS)[0]
        n_ctx = te.text_model.config.max_position_embeddings - ctx.shape[1]
        ids = tok([built], padding="max_length", truncation=True, max_length=n_ctx, return_tensors="pt").input_ids
        cond = te(input_ids=ids, ctx_embeddings=ctx.float(), ctx_begin_pos=[mi["ctx_begin_pos"]])[0]
        T["text.ids"] = ids.to(torch.int64)
        T["text.ctx"] = ctx
        T["text.out"] = cond.float()
        ids_vis = tok([VISUAL_PROMPT], padding="max_length", truncation=True, max_length=n_ctx, return_tensors="pt").input_ids
        vis = te(input_ids=ids_vis, ctx_embeddings=ctx.float(), ctx_begin_pos=[mi["ctx_begin_pos"]])[0]
        ids_neg = tok([NEG_PROMPT], padding="max_length", truncation=True, max_length=77, return_tensors="pt").input_ids
        neg = te(input_ids=ids_neg, ctx_embeddings=None)[0]
        del te
        log(f"text: out {tuple(cond.shape)}")

        # UNet: one Harmony call
        unet = f32(UNet2DConditionModel.from_pretrained(os.path.join(S, "unet")))
        context3 = torch.cat([neg, cond, vis]).half()  # uncond, cond main, cond visual-only
        lat2 = torch.randn((2, 4, LAT, LAT), generator=torch.Generator().manual_seed(SEEDS["unet_latents"])).half()
        T["unet.context"] = context3
        T["unet.latents"] = lat2
        T["unet.timestep"] = torch.tensor([TIMESTEP], dtype=torch.int64)
        c = context3.float()
        ehs = torch.stack([c[0], c[0], c[1], c[2]])
        lm, lv = lat2.float()
        sample = torch.stack([lm, lv, lm, lv])
        layers, lvl, mask_layers, swap_layers = H.choose_layers(unet, (LAT, LAT))
        grid = (LAT >> lvl, LAT >> lvl)
        cols = list(range(mi["ctx_begin_pos"], mi["ctx_begin_pos"] + 16))
        state = H.HarmonyState(mask_layers, swap_layers, {"main": cols, "vis": cols}, "kv", batch4=True)
        H.install_processors(unet, state, layers)
        disc = disc_mask(*grid)
        state.swap_now, state.masks, state.maps = True, {"main": disc, "vis": disc}, {}
        log(f"unet: mask layers {mask_layers}, grid {grid}, swap layers {swap_layers}")
        out = unet(sample, timestep=TIMESTEP, encoder_hidden_states=ehs)["sample"]
        T["unet.out"] = out.float()
        T["unet.mask_in"] = disc.to(torch.uint8)
        layer_hw = {k: v[1] for k, v in layers.items()}
        margin = 1.0
        for proc_name, key in (("main", "main"), ("vis", "vis")):
            raw, norm = H.mask_from_maps(state.maps, mask_layers, grid, layer_hw, proc_name)
            T[f"unet.mask_soft_{key}"] = norm.float()
            T[f"unet.mask_{key}"] = (norm > TAU).to(torch.uint8)
            margin = min(margin, float((norm - TAU).abs().min()))
            log(f"unet: mask {key}: {int((norm > TAU).sum())} of {norm.numel()} cells, closest to tau by {float((norm - TAU).abs().min()):.3g}")
        T["unet.mask_margin"] = torch.tensor([margin], dtype=torch.float64)
        del unet, state
        log(f"unet: out {tuple(out.shape)}, max|out| {float(out.abs().max()):.4g}")

        # VAE decode
        vae = f32(AutoencoderKL.from_pretrained(os.path.join(S, "vae")))
        z = torch.randn((1, 4, LAT, LAT), generator=torch.Generator().manual_seed(SEEDS["vae_latents"])).half()
        img = vae.decode(z.float() / vae.config.scaling_factor, return_dict=False)[0]
        del vae
        T["vae.latents"] = z
        idx = torch.arange(SUB_START, img.shape[-1], SUB_STEP)
        T["vae.subsample"] = img[0][:, idx][:, :, idx].contiguous().float()
        T["vae.pool8"] = torch.nn.functional.avg_pool2d(img.double(), POOL)[0].float()
        d = img.double()
        T["vae.stats"] = torch.tensor([d.mean(), d.std(), d.min(), d.max(), d.abs().max(), (d * d).mean().sqrt()], dtype=torch.float64)
        log(f"vae: out {tuple(img.shape)}, stats {T['vae.stats'].tolist()}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "fullsize.safetensors")
    T = {k: v.contiguous() for k, v in T.items()}
    safetensors_io.save(T, path, metadata={"format": "pt", "producer": PRODUCER, "synth_sha256": json.dumps(synth_digests(S), sort_keys=True)})
    log(f"wrote {path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
