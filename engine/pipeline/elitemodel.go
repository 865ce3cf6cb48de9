// elitemodel.go assembles an ELITE model (elite.md A.1, A.8): Stable
// Diffusion's text encoder, UNet and VAE, the CLIP vision tower, and
// ELITE's global and local mappers, whose checkpoints also carry every
// attn2's global and local key/value projections for the UNet.
//
// As one folder it is the Stable Diffusion layout (unet/ vae/ text_encoder/
// tokenizer/ scheduler/) plus image_encoder/ (a CLIPVisionModel or whole
// CLIPModel checkpoint with its config.json) and global_mapper.pt,
// local_mapper.pt at its top; the image encoder and the mappers may come
// from other folders or URLs, and a pack may hold all of it (the loader's
// LoadELITE reads each form).
package pipeline

import (
	"context"
	"errors"
	"fmt"

	"harmony/engine/models/catalog"
	"harmony/engine/models/clip"
	"harmony/engine/models/elite"
	"harmony/engine/models/unet"
	"harmony/engine/models/vae"
	"harmony/engine/tensor"
	"harmony/loader"
)

// GlobalMapperFile names the mappers in size errors.
const GlobalMapperFile = "global_mapper.pt"

// The ELITE model's parts beside the common ones (Model).
type eliteParts struct {
	Vision      *clip.VisionModel
	Global      *elite.Mapper
	Local       *elite.MapperLocal
	VisionSize  int // the vision tower's input size (224)
	VisionGrid  int // patches per side (16)
	MapperWords int // words of the global mapper (5; ELITE injects w0)
	cache       *referenceCache
}

// AssembleELITE builds an ELITE Model from loaded components: c's Configs
// and Weights hold text_encoder, unet, vae, image_encoder (its config.json
// may be a CLIPVisionConfig or a whole CLIPModel's) and the weights of
// global_mapper and local_mapper (no config: they are sized from their
// tensors). The scheduler config is read as given (ELITE samples with LMS
// whatever class it names). On success the model owns every weight.
func AssembleELITE(b tensor.Backend, c *Components) (*Model, error) {
	m := &Model{Name: c.Name, Base: BaseELITE, B: b, weights: c.Weights}
	for _, step := range []func(*Components) (string, error){m.readIndexAndFiles, m.loadELITE, m.checkELITESizes} {
		if part, err := step(c); err != nil {
			m.Close()
			return nil, &ModelError{Model: c.Name, Part: part, Err: err}
		}
	}
	return m, nil
}

// loadELITE loads the models of the ELITE table.
func (m *Model) loadELITE(c *Components) (string, error) {
	m.models = map[string]catalog.Model{}
	text, _ := catalog.BLIPDiffusion.Component("text_encoder")
	vaeC, _ := catalog.BLIPDiffusion.Component("vae")
	for _, comp := range []catalog.Component{text, vaeC, catalog.CLIPImageEncoder} {
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
		delete(m.weights, comp.Name) // the model owns them now
	}
	m.Text = m.models["text_encoder"].(*clip.TextModel)
	m.VAE = m.models["vae"].(*vae.Decoder)
	m.elite = &eliteParts{Vision: m.models["image_encoder"].(*clip.VisionModel)}

	// The mappers' attn2 projections, until LoadELITE takes them; what is
	// left (all of it on a failure) is freed here.
	var kv [2]*tensor.Weights
	defer func() {
		for _, k := range kv {
			if k != nil {
				k.Free(m.B)
			}
		}
	}()
	for k, name := range []string{"global_mapper", "local_mapper"} {
		file := name + ".pt"
		w := c.Weights[name]
		if w == nil {
			return file, errors.New("weights missing")
		}
		cfg, err := elite.MapperConfigOf(file, w)
		if err != nil {
			return file, err
		}
		if k == 0 {
			g, err := elite.LoadMapper(m.B, cfg, w)
			if err != nil {
				return file, err
			}
			m.models[name], m.elite.Global, kv[0], g.KV = g, g, g.KV, nil
			m.elite.MapperWords = cfg.Words
		} else {
			l, err := elite.LoadMapperLocal(m.B, cfg, w)
			if err != nil {
				return file, err
			}
			m.models[name], m.elite.Local, kv[1], l.KV = l, l, l.KV, nil
		}
		delete(m.weights, name)
	}

	d, err := config(c, "unet")
	if err != nil {
		return "unet", err
	}
	ucfg, err := unet.ParseConfig(d)
	if err != nil {
		return "unet", err
	}
	w := c.Weights["unet"]
	if w == nil {
		return "unet", errors.New("weights missing")
	}
	u, err := unet.LoadELITE(m.B, ucfg, w, kv[0], kv[1])
	if err != nil {
		return "unet", err
	}
	delete(m.weights, "unet")
	m.models["unet"], m.UNet = u, u

	m.TextLen, m.Hidden = m.Text.Config.MaxPositions, m.Text.Config.Hidden
	m.UNetConfig = u.Config
	m.LatentFactor = 1 << (len(m.UNetConfig.BlockOut) - 1)
	m.LatentChannels = m.UNetConfig.InChannels
	m.VAEFactor = 1 << (len(m.VAE.Config.BlockOut) - 1)
	vc := m.elite.Vision.Config
	m.elite.VisionSize = vc.ImageSize
	m.elite.VisionGrid = vc.ImageSize / vc.PatchSize
	return "", nil
}

// checkELITESizes checks that the parts fit together.
func (m *Model) checkELITESizes(*Components) (string, error) {
	e := m.elite
	vc := e.Vision.Config
	gc, lc := e.Global.Config, e.Local.Config
	switch {
	case gc.In != vc.Hidden || lc.In != vc.Hidden:
		return GlobalMapperFile, fmt.Errorf("the mappers read %d/%d-wide image features, the image encoder's are %d", gc.In, lc.In, vc.Hidden)
	case gc.Out != m.Hidden || lc.Out != m.Hidden:
		return GlobalMapperFile, fmt.Errorf("the mappers make %d/%d-wide words, the text encoder's are %d", gc.Out, lc.Out, m.Hidden)
	case vc.Layers < elite.FeatureLayers[len(elite.FeatureLayers)-1]:
		return "image_encoder", fmt.Errorf("%d layers; ELITE reads layer %d", vc.Layers, elite.FeatureLayers[len(elite.FeatureLayers)-1])
	case vc.ImageSize%vc.PatchSize != 0:
		return "image_encoder", fmt.Errorf("image size %d is not a multiple of the patch size %d", vc.ImageSize, vc.PatchSize)
	}
	for _, d := range m.UNetConfig.CrossDim {
		if d != m.Hidden {
			return "unet", fmt.Errorf("cross_attention_dim %d ≠ text width %d", d, m.Hidden)
		}
	}
	return "", nil
}

// EliteSources are where an ELITE model's parts come from: Model is the
// Stable Diffusion folder (or repository); ImageEncoder and Mappers, when
// set, replace its image_encoder/ folder and the mapper files at its top
// (a mapper folder may hold them under checkpoints/, as ELITE's repository
// does).
type EliteSources struct {
	Model        loader.Source
	ImageEncoder loader.Source
	Mappers      loader.Source
}

// LoadELITE reads an ELITE model onto b (loader.LoadELITE: a folder, three
// sources, or a pack of them, every tensor checked against catalog.ELITE)
// and assembles it. On failure nothing stays on the device.
func LoadELITE(ctx context.Context, s EliteSources, b tensor.Backend, opt *loader.Options) (*Model, *loader.Model, error) {
	o := loader.Options{}
	if opt != nil {
		o = *opt
	}
	o.Shapes = catalog.ELITE.Shapes
	lm, err := loader.LoadELITE(ctx, loader.ELITESources{Base: s.Model, ImageEncoder: s.ImageEncoder, Mappers: s.Mappers}, b, &o)
	if err != nil {
		return nil, nil, err
	}
	m, err := AssembleELITE(b, ComponentsFromLoader(lm))
	if err != nil {
		lm.Free(b)
		return nil, nil, err
	}
	return m, lm, nil
}
