package unet

import (
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/dryrun"
	"harmony/engine/models/nn"
	"harmony/engine/models/released"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// harmonyHook does what the Harmony method does at full size: it asks for
// subject-column probabilities at every cross-attention of the down and up
// blocks and swaps every up-block self-attention between batch halves.
type harmonyHook struct {
	b      tensor.Backend
	masks  []*tensor.Tensor
	probes int
}

func (h *harmonyHook) Attention(s nn.Site) ([2]int, *tensor.Swap) {
	switch {
	case s.Cross && s.Block != "mid":
		return [2]int{2, 18}, nil
	case !s.Cross && s.Block == "up":
		rows := h.b.New("rowmask", tensor.F32, 4, s.H*s.W)
		keys := h.b.New("keymask", tensor.F32, 4, s.H*s.W)
		h.masks = append(h.masks, rows, keys)
		return [2]int{}, &tensor.Swap{Mode: tensor.SwapKV, Partner: []int{1, -1, 3, -1}, RowMask: rows, KeyMask: keys}
	}
	return [2]int{}, nil
}

func (h *harmonyHook) Probs(s nn.Site, p *tensor.Tensor) {
	h.probes++
	h.b.Free(p)
}

// TestFullSizeDryRun runs the SD-1.5 UNet at 512² (64² latents), batch 4,
// with the Harmony hook, on the shape-checking backend: every shape must
// agree, nothing may leak, and no single activation may pass WebGPU's
// default 128 MiB binding limit.
func TestFullSizeDryRun(t *testing.T) {
	cfg, err := ParseConfig([]byte(released.UNet))
	if err != nil {
		t.Fatal(err)
	}
	b := dryrun.New()
	u, err := Load(b, cfg, nn.Placeholders(b, "unet", Tensors(cfg), f16Storage))
	if err != nil {
		t.Fatal(err)
	}
	sample := b.New("sample", tensor.F32, 4, 64, 64, 4)
	ctx := b.New("context", tensor.F32, 4, 77, 768)
	base := b.Live
	hook := &harmonyHook{b: b}
	out, err := u.Forward(b, sample, []float32{981}, ctx, hook)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if got := out.Shape; len(got) != 4 || got[0] != 4 || got[1] != 64 || got[2] != 64 || got[3] != 4 {
		t.Fatalf("output %v", got)
	}
	b.Free(out)
	b.Free(hook.masks...)
	const mib = 1 << 20
	t.Logf("SD-1.5 UNet, batch 4, 64×64: weights %d MiB (f16), peak activations %d MiB, largest %s (%d MiB), %d ops, %.1f GFLOP, %d probability maps",
		b.Weights/mib, (b.Peak-base)/mib, b.LargestT, b.Largest/mib, b.Ops, float64(b.Flops)/1e9, hook.probes)
	if b.Live != base {
		t.Errorf("%d bytes left allocated", b.Live-base)
	}
	if b.Largest > 128*mib {
		t.Errorf("largest activation %s is %d MiB", b.LargestT, b.Largest/mib)
	}
	want := 0
	for _, s := range u.Sites(64, 64) {
		if s.Cross && s.Block != "mid" {
			want++
		}
	}
	if hook.probes != want || want != 15 {
		t.Errorf("%d probability maps for %d cross-attention sites outside the mid block (SD: 15)", hook.probes, want)
	}
	u.Free(b)
	if b.Weights != 0 {
		t.Errorf("%d weight bytes left after Free", b.Weights)
	}
}

// tinyFlops counts the tiny golden UNet's FLOPs for one call at the golden
// input size (batch 2, 16×24 latent).
func tinyFlops(t testing.TB, cfg *Config) int64 {
	b := dryrun.New()
	u, err := Load(b, cfg, nn.Placeholders(b, "unet", Tensors(cfg), nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Forward(b, b.New("s", tensor.F32, 2, 16, 24, cfg.InChannels), []float32{875}, b.New("c", tensor.F32, 2, 77, cfg.CrossDim[0]), nil); err != nil {
		t.Fatal(err)
	}
	return b.Flops
}

// BenchmarkTinyUNet times one golden-size call of the tiny UNet on the CPU
// reference backend.
func BenchmarkTinyUNet(bm *testing.B) {
	b := cpu.New()
	g := golden.Open(bm, "golden", "e_unet.safetensors")
	u := tiny(bm, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	flops := tinyFlops(bm, u.Config)
	sample, ts, ctx := goldenInputs(bm, b, g)
	bm.ResetTimer()
	for range bm.N {
		b.Free(mustForward(bm, u, b, sample, ts, ctx, nil))
	}
	bm.ReportMetric(float64(flops)*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// f16Storage is the storage type of a PrecisionF16 load.
func f16Storage(name string, shape []int) tensor.DType {
	return loader.StorageType(loader.PrecisionF16, name, shape)
}
