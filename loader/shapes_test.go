// shapes_test.go checks that a checkpoint missing many of the tensors its
// config implies gets one short error: the first tensor in full, the next
// few named, the rest counted.
package loader

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckShapesShortList(t *testing.T) {
	want := map[string][]int{}
	for i := range 300 {
		want[fmt.Sprintf("layers.%03d.weight", i)] = []int{2}
	}
	table := func(string, []byte) (map[string][]int, error) { return want, nil }
	have := map[string][]int{"layers.000.weight": {2}}
	err := checkShapes(table, "unet", "model/unet", nil, have, nil, nil)
	var te *TensorError
	if !errors.As(err, &te) || te.Kind != TensorMissing || te.Tensor != "layers.001.weight" {
		t.Fatalf("err = %v, want the first missing tensor", err)
	}
	msg := err.Error()
	for _, w := range []string{`298 more missing or misshapen: "layers.002.weight"`, `"layers.006.weight" … and 293 more`} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	if strings.Contains(msg, "layers.007") || len(msg) > 400 {
		t.Errorf("message too long: %q", msg)
	}
}
