// Unicode canonical normalization (NFD and NFC, UAX #15) for the tokenizers'
// text cleaning: CLIP's BasicTokenizer path applies NFC,
// BERT strips accents through NFD.
//
// The standard library has no normalization tables and golang.org/x/text is
// not an allowed dependency, so unicode_tables.go carries the canonical
// decompositions and combining classes (generated from Python's unicodedata,
// the module the reference calls). Limits: the tables are Unicode 14.0 (the
// reference's Python may be a version older or newer: only characters added
// in between can differ); compatibility forms (NFKC/NFKD) are not provided;
// the quick-check shortcut of UAX #15 is replaced by a plain ASCII fast path.
package tokenizer

import (
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// decompEntry is one canonical single-level decomposition.
type decompEntry struct {
	cp      rune  // the decomposable character
	a, b    rune  // its decomposition: a, or a followed by b (b == 0 for a singleton)
	primary uint8 // 1 when cp is a primary composite (NFC recomposes a+b into cp)
}

// cccRange gives a canonical combining class to the code points lo..hi.
type cccRange struct {
	lo, hi rune  // inclusive range
	ccc    uint8 // canonical combining class (non-zero)
}

// Hangul syllable algorithm constants (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount // 588
	hangulSCount = hangulLCount * hangulNCount // 11172
)

var (
	normOnce  sync.Once
	decompMap map[rune][2]rune // cp → (a, b)
	composeOf map[[2]rune]rune // (a, b) → primary composite
)

func initNorm() {
	decompMap = make(map[rune][2]rune, len(canonicalDecompositions))
	composeOf = make(map[[2]rune]rune, len(canonicalDecompositions)/2)
	for _, e := range canonicalDecompositions {
		decompMap[e.cp] = [2]rune{e.a, e.b}
		if e.primary == 1 {
			composeOf[[2]rune{e.a, e.b}] = e.cp
		}
	}
}

// combiningClass returns the canonical combining class of r.
func combiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(combiningClasses), func(i int) bool { return combiningClasses[i].hi >= r })
	if i < len(combiningClasses) && combiningClasses[i].lo <= r {
		return combiningClasses[i].ccc
	}
	return 0
}

// isASCII reports whether s needs no normalization at all.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendDecomposed appends the full canonical decomposition of r.
func appendDecomposed(dst []rune, r rune) []rune {
	if s := r - hangulSBase; s >= 0 && s < hangulSCount {
		dst = append(dst, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t != 0 {
			dst = append(dst, hangulTBase+t)
		}
		return dst
	}
	d, ok := decompMap[r]
	if !ok {
		return append(dst, r)
	}
	dst = appendDecomposed(dst, d[0])
	if d[1] != 0 {
		dst = appendDecomposed(dst, d[1])
	}
	return dst
}

// decompose returns the canonically ordered full decomposition of s.
func decompose(s string) []rune {
	normOnce.Do(initNorm)
	out := make([]rune, 0, len(s))
	for _, r := range s {
		out = appendDecomposed(out, r)
	}
	// Canonical ordering: stable sort of each run of non-starters by class.
	for i := 0; i < len(out); {
		if combiningClass(out[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(out) && combiningClass(out[j]) != 0 {
			j++
		}
		run := out[i:j]
		sort.SliceStable(run, func(a, b int) bool { return combiningClass(run[a]) < combiningClass(run[b]) })
		i = j
	}
	return out
}

// NFD returns the canonical decomposition of s (Unicode Normalization Form D).
func NFD(s string) string {
	if isASCII(s) {
		return s
	}
	return string(decompose(s))
}

// NFC returns s in Unicode Normalization Form C: canonical decomposition
// followed by canonical composition.
func NFC(s string) string {
	if isASCII(s) {
		return s
	}
	rs := decompose(s)
	starter := -1   // index of the last starter in the output, -1 before the first
	var lastCCC int // combining class of the last character appended to out
	out := rs[:0]
	for _, r := range rs {
		ccc := int(combiningClass(r))
		if starter >= 0 {
			// r combines with the starter unless a character in between blocks it:
			// one with a class ≥ r's, or a starter (lastCCC == 0 after the starter).
			blocked := len(out)-1 != starter && (lastCCC == 0 || lastCCC >= ccc)
			if !blocked {
				if c, ok := compose(out[starter], r); ok {
					out[starter] = c
					continue
				}
			}
		}
		if ccc == 0 {
			starter = len(out)
		}
		lastCCC = ccc
		out = append(out, r)
	}
	return string(out)
}

// compose returns the primary composite of a starter and a following character.
func compose(a, b rune) (rune, bool) {
	// Hangul LV and LVT syllables.
	if l := a - hangulLBase; l >= 0 && l < hangulLCount {
		if v := b - hangulVBase; v >= 0 && v < hangulVCount {
			return hangulSBase + (l*hangulVCount+v)*hangulTCount, true
		}
	}
	if s := a - hangulSBase; s >= 0 && s < hangulSCount && s%hangulTCount == 0 {
		if t := b - hangulTBase; t > 0 && t < hangulTCount {
			return a + t, true
		}
	}
	c, ok := composeOf[[2]rune{a, b}]
	return c, ok
}

// stripAccents is BERT's _run_strip_accents: NFD, then drop the
// non-spacing marks (category Mn).
func stripAccents(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range NFD(s) {
		if !isMn(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
