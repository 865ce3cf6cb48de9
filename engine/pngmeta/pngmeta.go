// Package pngmeta writes generated pictures as PNG files that carry their
// generation parameters in a text chunk named "parameters", in the layout
// popular Stable Diffusion front ends use (a prompt line, a "Negative
// prompt:" line, then "Key: value" pairs), so image viewers and those
// front ends' "PNG info" tabs show how a picture was made. Every front end
// that saves pictures (the CLI, the desktop app) encodes through here.
package pngmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strconv"
	"strings"
	"unicode/utf8"

	"harmony/engine/pipeline"
)

// Key is the text chunk's keyword, the one the popular front ends read.
const Key = "parameters"

// PNG encodes im with the parameters of the generation that made it: o as
// the generation ran and model naming the model ("" for the bundled demo).
func PNG(im *pipeline.Image, o *pipeline.Options, model string) ([]byte, error) {
	data, err := im.PNG()
	if err != nil {
		return nil, err
	}
	return WithText(data, Key, Parameters(o, model, im.W, im.H))
}

// core are the options the front ends' layout has fields for (and
// preview-every, which changes nothing in the picture); every other
// pipeline option follows them as "Name: value", so a knob added to the
// pipeline shows up here without a change.
var core = map[string]bool{
	"prompt": true, "negative": true, "steps": true, "guidance": true, "seed": true,
	"width": true, "height": true, "scheduler": true, "preview-every": true,
}

// Parameters formats the generation's settings: the prompt, "Negative
// prompt: …" when there is one, then "Steps: N, Sampler: …, CFG scale: …,
// Seed: …, Size: WxH, Model: …" and the remaining pipeline options (the
// Harmony knobs) under their option names in words.
func Parameters(o *pipeline.Options, model string, w, h int) string {
	if model == "" {
		model = "bundled demo model"
	}
	var b strings.Builder
	b.WriteString(o.Prompt)
	if o.Negative != "" {
		b.WriteString("\nNegative prompt: " + o.Negative)
	}
	sampler := o.Scheduler
	if sampler == "" {
		sampler = "pndm"
	}
	pairs := []string{
		"Steps: " + strconv.Itoa(o.Steps),
		"Sampler: " + strings.ToUpper(sampler),
		"CFG scale: " + o.Get("guidance"),
		"Seed: " + o.Get("seed"),
		"Size: " + strconv.Itoa(w) + "x" + strconv.Itoa(h),
		"Model: " + quote(model),
	}
	base := o.Base
	if base == "" {
		base = pipeline.BaseBLIPDiffusion
	}
	for _, info := range pipeline.OptionList() {
		if core[info.Name] || (info.Only != "" && info.Only != base) {
			continue // another base model's knob
		}
		v := o.Get(info.Name)
		if v == "" {
			continue // unset: the pipeline's default
		}
		pairs = append(pairs, words(info.Name)+": "+quote(v))
	}
	b.WriteString("\n" + strings.Join(pairs, ", "))
	return b.String()
}

// words turns an option name into the front ends' key style:
// "mask-threshold" → "Mask threshold".
func words(name string) string {
	s := strings.ReplaceAll(name, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// quote wraps a value that would break the "k: v, k: v" list in JSON-style
// quotes, as the front ends do.
func quote(v string) string {
	if strings.ContainsAny(v, ",:\n\"") {
		return strconv.Quote(v)
	}
	return v
}

var pngSig = []byte("\x89PNG\r\n\x1a\n")

// WithText inserts a text chunk right after the PNG's IHDR: tEXt when the
// text is Latin-1 (what the PNG specification allows there), else an
// uncompressed iTXt, which carries UTF-8.
func WithText(data []byte, key, text string) ([]byte, error) {
	if !bytes.HasPrefix(data, pngSig) || len(data) < len(pngSig)+8 {
		return nil, errors.New("pngmeta: not a PNG")
	}
	if len(key) == 0 || len(key) > 79 || strings.ContainsRune(key, 0) {
		return nil, errors.New("pngmeta: a keyword must be 1 to 79 bytes without NUL")
	}
	ihdrLen := binary.BigEndian.Uint32(data[len(pngSig):])
	if string(data[len(pngSig)+4:len(pngSig)+8]) != "IHDR" {
		return nil, errors.New("pngmeta: the PNG does not start with IHDR")
	}
	end := len(pngSig) + 12 + int(ihdrLen)
	if end > len(data) {
		return nil, errors.New("pngmeta: truncated PNG")
	}
	var chunk []byte
	if latin1, ok := toLatin1(text); ok {
		chunk = makeChunk("tEXt", append(append([]byte(key), 0), latin1...))
	} else {
		// keyword, NUL, compression flag 0, method 0, empty language tag
		// and translated keyword (each NUL-terminated), then UTF-8 text.
		body := append([]byte(key), 0, 0, 0, 0, 0)
		chunk = makeChunk("iTXt", append(body, text...))
	}
	out := make([]byte, 0, len(data)+len(chunk))
	out = append(out, data[:end]...)
	out = append(out, chunk...)
	return append(out, data[end:]...), nil
}

func toLatin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r == utf8.RuneError || r > 0xff || r == 0 {
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}

func makeChunk(typ string, body []byte) []byte {
	c := make([]byte, 8, 12+len(body))
	binary.BigEndian.PutUint32(c, uint32(len(body)))
	copy(c[4:], typ)
	c = append(c, body...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// Text returns the text of the PNG's chunk named key (tEXt or uncompressed
// iTXt), and whether there is one.
func Text(data []byte, key string) (string, bool) {
	if !bytes.HasPrefix(data, pngSig) {
		return "", false
	}
	for p := len(pngSig); p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p:]))
		if n < 0 || p+12+n > len(data) {
			return "", false
		}
		typ, body := string(data[p+4:p+8]), data[p+8:p+8+n]
		k, rest, ok := bytes.Cut(body, []byte{0})
		if ok && string(k) == key {
			switch typ {
			case "tEXt":
				r := make([]rune, len(rest))
				for i, c := range rest {
					r[i] = rune(c)
				}
				return string(r), true
			case "iTXt":
				if len(rest) >= 2 && rest[0] == 0 {
					parts := bytes.SplitN(rest[2:], []byte{0}, 3)
					if len(parts) == 3 {
						return string(parts[2]), true
					}
				}
			}
		}
		p += 12 + n
	}
	return "", false
}

// Parsed is a parameters text read back: the prompt, the negative prompt
// and the "Key: value" pairs (quoted values unquoted).
type Parsed struct {
	Prompt, Negative string
	Fields           map[string]string
}

// Parse reads the text Parameters writes (and the front ends' layout): the
// last line holds the pairs, a line starting "Negative prompt:" the
// negative prompt, and the lines before them the prompt. A text without a
// "Steps: " pairs line is all prompt.
func Parse(text string) Parsed {
	p := Parsed{Fields: map[string]string{}}
	lines := strings.Split(text, "\n")
	if last := lines[len(lines)-1]; len(lines) > 1 && strings.HasPrefix(last, "Steps: ") {
		p.Fields = parsePairs(last)
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "Negative prompt: ") {
			p.Negative = strings.Join(append([]string{strings.TrimPrefix(l, "Negative prompt: ")}, lines[i+1:]...), "\n")
			lines = lines[:i]
			break
		}
	}
	p.Prompt = strings.Join(lines, "\n")
	return p
}

// parsePairs splits "K: v, K: \"v, w\"" into its pairs.
func parsePairs(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ")
		k, rest, ok := strings.Cut(s, ": ")
		if !ok {
			return out
		}
		var v string
		if q, err := strconv.QuotedPrefix(rest); err == nil && strings.HasPrefix(rest, `"`) {
			v, _ = strconv.Unquote(q)
			s = strings.TrimPrefix(rest[len(q):], ",")
		} else {
			v, s, _ = strings.Cut(rest, ", ")
		}
		out[k] = v
	}
}
