// Loading the tokenizers from a model folder through io/fs (an os.DirFS on
// the command line, an in-memory FS of downloaded files in the browser).
package tokenizer

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// LoadCLIP reads dir/vocab.json, dir/merges.txt and, when present,
// dir/special_tokens_map.json and dir/tokenizer_config.json.
func LoadCLIP(fsys fs.FS, dir string) (*CLIP, error) {
	var f CLIPFiles
	for _, file := range []struct {
		name     string
		dst      *[]byte
		required bool
	}{
		{"vocab.json", &f.Vocab, true},
		{"merges.txt", &f.Merges, true},
		{"special_tokens_map.json", &f.SpecialTokensMap, false},
		{"tokenizer_config.json", &f.TokenizerConfig, false},
	} {
		data, err := fs.ReadFile(fsys, path.Join(dir, file.name))
		if err != nil {
			if !file.required && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		*file.dst = data
	}
	return NewCLIP(f)
}

// LoadBERT uses the first of the candidate vocab.txt paths that exists in
// fsys (where a model folder may carry the Q-Former's tokenizer), else the
// embedded bert-base-uncased vocabulary, which is what the reference
// downloads.
func LoadBERT(fsys fs.FS, candidates ...string) (*BERT, error) {
	for _, p := range candidates {
		data, err := fs.ReadFile(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		b, err := NewBERT(data)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, p)
		}
		return b, nil
	}
	return DefaultBERT()
}
