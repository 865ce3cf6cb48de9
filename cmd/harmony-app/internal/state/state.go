// Package state is the desktop app's model, with no UI in it: the loaded
// model, the subject photo, the generation options, and one generation at
// a time moving through load → ready → generating → done / cancelled /
// error, driven by the real engine. The window only draws a Snapshot and
// calls these methods, so everything the app does is tested without one.
package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/imageproc"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/www"
)

// Phase is where the app is.
type Phase int

const (
	NoModel    Phase = iota // nothing loaded yet (or the last load failed)
	Loading                 // a model is loading
	Ready                   // a model is loaded; nothing generated yet
	Generating              // a generation runs
	Done                    // the last generation finished; Result holds it
	Cancelled               // the last generation was cancelled
	Failed                  // the last load or generation failed; Err says why
)

func (p Phase) String() string {
	return [...]string{"no model", "loading", "ready", "generating", "done", "cancelled", "error"}[p]
}

// Kind names one of the four result pictures.
type Kind int

const (
	Harmony  Kind = iota // the main picture (plain BLIP-Diffusion with method blipdiffusion)
	Baseline             // BLIP-Diffusion from the same latents (compare on)
	Visual               // Harmony's visual-only process
	Mask                 // the subject mask as a heat-map over the main picture
)

// Kinds lists the results in the order the window shows them.
var Kinds = []Kind{Harmony, Baseline, Visual, Mask}

func (k Kind) String() string {
	return [...]string{"Harmony", "BLIP-Diffusion", "visual only", "subject mask"}[k]
}

// File is the result's file name, the CLI's --out-dir names.
func (k Kind) File() string {
	return [...]string{"harmony.png", "baseline.png", "visual.png", "mask.png"}[k]
}

// DemoModel is the model location that means the bundled tiny demo.
const DemoModel = ""

// DemoModelName names the bundled model in the UI and in PNG parameters.
const DemoModelName = "bundled demo model"

// Photo is the subject photo.
type Photo struct {
	Name          string // file name, for messages
	Data          []byte // the file as read
	Format        string // "png", "jpeg", …
	Width, Height int    // decoded size
}

// Progress is where a load or generation is.
type Progress struct {
	Stage       string        // "loading", "encode", "denoise", "decode"
	Call, Calls int           // UNet calls done and in all
	Fraction    float64       // of the stage, in [0, 1]
	Elapsed     time.Duration // since the generation or load started
	ETA         time.Duration // estimated time left (0: unknown)

	// While loading: bytes of weights read in all and to read, of which
	// CacheBytes came from the download cache, and the download rate in
	// bytes per second (network bytes only, so a resumed download's rate
	// and ETA are not flattered by its cached part).
	BytesDone, BytesTotal, CacheBytes int64
	Rate                              float64
}

// Result is one finished generation.
type Result struct {
	Images   [4]*pipeline.Image // by Kind; nil where the run made none
	Options  pipeline.Options   // as run (the PNG parameters)
	Model    string             // the model's name
	Elapsed  time.Duration
	Warnings []string
	// Scores by Kind (score.go), when scorers were loaded; ScoreErr says
	// why scoring failed.
	Scores   []pipeline.Score
	ScoreErr error
}

// Snapshot is a copy of the state for drawing; it shares nothing that
// changes.
type Snapshot struct {
	Phase Phase
	Err   error // why the last load or generation failed (Failed)
	Model string
	// Elite: generations take the subject mask (the options' base, else
	// the loaded model's, is ELITE).
	Elite     bool
	MaskCount int       // subject pixels painted (MaskSnapshot has the mask)
	Device    *gpu.Info // the adapter, once opened
	Photo     *Photo
	Options   pipeline.Options
	FieldErrs map[string]error // options whose last Set was refused, by name
	Progress  Progress
	Preview   *pipeline.Image // the latest live preview while generating
	Result    *Result         // the last finished generation
	Cached    []CachedModel   // the download cache, as last read
	CacheErr  error           // why the cache could not be read
	Score     ScoreState      // the score line's models (score.go)
}

// Config are the app's fixed choices.
type Config struct {
	GPU       gpu.Options
	Precision loader.Precision // weights on the GPU (default f32, like the CLI)
	// CacheDir is the download cache's root ("": DefaultCacheDir).
	CacheDir string
	// PieceSize is the most bytes fetched per range request and cache
	// entry for diffusers files (0: the loader's default), which is also
	// how much an interrupted download can lose.
	PieceSize int64
	// OnChange is called (from any goroutine) after every change, for the
	// window to redraw.
	OnChange func()
}

// App is the state. Its methods are safe from any goroutine.
type App struct {
	cfg Config

	mu        sync.Mutex
	phase     Phase
	err       error
	dev       *gpu.Device
	info      *gpu.Info
	back      tensor.Backend
	model     *pipeline.Model
	modelName string
	photo     *Photo
	mask      *SubjectMask // ELITE's subject mask at the photo's size (mask.go)
	// ELITE's image encoder and mappers when apart from the model (""
	// takes them from it)
	eliteEncoder, eliteMappers string
	maskVer                    int
	opts                       pipeline.Options
	fieldErrs                  map[string]error
	progress                   Progress
	preview                    *pipeline.Image
	result                     *Result
	cancel                     context.CancelFunc
	done                       chan struct{} // closed when the running load or generation ends

	cached     []CachedModel
	cacheErr   error
	loadingDir string // the cache folder the running load downloads into

	scorers *pipeline.Scorers // the score line's models (score.go)
	score   ScoreState
}

// DefaultOptions are the app's starting options: the CLI's (the demo
// subject, the comparison picture, the model's own size) with a live
// preview every other UNet call.
func DefaultOptions() pipeline.Options {
	o := pipeline.DefaultOptions()
	o.TargetClass, o.Prompt = "dog", "swimming underwater"
	o.Compare = true
	o.Width, o.Height = 0, 0
	o.PreviewEvery = 2
	return o
}

// New returns the app with the default options and the demo photo.
func New(cfg Config) *App {
	if cfg.Precision == "" {
		cfg.Precision = loader.PrecisionF32
	}
	a := &App{cfg: cfg, opts: DefaultOptions(), fieldErrs: map[string]error{}}
	if err := a.SetPhoto("demo photo", www.DemoPhoto()); err != nil {
		panic(err) // the bundled photo decodes
	}
	a.RefreshCached() // a failure is kept in the snapshot
	return a
}

func (a *App) changed() {
	if a.cfg.OnChange != nil {
		a.cfg.OnChange()
	}
}

// Snapshot copies the state.
func (a *App) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Snapshot{
		Phase: a.phase, Err: a.err, Model: a.modelName, Device: a.info, Photo: a.photo,
		Options: a.opts, Progress: a.progress, Preview: a.preview, Result: a.result,
		FieldErrs: make(map[string]error, len(a.fieldErrs)),
		Cached:    append([]CachedModel(nil), a.cached...), CacheErr: a.cacheErr,
		Score: a.score,
	}
	for k, v := range a.fieldErrs {
		s.FieldErrs[k] = v
	}
	s.Elite = usesMask(a.model, &a.opts)
	if a.mask != nil {
		s.MaskCount = a.mask.Count
	}
	return s
}

// busy reports a running load or generation; a.mu is held.
func (a *App) busy() bool { return a.phase == Loading || a.phase == Generating || a.score.Loading }

// Load loads the model at loc (a diffusers folder, a pack folder or an
// http(s) URL of either; DemoModel for the bundled one; HubPrefix and a
// repository id or URL to download through the cache), replacing the
// loaded one, and opens the GPU first if needed. It blocks until the model
// is loaded; the window calls it from a goroutine. A cancelled load ends
// in Cancelled; what it downloaded stays in the cache for the next try.
func (a *App) Load(ctx context.Context, loc string) error {
	a.mu.Lock()
	if a.busy() {
		a.mu.Unlock()
		return errors.New("harmony-app: busy: wait for the running load or generation, or cancel it")
	}
	ctx, cancel := context.WithCancel(ctx)
	a.phase, a.err, a.cancel, a.done = Loading, nil, cancel, make(chan struct{})
	a.progress = Progress{Stage: "loading"}
	old := a.model
	a.model = nil
	done := a.done
	a.mu.Unlock()
	a.changed()
	defer close(done)
	defer cancel()
	if old != nil {
		old.Close()
	}

	m, name, err := a.load(ctx, loc)
	a.mu.Lock()
	switch {
	case err != nil && ctx.Err() != nil:
		a.phase, a.err, a.modelName = Cancelled, nil, ""
	case err != nil:
		a.phase, a.err, a.modelName = Failed, err, ""
	default:
		a.phase, a.model, a.modelName, a.result, a.preview = Ready, m, name, nil, nil
	}
	a.cancel, a.loadingDir = nil, ""
	a.mu.Unlock()
	a.changed()
	if strings.HasPrefix(loc, HubPrefix) {
		a.RefreshCached()
	}
	return err
}

// openDevice opens the GPU if it is not open yet.
func (a *App) openDevice(ctx context.Context) error {
	a.mu.Lock()
	dev := a.dev
	a.mu.Unlock()
	if dev == nil {
		d, err := gpu.Open(ctx, a.cfg.GPU)
		if err != nil {
			return err
		}
		info := d.Info()
		a.mu.Lock()
		a.dev, a.info, a.back = d, &info, kernels.New(d)
		a.mu.Unlock()
	}
	return nil
}

func (a *App) load(ctx context.Context, loc string) (*pipeline.Model, string, error) {
	if err := a.openDevice(ctx); err != nil {
		return nil, "", err
	}
	var (
		src   loader.Source
		cache loader.Cache
		dir   string
	)
	name := loc
	switch {
	case loc == DemoModel:
		src, name = loader.NewFSSource(www.DemoModel(), DemoModelName), DemoModelName
	case strings.HasPrefix(loc, HubPrefix):
		repo := strings.TrimPrefix(loc, HubPrefix)
		var err error
		if src, cache, dir, err = a.hubSource(repo); err != nil {
			return nil, "", err
		}
		name = strings.TrimSpace(repo)
		a.mu.Lock()
		a.loadingDir = dir
		a.mu.Unlock()
		a.RefreshCached() // lists the new download at once
	default:
		var err error
		if src, _, err = loader.OpenLocation(loc); err != nil {
			return nil, "", err
		}
	}
	start := time.Now()
	progress := func(p loader.Progress) {
		el := time.Since(start)
		a.mu.Lock()
		pr := &a.progress
		pr.Elapsed, pr.BytesDone, pr.BytesTotal, pr.CacheBytes = el, p.BytesDone, p.BytesTotal, p.CacheBytes
		if p.BytesTotal > 0 {
			pr.Fraction = float64(p.BytesDone) / float64(p.BytesTotal)
		}
		pr.Rate, pr.ETA = 0, 0
		if net := p.BytesDone - p.CacheBytes; net > 0 && el > 0 {
			pr.Rate = float64(net) / el.Seconds()
			pr.ETA = time.Duration(float64(p.BytesTotal-p.BytesDone) / pr.Rate * float64(time.Second))
		}
		a.mu.Unlock()
		a.changed()
	}
	lo := &loader.Options{Precision: a.cfg.Precision, Progress: progress, Cache: cache, PieceSize: a.cfg.PieceSize}
	a.mu.Lock()
	elite, enc, maps := a.opts.Base == pipeline.BaseELITE, a.eliteEncoder, a.eliteMappers
	a.mu.Unlock()
	var m *pipeline.Model
	var err error
	if elite {
		// ELITE: the Stable Diffusion model at loc, its image encoder and
		// mappers from there too unless given apart (folders or URLs).
		es := pipeline.EliteSources{Model: src}
		for _, part := range []struct {
			loc string
			dst *loader.Source
		}{{enc, &es.ImageEncoder}, {maps, &es.Mappers}} {
			if part.loc == "" {
				continue
			}
			if *part.dst, _, err = loader.OpenLocation(part.loc); err != nil {
				return nil, "", err
			}
		}
		m, _, err = pipeline.LoadELITE(ctx, es, a.back, lo)
	} else {
		m, _, err = pipeline.Load(ctx, src, a.back, lo)
	}
	if err != nil {
		return nil, "", err
	}
	if dir != "" {
		if err := markComplete(dir); err != nil {
			m.Close()
			return nil, "", err
		}
	}
	return m, name, nil
}

// SetPhoto sets the subject photo from a file's bytes; a photo that does
// not decode is refused with the decoder's message and the old one kept.
func (a *App) SetPhoto(name string, data []byte) error {
	rgb, info, err := imageproc.Decode(name, data, imageproc.DecodeOptions{})
	if err != nil {
		return err
	}
	p := &Photo{Name: name, Data: data, Format: info.Format, Width: rgb.Width, Height: rgb.Height}
	a.mu.Lock()
	a.photo = p
	a.resetMask() // a new photo, a new mask
	a.mu.Unlock()
	a.changed()
	return nil
}

// OpenPhoto reads and sets the photo at path.
func (a *App) OpenPhoto(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("harmony-app: photo: %v", err)
	}
	return a.SetPhoto(filepath.Base(path), data)
}

// Set sets one pipeline option from its string form (pipeline.Options.Set:
// the same parsing, ranges and messages as the CLI's flags). A refused
// value leaves the option as it was and is remembered against the option,
// so Generate refuses to run until it is corrected.
func (a *App) Set(name, value string) error {
	a.mu.Lock()
	err := a.opts.Set(name, value)
	if err != nil {
		a.fieldErrs[name] = err
	} else {
		delete(a.fieldErrs, name)
	}
	a.mu.Unlock()
	a.changed()
	return err
}

// Generate starts a generation with the current options and photo. It
// refuses (and enters Failed with the pipeline's message) when an option
// was refused or the options do not validate; otherwise it returns at once
// and the generation runs until done, failed or cancelled (Wait).
func (a *App) Generate() error {
	a.mu.Lock()
	if a.busy() {
		a.mu.Unlock()
		return errors.New("harmony-app: busy: wait for the running load or generation, or cancel it")
	}
	fail := func(err error) error {
		a.phase, a.err = Failed, err
		a.mu.Unlock()
		a.changed()
		return err
	}
	if a.model == nil {
		return fail(errors.New("harmony-app: no model loaded: load the demo model or a model folder first"))
	}
	for _, info := range pipeline.OptionList() { // the first refused, in the options' order
		if err := a.fieldErrs[info.Name]; err != nil {
			return fail(err)
		}
	}
	o := a.opts
	if err := o.Validate(); err != nil {
		return fail(err)
	}
	o.Image, o.ImageName = a.photo.Data, a.photo.Name
	if usesMask(a.model, &o) {
		mask, err := a.maskPNG()
		if err != nil {
			return fail(err)
		}
		o.Mask, o.MaskName = mask, "painted mask"
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.phase, a.err, a.cancel, a.done = Generating, nil, cancel, make(chan struct{})
	a.progress, a.preview = Progress{Stage: "encode"}, nil
	m, name, done := a.model, a.modelName, a.done
	a.mu.Unlock()
	a.changed()

	o.Progress = func(p pipeline.Progress) {
		a.mu.Lock()
		a.progress = Progress{Stage: p.Stage, Call: p.Call, Calls: p.Calls, Elapsed: p.Elapsed, ETA: p.ETA}
		if p.Calls > 0 {
			a.progress.Fraction = float64(p.Call) / float64(p.Calls)
		}
		if p.Preview != nil {
			a.preview = p.Preview
		}
		a.mu.Unlock()
		a.changed()
	}
	go func() {
		defer close(done)
		defer cancel()
		start := time.Now()
		res, err := pipeline.Generate(ctx, m, o)
		var r *Result
		if err == nil {
			r = &Result{Options: o, Model: name, Elapsed: time.Since(start), Warnings: res.Warnings}
			r.Images[Harmony], r.Images[Mask] = res.Main.Image, res.MaskHeat
			if res.Baseline != nil {
				r.Images[Baseline] = res.Baseline.Image
			}
			if res.Visual != nil {
				r.Images[Visual] = res.Visual.Image
			}
			a.scoreResult(ctx, &o, r)
			r.Options.Image, r.Options.Progress = nil, nil
		}
		a.mu.Lock()
		a.cancel = nil
		switch {
		case err != nil && ctx.Err() != nil:
			a.phase, a.err = Cancelled, nil
		case err != nil:
			a.phase, a.err = Failed, err
		default:
			a.phase, a.result = Done, r
		}
		a.mu.Unlock()
		a.changed()
	}()
	return nil
}

// Cancel stops the running load or generation. A generation stops at once,
// even inside a GPU read: the engine leaves the device and the model ready
// for the next one.
func (a *App) Cancel() {
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
}

// Wait blocks until the running load or generation (if any) has ended.
func (a *App) Wait() {
	a.mu.Lock()
	done := a.done
	a.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Encode returns the result picture k as PNG with its generation's
// parameters (engine/pngmeta, as the CLI writes them).
func (r *Result) Encode(k Kind) ([]byte, error) {
	im := r.Images[k]
	if im == nil {
		return nil, fmt.Errorf("harmony-app: this generation made no %s picture", k)
	}
	return pngmeta.PNG(im, &r.Options, r.Model)
}

// Save writes the last result's picture k to path as PNG.
func (a *App) Save(k Kind, path string) error {
	a.mu.Lock()
	r := a.result
	a.mu.Unlock()
	if r == nil {
		return errors.New("harmony-app: nothing generated yet")
	}
	data, err := r.Encode(k)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("harmony-app: save: %v", err)
	}
	return nil
}

// SaveAll writes every picture of the last result into dir under the
// CLI's --out-dir names, and returns the paths written.
func (a *App) SaveAll(dir string) ([]string, error) {
	a.mu.Lock()
	r := a.result
	a.mu.Unlock()
	if r == nil {
		return nil, errors.New("harmony-app: nothing generated yet")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("harmony-app: save: %v", err)
	}
	var paths []string
	for _, k := range Kinds {
		if r.Images[k] == nil {
			continue
		}
		p := filepath.Join(dir, k.File())
		if err := a.Save(k, p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// Close cancels any run, waits for it, and frees the model and the GPU.
func (a *App) Close() {
	a.Cancel()
	a.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.model != nil {
		a.model.Close()
		a.model = nil
	}
	a.scorers.Close()
	a.scorers = nil
	if a.dev != nil {
		a.dev.Close()
		a.dev = nil
	}
}
