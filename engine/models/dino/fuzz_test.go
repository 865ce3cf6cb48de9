package dino

// FuzzConfig: ParseConfig and Tensors on arbitrary config.json bytes
// (modeltest.FuzzConfig says what must hold).

import (
	"testing"

	"harmony/engine/models/modeltest"
)

// vits16 is facebook/dino-vits16's config.json (its non-default keys).
const vits16 = `{"architectures": ["ViTModel"], "hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 6, "num_hidden_layers": 12, "patch_size": 16, "image_size": 224, "qkv_bias": true}`

func FuzzConfig(f *testing.F) {
	modeltest.FuzzConfig(f, "dino", vits16, ParseConfig, Tensors)
}
