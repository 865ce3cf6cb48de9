// Behaviour tests beyond the goldens: pre-tokenization, cleaning,
// normalization, truncation reporting, class-word sequences, BERT details
// and constructor errors.
package tokenizer

import (
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"harmony/loader/golden"
)

func TestCLIPTokens(t *testing.T) {
	tok := tinyCLIP(t)
	for _, c := range []struct {
		text string
		want []string
	}{
		{"A photo", []string{"a</w>", "photo</w>"}},
		{"  many\t\n spaces\u00a0here ", []string{"many</w>", "spaces</w>", "here</w>"}},
		{"2024", []string{"2</w>", "0</w>", "2</w>", "4</w>"}},                   // single digits
		{"don't", []string{"don</w>", "'t</w>"}},                                 // contraction
		{"dog's", []string{"dog</w>", "'s</w>"}},                                 // contraction
		{"--!?", []string{"--", "!?</w>"}},                                       // a run of other characters, BPE'd
		{"cafe\u0301", []string{"cafÃ©</w>"}},                                    // NFC composes é
		{"🔥🔥 fire", []string{"ðŁĶ¥ðŁĶ¥</w>", "fire</w>"}},                        // 4-byte UTF-8 through the byte map
		{"dog<|endoftext|>cat", []string{"dog</w>", "<|endoftext|>", "cat</w>"}}, // exact special token
		{"!<|startoftext|>", []string{"!</w>", "<|startoftext|>"}},               // split out before the pattern
		{"a <|EndOfText|> b", []string{"a</w>", "<|endoftext|>", "b</w>"}},       // lower-cased, then matched by the pattern
		{"x\u0000y\ufffdz\u200b", []string{"xy", "z</w>"}},                       // NUL, U+FFFD and Cf dropped
	} {
		if got := tok.Tokens(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

// TestCLIPEquivalentTexts checks texts that the cleaning must make identical.
func TestCLIPEquivalentTexts(t *testing.T) {
	tok := tinyCLIP(t)
	for _, c := range [][2]string{
		{"Café", "cafe\u0301"},                     // NFC
		{"ΟΔΟΣ ΣΑΣ", "οδος σας"},                   // Python lower(): final sigma at word ends
		{"猫cat", "猫 cat"},                          // CJK ideographs become separate words
		{"İ", "i\u0307"},                           // Python's full lower-case mapping
		{"a\u2028b\u3000c", "a b c"},               // Python str.split whitespace
		{"tab\tand\r\nnewline", "tab and newline"}, // whitespace collapse
	} {
		a, b := tok.Encode(c[0]), tok.Encode(c[1])
		if !slices.Equal(a, b) {
			t.Errorf("%q → %v but %q → %v", c[0], a, c[1], b)
		}
	}
}

func TestCLIPTruncation(t *testing.T) {
	tok := tinyCLIP(t)
	long := strings.TrimSpace(strings.Repeat("dog ", 300)) // 300 content tokens
	for _, c := range []struct {
		text      string
		maxLen    int
		needed    int
		truncated bool
	}{
		{long, 77, 302, true},
		{"a dog", 77, 4, false},
		{strings.TrimSpace(strings.Repeat("dog ", 75)), 77, 77, false}, // exactly fits
		{strings.TrimSpace(strings.Repeat("dog ", 76)), 77, 78, true},
		{"", 2, 2, false},
	} {
		e, err := tok.EncodePadded(c.text, c.maxLen)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.IDs) != c.maxLen || e.Needed != c.needed || e.Truncated != c.truncated {
			t.Errorf("len %d needed %d truncated %v, want %d %d %v", len(e.IDs), e.Needed, e.Truncated, c.maxLen, c.needed, c.truncated)
			continue
		}
		if e.IDs[0] != tok.BOS() || !slices.Contains(e.IDs, tok.EOS()) {
			t.Errorf("ids %v lack BOS/EOS", e.IDs)
		}
		if c.truncated && (e.IDs[c.maxLen-1] != tok.EOS() || e.Dropped() != c.needed-c.maxLen) {
			t.Errorf("truncated ids end %d, dropped %d", e.IDs[c.maxLen-1], e.Dropped())
		}
	}
	if _, err := tok.EncodePadded("x", 1); err == nil {
		t.Error("max length 1 accepted")
	}
}

// indexOf returns where sub starts in seq, or -1.
func indexOf(seq, sub []int32) int {
	for i := 0; i+len(sub) <= len(seq); i++ {
		if slices.Equal(seq[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// TestClassWordSequence checks that a class word tokenized alone is found
// again in the built prompt, and not inside words that merely contain it.
func TestClassWordSequence(t *testing.T) {
	tok := tinyCLIP(t)
	for _, c := range []struct {
		class  string
		want   []int32 // ids of the class word alone
		prompt string  // target subject used to build the prompt
		at     int     // position in the encoded prompt (BOS=0, "a"=1), -1: absent
	}{
		{"dog", []int32{1929}, "dog", 2},
		{"teddy bear", []int32{11798, 4298}, "teddy bear", 2},
		{"Dog", []int32{1929}, "DOG", 2},
		{"dog", []int32{1929}, "dogs", -1},
		{"dog", []int32{1929}, "hotdog", -1},
	} {
		seq := tok.Encode(c.class)
		if !slices.Equal(seq, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.class, seq, c.want)
		}
		e, err := tok.EncodePrompt("on the beach", c.prompt, 1, 20, 61)
		if err != nil {
			t.Fatal(err)
		}
		if got := indexOf(e.IDs, seq); got != c.at {
			t.Errorf("class %q in prompt for %q at %d, want %d", c.class, c.prompt, got, c.at)
		}
	}
}

func TestPromptOverflow(t *testing.T) {
	tok := tinyCLIP(t)
	if n := tok.PromptOverflow("swimming underwater", "dog", 61); n != 0 {
		t.Errorf("short prompt overflows by %d", n)
	}
	long := strings.TrimSpace(strings.Repeat("red ", 60)) // "a dog" + 60 + BOS/EOS = 64
	if n := tok.PromptOverflow(long, "dog", 61); n != 3 {
		t.Errorf("overflow %d, want 3", n)
	}
}

func TestBuildPrompt(t *testing.T) {
	for _, c := range []struct {
		prompt, target string
		strength       float64
		reps           int
		want           string
	}{
		{" on grass \n", "cat", 1, 2, "a cat on grass, a cat on grass"},
		{"x", "cat", 0.5, 5, "a cat x, a cat x"}, // int(2.5) = 2
		{"x", "cat", 1, 1, "a cat x"},
		{"x", "cat", 0, 20, ""},
		{"", "cat", 1, 1, "a cat "},
	} {
		if got := BuildPrompt(c.prompt, c.target, c.strength, c.reps); got != c.want {
			t.Errorf("BuildPrompt(%q, %q, %v, %d) = %q, want %q", c.prompt, c.target, c.strength, c.reps, got, c.want)
		}
	}
}

func TestBERTTokens(t *testing.T) {
	tok, err := DefaultBERT()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string
		want []string
	}{
		{"Teddy Bears", []string{"teddy", "bears"}},
		{"Café", []string{"cafe"}},                         // accents stripped
		{"a red CAR!", []string{"a", "red", "car", "!"}},   // punctuation split
		{"hotdog", []string{"hot", "##dog"}},               // WordPiece continuation
		{"dog [SEP] cat", []string{"dog", "[SEP]", "cat"}}, // special token kept
		{"[sep]", []string{"[", "sep", "]"}},               // only the exact form is special
		{strings.Repeat("a", 101), []string{"[UNK]"}},      // too long for WordPiece
		{"中x", []string{"中", "x"}},                         // CJK split
	} {
		if got := tok.Tokens(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	bt := tok.EncodeBatch([]string{"dog", "[DEC]"})
	if ids, _ := bt.Row(1); !slices.Equal(ids, []int32{101, 30522, 102}) {
		t.Errorf("[DEC] row %v", ids)
	}
	if bt := tok.EncodeBatch(nil); bt.Rows != 0 || bt.Cols != 0 {
		t.Errorf("empty batch %+v", bt)
	}
}

func TestNormalization(t *testing.T) {
	// Expected values from Python's unicodedata.normalize (a one-off check of
	// every decomposable code point plus 20,000 random mark sequences agreed).
	for _, c := range []struct{ in, nfd, nfc string }{
		{"abc", "abc", "abc"},
		{"é", "e\u0301", "é"},
		{"e\u0301", "e\u0301", "é"},
		{"ǖ", "u\u0308\u0304", "ǖ"},                            // recursive decomposition
		{"a\u0323\u0302", "a\u0323\u0302", "ậ"},                // composes in canonical order
		{"a\u0302\u0323", "a\u0323\u0302", "ậ"},                // reordered first
		{"\u0301e", "\u0301e", "\u0301e"},                      // leading mark stays
		{"e\u0301\u0301", "e\u0301\u0301", "é\u0301"},          // second acute blocked
		{"\u1100\u1161\u11a8", "\u1100\u1161\u11a8", "\uac01"}, // Hangul LVT
		{"\uac01", "\u1100\u1161\u11a8", "\uac01"},
		{"\u212b", "A\u030a", "Å"},                 // singleton (Ångström sign)
		{"\u0344", "\u0308\u0301", "\u0308\u0301"}, // non-starter decomposition, excluded
		{"\u0958", "\u0915\u093c", "\u0915\u093c"}, // composition exclusion
	} {
		if got := NFD(c.in); got != c.nfd {
			t.Errorf("NFD(%+q) = %+q, want %+q", c.in, got, c.nfd)
		}
		if got := NFC(c.in); got != c.nfc {
			t.Errorf("NFC(%+q) = %+q, want %+q", c.in, got, c.nfc)
		}
	}
	if got := stripAccents("Crème Brûlée"); got != "Creme Brulee" {
		t.Errorf("stripAccents = %q", got)
	}
}

func TestConstructorErrors(t *testing.T) {
	vocab := []byte(`{"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}`)
	merges := []byte("#version: 0.2\na </w>\n")
	for _, c := range []struct {
		name string
		f    CLIPFiles
		want string
	}{
		{"bad json", CLIPFiles{Vocab: []byte("{"), Merges: merges}, "vocab.json"},
		{"empty vocab", CLIPFiles{Vocab: []byte("{}"), Merges: merges}, "empty"},
		{"no merges", CLIPFiles{Vocab: vocab, Merges: []byte("#version: 0.2\n")}, "no merges"},
		{"missing special", CLIPFiles{Vocab: vocab, Merges: merges, SpecialTokensMap: []byte(`{"pad_token": "!"}`)}, "pad_token"},
		{"bad special map", CLIPFiles{Vocab: vocab, Merges: merges, SpecialTokensMap: []byte(`{"bos_token": 3}`)}, "special_tokens_map"},
	} {
		_, err := NewCLIP(c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "tokenizer: ") {
			t.Errorf("%s: err %v, want one naming %q", c.name, err, c.want)
		}
	}
	tok, err := NewCLIP(CLIPFiles{Vocab: vocab, Merges: merges})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.EncodeRaw("a b"); !slices.Equal(got, []int32{1, 0, 2, 2}) { // "b</w>" unknown → unk (= EOS)
		t.Errorf("minimal tokenizer: %v", got)
	}

	if _, err := NewBERT([]byte("[PAD]\n[UNK]\n[SEP]\n")); err == nil || !strings.Contains(err.Error(), "[CLS]") {
		t.Errorf("vocab without [CLS]: %v", err)
	}
	b, err := NewBERT([]byte("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\ndog\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Encode("dog cat"); !slices.Equal(got, []int32{2, 4, 1, 3}) || b.DEC() != 5 {
		t.Errorf("custom vocab: %v, dec %d", got, b.DEC())
	}
	if _, err := NewBERT([]byte{0xff, '\n'}); err == nil {
		t.Error("invalid UTF-8 vocab accepted")
	}
}

func TestLoadFromFS(t *testing.T) {
	dir := golden.Path(t, "blipdiffusion-tiny")
	fsys := os.DirFS(dir)
	tok, err := LoadCLIP(fsys, "tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	e, err := tok.EncodeNegative(strings.Repeat("blurry, ", 100))
	if err != nil || len(e.IDs) != 77 || !e.Truncated || e.Needed != 202 {
		t.Errorf("EncodeNegative: %v, %d ids, truncated %v, needed %d", err, len(e.IDs), e.Truncated, e.Needed)
	}
	if _, err := LoadCLIP(fsys, "unet"); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("folder without vocab.json: %v", err)
	}

	custom := fstest.MapFS{"qformer/vocab.txt": {Data: []byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\ncat\n")}}
	b, err := LoadBERT(custom, "qformer/tokenizer/vocab.txt", "qformer/vocab.txt")
	if err != nil || b.VocabSize() != 6 {
		t.Errorf("model folder vocab: %v", err)
	}
	b, err = LoadBERT(fsys, "qformer/vocab.txt")
	if err != nil || b.VocabSize() != 30523 {
		t.Errorf("embedded fallback: %v", err)
	}
}
