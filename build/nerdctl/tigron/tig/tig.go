// Package tig is the subset of tigron's tig package that the nerdctl
// binary links (see ../go.mod).
package tig

// T is what nerdctl's test helpers need of a test (*testing.T has it).
type T interface {
	Helper()
	Log(args ...any)
	FailNow()
}
