// report.go: the scores aggregated per prompt, per subject and overall
// (each within its method), and written as JSON, CSV and a Markdown table.
package eval

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Schema names the JSON layout.
const Schema = "harmony-eval/1"

// Group is the mean of the scores of a set of pictures. A metric's mean
// runs over the pictures that have it (the masked ones only over pictures
// with a mask); N counts them.
type Group struct {
	Method  string             `json:"method,omitempty"`
	Subject string             `json:"subject,omitempty"`
	Prompt  string             `json:"prompt,omitempty"`
	Images  int                `json:"images"`
	Mean    map[string]float64 `json:"mean"`
	N       map[string]int     `json:"n"`
}

// Report is a run's scores.
type Report struct {
	Schema     string        `json:"schema"`
	Scale      string        `json:"scale"`
	Metrics    []string      `json:"metrics"` // computed, in table order
	Fill       int           `json:"mask_fill"`
	Images     []ImageScores `json:"images"`
	PerPrompt  []Group       `json:"per_prompt"`
	PerSubject []Group       `json:"per_subject"`
	Overall    []Group       `json:"overall"` // one per method
}

func (r *Report) aggregate() {
	r.Scale = "cosine of L2-normalised embeddings (-1…1; not ×100)"
	type key struct{ method, subject, prompt string }
	groups := func(k func(ImageScores) key) []Group {
		idx := map[key]int{}
		var out []Group
		for _, s := range r.Images {
			kk := k(s)
			i, ok := idx[kk]
			if !ok {
				i = len(out)
				idx[kk] = i
				out = append(out, Group{Method: kk.method, Subject: kk.subject, Prompt: kk.prompt, Mean: map[string]float64{}, N: map[string]int{}})
			}
			g := &out[i]
			g.Images++
			for m, v := range s.Scores {
				g.Mean[m] += v
				g.N[m]++
			}
		}
		for i := range out {
			for m := range out[i].Mean {
				out[i].Mean[m] /= float64(out[i].N[m])
			}
		}
		return out
	}
	r.PerPrompt = groups(func(s ImageScores) key { return key{s.Method, "", s.Prompt} })
	r.PerSubject = groups(func(s ImageScores) key { return key{s.Method, s.Subject, ""} })
	r.Overall = groups(func(s ImageScores) key { return key{s.Method, "", ""} })
}

// JSON is the report as indented JSON.
func (r *Report) JSON() ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// CSV has one row per picture, then one per group (level image, prompt,
// subject, overall); a metric a row lacks is empty.
func (r *Report) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	head := []string{"level", "method", "subject", "prompt", "name", "text", "images"}
	head = append(head, r.Metrics...)
	w.Write(head)
	num := func(m map[string]float64, k string) string {
		if v, ok := m[k]; ok {
			return strconv.FormatFloat(v, 'f', 6, 64)
		}
		return ""
	}
	for _, s := range r.Images {
		row := []string{"image", s.Method, s.Subject, s.Prompt, s.Name, s.Text, "1"}
		for _, k := range r.Metrics {
			row = append(row, num(s.Scores, k))
		}
		w.Write(row)
	}
	for _, l := range []struct {
		level string
		gs    []Group
	}{{"prompt", r.PerPrompt}, {"subject", r.PerSubject}, {"overall", r.Overall}} {
		for _, g := range l.gs {
			row := []string{l.level, g.Method, g.Subject, g.Prompt, "", "", strconv.Itoa(g.Images)}
			for _, k := range r.Metrics {
				row = append(row, num(g.Mean, k))
			}
			w.Write(row)
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// Markdown is the overall table (one row per method) and the per-subject
// table.
func (r *Report) Markdown() string {
	var b strings.Builder
	hasMethod := false
	for _, g := range r.Overall {
		hasMethod = hasMethod || g.Method != ""
	}
	b.WriteString("| " + ifs(hasMethod, "method | ", "") + "images | " + r.titles() + " |\n")
	b.WriteString("|" + ifs(hasMethod, "---|", "") + "---:|" + strings.Repeat("---:|", len(r.Metrics)) + "\n")
	for _, g := range r.Overall {
		b.WriteString("| " + ifs(hasMethod, cell(g.Method)+" | ", "") + strconv.Itoa(g.Images) + " | " + r.cells(g.Mean) + " |\n")
	}
	if len(r.PerSubject) > len(r.Overall) {
		subjects := append([]Group(nil), r.PerSubject...)
		sort.SliceStable(subjects, func(i, j int) bool { return subjects[i].Subject < subjects[j].Subject })
		b.WriteString("\n| subject | " + ifs(hasMethod, "method | ", "") + "images | " + r.titles() + " |\n")
		b.WriteString("|---|" + ifs(hasMethod, "---|", "") + "---:|" + strings.Repeat("---:|", len(r.Metrics)) + "\n")
		for _, g := range subjects {
			b.WriteString("| " + cell(g.Subject) + " | " + ifs(hasMethod, cell(g.Method)+" | ", "") + strconv.Itoa(g.Images) + " | " + r.cells(g.Mean) + " |\n")
		}
	}
	return b.String()
}

func (r *Report) titles() string {
	var t []string
	for _, k := range r.Metrics {
		t = append(t, Titles[k])
	}
	return strings.Join(t, " | ")
}

func (r *Report) cells(m map[string]float64) string {
	var c []string
	for _, k := range r.Metrics {
		c = append(c, Fmt(m, k))
	}
	return strings.Join(c, " | ")
}

// Fmt formats a mean for a table: three decimals, "–" when absent.
func Fmt(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.3f", v)
	}
	return "–"
}

func cell(s string) string {
	if s == "" {
		return "(all)"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

func ifs(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
