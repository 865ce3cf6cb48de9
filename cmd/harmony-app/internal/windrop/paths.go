// paths.go: reading the file names of a Win32 drop (HDROP) through
// DragQueryFileW's two-call protocol, kept apart from the system calls so
// that it can be tested on any platform.
package windrop

import "unicode/utf16"

// allFiles is the index that makes DragQueryFileW return the file count.
const allFiles = 0xFFFFFFFF

// queryFunc has DragQueryFileW's contract: for index allFiles it returns
// the number of files; for a file index and an empty buffer, the length of
// that name in UTF-16 units without the terminating NUL; otherwise it
// copies the NUL-terminated name into buf and returns the units copied.
type queryFunc func(index uint32, buf []uint16) uint32

// dropPaths lists the dropped files in order; a name the system will not
// hand over (length 0) is left out rather than becoming an empty path.
func dropPaths(query queryFunc) []string {
	n := query(allFiles, nil)
	var paths []string
	for i := uint32(0); i < n; i++ {
		size := query(i, nil)
		if size == 0 {
			continue
		}
		buf := make([]uint16, size+1)
		got := query(i, buf)
		if got == 0 || got > size {
			continue
		}
		paths = append(paths, string(utf16.Decode(buf[:got])))
	}
	return paths
}
