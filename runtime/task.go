package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"

	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/shimless/shimless/sandbox"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// exitUnknown is reported for a process whose exit nobody saw (its
// sandbox died, or it ended while containerd was down).
const exitUnknown = 255

// Task is one container inside a runsc sandbox. It answers for itself
// only: its own state, pid and exit status.
type Task struct {
	rt        *Runtime
	id, ns    string
	sandboxID string // the runsc sandbox; equal to id for a root container
	root      bool   // the container is its sandbox's root container
	private   bool   // the sandbox exists for this container only
	cgroups   string // the container's cgroupsPath (runsc makes an empty one)
	ttyIndex  int    // the pty's index when its master is parked in the sandbox, else -1
	ttyHolder int    // pid of the parking process inside the sandbox
	dir       string // bundle and record
	creating  bool   // placeholder while Create runs
	io        runtime.IO
	runsc     *runsc.Client
	// sandboxExited is closed when the sandbox this task runs in is gone.
	sandboxExited <-chan struct{}

	mu         sync.Mutex
	status     runtime.Status
	pid        uint32
	exitStatus uint32
	exitedAt   time.Time
	exited     chan struct{}
	stdio      *stdio
	// releaseIO closes containerd's copies of a sub-container's stdio once
	// runsc start has handed them to the sandbox.
	releaseIO func()
	execs     map[string]*Exec
	closeOnce sync.Once // exited is closed exactly once
	deleting  bool      // a Delete is under way
	cancel    context.CancelFunc
	// forced: the task's sandbox was killed by force (a gVisor-shim style
	// pod's, which this runtime runs itself); oomKilled: by the OOM killer.
	forced, oomKilled bool
	// oomConfirm asks the OOM counter of a root task's sandbox cgroup.
	oomConfirm func() bool
}

var _ runtime.Task = (*Task)(nil)

// taskRecord is a task's persisted state.
type taskRecord struct {
	ID         string         `json:"id"`
	Namespace  string         `json:"namespace"`
	SandboxID  string         `json:"sandboxId"`
	Root       bool           `json:"root"`
	Private    bool           `json:"private,omitempty"`
	Cgroups    string         `json:"cgroups,omitempty"`
	TTYIndex   int            `json:"ttyIndex"`
	TTYHolder  int            `json:"ttyHolder,omitempty"`
	IO         runtime.IO     `json:"io"`
	Status     runtime.Status `json:"status"`
	Pid        uint32         `json:"pid"`
	ExitStatus uint32         `json:"exitStatus"`
	ExitedAt   time.Time      `json:"exitedAt,omitzero"`
	Flags      map[string]string
	// RunscRoot is the runsc root of the task's sandbox when it is not the
	// shared one (a standalone container's private sandbox).
	RunscRoot string `json:"runscRoot,omitempty"`
}

const (
	annotationContainerType = "io.kubernetes.cri.container-type"
	annotationSandboxID     = "io.kubernetes.cri.sandbox-id"
)

// placement decides which sandbox a new container runs in and with which
// runsc client.
func (r *Runtime) placement(id string, opts runtime.CreateOpts, spec *specs.Spec) (sandboxID string, root bool, client *runsc.Client, exited <-chan struct{}, err error) {
	ctype := spec.Annotations[annotationContainerType]
	sbID := spec.Annotations[annotationSandboxID]
	if sbID == "" {
		sbID = opts.SandboxID
	}
	if ctype == "container" && sbID != "" {
		if client, exited, err := r.sandboxes.RunscFor(sbID); err == nil {
			return sbID, false, client, exited, nil
		} else if !errdefs.IsNotFound(err) {
			return "", false, nil, nil, err
		}
		// A pod whose sandbox (pause) container is itself a task here:
		// the podsandbox controller driving io.containerd.runsc.v1.
		r.mu.Lock()
		var parent *Task
		for _, t := range r.tasks {
			if t.id == sbID && t.root && !t.creating {
				parent = t
			}
		}
		r.mu.Unlock()
		if parent == nil {
			return "", false, nil, nil, fmt.Errorf("container %s: sandbox %s is not a running runsc sandbox: %w", id, sbID, errdefs.ErrFailedPrecondition)
		}
		return sbID, false, parent.runsc, parent.exited, nil
	}
	if ctype == "sandbox" {
		// A pause container created through the podsandbox controller
		// (a gVisor-shim style handler): it is the sandbox's root. Its
		// handler's runsc.toml flags apply to the whole sandbox.
		flags, err := sandbox.RunscFlagsFromOptions(opts.RuntimeOptions)
		if err != nil {
			return "", false, nil, nil, fmt.Errorf("container %s: %w", id, err)
		}
		if flags == nil {
			flags = map[string]string{}
		}
		if ns := netns(spec); ns == nil {
			flags["network"] = "host"
		} else if ns.Path == "" {
			flags["network"] = "none"
		}
		return id, true, r.sandboxes.Runsc().For(flags), nil, nil
	}
	return "", false, nil, nil, nil // standalone: see createTask
}

// userNamespaceByMappings drops the path of a user namespace that comes
// with uid/gid mappings: CRI points containers of user-namespaced pods at
// the pod's pinned namespace, which runsc's gofer cannot join ("error
// setting namespace of type user ... invalid argument"); runsc creates an
// equivalent one from the mappings.
func userNamespaceByMappings(spec *specs.Spec) {
	if spec.Linux == nil || len(spec.Linux.UIDMappings) == 0 {
		return
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			spec.Linux.Namespaces[i].Path = ""
		}
	}
}

// privateSandboxID names a standalone container's own sandbox.
func privateSandboxID(id string) string { return sandbox.PrivateSandboxPrefix + id }

// netns is the spec's network namespace, or nil.
func netns(spec *specs.Spec) *specs.LinuxNamespace { return namespace(spec, specs.NetworkNamespace) }

// namespace returns the spec's namespace of a type, or nil.
func namespace(spec *specs.Spec, typ specs.LinuxNamespaceType) *specs.LinuxNamespace {
	if spec.Linux == nil {
		return nil
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == typ {
			return &spec.Linux.Namespaces[i]
		}
	}
	return nil
}

func (r *Runtime) createTask(ctx context.Context, ns, id string, opts runtime.CreateOpts) (_ *Task, retErr error) {
	var spec specs.Spec
	if err := typeurl.UnmarshalTo(opts.Spec, &spec); err != nil {
		return nil, fmt.Errorf("container %s: spec: %w", id, err)
	}
	if err := checkSpec(&spec, r.sandboxes.Policy()); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	sandboxID, root, client, sbExited, err := r.placement(id, opts, &spec)
	if err != nil {
		return nil, err
	}
	private := false
	if client == nil {
		// A standalone container gets a private sandbox of its own and joins
		// it like a pod's container: its exit stays observable (a root
		// container takes its sandbox down with it).
		sandboxID, private = privateSandboxID(id), true
		ns := netns(&spec)
		path := ""
		if ns != nil {
			path = ns.Path
		}
		if err := r.sandboxes.RunPrivate(ctx, sandboxID, path, ns == nil); err != nil {
			return nil, fmt.Errorf("container %s: private sandbox: %w", id, err)
		}
		defer func() {
			if retErr != nil {
				_ = r.sandboxes.Shutdown(context.WithoutCancel(ctx), sandboxID)
			}
		}()
		if client, sbExited, err = r.sandboxes.RunscFor(sandboxID); err != nil {
			return nil, err
		}
		if spec.Annotations == nil {
			spec.Annotations = map[string]string{}
		}
		spec.Annotations[annotationContainerType] = "container"
		spec.Annotations[annotationSandboxID] = sandboxID
	}
	if root {
		r.sandboxes.AcquireRoot()
		defer func() {
			if retErr != nil {
				r.sandboxes.ReleaseRoot()
			}
		}()
	}
	t := &Task{
		rt: r, id: id, ns: ns, sandboxID: sandboxID, root: root, private: private, dir: r.taskDir(ns, id), ttyIndex: -1,
		io: opts.IO, runsc: client, sandboxExited: sbExited, status: runtime.CreatedStatus,
		exited: make(chan struct{}), execs: map[string]*Exec{},
	}
	rootfs := filepath.Join(t.dir, "rootfs")
	defer func() {
		if retErr == nil {
			return
		}
		removeContainerFiles(context.WithoutCancel(ctx), client, id, t.dir)
	}()
	if err := os.MkdirAll(rootfs, 0o711); err != nil {
		return nil, err
	}
	if len(opts.Rootfs) > 0 {
		if err := mount.All(opts.Rootfs, rootfs); err != nil {
			return nil, fmt.Errorf("container %s: mount rootfs: %w", id, err)
		}
		if spec.Root == nil {
			spec.Root = &specs.Root{}
		}
		spec.Root.Path = rootfs
	} else if spec.Root != nil && !filepath.IsAbs(spec.Root.Path) {
		return nil, fmt.Errorf("container %s: no rootfs mounts and a relative root path %q: %w", id, spec.Root.Path, errdefs.ErrInvalidArgument)
	}
	userNamespaceByMappings(&spec)
	if spec.Linux != nil {
		t.cgroups = spec.Linux.CgroupsPath
	}
	data, err := json.Marshal(&spec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(t.dir, "config.json"), data, 0o600); err != nil {
		return nil, err
	}
	owner, err := ioOwner(&spec)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if owner != nil {
		if err := chownIO(opts.IO, *owner); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
	}
	sio, release, err := openIO(ctx, id, opts.IO)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			// No task will own the stdio (and a TTY's console).
			sio.closeStdin()
			sio.closeConsole()
		}
	}()
	// A root container's stdio is taken by runsc create (the sandbox
	// inherits it); a sub-container's by runsc start.
	createIO := runsc.IO{}
	if root {
		createIO = sio.files
	}
	pidFile := filepath.Join(t.dir, "runsc.pid")
	co := runsc.CreateOptions{Stdio: createIO, OutputPath: filepath.Join(t.dir, "runsc.err"), UserLog: true, PidFile: pidFile}
	// A TTY container's pty master comes back over a console socket.
	var consoleSocket *runc.Socket
	if opts.IO.Terminal {
		if consoleSocket, err = runc.NewTempConsoleSocket(); err != nil {
			return nil, fmt.Errorf("container %s: console socket: %w", id, err)
		}
		defer consoleSocket.Close()
		co.ConsoleSocket = consoleSocket
	}
	err = client.Create(ctx, id, t.dir, co)
	if root || err != nil || opts.IO.Terminal {
		release()
	} else {
		t.releaseIO = release
	}
	if err != nil {
		sio.closeStdin()
		return nil, fmt.Errorf("container %s: %w (%s)", id, err, client.DebugLogHint())
	}
	t.stdio = sio
	if consoleSocket != nil {
		master, err := consoleSocket.ReceiveMaster()
		if err != nil {
			return nil, fmt.Errorf("container %s: receive pty master: %w", id, err)
		}
		if err := sio.attachConsole(ctx, master, opts.IO); err != nil {
			master.Close()
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		if !root {
			if t.ttyIndex, t.ttyHolder, err = t.parkTTY(ctx, master); err != nil {
				return nil, fmt.Errorf("container %s: %w", id, err)
			}
		}
	}
	// The sandbox process's pid, as runsc state would say (runsc
	// create wrote it: one runsc process fewer).
	if pid, err := runsc.ReadPidFile(pidFile); err == nil {
		t.pid = uint32(pid)
	} else {
		log.G(ctx).WithError(err).WithField("container", id).Warn("no pid from runsc create")
	}
	if err := t.persist(); err != nil {
		return nil, err
	}
	t.publish(ctx, "/tasks/create", &eventstypes.TaskCreate{
		ContainerID: id, Bundle: t.dir, IO: &eventstypes.TaskIO{Stdin: opts.IO.Stdin, Stdout: opts.IO.Stdout, Stderr: opts.IO.Stderr, Terminal: opts.IO.Terminal}, Pid: t.pid,
	})
	return t, nil
}

func (t *Task) persist() error {
	t.mu.Lock()
	rec := taskRecord{
		ID: t.id, Namespace: t.ns, SandboxID: t.sandboxID, Root: t.root, Private: t.private, Cgroups: t.cgroups, TTYIndex: t.ttyIndex, TTYHolder: t.ttyHolder, IO: t.io,
		Status: t.status, Pid: t.pid, ExitStatus: t.exitStatus, ExitedAt: t.exitedAt, Flags: t.runsc.Flags,
	}
	if t.runsc.Root != t.rt.sandboxes.Runsc().Root {
		rec.RunscRoot = t.runsc.Root
	}
	t.mu.Unlock()
	return sandbox.WriteJSONAtomic(filepath.Join(t.dir, "task.json"), rec)
}

func (t *Task) publish(ctx context.Context, topic string, event any) {
	ctx = namespaces.WithNamespace(context.WithoutCancel(ctx), t.ns)
	if err := t.rt.sandboxes.Publisher().Publish(ctx, topic, event); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warnf("publish %s", topic)
	}
}

// ID is the container id.
func (t *Task) ID() string { return t.id }

// Namespace is the containerd namespace.
func (t *Task) Namespace() string { return t.ns }

// PID is the host pid of the task's runsc sandbox process.
func (t *Task) PID(context.Context) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pid, nil
}

// State is the task's own state.
func (t *Task) State(context.Context) (runtime.State, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return runtime.State{
		Status: t.status, Pid: t.pid, ExitStatus: t.exitStatus, ExitedAt: t.exitedAt,
		Stdin: t.io.Stdin, Stdout: t.io.Stdout, Stderr: t.io.Stderr, Terminal: t.io.Terminal,
	}, nil
}

// Start starts the container's init process and watches for its exit.
func (t *Task) Start(ctx context.Context) (retErr error) {
	ctx, done := telemetry.TaskOp(ctx, "start", t.ns, t.id, "")
	defer func() { done(retErr) }()
	t.mu.Lock()
	if t.status != runtime.CreatedStatus {
		st := t.status
		t.mu.Unlock()
		return fmt.Errorf("container %s is not created (status %d): %w", t.id, st, errdefs.ErrFailedPrecondition)
	}
	release := t.releaseIO
	t.releaseIO = nil
	t.mu.Unlock()
	var startIO runc.IO
	if release != nil {
		startIO = t.stdio.files
		defer release()
	}
	if err := t.runsc.Start(ctx, t.id, startIO); err != nil {
		return fmt.Errorf("container %s: %w (%s)", t.id, err, t.runsc.DebugLogHint())
	}
	t.mu.Lock()
	if t.status != runtime.CreatedStatus {
		// Killed (or its sandbox lost) while runsc started it: it has been
		// reported exited already; take what started back down.
		st := t.status
		t.mu.Unlock()
		_ = t.runsc.Kill(context.WithoutCancel(ctx), t.id, unix.SIGKILL, true)
		return fmt.Errorf("container %s ended while it started (status %d): %w", t.id, st, errdefs.ErrFailedPrecondition)
	}
	t.status = runtime.RunningStatus
	t.mu.Unlock()
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
	}
	t.startMonitor()
	t.publish(ctx, "/tasks/start", &eventstypes.TaskStart{ContainerID: t.id, Pid: t.pid})
	return nil
}

// startMonitor waits for the init process's exit in this process, over
// the sandbox's control socket.
func (t *Task) startMonitor() {
	ctx, cancel := context.WithCancel(t.rt.sandboxes.Context())
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	if t.root && !t.private {
		// A sandbox this runtime runs itself (a gVisor-shim style pod's):
		// the host OOM killer can only kill the whole sandbox process, in
		// the root container's cgroup.
		confirm := sandbox.WatchOOM(ctx, t.sandboxID, t.cgroups, func() { t.rt.sandboxOOM(t.sandboxID) })
		t.mu.Lock()
		t.oomConfirm = confirm
		t.mu.Unlock()
	}
	go func() {
		l := log.G(ctx).WithFields(log.Fields{"container": t.id, "sandbox": t.sandboxID})
		for {
			ws, err := t.runsc.WaitContainer(ctx, t.sandboxID, t.id)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				t.killRemaining(ctx)
				t.markExited(ctx, runsc.ExitCode(ws))
				return
			}
			if t.sandboxGone() {
				t.markExited(ctx, t.lostExitStatus())
				return
			}
			l.WithError(err).Debug("wait for container failed; retrying")
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

// lostExitStatus is the exit status of a container whose sandbox died under
// it: SIGKILL's 137 when the sandbox was OOM-killed, else unknown.
func (t *Task) lostExitStatus() uint32 {
	if t.rt.sandboxes.OOMKilled(t.sandboxID) || t.rt.sandboxes.Forced(t.sandboxID) {
		return 128 + 9
	}
	t.mu.Lock()
	killed := t.forced || t.oomKilled
	t.mu.Unlock()
	if killed {
		return 128 + 9
	}
	// The sandbox's exit can be seen before its OOM event: ask the
	// counter of a sandbox this runtime runs itself.
	if root := t.rt.rootTask(t.ns, t.sandboxID); root != nil {
		root.mu.Lock()
		confirm := root.oomConfirm
		root.mu.Unlock()
		if confirm != nil && confirm() {
			return 128 + 9
		}
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
	if err := t.runsc.Kill(kctx, t.id, unix.SIGKILL, true); err != nil && !errors.Is(err, runsc.ErrNotExist) && !runsc.IsNoSuchProcess(err) {
		log.G(ctx).WithError(err).WithField("container", t.id).Debug("kill the remaining processes after init exited")
	}
}

// sandboxGone reports whether the task's sandbox has exited.
func (t *Task) sandboxGone() bool {
	if t.sandboxExited != nil {
		select {
		case <-t.sandboxExited:
			return true
		default:
			return false
		}
	}
	st, err := t.runsc.State(context.Background(), t.sandboxID)
	return err != nil || st.Status == "stopped"
}

// markExited records the init exit, once, and publishes it after the exits
// of the task's execs.
func (t *Task) markExited(ctx context.Context, status uint32) {
	t.mu.Lock()
	if t.status == runtime.StoppedStatus {
		t.mu.Unlock()
		return
	}
	t.status, t.exitStatus, t.exitedAt = runtime.StoppedStatus, status, time.Now()
	execs := make([]*Exec, 0, len(t.execs))
	for _, e := range t.execs {
		execs = append(execs, e)
	}
	t.mu.Unlock()
	for _, e := range execs {
		e.markExited(ctx, exitUnknown)
	}
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
	}
	t.closeExited()
	t.stdio.closeStdin()
	log.G(ctx).WithFields(log.Fields{"container": t.id, "exitStatus": status}).Info("container exited")
	t.publish(ctx, "/tasks/exit", &eventstypes.TaskExit{
		ContainerID: t.id, ID: t.id, Pid: t.pid, ExitStatus: status, ExitedAt: timestamppb.New(t.exitedAt),
	})
}

// closeExited closes the exit channel; later calls do nothing.
func (t *Task) closeExited() { t.closeOnce.Do(func() { close(t.exited) }) }

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

// killBound is how long a kill through runsc may take before the sandbox
// counts as hung (a kill normally takes well under a second).
const killBound = 5 * time.Second

// Kill signals the init process (or with all, every process). A process
// that has exited already is not an error: its exit is reported by the
// exit watch. A SIGKILL that the sandbox does not answer within killBound
// escalates: the sandbox's whole process tree is killed (the sentry holds
// every container) and the container reads as exited 137.
func (t *Task) Kill(ctx context.Context, signal uint32, all bool) (retErr error) {
	ctx, done := telemetry.TaskOp(ctx, "kill", t.ns, t.id, "")
	defer func() { done(retErr) }()
	t.mu.Lock()
	st := t.status
	t.mu.Unlock()
	if st == runtime.StoppedStatus {
		return fmt.Errorf("container %s: process already finished: %w", t.id, errdefs.ErrNotFound)
	}
	kctx, cancel := context.WithTimeout(ctx, killBound)
	defer cancel()
	if st == runtime.CreatedStatus {
		// Never started (or its start failed): there is no process to
		// signal. Remove it from the sandbox and report it killed, so that
		// stopping the pod never hangs on it.
		if err := t.runsc.Delete(kctx, t.id); err != nil {
			if ctx.Err() != nil || kctx.Err() == nil || signal != uint32(unix.SIGKILL) {
				return err
			}
			if err := t.escalate(ctx, err); err != nil {
				return err
			}
		}
		t.markExited(ctx, 128+signal)
		return nil
	}
	err := t.runsc.Kill(kctx, t.id, unix.Signal(signal), all)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runsc.ErrNotExist) || runsc.IsNoSuchProcess(err):
		log.G(ctx).WithError(err).WithField("container", t.id).Debug("kill: the process has exited already")
		return nil
	case t.sandboxGone():
		return nil // the exit watch reports the container's end
	case ctx.Err() != nil:
		return err
	case kctx.Err() == nil:
		return fmt.Errorf("container %s: %w", t.id, err) // runsc answered
	case signal != uint32(unix.SIGKILL):
		return fmt.Errorf("container %s: sandbox %s did not answer signal %d within %s: %w", t.id, t.sandboxID, signal, killBound, errdefs.ErrUnavailable)
	}
	return t.escalate(ctx, err)
}

// escalate kills the whole sandbox of a container that cannot be killed
// through runsc. Its containers' exits then read 137.
func (t *Task) escalate(ctx context.Context, cause error) error {
	l := log.G(ctx).WithFields(log.Fields{"container": t.id, "sandbox": t.sandboxID})
	l.WithError(cause).Warnf("sandbox did not answer a kill within %s; killing its process tree", killBound)
	root := t.rt.rootTask(t.ns, t.sandboxID)
	if root == nil {
		// A controller's sandbox (a pod's, or a private one).
		return t.rt.sandboxes.KillSandbox(ctx, t.sandboxID)
	}
	// A sandbox this runtime runs itself (a gVisor-shim style pod's): its
	// tasks read as killed, and the root's exit is known now.
	for _, member := range t.rt.sandboxTasks(t.sandboxID) {
		member.mu.Lock()
		member.forced = true
		member.mu.Unlock()
	}
	root.mu.Lock()
	pid := root.pid
	root.mu.Unlock()
	telemetry.ForcedTeardown(telemetry.ForcedTaskEscalate)
	sandbox.KillSandboxTree(ctx, root.runsc, t.sandboxID, pid)
	root.markExited(ctx, 128+9)
	return nil
}

// CloseIO delivers EOF to the init process's stdin.
func (t *Task) CloseIO(context.Context) error {
	t.stdio.finishStdin()
	return nil
}

// ResizePty resizes a TTY container's terminal.
func (t *Task) ResizePty(_ context.Context, size runtime.ConsoleSize) error {
	if err := t.stdio.resize(size); err != nil {
		return fmt.Errorf("container %s: %w", t.id, err)
	}
	return nil
}

// Pause freezes the container.
func (t *Task) Pause(ctx context.Context) error {
	if err := t.runsc.Pause(ctx, t.id); err != nil {
		return fmt.Errorf("pause %s: %w", t.id, err)
	}
	t.mu.Lock()
	t.status = runtime.PausedStatus
	t.mu.Unlock()
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
	}
	t.publish(ctx, "/tasks/paused", &eventstypes.TaskPaused{ContainerID: t.id})
	return nil
}

// Resume thaws the container.
func (t *Task) Resume(ctx context.Context) error {
	if err := t.runsc.Resume(ctx, t.id); err != nil {
		return fmt.Errorf("resume %s: %w", t.id, err)
	}
	t.mu.Lock()
	if t.status == runtime.PausedStatus {
		t.status = runtime.RunningStatus
	}
	t.mu.Unlock()
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
	}
	t.publish(ctx, "/tasks/resumed", &eventstypes.TaskResumed{ContainerID: t.id})
	return nil
}

// Pids lists the container's processes (pids inside the sandbox).
func (t *Task) Pids(ctx context.Context) ([]runtime.ProcessInfo, error) {
	pids, err := t.runsc.Ps(ctx, t.id)
	if err != nil {
		return nil, fmt.Errorf("pids of %s: %w", t.id, err)
	}
	out := make([]runtime.ProcessInfo, 0, len(pids))
	for _, p := range pids {
		out = append(out, runtime.ProcessInfo{Pid: uint32(p)})
	}
	return out, nil
}

// Checkpoint is not offered.
func (t *Task) Checkpoint(context.Context, string, *types.Any) error {
	return fmt.Errorf("checkpoint of runsc containers: %w", errdefs.ErrNotImplemented)
}

// Update applies new resources.
func (t *Task) Update(ctx context.Context, resources *types.Any, _ map[string]string) error {
	if resources == nil {
		return nil
	}
	var res specs.LinuxResources
	if err := typeurl.UnmarshalTo(resources, &res); err != nil {
		return fmt.Errorf("update %s: %w", t.id, err)
	}
	if err := sandbox.ValidateLinuxResources(&res); err != nil {
		return fmt.Errorf("update %s: %w", t.id, err)
	}
	if err := t.runsc.Update(ctx, t.id, &res); err != nil {
		return fmt.Errorf("update %s: %w", t.id, err)
	}
	return nil
}

// Stats returns the container's stats as cgroups v1 metrics.
func (t *Task) Stats(ctx context.Context) (*types.Any, error) {
	t.mu.Lock()
	st0 := t.status
	t.mu.Unlock()
	if st0 != runtime.RunningStatus && st0 != runtime.PausedStatus {
		return nil, fmt.Errorf("container %s is not running: %w", t.id, errdefs.ErrNotFound)
	}
	st, err := t.runsc.Stats(ctx, t.id)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", t.id, err)
	}
	return typeurl.MarshalAnyToProto(toMetrics(st))
}

// delete removes a stopped or never-started container.
func (t *Task) delete(ctx context.Context) (_ *runtime.Exit, retErr error) {
	t.mu.Lock()
	st := t.status
	if st == runtime.RunningStatus || st == runtime.PausedStatus {
		t.mu.Unlock()
		return nil, fmt.Errorf("container %s is running: %w", t.id, errdefs.ErrFailedPrecondition)
	}
	if st == runtime.DeletedStatus || t.deleting {
		// Another Delete has it: one TaskDelete event per task.
		t.mu.Unlock()
		return nil, fmt.Errorf("runsc task %s is being deleted: %w", t.id, errdefs.ErrNotFound)
	}
	t.deleting = true
	t.mu.Unlock()
	defer func() {
		if retErr != nil {
			t.mu.Lock()
			t.deleting = false
			t.mu.Unlock()
		}
	}()
	if err := t.runsc.Delete(ctx, t.id); err != nil {
		if !t.sandboxGone() {
			return nil, err
		}
		// The sandbox died under the container (e.g. OOM-killed): runsc
		// cannot reach it; what is left here is ours to remove.
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("sandbox gone; cleaning up the container without runsc")
	}
	if !t.root {
		sandbox.RemoveCgroups(ctx, t.id, t.cgroups)
	}
	t.mu.Lock()
	if t.cancel != nil {
		t.cancel()
	}
	if t.releaseIO != nil {
		t.releaseIO()
		t.releaseIO = nil
	}
	t.mu.Unlock()
	t.stdio.closeStdin()
	t.stdio.closeConsole()
	t.stdio.stopLogger()
	t.unparkTTY(ctx)
	if err := mount.UnmountAll(filepath.Join(t.dir, "rootfs"), unix.MNT_DETACH); err != nil {
		return nil, fmt.Errorf("container %s: unmount rootfs: %w", t.id, err)
	}
	if err := os.RemoveAll(t.dir); err != nil {
		return nil, err
	}
	if t.private {
		if err := t.rt.sandboxes.Shutdown(ctx, t.sandboxID); err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %s: private sandbox: %w", t.id, err)
		}
	}
	if t.root {
		t.rt.sandboxes.ReleaseRoot()
	}
	t.mu.Lock()
	exit := &runtime.Exit{Pid: t.pid, Status: t.exitStatus, Timestamp: t.exitedAt}
	t.status = runtime.DeletedStatus
	t.mu.Unlock()
	t.publish(ctx, "/tasks/delete", &eventstypes.TaskDelete{
		ContainerID: t.id, ID: t.id, Pid: exit.Pid, ExitStatus: exit.Status, ExitedAt: timestamppb.New(exit.Timestamp),
	})
	log.G(ctx).WithField("container", t.id).Info("runsc task deleted")
	return exit, nil
}
