// cache.go draws the Hugging Face download row and the cached-models
// panel: each model in the download cache with its size, whether its
// download finished, and buttons to load it again (resuming a partial one)
// or delete exactly its files.
package ui

import (
	"fmt"
	"strings"
	"time"

	"gioui.org/layout"
	"gioui.org/widget"

	"harmony/cmd/harmony-app/internal/state"
)

// cachedRow is one cached model's buttons, kept by folder so that a click
// stays with its model when the list changes between frames.
type cachedRow struct {
	load, del widget.Clickable
}

// mb formats bytes as the web page does.
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// cachedLine is one cached model in words.
func cachedLine(m state.CachedModel) string {
	line := m.Name + " — " + mb(m.Bytes)
	if !m.Complete {
		line += " (partial: Load resumes it)"
	}
	return line
}

// downloadLine is a running load's bytes, rate and time left.
func downloadLine(p state.Progress) string {
	line := fmt.Sprintf("loading model… %s of %s", mb(p.BytesDone), mb(p.BytesTotal))
	if p.CacheBytes > 0 {
		line += fmt.Sprintf(" (%s from the cache)", mb(p.CacheBytes))
	}
	if p.Rate > 0 {
		line += fmt.Sprintf(", %s/s", mb(int64(p.Rate)))
		if p.ETA > 0 {
			line += fmt.Sprintf(", about %v left", p.ETA.Round(time.Second))
		}
	}
	return line
}

// updateCache handles the download row's and the panel's clicks.
func (u *UI) updateCache(gtx layout.Context, s state.Snapshot) {
	idle := s.Phase != state.Loading && s.Phase != state.Generating
	for {
		ev, ok := u.hubRepo.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok && idle {
			u.download()
		}
	}
	if u.hubGet.Clicked(enabledIf(gtx, idle)) {
		u.download()
	}
	if u.hubCancel.Clicked(enabledIf(gtx, s.Phase == state.Loading)) {
		u.App.Cancel()
	}
	for _, m := range s.Cached {
		r := u.rows[m.Dir]
		if r == nil {
			continue
		}
		if r.load.Clicked(enabledIf(gtx, idle)) {
			u.hubRepo.SetText(m.Name)
			u.LoadModel(state.HubPrefix + m.Name)
		}
		if r.del.Clicked(enabledIf(gtx, s.Phase != state.Loading)) {
			u.DeleteCached(m.Dir)
		}
	}
}

// download loads the repository in the download row.
func (u *UI) download() {
	repo := strings.TrimSpace(u.hubRepo.Text())
	if _, err := state.HubURL(repo); err != nil {
		u.note, u.noteErr = err.Error(), true
		return
	}
	u.note, u.noteErr = "", false
	u.LoadModel(state.HubPrefix + repo)
}

// DeleteCached deletes one cached model and says so.
func (u *UI) DeleteCached(dir string) {
	if err := u.App.DeleteCached(dir); err != nil {
		u.note, u.noteErr = err.Error(), true
		return
	}
	u.note, u.noteErr = "deleted the cached model in "+dir, false
}

// hubRow is the Hugging Face download row under the model row.
func (u *UI) hubRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		idle := s.Phase != state.Loading && s.Phase != state.Generating
		return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
			layout.Rigid(u.label(13, "Hugging Face").Layout), gap(8),
			layout.Flexed(1, u.editor(&u.hubRepo, "repository (Salesforce/blipdiffusion) or URL, downloaded into the cache", 0)), gap(8),
			layout.Rigid(u.button(&u.hubGet, "Download", idle)), gap(8),
			layout.Rigid(u.button(&u.hubCancel, "Cancel", s.Phase == state.Loading)),
		)
	}
}

// cachePanel lists the download cache.
func (u *UI) cachePanel(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		idle := s.Phase != state.Loading && s.Phase != state.Generating
		var total int64
		for _, m := range s.Cached {
			total += m.Bytes
		}
		title := fmt.Sprintf("Cached models: %d, %s", len(s.Cached), mb(total))
		switch {
		case s.CacheErr != nil:
			title = "Cached models: " + s.CacheErr.Error()
		case len(s.Cached) == 0:
			title = "Cached models: none (Download keeps a model here for offline use)"
		}
		children := []layout.FlexChild{layout.Rigid(u.label(14, title).Layout)}
		keep := map[string]*cachedRow{}
		for _, m := range s.Cached {
			r := u.rows[m.Dir]
			if r == nil {
				r = &cachedRow{}
			}
			keep[m.Dir] = r
			line := cachedLine(m)
			u.Drawn.Cached = append(u.Drawn.Cached, line)
			u.Drawn.Deletes++
			children = append(children, gap(4), layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, u.label(13, line).Layout), gap(8),
					layout.Rigid(u.button(&r.load, "Load", idle)), gap(8),
					layout.Rigid(u.button(&r.del, "Delete", s.Phase != state.Loading)),
				)
			}))
		}
		u.rows = keep
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
	}
}
