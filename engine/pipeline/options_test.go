package pipeline

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
)

// validOptions are defaults that pass Validate.
func validOptions() Options {
	o := DefaultOptions()
	o.TargetClass = "dog"
	return o
}

// TestSetEveryOption sets every option of the table to good and bad values:
// good ones land in their field and pass Validate, bad ones give an
// *OptionError naming the option.
func TestSetEveryOption(t *testing.T) {
	type good struct {
		v     string
		check func(o *Options) bool
	}
	lv := func(o *Options) int {
		if o.Harmony.MaskLevel == nil {
			return -1
		}
		return *o.Harmony.MaskLevel
	}
	cases := map[string]struct {
		good []good
		bad  []string
	}{
		"class":        {good: []good{{"cat", func(o *Options) bool { return o.TargetClass == "cat" }}}},
		"source-class": {good: []good{{"cat", func(o *Options) bool { return o.SourceClass == "cat" }}}},
		"prompt":       {good: []good{{"on a beach", func(o *Options) bool { return o.Prompt == "on a beach" }}}},
		"negative":     {good: []good{{"blurry", func(o *Options) bool { return o.Negative == "blurry" }}}},
		"steps": {
			good: []good{{"1", func(o *Options) bool { return o.Steps == 1 }}, {"1000", func(o *Options) bool { return o.Steps == 1000 }}},
			bad:  []string{"0", "-3", "1001", "2.5", "1e3", "x", "", "99999999999999999999"},
		},
		"guidance": {
			good: []good{{"7.5", func(o *Options) bool { return o.Guidance == 7.5 }}, {"100", func(o *Options) bool { return o.Guidance == 100 }}},
			bad:  []string{"NaN", "Inf", "-Inf", "1e30", "1e400", "100.5", "-1", "x", ""},
		},
		"seed": {
			good: []good{{"0", func(o *Options) bool { return o.Seed == 0 }}, {"18446744073709551615", func(o *Options) bool { return o.Seed == math.MaxUint64 }}},
			bad:  []string{"-1", "18446744073709551616", "1.5", "x"},
		},
		"width": {
			good: []good{{"0", func(o *Options) bool { return o.Width == 0 }}, {"640", func(o *Options) bool { return o.Width == 640 }}},
			bad:  []string{"-32", "4097", "64.5", "x"},
		},
		"height": {
			good: []good{{"0", func(o *Options) bool { return o.Height == 0 }}, {"4096", func(o *Options) bool { return o.Height == 4096 }}},
			bad:  []string{"-32", "4097", "x"},
		},
		"scheduler": {
			good: []good{{"ddim", func(o *Options) bool { return o.Scheduler == "ddim" }}, {"pndm", func(o *Options) bool { return o.Scheduler == "pndm" }}},
			bad:  []string{"euler", "PNDM"},
		},
		"method": {
			good: []good{{"blipdiffusion", func(o *Options) bool { return o.Method == MethodBLIPDiffusion }},
				{"plain", func(o *Options) bool { return o.Method == MethodPlain && o.Method.Plain() }}},
			bad: []string{"dreambooth"},
		},
		"base": {
			good: []good{{"blipdiffusion", func(o *Options) bool { return o.Base == BaseBLIPDiffusion }}},
			bad:  []string{"sd", "ELITE"},
		},
		"local-weight": {
			good: []good{{"0", func(o *Options) bool { return o.LocalWeight == 0 }}, {"0.6", func(o *Options) bool { return o.LocalWeight == 0.6 }}},
			bad:  []string{"-0.1", "10.5", "NaN", "x"},
		},
		"placeholder": {
			good: []good{{"sks", func(o *Options) bool { return o.Placeholder == "sks" }}},
			bad:  []string{"a S", "S\t"},
		},
		"prompt-reps": {
			good: []good{{"1", func(o *Options) bool { return o.PromptReps == 1 }}, {"100", func(o *Options) bool { return o.PromptReps == 100 }}},
			bad:  []string{"0", "101", "1000000000", "x"},
		},
		"compare": {
			good: []good{{"on", func(o *Options) bool { return o.Compare }}, {"off", func(o *Options) bool { return !o.Compare }}, {"TRUE", func(o *Options) bool { return o.Compare }}},
			bad:  []string{"maybe", ""},
		},
		"ortho": {
			good: []good{{"off", func(o *Options) bool { return !o.Harmony.Ortho }}, {"on", func(o *Options) bool { return o.Harmony.Ortho }}},
			bad:  []string{"2"},
		},
		"ortho-mode": {
			good: []good{{"mean", func(o *Options) bool { return o.Harmony.OrthoMode.Kind == harmony.ModeMean }},
				{"0.5", func(o *Options) bool {
					return o.Harmony.OrthoMode == harmony.Mode{Kind: harmony.ModeLambda, Lambda: 0.5}
				}}},
			bad: []string{"sideways", "1.5", "NaN", "-0.1"},
		},
		"ortho-exclude-class": {
			good: []good{{"off", func(o *Options) bool { return !o.Harmony.ExcludeClass }}},
			bad:  []string{"none"},
		},
		"swap": {
			good: []good{{"off", func(o *Options) bool { return !o.Harmony.Swap }}, {"yes", func(o *Options) bool { return o.Harmony.Swap }}},
			bad:  []string{"of"},
		},
		"swap-mode": {
			good: []good{{"map", func(o *Options) bool { return o.Harmony.SwapMode == tensor.SwapMap }}, {"kv", func(o *Options) bool { return o.Harmony.SwapMode == tensor.SwapKV }}},
			bad:  []string{"qk", ""},
		},
		"swap-layers": {
			good: []good{{" up_blocks.1 , up_blocks.2 ", func(o *Options) bool { return strings.Join(o.Harmony.SwapLayers, "|") == "up_blocks.1|up_blocks.2" }},
				{"", func(o *Options) bool { return o.Harmony.SwapLayers == nil }}},
		},
		"swap-start": {
			good: []good{{"0.25", func(o *Options) bool { return o.Harmony.SwapStart == harmony.SwapStart{Fraction: 0.25} }},
				{"5", func(o *Options) bool { return o.Harmony.SwapStart == harmony.SwapStart{Call: 5, IsCall: true} }},
				{"1.0", func(o *Options) bool { return o.Harmony.SwapStart == harmony.SwapStart{Fraction: 1} }}},
			bad: []string{"-3", "1.5", "1e30", "NaN", "Inf", "x", ""},
		},
		"mask-level": {
			good: []good{{"1", func(o *Options) bool { return lv(o) == 1 }}, {"", func(o *Options) bool { return lv(o) == -1 }}},
			bad:  []string{"-1", "x", "1.5"},
		},
		"mask-tokens": {
			good: []good{{"visual+class", func(o *Options) bool { return o.Harmony.MaskTokens == MaskVisualClass }}},
			bad:  []string{"class"},
		},
		"mask-threshold": {
			good: []good{{"0", func(o *Options) bool { return o.Harmony.MaskThreshold == 0 }}, {"0.99", func(o *Options) bool { return o.Harmony.MaskThreshold == 0.99 }}},
			bad:  []string{"NaN", "1", "-0.1", "Inf", "x"},
		},
		"visual-prompt": {
			good: []good{{"a", func(o *Options) bool { return o.Harmony.VisualPrompt == "a" }}, {"a {class}", func(o *Options) bool { return o.Harmony.VisualPrompt == "a {class}" }}},
			bad:  []string{"a cat", "{class}"},
		},
		"preview-every": {
			good: []good{{"0", func(o *Options) bool { return o.PreviewEvery == 0 }}, {"5", func(o *Options) bool { return o.PreviewEvery == 5 }}},
			bad:  []string{"-1", "x"},
		},
	}
	for _, info := range OptionList() {
		c, ok := cases[info.Name]
		require.True(t, ok, "no test case for option %q", info.Name)
		delete(cases, info.Name)
		t.Run(info.Name, func(t *testing.T) {
			for _, g := range c.good {
				o := validOptions()
				require.NoError(t, o.Set(info.Name, g.v), "value %q", g.v)
				require.True(t, g.check(&o), "value %q did not land", g.v)
				require.NoError(t, o.Validate(), "value %q", g.v)
				// Get gives a value Set takes back unchanged.
				again := validOptions()
				require.NoError(t, again.Set(info.Name, o.Get(info.Name)), "Get %q", o.Get(info.Name))
				require.Equal(t, o.Get(info.Name), again.Get(info.Name))
			}
			for _, v := range c.bad {
				o := validOptions()
				err := o.Set(info.Name, v)
				if err == nil {
					err = o.Validate()
				}
				if before := validOptions(); o.Set(info.Name, v) != nil {
					require.Equal(t, before.Get(info.Name), o.Get(info.Name), "a refused %q changed the option", v)
				}
				var oe *OptionError
				require.ErrorAs(t, err, &oe, "value %q was accepted", v)
				require.Equal(t, info.Name, oe.Option, "value %q", v)
				require.True(t, strings.HasPrefix(err.Error(), "pipeline: --"+info.Name+" must "), "%q: %v", v, err)
			}
		})
	}
	require.Empty(t, cases, "test cases for options that do not exist")
}

// TestOptionMessages pins the words of a few refusals.
func TestOptionMessages(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"guidance", "NaN", "pipeline: --guidance must be finite, got NaN"},
		{"guidance", "Inf", "pipeline: --guidance must be finite, got +Inf"},
		{"guidance", "1e30", "pipeline: --guidance must be a number in [0, 100], got 1e+30"},
		{"mask-threshold", "NaN", "pipeline: --mask-threshold must be finite, got NaN"},
		{"height", "-32", "pipeline: --height must be a size in pixels from 0 (the width) to 4096, got -32"},
		{"width", "-32", "pipeline: --width must be a size in pixels from 0 (the model's own) to 4096, got -32"},
		{"steps", "x", `pipeline: --steps must be a whole number from 1 to 1000, got "x"`},
		{"swap", "maybe", `pipeline: --swap must be on or off, got "maybe"`},
		{"visual-prompt", "a cat", `pipeline: --visual-prompt must be "a {class}", "a", "a S", "a photo of a S" or "S", got "a cat"`},
		{"method", "x", `pipeline: --method must be harmony, plain or blipdiffusion, got "x"`},
		{"local-weight", "-1", "pipeline: --local-weight must be a number in [0, 10], got -1"},
		{"placeholder", "a b", `pipeline: --placeholder must be one word (no spaces), got "a b"`},
		{"nonsense", "1", "pipeline: --nonsense is not an option of the pipeline"},
	} {
		o := validOptions()
		err := o.Set(tc.name, tc.value)
		require.EqualError(t, err, tc.want)
	}
}

// TestValidate covers what Set cannot see: fields set directly, and checks
// between options.
func TestValidate(t *testing.T) {
	var oe *OptionError
	for _, tc := range []struct {
		name   string
		edit   func(o *Options)
		option string // "" = valid
	}{
		{"defaults", func(o *Options) {}, ""},
		{"source class alone", func(o *Options) { o.TargetClass, o.SourceClass = "", "cat" }, ""},
		{"no class", func(o *Options) { o.TargetClass = "  " }, "class"},
		{"Harmony without guidance", func(o *Options) { o.Guidance = 1 }, "guidance"},
		{"Harmony by default without guidance", func(o *Options) { o.Method, o.Guidance = "", 0.5 }, "guidance"},
		{"plain without guidance", func(o *Options) { o.Method, o.Guidance = MethodBLIPDiffusion, 1 }, ""},
		{"guidance NaN", func(o *Options) { o.Guidance = math.NaN() }, "guidance"},
		{"steps", func(o *Options) { o.Steps = 0 }, "steps"},
		{"prompt strength 0 means 1", func(o *Options) { o.PromptStrength = 0 }, ""},
		{"prompt strength NaN", func(o *Options) { o.PromptStrength = math.NaN() }, "prompt-strength"},
		{"prompt strength negative", func(o *Options) { o.PromptStrength = -1 }, "prompt-strength"},
		{"zero values mean defaults", func(o *Options) {
			o.Method, o.Scheduler, o.Harmony.SwapMode, o.Harmony.MaskTokens, o.Harmony.VisualPrompt, o.Width, o.Height = "", "", 0, "", "", 0, 0
		}, ""},
		{"swap mode", func(o *Options) { o.Harmony.SwapMode = 99 }, "swap-mode"},
		{"ortho lambda", func(o *Options) { o.Harmony.OrthoMode = harmony.Mode{Kind: harmony.ModeLambda, Lambda: 2} }, "ortho-mode"},
		{"swap-start fraction", func(o *Options) { o.Harmony.SwapStart = harmony.SwapStart{Fraction: math.Inf(1)} }, "swap-start"},
		{"mask level", func(o *Options) { lv := -2; o.Harmony.MaskLevel = &lv }, "mask-level"},
		{"preview", func(o *Options) { o.PreviewEvery = -1 }, "preview-every"},
	} {
		o := validOptions()
		tc.edit(&o)
		err := o.Validate()
		if tc.option == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.True(t, errors.As(err, &oe), "%s: %v", tc.name, err)
		require.Equal(t, tc.option, oe.Option, tc.name)
	}
}

// TestSetNumber: numbers as a JavaScript front end has them reach the same
// parser: whole numbers parse as whole-number options, NaN is refused by
// name.
func TestSetNumber(t *testing.T) {
	o := validOptions()
	require.NoError(t, o.SetNumber("steps", 25))
	require.Equal(t, 25, o.Steps)
	require.NoError(t, o.SetNumber("seed", 1e15))
	require.Equal(t, uint64(1e15), o.Seed)
	require.NoError(t, o.SetNumber("seed", 1e19))
	require.Equal(t, uint64(1e19), o.Seed)
	require.EqualError(t, o.SetNumber("seed", 1e20), `pipeline: --seed must be a whole number from 0 to 18446744073709551615, got "100000000000000000000"`)
	require.NoError(t, o.SetNumber("mask-threshold", 0.25))
	require.Equal(t, 0.25, o.Harmony.MaskThreshold)
	require.EqualError(t, o.SetNumber("steps", 2.5), `pipeline: --steps must be a whole number from 1 to 1000, got "2.5"`)
	require.EqualError(t, o.SetNumber("guidance", math.NaN()), "pipeline: --guidance must be finite, got NaN")
	require.EqualError(t, o.SetNumber("seed", -1), `pipeline: --seed must be a whole number from 0 to 18446744073709551615, got "-1"`)
	keys := map[string]string{}
	for _, info := range OptionList() {
		keys[info.Name] = info.Key
	}
	require.Equal(t, "maskThreshold", keys["mask-threshold"])
	require.Equal(t, "orthoExcludeClass", keys["ortho-exclude-class"])
	require.Equal(t, "class", keys["class"])
}

// TestCheckSizes: each size is checked and named on its own against the
// model, 0 means the model's own size, and the model's layer choices name
// their options.
func TestCheckSizes(t *testing.T) {
	m := cpuModel(t)
	base := goldenOptions(t)
	var oe *OptionError
	for _, tc := range []struct {
		name   string
		edit   func(o *Options)
		option string
	}{
		{"golden", func(o *Options) {}, ""},
		{"height not a multiple", func(o *Options) { o.Height = 42 }, "height"},
		{"width not a multiple", func(o *Options) { o.Width = 42 }, "width"},
		{"width under a latent pixel", func(o *Options) { o.Width = 1 }, "width"},
		{"mask level too deep", func(o *Options) { lv := 9; o.Harmony.MaskLevel = &lv }, "mask-level"},
		{"unknown swap layer", func(o *Options) { o.Harmony.SwapLayers = []string{"mid_block.nothing"} }, "swap-layers"},
		{"latents", func(o *Options) { o.Latents = o.Latents[:10] }, "latents"},
		{"no photo", func(o *Options) { o.Image = nil }, "image"},
	} {
		o := base
		tc.edit(&o)
		_, err := o.check(m)
		if tc.option == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.True(t, errors.As(err, &oe), "%s: %v", tc.name, err)
		require.Equal(t, tc.option, oe.Option, tc.name)
	}
	o := base
	o.Width, o.Height, o.Latents = 0, 0, nil
	_, err := o.check(m)
	require.NoError(t, err)
	want := m.UNetConfig.SampleSize * m.LatentFactor
	require.Equal(t, [2]int{want, want}, [2]int{o.Width, o.Height}, "0 is the model's own size")
	o = base
	o.Height, o.Latents = 0, nil
	_, err = o.check(m)
	require.NoError(t, err)
	require.Equal(t, o.Width, o.Height, "height 0 is the width")
}
