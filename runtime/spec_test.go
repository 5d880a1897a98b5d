package runtime

import (
	"math"
	"os"
	"path/filepath"
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

func TestReadonlyPaths(t *testing.T) {
	rootfs := t.TempDir()
	for _, d := range []string{"tmp", "etc", "data"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink that points out of the rootfs must resolve inside it.
	if err := os.Symlink("/", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "/host/data", Options: []string{"rbind", "rw"}}},
		Linux:  &specs.Linux{ReadonlyPaths: []string{"/tmp", "/proc/sys", "/sys/firmware", "/missing", "/data", "/escape", "/"}},
	}
	if err := readonlyPaths(spec, rootfs); err != nil {
		t.Fatal(err)
	}
	got := map[string]specs.Mount{}
	for _, m := range spec.Mounts {
		got[m.Destination] = m
	}
	if m := got["/tmp"]; m.Source != filepath.Join(rootfs, "tmp") || !slices.Equal(m.Options, []string{"rbind", "ro"}) {
		t.Errorf("/tmp: %+v", m)
	}
	if m := got["/data"]; m.Source != "/host/data" || !slices.Equal(m.Options, []string{"rbind", "ro"}) {
		t.Errorf("/data mount not made read-only: %+v", m)
	}
	if m, ok := got["/escape"]; !ok || m.Source != rootfs {
		t.Errorf("/escape resolved to %q, want the rootfs itself", m.Source)
	}
	for _, p := range []string{"/proc/sys", "/sys/firmware", "/missing", "/"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s got a mount", p)
		}
	}
}

func TestMaskedPaths(t *testing.T) {
	rootfs, dir := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "key"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{Linux: &specs.Linux{MaskedPaths: []string{"/secret", "/key", "/proc/kcore", "/missing"}}}
	if err := maskedPaths(spec, rootfs, dir); err != nil {
		t.Fatal(err)
	}
	got := map[string]specs.Mount{}
	for _, m := range spec.Mounts {
		got[m.Destination] = m
	}
	if m := got["/secret"]; m.Type != "tmpfs" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/secret: %+v", m)
	}
	m := got["/key"]
	if m.Type != "bind" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/key: %+v", m)
	}
	if fi, err := os.Stat(m.Source); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0 {
		t.Errorf("/key's mask %s: %v %v", m.Source, fi, err)
	}
	if len(spec.Mounts) != 2 {
		t.Errorf("mounts %+v", spec.Mounts)
	}
}
