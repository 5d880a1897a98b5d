package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// Create creates a container task in its runsc sandbox.
func (r *Runtime) Create(ctx context.Context, id string, opts runtime.CreateOpts) (_ runtime.Task, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	ctx, done := telemetry.TaskOp(ctx, "create", ns, id, "")
	defer func() { done(retErr) }()
	// The id names the task's directory and runsc's container: check it
	// before anything is built from it.
	if err := sandbox.ValidateID(id); err != nil {
		return nil, fmt.Errorf("runsc task: %w", err)
	}
	r.mu.Lock()
	if _, ok := r.tasks[key(ns, id)]; ok {
		r.mu.Unlock()
		return nil, fmt.Errorf("runsc task %s: %w", id, errdefs.ErrAlreadyExists)
	}
	// Reserve the id while runsc works; the placeholder is invisible to
	// Get and Tasks.
	r.tasks[key(ns, id)] = &Task{id: id, ns: ns, creating: true}
	r.mu.Unlock()

	t, err := r.createTask(ctx, ns, id, opts)
	r.mu.Lock()
	if err != nil {
		delete(r.tasks, key(ns, id))
	} else {
		r.tasks[key(ns, id)] = t
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	log.G(ctx).WithFields(log.Fields{"container": id, "sandbox": t.sb.ID()}).Info("runsc task created")
	return t, nil
}

// createTask builds the bundle, runs runsc create and writes the record.
// On any failure everything done so far is undone: the runsc container,
// the rootfs mount (before its directory is removed), the stdio and pty
// fds, and a private sandbox made for the task.
func (r *Runtime) createTask(ctx context.Context, ns, id string, opts runtime.CreateOpts) (_ *Task, retErr error) {
	var spec specs.Spec
	if err := typeurl.UnmarshalTo(opts.Spec, &spec); err != nil {
		return nil, fmt.Errorf("container %s: spec: %w", id, err)
	}
	if err := checkSpec(&spec, r.sandboxes.Policy()); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	sb, err := r.place(ctx, id, opts, &spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			if err := sb.Release(context.WithoutCancel(ctx), id); err != nil {
				log.G(ctx).WithError(err).WithField("container", id).Warn("release the sandbox of a failed create")
			}
		}
	}()
	t := newTask(r, ns, id, r.taskDir(ns, id), sb, opts.IO)
	client := sb.Runsc()
	rootfs := filepath.Join(t.dir, "rootfs")
	defer func() {
		if retErr != nil {
			removeContainerFiles(context.WithoutCancel(ctx), client, id, t.dir)
		}
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
	recursiveReadOnly(&spec)
	if t.root && netns(&spec) == nil && spec.Hostname == "" {
		// A host-network pod's sandbox has the node's hostname (CRI's
		// podsandbox spec leaves it empty; runsc would show "?").
		spec.Hostname, _ = os.Hostname()
	}
	if spec.Root != nil {
		if err := readonlyPaths(&spec, spec.Root.Path); err != nil {
			return nil, fmt.Errorf("container %s: %w: %w", id, err, errdefs.ErrInvalidArgument)
		}
		if err := maskedPaths(&spec, spec.Root.Path, t.dir); err != nil {
			return nil, fmt.Errorf("container %s: %w: %w", id, err, errdefs.ErrInvalidArgument)
		}
	}
	if spec.Linux != nil {
		t.cgroups = spec.Linux.CgroupsPath
	}
	if !t.root {
		// gVisor does not enforce a container's memory limit inside the
		// sandbox: the sandbox's limit follows its containers' (before the
		// container can use any memory).
		t.memLimit = memoryLimit(&spec)
		sb.SetMemoryLimit(ctx, id, t.memLimit)
		defer func() {
			if retErr != nil {
				sb.ForgetMemory(context.WithoutCancel(ctx), id)
			}
		}()
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
			if t.releaseIO != nil {
				t.releaseIO()
			}
			t.unparkTTY(context.WithoutCancel(ctx))
			sio.closeStdin()
			sio.closeConsole()
		}
	}()
	// A plain container (it joins its sandbox and has no TTY) is created
	// and started by one runsc run at Start: nothing of it runs before,
	// and no runsc process runs here. A root container (runsc create makes
	// its sandbox) and a TTY container (its pty is parked in the sandbox
	// right after create) are created here.
	if !t.root && !opts.IO.Terminal {
		t.deferred = true
		t.releaseIO = release
		t.stdio = sio
		// runsc state would give a joining container its sandbox's pid.
		t.pid = sb.Pid()
		if err := t.persist(); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		t.publishCreate(ctx)
		return t, nil
	}
	// A root container's stdio is taken by runsc create (the sandbox
	// inherits it); a sub-container's by runsc start.
	createIO := runsc.IO{}
	if t.root {
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
	if t.root || err != nil || opts.IO.Terminal {
		release()
	} else {
		t.releaseIO = release
	}
	if err != nil {
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
		if !t.root {
			if t.ttyIndex, t.ttyHolder, err = t.parkTTY(ctx, master); err != nil {
				return nil, fmt.Errorf("container %s: %w", id, err)
			}
		}
	}
	// The sandbox process's pid, as runsc state would say (runsc create
	// wrote it: one runsc process fewer).
	if pid, err := runsc.ReadPidFile(pidFile); err == nil {
		t.pid = uint32(pid)
		sb.SetPid(t.pid)
	} else {
		log.G(ctx).WithError(err).WithField("container", id).Warn("no pid from runsc create")
	}
	if err := t.persist(); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	t.publishCreate(ctx)
	return t, nil
}
