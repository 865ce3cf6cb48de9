package vae

import (
	"testing"

	"harmony/engine/dryrun"
	"harmony/engine/models/nn"
	"harmony/engine/models/released"
	"harmony/engine/tensor"
	"harmony/loader"
)

// TestFullSizeDryRun decodes SD-size latents (64² → 512²) on the
// shape-checking backend: shapes must agree, nothing may leak, and the
// activation peak must not grow with the batch (entries decode one at a
// time).
func TestFullSizeDryRun(t *testing.T) {
	cfg, err := ParseConfig([]byte(released.VAE))
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	var peak1 int64
	for _, batch := range []int{1, 4} {
		b := dryrun.New()
		f16 := func(name string, shape []int) tensor.DType {
			return loader.StorageType(loader.PrecisionF16, name, shape)
		}
		d, err := Load(b, cfg, nn.Placeholders(b, "vae", Tensors(cfg), f16))
		if err != nil {
			t.Fatal(err)
		}
		lat := b.New("latents", tensor.F32, batch, 64, 64, 4)
		base := b.Live
		out, err := d.Decode(b, lat)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Err(); err != nil {
			t.Fatal(err)
		}
		if s := out.Shape; len(s) != 4 || s[0] != batch || s[1] != 512 || s[2] != 512 || s[3] != 3 {
			t.Fatalf("output %v", s)
		}
		outBytes := int64(out.Numel() * 4)
		b.Free(out)
		peak := b.Peak - base - outBytes
		t.Logf("batch %d: peak activations %d MiB besides the output, largest %s (%d MiB)", batch, peak/mib, b.LargestT, b.Largest/mib)
		if b.Live != base {
			t.Errorf("batch %d: %d bytes left allocated", batch, b.Live-base)
		}
		if batch == 1 {
			peak1 = peak
		} else if peak > peak1+outBytes {
			t.Errorf("batch %d peak %d MiB, batch 1 %d MiB: memory grows with the batch", batch, peak/mib, peak1/mib)
		}
		// up_blocks.2's upsampler output [1, 512, 512, 256] is the largest
		// tensor at 512²: 256 MiB, twice WebGPU's default binding limit (the
		// device must be opened with the adapter's limits).
		if b.Largest > 256*mib {
			t.Errorf("largest activation %s is %d MiB", b.LargestT, b.Largest/mib)
		}
		d.Free(b)
	}
}
