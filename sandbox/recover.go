package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/log"

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
			c.logger(ctx, id).WithError(err).Error("unreadable sandbox record; leaving it and its sandbox untouched")
			c.unreadable = append(c.unreadable, id)
			continue
		}
		l := c.logger(ctx, rec.ID)
		s := newSandbox(rec, path, c.bundleDir(rec.ID))
		switch rec.State {
		case StateCreated:
			l.Info("sandbox was never started; removing it")
			_ = c.client(rec).Delete(ctx, rec.ID)
			_ = c.cleanupFiles(ctx, rec)
			continue
		case StateRunning:
			if rec.Pid > 0 && isRunscProcess(c.client(rec).Root, int(rec.Pid)) {
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
	// Private sandboxes' own roots.
	dirs, _ := os.ReadDir(filepath.Join(c.runsc.Root, privateRootsDir))
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
func sweepRoot(ctx context.Context, client *runsc.Client, keep func(sandboxID string) bool) {
	entries, err := os.ReadDir(client.Root)
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
