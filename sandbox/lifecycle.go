package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/containerd/typeurl/v2"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

var _ sandbox.Controller = (*Controller)(nil)

// Create prepares a sandbox: its spec, bundle, CRI files and record. No
// runsc process runs until Start.
func (c *Controller) Create(ctx context.Context, info sandbox.Sandbox, opts ...sandbox.CreateOpt) (retErr error) {
	ctx, done := telemetry.SandboxOp(ctx, telemetry.OpCreate, info.ID)
	defer func() { done(retErr) }()
	if err := validatePodID(info.ID); err != nil {
		return err
	}
	var co sandbox.CreateOptions
	for _, o := range opts {
		if err := o(&co); err != nil {
			return fmt.Errorf("sandbox %s: %w", info.ID, err)
		}
	}
	return c.create(ctx, info, co, false, false)
}

// RunPrivate creates and starts a sandbox for one standalone container
// (one with no pod, e.g. `ctr run --runtime io.containerd.runsc.v1`). The
// container then joins it like a pod's container, so its exit is observed
// the same way. netnsPath "" with hostNetwork false means no network.
func (c *Controller) RunPrivate(ctx context.Context, id, netnsPath string, hostNetwork bool) error {
	if err := validatePrivateID(id); err != nil {
		return err
	}
	// The sandbox id ("shimless-" and a 64-hex id from nerdctl or docker)
	// can be longer than a hostname may be: keep its first maxHostname.
	cfg := &runtimeapi.PodSandboxConfig{Hostname: id[:min(len(id), maxHostname)], Linux: &runtimeapi.LinuxPodSandboxConfig{}}
	if hostNetwork {
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}
	}
	co := sandbox.CreateOptions{NetNSPath: netnsPath}
	var err error
	if co.Options, err = typeurl.MarshalAny(cfg); err != nil {
		return err
	}
	if err := c.create(ctx, sandbox.Sandbox{ID: id}, co, !hostNetwork && netnsPath == "", true); err != nil {
		return err
	}
	if _, err := c.Start(ctx, id); err != nil {
		return err
	}
	return nil
}

func (c *Controller) create(ctx context.Context, info sandbox.Sandbox, co sandbox.CreateOptions, noNetwork, ownRoot bool) (retErr error) {
	id := info.ID
	l := c.logger(ctx, id)
	cfg := &runtimeapi.PodSandboxConfig{}
	if co.Options != nil {
		if err := typeurl.UnmarshalTo(co.Options, cfg); err != nil {
			return fmt.Errorf("sandbox %s: options are not a CRI PodSandboxConfig (%s): %w", id, co.Options.GetTypeUrl(), errdefs.ErrInvalidArgument)
		}
	}
	hostname := cfg.GetHostname()
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("sandbox %s: hostname: %w", id, err)
		}
		hostname = h
	}
	ns := namespaceOf(ctx)
	_, handler, _ := c.handlerOf(info)
	res, err := buildSpec(specInput{
		ID: id, Namespace: ns, Config: cfg, NetNSPath: co.NetNSPath, Rootfs: c.rootfs, Hostname: hostname, NoNetwork: noNetwork,
		AnnotationGlobs: handler.PodAnnotations, Policy: c.opts.Policy,
	})
	if err != nil {
		if !errdefs.IsInvalidArgument(err) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	// A handler written for gVisor's shim carries its runsc.toml in the
	// runtime options; its [runsc_config] flags apply to the sandbox.
	handlerFlags, err := RunscFlagsFromOptions(info.Runtime.Options)
	if err != nil {
		return fmt.Errorf("sandbox %s: handler %q: %w", id, info.Runtime.Name, err)
	}
	for k, v := range handlerFlags {
		if _, set := res.Flags[k]; !set {
			res.Flags[k] = v
		}
	}
	cfgBytes, err := proto.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	rec := record{
		ID: id, Namespace: ns, State: StateCreated, Labels: info.Labels, Config: cfgBytes,
		NetNSPath: co.NetNSPath, HostNetwork: res.HostNetwork, CgroupsPath: res.CgroupsPath, Flags: res.Flags,
		SandboxCgroup: res.SandboxCgroup,
		CreatedAt:     time.Now(),
	}
	if ownRoot {
		rec.RunscRoot = c.privateRoot(id)
	}
	s := newSandbox(rec, c.recordPath(id), c.bundleDir(id))

	c.mu.Lock()
	if _, ok := c.sandboxes[id]; ok {
		c.mu.Unlock()
		return fmt.Errorf("runsc sandbox %s: %w", id, errdefs.ErrAlreadyExists)
	}
	c.sandboxes[id] = s
	c.mu.Unlock()
	defer func() {
		if retErr != nil {
			c.forget(id)
			if err := c.cleanupFiles(context.WithoutCancel(ctx), rec); err != nil {
				l.WithError(err).Warn("cleanup after failed create")
			}
		}
	}()

	if err := os.MkdirAll(s.bundle, 0o711); err != nil {
		return fmt.Errorf("sandbox %s: bundle: %w", id, err)
	}
	if rec.RunscRoot != "" {
		if err := os.MkdirAll(rec.RunscRoot, 0o711); err != nil {
			return fmt.Errorf("sandbox %s: runsc root: %w", id, err)
		}
	}
	specJSON, err := json.Marshal(res.Spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.bundle, "config.json"), specJSON, 0o600); err != nil {
		return fmt.Errorf("sandbox %s: write spec: %w", id, err)
	}
	if err := c.writeCRIFiles(id, hostname, cfg); err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	if err := writeRecord(s.recordPath, rec); err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	l.WithFields(map[string]any{"hostNetwork": res.HostNetwork, "cgroup": res.CgroupsPath}).Info("sandbox created")
	return nil
}

// forget drops a sandbox from the set. When the last one is gone, runsc's
// shared null network namespace bind mount under its root is released too
// (runsc keeps it mounted across deletes; the next create makes it again).
// Creates add to the set under the same lock, so none is using it then.
func (c *Controller) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sandboxes, id)
	c.releaseIfIdleLocked()
}

// releaseIfIdleLocked drops runsc's shared mounts when no sandbox of ours
// and no root container of the task runtime uses the runsc root. c.mu held.
func (c *Controller) releaseIfIdleLocked() {
	if len(c.sandboxes) == 0 && c.rootUsers == 0 {
		c.runsc.ReleaseSharedMounts()
	}
}

// AcquireRoot records a sandbox the task runtime runs itself (a root
// container, as a gVisor-shim style handler's pause container) under our
// runsc root; ReleaseRoot ends it.
func (c *Controller) AcquireRoot() {
	c.mu.Lock()
	c.rootUsers++
	c.mu.Unlock()
}

// ReleaseRoot is the counterpart of AcquireRoot.
func (c *Controller) ReleaseRoot() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rootUsers > 0 {
		c.rootUsers--
	}
	c.releaseIfIdleLocked()
}

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
	if err := r.Create(ctx, id, s.bundle, runsc.CreateOptions{OutputPath: filepath.Join(s.bundle, "runsc.out"), PidFile: pidFile}); err != nil {
		return sandbox.ControllerInstance{}, fmt.Errorf("start sandbox %s: %w; %s", id, err, c.debugHint(id))
	}
	pid, err := runsc.ReadPidFile(pidFile)
	if err != nil {
		return sandbox.ControllerInstance{}, fmt.Errorf("start sandbox %s: %w; %s", id, err, c.debugHint(id))
	}
	// The record knows the pid before start: a failed start kills it.
	rec.Pid = uint32(pid)
	if err := r.Start(ctx, id, nil); err != nil {
		return sandbox.ControllerInstance{}, fmt.Errorf("start sandbox %s: %w; %s", id, err, c.debugHint(id))
	}
	if !isRunscProcess(r.Root, pid) {
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

// readSpec returns the OCI spec in a bundle.
func readSpec(bundle string) (*specs.Spec, error) {
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
	spec, err := readSpec(bundle)
	if err != nil {
		return nil, err
	}
	return typeurl.MarshalAny(spec)
}

// startMonitor watches the running sandbox for its exit, in this process:
// runsc's Wait RPC for the root container, and a pidfd on the sandbox
// process for a sandbox that dies without answering.
func (c *Controller) startMonitor(s *Sandbox, rec record) {
	ctx, cancel := context.WithCancel(c.ctx)
	s.mu.Lock()
	s.stopMonitor = cancel
	s.mu.Unlock()
	c.watchOOM(ctx, s, rec)
	go c.monitor(ctx, s, rec)
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
	for {
		ws, err := c.client(rec).WaitContainer(ctx, rec.ID, rec.ID)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			// The root container exited; the sandbox process follows.
			waitPidfd(ctx, pidfd, 5*time.Second)
			c.markExited(ctx, s, runsc.ExitCode(ws))
			return
		}
		if waitPidfd(ctx, pidfd, time.Second) {
			c.markExited(ctx, s, ExitUnknown)
			return
		}
		l.WithError(err).Debug("sandbox alive but its wait call failed; retrying")
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
		if err := c.client(rec).Kill(graceful, rec.ID, unix.SIGKILL, true); err != nil && !errors.Is(err, runsc.ErrNotExist) {
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
	if rec.State != StateCreated {
		if err := c.releaseRunsc(ctx, s); err != nil {
			return err
		}
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
		if isRunscProcess(r.Root, pid) {
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

// Wait blocks until the sandbox has exited.
func (c *Controller) Wait(ctx context.Context, id string) (sandbox.ExitStatus, error) {
	s, err := c.get(id)
	if err != nil {
		return sandbox.ExitStatus{}, err
	}
	select {
	case <-s.exited:
		rec := s.snapshot()
		return sandbox.ExitStatus{ExitStatus: rec.ExitStatus, ExitedAt: rec.ExitedAt}, nil
	case <-ctx.Done():
		return sandbox.ExitStatus{}, ctx.Err()
	}
}

// Status reports the sandbox's own state: READY only while its runsc
// sandbox runs.
func (c *Controller) Status(ctx context.Context, id string, verbose bool) (sandbox.ControllerStatus, error) {
	s, err := c.get(id)
	if err != nil {
		return sandbox.ControllerStatus{}, err
	}
	rec := s.snapshot()
	st := sandbox.ControllerStatus{
		SandboxID: id,
		Pid:       rec.Pid,
		State:     "SANDBOX_NOTREADY",
		CreatedAt: rec.CreatedAt,
		ExitedAt:  rec.ExitedAt,
	}
	if rec.State == StateRunning {
		st.State = "SANDBOX_READY"
	}
	if verbose {
		runscFlags := c.client(rec).Flags
		platform := runscFlags["platform"]
		if platform == "" {
			platform = "default (systrap)"
		}
		flags, _ := json.Marshal(runscFlags)
		st.Info = map[string]string{
			"runtime":        "runsc",
			"runscVersion":   c.runscVersion,
			"runscRoot":      c.client(rec).Root,
			"platform":       platform,
			"state":          string(rec.State),
			"hostNetwork":    fmt.Sprint(rec.HostNetwork),
			"cgroupsPath":    rec.CgroupsPath,
			"netnsPath":      rec.NetNSPath,
			"bundle":         s.bundle,
			"runscFlags":     string(flags),
			"containerCount": c.containerCount(ctx, rec),
		}
		if rec.State == StateStopped {
			st.Info["exitStatus"] = fmt.Sprint(rec.ExitStatus)
		}
		st.Info["info"] = c.criInfo(s, rec)
	}
	return st, nil
}

// criInfo renders the "info" entry CRI's verbose PodSandboxStatus decodes
// (the fields of its podsandbox SandboxInfo that apply here).
func (c *Controller) criInfo(s *Sandbox, rec record) string {
	cfg, _ := rec.podConfig()
	spec, _ := readSpec(s.bundle)
	status := string(rec.State)
	info := struct {
		Pid         uint32                       `json:"pid"`
		Status      string                       `json:"processStatus"`
		RuntimeType string                       `json:"runtimeType"`
		Config      *runtimeapi.PodSandboxConfig `json:"config"`
		RuntimeSpec *specs.Spec                  `json:"runtimeSpec"`
	}{rec.Pid, status, "io.containerd.runsc.v1", cfg, spec}
	b, _ := json.Marshal(info)
	return string(b)
}

// containerCount is how many containers runsc keeps in the sandbox, its
// root container included, from runsc's state files (no runsc process).
func (c *Controller) containerCount(_ context.Context, rec record) string {
	return strconv.Itoa(len(c.client(rec).Containers(rec.ID)))
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

// Metrics returns the sandbox cgroup's metrics in the cgroups v1/v2 type
// CRI decodes for PodSandboxStats.
func (c *Controller) Metrics(ctx context.Context, id string) (*types.Metric, error) {
	_, rec, err := c.running(id)
	if err != nil {
		return nil, err
	}
	data, err := cgroupMetrics(rec.SandboxCgroup)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s metrics: %w", id, err)
	}
	anyData, err := typeurl.MarshalAnyToProto(data)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s metrics: %w", id, err)
	}
	return &types.Metric{Timestamp: timestamppb.Now(), ID: id, Data: anyData}, nil
}

// Update accepts changes of the sandbox record's metadata (labels,
// extensions). Resource changes of a running runsc sandbox are not
// supported: runsc sizes the sandbox at create.
func (c *Controller) Update(ctx context.Context, id string, info sandbox.Sandbox, fields ...string) error {
	s, err := c.get(id)
	if err != nil {
		return err
	}
	for _, f := range fields {
		switch {
		case f == "labels" || strings.HasPrefix(f, "labels."):
			s.mu.Lock()
			s.rec.Labels = info.Labels
			rec := s.rec
			s.mu.Unlock()
			if err := writeRecord(s.recordPath, rec); err != nil {
				return err
			}
		case f == "extensions" || strings.HasPrefix(f, "extensions."):
		default:
			return fmt.Errorf("sandbox %s: updating %q of a runsc sandbox: %w", id, f, errdefs.ErrNotImplemented)
		}
	}
	return nil
}
