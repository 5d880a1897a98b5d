package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
)

// waitRetry is how often a failed exit wait is retried while the sandbox
// lives.
const waitRetry = 500 * time.Millisecond

// startMonitor watches the init process's exit in this process, over the
// sandbox's control socket (runsc.WaitExit, the one exit-wait loop).
func (t *Task) startMonitor() {
	ctx, cancel := context.WithCancel(t.rt.sandboxes.Context())
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	t.rt.sandboxes.Go(func(context.Context) {
		defer cancel()
		l := log.G(ctx).WithFields(log.Fields{"container": t.id, "sandbox": t.sb.ID()})
		client := t.sb.Runsc()
		// unknown: the sandbox does not know the container (it ended and
		// was removed while containerd was down): its exit is lost.
		var unknown atomic.Bool
		code, seen := runsc.WaitExit(ctx,
			func(ctx context.Context) (unix.WaitStatus, error) {
				ws, err := client.WaitContainer(ctx, t.sb.ID(), t.id)
				if errors.Is(err, runsc.ErrNotExist) {
					l.WithError(err).Warn("the sandbox does not know the container; its exit status is lost")
					unknown.Store(true)
				}
				return ws, err
			},
			func(ctx context.Context) bool { return unknown.Load() || t.sandboxGoneWithin(ctx) },
			func(err error) { l.WithError(err).Debug("wait for container failed; retrying") })
		switch {
		case seen:
			t.killRemaining(ctx)
			t.exit(ctx, code)
		case ctx.Err() == nil:
			t.exit(ctx, t.lostExitStatus())
		}
	})
}

// sandboxGoneWithin waits up to waitRetry for the task's sandbox to end.
func (t *Task) sandboxGoneWithin(ctx context.Context) bool {
	select {
	case <-t.sb.Exited():
		return true
	case <-ctx.Done():
		return false
	case <-time.After(waitRetry):
		return false
	}
}

// lostExitStatus is the exit status of a container whose sandbox died under
// it: SIGKILL's 137 when the sandbox was OOM-killed or killed by force,
// else unknown.
func (t *Task) lostExitStatus() uint32 {
	if t.sb.Killed() {
		return exitKilled
	}
	return exitUnknown
}

// killRemaining kills what is left of a container whose init process has
// exited (its orphaned children would hold its stdio open, and CRI waits
// for that), as runc's and gVisor's shims do. A root container's sandbox
// goes with it anyway.
func (t *Task) killRemaining(ctx context.Context) {
	if t.root {
		return
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := t.sb.Runsc().Kill(kctx, t.sb.ID(), t.id, unix.SIGKILL, true); err != nil && !errors.Is(err, runsc.ErrNotExist) && !runsc.IsNoSuchProcess(err) {
		log.G(ctx).WithError(err).WithField("container", t.id).Debug("kill the remaining processes after init exited")
	}
}

// exit applies the init's exit, once: the execs end first (their exits
// are published before the init's), the record is written (a failed write
// is logged: an exit is a fact and is applied anyway), then the exit is
// published (OOM first), then waiters are woken.
func (t *Task) exit(ctx context.Context, status uint32) {
	t.mu.Lock()
	ended, err := t.to(runtime.StoppedStatus)
	if err != nil {
		t.mu.Unlock()
		return // exited (or deleted) already
	}
	t.exitStatus, t.exitedAt = status, time.Now()
	exit := &runtime.Exit{Pid: t.pid, Status: status, Timestamp: t.exitedAt}
	execs := make([]*Exec, 0, len(t.execs))
	for _, e := range t.execs {
		execs = append(execs, e)
	}
	t.mu.Unlock()
	for _, e := range execs {
		e.exit(ctx, exitUnknown)
	}
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task exit")
	}
	t.stdio.closeStdin()
	log.G(ctx).WithFields(log.Fields{"container": t.id, "exitStatus": status}).Info("container exited")
	t.publishExit(ctx, exit)
	if ended {
		close(t.exited)
	}
	if t.root {
		t.sb.RootExited()
	}
}

// Wait blocks until the init process has exited.
func (t *Task) Wait(ctx context.Context) (*runtime.Exit, error) {
	return waitExit(ctx, t.exited, func() *runtime.Exit {
		t.mu.Lock()
		defer t.mu.Unlock()
		return &runtime.Exit{Pid: t.pid, Status: t.exitStatus, Timestamp: t.exitedAt}
	})
}

// waitExit blocks until exited is closed, then returns exit().
func waitExit(ctx context.Context, exited <-chan struct{}, exit func() *runtime.Exit) (*runtime.Exit, error) {
	select {
	case <-exited:
		return exit(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
