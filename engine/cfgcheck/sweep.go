// sweep.go generates hostile variants of a config file: every numeric
// field or list element replaced in turn by each of a few values. The
// config readers' tests and the CLI's bad-input suite run the readers on
// them, so every field is exercised at zero, negative and huge without a
// hand-written case per field.
package cfgcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// HostileValues are the substitutes the sweeps use: zero, negative and a
// count far beyond any bound.
var HostileValues = []json.Number{"0", "-1", "1000000000"}

// Variant is a config with one numeric value replaced.
type Variant struct {
	Path  string      // the field: "vision_config.hidden_size", "block_out_channels[1]"
	Key   string      // its last object key ("block_out_channels")
	Value json.Number // the substitute
	JSON  []byte      // the whole config with it
}

// Variants lists, for every numeric leaf of the JSON object data (in
// path order), the config with that leaf set to each of values.
func Variants(data []byte, values []json.Number) ([]Variant, error) {
	root, err := decode(data)
	if err != nil {
		return nil, err
	}
	var paths []leaf
	walk(root, "", "", &paths)
	sort.Slice(paths, func(i, j int) bool { return paths[i].path < paths[j].path })
	var out []Variant
	for _, p := range paths {
		for _, v := range values {
			doc, _ := decode(data) // a fresh copy to edit
			p.set(doc, v)
			js, err := json.Marshal(doc)
			if err != nil {
				return nil, err
			}
			out = append(out, Variant{Path: p.path, Key: p.key, Value: v, JSON: js})
		}
	}
	return out, nil
}

type leaf struct {
	path, key string
	steps     []any // string keys and int indices from the root
}

// set replaces the leaf in doc (a fresh decode of the same data).
func (l leaf) set(doc any, v json.Number) {
	cur := doc
	for i, s := range l.steps {
		last := i == len(l.steps)-1
		switch k := s.(type) {
		case string:
			m := cur.(map[string]any)
			if last {
				m[k] = v
			}
			cur = m[k]
		case int:
			a := cur.([]any)
			if last {
				a[k] = v
			}
			cur = a[k]
		}
	}
}

func walk(n any, path, key string, out *[]leaf) {
	walkSteps(n, path, key, nil, out)
}

func walkSteps(n any, path, key string, steps []any, out *[]leaf) {
	switch x := n.(type) {
	case json.Number:
		*out = append(*out, leaf{path: path, key: key, steps: append([]any(nil), steps...)})
	case map[string]any:
		for k, v := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkSteps(v, p, k, append(steps, k), out)
		}
	case []any:
		for i, v := range x {
			walkSteps(v, fmt.Sprintf("%s[%d]", path, i), key, append(steps, i), out)
		}
	}
}

func decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("cfgcheck: %v", err)
	}
	return v, nil
}

// Names reports whether err is a *ConfigError whose field is the
// variant's key or lies below it (a list element, a nested key): the
// check a sweep makes of every refusal.
func (v Variant) Names(err error) bool {
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Field == v.Key || strings.HasPrefix(ce.Field, v.Key+"[") || strings.HasPrefix(ce.Field, v.Key+".") ||
		strings.HasSuffix(ce.Field, "."+v.Key) || strings.Contains(ce.Field, "."+v.Key+"[")
}
