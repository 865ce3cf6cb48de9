//go:build !linux

// procmon_other.go: without /proc there is no foreign-load record (the
// browser build gets it from the driver through its own hook).
package bench

// ProcHook records nothing where /proc is missing.
func ProcHook() Hook { return func(string, int) (any, error) { return nil, nil } }
