// Text cleaning shared by both tokenizers: transformers' BasicTokenizer
// (CLIP's "basic cleaner" without ftfy; uncased BERT) and
// the Python string behaviours it relies on (str.split, str.lower,
// unicodedata categories), reimplemented on the Go unicode tables.
package tokenizer

import (
	"strings"
	"unicode"
)

// basicOptions selects the BasicTokenizer variant.
type basicOptions struct {
	lower        bool            // do_lower_case
	stripAccents bool            // NFD + drop Mn after lower-casing (BERT uncased)
	splitPunct   bool            // do_split_on_punc (false for CLIP)
	finalSigma   bool            // lower() sees whole words, so Σ → ς at word ends (CLIP)
	neverSplit   map[string]bool // tokens kept verbatim (BERT's special tokens)
}

// basicTokenize is BasicTokenizer.tokenize: clean, space out CJK characters,
// NFC, split on whitespace, lower-case (+ strip accents), split punctuation.
func basicTokenize(text string, o basicOptions) []string {
	text = NFC(spaceCJK(cleanText(text)))
	var out []string
	for _, tok := range pySplit(text) {
		if o.neverSplit[tok] {
			out = append(out, tok)
			continue
		}
		if o.lower {
			tok = pyLower(tok, o.finalSigma)
			if o.stripAccents {
				tok = stripAccents(tok)
			}
		}
		if !o.splitPunct {
			out = append(out, tok)
			continue
		}
		out = append(out, splitPunct(tok)...)
	}
	// whitespace_tokenize(" ".join(...)): drops tokens that became empty.
	return pySplit(strings.Join(out, " "))
}

// cleanText drops NUL, U+FFFD and control characters and turns every
// whitespace character into a plain space (BasicTokenizer._clean_text).
func cleanText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == 0 || r == 0xFFFD || isControl(r):
		case isWhitespace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// spaceCJK surrounds CJK ideographs with spaces so each is its own word
// (BasicTokenizer._tokenize_chinese_chars).
func spaceCJK(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isCJK(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// splitPunct makes each punctuation character its own token
// (BasicTokenizer._run_split_on_punc).
func splitPunct(tok string) []string {
	var out []string
	start := -1 // start of the current non-punctuation run
	for i, r := range tok {
		if isPunctuation(r) {
			if start >= 0 {
				out = append(out, tok[start:i])
				start = -1
			}
			out = append(out, string(r))
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, tok[start:])
	}
	return out
}

// pySplit is Python's str.split(): split on runs of whitespace, no empties.
func pySplit(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// pyStrip is Python's str.strip().
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// pyIsSpace is Python's str.isspace for one character (bidi class WS, B or S,
// or category Zs). It differs from unicode.IsSpace by including U+001C–U+001F.
func pyIsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x1C, 0x1D, 0x1E, 0x1F, ' ', 0x85, 0xA0,
		0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// pyLower is Python's str.lower(): the simple lower-case mapping plus the
// full mappings Python applies: İ → "i̇" and, when the string is a whole
// word, the Final_Sigma rule Σ → ς. Cased / case-ignorable are approximated
// from the Go tables (exact for Greek and Latin text).
func pyLower(s string, finalSigma bool) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch {
		case r == 0x130:
			b.WriteString("i\u0307")
		case r == 0x3A3 && finalSigma && isFinalSigma(rs, i):
			b.WriteRune(0x3C2)
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isFinalSigma tests \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}*\p{cased}).
func isFinalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && isCaseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !isCased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && isCaseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !isCased(rs[j])
}

func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

func isCaseIgnorable(r rune) bool {
	switch r { // Word_Break MidLetter, MidNumLet, Single_Quote
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// isWhitespace is BasicTokenizer's _is_whitespace: \t \n \r space, or Zs.
func isWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

// isControl is _is_control: category C* (Cc, Cf, Co, Cs and unassigned Cn)
// except \t \n \r.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) {
		return true
	}
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isPunctuation is _is_punctuation: every non-alphanumeric printable ASCII
// character (so $ + < = > ^ ` | ~ too), or category P*.
func isPunctuation(r rune) bool {
	if r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126 {
		return true
	}
	return unicode.IsPunct(r)
}

// isCJK is _is_chinese_char: the CJK Unified Ideographs blocks (not Hangul,
// Hiragana or Katakana).
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B820 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

func isMn(r rune) bool { return unicode.Is(unicode.Mn, r) }
