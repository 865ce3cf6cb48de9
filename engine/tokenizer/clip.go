// Package tokenizer turns prompt text into token ids for BLIP-Diffusion:
// the CLIP byte-level BPE tokenizer of the text encoder and the uncased
// BERT WordPiece tokenizer of the Q-Former's subject text. Both are built from the bytes of the model folder's files so
// they work in the browser, and both reproduce the slow (pure-Python)
// transformers tokenizers id for id.
//
// This file: the CLIP tokenizer (transformers CLIPTokenizer, with the text
// cleaning of its no-ftfy path by default, or of its ftfy path).
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CLIPFiles are the model folder's tokenizer/ files.
type CLIPFiles struct {
	Vocab            []byte // vocab.json: token → id (required)
	Merges           []byte // merges.txt: "#version" header, then one merge per line by rank (required)
	SpecialTokensMap []byte // special_tokens_map.json (optional: CLIP's tokens by default)
	TokenizerConfig  []byte // tokenizer_config.json (optional: model_max_length, default 77)
}

// maxMerges is how many merges CLIPTokenizer reads: merges.txt lines
// 1 … 49152−256−2 (a fixed slice in the reference, whatever the file holds).
const maxMerges = 49152 - 256 - 2

// CLIP is the CLIP BPE tokenizer. It is safe for concurrent use.
type CLIP struct {
	vocab     map[string]int32
	model     *bpeModel // shared by the copies WithCleaning makes
	cleaning  Cleaning
	bosToken  string // "<|startoftext|>"
	eosToken  string // "<|endoftext|>"
	bos       int32  // id of bosToken
	eos       int32  // id of eosToken
	pad       int32  // id of the padding token (49407 = EOS for BLIP-Diffusion)
	unk       int32  // id given to symbols missing from the vocabulary
	maxLength int    // model_max_length (77)
}

// NewCLIP builds the tokenizer from the model folder's files.
func NewCLIP(f CLIPFiles) (*CLIP, error) {
	t := &CLIP{maxLength: 77, model: &bpeModel{}}
	var vocab map[string]int
	if err := json.Unmarshal(f.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: vocab.json: %w", err)
	}
	if len(vocab) == 0 {
		return nil, errors.New("tokenizer: vocab.json is empty")
	}
	t.vocab = make(map[string]int32, len(vocab))
	for k, v := range vocab {
		if v < 0 || v > 1<<30 {
			return nil, fmt.Errorf("tokenizer: vocab.json: id %d of %q out of range", v, k)
		}
		t.vocab[k] = int32(v)
	}

	// Like the reference: strip the file, drop its first line (the header),
	// keep at most maxMerges lines; a later duplicate overrides the rank.
	lines := strings.Split(strings.TrimSpace(string(f.Merges)), "\n")
	if len(lines) < 2 {
		return nil, errors.New("tokenizer: merges.txt has no merges")
	}
	lines = lines[1:min(len(lines), maxMerges+1)]
	t.model.ranks = make(map[[2]string]int, len(lines))
	for i, line := range lines {
		if p := strings.Fields(line); len(p) == 2 {
			t.model.ranks[[2]string{p[0], p[1]}] = i
		}
	}
	t.model.cache = make(map[string][]string)

	special := map[string]string{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
		"unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
	if len(f.SpecialTokensMap) > 0 {
		if err := readSpecialTokens(f.SpecialTokensMap, special); err != nil {
			return nil, fmt.Errorf("tokenizer: special_tokens_map.json: %w", err)
		}
	}
	if len(f.TokenizerConfig) > 0 {
		var cfg struct {
			ModelMaxLength *float64 `json:"model_max_length"`
		}
		if err := json.Unmarshal(f.TokenizerConfig, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer: tokenizer_config.json: %w", err)
		}
		// Tokenizers without a limit store a huge float (1e30); keep 77 then.
		if m := cfg.ModelMaxLength; m != nil && *m >= 2 && *m <= 1<<20 {
			t.maxLength = int(*m)
		}
	}
	t.bosToken, t.eosToken = special["bos_token"], special["eos_token"]
	for _, s := range []struct {
		key string
		id  *int32
	}{{"bos_token", &t.bos}, {"eos_token", &t.eos}, {"pad_token", &t.pad}, {"unk_token", &t.unk}} {
		id, ok := t.vocab[special[s.key]]
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s %q is not in vocab.json", s.key, special[s.key])
		}
		*s.id = id
	}
	return t, nil
}

// readSpecialTokens overwrites dst's entries with the map's tokens, which
// are either plain strings or {"content": ...} objects.
func readSpecialTokens(data []byte, dst map[string]string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for key := range dst {
		raw, ok := m[key]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			dst[key] = s
			continue
		}
		var obj struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == "" {
			return fmt.Errorf("%s is neither a string nor an object with content", key)
		}
		dst[key] = obj.Content
	}
	return nil
}

// Cleaning is the text cleaning Tokens applies to each piece of text
// between special tokens, before the BPE pre-tokenization.
type Cleaning int

const (
	// CleanBasic is transformers' CLIPTokenizer without ftfy installed (how
	// the BLIP-Diffusion reference ran): a BERT-style basic tokenizer (NFC,
	// whitespace split, lower-case) joined by spaces.
	CleanBasic Cleaning = iota
	// CleanFTFY is CLIPTokenizer with ftfy installed, as CLIP scores are
	// computed: whitespace_clean(ftfy.fix_text(text)).lower() (see FixText
	// for the part of fix_text reproduced). openai's own clip.tokenize
	// further unescapes HTML twice more, which differs only for text with
	// escaped entities in entities or with "<".
	CleanFTFY
)

// WithCleaning returns a tokenizer using cleaning c (the vocabulary and
// merge cache are shared with t).
func (t *CLIP) WithCleaning(c Cleaning) *CLIP {
	u := *t
	u.cleaning = c
	return &u
}

// clean is the configured cleaning of one piece of text.
func (t *CLIP) clean(s string) string {
	if t.cleaning == CleanFTFY {
		// whitespace_clean: runs of \s (the regex module's: Unicode
		// White_Space) become one space, then str.strip(); then str.lower().
		fixed := FixText(s)
		var b strings.Builder
		space := false
		for _, r := range fixed {
			if isPatternSpace(r) {
				space = true
				continue
			}
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		}
		return pyLower(pyStrip(b.String()), true)
	}
	// The no-ftfy cleaner: BasicTokenizer without accent stripping or
	// punctuation splitting, its words joined by single spaces.
	return strings.Join(basicTokenize(s, basicOptions{lower: true, finalSigma: true}), " ")
}

// BOS returns the id of <|startoftext|> (49406).
func (t *CLIP) BOS() int32 { return t.bos }

// EOS returns the id of <|endoftext|> (49407).
func (t *CLIP) EOS() int32 { return t.eos }

// Pad returns the padding id (49407 for BLIP-Diffusion, = EOS).
func (t *CLIP) Pad() int32 { return t.pad }

// MaxLength returns model_max_length (77): the text encoder's positions.
func (t *CLIP) MaxLength() int { return t.maxLength }

// VocabSize returns the number of entries in vocab.json.
func (t *CLIP) VocabSize() int { return len(t.vocab) }

// Tokens returns the vocabulary symbols of text, without BOS/EOS
// ("a photo" → ["a</w>", "photo</w>"]).
func (t *CLIP) Tokens(text string) []string {
	var out []string
	for _, chunk := range splitSpecial(text, t.bosToken, t.eosToken) {
		if chunk == t.bosToken || chunk == t.eosToken {
			out = append(out, chunk)
			continue
		}
		for _, piece := range t.preTokenize(t.clean(chunk)) {
			if strings.EqualFold(piece, t.bosToken) {
				out = append(out, t.bosToken)
				continue
			}
			if strings.EqualFold(piece, t.eosToken) {
				out = append(out, t.eosToken)
				continue
			}
			out = append(out, t.model.bpe(byteEncode(piece))...)
		}
	}
	return out
}

// Encode returns the ids of text without BOS/EOS. This is also how a class
// word is tokenized on its own ("teddy bear" → two ids), to be found again
// inside an encoded prompt: pre-tokenization splits on spaces, so a word's
// ids do not depend on its neighbours.
func (t *CLIP) Encode(text string) []int32 {
	toks := t.Tokens(text)
	ids := make([]int32, len(toks))
	for i, s := range toks {
		id, ok := t.vocab[s]
		if !ok {
			id = t.unk
		}
		ids[i] = id
	}
	return ids
}

// EncodeRaw returns BOS, the ids of text and EOS, without padding or
// truncation (CLIPTokenizer(text).input_ids).
func (t *CLIP) EncodeRaw(text string) []int32 {
	ids := append([]int32{t.bos}, t.Encode(text)...)
	return append(ids, t.eos)
}

// Encoding is a sequence padded or truncated to a fixed length.
type Encoding struct {
	IDs       []int32 // BOS, content, EOS, then padding: exactly the requested length
	Needed    int     // length the whole text needed (BOS + content + EOS)
	Truncated bool    // the content was cut (Needed > len(IDs)); callers should warn
}

// Dropped returns how many content tokens truncation removed.
func (e Encoding) Dropped() int { return max(0, e.Needed-len(e.IDs)) }

// EncodePadded returns BOS, the ids of text and EOS, truncated (keeping the
// first maxLen−2 content ids, then EOS) or right-padded with the pad id to
// exactly maxLen, as CLIPTokenizer(text, padding="max_length",
// truncation=True, max_length=maxLen).
func (t *CLIP) EncodePadded(text string, maxLen int) (Encoding, error) {
	if maxLen < 2 {
		return Encoding{}, fmt.Errorf("tokenizer: max length %d leaves no room for BOS and EOS", maxLen)
	}
	content := t.Encode(text)
	e := Encoding{IDs: make([]int32, 0, maxLen), Needed: len(content) + 2}
	if len(content) > maxLen-2 {
		content = content[:maxLen-2]
		e.Truncated = true
	}
	e.IDs = append(e.IDs, t.bos)
	e.IDs = append(e.IDs, content...)
	e.IDs = append(e.IDs, t.eos)
	for len(e.IDs) < maxLen {
		e.IDs = append(e.IDs, t.pad)
	}
	return e, nil
}

// EncodeNegative tokenizes the negative prompt to model_max_length (77).
// The reference pads it without truncation, so a longer one would break
// the text encoder; here it is truncated and Truncated reports it.
func (t *CLIP) EncodeNegative(text string) (Encoding, error) {
	return t.EncodePadded(text, t.maxLength)
}

// splitSpecial splits text around exact occurrences of the special tokens,
// as the slow tokenizer's added-token trie does before anything else (the
// earliest match wins; at one position the longer token).
func splitSpecial(text string, specials ...string) []string {
	var out []string
	for text != "" {
		at, tok := -1, ""
		for _, s := range specials {
			if s == "" {
				continue
			}
			if i := strings.Index(text, s); i >= 0 && (at < 0 || i < at || i == at && len(s) > len(tok)) {
				at, tok = i, s
			}
		}
		if at < 0 {
			out = append(out, text)
			break
		}
		if at > 0 {
			out = append(out, text[:at])
		}
		out = append(out, tok)
		text = text[at+len(tok):]
	}
	return out
}

// clipContractions are the pattern's contraction alternatives, in order.
var clipContractions = []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// preTokenize splits cleaned text the way CLIP's pattern does with findall:
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// (case-insensitive). At each position the first alternative that matches
// wins; positions where none matches (whitespace) are skipped.
func (t *CLIP) preTokenize(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		rest := s[i:]
		if n := t.matchSpecial(rest); n > 0 {
			out = append(out, rest[:n])
			i += n
			continue
		}
		if n := matchContraction(rest); n > 0 {
			out = append(out, rest[:n])
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(rest)
		switch {
		case unicode.IsLetter(r):
			n := runLen(rest, unicode.IsLetter)
			out = append(out, rest[:n])
			i += n
		case unicode.IsNumber(r):
			out = append(out, rest[:size])
			i += size
		case !isPatternSpace(r):
			n := runLen(rest, func(r rune) bool {
				return !isPatternSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r)
			})
			out = append(out, rest[:n])
			i += n
		default:
			i += size
		}
	}
	return out
}

// matchSpecial returns the length of a special token at the start of s, or 0.
func (t *CLIP) matchSpecial(s string) int {
	for _, tok := range []string{t.bosToken, t.eosToken} {
		if len(s) >= len(tok) && strings.EqualFold(s[:len(tok)], tok) {
			return len(tok)
		}
	}
	return 0
}

// matchContraction returns the length of a contraction at the start of s, or 0.
func matchContraction(s string) int {
	if s == "" || s[0] != '\'' {
		return 0
	}
	for _, c := range clipContractions {
		if len(s) >= len(c) && strings.EqualFold(s[:len(c)], c) {
			return len(c)
		}
	}
	return 0
}

// isPatternSpace is the pattern's \s (Unicode White_Space).
func isPatternSpace(r rune) bool { return pyIsSpace(r) && (r < 0x1C || r > 0x1F) }

// runLen returns the byte length of the leading run of s whose runes satisfy f.
func runLen(s string, f func(rune) bool) int {
	for i, r := range s {
		if !f(r) {
			return i
		}
	}
	return len(s)
}
