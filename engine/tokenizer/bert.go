// The Q-Former's BERT tokenizer: bert-base-uncased
// WordPiece plus the "[DEC]" bos token the Q-Former adds, called on the
// subject words with padding=True.
//
// The released BLIP-Diffusion repository has no vocab.txt (the reference
// downloads bert-base-uncased at run time), so the package embeds
// bert-base-uncased's vocab.txt (Apache-2.0, google-research/bert); a model
// folder's own vocab.txt takes precedence when the loader finds one.
package tokenizer

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed bert-base-uncased-vocab.txt
var bertBaseUncasedVocab []byte

// maxWordChars is WordpieceTokenizer.max_input_chars_per_word: longer words
// become [UNK] whole.
const maxWordChars = 100

// decToken is the bos token the Q-Former adds to the tokenizer. It gets the
// next free id (30522 with bert-base-uncased) and is never inserted at
// inference, but typed literally in a subject it is matched like the others.
const decToken = "[DEC]"

// BERT is the uncased BERT WordPiece tokenizer. It is safe for concurrent use.
type BERT struct {
	vocab      map[string]int32
	special    []string        // the special tokens, matched verbatim before cleaning
	neverSplit map[string]bool // the same, for the basic tokenizer
	cls        int32           // [CLS] (101)
	sep        int32           // [SEP] (102)
	pad        int32           // [PAD] (0)
	unk        int32           // [UNK] (100)
	dec        int32           // [DEC] (30522)
}

var (
	defaultBERTOnce sync.Once
	defaultBERT     *BERT
	defaultBERTErr  error
)

// DefaultBERT returns the tokenizer built from the embedded
// bert-base-uncased vocabulary (parsed once).
func DefaultBERT() (*BERT, error) {
	defaultBERTOnce.Do(func() { defaultBERT, defaultBERTErr = NewBERT(bertBaseUncasedVocab) })
	return defaultBERT, defaultBERTErr
}

// NewBERT builds the tokenizer from a vocab.txt (one token per line, id =
// line index). Empty vocab means the embedded bert-base-uncased one.
func NewBERT(vocab []byte) (*BERT, error) {
	if len(vocab) == 0 {
		return DefaultBERT()
	}
	if !utf8.Valid(vocab) {
		return nil, errors.New("tokenizer: vocab.txt is not UTF-8")
	}
	// Python reads the file in text mode: \r\n and \r end lines too.
	text := strings.ReplaceAll(strings.ReplaceAll(string(vocab), "\r\n", "\n"), "\r", "\n")
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	b := &BERT{vocab: make(map[string]int32, len(lines)+1)}
	for i, line := range lines {
		b.vocab[strings.TrimSuffix(line, "\n")] = int32(i)
	}
	for _, s := range []struct {
		tok string
		id  *int32
	}{{"[CLS]", &b.cls}, {"[SEP]", &b.sep}, {"[PAD]", &b.pad}, {"[UNK]", &b.unk}} {
		id, ok := b.vocab[s.tok]
		if !ok {
			return nil, fmt.Errorf("tokenizer: vocab.txt has no %s", s.tok)
		}
		*s.id = id
	}
	if id, ok := b.vocab[decToken]; ok {
		b.dec = id
	} else {
		b.dec = int32(len(lines))
		b.vocab[decToken] = b.dec
	}
	b.special = []string{"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", decToken}
	b.neverSplit = make(map[string]bool, len(b.special))
	for _, s := range b.special {
		b.neverSplit[s] = true
	}
	return b, nil
}

// CLS returns the id of [CLS] (101).
func (b *BERT) CLS() int32 { return b.cls }

// SEP returns the id of [SEP] (102).
func (b *BERT) SEP() int32 { return b.sep }

// Pad returns the id of [PAD] (0).
func (b *BERT) Pad() int32 { return b.pad }

// DEC returns the id of the added [DEC] bos token (30522).
func (b *BERT) DEC() int32 { return b.dec }

// VocabSize returns the vocabulary size including [DEC] (30523): the
// Q-Former's word-embedding rows.
func (b *BERT) VocabSize() int { return len(b.vocab) }

// Tokens returns the WordPiece symbols of text without [CLS]/[SEP]
// ("teddy bears" → ["teddy", "bears"], "a red CAR!" → ["a", "red", "car", "!"]).
func (b *BERT) Tokens(text string) []string {
	var out []string
	// The slow tokenizer lower-cases each character on its own first (so no
	// final-sigma rule), keeping special tokens, then splits them out.
	text = lowerKeepingSpecial(text, b.special)
	for _, chunk := range splitSpecial(text, b.special...) {
		if b.neverSplit[chunk] {
			out = append(out, chunk)
			continue
		}
		words := basicTokenize(chunk, basicOptions{lower: true, stripAccents: true, splitPunct: true, neverSplit: b.neverSplit})
		for _, w := range words {
			if b.neverSplit[w] {
				out = append(out, w)
				continue
			}
			out = append(out, b.wordPiece(w)...)
		}
	}
	return out
}

// lowerKeepingSpecial lower-cases every character except inside special
// tokens, one character at a time ("." does not match "\n", which stays).
func lowerKeepingSpecial(text string, special []string) string {
	var sb strings.Builder
	for i := 0; i < len(text); {
		matched := false
		for _, s := range special {
			if strings.HasPrefix(text[i:], s) {
				sb.WriteString(s)
				i += len(s)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		sb.WriteString(pyLower(string(r), false))
		i += size
	}
	return sb.String()
}

// wordPiece splits one word greedily into the longest vocabulary prefix,
// then "##"-prefixed continuations; a word with an unmatchable part, or
// longer than maxWordChars characters, becomes [UNK].
func (b *BERT) wordPiece(word string) []string {
	rs := []rune(word)
	if len(rs) > maxWordChars {
		return []string{"[UNK]"}
	}
	var out []string
	for start := 0; start < len(rs); {
		end := len(rs)
		found := ""
		for start < end {
			sub := string(rs[start:end])
			if start > 0 {
				sub = "##" + sub
			}
			if _, ok := b.vocab[sub]; ok {
				found = sub
				break
			}
			end--
		}
		if found == "" {
			return []string{"[UNK]"}
		}
		out = append(out, found)
		start = end
	}
	return out
}

// Encode returns [CLS], the ids of text and [SEP].
func (b *BERT) Encode(text string) []int32 {
	toks := b.Tokens(text)
	ids := make([]int32, 0, len(toks)+2)
	ids = append(ids, b.cls)
	for _, s := range toks {
		id, ok := b.vocab[s]
		if !ok {
			id = b.unk
		}
		ids = append(ids, id)
	}
	return append(ids, b.sep)
}

// Batch is a padded batch of encoded texts, row-major [Rows, Cols].
type Batch struct {
	IDs  []int32 // token ids, [PAD] after each row's [SEP]
	Mask []int32 // attention mask: 1 for tokens, 0 for padding
	Rows int     // batch size
	Cols int     // length of the longest row
}

// Row returns the ids and mask of row i.
func (bt Batch) Row(i int) (ids, mask []int32) {
	return bt.IDs[i*bt.Cols : (i+1)*bt.Cols], bt.Mask[i*bt.Cols : (i+1)*bt.Cols]
}

// EncodeBatch encodes texts and pads them on the right with [PAD] to the
// longest (tokenizer(texts, padding=True)); no truncation, like the reference.
func (b *BERT) EncodeBatch(texts []string) Batch {
	rows := make([][]int32, len(texts))
	cols := 0
	for i, s := range texts {
		rows[i] = b.Encode(s)
		cols = max(cols, len(rows[i]))
	}
	bt := Batch{IDs: make([]int32, len(texts)*cols), Mask: make([]int32, len(texts)*cols), Rows: len(texts), Cols: cols}
	for i, r := range rows {
		ids, mask := bt.Row(i)
		for j := range ids {
			if j < len(r) {
				ids[j], mask[j] = r[j], 1
			} else {
				ids[j] = b.pad
			}
		}
	}
	return bt
}
