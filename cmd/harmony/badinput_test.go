// badinput_test.go: the hostile-input suite. Each case builds its bad input
// on the fly (from the tiny test model and photo), runs the harmony binary
// as a user would, and checks that it fails the way it should: the exit
// status, a message naming the file, tensor, field or option at fault, no
// panic or goroutine dump, no hang (a time bound per case), and no damage
// to what was there before (the output folder is seeded with a good
// harmony.png whose bytes must survive every failing run, with nothing
// else left beside it). The CLI runs natively only.

//go:build !js

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/loader"
	"harmony/loader/golden"
)

// caseTimeout bounds one run: the tiny model at 48×32 and 2 steps takes a
// few seconds even on a software adapter; a run past this is a hang.
const caseTimeout = 90 * time.Second

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// harmonyBinary builds the command once for the whole package run.
func harmonyBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "harmony-badinput-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "harmony")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	require.NoError(t, binErr)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// badEnv is one case's inputs and output folder.
type badEnv struct {
	t      *testing.T
	tmp    string // scratch for the case's inputs
	model  string // the tiny model folder
	photo  string // a good photo
	outDir string // seeded with seed as harmony.png
	seed   []byte
}

// gen is a generate command line on the tiny model that succeeds as is;
// extra flags come last, so they override.
func (e *badEnv) gen(extra ...string) []string {
	args := []string{"generate", "--model", e.model, "--image", e.photo, "--steps", "2",
		"--width", "48", "--height", "32", "--quiet", "--out-dir", e.outDir}
	return append(args, extra...)
}

// quick is gen at the least cost, for cases about inputs that any method
// reads: plain BLIP-Diffusion, one step, no guidance. It writes
// blipdiffusion.png.
func (e *badEnv) quick(extra ...string) []string {
	return e.gen(append([]string{"--method", "blipdiffusion", "--guidance", "1", "--steps", "1"}, extra...)...)
}

func (e *badEnv) file(name string, data []byte) string {
	p := filepath.Join(e.tmp, name)
	require.NoError(e.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(e.t, os.WriteFile(p, data, 0o644))
	return p
}

// modelCopy is a copy of the tiny model (each file linked, so a case
// replaces only the files it changes) under name; edit changes files by
// path relative to the model folder.
func (e *badEnv) modelCopy(name, from string, edit map[string]func([]byte) []byte) string {
	dst := filepath.Join(e.tmp, name)
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		out := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if f, ok := edit[filepath.ToSlash(rel)]; ok {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, f(data), 0o644)
		}
		return os.Symlink(p, out)
	})
	require.NoError(e.t, err)
	return dst
}

// setF32 sets element 0 of a float32 tensor in a safetensors file.
func setF32(t *testing.T, tensor string, v float32) func([]byte) []byte {
	return func(data []byte) []byte {
		f, err := loader.ParseSafetensorsData(data, "unet")
		require.NoError(t, err)
		_, ti, err := f.Raw(tensor)
		require.NoError(t, err)
		require.Equal(t, loader.F32, ti.DType)
		out := bytes.Clone(data)
		binary.LittleEndian.PutUint32(out[ti.Offset:], math.Float32bits(v))
		return out
	}
}

// setAllF32 sets every element of a float32 tensor in a safetensors file.
func setAllF32(t *testing.T, tensor string, v float32) func([]byte) []byte {
	return func(data []byte) []byte {
		f, err := loader.ParseSafetensorsData(data, "weights")
		require.NoError(t, err)
		_, ti, err := f.Raw(tensor)
		require.NoError(t, err)
		require.Equal(t, loader.F32, ti.DType)
		out := bytes.Clone(data)
		for i := ti.Offset; i < ti.Offset+ti.Size; i += 4 {
			binary.LittleEndian.PutUint32(out[i:], math.Float32bits(v))
		}
		return out
	}
}

// setConfig sets a field of a JSON config.
func setConfig(t *testing.T, field string, v any) func([]byte) []byte {
	return func(data []byte) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		m[field] = v
		out, err := json.Marshal(m)
		require.NoError(t, err)
		return out
	}
}

func encodePNG(t *testing.T, m image.Image) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, m))
	return buf.Bytes()
}

// hugePNG is a valid PNG signature and IHDR claiming 100000×100000 pixels,
// with no image data: a decoder must refuse it from the header alone.
func hugePNG() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 100000)
	binary.BigEndian.PutUint32(ihdr[4:], 100000)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32IEEE(append([]byte(typ), data...)))
	}
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}

func crc32IEEE(p []byte) uint32 {
	crc := ^uint32(0)
	for _, x := range p {
		crc ^= uint32(x)
		for k := 0; k < 8; k++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xedb88320
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// cmykJPEG is a hand-built 8×8 baseline JPEG with four components and an
// Adobe marker (transform 0: plain CMYK), as Photoshop writes for print;
// Go's encoder writes no CMYK. Every block is flat: one Huffman code for
// DC difference 0 and one for end-of-block, a bit each.
func cmykJPEG() []byte {
	var b bytes.Buffer
	seg := func(marker byte, data []byte) {
		b.Write([]byte{0xff, marker})
		binary.Write(&b, binary.BigEndian, uint16(len(data)+2))
		b.Write(data)
	}
	b.Write([]byte{0xff, 0xd8})
	seg(0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0})
	dqt := append([]byte{0}, bytes.Repeat([]byte{1}, 64)...)
	seg(0xdb, dqt)
	sof := []byte{8, 0, 8, 0, 8, 4}
	for id := byte(1); id <= 4; id++ {
		sof = append(sof, id, 0x11, 0)
	}
	seg(0xc0, sof)
	table := func(class byte) []byte {
		t := make([]byte, 1+16+1)
		t[0], t[1] = class<<4, 1 // one code of length 1, for symbol 0
		return t
	}
	seg(0xc4, table(0))
	seg(0xc4, table(1))
	sos := []byte{4}
	for id := byte(1); id <= 4; id++ {
		sos = append(sos, id, 0)
	}
	seg(0xda, append(sos, 0, 63, 0))
	b.WriteByte(0x00) // 4 blocks × (DC "0" + EOB "0")
	b.Write([]byte{0xff, 0xd9})
	return b.Bytes()
}

// forbiddenPickle is a PyTorch zip checkpoint whose data.pkl is a dict
// holding os.system("echo pwned") where a tensor should be.
func forbiddenPickle(t *testing.T) []byte {
	var pkl bytes.Buffer
	str := func(s string) {
		pkl.WriteByte('X')
		binary.Write(&pkl, binary.LittleEndian, uint32(len(s)))
		pkl.WriteString(s)
	}
	pkl.WriteString("\x80\x02}(")
	str("conv_in.weight")
	pkl.WriteString("cos\nsystem\n")
	str("echo pwned")
	pkl.WriteString("\x85Ru.")
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	for _, e := range []struct{ name, data string }{{"archive/data.pkl", pkl.String()}, {"archive/version", "3\n"}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		require.NoError(t, err)
		w.Write([]byte(e.data))
	}
	require.NoError(t, zw.Close())
	return z.Bytes()
}

func latentsFile(t *testing.T, e *badEnv, bad float32) string {
	v := make([]float32, 4*4*6) // [1, 4, 32/8, 48/8]
	for i := range v {
		v[i] = float32(i%7) / 7
	}
	v[5] = bad
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	var buf bytes.Buffer
	require.NoError(t, loader.WriteSafetensors(&buf, []loader.SafetensorsTensor{{Name: "latents", DType: loader.F32, Shape: []int{1, 4, 4, 6}, Data: raw}}, nil))
	return e.file("bad-latents.safetensors", buf.Bytes())
}

// badCase is one hostile input.
type badCase struct {
	class string // numbers, files, images, messages, faults
	name  string
	args  func(e *badEnv) []string
	code  int      // exit status
	want  []string // in stderr
	// notWant must not be in stderr.
	notWant []string
	// ok: the run succeeds and writes blipdiffusion.png beside the
	// seeded harmony.png (quick), which it leaves alone.
	ok bool
	// skip returns why the case cannot run here ("" to run it).
	skip func(e *badEnv) string
	// during runs while the process runs (the SIGINT case).
	during func(t *testing.T, cmd *exec.Cmd, stderr *syncBuffer)
}

func badCases(t *testing.T) []badCase {
	gray := image.NewGray(image.Rect(0, 0, 40, 30))
	deep := image.NewRGBA64(image.Rect(0, 0, 40, 30))
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			gray.SetGray(x, y, color.Gray{uint8(x * 6)})
			deep.SetRGBA64(x, y, color.RGBA64{uint16(x * 1600), uint16(y * 2100), 30000, 0xffff})
		}
	}
	longPrompt := strings.Repeat("with a very long and winding description of everything around it, ", 8) + "LASTWORD"
	return []badCase{
		// Numbers.
		{class: "numbers", name: "guidance NaN", args: func(e *badEnv) []string { return e.gen("--guidance", "NaN") }, code: 2, want: []string{"--guidance", "finite"}},
		{class: "numbers", name: "guidance Inf", args: func(e *badEnv) []string { return e.gen("--guidance", "Inf") }, code: 2, want: []string{"--guidance", "finite"}},
		{class: "numbers", name: "guidance 1e30", args: func(e *badEnv) []string { return e.gen("--guidance", "1e30") }, code: 2, want: []string{"--guidance"}},
		{class: "numbers", name: "mask threshold NaN", args: func(e *badEnv) []string { return e.gen("--mask-threshold", "NaN") }, code: 2, want: []string{"--mask-threshold", "finite"}},
		{class: "numbers", name: "width -16", args: func(e *badEnv) []string { return e.gen("--width", "-16") }, code: 2, want: []string{"--width"}},
		{class: "numbers", name: "width 100000", args: func(e *badEnv) []string { return e.gen("--width", "100000") }, code: 2, want: []string{"--width"}},
		{class: "numbers", name: "width 1 (under a latent block)", args: func(e *badEnv) []string { return e.gen("--width", "1") }, code: 2, want: []string{"--width", "multiple"}},
		{class: "numbers", name: "steps 0", args: func(e *badEnv) []string { return e.gen("--steps", "0") }, code: 2, want: []string{"--steps"}},
		{class: "numbers", name: "NaN in a weight", args: func(e *badEnv) []string {
			m := e.modelCopy("nan-model", e.model, map[string]func([]byte) []byte{
				"unet/diffusion_pytorch_model.safetensors": setF32(e.t, "conv_in.weight", float32(math.NaN()))})
			return e.gen("--model", m)
		}, code: 1, want: []string{"conv_in.weight", "NaN", "diffusion_pytorch_model.safetensors"}},
		{class: "numbers", name: "UNet output overflows", args: func(e *badEnv) []string {
			m := e.modelCopy("hot-unet", e.model, map[string]func([]byte) []byte{
				"unet/diffusion_pytorch_model.safetensors": setAllF32(e.t, "conv_out.weight", 3e38)})
			return e.quick("--model", m)
		}, code: 1, want: []string{"denoise step 1", "noise prediction"}},
		{class: "numbers", name: "VAE output overflows", args: func(e *badEnv) []string {
			m := e.modelCopy("hot-vae", e.model, map[string]func([]byte) []byte{
				"vae/diffusion_pytorch_model.safetensors": setAllF32(e.t, "decoder.conv_out.weight", 3e38)})
			return e.quick("--model", m)
		}, code: 1, want: []string{"decode", "image"}},
		{class: "numbers", name: "NaN in --latents", args: func(e *badEnv) []string {
			return e.gen("--latents", latentsFile(e.t, e, float32(math.NaN())))
		}, code: 1, want: []string{"--latents", "bad-latents.safetensors", "NaN"}},
		{class: "numbers", name: "pack 1e6 weight", args: func(e *badEnv) []string {
			m := e.modelCopy("big-model", e.model, map[string]func([]byte) []byte{
				"unet/diffusion_pytorch_model.safetensors": setF32(e.t, "conv_in.weight", 1e6)})
			return []string{"pack", "--model", m, "--out", filepath.Join(e.tmp, "pack"), "-q"}
		}, code: 1, want: []string{"conv_in.weight", "65504", "--allow-overflow"}},
		{class: "numbers", name: "pack 1e6 weight --allow-overflow", args: func(e *badEnv) []string {
			m := e.modelCopy("big-model", e.model, map[string]func([]byte) []byte{
				"unet/diffusion_pytorch_model.safetensors": setF32(e.t, "conv_in.weight", 1e6)})
			return []string{"pack", "--allow-overflow", "--model", m, "--out", filepath.Join(e.tmp, "pack"), "-q"}
		}, code: 0, want: []string{"wrote"}},

		// Images.
		{class: "images", name: "zero-byte photo", args: func(e *badEnv) []string { return e.gen("--image", e.file("empty.png", nil)) }, code: 1, want: []string{"empty.png", "empty"}},
		{class: "images", name: "not an image", args: func(e *badEnv) []string {
			return e.gen("--image", e.file("notes.png", []byte("these are my notes, not a picture\n")))
		}, code: 1, want: []string{"notes.png"}},
		{class: "images", name: "PNG claiming 100000×100000", args: func(e *badEnv) []string { return e.gen("--image", e.file("huge.png", hugePNG())) }, code: 1, want: []string{"huge.png", "100000"}},
		{class: "images", name: "16-bit PNG", args: func(e *badEnv) []string { return e.quick("--image", e.file("deep.png", encodePNG(e.t, deep))) }, ok: true},
		{class: "images", name: "grayscale PNG", args: func(e *badEnv) []string { return e.quick("--image", e.file("gray.png", encodePNG(e.t, gray))) }, ok: true},
		{class: "images", name: "CMYK JPEG", args: func(e *badEnv) []string { return e.quick("--image", e.file("cmyk.jpg", cmykJPEG())) }, ok: true},

		// Files.
		{class: "files", name: "missing output folder is created", args: func(e *badEnv) []string {
			return e.quick("--out-dir", filepath.Join(e.outDir, "new", "deeper"))
		}, code: 0, want: []string{"wrote"}},
		{class: "files", name: "file in place of --out-dir", args: func(e *badEnv) []string {
			return e.gen("--out-dir", filepath.Join(e.outDir, "harmony.png"))
		}, code: 1, want: []string{"--out-dir", "not a folder"}},
		{class: "files", name: "file in place of --out-dir's parent", args: func(e *badEnv) []string {
			return e.gen("--out-dir", filepath.Join(e.outDir, "harmony.png", "sub"))
		}, code: 1, want: []string{"--out-dir", "not a folder"}},
		{class: "files", name: "file in place of --dump's folder", args: func(e *badEnv) []string {
			return e.gen("--dump", filepath.Join(e.outDir, "harmony.png", "run.safetensors"))
		}, code: 1, want: []string{"--dump", "not a folder"}},
		{class: "files", name: "read-only --out-dir", skip: func(e *badEnv) string { return readOnlyDir(e) }, args: func(e *badEnv) []string {
			return e.gen("--out-dir", filepath.Join(e.tmp, "ro"))
		}, code: 1, want: []string{"--out-dir", "cannot write"}},
		{class: "files", name: "full disk", skip: func(e *badEnv) string { return fullDisk(e) }, args: func(e *badEnv) []string {
			return e.gen("--out-dir", filepath.Join(e.tmp, "full"))
		}, code: 1, want: []string{"--out-dir", "free"}},

		// Messages.
		{class: "messages", name: "--model names a file", args: func(e *badEnv) []string {
			return e.gen("--model", filepath.Join(e.model, "unet", "config.json"))
		}, code: 1, want: []string{"--model", "config.json", "is a file", "expected a model folder"}},
		{class: "messages", name: "forbidden pickle", args: func(e *badEnv) []string {
			m := e.modelCopy("pickle-model", golden.TinyBin(e.t), map[string]func([]byte) []byte{
				"vae/diffusion_pytorch_model.bin": func([]byte) []byte { return forbiddenPickle(e.t) }})
			return e.gen("--model", m)
		}, code: 1, want: []string{"os.system", "refused"}},
		{class: "messages", name: "sample_size -16", args: func(e *badEnv) []string {
			m := e.modelCopy("ss-model", e.model, map[string]func([]byte) []byte{"unet/config.json": setConfig(e.t, "sample_size", -16)})
			args := e.gen("--model", m)
			return slicesDelete(args, "--width", "--height")
		}, code: 1, want: []string{"sample_size", "-16"}},
		{class: "messages", name: "long prompt", args: func(e *badEnv) []string { return e.quick("--prompt", longPrompt) }, ok: true, want: []string{"truncated", "lastword"}, notWant: []string{longPrompt[:200]}},

		// Faults.
		{class: "faults", name: "SIGINT mid-step", args: func(e *badEnv) []string {
			args := slicesDelete(e.gen("--steps", "1000"), "--quiet")
			return args
		}, code: 1, want: []string{"interrupted"}, during: interruptAfterStart},
	}
}

// slicesDelete drops each named flag and its value from args.
// configCases is the "configs" class: a tiny model copy with one config
// field set to 0, −1 or 10⁹, which generate must refuse with exit status 1
// and a message naming the file, the field and the value (no panic, no
// hang, no allocation of what the value implies). The in-process sweeps
// (engine/models/catalog, engine/sched, engine/imageproc) cover every
// field; this checks a few of each component through the whole command.
func configCases(t *testing.T) []badCase {
	fields := []struct{ file, field string }{
		{"unet/config.json", "norm_num_groups"},
		{"unet/config.json", "layers_per_block"},
		{"unet/config.json", "attention_head_dim"},
		{"vae/config.json", "layers_per_block"},
		{"text_encoder/config.json", "num_hidden_layers"},
		{"qformer/config.json", "num_query_tokens"},
		{"scheduler/scheduler_config.json", "num_train_timesteps"},
		{"image_processor/preprocessor_config.json", "resample"},
		{"model_index.json", "ctx_begin_pos"},
	}
	var out []badCase
	for _, f := range fields {
		for _, v := range []int{0, -1, 1_000_000_000} {
			out = append(out, badCase{class: "configs", name: fmt.Sprintf("%s %s %d", f.file, f.field, v),
				args: func(e *badEnv) []string {
					m := e.modelCopy("cfg-model", e.model, map[string]func([]byte) []byte{f.file: setConfig(e.t, f.field, v)})
					return e.gen("--model", m)
				}, code: 1, want: []string{f.file, f.field, fmt.Sprint(v)}})
		}
	}
	return out
}

func slicesDelete(args []string, flags ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		drop := false
		for _, f := range flags {
			if args[i] == f {
				drop = true
			}
		}
		switch {
		case drop && args[i] == "--quiet":
		case drop:
			i++
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// interruptAfterStart sends SIGINT once denoising is under way.
func interruptAfterStart(t *testing.T, cmd *exec.Cmd, stderr *syncBuffer) {
	deadline := time.Now().Add(caseTimeout / 2)
	for !strings.Contains(stderr.String(), "UNet call") {
		if time.Now().After(deadline) {
			t.Errorf("denoising never started: %s", stderr.String())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func listDir(t *testing.T, dir string) []string {
	var names []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

func TestBadInputs(t *testing.T) {
	needGPU(t)
	model := golden.Path(t, "blipdiffusion-tiny")
	photo := golden.Path(t, "inputs", "reference_96x64.png")
	bin := harmonyBinary(t)
	seed := encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 4)))
	start := time.Now()
	counts := map[string]int{}
	for _, c := range append(badCases(t), configCases(t)...) {
		t.Run(c.class+"/"+c.name, func(t *testing.T) {
			tmp := t.TempDir()
			e := &badEnv{t: t, tmp: tmp, model: model, photo: photo, outDir: filepath.Join(tmp, "out"), seed: seed}
			require.NoError(t, os.MkdirAll(e.outDir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(e.outDir, "harmony.png"), seed, 0o644))
			if c.skip != nil {
				if why := c.skip(e); why != "" {
					t.Skip(why)
				}
			}
			counts[c.class]++
			args := c.args(e)
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			var stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			t0 := time.Now()
			require.NoError(t, cmd.Start())
			if c.during != nil {
				c.during(t, cmd, &stderr)
			}
			err := cmd.Wait()
			msg := stderr.String()
			t.Logf("%v, exit %d:\n%s", time.Since(t0).Round(time.Millisecond), cmd.ProcessState.ExitCode(), msg)
			require.NoError(t, ctx.Err(), "no answer within %v: a hang", caseTimeout)
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			require.NotContains(t, msg, "panic:")
			require.NotContains(t, msg, "goroutine ")
			for _, w := range c.want {
				require.Contains(t, msg, w)
			}
			for _, w := range c.notWant {
				require.NotContains(t, msg, w)
			}
			if c.ok {
				require.Equal(t, 0, cmd.ProcessState.ExitCode())
				require.Equal(t, []string{"blipdiffusion.png", "harmony.png"}, listDir(t, e.outDir))
				got, err := os.ReadFile(filepath.Join(e.outDir, "harmony.png"))
				require.NoError(t, err)
				require.Equal(t, seed, got, "another method's run changed harmony.png")
				return
			}
			require.Equal(t, c.code, cmd.ProcessState.ExitCode())
			if c.code == 0 {
				return // the run wrote elsewhere (a pack, a new folder)
			}
			got, err := os.ReadFile(filepath.Join(e.outDir, "harmony.png"))
			require.NoError(t, err)
			require.Equal(t, seed, got, "the existing harmony.png was changed")
			require.Equal(t, []string{"harmony.png"}, listDir(t, e.outDir), "a failed run left files behind")
			if strings.HasPrefix(c.name, "pack") {
				_, err := os.Stat(filepath.Join(tmp, "pack", loader.ManifestName))
				require.Error(t, err, "a refused pack wrote its manifest")
			}
		})
	}
	t.Logf("bad-input cases by class: %v, in %v", counts, time.Since(start).Round(time.Second))
}
