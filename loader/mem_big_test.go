// mem_big_test.go: the loader's host memory on a checkpoint far larger than
// any shard, natively.

//go:build !js

package loader_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"harmony/loader"
)

// TestPeakMemoryLargePack writes a 1 GiB pack (128 tensors of 8 MiB in
// 32 MiB shards) and loads it; the heap must stay near one shard. It takes
// ~20 s and 1 GiB of disk (the wasm build does not run it: Node's wasm
// memory and file system make it minutes).
func TestPeakMemoryLargePack(t *testing.T) {
	dir := t.TempDir()
	const (
		n       = 128
		side    = 2048 // [2048, 2048] f16 = 8 MiB
		tbytes  = side * side * 2
		perShrd = 4
	)
	base := make([]byte, tbytes)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < len(base); i += 8 {
		binary.LittleEndian.PutUint64(base[i:], rng.Uint64()&0x3bff3bff3bff3bff) // finite f16 values
	}
	man := loader.Manifest{Format: loader.PackFormat, Version: loader.PackVersion, Alignment: loader.PackAlignment,
		ModelIndex: json.RawMessage(`{"_class_name":"Synthetic","unet":["diffusers","UNet2DConditionModel"]}`),
		Configs:    map[string]json.RawMessage{"unet": json.RawMessage(`{}`)}}
	want := map[string]uint32{}
	for s := 0; s < n/perShrd; s++ {
		name := fmt.Sprintf("shard-%05d.bin", s)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for k := 0; k < perShrd; k++ {
			i := s*perShrd + k
			binary.LittleEndian.PutUint32(base, uint32(i))
			f.Write(base)
			h.Write(base)
			tn := fmt.Sprintf("blocks.%d.weight", i)
			want[tn] = crc32.ChecksumIEEE(base)
			man.Tensors = append(man.Tensors, loader.PackTensor{Name: tn, Component: "unet", DType: loader.F16, Shape: []int{side, side}, Shard: s, Offset: int64(k * tbytes), Bytes: tbytes})
		}
		f.Close()
		man.Shards = append(man.Shards, loader.PackShard{File: name, Bytes: perShrd * tbytes, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	mj, _ := json.Marshal(&man)
	os.WriteFile(filepath.Join(dir, loader.ManifestName), mj, 0o644)
	base = nil

	b := newNull()
	sample, stop := heapPeak()
	start := time.Now()
	m, err := loader.Load(context.Background(), loader.NewDirSource(dir), b, &loader.Options{Progress: func(loader.Progress) { sample() }})
	el := time.Since(start)
	peak, alloc := stop()
	if err != nil {
		t.Fatal(err)
	}
	w := m.Weights["unet"]
	for name, c := range want {
		x, err := w.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if b.crc[x] != c {
			t.Fatalf("%s: CRC %08x, want %08x", name, b.crc[x], c)
		}
	}
	t.Logf("1 GiB pack: %.0f MiB uploaded in %v (%.0f MiB/s incl. SHA-256); peak heap +%.1f MiB, %.1f MiB allocated in all",
		mib(b.bytes), el.Round(time.Millisecond), mib(b.bytes)/el.Seconds(), mib(int64(peak)), mib(int64(alloc)))
	if peak > 48<<20 {
		t.Errorf("peak heap %d bytes exceeds one 32 MiB shard plus 16 MiB", peak)
	}
}
