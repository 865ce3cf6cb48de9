"""Computes the BLIP-Diffusion golden tensors (sections a-g) with the reference implementation.

Reads OUT/blipdiffusion-tiny and OUT/inputs (written by make_model.py and make_inputs.py) and
makes, under OUT:
  golden/a_tokenizers.safetensors ... golden/g_pipeline.safetensors   the fp32 2-thread run
  golden/strings.json, pipeline_args.json, resolved_configs.json, TENSORS.md, manifest.json
  output/pipeline_image.png, output/pipeline_image_float.npy
  tolerances.json        differences of three more complete runs against the fp32 run: fp32 with
                         1 thread, float64 (`.to(torch.float64)` models and inputs), fp16 variant
                         weights upcast to fp32; plus the in-memory-models-vs-reloaded check
Every run calls the unmodified diffusers/transformers code: the pipeline itself for (g) with
wrappers that record the UNet, scheduler and VAE arguments/results, and forward hooks for the
intermediates of (b)-(f). Section README: golden/README.md of the data.

Usage:
  HARMONY_REFSRC=/path/refsrc /usr/bin/python3 make_goldens.py --out OUT [--fp32-only]
"""

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402  (paths, threads, offline mode)

import numpy as np  # noqa: E402
import torch  # noqa: E402

# The producer name the golden files have always carried in their __metadata__ (kept, so that a
# regeneration is byte-identical).
PRODUCER = "golden/gen.py"

PROMPT = "swimming underwater"
SUBJECT = "dog"
NEG_PROMPT = (
    "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, "
    "low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, "
    "deformed, blurry, duplicate"
)
PROMPTS3 = [
    "swimming underwater",
    "A photo of a CAT, sitting on the beach at sunset!",
    "an oil-painting of 2 dogs in a caf\u00e9 -- 3.5x zoom, ultra-detailed",
]
SUBJECTS3 = ["dog", "teddy bear", "a red CAR!"]
GUIDANCE = 7.5
HEIGHT, WIDTH = 32, 48
STEPS = 8
PROMPT_STRENGTH, PROMPT_REPS = 1.0, 20
SEEDS = {
    "text_encoder": 1001,
    "vae": 1002,
    "qformer": 1003,
    "unet": 1004,
    "init_latents": 1234,
    "ctx_random": 77,
    "vae_random_latent": 4321,
}
CTX_BEGIN_POS3 = [2, 5, 1]
IMG1 = "reference_96x64.png"
IMG2 = "reference2_300x200_rgba.png"

FILES = ["a_tokenizers", "b_text_encoder", "c_image_processor", "d_qformer", "e_unet", "f_vae", "g_pipeline"]


def init_latents():
    return torch.randn((1, 4, HEIGHT // 2, WIDTH // 2), generator=torch.Generator().manual_seed(SEEDS["init_latents"]))


class Hooks:
    """Forward hooks that store a module's output (through `pick`) under a name."""

    def __init__(self):
        self.out, self._h = {}, []

    def add(self, module, name, pick=lambda o: o):
        def fn(mod, inp, out):
            self.out[name] = pick(out).detach().clone()

        self._h.append(module.register_forward_hook(fn))

    def remove(self):
        for h in self._h:
            h.remove()
        self._h = []


def first(o):
    return o[0] if isinstance(o, (tuple, list)) else o


def sample_of(o):
    return o[0] if isinstance(o, (tuple, list)) else o.sample


def load_pipeline(model_dir, mode):
    from diffusers import BlipDiffusionPipeline

    if mode == "fp16weights":
        pipe = BlipDiffusionPipeline.from_pretrained(model_dir, variant="fp16")
        pipe.to(torch.float32)
    else:
        pipe = BlipDiffusionPipeline.from_pretrained(model_dir)
    if mode == "fp64":
        pipe.to(torch.float64)
    for m in (pipe.text_encoder, pipe.qformer, pipe.unet, pipe.vae):
        m.eval()
    return pipe


# ----------------------------------------------------------------------------------------------
# (a) tokenizers
def section_a(pipe, T, S):
    tok, bert = pipe.tokenizer, pipe.qformer.tokenizer
    for i, p in enumerate(PROMPTS3):
        ids = tok(p).input_ids
        T[f"tok.clip.prompt{i}.raw_ids"] = torch.tensor(ids, dtype=torch.int64)
        S[f"tok.clip.prompt{i}.tokens"] = tok.convert_ids_to_tokens(ids)
    T["tok.clip.prompts3.ids61"] = tok(
        PROMPTS3, padding="max_length", truncation=True, max_length=61, return_tensors="pt"
    ).input_ids
    T["tok.clip.prompts3.ids77"] = tok(
        PROMPTS3, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    ).input_ids
    built = pipe._build_prompt([PROMPT], [SUBJECT], PROMPT_STRENGTH, PROMPT_REPS)
    S["built_prompt"] = built[0]
    ids61 = tok(built, padding="max_length", truncation=True, max_length=61, return_tensors="pt").input_ids
    T["tok.clip.built_prompt.ids61"] = ids61
    S["tok.clip.built_prompt.tokens61"] = tok.convert_ids_to_tokens(ids61[0].tolist())
    T["tok.clip.neg_prompt.ids77"] = tok([NEG_PROMPT], padding="max_length", max_length=77, return_tensors="pt").input_ids
    T["tok.clip.empty.ids77"] = tok([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    b = bert([SUBJECT], return_tensors="pt", padding=True)
    T["tok.bert.dog.ids"], T["tok.bert.dog.attention_mask"] = b.input_ids, b.attention_mask
    b = bert(SUBJECTS3, return_tensors="pt", padding=True)
    T["tok.bert.subjects3.ids"], T["tok.bert.subjects3.attention_mask"] = b.input_ids, b.attention_mask
    S["tok.bert.subjects3.tokens"] = [bert.convert_ids_to_tokens(r) for r in b.input_ids.tolist()]


# (c) image processor
def section_c(pipe, T, inputs_dir):
    from PIL import Image
    from transformers.image_transforms import resize
    from transformers.image_utils import PILImageResampling

    for key, fname in (("img1", IMG1), ("img2", IMG2)):
        img = Image.open(os.path.join(inputs_dir, fname))
        rgb = np.array(img.convert("RGB"))
        resized = resize(rgb, (224, 224), resample=PILImageResampling.BICUBIC)
        pv = pipe.image_processor.preprocess(img, image_mean=None, image_std=None, return_tensors="pt")["pixel_values"]
        # rescale + normalize of the stored resized image must give pixel_values exactly
        ip = pipe.image_processor
        chk = ip.normalize(ip.rescale(resized, ip.rescale_factor), ip.image_mean, ip.image_std)
        assert np.array_equal(chk.transpose(2, 0, 1)[None], pv.numpy()), key
        T[f"imgproc.{key}.input_rgb_u8"] = torch.from_numpy(rgb.copy())
        T[f"imgproc.{key}.resized_rgb_u8"] = torch.from_numpy(np.ascontiguousarray(resized))
        T[f"imgproc.{key}.pixel_values"] = pv


# (d) Q-Former
def section_d(pipe, T, dtype):
    q = pipe.qformer
    pv1 = T["imgproc.img1.pixel_values"]
    pv2 = T["imgproc.img2.pixel_values"]
    h = Hooks()
    h.add(q.visual_encoder.embeddings, "qformer.dog.vision_embeddings")
    h.add(q.visual_encoder.encoder.layers[0], "qformer.dog.vision_layer0_out", first)
    h.add(q.visual_encoder, "qformer.dog.vision_last_hidden_state", lambda o: o.last_hidden_state)
    h.add(q.embeddings, "qformer.dog.text_embeddings_out")
    h.add(q.encoder.layer[0], "qformer.dog.layer0_out", first)
    out = q(image_input=pv1, text_input=[SUBJECT], return_dict=True)
    h.remove()
    T.update(h.out)
    T["qformer.dog.pixel_values_in"] = pv1
    T["qformer.dog.last_hidden_state"] = out.last_hidden_state
    T["qformer.dog.query_output"] = out.last_hidden_state[:, : q.config.num_query_tokens]
    T["qformer.dog.projected_query_embeds"] = q(image_input=pv1, text_input=[SUBJECT], return_dict=False)
    pv3 = torch.cat([pv1, pv2, pv1])
    T["qformer.batch3.pixel_values_in"] = pv3
    T["qformer.batch3.last_hidden_state"] = q(image_input=pv3, text_input=SUBJECTS3, return_dict=True).last_hidden_state
    T["qformer.batch3.projected_query_embeds"] = q(image_input=pv3, text_input=SUBJECTS3, return_dict=False)


# (b) text encoder
def section_b(pipe, T, S, dtype):
    te = pipe.text_encoder
    tm = te.text_model

    def run(prefix, ids, ctx, pos, layers=True):
        h = Hooks()
        if layers:
            h.add(tm.embeddings, prefix + ".embeddings_out")
            h.add(tm.encoder.layers[0], prefix + ".layer0_out", first)
        out = te(input_ids=ids, ctx_embeddings=ctx, ctx_begin_pos=pos)
        h.remove()
        T.update(h.out)
        T[prefix + ".last_hidden_state"] = out[0]
        T[prefix + ".pooler_output"] = out[1]

    ctx = T["qformer.dog.projected_query_embeds"]
    T["te.ctx.input_ids"] = T["tok.clip.built_prompt.ids61"]
    T["te.ctx.ctx_embeddings"] = ctx
    run("te.ctx", T["te.ctx.input_ids"], ctx, [pipe.config.ctx_begin_pos])
    S["te.ctx.ctx_begin_pos"] = [pipe.config.ctx_begin_pos]
    T["te.noctx.input_ids"] = T["tok.clip.neg_prompt.ids77"]
    run("te.noctx", T["te.noctx.input_ids"], None, None)
    rnd = torch.randn((3, 16, 32), generator=torch.Generator().manual_seed(SEEDS["ctx_random"])).to(dtype)
    T["te.prompts3_ctx.ctx_embeddings"] = rnd
    run("te.prompts3_ctx", T["tok.clip.prompts3.ids61"], rnd, CTX_BEGIN_POS3, layers=False)
    S["te.prompts3_ctx.ctx_begin_pos"] = CTX_BEGIN_POS3
    run("te.prompts3_noctx", T["tok.clip.prompts3.ids77"], None, None, layers=False)


# (g) the pipeline, with recording wrappers
def section_g(pipe, T, S, inputs_dir, dtype):
    from PIL import Image

    rec = {"latents_in": [], "unet_in": [], "unet_out": [], "guided": [], "latents_out": [], "t": [], "ehs": []}
    unet_forward = pipe.unet.forward
    sched_step = pipe.scheduler.step
    vae_decode = pipe.vae.decode

    def unet_wrap(sample, timestep, encoder_hidden_states, *a, **k):
        out = unet_forward(sample, timestep, encoder_hidden_states, *a, **k)
        rec["unet_in"].append(sample.clone())
        rec["unet_out"].append(out["sample"].clone())
        rec["t"].append(int(timestep))
        rec["ehs"].append(encoder_hidden_states.clone())
        return out

    def step_wrap(model_output, timestep, sample, *a, **k):
        out = sched_step(model_output, timestep, sample, *a, **k)
        rec["guided"].append(model_output.clone())
        rec["latents_in"].append(sample.clone())
        rec["latents_out"].append(out["prev_sample"].clone())
        return out

    def decode_wrap(z, *a, **k):
        out = vae_decode(z, *a, **k)
        rec["dec_in"] = z.clone()
        rec["dec_out"] = first(out).clone()
        return out

    lat0 = init_latents().to(dtype)
    kwargs = dict(
        prompt=PROMPT,
        source_subject_category=SUBJECT,
        target_subject_category=SUBJECT,
        guidance_scale=GUIDANCE,
        height=HEIGHT,
        width=WIDTH,
        num_inference_steps=STEPS,
        neg_prompt=NEG_PROMPT,
        prompt_strength=PROMPT_STRENGTH,
        prompt_reps=PROMPT_REPS,
    )
    pipe.unet.forward, pipe.scheduler.step, pipe.vae.decode = unet_wrap, step_wrap, decode_wrap
    try:
        img_np = pipe(reference_image=Image.open(os.path.join(inputs_dir, IMG1)), latents=lat0, output_type="np", **kwargs).images
    finally:
        del pipe.unet.forward, pipe.scheduler.step, pipe.vae.decode
    img_pil = pipe(reference_image=Image.open(os.path.join(inputs_dir, IMG1)), latents=lat0, output_type="pil", **kwargs).images[0]

    T["pipe.init_latents"] = lat0
    T["pipe.timesteps"] = torch.tensor(rec["t"], dtype=torch.int64)
    T["pipe.text_embeddings"] = rec["ehs"][0]
    for k, name in (("latents_in", "latents_in"), ("latents_out", "latents_out"), ("guided", "noise_pred_guided")):
        T["pipe." + name] = torch.cat(rec[k])
    T["pipe.unet_in"] = torch.stack(rec["unet_in"])
    T["pipe.unet_out"] = torch.stack(rec["unet_out"])
    T["pipe.vae_decode_in"] = rec["dec_in"]
    T["pipe.vae_decode_out"] = rec["dec_out"]
    T["pipe.image_float"] = torch.from_numpy(np.ascontiguousarray(img_np))
    T["pipe.image_uint8"] = torch.from_numpy(np.array(img_pil))
    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
    sched.set_timesteps(STEPS)
    T["sched.timesteps"] = sched.timesteps.to(torch.int64)
    T["sched.alphas_cumprod"] = sched.alphas_cumprod.to(torch.float32)
    S["sched.init_noise_sigma"] = float(sched.init_noise_sigma)
    return img_np, img_pil


# (e) one UNet call with hooks
def section_e(pipe, T, dtype):
    unet = pipe.unet
    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
    sched.set_timesteps(STEPS)
    t = sched.timesteps[0]
    sample = torch.cat([T["pipe.init_latents"] * sched.init_noise_sigma] * 2)
    ehs = T["pipe.text_embeddings"]
    h = Hooks()
    h.add(unet.time_proj, "unet.time_proj_out")
    h.add(unet.time_embedding, "unet.time_embedding_out")
    h.add(unet.conv_in, "unet.conv_in_out")
    d0 = unet.down_blocks[0]
    h.add(d0.resnets[0], "unet.down0.resnet0_out")
    h.add(d0.attentions[0], "unet.down0.attn0_out", sample_of)
    tb = d0.attentions[0].transformer_blocks[0]
    h.add(tb, "unet.down0.attn0.tblock0_out")
    h.add(tb.attn1, "unet.down0.attn0.tblock0.attn1_out")
    h.add(tb.attn2, "unet.down0.attn0.tblock0.attn2_out")
    h.add(tb.ff, "unet.down0.attn0.tblock0.ff_out")
    for i, blk in enumerate(unet.down_blocks):
        h.add(blk, f"unet.down_block{i}_out", first)
    h.add(unet.mid_block, "unet.mid_block_out")
    for i, blk in enumerate(unet.up_blocks):
        h.add(blk, f"unet.up_block{i}_out")
    h.add(unet.conv_norm_out, "unet.conv_norm_out_out")

    probs = {}

    def wrap_scores(attn, name):
        orig = attn.get_attention_scores

        def f(query, key, attention_mask=None):
            p = orig(query, key, attention_mask)
            heads = attn.heads
            probs[name] = p.reshape(p.shape[0] // heads, heads, p.shape[1], p.shape[2]).mean(dim=1)
            return p

        attn.get_attention_scores = f

    wrap_scores(tb.attn1, "unet.down0.attn0.tblock0.attn1_probs_headmean")
    wrap_scores(tb.attn2, "unet.down0.attn0.tblock0.attn2_probs_headmean")
    try:
        out = unet(sample, t, encoder_hidden_states=ehs).sample
    finally:
        h.remove()
        del tb.attn1.get_attention_scores, tb.attn2.get_attention_scores
    T.update(h.out)
    T.update(probs)
    T["unet.in.sample"] = sample
    T["unet.in.timestep"] = t.reshape(1).to(torch.int64)
    T["unet.in.encoder_hidden_states"] = ehs
    T["unet.out.sample"] = out
    assert torch.equal(out, T["pipe.unet_out"][0]), "standalone UNet call differs from the pipeline's first call"


# (f) VAE decode with hooks
def section_f(pipe, T, dtype):
    vae = pipe.vae
    z = T["pipe.latents_out"][-1:] / vae.config.scaling_factor
    h = Hooks()
    h.add(vae.post_quant_conv, "vae.post_quant_conv_out")
    h.add(vae.decoder.conv_in, "vae.decoder.conv_in_out")
    h.add(vae.decoder.mid_block, "vae.decoder.mid_block_out")
    for i, blk in enumerate(vae.decoder.up_blocks):
        h.add(blk, f"vae.decoder.up_block{i}_out")
    h.add(vae.decoder.conv_norm_out, "vae.decoder.conv_norm_out_out")
    out = vae.decode(z).sample
    h.remove()
    T.update(h.out)
    T["vae.decode.in"] = z
    T["vae.decode.out"] = out
    zr = torch.randn((1, 4, HEIGHT // 2, WIDTH // 2), generator=torch.Generator().manual_seed(SEEDS["vae_random_latent"]))
    zr = zr.to(dtype)
    T["vae.decode_random.in"] = zr
    T["vae.decode_random.out"] = vae.decode(zr).sample


def compute(model_dir, inputs_dir, mode):
    """One complete run. mode: fp32 | fp32_1thread | fp64 | fp16weights | reload (in-memory models)."""
    torch.set_num_threads(1 if mode == "fp32_1thread" else refenv.THREADS)
    dtype = torch.float64 if mode == "fp64" else torch.float32
    if mode == "inmemory":
        pipe = inmemory_pipeline()
    else:
        pipe = load_pipeline(model_dir, mode)
    T, S = {}, {}
    with torch.no_grad():
        section_a(pipe, T, S)
        section_c(pipe, T, inputs_dir)
        section_d(pipe, T, dtype)
        section_b(pipe, T, S, dtype)
        img_np, img_pil = section_g(pipe, T, S, inputs_dir, dtype)
        section_e(pipe, T, dtype)
        section_f(pipe, T, dtype)
    torch.set_num_threads(refenv.THREADS)
    return pipe, T, S, img_np, img_pil


_CLIP_BPE = None


def inmemory_pipeline():
    import tempfile

    from diffusers import BlipDiffusionPipeline

    import tiny_model

    tok_dir = tiny_model.build_clip_tokenizer_files(_CLIP_BPE, tempfile.mkdtemp(prefix="cliptok_"))
    return BlipDiffusionPipeline(**tiny_model.build_components(tok_dir), ctx_begin_pos=2, mean=None, std=None)


# ----------------------------------------------------------------------------------------------
# statistics and output files
def stats(t):
    """min/max (ints for integer tensors), mean/std (float64, unbiased std) as in the manifest."""
    if t.is_floating_point():
        d = t.double().flatten()
        return {"min": t.min().item(), "max": t.max().item(), "mean": d.mean().item(), "std": d.std().item()}
    return {"min": int(t.min()), "max": int(t.max())}


def diff_stats(a, ref):
    """max_abs, max_abs_over_max_ref, rms_over_rms_ref, max_ref of a against ref (float64)."""
    a, ref = a.double(), ref.double()
    d = a - ref
    max_abs = d.abs().max().item()
    max_ref = ref.abs().max().item()
    rms = d.pow(2).mean().sqrt().item()
    rms_ref = ref.pow(2).mean().sqrt().item()
    return {
        "max_abs": max_abs,
        "max_abs_over_max_ref": max_abs / max_ref if max_ref else 0.0,
        "rms_over_rms_ref": rms / rms_ref if rms_ref else 0.0,
        "max_ref": max_ref,
    }


def uint8_cmp(a, ref):
    d = (a.to(torch.int64) - ref.to(torch.int64)).abs()
    return {"max_abs": int(d.max()), "n_values_differing": int((d != 0).sum()), "n_values": d.numel()}


def dump_json(obj, path, ensure_ascii=True):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=ensure_ascii)


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def fmt_rel(t, tol, key):
    if not t.is_floating_point():
        return "exact"
    return "%.1e" % tol[key]["max_abs_over_max_ref"]


# Files listed (with size and md5) in manifest.json, in the order the original manifest has them.
MANIFEST_FILES = [
    "tolerances.json",
    "blipdiffusion-tiny/model_index.json",
    "blipdiffusion-tiny/text_encoder/model.safetensors",
    "blipdiffusion-tiny/text_encoder/model.fp16.safetensors",
    "blipdiffusion-tiny/text_encoder/config.json",
    "blipdiffusion-tiny/vae/diffusion_pytorch_model.safetensors",
    "blipdiffusion-tiny/vae/diffusion_pytorch_model.fp16.safetensors",
    "blipdiffusion-tiny/vae/config.json",
    "blipdiffusion-tiny/scheduler/scheduler_config.json",
    "blipdiffusion-tiny/qformer/model.safetensors",
    "blipdiffusion-tiny/qformer/model.fp16.safetensors",
    "blipdiffusion-tiny/qformer/config.json",
    "blipdiffusion-tiny/image_processor/preprocessor_config.json",
    "blipdiffusion-tiny/tokenizer/tokenizer_config.json",
    "blipdiffusion-tiny/tokenizer/special_tokens_map.json",
    "blipdiffusion-tiny/tokenizer/merges.txt",
    "blipdiffusion-tiny/tokenizer/vocab.json",
    "blipdiffusion-tiny/unet/diffusion_pytorch_model.safetensors",
    "blipdiffusion-tiny/unet/diffusion_pytorch_model.fp16.safetensors",
    "blipdiffusion-tiny/unet/config.json",
    "golden/a_tokenizers.safetensors",
    "golden/b_text_encoder.safetensors",
    "golden/g_pipeline.safetensors",
    "golden/e_unet.safetensors",
    "golden/d_qformer.safetensors",
    "golden/pipeline_args.json",
    "golden/resolved_configs.json",
    "golden/TENSORS.md",
    "golden/c_image_processor.safetensors",
    "golden/f_vae.safetensors",
    "golden/strings.json",
    "qformer_bert_tokenizer/vocab.txt",
    "output/pipeline_image.png",
    "output/pipeline_image_float.npy",
    "inputs/reference_96x64.png",
    "inputs/reference2_300x200_rgba.png",
]

TENSORS_MD_HEAD = """# Golden tensors (generated by gen.py)

fp32 run, CPU, torch.set_num_threads(2). Tolerance columns: max |fp32 - fp64| / max|fp64| and the
same for a 1-thread fp32 run (see ../tolerances.json for more statistics).

| name | file | shape | dtype | min | max | rel.diff fp64 | rel.diff 1-thread | produced by |
|---|---|---|---|---|---|---|---|---|
"""


def resolved_configs(pipe):
    """Configs with defaults filled in: those of the freshly built pipeline after save_pretrained
    (which records architectures/torch_dtype in the transformers configs and _class_name /
    _diffusers_version in the diffusers ones). Configs loaded back from disk would differ only in
    `_name_or_path`, key order and `_use_default_values`. Note: diffusers builds
    `_use_default_values` as list(set(...)), so its order follows Python's string hash seed
    (PYTHONHASHSEED)."""
    import tempfile

    mem = inmemory_pipeline()
    with tempfile.TemporaryDirectory() as d:
        mem.save_pretrained(d)
    tok, bert = pipe.tokenizer, pipe.qformer.tokenizer
    return {
        "text_encoder": mem.text_encoder.config.to_dict(),
        "qformer": mem.qformer.config.to_dict(),
        "unet": dict(mem.unet.config),
        "vae": dict(mem.vae.config),
        "scheduler": dict(mem.scheduler.config),
        "image_processor": mem.image_processor.to_dict(),
        "pipeline": dict(mem.config),
        "tokenizer": {
            "cls": "CLIPTokenizer (slow)",
            "vocab_size": tok.vocab_size,
            "model_max_length": tok.model_max_length,
            "bos": [str(tok.bos_token), tok.bos_token_id],
            "eos": [str(tok.eos_token), tok.eos_token_id],
            "pad": [str(tok.pad_token), tok.pad_token_id],
            "unk": [str(tok.unk_token), tok.unk_token_id],
        },
        "qformer_tokenizer": {
            "cls": "BertTokenizer (slow), bert-base-uncased vocab + added bos [DEC]",
            "vocab_size": len(bert),
            "do_lower_case": bert.do_lower_case,
            "special": {t: bert.convert_tokens_to_ids(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]},
        },
    }


def pipeline_args():
    return {
        "call": "BlipDiffusionPipeline.__call__",
        "kwargs": {
            "prompt": PROMPT,
            "source_subject_category": SUBJECT,
            "target_subject_category": SUBJECT,
            "guidance_scale": GUIDANCE,
            "height": HEIGHT,
            "width": WIDTH,
            "num_inference_steps": STEPS,
            "neg_prompt": NEG_PROMPT,
            "prompt_strength": PROMPT_STRENGTH,
            "prompt_reps": PROMPT_REPS,
            "reference_image": "data/inputs/reference_96x64.png (PIL.Image.open, mode RGB)",
            "latents": "golden tensor pipe.init_latents (torch.randn([1, 4, 16, 24], "
            "generator=torch.Generator().manual_seed(1234)))",
            "output_type": "np (float array) and, in a second identical call, pil (PNG)",
            "generator": None,
            "return_dict": True,
        },
        "device": "cpu",
        "dtype": "float32",
        "torch_num_threads": 2,
        "seeds": SEEDS,
        "scheduler_kwargs": __import__("tiny_model").SCHEDULER_KWARGS,
        "ctx_begin_pos": 2,
        "mean": None,
        "std": None,
    }


def strings_json(S):
    order = [
        "built_prompt",
        "neg_prompt",
        "prompts3",
        "subjects3",
        "tok.clip.prompt0.tokens",
        "tok.clip.prompt1.tokens",
        "tok.clip.prompt2.tokens",
        "tok.clip.built_prompt.tokens61",
        "tok.bert.subjects3.tokens",
        "te.ctx.ctx_begin_pos",
        "te.prompts3_ctx.ctx_begin_pos",
        "sched.init_noise_sigma",
    ]
    S = dict(S, neg_prompt=NEG_PROMPT, prompts3=PROMPTS3, subjects3=SUBJECTS3)
    return {k: S[k] for k in order}


def versions():
    import platform

    import diffusers
    import huggingface_hub
    import PIL
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def write_outputs(out, pipe, T, S, img_np, img_pil, runs):
    import golden_spec
    import safetensors_io

    spec = golden_spec.TENSORS
    missing, extra = set(spec) - set(T), set(T) - set(spec)
    assert not missing and not extra, (missing, extra)
    names = sorted(spec, key=lambda n: (spec[n][0], n))
    gdir = os.path.join(out, "golden")
    os.makedirs(gdir, exist_ok=True)
    for f in FILES:
        tensors = {n: T[n].contiguous() for n in names if spec[n][0] == f}
        safetensors_io.save(tensors, os.path.join(gdir, f + ".safetensors"), metadata={"format": "pt", "producer": PRODUCER})
    odir = os.path.join(out, "output")
    os.makedirs(odir, exist_ok=True)
    img_pil.save(os.path.join(odir, "pipeline_image.png"))
    np.save(os.path.join(odir, "pipeline_image_float.npy"), img_np)

    # tolerances.json
    tol = {"reload_from_disk_bit_identical": None, "image_uint8_vs_golden": {}, "per_tensor": {}}
    if runs:
        same = all(torch.equal(runs["inmemory"][n], T[n]) for n in T)
        tol["reload_from_disk_bit_identical"] = same
        for key in ("fp32_1thread", "fp64", "fp16weights_upcast", "reload"):
            r = runs[{"fp16weights_upcast": "fp16weights", "reload": "inmemory"}.get(key, key)]
            tol["image_uint8_vs_golden"][key] = uint8_cmp(r["pipe.image_uint8"], T["pipe.image_uint8"])
        for n in sorted(T):
            if not T[n].is_floating_point():
                continue
            tol["per_tensor"][n] = {
                "fp32_1thread_vs_fp32_2threads": diff_stats(runs["fp32_1thread"][n], T[n]),
                "fp32_vs_fp64": diff_stats(T[n], runs["fp64"][n]),
                "fp16weights_upcast_vs_fp32weights": diff_stats(runs["fp16weights"][n], T[n]),
            }
        dump_json(tol, os.path.join(out, "tolerances.json"))

    # TENSORS.md
    rows = []
    for n in names:
        t = T[n]
        st = stats(t)
        pt = tol["per_tensor"].get(n)
        rel64 = fmt_rel(t, pt, "fp32_vs_fp64") if (pt or not t.is_floating_point()) else "n/a"
        rel1 = fmt_rel(t, pt, "fp32_1thread_vs_fp32_2threads") if (pt or not t.is_floating_point()) else "n/a"
        rows.append(
            "| `%s` | %s | %s | %s | %.4g | %.4g | %s | %s | %s |"
            % (n, spec[n][0], list(t.shape), dtype_name(t), st["min"], st["max"], rel64, rel1, spec[n][1].replace("|", "\\|"))
        )
    with open(os.path.join(gdir, "TENSORS.md"), "w") as f:
        f.write(TENSORS_MD_HEAD + "\n".join(rows) + "\n")

    dump_json(strings_json(S), os.path.join(gdir, "strings.json"), ensure_ascii=False)
    dump_json(pipeline_args(), os.path.join(gdir, "pipeline_args.json"))
    dump_json(resolved_configs(pipe), os.path.join(gdir, "resolved_configs.json"))

    manifest = {
        "generator": "gen.py",
        "versions": versions(),
        "parameter_counts": {
            c: sum(p.numel() for p in getattr(pipe, c).parameters()) for c in ("text_encoder", "vae", "unet", "qformer")
        },
        "fp16_variant_files": {
            "text_encoder": "model.fp16.safetensors",
            "qformer": "model.fp16.safetensors",
            "unet": "diffusion_pytorch_model.fp16.safetensors",
            "vae": "diffusion_pytorch_model.fp16.safetensors",
        },
        "tensors": {
            n: dict(
                {"file": spec[n][0] + ".safetensors", "shape": list(T[n].shape), "dtype": dtype_name(T[n]), "description": spec[n][1]},
                **stats(T[n]),
            )
            for n in names
        },
        "files": {
            p: {"bytes": os.path.getsize(os.path.join(out, p)), "md5": md5(os.path.join(out, p))}
            for p in MANIFEST_FILES
            if os.path.exists(os.path.join(out, p))
        },
    }
    dump_json(manifest, os.path.join(gdir, "manifest.json"))


def main():
    global _CLIP_BPE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder holding blipdiffusion-tiny/, inputs/, qformer_bert_tokenizer/")
    ap.add_argument("--clip-bpe", default=os.path.join(refenv.REFSRC, "CLIP", "clip", "bpe_simple_vocab_16e6.txt.gz"))
    ap.add_argument("--fp32-only", action="store_true", help="skip the 1-thread, fp64, fp16 and in-memory runs (no tolerances.json)")
    ap.add_argument("--cache", help="folder to keep each run's tensors in (torch.save), reused when present")
    ap.add_argument("--refsrc", help="overrides $HARMONY_REFSRC")
    args = ap.parse_args()
    _CLIP_BPE = args.clip_bpe
    refenv.bert_cache(os.path.join(args.out, "qformer_bert_tokenizer", "vocab.txt"))
    refenv.apply_tokenizer_shim()
    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    model_dir = os.path.join(args.out, "blipdiffusion-tiny")
    inputs_dir = os.path.join(args.out, "inputs")

    def run(mode):
        path = os.path.join(args.cache, mode + ".pt") if args.cache else None
        if path and os.path.exists(path):
            return torch.load(path)
        print("run", mode, flush=True)
        _, T, _, _, _ = compute(model_dir, inputs_dir, mode)
        if path:
            os.makedirs(args.cache, exist_ok=True)
            torch.save(T, path)
        return T

    runs = {}
    if not args.fp32_only:
        for mode in ("fp32_1thread", "fp64", "fp16weights", "inmemory"):
            runs[mode] = run(mode)
    print("run fp32", flush=True)
    pipe, T, S, img_np, img_pil = compute(model_dir, inputs_dir, "fp32")
    write_outputs(args.out, pipe, T, S, img_np, img_pil, runs)
    print("wrote", os.path.join(args.out, "golden"))


if __name__ == "__main__":
    main()
