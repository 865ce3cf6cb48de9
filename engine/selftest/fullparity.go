// fullparity.go registers the full-size parity part: bench.FullParity's
// comparisons of the Q-Former, the text encoder, a Harmony UNet call and
// the VAE decode at the released model's size (f32) with the reference's
// outputs in testdata/fullsize, over the synthetic checkpoint that
// `harmony synth` writes (Options.Synth). Minutes on a GPU, most of an
// hour on a CPU adapter: it runs only when named.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"harmony/engine/bench"
	"harmony/loader"
)

func init() {
	Register(Part{
		Name:     "fullparity",
		Summary:  "full-size Q-Former, text encoder, Harmony UNet call and VAE decode (f32) against the reference (needs --synth)",
		FullSize: true,
		Run:      runFullParity,
	})
}

func runFullParity(ctx context.Context, env *Env, add func(Check)) {
	if env.Synth == "" {
		add(Check{Name: "full-size parity", Err: errors.New("selftest: fullparity needs the synthetic checkpoint (harmony synth --out DIR --pack none; then --synth DIR)")})
		return
	}
	golden, err := os.ReadFile(filepath.Join(env.TestData, "fullsize", "fullsize.safetensors"))
	if err != nil {
		add(Check{Name: "full-size parity", Err: err})
		return
	}
	photo, err := os.ReadFile(filepath.Join(env.TestData, "inputs", "reference_96x64.png"))
	if err != nil {
		add(Check{Name: "full-size parity", Err: err})
		return
	}
	start := time.Now()
	if err := bench.CheckSynthDir(env.Synth, golden); err != nil {
		add(Check{Name: "synthetic checkpoint digests", Seconds: time.Since(start).Seconds(), Err: err})
		return
	}
	add(Check{Name: "synthetic checkpoint digests", Seconds: time.Since(start).Seconds()})
	res, err := bench.FullParity(ctx, env.Dev, bench.FullParityOptions{
		Source: loader.NewDirSource(env.Synth), Golden: golden, Photo: photo, Log: env.Log,
	})
	for _, r := range res {
		c := Check{Name: r.Check + " " + r.Output, Variant: "f32", Seconds: r.Seconds,
			Detail: fmt.Sprintf("max|err| %.3g, tolerance %.3g (max|ref| %.3g) %s", r.MaxErr, r.Tol, r.MaxRef, r.Note)}
		if !r.Pass {
			c.Err = fmt.Errorf("selftest: %s %s: max|err| %.4g > %.4g", r.Check, r.Output, r.MaxErr, r.Tol)
		}
		add(c)
	}
	if err != nil {
		add(Check{Name: "full-size parity", Err: err})
	}
}
