package runtime

import (
	"math"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox"
)

func TestCheckSpec(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	closed := sandbox.AnnotationPolicy{}
	open := sandbox.AnnotationPolicy{AllowedBundles: []string{"experimental-high-performance"}, AllowFlagOverrides: true}
	for _, tc := range []struct {
		name   string
		spec   specs.Spec
		policy sandbox.AnnotationPolicy
		ok     bool
	}{
		{"plain", specs.Spec{Annotations: map[string]string{"io.kubernetes.cri.container-type": "container"}}, closed, true},
		{"internal", specs.Spec{Annotations: map[string]string{"dev.gvisor.internal.checkpoint.path": "/x"}}, open, false},
		{"flag closed", specs.Spec{Annotations: map[string]string{"dev.gvisor.flag.debug": "true"}}, closed, false},
		{"flag open", specs.Spec{Annotations: map[string]string{"dev.gvisor.flag.debug": "true"}}, open, true},
		{"bundle open", specs.Spec{Annotations: map[string]string{"dev.gvisor.bundle.experimental-high-performance": "true"}}, open, true},
		{"wrapped shares", specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u(math.MaxUint64)}}}}, open, false},
		{"host sysctl", specs.Spec{Linux: &specs.Linux{Sysctl: map[string]string{"kernel.core_pattern": "x"}}}, open, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSpec(&tc.spec, tc.policy)
			if tc.ok && err != nil {
				t.Fatalf("checkSpec = %v", err)
			}
			if !tc.ok && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("checkSpec = %v, want InvalidArgument", err)
			}
		})
	}
}
