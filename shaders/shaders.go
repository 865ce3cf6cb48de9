// Package shaders holds the engine's WGSL compute kernels, one file per op
// family, embedded in the binary, and the tiny preprocessor that turns a file
// plus a set of defines into one shader variant.
//
// Preprocessor (line based, applied before the WGSL compiler sees the text):
//
//	#include "common.wgsl"   pastes another embedded file (once per variant)
//	#if NAME / #if !NAME      keeps the following lines when NAME is defined and
//	#else / #endif            not "0" (or, with !, when it is not); nests
//	${NAME}                   is replaced by the define's value anywhere in a line
//	#for I in A..B            repeats the lines up to the matching #endfor for
//	#endfor                   I = A … B−1 (integers, or ${NAME}s of them),
//	                          with ${I} replaced in each copy; nests
//	${(T+9)/4} ${I*4+C}       an integer expression over loop variables,
//	                          numeric defines and integers (+ - * / %, parentheses)
//
// #for writes straight-line code (unrolled register blocks): the shader
// compilers of CPU adapters keep an array in registers only when every index
// into it is constant, and Mesa's loop unroller gives up on big loop bodies.
//
// Defines are compile-time facts (weight type, workgroup size, fused
// epilogue); shapes never are: they travel in each kernel's uniform Params.
package shaders

import (
	"embed"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Names lists the embedded shader files.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Raw returns a shader file as stored.
func Raw(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("shaders: no shader %q", name)
	}
	return string(b), nil
}

// ParseDefines turns the canonical "A=1,B=f16" form into a map. An entry
// without "=" is defined as "1".
func ParseDefines(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			v = "1"
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}

// Defines builds the canonical, sorted "A=1,B=2" form from key/value pairs,
// so that equal variant sets give equal strings (they are part of pipeline
// cache keys).
func Defines(kv ...string) string {
	if len(kv)%2 != 0 {
		panic("shaders: Defines needs key/value pairs")
	}
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+kv[i+1])
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Source returns the preprocessed WGSL of one variant.
func Source(name, defines string) (string, error) {
	defs := ParseDefines(defines)
	var out strings.Builder
	included := map[string]bool{}
	if err := expand(&out, name, defs, included, 0); err != nil {
		return "", err
	}
	return out.String(), nil
}

func expand(out *strings.Builder, name string, defs map[string]string, included map[string]bool, depth int) error {
	if depth > 4 {
		return fmt.Errorf("shaders: %s: includes nest too deep", name)
	}
	included[name] = true
	src, err := Raw(name)
	if err != nil {
		return err
	}
	return expandText(out, name, src, defs, included, depth)
}

// expandText preprocesses src (named name in errors).
func expandText(out *strings.Builder, name, src string, defs map[string]string, included map[string]bool, depth int) error {
	e := &expander{out: out, name: name, defs: defs, included: included, depth: depth}
	lines := strings.Split(src, "\n")
	nums := make([]int, len(lines))
	for i := range nums {
		nums[i] = i + 1
	}
	// Each stack entry says whether the enclosing block is live and whether
	// its #if branch was taken (for #else).
	e.stack = []frame{{live: true, taken: true}}
	if err := e.run(lines, nums, nil); err != nil {
		return err
	}
	if len(e.stack) != 1 {
		return fmt.Errorf("shaders: %s: unterminated #if", name)
	}
	return nil
}

type frame struct{ live, taken bool }

// expander preprocesses one file.
type expander struct {
	out      *strings.Builder
	name     string
	defs     map[string]string
	included map[string]bool
	depth    int
	stack    []frame
}

// subst replaces ${NAME} by loop variables (innermost first) and defines.
func (e *expander) subst(line string, ln int, vars [][2]string) (string, error) {
	if !strings.Contains(line, "${") {
		return line, nil
	}
	for i := len(vars) - 1; i >= 0; i-- {
		line = strings.ReplaceAll(line, "${"+vars[i][0]+"}", vars[i][1])
	}
	for k, v := range e.defs {
		line = strings.ReplaceAll(line, "${"+k+"}", v)
	}
	if strings.Contains(line, "${") {
		line = exprRE.ReplaceAllStringFunc(line, func(m string) string {
			if v, ok := e.eval(m[2:len(m)-1], vars); ok {
				return strconv.Itoa(v)
			}
			return m
		})
	}
	if strings.Contains(line, "${") {
		return "", fmt.Errorf("shaders: %s:%d: undefined substitution in %q", e.name, ln, strings.TrimSpace(line))
	}
	return line, nil
}

// exprRE matches a ${…} holding an integer expression: names (loop
// variables, defines), integers, + - * / % and parentheses.
var exprRE = regexp.MustCompile(`\$\{[\w+\-*/%() ]+\}`)

// eval computes an integer expression with the usual precedence (/ and %
// truncate); ok is false on anything else.
func (e *expander) eval(src string, vars [][2]string) (v int, ok bool) {
	toks := regexp.MustCompile(`\w+|[-+*/%()]`).FindAllString(src, -1)
	pos := 0
	var expr, term, factor func() (int, bool)
	factor = func() (int, bool) {
		if pos >= len(toks) {
			return 0, false
		}
		t := toks[pos]
		pos++
		switch {
		case t == "(":
			v, ok := expr()
			if !ok || pos >= len(toks) || toks[pos] != ")" {
				return 0, false
			}
			pos++
			return v, true
		case t == "-":
			v, ok := factor()
			return -v, ok
		}
		if n, err := strconv.Atoi(t); err == nil {
			return n, true
		}
		return e.intValue(t, vars)
	}
	term = func() (int, bool) {
		v, ok := factor()
		for ok && pos < len(toks) && strings.Contains("*/%", toks[pos]) {
			op := toks[pos]
			pos++
			var w int
			if w, ok = factor(); !ok || (op != "*" && w == 0) {
				return 0, false
			}
			switch op {
			case "*":
				v *= w
			case "/":
				v /= w
			default:
				v %= w
			}
		}
		return v, ok
	}
	expr = func() (int, bool) {
		v, ok := term()
		for ok && pos < len(toks) && (toks[pos] == "+" || toks[pos] == "-") {
			op := toks[pos]
			pos++
			var w int
			if w, ok = term(); op == "+" {
				v += w
			} else {
				v -= w
			}
		}
		return v, ok
	}
	v, ok = expr()
	return v, ok && pos == len(toks)
}

// intValue is the integer value of a loop variable or define.
func (e *expander) intValue(name string, vars [][2]string) (int, bool) {
	v, ok := "", false
	for i := len(vars) - 1; i >= 0 && !ok; i-- {
		if vars[i][0] == name {
			v, ok = vars[i][1], true
		}
	}
	if !ok {
		v, ok = e.defs[name]
	}
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// run processes lines (nums are their line numbers in the file) with the
// loop variables vars bound.
func (e *expander) run(lines []string, nums []int, vars [][2]string) error {
	for i := 0; i < len(lines); i++ {
		line, ln := lines[i], nums[i]
		t := strings.TrimSpace(line)
		top := e.stack[len(e.stack)-1]
		switch {
		case strings.HasPrefix(t, "#for "):
			end, err := e.matchFor(lines, nums, i)
			if err != nil {
				return err
			}
			if top.live {
				if err := e.loop(t, lines[i+1:end], nums[i+1:end], ln, vars); err != nil {
					return err
				}
			}
			i = end
			continue
		case t == "#endfor":
			return fmt.Errorf("shaders: %s:%d: #endfor without #for", e.name, ln)
		case strings.HasPrefix(t, "#if "):
			cond := strings.TrimSpace(t[4:])
			neg := strings.HasPrefix(cond, "!")
			cond = strings.TrimPrefix(cond, "!")
			v, ok := e.defs[cond]
			on := ok && v != "0"
			if neg {
				on = !on
			}
			e.stack = append(e.stack, frame{live: top.live && on, taken: on})
			continue
		case t == "#else":
			if len(e.stack) == 1 {
				return fmt.Errorf("shaders: %s:%d: #else without #if", e.name, ln)
			}
			parent := e.stack[len(e.stack)-2]
			e.stack[len(e.stack)-1] = frame{live: parent.live && !top.taken, taken: true}
			continue
		case t == "#endif":
			if len(e.stack) == 1 {
				return fmt.Errorf("shaders: %s:%d: #endif without #if", e.name, ln)
			}
			e.stack = e.stack[:len(e.stack)-1]
			continue
		case strings.HasPrefix(t, "#include "):
			if !top.live {
				continue
			}
			inc := strings.Trim(strings.TrimSpace(t[len("#include "):]), `"`)
			if e.included[inc] {
				continue
			}
			if err := expand(e.out, inc, e.defs, e.included, e.depth+1); err != nil {
				return err
			}
			continue
		}
		if !top.live {
			continue
		}
		line, err := e.subst(line, ln, vars)
		if err != nil {
			return err
		}
		e.out.WriteString(line)
		e.out.WriteByte('\n')
	}
	return nil
}

// matchFor returns the index of the #endfor closing the #for at lines[i].
func (e *expander) matchFor(lines []string, nums []int, i int) (int, error) {
	depth := 0
	for j := i + 1; j < len(lines); j++ {
		t := strings.TrimSpace(lines[j])
		switch {
		case strings.HasPrefix(t, "#for "):
			depth++
		case t == "#endfor":
			if depth == 0 {
				return j, nil
			}
			depth--
		}
	}
	return 0, fmt.Errorf("shaders: %s:%d: #for without #endfor", e.name, nums[i])
}

// loop expands "#for I in A..B" over body.
func (e *expander) loop(head string, body []string, nums []int, ln int, vars [][2]string) error {
	spec, err := e.subst(strings.TrimSpace(head[len("#for "):]), ln, vars)
	if err != nil {
		return err
	}
	v, rng, ok := strings.Cut(spec, " in ")
	lo, hi, ok2 := strings.Cut(strings.TrimSpace(rng), "..")
	a, errA := strconv.Atoi(strings.TrimSpace(lo))
	b, errB := strconv.Atoi(strings.TrimSpace(hi))
	v = strings.TrimSpace(v)
	if !ok || !ok2 || errA != nil || errB != nil || v == "" {
		return fmt.Errorf("shaders: %s:%d: bad #for %q (want \"#for I in 0..N\")", e.name, ln, spec)
	}
	depth := len(e.stack)
	for x := a; x < b; x++ {
		inner := append(vars[:len(vars):len(vars)], [2]string{v, strconv.Itoa(x)})
		if err := e.run(body, nums, inner); err != nil {
			return err
		}
		if len(e.stack) != depth {
			return fmt.Errorf("shaders: %s:%d: #if blocks must close inside the #for body", e.name, ln)
		}
	}
	return nil
}
