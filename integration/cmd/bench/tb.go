package main

import (
	"fmt"
	"log"
	"sync"
	"testing"
)

// tb lets a program use the integration harness, which takes a testing.TB:
// Fatal unwinds to main (a panic with errFatal, recovered there), Cleanup
// functions run when main ends. The embedded nil TB supplies the private
// method; a method the harness calls that is not defined here would panic.
type tb struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

type errFatal struct{ msg string }

func (t *tb) Helper()      {}
func (t *tb) Name() string { return "bench" }
func (t *tb) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}
func (t *tb) Log(args ...any)                 { log.Print(args...) }
func (t *tb) Logf(format string, args ...any) { log.Printf(format, args...) }
func (t *tb) Error(args ...any)               { t.fail(fmt.Sprint(args...)) }
func (t *tb) Errorf(format string, args ...any) {
	t.fail(fmt.Sprintf(format, args...))
}
func (t *tb) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *tb) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.fail(msg)
	panic(errFatal{msg})
}
func (t *tb) FailNow()         { t.Fatal("FailNow") }
func (t *tb) Skip(args ...any) { t.Fatal(args...) }
func (t *tb) Skipf(f string, args ...any) {
	t.Fatalf(f, args...)
}
func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *tb) fail(msg string) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	log.Printf("error: %s", msg)
}

// runCleanups runs the Cleanup functions, last registered first.
func (t *tb) runCleanups() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					log.Printf("cleanup: %v", r)
				}
			}()
			f()
		}()
	}
}
