package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shimless/shimless/sandbox/runsc"
)

// recover rebuilds every sandbox from its record. It runs at plugin init,
// before CRI's own recovery asks for Status and Wait, and asks runsc
// nothing: whether a sandbox still runs is read from its recorded process.
//   - its sandbox process alive: READY, with its exit monitor re-armed
//     (the monitor reports an exit that happens from now on, or that
//     happened just before);
//   - recorded running but its process gone: NOTREADY, exit status
//     unknown (255), exited now (the best time known);
//   - created but never started: removed;
//   - an unreadable record is left in place, and its sandbox untouched:
//     nothing is deleted that cannot be proven dead.
//
// runsc state that no record explains is swept later, by SweepOrphans,
// once the task runtime has recovered too (a gVisor-shim style pod's
// sandbox belongs to the task runtime, not to a record here).
func (c *Controller) recover(ctx context.Context) error {
	RemoveTempRecords(c.opts.RootDir)
	entries, err := os.ReadDir(c.opts.RootDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(c.opts.RootDir, e.Name())
		id := strings.TrimSuffix(e.Name(), ".json")
		rec, err := readRecord(path)
		if err != nil || rec.ID != id {
			c.keepCorrupt(ctx, id, path, err)
			continue
		}
		l := c.logger(ctx, rec.ID)
		s := newSandbox(rec, path, c.bundleDir(rec.ID))
		s.mem = c.podMemoryFor(rec)
		switch rec.State {
		case StateCreated:
			l.Info("sandbox was never started; removing it")
			_ = c.client(rec).Delete(ctx, rec.ID)
			_ = c.cleanupFiles(ctx, rec)
			continue
		case StateRunning:
			if rec.Pid > 0 && isRunscProcess(c.client(rec).RootDir(), int(rec.Pid)) {
				c.sandboxes[rec.ID] = s
				c.startMonitor(s, rec)
				l.WithField("pid", rec.Pid).Info("recovered running sandbox")
				continue
			}
			if err := s.transition(StateStopped, func(r *record) {
				r.ExitStatus, r.ExitedAt = ExitUnknown, time.Now()
			}); err != nil {
				return err
			}
			l.Info("sandbox exited while containerd was down")
		}
		c.sandboxes[rec.ID] = s
	}
	return nil
}

// keepCorrupt keeps a sandbox whose record cannot be read as NOTREADY
// (exited, status unknown) for CRI to stop and remove: nothing of it is
// killed or deleted until then. Its runsc state and processes are found
// from runsc's state files for its exact id (its pid is unknown), which
// is what Stop tears down; Shutdown then removes the record.
func (c *Controller) keepCorrupt(ctx context.Context, id, path string, cause error) {
	l := c.logger(ctx, id).WithError(cause)
	if validateKnownID(id) != nil {
		l.Error("unreadable sandbox record with an invalid id; leaving it untouched")
		c.unreadable = append(c.unreadable, id)
		return
	}
	now := time.Now()
	rec := record{ID: id, Namespace: "k8s.io", State: StateStopped, ExitStatus: ExitUnknown, ExitedAt: now, CreatedAt: now}
	if strings.HasPrefix(id, PrivateSandboxPrefix) {
		if fi, err := os.Stat(c.privateRoot(id)); err == nil && fi.IsDir() {
			rec.RunscRoot = c.privateRoot(id)
		}
	}
	s := newSandbox(rec, path, c.bundleDir(id))
	s.mem = c.podMemoryFor(rec)
	s.corrupt = true
	c.sandboxes[id] = s
	l.Error("unreadable sandbox record; the sandbox is kept NOTREADY (exit unknown) until CRI stops and removes it")
	if c.opts.Publisher != nil {
		if err := c.opts.Publisher.Publish(namespaces.WithNamespace(ctx, rec.Namespace), "/sandboxes/exit", &eventtypes.SandboxExit{
			SandboxID: id, ExitStatus: ExitUnknown, ExitedAt: timestamppb.New(now),
		}); err != nil {
			l.WithError(err).Warn("publish the exit of a sandbox with an unreadable record")
		}
	}
}

// SweepOrphans removes runsc state under our root that nobody owns: a
// leftover of a crash between runsc create and the write of its owner's
// record. The task runtime calls it after its own recovery, with the
// sandbox ids it owns (root containers of gVisor-shim style pods, private
// sandboxes). A sandbox this controller knows, or whose record it could
// not read, is never touched.
func (c *Controller) SweepOrphans(ctx context.Context, ownedByRuntime map[string]bool) {
	c.mu.Lock()
	known := map[string]bool{}
	for id := range c.sandboxes {
		known[id] = true
	}
	for _, id := range c.unreadable {
		known[id] = true
	}
	c.mu.Unlock()
	sweepRoot(ctx, c.runsc, func(sid string) bool { return known[sid] || ownedByRuntime[sid] })
	// Recovery may have removed the last sandboxes (never started, or
	// orphans): runsc's shared mounts go with them.
	defer func() {
		c.mu.Lock()
		c.releaseIfIdleLocked()
		c.mu.Unlock()
	}()
	// Private sandboxes' own roots.
	dirs, _ := os.ReadDir(filepath.Join(c.runsc.RootDir(), privateRootsDir))
	for _, d := range dirs {
		sid := d.Name()
		if !d.IsDir() || known[sid] || ownedByRuntime[sid] {
			continue
		}
		client := c.runsc.WithRoot(c.privateRoot(sid))
		sweepRoot(ctx, client, func(string) bool { return false })
		if err := removePrivateRoot(client); err != nil {
			c.logger(ctx, sid).WithError(err).Warn("remove the runsc root of an orphan")
		}
	}
}

// sweepRoot kills and deletes every sandbox under client's root that keep
// does not claim.
func sweepRoot(ctx context.Context, client runsc.Runner, keep func(sandboxID string) bool) {
	entries, err := os.ReadDir(client.RootDir())
	if err != nil {
		return
	}
	orphans := map[string]bool{}
	for _, e := range entries {
		if _, sid, ok := runsc.ParseStateFileName(e.Name()); ok && !keep(sid) {
			orphans[sid] = true
		}
	}
	for sid := range orphans {
		l := log.G(ctx).WithField("sandbox", sid)
		l.Warn("runsc sandbox without an owner's record (a crash during create); removing it")
		KillSandboxTree(ctx, client, sid, 0)
		for _, cid := range client.Containers(sid) {
			if err := client.Delete(ctx, cid); err != nil {
				l.WithError(err).WithField("container", cid).Warn("runsc delete of an orphan")
			}
		}
	}
}
