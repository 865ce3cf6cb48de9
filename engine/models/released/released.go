// Package released holds the released BLIP-Diffusion configs
// (Salesforce/blipdiffusion) as the checkpoint ships them, but for
// torch_dtype "float16" in the two transformers configs: the synthetic
// checkpoint (engine/bench), whose files are fp16, writes them, and the
// model tests parse them.
package released

// ModelIndex is model_index.json.
const ModelIndex = `{
  "_class_name": "BlipDiffusionPipeline",
  "_diffusers_version": "0.18.0.dev0",
  "ctx_begin_pos": 2,
  "image_processor": ["blip_diffusion", "BlipImageProcessor"],
  "mean": [0.48145466, 0.4578275, 0.40821073],
  "qformer": ["blip_diffusion", "Blip2QFormerModel"],
  "scheduler": ["diffusers", "PNDMScheduler"],
  "std": [0.26862954, 0.26130258, 0.27577711],
  "text_encoder": ["blip_diffusion", "ContextCLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"],
  "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]
}
`

// TextEncoder is text_encoder/config.json. torch_dtype says
// float16 because the synthetic files are fp16 (the released ones are fp32).
const TextEncoder = `{
  "_name_or_path": "cache/models--runwayml--stable-diffusion-v1-5",
  "architectures": ["ContextCLIPTextModel"],
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "dropout": 0.0,
  "eos_token_id": 2,
  "hidden_act": "quick_gelu",
  "hidden_size": 768,
  "initializer_factor": 1.0,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 77,
  "model_type": "clip_text_model",
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "pad_token_id": 1,
  "projection_dim": 768,
  "torch_dtype": "float16",
  "transformers_version": "4.32.1",
  "vocab_size": 49408
}
`

// QFormer is qformer/config.json: the full Blip2Config dump,
// with the converter's overrides (num_query_tokens 16; vision 1024 wide,
// 23 layers, 4096, quick_gelu; Q-Former cross-attention in every layer,
// encoder width 1024, vocabulary 30523) and the defaults of the
// transformers version that wrote it (vision layer_norm_eps 1e-5).
const QFormer = `{
  "_name_or_path": "ayushtues/blipdiffusion",
  "architectures": ["Blip2QFormerModel"],
  "initializer_factor": 1.0,
  "initializer_range": 0.02,
  "model_type": "blip-2",
  "num_query_tokens": 16,
  "qformer_config": {
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": null,
    "cross_attention_frequency": 1,
    "encoder_hidden_size": 1024,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "blip_2_qformer",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "vocab_size": 30523
  },
  "text_config": {"model_type": "opt"},
  "torch_dtype": "float16",
  "transformers_version": "4.33.0.dev0",
  "use_decoder_only_language_model": true,
  "vision_config": {
    "attention_dropout": 0.0,
    "hidden_act": "quick_gelu",
    "hidden_size": 1024,
    "image_size": 224,
    "initializer_range": 1e-10,
    "intermediate_size": 4096,
    "layer_norm_eps": 1e-05,
    "model_type": "blip_2_vision_model",
    "num_attention_heads": 16,
    "num_hidden_layers": 23,
    "patch_size": 14,
    "qkv_bias": true
  }
}
`

// UNet is unet/config.json: SD 1.5.
const UNet = `{
  "_class_name": "UNet2DConditionModel",
  "_diffusers_version": "0.18.0.dev0",
  "act_fn": "silu",
  "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false,
  "class_embed_type": null,
  "conv_in_kernel": 3,
  "conv_out_kernel": 3,
  "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1,
  "dual_cross_attention": false,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn",
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "only_cross_attention": false,
  "out_channels": 4,
  "resnet_time_scale_shift": "default",
  "sample_size": 64,
  "time_embedding_type": "positional",
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "upcast_attention": false,
  "use_linear_projection": false
}
`

// VAE is vae/config.json.
const VAE = `{
  "_class_name": "AutoencoderKL",
  "_diffusers_version": "0.16.0",
  "_name_or_path": "./blipdiffusion_hf_ckpt/",
  "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3,
  "latent_channels": 4,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 512,
  "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
}
`

// Scheduler is scheduler/scheduler_config.json (steps_offset 0,
// the class default the converter leaves).
const Scheduler = `{
  "_class_name": "PNDMScheduler",
  "_diffusers_version": "0.18.0.dev0",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 0,
  "timestep_spacing": "leading",
  "trained_betas": null
}
`

// ImageProcessor is image_processor/preprocessor_config.json.
const ImageProcessor = `{
  "do_center_crop": true,
  "do_convert_rgb": true,
  "do_normalize": true,
  "do_rescale": true,
  "do_resize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_processor_type": "BlipImageProcessor",
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "resample": 3,
  "rescale_factor": 0.00392156862745098,
  "size": {"height": 224, "width": 224}
}
`

// CLIPViTL14Vision is image_encoder/config.json of an ELITE model: the
// vision tower of openai/clip-vit-large-patch14 as a CLIPVisionModel
// (transformers 4.26 layout), ViT-L/14 at 224².
const CLIPViTL14Vision = `{
  "architectures": ["CLIPVisionModel"],
  "attention_dropout": 0.0,
  "dropout": 0.0,
  "hidden_act": "quick_gelu",
  "hidden_size": 1024,
  "image_size": 224,
  "initializer_factor": 1.0,
  "initializer_range": 0.02,
  "intermediate_size": 4096,
  "layer_norm_eps": 1e-05,
  "model_type": "clip_vision_model",
  "num_attention_heads": 16,
  "num_channels": 3,
  "num_hidden_layers": 24,
  "patch_size": 14,
  "projection_dim": 768,
  "torch_dtype": "float32",
  "transformers_version": "4.26.1"
}
`

// ELITEMapper sizes ELITE's released mappers (global_mapper.pt and
// local_mapper.pt): Mapper(input_dim=1024, output_dim=768), hidden 1024,
// five words; their attention projections are those of SD v1-4's UNet
// (the architecture of UNet above).
var ELITEMapper = struct{ In, Hidden, Out, Words int }{1024, 1024, 768, 5}
