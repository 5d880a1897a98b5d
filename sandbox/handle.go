package sandbox

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Kind says who runs a sandbox.
type Kind int

const (
	// KindPod is a CRI pod sandbox of this controller.
	KindPod Kind = iota
	// KindPrivate is a standalone container's own sandbox (no pod): the
	// controller runs it, the container's task owns it.
	KindPrivate
	// KindRoot is a sandbox whose root container is a task: the pause
	// container of a gVisor-shim style pod (podsandbox controller driving
	// io.containerd.runsc.v1). The root task's runsc create makes it.
	KindRoot
)

// Handle is the task runtime's view of the sandbox a container runs in,
// the same for every Kind: the runsc runner for its containers, its exit,
// whether its containers were killed with it (OOM or force), its pid, a
// forced kill, and the release of what the owning task holds.
type Handle struct {
	id    string
	kind  Kind
	owner string // the task whose Release ends the sandbox (Private, Root)
	r     runsc.Runner
	c     *Controller

	s *Sandbox // Pod and Private: the controller's sandbox

	// Root: kept here; the root task reports its start and exit.
	mu        sync.Mutex
	exited    chan struct{}
	closeOnce sync.Once
	pid       uint32
	cgroups   string
	fate
	stopOOM  context.CancelFunc
	released bool
	mem      *podMemory
}

// AttachRequest says which sandbox a new (or recovered) container runs in.
type AttachRequest struct {
	// ContainerID is the task's id.
	ContainerID string
	// ContainerType is CRI's io.kubernetes.cri.container-type annotation:
	// "sandbox", "container", or "" (a standalone container).
	ContainerType string
	// SandboxID is the pod's id for "container".
	SandboxID string
	// RuntimeOptions are the handler's options (a root container's
	// runsc.toml flags apply to its whole sandbox).
	RuntimeOptions typeurl.Any
	// Cgroups is a root container's cgroupsPath: its sandbox's processes
	// live there.
	Cgroups string
	// NetNSPath is the container's network namespace; HostNetwork when it
	// has none in its spec; NoNetwork when it has one without a path.
	NetNSPath              string
	HostNetwork, NoNetwork bool

	// Recovered is set when the task is rebuilt from its record.
	Recovered *Recovered
}

// Recovered is what a task record says of its sandbox.
type Recovered struct {
	SandboxID string
	Kind      Kind
	Flags     map[string]string
	RunscRoot string
	Pid       uint32
	Cgroups   string
	Running   bool // the root container is still running
}

// Attach returns the handle of the sandbox a container runs in: its pod's,
// a new private sandbox for a standalone container (started here), or,
// for a root container, a handle its task drives (Started, Exited).
func (c *Controller) Attach(ctx context.Context, req AttachRequest) (*Handle, error) {
	if rec := req.Recovered; rec != nil {
		return c.reattach(ctx, req.ContainerID, rec)
	}
	switch req.ContainerType {
	case runsc.ContainerTypeContainer:
		if req.SandboxID == "" {
			return nil, fmt.Errorf("container %s: no sandbox id: %w", req.ContainerID, errdefs.ErrInvalidArgument)
		}
		if h, err := c.podHandle(req.SandboxID); err == nil || !errdefs.IsNotFound(err) {
			return h, err
		}
		c.mu.Lock()
		h := c.roots[req.SandboxID]
		c.mu.Unlock()
		if h == nil || h.Gone() {
			return nil, fmt.Errorf("container %s: sandbox %s is not a running runsc sandbox: %w", req.ContainerID, req.SandboxID, errdefs.ErrFailedPrecondition)
		}
		return h, nil
	case runsc.ContainerTypeSandbox:
		flags, err := RunscFlagsFromOptions(req.RuntimeOptions)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", req.ContainerID, err)
		}
		if flags == nil {
			flags = map[string]string{}
		}
		if req.HostNetwork {
			flags[runsc.FlagNetwork] = runsc.NetworkHost
		} else if req.NoNetwork {
			flags[runsc.FlagNetwork] = runsc.NetworkNone
		}
		return c.rootHandle(req.ContainerID, c.runsc.For(flags), 0, req.Cgroups, false)
	default:
		id := PrivateSandboxPrefix + req.ContainerID
		if err := c.runPrivate(ctx, id, req.NetNSPath, req.HostNetwork); err != nil {
			return nil, fmt.Errorf("container %s: private sandbox: %w", req.ContainerID, err)
		}
		h, err := c.podHandle(id)
		if err != nil {
			_ = c.Shutdown(context.WithoutCancel(ctx), id)
			return nil, err
		}
		h.kind, h.owner = KindPrivate, req.ContainerID
		return h, nil
	}
}

// reattach rebuilds a recovered task's handle.
func (c *Controller) reattach(ctx context.Context, containerID string, rec *Recovered) (*Handle, error) {
	r := c.runsc.For(rec.Flags)
	if rec.RunscRoot != "" {
		r = r.WithRoot(rec.RunscRoot)
	}
	switch rec.Kind {
	case KindRoot:
		if containerID == rec.SandboxID {
			return c.rootHandle(containerID, r, rec.Pid, rec.Cgroups, !rec.Running)
		}
		c.mu.Lock()
		h := c.roots[rec.SandboxID]
		c.mu.Unlock()
		if h == nil {
			// Its root task is recovered after it: a handle that exits
			// with the root's (or reads gone).
			return c.rootHandle(rec.SandboxID, r, 0, "", false)
		}
		return h, nil
	default:
		h, err := c.podHandle(rec.SandboxID)
		if err != nil && rec.Kind == KindPod && errdefs.IsNotFound(err) && IsRunscProcess(r.RootDir(), rec.Pid) {
			// A gVisor-shim style pod's container recorded before task
			// records said so: no pod of this controller, but its
			// sandbox process runs. Its sandbox is a root sandbox.
			root := *rec
			root.Kind = KindRoot
			return c.reattach(ctx, containerID, &root)
		}
		if err != nil {
			// The sandbox is gone (or stopped): a handle that reads gone.
			h = &Handle{id: rec.SandboxID, kind: rec.Kind, r: r, c: c, exited: make(chan struct{})}
			close(h.exited)
			log.G(ctx).WithFields(log.Fields{"container": containerID, "sandbox": rec.SandboxID}).WithError(err).Debug("sandbox of a recovered container is not running")
		}
		if rec.Kind == KindPrivate {
			h.kind, h.owner = KindPrivate, containerID
		}
		return h, nil
	}
}

// podHandle is the handle of a running sandbox of this controller.
func (c *Controller) podHandle(id string) (*Handle, error) {
	s, rec, err := c.running(id)
	if err != nil {
		return nil, err
	}
	return &Handle{id: id, kind: KindPod, r: c.client(rec), c: c, s: s}, nil
}

// rootHandle registers the handle of a sandbox whose root container is a
// task. exited marks one whose root has exited already (recovery).
func (c *Controller) rootHandle(id string, r runsc.Runner, pid uint32, cgroups string, exited bool) (*Handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.roots[id]; ok && !h.released {
		if exited {
			h.closeExited()
		}
		if pid != 0 {
			h.mu.Lock()
			h.r, h.pid, h.cgroups = r, pid, cgroups
			h.mu.Unlock()
		}
		h.mem.setCgroup(cgroups)
		return h, nil
	}
	h := &Handle{id: id, kind: KindRoot, owner: id, r: r, c: c, exited: make(chan struct{}), pid: pid, cgroups: cgroups, mem: newPodMemory(cgroups, c.opts.MemoryOverhead)}
	if exited {
		h.closeExited()
	}
	c.roots[id] = h
	c.rootUsers++
	return h, nil
}

// ID is the sandbox's id.
func (h *Handle) ID() string { return h.id }

// Kind says who runs the sandbox.
func (h *Handle) Kind() Kind { return h.kind }

// IsRoot reports whether containerID is the sandbox's root container.
func (h *Handle) IsRoot(containerID string) bool { return h.kind == KindRoot && containerID == h.id }

// Owns reports whether the task containerID owns the sandbox (its Release
// ends it).
func (h *Handle) Owns(containerID string) bool { return h.owner != "" && containerID == h.owner }

// Runsc is the runner for the sandbox's containers: the sandbox's flags,
// under its runsc root.
func (h *Handle) Runsc() runsc.Runner {
	if h.kind == KindRoot {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	return h.r
}

// RunscRoot is the sandbox's own runsc root, "" for the shared one.
func (h *Handle) RunscRoot() string {
	if root := h.Runsc().RootDir(); root != h.c.runsc.RootDir() {
		return root
	}
	return ""
}

// Exited is closed once the sandbox has exited.
func (h *Handle) Exited() <-chan struct{} {
	if h.s != nil {
		return h.s.exited
	}
	return h.exited
}

// Gone reports whether the sandbox has exited.
func (h *Handle) Gone() bool {
	select {
	case <-h.Exited():
		return true
	default:
		return false
	}
}

// Pid is the host pid of the sandbox process (0 if unknown).
func (h *Handle) Pid() uint32 {
	if h.s != nil {
		return h.s.snapshot().Pid
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pid
}

// Killed reports whether the sandbox was killed with its containers in it
// (by the OOM killer, confirmed by its cgroup's counter, or by force):
// their exits, which nobody saw, read as SIGKILL's 137.
func (h *Handle) Killed() bool {
	oom, forced := h.death()
	return oom || forced
}

// OOMKilled reports a confirmed OOM kill in the sandbox's cgroup.
func (h *Handle) OOMKilled() bool {
	oom, _ := h.death()
	return oom
}

// death reports how the sandbox died: the controller's Sandbox's fate, or
// a root handle's own.
func (h *Handle) death() (oom, forced bool) {
	if h.s != nil {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		return h.s.fate.read()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fate.read()
}

// ForceKill tears down a sandbox that does not answer: its whole process
// tree is SIGKILLed and its containers read as killed (137).
func (h *Handle) ForceKill(ctx context.Context) error {
	if h.s != nil {
		return h.c.killSandbox(ctx, h.id)
	}
	h.mu.Lock()
	h.forced = true
	pid, r := h.pid, h.r
	h.mu.Unlock()
	telemetry.ForcedTeardown(telemetry.ForcedTaskEscalate)
	killProcesses(ctx, h.id, SandboxProcessTree(r, h.id, pid))
	h.closeExited()
	return nil
}

// Started tells a root sandbox's handle that its root container runs.
// The handle then watches the sandbox process (a pidfd: the sandbox can
// die without its root container's exit being answered, e.g. OOM-killed)
// and the sandbox's OOM kills: the host OOM killer can only kill the whole
// sandbox, in the root container's cgroup.
func (h *Handle) Started(pid uint32, cgroups string) {
	if h.kind != KindRoot {
		return
	}
	ctx, cancel := context.WithCancel(h.c.ctx)
	h.mu.Lock()
	h.pid, h.cgroups, h.stopOOM = pid, cgroups, cancel
	h.mu.Unlock()
	confirm := watchOOM(ctx, h.c.opts.CgroupRoot, h.id, cgroups, func() {
		h.mu.Lock()
		h.oomKilled = true
		h.mu.Unlock()
		h.c.notifyOOM(ctx, h.id)
	})
	h.mu.Lock()
	h.oomConfirm = confirm
	h.mu.Unlock()
	pidfd, err := unix.PidfdOpen(int(pid), 0)
	if err != nil {
		h.closeExited() // already gone
		return
	}
	h.c.Go(func(context.Context) {
		defer unix.Close(pidfd)
		for !waitPidfd(ctx, pidfd, time.Minute) {
			if ctx.Err() != nil {
				return
			}
		}
		h.closeExited()
	})
}

// SetPid records a root sandbox's process (known after runsc create).
func (h *Handle) SetPid(pid uint32) {
	if h.kind == KindRoot {
		h.mu.Lock()
		h.pid = pid
		h.mu.Unlock()
	}
}

// RootExited tells a root sandbox's handle that its root container (and
// with it the sandbox) has exited.
func (h *Handle) RootExited() {
	if h.kind == KindRoot {
		h.closeExited()
	}
}

func (h *Handle) closeExited() {
	h.closeOnce.Do(func() {
		close(h.exited)
		h.mu.Lock()
		if h.stopOOM != nil {
			h.stopOOM()
		}
		h.mu.Unlock()
	})
}

// Release ends what task containerID holds of the sandbox: a private
// sandbox is shut down with its container, a root sandbox's registration
// ends with its root container. Others' containers release nothing.
func (h *Handle) Release(ctx context.Context, containerID string) error {
	if !h.Owns(containerID) {
		return nil
	}
	switch h.kind {
	case KindPrivate:
		if err := h.c.Shutdown(ctx, h.id); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("private sandbox %s: %w", h.id, err)
		}
	case KindRoot:
		h.closeExited()
		c := h.c
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.roots[h.id] == h && !h.released {
			h.released = true
			delete(c.roots, h.id)
			if c.rootUsers > 0 {
				c.rootUsers--
			}
			c.releaseIfIdleLocked()
		}
	}
	return nil
}
