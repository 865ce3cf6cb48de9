package clip

// FuzzConfig: ParseConfig and Tensors on arbitrary config.json bytes, as
// the loader's shape check meets a downloaded file (modeltest.FuzzConfig
// says what must hold).

import (
	"testing"

	"harmony/engine/models/modeltest"
	"harmony/engine/models/released"
)

func FuzzConfig(f *testing.F) {
	modeltest.FuzzConfig(f, "clip", released.TextEncoder, ParseConfig, Tensors)
}

// clipModelSeed is a whole CLIPModel config.json (openai/clip-vit-base-patch32's sizes).
const clipModelSeed = `{"architectures": ["CLIPModel"], "projection_dim": 512,
 "text_config": {"eos_token_id": 2, "hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8, "num_hidden_layers": 12},
 "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12, "patch_size": 32}}`

func FuzzVisionConfig(f *testing.F) {
	modeltest.FuzzConfig(f, "clip", clipModelSeed, ParseVisionConfig, VisionTensors)
}

func FuzzTextConfig(f *testing.F) {
	modeltest.FuzzConfig(f, "clip", clipModelSeed, ParseTextConfig, TextTensors)
}
