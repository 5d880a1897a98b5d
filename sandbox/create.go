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
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

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

// runPrivate creates and starts a sandbox for one standalone container
// (one with no pod, e.g. `ctr run --runtime io.containerd.runsc.v1`). The
// container then joins it like a pod's container, so its exit is observed
// the same way. netnsPath "" with hostNetwork false means no network.
func (c *Controller) runPrivate(ctx context.Context, id, netnsPath string, hostNetwork bool) error {
	if err := validatePrivateID(id); err != nil {
		return err
	}
	// The sandbox id ("shimless-" and a 64-hex id from nerdctl or docker)
	// can be longer than a hostname may be: keep its first maxHostname.
	cfg := &runtimeapi.PodSandboxConfig{Hostname: id[:min(len(id), maxHostname)], Linux: &runtimeapi.LinuxPodSandboxConfig{}}
	if hostNetwork {
		cfg.Hostname = "" // the node's
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
	s.mem = c.podMemoryFor(rec)

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
