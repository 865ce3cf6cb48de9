// synthwrite.go writes a planned synthetic checkpoint as a diffusers folder
// (model_index.json, configs, tokenizer files, one fp16 safetensors file
// per model component) and packs it. Each safetensors file is streamed:
// the header first (every offset is known from the plan), then each
// tensor's values generated and written a chunk at a time, so memory stays
// at a few MiB whatever the file's size (the UNet's is 1.7 GB).
package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"harmony/loader"
)

// WriteOptions configure Write.
type WriteOptions struct {
	// Tokenizer holds tokenizer/vocab.json, merges.txt,
	// special_tokens_map.json and tokenizer_config.json (the bundled demo
	// pack has the real CLIP files).
	Tokenizer fs.FS
	// Progress is told the bytes of tensor data written so far and the total.
	Progress func(done, total int64)
}

// TokenizerFiles are the CLIP tokenizer files copied into the checkpoint.
var TokenizerFiles = []string{"tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json"}

// chunkElems is how many values are generated and written at once.
const chunkElems = 1 << 18

// Write writes s as a diffusers folder in dir.
func (s *Synth) Write(ctx context.Context, dir string, opt WriteOptions) error {
	small := map[string][]byte{"model_index.json": s.ModelIndex}
	table := s.table()
	for c, b := range s.Configs {
		comp, ok := table.Component(c)
		if !ok {
			return fmt.Errorf("bench: synth: no component %q", c)
		}
		small[comp.ConfigFile] = b
	}
	if opt.Tokenizer == nil {
		return fmt.Errorf("bench: synth: no tokenizer files given")
	}
	for _, name := range TokenizerFiles {
		b, err := fs.ReadFile(opt.Tokenizer, name)
		if err != nil {
			return fmt.Errorf("bench: synth: %w", err)
		}
		small[name] = b
	}
	for name, b := range small {
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(name)), func(w io.Writer) error {
			_, err := w.Write(b)
			return err
		}); err != nil {
			return err
		}
	}
	total := s.Bytes()
	var done int64
	for _, c := range table.Models() {
		var ts []Tensor
		for _, t := range s.Tensors {
			if t.Component == c.Name {
				ts = append(ts, t)
			}
		}
		name := filepath.Join(dir, filepath.FromSlash(c.WeightFile))
		progress := func(n int64) {
			done += n
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		err := writeFile(name, func(w io.Writer) error {
			if strings.HasSuffix(name, ".pt") {
				return writeTorchZip(ctx, w, strings.TrimSuffix(filepath.Base(name), ".pt"), ts, progress)
			}
			return writeSafetensors(ctx, w, ts, progress)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a file under a temporary name and renames it when
// complete, so that an interrupted run never leaves a file that looks whole.
func writeFile(name string, fill func(w io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	bw := bufio.NewWriterSize(f, 4<<20)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name+".tmp", name)
	}
	if err != nil {
		os.Remove(name + ".tmp")
		return fmt.Errorf("bench: writing %s: %w", name, err)
	}
	return nil
}

// writeSafetensors streams a safetensors file: header, then each tensor's
// values chunk by chunk (F16, or I64 for position_ids).
func writeSafetensors(ctx context.Context, w io.Writer, ts []Tensor, progress func(n int64)) error {
	entries := make([]loader.SafetensorsEntry, len(ts))
	for i, t := range ts {
		entries[i] = loader.SafetensorsEntry{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	meta := map[string]string{"format": "pt", "harmony": "synthetic random weights (harmony synth)"}
	if err := loader.WriteSafetensorsHeader(w, entries, meta); err != nil {
		return err
	}
	vals := make([]float32, chunkElems)
	raw := make([]byte, 8*chunkElems)
	for _, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		v := NewValues(t.Component, t.Name, t.Shape)
		for left := t.Numel(); left > 0; {
			n := int(min(left, chunkElems))
			v.Fill(vals[:n])
			var out []byte
			switch t.DType {
			case loader.F16:
				out = raw[:2*n]
				for i, f := range vals[:n] {
					binary.LittleEndian.PutUint16(out[2*i:], f16Bits(f))
				}
			case loader.I64:
				out = raw[:8*n]
				for i, f := range vals[:n] {
					binary.LittleEndian.PutUint64(out[8*i:], uint64(int64(f)))
				}
			default:
				return fmt.Errorf("bench: synth: %s: dtype %s", t.Name, t.DType)
			}
			if _, err := w.Write(out); err != nil {
				return err
			}
			progress(int64(len(out)))
			left -= int64(n)
		}
	}
	return nil
}
