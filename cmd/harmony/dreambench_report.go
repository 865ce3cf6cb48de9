// dreambench_report.go: dreambench's scoring and report: the table like
// the paper's (per method, with the difference Harmony makes), the
// per-subject table, a contact sheet per subject (rows prompts, columns
// methods) and a scatter plot of CLIP-T against DINO per method, drawn
// with the standard library and x/image's fixed bitmap font.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"harmony/engine/eval"
	"harmony/engine/imageproc"
	"harmony/loader"
)

// evaluate scores every picture of the grid against its subject's real
// pictures, and against its input photo (the first of them) alone.
func (d *dbFlags) evaluate(ctx context.Context, m eval.Models, subjects []*dbSubject, jobs []dbJob) (*eval.Report, error) {
	// Pictures are decoded when the metric code reaches them (a full run
	// has thousands).
	dbErr := func(err error) error {
		return errors.New(strings.Replace(err.Error(), "harmony eval:", "harmony dreambench:", 1))
	}
	var gen []eval.Generated
	for _, j := range jobs {
		g := eval.Generated{Picture: eval.Picture{Name: j.path, Open: func() (*imageproc.RGB, *imageproc.RGB, error) {
			im, _, err := readPicture("picture", j.path)
			if err != nil {
				return nil, nil, dbErr(err)
			}
			if _, err := os.Stat(j.maskPath()); err != nil {
				return im, nil, nil
			}
			mk, _, err := readPicture("mask", j.maskPath())
			if err != nil {
				return nil, nil, dbErr(err)
			}
			return im, mk, nil
		}}, Subject: j.subject.name, Method: j.method.name(), Prompt: j.subject.prompts[j.prompt],
			Text: clipText(j.subject.prompts[j.prompt], j.subject.class), Input: j.subject.photo}
		if m.CLIPText == nil {
			g.Text = ""
		}
		gen = append(gen, g)
	}
	var real []eval.Real
	for _, s := range subjects {
		for _, p := range s.real {
			mp := filepath.Join(filepath.Dir(p), "masks", strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))+".png")
			real = append(real, eval.Real{Subject: s.name, Picture: eval.Picture{Name: p, Open: func() (*imageproc.RGB, *imageproc.RGB, error) {
				im, _, err := readPicture("--data", p)
				if err != nil {
					return nil, nil, dbErr(err)
				}
				if _, err := os.Stat(mp); err != nil {
					return im, nil, nil
				}
				mk, _, err := readPicture("--data mask", mp)
				if err != nil {
					return nil, nil, dbErr(err)
				}
				return im, mk, nil
			}}})
		}
	}
	rep, _, err := eval.Evaluate(ctx, m, gen, real, eval.Options{})
	if err != nil {
		return nil, fmt.Errorf("harmony dreambench: %w", err)
	}
	return rep, nil
}

// dbRun is the run's summary in OUT/report/run.json.
type dbRun struct {
	Subjects   int      `json:"subjects"`
	Prompts    int      `json:"prompts"`
	Seeds      []uint64 `json:"seeds"`
	Methods    []string `json:"methods"`
	Planned    int      `json:"pictures"`
	Generated  int      `json:"generated"`
	Skipped    int      `json:"skipped"`
	GenSeconds float64  `json:"generate_seconds"`
	Load       float64  `json:"load_seconds"`
	// Over every run into this folder (an interrupted run and its resumption).
	AllGenerated  int     `json:"generated_all_runs"`
	AllGenSeconds float64 `json:"generate_seconds_all_runs"`
	AllCPUSeconds float64 `json:"generate_cpu_seconds_all_runs"`
	PerPicture    float64 `json:"seconds_per_picture,omitempty"`
	CPUPerPicture float64 `json:"cpu_seconds_per_picture,omitempty"` // process CPU time: on a CPU adapter sharing a loaded machine it varies less than wall time
	LoadAverage   string  `json:"load_average,omitempty"`            // /proc/loadavg at the end (Linux)
}

// runStats is the run's summary, with the totals of the runs before it
// (run.json) added.
func (d *dbFlags) runStats(subjects []*dbSubject, methods []dbMethod, st dbStats) dbRun {
	nPrompts := 0
	for _, s := range subjects {
		nPrompts += len(s.prompts)
	}
	run := dbRun{Subjects: len(subjects), Prompts: nPrompts, Seeds: d.seeds, Planned: st.Planned,
		Generated: st.Generated, Skipped: st.Skipped, GenSeconds: st.GenSeconds, Load: st.LoadSeconds}
	for _, m := range methods {
		run.Methods = append(run.Methods, m.name())
	}
	var prev dbRun
	if data, err := os.ReadFile(filepath.Join(d.out, "report", "run.json")); err == nil && json.Unmarshal(data, &prev) == nil {
		run.AllGenerated, run.AllGenSeconds, run.AllCPUSeconds = prev.AllGenerated, prev.AllGenSeconds, prev.AllCPUSeconds
	}
	run.AllGenerated += st.Generated
	run.AllGenSeconds += st.GenSeconds
	run.AllCPUSeconds += st.CPUSeconds
	if run.AllGenerated > 0 {
		run.PerPicture = run.AllGenSeconds / float64(run.AllGenerated)
		run.CPUPerPicture = run.AllCPUSeconds / float64(run.AllGenerated)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil && len(strings.Fields(string(la))) >= 3 {
		run.LoadAverage = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	return run
}

// saveRun writes run.json alone (an interrupted run keeps its counts).
func (d *dbFlags) saveRun(run dbRun) error {
	if err := os.MkdirAll(filepath.Join(d.out, "report"), 0o755); err != nil {
		return err
	}
	rj, _ := json.MarshalIndent(run, "", "  ")
	return loader.WriteFile(filepath.Join(d.out, "report", "run.json"), append(rj, '\n'))
}

// writeReportRun writes OUT/report: run.json, scores (JSON, CSV),
// table.md, the contact sheets and the scatter plot.
func (d *dbFlags) writeReportRun(ctx context.Context, subjects []*dbSubject, methods []dbMethod, jobs []dbJob, rep *eval.Report, run dbRun) error {
	dir := filepath.Join(d.out, "report")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("harmony dreambench: %v", err)
	}
	var files []loader.OutFile
	rj, _ := json.MarshalIndent(run, "", "  ")
	files = append(files, loader.OutFile{Path: filepath.Join(dir, "run.json"), Data: append(rj, '\n')})
	if rep != nil {
		js, err := rep.JSON()
		if err != nil {
			return err
		}
		cs, err := rep.CSV()
		if err != nil {
			return err
		}
		files = append(files,
			loader.OutFile{Path: filepath.Join(dir, "scores.json"), Data: js},
			loader.OutFile{Path: filepath.Join(dir, "scores.csv"), Data: cs},
			loader.OutFile{Path: filepath.Join(dir, "table.md"), Data: []byte(d.paperTable(rep, methods, run))})
		if sc := scatterPlot(rep, methods); sc != nil {
			data, err := pngBytes(sc)
			if err != nil {
				return err
			}
			files = append(files, loader.OutFile{Path: filepath.Join(dir, "scatter.png"), Data: data})
		}
	}
	for _, s := range subjects {
		if err := ctx.Err(); err != nil {
			return err
		}
		im, err := contactSheet(s, methods, jobs, d.seeds[0], d.thumb)
		if err != nil {
			return err
		}
		data, err := pngBytes(im)
		if err != nil {
			return err
		}
		files = append(files, loader.OutFile{Path: filepath.Join(dir, "contact-"+s.name+".png"), Data: data})
	}
	if err := loader.WriteFiles(files); err != nil {
		return fmt.Errorf("harmony dreambench: %v", err)
	}
	if rep != nil {
		fmt.Print(d.paperTable(rep, methods, run))
	}
	fmt.Fprintln(os.Stderr, "wrote", dir)
	return nil
}

// paperTable is the paper's table: one row per method (DINO, CLIP-I,
// CLIP-T, then the masked variants), each Harmony row followed by its
// difference from the same base's plain row; then the per-subject table.
func (d *dbFlags) paperTable(rep *eval.Report, methods []dbMethod, run dbRun) string {
	overall := map[string]eval.Group{}
	for _, g := range rep.Overall {
		overall[g.Method] = g
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# DreamBench run\n\n%d subjects, %d subject × prompt pairs, seeds %v: %d pictures per method. Scores are cosines (0–1 scale, not ×100): "+
		"CLIP-I and DINO averaged over each picture × every real picture of its subject; CLIP-T against the prompt with the subject replaced by its class noun; "+
		"M- variants with the background (mask 0) set to black, generated pictures masked by the engine's own subject mask (none for plain runs: –); "+
		"(1 ref) variants against the subject's input photo alone (the picture the model was given).\n\n",
		run.Subjects, run.Prompts, run.Seeds, run.Prompts*len(run.Seeds))
	var titles []string
	for _, k := range rep.Metrics {
		titles = append(titles, eval.Titles[k])
	}
	b.WriteString("| method | pictures | " + strings.Join(titles, " | ") + " |\n|---|---:|" + strings.Repeat("---:|", len(rep.Metrics)) + "\n")
	row := func(name string, g eval.Group) {
		var c []string
		for _, k := range rep.Metrics {
			c = append(c, eval.Fmt(g.Mean, k))
		}
		fmt.Fprintf(&b, "| %s | %d | %s |\n", name, g.Images, strings.Join(c, " | "))
	}
	for _, m := range methods {
		g, ok := overall[m.name()]
		if !ok {
			continue
		}
		row(m.name(), g)
		if !m.harmony {
			continue
		}
		p, ok := overall[dbMethod{base: m.base}.name()]
		if !ok {
			continue
		}
		var c []string
		for _, k := range rep.Metrics {
			a, okA := g.Mean[k]
			q, okQ := p.Mean[k]
			if okA && okQ {
				c = append(c, fmt.Sprintf("%+.3f", a-q))
			} else {
				c = append(c, "–")
			}
		}
		fmt.Fprintf(&b, "| Δ %s − plain | | %s |\n", m.name(), strings.Join(c, " | "))
	}
	if run.PerPicture > 0 {
		fmt.Fprintf(&b, "\nTime: %.2f s per picture, %.2f s of process CPU time (%d pictures generated in %.1f s over the runs into this folder, model loads apart; load average %s at the end); this run generated %d and found %d.\n",
			run.PerPicture, run.CPUPerPicture, run.AllGenerated, run.AllGenSeconds, run.LoadAverage, run.Generated, run.Skipped)
	}
	b.WriteString("\n## Per subject\n\n")
	md := rep.Markdown()
	if _, after, ok := strings.Cut(md, "\n\n"); ok {
		b.WriteString(after)
	}
	return b.String()
}

func pngBytes(im image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	white = color.RGBA{255, 255, 255, 255}
	ink   = color.RGBA{30, 30, 30, 255}
	grey  = color.RGBA{200, 200, 200, 255}
)

// label draws s with its top-left at (x, y), cut to width pixels.
func label(dst draw.Image, x, y, width int, s string, c color.Color) {
	face := basicfont.Face7x13
	if n := width / 7; n < len(s) && n >= 3 {
		s = s[:n-2] + ".." // the bitmap font has ASCII only
	}
	dr := font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y+11)}
	dr.DrawString(s)
}

// contactSheet: rows prompts, columns the subject's input photo (first
// row) and the methods, the first seed's pictures.
func contactSheet(s *dbSubject, methods []dbMethod, jobs []dbJob, seed uint64, thumb int) (image.Image, error) {
	const pad, head, side = 4, 30, 260
	// A column is as wide as its label, up to two thumbnails.
	colW := make([]int, len(methods)+1)
	colX := make([]int, len(methods)+1)
	x := side
	for c := range colW {
		name := "input"
		if c > 0 {
			name = methods[c-1].name()
		}
		colW[c] = min(max(thumb, 7*len(name)+2), 2*thumb)
		colX[c] = x
		x += colW[c] + pad
	}
	rows := len(s.prompts)
	W := x
	H := head + rows*(thumb+pad) + pad
	sheet := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	label(sheet, pad, 2, side-2*pad, fmt.Sprintf("%s (%s), seed %d", s.name, s.class, seed), ink)
	label(sheet, colX[0], 16, colW[0], "input", ink)
	for c, m := range methods {
		label(sheet, colX[c+1], 16, colW[c+1], m.name(), ink)
	}
	at := map[[2]int]string{}
	for _, j := range jobs {
		if j.subject == s && j.seed == seed {
			for c, m := range methods {
				if m.name() == j.method.name() {
					at[[2]int{j.prompt, c + 1}] = j.path
				}
			}
		}
	}
	at[[2]int{0, 0}] = s.photo
	for r, p := range s.prompts {
		y := head + r*(thumb+pad)
		label(sheet, pad, y+thumb/2-6, side-2*pad, clipText(p, s.class), ink)
		for c := range colW {
			path, ok := at[[2]int{r, c}]
			if !ok {
				if c > 0 {
					draw.Draw(sheet, image.Rect(colX[c], y, colX[c]+thumb, y+thumb), image.NewUniform(grey), image.Point{}, draw.Src)
				}
				continue
			}
			if err := drawThumb(sheet, path, colX[c], y, thumb); err != nil {
				return nil, err
			}
		}
	}
	return sheet, nil
}

// drawThumb draws the picture at path fitted into a thumb×thumb cell at
// (x, y); a missing picture is a grey cell.
func drawThumb(sheet *image.RGBA, path string, x, y, thumb int) error {
	im, _, err := imageproc.DecodeFile(path, imageproc.DecodeOptions{})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			draw.Draw(sheet, image.Rect(x, y, x+thumb, y+thumb), image.NewUniform(grey), image.Point{}, draw.Src)
			return nil
		}
		return fmt.Errorf("harmony dreambench: %s: %v", path, err)
	}
	tw, th := thumb, thumb
	if im.Width > im.Height {
		th = max(1, thumb*im.Height/im.Width)
	} else {
		tw = max(1, thumb*im.Width/im.Height)
	}
	small, err := imageproc.Resize(im, tw, th, imageproc.Bicubic)
	if err != nil {
		return fmt.Errorf("harmony dreambench: %s: %v", path, err)
	}
	for yy := 0; yy < th; yy++ {
		for xx := 0; xx < tw; xx++ {
			i := 3 * (yy*tw + xx)
			sheet.SetRGBA(x+xx, y+yy, color.RGBA{small.Pix[i], small.Pix[i+1], small.Pix[i+2], 255})
		}
	}
	return nil
}

// palette colours the methods of the scatter plot.
var palette = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {23, 190, 207, 255},
}

// scatterPlot draws CLIP-T (y) against DINO (x; CLIP-I in a run without
// DINO): every picture as a small dot, each method's mean as a large one,
// and a legend; nil without CLIP-T.
func scatterPlot(rep *eval.Report, methods []dbMethod) image.Image {
	hasT, xk := false, ""
	for _, k := range rep.Metrics {
		hasT = hasT || k == eval.CLIPT
		if k == eval.DINO || k == eval.CLIPI && xk == "" {
			xk = k
		}
	}
	if !hasT || xk == "" {
		return nil
	}
	colour := map[string]color.RGBA{}
	for i, m := range methods {
		colour[m.name()] = palette[i%len(palette)]
	}
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range rep.Images {
		x, y := s.Scores[xk], s.Scores[eval.CLIPT]
		x0, x1, y0, y1 = math.Min(x0, x), math.Max(x1, x), math.Min(y0, y), math.Max(y1, y)
	}
	padR := func(a, b float64) (float64, float64) {
		d := math.Max(b-a, 0.02) * 0.08
		return a - d, b + d
	}
	x0, x1 = padR(x0, x1)
	y0, y1 = padR(y0, y1)
	const W, H, L, R, T, B = 720, 580, 70, 20, 50, 60
	legend := 16 * len(methods)
	im := image.NewRGBA(image.Rect(0, 0, W, H+legend))
	draw.Draw(im, im.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	px := func(x float64) int { return L + int(math.Round((x-x0)/(x1-x0)*float64(W-L-R))) }
	py := func(y float64) int { return H - B - int(math.Round((y-y0)/(y1-y0)*float64(H-T-B))) }
	// Axes, ticks and grid.
	for i := 0; i <= 5; i++ {
		xv := x0 + (x1-x0)*float64(i)/5
		yv := y0 + (y1-y0)*float64(i)/5
		for y := T; y <= H-B; y++ {
			im.Set(px(xv), y, grey)
		}
		for x := L; x <= W-R; x++ {
			im.Set(x, py(yv), grey)
		}
		label(im, px(xv)-17, H-B+4, 60, fmt.Sprintf("%.3f", xv), ink)
		label(im, 4, py(yv)-7, L-8, fmt.Sprintf("%.3f", yv), ink)
	}
	for x := L; x <= W-R; x++ {
		im.Set(x, H-B, ink)
	}
	for y := T; y <= H-B; y++ {
		im.Set(L, y, ink)
	}
	label(im, L, 8, W-L, "CLIP-T (text fidelity) against "+eval.Titles[xk]+" (subject fidelity), per picture and per method mean", ink)
	label(im, (W-L)/2+L-40, H-B+22, 200, eval.Titles[xk], ink)
	label(im, 4, T-30, 60, "CLIP-T", ink)
	dot := func(x, y, r int, c color.RGBA, ring bool) {
		for dy := -r; dy <= r; dy++ {
			for dx := -r; dx <= r; dx++ {
				d2 := dx*dx + dy*dy
				if d2 > r*r {
					continue
				}
				if ring && d2 > (r-2)*(r-2) {
					im.Set(x+dx, y+dy, ink)
				} else {
					im.Set(x+dx, y+dy, c)
				}
			}
		}
	}
	for _, s := range rep.Images {
		c := colour[s.Method]
		c.A = 255
		light := color.RGBA{uint8((int(c.R) + 2*255) / 3), uint8((int(c.G) + 2*255) / 3), uint8((int(c.B) + 2*255) / 3), 255}
		dot(px(s.Scores[xk]), py(s.Scores[eval.CLIPT]), 3, light, false)
	}
	for _, g := range rep.Overall {
		dot(px(g.Mean[xk]), py(g.Mean[eval.CLIPT]), 7, colour[g.Method], true)
	}
	for i, m := range methods {
		y := H + 16*i
		dot(L+6, y+6, 5, colour[m.name()], true)
		label(im, L+18, y, W-L-20, m.name(), ink)
	}
	return im
}
