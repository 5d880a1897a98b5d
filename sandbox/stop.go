package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/platforms"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Platform is the host's: runsc runs Linux binaries of the host's arch.
func (c *Controller) Platform(ctx context.Context, id string) (imagespec.Platform, error) {
	if _, err := c.get(id); err != nil {
		return imagespec.Platform{}, err
	}
	return platforms.DefaultSpec(), nil
}

// Stop kills the sandbox and returns once it has exited. A sandbox that
// does not exit within the stop timeout has its whole process tree killed.
func (c *Controller) Stop(ctx context.Context, id string, opts ...sandbox.StopOpt) (retErr error) {
	ctx, done := telemetry.SandboxOp(ctx, telemetry.OpStop, id)
	defer func() { done(retErr) }()
	s, err := c.get(id)
	if err != nil {
		return err
	}
	s.op.Lock()
	defer s.op.Unlock()
	return c.stopLocked(ctx, s, opts...)
}

func (c *Controller) stopLocked(ctx context.Context, s *Sandbox, opts ...sandbox.StopOpt) error {
	rec := s.snapshot()
	l := c.logger(ctx, rec.ID)
	var so sandbox.StopOptions
	for _, o := range opts {
		o(&so)
	}
	timeout := c.opts.StopTimeout
	if so.Timeout != nil && *so.Timeout > 0 && *so.Timeout < timeout {
		timeout = *so.Timeout
	}
	begin := time.Now()
	if rec.State == StateRunning {
		// The stop timeout bounds the kill call as well: a hung sandbox
		// does not answer runsc kill.
		graceful, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := c.client(rec).Kill(graceful, rec.ID, rec.ID, unix.SIGKILL, true); err != nil && !errors.Is(err, runsc.ErrNotExist) {
			l.WithError(err).Warn("runsc kill failed; will tear down by force if it does not exit")
		}
		select {
		case <-s.exited:
		case <-graceful.Done():
			l.WithField("timeout", timeout).Warn("sandbox did not exit in time; killing its process tree")
			telemetry.ForcedTeardown(telemetry.ForcedStopTimeout)
			if err := c.forceKill(ctx, s, rec); err != nil {
				return err
			}
		}
	}
	if rec.State != StateCreated && !s.released {
		if err := c.releaseRunsc(ctx, s); err != nil {
			return err
		}
		s.released = true
	}
	l.WithField("took", time.Since(begin)).Info("sandbox stopped")
	return nil
}

// releaseRunsc deletes runsc's state of an exited sandbox and whatever its
// processes left behind.
func (c *Controller) releaseRunsc(ctx context.Context, s *Sandbox) error {
	rec := s.snapshot()
	r := c.client(rec)
	// What runsc recorded for the sandbox, taken before delete removes it.
	pids := c.processTree(rec)
	if err := r.Delete(ctx, rec.ID); err != nil {
		c.logger(ctx, rec.ID).WithError(err).Warn("runsc delete failed; killing leftovers")
	}
	var left []int
	for _, pid := range pids {
		if isRunscProcess(r.RootDir(), pid) {
			left = append(left, pid)
		}
	}
	if len(left) > 0 {
		killProcesses(ctx, rec.ID, left)
		_ = r.Delete(ctx, rec.ID)
	}
	removeCgroups(ctx, rec.ID, rec.CgroupsPath)
	return nil
}

// Shutdown stops the sandbox if needed and removes everything of it.
// Unknown sandboxes are NotFound (CRI tolerates that).
func (c *Controller) Shutdown(ctx context.Context, id string) (retErr error) {
	ctx, done := telemetry.SandboxOp(ctx, telemetry.OpShutdown, id)
	defer func() { done(retErr) }()
	s, err := c.get(id)
	if err != nil {
		return err
	}
	s.op.Lock()
	defer s.op.Unlock()
	if err := c.stopLocked(ctx, s); err != nil {
		return err
	}
	s.mu.Lock()
	if s.stopMonitor != nil {
		s.stopMonitor()
	}
	s.mu.Unlock()
	rec := s.snapshot()
	if err := s.transition(StateDeleted, nil); err != nil && rec.State != StateDeleted {
		return err
	}
	c.forget(id)
	if err := c.cleanupFiles(ctx, rec); err != nil {
		return fmt.Errorf("shutdown sandbox %s: %w", id, err)
	}
	c.logger(ctx, id).Info("sandbox shut down")
	return nil
}
