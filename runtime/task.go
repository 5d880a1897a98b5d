package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Exit statuses for exits nobody saw.
const (
	exitUnknown = runsc.ExitUnknown
	exitKilled  = runsc.ExitKilled
)

// Task is one container inside a runsc sandbox. It answers for itself
// only: its own state, pid and exit status. Its sandbox is a Handle, the
// same for a pod's sandbox, a private one and one it is the root of.
type Task struct {
	rt        *Runtime
	id, ns    string
	sb        *sandbox.Handle
	root      bool   // the task is its sandbox's root container
	cgroups   string // the container's cgroupsPath (runsc makes an empty one)
	memLimit  int64  // the container's memory limit, 0 for none
	ttyIndex  int    // the pty's index when its master is parked in the sandbox, else -1
	ttyHolder int    // pid of the parking process inside the sandbox
	dir       string // bundle and record
	creating  bool   // placeholder while Create runs
	io        runtime.IO

	// op serialises Start, Kill, Pause, Resume, Update and Delete; it is
	// held across runsc calls. An exit needs no op: it is a fact.
	op sync.Mutex
	// recMu serialises record writes (see persist).
	recMu sync.Mutex

	mu         sync.Mutex // guards the fields below; never held across runsc calls
	status     runtime.Status
	pid        uint32
	exitStatus uint32
	exitedAt   time.Time
	exited     chan struct{} // closed by the transition that ends the task
	stdio      *stdio
	// deferred: runsc has not created the container yet; Start creates
	// and starts it with one runsc run (see createTask).
	deferred bool
	// releaseIO closes containerd's copies of a sub-container's stdio once
	// runsc start has handed them to the sandbox.
	releaseIO    func()
	execs        map[string]*Exec
	cancel       context.CancelFunc // ends the exit watch
	oomPublished bool
}

var _ runtime.Task = (*Task)(nil)

func newTask(r *Runtime, ns, id, dir string, sb *sandbox.Handle, pio runtime.IO) *Task {
	return &Task{
		rt: r, id: id, ns: ns, sb: sb, root: sb.IsRoot(id), dir: dir, ttyIndex: -1, io: pio,
		status: runtime.CreatedStatus, exited: make(chan struct{}), execs: map[string]*Exec{},
	}
}

// to moves the task to next (t.mu held); ended: close exited once done.
func (t *Task) to(next runtime.Status) (ended bool, err error) {
	return transition(taskTransitions, "container "+t.id, &t.status, next)
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

// checkStatus returns FailedPrecondition unless the task is in one of ok.
func (t *Task) checkStatus(op string, ok ...runtime.Status) error {
	t.mu.Lock()
	st := t.status
	t.mu.Unlock()
	for _, s := range ok {
		if st == s {
			return nil
		}
	}
	return fmt.Errorf("%s container %s: it is %s: %w", op, t.id, statusName(st), errdefs.ErrFailedPrecondition)
}

// Start starts the container's init process, publishes its start, then
// watches for its exit.
func (t *Task) Start(ctx context.Context) (retErr error) {
	ctx, done := telemetry.TaskOp(ctx, "start", t.ns, t.id, "")
	defer func() { done(retErr) }()
	t.op.Lock()
	defer t.op.Unlock()
	if err := t.checkStatus("start", runtime.CreatedStatus); err != nil {
		return err
	}
	t.mu.Lock()
	release := t.releaseIO
	t.releaseIO = nil
	t.mu.Unlock()
	var files runsc.IO
	if release != nil {
		files = t.stdio.files
		defer release()
	}
	client := t.sb.Runsc()
	t.mu.Lock()
	deferred := t.deferred
	t.mu.Unlock()
	if deferred {
		// One runsc process creates and starts it (runsc run --detach):
		// runsc takes the stdio and reports its errors to runsc.err.
		if err := client.Run(ctx, t.id, t.dir, runsc.CreateOptions{Stdio: files, OutputPath: filepath.Join(t.dir, "runsc.err"), UserLog: true}); err != nil {
			return fmt.Errorf("container %s: %w (%s)", t.id, err, client.DebugLogHint())
		}
	} else {
		var startIO runc.IO
		if release != nil {
			startIO = files
		}
		if err := client.Start(ctx, t.id, startIO); err != nil {
			return fmt.Errorf("container %s: %w (%s)", t.id, err, client.DebugLogHint())
		}
	}
	t.mu.Lock()
	t.deferred = false
	_, err := t.to(runtime.RunningStatus)
	pid := t.pid
	t.mu.Unlock()
	if err != nil {
		// Its sandbox was lost while runsc started it: it has been
		// reported exited already; take what started back down.
		_ = client.Kill(context.WithoutCancel(ctx), t.sb.ID(), t.id, unix.SIGKILL, true)
		return fmt.Errorf("container %s ended while it started: %w", t.id, err)
	}
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
	}
	t.publishStart(ctx, pid)
	if t.root {
		t.sb.Started(pid, t.cgroups)
	}
	t.startMonitor()
	return nil
}

// killBound is how long a kill through runsc may take before the sandbox
// counts as hung (a kill normally takes well under a second).
var killBound = 5 * time.Second

// Kill signals the init process (or with all, every process). A process
// that has exited already is not an error: its exit is reported by the
// exit watch. A SIGKILL that the sandbox does not answer within killBound
// escalates: the sandbox's whole process tree is killed (the sentry holds
// every container) and the container reads as exited 137.
func (t *Task) Kill(ctx context.Context, signal uint32, all bool) (retErr error) {
	ctx, done := telemetry.TaskOp(ctx, "kill", t.ns, t.id, "")
	defer func() { done(retErr) }()
	t.op.Lock()
	defer t.op.Unlock()
	t.mu.Lock()
	st := t.status
	t.mu.Unlock()
	if st == runtime.StoppedStatus || st == runtime.DeletedStatus {
		return fmt.Errorf("container %s: process already finished: %w", t.id, errdefs.ErrNotFound)
	}
	kctx, cancel := context.WithTimeout(ctx, killBound)
	defer cancel()
	client := t.sb.Runsc()
	if st == runtime.CreatedStatus {
		// Never started (or its start failed): there is no process to
		// signal. Remove it from the sandbox and report it killed, so that
		// stopping the pod never hangs on it.
		if err := client.Delete(kctx, t.id); err != nil {
			if ctx.Err() != nil || kctx.Err() == nil || signal != uint32(unix.SIGKILL) {
				return err
			}
			if err := t.escalate(ctx, err); err != nil {
				return err
			}
		}
		t.exit(ctx, 128+signal)
		return nil
	}
	err := client.Kill(kctx, t.sb.ID(), t.id, unix.Signal(signal), all)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runsc.ErrNotExist) || runsc.IsNoSuchProcess(err):
		log.G(ctx).WithError(err).WithField("container", t.id).Debug("kill: the process has exited already")
		return nil
	case t.sb.Gone():
		return nil // the exit watch reports the container's end
	case ctx.Err() != nil:
		return err
	case kctx.Err() == nil:
		return fmt.Errorf("container %s: %w", t.id, err) // runsc answered
	case signal != uint32(unix.SIGKILL):
		return fmt.Errorf("container %s: sandbox %s did not answer signal %d within %s: %w", t.id, t.sb.ID(), signal, killBound, errdefs.ErrUnavailable)
	}
	return t.escalate(ctx, err)
}

// escalate kills the whole sandbox of a container that cannot be killed
// through runsc. Its containers' exits then read 137.
func (t *Task) escalate(ctx context.Context, cause error) error {
	log.G(ctx).WithFields(log.Fields{"container": t.id, "sandbox": t.sb.ID()}).WithError(cause).
		Warnf("sandbox did not answer a kill within %s; killing its process tree", killBound)
	if err := t.sb.ForceKill(ctx); err != nil {
		return err
	}
	if root := t.rt.rootTask(t.ns, t.sb.ID()); root != nil {
		// A sandbox this runtime runs itself: its root's exit is known.
		root.exit(ctx, exitKilled)
	}
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

// Pause freezes the container; the record says so (a restart keeps it).
func (t *Task) Pause(ctx context.Context) error {
	return t.setPaused(ctx, true)
}

// Resume thaws the container.
func (t *Task) Resume(ctx context.Context) error {
	return t.setPaused(ctx, false)
}

func (t *Task) setPaused(ctx context.Context, pause bool) error {
	t.op.Lock()
	defer t.op.Unlock()
	from, to, verb, call := runtime.RunningStatus, runtime.PausedStatus, "pause", t.sb.Runsc().Pause
	if !pause {
		from, to, verb, call = runtime.PausedStatus, runtime.RunningStatus, "resume", t.sb.Runsc().Resume
	}
	if err := t.checkStatus(verb, from); err != nil {
		return err
	}
	if err := call(ctx, t.id); err != nil {
		return fmt.Errorf("%s %s: %w", verb, t.id, err)
	}
	t.mu.Lock()
	_, err := t.to(to)
	t.mu.Unlock()
	if err != nil {
		return err // it exited meanwhile
	}
	if err := t.persist(); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
	}
	if pause {
		t.publishPaused(ctx)
	} else {
		t.publishResumed(ctx)
	}
	return nil
}

// Pids lists the container's processes (pids inside the sandbox).
func (t *Task) Pids(ctx context.Context) ([]runtime.ProcessInfo, error) {
	t.mu.Lock()
	deferred := t.deferred
	t.mu.Unlock()
	if deferred {
		return nil, nil // not created in runsc yet: no process
	}
	pids, err := t.sb.Runsc().Ps(ctx, t.id)
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
	t.op.Lock()
	defer t.op.Unlock()
	if err := t.checkStatus("update", runtime.CreatedStatus, runtime.RunningStatus, runtime.PausedStatus); err != nil {
		return err
	}
	t.mu.Lock()
	deferred := t.deferred
	t.mu.Unlock()
	if deferred {
		// runsc has not created it: the resources go into its bundle's
		// spec, which runsc run reads at Start.
		if err := updateBundleResources(t.dir, &res); err != nil {
			return fmt.Errorf("update %s: %w", t.id, err)
		}
	} else if err := t.sb.Runsc().Update(ctx, t.id, &res); err != nil {
		return fmt.Errorf("update %s: %w", t.id, err)
	}
	if res.Memory != nil && res.Memory.Limit != nil && !t.root {
		t.mu.Lock()
		t.memLimit = max(*res.Memory.Limit, 0)
		limit := t.memLimit
		t.mu.Unlock()
		t.sb.SetMemoryLimit(ctx, t.id, limit)
		if err := t.persist(); err != nil {
			log.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")
		}
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
	st, err := t.sb.Runsc().Stats(ctx, t.sb.ID(), t.id)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", t.id, err)
	}
	return typeurl.MarshalAnyToProto(toMetrics(st))
}

// delete removes a stopped or never-started container, and publishes
// TaskDelete once: a second Delete waits for the first (op) and then
// finds the task deleted (NotFound).
func (t *Task) delete(ctx context.Context) (_ *runtime.Exit, retErr error) {
	t.op.Lock()
	defer t.op.Unlock()
	t.mu.Lock()
	st := t.status
	t.mu.Unlock()
	switch st {
	case runtime.RunningStatus, runtime.PausedStatus:
		return nil, fmt.Errorf("container %s is running: %w", t.id, errdefs.ErrFailedPrecondition)
	case runtime.DeletedStatus:
		return nil, fmt.Errorf("runsc task %s: %w", t.id, errdefs.ErrNotFound)
	case runtime.StoppedStatus:
		// The exit is applied (and published) before its channel closes:
		// TaskDelete never comes before TaskExit.
		select {
		case <-t.exited:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	client := t.sb.Runsc()
	if err := client.Delete(ctx, t.id); err != nil {
		if !t.sb.Gone() {
			return nil, err
		}
		// The sandbox died under the container (e.g. OOM-killed): runsc
		// cannot reach it; what is left here is ours to remove.
		log.G(ctx).WithError(err).WithField("container", t.id).Warn("sandbox gone; cleaning up the container without runsc")
	}
	if !t.root {
		sandbox.RemoveCgroups(ctx, t.id, t.cgroups)
		t.sb.ForgetMemory(ctx, t.id)
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
	if err := t.sb.Release(ctx, t.id); err != nil {
		return nil, fmt.Errorf("container %s: %w", t.id, err)
	}
	t.mu.Lock()
	ended, _ := t.to(runtime.DeletedStatus)
	exit := &runtime.Exit{Pid: t.pid, Status: t.exitStatus, Timestamp: t.exitedAt}
	t.mu.Unlock()
	if ended {
		close(t.exited) // deleted without ever running
	}
	t.publishDelete(ctx, exit)
	log.G(ctx).WithField("container", t.id).Info("runsc task deleted")
	return exit, nil
}
