package sched

import "math/big"

// bigFloat is an exact accumulator for the fma32 test.
type bigFloat struct{ v *big.Float }

func (f *bigFloat) mul(a, b float64) *bigFloat {
	f.v = new(big.Float).SetPrec(2000).Mul(big.NewFloat(a).SetPrec(2000), big.NewFloat(b).SetPrec(2000))
	return f
}

func (f *bigFloat) add(c float64) *bigFloat {
	f.v.Add(f.v, new(big.Float).SetPrec(2000).SetFloat64(c))
	return f
}

func (f *bigFloat) float32() float32 {
	r, _ := f.v.Float32()
	return r
}
