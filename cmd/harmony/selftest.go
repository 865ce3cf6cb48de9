// selftest.go: `harmony selftest` runs engine/selftest on the GPU: the
// kernel self-check, every kernel parity case on every variant the adapter
// offers, and the tiny pipeline goldens over the test-data folder, each
// timed; it prints a summary, writes the whole report as JSON with --json,
// and fails when any check fails.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/selftest"
)

func init() {
	register(&command{name: "selftest", summary: "check the kernels (every variant the adapter offers) and the tiny pipeline goldens on the GPU", run: runSelftest})
}

func runSelftest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	quick := fs.Bool("quick", false, "the tiny parts only, in their shortest form (one Harmony golden run)")
	testdata := fs.String("testdata", "", "the test-data folder (default: $HARMONY_GOLDEN, else testdata/ at the module root)")
	parts := fs.String("parts", "", "comma-separated parts (default: every part not marked full-size); -list names them")
	synth := fs.String("synth", "", "a synthetic full-size checkpoint (harmony synth) for the full-size parts")
	list := fs.Bool("list", false, "list the parts and exit")
	defaultLimits := fs.Bool("default-limits", false, "open the device with the WebGPU spec's default limits (128 MiB bindings)")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony selftest [--quick] [--testdata DIR] [--json FILE] [--parts a,b]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("harmony selftest: unexpected argument %q", fs.Arg(0))
	}
	if *list {
		for _, p := range selftest.Parts() {
			size := "tiny"
			if p.FullSize {
				size = "full-size, only when named"
			}
			fmt.Printf("%-10s %s (%s)\n", p.Name, p.Summary, size)
		}
		return nil
	}
	opt := selftest.Options{TestData: *testdata, Synth: *synth, Quick: *quick, Parts: splitList(*parts)}
	if !*quiet {
		opt.Log = func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...)
		}
	}
	// A full-size part on a CPU adapter outlasts the default wait.
	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: *defaultLimits, Timeout: time.Hour})
	if err != nil {
		return err
	}
	defer dev.Close()
	rep, err := selftest.Run(ctx, dev, opt)
	if rep == nil {
		if err != nil && strings.Contains(err.Error(), "no part") {
			return &usageError{err.Error()}
		}
		return err
	}
	rep.WriteSummary(os.Stdout)
	if *jsonOut != "" {
		js, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(*jsonOut, append(js, '\n'), 0o644)
		}
		if jerr != nil {
			return fmt.Errorf("harmony selftest: %v", jerr)
		}
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 {
		return fmt.Errorf("harmony selftest: %d of %d checks failed", rep.Failed, len(rep.Checks))
	}
	return nil
}
