// Package selftest proves, from the shipped binary alone, that the adapter
// at hand computes what the engine expects: the kernel self-check, every
// kernel parity case on every variant the adapter offers
// (kernels.RunParity), and the tiny pipeline's golden comparisons over the
// test-data folder (pipeline.CheckGolden*), each with its timing, as a
// report that prints a summary and marshals to JSON (`harmony selftest`).
//
// The work comes in parts (Register): the tiny ones run by default and
// with Options.Quick; a part marked FullSize (full-size goldens over a
// synthetic checkpoint) runs only when named.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"harmony/engine/gpu"
	"harmony/loader/refdata"
)

// Env is what a part runs with.
type Env struct {
	Dev      *gpu.Device
	TestData string // the test-data folder
	Synth    string // a synthetic full-size checkpoint (harmony synth), "" when none
	Quick    bool   // the tiny parts only, and their shortest form
	Log      func(format string, a ...any)
}

// Part is one kind of check.
type Part struct {
	Name     string
	Summary  string
	FullSize bool // needs full-size data and minutes: runs only when named, never with Quick
	Run      func(ctx context.Context, env *Env, add func(Check))
}

var (
	partsMu sync.Mutex
	parts   []Part
)

// Register adds a part (from an init function).
func Register(p Part) {
	partsMu.Lock()
	defer partsMu.Unlock()
	parts = append(parts, p)
}

// Parts lists the registered parts in order of registration.
func Parts() []Part {
	partsMu.Lock()
	defer partsMu.Unlock()
	return slices.Clone(parts)
}

// Check is the outcome of one check.
type Check struct {
	Part    string   `json:"part"`
	Name    string   `json:"name"`
	Variant string   `json:"variant,omitempty"`
	Seconds float64  `json:"seconds"`
	Detail  string   `json:"detail,omitempty"`
	Log     []string `json:"log,omitempty"`
	Err     error    `json:"-"`
	Error   string   `json:"error,omitempty"`
}

// Options configure Run.
type Options struct {
	TestData string   // test-data folder ("": $HARMONY_GOLDEN, else testdata/ at the module root)
	Synth    string   // synthetic full-size checkpoint for the full-size parts
	Parts    []string // parts to run (nil: every part not marked FullSize)
	Quick    bool     // tiny parts only, shortest forms
	// Log, when set, is told of progress.
	Log func(format string, a ...any)
}

// PartReport is one part's outcome.
type PartReport struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Checks  int     `json:"checks"`
	Failed  int     `json:"failed"`
}

// Report is the whole outcome.
type Report struct {
	Adapter  gpu.Info     `json:"adapter"`
	Started  time.Time    `json:"started"`
	Quick    bool         `json:"quick"`
	TestData string       `json:"testdata"`
	Seconds  float64      `json:"seconds"`
	Parts    []PartReport `json:"parts"`
	Checks   []Check      `json:"checks"`
	// PeakGPUBytes is the device's high-water mark of allocated buffer
	// bytes over the whole run.
	PeakGPUBytes uint64 `json:"peak_gpu_allocated_bytes"`
	Failed       int    `json:"failed"`
}

// Run runs the chosen parts on dev. A check that fails is recorded in the
// report (Report.Failed counts them); the error is for a run that could not
// be made at all (an unknown part, no test data where a part needs it).
func Run(ctx context.Context, dev *gpu.Device, opt Options) (*Report, error) {
	log := opt.Log
	if log == nil {
		log = func(string, ...any) {}
	}
	all := Parts()
	var run []Part
	if opt.Parts == nil {
		for _, p := range all {
			if !p.FullSize {
				run = append(run, p)
			}
		}
	} else {
		for _, name := range opt.Parts {
			i := slices.IndexFunc(all, func(p Part) bool { return p.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("selftest: no part %q (have %s)", name, strings.Join(PartNames(), ", "))
			}
			if all[i].FullSize && opt.Quick {
				return nil, fmt.Errorf("selftest: part %q is full-size, not run with quick", name)
			}
			run = append(run, all[i])
		}
	}
	env := &Env{Dev: dev, TestData: opt.TestData, Synth: opt.Synth, Quick: opt.Quick, Log: log}
	if env.TestData == "" {
		env.TestData = refdata.Find()
	}
	if env.TestData == "" || !refdata.IsDir(env.TestData) {
		return nil, fmt.Errorf("selftest: no test-data folder (%q holds no README.md; give the folder, or set HARMONY_GOLDEN)", env.TestData)
	}
	rep := &Report{Adapter: dev.Info(), Started: time.Now(), Quick: opt.Quick, TestData: env.TestData}
	for _, p := range run {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		log("%s: %s", p.Name, p.Summary)
		start := time.Now()
		pr := PartReport{Name: p.Name}
		p.Run(ctx, env, func(c Check) {
			c.Part = p.Name
			if c.Err != nil {
				c.Error = c.Err.Error()
				pr.Failed++
				log("FAIL %s %s %s: %v", p.Name, c.Variant, c.Name, c.Err)
			}
			pr.Checks++
			rep.Checks = append(rep.Checks, c)
		})
		pr.Seconds = time.Since(start).Seconds()
		rep.Parts = append(rep.Parts, pr)
		rep.Failed += pr.Failed
		log("%s: %d checks, %d failed, %.1f s", p.Name, pr.Checks, pr.Failed, pr.Seconds)
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.PeakGPUBytes = dev.Stats().PeakAllocated
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// PartNames lists the registered parts' names.
func PartNames() []string {
	var out []string
	for _, p := range Parts() {
		out = append(out, p.Name)
	}
	return out
}

// WriteSummary prints the adapter, per part and variant the checks run,
// failed and their time, and every failure.
func (r *Report) WriteSummary(w io.Writer) {
	i := r.Adapter
	fmt.Fprintf(w, "adapter %s (%s", i.Adapter, i.Backend)
	if i.Fallback {
		fmt.Fprint(w, ", software")
	}
	fmt.Fprintf(w, "); shader-f16 %v; subgroup size %d\n", i.ShaderF16, i.SubgroupSize)
	type key struct{ part, variant string }
	type agg struct {
		n, failed int
		secs      float64
	}
	groups := map[key]*agg{}
	var keys []key
	for _, c := range r.Checks {
		k := key{c.Part, c.Variant}
		if groups[k] == nil {
			groups[k] = &agg{}
			keys = append(keys, k)
		}
		g := groups[k]
		g.n++
		g.secs += c.Seconds
		if c.Err != nil || c.Error != "" {
			g.failed++
		}
	}
	order := map[string]int{}
	for n, p := range r.Parts {
		order[p.Name] = n
	}
	sort.SliceStable(keys, func(a, b int) bool { return order[keys[a].part] < order[keys[b].part] })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "part\tvariant\tchecks\tfailed\tseconds")
	for _, k := range keys {
		g := groups[k]
		v := k.variant
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\n", k.part, v, g.n, g.failed, g.secs)
	}
	tw.Flush()
	for _, c := range r.Checks {
		if c.Error != "" {
			fmt.Fprintf(w, "FAIL %s %s %s: %s\n", c.Part, c.Variant, c.Name, c.Error)
		}
	}
	verdict := "all passed"
	if r.Failed > 0 {
		verdict = fmt.Sprintf("%d FAILED", r.Failed)
	}
	fmt.Fprintf(w, "selftest: %d checks, %s, %.1f s, peak GPU memory %.1f MiB\n", len(r.Checks), verdict, r.Seconds, float64(r.PeakGPUBytes)/(1<<20))
}

// joinErrs joins the non-nil errors (nil when none).
func joinErrs(errs []error) error { return errors.Join(errs...) }
