package runtime

import (
	"math"
	"slices"
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

func TestRecursiveReadOnly(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"rbind", "rro", "nosuid"}, []string{"rbind", "ro", "nosuid"}},
		{[]string{"rbind", "ro", "rro"}, []string{"rbind", "ro"}},
		{[]string{"rbind", "rw", "rro"}, []string{"rbind", "ro"}},
		{[]string{"rbind", "rw"}, []string{"rbind", "rw"}},
		{nil, nil},
	} {
		spec := &specs.Spec{Mounts: []specs.Mount{{Destination: "/m", Options: tc.in}}}
		recursiveReadOnly(spec)
		if got := spec.Mounts[0].Options; !slices.Equal(got, tc.want) {
			t.Errorf("%v -> %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := withRRO([]string{"ro", "rbind"}); !slices.Equal(got, []string{"ro", "rbind", "rro"}) {
		t.Errorf("withRRO: %v", got)
	}
	if got := withRRO([]string{"rro"}); len(got) != 1 {
		t.Errorf("withRRO twice: %v", got)
	}
}
