// Fuzz targets for both tokenizers: vocabulary files and text are
// untrusted (a downloaded model folder, a user's prompt). Nothing may
// panic, every id must come from the vocabulary, and the padded and raw
// encodings must agree with the plain one.
package tokenizer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// synthCLIP is a small byte-level CLIP vocabulary: every byte symbol with
// and without "</w>", the specials, and a few merges (enough to exercise
// the merge loop without the real 49408-entry files).
func synthCLIP(t testing.TB) CLIPFiles {
	vocab := map[string]int{}
	for b := range 256 {
		r := string(byteToRune[b])
		vocab[r] = len(vocab)
		vocab[r+endOfWord] = len(vocab)
	}
	merges := []string{"#version: 0.2", "t h", "th e</w>", "a </w>", "i n", "in g</w>", "p h", "ph o", "pho t", "phot o</w>", "o f</w>", "Ġ Ġ"}
	for _, m := range merges[1:] {
		vocab[strings.ReplaceAll(m, " ", "")] = len(vocab)
	}
	vocab["<|startoftext|>"] = len(vocab)
	vocab["<|endoftext|>"] = len(vocab)
	vj, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	return CLIPFiles{Vocab: vj, Merges: []byte(strings.Join(merges, "\n"))}
}

func idSet[M ~map[string]int32](m M) map[int32]bool {
	s := make(map[int32]bool, len(m))
	for _, id := range m {
		s[id] = true
	}
	return s
}

var fuzzTexts = []string{"a photo of the thing", "A PHOTO, of <|startoftext|> Σίσυφος <|endoftext|>!!", "don't   stop\t\n",
	"日本語のテキスト", "\x00\xff\xfe broken utf-8 \xc3", "e\u0301\u0301 ﬁ ǅ", strings.Repeat("ab", 200), "<|endoftext|><|endoftext|>"}

func FuzzCLIPEncode(f *testing.F) {
	tok, err := NewCLIP(synthCLIP(f))
	if err != nil {
		f.Fatal(err)
	}
	ids := idSet(tok.vocab)
	for _, s := range fuzzTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		enc := tok.Encode(text)
		for _, id := range enc {
			if !ids[id] {
				t.Fatalf("id %d not in the vocabulary", id)
			}
		}
		if again := tok.Encode(text); !slices.Equal(enc, again) {
			t.Fatalf("second encoding differs: %v, %v", enc, again)
		}
		raw := tok.EncodeRaw(text)
		if len(raw) != len(enc)+2 || raw[0] != tok.BOS() || raw[len(raw)-1] != tok.EOS() || !slices.Equal(raw[1:len(raw)-1], enc) {
			t.Fatalf("raw %v, plain %v", raw, enc)
		}
		p, err := tok.EncodePadded(text, 16)
		if err != nil || len(p.IDs) != 16 || p.Needed != len(raw) || p.Truncated != (len(raw) > 16) {
			t.Fatalf("padded %+v, %v", p, err)
		}
		if !p.Truncated && !slices.Equal(p.IDs[:len(raw)], raw) {
			t.Fatalf("padded %v, raw %v", p.IDs, raw)
		}
	})
}

// FuzzCLIPFiles loads hostile vocab.json, merges.txt and special-token
// files, then encodes with them.
func FuzzCLIPFiles(f *testing.F) {
	s := synthCLIP(f)
	f.Add(s.Vocab, s.Merges, []byte(`{"bos_token":{"content":"<|startoftext|>"},"pad_token":"!"}`), []byte(`{"model_max_length":77}`), "a photo")
	f.Add([]byte(`{"a</w>":0,"<|startoftext|>":1,"<|endoftext|>":2}`), []byte("#v\na </w>\n"), []byte(nil), []byte(`{"model_max_length":1e30}`), "a b")
	f.Add([]byte(`{"<|startoftext|>":1,"<|endoftext|>":2,"x":-1}`), []byte("#\nx y z\n\n"), []byte(`[]`), []byte(`3`), "x")
	f.Fuzz(func(t *testing.T, vocab, merges, special, config []byte, text string) {
		tok, err := NewCLIP(CLIPFiles{Vocab: vocab, Merges: merges, SpecialTokensMap: special, TokenizerConfig: config})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokenizer: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		ids := idSet(tok.vocab)
		for _, id := range tok.EncodeRaw(text) {
			if !ids[id] {
				t.Fatalf("id %d not in the vocabulary", id)
			}
		}
		if m := tok.MaxLength(); m < 2 {
			t.Fatalf("max length %d", m)
		}
	})
}

func FuzzBERTEncode(f *testing.F) {
	tok, err := DefaultBERT()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzTexts {
		f.Add(s)
	}
	f.Add("[CLS] a [MASK] of [DEC] " + strings.Repeat("x", 101))
	f.Fuzz(func(t *testing.T, text string) {
		enc := tok.Encode(text)
		if len(enc) < 2 || enc[0] != tok.CLS() || enc[len(enc)-1] != tok.SEP() {
			t.Fatalf("encoding %v lacks [CLS] … [SEP]", enc)
		}
		for _, id := range enc {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("id %d outside the %d-entry vocabulary", id, tok.VocabSize())
			}
		}
		bt := tok.EncodeBatch([]string{text, "a"})
		if row, _ := bt.Row(0); !slices.Equal(row[:len(enc)], enc) {
			t.Fatalf("batch row %v, encoding %v", row, enc)
		}
	})
}

// FuzzBERTVocab loads a hostile vocab.txt, then encodes with it.
func FuzzBERTVocab(f *testing.F) {
	f.Add([]byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n##b\nphoto\n"), "a photo ab")
	f.Add([]byte("[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n[DEC]\n[CLS]\n"), "[DEC] x")
	f.Add([]byte("[UNK]\n[CLS]\n"), "")
	f.Fuzz(func(t *testing.T, vocab []byte, text string) {
		tok, err := NewBERT(vocab)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokenizer: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		ids := idSet(tok.vocab)
		enc := tok.Encode(text)
		for _, id := range enc {
			if !ids[id] {
				t.Fatalf("id %d not in the vocabulary", id)
			}
		}
		if enc[0] != tok.CLS() || enc[len(enc)-1] != tok.SEP() {
			t.Fatalf("encoding %v lacks [CLS] … [SEP]", enc)
		}
	})
}
