// eval.go: `harmony eval`, the paper's metrics (CLIP-T, CLIP-I, DINO and
// their masked variants, engine/eval) on generated pictures against the
// subject's real ones, with the CLIP and DINO models run by the engine.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"harmony/engine/eval"
	"harmony/engine/imageproc"
	"harmony/engine/pngmeta"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

func init() {
	register(&command{name: "eval", summary: "score generated pictures: CLIP-T, CLIP-I, DINO and masked variants", run: runEval})
}

// listFlag is a repeatable flag whose values may also be comma-separated
// (a value naming an existing path is taken whole, commas and all).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	if _, err := os.Stat(s); err == nil || !strings.Contains(s, ",") {
		*l = append(*l, s)
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

type evalFlags struct {
	clip, dino    string
	images, refs  listFlag
	inputPhoto    string
	masks         listFlag
	promptsFile   string
	prompts       listFlag
	out, dump     string
	fill          int
	precision     string
	defaultLimits bool
	quiet         bool
}

func parseEval(args []string) (*evalFlags, error) {
	e := &evalFlags{}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: harmony eval --clip DIR|URL --dino DIR|URL --images FILES|FOLDER [flags]

Scores are cosines of L2-normalised embeddings (0–1 scale, not ×100): CLIP-I and
DINO averaged over every generated × reference pair, CLIP-T of each picture
against its prompt, M-CLIP-I and M-DINO with the background (mask pixels 0) set
to --fill before the models' preprocessing; with --input-photo also CLIP-I (1 ref)
and DINO (1 ref), each picture against the one photo the model was given (the
PNG parameters do not record it). A picture's prompt comes from
--prompt/--prompts, else from its PNG "parameters" text ("a {class} {prompt}",
the subject word replaced by the class noun). --prompts FILE is one prompt per
line, or a JSON list of prompts or of {"image","text"|"prompt","class","subject"}.

flags:`)
		fs.PrintDefaults()
	}
	fs.StringVar(&e.clip, "clip", "", "CLIP model: a transformers CLIPModel folder or its URL (CLIP-I, CLIP-T)")
	fs.StringVar(&e.dino, "dino", "", "DINO ViT model: a folder or its URL (DINO)")
	fs.Var(&e.images, "images", "generated pictures: files in order, or a folder (repeatable, comma-separated)")
	fs.Var(&e.refs, "reference", "real pictures of the subject: files or a folder (default: the --images themselves)")
	fs.StringVar(&e.inputPhoto, "input-photo", "", "the subject photo the model was given: adds CLIP-I (1 ref) and DINO (1 ref), each picture against it")
	fs.Var(&e.masks, "masks", "one mask PNG per --images picture, - for none (0 pixels are background); auto: each picture's NAME.mask.png where there is one")
	fs.StringVar(&e.promptsFile, "prompts", "", "file of prompts: one per line, or a JSON list")
	fs.Var(&e.prompts, "prompt", "a prompt (repeatable): one for every picture, or one per picture in order")
	fs.StringVar(&e.out, "out", "", "write the scores to FILE.json, with FILE.csv and FILE.md beside it (default: the table on stdout)")
	fs.StringVar(&e.dump, "dump", "", "write the embeddings and score matrices to this safetensors file")
	fs.IntVar(&e.fill, "fill", 0, "background value (0–255) of masked pictures")
	fs.StringVar(&e.precision, "precision", "f32", "weights on the GPU: f32 or f16")
	fs.BoolVar(&e.defaultLimits, "default-limits", false, "open the GPU with WebGPU's default limits")
	fs.BoolVar(&e.quiet, "quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("harmony eval: unexpected argument %q", fs.Arg(0))
	}
	switch {
	case e.clip == "" && e.dino == "":
		return nil, usageErrorf("harmony eval: give --clip, --dino or both")
	case len(e.images) == 0:
		return nil, usageErrorf("harmony eval: --images is required")
	case e.promptsFile != "" && len(e.prompts) > 0:
		return nil, usageErrorf("harmony eval: give --prompts or --prompt, not both")
	case e.fill < 0 || e.fill > 255:
		return nil, usageErrorf("harmony eval: --fill must be in [0, 255], got %d", e.fill)
	case e.precision != "f32" && e.precision != "f16":
		return nil, usageErrorf("harmony eval: --precision must be f32 or f16, got %q", e.precision)
	case e.out != "" && !strings.HasSuffix(e.out, ".json"):
		return nil, usageErrorf("harmony eval: --out %s: give a .json file name (the .csv and .md go beside it)", e.out)
	}
	return e, nil
}

func runEval(ctx context.Context, args []string) error {
	e, err := parseEval(args)
	if err != nil {
		return err
	}
	gen, real, err := e.inputs()
	if err != nil {
		return err
	}
	for _, o := range []struct{ opt, path string }{{"--out", e.out}, {"--dump", e.dump}} {
		if o.path == "" {
			continue
		}
		if st, err := os.Stat(o.path); err == nil && st.IsDir() {
			return fmt.Errorf("harmony eval: %s %s is a folder; give a file name", o.opt, o.path)
		}
		if err := checkFolder(o.opt, filepath.Dir(o.path), 1<<20); err != nil {
			return errors.New(strings.Replace(err.Error(), "harmony generate:", "harmony eval:", 1))
		}
	}
	bar := newProgressBar(e.quiet)
	models, closeModels, err := openEvalModels(ctx, evalModelSpec{clip: e.clip, dino: e.dino, precision: loader.Precision(e.precision), defaultLimits: e.defaultLimits}, bar)
	bar.done()
	if err != nil {
		return err
	}
	defer closeModels()
	if models.CLIPText == nil {
		for i := range gen {
			gen[i].Text = "" // no text tower: the texts are not needed
		}
	}
	rep, emb, err := eval.Evaluate(ctx, models, gen, real, eval.Options{Fill: uint8(e.fill)})
	if err != nil {
		return fmt.Errorf("harmony eval: %w", err)
	}
	return e.write(rep, emb, len(real))
}

// write commits the outputs together; without --out the table goes to
// stdout.
func (e *evalFlags) write(rep *eval.Report, emb *eval.Embeddings, nReal int) error {
	var files []loader.OutFile
	if e.out != "" {
		js, err := rep.JSON()
		if err != nil {
			return fmt.Errorf("harmony eval: --out: %v", err)
		}
		cs, err := rep.CSV()
		if err != nil {
			return fmt.Errorf("harmony eval: --out: %v", err)
		}
		stem := strings.TrimSuffix(e.out, ".json")
		files = append(files, loader.OutFile{Path: e.out, Data: js}, loader.OutFile{Path: stem + ".csv", Data: cs},
			loader.OutFile{Path: stem + ".md", Data: []byte(rep.Markdown())})
	}
	if e.dump != "" {
		data, err := evalDump(emb)
		if err != nil {
			return fmt.Errorf("harmony eval: --dump: %v", err)
		}
		files = append(files, loader.OutFile{Path: e.dump, Data: data})
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("harmony eval: %v", err)
		}
	}
	if err := loader.WriteFiles(files); err != nil {
		return fmt.Errorf("harmony eval: %v", err)
	}
	fmt.Print(rep.Markdown())
	for _, f := range files {
		fmt.Fprintln(os.Stderr, "wrote", f.Path)
	}
	return nil
}

// evalDump holds the dump's tensors: the normalised embeddings (masks
// applied) and the cosine matrices.
func evalDump(emb *eval.Embeddings) ([]byte, error) {
	var ts []loader.SafetensorsTensor
	mat := func(name string, rows [][]float32) {
		if len(rows) == 0 {
			return
		}
		var v []float32
		for _, r := range rows {
			v = append(v, r...)
		}
		ts = append(ts, f32Tensor(name, v, len(rows), len(rows[0])))
	}
	scores := func(name string, a, b [][]float32) {
		if len(a) > 0 && len(b) > 0 {
			ts = append(ts, f32Tensor(name, eval.ScoreMatrix(a, b), len(a), len(b)))
		}
	}
	mat("clip.image_embeds", emb.CLIPImage)
	mat("clip.text_embeds", emb.CLIPText)
	mat("dino.cls_normalized", emb.DINO)
	scores("scores.clip_i", emb.CLIPImage, emb.CLIPReal)
	scores("scores.dino", emb.DINO, emb.DINOReal)
	scores("scores.clip_t", emb.CLIPImage, emb.CLIPText)
	// Single-reference scores, NaN for a picture without an input photo.
	for _, v := range []struct {
		name string
		s    []float32
	}{{"scores.clip_i_input", emb.CLIPInput}, {"scores.dino_input", emb.DINOInput}} {
		if len(v.s) > 0 {
			ts = append(ts, f32Tensor(v.name, v.s, len(v.s)))
		}
	}
	var buf bytes.Buffer
	meta := map[string]string{"texts": mustJSON(emb.Texts)}
	if err := loader.WriteSafetensors(&buf, ts, meta); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func f32Tensor(name string, v []float32, shape ...int) loader.SafetensorsTensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return loader.SafetensorsTensor{Name: name, DType: loader.F32, Shape: shape, Data: b}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// imageExts are the file names a folder listing takes as pictures.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".webp": true, ".bmp": true, ".gif": true, ".tif": true, ".tiff": true}

// expand turns files and folders into files: a folder gives its pictures
// sorted by name (masks, named *.mask.png, left out).
func expand(option string, list []string) ([]string, error) {
	var out []string
	for _, p := range list {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("harmony eval: %s %s: %v", option, p, errors.Unwrap(err))
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("harmony eval: %s %s: %v", option, p, err)
		}
		n := 0
		for _, d := range ents {
			name := d.Name()
			if d.IsDir() || !imageExts[strings.ToLower(filepath.Ext(name))] || strings.HasSuffix(name, ".mask.png") || strings.HasPrefix(name, ".") {
				continue
			}
			out = append(out, filepath.Join(p, name))
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("harmony eval: %s %s: the folder holds no pictures", option, p)
		}
	}
	return out, nil
}

// readPicture decodes a picture (or mask) file; errors name the option and
// file.
func readPicture(option, path string) (*imageproc.RGB, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("harmony eval: %s %s: no such file", option, path)
		}
		return nil, nil, fmt.Errorf("harmony eval: %s %s: %v", option, path, err)
	}
	im, _, err := imageproc.Decode(filepath.Base(path), data, imageproc.DecodeOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("harmony eval: %s %s: %v", option, path, err)
	}
	return im, data, nil
}

// promptEntry is one element of a JSON prompt list.
type promptEntry struct {
	Image   string `json:"image"`
	Text    string `json:"text"`
	Prompt  string `json:"prompt"`
	Class   string `json:"class"`
	Subject string `json:"subject"`
}

// inputs reads the pictures, masks and prompts.
func (e *evalFlags) inputs() ([]eval.Generated, []eval.Real, error) {
	paths, err := expand("--images", e.images)
	if err != nil {
		return nil, nil, err
	}
	if len(e.masks) == 1 && e.masks[0] == "auto" {
		// Each picture's NAME.mask.png beside it, where there is one (what
		// harmony dreambench writes for Harmony's pictures).
		e.masks = nil
		for _, p := range paths {
			m := strings.TrimSuffix(p, filepath.Ext(p)) + ".mask.png"
			if _, err := os.Stat(m); err != nil {
				m = "-"
			}
			e.masks = append(e.masks, m)
		}
	}
	if len(e.masks) > 0 && len(e.masks) != len(paths) {
		return nil, nil, fmt.Errorf("harmony eval: --masks gives %d masks for %d pictures; give one per picture (- for none)", len(e.masks), len(paths))
	}
	entries, err := e.promptList(paths)
	if err != nil {
		return nil, nil, err
	}
	var gen []eval.Generated
	for i, p := range paths {
		im, data, err := readPicture("--images", p)
		if err != nil {
			return nil, nil, err
		}
		g := eval.Generated{Picture: eval.Picture{Name: p, Image: im}}
		if len(e.masks) > 0 && e.masks[i] != "-" {
			if g.Mask, _, err = readPicture("--masks", e.masks[i]); err != nil {
				return nil, nil, err
			}
			if g.Mask.Width != im.Width || g.Mask.Height != im.Height {
				return nil, nil, fmt.Errorf("harmony eval: --masks %s is %d×%d but its picture %s is %d×%d; a mask must be its picture's size",
					e.masks[i], g.Mask.Width, g.Mask.Height, p, im.Width, im.Height)
			}
		}
		switch {
		case entries != nil:
			en := entries[i]
			g.Text, g.Prompt, g.Subject = en.Text, en.Text, en.Subject
			if g.Text == "" && en.Prompt != "" {
				g.Text, g.Prompt = classText(en.Prompt, en.Class), en.Prompt
			}
		default:
			t, ok := pngmeta.Text(data, pngmeta.Key)
			if !ok {
				if e.clip == "" {
					break // DINO alone needs no prompt
				}
				return nil, nil, fmt.Errorf("harmony eval: --images %s: no prompt: the picture has no PNG \"parameters\" text; give --prompts or --prompt", p)
			}
			pp := pngmeta.Parse(t)
			class := pp.Fields["Class"]
			if class == "" {
				class = pp.Fields["Source class"]
			}
			g.Text, g.Prompt, g.Subject = classText(pp.Prompt, class), pp.Prompt, class
		}
		gen = append(gen, g)
	}

	var real []eval.Real
	if len(e.refs) == 0 {
		for _, g := range gen {
			real = append(real, eval.Real{Picture: eval.Picture{Name: g.Name, Image: g.Image}})
		}
	} else {
		refs, err := expand("--reference", e.refs)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range refs {
			im, _, err := readPicture("--reference", p)
			if err != nil {
				return nil, nil, err
			}
			real = append(real, eval.Real{Picture: eval.Picture{Name: p, Image: im}})
		}
	}
	if e.inputPhoto != "" {
		// The photo counts among the pairwise references only when it is
		// one of them already (DreamBench's 00.jpg among the subject's).
		name := ""
		for _, r := range real {
			if sameFile(r.Name, e.inputPhoto) {
				name = r.Name
				break
			}
		}
		if name == "" {
			im, _, err := readPicture("--input-photo", e.inputPhoto)
			if err != nil {
				return nil, nil, err
			}
			name = e.inputPhoto
			real = append(real, eval.Real{Picture: eval.Picture{Name: name, Image: im}, InputOnly: true})
		}
		for i := range gen {
			gen[i].Input = name
		}
	}
	return gen, real, nil
}

// sameFile reports whether two paths name the same file.
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// classText is the CLIP-T text of a BLIP-Diffusion prompt: the pipeline's
// "a {class} {prompt}" (one repetition), the class noun standing for the
// subject. Without a class the prompt is taken as it is.
func classText(prompt, class string) string {
	if strings.TrimSpace(class) == "" {
		return strings.TrimSpace(prompt)
	}
	return strings.TrimSpace(tokenizer.BuildPrompt(prompt, class, 1, 1))
}

// promptList reads --prompt/--prompts into one entry per picture, or nil
// when the pictures' own parameters are to be read.
func (e *evalFlags) promptList(paths []string) ([]promptEntry, error) {
	var list []promptEntry
	src := "--prompt"
	switch {
	case len(e.prompts) > 0:
		for _, p := range e.prompts {
			list = append(list, promptEntry{Text: p})
		}
	case e.promptsFile != "":
		src = "--prompts " + e.promptsFile
		data, err := os.ReadFile(e.promptsFile)
		if err != nil {
			return nil, fmt.Errorf("harmony eval: --prompts: %v", err)
		}
		if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "[") {
			var raw []json.RawMessage
			if err := json.Unmarshal(data, &raw); err != nil {
				return nil, fmt.Errorf("harmony eval: --prompts %s: not a JSON list: %v", e.promptsFile, err)
			}
			for i, r := range raw {
				var en promptEntry
				var s string
				if err := json.Unmarshal(r, &s); err == nil {
					en.Text = s
				} else if err := json.Unmarshal(r, &en); err != nil {
					return nil, fmt.Errorf("harmony eval: --prompts %s: element %d: want a string or an object with image, text or prompt, class, subject: %v", e.promptsFile, i, err)
				}
				if en.Text == "" && en.Prompt == "" {
					return nil, fmt.Errorf("harmony eval: --prompts %s: element %d has no text or prompt", e.promptsFile, i)
				}
				list = append(list, en)
			}
		} else {
			for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					list = append(list, promptEntry{Text: l})
				}
			}
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("harmony eval: --prompts %s: no prompts in the file", e.promptsFile)
		}
	default:
		return nil, nil
	}
	// Entries naming their picture are matched by path or base name.
	byImage := map[string]promptEntry{}
	for _, en := range list {
		if en.Image != "" {
			byImage[en.Image] = en
		}
	}
	if len(byImage) > 0 {
		out := make([]promptEntry, len(paths))
		for i, p := range paths {
			en, ok := byImage[p]
			if !ok {
				en, ok = byImage[filepath.Base(p)]
			}
			if !ok {
				return nil, fmt.Errorf("harmony eval: %s: no entry for picture %s", src, p)
			}
			out[i] = en
		}
		return out, nil
	}
	switch len(list) {
	case len(paths):
		return list, nil
	case 1:
		out := make([]promptEntry, len(paths))
		for i := range out {
			out[i] = list[0]
		}
		return out, nil
	}
	return nil, fmt.Errorf("harmony eval: %s gives %d prompts for %d pictures; give one for all or one per picture", src, len(list), len(paths))
}
