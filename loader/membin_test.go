// membin_test.go: the loader's host memory on a 512 MiB torch.save
// checkpoint converted to f16, natively (Node's wasm memory and file system
// make it minutes in the wasm build).

//go:build !js

package loader

import (
	"archive/zip"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"harmony/engine/tensor"
)

// discardBackend takes uploads and keeps nothing.
type discardBackend struct {
	tensor.Backend
	err   error
	bytes int64
}

func (b *discardBackend) Err() error             { return b.err }
func (b *discardBackend) SetErr(err error)       { b.err = err }
func (b *discardBackend) Free(...*tensor.Tensor) {}
func (b *discardBackend) Upload(t *tensor.Tensor, off int64, data []byte) {
	if off%4 != 0 {
		b.err = fmt.Errorf("unaligned upload")
	}
	b.bytes += int64(len(data))
}
func (b *discardBackend) NewWeight(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return &tensor.Tensor{Name: name, DType: dt, Shape: slices.Clone(shape)}
}

// TestPeakMemoryLargeBin writes a 512 MiB fp32 torch.save checkpoint (64
// tensors of 8 MiB) and loads it with f16 conversion: the heap must stay
// near one 32 MiB piece.
func TestPeakMemoryLargeBin(t *testing.T) {
	const n, rows, cols = 64, 1024, 2048
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	var tensors []tTensor
	sm := map[string]tStorage{}
	for i := range n {
		k := fmt.Sprint(i)
		sm[k] = tStorage{key: k, typ: "FloatStorage", size: rows * cols}
		tensors = append(tensors, tTensor{name: fmt.Sprintf("layers.%d.weight", i), key: k, shape: []int{rows, cols}, stride: []int{cols, 1}})
	}
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
	w.Write(torchPickle(tensors, sm, true))
	buf := make([]byte, rows*cols*4)
	for j := 0; j < len(buf); j += 4 {
		binary.LittleEndian.PutUint32(buf[j:], math.Float32bits(float32(j%1000)/997))
	}
	for i := range n {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data/" + fmt.Sprint(i), Method: zip.Store})
		w.Write(buf)
	}
	zw.Close()
	f.Close()
	buf = nil

	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	base, alloc0 := s[0].Value.Uint64(), s[1].Value.Uint64()
	var peak uint64
	sample := func() {
		metrics.Read(s[:1])
		peak = max(peak, s[0].Value.Uint64())
	}
	b := &discardBackend{}
	start := time.Now()
	_, err = LoadFile(context.Background(), NewDirSource(dir), "pytorch_model.bin", "m", b, &Options{Progress: func(Progress) { sample() }})
	el := time.Since(start)
	sample()
	metrics.Read(s)
	if err != nil {
		t.Fatal(err)
	}
	peak -= min(base, peak)
	t.Logf("512 MiB fp32 .bin → %.0f MiB f16 in %v; peak heap +%.1f MiB, %.1f MiB allocated in all",
		float64(b.bytes)/(1<<20), el.Round(time.Millisecond), float64(peak)/(1<<20), float64(s[1].Value.Uint64()-alloc0)/(1<<20))
	if peak > 48<<20 {
		t.Errorf("peak heap %d bytes", peak)
	}
}
