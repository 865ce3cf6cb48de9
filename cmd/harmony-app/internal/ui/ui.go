// Package ui is the desktop app's window contents, drawn with Gio from a
// state.Snapshot each frame: the model and photo rows, the prompt and the
// main knobs, an advanced panel generated from pipeline.OptionList (so no
// option is listed twice), Generate/Cancel with progress and a live
// preview, the four results with Save buttons, the adapter line and error
// banners carrying the engine's own messages. It is a plain widget, so the
// window (package main) and the headless rendering tests lay out the same
// thing.
package ui

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gioui.org/font/gofont"
	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/engine/gpu"
	"harmony/engine/pipeline"
)

// main are the options with a place of their own in the form; the
// advanced panel lists every other one.
var main = []string{"class", "prompt", "negative", "steps", "guidance", "seed", "width", "height", "method"}

// field is one option's input: an editor, or a switch for on/off options.
type field struct {
	info   pipeline.OptionInfo
	editor widget.Editor
	toggle widget.Bool
}

// Drawn records what the last frame showed, for tests to check the
// structure without reading pixels.
type Drawn struct {
	Banner   string   // the error banner's text ("" when none)
	Results  int      // result pictures shown
	Captions []string // their captions
	Preview  bool     // the live preview was shown
	Progress string   // the progress line
	Adapter  string   // the adapter line
	Advanced []string // the options the advanced panel listed
	Cached   []string // the cached-models panel's lines (name — size)
	Scores   string   // the score line under the results ("" when none)
	Deletes  int      // delete buttons in that panel
	Mask     string   // the mask editor's status line ("" when not shown)
}

// UI is the window's contents.
type UI struct {
	App *state.App
	// OutDir, when set, receives every finished generation's pictures
	// under the CLI's --out-dir names (scripted checks).
	OutDir string
	// Invalidate asks the window for a new frame.
	Invalidate func()

	th        *material.Theme
	list      widget.List
	fields    map[string]*field
	order     []string // advanced options in OptionList order
	modelPath widget.Editor
	hubRepo   widget.Editor
	hubGet    widget.Clickable
	hubCancel widget.Clickable
	rows      map[string]*cachedRow // cached models' buttons by folder
	photoPath widget.Editor
	saveDir   widget.Editor
	demoModel, loadModel, openPhoto, demoPhoto,
	generate, cancel, dice, advanced widget.Clickable
	harmony   widget.Bool
	save      [4]widget.Clickable
	mask      maskEditor    // ELITE's subject mask (mask.go)
	base      widget.Enum   // the base model: "blipdiffusion" or "elite"
	encPath   widget.Editor // ELITE's image encoder, when apart from the model
	mapPath   widget.Editor // ELITE's mappers, when apart from the model
	score     scoreFields   // the score line's models (score.go)
	showAdv   bool
	note      string // the last local message (saved…, photo errors)
	noteErr   bool
	images    map[*pipeline.Image]paint.ImageOp
	photoOp   *paint.ImageOp
	photoOf   *state.Photo
	lastDone  *state.Result
	modelLoc  string
	photoFile string
	keys      int // tag of the window-wide key handler

	drop dropBox // files dropped from the desktop (drop.go)

	Drawn Drawn
}

// New builds the form from the app's current options.
func New(a *state.App, modelLoc, photoFile string) *UI {
	th := material.NewTheme()
	th.Shaper = text.NewShaper(text.NoSystemFonts(), text.WithCollection(gofont.Collection()))
	u := &UI{App: a, th: th, fields: map[string]*field{}, images: map[*pipeline.Image]paint.ImageOp{},
		modelLoc: modelLoc, photoFile: photoFile}
	u.list.Axis = layout.Vertical
	u.mask.init()
	u.base.Value = string(pipeline.BaseBLIPDiffusion)
	if a.Snapshot().Options.Base == pipeline.BaseELITE {
		u.base.Value = string(pipeline.BaseELITE)
	}
	u.encPath.SingleLine, u.mapPath.SingleLine = true, true
	u.modelPath.SingleLine, u.modelPath.Submit = true, true
	u.modelPath.SetText(modelLoc)
	u.hubRepo.SingleLine, u.hubRepo.Submit = true, true
	if repo, ok := strings.CutPrefix(modelLoc, state.HubPrefix); ok {
		u.hubRepo.SetText(repo)
	}
	u.photoPath.SingleLine, u.photoPath.Submit = true, true
	u.photoPath.SetText(photoFile)
	u.saveDir.SingleLine = true
	u.saveDir.SetText(".")
	s := a.Snapshot()
	isMain := map[string]bool{}
	for _, n := range main {
		isMain[n] = true
	}
	for _, info := range pipeline.OptionList() {
		f := &field{info: info}
		f.editor.SingleLine, f.editor.Submit = true, true
		v := s.Options.Get(info.Name)
		f.editor.SetText(v)
		if info.OnOff {
			f.toggle.Value, _ = pipeline.ParseOnOff(v)
		}
		u.fields[info.Name] = f
		if !isMain[info.Name] {
			u.order = append(u.order, info.Name)
		}
	}
	u.harmony.Value = s.Options.Method != pipeline.MethodBLIPDiffusion
	return u
}

// syncFields shows the options' current values in their fields (after
// the base model's defaults replaced some).
func (u *UI) syncFields() {
	s := u.App.Snapshot()
	for name, f := range u.fields {
		v := s.Options.Get(name)
		if f.info.OnOff {
			f.toggle.Value, _ = pipeline.ParseOnOff(v)
		} else if f.editor.Text() != v {
			f.editor.SetText(v)
		}
	}
}

// ModelLocation and PhotoFile are what the settings remember.
func (u *UI) ModelLocation() string { return u.modelLoc }
func (u *UI) PhotoFile() string     { return u.photoFile }

func (u *UI) invalidate() {
	if u.Invalidate != nil {
		u.Invalidate()
	}
}

// LoadModel loads loc in the background.
func (u *UI) LoadModel(loc string) {
	u.modelLoc = loc
	u.modelPath.SetText(loc)
	go u.App.Load(context.Background(), loc) // its error lands in the snapshot
}

// Generate starts a generation (Enter, the button).
func (u *UI) Generate() {
	u.note = ""
	u.App.Generate() // a refusal lands in the snapshot's banner
}

var (
	red    = color.NRGBA{R: 0xb0, G: 0x20, B: 0x20, A: 0xff}
	banner = color.NRGBA{R: 0xfb, G: 0xe3, B: 0xe3, A: 0xff}
	grey   = color.NRGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xff}
)

// update handles the input of the frame before drawing it.
func (u *UI) update(gtx layout.Context, s state.Snapshot) {
	// Window-wide keys: Enter generates, Esc cancels. Editors submit on
	// Enter themselves (below), so this sees Enter only outside them.
	for {
		ev, ok := gtx.Event(key.Filter{Name: key.NameReturn}, key.Filter{Name: key.NameEnter}, key.Filter{Name: key.NameEscape})
		if !ok {
			break
		}
		if k, ok := ev.(key.Event); ok && k.State == key.Press {
			if k.Name == key.NameEscape {
				u.App.Cancel()
			} else if s.Phase != state.Generating && s.Phase != state.Loading {
				u.Generate()
			}
		}
	}
	idle := s.Phase != state.Loading && s.Phase != state.Generating
	if u.demoModel.Clicked(enabledIf(gtx, idle)) {
		u.LoadModel(state.DemoModel)
	}
	u.updateCache(gtx, s)
	u.updateMask(gtx)
	u.updateScore(gtx, s)
	if u.base.Update(gtx) {
		if err := u.App.SetBase(pipeline.Base(u.base.Value)); err != nil {
			u.note, u.noteErr = err.Error(), true
		}
		u.syncFields()
	}
	for _, ed := range []*widget.Editor{&u.encPath, &u.mapPath} {
		for {
			ev, ok := ed.Update(gtx)
			if !ok {
				break
			}
			if _, ok := ev.(widget.ChangeEvent); ok {
				u.App.SetEliteParts(u.encPath.Text(), u.mapPath.Text())
			}
		}
	}
	submitted := func(ed *widget.Editor) bool {
		hit := false
		for {
			ev, ok := ed.Update(gtx)
			if !ok {
				return hit
			}
			if _, ok := ev.(widget.SubmitEvent); ok {
				hit = true
			}
		}
	}
	if submitted(&u.modelPath) || u.loadModel.Clicked(enabledIf(gtx, idle)) {
		if loc := strings.TrimSpace(u.modelPath.Text()); loc != "" {
			u.LoadModel(loc)
		} else {
			u.LoadModel(state.DemoModel)
		}
	}
	if submitted(&u.photoPath) || u.openPhoto.Clicked(gtx) {
		p := strings.TrimSpace(u.photoPath.Text())
		if err := u.App.OpenPhoto(p); err != nil {
			u.note, u.noteErr = err.Error(), true
		} else {
			u.photoFile, u.note = p, ""
		}
	}
	u.takeDrop()
	if u.demoPhoto.Clicked(gtx) {
		u.App.SetPhoto("demo photo", demoPhoto())
		u.photoFile, u.note = "", ""
		u.photoPath.SetText("")
	}
	submitted(&u.saveDir)
	if u.dice.Clicked(gtx) {
		seed := strconv.FormatUint(rand.Uint64(), 10)
		u.fields["seed"].editor.SetText(seed)
		u.App.Set("seed", seed)
	}
	if u.harmony.Update(gtx) {
		m := pipeline.MethodBLIPDiffusion
		if u.harmony.Value {
			m = pipeline.MethodHarmony
		}
		u.App.Set("method", string(m))
		u.fields["method"].editor.SetText(string(m))
	}
	if u.advanced.Clicked(gtx) {
		u.showAdv = !u.showAdv
	}
	for _, f := range u.fields {
		if f.info.OnOff {
			if f.toggle.Update(gtx) {
				u.App.Set(f.info.Name, map[bool]string{true: "on", false: "off"}[f.toggle.Value])
			}
			continue
		}
		for {
			ev, ok := f.editor.Update(gtx)
			if !ok {
				break
			}
			switch ev.(type) {
			case widget.ChangeEvent:
				u.App.Set(f.info.Name, f.editor.Text())
				if f.info.Name == "method" {
					u.harmony.Value = strings.TrimSpace(f.editor.Text()) != string(pipeline.MethodBLIPDiffusion)
				}
			case widget.SubmitEvent:
				if s.Phase != state.Generating && s.Phase != state.Loading {
					u.Generate()
				}
			}
		}
	}
	if u.generate.Clicked(enabledIf(gtx, idle && s.Model != "")) {
		u.Generate()
	}
	if u.cancel.Clicked(enabledIf(gtx, !idle)) {
		u.App.Cancel()
	}
	for i := range u.save {
		if u.save[i].Clicked(gtx) {
			k := state.Kinds[i]
			p := filepath.Join(strings.TrimSpace(u.saveDir.Text()), k.File())
			if err := u.App.Save(k, p); err != nil {
				u.note, u.noteErr = err.Error(), true
			} else {
				u.note, u.noteErr = "saved "+p, false
			}
		}
	}
	if s.Phase == state.Done && s.Result != u.lastDone {
		u.lastDone = s.Result
		if u.OutDir != "" {
			if _, err := u.App.SaveAll(u.OutDir); err != nil {
				u.note, u.noteErr = err.Error(), true
			}
		}
	}
}

// Layout draws one frame.
func (u *UI) Layout(gtx layout.Context) layout.Dimensions {
	s := u.App.Snapshot()
	event.Op(gtx.Ops, &u.keys)
	u.update(gtx, s)
	s = u.App.Snapshot()
	u.Drawn = Drawn{Adapter: adapterLine(s.Device)}
	paint.Fill(gtx.Ops, color.NRGBA{R: 0xfa, G: 0xfa, B: 0xfa, A: 0xff})
	rows := []layout.Widget{
		u.header(s),
		u.bannerRow(s),
		u.modelRow(s),
		u.hubRow(s),
		u.photoRow(s),
		u.textFields(s),
		u.knobRow(s),
		u.actionRow(s),
		u.previewRow(s),
		u.resultsRow(s),
		u.scoreLine(s),
		u.advancedPanel(s),
		u.scoreRow(s),
		// Last, so that its height (one line a cached model) never moves
		// the form.
		u.cachePanel(s),
	}
	return material.List(u.th, &u.list).Layout(gtx, len(rows), func(gtx layout.Context, i int) layout.Dimensions {
		return layout.UniformInset(unit.Dp(8)).Layout(gtx, rows[i])
	})
}

func (u *UI) label(size unit.Sp, txt string) material.LabelStyle {
	return material.Label(u.th, size, txt)
}

func (u *UI) header(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(material.H5(u.th, "Harmony — zero-shot subject customization").Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				l := u.label(12, u.Drawn.Adapter)
				l.Color = grey
				return l.Layout(gtx)
			}),
		)
	}
}

// adapterLine is the GPU in one line, the facts `harmony info` leads with.
func adapterLine(i *gpu.Info) string {
	if i == nil {
		return "GPU: not opened yet (loading a model opens it)"
	}
	f16 := "f16 arithmetic"
	if !i.ShaderF16 {
		f16 = "no f16 (f32 arithmetic)"
	}
	soft := ""
	if i.Fallback {
		soft = ", software adapter"
	}
	return fmt.Sprintf("GPU: %s (%s%s), %s, bindings up to %d MiB, buffers up to %d MiB",
		i.Adapter, i.Backend, soft, f16, i.Limits.MaxStorageBufferBindingSize>>20, i.Limits.MaxBufferSize>>20)
}

// bannerText is the error to show: a failed load or generation, else a
// refused option, else the last local error.
func (u *UI) bannerText(s state.Snapshot) string {
	if s.Phase == state.Failed && s.Err != nil {
		return s.Err.Error()
	}
	for _, info := range pipeline.OptionList() {
		if err := s.FieldErrs[info.Name]; err != nil {
			return err.Error()
		}
	}
	if u.noteErr && u.note != "" {
		return u.note
	}
	return ""
}

func (u *UI) bannerRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		msg := u.bannerText(s)
		u.Drawn.Banner = msg
		if msg == "" {
			if u.note != "" {
				l := u.label(13, u.note)
				l.Color = grey
				return l.Layout(gtx)
			}
			return layout.Dimensions{}
		}
		return layout.Background{}.Layout(gtx,
			func(gtx layout.Context) layout.Dimensions {
				defer clip.Rect{Max: gtx.Constraints.Min}.Push(gtx.Ops).Pop()
				paint.Fill(gtx.Ops, banner)
				return layout.Dimensions{Size: gtx.Constraints.Min}
			},
			func(gtx layout.Context) layout.Dimensions {
				return layout.UniformInset(unit.Dp(8)).Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					l := u.label(14, msg)
					l.Color = red
					return l.Layout(gtx)
				})
			})
	}
}

func (u *UI) editor(ed *widget.Editor, hint string, width unit.Dp) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		if width > 0 {
			gtx.Constraints.Min.X = gtx.Dp(width)
			gtx.Constraints.Max.X = gtx.Dp(width)
		}
		return widget.Border{Color: color.NRGBA{A: 0x60}, Width: unit.Dp(1), CornerRadius: unit.Dp(3)}.Layout(gtx,
			func(gtx layout.Context) layout.Dimensions {
				return layout.UniformInset(unit.Dp(5)).Layout(gtx, material.Editor(u.th, ed, hint).Layout)
			})
	}
}

func (u *UI) button(c *widget.Clickable, txt string, enabled bool) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		b := material.Button(u.th, c, txt)
		if !enabled {
			gtx = gtx.Disabled()
			b.Background = color.NRGBA{R: 0xa0, G: 0xa0, B: 0xa0, A: 0xff}
		}
		return b.Layout(gtx)
	}
}

// enabledIf is gtx, or gtx disabled when on is false. A Clickable that
// reads its events with an enabled context takes the keyboard focus in
// that frame, so a button drawn disabled reads them disabled too: Tab
// skips it, and it takes no click.
func enabledIf(gtx layout.Context, on bool) layout.Context {
	if on {
		return gtx
	}
	return gtx.Disabled()
}

func gap(w unit.Dp) layout.FlexChild { return layout.Rigid(layout.Spacer{Width: w, Height: w}.Layout) }

func (u *UI) modelRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		idle := s.Phase != state.Loading && s.Phase != state.Generating
		status := "model: " + s.Model
		switch {
		case s.Phase == state.Loading && s.Progress.BytesTotal > 0:
			status = downloadLine(s.Progress)
		case s.Phase == state.Loading:
			status = fmt.Sprintf("loading model… %.0f%%", 100*s.Progress.Fraction)
		case s.Model == "":
			status = "no model loaded"
		}
		parts := func(gtx layout.Context) layout.Dimensions {
			if !s.Elite {
				return layout.Dimensions{}
			}
			gtx.Constraints.Min.Y = 0
			return layout.Inset{Bottom: 4}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, u.editor(&u.encPath, "ELITE image encoder folder or URL (empty: image_encoder/ of the model)", 0)), gap(8),
					layout.Flexed(1, u.editor(&u.mapPath, "ELITE mappers folder or URL (empty: the model's)", 0)),
				)
			})
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Rigid(u.label(13, "base").Layout), gap(4),
					layout.Rigid(material.RadioButton(u.th, &u.base, string(pipeline.BaseBLIPDiffusion), "BLIP-Diffusion").Layout), gap(4),
					layout.Rigid(material.RadioButton(u.th, &u.base, string(pipeline.BaseELITE), "ELITE").Layout), gap(12),
					layout.Rigid(u.button(&u.demoModel, "Demo model", idle)), gap(8),
					layout.Flexed(1, u.editor(&u.modelPath, "model folder, pack or URL", 0)), gap(8),
					layout.Rigid(u.button(&u.loadModel, "Load", idle)),
				)
			}),
			gap(4),
			layout.Rigid(parts),
			layout.Rigid(u.label(13, status).Layout),
		)
	}
}

// photoRow is the photo and its file row, and with ELITE the mask
// editor's tools under them.
func (u *UI) photoRow(s state.Snapshot) layout.Widget {
	row := u.photoFileRow(s)
	if !s.Elite {
		return row
	}
	return func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, layout.Rigid(row), gap(6), layout.Rigid(u.maskTools(s)))
	}
}

func (u *UI) photoFileRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				if s.Elite {
					u.photoImage(s.Photo)
					return u.maskCanvas(gtx, s.Photo, 320)
				}
				return u.photoThumb(gtx, s.Photo)
			}), gap(8),
			layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
				desc := "no photo"
				if p := s.Photo; p != nil {
					desc = fmt.Sprintf("photo: %s — %d×%d %s", p.Name, p.Width, p.Height, p.Format)
				}
				return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
					layout.Rigid(u.label(13, desc).Layout), gap(4),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
							layout.Flexed(1, u.editor(&u.photoPath, "photo file (PNG, JPEG, WebP, GIF, BMP, TIFF)", 0)), gap(8),
							layout.Rigid(u.button(&u.openPhoto, "Open", true)), gap(8),
							layout.Rigid(u.button(&u.demoPhoto, "Demo photo", true)),
						)
					}),
				)
			}),
		)
	}
}

func (u *UI) photoThumb(gtx layout.Context, p *state.Photo) layout.Dimensions {
	u.photoImage(p)
	size := gtx.Dp(96)
	gtx.Constraints = layout.Exact(image.Pt(size, size))
	if u.photoOp == nil {
		return layout.Dimensions{Size: gtx.Constraints.Min}
	}
	return widget.Image{Src: *u.photoOp, Fit: widget.Contain, Scale: 1}.Layout(gtx)
}

// photoImage converts the photo for drawing when it changed.
func (u *UI) photoImage(p *state.Photo) {
	if p != u.photoOf {
		u.photoOf, u.photoOp = p, nil
		if p != nil {
			if m, err := decodeAny(p.Data); err == nil {
				op := paint.NewImageOp(m)
				u.photoOp = &op
			}
		}
	}
}

// labelled lays out a caption over a widget.
func (u *UI) labelled(name string, w layout.Widget) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(u.label(12, name).Layout), gap(2), layout.Rigid(w))
	}
}

func (u *UI) optionEditor(name string, width unit.Dp) layout.Widget {
	f := u.fields[name]
	return u.labelled(name, u.editor(&f.editor, f.info.Name, width))
}

func (u *UI) textFields(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(u.optionEditor("class", 0)), gap(6),
			layout.Rigid(u.optionEditor("prompt", 0)), gap(6),
			layout.Rigid(u.optionEditor("negative", 0)),
		)
	}
}

func (u *UI) knobRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Alignment: layout.End}.Layout(gtx,
			layout.Rigid(u.optionEditor("steps", 70)), gap(8),
			layout.Rigid(u.optionEditor("guidance", 70)), gap(8),
			layout.Rigid(u.optionEditor("seed", 190)), gap(4),
			layout.Rigid(u.button(&u.dice, "Dice", true)), gap(8),
			layout.Rigid(u.optionEditor("width", 70)), gap(8),
			layout.Rigid(u.optionEditor("height", 70)), gap(12),
			layout.Rigid(material.Switch(u.th, &u.harmony, "Harmony").Layout), gap(4),
			layout.Rigid(u.label(13, "Harmony").Layout), gap(12),
			layout.Rigid(u.button(&u.advanced, map[bool]string{false: "Advanced +", true: "Advanced −"}[u.showAdv], true)),
		)
	}
}

func (u *UI) advancedPanel(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		if !u.showAdv {
			return layout.Dimensions{}
		}
		var rows []layout.FlexChild
		for _, name := range u.order {
			u.Drawn.Advanced = append(u.Drawn.Advanced, name)
			f := u.fields[name]
			var in layout.Widget
			if f.info.OnOff {
				in = material.Switch(u.th, &f.toggle, name).Layout
			} else {
				in = u.editor(&f.editor, name, 220)
			}
			usage := u.label(11, f.info.Usage)
			usage.Color = grey
			rows = append(rows, layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						gtx.Constraints.Min.X = gtx.Dp(170)
						return u.label(13, name).Layout(gtx)
					}),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						gtx.Constraints.Min.X = gtx.Dp(230)
						return in(gtx)
					}), gap(8),
					layout.Flexed(1, usage.Layout),
				)
			}), gap(4))
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
	}
}

// progressLine says where a run is: stage, UNet call, time left.
func progressLine(s state.Snapshot) string {
	p := s.Progress
	switch s.Phase {
	case state.Generating:
		if p.Stage == "denoise" {
			line := fmt.Sprintf("denoising: UNet call %d/%d", p.Call, p.Calls)
			if p.ETA > 0 {
				line += fmt.Sprintf(", about %v left", p.ETA.Round(time.Second))
			}
			return line
		}
		return p.Stage + "…"
	case state.Done:
		return fmt.Sprintf("done in %v", s.Result.Elapsed.Round(time.Millisecond))
	case state.Cancelled:
		if p.Stage == "loading" {
			return "load cancelled: what was downloaded stays in the cache, and loading again resumes it"
		}
		return fmt.Sprintf("cancelled at UNet call %d/%d", p.Call, p.Calls)
	case state.Ready:
		return "ready: press Generate or Enter"
	}
	return s.Phase.String()
}

func (u *UI) actionRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		busy := s.Phase == state.Generating || s.Phase == state.Loading
		line := progressLine(s)
		u.Drawn.Progress = line
		return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
			layout.Rigid(u.button(&u.generate, "Generate", !busy && s.Model != "")), gap(8),
			layout.Rigid(u.button(&u.cancel, "Cancel", busy)), gap(12),
			layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
				frac := float32(s.Progress.Fraction)
				if s.Phase == state.Done {
					frac = 1
				}
				return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
					layout.Rigid(material.ProgressBar(u.th, frac).Layout), gap(4),
					layout.Rigid(u.label(13, line).Layout))
			}),
		)
	}
}

// imageOp converts a picture once and keeps the op while it is shown.
func (u *UI) imageOp(im *pipeline.Image) paint.ImageOp {
	if op, ok := u.images[im]; ok {
		return op
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, im.W, im.H))
	for i := 0; i < im.W*im.H; i++ {
		copy(rgba.Pix[4*i:4*i+3], im.Pix[3*i:3*i+3])
		rgba.Pix[4*i+3] = 255
	}
	op := paint.NewImageOp(rgba)
	op.Filter = paint.FilterNearest // small pictures stay sharp when scaled up
	if len(u.images) > 16 {
		clear(u.images) // previews come and go
	}
	u.images[im] = op
	return op
}

// picture lays out im in a size×size box (aspect kept).
func (u *UI) picture(gtx layout.Context, im *pipeline.Image, size int) layout.Dimensions {
	gtx.Constraints = layout.Exact(image.Pt(size, size))
	defer clip.Rect{Max: gtx.Constraints.Max}.Push(gtx.Ops).Pop()
	paint.Fill(gtx.Ops, color.NRGBA{R: 0xe8, G: 0xe8, B: 0xe8, A: 0xff})
	if im == nil {
		return layout.Dimensions{Size: gtx.Constraints.Max}
	}
	scale := float32(size) / float32(max(im.W, im.H)) / gtx.Metric.PxPerDp
	layout.Center.Layout(gtx, widget.Image{Src: u.imageOp(im), Fit: widget.Unscaled, Scale: scale}.Layout)
	return layout.Dimensions{Size: gtx.Constraints.Max}
}

func (u *UI) previewRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		if s.Phase != state.Generating || s.Preview == nil {
			return layout.Dimensions{}
		}
		u.Drawn.Preview = true
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(u.label(13, "live preview (latents)").Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions { return u.picture(gtx, s.Preview, gtx.Dp(160)) }))
	}
}

func (u *UI) resultsRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		r := s.Result
		if r == nil {
			return layout.Dimensions{}
		}
		var cols []layout.FlexChild
		size := min((gtx.Constraints.Max.X-gtx.Dp(8)*3)/4, gtx.Dp(200))
		for i, k := range state.Kinds {
			im := r.Images[k]
			if im == nil {
				continue
			}
			u.Drawn.Results++
			caption := k.String()
			if k == state.Harmony && r.Options.Method == pipeline.MethodBLIPDiffusion {
				caption = "BLIP-Diffusion"
			}
			u.Drawn.Captions = append(u.Drawn.Captions, caption)
			cols = append(cols, layout.Flexed(1, func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Axis: layout.Vertical, Alignment: layout.Middle}.Layout(gtx,
					layout.Rigid(func(gtx layout.Context) layout.Dimensions { return u.picture(gtx, im, size) }),
					gap(4),
					layout.Rigid(u.label(13, caption).Layout), gap(4),
					layout.Rigid(u.button(&u.save[i], "Save", true)),
				)
			}))
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Rigid(u.label(13, fmt.Sprintf("seed %d — save into folder:", r.Options.Seed)).Layout), gap(8),
					layout.Flexed(1, u.editor(&u.saveDir, "folder", 0)))
			}), gap(6),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Spacing: layout.SpaceBetween}.Layout(gtx, cols...)
			}),
		)
	}
}
