// dreambench.go: `harmony dreambench`, the paper's benchmark run: a method
// grid (base model × plain/Harmony × knob settings × seeds) over a
// DreamBench-layout folder, every picture written with its parameters and
// skipped when a rerun finds it (so an interrupted run resumes), then the
// metrics of `harmony eval` and a report (dreambench_report.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"harmony/engine/bench/cputime"
	"harmony/engine/gpu"
	"harmony/engine/harmony"
	"harmony/engine/imageproc"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
	"harmony/engine/tensor"
	"harmony/loader"
)

func init() {
	register(&command{name: "dreambench", summary: "run a method grid over DreamBench, score it and write a report", run: runDreambench})
}

// DreamBench's subjects and classes (google/dreambooth,
// dataset/prompts_and_classes.txt).
var dreambenchClasses = map[string]string{
	"backpack": "backpack", "backpack_dog": "backpack", "bear_plushie": "stuffed animal", "berry_bowl": "bowl",
	"can": "can", "candle": "candle", "cat": "cat", "cat2": "cat", "clock": "clock", "colorful_sneaker": "sneaker",
	"dog": "dog", "dog2": "dog", "dog3": "dog", "dog5": "dog", "dog6": "dog", "dog7": "dog", "dog8": "dog",
	"duck_toy": "toy", "fancy_boot": "boot", "grey_sloth_plushie": "stuffed animal", "monster_toy": "toy",
	"pink_sunglasses": "glasses", "poop_emoji": "toy", "rc_car": "toy", "red_cartoon": "cartoon", "robot_toy": "toy",
	"shiny_sneaker": "sneaker", "teapot": "teapot", "vase": "vase", "wolf_plushie": "stuffed animal",
}

// DreamBench's prompt templates: {0} {1} is the subject (identifier and
// class). Live subjects (cats and dogs) get the outfit prompts, objects
// the scene prompts.
var (
	dbShared = []string{
		"a {0} {1} in the jungle", "a {0} {1} in the snow", "a {0} {1} on the beach", "a {0} {1} on a cobblestone street",
		"a {0} {1} on top of pink fabric", "a {0} {1} on top of a wooden floor", "a {0} {1} with a city in the background",
		"a {0} {1} with a mountain in the background", "a {0} {1} with a blue house in the background",
		"a {0} {1} on top of a purple rug in a forest",
	}
	dbObject = []string{
		"a {0} {1} with a wheat field in the background", "a {0} {1} with a tree and autumn leaves in the background",
		"a {0} {1} with the Eiffel Tower in the background", "a {0} {1} floating on top of water",
		"a {0} {1} floating in an ocean of milk", "a {0} {1} on top of green grass with sunflowers around it",
		"a {0} {1} on top of a mirror", "a {0} {1} on top of the sidewalk in a crowded street",
		"a {0} {1} on top of a dirt road", "a {0} {1} on top of a white rug",
	}
	dbLive = []string{
		"a {0} {1} wearing a red hat", "a {0} {1} wearing a santa hat", "a {0} {1} wearing a rainbow scarf",
		"a {0} {1} wearing a black top hat and a monocle", "a {0} {1} in a chef outfit", "a {0} {1} in a firefighter outfit",
		"a {0} {1} in a police outfit", "a {0} {1} wearing pink glasses", "a {0} {1} wearing a yellow shirt",
		"a {0} {1} in a purple wizard outfit",
	}
	dbTail = []string{"a red {0} {1}", "a purple {0} {1}", "a shiny {0} {1}", "a wet {0} {1}", "a cube shaped {0} {1}"}
	// The deformable-subject set is not published; ours is the live
	// subjects in poses that change their shape.
	dbPoses = []string{
		"a {0} {1} jumping", "a {0} {1} running", "a {0} {1} lying down", "a {0} {1} standing on its hind legs",
		"a {0} {1} stretching",
	}
)

// isLive says whether a class gets the live-subject prompts.
func isLive(class string) bool { return class == "cat" || class == "dog" }

// promptSet returns the templates of a prompt set for a class; nil means
// the subject is not part of the set (deformable: objects).
func promptSet(set string, file []string, class string) []string {
	switch set {
	case "dreambench":
		var out []string
		out = append(out, dbShared...)
		if isLive(class) {
			out = append(out, dbLive...)
		} else {
			out = append(out, dbObject...)
		}
		return append(out, dbTail...)
	case "deformable":
		if !isLive(class) {
			return nil
		}
		return dbPoses
	}
	return file
}

// blipPrompt maps a template onto BLIP-Diffusion's "a {class} {prompt}":
// a template starting "a {0} {1}" gives its rest as the prompt; one with
// words before the subject ("a red {0} {1}") folds them into the class.
func blipPrompt(template, class string) (targetClass, prompt string) {
	if rest, ok := strings.CutPrefix(template, "a {0} {1}"); ok {
		return class, strings.TrimSpace(rest)
	}
	pre, post, _ := strings.Cut(template, "{0} {1}")
	pre = strings.TrimSpace(strings.TrimPrefix(pre, "a "))
	return strings.TrimSpace(pre + " " + class), strings.TrimSpace(post)
}

// clipText is the CLIP-T text: the subject replaced by the class noun.
func clipText(template, class string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(template, "{0} {1}", class)), " ")
}

// dbBase is a base model of the grid: BLIP-Diffusion (a diffusers folder,
// pack or URL) or ELITE (its folder with image_encoder/ and the mappers).
type dbBase struct {
	name, loc string
	elite     bool
}

type dbSetting struct {
	label string
	opts  [][2]string // option name, value
}

type dbFlags struct {
	data, out, promptSet, promptsFile string
	bases                             []dbBase
	methods                           []string
	settings                          []dbSetting
	seeds                             []uint64
	subjects                          []string
	promptCount, thumb                int
	common                            [][2]string
	clip, dino, precision             string
	defaultLimits, quiet              bool
	noEval                            bool
}

// dbMethod is one column of the grid.
type dbMethod struct {
	base    dbBase
	harmony bool
	setting dbSetting
}

func (m dbMethod) name() string {
	if !m.harmony {
		return m.base.name + " plain"
	}
	if m.setting.label == "" {
		return m.base.name + " harmony"
	}
	return m.base.name + " harmony[" + m.setting.label + "]"
}

func (m dbMethod) dir() string {
	s := m.base.name + ".plain"
	if m.harmony {
		s = m.base.name + ".harmony"
		if m.setting.label != "" {
			s += "." + m.setting.label
		}
	}
	return s
}

// dbSubject is one subject folder.
type dbSubject struct {
	name, class string
	photo       string   // the model's input: the first picture
	photoMask   string   // its mask (masks/NAME.png) when there is one: ELITE's object mask
	real        []string // all its pictures
	prompts     []string // templates
}

// dbJob is one picture of the grid.
type dbJob struct {
	method  dbMethod
	subject *dbSubject
	prompt  int
	seed    uint64
	path    string // its PNG
}

func (j dbJob) maskPath() string { return strings.TrimSuffix(j.path, ".png") + ".mask.png" }

func parseDreambench(args []string) (*dbFlags, error) {
	d := &dbFlags{}
	var models, elites, methods, knobs, seeds, subjects, sets listFlag
	fs := flag.NewFlagSet("dreambench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: harmony dreambench --data DIR --out DIR [flags]

--data is a DreamBench-layout folder: one folder per subject holding its pictures
(the first by name is the model's input, all are the real pictures the metrics
compare with; masks/NAME.png beside them are used for the masked metrics). A
subject not in DreamBench names its class in class.txt. Pictures go to
OUT/images/METHOD/SUBJECT/pNN-sSEED.png (with .mask.png: Harmony's subject mask)
and are skipped when a rerun finds them; the report goes to OUT/report.

flags:`)
		fs.PrintDefaults()
	}
	fs.StringVar(&d.data, "data", "", "DreamBench-layout folder (required)")
	fs.StringVar(&d.out, "out", "", "output folder (required; rerun with the same one to resume)")
	fs.Var(&models, "model", "BLIP-Diffusion base model [NAME=]DIR|URL (repeatable; default, without --elite: the bundled tiny demo model, named tiny)")
	fs.Var(&elites, "elite", "ELITE base model [NAME=]DIR|URL with image_encoder/ and the two mappers (repeatable); the subject's masks/NAME.png, when there, is its photo's mask")
	fs.Var(&methods, "methods", "methods: plain, harmony or both (default both)")
	fs.Var(&knobs, "knobs", "a Harmony knob setting LABEL:opt=val,opt=val (repeatable; each is a method column beside Harmony's defaults)")
	fs.Var(&seeds, "seeds", "seeds (default 0,1,2,3)")
	fs.Var(&subjects, "subjects", "subjects to run (default: every subject folder)")
	fs.StringVar(&d.promptSet, "prompts", "dreambench", "prompt set: dreambench (25 per subject), deformable (live subjects, pose prompts) or a file of templates with {0} {1}")
	fs.IntVar(&d.promptCount, "prompt-count", 0, "use the first N prompts of each subject (0: all)")
	fs.Var(&sets, "set", "a pipeline option for every run, opt=val (repeatable: steps=50, width=512, guidance=7.5, …)")
	fs.StringVar(&d.clip, "clip", "", "CLIP model for CLIP-I and CLIP-T: folder or URL")
	fs.StringVar(&d.dino, "dino", "", "DINO model for DINO: folder or URL")
	fs.BoolVar(&d.noEval, "no-eval", false, "generate only (no metrics, no table)")
	fs.IntVar(&d.thumb, "thumb", 128, "contact-sheet thumbnail size in pixels")
	fs.StringVar(&d.precision, "precision", "f32", "weights on the GPU: f32 or f16")
	fs.BoolVar(&d.defaultLimits, "default-limits", false, "open the GPU with WebGPU's default limits")
	fs.BoolVar(&d.quiet, "quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("harmony dreambench: unexpected argument %q", fs.Arg(0))
	}
	if d.data == "" || d.out == "" {
		return nil, usageErrorf("harmony dreambench: --data and --out are required")
	}
	if d.thumb < 16 || d.thumb > 1024 {
		return nil, usageErrorf("harmony dreambench: --thumb must be in [16, 1024], got %d", d.thumb)
	}
	if d.promptCount < 0 {
		return nil, usageErrorf("harmony dreambench: --prompt-count must be ≥ 0, got %d", d.promptCount)
	}
	if d.precision != "f32" && d.precision != "f16" {
		return nil, usageErrorf("harmony dreambench: --precision must be f32 or f16, got %q", d.precision)
	}
	if d.clip == "" && d.dino == "" && !d.noEval {
		return nil, usageErrorf("harmony dreambench: give --clip and/or --dino for the metrics, or --no-eval")
	}
	names := map[string]bool{}
	for i, m := range append(models, elites...) {
		b := dbBase{loc: m, elite: i >= len(models)}
		if n, loc, ok := strings.Cut(m, "="); ok && !strings.Contains(n, "/") && !strings.Contains(n, ":") {
			b.name, b.loc = n, loc
		}
		if b.name == "" {
			b.name = filepath.Base(strings.TrimRight(b.loc, "/"))
		}
		if !safeName(b.name) {
			return nil, usageErrorf("harmony dreambench: --model %s: the name %q must be letters, digits, - or _ (give NAME=%s)", m, b.name, b.loc)
		}
		if names[b.name] {
			return nil, usageErrorf("harmony dreambench: --model: two models named %q; give NAME=LOCATION", b.name)
		}
		names[b.name] = true
		d.bases = append(d.bases, b)
	}
	if len(d.bases) == 0 {
		d.bases = []dbBase{{name: "tiny"}}
	}
	if len(methods) == 0 {
		methods = listFlag{"plain", "harmony"}
	}
	for _, m := range methods {
		if m != "plain" && m != "harmony" {
			return nil, usageErrorf("harmony dreambench: --methods: %q is not plain or harmony", m)
		}
		if !contains(d.methods, m) {
			d.methods = append(d.methods, m)
		}
	}
	// Every option is checked by the pipeline now, not after the first
	// pictures.
	probe := pipeline.DefaultOptions()
	probe.TargetClass = "dog"
	if len(elites) > 0 && len(models) == 0 {
		probe = pipeline.DefaultOptionsFor(pipeline.BaseELITE)
		probe.Prompt = "a S"
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, usageErrorf("harmony dreambench: --set %q: want opt=value", s)
		}
		if k == "seed" || k == "class" || k == "source-class" || k == "prompt" || k == "method" || k == "compare" {
			return nil, usageErrorf("harmony dreambench: --set %s: the grid sets %s itself", s, k)
		}
		if err := probe.Set(k, v); err != nil {
			return nil, err
		}
		d.common = append(d.common, [2]string{k, v})
	}
	labels := map[string]bool{}
	for _, kn := range knobs {
		label, body, ok := strings.Cut(kn, ":")
		if !ok || !safeName(label) {
			return nil, usageErrorf("harmony dreambench: --knobs %q: want LABEL:opt=val,opt=val with a label of letters, digits, - or _", kn)
		}
		if labels[label] || label == "default" {
			return nil, usageErrorf("harmony dreambench: --knobs: label %q given twice", label)
		}
		labels[label] = true
		st := dbSetting{label: label}
		p := probe
		for _, kv := range strings.Split(body, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, usageErrorf("harmony dreambench: --knobs %s: %q: want opt=val", label, kv)
			}
			if err := p.Set(k, v); err != nil {
				return nil, err
			}
			st.opts = append(st.opts, [2]string{k, v})
		}
		if err := p.Validate(); err != nil {
			return nil, err
		}
		d.settings = append(d.settings, st)
	}
	// The defaults are always a column: the knobs are compared with them.
	d.settings = append([]dbSetting{{}}, d.settings...)
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	if len(seeds) == 0 {
		seeds = listFlag{"0", "1", "2", "3"}
	}
	for _, s := range seeds {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, usageErrorf("harmony dreambench: --seeds: %q is not a seed (a whole number ≥ 0)", s)
		}
		d.seeds = append(d.seeds, v)
	}
	d.subjects = subjects
	switch d.promptSet {
	case "dreambench", "deformable":
	default:
		d.promptsFile = d.promptSet
		d.promptSet = "file"
	}
	return d, nil
}

func safeName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != "." && s != ".."
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// readSubjects lists the subject folders with their pictures and prompts.
func (d *dbFlags) readSubjects() ([]*dbSubject, error) {
	var file []string
	if d.promptSet == "file" {
		data, err := os.ReadFile(d.promptsFile)
		if err != nil {
			return nil, fmt.Errorf("harmony dreambench: --prompts: %v", err)
		}
		for i, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			if strings.Count(l, "{0} {1}") != 1 {
				return nil, fmt.Errorf("harmony dreambench: --prompts %s: line %d %q: a template names the subject once as {0} {1}", d.promptsFile, i+1, l)
			}
			file = append(file, l)
		}
		if len(file) == 0 {
			return nil, fmt.Errorf("harmony dreambench: --prompts %s: no templates", d.promptsFile)
		}
	}
	ents, err := os.ReadDir(d.data)
	if err != nil {
		return nil, fmt.Errorf("harmony dreambench: --data: %v", err)
	}
	want := map[string]bool{}
	for _, s := range d.subjects {
		want[s] = true
	}
	var out []*dbSubject
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || len(d.subjects) > 0 && !want[e.Name()] {
			continue
		}
		delete(want, e.Name())
		s := &dbSubject{name: e.Name()}
		dir := filepath.Join(d.data, s.name)
		if c, err := os.ReadFile(filepath.Join(dir, "class.txt")); err == nil {
			s.class = strings.TrimSpace(string(c))
		} else if c, ok := dreambenchClasses[s.name]; ok {
			s.class = c
		}
		if s.class == "" {
			return nil, fmt.Errorf("harmony dreambench: --data %s: subject %s is not a DreamBench subject; name its class in %s", d.data, s.name, filepath.Join(dir, "class.txt"))
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("harmony dreambench: --data: %v", err)
		}
		for _, f := range files {
			if !f.IsDir() && imageExts[strings.ToLower(filepath.Ext(f.Name()))] && !strings.HasPrefix(f.Name(), ".") {
				s.real = append(s.real, filepath.Join(dir, f.Name()))
			}
		}
		if len(s.real) == 0 {
			return nil, fmt.Errorf("harmony dreambench: --data %s: subject %s has no pictures", d.data, s.name)
		}
		sort.Strings(s.real)
		s.photo = s.real[0]
		if mp := filepath.Join(dir, "masks", strings.TrimSuffix(filepath.Base(s.photo), filepath.Ext(s.photo))+".png"); fileExists(mp) {
			s.photoMask = mp
		}
		s.prompts = promptSet(d.promptSet, file, s.class)
		if s.prompts == nil {
			continue
		}
		if d.promptCount > 0 && d.promptCount < len(s.prompts) {
			s.prompts = s.prompts[:d.promptCount]
		}
		out = append(out, s)
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("harmony dreambench: --subjects: no folder %s in %s", strings.Join(sortedSet(want), ", "), d.data)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("harmony dreambench: --data %s: no subject folders (for --prompts %s)", d.data, d.promptSet)
	}
	return out, nil
}

func sortedSet(m map[string]bool) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// grid lists every picture of the run, method by method.
func (d *dbFlags) grid(subjects []*dbSubject) ([]dbMethod, []dbJob) {
	var methods []dbMethod
	for _, b := range d.bases {
		for _, m := range d.methods {
			if m == "plain" {
				methods = append(methods, dbMethod{base: b})
				continue
			}
			for _, st := range d.settings {
				methods = append(methods, dbMethod{base: b, harmony: true, setting: st})
			}
		}
	}
	var jobs []dbJob
	for _, m := range methods {
		for _, s := range subjects {
			for p := range s.prompts {
				for _, seed := range d.seeds {
					jobs = append(jobs, dbJob{method: m, subject: s, prompt: p, seed: seed,
						path: filepath.Join(d.out, "images", m.dir(), s.name, fmt.Sprintf("p%02d-s%d.png", p, seed))})
				}
			}
		}
	}
	return methods, jobs
}

// options builds a job's pipeline options (the photo left out).
func (d *dbFlags) options(j dbJob) (pipeline.Options, error) {
	o := pipeline.DefaultOptions()
	if j.method.base.elite {
		o = pipeline.DefaultOptionsFor(pipeline.BaseELITE)
	}
	o.Width, o.Height = 0, 0 // the model's own size unless --set says
	for _, kv := range d.common {
		if err := o.Set(kv[0], kv[1]); err != nil {
			return o, err
		}
	}
	tmpl := j.subject.prompts[j.prompt]
	if j.method.base.elite {
		// ELITE's prompt names the subject by its placeholder word, with no
		// class word (elite.md's default).
		ph := o.Placeholder
		if ph == "" {
			ph = pipeline.ElitePlaceholder
		}
		o.Prompt = strings.ReplaceAll(tmpl, "{0} {1}", ph)
	} else {
		o.SourceClass = j.subject.class
		o.TargetClass, o.Prompt = blipPrompt(tmpl, j.subject.class)
	}
	o.Seed = j.seed
	o.Compare = false
	o.Method = pipeline.MethodPlain
	if j.method.harmony {
		o.Method = pipeline.MethodHarmony
		for _, kv := range j.method.setting.opts {
			if err := o.Set(kv[0], kv[1]); err != nil {
				return o, err
			}
		}
	}
	return o, o.Validate()
}

// done says whether a job's picture is there, made with the same settings.
// A picture made with other settings is refused: the run would mix them.
func (d *dbFlags) done(j dbJob, o *pipeline.Options) (bool, error) {
	data, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("harmony dreambench: %s: %v", j.path, err)
	}
	t, ok := pngmeta.Text(data, pngmeta.Key)
	if !ok {
		return false, fmt.Errorf("harmony dreambench: %s has no generation parameters: it is not this run's; move it away or use another --out", j.path)
	}
	got := pngmeta.Parse(t)
	want := pngmeta.Parse(pngmeta.Parameters(o, j.method.base.loc, 0, 0))
	delete(got.Fields, "Size")
	delete(want.Fields, "Size")
	if got.Prompt != want.Prompt || fmt.Sprint(got.Fields) != fmt.Sprint(want.Fields) {
		return false, fmt.Errorf("harmony dreambench: %s was made with other settings (%s; this run: %s); use another --out or remove it",
			j.path, strings.ReplaceAll(t, "\n", " / "), strings.ReplaceAll(pngmeta.Parameters(o, j.method.base.loc, 0, 0), "\n", " / "))
	}
	return true, nil
}

// dbAfterImage, when set (tests), is called after each picture written,
// with the count so far.
var dbAfterImage func(n int)

// dbStats is what a run did.
type dbStats struct {
	Planned, Generated, Skipped int
	GenSeconds                  float64 // wall time of the generated pictures (model loads excluded)
	CPUSeconds                  float64 // the process's CPU time over the same (0 where the OS does not say)
	LoadSeconds                 float64
}

func runDreambench(ctx context.Context, args []string) error {
	d, err := parseDreambench(args)
	if err != nil {
		return err
	}
	subjects, err := d.readSubjects()
	if err != nil {
		return err
	}
	photos := map[string][]byte{}
	for _, s := range subjects {
		b, err := os.ReadFile(s.photo)
		if err != nil {
			return fmt.Errorf("harmony dreambench: %v", err)
		}
		if _, _, err := imageproc.Decode(filepath.Base(s.photo), b, imageproc.DecodeOptions{}); err != nil {
			return fmt.Errorf("harmony dreambench: subject %s: %v", s.name, err)
		}
		photos[s.name] = b
	}
	methods, jobs := d.grid(subjects)
	if err := checkFolder("--out", d.out, 1<<20); err != nil {
		return errors.New(strings.Replace(err.Error(), "harmony generate:", "harmony dreambench:", 1))
	}
	st, err := d.generate(ctx, jobs, photos)
	run := d.runStats(subjects, methods, st)
	if err != nil {
		if st.Generated > 0 {
			if serr := d.saveRun(run); serr != nil {
				return fmt.Errorf("%w (and writing run.json: %v)", err, serr)
			}
		}
		return err
	}
	if err := d.saveRun(run); err != nil {
		return fmt.Errorf("harmony dreambench: %v", err)
	}
	fmt.Fprintf(os.Stderr, "%d pictures: %d generated, %d already there", st.Planned, st.Generated, st.Skipped)
	if st.Generated > 0 {
		fmt.Fprintf(os.Stderr, " (%.2f s per picture)", st.GenSeconds/float64(st.Generated))
	}
	fmt.Fprintln(os.Stderr)
	if d.noEval {
		return d.writeReportRun(ctx, subjects, methods, jobs, nil, run)
	}
	bar := newProgressBar(d.quiet)
	models, closeModels, err := openEvalModels(ctx, evalModelSpec{clip: d.clip, dino: d.dino, precision: loader.Precision(d.precision), defaultLimits: d.defaultLimits}, bar)
	bar.done()
	if err != nil {
		return err
	}
	defer closeModels()
	rep, err := d.evaluate(ctx, models, subjects, jobs)
	if err != nil {
		return err
	}
	return d.writeReportRun(ctx, subjects, methods, jobs, rep, run)
}

// generate makes the missing pictures, base by base (a base whose
// pictures are all there is not even loaded).
func (d *dbFlags) generate(ctx context.Context, jobs []dbJob, photos map[string][]byte) (dbStats, error) {
	st := dbStats{Planned: len(jobs)}
	var todo []dbJob
	opts := make(map[string]pipeline.Options)
	for _, j := range jobs {
		o, err := d.options(j)
		if err != nil {
			return st, err
		}
		ok, err := d.done(j, &o)
		if err != nil {
			return st, err
		}
		if ok {
			st.Skipped++
			continue
		}
		opts[j.path] = o
		todo = append(todo, j)
	}
	if len(todo) == 0 {
		return st, nil
	}
	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: d.defaultLimits})
	if err != nil {
		return st, err
	}
	defer dev.Close()
	b := kernels.New(dev)
	bar := newProgressBar(d.quiet)
	defer bar.done()
	var m *pipeline.Model
	var loaded string
	defer func() {
		if m != nil {
			m.Close()
		}
	}()
	for i, j := range todo {
		if m == nil || loaded != j.method.base.name {
			if m != nil {
				m.Close()
				m = nil
			}
			t0 := time.Now()
			if m, err = d.openBase(ctx, b, j.method.base, bar); err != nil {
				flag := "--model"
				if j.method.base.elite {
					flag = "--elite"
				}
				return st, fmt.Errorf("harmony dreambench: %s %s: %w", flag, j.method.base.name, err)
			}
			st.LoadSeconds += time.Since(t0).Seconds()
			loaded = j.method.base.name
		}
		o := opts[j.path]
		o.Image, o.ImageName = photos[j.subject.name], filepath.Base(j.subject.photo)
		if j.method.base.elite && j.subject.photoMask != "" {
			if o.Mask, err = os.ReadFile(j.subject.photoMask); err != nil {
				return st, fmt.Errorf("harmony dreambench: %v", err)
			}
			o.MaskName = filepath.Base(j.subject.photoMask)
		}
		left := len(todo) - i
		o.Progress = func(p pipeline.Progress) {
			frac := float64(st.Skipped+i) / float64(st.Planned)
			if p.Calls > 0 {
				frac += float64(p.Call) / float64(p.Calls) / float64(st.Planned)
			}
			eta := ""
			if i > 0 {
				per := st.GenSeconds / float64(i)
				eta = fmt.Sprintf(", %v left", time.Duration(per*(float64(left)-float64(p.Call)/float64(max(p.Calls, 1)))*float64(time.Second)).Round(time.Second))
			}
			bar.draw(frac, fmt.Sprintf("picture %d/%d (%s, %s, p%02d, seed %d)%s", st.Skipped+i+1, st.Planned, j.method.name(), j.subject.name, j.prompt, j.seed, eta), false)
		}
		t0, c0 := time.Now(), cputime.Process()
		res, err := pipeline.Generate(ctx, m, o)
		if err != nil {
			if ctx.Err() != nil {
				return st, fmt.Errorf("harmony dreambench: interrupted after %d new pictures (%d of %d there); rerun the same command to resume: %w", st.Generated, st.Generated+st.Skipped, st.Planned, err)
			}
			return st, fmt.Errorf("harmony dreambench: %s: %w", j.path, err)
		}
		if err := d.writePicture(j, &o, res); err != nil {
			return st, err
		}
		st.GenSeconds += time.Since(t0).Seconds()
		st.CPUSeconds += (cputime.Process() - c0).Seconds()
		st.Generated++
		if dbAfterImage != nil {
			dbAfterImage(st.Generated)
		}
	}
	return st, nil
}

// writePicture writes a job's picture and, where the method has one, its
// subject mask, together (the picture last: its presence marks the job
// done).
func (d *dbFlags) writePicture(j dbJob, o *pipeline.Options, res *pipeline.Result) error {
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return fmt.Errorf("harmony dreambench: %v", err)
	}
	data, err := pngmeta.PNG(res.Main.Image, o, j.method.base.loc)
	if err != nil {
		return fmt.Errorf("harmony dreambench: %s: %v", j.path, err)
	}
	if res.Mask != nil {
		md, err := maskPNG(*res.Mask, res.Main.Image.W, res.Main.Image.H, o.Harmony.MaskThreshold)
		if err != nil {
			return fmt.Errorf("harmony dreambench: %s: %v", j.maskPath(), err)
		}
		if err := loader.WriteFile(j.maskPath(), md); err != nil {
			return fmt.Errorf("harmony dreambench: %v", err)
		}
	}
	if err := loader.WriteFile(j.path, data); err != nil {
		return fmt.Errorf("harmony dreambench: %v", err)
	}
	return nil
}

// maskPNG is the engine's soft subject mask, bilinearly upsampled to the
// picture and cut at the threshold the run used (p > τ, as the method
// does): white subject, black background.
func maskPNG(m harmony.Map, w, h int, tau float64) ([]byte, error) {
	im := &pipeline.Image{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	for y := 0; y < h; y++ {
		fy := (float64(y)+0.5)*float64(m.H)/float64(h) - 0.5
		for x := 0; x < w; x++ {
			fx := (float64(x)+0.5)*float64(m.W)/float64(w) - 0.5
			if bilerp(m, fx, fy) > tau {
				i := 3 * (y*w + x)
				im.Pix[i], im.Pix[i+1], im.Pix[i+2] = 255, 255, 255
			}
		}
	}
	return im.PNG()
}

func bilerp(m harmony.Map, fx, fy float64) float64 {
	cl := func(v, n int) int { return min(max(v, 0), n-1) }
	x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
	ax, ay := fx-float64(x0), fy-float64(y0)
	at := func(x, y int) float64 { return float64(m.V[cl(y, m.H)*m.W+cl(x, m.W)]) }
	top := at(x0, y0)*(1-ax) + at(x0+1, y0)*ax
	bot := at(x0, y0+1)*(1-ax) + at(x0+1, y0+1)*ax
	return top*(1-ay) + bot*ay
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// openBase loads a base model of the grid.
func (d *dbFlags) openBase(ctx context.Context, b tensor.Backend, base dbBase, bar *progressBar) (*pipeline.Model, error) {
	if !base.elite {
		return openModel(ctx, b, base.loc, loader.Precision(d.precision), bar)
	}
	src, err := openLocation("--elite", base.loc)
	if err != nil {
		return nil, err
	}
	m, _, err := pipeline.LoadELITE(ctx, pipeline.EliteSources{Model: src}, b, &loader.Options{Precision: loader.Precision(d.precision), Progress: bar.load})
	return m, err
}
