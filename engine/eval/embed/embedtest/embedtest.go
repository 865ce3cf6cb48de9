// Package embedtest makes test fixtures for the evaluation models: a CLIP
// tokenizer small enough for the tiny random CLIP checkpoints (whose
// vocab_size is a few hundred), written beside a model's files.
package embedtest

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// byteChars is GPT-2/CLIP's bytes_to_unicode in its order: the printable
// bytes as themselves, then the others shifted to 256 and up.
func byteChars() []rune {
	var bs []rune
	for r := '!'; r <= '~'; r++ {
		bs = append(bs, r)
	}
	for r := '¡'; r <= '¬'; r++ {
		bs = append(bs, r)
	}
	for r := '®'; r <= 'ÿ'; r++ {
		bs = append(bs, r)
	}
	in := map[rune]bool{}
	for _, r := range bs {
		in[r] = true
	}
	n := rune(0)
	for b := rune(0); b < 256; b++ {
		if !in[b] {
			bs = append(bs, 256+n)
			n++
		}
	}
	return bs
}

// TinyVocab is a CLIP vocabulary of n tokens (450 ≤ n ≤ 515) with one
// merge: the 256 byte characters, the first n−259 of them as word ends
// ("a</w>"; every printable ASCII character is among them), the merge's
// "at</w>", then <|startoftext|> and <|endoftext|> as the two highest ids,
// as in CLIP's own vocabulary.
func TinyVocab(n int) map[string]int {
	chars := byteChars()
	v := map[string]int{}
	for _, r := range chars {
		v[string(r)] = len(v)
	}
	for _, r := range chars[:min(n-259, len(chars))] {
		v[string(r)+"</w>"] = len(v)
	}
	v["at</w>"] = len(v)
	v["<|startoftext|>"] = len(v)
	v["<|endoftext|>"] = len(v)
	return v
}

// WriteTokenizer writes vocab.json and merges.txt of TinyVocab(n) into dir.
func WriteTokenizer(dir string, n int) error {
	data, err := json.Marshal(TinyVocab(n))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.json"), data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\na t</w>\n"), 0o644)
}

// TinyCLIPFolder makes dir a CLIPModel folder: the given config.json and
// weights (linked, not copied) and a tiny tokenizer of vocab tokens.
func TinyCLIPFolder(dir, config, weights string, vocab int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for src, name := range map[string]string{config: "config.json", weights: "model.safetensors"} {
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return WriteTokenizer(dir, vocab)
}
