// dump.go writes a generation's tensors to a safetensors file (the CLI's
// --dump): what the goldens hold, so runs can be compared offline.
package pipeline

import (
	"bytes"
	"encoding/binary"
	"math"

	"harmony/engine/harmony"
	"harmony/loader"
)

func f32Tensor(name string, v []float32, shape ...int) loader.SafetensorsTensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return loader.SafetensorsTensor{Name: name, DType: loader.F32, Shape: shape, Data: b}
}

func masksTensor(name string, ms []harmony.Mask) loader.SafetensorsTensor {
	t := loader.SafetensorsTensor{Name: name, DType: loader.U8, Shape: []int{len(ms), 0, 0}}
	for _, m := range ms {
		t.Shape[1], t.Shape[2] = m.H, m.W
		t.Data = append(t.Data, m.V...)
	}
	return t
}

// DumpTensors lists the tensors Dump writes: latents (NCHW) and image
// (float NHWC) of the main result; with Harmony visual_latents,
// visual_image, embedding (E), embedding_ortho (E⊥) and the per-call uint8
// masks masks_main, masks_visual and masks_used_main; with Compare
// baseline_latents and baseline_image; with ELITE w0 [1, 1, D] (the
// injected word) and local [1, Nl, D] (the masked local features).
func DumpTensors(res *Result, latentShape []int) []loader.SafetensorsTensor {
	img := func(im *Image) []int { return []int{1, im.H, im.W, 3} }
	ts := []loader.SafetensorsTensor{
		f32Tensor("latents", res.Main.Latents, latentShape...),
		f32Tensor("image", res.Main.Image.Float, img(res.Main.Image)...),
	}
	if res.Visual != nil {
		ts = append(ts, f32Tensor("visual_latents", res.Visual.Latents, latentShape...),
			f32Tensor("visual_image", res.Visual.Image.Float, img(res.Visual.Image)...))
	}
	if res.Baseline != nil {
		ts = append(ts, f32Tensor("baseline_latents", res.Baseline.Latents, latentShape...),
			f32Tensor("baseline_image", res.Baseline.Image.Float, img(res.Baseline.Image)...))
	}
	if res.Embedding != nil {
		ts = append(ts, f32Tensor("embedding", res.Embedding, res.EmbeddingShape...),
			f32Tensor("embedding_ortho", res.EmbeddingOrtho, res.EmbeddingShape...))
	}
	if res.W0 != nil {
		ts = append(ts, f32Tensor("w0", res.W0, res.W0Shape...))
	}
	if res.Local != nil {
		ts = append(ts, f32Tensor("local", res.Local, res.LocalShape...))
	}
	if len(res.MasksMain) > 0 {
		ts = append(ts, masksTensor("masks_main", res.MasksMain), masksTensor("masks_visual", res.MasksVisual),
			masksTensor("masks_used_main", res.MasksUsedMain))
	}
	return ts
}

// EncodeDump is the safetensors file Dump writes.
func EncodeDump(res *Result) ([]byte, error) {
	var buf bytes.Buffer
	err := loader.WriteSafetensors(&buf, DumpTensors(res, res.LatentShape), map[string]string{"format": "pt", "producer": "harmony"})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Dump writes DumpTensors to path through a synced temporary file, so an
// existing file at path is replaced whole or not at all.
func Dump(path string, res *Result) error {
	data, err := EncodeDump(res)
	if err != nil {
		return err
	}
	return loader.WriteFile(path, data)
}
