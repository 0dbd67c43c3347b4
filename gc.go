package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target when GOGC is unset.
// Hot reads allocate a few hundred KB each and keep little: at 400 the
// server spent 11–25 % less CPU per availability(100) read than at Go's
// default of 100, for about 30 MiB more resident memory (BENCHMARKS.md
// §12). GOGC and GOMEMLIMIT still override it.
const defaultGCPercent = 400

// setGCDefault applies defaultGCPercent unless GOGC says otherwise.
func setGCDefault() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
