// Token ids against the reference tokenizers' goldens (testdata/golden):
// every id tensor of a_tokenizers.safetensors must match exactly.
package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	"harmony/loader/golden"
)

// goldenStrings is the part of strings.json the tests use.
type goldenStrings struct {
	BuiltPrompt string     `json:"built_prompt"`
	NegPrompt   string     `json:"neg_prompt"`
	Prompts3    []string   `json:"prompts3"`
	Subjects3   []string   `json:"subjects3"`
	Prompt0     []string   `json:"tok.clip.prompt0.tokens"`
	Prompt1     []string   `json:"tok.clip.prompt1.tokens"`
	Prompt2     []string   `json:"tok.clip.prompt2.tokens"`
	Built61     []string   `json:"tok.clip.built_prompt.tokens61"`
	BERT3       [][]string `json:"tok.bert.subjects3.tokens"`
}

func loadStrings(t *testing.T) goldenStrings {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "golden", "strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s goldenStrings
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// tinyCLIP loads the tiny model's tokenizer folder.
func tinyCLIP(t testing.TB) *CLIP {
	t.Helper()
	read := func(name string) []byte {
		data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "tokenizer", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tok, err := NewCLIP(CLIPFiles{Vocab: read("vocab.json"), Merges: read("merges.txt"),
		SpecialTokensMap: read("special_tokens_map.json"), TokenizerConfig: read("tokenizer_config.json")})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wantRows reads an id tensor as rows of int32.
func wantRows(t *testing.T, f *golden.File, name string) [][]int32 {
	t.Helper()
	v, shape := f.MustInts(t, name)
	cols := shape[len(shape)-1]
	var rows [][]int32
	for i := 0; i < len(v); i += cols {
		row := make([]int32, cols)
		for j := range row {
			row[j] = int32(v[i+j])
		}
		rows = append(rows, row)
	}
	return rows
}

func TestCLIPGolden(t *testing.T) {
	tok := tinyCLIP(t)
	f := golden.Open(t, "golden", "a_tokenizers.safetensors")
	s := loadStrings(t)
	if tok.BOS() != 49406 || tok.EOS() != 49407 || tok.Pad() != 49407 || tok.MaxLength() != 77 {
		t.Fatalf("special ids bos %d eos %d pad %d, max length %d", tok.BOS(), tok.EOS(), tok.Pad(), tok.MaxLength())
	}

	// Token strings first: a mismatch there explains an id mismatch.
	for i, want := range [][]string{s.Prompt0, s.Prompt1, s.Prompt2} {
		got := append(append([]string{"<|startoftext|>"}, tok.Tokens(s.Prompts3[i])...), "<|endoftext|>")
		if !slices.Equal(got, want) {
			t.Errorf("prompt %d tokens:\n got %q\nwant %q", i, got, want)
		}
	}

	type tc struct {
		name   string
		texts  []string
		maxLen int // 0: raw (no padding)
	}
	cases := []tc{
		{"tok.clip.prompts3.ids61", s.Prompts3, 61},
		{"tok.clip.prompts3.ids77", s.Prompts3, 77},
		{"tok.clip.built_prompt.ids61", []string{BuildPrompt("swimming underwater", "dog", 1.0, 20)}, 61},
		{"tok.clip.neg_prompt.ids77", []string{s.NegPrompt}, 77},
		{"tok.clip.empty.ids77", []string{""}, 77},
	}
	for i, p := range s.Prompts3 {
		cases = append(cases, tc{fmt.Sprintf("tok.clip.prompt%d.raw_ids", i), []string{p}, 0})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := wantRows(t, f, c.name)
			if c.maxLen == 0 { // a 1-D tensor is one row
				want = [][]int32{slices.Concat(want...)}
			}
			if len(want) != len(c.texts) {
				t.Fatalf("%d rows, want %d", len(c.texts), len(want))
			}
			for i, text := range c.texts {
				var got []int32
				if c.maxLen == 0 {
					got = tok.EncodeRaw(text)
				} else {
					e, err := tok.EncodePadded(text, c.maxLen)
					if err != nil {
						t.Fatal(err)
					}
					got = e.IDs
				}
				if !slices.Equal(got, want[i]) {
					t.Errorf("row %d (%q):\n got %v\nwant %v", i, text, got, want[i])
				}
			}
		})
	}

	// The pipeline's prompt builder reproduces the reference's string and tokens.
	if got := BuildPrompt("swimming underwater", "dog", 1.0, 20); got != s.BuiltPrompt {
		t.Errorf("BuildPrompt:\n got %q\nwant %q", got, s.BuiltPrompt)
	}
	e, err := tok.EncodePrompt("  swimming underwater\n", "dog", 1.0, 20, 61)
	if err != nil {
		t.Fatal(err)
	}
	if want := wantRows(t, f, "tok.clip.built_prompt.ids61")[0]; !slices.Equal(e.IDs, want) || !e.Truncated {
		t.Errorf("EncodePrompt: truncated %v ids %v, want truncated ids %v", e.Truncated, e.IDs, want)
	}
	built := append(append([]string{"<|startoftext|>"}, tok.Tokens(s.BuiltPrompt)[:59]...), "<|endoftext|>")
	if !slices.Equal(built, s.Built61) {
		t.Errorf("built prompt tokens:\n got %q\nwant %q", built, s.Built61)
	}
}

func TestBERTGolden(t *testing.T) {
	tok, err := DefaultBERT()
	if err != nil {
		t.Fatal(err)
	}
	f := golden.Open(t, "golden", "a_tokenizers.safetensors")
	s := loadStrings(t)
	if tok.CLS() != 101 || tok.SEP() != 102 || tok.Pad() != 0 || tok.DEC() != 30522 || tok.VocabSize() != 30523 {
		t.Fatalf("cls %d sep %d pad %d dec %d vocab %d", tok.CLS(), tok.SEP(), tok.Pad(), tok.DEC(), tok.VocabSize())
	}
	for _, c := range []struct {
		name  string
		texts []string
	}{
		{"tok.bert.dog", []string{"dog"}},
		{"tok.bert.subjects3", s.Subjects3},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantIDs := wantRows(t, f, c.name+".ids")
			wantMask := wantRows(t, f, c.name+".attention_mask")
			bt := tok.EncodeBatch(c.texts)
			if bt.Rows != len(wantIDs) || bt.Cols != len(wantIDs[0]) {
				t.Fatalf("batch %d×%d, want %d×%d", bt.Rows, bt.Cols, len(wantIDs), len(wantIDs[0]))
			}
			for i := range wantIDs {
				ids, mask := bt.Row(i)
				if !slices.Equal(ids, wantIDs[i]) || !slices.Equal(mask, wantMask[i]) {
					t.Errorf("row %d (%q): ids %v mask %v, want %v %v", i, c.texts[i], ids, mask, wantIDs[i], wantMask[i])
				}
			}
		})
	}
	for i, want := range s.BERT3 {
		got := append(append([]string{"[CLS]"}, tok.Tokens(s.Subjects3[i])...), "[SEP]")
		for len(got) < len(want) {
			got = append(got, "[PAD]")
		}
		if !slices.Equal(got, want) {
			t.Errorf("subject %d tokens: got %q, want %q", i, got, want)
		}
	}
}
