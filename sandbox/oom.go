package sandbox

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// OOMHook is told when the kernel OOM-killed something in a sandbox's
// cgroup. Under runsc that is the sandbox process itself: the host sees
// one process (the sentry) per pod.
type OOMHook func(sandboxID string)

// SetOOMHook installs the task runtime's OOM hook.
func (c *Controller) SetOOMHook(h OOMHook) {
	c.mu.Lock()
	c.oomHook = h
	c.mu.Unlock()
}

// OOMKilled reports whether a sandbox has seen an OOM kill.
func (c *Controller) OOMKilled(sandboxID string) bool {
	s, err := c.get(sandboxID)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oomKilled
}

// watchOOM follows the OOM events of the sandbox cgroup until ctx ends.
func (c *Controller) watchOOM(ctx context.Context, s *Sandbox, rec record) {
	if rec.SandboxCgroup == "" {
		return
	}
	l := c.logger(ctx, rec.ID)
	rel := cgroupRelPath(rec.SandboxCgroup)
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(rel)
		if err != nil {
			l.WithError(err).Warn("cannot watch OOM events")
			return
		}
		evCh, errCh := m.EventChan()
		go func() {
			var last uint64
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-evCh:
					if ev.OOMKill > last {
						last = ev.OOMKill
						c.onOOM(ctx, s, rec.ID)
					}
				case err := <-errCh:
					if err != nil {
						l.WithError(err).Debug("OOM event watch ended")
					}
					return
				}
			}
		}()
		return
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(rel))
	if err != nil {
		l.WithError(err).Warn("cannot watch OOM events")
		return
	}
	fd, err := cg.OOMEventFD()
	if err != nil {
		l.WithError(err).Warn("cannot watch OOM events")
		return
	}
	f := os.NewFile(fd, fmt.Sprintf("oom-eventfd-%s", rec.ID))
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			if binary.LittleEndian.Uint64(buf) > 0 {
				c.onOOM(ctx, s, rec.ID)
			}
		}
	}()
}

func (c *Controller) onOOM(ctx context.Context, s *Sandbox, id string) {
	s.mu.Lock()
	s.oomKilled = true
	s.mu.Unlock()
	c.logger(ctx, id).Warn("OOM kill in sandbox cgroup")
	c.mu.Lock()
	h := c.oomHook
	c.mu.Unlock()
	if h != nil {
		h(id)
	}
}
