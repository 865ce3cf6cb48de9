// Byte-level BPE of the CLIP tokenizer: the GPT-2
// byte-to-unicode map, and merges applied by rank to a word whose last symbol
// carries the end-of-word suffix "</w>".
package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// endOfWord marks the last symbol of a word in CLIP's vocabulary and merges.
const endOfWord = "</w>"

// byteToRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100 onwards, so that no byte becomes
// whitespace or a control character inside the BPE.
var byteToRune = func() [256]rune {
	var m [256]rune
	var mapped [256]bool
	for _, rg := range [][2]int{{'!', '~'}, {0xA1, 0xAC}, {0xAE, 0xFF}} {
		for b := rg[0]; b <= rg[1]; b++ {
			m[b] = rune(b)
			mapped[b] = true
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !mapped[b] {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}()

// byteEncode maps the UTF-8 bytes of s through byteToRune.
func byteEncode(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

// bpeCacheLimit bounds the memoized words; the cache is cleared when full
// (a long-running web session should not grow without bound).
const bpeCacheLimit = 1 << 14

// bpeModel holds the merge ranks and the per-word cache.
type bpeModel struct {
	ranks map[[2]string]int // merge pair → rank (line order in merges.txt)

	mu    sync.Mutex
	cache map[string][]string // byte-encoded word → its symbols
}

// bpe splits one byte-encoded pre-token into vocabulary symbols: start from
// single characters (the last one suffixed with "</w>") and repeatedly merge
// every occurrence of the adjacent pair with the lowest rank.
func (m *bpeModel) bpe(token string) []string {
	m.mu.Lock()
	if syms, ok := m.cache[token]; ok {
		m.mu.Unlock()
		return syms
	}
	m.mu.Unlock()

	word := make([]string, 0, utf8.RuneCountInString(token))
	for i, r := range token {
		if i+utf8.RuneLen(r) == len(token) {
			word = append(word, string(r)+endOfWord)
		} else {
			word = append(word, string(r))
		}
	}
	for len(word) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			if r, ok := m.ranks[[2]string{word[i], word[i+1]}]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := word[best], word[best+1]
		merged := word[:0:0]
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				merged = append(merged, first+second)
				i += 2
			} else {
				merged = append(merged, word[i])
				i++
			}
		}
		word = merged
	}

	m.mu.Lock()
	if len(m.cache) >= bpeCacheLimit {
		clear(m.cache)
	}
	m.cache[token] = word
	m.mu.Unlock()
	return word
}
