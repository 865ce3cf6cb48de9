//go:build !js

package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"harmony/engine/gpu/gputest"
	"harmony/loader"
	"harmony/www"
)

// TestReportSchema runs every part but the full-size stages at test sizes
// and checks the JSON report's shape: the fields a reader of
// BENCHMARKS.md's commands relies on, with plausible values.
func TestReportSchema(t *testing.T) {
	dev := gputest.Default(t)
	rep, err := Run(context.Background(), dev, Options{
		Small: true, Reps: 1,
		Demo:  loader.NewFSSource(www.DemoModel(), "demo"),
		Photo: www.DemoPhoto(),
		Log:   t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %+v", rep.Failures)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	if m["schema"] != Schema {
		t.Errorf("schema %v", m["schema"])
	}
	for _, k := range []string{"started", "host", "device", "kernels", "unet", "pipeline", "load", "seconds", "load_avg"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	if _, ok := m["stages"]; ok {
		t.Error("stages reported without a synthetic pack")
	}
	positive := func(where string, obj any, keys ...string) {
		o, _ := obj.(map[string]any)
		for _, k := range keys {
			if v, ok := o[k].(float64); !ok || !(v > 0) {
				t.Errorf("%s: %s = %v", where, k, o[k])
			}
		}
	}
	ks := m["kernels"].([]any)
	if len(ks) != 9 {
		t.Errorf("%d kernel figures, want 9 (the two ceilings and seven ops)", len(ks))
	}
	for _, k := range ks {
		km := k.(map[string]any)
		if op := km["op"].(string); strings.HasPrefix(op, "group norm") || op == "storage loads" {
			positive("kernels "+km["op"].(string), k, "median_ms", "gb_per_s")
		} else {
			positive("kernels "+km["op"].(string), k, "median_ms", "gflop", "gflop_per_s")
		}
	}
	us := m["unet"].([]any)
	if len(us) != 2 || us[0].(map[string]any)["size"] != "tiny" || us[1].(map[string]any)["size"] != "medium" {
		t.Errorf("unet figures %v", us)
	}
	for _, u := range us {
		positive("unet", u, "params", "gflop", "median_ms", "gflop_per_s", "batch")
	}
	positive("pipeline", m["pipeline"], "median_ms", "unet_calls", "batch", "denoise_ms")
	ls := m["load"].([]any)
	if len(ls) != 1 {
		t.Errorf("%d load figures, want 1 (no synthetic pack)", len(ls))
	}
	positive("load", ls[0], "bytes", "median_ms", "mb_per_s")
	var sb strings.Builder
	rep.WriteTable(&sb)
	for _, want := range []string{"kernels", "UNet", "pipeline", "loading"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	t.Logf("\n%s", sb.String())

	if _, err := Run(context.Background(), dev, Options{Parts: []string{"stages"}, Demo: loader.NewFSSource(www.DemoModel(), "demo")}); err == nil {
		t.Error("the stages part ran without a synthetic pack")
	}
	if _, err := Run(context.Background(), dev, Options{Parts: []string{"kernel"}}); err == nil {
		t.Error("an unknown part was accepted")
	}
}
