package runtime

import (
	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	runc "github.com/containerd/go-runc"
)

// toMetrics converts runsc's per-container stats (the sandbox kernel's own
// accounting) to the cgroups v1 Metrics type CRI decodes for
// ContainerStats. containerd's cgroups v1 task metrics collector (served
// on the metrics endpoint) dereferences every nested entry it exports, so
// those runsc does not account are present and zero, never nil.
func toMetrics(s *runc.Stats) *v1.Metrics {
	m := &v1.Metrics{
		CPU: &v1.CPUStat{Usage: &v1.CPUUsage{
			Total: s.Cpu.Usage.Total, Kernel: s.Cpu.Usage.Kernel, User: s.Cpu.Usage.User, PerCPU: s.Cpu.Usage.Percpu,
		}, Throttling: &v1.Throttle{}},
		Memory: &v1.MemoryStat{
			Cache:     s.Memory.Cache,
			Usage:     &v1.MemoryEntry{Limit: s.Memory.Usage.Limit, Usage: s.Memory.Usage.Usage, Max: s.Memory.Usage.Max, Failcnt: s.Memory.Usage.Failcnt},
			Swap:      &v1.MemoryEntry{Limit: s.Memory.Swap.Limit, Usage: s.Memory.Swap.Usage, Max: s.Memory.Swap.Max},
			Kernel:    &v1.MemoryEntry{},
			KernelTCP: &v1.MemoryEntry{},
		},
		Pids: &v1.PidsStat{Current: s.Pids.Current, Limit: s.Pids.Limit},
	}
	if raw := s.Memory.Raw; raw != nil {
		m.Memory.RSS = raw["rss"]
		m.Memory.TotalInactiveFile = raw["total_inactive_file"]
		m.Memory.InactiveFile = raw["inactive_file"]
		m.Memory.MappedFile = raw["mapped_file"]
		m.Memory.PgFault = raw["pgfault"]
		m.Memory.PgMajFault = raw["pgmajfault"]
	}
	return m
}
