// mask.go implements the subject-mask math (and the swap layers'
// nearest-neighbour resize of the masks): per-layer subject maps, area averaging to the mask grid, the
// equal-weight layer average, min–max normalization and the strict
// threshold. Maps are row-major H×W grids of float32.
package harmony

import (
	"errors"
	"fmt"
)

// DefaultThreshold is τ of the binary mask m > τ (knob mask-threshold).
const DefaultThreshold = 0.3

// Map is a row-major H×W float32 grid (an attention map or a soft mask).
type Map struct {
	H, W int       // grid size
	V    []float32 // V[y·W + x]
}

// Mask is a row-major H×W binary mask (1 inside).
type Mask struct {
	H, W int     // grid size
	V    []uint8 // 0 or 1
}

// Count returns the number of pixels inside the mask.
func (m Mask) Count() int {
	n := 0
	for _, v := range m.V {
		n += int(v)
	}
	return n
}

func (m Map) check() error {
	if m.H <= 0 || m.W <= 0 || len(m.V) != m.H*m.W {
		return fmt.Errorf("harmony: map %d×%d with %d values", m.H, m.W, len(m.V))
	}
	return nil
}

// AverageColumns averages selected key columns of a row-major [rows, keys]
// probability matrix (one attention map already averaged over heads):
// out[i] = mean_{c in cols} p[i·keys + c], summed in float64 in the order
// of cols and rounded once.
func AverageColumns(p []float32, rows, keys int, cols []int) ([]float32, error) {
	if len(p) != rows*keys {
		return nil, fmt.Errorf("harmony: %d probabilities for %d×%d", len(p), rows, keys)
	}
	if err := checkCols(cols, keys); err != nil {
		return nil, err
	}
	out := make([]float32, rows)
	for i := range rows {
		s := 0.0
		for _, c := range cols {
			s += float64(p[i*keys+c])
		}
		out[i] = float32(s / float64(len(cols)))
	}
	return out, nil
}

// SubjectMap is step 2 for one layer: from cross-attention probabilities
// [heads, rows, keys] (one batch element, rows = H·W query positions in
// row-major order), the mean over the subject columns, then over heads,
// accumulated in float64 and rounded once per position.
func SubjectMap(p []float32, heads, rows, keys int, cols []int) ([]float32, error) {
	if len(p) != heads*rows*keys {
		return nil, fmt.Errorf("harmony: %d probabilities for %d heads × %d × %d", len(p), heads, rows, keys)
	}
	if err := checkCols(cols, keys); err != nil {
		return nil, err
	}
	out := make([]float32, rows)
	for i := range rows {
		h := 0.0
		for hd := range heads {
			s := 0.0
			base := (hd*rows + i) * keys
			for _, c := range cols {
				s += float64(p[base+c])
			}
			h += s / float64(len(cols))
		}
		out[i] = float32(h / float64(heads))
	}
	return out, nil
}

func checkCols(cols []int, keys int) error {
	if len(cols) == 0 {
		return errors.New("harmony: no subject columns")
	}
	for _, c := range cols {
		if c < 0 || c >= keys {
			return fmt.Errorf("harmony: subject column %d outside [0, %d)", c, keys)
		}
	}
	return nil
}

// Halve is one level of area averaging: the output is ⌈H/2⌉×⌈W/2⌉ (a
// Downsample2D's size), each value the float32 mean of its input cell
// (adaptive-average bins [⌊i·H/h⌋, ⌈(i+1)·H/h⌉)): the 2×2 mean
// ((a + b) + c) + d, then /4, when H and W are even.
func Halve(m Map) (Map, error) {
	if err := m.check(); err != nil {
		return Map{}, err
	}
	oh, ow := (m.H+1)/2, (m.W+1)/2
	out := Map{H: oh, W: ow, V: make([]float32, oh*ow)}
	for y := range oh {
		y0, y1 := y*m.H/oh, ((y+1)*m.H+oh-1)/oh
		for x := range ow {
			x0, x1 := x*m.W/ow, ((x+1)*m.W+ow-1)/ow
			var s float32
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					s += m.V[yy*m.W+xx]
				}
			}
			out.V[y*ow+x] = s / float32((y1-y0)*(x1-x0))
		}
	}
	return out, nil
}

// ToGrid area-averages a layer map down to the mask grid, one Halve per
// level of difference (step 3). A map already at the grid size is returned
// as is; one that cannot reach it by halving is an error.
func ToGrid(m Map, gh, gw int) (Map, error) {
	if err := m.check(); err != nil {
		return Map{}, err
	}
	for m.H != gh || m.W != gw {
		if m.H < gh || m.W < gw || (m.H == 1 && m.W == 1) {
			return Map{}, fmt.Errorf("harmony: a %d×%d map does not halve to the %d×%d mask grid", m.H, m.W, gh, gw)
		}
		var err error
		if m, err = Halve(m); err != nil {
			return Map{}, err
		}
	}
	return m, nil
}

// LayerAverage is step 4: the equal-weight mean of the layers' maps (all on
// the grid), summed in float32 in layer order and divided by the count.
func LayerAverage(maps []Map) (Map, error) {
	if len(maps) == 0 {
		return Map{}, errors.New("harmony: no mask layers")
	}
	h, w := maps[0].H, maps[0].W
	out := Map{H: h, W: w, V: make([]float32, h*w)}
	for _, m := range maps {
		if err := m.check(); err != nil {
			return Map{}, err
		}
		if m.H != h || m.W != w {
			return Map{}, fmt.Errorf("harmony: layer map %d×%d, others %d×%d", m.H, m.W, h, w)
		}
		for i, v := range m.V {
			out.V[i] += v
		}
	}
	n := float32(len(maps))
	for i := range out.V {
		out.V[i] /= n
	}
	return out, nil
}

// Normalize is step 5's min–max normalization over the grid, in float32:
// (m − min)/(max − min). A constant map gives all zeros (an empty mask).
func Normalize(raw Map) Map {
	out := Map{H: raw.H, W: raw.W, V: make([]float32, len(raw.V))}
	if len(raw.V) == 0 {
		return out
	}
	lo, hi := raw.V[0], raw.V[0]
	for _, v := range raw.V {
		lo, hi = min(lo, v), max(hi, v)
	}
	span := hi - lo
	if !(span > 0) {
		return out
	}
	for i, v := range raw.V {
		out.V[i] = (v - lo) / span
	}
	return out
}

// Threshold is the binary mask m > τ (strict), compared in float32 as the
// reference compares a float32 tensor with a Python float.
func Threshold(norm Map, tau float64) Mask {
	t := float32(tau)
	out := Mask{H: norm.H, W: norm.W, V: make([]uint8, len(norm.V))}
	for i, v := range norm.V {
		if v > t {
			out.V[i] = 1
		}
	}
	return out
}

// SubjectMask runs steps 3–5 on one process's per-layer subject maps (each
// at its own resolution): to the grid, layer average, normalization and
// threshold. It returns the raw layer average, the soft (normalized) map
// kept for the heat map, and the binary mask.
func SubjectMask(layers []Map, gh, gw int, tau float64) (raw, soft Map, mask Mask, err error) {
	grid := make([]Map, len(layers))
	for i, m := range layers {
		if grid[i], err = ToGrid(m, gh, gw); err != nil {
			return Map{}, Map{}, Mask{}, err
		}
	}
	if raw, err = LayerAverage(grid); err != nil {
		return Map{}, Map{}, Mask{}, err
	}
	soft = Normalize(raw)
	return raw, soft, Threshold(soft, tau), nil
}

// ResizeNearest resizes a grid mask to a swap layer's resolution by nearest
// neighbour: out[y][x] = in[⌊y·Hin/Hout⌋][⌊x·Win/Wout⌋] (integer arithmetic).
func ResizeNearest(m Mask, h, w int) Mask {
	out := Mask{H: h, W: w, V: make([]uint8, h*w)}
	for y := range h {
		sy := y * m.H / h
		for x := range w {
			out.V[y*w+x] = m.V[sy*m.W+x*m.W/w]
		}
	}
	return out
}
