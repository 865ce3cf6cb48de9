// FixText and the CLIP tokenizer's ftfy cleaning against transformers'
// CLIPTokenizer with ftfy 6.3.1 installed (testdata/eval/clip_text.json,
// made by testdata/gen/make_clip_text.py): fix_text output and the 77-token
// ids, including truncation, for prompts that exercise each fix.
package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"harmony/loader/golden"
)

type ftfyCase struct {
	Text      string  `json:"text"`
	FixText   string  `json:"fix_text"`
	IDs77     []int32 `json:"ids77"`
	Needed    int     `json:"needed"`
	IDsNoFTFY []int32 `json:"ids_no_ftfy"`
}

func TestFTFYGolden(t *testing.T) {
	data, err := os.ReadFile(golden.Path(t, "eval", "clip_text.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []ftfyCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	base := tinyCLIP(t)
	tok := base.WithCleaning(CleanFTFY)
	differ := 0
	for _, c := range cases {
		if got := FixText(c.Text); got != c.FixText {
			t.Errorf("FixText(%q) = %q, want %q", c.Text, got, c.FixText)
		}
		e, err := tok.EncodePadded(c.Text, 77)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.IDs, c.IDs77) {
			t.Errorf("%q: ids\n%v\nwant\n%v", c.Text, e.IDs, c.IDs77)
		}
		if e.Needed != c.Needed || e.Truncated != (c.Needed > 77) {
			t.Errorf("%q: needed %d truncated %v, want needed %d", c.Text, e.Needed, e.Truncated, c.Needed)
		}
		// The default cleaning stays the no-ftfy path.
		if got := base.EncodeRaw(c.Text); !slices.Equal(got, c.IDsNoFTFY) {
			t.Errorf("%q: no-ftfy ids %v, want %v", c.Text, got, c.IDsNoFTFY)
		}
		if !slices.Equal(tok.EncodeRaw(c.Text), c.IDsNoFTFY) {
			differ++
		}
	}
	// The two cleanings must really differ on these prompts (contractions,
	// "?!", quotes, entities).
	if differ < 5 {
		t.Errorf("only %d prompts tokenize differently with and without ftfy", differ)
	}
}

// Each expectation was checked against ftfy 6.3.1's fix_text.
func TestFixTextPieces(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"&lt;b&gt;", "<b>"},
		{"a < b &amp; c", "a < b &amp; c"},
		{"&#x41;&#66;", "AB"},
		{"\x1b[1;31mX\x1b[0m", "X"},
		{"\x1b[Z", ""}, // ESC [ Z is a complete escape; ESC is a control char anyway
		{"ﬃ", "ffi"},
		{"\u02bcx\u201b", "'x'"},
	} {
		if got := FixText(c.in); got != c.want {
			t.Errorf("FixText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
