package sandbox

import (
	"context"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
)

// startMonitor watches the running sandbox for its exit, in this process:
// runsc's Wait RPC for the root container, and a pidfd on the sandbox
// process for a sandbox that dies without answering.
func (c *Controller) startMonitor(s *Sandbox, rec record) {
	ctx, cancel := context.WithCancel(c.ctx)
	s.mu.Lock()
	s.stopMonitor = cancel
	s.mu.Unlock()
	c.watchOOM(ctx, s, rec)
	c.Go(func(context.Context) { c.monitor(ctx, s, rec) })
}

func (c *Controller) monitor(ctx context.Context, s *Sandbox, rec record) {
	l := c.logger(ctx, rec.ID)
	pidfd, err := unix.PidfdOpen(int(rec.Pid), 0)
	if err != nil {
		// The sandbox process is already gone.
		c.markExited(ctx, s, ExitUnknown)
		return
	}
	defer unix.Close(pidfd)
	client := c.client(rec)
	code, seen := runsc.WaitExit(ctx,
		func(ctx context.Context) (unix.WaitStatus, error) { return client.WaitContainer(ctx, rec.ID, rec.ID) },
		func(ctx context.Context) bool { return waitPidfd(ctx, pidfd, time.Second) },
		func(err error) { l.WithError(err).Debug("sandbox alive but its wait call failed; retrying") })
	switch {
	case seen:
		// The root container exited; the sandbox process follows.
		waitPidfd(ctx, pidfd, 5*time.Second)
		c.markExited(ctx, s, code)
	case ctx.Err() == nil:
		c.markExited(ctx, s, ExitUnknown) // died without answering
	}
}

// waitPidfd waits up to d for the process behind pidfd to exit.
func waitPidfd(ctx context.Context, pidfd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err == nil && n > 0 {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
	}
}

// markExited records the sandbox's exit, once.
func (c *Controller) markExited(ctx context.Context, s *Sandbox, status uint32) {
	s.mu.Lock()
	if s.forced || (s.oomKilled && status == ExitUnknown) {
		status = exitForced
	}
	s.mu.Unlock()
	now := time.Now()
	err := s.transition(StateStopped, func(r *record) { r.ExitStatus, r.ExitedAt = status, now })
	if errdefs.IsFailedPrecondition(err) {
		return // already stopped
	}
	if err != nil {
		c.logger(ctx, s.snapshot().ID).WithError(err).Error("sandbox exit recorded in memory only")
	}
	c.logger(ctx, s.snapshot().ID).WithField("exitStatus", status).Info("sandbox exited")
}
