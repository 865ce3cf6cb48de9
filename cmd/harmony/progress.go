// progress.go: the progress bar on stderr (loading and denoising).
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"harmony/engine/pipeline"
	"harmony/loader"
)

type progressBar struct {
	quiet bool
	lines bool // stderr is not a terminal: a line now and then, no redrawing
	last  time.Time
	shown bool
}

func newProgressBar(quiet bool) *progressBar {
	p := &progressBar{quiet: quiet}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
		p.lines = true
	}
	return p
}

func (p *progressBar) draw(frac float64, text string, force bool) {
	if p.quiet {
		return
	}
	every := 100 * time.Millisecond
	if p.lines {
		every = 2 * time.Second
	}
	if !force && time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	if p.lines {
		fmt.Fprintf(os.Stderr, "%3.0f%% %s\n", 100*frac, text)
		return
	}
	const width = 30
	n := int(frac*width + 0.5)
	n = min(max(n, 0), width)
	fmt.Fprintf(os.Stderr, "\r[%s%s] %3.0f%% %s\x1b[K", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac, text)
	p.shown = true
}

func (p *progressBar) load(ev loader.Progress) {
	frac := 0.0
	if ev.BytesTotal > 0 {
		frac = float64(ev.BytesDone) / float64(ev.BytesTotal)
	}
	src := ""
	if ev.FromCache {
		src = " (cache)"
	}
	p.draw(frac, fmt.Sprintf("loading %.1f / %.1f MB%s", float64(ev.BytesDone)/1e6, float64(ev.BytesTotal)/1e6, src), ev.BytesDone == ev.BytesTotal)
}

func (p *progressBar) step(ev pipeline.Progress) {
	switch ev.Stage {
	case "denoise":
		eta := ""
		if ev.ETA > 0 {
			eta = fmt.Sprintf(", %v left", ev.ETA.Round(time.Second))
		}
		p.draw(float64(ev.Call)/float64(ev.Calls), fmt.Sprintf("UNet call %d/%d%s", ev.Call, ev.Calls, eta), ev.Call == ev.Calls)
	default:
		p.draw(float64(ev.Call)/float64(max(ev.Calls, 1)), ev.Stage, true)
	}
}

func (p *progressBar) done() {
	if p.shown && !p.quiet {
		fmt.Fprintln(os.Stderr)
		p.shown = false
	}
}
