package runtime

import (
	"fmt"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
)

// The state machines of tasks and execs, like the sandbox's:
//
//	task:  created -> running (Start) | stopped (Kill, its sandbox lost) | deleted
//	       running <-> paused (Pause, Resume)
//	       running | paused -> stopped (its exit)
//	       stopped -> deleted (Delete)
//	exec:  created -> running (Start) | stopped (its container exited) | deleted
//	       running -> stopped (its exit)
//	       stopped -> deleted (Delete)
//
// An illegal transition is FailedPrecondition, never a panic. The move
// that ends a process (into stopped, or created -> deleted) is the one
// that closes its exit channel: exactly once, by whoever made it.
var (
	taskTransitions = map[runtime.Status][]runtime.Status{
		runtime.CreatedStatus: {runtime.RunningStatus, runtime.StoppedStatus, runtime.DeletedStatus},
		runtime.RunningStatus: {runtime.PausedStatus, runtime.StoppedStatus},
		runtime.PausedStatus:  {runtime.RunningStatus, runtime.StoppedStatus},
		runtime.StoppedStatus: {runtime.DeletedStatus},
	}
	execTransitions = map[runtime.Status][]runtime.Status{
		runtime.CreatedStatus: {runtime.RunningStatus, runtime.StoppedStatus, runtime.DeletedStatus},
		runtime.RunningStatus: {runtime.StoppedStatus},
		runtime.StoppedStatus: {runtime.DeletedStatus},
	}
)

// statusName is a status as a word, for errors and logs.
func statusName(s runtime.Status) string {
	switch s {
	case runtime.CreatedStatus:
		return "created"
	case runtime.RunningStatus:
		return "running"
	case runtime.StoppedStatus:
		return "stopped"
	case runtime.DeletedStatus:
		return "deleted"
	case runtime.PausedStatus:
		return "paused"
	case runtime.PausingStatus:
		return "pausing"
	}
	return fmt.Sprintf("status %d", s)
}

// transition moves *cur to next by table. ended reports that this move
// ended the process: its caller closes the exit channel.
func transition(table map[runtime.Status][]runtime.Status, what string, cur *runtime.Status, next runtime.Status) (ended bool, err error) {
	for _, st := range table[*cur] {
		if st == next {
			live := *cur == runtime.CreatedStatus || *cur == runtime.RunningStatus || *cur == runtime.PausedStatus
			*cur = next
			return live && (next == runtime.StoppedStatus || next == runtime.DeletedStatus), nil
		}
	}
	return false, fmt.Errorf("%s is %s, cannot become %s: %w", what, statusName(*cur), statusName(next), errdefs.ErrFailedPrecondition)
}
