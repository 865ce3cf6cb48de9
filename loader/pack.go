// pack.go reads and writes the engine's pack format (loader/PACK.md): a
// manifest.json naming every tensor's shard, offset and size, beside shard
// files of about 32 MiB that a browser fetches one at a time, checks by
// SHA-256 and uploads straight into GPU buffers.
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"harmony/engine/tensor"
)

// Pack format constants (PACK.md §1).
const (
	ManifestName     = "manifest.json"
	PackFormat       = "harmony-pack"
	PackVersion      = 1
	PackAlignment    = 256
	DefaultShardSize = 32 << 20
	maxManifest      = 64 << 20
)

// Manifest is manifest.json.
type Manifest struct {
	Format     string                     `json:"format"`      // "harmony-pack"
	Version    int                        `json:"version"`     // 1
	Alignment  int                        `json:"alignment"`   // tensor offsets are multiples of this (256)
	ModelIndex json.RawMessage            `json:"model_index"` // model_index.json
	Configs    map[string]json.RawMessage `json:"configs"`     // component → its config file's JSON
	Files      []PackFile                 `json:"files"`       // tokenizer files stored beside the manifest
	Tensors    []PackTensor               `json:"tensors"`
	Shards     []PackShard                `json:"shards"`
}

// PackFile is a small file copied verbatim.
type PackFile struct {
	Path   string `json:"path"`   // relative path, "tokenizer/vocab.json"
	Bytes  int64  `json:"bytes"`  // size
	SHA256 string `json:"sha256"` // hex digest
}

// PackTensor places one tensor.
type PackTensor struct {
	Name      string `json:"name"`      // state-dict name within the component
	Component string `json:"component"` // "unet"
	DType     DType  `json:"dtype"`     // "F16" or "F32" (also "BF16" when read)
	Shape     []int  `json:"shape"`
	Shard     int    `json:"shard"`  // index into shards
	Offset    int64  `json:"offset"` // byte offset in the shard, a multiple of alignment
	Bytes     int64  `json:"bytes"`  // numel × dtype size
}

// PackShard is one shard file.
type PackShard struct {
	File   string `json:"file"`   // relative path, "shard-00000.bin"
	Bytes  int64  `json:"bytes"`  // size
	SHA256 string `json:"sha256"` // hex digest
}

func validSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// ParseManifest parses and checks a manifest: every tensor lies inside its
// shard at an aligned offset, no two overlap, sizes match shapes.
func ParseManifest(data []byte, file string) (*Manifest, error) {
	ferr := func(tensor, f string, a ...any) error { return formatErr(file, tensor, f, a...) }
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, ferr("", "bad JSON: %v", err)
	}
	if m.Format != PackFormat {
		return nil, ferr("", "format %q, not %q", m.Format, PackFormat)
	}
	if m.Version != PackVersion {
		return nil, ferr("", "pack version %d; this build reads version %d", m.Version, PackVersion)
	}
	if m.Alignment < 4 || m.Alignment > 1<<20 || m.Alignment&(m.Alignment-1) != 0 {
		return nil, ferr("", "alignment %d is not a power of two between 4 and 1 MiB", m.Alignment)
	}
	if _, err := ParseModelIndex(m.ModelIndex, file+": model_index"); err != nil {
		return nil, err
	}
	for c, v := range m.Configs {
		if validName(c) != nil || strings.Contains(c, "/") || !isJSONObject(v) {
			return nil, ferr("", "bad config entry %q", c)
		}
	}
	paths := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		// Files are read whole into memory: no larger than a tokenizer file
		// may be.
		if validName(f.Path) != nil || paths[f.Path] || f.Bytes < 0 || f.Bytes > maxTokenizer || !validSHA(f.SHA256) {
			return nil, ferr("", "bad file entry %q", f.Path)
		}
		paths[f.Path] = true
	}
	for i, s := range m.Shards {
		if validName(s.File) != nil || paths[s.File] || s.Bytes < 0 || !validSHA(s.SHA256) {
			return nil, ferr("", "bad shard %d (%q)", i, s.File)
		}
		paths[s.File] = true
	}
	type span struct {
		off, end int64
		name     string
	}
	byShard := make([][]span, len(m.Shards))
	names := map[string]bool{}
	for _, t := range m.Tensors {
		id := t.Component + "." + t.Name
		if t.Name == "" || validName(t.Component) != nil || strings.Contains(t.Component, "/") {
			return nil, ferr(id, "bad name or component")
		}
		if names[id] {
			return nil, ferr(id, "listed twice")
		}
		names[id] = true
		if t.DType != F16 && t.DType != F32 && t.DType != BF16 {
			return nil, &TensorError{Kind: TensorDType, File: file, Component: t.Component, Tensor: t.Name, DType: t.DType}
		}
		if len(t.Shape) > maxRank {
			return nil, ferr(id, "rank %d exceeds %d", len(t.Shape), maxRank)
		}
		numel := int64(1)
		for _, d := range t.Shape {
			if d < 0 || d > math.MaxInt32 || (d != 0 && numel > math.MaxInt64/8/int64(d)) {
				return nil, ferr(id, "bad shape %v", t.Shape)
			}
			numel *= int64(d)
		}
		if t.Bytes != numel*int64(t.DType.Size()) {
			return nil, ferr(id, "%s%v needs %d bytes, the manifest says %d", t.DType, t.Shape, numel*int64(t.DType.Size()), t.Bytes)
		}
		if t.Shard < 0 || t.Shard >= len(m.Shards) {
			return nil, ferr(id, "shard %d does not exist", t.Shard)
		}
		sh := m.Shards[t.Shard]
		if t.Offset < 0 || t.Offset%int64(m.Alignment) != 0 || t.Offset > sh.Bytes || t.Bytes > sh.Bytes-t.Offset {
			return nil, ferr(id, "offset %d (+%d bytes) is unaligned or outside %s (%d bytes)", t.Offset, t.Bytes, sh.File, sh.Bytes)
		}
		byShard[t.Shard] = append(byShard[t.Shard], span{t.Offset, t.Offset + t.Bytes, id})
	}
	for i, ss := range byShard {
		sort.Slice(ss, func(a, b int) bool { return ss[a].off < ss[b].off })
		for j := 1; j < len(ss); j++ {
			if ss[j].off < ss[j-1].end {
				return nil, ferr(ss[j].name, "overlaps %q in %s", ss[j-1].name, m.Shards[i].File)
			}
		}
	}
	return &m, nil
}

// LoadPack loads a pack: the manifest, its files, and the wanted tensors,
// one verified shard at a time.
func LoadPack(ctx context.Context, src Source, b tensor.Backend, opt *Options) (*Model, error) {
	o := opt.defaults()
	mb, err := ReadAll(ctx, src, ManifestName, maxManifest)
	if err != nil {
		return nil, err
	}
	where := src.String() + "/" + ManifestName
	man, err := ParseManifest(mb, where)
	if err != nil {
		return nil, err
	}
	comps, _ := ParseModelIndex(man.ModelIndex, where)
	m := &Model{Source: src.String(), Index: []byte(man.ModelIndex), Components: comps, Configs: map[string][]byte{}, Files: map[string][]byte{}}
	for c, v := range man.Configs {
		m.Configs[c] = []byte(v)
	}
	for _, f := range man.Files {
		data, err := readVerified(ctx, src, f.Path, f.Bytes, f.SHA256, o.Cache)
		if err != nil {
			return nil, err
		}
		m.Files[f.Path] = data
	}
	for _, c := range comps {
		if c.Kind == KindTokenizer && m.Configs[c.Name] == nil && m.Files[c.ConfigFile()] != nil {
			m.Configs[c.Name] = m.Files[c.ConfigFile()]
		}
	}
	for _, name := range o.Components {
		if c, ok := m.Component(name); !ok || c.Kind != KindModel {
			return nil, fmt.Errorf("loader: %s: no model component %q in the pack", src.String(), name)
		}
	}

	// Plan the wanted tensors, by shard.
	byShard := map[int][]*tensorPlan{}
	have := map[string]map[string][]int{}
	var plans []*tensorPlan
	for _, t := range man.Tensors {
		if !o.wants(t.Component) || (o.Keep != nil && !o.Keep(t.Component, t.Name)) {
			continue
		}
		sh := man.Shards[t.Shard]
		tp := &tensorPlan{
			comp: t.Component, name: t.Name, shape: t.Shape,
			info: TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape, File: sh.File, Offset: t.Offset, Size: t.Bytes},
			out:  StorageType(o.Precision, t.Name, t.Shape),
		}
		plans = append(plans, tp)
		byShard[t.Shard] = append(byShard[t.Shard], tp)
		if have[t.Component] == nil {
			have[t.Component] = map[string][]int{}
		}
		have[t.Component][t.Name] = t.Shape
	}
	for _, c := range comps {
		if c.Kind != KindModel || !o.wants(c.Name) {
			continue
		}
		where := map[string]string{}
		for n := range have[c.Name] {
			where[n] = src.String() + "/" + ManifestName
		}
		if err := checkShapes(o.keptShapes(), c.Name, src.String()+"/"+ManifestName, m.Configs[c.Name], have[c.Name], where, nil); err != nil {
			return nil, err
		}
	}
	tgt := &backendTarget{b: b, weights: map[string]*tensor.Weights{}}
	fail := func(err error) (*Model, error) {
		tgt.free()
		return nil, err
	}
	for _, tp := range plans {
		if err := tgt.alloc(tp); err != nil {
			return fail(err)
		}
	}
	// A pack's infinities were kept on purpose when it was written (and
	// its shards are checked by SHA-256); NaN is refused all the same.
	cv := &conv{chunk: o.ChunkSize, allowOverflow: true, allowInf: true}
	var fps []*filePlan
	defer func() {
		for _, fp := range fps {
			fp.file.Close()
		}
	}()
	for i, sh := range man.Shards {
		tps := byShard[i]
		if len(tps) == 0 {
			continue
		}
		f, err := src.Open(ctx, sh.File)
		if err != nil {
			return fail(err)
		}
		fp := &filePlan{file: f}
		fps = append(fps, fp)
		if f.Size() != sh.Bytes {
			return fail(formatErr(f.Name(), "", "%d bytes, the manifest says %d (truncated or replaced file)", f.Size(), sh.Bytes))
		}
		for _, tp := range tps {
			fp.spans = append(fp.spans, fileSpan{tp.info.Offset, tp.info.Offset + tp.info.Size, newTensorSink(tp, tgt, cv)})
		}
		sort.Slice(fp.spans, func(a, b int) bool { return fp.spans[a].off < fp.spans[b].off })
		fp.pieces = []piece{{off: 0, end: sh.Bytes, sha: sh.SHA256, key: shardKey(sh.SHA256)}}
	}
	if err := runPlans(ctx, fps, tgt, &o); err != nil {
		return fail(err)
	}
	m.Weights = tgt.weights
	for _, c := range comps {
		if c.Kind == KindModel && o.wants(c.Name) && m.Weights[c.Name] == nil {
			m.Weights[c.Name] = tensor.NewWeights(c.Name)
		}
	}
	return m, nil
}

// shardKey is the cache key of a shard: its content.
func shardKey(sha string) string { return "pack/sha256/" + sha }

// readVerified reads a small file listed with its size and digest,
// through the cache when there is one.
func readVerified(ctx context.Context, src Source, path string, size int64, sha string, cache Cache) ([]byte, error) {
	if cache != nil {
		if got, ok, err := cache.Get(ctx, shardKey(sha), nil); err == nil && ok {
			if data, good := verifyEntry(got, size, sha); good {
				return data, nil
			}
			cache.Delete(ctx, shardKey(sha))
		}
	}
	data, err := ReadAll(ctx, src, path, maxTokenizer)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != sha || int64(len(data)) != size {
		return nil, &HashError{File: src.String() + "/" + path, Want: sha, Got: got}
	}
	if cache != nil {
		if err := cache.Put(ctx, shardKey(sha), append(data[:len(data):len(data)], sum[:]...)); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// PackOptions configure WritePack.
type PackOptions struct {
	ShardSize int64             // target shard size (default DefaultShardSize); a larger tensor gets a shard of its own
	Variant   string            // diffusers weight variant to read ("" full precision)
	Shapes    ShapeTable        // shape check (nil: none)
	Progress  func(Progress)    // bytes read from the source
	Extra     map[string][]byte // more files to include by path (a BERT vocab.txt)
	PieceSize int64             // as in Options
	ChunkSize int               // as in Options
	// AllowOverflow keeps finite weights beyond float16's ±65504 as ±Inf
	// instead of refusing the tensor.
	AllowOverflow bool
}

// packPlace is where a tensor goes in the pack.
type packPlace struct {
	shard int
	off   int64
}

// packTarget writes converted tensors into shard files.
type packTarget struct {
	files []*os.File
	err   error
}

func (t *packTarget) alloc(tp *tensorPlan) error { return nil }

func (t *packTarget) write(tp *tensorPlan, off int64, data []byte) error {
	pl := tp.dst.(packPlace)
	if _, err := t.files[pl.shard].WriteAt(data, pl.off+off); err != nil {
		return fmt.Errorf("loader: writing %s: %w", t.files[pl.shard].Name(), err)
	}
	return nil
}

func (t *packTarget) check() error { return t.err }

// WritePack converts the diffusers folder at src into a pack in outDir:
// float tensors in the engine's f16 policy (StorageType with
// PrecisionF16), int64 buffers dropped, tensors aligned to PackAlignment
// and never split across shards. Shards and files are written under
// temporary names and renamed when complete; manifest.json comes last, so
// a folder without it is never a pack.
func WritePack(ctx context.Context, src Source, outDir string, opt *PackOptions) (*Manifest, error) {
	var po PackOptions
	if opt != nil {
		po = *opt
	}
	if po.ShardSize <= 0 {
		po.ShardSize = DefaultShardSize
	}
	o := po.options()
	d, err := openDiffusers(ctx, src, &o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	return writePack(ctx, d, outDir, po, o)
}

// options are the load options a pack is written with.
func (po PackOptions) options() Options {
	return (&Options{Variant: po.Variant, Shapes: po.Shapes, Progress: po.Progress, PieceSize: po.PieceSize, ChunkSize: po.ChunkSize, AllowOverflow: po.AllowOverflow}).defaults()
}

// writePack writes the opened components of d as a pack (WritePack).
func writePack(ctx context.Context, d *diffusers, outDir string, po PackOptions, o Options) (*Manifest, error) {
	if err := d.plan(&o, PrecisionF16); err != nil {
		return nil, err
	}
	man := &Manifest{Format: PackFormat, Version: PackVersion, Alignment: PackAlignment,
		ModelIndex: d.model.Index, Configs: map[string]json.RawMessage{}}
	for _, c := range d.model.Components {
		if cfg := d.model.Configs[c.Name]; cfg != nil && c.Kind != KindTokenizer {
			man.Configs[c.Name] = cfg
		}
	}

	// Place every tensor: components and names in order, each shard filled
	// up to the shard size; a tensor larger than that gets a shard of its
	// own while the open shard stays open.
	var shardSizes []int64
	open := -1
	for _, dc := range d.comps {
		for _, tp := range dc.plans {
			n := int64(tensor.Numel(tp.shape) * tp.out.Size())
			var sh int
			var off int64
			switch {
			case n > po.ShardSize:
				sh = len(shardSizes)
				shardSizes = append(shardSizes, 0)
			default:
				if open >= 0 {
					off = (shardSizes[open] + PackAlignment - 1) / PackAlignment * PackAlignment
				}
				if open < 0 || off+n > po.ShardSize {
					open, off = len(shardSizes), 0
					shardSizes = append(shardSizes, 0)
				}
				sh = open
			}
			shardSizes[sh] = off + n
			tp.dst = packPlace{sh, off}
			dt := F32
			if tp.out == tensor.F16 {
				dt = F16
			}
			man.Tensors = append(man.Tensors, PackTensor{Name: tp.name, Component: tp.comp, DType: dt, Shape: tp.shape, Shard: sh, Offset: off, Bytes: n})
		}
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	// An old manifest would make a half-rewritten folder look complete.
	if err := os.Remove(filepath.Join(outDir, ManifestName)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("loader: %w", err)
	}
	tgt := &packTarget{}
	defer func() {
		for _, f := range tgt.files {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for i, n := range shardSizes {
		name := fmt.Sprintf("shard-%05d.bin", i)
		f, err := os.Create(filepath.Join(outDir, name+".tmp"))
		if err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
		tgt.files = append(tgt.files, f)
		if err := f.Truncate(n); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
		man.Shards = append(man.Shards, PackShard{File: name, Bytes: n})
	}
	if err := d.transfer(ctx, tgt, &o); err != nil {
		return nil, err
	}
	for i, f := range tgt.files {
		sum, err := hashFile(f)
		if err != nil {
			return nil, err
		}
		man.Shards[i].SHA256 = sum
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
	}
	for i, f := range tgt.files {
		f.Close()
		if err := os.Rename(f.Name(), filepath.Join(outDir, man.Shards[i].File)); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
	}
	tgt.files = nil

	files := map[string][]byte{}
	for p, b := range d.model.Files {
		files[p] = b
	}
	for p, b := range po.Extra {
		if err := validName(p); err != nil {
			return nil, err
		}
		files[p] = b
	}
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		sum := sha256.Sum256(files[p])
		if err := writeAtomic(filepath.Join(outDir, filepath.FromSlash(p)), files[p]); err != nil {
			return nil, err
		}
		man.Files = append(man.Files, PackFile{Path: p, Bytes: int64(len(files[p])), SHA256: hex.EncodeToString(sum[:])})
	}
	mj, err := json.MarshalIndent(man, "", " ")
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if _, err := ParseManifest(mj, ManifestName); err != nil {
		return nil, fmt.Errorf("loader: internal error: the written manifest does not parse: %w", err)
	}
	if err := writeAtomic(filepath.Join(outDir, ManifestName), append(mj, '\n')); err != nil {
		return nil, err
	}
	return man, nil
}

func hashFile(f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, math.MaxInt64)); err != nil {
		return "", fmt.Errorf("loader: hashing %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeAtomic writes a file through a synced temporary beside it
// (WriteFile), creating its folder.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	return WriteFile(path, data)
}
