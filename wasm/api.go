//go:build js

// api.go implements the JS API over the engine: the device, the loaded
// model, photo checks and generation, each call on its own goroutine.
package main

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/imageproc"
	"harmony/engine/jsx"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
	"harmony/engine/tensor"
	"harmony/loader"
)

// cacheBucket is the Cache Storage bucket that keeps downloaded weights.
const cacheBucket = "harmony-models"

type api struct {
	mu     sync.Mutex
	dev    *gpu.Device
	be     *kernels.Backend
	model  *pipeline.Model
	name   string             // the model's source, for the pictures' parameters ("" for the demo)
	cancel context.CancelFunc // of the call in flight
	// scorers, once loaded, score every generation (score.go)
	scorers *pipeline.Scorers
}

func newAPI() *api { return &api{} }

func (a *api) functions() map[string]func(js.Value, []js.Value) any {
	fns := map[string]func(js.Value, []js.Value) any{
		"init":        a.jsInit,
		"loadModel":   a.jsLoadModel,
		"checkPhoto":  a.jsCheckPhoto,
		"generate":    a.jsGenerate,
		"cancel":      a.jsCancel,
		"clearCache":  a.jsClearCache,
		"loadScorers": a.jsLoadScorers,
	}
	return fns
}

// begin starts a cancellable call, cancelling any call in flight.
func (a *api) begin() (context.Context, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	return ctx, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		cancel()
		a.cancel = nil
	}
}

func (a *api) jsCancel(js.Value, []js.Value) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
	return nil
}

// device opens the GPU once.
func (a *api) device() (*kernels.Backend, error) {
	if a.dev != nil {
		if err := a.dev.Lost(); err != nil {
			return nil, err
		}
		return a.be, nil
	}
	dev, err := gpu.Open(context.Background(), gpu.Options{})
	if err != nil {
		return nil, err
	}
	a.dev, a.be = dev, kernels.New(dev)
	return a.be, nil
}

func (a *api) jsInit(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		if _, err := a.device(); err != nil {
			return nil, err
		}
		i := a.dev.Info()
		feats := make([]any, len(i.Features))
		for k, f := range i.Features {
			feats[k] = f
		}
		var warnings []any
		if !i.ShaderF16 {
			warnings = append(warnings, "This GPU offers no usable shader-f16: fp16 weights are unpacked and computed in f32 (same pictures, a little slower).")
		}
		return obj(map[string]any{
			"adapter":   i.Adapter,
			"backend":   i.Backend,
			"fallback":  i.Fallback,
			"shaderF16": i.ShaderF16,
			"subgroups": i.Subgroups,
			// lanes the subgroup kernels assume; 0: not used (subgroupNote says why)
			"subgroupSize": i.SubgroupSize,
			"subgroupNote": i.SubgroupNote,
			"features":     js.ValueOf(feats),
			"warnings":     js.ValueOf(warnings),
			"limits": obj(map[string]any{
				"maxStorageBufferBindingSize":       float64(i.Limits.MaxStorageBufferBindingSize),
				"maxBufferSize":                     float64(i.Limits.MaxBufferSize),
				"maxComputeWorkgroupStorageSize":    float64(i.Limits.MaxComputeWorkgroupStorageSize),
				"maxComputeInvocationsPerWorkgroup": float64(i.Limits.MaxComputeInvocationsPerWorkgroup),
			}),
		}), nil
	})
}

// modelSource turns the page's request into a loader source.
func modelSource(req js.Value) (loader.Source, string, error) {
	switch src := jsStr(req, "source"); src {
	case "demo", "pack":
		u := strings.TrimSpace(jsStr(req, "url"))
		if u == "" {
			return nil, "", codedf(CodeBadArgument, "harmony: give the pack's URL (its folder or manifest.json)")
		}
		u = strings.TrimSuffix(u, "manifest.json")
		fs := loader.NewFetchSource(u)
		fs.Timeouts = fetchTimeouts(req)
		return fs, u, nil
	case "hf":
		u := strings.TrimSpace(jsStr(req, "url"))
		if h, ok := loader.ParseHub(u); ok {
			// File sizes and digests from the Hub's tree API: the CDN it
			// redirects downloads to may hide Content-Range from pages.
			return loader.NewHubSource(h), h.ResolveBase(), nil
		}
		base, err := hubURL(u)
		if err != nil {
			return nil, "", err
		}
		fs := loader.NewFetchSource(base)
		fs.Timeouts = fetchTimeouts(req)
		return fs, base, nil
	case "folder":
		files := req.Get("files")
		if files.Type() != js.TypeObject || files.Length() == 0 {
			return nil, "", codedf(CodeBadModel, "harmony: pick or drop a model folder first")
		}
		s, err := newFileSource(files)
		return s, s.root, err
	default:
		return nil, "", codedf(CodeBadArgument, "harmony: unknown model source %q", src)
	}
}

// remoteModel tells whether any part of the requested model is read from
// a URL (the model, or ELITE's image encoder or mappers).
func remoteModel(req js.Value) bool {
	for _, r := range []js.Value{req, req.Get("imageEncoder"), req.Get("mappers")} {
		if r.Type() == js.TypeString && strings.TrimSpace(r.String()) != "" {
			return true // a URL or Hub repository
		}
		if r.Type() != js.TypeObject {
			continue
		}
		if s := jsStr(r, "source"); s == "pack" || s == "hf" {
			return true
		}
	}
	return false
}

// urlSource is the source at the request's key (a Hugging Face repository
// or any folder URL), nil when the key is absent or empty.
func urlSource(req js.Value, key string) (loader.Source, error) {
	u := strings.TrimSpace(jsStr(req, key))
	if u == "" {
		return nil, nil
	}
	if h, ok := loader.ParseHub(u); ok {
		return loader.NewHubSource(h), nil
	}
	base, err := hubURL(u)
	if err != nil {
		return nil, err
	}
	fs := loader.NewFetchSource(base)
	fs.Timeouts = fetchTimeouts(req)
	return fs, nil
}

// partSource is the source of one of ELITE's parts given apart from the
// model (key imageEncoder or mappers): a URL or Hub repository string, or
// {source, url, files} like the model's own (a picked folder too); nil
// when absent.
func partSource(req js.Value, key string) (loader.Source, error) {
	if r := req.Get(key); r.Type() == js.TypeObject {
		src, _, err := modelSource(r)
		return src, err
	}
	return urlSource(req, key)
}

// fetchTimeouts reads the request's timeoutMs: how long a fetch may wait
// for a response or for the next bytes of a body (absent or 0: the
// loader's defaults).
func fetchTimeouts(req js.Value) loader.Timeouts {
	v := req.Get("timeoutMs")
	if v.Type() != js.TypeNumber || v.Float() <= 0 {
		return loader.Timeouts{}
	}
	d := time.Duration(v.Float() * float64(time.Millisecond))
	return loader.Timeouts{Response: d, Idle: d}
}

// hubURL turns a Hugging Face repository id ("Salesforce/blipdiffusion") or
// URL into the base URL files are resolved under (…/resolve/main/).
func hubURL(s string) (string, error) {
	if s == "" {
		return "", codedf(CodeBadArgument, "harmony: give a repository id such as Salesforce/blipdiffusion")
	}
	if !strings.Contains(s, "://") {
		parts := strings.Split(strings.Trim(s, "/"), "/")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return "", codedf(CodeBadArgument, "harmony: %q is not a repository id (owner/name)", s)
		}
		return "https://huggingface.co/" + parts[0] + "/" + parts[1] + "/resolve/main/", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", codedf(CodeBadArgument, "harmony: %q is not an http(s) URL", s)
	}
	if strings.HasSuffix(u.Host, "huggingface.co") && !strings.Contains(u.Path, "/resolve/") {
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(parts) >= 2 {
			rev := "main"
			if len(parts) >= 4 && parts[2] == "tree" {
				rev = parts[3]
			}
			return u.Scheme + "://" + u.Host + "/" + parts[0] + "/" + parts[1] + "/resolve/" + rev + "/", nil
		}
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

func (a *api) jsLoadModel(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 1 || args[0].Type() != js.TypeObject {
			return nil, codedf(CodeBadArgument, "harmony: loadModel({source, url, files, precision, timeoutMs, base, imageEncoder, mappers}, onProgress)")
		}
		req := args[0]
		var onProgress js.Value
		if len(args) > 1 {
			onProgress = args[1]
		}
		b, err := a.device()
		if err != nil {
			return nil, err
		}
		src, name, err := modelSource(req)
		if err != nil {
			return nil, err
		}
		p := loader.Precision(jsStr(req, "precision"))
		if p == "" {
			p = loader.PrecisionF16
		}
		if p != loader.PrecisionF16 && p != loader.PrecisionF32 {
			return nil, codedf(CodeBadArgument, "harmony: precision %q is not f16 or f32", p)
		}
		ctx, done := a.begin()
		defer done()
		a.mu.Lock()
		if a.model != nil {
			a.model.Close()
			a.model = nil
		}
		a.mu.Unlock()
		opt := &loader.Options{Precision: p, Shapes: pipeline.ExpectedShapes}
		if remoteModel(req) {
			// Remote weights are kept (verified by SHA-256 on every use),
			// so the next visit loads offline; the bundled demo and local
			// folders are on hand already.
			opt.Cache = loader.NewBrowserCache(cacheBucket)
		}
		var last time.Time
		opt.Progress = func(ev loader.Progress) {
			if onProgress.Type() != js.TypeFunction || (time.Since(last) < 100*time.Millisecond && ev.BytesDone < ev.BytesTotal) {
				return
			}
			last = time.Now()
			onProgress.Invoke(obj(map[string]any{
				"done": float64(ev.BytesDone), "total": float64(ev.BytesTotal),
				"fromCache": ev.FromCache, "cached": float64(ev.CacheBytes), "file": ev.File,
			}))
		}
		var m *pipeline.Model
		var lm *loader.Model
		switch base := jsStr(req, "base"); base {
		case "", string(pipeline.BaseBLIPDiffusion):
			m, lm, err = pipeline.Load(ctx, src, b, opt)
		case string(pipeline.BaseELITE):
			es := pipeline.EliteSources{Model: src}
			if es.ImageEncoder, err = partSource(req, "imageEncoder"); err == nil {
				es.Mappers, err = partSource(req, "mappers")
			}
			if err == nil {
				m, lm, err = pipeline.LoadELITE(ctx, es, b, opt)
			}
		default:
			return nil, codedf(CodeBadArgument, "harmony: base %q is not blipdiffusion or elite", base)
		}
		if err != nil {
			return nil, err
		}
		var bytes int64
		for _, w := range lm.Weights {
			for _, n := range w.Names() {
				if t, err := w.Get(n); err == nil {
					bytes += int64(t.Numel() * t.DType.Size())
				}
			}
		}
		a.mu.Lock()
		a.model = m
		a.name = name
		if jsStr(req, "source") == "demo" {
			a.name = ""
		}
		a.mu.Unlock()
		return obj(map[string]any{"name": name, "bytes": float64(bytes), "precision": string(p), "warnings": js.ValueOf([]any{})}), nil
	})
}

func (a *api) jsCheckPhoto(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 1 {
			return nil, codedf(CodeBadArgument, "harmony: checkPhoto(bytes, name)")
		}
		data := bytesFromJS(args[0])
		name := "photo"
		if len(args) > 1 && args[1].Type() == js.TypeString {
			name = args[1].String()
		}
		m, info, err := imageproc.Decode(name, data, imageproc.DecodeOptions{})
		if err != nil {
			return nil, coded(CodeBadPhoto, err)
		}
		return obj(map[string]any{"width": m.Width, "height": m.Height, "format": info.Format}), nil
	})
}

// parseOptions maps generate's options object onto the pipeline's options.
// Its keys are the pipeline's option names in camelCase (the CLI's flags),
// and every value goes through the parser the CLI's flags use
// (pipeline.Options.Set), so both refuse the same values in the same words.
// Absent, null and empty keys keep the default.
//
// base is the loaded model's (its defaults are the starting point). The
// ELITE subject mask is the key mask (image bytes, a Uint8Array) with its
// file name in maskName; it is not a parsed option.
func parseOptions(o js.Value, base pipeline.Base) (pipeline.Options, error) {
	opts := pipeline.DefaultOptionsFor(base)
	opts.Base = base
	opts.Compare = true
	opts.Width, opts.Height = 0, 0 // the model's own size
	if o.Type() != js.TypeObject {
		return opts, nil
	}
	if mk := o.Get("mask"); mk.Type() == js.TypeObject {
		opts.Mask = bytesFromJS(mk)
		opts.MaskName = "mask"
		if n := o.Get("maskName"); n.Type() == js.TypeString && n.String() != "" {
			opts.MaskName = n.String()
		}
	}
	for _, info := range pipeline.OptionList() {
		var err error
		switch v := o.Get(info.Key); v.Type() {
		case js.TypeUndefined, js.TypeNull:
		case js.TypeNumber:
			err = opts.SetNumber(info.Name, v.Float())
		case js.TypeBoolean:
			err = opts.Set(info.Name, map[bool]string{true: "on", false: "off"}[v.Bool()])
		default:
			if s := v.String(); s != "" {
				err = opts.Set(info.Name, s)
			}
		}
		if err != nil {
			return opts, err
		}
	}
	return opts, opts.Validate()
}

// pngJS encodes a result with the generation's parameters in its text
// chunk, as the CLI and the desktop app save it.
func pngJS(im *pipeline.Image, o *pipeline.Options, model string) (js.Value, error) {
	if im == nil {
		return js.Null(), nil
	}
	b, err := pngmeta.PNG(im, o, model)
	if err != nil {
		return js.Null(), err
	}
	return bytesToJS(b), nil
}

func (a *api) jsGenerate(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 3 {
			return nil, codedf(CodeBadArgument, "harmony: generate(photoBytes, name, options, onProgress)")
		}
		a.mu.Lock()
		m, name := a.model, a.name
		a.mu.Unlock()
		if m == nil {
			return nil, codedf(CodeNoModel, "harmony: load a model first")
		}
		opts, err := parseOptions(args[2], m.Base)
		if err != nil {
			return nil, err
		}
		opts.Image = bytesFromJS(args[0])
		opts.ImageName = args[1].String()
		var onProgress js.Value
		if len(args) > 3 {
			onProgress = args[3]
		}
		if onProgress.Type() == js.TypeFunction {
			opts.Progress = func(p pipeline.Progress) {
				ev := map[string]any{"phase": p.Stage, "step": p.Call, "total": p.Calls, "eta": p.ETA.Seconds(), "elapsed": p.Elapsed.Seconds()}
				if p.Preview != nil {
					if png, err := p.Preview.PNG(); err == nil {
						ev["preview"] = bytesToJS(png)
					}
				}
				onProgress.Invoke(obj(ev))
			}
		}
		ctx, done := a.begin()
		defer done()
		res, err := pipeline.Generate(ctx, m, opts)
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		for kind, im := range map[string]*pipeline.Image{"harmony": res.Main.Image, "mask": res.MaskHeat} {
			if out[kind], err = pngJS(im, &opts, name); err != nil {
				return nil, err
			}
		}
		if opts.Method.Plain() {
			out["baseline"], out["harmony"] = out["harmony"], js.Null()
		}
		if res.Baseline != nil {
			if out["baseline"], err = pngJS(res.Baseline.Image, &opts, name); err != nil {
				return nil, err
			}
		}
		if res.Visual != nil {
			if out["visual"], err = pngJS(res.Visual.Image, &opts, name); err != nil {
				return nil, err
			}
		}
		// The pictures as the page labels them: a plain run's main
		// picture is its "baseline".
		pics := map[string]*pipeline.Image{"harmony": res.Main.Image}
		if opts.Method.Plain() {
			pics = map[string]*pipeline.Image{"baseline": res.Main.Image}
		}
		if res.Baseline != nil {
			pics["baseline"] = res.Baseline.Image
		}
		if res.Visual != nil {
			pics["visual"] = res.Visual.Image
		}
		if out["scores"], err = a.scoreJS(ctx, &opts, args[2], pics); err != nil {
			return nil, err
		}
		warnings := make([]any, len(res.Warnings))
		for i, w := range res.Warnings {
			warnings[i] = w
		}
		out["warnings"] = js.ValueOf(warnings)
		out["timings"] = obj(map[string]any{
			"encode": res.Timings.Encode.Seconds(), "denoise": res.Timings.Denoise.Seconds(),
			"decode": res.Timings.Decode.Seconds(), "total": res.Timings.Total.Seconds(),
			"calls": res.Timings.Calls, "batch": res.Timings.Batch,
		})
		return obj(out), nil
	})
}

// jsClearCache deletes the weights kept in Cache Storage and returns how
// many pieces (pack shards or file ranges) were dropped.
func (a *api) jsClearCache(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		ctx := context.Background()
		caches := js.Global().Get("caches")
		if !caches.Truthy() {
			return 0, nil
		}
		n := 0
		if c, err := jsx.Await(ctx, caches.Call("open", cacheBucket), 30*time.Second); err == nil {
			if keys, err := jsx.Await(ctx, c.Call("keys"), 30*time.Second); err == nil {
				n = keys.Length()
			}
		}
		if _, err := jsx.Await(ctx, caches.Call("delete", cacheBucket), 30*time.Second); err != nil {
			return nil, err
		}
		return n, nil
	})
}

// classify maps engine errors to the page's stable codes.
func classify(err error) string {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	var (
		lost   *gpu.DeviceLostError
		lim    *gpu.LimitError
		miss   *tensor.MissingError
		dec    *imageproc.DecodeError
		quota  *loader.QuotaError
		srcErr *loader.SourceError
		fmtErr *loader.FormatError
		tErr   *loader.TensorError
		hErr   *loader.HashError
		mErr   *pipeline.ModelError
		aErr   *pipeline.OptionError
		vErr   *gpu.ValidationError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return CodeCancelled
	case errors.Is(err, gpu.ErrNoAdapter):
		return CodeNoWebGPU
	case errors.As(err, &lost):
		return CodeDeviceLost
	case errors.As(err, &lim):
		return CodeLimits
	case errors.As(err, &quota):
		return CodeQuota
	case errors.As(err, &dec):
		return CodeBadPhoto
	case errors.As(err, &aErr):
		return CodeBadArgument
	case errors.As(err, &miss), errors.As(err, &fmtErr), errors.As(err, &tErr), errors.As(err, &hErr), errors.As(err, &mErr):
		return CodeBadModel
	case errors.As(err, &srcErr):
		if errors.Is(err, fs.ErrNotExist) {
			return CodeBadModel
		}
		return CodeNetwork
	case errors.As(err, &vErr):
		if strings.Contains(strings.ToLower(vErr.Message), "out of memory") {
			return CodeOutOfMemory
		}
	}
	return CodeInternal
}
