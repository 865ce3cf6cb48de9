// options.go: what one generation takes, its defaults (the reference
// pipeline's and harmony-method.md's), and their checks. The settable
// options, their string forms and their ranges live here and only here:
// the CLI's flags and the JS API's keys map onto Options.Set, so both
// front ends accept the same values and refuse the others with the same
// words (optionset.go).
package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
)

// Method selects the customization method.
type Method string

const (
	MethodHarmony Method = "harmony" // orthogonal visual embedding + self-attention swap
	MethodPlain   Method = "plain"   // the base model's own pipeline
	// MethodBLIPDiffusion is the plain method's older name, accepted on the
	// BLIP-Diffusion base only.
	MethodBLIPDiffusion Method = "blipdiffusion"
)

// Plain reports whether m runs the base model's own pipeline.
func (m Method) Plain() bool { return m == MethodPlain || m == MethodBLIPDiffusion }

// Base is the zero-shot customization model a generation runs on.
type Base string

const (
	BaseBLIPDiffusion Base = "blipdiffusion" // BLIP-Diffusion: 16 subject embeddings from BLIP-2
	BaseELITE         Base = "elite"         // ELITE: one injected word plus the local branch
)

// ELITE's defaults (elite.md A.9, B.3).
const (
	EliteSteps        = 100
	EliteGuidance     = 5
	EliteLocalWeight  = 0.8
	ElitePlaceholder  = "S"
	EliteVisualPrompt = "a S"
	MaxLocalWeight    = 10
)

// MaskTokens selects the subject columns of the mask layers' attention.
type MaskTokens string

const (
	MaskVisual      MaskTokens = "visual"       // the 16 visual rows
	MaskVisualClass MaskTokens = "visual+class" // plus the process's own class rows
)

// Limits of the numeric options. They are far beyond any useful setting;
// what they keep out are values that would silently break a run (a NaN
// guidance turns guidance off, an enormous one gives black images) or
// exhaust memory before any check downstream could refuse them.
const (
	MaxSteps          = 1000 // the schedulers' training timesteps
	MaxGuidance       = 100
	MaxSize           = 4096 // pixels per side
	MaxPromptReps     = 100  // every repetition is at least one token of a 61-token context
	MaxPromptStrength = 10
)

// HarmonyOptions are the method's knobs (harmony-method.md), with the page's
// defaults. The names in the comments are the option names of Set and the
// CLI's flags.
type HarmonyOptions struct {
	Ortho         bool              // ortho: orchestrate the visual embedding (default on)
	OrthoMode     harmony.Mode      // ortho-mode: full, mean or λ in [0, 1] (default full)
	ExcludeClass  bool              // ortho-exclude-class (default on)
	Swap          bool              // swap: masked self-attention swap (default on)
	SwapMode      tensor.SwapMode   // swap-mode: kv (default; 0 means kv) or map
	SwapLayers    []string          // swap-layers: nil = every attn1 of the up blocks; else name prefixes of this UNet's attn1 layers
	SwapStart     harmony.SwapStart // swap-start: fraction of N in [0, 1] or call index ≥ 0 (default 0.1)
	MaskLevel     *int              // mask-level: nil = Lm; else a level ≥ 0 the UNet has
	MaskTokens    MaskTokens        // mask-tokens: visual (default; "" means visual) or visual+class
	MaskThreshold float64           // mask-threshold τ in [0, 1): the mask is p > τ, so 1 would be empty (default 0.3)
	// visual-prompt: BLIP-Diffusion "a {class}" (default; "" means it) or
	// "a"; ELITE "a S" (default), "a photo of a S" or "S", S standing for
	// the placeholder word.
	VisualPrompt string
	// InjectMasks, when set, replaces the masks computed at call i (tests:
	// tell a threshold flip from a bug). ok=false keeps the computed ones.
	InjectMasks func(call int) (main, vis harmony.Mask, ok bool)
	// MainFromVisual conditions the main process on the visual-only
	// embedding (the method page's identical-conditioning check; tests).
	MainFromVisual bool
}

// DefaultHarmony returns the method page's defaults.
func DefaultHarmony() HarmonyOptions {
	return HarmonyOptions{
		Ortho: true, OrthoMode: harmony.DefaultOrthoOptions().Mode, ExcludeClass: true,
		Swap: true, SwapMode: tensor.SwapKV, SwapStart: harmony.DefaultSwapStart,
		MaskTokens: MaskVisual, MaskThreshold: 0.3, VisualPrompt: "a {class}",
	}
}

// Options configure one generation. The comments give each option's name
// (Set, the CLI's flag) and its accepted values; Validate enforces them.
type Options struct {
	Image     []byte // the subject photo (any supported format); required
	ImageName string // its file name, for messages
	// Mask (ELITE) is the subject's mask, an image of the photo's size
	// whose pixels with any RGB channel above 0 are the subject; nil: the
	// whole photo is the subject (the result's warnings say so).
	Mask     []byte
	MaskName string // its file name, for messages

	// base: the model the options are for ("" = the loaded model's; a
	// different one is refused). It picks the defaults (DefaultOptionsFor).
	Base Base
	// local-weight (ELITE): λ, the local branch's weight in [0, MaxLocalWeight] (0.8).
	LocalWeight float64
	// placeholder (ELITE): the prompt's word for the subject ("S"; "" means it).
	Placeholder string

	SourceClass string // source-class: the subject's class in the photo ("dog"; "" = class)
	// class: the class to generate ("" = source-class; not both empty);
	// with ELITE the optional class word of the prompt (elite.md B.4.2).
	TargetClass string
	// prompt: what the subject should be doing; with ELITE the whole
	// prompt, the placeholder word standing for the subject ("a S wearing a red hat").
	Prompt   string
	Negative string // negative: negative prompt ("" like the reference)

	Steps     int     // steps: inference steps N in [1, MaxSteps] (reference default 50)
	Guidance  float64 // guidance: classifier-free guidance scale in [0, MaxGuidance] (7.5); ≤ 1 turns guidance off, so Harmony needs > 1
	Seed      uint64  // seed: any uint64, the seed of the engine's Gaussian generator (engine/rng)
	Width     int     // width: image width in pixels, up to MaxSize; 0 = the model's own (sample_size × latent factor, 512 for BLIP-Diffusion)
	Height    int     // height: image height in pixels, up to MaxSize; 0 = the width
	Scheduler string  // scheduler: "pndm", "ddim" or "lms" ("" = the base's: pndm for BLIP-Diffusion, lms for ELITE)
	// Latents, when set, are the initial noise: NCHW [1, C, h, w] float32.
	Latents []float32

	PromptReps     int     // prompt-reps: prompt repetitions in [1, MaxPromptReps] (20)
	PromptStrength float64 // prompt-strength: prompt_strength in [0, MaxPromptStrength] (1.0; 0 means 1)

	Method  Method // method: harmony ("" means it), plain, or blipdiffusion (= plain, BLIP-Diffusion only)
	Compare bool   // compare: also produce the plain BLIP-Diffusion image from the same latents
	Harmony HarmonyOptions

	// Progress is called after every UNet call (and at stage changes).
	Progress func(Progress)
	// PreviewEvery (preview-every ≥ 0) makes Progress carry a rough preview
	// every N calls (0: none).
	PreviewEvery int
}

// DefaultOptions are the reference pipeline's defaults with Harmony on.
func DefaultOptions() Options {
	return Options{
		Steps: 50, Guidance: 7.5, Width: 512, Height: 512, Scheduler: "pndm",
		PromptReps: 20, PromptStrength: 1.0, Method: MethodHarmony, Harmony: DefaultHarmony(),
		LocalWeight: EliteLocalWeight, Placeholder: ElitePlaceholder,
	}
}

// DefaultOptionsFor are a base model's defaults with Harmony on: ELITE's
// inference script's (LMS, 100 steps, guidance 5, λ 0.8, placeholder S,
// visual prompt "a S") or DefaultOptions.
func DefaultOptionsFor(base Base) Options {
	o := DefaultOptions()
	if base == BaseELITE {
		o.Base = BaseELITE
		o.Steps, o.Guidance, o.Scheduler = EliteSteps, EliteGuidance, "lms"
		o.Harmony.VisualPrompt = EliteVisualPrompt
	}
	return o
}

// Progress reports where a generation is.
type Progress struct {
	Stage   string        // "encode", "denoise", "decode"
	Call    int           // UNet calls done
	Calls   int           // UNet calls in all
	Elapsed time.Duration // since Generate started
	ETA     time.Duration // estimated time left (0 when unknown)
	Preview *Image        // a rough RGB preview of the main latents (PreviewEvery)
}

// OptionError is an option value the pipeline refuses. Front ends tell
// which input to mark by Option, the name Set takes (the CLI's flag without
// its dashes, the JS API's key in kebab case).
type OptionError struct {
	Option string // "guidance"
	Value  string // the refused value as given or as a number ("" when there is none)
	Reason string // what the value must be: "must be finite"

	shown string // Value as the message shows it (strings quoted)
}

func (e *OptionError) Error() string {
	s := "pipeline: --" + e.Option + " " + e.Reason
	if e.shown != "" {
		s += ", got " + e.shown
	}
	return s
}

// optErr builds an OptionError; v is the refused value: a string (quoted in
// the message), a number, or nil.
func optErr(name string, v any, reason string, a ...any) *OptionError {
	e := &OptionError{Option: name, Reason: fmt.Sprintf(reason, a...)}
	switch v := v.(type) {
	case nil:
	case string:
		e.Value, e.shown = v, strconv.Quote(v)
	case float64:
		e.Value = strconv.FormatFloat(v, 'g', -1, 64)
		e.shown = e.Value
	default:
		e.Value = fmt.Sprint(v)
		e.shown = e.Value
	}
	return e
}

// Validate checks every option against its documented range, and the
// options against each other, without a model (the model-dependent checks
// follow in Generate). It changes nothing; zero values that mean a default
// are accepted.
func (o *Options) Validate() error {
	for i := range optionTable {
		if c := optionTable[i].check; c != nil {
			if err := c(o); err != nil {
				return err
			}
		}
	}
	if o.Base == BaseELITE {
		if err := o.validateELITE(); err != nil {
			return err
		}
	} else {
		if strings.TrimSpace(o.SourceClass) == "" && strings.TrimSpace(o.TargetClass) == "" {
			return optErr("class", nil, "must name the subject's class (e.g. dog); it is empty")
		}
		if o.Scheduler == "lms" {
			return optErr("scheduler", o.Scheduler, "must be pndm or ddim for BLIP-Diffusion (lms is ELITE's)")
		}
		switch o.Harmony.VisualPrompt {
		case "", "a {class}", "a":
		default:
			return optErr("visual-prompt", o.Harmony.VisualPrompt, "must be \"a {class}\" or \"a\" for BLIP-Diffusion")
		}
	}
	if p := o.PromptStrength; !(p >= 0 && p <= MaxPromptStrength) {
		return numErr("prompt-strength", p, "must be in [0, %d]", MaxPromptStrength)
	}
	if o.Method == MethodBLIPDiffusion && o.Base == BaseELITE {
		return optErr("method", string(o.Method), "must be harmony or plain for ELITE (blipdiffusion names BLIP-Diffusion's plain method)")
	}
	if o.Method == MethodHarmony || o.Method == "" {
		if !(o.Guidance > 1) {
			return optErr("guidance", o.Guidance, "must be above 1 for Harmony, which needs classifier-free guidance")
		}
	}
	return nil
}

// numErr refuses a float: NaN and ±Inf as not finite, others as out of range.
func numErr(name string, v float64, reason string, a ...any) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return optErr(name, v, "must be finite")
	}
	return optErr(name, v, reason, a...)
}

// check validates o against the model and fills derived values. It returns
// warnings for inputs accepted the way the reference accepts them.
func (o *Options) check(m *Model) (warnings []string, err error) {
	if len(o.Image) == 0 {
		if o.ImageName != "" {
			return nil, optErr("image", nil, "is empty: the photo %s has 0 bytes", o.ImageName)
		}
		return nil, optErr("image", nil, "must be given: there is no subject photo")
	}
	switch {
	case o.Base == "":
		o.Base = m.Base
	case o.Base != m.Base:
		return nil, optErr("base", string(o.Base), "must be the loaded model's base, %s", m.Base)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.SourceClass = strings.TrimSpace(o.SourceClass)
	o.TargetClass = strings.TrimSpace(o.TargetClass)
	if o.SourceClass == "" {
		o.SourceClass = o.TargetClass
	}
	if o.TargetClass == "" {
		o.TargetClass = o.SourceClass
	}
	if o.Method == "" {
		o.Method = MethodHarmony
	}
	if o.Scheduler == "" {
		o.Scheduler = "pndm"
		if o.Base == BaseELITE {
			o.Scheduler = "lms"
		}
	}
	if o.Placeholder == "" {
		o.Placeholder = ElitePlaceholder
	}
	if o.PromptStrength == 0 {
		o.PromptStrength = 1
	}
	h := &o.Harmony
	if h.SwapMode == 0 {
		h.SwapMode = tensor.SwapKV
	}
	if h.MaskTokens == "" {
		h.MaskTokens = MaskVisual
	}
	if h.VisualPrompt == "" {
		h.VisualPrompt = "a {class}"
		if o.Base == BaseELITE {
			h.VisualPrompt = EliteVisualPrompt
		}
	}

	f := m.LatentFactor
	if o.Width == 0 {
		// The default size is the config's, so a bad one is the config's
		// fault, not the user's (who gave no size).
		ss := m.UNetConfig.SampleSize
		if ss <= 0 || ss > MaxSize/max(f, 1) {
			return nil, fmt.Errorf("pipeline: unet/config.json: sample_size is %d, which gives no usable default size (1 to %d latent pixels); give --width and --height", ss, MaxSize/max(f, 1))
		}
		o.Width = ss * f
	}
	if o.Height == 0 {
		o.Height = o.Width
	}
	if o.Width%f != 0 || o.Height%f != 0 {
		warnings = append(warnings, fmt.Sprintf("size %d×%d is not a multiple of %d; like the reference, the latents are %d×%d and the image %d×%d",
			o.Width, o.Height, f, o.Height/f, o.Width/f, o.Height/f*m.VAEFactor, o.Width/f*m.VAEFactor))
	}
	div := 1 << (m.UNetConfig.Levels() - 1)
	for _, d := range []struct {
		name string
		v    int
	}{{"width", o.Width}, {"height", o.Height}} {
		if l := d.v / f; l == 0 || l%div != 0 {
			return nil, optErr(d.name, d.v, "must be a multiple of %d pixels for this model", div*f)
		}
	}
	lh, lw := o.Height/f, o.Width/f
	if o.Latents != nil && len(o.Latents) != m.LatentChannels*lh*lw {
		return nil, optErr("latents", len(o.Latents), "must hold [1, %d, %d, %d] = %d values for this model and size", m.LatentChannels, lh, lw, m.LatentChannels*lh*lw)
	}
	if i := firstNonFinite(o.Latents); i >= 0 {
		return nil, optErr("latents", nil, "must be finite, but element %d is %v", i, o.Latents[i])
	}
	if o.Method == MethodHarmony && h.Swap {
		if err := checkLayers(m.UNet.Sites(lh, lw), h); err != nil {
			return nil, err
		}
	}
	return warnings, nil
}

// checkLayers names the option behind a layer choice this UNet does not
// have (harmony.SelectLayers says what is wrong but not which knob).
func checkLayers(sites []harmony.AttnSite, h *HarmonyOptions) error {
	if h.MaskLevel != nil {
		if _, err := harmony.SelectLayers(sites, harmony.LayerOptions{MaskLevel: h.MaskLevel}); err != nil {
			return optErr("mask-level", *h.MaskLevel, "must be a level of this UNet with cross-attention (%s)", strings.TrimPrefix(err.Error(), "harmony: "))
		}
	}
	if len(h.SwapLayers) > 0 {
		if _, err := harmony.SelectLayers(sites, harmony.LayerOptions{SwapLayers: h.SwapLayers}); err != nil {
			return optErr("swap-layers", strings.Join(h.SwapLayers, ","), "must name self-attention layers of this UNet (%s)", strings.TrimPrefix(err.Error(), "harmony: "))
		}
	}
	return nil
}

// validateELITE checks the options only ELITE reads.
func (o *Options) validateELITE() error {
	ph := o.Placeholder
	if ph == "" {
		ph = ElitePlaceholder
	}
	if strings.ContainsFunc(ph, unicode.IsSpace) {
		return optErr("placeholder", ph, "must be one word (no spaces)")
	}
	if !(o.LocalWeight >= 0 && o.LocalWeight <= MaxLocalWeight) {
		return numErr("local-weight", o.LocalWeight, "must be a number in [0, %d]", MaxLocalWeight)
	}
	if o.Scheduler != "" && o.Scheduler != "lms" && o.Scheduler != "pndm" && o.Scheduler != "ddim" {
		return optErr("scheduler", o.Scheduler, "must be lms, pndm or ddim")
	}
	switch o.Harmony.VisualPrompt {
	case "", "a S", "a photo of a S", "S":
	default:
		return optErr("visual-prompt", o.Harmony.VisualPrompt, "must be \"a S\", \"a photo of a S\" or \"S\" for ELITE (S: the placeholder)")
	}
	if PlaceholderIndex(o.Prompt, ph) == 0 {
		return optErr("prompt", o.Prompt, "must contain the placeholder word %q, which stands for the subject (ELITE: \"a %s wearing a red hat\")", ph, ph)
	}
	return nil
}
