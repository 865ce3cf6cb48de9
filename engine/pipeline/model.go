// Package pipeline is BLIP-Diffusion and the Harmony method end to end:
// the loaded model (tokenizers, subject encoder, text encoder, UNet, VAE and
// scheduler config) and Generate, which reads top to bottom as the
// stages of diffusers' BlipDiffusionPipeline.__call__ with the Harmony
// additions (embedding orchestration, subject masks and swap, the returned
// masks).
//
// model.go assembles a Model from a loaded checkpoint's parts.
package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"

	"harmony/engine/cfgcheck"
	"harmony/engine/imageproc"
	"harmony/engine/models/blip2"
	"harmony/engine/models/catalog"
	"harmony/engine/models/clip"
	"harmony/engine/models/unet"
	"harmony/engine/models/vae"
	"harmony/engine/sched"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
)

// Components are the parts of a BLIP-Diffusion checkpoint, as the loader
// delivers them (folder, pack or URL alike).
type Components struct {
	Name       string                     // for messages: folder, pack or URL
	ModelIndex []byte                     // model_index.json
	Configs    map[string][]byte          // config.json per component: text_encoder, qformer, unet, vae, scheduler, image_processor
	Tokenizer  tokenizer.CLIPFiles        // tokenizer/ files
	BERTVocab  []byte                     // the Q-Former tokenizer's vocab.txt; nil: the shipped bert-base-uncased one
	Weights    map[string]*tensor.Weights // per component, resident on the backend
}

// Model is a loaded BLIP-Diffusion pipeline on one backend.
type Model struct {
	Name    string
	Base    Base // which pipeline it runs
	B       tensor.Backend
	CLIP    *tokenizer.CLIP
	BERT    *tokenizer.BERT
	Image   imageproc.Config
	QFormer *blip2.QFormer
	Text    *clip.TextModel
	UNet    *unet.UNet
	VAE     *vae.Decoder

	UNetConfig  *unet.Config
	Sched       sched.Config
	SchedRaw    []byte // scheduler_config.json, to derive other schedulers' configs
	CtxBeginPos int    // where the subject embeddings enter the text sequence (model_index ctx_begin_pos)
	NumQuery    int    // subject embeddings (Q-Former query tokens)
	TextLen     int    // text encoder positions (77)
	Hidden      int    // text embedding width D
	// LatentFactor is image size / latent size: 2^(len(unet block_out_channels)−1),
	// as the reference pipeline computes it.
	LatentFactor int
	// VAEFactor is the VAE decoder's upsampling: 2^(len(vae block_out_channels)−1).
	VAEFactor      int
	LatentChannels int

	weights map[string]*tensor.Weights
	models  map[string]catalog.Model // every loaded component, which owns its weights
	elite   *eliteParts              // ELITE's image encoder and mappers (Base ELITE)
}

// modelIndex is the part of model_index.json the pipeline reads.
type modelIndex struct {
	CtxBeginPos *int      `json:"ctx_begin_pos"`
	Mean        []float64 `json:"mean"`
	Std         []float64 `json:"std"`
}

// ModelError is a checkpoint the pipeline cannot use; it names the part.
type ModelError struct {
	Model string // which checkpoint
	Part  string // component or file
	Err   error
}

func (e *ModelError) Error() string {
	// A config error already names its package and file.
	if ce := (*cfgcheck.ConfigError)(nil); errors.As(e.Err, &ce) {
		return fmt.Sprintf("pipeline: model %s: %v", e.Model, e.Err)
	}
	return fmt.Sprintf("pipeline: model %s: %s: %v", e.Model, e.Part, e.Err)
}

func (e *ModelError) Unwrap() error { return e.Err }

// Assemble builds the Model from loaded components (catalog.BLIPDiffusion).
// Every tensor's presence and shape is checked against the configs before
// anything runs.
func Assemble(b tensor.Backend, c *Components) (*Model, error) {
	m := &Model{Name: c.Name, Base: BaseBLIPDiffusion, B: b, weights: c.Weights}
	for _, step := range []func(*Components) (string, error){m.readIndexAndFiles, m.loadModels, m.checkSizes} {
		if part, err := step(c); err != nil {
			return nil, &ModelError{Model: c.Name, Part: part, Err: err}
		}
	}
	return m, nil
}

// readIndexAndFiles reads model_index.json, the tokenizers, the image
// processor and the scheduler config. A failure names its part.
func (m *Model) readIndexAndFiles(c *Components) (string, error) {
	var mi modelIndex
	if len(c.ModelIndex) > 0 {
		if err := json.Unmarshal(c.ModelIndex, &mi); err != nil {
			return "model_index.json", err
		}
	}
	m.CtxBeginPos = 2
	if mi.CtxBeginPos != nil {
		m.CtxBeginPos = *mi.CtxBeginPos
		// Bounded here, before the models load; checkSizes then holds
		// it to the text encoder's prompt length.
		ck := &cfgcheck.Checker{Pkg: "pipeline", File: "model_index.json"}
		ck.Int("ctx_begin_pos", m.CtxBeginPos, 1, cfgcheck.MaxPositions)
		if err := ck.Err(); err != nil {
			return "model_index.json", err
		}
	}

	var err error
	if m.CLIP, err = tokenizer.NewCLIP(c.Tokenizer); err != nil {
		return "tokenizer", err
	}
	if len(c.BERTVocab) > 0 {
		m.BERT, err = tokenizer.NewBERT(c.BERTVocab)
	} else {
		m.BERT, err = tokenizer.DefaultBERT()
	}
	if err != nil {
		return "qformer tokenizer", err
	}

	m.Image = imageproc.DefaultConfig()
	if d, ok := c.Configs["image_processor"]; ok && len(d) > 0 {
		if m.Image, err = imageproc.ParseConfig(d); err != nil {
			return "image_processor", err
		}
	}
	if mi.Mean != nil || mi.Std != nil {
		if m.Image, err = m.Image.WithMeanStd(mi.Mean, mi.Std); err != nil {
			return "model_index.json mean/std", err
		}
	}

	d, err := config(c, "scheduler")
	if err == nil {
		m.Sched, err = sched.ParseConfig(d)
		m.SchedRaw = d
	}
	if err != nil {
		return "scheduler", err
	}
	return "", nil
}

// config is a component's config file, which must not be empty.
func config(c *Components, name string) ([]byte, error) {
	d, ok := c.Configs[name]
	if !ok || len(d) == 0 {
		return nil, errors.New("config missing")
	}
	return d, nil
}

// loadModels loads every model component of the table, checking every
// tensor, and keeps the sizes the pipeline reads from their configs.
func (m *Model) loadModels(c *Components) (string, error) {
	m.models = map[string]catalog.Model{}
	for _, comp := range catalog.BLIPDiffusion.Models() {
		d, err := config(c, comp.Name)
		if err != nil {
			return comp.Name, err
		}
		cfg, err := comp.Parse(d)
		if err != nil {
			return comp.Name, err
		}
		w := c.Weights[comp.Name]
		if w == nil {
			return comp.Name, errors.New("weights missing")
		}
		if m.models[comp.Name], err = comp.Load(m.B, cfg, w); err != nil {
			return comp.Name, err
		}
	}
	m.Text = m.models["text_encoder"].(*clip.TextModel)
	m.QFormer = m.models["qformer"].(*blip2.QFormer)
	m.UNet = m.models["unet"].(*unet.UNet)
	m.VAE = m.models["vae"].(*vae.Decoder)
	m.NumQuery = m.QFormer.Config.NumQueryTokens
	m.TextLen, m.Hidden = m.Text.Config.MaxPositions, m.Text.Config.Hidden
	m.UNetConfig = m.UNet.Config
	m.LatentFactor = 1 << (len(m.UNetConfig.BlockOut) - 1)
	m.LatentChannels = m.UNetConfig.InChannels
	m.VAEFactor = 1 << (len(m.VAE.Config.BlockOut) - 1)
	return "", nil
}

// checkSizes checks that the components fit together.
func (m *Model) checkSizes(*Components) (string, error) {
	switch {
	case m.NumQuery+0 > m.TextLen:
		return "text_encoder", fmt.Errorf("%d query tokens do not fit %d positions", m.NumQuery, m.TextLen)
	case m.CtxBeginPos < 1 || m.CtxBeginPos > m.TextLen-m.NumQuery-1:
		return "model_index.json", fmt.Errorf("ctx_begin_pos %d outside the prompt", m.CtxBeginPos)
	case m.QFormer.Config.QFormer.Hidden != m.Hidden:
		return "qformer", fmt.Errorf("subject embeddings are %d wide, the text encoder %d", m.QFormer.Config.QFormer.Hidden, m.Hidden)
	}
	for _, d := range m.UNetConfig.CrossDim {
		if d != m.Hidden {
			return "unet", fmt.Errorf("cross_attention_dim %d ≠ text width %d", d, m.Hidden)
		}
	}
	return "", nil
}

// Close frees the models and any other weights on the backend.
func (m *Model) Close() {
	for _, c := range m.models {
		c.Free(m.B)
	}
	m.models = nil
	for _, w := range m.weights {
		w.Free(m.B)
	}
	m.weights = nil
}
