"""Writes the tiny BLIP-Diffusion pipeline in diffusers layout.

Makes, under OUT:
  blipdiffusion-tiny/       BlipDiffusionPipeline.save_pretrained(safe_serialization=True):
                            model_index.json, configs, tokenizer files, fp32 *.safetensors, and
                            next to each weight file its fp16 variant (*.fp16.safetensors: the
                            same tensors cast to float16, integer buffers kept int64)
  blipdiffusion-tiny-bin/   the same folder with torch.save weight files (pytorch_model.bin,
                            diffusion_pytorch_model.bin; keys sorted, fp32, contiguous), the VAE
                            mid-block attention under the legacy names query/key/value/proj_attn
  qformer_bert_tokenizer/vocab.txt   a copy of the --bert-vocab input

Usage:
  HARMONY_REFSRC=/path/refsrc /usr/bin/python3 make_model.py --out OUT \
      --bert-vocab vocab.txt [--clip-bpe bpe_simple_vocab_16e6.txt.gz]
--clip-bpe defaults to $HARMONY_REFSRC/CLIP/clip/bpe_simple_vocab_16e6.txt.gz (openai/CLIP).
"""

import argparse
import hashlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402  (sets up paths, threads, offline mode)

BERT_VOCAB_MD5 = "64800d5d8528ce344256daf115d4965e"

WEIGHT_FILES = {
    "text_encoder": ("model", "pytorch_model"),
    "qformer": ("model", "pytorch_model"),
    "unet": ("diffusion_pytorch_model", "diffusion_pytorch_model"),
    "vae": ("diffusion_pytorch_model", "diffusion_pytorch_model"),
}

# diffusers' current VAE attention names -> the legacy names of the released VAE checkpoints
LEGACY_VAE_ATTN = {"to_q.": "query.", "to_k.": "key.", "to_v.": "value.", "to_out.0.": "proj_attn."}


def legacy_vae_name(key):
    if ".mid_block.attentions." in key:
        for new, old in LEGACY_VAE_ATTN.items():
            key = key.replace(".attentions.0." + new, ".attentions.0." + old)
    return key


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bert-vocab", required=True, help="bert-base-uncased vocab.txt (md5 %s)" % BERT_VOCAB_MD5)
    ap.add_argument("--clip-bpe", default=os.path.join(refenv.REFSRC, "CLIP", "clip", "bpe_simple_vocab_16e6.txt.gz"))
    ap.add_argument("--refsrc", help="overrides $HARMONY_REFSRC")
    args = ap.parse_args()

    md5 = hashlib.md5(open(args.bert_vocab, "rb").read()).hexdigest()
    if md5 != BERT_VOCAB_MD5:
        sys.exit(f"{args.bert_vocab}: md5 {md5}, expected {BERT_VOCAB_MD5}")
    refenv.bert_cache(args.bert_vocab)
    refenv.apply_tokenizer_shim()

    import torch
    from diffusers import BlipDiffusionPipeline

    import safetensors_io
    import tiny_model

    tok_dir = tiny_model.build_clip_tokenizer_files(args.clip_bpe, tempfile.mkdtemp(prefix="cliptok_"))
    comps = tiny_model.build_components(tok_dir)
    pipe = BlipDiffusionPipeline(**comps, ctx_begin_pos=2, mean=None, std=None)

    out = os.path.join(args.out, "blipdiffusion-tiny")
    pipe.save_pretrained(out, safe_serialization=True)

    for comp, (st_name, bin_name) in WEIGHT_FILES.items():
        sd = safetensors_io.load(os.path.join(out, comp, st_name + ".safetensors"))
        fp16 = {k: (v.to(torch.float16) if v.is_floating_point() else v) for k, v in sd.items()}
        safetensors_io.save(fp16, os.path.join(out, comp, st_name + ".fp16.safetensors"), metadata={"format": "pt"})

    # blipdiffusion-tiny-bin: same folder, torch.save weights
    out_bin = os.path.join(args.out, "blipdiffusion-tiny-bin")
    shutil.rmtree(out_bin, ignore_errors=True)
    shutil.copytree(out, out_bin, ignore=shutil.ignore_patterns("*.safetensors"))
    for comp, (st_name, bin_name) in WEIGHT_FILES.items():
        sd = safetensors_io.load(os.path.join(out, comp, st_name + ".safetensors"))
        if comp == "vae":
            sd = {legacy_vae_name(k): v for k, v in sd.items()}
        sd = {k: sd[k].contiguous() for k in sorted(sd)}
        torch.save(sd, os.path.join(out_bin, comp, bin_name + ".bin"))

    bert_dir = os.path.join(args.out, "qformer_bert_tokenizer")
    os.makedirs(bert_dir, exist_ok=True)
    shutil.copyfile(args.bert_vocab, os.path.join(bert_dir, "vocab.txt"))
    print("wrote", out, out_bin, bert_dir)


if __name__ == "__main__":
    main()
