package loader_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"harmony/loader"
)

// rezip rewrites a zip, letting edit change each entry's method or drop it
// (return false).
func rezip(t *testing.T, path string, edit func(h *zip.FileHeader) bool) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		h := f.FileHeader
		if !edit(&h) {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.CreateHeader(&h)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, r)
		r.Close()
	}
	zr.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tensorOffset finds a tensor's absolute offset in a .bin and the zip
// entry (storage) holding it.
func tensorOffset(t *testing.T, path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tf, err := loader.ReadTorchZip(f, st.Size(), path)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := tf.Resolve(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range abs {
		if ti.Name == name {
			return ti.Offset
		}
	}
	t.Fatalf("no tensor %s", name)
	return 0
}

func flipByte(t *testing.T, path string, at int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x10
	os.WriteFile(path, b, 0o644)
}

func truncate(t *testing.T, path string, by int64) {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Truncate(path, st.Size()-by)
}

// TestErrors breaks copies of the tiny folders and a pack in every way the
// issue lists; each error has its type and names the file (and tensor).
func TestErrors(t *testing.T) {
	st, bin := tinyDirs(t)
	const qformerBin = "qformer/pytorch_model.bin"
	const vaeBin = "vae/diffusion_pytorch_model.bin"
	const vaeST = "vae/diffusion_pytorch_model.safetensors"
	cases := []struct {
		name   string
		from   string // "st", "bin" or "pack"
		breakf func(t *testing.T, dir string)
		check  func(err error) bool
		file   string // the error must mention it
		tensor string // and this tensor, if set
	}{
		{"truncated bin", "bin", func(t *testing.T, d string) { truncate(t, filepath.Join(d, qformerBin), 100) }, isFormat, qformerBin, ""},
		{"corrupt bin data", "bin", func(t *testing.T, d string) {
			p := filepath.Join(d, qformerBin)
			flipByte(t, p, tensorOffset(t, p, "encoder.layer.0.attention.attention.query.weight")+10)
		}, isFormat, qformerBin, "encoder.layer.0.attention.attention.query.weight"},
		{"compressed entry", "bin", func(t *testing.T, d string) {
			rezip(t, filepath.Join(d, vaeBin), func(h *zip.FileHeader) bool {
				if strings.HasSuffix(h.Name, "/data/0") {
					h.Method = zip.Deflate
				}
				return true
			})
		}, isFormat, vaeBin, "decoder.conv_in.bias"},
		{"missing entry", "bin", func(t *testing.T, d string) {
			rezip(t, filepath.Join(d, vaeBin), func(h *zip.FileHeader) bool { return !strings.HasSuffix(h.Name, "/data/1") })
		}, isFormat, vaeBin, "decoder.conv_in.weight"},
		{"truncated safetensors", "st", func(t *testing.T, d string) { truncate(t, filepath.Join(d, vaeST), 10) }, isFormat, vaeST, ""},
		{"bad config JSON", "st", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, "unet/config.json"), []byte(`{"in_channels": 4,`), 0o644)
		}, isFormat, "unet/config.json", ""},
		{"bad model_index", "st", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, "model_index.json"), []byte(`[`), 0o644)
		}, isFormat, "model_index.json", ""},
		{"missing weights", "st", func(t *testing.T, d string) {
			os.Remove(filepath.Join(d, vaeST))
		}, isNotExist, "vae", ""},
		{"wrong dtype", "st", func(t *testing.T, d string) { addIntTensor(t, filepath.Join(d, vaeST)) }, isKind(loader.TensorDType), vaeST, "decoder.extra.weight"},
		{"shard hash", "pack", func(t *testing.T, d string) { flipByte(t, filepath.Join(d, "shard-00002.bin"), 5000) }, isHash, "shard-00002.bin", ""},
		{"shard missing", "pack", func(t *testing.T, d string) { os.Remove(filepath.Join(d, "shard-00001.bin")) }, isNotExist, "shard-00001.bin", ""},
		{"shard truncated", "pack", func(t *testing.T, d string) { truncate(t, filepath.Join(d, "shard-00000.bin"), 1) }, isFormat, "shard-00000.bin", ""},
		{"tokenizer file changed", "pack", func(t *testing.T, d string) { flipByte(t, filepath.Join(d, "tokenizer/merges.txt"), 10) }, isHash, "tokenizer/merges.txt", ""},
		{"manifest JSON", "pack", func(t *testing.T, d string) { truncate(t, filepath.Join(d, "manifest.json"), 20) }, isFormat, "manifest.json", ""},
		{"manifest bytes", "pack", func(t *testing.T, d string) {
			editManifest(t, d, func(m *loader.Manifest) { m.Tensors[3].Bytes += 2 })
		}, isFormat, "manifest.json", "*"},
		{"manifest dtype", "pack", func(t *testing.T, d string) {
			editManifest(t, d, func(m *loader.Manifest) { m.Tensors[3].DType = loader.I64 })
		}, isKind(loader.TensorDType), "manifest.json", "*"},
	}
	packDir, _ := writePack(t, bin, 1<<20, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			switch c.from {
			case "st":
				copyDir(t, st, dir)
			case "bin":
				copyDir(t, bin, dir)
			case "pack":
				copyDir(t, packDir, dir)
			}
			c.breakf(t, dir)
			_, err := loader.Load(context.Background(), loader.NewDirSource(dir), newBackend(), nil)
			if err == nil || !c.check(err) {
				t.Fatalf("got %T %v", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.FromSlash(c.file)) {
				t.Fatalf("%q does not name %s", msg, c.file)
			}
			if c.tensor != "" && c.tensor != "*" && !strings.Contains(msg, c.tensor) {
				t.Fatalf("%q does not name tensor %s", msg, c.tensor)
			}
			if c.tensor == "*" && !strings.Contains(msg, "tensor") && !strings.Contains(msg, ".") {
				t.Fatalf("%q names no tensor", msg)
			}
			t.Log(msg)
		})
	}
}

func isFormat(err error) bool {
	var e *loader.FormatError
	return errors.As(err, &e)
}

func isHash(err error) bool {
	var e *loader.HashError
	return errors.As(err, &e)
}

func isNotExist(err error) bool {
	var e *loader.SourceError
	return errors.As(err, &e) && errors.Is(err, fs.ErrNotExist)
}

func isKind(k loader.TensorErrorKind) func(error) bool {
	return func(err error) bool {
		var e *loader.TensorError
		return errors.As(err, &e) && e.Kind == k
	}
}

// addIntTensor appends an int32 tensor named like a weight.
func addIntTensor(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := loader.ReadSafetensorsHeader(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []loader.SafetensorsTensor
	for _, ti := range h.Tensors {
		ts = append(ts, loader.SafetensorsTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: data[ti.Offset : ti.Offset+ti.Size]})
	}
	ts = append(ts, loader.SafetensorsTensor{Name: "decoder.extra.weight", DType: loader.I32, Shape: []int{2, 2}, Data: make([]byte, 16)})
	var buf bytes.Buffer
	if err := loader.WriteSafetensors(&buf, ts, h.Metadata); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, buf.Bytes(), 0o644)
}

func editManifest(t *testing.T, dir string, f func(*loader.Manifest)) {
	p := filepath.Join(dir, "manifest.json")
	b, _ := os.ReadFile(p)
	var m loader.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(&m)
	b, _ = json.Marshal(&m)
	os.WriteFile(p, b, 0o644)
}
