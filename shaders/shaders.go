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
//
// Defines are compile-time facts (weight type, workgroup size, fused
// epilogue); shapes never are: they travel in each kernel's uniform Params.
package shaders

import (
	"embed"
	"fmt"
	"sort"
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
	// Each stack entry says whether the enclosing block is live and whether
	// its #if branch was taken (for #else).
	type frame struct{ live, taken bool }
	stack := []frame{{live: true, taken: true}}
	for ln, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		top := stack[len(stack)-1]
		switch {
		case strings.HasPrefix(t, "#if "):
			cond := strings.TrimSpace(t[4:])
			neg := strings.HasPrefix(cond, "!")
			cond = strings.TrimPrefix(cond, "!")
			v, ok := defs[cond]
			on := ok && v != "0"
			if neg {
				on = !on
			}
			stack = append(stack, frame{live: top.live && on, taken: on})
			continue
		case t == "#else":
			if len(stack) == 1 {
				return fmt.Errorf("shaders: %s:%d: #else without #if", name, ln+1)
			}
			parent := stack[len(stack)-2]
			stack[len(stack)-1] = frame{live: parent.live && !top.taken, taken: true}
			continue
		case t == "#endif":
			if len(stack) == 1 {
				return fmt.Errorf("shaders: %s:%d: #endif without #if", name, ln+1)
			}
			stack = stack[:len(stack)-1]
			continue
		case strings.HasPrefix(t, "#include "):
			if !top.live {
				continue
			}
			inc := strings.Trim(strings.TrimSpace(t[len("#include "):]), `"`)
			if included[inc] {
				continue
			}
			if err := expand(out, inc, defs, included, depth+1); err != nil {
				return err
			}
			continue
		}
		if !top.live {
			continue
		}
		if strings.Contains(line, "${") {
			for k, v := range defs {
				line = strings.ReplaceAll(line, "${"+k+"}", v)
			}
			if i := strings.Index(line, "${"); i >= 0 {
				return fmt.Errorf("shaders: %s:%d: undefined substitution in %q", name, ln+1, strings.TrimSpace(line))
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if len(stack) != 1 {
		return fmt.Errorf("shaders: %s: unterminated #if", name)
	}
	return nil
}
