// Command harmony-app is Harmony's desktop app: a native window (Gio) over
// the same in-process engine as the CLI — load the bundled demo or a model
// folder, pick a subject photo, type what the subject should be doing, and
// get the Harmony picture, the BLIP-Diffusion baseline, the visual-only
// picture and the subject mask side by side.
package main

import (
	"flag"
	"fmt"
	"os"

	"gioui.org/app"
	"gioui.org/op"
	"gioui.org/unit"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/cmd/harmony-app/internal/ui"
	"harmony/engine/gpu"
)

func main() {
	model := flag.String("model", "", "model to load at start: a diffusers folder, a pack folder or an http(s) URL (default: the remembered one, else the bundled demo)")
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
	a := state.New(state.Config{GPU: gpu.Options{DefaultLimits: *defaultLimits}, OnChange: w.Invalidate})

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

// run is the window's event loop.
func run(w *app.Window, u *ui.UI) error {
	var ops op.Ops
	for {
		switch e := w.Event().(type) {
		case app.DestroyEvent:
			return e.Err
		case app.FrameEvent:
			gtx := app.NewContext(&ops, e)
			u.Layout(gtx)
			e.Frame(gtx.Ops)
		}
	}
}
