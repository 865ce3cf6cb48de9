// Package catalog is the one table of each base model's components: for
// every component its folder, config and weight files, how its config is
// parsed, the tensors the model reads, the tensors the released files
// hold, and how the model is loaded. Loading (shape checks), packing,
// the synthetic checkpoint, pipeline assembly and the model tests all read
// it, so a base model is described in exactly one place; a new base model
// adds its own table beside BLIPDiffusion.
//
// catalog.go holds the table types.
package catalog

import (
	"fmt"

	"harmony/engine/cfgcheck"
	"harmony/engine/tensor"
)

// Model is a loaded model component: it owns its weights.
type Model interface {
	Free(b tensor.Backend)
}

// Component is one part of a checkpoint in the diffusers layout. Parts
// without weights (scheduler, image processor) have only a name and a
// config file.
type Component struct {
	Name       string // folder and model_index.json key: "unet"
	ConfigFile string // path in the checkpoint: "unet/config.json"
	WeightFile string // path in the checkpoint: "unet/diffusion_pytorch_model.safetensors"; "" without weights

	// Parse reads the config file into the model's config.
	Parse func(config []byte) (any, error)
	// Tensors lists every state-dict name the model reads for a parsed
	// config, with its stored shape.
	Tensors func(cfg any) map[string][]int
	// Stored lists every tensor the released files hold: Tensors plus
	// buffers the model never reads (transformers' int64 position_ids)
	// and older spellings the released files use.
	Stored func(cfg any) map[string][]int
	// Load builds the model from its weights, checking every tensor first;
	// the model owns w from then on.
	Load func(b tensor.Backend, cfg any, w *tensor.Weights) (Model, error)
	// LoadAfter, when set, is how the model loads within its table: it
	// also reads the models loaded before it in table order (ELITE's UNet
	// takes the mappers' attention projections). See LoadIn.
	LoadAfter func(b tensor.Backend, cfg any, w *tensor.Weights, loaded map[string]Model) (Model, error)
}

// LoadIn loads the component within its table: LoadAfter with the models
// loaded so far when it has one, else Load.
func (c Component) LoadIn(b tensor.Backend, cfg any, w *tensor.Weights, loaded map[string]Model) (Model, error) {
	if c.LoadAfter != nil {
		return c.LoadAfter(b, cfg, w, loaded)
	}
	return c.Load(b, cfg, w)
}

// HasWeights reports whether the component is a model with weights.
func (c Component) HasWeights() bool { return c.Load != nil }

// Spec is a model component with its config type C and model type M; Define
// turns it into a Component.
type Spec[C any, M Model] struct {
	Name       string
	WeightFile string // below the folder: "model.safetensors"
	Parse      func(config []byte) (C, error)
	Tensors    func(cfg C) map[string][]int
	Stored     func(cfg C) map[string][]int // nil: Tensors
	Load       func(b tensor.Backend, cfg C, w *tensor.Weights) (M, error)
	// LoadAfter, when set, loads the model within its table (Component.LoadAfter).
	LoadAfter func(b tensor.Backend, cfg C, w *tensor.Weights, loaded map[string]Model) (M, error)
}

// Define makes a model component (config in <name>/config.json).
func Define[C any, M Model](s Spec[C, M]) Component {
	stored := s.Stored
	if stored == nil {
		stored = s.Tensors
	}
	cfgOf := func(cfg any) C { return cfg.(C) }
	var after func(b tensor.Backend, cfg any, w *tensor.Weights, loaded map[string]Model) (Model, error)
	if s.LoadAfter != nil {
		after = func(b tensor.Backend, cfg any, w *tensor.Weights, loaded map[string]Model) (Model, error) {
			m, err := s.LoadAfter(b, cfgOf(cfg), w, loaded)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
	return Component{
		LoadAfter:  after,
		Name:       s.Name,
		ConfigFile: s.Name + "/config.json",
		WeightFile: s.Name + "/" + s.WeightFile,
		Parse: func(config []byte) (any, error) {
			c, err := s.Parse(config)
			if err != nil {
				// The model package names its conventional path; the
				// table knows the one actually read.
				return nil, cfgcheck.InFile(err, s.Name+"/config.json")
			}
			return c, nil
		},
		Tensors: func(cfg any) map[string][]int { return s.Tensors(cfgOf(cfg)) },
		Stored:  func(cfg any) map[string][]int { return stored(cfgOf(cfg)) },
		Load: func(b tensor.Backend, cfg any, w *tensor.Weights) (Model, error) {
			m, err := s.Load(b, cfgOf(cfg), w)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
	}
}

// Table is a base model's components.
type Table []Component

// Component finds a component by name.
func (t Table) Component(name string) (Component, bool) {
	for _, c := range t {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// Models are the components with weights, in table order.
func (t Table) Models() []Component {
	var out []Component
	for _, c := range t {
		if c.HasWeights() {
			out = append(out, c)
		}
	}
	return out
}

// Shapes is a loader.ShapeTable: every state-dict name and shape the model
// code reads for a component, from its config. Components without weights
// or not in the table are not checked (nil).
func (t Table) Shapes(component string, config []byte) (map[string][]int, error) {
	c, ok := t.Component(component)
	if !ok || !c.HasWeights() {
		return nil, nil
	}
	cfg, err := c.Parse(config)
	if err != nil {
		return nil, err
	}
	return c.Tensors(cfg), nil
}

// StoredShapes is every tensor the released files of a component hold,
// for its config.
func (t Table) StoredShapes(component string, config []byte) (map[string][]int, error) {
	c, ok := t.Component(component)
	if !ok || !c.HasWeights() {
		return nil, fmt.Errorf("catalog: no model component %q", component)
	}
	cfg, err := c.Parse(config)
	if err != nil {
		return nil, err
	}
	return c.Stored(cfg), nil
}
