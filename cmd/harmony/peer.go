// peer.go: `harmony peer` times one UNet call natively under the
// onnxruntime peer harness's rule (its README): the fp32 diffusers folder's
// unet, the harness's golden_io.safetensors, 2 warm-ups, 7 timed calls from
// CPU inputs to a CPU output, median and min, max |Δ| against out_sample,
// and the foreign CPU load during each call. It writes the harness's JSON.
//
//	harmony peer --golden PEERS/models/tiny/golden_io.safetensors --out native.json
//	  (--model defaults to testdata/blipdiffusion-tiny, from the repository root)
//	harmony peer --synthetic medium --out medium.json   # the harness's medium UNet, random weights
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"harmony/engine/bench"
	"harmony/engine/gpu"
	"harmony/engine/kernels"
	"harmony/engine/models/unet"
	"harmony/loader"
)

func init() {
	register(&command{name: "peer", summary: "time one UNet call under the onnxruntime peer harness's rule", run: runPeer})
}

func runPeer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	model := fs.String("model", "testdata/blipdiffusion-tiny", "diffusers folder whose unet/ is timed (fp32 weights)")
	goldenPath := fs.String("golden", "", "the harness's golden_io.safetensors (inputs and out_sample)")
	warmup := fs.Int("warmup", 2, "untimed calls")
	runs := fs.Int("runs", 7, "timed calls")
	out := fs.String("out", "", "write the JSON record here (default: stdout)")
	outF32 := fs.String("out-f32", "", "write the last output (NCHW f32 little-endian) here")
	tag := fs.String("tag", "native-lavapipe", "path name in the record")
	synthetic := fs.String("synthetic", "", "instead of --model/--golden: \"medium\" (the harness's medium UNet) or a UNet config.json, with seeded random weights and inputs (no reference output)")
	sample := fs.String("sample", "2,4,32,32", "with --synthetic: sample shape B,C,H,W")
	ctxLen := fs.Int("ctx-len", 77, "with --synthetic: context tokens")
	profile := fs.Bool("profile", false, "also time every dispatch on its own (serialized) and print a per-kernel profile of the timed calls")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *synthetic == "" && (*model == "" || *goldenPath == "") {
		return usageErrorf("harmony peer: --golden (or --synthetic) is required")
	}
	dev, err := gpu.Open(ctx, gpu.Options{Profile: *profile})
	if err != nil {
		return err
	}
	defer dev.Close()
	be := kernels.New(dev)
	t0 := time.Now()
	var u *unet.UNet
	var in *bench.PeerInput
	if *synthetic != "" {
		u, in, err = syntheticPeer(be, *synthetic, *sample, *ctxLen)
	} else {
		u, in, err = goldenPeer(ctx, be, *model, *goldenPath)
	}
	if err != nil {
		return err
	}
	defer u.Free(be)
	loadMS := float64(time.Since(t0).Microseconds()) / 1e3
	procHook := bench.ProcHook()
	hook := func(phase string, i int) (any, error) {
		if phase == "start" {
			dev.ResetProfile() // warm-ups compile the pipelines
		}
		return procHook(phase, i)
	}
	res, err := bench.RunPeerUNet(ctx, be, dev, u, in, bench.Rule{Warmup: *warmup, Runs: *runs}, hook)
	if err != nil {
		return err
	}
	var prof []bench.ProfileRow
	if *profile {
		prof = bench.ProfileRows(dev.Profile(), *runs)
		bench.PrintProfile(os.Stderr, prof)
	}
	host, _ := os.Hostname()
	rec := map[string]any{"path": *tag, "model_dir": *model, "golden": *goldenPath, "synthetic": *synthetic, "runtime": "harmony (Go, wgpu-native)",
		"host": host, "load_ms": loadMS, "result": res}
	if prof != nil {
		rec["profile_per_call"] = prof
	}
	js, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return err
	}
	if *outF32 != "" {
		b := make([]byte, 4*len(res.Output))
		for i, v := range res.Output {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		if err := os.WriteFile(*outF32, b, 0o644); err != nil {
			return err
		}
	}
	if *out == "" {
		_, err = os.Stdout.Write(append(js, '\n'))
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: median %.1f ms, min %.1f ms, %.3f GFLOP/s, %d dispatches/call, max |Δ| %.2g\n",
		*tag, res.MedianMS, res.MinMS, res.GFLOPSAtMedian, res.Dispatches, maxAbs(res))
	return os.WriteFile(*out, js, 0o644)
}

// goldenPeer loads the unet of a diffusers folder and the harness's inputs.
func goldenPeer(ctx context.Context, be *kernels.Backend, model, goldenPath string) (*unet.UNet, *bench.PeerInput, error) {
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		return nil, nil, err
	}
	in, err := bench.ReadPeerInput(data, goldenPath)
	if err != nil {
		return nil, nil, err
	}
	u, err := bench.LoadPeerUNet(ctx, loader.NewDirSource(model), be)
	return u, in, err
}

// syntheticPeer builds the named or configured UNet with random weights.
func syntheticPeer(be *kernels.Backend, which, sample string, ctxLen int) (*unet.UNet, *bench.PeerInput, error) {
	cfgData := bench.MediumConfig
	if which != "medium" {
		var err error
		if cfgData, err = os.ReadFile(which); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := unet.ParseConfig(cfgData)
	if err != nil {
		return nil, nil, err
	}
	var s [4]int
	if _, err := fmt.Sscanf(sample, "%d,%d,%d,%d", &s[0], &s[1], &s[2], &s[3]); err != nil {
		return nil, nil, fmt.Errorf("harmony peer: --sample %q: want B,C,H,W", sample)
	}
	u, err := bench.SyntheticUNet(be, cfg, 1)
	if err != nil {
		return nil, nil, err
	}
	return u, bench.SyntheticInput(cfg, s[0], s[2], s[3], ctxLen, 2), nil
}

func maxAbs(r *bench.PeerResult) float64 {
	if r.Check == nil {
		return math.NaN()
	}
	return r.Check.MaxAbs
}
