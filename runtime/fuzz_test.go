package runtime

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox"
)

// FuzzCheckSpec: container specs carry pod-author input (annotations CRI
// let through, resources, sysctls). checkSpec never panics, refuses only
// with InvalidArgument, and what it accepts has no dev.gvisor.* key the
// policy refuses.
func FuzzCheckSpec(f *testing.F) {
	f.Add("dev.gvisor.internal.checkpoint.path", "/x", false, uint64(1024), int64(50000), uint64(100000), int64(1<<30), "kernel.shmmax", "1", "memory.high", "max")
	f.Add("dev.gvisor.flag.debug", "true", true, uint64(1<<63), int64(-7), uint64(0), int64(-1), "kernel.core_pattern", "|/x", "../x", "1")
	f.Add("dev.gvisor.bundle.experimental-high-performance", "true", true, uint64(2), int64(-1), uint64(1000), int64(0), "net.ipv4.ip_forward", "1", "", "")
	f.Fuzz(func(t *testing.T, key, value string, allow bool, shares uint64, quota int64, period uint64, memory int64, sysctl, sysctlValue, unifiedKey, unifiedValue string) {
		spec := &specs.Spec{
			Annotations: map[string]string{key: value},
			Linux: &specs.Linux{
				Sysctl: map[string]string{sysctl: sysctlValue},
				Resources: &specs.LinuxResources{
					CPU:     &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
					Memory:  &specs.LinuxMemory{Limit: &memory},
					Unified: map[string]string{unifiedKey: unifiedValue},
				},
			},
		}
		policy := sandbox.AnnotationPolicy{}
		if allow {
			policy = sandbox.AnnotationPolicy{AllowedBundles: []string{"experimental-high-performance"}, AllowFlagOverrides: true}
		}
		if err := checkSpec(spec, policy); err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%v is not InvalidArgument", err)
			}
			return
		}
		if strings.HasPrefix(key, "dev.gvisor.") && policy.Check(key, value) != nil {
			t.Fatalf("accepted refused annotation %s", key)
		}
		if strings.Contains(unifiedKey, "/") {
			t.Fatalf("accepted unified key %q", unifiedKey)
		}
	})
}
