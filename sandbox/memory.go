package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/log"
)

// DefaultMemoryOverhead is what a pod's sandbox may use beyond the sum of
// its containers' memory limits: the Sentry, the gofer and the guest
// kernel's own structures (an idle sandbox holds about 30 MB here).
const DefaultMemoryOverhead = 32 << 20

// podMemory keeps the memory limits of a sandbox's containers. gVisor does
// not enforce a container's memory limit inside the sandbox (its memory
// cgroup is a stub), and the host sees one sandbox: so, as a kubelet pod
// cgroup does, the sandbox cgroup is limited to the sum of the limits plus
// the sandbox overhead once every container has a limit, and is unlimited
// otherwise. Exceeding it OOM-kills the sandbox: every container of the
// pod reads OOMKilled, 137. The cgroup is written only when shimless owns
// it: a pod with a cgroup parent (kubelet's pod cgroup) is left to kubelet,
// and a pod whose own config sets a memory limit keeps it.
type podMemory struct {
	mu       sync.Mutex
	cgroup   string // cgroupsPath of the sandbox's processes; "" = not ours
	limits   map[string]int64
	applied  int64 // what was written last (0: nothing yet)
	overhead int64
}

func newPodMemory(cgroup string, overhead int64) *podMemory {
	return &podMemory{cgroup: cgroup, limits: map[string]int64{}, overhead: overhead}
}

// setCgroup gives a policy made before its cgroup was known (a root
// handle recovered after one of its containers) the cgroup to write.
func (m *podMemory) setCgroup(cgroup string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cgroup == "" {
		m.cgroup = cgroup
	}
}

// set records container id's limit (0: none) and applies the pod's.
func (m *podMemory) set(ctx context.Context, cgroupRoot, id string, limit int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit < 0 {
		limit = 0
	}
	m.limits[id] = limit
	m.applyLocked(ctx, cgroupRoot)
}

// restore records container id's limit without applying it (recovery:
// the sandbox's limit is applied once all of its containers are back, never
// lowered on the way).
func (m *podMemory) restore(id string, limit int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limits[id] = max(limit, 0)
}

// apply sets the sandbox's limit from what it holds.
func (m *podMemory) apply(ctx context.Context, cgroupRoot string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyLocked(ctx, cgroupRoot)
}

// forget drops container id and applies the pod's limit again.
func (m *podMemory) forget(ctx context.Context, cgroupRoot, id string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.limits[id]; !ok {
		return
	}
	delete(m.limits, id)
	m.applyLocked(ctx, cgroupRoot)
}

// podLimit is the sandbox's limit for these containers: -1 when one has
// none (or there are none).
func podLimit(limits map[string]int64, overhead int64) int64 {
	if len(limits) == 0 {
		return -1
	}
	var sum int64
	for _, l := range limits {
		if l <= 0 {
			return -1
		}
		sum += l
	}
	return sum + overhead
}

func (m *podMemory) applyLocked(ctx context.Context, cgroupRoot string) {
	if m.cgroup == "" {
		return
	}
	want := podLimit(m.limits, m.overhead)
	if want == m.applied || (m.applied == 0 && want == -1) {
		return
	}
	if err := writeMemoryLimit(cgroupRoot, m.cgroup, want); err != nil {
		log.G(ctx).WithError(err).WithFields(log.Fields{"cgroup": m.cgroup, "limit": want}).Warn("cannot set the sandbox's memory limit")
		return
	}
	m.applied = want
	log.G(ctx).WithFields(log.Fields{"cgroup": m.cgroup, "limit": want}).Debug("sandbox memory limit")
}

// podMemoryFor is a new sandbox's memory policy: shimless sets the limit
// of a cgroup it made itself (no cgroup parent) when the pod's own config
// sets none.
func (c *Controller) podMemoryFor(rec record) *podMemory {
	if rec.SandboxCgroup != rec.CgroupsPath || rec.CgroupsPath == "" {
		return newPodMemory("", 0) // kubelet's pod cgroup
	}
	if cfg, err := rec.podConfig(); err != nil || cfg.GetLinux().GetResources().GetMemoryLimitInBytes() > 0 {
		return newPodMemory("", 0)
	}
	return newPodMemory(rec.CgroupsPath, c.opts.MemoryOverhead)
}

// SetMemoryLimit records a container's memory limit (0: none) and sets the
// sandbox's (see podMemory).
func (h *Handle) SetMemoryLimit(ctx context.Context, containerID string, limit int64) {
	h.memory().set(ctx, h.c.opts.CgroupRoot, containerID, limit)
}

// RestoreMemoryLimit records a recovered container's limit; ApplyMemory
// then sets the sandbox's once every container of it is back.
func (h *Handle) RestoreMemoryLimit(containerID string, limit int64) {
	h.memory().restore(containerID, limit)
}

// ApplyMemory sets the sandbox's limit from its containers'.
func (h *Handle) ApplyMemory(ctx context.Context) {
	h.memory().apply(ctx, h.c.opts.CgroupRoot)
}

// ForgetMemory drops a deleted container's limit from the sandbox's.
func (h *Handle) ForgetMemory(ctx context.Context, containerID string) {
	h.memory().forget(ctx, h.c.opts.CgroupRoot, containerID)
}

func (h *Handle) memory() *podMemory {
	if h.s != nil {
		return h.s.mem
	}
	return h.mem
}

// writeMemoryLimit sets a cgroup's memory limit (-1: none), v1 or v2.
func writeMemoryLimit(cgroupRoot, cgroupsPath string, limit int64) error {
	rel := cgroupRelPath(cgroupsPath)
	if cgroups.Mode() == cgroups.Unified {
		v := "max"
		if limit > 0 {
			v = strconv.FormatInt(limit, 10)
		}
		return os.WriteFile(filepath.Join(cgroupRoot, rel, "memory.max"), []byte(v), 0)
	}
	dir := filepath.Join(cgroupRoot, "memory", rel)
	v := strconv.FormatInt(limit, 10)
	err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(v), 0)
	if err != nil && limit > 0 && errors.Is(err, os.ErrInvalid) {
		// memory+swap is below the new limit: raise it first.
		_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(v), 0)
		err = os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(v), 0)
	}
	return err
}
