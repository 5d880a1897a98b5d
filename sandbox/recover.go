package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shimless/shimless/sandbox/runsc"
)

// recover rebuilds every sandbox from its record and runsc's state. It runs
// at plugin init, before CRI's own recovery asks for Status and Wait:
//   - running in runsc: READY, with its exit monitor re-armed;
//   - recorded running but gone or stopped in runsc: NOTREADY, exit status
//     unknown (255), exited now (the best time known);
//   - created but never started: removed;
//   - runsc containers under our root with no record: deleted.
func (c *Controller) recover(ctx context.Context) error {
	entries, err := os.ReadDir(c.opts.RootDir)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(c.opts.RootDir, e.Name())
		rec, err := readRecord(path)
		if err != nil || rec.ID == "" {
			c.logger(ctx, strings.TrimSuffix(e.Name(), ".json")).WithError(err).Warn("unreadable sandbox record; removing it")
			os.Remove(path)
			continue
		}
		l := c.logger(ctx, rec.ID)
		known[rec.ID] = true
		s := newSandbox(rec, path, c.bundleDir(rec.ID))
		switch rec.State {
		case StateCreated:
			l.Info("sandbox was never started; removing it")
			_ = c.runsc.For(rec.Flags).Delete(ctx, rec.ID)
			_ = c.cleanupFiles(ctx, rec)
			continue
		case StateRunning:
			st, err := c.runsc.For(rec.Flags).State(ctx, rec.ID)
			if err == nil && st.Status == "running" && st.Pid == int(rec.Pid) {
				c.sandboxes[rec.ID] = s
				c.startMonitor(s, rec)
				l.WithField("pid", rec.Pid).Info("recovered running sandbox")
				continue
			}
			if err != nil && !errors.Is(err, runsc.ErrNotExist) {
				l.WithError(err).Warn("runsc state failed during recovery; treating the sandbox as exited")
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
	// runsc state under our own root that no record explains is a leftover
	// of a crash between runsc create and the record write.
	list, err := c.runsc.List(ctx)
	if err != nil {
		c.logger(ctx, "").WithError(err).Warn("runsc list failed during recovery")
		return nil
	}
	for _, ct := range list {
		sandboxID := ct.Annotations[AnnotationSandboxID]
		if sandboxID == "" {
			sandboxID = ct.ID
		}
		if known[sandboxID] {
			continue
		}
		c.logger(ctx, ct.ID).Warn("runsc container without a sandbox record; deleting it")
		_ = c.runsc.Kill(ctx, ct.ID, 9, true)
		_ = c.runsc.Delete(ctx, ct.ID)
	}
	return nil
}
