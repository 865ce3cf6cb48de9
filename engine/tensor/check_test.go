package tensor

import (
	"slices"
	"testing"
)

func tt(dt DType, shape ...int) *Tensor { return &Tensor{Name: "t", Shape: shape, DType: dt} }

// TestLinearEpilogueForms checks Split and GEGLU: their output shapes and the
// combinations refused.
func TestLinearEpilogueForms(t *testing.T) {
	x := tt(F32, 2, 5, 8)
	for _, c := range []struct {
		name  string
		w     *Tensor
		ep    Epilogue
		shape []int // nil: refused
	}{
		{"plain", tt(F16, 12, 8), Epilogue{}, []int{2, 5, 12}},
		{"split", tt(F16, 12, 8), Epilogue{Split: 4}, []int{3, 2, 5, 4}},
		{"split not dividing", tt(F32, 12, 8), Epilogue{Split: 5}, nil},
		{"negative split", tt(F32, 12, 8), Epilogue{Split: -4}, nil},
		{"split residual", tt(F32, 12, 8), Epilogue{Split: 4, Residual: tt(F32, 2, 5, 12)}, nil},
		{"split geglu", tt(F32, 12, 8), Epilogue{Split: 4, GEGLU: true}, nil},
		{"geglu", tt(F32, 12, 8), Epilogue{GEGLU: true}, []int{2, 5, 6}},
		{"geglu residual", tt(F32, 12, 8), Epilogue{GEGLU: true, Residual: tt(F32, 10, 6)}, []int{2, 5, 6}},
		{"geglu wide residual", tt(F32, 12, 8), Epilogue{GEGLU: true, Residual: tt(F32, 10, 12)}, nil},
		{"geglu odd", tt(F32, 11, 8), Epilogue{GEGLU: true}, nil},
		{"geglu act", tt(F32, 12, 8), Epilogue{GEGLU: true, Act: ActGELU}, nil},
	} {
		_, _, n, err := LinearDims(x, c.w, nil, c.ep)
		switch {
		case c.shape == nil && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.shape != nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.shape != nil && !slices.Equal(LinearOutShape(x, n, c.ep), c.shape):
			t.Errorf("%s: shape %v, want %v", c.name, LinearOutShape(x, n, c.ep), c.shape)
		}
	}
}

// TestConvChanBiasColumn checks the wide channel-bias table.
func TestConvChanBiasColumn(t *testing.T) {
	x, w := tt(F32, 2, 4, 4, 3), tt(F32, 5, 3, 3, 3)
	for _, c := range []struct {
		name           string
		cb             *Tensor
		col            int
		ep             Epilogue
		stride, colOut int // 0 stride: refused
	}{
		{"exact", tt(F32, 2, 5), 0, Epilogue{}, 5, 0},
		{"exact flat", tt(F32, 10), 0, Epilogue{}, 5, 0},
		{"wide", tt(F32, 2, 20), 7, Epilogue{}, 20, 7},
		{"wide from 0", tt(F32, 2, 20), 0, Epilogue{}, 20, 0},
		{"past the end", tt(F32, 2, 20), 16, Epilogue{}, 0, 0},
		{"wrong batch", tt(F32, 3, 20), 1, Epilogue{}, 0, 0},
		{"column without bias", nil, 3, Epilogue{}, 0, 0},
		{"split refused", tt(F32, 2, 5), 0, Epilogue{Split: 5}, 0, 0},
		{"geglu refused", tt(F32, 2, 5), 0, Epilogue{GEGLU: true}, 0, 0},
	} {
		g, err := ConvDims(x, w, nil, ConvOpts{Pad: 1, ChanBias: c.cb, ChanBiasCol: c.col, Epilogue: c.ep})
		switch {
		case c.stride == 0 && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.stride != 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.stride != 0 && (g.CBStride != c.stride || g.CBCol != c.colOut):
			t.Errorf("%s: stride %d col %d, want %d %d", c.name, g.CBStride, g.CBCol, c.stride, c.colOut)
		}
	}
}

// TestConcatF16 checks that f16 parts join along axis 0 only, unmixed.
func TestConcatF16(t *testing.T) {
	a, b := tt(F16, 4, 8), tt(F16, 2, 8)
	if s, _, _, err := ConcatDims(0, []*Tensor{a, b}); err != nil || !slices.Equal(s, []int{6, 8}) {
		t.Errorf("f16 axis 0: %v %v", s, err)
	}
	if _, _, _, err := ConcatDims(-2, []*Tensor{a, b}); err != nil {
		t.Errorf("f16 axis -2: %v", err)
	}
	if _, _, _, err := ConcatDims(1, []*Tensor{a, tt(F16, 4, 2)}); err == nil {
		t.Error("f16 axis 1 accepted")
	}
	if _, _, _, err := ConcatDims(0, []*Tensor{a, tt(F32, 2, 8)}); err == nil {
		t.Error("f16 with f32 accepted")
	}
	if _, _, _, err := ConcatDims(0, []*Tensor{tt(F32, 2, 8), a}); err == nil {
		t.Error("f32 with f16 accepted")
	}
}
