// outputs.go: generate's output files. The folders are checked before the
// model is loaded (a run must not end in "cannot write" after minutes of
// work), and a run's outputs are committed together: every file is written
// under a temporary name and synced, and only then are they all renamed
// over their names, under a lock file in --out-dir. So an existing picture
// is never damaged, an interrupted or failed run leaves none of its files,
// and two runs into one folder never mix their pictures: the folder's set
// (harmony.png, baseline.png, visual.png, mask.png) is always one run's,
// members that run did not produce being removed.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
	"harmony/loader"
)

// harmonySet are the pictures a Harmony run writes into --out-dir.
var harmonySet = []string{"harmony.png", "baseline.png", "visual.png", "mask.png"}

// checkOutputs checks, before any work, that every output can be written:
// its folder exists or can be created, is writable, and (where the OS
// says) has room for about what the run writes.
func checkOutputs(g *generateFlags) error {
	w, h := g.opts.Width, g.opts.Height
	if w <= 0 || h <= 0 {
		w, h = 1024, 1024 // the model's size is not known yet: assume a large one
	}
	px := int64(w) * int64(h) * 3
	if g.out != "" {
		if st, err := os.Stat(g.out); err == nil && st.IsDir() {
			return fmt.Errorf("harmony generate: --out %s is a folder; give a file name (or use --out-dir)", g.out)
		}
		if err := checkFolder("--out", filepath.Dir(g.out), px+64<<10); err != nil {
			return err
		}
	}
	if g.outDir != "" {
		if err := checkFolder("--out-dir", g.outDir, 4*(px+64<<10)); err != nil {
			return err
		}
	}
	if g.dump != "" {
		if st, err := os.Stat(g.dump); err == nil && st.IsDir() {
			return fmt.Errorf("harmony generate: --dump %s is a folder; give a file name", g.dump)
		}
		if err := checkFolder("--dump", filepath.Dir(g.dump), 16*px+1<<20); err != nil {
			return err
		}
	}
	return nil
}

// checkFolder checks the folder dir given by option: it, or the nearest
// folder above it that exists (where it will be created), must be a
// writable folder with need bytes free.
func checkFolder(option, dir string, need int64) error {
	d := dir
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("harmony generate: %s %s: %s is a file, not a folder", option, dir, d)
			}
			break
		}
		// Not there (or below a file, which the loop finds next): the
		// folder will be created inside the nearest one that exists.
		up := filepath.Dir(d)
		if up == d {
			return fmt.Errorf("harmony generate: %s %s: no part of the path exists", option, dir)
		}
		d = up
	}
	f, err := os.CreateTemp(d, ".harmony-probe-*")
	if err != nil {
		return fmt.Errorf("harmony generate: %s %s: cannot write in %s: %v", option, dir, d, err)
	}
	f.Close()
	os.Remove(f.Name())
	if free, ok := freeSpace(d); ok && free < need {
		return fmt.Errorf("harmony generate: %s %s: %s has %s free, the outputs need about %s", option, dir, d, mibs(free), mibs(need))
	}
	return nil
}

func mibs(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// writeOutputs commits the run's outputs together (see the file comment).
func writeOutputs(g *generateFlags, res *pipeline.Result) error {
	var files []loader.OutFile
	add := func(path string, im *pipeline.Image) error {
		if im == nil {
			return nil
		}
		data, err := pngmeta.PNG(im, &g.opts, g.model)
		if err != nil {
			return fmt.Errorf("harmony generate: %s: %v", path, err)
		}
		files = append(files, loader.OutFile{Path: path, Data: data})
		return nil
	}
	if g.out != "" {
		if err := add(g.out, res.Main.Image); err != nil {
			return err
		}
	}
	var stale []string
	if g.outDir != "" {
		if err := os.MkdirAll(g.outDir, 0o755); err != nil {
			return fmt.Errorf("harmony generate: --out-dir: %v", err)
		}
		set := map[string]*pipeline.Image{"mask.png": res.MaskHeat}
		// The plain method's picture is named after its base model.
		plain := "blipdiffusion.png"
		if g.opts.Base == pipeline.BaseELITE {
			plain = "elite.png"
		}
		if g.opts.Method.Plain() {
			set[plain] = res.Main.Image
		} else {
			set["harmony.png"] = res.Main.Image
			if res.Baseline != nil {
				set["baseline.png"] = res.Baseline.Image
			}
			if res.Visual != nil {
				set["visual.png"] = res.Visual.Image
			}
		}
		for _, name := range append([]string{plain}, harmonySet...) {
			if im, ok := set[name]; ok && im != nil {
				if err := add(filepath.Join(g.outDir, name), im); err != nil {
					return err
				}
			} else if name != plain && set["harmony.png"] != nil {
				stale = append(stale, filepath.Join(g.outDir, name))
			}
		}
	}
	if g.dump != "" {
		data, err := pipeline.EncodeDump(res)
		if err != nil {
			return fmt.Errorf("harmony generate: --dump: %v", err)
		}
		files = append(files, loader.OutFile{Path: g.dump, Data: data})
	}
	if g.outDir != "" {
		unlock, err := lockFolder(g.outDir)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := loader.WriteFiles(files); err != nil {
		return fmt.Errorf("harmony generate: %v", err)
	}
	// A set member this run did not produce (no swap: no visual.png or
	// mask.png) would pair an older run's picture with this one's.
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("harmony generate: --out-dir: removing the older run's %s: %v", p, err)
		}
	}
	for _, f := range files {
		fmt.Fprintln(os.Stderr, "wrote", f.Path)
	}
	return nil
}

// lockName is the lock file that serializes runs committing into one
// folder. It is held only while a run's files are written and renamed
// (well under a second for pictures, seconds for a large dump), so one
// older than lockStale is a killed run's and is taken over; lockWait is
// longer, so a waiting run gets there.
const (
	lockName  = ".harmony-write.lock"
	lockStale = 30 * time.Second
	lockWait  = time.Minute
)

func lockFolder(dir string) (unlock func(), err error) {
	p := filepath.Join(dir, lockName)
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(p) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("harmony generate: --out-dir %s: %v", dir, err)
		}
		if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > lockStale {
			os.Remove(p)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("harmony generate: --out-dir %s: another run has held %s for over %v", dir, lockName, lockWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
