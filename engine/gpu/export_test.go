// export_test.go opens internals to the package's external tests.
package gpu

import "github.com/cogentcore/webgpu/wgpu"

var (
	Bucket       = bucket
	Fold         = fold
	EncodeParams = encodeParams
	LayoutOf     = layoutOf
)

// CachedBindGroups reports how many cached bind groups bind b, and how
// many are cached in all.
func (d *Device) CachedBindGroups(b *Buffer) (of, all int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.binds.byBuf[b.id]), len(d.binds.groups)
}

// BindCache drives the bind-group cache without a device: each group binds
// the buffer ids it is put with.
type BindCache struct {
	c bindCache
	n uint64
}

func NewBindCache() *BindCache {
	c := &BindCache{}
	c.c.init()
	return c
}

// Put caches a group binding ids (distinct from every earlier group).
func (c *BindCache) Put(ids ...uint64) {
	c.n++
	var k bindKey
	copy(k.ids[:], ids)
	k.offs[7] = c.n
	c.c.put(k, new(wgpu.BindGroup))
}

// Drop drops the groups that bind id and returns how many it dropped.
func (c *BindCache) Drop(id uint64) int { return len(c.c.dropBuffer(id)) }

// Len is the groups cached.
func (c *BindCache) Len() int { return len(c.c.groups) }

// Indexed is how many groups the index lists for id.
func (c *BindCache) Indexed(id uint64) int { return len(c.c.byBuf[id]) }

// Reset forgets every group.
func (c *BindCache) Reset() { c.c.reset() }

// MaxBindGroups is the cache's bound.
const MaxBindGroups = maxBindGroups

// OnMapRequested sets the hook that runs between requesting a read-back map
// and awaiting it; the returned func removes it.
func OnMapRequested(f func()) (restore func()) {
	mapRequested = f
	return func() { mapRequested = nil }
}
