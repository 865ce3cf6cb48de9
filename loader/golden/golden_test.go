package golden

import (
	"os"
	"path/filepath"
	"testing"

	"harmony/loader"
)

func TestOpenGolden(t *testing.T) {
	f := Open(t, "golden", "e_unet.safetensors")
	v, s := f.MustF32(t, "unet.out.sample")
	if len(v) != 2*4*16*24 || len(s) != 4 {
		t.Fatalf("unexpected shape %v", s)
	}
	ids, _ := Open(t, "golden", "a_tokenizers.safetensors").MustInts(t, "tok.clip.built_prompt.ids61")
	if ids[0] != 49406 || len(ids) != 61 {
		t.Fatalf("ids %v", ids)
	}
}

// TestVariantFiles: every fp16 variant file is derived from its fp32 file
// with the data torch wrote (Variant checks the recorded digest), and the
// derived folders hold what the loader tests expect.
func TestVariantFiles(t *testing.T) {
	for _, p := range [][]string{{"qformer", "model.fp16.safetensors"}, {"text_encoder", "model.fp16.safetensors"},
		{"unet", "diffusion_pytorch_model.fp16.safetensors"}, {"vae", "diffusion_pytorch_model.fp16.safetensors"}} {
		f := Open(t, append([]string{Tiny}, p...)...)
		if ti := f.Tensors[len(f.Tensors)-1]; ti.DType != loader.F16 {
			t.Errorf("%s: last tensor %s is %s", p[0], ti.Name, ti.DType)
		}
	}
	v := TinyVariant(t)
	for _, p := range []string{"qformer/model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json"} {
		if _, err := os.Stat(filepath.Join(v, p)); err != nil {
			t.Error(err)
		}
	}
	b := TinyBin(t)
	for c := range BinComponents(t) {
		if m, _ := filepath.Glob(filepath.Join(b, c, "*.safetensors")); len(m) != 0 {
			t.Errorf("%s: .bin folder keeps %v", c, m)
		}
		if m, _ := filepath.Glob(filepath.Join(b, c, "*.bin")); len(m) != 1 {
			t.Errorf("%s: .bin folder has %v", c, m)
		}
	}
	if _, err := os.Stat(filepath.Join(b, "model_index.json")); err != nil {
		t.Error(err)
	}
}
