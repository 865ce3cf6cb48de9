// attention_test.go: parity of Attention against the CPU reference: plain,
// causal, key bias, probability columns, both swap modes, odd head dims and
// offsets, cross attention with 77 keys and a long sequence.
package kernels

import (
	"testing"
)

func TestAttentionParity(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	for _, tc := range attnCases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			e, ep := runAttention(p, tc)
			t.Logf("max err / max|ref|: out %.2g, probs %.2g", e, ep)
		})
	}
}

func TestAttentionDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newOracle(t, true)
	for _, i := range []int{1, 4, 13, 16} {
		tc := attnCases[i]
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			runAttention(p, tc)
		})
	}
}
