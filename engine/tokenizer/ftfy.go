// FixText: the part of ftfy's fix_text (ftfy 6.3.1, default settings) that
// CLIP's text cleaning depends on for prompts. transformers' CLIPTokenizer,
// when ftfy is installed, cleans text as whitespace_clean(fix_text(text))
// .lower(), and that is what CLIP scores were computed with; without ftfy
// it falls back to a BERT-style basic tokenizer that splits contractions,
// "?!" and accents differently.
//
// Reproduced, in ftfy's order and repeated until nothing changes:
// unescape_html (HTML5 entities ending in ";", numeric references, and
// ftfy's upper-cased variants such as &EACUTE;; skipped for a line segment
// and all later ones once a segment contains "<"), fix_c1_controls
// (U+0080–U+009F decoded as Windows-1252), fix_latin_ligatures,
// fix_character_width, uncurl_quotes, fix_line_breaks,
// remove_terminal_escapes, remove_control_chars, NFC. Not reproduced:
// fix_encoding's mojibake repair ("cafÃ©" stays as it is), which needs
// ftfy's statistical badness heuristic; fix_surrogates has nothing to do
// on Go strings.
package tokenizer

import (
	"html"
	"strings"
	"unicode/utf8"
)

// FixText applies the ftfy subset described above.
func FixText(text string) string {
	unescape := true
	var out strings.Builder
	for text != "" {
		seg := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			seg = text[:i+1]
		}
		text = text[len(seg):]
		// As ftfy: a segment with "<" may be HTML, and unescaping stays off
		// from then on.
		if unescape && strings.Contains(seg, "<") {
			unescape = false
		}
		out.WriteString(fixSegment(seg, unescape))
	}
	return out.String()
}

func fixSegment(s string, unescape bool) string {
	for {
		orig := s
		if unescape {
			s = unescapeHTML(s)
		}
		s = mapRunes(s, func(r rune) (string, bool) {
			if r >= 0x80 && r <= 0x9F {
				return string(windows1252C1[r-0x80]), true
			}
			return "", false
		})
		s = mapRunes(s, func(r rune) (string, bool) { v, ok := ftfyLigatures[r]; return v, ok })
		s = mapRunes(s, func(r rune) (string, bool) { v, ok := ftfyWidth[r]; return v, ok })
		s = mapRunes(s, func(r rune) (string, bool) {
			switch {
			case r == 0x2BC || r >= 0x2018 && r <= 0x201B:
				return "'", true
			case r >= 0x201C && r <= 0x201F:
				return `"`, true
			}
			return "", false
		})
		s = fixLineBreaks(s)
		s = removeTerminalEscapes(s)
		s = mapRunes(s, func(r rune) (string, bool) {
			if r <= 0x08 || r == 0x0B || r >= 0x0E && r <= 0x1F || r == 0x7F ||
				r >= 0x206A && r <= 0x206F || r == 0xFEFF || r >= 0xFFF9 && r <= 0xFFFC {
				return "", true
			}
			return "", false
		})
		s = NFC(s)
		if s == orig {
			return s
		}
	}
}

// windows1252C1 is sloppy-windows-1252 for bytes 0x80–0x9F: the five
// unassigned bytes map to the same code point.
var windows1252C1 = [32]rune{
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
}

// mapRunes replaces each rune f maps (ok) by its string (possibly empty).
func mapRunes(s string, f func(rune) (string, bool)) string {
	var b *strings.Builder
	for i, r := range s {
		v, ok := f(r)
		if !ok {
			if b != nil {
				b.WriteRune(r)
			}
			continue
		}
		if b == nil {
			b = &strings.Builder{}
			b.Grow(len(s))
			b.WriteString(s[:i])
		}
		b.WriteString(v)
	}
	if b == nil {
		return s
	}
	return b.String()
}

// fixLineBreaks is ftfy's fix_line_breaks: CRLF, CR, U+2028, U+2029 and
// U+0085 become "\n".
func fixLineBreaks(s string) string {
	if !strings.ContainsAny(s, "\r\u2028\u2029\u0085") {
		return s
	}
	return strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n").Replace(s)
}

// removeTerminalEscapes drops ANSI sequences ESC [ (digits|;)* letter.
func removeTerminalEscapes(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "\x1b[") {
			j := i + 2
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == ';') {
				j++
			}
			if j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				i = j + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// unescapeHTML replaces every match of &#?[0-9A-Za-z]{1,24}; that ftfy
// decodes; anything else is left as it is.
func unescapeHTML(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '&' {
			j := i + 1
			if j < len(s) && s[j] == '#' {
				j++
			}
			k := j
			for k < len(s) && k-j < 24 && isASCIIAlnum(s[k]) {
				k++
			}
			if k > j && k < len(s) && s[k] == ';' {
				m := s[i : k+1]
				b.WriteString(unescapeEntity(m))
				i = k + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// unescapeEntity is ftfy's _unescape_fixup for one match m = "&…;".
func unescapeEntity(m string) string {
	if strings.HasPrefix(m, "&#") {
		// html.unescape, kept only when it consumed the semicolon.
		if r := html.UnescapeString(m); !strings.Contains(r, ";") {
			return r
		}
		return m
	}
	if r := html.UnescapeString(m); wholeEntity(m, r) {
		return r
	}
	// ftfy also decodes the upper-cased name of an all-lower-case entity
	// (&EACUTE; → É) when that spelling means nothing to html.unescape.
	name := m[1 : len(m)-1]
	lower := strings.ToLower(name)
	if lower != name && strings.ToUpper(name) == name && html.UnescapeString(m) == m {
		lm := "&" + lower + ";"
		if r := html.UnescapeString(lm); wholeEntity(lm, r) {
			return pyUpper(r)
		}
	}
	return m
}

// wholeEntity reports whether unescaping m gave r by the entity m names
// in full: a shorter legacy entity (&amp in &ampx;) leaves the rest of the
// name and its semicolon behind.
func wholeEntity(m, r string) bool {
	if r == m {
		return false
	}
	if len(r) >= 2 && r[len(r)-1] == ';' && isASCIIAlnum(r[len(r)-2]) {
		return false
	}
	return true
}

func isASCIIAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// pyUpper is Python's str.upper() for the characters HTML entities name:
// the simple mapping plus the full special cases among them.
func pyUpper(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case 'ß':
			b.WriteString("SS")
		case 0x149: // ŉ
			b.WriteString("\u02BCN")
		case 0x1F0: // ǰ
			b.WriteString("J\u030C")
		case 0x390: // ΐ
			b.WriteString("\u0399\u0308\u0301")
		case 0x3B0: // ΰ
			b.WriteString("\u03A5\u0308\u0301")
		case 0xFB00, 0xFB01, 0xFB02, 0xFB03, 0xFB04:
			b.WriteString([...]string{"FF", "FI", "FL", "FFI", "FFL"}[r-0xFB00])
		default:
			b.WriteString(strings.ToUpper(string(r)))
		}
	}
	if !utf8.ValidString(b.String()) {
		return s
	}
	return b.String()
}
