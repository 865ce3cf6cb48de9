//go:build js && harmonybench

// bench.go adds harmony.benchUNet to the JS API of the benchmark build
// (go build -tags harmonybench ./wasm → harmony-bench.wasm; the production
// harmony.wasm does not carry it): one UNet call timed under
// the onnxruntime peer harness's rule (engine/bench/peer.go), for the
// side-by-side benchmark page (www/bench.html) and its Node driver
// (wasm/node/bench.mjs):
//
//	benchUNet({model, golden, warmup, runs, hook, profile}) → {json, output}
//	benchUNet({synthetic: "medium", sample: [2,4,32,32], …})   random weights
//
// model is the URL of a diffusers folder (only unet/ is loaded, in f32),
// golden the URL of the harness's golden_io.safetensors; synthetic instead
// builds the harness's medium UNet with seeded random weights and inputs
// (no reference output, only the time means something); hook(phase, i), if
// given, is awaited outside the timed window ("start", "before", "after",
// "end"; the driver records foreign CPU load there). json is the result
// record (engine/bench.PeerResult plus load figures), output the last
// call's out_sample (Float32Array, NCHW). With profile, every dispatch is
// submitted and waited for on its own and json gets a per-kernel profile of
// the timed calls (gpu.Options.Profile; the timings are then serialized,
// not comparable). The benchmark opens a device of its own, so it does not
// depend on init or a loaded model.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall/js"
	"time"

	"harmony/engine/bench"
	"harmony/engine/gpu"
	"harmony/engine/jsx"
	"harmony/engine/kernels"
	"harmony/engine/models/unet"
	"harmony/loader"
)

func init() { extensions["benchUNet"] = jsBenchUNet }

var benchDev struct {
	sync.Mutex
	dev *gpu.Device
	opt gpu.Options
}

func jsBenchUNet(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 1 || args[0].Type() != js.TypeObject {
			return nil, codedf(CodeBadArgument, "harmony: benchUNet takes {model, golden, warmup, runs, hook}")
		}
		o := args[0]
		model, goldenURL, synthetic := jsStr(o, "model"), jsStr(o, "golden"), jsStr(o, "synthetic")
		if synthetic == "" && (model == "" || goldenURL == "") {
			return nil, codedf(CodeBadArgument, "harmony: benchUNet needs model and golden URLs, or synthetic")
		}
		if synthetic != "" && synthetic != "medium" {
			return nil, codedf(CodeBadArgument, "harmony: benchUNet: unknown synthetic model %q", synthetic)
		}
		rule := bench.Rule{Warmup: int(jsNum(o, "warmup", 2)), Runs: int(jsNum(o, "runs", 7))}
		hookFn := o.Get("hook")
		profile := jsBool(o, "profile", false)
		opt := gpu.Options{Label: "harmony-bench", Profile: profile, NoSubgroups: !jsBool(o, "subgroups", true)}
		ctx := context.Background()

		benchDev.Lock()
		defer benchDev.Unlock()
		if benchDev.dev != nil && benchDev.opt != opt {
			benchDev.dev.Close()
			benchDev.dev = nil
		}
		if benchDev.dev == nil {
			dev, err := gpu.Open(ctx, opt)
			if err != nil {
				return nil, err
			}
			benchDev.dev, benchDev.opt = dev, opt
		}
		dev := benchDev.dev
		be := kernels.New(dev)

		t0 := time.Now()
		var u *unet.UNet
		var in *bench.PeerInput
		if synthetic != "" {
			cfg, err := unet.ParseConfig(bench.MediumConfig)
			if err != nil {
				return nil, err
			}
			shape := []int{2, cfg.InChannels, 32, 32}
			if s := o.Get("sample"); s.Type() == js.TypeObject && s.Length() == 4 {
				for i := range shape {
					shape[i] = s.Index(i).Int()
				}
			}
			if u, err = bench.SyntheticUNet(be, cfg, 1); err != nil {
				return nil, err
			}
			in = bench.SyntheticInput(cfg, shape[0], shape[2], shape[3], 77, 2)
		} else {
			data, err := fetchBytes(ctx, goldenURL)
			if err != nil {
				return nil, coded(CodeNetwork, err)
			}
			if in, err = bench.ReadPeerInput(data, goldenURL); err != nil {
				return nil, coded(CodeBadArgument, err)
			}
			if u, err = bench.LoadPeerUNet(ctx, loader.NewFetchSource(model), be); err != nil {
				return nil, coded(CodeBadModel, err)
			}
		}
		defer u.Free(be)
		loadMS := float64(time.Since(t0).Microseconds()) / 1e3

		hook := func(phase string, i int) (any, error) {
			if phase == "start" {
				dev.ResetProfile() // the warm-ups compiled the pipelines
			}
			if hookFn.Type() == js.TypeFunction {
				v, err := awaitJS(ctx, hookFn.Invoke(phase, i)) // a promise, or a value as is
				if err != nil {
					return nil, err
				}
				if v.Type() == js.TypeString {
					return json.RawMessage(v.String()), nil // a JSON record from the driver
				}
			}
			return nil, nil
		}
		res, err := bench.RunPeerUNet(ctx, be, dev, u, in, rule, hook)
		if err != nil {
			return nil, err
		}
		info := dev.Info()
		rec := map[string]any{"model_url": model, "golden_url": goldenURL, "synthetic": synthetic, "load_ms": loadMS, "result": res,
			"subgroup_size": info.SubgroupSize, "subgroup_note": info.SubgroupNote}
		if profile {
			rec["profile_per_call"] = bench.ProfileRows(dev.Profile(), rule.Runs)
		}
		js1, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		out := js.Global().Get("Float32Array").New(len(res.Output))
		b := make([]byte, 4*len(res.Output))
		for i, v := range res.Output {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		js.CopyBytesToJS(js.Global().Get("Uint8Array").New(out.Get("buffer")), b)
		return obj(map[string]any{"json": string(js1), "output": out}), nil
	})
}

// fetchBytes reads a whole (small) file with fetch.
func fetchBytes(ctx context.Context, url string) ([]byte, error) {
	resp, err := awaitJS(ctx, js.Global().Call("fetch", url))
	if err != nil {
		return nil, err
	}
	if !resp.Get("ok").Truthy() {
		return nil, errors.New("harmony: fetch " + url + ": HTTP " + resp.Get("status").String())
	}
	ab, err := awaitJS(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		return nil, err
	}
	return bytesFromJS(ab), nil
}

// awaitJS waits for p (jsx.Await, no timeout: a benchmark call may take
// minutes on a CPU adapter).
func awaitJS(ctx context.Context, p js.Value) (js.Value, error) {
	v, err := jsx.Await(ctx, p, 0)
	if err != nil {
		return v, fmt.Errorf("harmony: %w", err)
	}
	return v, nil
}
