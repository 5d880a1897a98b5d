package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Start boots the runsc sandbox. On failure everything is cleaned up here:
// CRI does not call Shutdown after a failed Start.
func (c *Controller) Start(ctx context.Context, id string) (_ sandbox.ControllerInstance, retErr error) {
	ctx, done := telemetry.SandboxOp(ctx, telemetry.OpStart, id)
	defer func() { done(retErr) }()
	s, err := c.get(id)
	if err != nil {
		return sandbox.ControllerInstance{}, err
	}
	s.op.Lock()
	defer s.op.Unlock()
	l := c.logger(ctx, id)
	rec := s.snapshot()
	if rec.State != StateCreated {
		return sandbox.ControllerInstance{}, fmt.Errorf("sandbox %s is %s: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	begin := time.Now()
	defer func() {
		if retErr == nil {
			return
		}
		cctx := context.WithoutCancel(ctx)
		c.killTree(cctx, rec)
		if err := c.client(rec).Delete(cctx, id); err != nil {
			l.WithError(err).Warn("runsc delete after failed start")
		}
		c.forget(id)
		if err := c.cleanupFiles(cctx, rec); err != nil {
			l.WithError(err).Warn("cleanup after failed start")
		}
	}()

	r := c.client(rec)
	pidFile := filepath.Join(s.bundle, "runsc.pid")
	// One runsc process creates and starts the sandbox (runsc run
	// --detach): the pod's containers are not started by it, so nothing
	// happens between the two that needs runsc create on its own.
	runErr := r.Run(ctx, id, s.bundle, runsc.CreateOptions{OutputPath: filepath.Join(s.bundle, "runsc.out"), PidFile: pidFile})
	pid, err := runsc.ReadPidFile(pidFile)
	if err == nil {
		// A failed start kills what the pid file names (runsc's own
		// cleanup after a failed run may not have).
		rec.Pid = uint32(pid)
	}
	if runErr != nil {
		return sandbox.ControllerInstance{}, fmt.Errorf("start sandbox %s: %w; %s", id, runErr, c.debugHint(id))
	}
	if err != nil {
		return sandbox.ControllerInstance{}, fmt.Errorf("start sandbox %s: %w; %s", id, err, c.debugHint(id))
	}
	if !isRunscProcess(r.RootDir(), pid) {
		return sandbox.ControllerInstance{}, fmt.Errorf("start sandbox %s: its sandbox process %d is gone right after start; %s", id, pid, c.debugHint(id))
	}
	if err := s.transition(StateRunning, func(r *record) { r.Pid = uint32(pid) }); err != nil {
		return sandbox.ControllerInstance{}, err
	}
	rec = s.snapshot()
	c.startMonitor(s, rec)
	spec, err := readSpecAny(s.bundle)
	if err != nil {
		l.WithError(err).Warn("cannot read sandbox spec back")
	}
	l.WithFields(map[string]any{"pid": rec.Pid, "took": time.Since(begin)}).Info("sandbox started")
	return sandbox.ControllerInstance{
		SandboxID: id,
		Pid:       rec.Pid,
		CreatedAt: rec.CreatedAt,
		Labels:    rec.Labels,
		Spec:      spec,
	}, nil
}

// ReadSpec returns the OCI spec in a bundle (its config.json).
func ReadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

// readSpecAny returns the bundle's OCI spec as CRI and NRI expect it.
func readSpecAny(bundle string) (typeurl.Any, error) {
	spec, err := ReadSpec(bundle)
	if err != nil {
		return nil, err
	}
	return typeurl.MarshalAny(spec)
}
