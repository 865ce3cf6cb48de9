// paths_test.go: the drop's file list read against a fake DragQueryFileW.
package windrop

import (
	"reflect"
	"testing"
	"unicode/utf16"
)

// fakeQuery answers like DragQueryFileW for the given names; a nil entry
// stands for a name the system refuses (length 0).
func fakeQuery(t *testing.T, names []*string) queryFunc {
	return func(index uint32, buf []uint16) uint32 {
		if index == allFiles {
			return uint32(len(names))
		}
		if int(index) >= len(names) {
			t.Fatalf("query index %d past %d files", index, len(names))
		}
		if names[index] == nil {
			return 0
		}
		u := utf16.Encode([]rune(*names[index]))
		if len(buf) == 0 {
			return uint32(len(u))
		}
		// Like the real call: truncate to the buffer, always NUL-terminate.
		n := copy(buf[:len(buf)-1], u)
		buf[n] = 0
		return uint32(n)
	}
}

func ptr(s string) *string { return &s }

func TestDropPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []*string
		want  []string
	}{
		{"none", nil, nil},
		{"one", []*string{ptr(`C:\Users\a\photo.png`)}, []string{`C:\Users\a\photo.png`}},
		{"order kept", []*string{ptr(`C:\b.jpg`), ptr(`D:\a.png`), ptr(`\\server\share\c.gif`)},
			[]string{`C:\b.jpg`, `D:\a.png`, `\\server\share\c.gif`}},
		{"non-BMP and accents", []*string{ptr(`C:\fotos\été 🐈.png`)}, []string{`C:\fotos\été 🐈.png`}},
		{"refused name skipped", []*string{nil, ptr(`C:\x.png`), nil}, []string{`C:\x.png`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dropPaths(fakeQuery(t, tc.names))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("dropPaths = %q, want %q", got, tc.want)
			}
		})
	}
}

// A name that grows between the size query and the copy (the real call
// truncates) must not come back cut short as a different path.
func TestDropPathsTruncatedSkipped(t *testing.T) {
	calls := 0
	q := func(index uint32, buf []uint16) uint32 {
		switch {
		case index == allFiles:
			return 1
		case len(buf) == 0:
			return 3
		}
		calls++
		return uint32(len(buf)) // more than the announced size
	}
	if got := dropPaths(q); got != nil {
		t.Fatalf("dropPaths = %q, want none", got)
	}
	if calls != 1 {
		t.Fatalf("copy calls = %d, want 1", calls)
	}
}
