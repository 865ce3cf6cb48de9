// derive.go writes the test files that testdata/ does not store because
// they follow from what it does: the fp16 variant files of the tiny model
// (its fp32 weights rounded to float16, checked against the SHA-256 of the
// data section of the files torch wrote, kept in fp16_variants.json), and
// the torch .bin copy of the tiny model (the kept .bin checkpoints of
// blipdiffusion-tiny-bin/ in place of their safetensors twins).
package golden

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/x448/float16"

	"harmony/loader"
)

const (
	// Tiny is the tiny model folder (diffusers layout, fp32 safetensors).
	Tiny = "blipdiffusion-tiny"
	// TinyBinDir holds the kept torch .bin checkpoints of the tiny model,
	// in the same layout.
	TinyBinDir = "blipdiffusion-tiny-bin"
	// variantSuffix names an fp16 variant file.
	variantSuffix = ".fp16.safetensors"
	// digestsFile maps each variant file (relative to the test-data folder)
	// to the SHA-256 of the data section of the file torch wrote.
	digestsFile = "fp16_variants.json"
)

func isVariant(p string) bool { return strings.HasSuffix(p, variantSuffix) }

// Variant writes the fp16 variant file p (a path below the test-data
// folder ending in .fp16.safetensors, which the folder does not store) from
// its fp32 sibling into t.TempDir(), checks it against fp16_variants.json,
// and returns the written file's path (same base name).
func Variant(t testing.TB, p string) string {
	t.Helper()
	rel, err := filepath.Rel(Dir(t), p)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("golden: %s is not below the test-data folder", p)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(p))
	writeVariant(t, filepath.ToSlash(rel), strings.TrimSuffix(p, variantSuffix)+".safetensors", dst)
	return dst
}

// writeVariant writes dst from the fp32 file src and checks the data
// section's digest recorded for key.
func writeVariant(t testing.TB, key, src, dst string) {
	t.Helper()
	sum, err := WriteVariant(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	want, err := variantDigest(key)
	if err != nil {
		t.Fatal(err)
	}
	if sum != want {
		t.Fatalf("golden: %s: data SHA-256 %s, torch's fp16 file has %s", key, sum, want)
	}
}

// variantDigest returns the recorded data-section SHA-256 of a variant
// file.
func variantDigest(key string) (string, error) {
	data, err := os.ReadFile(filepath.Join(Find(), digestsFile))
	if err != nil {
		return "", fmt.Errorf("golden: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("golden: %s: %w", digestsFile, err)
	}
	d, ok := m[key]
	if !ok {
		return "", fmt.Errorf("golden: %s has no digest for %s", digestsFile, key)
	}
	return d, nil
}

// WriteVariant writes to dst the fp16 variant of the fp32 safetensors file
// src, as diffusers and transformers save one: every F32 tensor rounded to
// F16 (to nearest, ties to even, as torch's Tensor.half()), other tensors
// (the int64 position_ids buffers) unchanged, in the same order and with
// the same metadata. It returns the SHA-256 of the data section.
func WriteVariant(src, dst string) (string, error) {
	f, err := loader.ReadSafetensorsFile(src)
	if err != nil {
		return "", err
	}
	var ts []loader.SafetensorsTensor
	for _, ti := range f.Tensors {
		b, _, err := f.Raw(ti.Name)
		if err != nil {
			return "", err
		}
		if ti.DType == loader.F32 {
			h := make([]byte, len(b)/2)
			for i := range len(h) / 2 {
				v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
				binary.LittleEndian.PutUint16(h[2*i:], uint16(float16.Fromfloat32(v)))
			}
			ts = append(ts, loader.SafetensorsTensor{Name: ti.Name, DType: loader.F16, Shape: ti.Shape, Data: h})
			continue
		}
		ts = append(ts, loader.SafetensorsTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	out, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("golden: %w", err)
	}
	if err := loader.WriteSafetensors(out, ts, f.Metadata); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("golden: %w", err)
	}
	h := sha256.New()
	for _, x := range ts {
		h.Write(x.Data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TinyVariant returns a folder in t.TempDir() holding the tiny model with
// an fp16 variant file beside each fp32 weight file (what diffusers'
// variant="fp16" loads).
func TinyVariant(t testing.TB) string {
	t.Helper()
	src := Path(t, Tiny)
	dst := t.TempDir()
	copyTree(t, src, dst, nil)
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".safetensors") || isVariant(p) {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		v := strings.TrimSuffix(rel, ".safetensors") + variantSuffix
		if _, err := os.Stat(filepath.Join(src, v)); err == nil {
			return nil // stored (a folder that keeps its variants): copied above
		}
		writeVariant(t, Tiny+"/"+filepath.ToSlash(v), p, filepath.Join(dst, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TinyBin returns the tiny model as torch .bin checkpoints: a folder in
// t.TempDir() holding blipdiffusion-tiny with each component that has a
// checkpoint in blipdiffusion-tiny-bin (see BinComponents) read from it
// instead of from its safetensors file. A test-data folder whose
// blipdiffusion-tiny-bin is a whole model folder is returned as it is.
func TinyBin(t testing.TB) string {
	t.Helper()
	bin := Path(t, TinyBinDir)
	if _, err := os.Stat(filepath.Join(bin, "model_index.json")); err == nil {
		return bin
	}
	comps := BinComponents(t)
	dst := t.TempDir()
	copyTree(t, Path(t, Tiny), dst, func(rel string) bool {
		c, file, _ := strings.Cut(filepath.ToSlash(rel), "/")
		return !(comps[c] && strings.HasSuffix(file, ".safetensors"))
	})
	copyTree(t, bin, dst, nil)
	return dst
}

// BinComponents lists the components whose weights blipdiffusion-tiny-bin
// keeps as torch .bin checkpoints.
func BinComponents(t testing.TB) map[string]bool {
	t.Helper()
	bin := Path(t, TinyBinDir)
	ents, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(bin, e.Name(), "*.bin"))
		if len(files) > 0 {
			out[e.Name()] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("golden: no .bin checkpoint in %s", bin)
	}
	return out
}

// copyTree copies the files below src into dst, keeping those keep
// accepts (by path relative to src; nil keeps all).
func copyTree(t testing.TB, src, dst string, keep func(rel string) bool) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if keep == nil || keep(rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, rel := range files {
		if err := copyFile(filepath.Join(src, rel), filepath.Join(dst, rel)); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("golden: %w", err)
	}
	return out.Close()
}
