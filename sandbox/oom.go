package sandbox

import (
	"context"
	"encoding/binary"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/containerd/log"
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

// watchOOM follows the OOM events of the sandbox cgroup until ctx ends.
func (c *Controller) watchOOM(ctx context.Context, s *Sandbox, rec record) {
	confirm := watchOOM(ctx, c.opts.CgroupRoot, rec.ID, rec.SandboxCgroup, func() { c.onOOM(ctx, s, rec.ID) })
	s.mu.Lock()
	s.oomConfirm = confirm
	s.mu.Unlock()
}

// watchOOM follows the OOM kills in a cgroup (cgroupfs path or systemd
// slice:prefix:name) until ctx ends, calling onOOM for each. The returned
// confirm reports whether the cgroup's oom_kill counter rose since the
// watch began (nil when there is nothing to watch). The task runtime uses
// it for the sandboxes it runs itself (gVisor-shim style pods).
func watchOOM(ctx context.Context, cgroupRoot, id, cgroupsPath string, onOOM func()) (confirm func() bool) {
	if cgroupsPath == "" {
		return nil
	}
	l := log.G(ctx).WithField("sandbox", id)
	rel := cgroupRelPath(cgroupsPath)
	oomFile := filepath.Join(cgroupRoot, "memory", rel, "memory.oom_control")
	if cgroups.Mode() == cgroups.Unified {
		oomFile = filepath.Join(cgroupRoot, rel, "memory.events")
	}
	base, _ := readOOMKills(oomFile)
	confirm = func() bool {
		n, ok := readOOMKills(oomFile)
		return ok && n > base
	}
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(rel)
		if err != nil {
			l.WithError(err).Warn("cannot watch OOM events")
			return confirm
		}
		evCh, errCh := m.EventChan()
		go func() {
			last := base
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-evCh:
					if ev.OOMKill > last {
						last = ev.OOMKill
						onOOM()
					}
				case err := <-errCh:
					if err != nil {
						l.WithError(err).Debug("OOM event watch ended")
					}
					return
				}
			}
		}()
		return confirm
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(rel))
	if err != nil {
		l.WithError(err).Warn("cannot watch OOM events")
		return confirm
	}
	fd, err := cg.OOMEventFD()
	if err != nil {
		l.WithError(err).Warn("cannot watch OOM events")
		return confirm
	}
	// Non-blocking, so that the runtime's poller serves the reads and
	// Close (at ctx's end) ends a read in progress: a blocking read would
	// hold its goroutine and the fd forever.
	if err := unix.SetNonblock(int(fd), true); err != nil {
		unix.Close(int(fd))
		l.WithError(err).Warn("cannot watch OOM events")
		return confirm
	}
	f := os.NewFile(fd, fmt.Sprintf("oom-eventfd-%s", id))
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		f.Close()
	}()
	// The eventfd also fires when the cgroup is removed (every pod stop):
	// only a rise of memory.oom_control's oom_kill counter is an OOM kill.
	// It fires when the cgroup goes under OOM, just before the kill is
	// counted: give the counter a moment.
	go func() {
		defer close(stop)
		last := base
		buf := make([]byte, 8)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			if binary.LittleEndian.Uint64(buf) == 0 {
				continue
			}
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				n, ok := readOOMKills(oomFile)
				if !ok {
					return // the cgroup is gone: nothing more to watch
				}
				if n > last {
					last = n
					onOOM()
					break
				}
			}
		}
	}()
	return confirm
}

func (c *Controller) onOOM(ctx context.Context, s *Sandbox, id string) {
	s.mu.Lock()
	s.oomKilled = true
	s.mu.Unlock()
	c.notifyOOM(ctx, id)
}

// notifyOOM logs a confirmed OOM kill in a sandbox and tells the task
// runtime.
func (c *Controller) notifyOOM(ctx context.Context, id string) {
	c.logger(ctx, id).Warn("OOM kill in sandbox cgroup")
	c.mu.Lock()
	h := c.oomHook
	c.mu.Unlock()
	if h != nil {
		h(id)
	}
}

// readOOMKills reads the oom_kill counter of a cgroup v1 memory.oom_control
// file; ok is false when the file or the counter is missing (a removed
// cgroup, or a kernel before 4.13).
func readOOMKills(path string) (n uint64, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	return parseOOMKills(string(data))
}

func parseOOMKills(content string) (uint64, bool) {
	for _, line := range strings.Split(content, "\n") {
		if v, found := strings.CutPrefix(line, "oom_kill "); found {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
