// bindgroup.go implements the bind-group cache. A model's step dispatches
// the same kernels on the same (pooled) buffer ranges over and over, so
// groups are kept by (pipeline, buffer ranges) instead of being created for
// every dispatch. Each buffer indexes the keys of the groups that bind it,
// so destroying a buffer drops exactly its groups instead of scanning the
// cache.
package gpu

import (
	"github.com/cogentcore/webgpu/wgpu"
)

// maxBindGroups bounds the cache; past it the cache starts over (a working
// set that large means ranges are not repeating anyway).
const maxBindGroups = 8192

// bindKey identifies a bind group: the pipeline (its layout) and the byte
// range of each storage binding. The Params uniform is the same arena
// for every group and is not part of the key.
type bindKey struct {
	pipe *pipeline
	ids  [8]uint64 // buffer ids; 0 past the pipeline's bindings
	offs [8]uint64 // bytes
	szs  [8]uint64 // bytes
}

// bindCache holds bind groups by key and, per buffer id, the keys that
// bind that buffer.
type bindCache struct {
	groups map[bindKey]*wgpu.BindGroup
	byBuf  map[uint64]map[bindKey]struct{}
}

func (c *bindCache) init() {
	c.groups = map[bindKey]*wgpu.BindGroup{}
	c.byBuf = map[uint64]map[bindKey]struct{}{}
}

func (c *bindCache) get(k bindKey) *wgpu.BindGroup { return c.groups[k] }

func (c *bindCache) put(k bindKey, bg *wgpu.BindGroup) {
	if len(c.groups) > maxBindGroups {
		c.reset()
	}
	c.groups[k] = bg
	for _, id := range k.ids {
		if id == 0 {
			continue
		}
		s := c.byBuf[id]
		if s == nil {
			s = map[bindKey]struct{}{}
			c.byBuf[id] = s
		}
		s[k] = struct{}{}
	}
}

// reset forgets every group without releasing it: recorded dispatches of
// the open pass may still use them, and the bindings keep them alive until
// the pass is submitted.
func (c *bindCache) reset() {
	clear(c.groups)
	clear(c.byBuf)
}

// dropBuffer removes the groups that bind buffer id, from the cache and
// from the index entries of the other buffers they bind, and returns them.
// The work is proportional to those groups.
func (c *bindCache) dropBuffer(id uint64) []*wgpu.BindGroup {
	keys := c.byBuf[id]
	if len(keys) == 0 {
		delete(c.byBuf, id)
		return nil
	}
	dropped := make([]*wgpu.BindGroup, 0, len(keys))
	for k := range keys {
		if bg := c.groups[k]; bg != nil {
			dropped = append(dropped, bg)
		}
		delete(c.groups, k)
		for _, other := range k.ids {
			if other == 0 || other == id {
				continue
			}
			if s := c.byBuf[other]; s != nil {
				delete(s, k)
				if len(s) == 0 {
					delete(c.byBuf, other)
				}
			}
		}
	}
	delete(c.byBuf, id)
	return dropped
}

// bindGroupLocked returns the cached bind group for key, creating it on a
// miss.
func (d *Device) bindGroupLocked(p *pipeline, key bindKey, bindings []Binding) (*wgpu.BindGroup, error) {
	if bg := d.binds.get(key); bg != nil {
		return bg, nil
	}
	entries := make([]wgpu.BindGroupEntry, 0, len(bindings)+1)
	for i := range bindings {
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i), Buffer: bindings[i].Buf.buf, Offset: key.offs[i], Size: key.szs[i]})
	}
	if p.uniform >= 0 {
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(p.uniform), Buffer: d.uniBuf, Offset: 0, Size: paramsSlot})
	}
	bg, err := d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: p.kernel.String(), Layout: p.bgl, Entries: entries})
	if err != nil {
		return nil, d.wrapErr("bind group for "+p.kernel.String(), err)
	}
	d.binds.put(key, bg)
	d.stats.BindGroups++
	return bg, nil
}
