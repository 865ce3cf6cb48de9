// diffusers.go reads the diffusers folder layout (docs/blipdiffusion.md §2):
// model_index.json names the components; each model component has a
// config.json and weights under the file names diffusers and transformers
// use (safetensors or torch .bin, optionally sharded with an index, and
// optionally as a ".fp16" variant); schedulers, image processors and
// tokenizers have their own small files.
package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"harmony/engine/tensor"
)

// Size limits for the small files.
const (
	maxConfig    = 16 << 20
	maxTokenizer = 64 << 20

	// Bounds of a sharded checkpoint's *.index.json: far above any
	// diffusers model (the largest have a few thousand tensors in tens of
	// shards).
	maxIndexTensors = 1 << 20
	maxIndexShards  = 1 << 10
)

// ComponentKind is what a model_index.json entry is.
type ComponentKind uint8

const (
	KindModel     ComponentKind = iota + 1 // config.json and weights
	KindTokenizer                          // tokenizer files
	KindScheduler                          // scheduler_config.json
	KindProcessor                          // preprocessor_config.json
)

// Component is one entry of model_index.json.
type Component struct {
	Name    string // folder name, "unet"
	Library string // "diffusers", "transformers", "blip_diffusion"
	Class   string // "UNet2DConditionModel"
	Kind    ComponentKind
}

// ConfigFile is the component's config file name for its kind.
func (c Component) ConfigFile() string {
	switch c.Kind {
	case KindScheduler:
		return c.Name + "/scheduler_config.json"
	case KindProcessor:
		return c.Name + "/preprocessor_config.json"
	case KindTokenizer:
		return c.Name + "/tokenizer_config.json"
	}
	return c.Name + "/config.json"
}

// TokenizerFiles are the files read from a tokenizer component when
// present: CLIP's BPE files and, for BERT tokenizers, vocab.txt.
var TokenizerFiles = []string{"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"}

// BertVocabFiles are where a BERT vocab.txt for the Q-Former's tokenizer
// is looked for beside the components (the released repository has none;
// docs/blipdiffusion.md §3.2): read when present.
var BertVocabFiles = []string{"qformer_tokenizer/vocab.txt", "qformer/vocab.txt"}

// ParseModelIndex lists the components of model_index.json, sorted by
// name. Entries whose value is not a [library, class] pair are pipeline
// settings (ctx_begin_pos, mean, std); [null, null] entries are absent
// components.
func ParseModelIndex(data []byte, file string) ([]Component, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, formatErr(file, "", "bad JSON: %v", err)
	}
	var out []Component
	for k, v := range raw {
		if strings.HasPrefix(k, "_") {
			continue
		}
		var pair []*string
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 {
			continue
		}
		if pair[0] == nil || pair[1] == nil {
			continue
		}
		if err := validName(k); err != nil || strings.Contains(k, "/") {
			return nil, formatErr(file, "", "bad component name %q", k)
		}
		c := Component{Name: k, Library: *pair[0], Class: *pair[1]}
		switch cl := c.Class; {
		case strings.HasSuffix(cl, "Tokenizer") || strings.HasSuffix(cl, "TokenizerFast"):
			c.Kind = KindTokenizer
		case strings.Contains(cl, "Scheduler"):
			c.Kind = KindScheduler
		case strings.HasSuffix(cl, "Processor") || strings.HasSuffix(cl, "FeatureExtractor"):
			c.Kind = KindProcessor
		default:
			c.Kind = KindModel
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, formatErr(file, "", "no components")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// weightNames lists the candidate weight files of a model component in
// the order diffusers tries them (safetensors first), the library's own
// names first. variant "fp16" gives "model.fp16.safetensors" and
// "model.safetensors.index.fp16.json".
func weightNames(library, variant string) []string {
	v := ""
	if variant != "" {
		v = "." + variant
	}
	diff := []string{"diffusion_pytorch_model" + v + ".safetensors", "diffusion_pytorch_model.safetensors.index" + v + ".json",
		"diffusion_pytorch_model" + v + ".bin", "diffusion_pytorch_model.bin.index" + v + ".json"}
	tf := []string{"model" + v + ".safetensors", "model.safetensors.index" + v + ".json",
		"pytorch_model" + v + ".bin", "pytorch_model.bin.index" + v + ".json"}
	if library == "diffusers" {
		return append(diff, tf...)
	}
	return append(tf, diff...)
}

// weightFile is one opened weight file of a component.
type weightFile struct {
	path  string // relative to the source root
	file  File
	st    *SafetensorsFile // one of st, torch
	torch *TorchFile
}

// tensors lists the file's records.
func (w *weightFile) tensors() []TensorInfo {
	if w.st != nil {
		return w.st.Tensors
	}
	return w.torch.Tensors
}

// openWeightFile opens a weight file and reads its header: a zip
// (torch.save) by its signature, else safetensors.
func openWeightFile(ctx context.Context, src Source, path string) (*weightFile, error) {
	f, err := src.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	w := &weightFile{path: path, file: f}
	var magic [4]byte
	if f.Size() >= 4 {
		if err := readFullAt(f, magic[:], 0); err != nil {
			f.Close()
			return nil, err
		}
	}
	if string(magic[:]) == "PK\x03\x04" {
		w.torch, err = ReadTorchZip(f, f.Size(), f.Name())
	} else {
		w.st, err = ReadSafetensorsHeader(f, f.Size(), f.Name())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// findWeights opens a model component's weight files: the first
// candidate name present, following a sharded index to its shards. With a
// variant it falls back to the full-precision files.
func findWeights(ctx context.Context, src Source, c Component, variant string) ([]*weightFile, error) {
	names := weightNames(c.Library, variant)
	if variant != "" {
		names = append(names, weightNames(c.Library, "")...)
	}
	for _, n := range names {
		path := c.Name + "/" + n
		if !strings.HasSuffix(n, ".json") {
			w, err := openWeightFile(ctx, src, path)
			if notFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			return []*weightFile{w}, nil
		}
		idx, err := ReadAll(ctx, src, path, maxConfig)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		shards, err := parseShardIndex(idx, src.String()+"/"+path)
		if err != nil {
			return nil, err
		}
		var out []*weightFile
		for _, s := range shards {
			w, err := openWeightFile(ctx, src, c.Name+"/"+s)
			if err != nil {
				closeWeights(out)
				return nil, err
			}
			out = append(out, w)
		}
		return out, nil
	}
	return nil, &SourceError{URL: src.String() + "/" + c.Name, Op: "open",
		Err: fmt.Errorf("no weight file (tried %s): %w", strings.Join(names, ", "), fs.ErrNotExist)}
}

// parseShardIndex returns the shard files a sharded-checkpoint index
// (*.index.json) maps tensors to, sorted and without repeats: plain names
// beside the index, nothing that could leave the component folder.
func parseShardIndex(data []byte, file string) ([]string, error) {
	var ix struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil || len(ix.WeightMap) == 0 {
		return nil, formatErr(file, "", "bad sharded-checkpoint index (needs a weight_map)")
	}
	if len(ix.WeightMap) > maxIndexTensors {
		return nil, formatErr(file, "", "weight_map lists %d tensors, more than %d", len(ix.WeightMap), maxIndexTensors)
	}
	var shards []string
	seen := map[string]bool{}
	for _, s := range ix.WeightMap {
		if err := validName(s); err != nil || strings.Contains(s, "/") {
			return nil, formatErr(file, "", "bad shard name %q", s)
		}
		if !seen[s] {
			seen[s] = true
			shards = append(shards, s)
		}
	}
	// Every shard is opened (its header read) before any check of the
	// tensors: a hostile index must not name thousands.
	if len(shards) > maxIndexShards {
		return nil, formatErr(file, "", "weight_map names %d shard files, more than %d", len(shards), maxIndexShards)
	}
	sort.Strings(shards)
	return shards, nil
}

func closeWeights(ws []*weightFile) {
	for _, w := range ws {
		w.file.Close()
	}
}

// legacyAttention matches the VAE mid-block attention names of diffusers
// ≤ 0.16 (docs/blipdiffusion.md §12.4). Only (en|de)coder.mid_block
// matches, so the Q-Former's attention.attention.query stays as it is.
var legacyAttention = regexp.MustCompile(`^((?:encoder|decoder)\.mid_block\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$`)

var legacyNames = map[string]string{"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}

// midAttention matches the current names, whose weights may be stored as
// 1×1 convolutions by very old checkpoints.
var midAttention = regexp.MustCompile(`^(?:encoder|decoder)\.mid_block\.attentions\.\d+\.(?:to_q|to_k|to_v|to_out\.0)\.weight$`)

// CanonicalName maps a stored state-dict name to the name the engine uses
// (legacy VAE attention: query/key/value/proj_attn → to_q/to_k/to_v/to_out.0).
func CanonicalName(name string) string {
	if m := legacyAttention.FindStringSubmatch(name); m != nil {
		return m[1] + legacyNames[m[2]] + "." + m[3]
	}
	return name
}

// canonicalShape squeezes the trailing 1×1 of a mid-block attention
// weight stored as a convolution ([C, C, 1, 1] → [C, C]).
func canonicalShape(name string, shape []int) []int {
	if len(shape) == 4 && shape[2] == 1 && shape[3] == 1 && midAttention.MatchString(name) {
		return shape[:2]
	}
	return shape
}

// ShapeTable gives, for a component and its config.json, the state-dict
// names and shapes the model code expects. The model packages provide it;
// the loader only compares. Names absent from the table are loaded
// unchecked (a table may list only what inference uses).
type ShapeTable func(component string, config []byte) (map[string][]int, error)

// checkShapes compares a component's tensors (canonical names and shapes)
// with the table, in name order so the first error is reproducible.
// files and stored give each tensor's file and stored name.
func checkShapes(table ShapeTable, comp, where string, config []byte, have map[string][]int, files, stored map[string]string) error {
	if table == nil {
		return nil
	}
	want, err := table(comp, config)
	if err != nil {
		return fmt.Errorf("loader: %s: shapes from %s/config.json: %w", where, comp, err)
	}
	if want == nil {
		return nil
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	// The first bad tensor is reported in full, the rest counted and the
	// next few named, so a config implying thousands of absent tensors
	// gives one short message.
	var first *TensorError
	for _, n := range names {
		h, ok := have[n]
		if ok && sameShape(h, want[n]) {
			continue
		}
		if first != nil {
			if len(first.Others) < tensor.ListedNames {
				first.Others = append(first.Others, n)
			}
			first.More++
			continue
		}
		if !ok {
			first = &TensorError{Kind: TensorMissing, File: where, Component: comp, Tensor: n, Want: want[n]}
		} else {
			first = &TensorError{Kind: TensorShape, File: files[n], Component: comp, Tensor: n, Stored: stored[n], Want: want[n], Have: h}
		}
	}
	if first != nil {
		return first
	}
	return nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readOptional reads a small file, returning nil when it does not exist.
func readOptional(ctx context.Context, src Source, name string, limit int64) ([]byte, error) {
	b, err := ReadAll(ctx, src, name, limit)
	if notFound(err) {
		return nil, nil
	}
	return b, err
}

// readSmallFiles reads the configs and tokenizer files of the components:
// configs are required, tokenizer files optional.
func readSmallFiles(ctx context.Context, src Source, comps []Component) (configs, files map[string][]byte, err error) {
	configs, files = map[string][]byte{}, map[string][]byte{}
	for _, c := range comps {
		if c.Kind == KindTokenizer {
			for _, n := range TokenizerFiles {
				b, err := readOptional(ctx, src, c.Name+"/"+n, maxTokenizer)
				if err != nil {
					return nil, nil, err
				}
				if b != nil {
					files[c.Name+"/"+n] = b
				}
			}
			if b := files[c.ConfigFile()]; b != nil {
				configs[c.Name] = b
			}
			continue
		}
		b, err := ReadAll(ctx, src, c.ConfigFile(), maxConfig)
		if err != nil {
			return nil, nil, err
		}
		if !json.Valid(b) {
			return nil, nil, formatErr(src.String()+"/"+c.ConfigFile(), "", "bad JSON")
		}
		configs[c.Name] = b
	}
	for _, n := range BertVocabFiles {
		b, err := readOptional(ctx, src, n, maxTokenizer)
		if err != nil {
			return nil, nil, err
		}
		if b != nil {
			files[n] = b
		}
	}
	return configs, files, nil
}

// isJSONObject reports whether b holds one JSON object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}
