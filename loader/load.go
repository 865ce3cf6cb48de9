// load.go is the entry point: a model from a pack, a diffusers folder or a
// diffusers repository URL, placed on a tensor.Backend.
package loader

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"

	"harmony/engine/tensor"
)

// Options configure a load.
type Options struct {
	// Precision of the weights on the device (default PrecisionF16: see
	// StorageType).
	Precision Precision
	// Variant selects diffusers weight files such as "fp16"
	// (model.fp16.safetensors); "" reads the full-precision files, which
	// keeps f32 biases and norms exact. Packs ignore it.
	Variant string
	// Components restricts the weights loaded (nil: every model component).
	// Configs and tokenizer files are always read.
	Components []string
	// Shapes checks tensor shapes against the configs (nil: no check).
	Shapes ShapeTable
	// Keep, when set, selects the tensors loaded by component and
	// canonical name (the vision half of a whole CLIPModel checkpoint);
	// the others are neither read nor checked.
	Keep func(component, name string) bool
	// Progress is called as bytes arrive (from the loading goroutine).
	Progress func(Progress)
	// Cache keeps pieces across loads (nil: none). Pack shards are keyed
	// by their SHA-256; pieces of other files by URL, size, tag and range.
	Cache Cache
	// PieceSize is the most bytes read and held at once from a diffusers
	// file (default DefaultPieceSize). Pack shards are read whole.
	PieceSize int64
	// ChunkSize is the most converted bytes uploaded at once (default
	// DefaultChunkSize).
	ChunkSize int
	// AllowOverflow keeps finite weights beyond float16's range, which
	// become ±Inf, instead of refusing them. NaN and ±Inf stored in a
	// diffusers folder's files are refused either way; a pack's stored
	// infinities were kept on purpose when it was written and load.
	AllowOverflow bool
}

func (o *Options) defaults() Options {
	var d Options
	if o != nil {
		d = *o
	}
	if d.Precision == "" {
		d.Precision = PrecisionF16
	}
	if d.PieceSize <= 0 {
		d.PieceSize = DefaultPieceSize
	}
	if d.ChunkSize < 64 {
		d.ChunkSize = DefaultChunkSize
	}
	return d
}

// keptShapes is Shapes without the names Keep leaves out.
func (o *Options) keptShapes() ShapeTable {
	if o.Shapes == nil || o.Keep == nil {
		return o.Shapes
	}
	return func(comp string, config []byte) (map[string][]int, error) {
		want, err := o.Shapes(comp, config)
		if err != nil || want == nil {
			return want, err
		}
		kept := map[string][]int{}
		for n, s := range want {
			if o.Keep(comp, n) {
				kept[n] = s
			}
		}
		return kept, nil
	}
}

func (o *Options) wants(comp string) bool {
	if o.Components == nil {
		return true
	}
	for _, c := range o.Components {
		if c == comp {
			return true
		}
	}
	return false
}

// Model is a loaded pipeline: its layout, configs, tokenizer files and the
// weights of each model component on the backend.
type Model struct {
	Source     string                     // folder or URL it came from
	Index      []byte                     // model_index.json
	Components []Component                // from model_index.json, by name
	Configs    map[string][]byte          // component → config.json, scheduler_config.json, preprocessor_config.json or tokenizer_config.json
	Files      map[string][]byte          // tokenizer files by path ("tokenizer/vocab.json", "qformer_tokenizer/vocab.txt")
	Weights    map[string]*tensor.Weights // model component → weights (names without the component prefix)
}

// Component returns the named component.
func (m *Model) Component(name string) (Component, bool) {
	for _, c := range m.Components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// BertVocab returns a BERT vocab.txt found with the model, or nil.
func (m *Model) BertVocab() []byte {
	for _, n := range BertVocabFiles {
		if b := m.Files[n]; b != nil {
			return b
		}
	}
	for _, c := range m.Components {
		if b := m.Files[c.Name+"/vocab.txt"]; b != nil {
			return b
		}
	}
	return nil
}

// Free releases every weight on b.
func (m *Model) Free(b tensor.Backend) {
	for _, w := range m.Weights {
		w.Free(b)
	}
}

// backendTarget allocates weights on a backend and uploads into them.
type backendTarget struct {
	b       tensor.Backend
	weights map[string]*tensor.Weights
	all     []*tensor.Tensor
}

func (t *backendTarget) alloc(tp *tensorPlan) error {
	w := t.weights[tp.comp]
	if w == nil {
		w = tensor.NewWeights(tp.comp)
		t.weights[tp.comp] = w
	}
	x := t.b.NewWeight(tp.comp+"."+tp.name, tp.out, tp.shape...)
	tp.dst = x
	w.Put(tp.name, x)
	t.all = append(t.all, x)
	return t.check()
}

func (t *backendTarget) write(tp *tensorPlan, off int64, data []byte) error {
	t.b.Upload(tp.dst.(*tensor.Tensor), off, data)
	return nil
}

func (t *backendTarget) check() error {
	if err := t.b.Err(); err != nil {
		return fmt.Errorf("loader: uploading weights: %w", err)
	}
	return nil
}

func (t *backendTarget) free() {
	t.b.Free(t.all...)
	t.all = nil
}

// Load loads the model at src onto b: a pack when src has a manifest.json,
// else a diffusers folder (local or a repository URL, read in place).
func Load(ctx context.Context, src Source, b tensor.Backend, opt *Options) (*Model, error) {
	f, err := src.Open(ctx, ManifestName)
	if err == nil {
		f.Close()
		return LoadPack(ctx, src, b, opt)
	}
	if !notFound(err) {
		return nil, err
	}
	return LoadDiffusers(ctx, src, b, opt)
}

// LoadDiffusers loads a diffusers folder or repository: model_index.json,
// configs, tokenizer files, and each model component's weights streamed
// from its safetensors or torch .bin files.
func LoadDiffusers(ctx context.Context, src Source, b tensor.Backend, opt *Options) (*Model, error) {
	o := opt.defaults()
	d, err := openDiffusers(ctx, src, &o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	ws, err := d.toBackend(ctx, b, &o)
	if err != nil {
		return nil, err
	}
	m := d.model
	m.Weights = ws
	for _, dc := range d.comps {
		if m.Weights[dc.c.Name] == nil {
			m.Weights[dc.c.Name] = tensor.NewWeights(dc.c.Name)
		}
	}
	return m, nil
}

// LoadFile loads the tensors of one safetensors or torch .bin file as a
// component's weights (names canonicalized, int64 buffers skipped).
func LoadFile(ctx context.Context, src Source, name, component string, b tensor.Backend, opt *Options) (*tensor.Weights, error) {
	o := opt.defaults()
	w, err := openWeightFile(ctx, src, name)
	if err != nil {
		return nil, err
	}
	d := &diffusers{src: src, model: &Model{Source: src.String()}}
	d.comps = append(d.comps, &diffComp{c: Component{Name: component, Kind: KindModel}, files: []*weightFile{w}})
	defer d.close()
	ws, err := d.toBackend(ctx, b, &o)
	if err != nil {
		return nil, err
	}
	if ws[component] == nil {
		return tensor.NewWeights(component), nil
	}
	return ws[component], nil
}

// toBackend plans the opened components' tensors and moves them onto b;
// on failure nothing stays there.
func (d *diffusers) toBackend(ctx context.Context, b tensor.Backend, o *Options) (map[string]*tensor.Weights, error) {
	tgt := &backendTarget{b: b, weights: map[string]*tensor.Weights{}}
	if err := d.plan(o, o.Precision); err != nil {
		return nil, err
	}
	if err := d.transfer(ctx, tgt, o); err != nil {
		tgt.free()
		return nil, err
	}
	return tgt.weights, nil
}

// diffusers is an opened diffusers layout.
type diffusers struct {
	src   Source
	model *Model
	comps []*diffComp // model components whose weights are wanted
}

type diffComp struct {
	c      Component
	files  []*weightFile
	plans  []*tensorPlan                 // sorted by name
	byFile map[*weightFile][]*tensorPlan // the same, by file
}

func (d *diffusers) close() {
	for _, c := range d.comps {
		closeWeights(c.files)
	}
}

// openDiffusers reads model_index.json, the small files, and the headers
// of the wanted components' weight files.
func openDiffusers(ctx context.Context, src Source, o *Options) (*diffusers, error) {
	idx, err := ReadAll(ctx, src, "model_index.json", maxConfig)
	if err != nil {
		return nil, err
	}
	comps, err := ParseModelIndex(idx, src.String()+"/model_index.json")
	if err != nil {
		return nil, err
	}
	configs, files, err := readSmallFiles(ctx, src, comps)
	if err != nil {
		return nil, err
	}
	d := &diffusers{src: src, model: &Model{Source: src.String(), Index: idx, Components: comps, Configs: configs, Files: files}}
	for _, c := range comps {
		if c.Kind != KindModel || !o.wants(c.Name) {
			continue
		}
		ws, err := findWeights(ctx, src, c, o.Variant)
		if err != nil {
			d.close()
			return nil, err
		}
		d.comps = append(d.comps, &diffComp{c: c, files: ws})
	}
	for _, name := range o.Components {
		if c, ok := d.model.Component(name); !ok || c.Kind != KindModel {
			d.close()
			return nil, fmt.Errorf("loader: %s: no model component %q in model_index.json", src.String(), name)
		}
	}
	return d, nil
}

// plan maps names, skips buffers, picks storage types and checks shapes.
// storage gives each tensor's type at the destination.
func (d *diffusers) plan(o *Options, storage Precision) error {
	for _, dc := range d.comps {
		seen := map[string]string{}
		have := map[string][]int{}
		where := map[string]string{}
		dc.plans, dc.byFile = nil, map[*weightFile][]*tensorPlan{}
		for _, w := range dc.files {
			for _, ti := range w.tensors() {
				if Skip(ti.Name, ti.DType) {
					continue
				}
				name := CanonicalName(ti.Name)
				if o.Keep != nil && !o.Keep(dc.c.Name, name) {
					continue
				}
				if prev, dup := seen[name]; dup {
					return formatErr(w.file.Name(), ti.Name, "same tensor as %q", prev)
				}
				seen[name] = ti.Name
				if !ti.DType.IsFloat() {
					return &TensorError{Kind: TensorDType, File: w.file.Name(), Component: dc.c.Name, Tensor: ti.Name, DType: ti.DType}
				}
				shape := canonicalShape(name, ti.Shape)
				have[name], where[name] = shape, w.file.Name()
				tp := &tensorPlan{
					comp: dc.c.Name, name: name, info: ti, shape: shape,
					out: StorageType(storage, name, shape),
				}
				dc.plans = append(dc.plans, tp)
				dc.byFile[w] = append(dc.byFile[w], tp)
			}
		}
		sort.Slice(dc.plans, func(i, j int) bool { return dc.plans[i].name < dc.plans[j].name })
		if err := checkShapes(o.keptShapes(), dc.c.Name, d.src.String()+"/"+dc.c.Name, d.model.Configs[dc.c.Name], have, where, seen); err != nil {
			return err
		}
	}
	return nil
}

// filePlans builds the spans and pieces of every weight file.
func (d *diffusers) filePlans(tgt target, cv *conv, o *Options) ([]*filePlan, error) {
	var out []*filePlan
	for _, dc := range d.comps {
		byFile := dc.byFile
		for _, w := range dc.files {
			fp := &filePlan{file: w.file}
			if w.st != nil {
				for _, tp := range byFile[w] {
					fp.spans = append(fp.spans, fileSpan{tp.info.Offset, tp.info.Offset + tp.info.Size, newTensorSink(tp, tgt, cv)})
				}
			} else {
				entries := map[string]*entrySink{}
				for _, tp := range byFile[w] {
					es := entries[tp.info.Entry]
					if es == nil {
						e := w.torch.dir.find(tp.info.Entry)
						if err := e.checkStored(w.file.Name(), tp.info.Name); err != nil {
							return nil, err
						}
						es = newEntrySink(e, w.file.Name())
						entries[tp.info.Entry] = es
						fp.spans = append(fp.spans, fileSpan{e.offset, e.next, es})
					}
					es.subs = append(es.subs, entrySub{begin: tp.info.Offset, end: tp.info.Offset + tp.info.Size, sink: newTensorSink(tp, tgt, cv), name: tp.info.Name})
				}
				for _, es := range entries {
					sort.SliceStable(es.subs, func(i, j int) bool { return es.subs[i].begin < es.subs[j].begin })
				}
			}
			sort.Slice(fp.spans, func(i, j int) bool { return fp.spans[i].off < fp.spans[j].off })
			if err := sortedSpans(fp.spans, w.file.Name()); err != nil {
				return nil, err
			}
			fp.pieces = makePieces(fp.spans, o.PieceSize, rangeKey(w.file))
			out = append(out, fp)
		}
	}
	return out, nil
}

// transfer allocates and streams every planned tensor to tgt.
func (d *diffusers) transfer(ctx context.Context, tgt target, o *Options) error {
	cv := &conv{chunk: o.ChunkSize, allowOverflow: o.AllowOverflow}
	fps, err := d.filePlans(tgt, cv, o) // refuses compressed entries before anything is allocated
	if err != nil {
		return err
	}
	for _, dc := range d.comps {
		for _, tp := range dc.plans {
			if err := tgt.alloc(tp); err != nil {
				return err
			}
		}
	}
	return runPlans(ctx, fps, tgt, o)
}

// runPlans reads the files' pieces in order.
func runPlans(ctx context.Context, fps []*filePlan, tgt target, o *Options) error {
	r := &runner{ctx: ctx, cache: o.Cache, progress: o.Progress, tgt: tgt}
	var largest int64
	for _, fp := range fps {
		for _, pc := range fp.pieces {
			r.total += pc.end - pc.off
			largest = max(largest, pc.end-pc.off)
		}
	}
	// One buffer for every piece, with room for the cache's digest.
	r.buf = make([]byte, 0, largest+sha256.Size)
	r.report("", false, true)
	for _, fp := range fps {
		if err := r.run(fp); err != nil {
			return err
		}
	}
	return tgt.check()
}
