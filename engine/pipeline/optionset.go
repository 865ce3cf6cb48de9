// optionset.go: the options a front end sets by name from their string
// form (a CLI flag, a JS API key), one parser and one range check per
// option, so that every front end accepts and refuses the same values.
package pipeline

import (
	"math"
	"strconv"
	"strings"
	"unicode"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
)

// OptionInfo describes one option Set takes.
type OptionInfo struct {
	Name  string // the CLI's flag without dashes: "mask-threshold"
	Key   string // the JS API's key, Name in camelCase: "maskThreshold"
	Usage string // one line of help
	OnOff bool   // takes on or off (ParseOnOff); a bare CLI flag means on
	// Only names the one base model the option is for ("" = every base):
	// a front end can hide it for the others.
	Only Base
}

// option is one row of the table: parse a string into Options, show the
// current value, and check it (nil: every parsed value is fine).
type option struct {
	OptionInfo
	set   func(o *Options, s string) error
	get   func(o *Options) string
	check func(o *Options) error
}

// OptionList lists the options Set takes, in the order a help text shows them.
func OptionList() []OptionInfo {
	out := make([]OptionInfo, len(optionTable))
	for i, op := range optionTable {
		out[i] = op.OptionInfo
		out[i].Key = camelCase(op.Name)
	}
	return out
}

func camelCase(name string) string {
	parts := strings.Split(name, "-")
	for i, p := range parts[1:] {
		if p != "" {
			parts[i+1] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

// Set parses value as the option name and stores it, refusing it with an
// *OptionError when it does not parse or is out of the option's range (o
// is then unchanged). Checks between options (Harmony needs guidance > 1)
// wait for Validate, so that the order options are set in does not matter.
func (o *Options) Set(name, value string) error {
	op := lookupOption(name)
	if op == nil {
		return optErr(name, nil, "is not an option of the pipeline")
	}
	c := *o
	if err := op.set(&c, value); err != nil {
		return err
	}
	if op.check != nil {
		if err := op.check(&c); err != nil {
			return err
		}
	}
	*o = c
	return nil
}

// SetNumber sets the option name from a number, for front ends whose
// values arrive as numbers (JavaScript's): whole numbers below 1e21 (where
// JavaScript itself turns to exponents) are written without exponent so
// that the whole-number options parse them, others as Go writes a float64
// (NaN and ±Inf included, which the checks refuse).
func (o *Options) SetNumber(name string, v float64) error {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if v == math.Trunc(v) && math.Abs(v) < 1e21 {
		s = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return o.Set(name, s)
}

// Get returns the option's current value in the form Set takes ("" for an
// unknown name).
func (o *Options) Get(name string) string {
	if op := lookupOption(name); op != nil {
		return op.get(o)
	}
	return ""
}

func lookupOption(name string) *option {
	for i := range optionTable {
		if optionTable[i].Name == name {
			return &optionTable[i]
		}
	}
	return nil
}

// ParseOnOff reads an on/off value: on, off, and the spellings the flag
// package gives a bare boolean flag (true, false, 1, 0, yes, no), in any
// case.
func ParseOnOff(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, strconv.ErrSyntax
}

func onOffString(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

// The row builders below keep each row to its name, field and range.

func stringOpt(name, usage string, field func(*Options) *string) option {
	return option{
		OptionInfo: OptionInfo{Name: name, Usage: usage},
		set:        func(o *Options, s string) error { *field(o) = s; return nil },
		get:        func(o *Options) string { return *field(o) },
	}
}

func onOffOpt(name, usage string, field func(*Options) *bool) option {
	return option{
		OptionInfo: OptionInfo{Name: name, Usage: usage, OnOff: true},
		set: func(o *Options, s string) error {
			v, err := ParseOnOff(s)
			if err != nil {
				return optErr(name, s, "must be on or off")
			}
			*field(o) = v
			return nil
		},
		get: func(o *Options) string { return onOffString(*field(o)) },
	}
}

// intOpt is a whole number in [lo, hi]; reason says so in words.
func intOpt(name, usage string, field func(*Options) *int, lo, hi int, reason string) option {
	return option{
		OptionInfo: OptionInfo{Name: name, Usage: usage},
		set: func(o *Options, s string) error {
			v, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
			if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
				return optErr(name, s, "%s", reason)
			}
			*field(o) = int(v)
			return nil
		},
		get: func(o *Options) string { return strconv.Itoa(*field(o)) },
		check: func(o *Options) error {
			if v := *field(o); v < lo || v > hi {
				return optErr(name, v, "%s", reason)
			}
			return nil
		},
	}
}

// floatOpt is a finite number in [lo, hi] (hiOpen: [lo, hi)).
func floatOpt(name, usage string, field func(*Options) *float64, lo, hi float64, hiOpen bool) option {
	reason := "must be a number in [" + fmtFloat(lo) + ", " + fmtFloat(hi) + "]"
	if hiOpen {
		reason = reason[:len(reason)-1] + ")"
	}
	return option{
		OptionInfo: OptionInfo{Name: name, Usage: usage},
		set: func(o *Options, s string) error {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil && !isRangeErr(err) {
				return optErr(name, s, "%s", reason)
			}
			*field(o) = v // out of float64's range: ±Inf, refused by check
			return nil
		},
		get: func(o *Options) string { return fmtFloat(*field(o)) },
		check: func(o *Options) error {
			v := *field(o)
			if !(v >= lo && (v < hi || !hiOpen && v == hi)) {
				return numErr(name, v, "%s", reason)
			}
			return nil
		},
	}
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// oneOf is a string option with a closed set of values; "" means the first
// (the default).
func oneOf(name, usage string, field func(*Options) *string, values ...string) option {
	shown := values
	for _, v := range values {
		if strings.Contains(v, " ") {
			shown = make([]string, len(values))
			for i, v := range values {
				shown[i] = strconv.Quote(v)
			}
			break
		}
	}
	reason := "must be " + strings.Join(shown[:len(shown)-1], ", ") + " or " + shown[len(shown)-1]
	return option{
		OptionInfo: OptionInfo{Name: name, Usage: usage},
		set:        func(o *Options, s string) error { *field(o) = s; return nil },
		get:        func(o *Options) string { return *field(o) },
		check: func(o *Options) error {
			v := *field(o)
			if v == "" {
				return nil
			}
			for _, ok := range values {
				if v == ok {
					return nil
				}
			}
			return optErr(name, v, "%s", reason)
		},
	}
}

// blipOnly marks an option as BLIP-Diffusion's.
func blipOnly(op option) option {
	op.Only = BaseBLIPDiffusion
	return op
}

// eliteOnly marks an option as ELITE's.
func eliteOnly(op option) option {
	op.Only = BaseELITE
	return op
}

// The named string types' fields, viewed as strings for oneOf.
func methodField(o *Options) *string       { return (*string)(&o.Method) }
func baseField(o *Options) *string         { return (*string)(&o.Base) }
func maskTokensField(o *Options) *string   { return (*string)(&o.Harmony.MaskTokens) }
func visualPromptField(o *Options) *string { return &o.Harmony.VisualPrompt }

// optionTable is every option Set takes.
var optionTable = []option{
	stringOpt("class", "the subject's class to generate (target subject)", func(o *Options) *string { return &o.TargetClass }),
	blipOnly(stringOpt("source-class", "the subject's class in the photo (default: --class)", func(o *Options) *string { return &o.SourceClass })),
	stringOpt("prompt", "what the subject should be doing", func(o *Options) *string { return &o.Prompt }),
	stringOpt("negative", "negative prompt", func(o *Options) *string { return &o.Negative }),
	intOpt("steps", "inference steps (1 to 1000)", func(o *Options) *int { return &o.Steps }, 1, MaxSteps,
		"must be a whole number from 1 to 1000"),
	floatOpt("guidance", "classifier-free guidance scale, 0 to 100 (> 1 for Harmony; ≤ 1 turns guidance off)", func(o *Options) *float64 { return &o.Guidance }, 0, MaxGuidance, false),
	{
		OptionInfo: OptionInfo{Name: "seed", Usage: "seed of the initial noise, any 64-bit unsigned number (engine/rng; the same picture natively and in the browser)"},
		set: func(o *Options, s string) error {
			v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 64)
			if err != nil {
				return optErr("seed", s, "must be a whole number from 0 to 18446744073709551615")
			}
			o.Seed = v
			return nil
		},
		get: func(o *Options) string { return strconv.FormatUint(o.Seed, 10) },
	},
	intOpt("width", "image width in pixels, up to 4096 (0: the model's sample size × 8, 512 for BLIP-Diffusion)", func(o *Options) *int { return &o.Width }, 0, MaxSize,
		"must be a size in pixels from 0 (the model's own) to 4096"),
	intOpt("height", "image height in pixels, up to 4096 (0: like --width)", func(o *Options) *int { return &o.Height }, 0, MaxSize,
		"must be a size in pixels from 0 (the width) to 4096"),
	oneOf("base", "base model: blipdiffusion or elite (default: the loaded model's)", baseField, string(BaseBLIPDiffusion), string(BaseELITE)),
	oneOf("scheduler", "scheduler: pndm, ddim or lms (default: pndm for BLIP-Diffusion, lms for ELITE)", func(o *Options) *string { return &o.Scheduler }, "pndm", "ddim", "lms"),
	oneOf("method", "harmony, plain, or blipdiffusion (plain on BLIP-Diffusion)", methodField, string(MethodHarmony), string(MethodPlain), string(MethodBLIPDiffusion)),
	eliteOnly(floatOpt("local-weight", "ELITE: λ, the weight of the local (patch) branch, in [0, 10] (0.8)", func(o *Options) *float64 { return &o.LocalWeight }, 0, MaxLocalWeight, false)),
	{
		OptionInfo: OptionInfo{Name: "placeholder", Usage: "ELITE: the prompt's word for the subject (S)", Only: BaseELITE},
		set:        func(o *Options, s string) error { o.Placeholder = s; return nil },
		get:        func(o *Options) string { return o.Placeholder },
		check: func(o *Options) error {
			if strings.ContainsFunc(o.Placeholder, unicode.IsSpace) {
				return optErr("placeholder", o.Placeholder, "must be one word (no spaces)")
			}
			return nil
		},
	},
	blipOnly(intOpt("prompt-reps", "how often the pipeline repeats \"a {class} {prompt}\" (1 to 100)", func(o *Options) *int { return &o.PromptReps }, 1, MaxPromptReps,
		"must be a whole number from 1 to 100")),
	onOffOpt("compare", "also make the plain BLIP-Diffusion picture from the same latents: on or off", func(o *Options) *bool { return &o.Compare }),
	onOffOpt("ortho", "orthogonal visual embedding: on or off", func(o *Options) *bool { return &o.Harmony.Ortho }),
	{
		OptionInfo: OptionInfo{Name: "ortho-mode", Usage: "orthogonalization: full, mean, or a number λ in [0, 1]"},
		set: func(o *Options, s string) error {
			m, err := harmony.ParseMode(s)
			if err != nil {
				return optErr("ortho-mode", s, "must be full, mean or a number λ in [0, 1]")
			}
			o.Harmony.OrthoMode = m
			return nil
		},
		get: func(o *Options) string { return o.Harmony.OrthoMode.String() },
		check: func(o *Options) error {
			m := o.Harmony.OrthoMode
			switch {
			case m.Kind == harmony.ModeFull || m.Kind == harmony.ModeMean:
			case m.Kind == harmony.ModeLambda && m.Lambda >= 0 && m.Lambda <= 1:
			default:
				return optErr("ortho-mode", m.String(), "must be full, mean or a number λ in [0, 1]")
			}
			return nil
		},
	},
	onOffOpt("ortho-exclude-class", "keep the class words out of the text basis: on or off", func(o *Options) *bool { return &o.Harmony.ExcludeClass }),
	onOffOpt("swap", "self-attention swap from the visual-only process: on or off", func(o *Options) *bool { return &o.Harmony.Swap }),
	{
		OptionInfo: OptionInfo{Name: "swap-mode", Usage: "swap mode: kv or map"},
		set: func(o *Options, s string) error {
			switch s {
			case "kv":
				o.Harmony.SwapMode = tensor.SwapKV
			case "map":
				o.Harmony.SwapMode = tensor.SwapMap
			default:
				return optErr("swap-mode", s, "must be kv or map")
			}
			return nil
		},
		get: func(o *Options) string {
			if o.Harmony.SwapMode == tensor.SwapMap {
				return "map"
			}
			return "kv"
		},
		check: func(o *Options) error {
			switch m := o.Harmony.SwapMode; m {
			case 0, tensor.SwapKV, tensor.SwapMap:
				return nil
			default:
				return optErr("swap-mode", int(m), "must be kv or map")
			}
		},
	},
	{
		OptionInfo: OptionInfo{Name: "swap-layers", Usage: "comma-separated self-attention layers (module prefixes) to swap (default: every up-block attn1)"},
		set: func(o *Options, s string) error {
			o.Harmony.SwapLayers = nil
			for _, l := range strings.Split(s, ",") {
				if l = strings.TrimSpace(l); l != "" {
					o.Harmony.SwapLayers = append(o.Harmony.SwapLayers, l)
				}
			}
			return nil
		},
		get: func(o *Options) string { return strings.Join(o.Harmony.SwapLayers, ",") },
	},
	{
		OptionInfo: OptionInfo{Name: "swap-start", Usage: "first swapped UNet call: a fraction of the steps in [0, 1] (0.1) or a call index (5)"},
		set: func(o *Options, s string) error {
			st, err := harmony.ParseSwapStart(s)
			if err != nil {
				return optErr("swap-start", s, swapStartReason)
			}
			o.Harmony.SwapStart = st
			return nil
		},
		get: func(o *Options) string {
			st := o.Harmony.SwapStart
			if st.IsCall {
				return strconv.Itoa(st.Call)
			}
			s := fmtFloat(st.Fraction)
			if !strings.ContainsAny(s, ".eE") {
				s += ".0" // a plain integer would read as a call index
			}
			return s
		},
		check: func(o *Options) error {
			// A fraction above 1 would only mean "never", and a huge one
			// overflows the call index into a negative one that swaps from
			// the first call.
			st := o.Harmony.SwapStart
			if st.IsCall && st.Call < 0 {
				return optErr("swap-start", st.Call, swapStartReason)
			}
			if !st.IsCall && !(st.Fraction >= 0 && st.Fraction <= 1) {
				return numErr("swap-start", st.Fraction, swapStartReason)
			}
			return nil
		},
	},
	{
		OptionInfo: OptionInfo{Name: "mask-level", Usage: "UNet level of the subject mask grid (default: the coarsest level with attention)"},
		set: func(o *Options, s string) error {
			if s = strings.TrimSpace(s); s == "" {
				o.Harmony.MaskLevel = nil
				return nil
			}
			lv, err := strconv.Atoi(s)
			if err != nil {
				return optErr("mask-level", s, maskLevelReason)
			}
			o.Harmony.MaskLevel = &lv
			return nil
		},
		get: func(o *Options) string {
			if o.Harmony.MaskLevel == nil {
				return ""
			}
			return strconv.Itoa(*o.Harmony.MaskLevel)
		},
		check: func(o *Options) error {
			if lv := o.Harmony.MaskLevel; lv != nil && *lv < 0 {
				return optErr("mask-level", *lv, maskLevelReason)
			}
			return nil
		},
	},
	oneOf("mask-tokens", "mask tokens: visual or visual+class", maskTokensField, string(MaskVisual), string(MaskVisualClass)),
	floatOpt("mask-threshold", "subject mask threshold τ in [0, 1) (strict: the mask is p > τ)", func(o *Options) *float64 { return &o.Harmony.MaskThreshold }, 0, 1, true),
	oneOf("visual-prompt", "prompt of the visual-only process: \"a {class}\" or \"a\" (BLIP-Diffusion); \"a S\", \"a photo of a S\" or \"S\" (ELITE)", visualPromptField, "a {class}", "a", "a S", "a photo of a S", "S"),
	intOpt("preview-every", "a rough preview every N UNet calls (0: none)", func(o *Options) *int { return &o.PreviewEvery }, 0, math.MaxInt32,
		"must be a whole number of calls ≥ 0"),
}

const (
	swapStartReason = "must be a fraction of the steps in [0, 1] (0.1) or a call index ≥ 0 (5)"
	maskLevelReason = "must be a UNet level ≥ 0 (or empty: the coarsest level with attention)"
)
