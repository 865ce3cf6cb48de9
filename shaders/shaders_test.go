package shaders

import (
	"strings"
	"testing"
)

func TestPreprocess(t *testing.T) {
	for _, c := range []struct {
		name, src, defs, want, err string
	}{
		{name: "if", src: "a\n#if X\nb\n#else\nc\n#endif\nd", defs: "X=1", want: "a\nb\nd\n"},
		{name: "if not", src: "#if !X\nb\n#endif", defs: "X=0", want: "b\n"},
		{name: "subst", src: "v${N}u", defs: "N=7", want: "v7u\n"},
		{name: "for", src: "#for I in 0..3\nx${I};\n#endfor", want: "x0;\nx1;\nx2;\n"},
		{name: "for define bound", src: "#for I in 1..${N}\nx${I}\n#endfor", defs: "N=3", want: "x1\nx2\n"},
		{name: "nested for", src: "#for I in 0..2\n#for J in 0..2\na${I}_${J}\n#endfor\n#endfor", want: "a0_0\na0_1\na1_0\na1_1\n"},
		{name: "for with if", src: "#for I in 0..2\n#if X\ny${I}\n#else\nn${I}\n#endif\n#endfor", defs: "X=0", want: "n0\nn1\n"},
		{name: "dead for", src: "#if X\n#for I in 0..${UNDEFINED}\nz\n#endfor\n#endif\nk", want: "k\n"},
		{name: "arith", src: "#for I in 1..3\na${I-1} = b${I*4} + ${N+2}\n#endfor", defs: "N=5", want: "a0 = b4 + 7\na1 = b8 + 7\n"},
		{name: "expr", src: "#for T in 0..3\nv${(T+KK)/4}[${(T+KK)%4}] ${T*4+1} ${-T+2}\n#endfor", defs: "KK=9", want: "v2[1] 1 2\nv2[2] 5 1\nv2[3] 9 0\n"},
		{name: "bad expr", src: "${1/0}", err: "undefined substitution"},
		{name: "empty for", src: "#for I in 0..0\nz\n#endfor", want: ""},
		{name: "unclosed for", src: "#for I in 0..2\nz", err: "without #endfor"},
		{name: "stray endfor", src: "#endfor", err: "without #for"},
		{name: "bad for", src: "#for I 0..2\nz\n#endfor", err: "bad #for"},
		{name: "if across for", src: "#for I in 0..2\n#if X\n#endfor\n#endif", err: "inside the #for"},
		{name: "undefined", src: "${Q}", err: "undefined substitution"},
	} {
		var out strings.Builder
		err := expandText(&out, c.name, c.src, ParseDefines(c.defs), map[string]bool{}, 0)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case out.String() != c.want:
			t.Errorf("%s: got %q, want %q", c.name, out.String(), c.want)
		}
	}
}

// TestAllShadersBalanced checks that every file's #for and #endfor pair up.
func TestAllShadersBalanced(t *testing.T) {
	for _, n := range Names() {
		src, _ := Raw(n)
		depth := 0
		for _, line := range strings.Split(src, "\n") {
			switch l := strings.TrimSpace(line); {
			case strings.HasPrefix(l, "#for "):
				depth++
			case l == "#endfor":
				depth--
			}
			if depth < 0 {
				break
			}
		}
		if depth != 0 {
			t.Errorf("%s: unbalanced #for", n)
		}
	}
}
