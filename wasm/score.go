//go:build js

// score.go: the page's optional score line: loadScorers({clip, dino,
// dinoFile}) loads CLIP and/or DINO weights (each a URL, a Hub repository
// id, or {source, url, files} like the model's own), after which every
// generate result carries scores: CLIP-T and DINO of each picture against
// the photo, computed on the device by pipeline.Scorers.
package main

import (
	"context"
	"syscall/js"

	"harmony/engine/pipeline"
	"harmony/loader"
)

func (a *api) jsLoadScorers(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 1 || args[0].Type() != js.TypeObject {
			return nil, codedf(CodeBadArgument, "harmony: loadScorers({clip, dino, dinoFile}, onProgress)")
		}
		req := args[0]
		var onProgress js.Value
		if len(args) > 1 {
			onProgress = args[1]
		}
		var ss pipeline.ScorerSources
		var err error
		if ss.CLIP, err = partSource(req, "clip"); err != nil {
			return nil, err
		}
		if ss.DINO, err = partSource(req, "dino"); err != nil {
			return nil, err
		}
		ss.DINOFile = jsStr(req, "dinoFile")
		a.mu.Lock()
		if a.cancel != nil {
			// A generation in flight may be scoring with the loaded ones.
			a.mu.Unlock()
			return nil, codedf(CodeBadArgument, "harmony: busy: wait for the running load or generation (or cancel it), then load the scorers")
		}
		old := a.scorers
		a.scorers = nil
		a.mu.Unlock()
		old.Close()
		if ss.CLIP == nil && ss.DINO == nil {
			return obj(map[string]any{"clipT": false, "dino": false}), nil // scoring off
		}
		b, err := a.device()
		if err != nil {
			return nil, err
		}
		ctx, done := a.begin()
		defer done()
		opt := &loader.Options{Precision: loader.PrecisionF32}
		if remoteScorer(req) {
			opt.Cache = loader.NewBrowserCache(cacheBucket)
		}
		opt.Progress = func(ev loader.Progress) {
			if onProgress.Type() == js.TypeFunction {
				onProgress.Invoke(obj(map[string]any{"done": float64(ev.BytesDone), "total": float64(ev.BytesTotal), "file": ev.File}))
			}
		}
		s, err := pipeline.OpenScorers(ctx, ss, b, opt)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.scorers = s
		a.mu.Unlock()
		ct, dn := s.Has()
		return obj(map[string]any{"clipT": ct, "dino": dn}), nil
	})
}

// remoteScorer tells whether a scorer is read from a URL or the Hub.
func remoteScorer(req js.Value) bool {
	for _, k := range []string{"clip", "dino"} {
		r := req.Get(k)
		if r.Type() == js.TypeString && r.String() != "" {
			return true
		}
		if r.Type() == js.TypeObject {
			if s := jsStr(r, "source"); s == "pack" || s == "hf" {
				return true
			}
		}
	}
	return false
}

// scoreJS scores a generation's pictures (by result key) when scorers are
// loaded and options.score is not false: {text, harmony: {clipT, dino, line},
// …} or {text, error}; null otherwise.
func (a *api) scoreJS(ctx context.Context, o *pipeline.Options, jsOpts js.Value, pics map[string]*pipeline.Image) (js.Value, error) {
	a.mu.Lock()
	s := a.scorers
	a.mu.Unlock()
	if s == nil {
		return js.Null(), nil
	}
	if jsOpts.Type() == js.TypeObject {
		if v := jsOpts.Get("score"); v.Type() == js.TypeBoolean && !v.Bool() {
			return js.Null(), nil
		}
	}
	var keys []string
	var list []*pipeline.Image
	for k, im := range pics {
		if im != nil {
			keys, list = append(keys, k), append(list, im)
		}
	}
	text := pipeline.ScoreText(o)
	sc, err := s.Score(ctx, o.Image, o.ImageName, text, list)
	if err != nil {
		// The pictures stand without their scores.
		return obj(map[string]any{"text": text, "error": err.Error()}), nil
	}
	out := map[string]any{"text": text}
	for i, k := range keys {
		e := map[string]any{"line": sc[i].String()}
		if sc[i].HasCLIPT {
			e["clipT"] = sc[i].CLIPT
		}
		if sc[i].HasDINO {
			e["dino"] = sc[i].DINO
		}
		out[k] = obj(e)
	}
	return obj(out), nil
}
