"""The tiny BLIP-Diffusion pipeline: configs, deterministic weights, tokenizer files.

Makes nothing when imported; used by make_model.py (which writes blipdiffusion-tiny/ and
blipdiffusion-tiny-bin/) and make_goldens.py (which rebuilds the same in-memory pipeline).

  build_clip_tokenizer_files(bpe_gz, out_dir)  vocab.json + merges.txt of the real CLIP BPE,
                                               built as openai/CLIP's SimpleTokenizer builds it
  build_components(clip_tok_dir)               {name: component} with the tiny configs and the
                                               seeded weights (README section 3 of the goldens)
  init_weights(module, seed)                   the deterministic weight recipe
"""

import gzip
import json
import math
import os

import torch
from torch import nn

SEEDS = {"text_encoder": 1001, "vae": 1002, "qformer": 1003, "unet": 1004}

# Scheduler exactly as diffusers' scripts/convert_blipdiffusion_to_diffusers.py builds it.
SCHEDULER_KWARGS = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", set_alpha_to_one=False, skip_prk_steps=True
)


def build_clip_tokenizer_files(bpe_gz, out_dir):
    """Write vocab.json / merges.txt for CLIPTokenizer from openai/CLIP's bpe_simple_vocab_16e6.txt.gz.

    Same vocabulary as clip.simple_tokenizer.SimpleTokenizer.__init__: the 256 byte symbols,
    the same with '</w>', one token per merge (48894 merges), then the two special tokens.
    (That module is not imported because it needs `ftfy` at import time.)
    """
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return out_dir


def init_weights(model, seed):
    """Overwrite every parameter, in named_modules() order, from torch.Generator(seed).

    Linear/Conv weight N(0,1)/sqrt(fan_in), bias 0.1*N(0,1); LayerNorm/GroupNorm weight
    1 + 0.1*N(0,1), bias 0.1*N(0,1); embedding tables and free parameters (class/position
    embeddings, query tokens) 0.5*N(0,1).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                r = torch.randn(p.shape, generator=g, dtype=torch.float32)
                if isinstance(mod, (nn.Linear, nn.Conv2d)):
                    if pname == "weight":
                        v = r / math.sqrt(p[0].numel())
                    else:
                        v = 0.1 * r
                elif isinstance(mod, (nn.LayerNorm, nn.GroupNorm)):
                    v = 1 + 0.1 * r if pname == "weight" else 0.1 * r
                else:
                    v = 0.5 * r
                p.copy_(v)
    return model


def build_components(clip_tok_dir):
    """The tiny pipeline components (needs the bert-base-uncased offline cache, see refenv)."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from diffusers.pipelines.blip_diffusion.blip_image_processing import BlipImageProcessor
    from diffusers.pipelines.blip_diffusion.modeling_blip2 import Blip2QFormerModel
    from diffusers.pipelines.blip_diffusion.modeling_ctx_clip import ContextCLIPTextModel
    from transformers import CLIPTextConfig, CLIPTokenizer
    from transformers.models.blip_2.configuration_blip_2 import Blip2Config

    torch.manual_seed(0)
    tokenizer = CLIPTokenizer(
        os.path.join(clip_tok_dir, "vocab.json"), os.path.join(clip_tok_dir, "merges.txt"), model_max_length=77
    )
    text_config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=128,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        dropout=0.0,
        attention_dropout=0.0,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
    )
    text_encoder = ContextCLIPTextModel(text_config)
    qformer_config = Blip2Config(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 224,
            "patch_size": 14,
            "intermediate_size": 128,
            "hidden_act": "quick_gelu",
        },
        qformer_config={
            "vocab_size": 30523,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "cross_attention_frequency": 1,
            "encoder_hidden_size": 32,
        },
        num_query_tokens=16,
    )
    qformer = Blip2QFormerModel(qformer_config)
    # The keyword set is that of the SD1.5 unet config (it decides `_use_default_values`).
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        center_input_sample=False,
        flip_sin_to_cos=True,
        freq_shift=0,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=2,
        downsample_padding=1,
        mid_block_scale_factor=1,
        act_fn="silu",
        norm_num_groups=8,
        norm_eps=1e-5,
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=2,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=0.18215,
    )
    scheduler = PNDMScheduler(**SCHEDULER_KWARGS)
    image_processor = BlipImageProcessor()
    comps = dict(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        unet=unet,
        scheduler=scheduler,
        qformer=qformer,
        image_processor=image_processor,
    )
    for name, seed in SEEDS.items():
        init_weights(comps[name], seed)
        comps[name].eval()
    return comps
