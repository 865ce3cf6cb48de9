// pack.go: "harmony pack" converts a diffusers folder (or repository URL)
// into the engine's fp16 pack (loader/PACK.md) for hosting and streaming.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"harmony/engine/models/catalog"
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
	base := fs.String("base", "blipdiffusion", "base model: blipdiffusion, or elite (--model is then the Stable Diffusion folder, an ELITE folder, or a repository)")
	imageEncoder := fs.String("image-encoder", "", "elite: the CLIP vision tower's folder or repository (default: the model's image_encoder/)")
	mappers := fs.String("mappers", "", "elite: the folder or repository with global_mapper.pt and local_mapper.pt (default: the model's top)")
	out := fs.String("out", "", "output folder for manifest.json and the shards")
	shardMiB := fs.Int("shard-mib", 32, "target shard size in MiB (a larger tensor gets a shard of its own)")
	variant := fs.String("variant", "", `weight variant to read, e.g. "fp16" (default: full-precision files)`)
	bertVocab := fs.String("bert-vocab", "", "a BERT vocab.txt to include as qformer_tokenizer/vocab.txt")
	allowOverflow := fs.Bool("allow-overflow", false, "keep weights beyond float16's ±65504 (they become ±Inf) instead of refusing them")
	quiet := fs.Bool("q", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony pack --model DIR --out DIR [--shard-mib 32] [--base elite [--image-encoder DIR] [--mappers DIR]]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" || *out == "" || *shardMiB <= 0 || fs.NArg() != 0 || (*base != "blipdiffusion" && *base != "elite") {
		fs.Usage()
		return errUsage
	}
	if *base != "elite" && (*imageEncoder != "" || *mappers != "") {
		return fmt.Errorf("harmony pack: --image-encoder and --mappers need --base elite")
	}
	start := time.Now()
	var man *loader.Manifest
	var err error
	if *base == "elite" {
		man, err = packELITE(ctx, *model, *imageEncoder, *mappers, *out, *shardMiB, *variant, *allowOverflow, *quiet)
	} else {
		man, err = packBLIPDiffusion(ctx, *model, *out, *shardMiB, *variant, *bertVocab, *allowOverflow, *quiet)
	}
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

// packELITE packs the three sources of an ELITE model as one pack,
// checking every tensor against catalog.ELITE.
func packELITE(ctx context.Context, model, imageEncoder, mappers, out string, shardMiB int, variant string, allowOverflow, quiet bool) (*loader.Manifest, error) {
	src, err := loader.OpenELITE(model, imageEncoder, mappers)
	if err != nil {
		return nil, err
	}
	opt := &loader.PackOptions{ShardSize: int64(shardMiB) << 20, Variant: variant, Shapes: catalog.ELITE.Shapes, AllowOverflow: allowOverflow}
	bar := newProgressBar(quiet)
	opt.Progress = bar.load
	man, err := loader.WriteELITEPack(ctx, src, out, opt)
	bar.done()
	return man, err
}

// packBLIPDiffusion packs a BLIP-Diffusion diffusers folder.
func packBLIPDiffusion(ctx context.Context, model, out string, shardMiB int, variant, bertVocab string, allowOverflow, quiet bool) (*loader.Manifest, error) {
	src, file, err := loader.OpenLocation(model)
	if err != nil {
		return nil, err
	}
	if file != "" {
		return nil, fmt.Errorf("harmony pack: --model must be a folder or URL, not the file %s", model)
	}
	opt := &loader.PackOptions{ShardSize: int64(shardMiB) << 20, Variant: variant, Shapes: packShapes, Extra: map[string][]byte{}, AllowOverflow: allowOverflow}
	if bertVocab != "" {
		b, err := os.ReadFile(bertVocab)
		if err != nil {
			return nil, err
		}
		opt.Extra["qformer_tokenizer/vocab.txt"] = b
	}
	bar := newProgressBar(quiet)
	opt.Progress = bar.load
	man, err := loader.WritePack(ctx, src, out, opt)
	bar.done()
	return man, err
}
