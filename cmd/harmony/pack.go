// pack.go: "harmony pack" converts a diffusers folder (or repository URL)
// into the engine's fp16 pack (loader/PACK.md) for hosting and streaming.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"harmony/engine/pipeline"
	"harmony/loader"
)

// packShapes checks every tensor against the shapes the configs imply.
var packShapes loader.ShapeTable = pipeline.ExpectedShapes

func init() {
	register(&command{
		name:    "pack",
		summary: "convert a diffusers folder to an fp16 pack for streaming",
		run:     runPack,
	})
}

func runPack(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	model := fs.String("model", "", "diffusers folder or base URL (with model_index.json)")
	out := fs.String("out", "", "output folder for manifest.json and the shards")
	shardMiB := fs.Int("shard-mib", 32, "target shard size in MiB (a larger tensor gets a shard of its own)")
	variant := fs.String("variant", "", `weight variant to read, e.g. "fp16" (default: full-precision files)`)
	bertVocab := fs.String("bert-vocab", "", "a BERT vocab.txt to include as qformer_tokenizer/vocab.txt")
	allowOverflow := fs.Bool("allow-overflow", false, "keep weights beyond float16's ±65504 (they become ±Inf) instead of refusing them")
	quiet := fs.Bool("q", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony pack --model DIR --out DIR [--shard-mib 32]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" || *out == "" || *shardMiB <= 0 || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	src, file, err := loader.OpenLocation(*model)
	if err != nil {
		return err
	}
	if file != "" {
		return fmt.Errorf("harmony pack: --model must be a folder or URL, not the file %s", *model)
	}
	opt := &loader.PackOptions{ShardSize: int64(*shardMiB) << 20, Variant: *variant, Shapes: packShapes, Extra: map[string][]byte{}, AllowOverflow: *allowOverflow}
	if *bertVocab != "" {
		b, err := os.ReadFile(*bertVocab)
		if err != nil {
			return err
		}
		opt.Extra["qformer_tokenizer/vocab.txt"] = b
	}
	start := time.Now()
	bar := newProgressBar(*quiet)
	opt.Progress = bar.load
	man, err := loader.WritePack(ctx, src, *out, opt)
	bar.done()
	if err != nil {
		return err
	}
	var total int64
	for _, s := range man.Shards {
		total += s.Bytes
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d tensors in %d shards, %.2f GiB, %d files, in %v\n",
		*out, len(man.Tensors), len(man.Shards), float64(total)/(1<<30), len(man.Files), time.Since(start).Round(time.Second))
	return nil
}
