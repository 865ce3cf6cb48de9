// options.go: what one generation takes, its defaults (the reference
// pipeline's and harmony-method.md's), and their validation.
package pipeline

import (
	"fmt"
	"strings"
	"time"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
)

// Method selects the customization method.
type Method string

const (
	MethodHarmony       Method = "harmony"       // orthogonal visual embedding + self-attention swap
	MethodBLIPDiffusion Method = "blipdiffusion" // the plain reference pipeline
)

// MaskTokens selects the subject columns of the mask layers' attention.
type MaskTokens string

const (
	MaskVisual      MaskTokens = "visual"       // the 16 visual rows
	MaskVisualClass MaskTokens = "visual+class" // plus the process's own class rows
)

// HarmonyOptions are the method's knobs (harmony-method.md), with the page's defaults.
type HarmonyOptions struct {
	Ortho         bool              // ortho: orchestrate the visual embedding (default on)
	OrthoMode     harmony.Mode      // ortho-mode: full, mean or λ (default full)
	ExcludeClass  bool              // ortho-exclude-class (default on)
	Swap          bool              // swap: masked self-attention swap (default on)
	SwapMode      tensor.SwapMode   // swap-mode: kv (default) or map
	SwapLayers    []string          // swap-layers: nil = every attn1 of the up blocks
	SwapStart     harmony.SwapStart // swap-start: fraction of N or call index (default 0.1)
	MaskLevel     *int              // mask-level: nil = Lm
	MaskTokens    MaskTokens        // mask-tokens (default visual)
	MaskThreshold float64           // mask-threshold τ (default 0.3)
	VisualPrompt  string            // visual-prompt: "a {class}" (default) or "a"
	// InjectMasks, when set, replaces the masks computed at call i (tests:
	// tell a threshold flip from a bug). ok=false keeps the computed ones.
	InjectMasks func(call int) (main, vis harmony.Mask, ok bool)
	// MainFromVisual conditions the main process on the visual-only
	// embedding (the method page's identical-conditioning check; tests).
	MainFromVisual bool
}

// DefaultHarmony returns the method page's defaults.
func DefaultHarmony() HarmonyOptions {
	start, _ := harmony.ParseSwapStart("0.1")
	return HarmonyOptions{
		Ortho: true, OrthoMode: harmony.DefaultOrthoOptions().Mode, ExcludeClass: true,
		Swap: true, SwapMode: tensor.SwapKV, SwapStart: start,
		MaskTokens: MaskVisual, MaskThreshold: 0.3, VisualPrompt: "a {class}",
	}
}

// Options configure one generation.
type Options struct {
	Image     []byte // the subject photo (any supported format)
	ImageName string // its file name, for messages

	SourceClass string // the subject's class in the photo ("dog")
	TargetClass string // the class to generate (defaults to SourceClass)
	Prompt      string // what the subject should be doing
	Negative    string // negative prompt ("" like the reference)

	Steps     int     // inference steps N (reference default 50)
	Guidance  float64 // classifier-free guidance scale (7.5); ≤ 1 turns guidance off (not allowed for Harmony)
	Seed      uint64  // seed of the engine's Gaussian generator (engine/rng)
	Width     int     // image width in pixels (512)
	Height    int     // image height in pixels (512)
	Scheduler string  // "pndm" (the model's own config) or "ddim"
	// Latents, when set, are the initial noise: NCHW [1, C, h, w] float32.
	Latents []float32

	PromptReps     int     // prompt repetitions (20)
	PromptStrength float64 // prompt_strength (1.0)

	Method  Method
	Compare bool // also produce the plain BLIP-Diffusion image from the same latents
	Harmony HarmonyOptions

	// Progress is called after every UNet call (and at stage changes).
	Progress func(Progress)
	// PreviewEvery makes Progress carry a rough preview every N calls (0: none).
	PreviewEvery int
}

// DefaultOptions are the reference pipeline's defaults with Harmony on.
func DefaultOptions() Options {
	return Options{
		Steps: 50, Guidance: 7.5, Width: 512, Height: 512, Scheduler: "pndm",
		PromptReps: 20, PromptStrength: 1.0, Method: MethodHarmony, Harmony: DefaultHarmony(),
	}
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

// ArgError is an option the pipeline refuses; it names the field.
type ArgError struct {
	Field string
	Msg   string
}

func (e *ArgError) Error() string { return "pipeline: " + e.Field + ": " + e.Msg }

func argErr(field, f string, a ...any) error {
	return &ArgError{Field: field, Msg: fmt.Sprintf(f, a...)}
}

// check validates o against the model and fills derived values. It returns
// warnings for inputs accepted the way the reference accepts them.
func (o *Options) check(m *Model) (warnings []string, err error) {
	if len(o.Image) == 0 {
		return nil, argErr("image", "no subject photo given")
	}
	o.SourceClass = strings.TrimSpace(o.SourceClass)
	o.TargetClass = strings.TrimSpace(o.TargetClass)
	if o.SourceClass == "" && o.TargetClass == "" {
		return nil, argErr("class", "the subject class is empty (e.g. \"dog\")")
	}
	if o.SourceClass == "" {
		o.SourceClass = o.TargetClass
	}
	if o.TargetClass == "" {
		o.TargetClass = o.SourceClass
	}
	if o.Steps < 1 || o.Steps > 1000 {
		return nil, argErr("steps", "%d outside [1, 1000]", o.Steps)
	}
	if o.Method == "" {
		o.Method = MethodHarmony
	}
	switch o.Method {
	case MethodHarmony:
		if o.Guidance <= 1 {
			return nil, argErr("guidance", "Harmony needs classifier-free guidance > 1 (got %g)", o.Guidance)
		}
		h := &o.Harmony
		if h.MaskThreshold < 0 || h.MaskThreshold >= 1 {
			return nil, argErr("mask-threshold", "%g outside [0, 1)", h.MaskThreshold)
		}
		if h.SwapMode == 0 {
			h.SwapMode = tensor.SwapKV
		}
		if h.MaskTokens == "" {
			h.MaskTokens = MaskVisual
		}
		if h.MaskTokens != MaskVisual && h.MaskTokens != MaskVisualClass {
			return nil, argErr("mask-tokens", "%q is not visual or visual+class", h.MaskTokens)
		}
		if h.VisualPrompt == "" {
			h.VisualPrompt = "a {class}"
		}
	case MethodBLIPDiffusion:
	default:
		return nil, argErr("method", "%q is not harmony or blipdiffusion", o.Method)
	}
	if o.Guidance < 0 {
		return nil, argErr("guidance", "%g is negative", o.Guidance)
	}
	if o.PromptReps < 1 {
		return nil, argErr("prompt-reps", "%d must be at least 1", o.PromptReps)
	}
	if o.PromptStrength <= 0 {
		o.PromptStrength = 1
	}
	switch o.Scheduler {
	case "", "pndm", "ddim":
	default:
		return nil, argErr("scheduler", "%q is not pndm or ddim", o.Scheduler)
	}
	if o.Width <= 0 || o.Height <= 0 || o.Width > 4096 || o.Height > 4096 {
		return nil, argErr("size", "%d×%d outside 1…4096", o.Width, o.Height)
	}
	f := m.LatentFactor
	if o.Width%f != 0 || o.Height%f != 0 {
		warnings = append(warnings, fmt.Sprintf("size %d×%d is not a multiple of %d; like the reference, the latents are %d×%d and the image %d×%d",
			o.Width, o.Height, f, o.Height/f, o.Width/f, o.Height/f*m.VAEFactor, o.Width/f*m.VAEFactor))
	}
	lh, lw := o.Height/f, o.Width/f
	if lh == 0 || lw == 0 {
		return nil, argErr("size", "%d×%d is smaller than one latent pixel (%d)", o.Width, o.Height, f)
	}
	if div := 1 << (m.UNetConfig.Levels() - 1); lh%div != 0 || lw%div != 0 {
		return nil, argErr("size", "the latent size %d×%d must be a multiple of %d for this UNet: use a width and height that are multiples of %d", lw, lh, div, div*f)
	}
	if o.Latents != nil && len(o.Latents) != m.LatentChannels*lh*lw {
		return nil, argErr("latents", "%d values, the model needs [1, %d, %d, %d] = %d", len(o.Latents), m.LatentChannels, lh, lw, m.LatentChannels*lh*lw)
	}
	return warnings, nil
}
