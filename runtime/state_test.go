package runtime

import (
	"testing"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
)

func TestTransitions(t *testing.T) {
	C, R, P, S, D := runtime.CreatedStatus, runtime.RunningStatus, runtime.PausedStatus, runtime.StoppedStatus, runtime.DeletedStatus
	for _, tc := range []struct {
		name      string
		table     map[runtime.Status][]runtime.Status
		from, to  runtime.Status
		ok, ended bool
	}{
		{"task start", taskTransitions, C, R, true, false},
		{"task kill of created", taskTransitions, C, S, true, true},
		{"task delete of created", taskTransitions, C, D, true, true},
		{"task pause", taskTransitions, R, P, true, false},
		{"task resume", taskTransitions, P, R, true, false},
		{"task exit", taskTransitions, R, S, true, true},
		{"task exit while paused", taskTransitions, P, S, true, true},
		{"task delete of stopped", taskTransitions, S, D, true, false},
		{"task second start", taskTransitions, R, R, false, false},
		{"task start after exit", taskTransitions, S, R, false, false},
		{"task second exit", taskTransitions, S, S, false, false},
		{"task delete of running", taskTransitions, R, D, false, false},
		{"task pause of stopped", taskTransitions, S, P, false, false},
		{"task anything after delete", taskTransitions, D, S, false, false},
		{"exec start", execTransitions, C, R, true, false},
		{"exec ended by its container", execTransitions, C, S, true, true},
		{"exec delete of created", execTransitions, C, D, true, true},
		{"exec exit", execTransitions, R, S, true, true},
		{"exec start after exit", execTransitions, S, R, false, false},
		{"exec second exit", execTransitions, S, S, false, false},
		{"exec delete of running", execTransitions, R, D, false, false},
		{"exec pause", execTransitions, R, P, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := tc.from
			ended, err := transition(tc.table, "x", &cur, tc.to)
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("err %v is not FailedPrecondition", err)
			}
			if err != nil && cur != tc.from {
				t.Fatalf("state changed on an illegal transition")
			}
			if ended != tc.ended {
				t.Fatalf("ended %v, want %v", ended, tc.ended)
			}
		})
	}
}
