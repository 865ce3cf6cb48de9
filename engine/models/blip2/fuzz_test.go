package blip2

// FuzzConfig feeds config.json through ParseConfig and, when it is
// accepted, through Tensors, as the loader's shape check does with a
// downloaded file: neither may panic, and every expected shape must be a
// real one.

import (
	"strings"
	"testing"

	"harmony/engine/models/released"
)

func FuzzConfig(f *testing.F) {
	f.Add([]byte(released.QFormer))
	f.Add([]byte(`{}`))
	f.Add([]byte(strings.Replace(released.QFormer, "1", "-1", 1)))
	f.Add([]byte(strings.Replace(released.QFormer, "2", "200000000000", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "blip2: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		for name, shape := range Tensors(cfg) {
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
