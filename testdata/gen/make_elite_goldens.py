"""ELITE goldens: masks, preprocessing, module tensors and a whole LMS run, by ELITE's own code.

    HARMONY_ELITE_REFSRC=DIR /usr/bin/python3 testdata/gen/make_elite_goldens.py --out OUT
        [--model testdata/elite-tiny] [--inputs testdata/inputs] [--dtype float32|float64]
        [--f64 DIR64]   # with the float64 run's output folder: also writes tolerances.json

Writes OUT/elite/ (see testdata/elite/README.md for every file and tensor):
  inputs/*_bg.png          the subject masks (made here with numpy + PIL)
  preprocess/*.png          ELITE's 224² PIL bicubic resizes (recovered exactly from its tensors)
  preprocess.safetensors    CustomDatasetWithBG outputs for both photos
  modules.safetensors       features, w0, E, E_uncond, local features, mask, attn2/attn1 calls, one UNet call
  lms.safetensors           the whole `validation` run (LMS, 6 steps, guidance 5, λ 0.8, seed 42)
  lms_image.png             ELITE's th2image of the decoded result
  run.json                  prompt, ids, index, timesteps, sigmas, LMS coefficients, settings

Everything is computed by ELITE's functions (datasets.CustomDatasetWithBG, train_local.validation,
train_local.inj_forward_crossattention, Mapper/MapperLocal, inj_forward_text) on the model loaded
by elite_env.load_tools. `validation` hard-codes 64×64 latents: its module global `torch` is rebound
to a proxy whose `randn` swaps that (64, 64) for LATENT_HW; nothing else differs from torch.
Module tensors are captured with hooks while `validation` runs.
"""

import argparse
import json
import os
import shutil
import tempfile
import types

import elite_env  # noqa: F401
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import safetensors_io
import train_local
from datasets import CustomDatasetWithBG

PHOTOS = {"a": "reference_96x64.png", "b": "reference2_300x200_rgba.png"}
TEMPLATE = "a {} wearing a red hat"  # → "a S wearing a red hat", ELITE index 2
PLACEHOLDER = "S"
LATENT_HW = (12, 16)
STEPS = 6
GUIDANCE = 5
LAMBDA = 0.8
SEED = 42
ATTN_LAYERS = ["down_blocks.0.attentions.0.transformer_blocks.0", "mid_block.attentions.0.transformer_blocks.0"]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def make_masks(dst):
    """Subject masks as ELITE expects them: 8-bit RGB PNGs (equal channels) of the photo's size,
    with soft edges, so that ELITE's `> 0` rule matters (values 1..254 count as subject)."""
    os.makedirs(dst, exist_ok=True)
    out = {}
    # a: 96x64, soft ellipse centred at (46, 30), radii (30, 22)
    h, w = 64, 96
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.sqrt(((x - 46) / 30) ** 2 + ((y - 30) / 22) ** 2)
    m = np.clip(np.round(255 * (1.1 - r) / 0.25), 0, 255).astype(np.uint8)
    out["a"] = np.repeat(m[:, :, None], 3, axis=2)
    # b: 300x200, a rectangle with a 1-px faint border (value 1) and a soft disc
    h, w = 200, 300
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    m = np.zeros((h, w), np.float64)
    m[50:160, 40:150] = 255
    m[49, 39:151] = 1
    d = np.sqrt((x - 215) ** 2 + (y - 100) ** 2)
    m = np.maximum(m, np.clip(np.round(255 * (60 - d) / 8), 0, 255))
    out["b"] = np.repeat(m.astype(np.uint8)[:, :, None], 3, axis=2)
    paths = {}
    for k, arr in out.items():
        name = PHOTOS[k][:-4] + "_bg.png"
        Image.fromarray(arr, "RGB").save(os.path.join(dst, name))
        paths[k] = os.path.join(dst, name)
    return paths


def clip_uint8(t):
    """Invert ToTensor+Normalize of a [3,224,224] tensor back to the uint8 PIL image (exact)."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float64)[:, None, None]
    v = (t.double() * std + mean) * 255
    r = v.round()
    assert (v - r).abs().max() < 1e-3, (v - r).abs().max()
    return r.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


class _TorchProxy(types.ModuleType):
    """`torch` for train_local's globals: randn((B, C, 64, 64), ...) → randn((B, C, *LATENT_HW), ...)."""

    def __init__(self, hw):
        super().__init__("torch")
        self._hw = hw

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn(self, shape, *a, **k):
        shape = tuple(shape)
        assert shape[2:] == (64, 64), shape
        return torch.randn(shape[:2] + tuple(self._hw), *a, **k)


class Recorder:
    def __init__(self):
        self.unet_calls = []
        self.steps = []
        self.coeffs = []
        self.calls = {}

    def add(self, key, value):
        self.calls.setdefault(key, []).append(value)


def recording_scheduler(rec):
    from diffusers import LMSDiscreteScheduler

    class RecLMS(LMSDiscreteScheduler):
        def get_lms_coefficient(self, order, t, current_order):
            c = super().get_lms_coefficient(order, t, current_order)
            rec.coeffs.append((t, order, current_order, float(c)))
            return c

        def step(self, model_output, timestep, sample, *a, **k):
            out = super().step(model_output, timestep, sample, *a, **k)
            rec.steps.append(dict(t=timestep, eps=model_output.clone(), sample=sample.clone(),
                                  prev=out.prev_sample.clone(), x0=out.pred_original_sample.clone(),
                                  sigmas=self.sigmas.clone(), timesteps=self.timesteps.clone()))
            return out

    return RecLMS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    here = os.path.dirname(elite_env.HERE)
    ap.add_argument("--model", default=os.path.join(here, "elite-tiny"))
    ap.add_argument("--inputs", default=os.path.join(here, "inputs"))
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--f64")
    ap.add_argument("--refsrc")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    root = os.path.join(args.out, "elite")
    os.makedirs(root, exist_ok=True)

    masks = make_masks(os.path.join(root, "inputs"))
    vae, unet, text_encoder, tokenizer, image_encoder, mapper, mapper_local, _ = elite_env.load_tools(args.model, dtype)

    # ---- preprocessing: ELITE's CustomDatasetWithBG on a folder holding one photo + its mask
    pre = {}
    examples = {}
    os.makedirs(os.path.join(root, "preprocess"), exist_ok=True)
    for k, fname in PHOTOS.items():
        d = tempfile.mkdtemp(prefix="elite_data_")
        shutil.copy(os.path.join(args.inputs, fname), os.path.join(d, fname))
        shutil.copy(masks[k], os.path.join(d, os.path.basename(masks[k])))
        ds = CustomDatasetWithBG(data_root=d, tokenizer=tokenizer, size=512, placeholder_token=PLACEHOLDER, template=TEMPLATE)
        assert len(ds) == 1
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, shuffle=False)))
        shutil.rmtree(d)
        examples[k] = batch
        for part in ("clip", "obj"):
            u8 = clip_uint8(batch[f"pixel_values_{part}"][0])
            Image.fromarray(u8, "RGB").save(os.path.join(root, "preprocess", f"{k}_{part}224.png"))
        seg = batch["pixel_values_seg"][0]
        assert set(seg.unique().tolist()) <= {0.0, 1.0}
        pre[f"{k}.input_ids"] = batch["input_ids"][0].clone()
        pre[f"{k}.index"] = batch["index"].clone()
        pre[f"{k}.seg128"] = seg.to(torch.uint8)
        mask16 = F.interpolate(batch["pixel_values_seg"], (16, 16), mode="nearest")
        pre[f"{k}.mask16"] = mask16[:, 0].reshape(1, -1, 1).float()
        # the float tensors themselves are ToTensor+Normalize of the PNGs above (too big to keep);
        # two rows of each, to pin the normalisation arithmetic
        for part in ("clip", "obj"):
            pre[f"{k}.pixel_values_{part}.rows0_111"] = batch[f"pixel_values_{part}"][0][:, [0, 111], :].clone()

    # ---- the whole ELITE run on photo a, with hooks
    ex = examples["a"]
    example = {"pixel_values": ex["pixel_values"], "pixel_values_clip": ex["pixel_values_clip"].to(dtype),
               "pixel_values_obj": ex["pixel_values_obj"].to(dtype), "pixel_values_seg": ex["pixel_values_seg"].to(dtype),
               "input_ids": ex["input_ids"], "index": ex["index"].long()}
    rec = Recorder()
    hooks = []
    hooks.append(image_encoder.register_forward_hook(lambda m, i, o: rec.add("image_encoder", (i[0].clone(), o))))
    hooks.append(mapper.register_forward_hook(lambda m, i, o: rec.add("mapper", o.clone())))
    hooks.append(mapper_local.register_forward_hook(lambda m, i, o: rec.add("mapper_local", o.clone())))
    hooks.append(text_encoder.register_forward_hook(lambda m, i, o: rec.add("text_encoder", o[0].clone())))
    for name in ATTN_LAYERS:
        blk = unet.get_submodule(name)
        hooks.append(blk.norm1.register_forward_hook(lambda m, i, o, n=name: rec.add(n + ".attn1_in", o.clone())))
        hooks.append(blk.norm2.register_forward_hook(lambda m, i, o, n=name: rec.add(n + ".attn2_in", o.clone())))
        hooks.append(blk.norm3.register_forward_hook(lambda m, i, o, n=name: rec.add(n + ".norm3_out", o.clone())))
    orig_forward = unet.forward

    def unet_forward(sample, timestep, encoder_hidden_states=None, **kw):
        out = orig_forward(sample, timestep, encoder_hidden_states=encoder_hidden_states, **kw)
        rec.unet_calls.append(dict(sample=sample.clone(), t=timestep, ctx=dict(encoder_hidden_states), eps=out.sample.clone()))
        return out

    unet.forward = unet_forward
    vae_decode = vae.decode

    def decode(z, *a, **k):
        out = vae_decode(z, *a, **k)
        rec.add("vae_decode", (z.clone(), out.sample.clone()))
        return out

    vae.decode = decode
    train_local.torch = _TorchProxy(LATENT_HW)
    train_local.LMSDiscreteScheduler = recording_scheduler(rec)
    images = train_local.validation(example, tokenizer, image_encoder, text_encoder, unet, mapper, mapper_local, vae,
                                    "cpu", GUIDANCE, seed=SEED, llambda=LAMBDA, num_steps=STEPS)
    images[0].save(os.path.join(root, "lms_image.png"))
    for h in hooks:
        h.remove()
    unet.forward = orig_forward

    # ---- module tensors (photo a) from the run
    mod = {}
    (clip_in, feat), (obj_in, feat_obj) = rec.calls["image_encoder"]
    for tag, f in (("clip", feat), ("obj", feat_obj)):
        mod[f"features_{tag}.last"] = f[0]
        for i in (0, 4, 8, 12, 16):
            mod[f"features_{tag}.hidden_{i}"] = f[2][i]
        mod[f"features_{tag}.pooled"] = f[1]
    inj = rec.calls["mapper"][0]
    mod["mapper_words"] = inj
    mod["w0"] = inj[:, 0:1, :]
    e_uncond, e_cond = rec.calls["text_encoder"]
    mod["E_uncond"] = e_uncond
    mod["E"] = e_cond
    mod["local_raw"] = rec.calls["mapper_local"][0]
    cond_call, uncond_call = rec.unet_calls[0], rec.unet_calls[1]
    L = cond_call["ctx"]["LOCAL"]
    mask16 = F.interpolate(example["pixel_values_seg"], (16, 16), mode="nearest")[:, 0].reshape(1, -1, 1)
    assert torch.equal(mod["local_raw"] * mask16, L)
    assert torch.equal(cond_call["ctx"]["CONTEXT_TENSOR"], e_cond)
    assert torch.equal(uncond_call["ctx"]["CONTEXT_TENSOR"], e_uncond)
    mod["mask16"] = mask16
    mod["local"] = L
    idx = cond_call["ctx"]["LOCAL_INDEX"]
    mod["index"] = idx.clone()
    mod["unet.sample"] = cond_call["sample"]
    mod["unet.t"] = torch.tensor([float(cond_call["t"])], dtype=torch.float64)
    mod["unet.eps_cond"] = cond_call["eps"]
    mod["unet.eps_uncond"] = uncond_call["eps"]

    # one attn2 (and attn1) call per chosen layer, on its input from the first (conditional) UNet call
    ctx_c = {"CONTEXT_TENSOR": e_cond, "LOCAL": L, "LOCAL_INDEX": idx, "LAMBDA": LAMBDA}
    ctx_u = {"CONTEXT_TENSOR": e_uncond}
    for name in ATTN_LAYERS:
        blk = unet.get_submodule(name)
        a2 = blk.attn2
        h2 = rec.calls[name + ".attn2_in"][0]
        h1 = rec.calls[name + ".attn1_in"][0]
        short = name.split(".transformer_blocks")[0]
        with torch.no_grad():
            out_c = train_local.inj_forward_crossattention(a2, h2, ctx_c)
            out_g = train_local.inj_forward_crossattention(a2, h2, ctx_u | {"CONTEXT_TENSOR": e_cond})
            out_1 = train_local.inj_forward_crossattention(blk.attn1, h1)
            # P and M with ELITE's own operations (the same lines as inj_forward_crossattention)
            q = a2.reshape_heads_to_batch_dim(a2.to_q(h2))
            k = a2.reshape_heads_to_batch_dim(a2.to_k_global(e_cond))
            scores = torch.matmul(q, k.transpose(-1, -2)) * a2.scale
            probs = scores.softmax(dim=-1)
            il = idx.reshape(idx.shape[0], 1).repeat((1, a2.heads)).reshape(-1)
            col = probs.clone().permute((0, 2, 1))[torch.arange(il.shape[0]), il]
            M = col.unsqueeze(2) / col.max()
        mod[f"{short}.attn2.in"] = h2
        mod[f"{short}.attn2.out"] = out_c
        mod[f"{short}.attn2.out_global_only"] = out_g
        mod[f"{short}.attn2.P_col"] = col
        mod[f"{short}.attn2.M"] = M[..., 0]
        mod[f"{short}.attn1.in"] = h1
        mod[f"{short}.attn1.out"] = out_1
        heads = torch.tensor([a2.heads], dtype=torch.int64)
        mod[f"{short}.heads"] = heads
    assert torch.equal(clip_in, example["pixel_values_clip"])
    assert torch.equal(obj_in, example["pixel_values_obj"])

    # ---- LMS run
    lms = {}
    lms["latents_init"] = rec.steps[0]["sample"]  # randn × init_noise_sigma
    g = torch.manual_seed(SEED)
    lms["noise"] = torch.randn((1, unet.in_channels) + LATENT_HW, generator=g)
    for i, st in enumerate(rec.steps):
        c, u = rec.unet_calls[2 * i], rec.unet_calls[2 * i + 1]
        assert "LOCAL" in c["ctx"] and "LOCAL" not in u["ctx"]
        lms[f"step{i}.model_input"] = c["sample"]
        lms[f"step{i}.eps_cond"] = c["eps"]
        lms[f"step{i}.eps_uncond"] = u["eps"]
        lms[f"step{i}.eps"] = st["eps"]
        lms[f"step{i}.sample"] = st["sample"]
        lms[f"step{i}.x0"] = st["x0"]
        lms[f"step{i}.prev"] = st["prev"]
    z, img = rec.calls["vae_decode"][0]
    lms["decode_in"] = z
    lms["image"] = img
    sig = rec.steps[0]["sigmas"]
    ts = rec.steps[0]["timesteps"]
    lms["sigmas"] = sig
    lms["timesteps"] = ts
    coeffs = [[None] * 4 for _ in range(STEPS)]
    for t_i, order, cur, c in rec.coeffs:
        coeffs[t_i][cur] = c
    lms["lms_coeffs"] = torch.tensor([[c if c is not None else 0.0 for c in row] for row in coeffs], dtype=torch.float64)

    meta = {"producer": "testdata/gen/make_elite_goldens.py", "dtype": args.dtype}
    for name, d in (("preprocess", pre), ("modules", mod), ("lms", lms)):
        out = {k: v.detach().contiguous() for k, v in d.items()}
        safetensors_io.save(out, os.path.join(root, name + ".safetensors"), metadata=meta)
    run = {
        "prompt": TEMPLATE.format(PLACEHOLDER), "template": TEMPLATE, "placeholder": PLACEHOLDER,
        "photo": PHOTOS["a"], "mask": os.path.basename(masks["a"]),
        "input_ids": ex["input_ids"][0].tolist(), "index": int(ex["index"][0]),
        "uncond_ids": tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length).input_ids[0],
        "ids_a_photo_of_a_S": tokenizer(["a photo of a S"], padding="max_length", max_length=77).input_ids[0],
        "latent_hw": list(LATENT_HW), "steps": STEPS, "guidance": GUIDANCE, "lambda": LAMBDA, "seed": SEED,
        "timesteps": [float(x) for x in ts], "sigmas": [float(x) for x in sig],
        "init_noise_sigma": float(sig.max()),
        "lms_coeffs": [[c for c in row if c is not None] for row in coeffs],
        "attn_layers": ATTN_LAYERS, "dtype": args.dtype,
    }
    with open(os.path.join(root, "run.json"), "w") as f:
        json.dump(run, f, indent=1)
        f.write("\n")
    print("wrote", root)


if __name__ == "__main__":
    main()
