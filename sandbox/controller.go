// Package sandbox is the runsc sandbox controller: it runs one runsc
// sandbox per pod, directly, with no shim process. The Controller owns the
// set of sandboxes; the sandbox controller plugin and the task runtime are
// two views on that one set.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/shimless/shimless/sandbox/runsc"
)

// Options configure a Controller.
type Options struct {
	// Runsc talks to runsc; its Root is where runsc keeps its state.
	Runsc runsc.Runner
	// PausePath is the shimless-pause binary copied into the sandboxes'
	// shared read-only rootfs.
	PausePath string
	// StateDir holds transient files (bundles, the pause rootfs); RootDir
	// holds sandbox records.
	StateDir, RootDir string
	// CRIRootDir is CRI's root (<containerd root>/io.containerd.grpc.v1.cri),
	// where CreateContainer looks for each pod's hostname/hosts/resolv.conf.
	CRIRootDir string
	// HostsFile and ResolvConf are the host's files pods start from
	// (default /etc/hosts and /etc/resolv.conf).
	HostsFile, ResolvConf string
	// StopTimeout bounds a graceful stop before the process tree is killed.
	StopTimeout time.Duration
	// MemoryOverhead is what a sandbox may use beyond the sum of its
	// containers' memory limits (see podMemory); 0 means the default.
	MemoryOverhead int64
	// CgroupRoot is where the cgroup hierarchies are mounted ("" means
	// /sys/fs/cgroup); tests point it at a tree of their own.
	CgroupRoot string
	// Publisher is containerd's event exchange.
	Publisher events.Publisher
	// Policy decides which dev.gvisor.* annotations pods may set.
	Policy AnnotationPolicy
}

// Controller implements containerd's sandbox.Controller on runsc.
type Controller struct {
	opts         Options
	runsc        runsc.Runner
	runscVersion string
	rootfs       string // shared read-only rootfs with the pause binary

	mu        sync.Mutex // guards sandboxes, roots, rootUsers; never held across runsc calls
	sandboxes map[string]*Sandbox
	// roots are the sandboxes whose root container is a task (gVisor-shim
	// style pods); rootUsers counts them for the shared mounts.
	roots     map[string]*Handle
	rootUsers int
	// unreadable are ids whose record could not be read at recovery: their
	// runsc state is left alone.
	unreadable []string
	oomHook    OOMHook

	// handlers are the CRI runtime handlers using this controller, for
	// their pod_annotations allowlists.
	handlers handlers

	// ctx lives as long as the controller: exit monitors run under it
	// (Go), and Close ends them.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

// New checks that runsc is usable, prepares the controller's directories
// and rebuilds every sandbox from its record and runsc's state.
func New(ctx context.Context, opts Options) (*Controller, error) {
	version, err := opts.Runsc.Version(ctx)
	if err != nil {
		return nil, err
	}
	if opts.HostsFile == "" {
		opts.HostsFile = "/etc/hosts"
	}
	if opts.MemoryOverhead == 0 {
		opts.MemoryOverhead = DefaultMemoryOverhead
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.ResolvConf == "" {
		opts.ResolvConf = "/etc/resolv.conf"
	}
	for _, d := range []string{opts.StateDir, opts.RootDir, opts.Runsc.RootDir()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	c := &Controller{
		opts:         opts,
		runsc:        opts.Runsc,
		runscVersion: version,
		rootfs:       filepath.Join(opts.StateDir, "rootfs"),
		sandboxes:    map[string]*Sandbox{},
		roots:        map[string]*Handle{},
	}
	c.ctx, c.cancel = context.WithCancel(log.WithLogger(context.WithoutCancel(ctx), log.G(ctx)))
	if err := c.preparePauseRootfs(); err != nil {
		return nil, err
	}
	if err := c.recover(ctx); err != nil {
		return nil, err
	}
	log.G(ctx).WithFields(log.Fields{"version": version, "root": opts.Runsc.RootDir(), "sandboxes": len(c.sandboxes)}).Info("runsc sandbox controller ready")
	return c, nil
}

// preparePauseRootfs builds the minimal rootfs every sandbox's root
// container runs from: just the static pause binary, mounted read-only.
func (c *Controller) preparePauseRootfs() error {
	data, err := os.ReadFile(c.opts.PausePath)
	if err != nil {
		return fmt.Errorf("pause binary: %w", err)
	}
	if err := os.MkdirAll(c.rootfs, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(c.rootfs, PauseBinary)
	if old, err := os.ReadFile(dst); err == nil && string(old) == string(data) {
		return nil
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// RunscVersion is the version runsc reported at init.
func (c *Controller) RunscVersion() string { return c.runscVersion }

// Runsc is the runsc client sandboxes run with.
func (c *Controller) Runsc() runsc.Runner { return c.runsc }

// OwnsSandbox reports whether id is one of this controller's sandboxes.
func (c *Controller) OwnsSandbox(id string) bool {
	_, err := c.get(id)
	return err == nil
}

func (c *Controller) get(id string) (*Sandbox, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sandboxes[id]
	if !ok {
		// An id that could never have been created is the caller's
		// mistake, not a missing sandbox.
		if err := validateKnownID(id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("runsc sandbox %s: %w", id, errdefs.ErrNotFound)
	}
	return s, nil
}

func (c *Controller) recordPath(id string) string {
	return filepath.Join(c.opts.RootDir, id+".json")
}

func (c *Controller) bundleDir(id string) string {
	return filepath.Join(c.opts.StateDir, id)
}

func (c *Controller) logger(ctx context.Context, id string) *log.Entry {
	return log.G(ctx).WithField("sandbox", id)
}

func namespaceOf(ctx context.Context) string {
	if ns, ok := namespaces.Namespace(ctx); ok {
		return ns
	}
	return "default"
}

// cleanupFiles removes everything of a sandbox on the host that the
// controller owns: bundle, CRI files, cgroups, record.
func (c *Controller) cleanupFiles(ctx context.Context, rec record) error {
	removeCgroups(ctx, rec.ID, rec.CgroupsPath)
	var errs []error
	if rec.RunscRoot != "" {
		if err := removePrivateRoot(c.client(rec)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range []string{c.bundleDir(rec.ID), c.criSandboxDir(rec.ID), c.recordPath(rec.ID)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// debugHint says where to look when runsc failed.
func (c *Controller) debugHint(id string) string {
	out := filepath.Join(c.bundleDir(id), "runsc.out")
	return fmt.Sprintf("runsc output in %s; %s", out, c.runsc.DebugLogHint())
}

// Publisher is containerd's event exchange.
func (c *Controller) Publisher() events.Publisher { return c.opts.Publisher }

// Context lives as long as the controller; background work runs under it.
func (c *Controller) Context() context.Context { return c.ctx }

// Go runs f in a goroutine that Close ends (f must return once its
// context is done) and waits for. Exit monitors run this way.
func (c *Controller) Go(f func(ctx context.Context)) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f(c.ctx)
	}()
}

// Close ends the controller's background work (exit and OOM monitors, the
// task runtime's too) and waits for it. Sandboxes keep running: a new
// controller recovers them, as after a restart of containerd.
func (c *Controller) Close() {
	c.cancel()
	c.bg.Wait()
}

// running returns a sandbox and its record if it is running, else
// NotFound or FailedPrecondition.
func (c *Controller) running(id string) (*Sandbox, record, error) {
	s, err := c.get(id)
	if err != nil {
		return nil, record{}, err
	}
	rec := s.snapshot()
	if rec.State != StateRunning {
		return nil, record{}, fmt.Errorf("sandbox %s is %s: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	return s, rec, nil
}

// privateRootsDir holds, under the shared runsc root, the runsc roots of
// standalone containers' private sandboxes.
const privateRootsDir = "private"

// privateRoot is a private sandbox's own runsc root.
func (c *Controller) privateRoot(id string) string {
	return filepath.Join(c.runsc.RootDir(), privateRootsDir, id)
}

// removePrivateRoot removes a private sandbox's own runsc root once its
// sandbox is gone: runsc's shared mount under it first, then the directory.
func removePrivateRoot(client runsc.Runner) error {
	client.ReleaseSharedMounts()
	return os.RemoveAll(client.RootDir())
}

// client is the runsc client of a sandbox: its flags, under its root.
func (c *Controller) client(rec record) runsc.Runner {
	cl := c.runsc.For(rec.Flags)
	if rec.RunscRoot != "" {
		cl = cl.WithRoot(rec.RunscRoot)
	}
	return cl
}
