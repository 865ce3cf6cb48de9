// bench.go: `harmony bench` measures the engine (engine/bench): kernel
// throughput at Stable Diffusion shapes, UNet steps at tiny / medium /
// full size, the whole tiny pipeline, load throughput, and with a
// synthetic full-size pack (harmony synth) the full-size stages with their
// memory. JSON goes to stdout (or --out), a table to stderr.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"harmony/engine/bench"
	"harmony/engine/gpu"
	"harmony/loader"
	"harmony/www"
)

func init() {
	register(&command{name: "bench", summary: "benchmark kernels, UNet steps, the pipeline, loading and (with a synthetic pack) the full-size stages", run: runBench})
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	parts := fs.String("parts", strings.Join(bench.DefaultParts, ","), "comma-separated parts: "+strings.Join(bench.Parts, ", ")+" (stages needs --synth)")
	sizes := fs.String("unet", "", "comma-separated UNet sizes: tiny, medium, full (default: tiny,medium, and full with --synth)")
	stages := fs.String("stages", "", "comma-separated full-size stages for --parts stages: "+strings.Join(bench.StageNames, ", ")+" (default: all)")
	synth := fs.String("synth", "", "a synthetic full-size pack (harmony synth --out DIR writes DIR/pack)")
	base := fs.String("base", "blipdiffusion", "base model of the --synth pack for --parts stages: blipdiffusion, or elite (stages "+strings.Join(bench.ELITEStageNames, ", ")+")")
	reps := fs.Int("reps", 0, "timed repetitions of every figure (default: per figure, 7 for kernels and the tiny UNet)")
	small := fs.Bool("small", false, "tiny shapes everywhere (a smoke test of the report, not figures)")
	defaultLimits := fs.Bool("default-limits", false, "open the GPU with WebGPU's default limits (128 MiB bindings, 256 MiB buffers)")
	out := fs.String("out", "", "write the JSON report to this file instead of stdout")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony bench [--parts kernels,unet,pipeline,load,stages] [--synth PACK] [--default-limits]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("harmony bench: unexpected argument %q", fs.Arg(0))
	}
	if *base != "blipdiffusion" && *base != "elite" {
		return usageErrorf("harmony bench: --base %q: blipdiffusion or elite", *base)
	}
	opt := bench.Options{
		Parts: splitList(*parts), UNetSizes: splitList(*sizes), Stages: splitList(*stages), Reps: *reps, Small: *small, ELITE: *base == "elite",
		Demo: loader.NewFSSource(www.DemoModel(), "bundled demo model"), Photo: www.DemoPhoto(),
	}
	if !*quiet {
		opt.Log = func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...)
		}
	}
	if *synth != "" {
		src, _, err := loader.OpenLocation(*synth)
		if err != nil {
			return err
		}
		opt.Synth = src
	}
	// A full-size UNet call on a CPU adapter outlasts the default wait.
	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: *defaultLimits, Timeout: 2 * time.Hour})
	if err != nil {
		return err
	}
	defer dev.Close()
	rep, err := bench.Run(ctx, dev, opt)
	if err != nil {
		return err
	}
	rep.WriteTable(os.Stderr)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if *out != "" {
		if err := os.WriteFile(*out, js, 0o644); err != nil {
			return fmt.Errorf("harmony bench: %v", err)
		}
	} else if _, err := os.Stdout.Write(js); err != nil {
		return err
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("harmony bench: %d part(s) failed", len(rep.Failures))
	}
	return nil
}

// splitList splits a comma-separated flag (nil for "").
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
