// score.go: the score line: two location fields for the CLIP and DINO
// weights (folder, URL, or "hf:" and a Hub repository), and under the
// results one line with each picture's CLIP-T and DINO against the photo,
// shown only once weights are loaded (state's score.go computes them).
package ui

import (
	"context"
	"strings"

	"gioui.org/layout"
	"gioui.org/widget"

	"harmony/cmd/harmony-app/internal/state"
)

// scoreFields are the score line's inputs.
type scoreFields struct {
	clip, dino widget.Editor
	load       widget.Clickable
}

func (u *UI) updateScore(gtx layout.Context, s state.Snapshot) {
	f := &u.score
	f.clip.SingleLine, f.dino.SingleLine = true, true
	idle := s.Phase != state.Loading && s.Phase != state.Generating && !s.Score.Loading
	if f.load.Clicked(enabledIf(gtx, idle)) {
		clip, dino := strings.TrimSpace(f.clip.Text()), strings.TrimSpace(f.dino.Text())
		go u.App.LoadScorers(context.Background(), clip, dino) // its error lands in the snapshot
	}
}

// scoreStatus is the scorer row's status text.
func scoreStatus(s state.Snapshot) string {
	switch {
	case s.Score.Loading:
		return "loading the scoring models…"
	case s.Score.Err != nil:
		return "scores: " + s.Score.Err.Error()
	case s.Score.On():
		var parts []string
		if s.Score.CLIP != "" {
			parts = append(parts, "CLIP "+s.Score.CLIP)
		}
		if s.Score.DINO != "" {
			parts = append(parts, "DINO "+s.Score.DINO)
		}
		return "scoring with " + strings.Join(parts, ", ")
	}
	return "scores off (give CLIP and/or DINO weights to score each picture against the photo)"
}

// scoreRow is the scorers' locations and their Load button.
func (u *UI) scoreRow(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		idle := s.Phase != state.Loading && s.Phase != state.Generating && !s.Score.Loading
		status := u.label(13, scoreStatus(s))
		if s.Score.Err != nil {
			status.Color = red
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Rigid(u.label(13, "scores").Layout), gap(8),
					layout.Flexed(1, u.editor(&u.score.clip, "CLIP weights: folder, URL or hf:owner/name", 0)), gap(8),
					layout.Flexed(1, u.editor(&u.score.dino, "DINO weights: folder, .pth, URL or hf:owner/name", 0)), gap(8),
					layout.Rigid(u.button(&u.score.load, "Load scorers", idle)),
				)
			}),
			gap(4),
			layout.Rigid(status.Layout),
		)
	}
}

// ScoreLine is the text of the score line under the results ("" when the
// result was not scored).
func ScoreLine(r *state.Result) string {
	if r == nil {
		return ""
	}
	if r.ScoreErr != nil {
		return "scores: " + r.ScoreErr.Error()
	}
	var parts []string
	for i, sc := range r.Scores {
		if i >= len(state.Kinds) || sc.String() == "" {
			continue
		}
		parts = append(parts, state.Kinds[i].String()+": "+sc.String())
	}
	return strings.Join(parts, "   ")
}

// scoreLine draws the score line of the last result.
func (u *UI) scoreLine(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		line := ScoreLine(s.Result)
		u.Drawn.Scores = line
		if line == "" {
			return layout.Dimensions{}
		}
		l := u.label(13, line)
		if s.Result.ScoreErr != nil {
			l.Color = red
		}
		return l.Layout(gtx)
	}
}
