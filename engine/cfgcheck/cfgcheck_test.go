// cfgcheck_test.go checks the error text every config reader shares, the
// first-failure rule of Checker, the parameter bound's float arithmetic
// and the variant generator the sweeps run on.
package cfgcheck

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestConfigErrorText(t *testing.T) {
	ck := &Checker{Pkg: "unet", File: "unet/config.json"}
	ck.Int("norm_num_groups", 0, 1, MaxChannels)
	ck.Int("layers_per_block", -1, 1, MaxLayers) // not reported: the first failure stands
	want := "unet: unet/config.json: norm_num_groups must be ≥ 1, got 0"
	if err := ck.Err(); err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	err := InFile(fmt.Errorf("wrapped: %w", ck.Err()), "other/config.json")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.File != "other/config.json" || ce.Field != "norm_num_groups" || ce.Value != 0 {
		t.Fatalf("InFile: %#v", ce)
	}
}

func TestCheckerBounds(t *testing.T) {
	for _, c := range []struct {
		check func(ck *Checker)
		want  string // "" for no error
	}{
		{func(ck *Checker) { ck.Int("a", 5, 1, 5) }, ""},
		{func(ck *Checker) { ck.Int("a", 6, 1, 5) }, "a must be ≤ 5, got 6"},
		{func(ck *Checker) { ck.Ints("a", []int{1, 0}, 1, 5) }, "a[1] must be ≥ 1, got 0"},
		{func(ck *Checker) { ck.Len("a", 0, 1, 4) }, "a must have at least 1 entries, has 0"},
		{func(ck *Checker) { ck.Divides("a", 30, 4, "heads") }, "a must be a multiple of heads 4, got 30"},
		{func(ck *Checker) { ck.Divides("a", 30, 0, "heads") }, "a must be a multiple of heads 0"},
		{func(ck *Checker) { ck.Positive("eps", 0, 1) }, "eps must be > 0, got 0"},
		{func(ck *Checker) { ck.Float("s", math.Inf(1), -1, 1) }, "s must be finite"},
		{func(ck *Checker) { ck.Params("layers", 1e18) }, "layers implies 1e+18 parameters"},
		{func(ck *Checker) { ck.Params("layers", 1<<30) }, ""},
	} {
		ck := &Checker{Pkg: "p"}
		c.check(ck)
		err := ck.Err()
		if c.want == "" {
			if err != nil {
				t.Errorf("unexpected %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

func TestVariants(t *testing.T) {
	vs, err := Variants([]byte(`{"a": 1, "b": {"c": [2, 3]}, "s": "x", "n": null}`), HostileValues)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Path+"="+string(v.Value)+":"+v.Key)
	}
	want := "a=0:a a=-1:a a=1000000000:a b.c[0]=0:c b.c[0]=-1:c b.c[0]=1000000000:c b.c[1]=0:c b.c[1]=-1:c b.c[1]=1000000000:c"
	if strings.Join(got, " ") != want {
		t.Fatalf("variants %v\nwant %s", got, want)
	}
	if s := string(vs[4].JSON); s != `{"a":1,"b":{"c":[-1,3]},"n":null,"s":"x"}` {
		t.Errorf("variant JSON %s", s)
	}
	if !vs[3].Names(&ConfigError{Field: "b.c[0]"}) || vs[0].Names(&ConfigError{Field: "ab"}) {
		t.Error("Names does not match fields by key")
	}
}
