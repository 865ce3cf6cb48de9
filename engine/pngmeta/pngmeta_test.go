// Tests of the parameters chunk: its layout, that decoders still read the
// picture, and the Latin-1 / UTF-8 split between tEXt and iTXt.
package pngmeta

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/pipeline"
)

func testImage() *pipeline.Image {
	im := &pipeline.Image{W: 3, H: 2, Pix: make([]uint8, 18)}
	for i := range im.Pix {
		im.Pix[i] = uint8(10 * i)
	}
	return im
}

func TestParametersLayout(t *testing.T) {
	o := pipeline.DefaultOptions()
	o.Prompt, o.Negative, o.TargetClass, o.Seed, o.Steps = "playing a guitar", "blurry", "dog", 42, 25
	require.NoError(t, o.Set("swap-layers", "up_blocks.1,up_blocks.2"))
	s := Parameters(&o, "my model", 512, 384)
	lines := strings.Split(s, "\n")
	require.Len(t, lines, 3)
	require.Equal(t, "playing a guitar", lines[0])
	require.Equal(t, "Negative prompt: blurry", lines[1])
	require.True(t, strings.HasPrefix(lines[2], "Steps: 25, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 512x384, Model: my model, Class: dog, "), lines[2])
	require.Contains(t, lines[2], "Method: harmony")
	require.Contains(t, lines[2], "Mask threshold: 0.3")
	require.Contains(t, lines[2], `Swap layers: "up_blocks.1,up_blocks.2"`)
	require.NotContains(t, lines[2], "Preview every")
}

func TestPNGCarriesParameters(t *testing.T) {
	o := pipeline.DefaultOptions()
	o.Prompt, o.TargetClass = "swimming", "dog"
	data, err := PNG(testImage(), &o, "")
	require.NoError(t, err)
	m, err := png.Decode(bytes.NewReader(data)) // chunk CRCs and order are valid
	require.NoError(t, err)
	require.Equal(t, 3, m.Bounds().Dx())
	text, ok := Text(data, Key)
	require.True(t, ok)
	require.Equal(t, Parameters(&o, "", 3, 2), text)
	require.Contains(t, text, "Model: bundled demo model")
	require.Contains(t, string(data), "tEXtparameters\x00")
}

func TestUTF8GoesToITXt(t *testing.T) {
	plain, err := testImage().PNG()
	require.NoError(t, err)
	for _, text := range []string{"café au lait", "犬がギターを弾く"} {
		data, err := WithText(plain, Key, text)
		require.NoError(t, err)
		_, err = png.Decode(bytes.NewReader(data))
		require.NoError(t, err)
		got, ok := Text(data, Key)
		require.True(t, ok)
		require.Equal(t, text, got)
	}
	data, _ := WithText(plain, Key, "犬")
	require.Contains(t, string(data), "iTXtparameters")
	_, err = WithText([]byte("nope"), Key, "x")
	require.EqualError(t, err, "pngmeta: not a PNG")
}

func TestParseRoundTrip(t *testing.T) {
	o := pipeline.DefaultOptions()
	o.Prompt, o.Negative, o.TargetClass, o.SourceClass = "on a beach, at dusk", "blurry", "dog", "cat"
	o.Seed = 7
	p := Parse(Parameters(&o, "models/a:b", 64, 48))
	require.Equal(t, "on a beach, at dusk", p.Prompt)
	require.Equal(t, "blurry", p.Negative)
	require.Equal(t, "dog", p.Fields["Class"])
	require.Equal(t, "cat", p.Fields["Source class"])
	require.Equal(t, "7", p.Fields["Seed"])
	require.Equal(t, "models/a:b", p.Fields["Model"])
	require.Equal(t, "64x48", p.Fields["Size"])
	require.Equal(t, "harmony", p.Fields["Method"])
	// A bare prompt is all prompt.
	require.Equal(t, Parsed{Prompt: "a dog\nsleeping", Fields: map[string]string{}}, Parse("a dog\nsleeping"))
}
