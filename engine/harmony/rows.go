// rows.go classifies the rows of the conditional text embedding for the
// contextual embedding orchestration:
// visual rows, special (BOS/EOS) rows, class rows and text rows.
package harmony

import (
	"errors"
	"fmt"
)

// CLIP tokenizer special ids (<|startoftext|>, <|endoftext|>); padding uses EOS.
const (
	CLIPBOS int32 = 49406
	CLIPEOS int32 = 49407
)

// Layout says how prompt token ids map to rows of the embedding E: the
// NumCtx subject (query) embeddings are inserted before token CtxBegin, so
// token j is row j for j < CtxBegin and row j + NumCtx otherwise.
type Layout struct {
	CtxBegin int   // ctx_begin_pos: index of the first token after the visual rows (2)
	NumCtx   int   // number of visual rows (query tokens, 16)
	BOS, EOS int32 // special token ids (CLIPBOS, CLIPEOS)
}

// BLIPLayout is BLIP-Diffusion's layout (ctx_begin_pos 2, 16 query tokens).
var BLIPLayout = Layout{CtxBegin: 2, NumCtx: 16, BOS: CLIPBOS, EOS: CLIPEOS}

// Rows lists row indices of E (ascending within each class).
type Rows struct {
	Visual  []int // the subject embedding rows E[CtxBegin : CtxBegin+NumCtx]
	Special []int // rows whose token is BOS or EOS (padding included)
	Class   []int // rows of occurrences of the target class's token sequence
	// Pseudo are the rows of further, uninjected occurrences of a
	// pseudo-word (ELITE's placeholder): neither visual nor text.
	Pseudo []int
	Text   []int // every other token row
}

// TokenRow returns E's row for token j.
func (l Layout) TokenRow(j int) int {
	if j < l.CtxBegin {
		return j
	}
	return j + l.NumCtx
}

// ClassifyRows sorts E's len(ids)+NumCtx rows into visual, special, class
// and text rows. classIDs is the target class word(s) tokenized alone (no
// BOS/EOS). Every occurrence of that whole sequence in ids gives class rows,
// and so does a proper prefix of it that ends right before a final EOS (the
// class cut off by truncation). Matching is on ids, so words that merely
// contain the class ("dogs", "catwalk") never match: they tokenize
// differently.
func ClassifyRows(ids, classIDs []int32, l Layout) (Rows, error) {
	if l.CtxBegin < 0 || l.CtxBegin > len(ids) || l.NumCtx < 0 {
		return Rows{}, fmt.Errorf("harmony: ctx_begin_pos %d / %d visual rows do not fit %d token ids", l.CtxBegin, l.NumCtx, len(ids))
	}
	if len(classIDs) == 0 {
		return Rows{}, errors.New("harmony: empty class token sequence")
	}
	isClass := occurrences(ids, classIDs, l.EOS)

	var r Rows
	for i := range l.NumCtx {
		r.Visual = append(r.Visual, l.CtxBegin+i)
	}
	for j, id := range ids {
		row := l.TokenRow(j)
		switch {
		case id == l.BOS || id == l.EOS:
			r.Special = append(r.Special, row)
		case isClass[j]:
			r.Class = append(r.Class, row)
		default:
			r.Text = append(r.Text, row)
		}
	}
	return r, nil
}

// occurrences marks every token of every occurrence of seq in ids, and a
// proper prefix of seq that ends right before a final EOS (the sequence
// cut off by truncation; the longest such prefix). An empty seq marks
// nothing.
func occurrences(ids, seq []int32, eos int32) []bool {
	hit := make([]bool, len(ids))
	if len(seq) == 0 {
		return hit
	}
	for j := 0; j+len(seq) <= len(ids); j++ {
		if matchAt(ids, j, seq) {
			for k := range seq {
				hit[j+k] = true
			}
		}
	}
	if n := len(ids); n >= 2 && ids[n-1] == eos {
		for k := len(seq) - 1; k >= 1; k-- {
			if start := n - 1 - k; start >= 0 && matchAt(ids, start, seq[:k]) {
				for j := start; j < n-1; j++ {
					hit[j] = true
				}
				break
			}
		}
	}
	return hit
}

// ClassifyInjectedRows sorts the rows of an embedding whose visual row is
// injected in place, one row per token (ELITE: the mapped word w0 replaces
// the placeholder's token embedding at row index, so E has one row per id):
// Visual = [index]; Special = BOS/EOS (padding) rows; Pseudo = the rows of
// every other occurrence of the placeholder's token sequence placeholderIDs
// (an uninjected pseudo-word is not context); Class = occurrences of
// classIDs (none when it is empty: ELITE takes no class word unless one is
// given); Text = the rest. index must be a row after BOS.
func ClassifyInjectedRows(ids []int32, index int, placeholderIDs, classIDs []int32, bos, eos int32) (Rows, error) {
	if index < 1 || index >= len(ids) {
		return Rows{}, fmt.Errorf("harmony: the placeholder's row %d is outside [1, %d)", index, len(ids))
	}
	isPseudo := occurrences(ids, placeholderIDs, eos)
	isClass := occurrences(ids, classIDs, eos)
	r := Rows{Visual: []int{index}}
	for j, id := range ids {
		switch {
		case j == index:
		case id == bos || id == eos:
			r.Special = append(r.Special, j)
		case isPseudo[j]:
			r.Pseudo = append(r.Pseudo, j)
		case isClass[j]:
			r.Class = append(r.Class, j)
		default:
			r.Text = append(r.Text, j)
		}
	}
	return r, nil
}

// NumRows is the number of rows of E for a layout and token count.
func (l Layout) NumRows(numIDs int) int { return numIDs + l.NumCtx }

func matchAt(ids []int32, at int, seq []int32) bool {
	for k, id := range seq {
		if ids[at+k] != id {
			return false
		}
	}
	return true
}

// SubjectColumns returns the cross-attention key columns (rows of E) whose
// attention makes a subject mask (knob mask-tokens):
// the visual rows, plus the process's own class rows when withClass
// ("visual+class").
func SubjectColumns(r Rows, withClass bool) []int {
	cols := append([]int(nil), r.Visual...)
	if withClass {
		cols = append(cols, r.Class...)
	}
	return cols
}
