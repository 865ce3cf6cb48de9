package loader_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"

	"harmony/engine/tensor"
	"harmony/loader"
)

// nullBackend keeps no data: it checks the upload rules (offsets multiples
// of 4, in order, within the tensor) and keeps a CRC-32 per tensor, so host
// memory measures the loader alone.
type nullBackend struct {
	tensor.Backend // only the methods below are called
	mu             sync.Mutex
	err            error
	crc            map[*tensor.Tensor]uint32
	next           map[*tensor.Tensor]int64
	bytes          int64
}

func newNull() *nullBackend {
	return &nullBackend{crc: map[*tensor.Tensor]uint32{}, next: map[*tensor.Tensor]int64{}}
}

func (b *nullBackend) Err() error { return b.err }
func (b *nullBackend) SetErr(err error) {
	if b.err == nil {
		b.err = err
	}
}
func (b *nullBackend) Free(...*tensor.Tensor) {}
func (b *nullBackend) NewWeight(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return &tensor.Tensor{Name: name, DType: dt, Shape: slices.Clone(shape)}
}

func (b *nullBackend) Upload(t *tensor.Tensor, off int64, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off%4 != 0 || off != b.next[t] || off+int64(len(data)) > int64(t.Numel()*t.DType.Size()) {
		b.SetErr(fmt.Errorf("upload to %v at %d (+%d) out of order or bounds", t, off, len(data)))
		return
	}
	b.next[t] = off + int64(len(data))
	b.crc[t] = crc32.Update(b.crc[t], crc32.IEEETable, data)
	b.bytes += int64(len(data))
}

// heapPeak samples the live heap until stop is called; it returns the peak
// above the starting point and the bytes allocated meanwhile.
func heapPeak() (sample func(), stop func() (peak, alloc uint64)) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	base, alloc0 := s[0].Value.Uint64(), s[1].Value.Uint64()
	var mu sync.Mutex
	var peak uint64
	sample = func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		mu.Lock()
		peak = max(peak, s[0].Value.Uint64())
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				sample()
			}
		}
	}()
	return sample, func() (uint64, uint64) {
		close(done)
		sample()
		metrics.Read(s)
		mu.Lock()
		defer mu.Unlock()
		return peak - min(base, peak), s[1].Value.Uint64() - alloc0
	}
}

// TestPeakMemoryTiny measures host memory while loading the tiny .bin
// folder and its pack (weights go to a backend that keeps nothing).
func TestPeakMemoryTiny(t *testing.T) {
	_, bin := tinyDirs(t)
	pack, man := writePack(t, bin, loader.DefaultShardSize, nil)
	var largest int64
	for _, s := range man.Shards {
		largest = max(largest, s.Bytes)
	}
	for _, c := range []struct{ name, dir string }{{"tiny .bin folder", bin}, {"tiny pack", pack}} {
		b := newNull()
		sample, stop := heapPeak()
		_, err := loader.Load(context.Background(), loader.NewDirSource(c.dir), b, &loader.Options{Progress: func(loader.Progress) { sample() }})
		peak, alloc := stop()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.1f MiB uploaded; peak heap +%.1f MiB, %.1f MiB allocated in all", c.name, mib(b.bytes), mib(int64(peak)), mib(int64(alloc)))
		// The largest file is 6.4 MB; tokenizer files add 1.6 MB.
		if peak > 24<<20 {
			t.Errorf("%s: peak heap %d bytes", c.name, peak)
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// BenchmarkLoad measures loading the tiny model (to a backend that keeps
// nothing): f32 .bin → f16 conversion, and a pack (SHA-256, no conversion).
func BenchmarkLoad(b *testing.B) {
	_, bin := tinyDirs(b)
	pack, _ := writePack(b, bin, loader.DefaultShardSize, nil)
	for _, c := range []struct{ name, dir string }{{"bin", bin}, {"pack", pack}} {
		b.Run(c.name, func(b *testing.B) {
			var total int64
			for b.Loop() {
				_, err := loader.Load(context.Background(), loader.NewDirSource(c.dir), newNull(), &loader.Options{Progress: func(p loader.Progress) { total = p.BytesTotal }})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(total)
		})
	}
}
