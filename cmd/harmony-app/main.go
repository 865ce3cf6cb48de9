// Command harmony-app is Harmony's desktop app: a native window (Gio) over
// the same in-process engine as the CLI — load the bundled demo or a model
// folder, or download one from Hugging Face into a resumable cache, pick a
// subject photo, type what the subject should be doing, and
// get the Harmony picture, the BLIP-Diffusion baseline, the visual-only
// picture and the subject mask side by side.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"gioui.org/app"
	"gioui.org/io/system"
	"gioui.org/op"
	"gioui.org/unit"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/cmd/harmony-app/internal/ui"
	"harmony/engine/gpu"
)

func main() {
	model := flag.String("model", "", "model to load at start: a diffusers folder, a pack folder, an http(s) URL, or hf:<repository id or URL> to download through the cache (default: the remembered one, else the bundled demo)")
	cacheDir := flag.String("cache-dir", "", "folder of downloaded models (default: harmony/models in the user's cache folder)")
	demo := flag.Bool("demo", false, "start on the bundled demo model and demo photo, ignoring the remembered ones")
	photo := flag.String("photo", "", "subject photo to start with (default: the remembered one, else the demo photo)")
	outDir := flag.String("out-dir", "", "also write every finished generation's pictures into this folder (harmony.png, baseline.png, visual.png, mask.png)")
	settingsPath := flag.String("settings", "", "settings file (default: harmony/app.json in the user's config folder)")
	noSettings := flag.Bool("no-settings", false, "neither read nor write the settings file")
	defaultLimits := flag.Bool("default-limits", false, "open the GPU with WebGPU's default limits (128 MiB bindings)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "harmony-app: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	var w app.Window
	var a *state.App
	var logged state.Phase
	onChange := func() {
		w.Invalidate()
		if a != nil {
			logPhase(a.Snapshot(), &logged)
		}
	}
	a = state.New(state.Config{GPU: gpu.Options{DefaultLimits: *defaultLimits}, CacheDir: *cacheDir, OnChange: onChange})

	var settings state.Settings
	path := *settingsPath
	if !*noSettings && path == "" {
		var err error
		if path, err = state.SettingsPath(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	var startErr error
	if !*noSettings && path != "" {
		var err error
		if settings, err = state.ReadSettings(path); err != nil {
			startErr = err
		}
	}
	if *demo {
		settings.Model, settings.Photo = "", ""
	}
	if *model != "" {
		settings.Model = *model
	}
	if *photo != "" {
		settings.Photo = *photo
	}
	if err := a.Apply(settings); err != nil && startErr == nil {
		startErr = err
	}
	u := ui.New(a, settings.Model, settings.Photo)
	u.OutDir, u.Invalidate = *outDir, w.Invalidate
	u.LoadModel(settings.Model)
	if startErr != nil {
		fmt.Fprintln(os.Stderr, startErr)
	}

	// SIGINT and SIGTERM close the window the way its close button does,
	// so the settings are still written and the GPU released.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		w.Perform(system.ActionClose)
		// Gio's X11 close request waits in Xlib's output buffer until its
		// loop wakes: an idle window would never close without this.
		w.Invalidate()
	}()

	go func() {
		w.Option(app.Title("Harmony"), app.Size(unit.Dp(1100), unit.Dp(860)))
		err := run(&w, u)
		if !*noSettings && path != "" {
			if werr := state.WriteSettings(path, a.Settings(u.ModelLocation(), u.PhotoFile())); werr != nil && err == nil {
				err = werr
			}
		}
		a.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}()
	app.Main()
}

var logMu sync.Mutex

// logPhase writes each change of phase to stderr, one line each: a record
// of what the window did, and what scripted checks wait for.
func logPhase(s state.Snapshot, last *state.Phase) {
	logMu.Lock()
	defer logMu.Unlock()
	if s.Phase == *last {
		return
	}
	*last = s.Phase
	switch s.Phase {
	case state.Ready:
		fmt.Fprintf(os.Stderr, "harmony-app: ready: %s\n", s.Model)
	case state.Done:
		fmt.Fprintf(os.Stderr, "harmony-app: done in %v\n", s.Result.Elapsed.Round(time.Millisecond))
	case state.Failed:
		fmt.Fprintf(os.Stderr, "harmony-app: error: %v\n", s.Err)
	default:
		fmt.Fprintf(os.Stderr, "harmony-app: %s\n", s.Phase)
	}
}

// run is the window's event loop.
func run(w *app.Window, u *ui.UI) error {
	var ops op.Ops
	for {
		switch e := w.Event().(type) {
		case app.DestroyEvent:
			return e.Err
		case app.ViewEvent:
			watchDrops(w, e, u)
		case app.FrameEvent:
			gtx := app.NewContext(&ops, e)
			u.Layout(gtx)
			e.Frame(gtx.Ops)
		}
	}
}
