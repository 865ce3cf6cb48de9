// Package bench proves the engine at the released model's size without
// its weights, and measures it: a shape-faithful synthetic BLIP-Diffusion
// checkpoint (random weights under the released tensor names, shapes and
// configs), the full-size stages in the WebGPU default-limits mode with
// their time and memory, and the benchmarks of `harmony bench` (kernel
// throughput, UNet steps, the tiny pipeline, load throughput).
//
// synth.go plans the synthetic checkpoint: its configs (the released
// model_index, component and tokenizer configs of engine/models/released)
// and every tensor the released files hold (catalog.BLIPDiffusion's
// stored shapes; the test compares the list with blipdiffusion_tensors.tsv),
// and draws each tensor's values from
// a generator seeded by its name, scaled so activations stay O(1) as in the
// golden tiny models.
package bench

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"harmony/engine/models/catalog"
	"harmony/engine/models/clip"
	"harmony/engine/models/elite"
	"harmony/engine/models/released"
	"harmony/engine/models/unet"
	"harmony/loader"
)

// Tensor is one tensor of the synthetic checkpoint.
type Tensor struct {
	Component string       // model component: text_encoder, qformer, unet, vae
	Name      string       // state-dict name within it
	Shape     []int        // PyTorch shape
	DType     loader.DType // F16, or I64 for the position_ids buffers
}

// Numel is the number of elements.
func (t Tensor) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Bytes is the stored size.
func (t Tensor) Bytes() int64 { return t.Numel() * int64(t.DType.Size()) }

// Synth is a planned synthetic checkpoint.
type Synth struct {
	ModelIndex []byte            // model_index.json
	Configs    map[string][]byte // component → config.json, scheduler_config.json or preprocessor_config.json
	Tensors    []Tensor          // by component, then name
	// Table is the base model's catalog table (nil: BLIP-Diffusion's):
	// its components' files are where Write puts the tensors.
	Table catalog.Table
}

// table is s.Table or BLIP-Diffusion's.
func (s *Synth) table() catalog.Table {
	if s.Table == nil {
		return catalog.BLIPDiffusion
	}
	return s.Table
}

// Plan returns the released checkpoint's layout: configs and tensors.
func Plan() (*Synth, error) {
	return PlanFrom([]byte(released.ModelIndex), map[string][]byte{
		"text_encoder":    []byte(released.TextEncoder),
		"qformer":         []byte(released.QFormer),
		"unet":            []byte(released.UNet),
		"vae":             []byte(released.VAE),
		"scheduler":       []byte(released.Scheduler),
		"image_processor": []byte(released.ImageProcessor),
	})
}

// PlanFrom plans a checkpoint of other sizes: the tensors its configs
// imply (configs of text_encoder, qformer, unet and vae are required;
// scheduler and image_processor are copied when present).
func PlanFrom(modelIndex []byte, configs map[string][]byte) (*Synth, error) {
	return planTable(catalog.BLIPDiffusion, modelIndex, configs)
}

// PlanELITE returns the layout of a released ELITE model as one folder:
// Stable Diffusion v1-4's text encoder, UNet and VAE (the architectures of
// the released BLIP-Diffusion configs, whose UNet and VAE are SD's and
// whose text encoder is CLIP ViT-L/14's), ELITE's LMS scheduler, the CLIP
// ViT-L/14 vision tower as image_encoder/, and both mapper files with every
// released name and shape.
func PlanELITE() (*Synth, error) {
	return planTable(catalog.ELITE, []byte(eliteModelIndex), map[string][]byte{
		"text_encoder":  []byte(released.TextEncoder),
		"image_encoder": []byte(released.CLIPViTL14Vision),
		"unet":          []byte(released.UNet),
		"vae":           []byte(released.VAE),
		"scheduler":     []byte(eliteScheduler),
	})
}

// eliteModelIndex lists an ELITE folder's components.
const eliteModelIndex = `{
  "_class_name": "StableDiffusionPipeline",
  "_diffusers_version": "0.11.1",
  "scheduler": ["diffusers", "LMSDiscreteScheduler"],
  "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"],
  "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]
}
`

// eliteScheduler is ELITE's sampler's configuration.
const eliteScheduler = `{
  "_class_name": "LMSDiscreteScheduler",
  "_diffusers_version": "0.11.1",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "trained_betas": null
}
`

// PlanELITEFrom plans an ELITE folder of other sizes (configs of
// text_encoder, image_encoder, unet and vae required): the mappers are
// ELITE's (hidden width 1024, five words) between that vision tower and
// that UNet.
func PlanELITEFrom(modelIndex []byte, configs map[string][]byte) (*Synth, error) {
	return planTable(catalog.ELITE, modelIndex, configs)
}

// eliteMapperShapes sizes the mapper files from the configs.
func eliteMapperShapes(configs map[string][]byte) (map[string][]int, error) {
	vc, err := clip.ParseVisionConfig(configs["image_encoder"])
	if err != nil {
		return nil, err
	}
	uc, err := unet.ParseConfig(configs["unet"])
	if err != nil {
		return nil, err
	}
	r := released.ELITEMapper
	return catalog.MapperFileTensors(elite.MapperConfig{In: vc.Hidden, Hidden: r.Hidden, Out: uc.CrossDim[0], Words: r.Words}, uc), nil
}

func planTable(table catalog.Table, modelIndex []byte, configs map[string][]byte) (*Synth, error) {
	s := &Synth{ModelIndex: modelIndex, Configs: configs, Table: table}
	for _, c := range table.Models() {
		comp := c.Name
		shapes, err := table.StoredShapes(comp, s.Configs[comp])
		if err == nil && c.ConfigFile == "" {
			shapes, err = eliteMapperShapes(configs) // no config of its own
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for n := range shapes {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			dt := loader.F16
			if strings.HasSuffix(n, "position_ids") {
				dt = loader.I64
			}
			s.Tensors = append(s.Tensors, Tensor{Component: comp, Name: n, Shape: shapes[n], DType: dt})
		}
	}
	return s, nil
}

// Bytes is the total size of the tensors.
func (s *Synth) Bytes() int64 {
	var n int64
	for _, t := range s.Tensors {
		n += t.Bytes()
	}
	return n
}

// initKind is how a tensor's values are drawn (z ~ N(0, 1)).
type initKind int

const (
	initMatrix      initKind = iota // Linear / Conv weights: z/√fan_in
	initBias                        // biases: 0.1·z
	initNorm                        // norm weights: 1 + 0.1·z
	initEmbedding                   // embedding tables, class/position embeddings, query tokens: 0.5·z
	initPositionIDs                 // position_ids buffers: 0, 1, 2, …
)

// kindOf classifies a tensor by name and rank, the way the golden tiny
// models were initialized.
func kindOf(name string, shape []int) initKind {
	switch {
	case strings.HasSuffix(name, "position_ids"):
		return initPositionIDs
	case strings.HasSuffix(name, ".bias"):
		return initBias
	case !strings.HasSuffix(name, ".weight"): // class_embedding, position_embedding, query_tokens
		return initEmbedding
	case len(shape) == 1:
		return initNorm
	case len(shape) == 2 && (strings.HasSuffix(name, "embedding.weight") || strings.HasSuffix(name, "embeddings.weight")):
		return initEmbedding // token, word and position tables (patch_embedding is a conv)
	}
	return initMatrix
}

// Values draws a tensor's values in order, chunk by chunk: the same name
// and shape give the same values however the tensor is cut.
type Values struct {
	kind  initKind
	scale float64
	rng   *rand.Rand
	next  int64 // index of the next value (position_ids)
}

// NewValues starts the values of component/name.
func NewValues(component, name string, shape []int) *Values {
	h := fnv.New64a()
	h.Write([]byte(component + "/" + name))
	v := &Values{kind: kindOf(name, shape), rng: rand.New(rand.NewPCG(h.Sum64(), 0x6861726d6f6e79))}
	switch v.kind {
	case initMatrix:
		fanIn := 1
		for _, d := range shape[1:] {
			fanIn *= d
		}
		v.scale = 1 / math.Sqrt(float64(fanIn))
	case initBias, initNorm:
		v.scale = 0.1
	case initEmbedding:
		v.scale = 0.5
	}
	return v
}

// Fill writes the next len(dst) values.
func (v *Values) Fill(dst []float32) {
	switch v.kind {
	case initPositionIDs:
		for i := range dst {
			dst[i] = float32(v.next)
			v.next++
		}
		return
	case initNorm:
		for i := range dst {
			dst[i] = float32(1 + v.scale*v.rng.NormFloat64())
		}
	default:
		for i := range dst {
			dst[i] = float32(v.scale * v.rng.NormFloat64())
		}
	}
	v.next += int64(len(dst))
}

// f16Bits rounds f to the nearest binary16 (ties to even; overflow to ±inf,
// NaN kept quiet). The test checks it against x448/float16.
func f16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	man := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(man>>13)
	case exp >= 0x1f: // overflow or inf
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - exp)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to inf: still correct
	}
	return sign | uint16(h)
}
