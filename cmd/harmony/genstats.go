// genstats.go: `harmony generate --stats FILE` writes what one generation
// cost as JSON: load and generation wall time, the pipeline's stage
// timings, and the device's peak GPU memory (what the real-GPU check
// records for a whole 512² Harmony image).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/pipeline"
)

type generateStats struct {
	Adapter         string  `json:"adapter"`
	Backend         string  `json:"backend"`
	Method          string  `json:"method"`
	Precision       string  `json:"precision"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	Steps           int     `json:"steps"`
	LoadSeconds     float64 `json:"load_seconds"`
	GenerateSeconds float64 `json:"generate_seconds"`
	EncodeSeconds   float64 `json:"encode_seconds"`
	DenoiseSeconds  float64 `json:"denoise_seconds"`
	DecodeSeconds   float64 `json:"decode_seconds"`
	UNetCalls       int     `json:"unet_calls"`
	UNetBatch       int     `json:"unet_batch"`
	SecondsPerCall  float64 `json:"seconds_per_unet_call"`
	PeakAllocated   uint64  `json:"peak_gpu_allocated_bytes"`
	PeakInUse       uint64  `json:"peak_gpu_in_use_bytes"`
	Dispatches      int64   `json:"dispatches"`
}

func writeGenerateStats(g *generateFlags, dev *gpu.Device, res *pipeline.Result, load, total time.Duration) error {
	info, st := dev.Info(), dev.Stats()
	s := generateStats{
		Adapter: info.Adapter, Backend: info.Backend, Method: g.opts.Get("method"), Precision: g.precision,
		Width: res.Main.Image.W, Height: res.Main.Image.H, Steps: g.opts.Steps,
		LoadSeconds: load.Seconds(), GenerateSeconds: total.Seconds(),
		EncodeSeconds: res.Timings.Encode.Seconds(), DenoiseSeconds: res.Timings.Denoise.Seconds(), DecodeSeconds: res.Timings.Decode.Seconds(),
		UNetCalls: res.Timings.Calls, UNetBatch: res.Timings.Batch,
		PeakAllocated: st.PeakAllocated, PeakInUse: st.PeakInUse, Dispatches: st.Dispatches,
	}
	if s.UNetCalls > 0 {
		s.SecondsPerCall = s.DenoiseSeconds / float64(s.UNetCalls)
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = os.WriteFile(g.stats, append(js, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("harmony generate: --stats: %v", err)
	}
	return nil
}
