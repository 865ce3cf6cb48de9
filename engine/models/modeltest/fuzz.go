// fuzz.go: the config fuzz target every model package runs, so each
// package's FuzzConfig states only its parser, its tensor table and a seed.
package modeltest

import (
	"strings"
	"testing"
)

// FuzzConfig feeds config.json through parse and, when it is accepted,
// through tensors, as the loader's shape check does with a downloaded file:
// neither may panic, a refusal carries the package's prefix ("pkg: "), and
// every expected shape must be a real one (positive sides, under 2⁴⁰
// elements). seed is a valid config; the target also starts from an empty
// object and from seed with one number made negative and one made huge.
func FuzzConfig[C any](f *testing.F, pkg, seed string, parse func([]byte) (C, error), tensors func(C) map[string][]int) {
	f.Add([]byte(seed))
	f.Add([]byte(`{}`))
	f.Add([]byte(strings.Replace(seed, "1", "-1", 1)))
	f.Add([]byte(strings.Replace(seed, "2", "200000000000", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), pkg+": ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		for name, shape := range tensors(cfg) {
			n := int64(1)
			for _, d := range shape {
				if d <= 0 || n > 1<<40/int64(d) {
					t.Fatalf("tensor %s: shape %v", name, shape)
				}
				n *= int64(d)
			}
		}
	})
}
