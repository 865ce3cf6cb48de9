// nonfinite_test.go: the non-finite check and the long-prompt warning's
// shortened dropped text.
package pipeline

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCheckFinite(t *testing.T) {
	if err := checkFinite([]float32{0, 1, -3e38}, "denoise", 1, "noise prediction"); err != nil {
		t.Fatal(err)
	}
	err := checkFinite([]float32{0, 1, float32(math.Inf(-1)), float32(math.NaN())}, "denoise", 3, "main latents")
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Stage != "denoise" || nf.Step != 3 || nf.Index != 2 {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "denoise step 3: main latents holds -Inf at element 2") {
		t.Fatal(err)
	}
}

func TestDroppedText(t *testing.T) {
	toks := []string{"a</w>", "dog</w>", "swim", "ming</w>", "under", "water</w>"}
	if got := droppedText(toks, 4); got != "swimming underwater" {
		t.Fatalf("got %q", got)
	}
	var long []string
	for i := 0; i < 40; i++ {
		long = append(long, "w"+string(rune('a'+i%26))+"</w>")
	}
	got := droppedText(long, 30)
	if !strings.Contains(got, " … ") || len(strings.Fields(got)) != 13 {
		t.Fatalf("got %q", got)
	}
}
