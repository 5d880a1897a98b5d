package runtime

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Exec is an extra process in a container, with its own stdio, pid and
// exit status, and its own state machine (state.go).
type Exec struct {
	task *Task
	id   string
	spec specs.Process
	io   runtime.IO

	// op serialises Start, Kill and Delete; held across runsc calls.
	op sync.Mutex

	mu         sync.Mutex
	status     runtime.Status
	pid        int // inside the sandbox
	exitStatus uint32
	exitedAt   time.Time
	exited     chan struct{} // closed by the transition that ends the exec
	stdio      *stdio
}

var _ runtime.ExecProcess = (*Exec)(nil)

// to moves the exec to next (e.mu held).
func (e *Exec) to(next runtime.Status) (ended bool, err error) {
	return transition(execTransitions, "exec "+e.id+" in "+e.task.id, &e.status, next)
}

// Exec adds (but does not start) a process.
func (t *Task) Exec(ctx context.Context, id string, opts runtime.ExecOpts) (runtime.ExecProcess, error) {
	var proc specs.Process
	if err := typeurl.UnmarshalTo(opts.Spec, &proc); err != nil {
		return nil, fmt.Errorf("exec %s in %s: process spec: %w", id, t.id, err)
	}
	t.mu.Lock()
	if t.status != runtime.RunningStatus {
		st := t.status
		t.mu.Unlock()
		return nil, fmt.Errorf("exec %s: container %s is %s: %w", id, t.id, statusName(st), errdefs.ErrFailedPrecondition)
	}
	if _, ok := t.execs[id]; ok {
		t.mu.Unlock()
		return nil, fmt.Errorf("exec %s in %s: %w", id, t.id, errdefs.ErrAlreadyExists)
	}
	e := &Exec{task: t, id: id, spec: proc, io: opts.IO, status: runtime.CreatedStatus, exited: make(chan struct{})}
	t.execs[id] = e
	t.mu.Unlock()
	t.publishExecAdded(ctx, id)
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

// Start runs the process (the ExecuteAsync control RPC), publishes its
// start, then watches its exit.
func (e *Exec) Start(ctx context.Context) (retErr error) {
	t := e.task
	ctx, done := telemetry.TaskOp(ctx, "exec_start", t.ns, t.id, e.id)
	defer func() { done(retErr) }()
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	st := e.status
	e.mu.Unlock()
	if st != runtime.CreatedStatus {
		// Its container exited (which ends its execs) or it was deleted.
		return fmt.Errorf("exec %s in %s is %s: %w", e.id, t.id, statusName(st), errdefs.ErrFailedPrecondition)
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
			release()
			sio.closeStdin()
			return fmt.Errorf("exec %s in %s: pty: %w", e.id, t.id, err)
		}
		replica, err := os.OpenFile(replicaPath, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			m.Close()
			release()
			sio.closeStdin()
			return fmt.Errorf("exec %s in %s: pty: %w", e.id, t.id, err)
		}
		defer replica.Close()
		master, files = m, runsc.IO{In: replica, Out: replica, Err: replica}
		e.spec.Terminal = true
	}
	client := t.sb.Runsc()
	pid, err := client.Exec(ctx, t.sb.ID(), t.id, e.spec, files)
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
			_ = client.KillPid(context.WithoutCancel(ctx), t.sb.ID(), t.id, pid, unix.SIGKILL)
			return fmt.Errorf("exec %s in %s: %w", e.id, t.id, err)
		}
	}
	e.mu.Lock()
	_, err = e.to(runtime.RunningStatus)
	if err == nil {
		e.pid, e.stdio = pid, sio
	}
	e.mu.Unlock()
	if err != nil {
		// Its container exited while runsc started the process: the exec
		// has been ended already; take the process back down.
		_ = client.KillPid(context.WithoutCancel(ctx), t.sb.ID(), t.id, pid, unix.SIGKILL)
		sio.closeStdin()
		sio.closeConsole()
		return fmt.Errorf("exec %s ended while it started: %w", e.id, err)
	}
	t.publishExecStarted(ctx, e.id, uint32(pid))
	e.startMonitor(pid)
	return nil
}

// startMonitor watches the exec's exit (runsc.WaitExit); the exec ends
// unknown when its container or sandbox ends first.
func (e *Exec) startMonitor(pid int) {
	t := e.task
	t.rt.sandboxes.Go(func(ctx context.Context) {
		l := log.G(ctx).WithFields(log.Fields{"container": t.id, "exec": e.id})
		client := t.sb.Runsc()
		code, seen := runsc.WaitExit(ctx,
			func(ctx context.Context) (unix.WaitStatus, error) { return client.WaitPID(ctx, t.sb.ID(), t.id, pid) },
			func(ctx context.Context) bool {
				select {
				case <-t.exited:
				case <-e.exited:
				case <-t.sb.Exited():
				case <-ctx.Done():
					return false
				case <-time.After(waitRetry):
					return false
				}
				return true
			},
			func(err error) { l.WithError(err).Debug("wait for exec failed; retrying") })
		switch {
		case seen:
			e.exit(ctx, code)
		case ctx.Err() == nil:
			e.exit(ctx, exitUnknown)
		}
	})
}

// exit applies the exec's exit, once; a started exec's is published
// before waiters wake.
func (e *Exec) exit(ctx context.Context, status uint32) {
	e.mu.Lock()
	started := e.status == runtime.RunningStatus
	ended, err := e.to(runtime.StoppedStatus)
	if err != nil {
		e.mu.Unlock()
		return
	}
	e.exitStatus, e.exitedAt = status, time.Now()
	exit := &runtime.Exit{Pid: uint32(e.pid), Status: status, Timestamp: e.exitedAt}
	sio := e.stdio
	e.mu.Unlock()
	sio.closeStdin()
	if started {
		e.task.publishExecExit(ctx, e.id, exit)
	}
	if ended {
		close(e.exited)
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
	if err := e.task.sb.Runsc().KillPid(ctx, e.task.sb.ID(), e.task.id, pid, unix.Signal(signal)); err != nil && !runsc.IsNoSuchProcess(err) {
		return err
	}
	return nil
}

// CloseIO delivers EOF to the exec's stdin.
func (e *Exec) CloseIO(context.Context) error {
	e.mu.Lock()
	sio := e.stdio
	e.mu.Unlock()
	sio.finishStdin()
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
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	if e.status == runtime.StoppedStatus {
		// Its exit is published before its channel closes: wait for that.
		e.mu.Unlock()
		select {
		case <-e.exited:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		e.mu.Lock()
	}
	if e.status == runtime.DeletedStatus {
		e.mu.Unlock()
		return nil, fmt.Errorf("exec %s in %s: %w", e.id, e.task.id, errdefs.ErrNotFound)
	}
	ended, err := e.to(runtime.DeletedStatus)
	if err != nil {
		e.mu.Unlock()
		return nil, err // running
	}
	exit := &runtime.Exit{Pid: uint32(e.pid), Status: e.exitStatus, Timestamp: e.exitedAt}
	sio := e.stdio
	e.mu.Unlock()
	if ended {
		close(e.exited)
	}
	sio.closeConsole()
	sio.stopLogger()
	t := e.task
	t.mu.Lock()
	delete(t.execs, e.id)
	t.mu.Unlock()
	return exit, nil
}
