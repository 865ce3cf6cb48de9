// pool.go implements the free lists behind NewBuffer: released buffers kept
// by capacity, with sizes bucketed so that similar requests share a list,
// and the release order that eviction follows.
package gpu

func align(n, a uint64) uint64 { return (n + a - 1) / a * a }

// bucket rounds a size up to m·2^k with a 3-bit mantissa m, so a pooled
// buffer wastes at most 12.5 % and similar sizes share a free list.
func bucket(n uint64) uint64 {
	if n <= 256 {
		return 256
	}
	shift := uint(0)
	for (n-1)>>shift >= 16 {
		shift++
	}
	m := ((n - 1) >> shift) + 1
	return m << shift
}

// pool holds released buffers by capacity, each list in release order.
type pool struct {
	free map[uint64][]*Buffer
	idle uint64 // bytes in the lists
	high uint64 // the most bytes in use since the pool was last emptied (Trim)
	seq  uint64 // release counter
}

func (p *pool) take(c uint64) *Buffer {
	l := p.free[c]
	if len(l) == 0 {
		return nil
	}
	b := l[len(l)-1]
	p.free[c] = l[:len(l)-1]
	p.idle -= b.cap
	return b
}

func (p *pool) put(b *Buffer) {
	p.seq++
	b.released = p.seq
	p.free[b.cap] = append(p.free[b.cap], b)
	p.idle += b.cap
}

// oldest removes and returns the least recently released buffer (the pool
// must not be empty): the first of some list.
func (p *pool) oldest() *Buffer {
	var bc uint64
	var best *Buffer
	for c, l := range p.free {
		if len(l) > 0 && (best == nil || l[0].released < best.released) {
			bc, best = c, l[0]
		}
	}
	p.free[bc] = p.free[bc][1:]
	p.idle -= best.cap
	return best
}
