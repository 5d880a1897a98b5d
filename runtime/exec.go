package runtime

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/containerd/console"
	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Exec is an extra process in a container (`runsc exec`), with its own
// stdio, pid and exit status.
type Exec struct {
	task *Task
	id   string
	spec specs.Process
	io   runtime.IO

	mu         sync.Mutex
	status     runtime.Status
	pid        int // inside the sandbox
	exitStatus uint32
	exitedAt   time.Time
	exited     chan struct{}
	closeOnce  sync.Once // exited is closed exactly once
	stdio      *stdio
}

// closeExited closes the exit channel; later calls do nothing.
func (e *Exec) closeExited() { e.closeOnce.Do(func() { close(e.exited) }) }

var _ runtime.ExecProcess = (*Exec)(nil)

// Exec adds (but does not start) a process.
func (t *Task) Exec(ctx context.Context, id string, opts runtime.ExecOpts) (runtime.ExecProcess, error) {
	var proc specs.Process
	if err := typeurl.UnmarshalTo(opts.Spec, &proc); err != nil {
		return nil, fmt.Errorf("exec %s in %s: process spec: %w", id, t.id, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != runtime.RunningStatus {
		return nil, fmt.Errorf("exec %s: container %s is not running: %w", id, t.id, errdefs.ErrFailedPrecondition)
	}
	if _, ok := t.execs[id]; ok {
		return nil, fmt.Errorf("exec %s in %s: %w", id, t.id, errdefs.ErrAlreadyExists)
	}
	e := &Exec{task: t, id: id, spec: proc, io: opts.IO, status: runtime.CreatedStatus, exited: make(chan struct{})}
	t.execs[id] = e
	t.publish(ctx, "/tasks/exec-added", &eventstypes.TaskExecAdded{ContainerID: t.id, ExecID: id})
	return e, nil
}

// Process returns an exec by id.
func (t *Task) Process(ctx context.Context, id string) (runtime.ExecProcess, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.execs[id]
	if !ok {
		return nil, fmt.Errorf("exec %s in %s: %w", id, t.id, errdefs.ErrNotFound)
	}
	return e, nil
}

// ID is the exec id.
func (e *Exec) ID() string { return e.id }

// State is the exec's own state.
func (e *Exec) State(context.Context) (runtime.State, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return runtime.State{Status: e.status, Pid: uint32(e.pid), ExitStatus: e.exitStatus, ExitedAt: e.exitedAt,
		Stdin: e.io.Stdin, Stdout: e.io.Stdout, Stderr: e.io.Stderr, Terminal: e.io.Terminal}, nil
}

// Start runs the process with runsc exec and watches for its exit.
func (e *Exec) Start(ctx context.Context) (retErr error) {
	t := e.task
	ctx, done := telemetry.TaskOp(ctx, "exec_start", t.ns, t.id, e.id)
	defer func() { done(retErr) }()
	e.mu.Lock()
	st := e.status
	e.mu.Unlock()
	if st != runtime.CreatedStatus {
		// Its container exited (which ends its execs) or it was deleted.
		return fmt.Errorf("exec %s in %s is not created (status %d): %w", e.id, t.id, st, errdefs.ErrFailedPrecondition)
	}
	sio, release, err := openIO(ctx, e.id, e.io)
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", e.id, t.id, err)
	}
	files := sio.files
	var master console.Console
	if e.io.Terminal {
		// A TTY exec gets a pty made here: the replica goes to the
		// sandbox as the process's stdio, the master stays with us.
		m, replicaPath, err := console.NewPty()
		if err != nil {
			return fmt.Errorf("exec %s in %s: pty: %w", e.id, t.id, err)
		}
		replica, err := os.OpenFile(replicaPath, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			m.Close()
			return fmt.Errorf("exec %s in %s: pty: %w", e.id, t.id, err)
		}
		defer replica.Close()
		master, files = m, runsc.IO{In: replica, Out: replica, Err: replica}
		e.spec.Terminal = true
	}
	pid, err := t.runsc.Exec(ctx, t.sandboxID, t.id, e.spec, files)
	release()
	if err != nil {
		sio.closeStdin()
		if master != nil {
			master.Close()
		}
		return fmt.Errorf("exec %s in %s: %w", e.id, t.id, err)
	}
	if master != nil {
		if err := sio.attachConsole(ctx, master, e.io); err != nil {
			// Nobody could see its output or its exit: take it down.
			master.Close()
			sio.closeStdin()
			_ = t.runsc.KillPid(context.WithoutCancel(ctx), t.id, pid, unix.SIGKILL)
			return fmt.Errorf("exec %s in %s: %w", e.id, t.id, err)
		}
	}
	e.mu.Lock()
	if e.status != runtime.CreatedStatus {
		// The container exited while runsc started the process: the exec
		// has been reported exited already; take the process back down.
		st := e.status
		e.mu.Unlock()
		_ = t.runsc.KillPid(context.WithoutCancel(ctx), t.id, pid, unix.SIGKILL)
		sio.closeStdin()
		sio.closeConsole()
		return fmt.Errorf("exec %s in %s ended while it started (status %d): %w", e.id, t.id, st, errdefs.ErrFailedPrecondition)
	}
	e.pid, e.status, e.stdio = pid, runtime.RunningStatus, sio
	e.mu.Unlock()
	t.publish(ctx, "/tasks/exec-started", &eventstypes.TaskExecStarted{ContainerID: t.id, ExecID: e.id, Pid: uint32(pid)})
	go e.monitor(t.rt.sandboxes.Context())
	return nil
}

func (e *Exec) monitor(ctx context.Context) {
	t := e.task
	for {
		ws, err := t.runsc.WaitPID(ctx, t.sandboxID, t.id, e.pid)
		if err == nil {
			e.markExited(ctx, runsc.ExitCode(ws))
			return
		}
		select {
		case <-t.exited:
			e.markExited(ctx, exitUnknown)
			return
		case <-e.exited:
			return
		case <-time.After(500 * time.Millisecond):
		}
		if t.sandboxGone() {
			e.markExited(ctx, exitUnknown)
			return
		}
		log.G(ctx).WithError(err).WithFields(log.Fields{"container": t.id, "exec": e.id}).Debug("wait for exec failed; retrying")
	}
}

func (e *Exec) markExited(ctx context.Context, status uint32) {
	e.mu.Lock()
	if e.status == runtime.StoppedStatus || e.status == runtime.DeletedStatus {
		e.mu.Unlock()
		return
	}
	started := e.status == runtime.RunningStatus
	e.status, e.exitStatus, e.exitedAt = runtime.StoppedStatus, status, time.Now()
	e.mu.Unlock()
	e.closeExited()
	e.stdio.closeStdin()
	if started {
		e.task.publish(ctx, "/tasks/exit", &eventstypes.TaskExit{
			ContainerID: e.task.id, ID: e.id, Pid: uint32(e.pid), ExitStatus: status, ExitedAt: timestamppb.New(e.exitedAt),
		})
	}
}

// Wait blocks until the exec has exited.
func (e *Exec) Wait(ctx context.Context) (*runtime.Exit, error) {
	return waitExit(ctx, e.exited, func() *runtime.Exit {
		e.mu.Lock()
		defer e.mu.Unlock()
		return &runtime.Exit{Pid: uint32(e.pid), Status: e.exitStatus, Timestamp: e.exitedAt}
	})
}

// Kill signals the exec's process.
func (e *Exec) Kill(ctx context.Context, signal uint32, _ bool) error {
	e.mu.Lock()
	st, pid := e.status, e.pid
	e.mu.Unlock()
	if st != runtime.RunningStatus {
		return fmt.Errorf("exec %s: process not running: %w", e.id, errdefs.ErrNotFound)
	}
	return e.task.runsc.KillPid(ctx, e.task.id, pid, unix.Signal(signal))
}

// CloseIO delivers EOF to the exec's stdin.
func (e *Exec) CloseIO(context.Context) error {
	e.stdio.finishStdin()
	return nil
}

// ResizePty resizes a TTY exec's terminal.
func (e *Exec) ResizePty(_ context.Context, size runtime.ConsoleSize) error {
	e.mu.Lock()
	sio := e.stdio
	e.mu.Unlock()
	if err := sio.resize(size); err != nil {
		return fmt.Errorf("exec %s: %w", e.id, err)
	}
	return nil
}

// Delete removes the exec once it has exited (or was never started).
func (e *Exec) Delete(ctx context.Context) (*runtime.Exit, error) {
	e.mu.Lock()
	if e.status == runtime.RunningStatus {
		e.mu.Unlock()
		return nil, fmt.Errorf("exec %s is running: %w", e.id, errdefs.ErrFailedPrecondition)
	}
	wasCreated := e.status == runtime.CreatedStatus
	exit := &runtime.Exit{Pid: uint32(e.pid), Status: e.exitStatus, Timestamp: e.exitedAt}
	e.status = runtime.DeletedStatus
	e.mu.Unlock()
	if wasCreated {
		e.closeExited()
	}
	e.stdio.closeConsole()
	e.stdio.stopLogger()
	t := e.task
	t.mu.Lock()
	delete(t.execs, e.id)
	t.mu.Unlock()
	return exit, nil
}
