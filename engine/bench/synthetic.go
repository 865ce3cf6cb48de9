// synthetic.go builds a UNet with seeded random weights and inputs from a
// config alone, for timing models whose weights are not at hand (the peer
// harness's medium UNet, MediumConfig). There is no reference output: only
// the time is meaningful.
package bench

import (
	_ "embed"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"

	"harmony/engine/models/unet"
	"harmony/engine/tensor"
)

// MediumConfig is the config.json of the peer harness's medium UNet.
//
//go:embed medium_unet_config.json
var MediumConfig []byte

// SyntheticUNet loads a UNet of cfg with uniform random weights in
// ±1/√fan-in (norm scales 1, biases small), so activations stay in range.
func SyntheticUNet(b tensor.Backend, cfg *unet.Config, seed int64) (*unet.UNet, error) {
	rng := rand.New(rand.NewSource(seed))
	shapes := unet.Tensors(cfg)
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names) // the same weights for the same seed
	w := tensor.NewWeights("unet")
	for _, n := range names {
		s := shapes[n]
		v := make([]float32, tensor.Numel(s))
		scale := float32(0.02)
		if len(s) >= 2 {
			scale = float32(1 / math.Sqrt(float64(tensor.Numel(s[1:]))))
		}
		for i := range v {
			v[i] = scale * (2*rng.Float32() - 1)
		}
		if len(s) == 1 && isNormScale(n) {
			for i := range v {
				v[i] = 1 + v[i]
			}
		}
		w.Put(n, b.FromF32("unet."+n, v, s...))
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("bench: synthetic weights: %w", err)
	}
	return unet.Load(b, cfg, w)
}

// isNormScale tells GroupNorm and LayerNorm scales (1-D "…norm….weight").
func isNormScale(name string) bool {
	return strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight")
}

// SyntheticInput is a random sample [B, in_channels, h, w], timestep 500 and
// context [B, ctxLen, cross_attention_dim], without a reference output.
func SyntheticInput(cfg *unet.Config, batch, h, w, ctxLen int, seed int64) *PeerInput {
	rng := rand.New(rand.NewSource(seed))
	in := &PeerInput{
		SampleShape:  []int{batch, cfg.InChannels, h, w},
		ContextShape: []int{batch, ctxLen, cfg.CrossDim[0]},
		Timestep:     500,
	}
	in.Sample = make([]float32, tensor.Numel(in.SampleShape))
	for i := range in.Sample {
		in.Sample[i] = float32(rng.NormFloat64())
	}
	in.Context = make([]float32, tensor.Numel(in.ContextShape))
	for i := range in.Context {
		in.Context[i] = float32(rng.NormFloat64())
	}
	return in
}
