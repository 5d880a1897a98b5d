package runtime

import (
	"testing"

	runc "github.com/containerd/go-runc"
)

// TestToMetricsComplete: containerd's cgroups v1 collector dereferences
// these without nil checks (a nil one crashed containerd on a scrape).
func TestToMetricsComplete(t *testing.T) {
	m := toMetrics(&runc.Stats{})
	if m.CPU == nil || m.CPU.Usage == nil || m.CPU.Throttling == nil {
		t.Errorf("CPU entries missing: %+v", m.CPU)
	}
	if m.Memory == nil || m.Memory.Usage == nil || m.Memory.Swap == nil || m.Memory.Kernel == nil || m.Memory.KernelTCP == nil {
		t.Errorf("memory entries missing: %+v", m.Memory)
	}
	if m.Pids == nil {
		t.Error("pids missing")
	}
}
