// synth.go: `harmony synth` writes a shape-faithful synthetic
// BLIP-Diffusion checkpoint — random fp16 weights under exactly the
// released tensor names, shapes and configs, in the diffusers layout (about
// 3.1 GB) — and packs it, so that the full-size engine can be run and
// measured without the real weights (engine/bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"harmony/engine/bench"
	"harmony/engine/models/catalog"
	"harmony/loader"
	"harmony/www"
)

func init() {
	register(&command{name: "synth", summary: "write a full-size random-weight BLIP-Diffusion or ELITE checkpoint (folder + pack)", run: runSynth})
}

func runSynth(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	out := fs.String("out", "", "output diffusers folder (about 3.1 GB, ELITE 3.6 GB; keep it out of the repository)")
	base := fs.String("base", "blipdiffusion", "base model: blipdiffusion, or elite (SD v1-4 + CLIP ViT-L/14 image_encoder/ + global_mapper.pt, local_mapper.pt)")
	pack := fs.String("pack", "", `pack folder to write from it (default OUT/pack; "none" skips packing)`)
	shardMiB := fs.Int("shard-mib", 32, "pack shard size in MiB")
	quiet := fs.Bool("q", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony synth --out DIR [--pack DIR|none]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || *shardMiB <= 0 || fs.NArg() != 0 || (*base != "blipdiffusion" && *base != "elite") {
		fs.Usage()
		return errUsage
	}
	if *pack == "" {
		*pack = filepath.Join(*out, "pack")
	}
	plan := bench.Plan
	if *base == "elite" {
		plan = bench.PlanELITE
	}
	s, err := plan()
	if err != nil {
		return err
	}
	start := time.Now()
	bar := newProgressBar(*quiet)
	err = s.Write(ctx, *out, bench.WriteOptions{
		Tokenizer: www.DemoModel(),
		Progress: func(done, total int64) {
			bar.load(loader.Progress{BytesDone: done, BytesTotal: total})
		},
	})
	bar.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d tensors, %.2f GB of fp16 weights, in %v\n",
		*out, len(s.Tensors), float64(s.Bytes())/1e9, time.Since(start).Round(time.Second))
	if *pack == "none" {
		return nil
	}
	start = time.Now()
	bar = newProgressBar(*quiet)
	popt := &loader.PackOptions{ShardSize: int64(*shardMiB) << 20, Shapes: packShapes, Progress: bar.load}
	var man *loader.Manifest
	if *base == "elite" {
		popt.Shapes = catalog.ELITE.Shapes
		man, err = loader.WriteELITEPack(ctx, loader.ELITESources{Base: loader.NewDirSource(*out)}, *pack, popt)
	} else {
		man, err = loader.WritePack(ctx, loader.NewDirSource(*out), *pack, popt)
	}
	bar.done()
	if err != nil {
		return err
	}
	var total int64
	for _, sh := range man.Shards {
		total += sh.Bytes
	}
	fmt.Fprintf(os.Stderr, "packed %s: %d tensors in %d shards, %.2f GB, in %v\n",
		*pack, len(man.Tensors), len(man.Shards), float64(total)/1e9, time.Since(start).Round(time.Second))
	return nil
}
