package golden

import "testing"

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
