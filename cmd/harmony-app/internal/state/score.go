// score.go: the optional score line: once the user has loaded CLIP and/or
// DINO weights, every finished generation's pictures are scored against
// the photo on the device (pipeline.Scorers: CLIP-T against the prompt,
// DINO against the photo). Off until weights are loaded.
package state

import (
	"context"
	"errors"
	"strings"

	"harmony/engine/pipeline"
	"harmony/loader"
)

// ScoreState is what the score line has loaded.
type ScoreState struct {
	CLIP, DINO string // the loaded locations ("" none)
	Loading    bool
	Err        error // why the last scorer load failed
}

// On tells whether generations are scored.
func (s ScoreState) On() bool { return s.CLIP != "" || s.DINO != "" }

// scoreSource opens a scorer location: a folder, a URL, a DINO .pth file,
// or HubPrefix and a repository id (downloaded through the cache).
func (a *App) scoreSource(loc string) (src loader.Source, file, dir string, cache loader.Cache, err error) {
	if strings.HasPrefix(loc, HubPrefix) {
		src, cache, dir, err = a.hubSource(strings.TrimPrefix(loc, HubPrefix))
		return src, "", dir, cache, err
	}
	src, file, err = loader.OpenLocation(loc)
	return src, file, "", nil, err
}

// LoadScorers loads the CLIP weights at clip and the DINO weights at dino
// (either may be ""; both "" turns scoring off), replacing the loaded
// ones. It blocks like Load and refuses while a load or generation runs.
func (a *App) LoadScorers(ctx context.Context, clip, dino string) error {
	clip, dino = strings.TrimSpace(clip), strings.TrimSpace(dino)
	a.mu.Lock()
	if a.busy() {
		a.mu.Unlock()
		return errors.New("harmony-app: busy: wait for the running load or generation, or cancel it")
	}
	old := a.scorers
	a.scorers, a.score = nil, ScoreState{}
	if clip == "" && dino == "" {
		a.mu.Unlock()
		old.Close()
		a.changed()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	a.score.Loading, a.cancel, a.done = true, cancel, make(chan struct{})
	done := a.done
	a.mu.Unlock()
	a.changed()
	defer close(done)
	defer cancel()
	old.Close()

	s, err := a.loadScorers(ctx, clip, dino)
	a.mu.Lock()
	a.score.Loading, a.cancel = false, nil
	if err != nil {
		a.score.Err = err
	} else {
		a.scorers, a.score.CLIP, a.score.DINO = s, clip, dino
	}
	a.mu.Unlock()
	a.changed()
	if strings.HasPrefix(clip, HubPrefix) || strings.HasPrefix(dino, HubPrefix) {
		a.RefreshCached()
	}
	return err
}

func (a *App) loadScorers(ctx context.Context, clip, dino string) (*pipeline.Scorers, error) {
	if err := a.openDevice(ctx); err != nil {
		return nil, err
	}
	var ss pipeline.ScorerSources
	var caches [2]loader.Cache
	var dirs []string
	for i, loc := range []string{clip, dino} {
		if loc == "" {
			continue
		}
		src, file, dir, cache, err := a.scoreSource(loc)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if file != "" {
				return nil, errors.New("harmony-app: CLIP weights: give the CLIPModel's folder (config.json, model.safetensors, vocab.json, merges.txt), not a file")
			}
			ss.CLIP = src
		} else {
			ss.DINO, ss.DINOFile = src, file
		}
		caches[i] = cache
		if dir != "" {
			dirs = append(dirs, dir)
		}
	}
	ss.CLIPCache, ss.DINOCache = caches[0], caches[1]
	a.mu.Lock()
	b := a.back
	a.mu.Unlock()
	s, err := pipeline.OpenScorers(ctx, ss, b, &loader.Options{Precision: loader.PrecisionF32, PieceSize: a.cfg.PieceSize})
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		if err := markComplete(dir); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// scoreResult scores a finished generation's pictures when scorers are
// loaded; a failure is kept in the result, not the run's error.
func (a *App) scoreResult(ctx context.Context, o *pipeline.Options, r *Result) {
	a.mu.Lock()
	s := a.scorers
	if s == nil {
		a.mu.Unlock()
		return
	}
	a.progress = Progress{Stage: "score", Elapsed: a.progress.Elapsed}
	a.mu.Unlock()
	a.changed()
	pics := make([]*pipeline.Image, len(r.Images))
	for _, k := range Kinds {
		if k != Mask { // the heat-map is no picture of the subject
			pics[k] = r.Images[k]
		}
	}
	sc, err := s.Score(ctx, o.Image, o.ImageName, pipeline.ScoreText(o), pics)
	if err != nil {
		r.ScoreErr = err
		return
	}
	r.Scores = sc
}
