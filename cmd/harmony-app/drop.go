// drop.go: the record of a file drop, for people and scripted checks.
package main

import (
	"fmt"
	"os"
)

func logDrop(path string, err error) {
	logMu.Lock()
	defer logMu.Unlock()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harmony-app: dropped files: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "harmony-app: photo dropped: %s\n", path)
}
