// Dropped files: the next frame opens the first one that decodes as a
// photo, shows its path in the photo field, and reports the error of the
// first file when none does.
package ui

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
)

func TestDrop(t *testing.T) {
	a := state.New(state.Config{CacheDir: t.TempDir()})
	t.Cleanup(a.Close)
	r := &renderer{t: t}
	u := New(a, "", "")
	dir := t.TempDir()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 7, 5))))
	photo, text := filepath.Join(dir, "p.png"), filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(photo, buf.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(text, []byte("words"), 0o644))

	type report struct {
		path string
		err  error
	}
	var got []report
	opened := func(p string, err error) { got = append(got, report{p, err}) }

	// Nothing decodes: the first file's error, in the note and to opened.
	u.Drop([]string{text, filepath.Join(dir, "missing.png")}, opened)
	r.frame(u, "")
	require.Len(t, got, 1)
	require.ErrorContains(t, got[0].err, "notes.txt")
	require.Contains(t, u.note, "notes.txt")
	require.True(t, u.noteErr)
	require.Equal(t, "demo photo", a.Snapshot().Photo.Name) // unchanged

	// The first file that decodes wins; the drop is taken once.
	u.Drop([]string{text, photo}, opened)
	r.frame(u, "")
	r.frame(u, "")
	require.Len(t, got, 2)
	require.Equal(t, report{photo, nil}, got[1])
	p := a.Snapshot().Photo
	require.NotNil(t, p)
	require.Equal(t, []any{"p.png", 7, 5}, []any{p.Name, p.Width, p.Height})
	require.Equal(t, photo, u.PhotoFile())
	require.Equal(t, photo, u.photoPath.Text())
	require.Empty(t, u.note)
}
