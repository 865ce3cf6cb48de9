// Tests of the text/uri-list parsing.
package xdnd

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLocalPaths(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"file:///tmp/a.png\r\n", []string{"/tmp/a.png"}},
		{"# comment\r\nfile:///tmp/my%20photo.jpg\r\nfile://localhost/x/b.webp\r\n", []string{"/tmp/my photo.jpg", "/x/b.webp"}},
		{"http://example.com/a.png\nfile://otherhost/c.png\nfile:///d.png", []string{"/d.png"}},
		{"", nil},
		{"\r\n\r\nnot a uri\r\n", nil},
	} {
		require.Equal(t, tc.want, LocalPaths([]byte(tc.in)), "%q", tc.in)
	}
}
