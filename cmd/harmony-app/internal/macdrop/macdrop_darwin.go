//go:build !ios && cgo

// macdrop_darwin.go: the Go half of the AppKit drop target: the drop
// handler and the function the Objective-C half calls with the paths.
package macdrop

/*
#cgo CFLAGS: -fobjc-arc -x objective-c
#cgo LDFLAGS: -framework AppKit -framework Foundation

#include <stdint.h>

void harmony_macdrop_attach(uintptr_t view);
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"
)

var (
	mu      sync.Mutex
	handler func(paths []string)
)

// Attach makes the NSView behind view (app.AppKitViewEvent.View) accept
// dropped files; onDrop receives their paths on the main thread and must
// not block. The registration happens on the main thread, after Attach
// returns. stop makes the view refuse drops again; the methods added to
// the view's class stay, doing nothing without a handler.
func Attach(view uintptr, onDrop func(paths []string)) (stop func(), err error) {
	if view == 0 || onDrop == nil {
		return nil, errors.New("macdrop: no view or no drop handler")
	}
	mu.Lock()
	handler = onDrop
	mu.Unlock()
	C.harmony_macdrop_attach(C.uintptr_t(view))
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			handler = nil
			mu.Unlock()
		})
	}, nil
}

func current() func(paths []string) {
	mu.Lock()
	defer mu.Unlock()
	return handler
}

//export harmonyMacdropActive
func harmonyMacdropActive() C.int {
	if current() == nil {
		return 0
	}
	return 1
}

//export harmonyMacdropFiles
func harmonyMacdropFiles(paths **C.char, n C.int) {
	h := current()
	if h == nil || paths == nil || n <= 0 {
		return
	}
	var list []string
	for _, p := range unsafe.Slice(paths, int(n)) {
		if p != nil {
			if s := C.GoString(p); s != "" {
				list = append(list, s)
			}
		}
	}
	if len(list) > 0 {
		h(list)
	}
}
