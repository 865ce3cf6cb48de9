// pack.go: "harmony pack" converts a diffusers folder (or repository URL)
// into the engine's fp16 pack (loader/PACK.md) for hosting and streaming.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"harmony/loader"
)

// packShapes checks every tensor against the shapes the configs imply.
// The model packages provide the table; until a file of this command
// assigns it, packing checks only the files' own consistency.
var packShapes loader.ShapeTable

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
	quiet := fs.Bool("q", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony pack --model DIR --out DIR [--shard-mib 32]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
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
	opt := &loader.PackOptions{ShardSize: int64(*shardMiB) << 20, Variant: *variant, Shapes: packShapes, Extra: map[string][]byte{}}
	if *bertVocab != "" {
		b, err := os.ReadFile(*bertVocab)
		if err != nil {
			return err
		}
		opt.Extra["qformer_tokenizer/vocab.txt"] = b
	}
	bar := &progressBar{w: os.Stderr, start: time.Now()}
	if !*quiet {
		opt.Progress = bar.update
	}
	man, err := loader.WritePack(ctx, src, *out, opt)
	bar.finish()
	if err != nil {
		return err
	}
	var total int64
	for _, s := range man.Shards {
		total += s.Bytes
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d tensors in %d shards, %.2f GiB, %d files, in %v\n",
		*out, len(man.Tensors), len(man.Shards), float64(total)/(1<<30), len(man.Files), time.Since(bar.start).Round(time.Second))
	return nil
}

// progressBar draws "[#####-----]  45%  1.20/2.67 GiB  85 MiB/s" on one
// line, at most ten times a second.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func (p *progressBar) update(pr loader.Progress) {
	now := time.Now()
	if pr.BytesDone < pr.BytesTotal && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	frac := 1.0
	if pr.BytesTotal > 0 {
		frac = float64(pr.BytesDone) / float64(pr.BytesTotal)
	}
	n := int(frac * width)
	rate := float64(pr.BytesDone) / (1 << 20) / max(now.Sub(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %.2f/%.2f GiB  %.0f MiB/s ", strings.Repeat("#", n), strings.Repeat("-", width-n),
		100*frac, float64(pr.BytesDone)/(1<<30), float64(pr.BytesTotal)/(1<<30), rate)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
