package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
)

// recover re-attaches to every task recorded under the runtime's dir: a
// container still running in runsc gets its exit watch back; one that
// ended while containerd was down is reported exited (unknown status if
// runsc no longer knows it).
func (r *Runtime) recover(ctx context.Context) {
	// Sandboxes this runtime runs itself (root containers of gVisor-shim
	// style pods, private sandboxes), and ids whose record is unreadable:
	// the controller's orphan sweep leaves them alone.
	owned := map[string]bool{}
	defer func() { r.sandboxes.SweepOrphans(ctx, owned) }()
	// Each sandbox's memory limit is applied once all of its containers
	// are back (see sandbox.Handle.RestoreMemoryLimit).
	recovered := map[string]*sandbox.Handle{}
	defer func() {
		for _, sb := range recovered {
			sb.ApplyMemory(ctx)
		}
	}()
	nsDirs, _ := os.ReadDir(r.dir)
	for _, nsd := range nsDirs {
		taskDirs, _ := os.ReadDir(filepath.Join(r.dir, nsd.Name()))
		for _, td := range taskDirs {
			dir := filepath.Join(r.dir, nsd.Name(), td.Name())
			sandbox.RemoveTempRecords(dir)
			data, err := os.ReadFile(filepath.Join(dir, "task.json"))
			var rec taskRecord
			if err == nil {
				err = json.Unmarshal(data, &rec)
			}
			l := log.G(ctx).WithFields(log.Fields{"container": td.Name(), "namespace": nsd.Name()})
			if errors.Is(err, os.ErrNotExist) {
				// A crash during Create, before its record: containerd
				// never got this task. Unmount its rootfs before removing
				// anything, so nothing is deleted through the mount.
				l.Warn("task created without a record (a crash during create); removing it")
				r.removeUnrecorded(ctx, td.Name(), dir)
				continue
			}
			if err != nil {
				l.WithError(err).Error("unreadable task record; leaving the task and its container untouched")
				owned[td.Name()] = true
				owned[privateSandboxID(td.Name())] = true
				continue
			}
			running := rec.Status == runtime.RunningStatus || rec.Status == runtime.PausedStatus
			sb, err := r.sandboxes.Attach(ctx, sandbox.AttachRequest{ContainerID: rec.ID, Recovered: &sandbox.Recovered{
				SandboxID: rec.SandboxID, Kind: rec.kind(), Flags: rec.Flags, RunscRoot: rec.RunscRoot,
				Pid: rec.Pid, Cgroups: rec.Cgroups, Running: running,
			}})
			if err != nil {
				l.WithError(err).Error("cannot re-attach the task to its sandbox; leaving it untouched")
				owned[rec.SandboxID] = true
				continue
			}
			t := newTask(r, rec.Namespace, rec.ID, dir, sb, rec.IO)
			t.cgroups, t.ttyIndex, t.ttyHolder, t.memLimit = rec.Cgroups, rec.TTYIndex, rec.TTYHolder, rec.MemoryLimit
			if !t.root {
				sb.RestoreMemoryLimit(rec.ID, rec.MemoryLimit)
				recovered[sb.ID()] = sb
			}
			t.status, t.pid, t.exitStatus, t.exitedAt = rec.Status, rec.Pid, rec.ExitStatus, rec.ExitedAt
			t.deferred = rec.Deferred
			switch rec.Status {
			case runtime.StoppedStatus:
				close(t.exited)
			case runtime.RunningStatus, runtime.PausedStatus:
				client := sb.Runsc()
				// Whether its sandbox still runs is read from the
				// sandbox process, whose pid the task records (runsc
				// create writes the sandbox's pid), asking runsc nothing:
				// a runsc state per container made a restart with 50
				// pods take 1.5 s. The exit watch then asks the sandbox
				// itself, and reports an exit that happened meanwhile
				// with its status.
				alive, stopped := false, false
				if t.pid > 0 {
					alive = !sb.Gone() && sandbox.IsRunscProcess(client.RootDir(), t.pid)
				} else {
					// No pid recorded: ask runsc. Only its word that
					// the container is stopped or gone ends it; any other
					// failure (a timeout under load) leaves it to the
					// exit watch, which asks the sandbox itself.
					st, err := client.State(ctx, rec.ID)
					switch {
					case err != nil && !errors.Is(err, runsc.ErrNotExist):
						l.WithError(err).Warn("runsc state failed during recovery; watching the container for its exit")
						alive = true
					case err == nil:
						alive = st.Status == runsc.StatusRunning || st.Status == runsc.StatusPaused
						stopped = st.Status == runsc.StatusStopped
					}
				}
				if alive {
					if t.root {
						sb.Started(t.pid, t.cgroups)
					}
					t.startMonitor()
					if rec.IO.Terminal {
						r.reattachTTY(ctx, t)
					}
					l.Info("re-attached to running container")
					break
				}
				status := uint32(exitUnknown)
				if stopped {
					// runsc can still say how it ended.
					if ws, werr := client.WaitContainer(ctx, rec.SandboxID, rec.ID); werr == nil {
						status = runsc.ExitCode(ws)
					}
				}
				t.status, t.exitStatus, t.exitedAt = runtime.StoppedStatus, status, time.Now()
				close(t.exited)
				if t.root {
					sb.RootExited()
				}
				_ = t.persist()
				l.WithField("exitStatus", status).Info("container exited while containerd was down")
			}
			if sb.Kind() != sandbox.KindPod {
				owned[sb.ID()] = true
			}
			r.tasks[key(rec.Namespace, rec.ID)] = t
		}
	}
}

// reattachTTY takes a running TTY container's parked pty master back from
// its sandbox and resumes copying (see ttypark.go).
func (r *Runtime) reattachTTY(ctx context.Context, t *Task) {
	l := log.G(ctx).WithField("container", t.id)
	if t.ttyIndex < 0 || t.ttyHolder == 0 {
		l.Warn("TTY container has no parked terminal; its output is lost until it exits")
		return
	}
	var err error
	if pid := int(t.sb.Pid()); pid > 0 {
		var master console.Console
		if master, err = reclaimTTY(pid, t.ttyIndex); err == nil {
			t.stdio = &stdio{}
			err = t.stdio.attachConsole(ctx, master, t.io)
		}
	} else {
		err = fmt.Errorf("sandbox %s is not running", t.sb.ID())
	}
	if err != nil {
		l.WithError(err).Warn("cannot re-attach the TTY")
	}
}

// removeUnrecorded removes what a Create that crashed before its record
// left (the container was never started: containerd has no task for it).
func (r *Runtime) removeUnrecorded(ctx context.Context, id, dir string) {
	removeContainerFiles(ctx, r.sandboxes.Runsc(), id, dir)
}

// removeContainerFiles removes a container that never became a task: its
// runsc container, its rootfs mount, then its directory; never through a
// mount (a rootfs that cannot be unmounted keeps its directory).
func removeContainerFiles(ctx context.Context, client runsc.Runner, id, dir string) {
	l := log.G(ctx).WithField("container", id)
	if err := client.Delete(ctx, id); err != nil {
		l.WithError(err).Warn("runsc delete of a container that did not become a task")
	}
	if err := mount.UnmountAll(filepath.Join(dir, "rootfs"), unix.MNT_DETACH); err != nil {
		l.WithError(err).Error("cannot unmount the rootfs; leaving the container's directory")
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		l.WithError(err).Warn("remove the container's directory")
	}
}
